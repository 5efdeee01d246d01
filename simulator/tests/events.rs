//! The `[events]` queue seen through the AWS SDK for Rust (aws-sdk-sqs, AWS JSON 1.0) and raw
//! HTTP: long polling, visibility timeouts and redelivery, deletes, errors and faults; and the
//! EventBridge events that root credential changes made through the control API put in it.

mod common;

use std::time::{Duration, Instant};

use aws_sdk_sqs::error::ProvideErrorMetadata;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use common::{DEMO, Sim, own_credentials, put_json, sdk_config};
use serde_json::{Value, json};

const EVENTS: &str = include_str!("scenarios/events.toml");
const ACCOUNT: &str = "222222222222";

async fn sqs(sim: &Sim) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&sdk_config(sim, own_credentials()).await)
}

/// The scenario with other `[events]` settings.
fn events_with(settings: &str) -> String {
    let (head, _) = EVENTS.rsplit_once("\n[events]").unwrap();
    format!("{head}\n[events]\nqueue_name = \"aws-root-events\"\n{settings}\n")
}

async fn post_json(url: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new().post(url).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

async fn raw_message(sim: &Sim, body: &str) -> String {
    let (status, answer) = post_json(&sim.control("/_simulator/queue/messages"), json!({ "body": body })).await;
    assert_eq!(status, 200, "{answer}");
    answer["message_id"].as_str().unwrap().to_string()
}

async fn root_action(sim: &Sim, account: &str, body: Value) -> (u16, Value) {
    post_json(
        &sim.control(&format!("/_simulator/accounts/{account}/root_actions")),
        body,
    )
    .await
}

async fn queue_counts(sim: &Sim) -> Value {
    reqwest::get(sim.control("/_simulator/queue"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Receive every message visible now (several short polls), deleting none.
async fn receive_all(client: &aws_sdk_sqs::Client, url: &str) -> Vec<aws_sdk_sqs::types::Message> {
    let out = client
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .send()
        .await
        .unwrap();
    out.messages.unwrap_or_default()
}

fn body_json(m: &aws_sdk_sqs::types::Message) -> Value {
    serde_json::from_str(m.body().unwrap()).unwrap()
}

fn is_uuid(v: &Value) -> bool {
    let s = v.as_str().unwrap_or_default();
    s.len() == 36 && s.split('-').map(str::len).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
}

fn is_recent_rfc3339(v: &Value) -> bool {
    let Some(s) = v.as_str() else { return false };
    let Ok(t) = humantime::parse_rfc3339(s) else {
        return false;
    };
    s.ends_with('Z') && t.elapsed().map(|d| d < Duration::from_secs(600)).unwrap_or(true)
}

#[tokio::test]
async fn the_queue_has_a_url_and_only_it_exists() {
    let sim = Sim::start(EVENTS).await;
    let url = sim.running.queue_url().unwrap();
    assert_eq!(
        url,
        format!("{}/111111111111/aws-root-events", sim.running.endpoint_url())
    );
    let client = sqs(&sim).await;
    let got = client
        .get_queue_url()
        .queue_name("aws-root-events")
        .send()
        .await
        .unwrap();
    assert_eq!(got.queue_url(), Some(url.as_str()));
    let got = client
        .get_queue_url()
        .queue_name("aws-root-events")
        .queue_owner_aws_account_id("111111111111")
        .send()
        .await
        .unwrap();
    assert_eq!(got.queue_url(), Some(url.as_str()));
    for (name, owner) in [("other", None), ("aws-root-events", Some("222222222222"))] {
        let err = client
            .get_queue_url()
            .queue_name(name)
            .set_queue_owner_aws_account_id(owner.map(str::to_string))
            .send()
            .await
            .unwrap_err()
            .into_service_error();
        assert!(err.is_queue_does_not_exist(), "{err:?}");
        assert_eq!(err.code(), Some("AWS.SimpleQueueService.NonExistentQueue"));
    }
    let other = url.replace("aws-root-events", "other-queue");
    let err = client
        .receive_message()
        .queue_url(other)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_queue_does_not_exist(), "{err:?}");
    let err = client
        .receive_message()
        .queue_url("not a url")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_invalid_address(), "{err:?}");
    // The queue is empty: a short poll answers at once with no messages.
    let started = Instant::now();
    assert!(receive_all(&client, &url).await.is_empty());
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn without_events_there_is_no_queue_and_nothing_is_queued() {
    let sim = Sim::start(DEMO).await;
    assert_eq!(sim.running.queue_url(), None);
    assert_eq!(sim.running.queue_counts(), None);
    let client = sqs(&sim).await;
    let err = client
        .get_queue_url()
        .queue_name("aws-root-events")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_queue_does_not_exist(), "{err:?}");
    let url = format!("{}/111111111111/aws-root-events", sim.running.endpoint_url());
    let err = client
        .receive_message()
        .queue_url(&url)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_queue_does_not_exist(), "{err:?}");
    let err = client
        .delete_message()
        .queue_url(&url)
        .receipt_handle("AQEBx")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_queue_does_not_exist(), "{err:?}");
    let r = reqwest::get(sim.control("/_simulator/queue")).await.unwrap();
    assert_eq!(r.status(), 404);
    let (status, answer) = post_json(&sim.control("/_simulator/queue/messages"), json!({"body": "x"})).await;
    assert_eq!(status, 404, "{answer}");
    // A change still happens, and says nothing was queued.
    let (status, answer) = root_action(&sim, ACCOUNT, json!({"action": "CreateAccessKey"})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["queued"], false);
    assert_eq!(answer["event_id"], Value::Null);
}

#[tokio::test]
async fn long_polling_returns_as_soon_as_a_message_arrives() {
    let sim = Sim::start(EVENTS).await;
    let url = sim.running.queue_url().unwrap();
    let client = sqs(&sim).await;
    // Nothing arrives: the poll lasts its WaitTimeSeconds.
    let started = Instant::now();
    let out = client
        .receive_message()
        .queue_url(&url)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap();
    assert!(out.messages.unwrap_or_default().is_empty());
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(950) && waited < Duration::from_secs(3),
        "{waited:?}"
    );

    let poll = {
        let client = client.clone();
        let url = url.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let out = client
                .receive_message()
                .queue_url(url)
                .wait_time_seconds(20)
                .max_number_of_messages(10)
                .send()
                .await
                .unwrap();
            (started.elapsed(), out.messages.unwrap_or_default())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let id = raw_message(&sim, "hello").await;
    let (waited, messages) = poll.await.unwrap();
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert_eq!(m.message_id(), Some(id.as_str()));
    assert_eq!(m.body(), Some("hello"));
    assert_eq!(m.md5_of_body(), Some("5d41402abc4b2a76b9719d911017c592"));
    assert!(m.attributes().is_none(), "no attributes unless asked");
}

#[tokio::test]
async fn a_message_not_deleted_is_redelivered_after_its_visibility_timeout() {
    let sim = Sim::start(EVENTS).await;
    let url = sim.running.queue_url().unwrap();
    let client = sqs(&sim).await;
    raw_message(&sim, "{\"not\": \"an event\"}").await;
    let receive = |vt: i32| {
        client
            .receive_message()
            .queue_url(&url)
            .visibility_timeout(vt)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .send()
    };
    let first = receive(1).await.unwrap().messages.unwrap();
    let attrs = first[0].attributes().unwrap();
    assert_eq!(attrs[&MessageSystemAttributeName::ApproximateReceiveCount], "1");
    let sent: u128 = attrs[&MessageSystemAttributeName::SentTimestamp].parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    assert!(sent <= now && now - sent < 10_000, "{sent} {now}");
    assert_eq!(attrs.len(), 2, "{attrs:?}");
    // In flight: hidden.
    assert!(receive(1).await.unwrap().messages.unwrap_or_default().is_empty());
    let counts = queue_counts(&sim).await;
    assert_eq!(
        (counts["visible"].as_u64(), counts["in_flight"].as_u64()),
        (Some(0), Some(1))
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = receive(30).await.unwrap().messages.unwrap();
    let attrs = second[0].attributes().unwrap();
    assert_eq!(attrs[&MessageSystemAttributeName::ApproximateReceiveCount], "2");
    assert_eq!(second[0].message_id(), first[0].message_id());
    assert_ne!(second[0].receipt_handle(), first[0].receipt_handle());
    // The old handle: success, and nothing deleted (AWS's documented behaviour).
    client
        .delete_message()
        .queue_url(&url)
        .receipt_handle(first[0].receipt_handle().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(queue_counts(&sim).await["in_flight"], 1);
    // ChangeMessageVisibility to 0 makes it visible again at once.
    client
        .change_message_visibility()
        .queue_url(&url)
        .receipt_handle(second[0].receipt_handle().unwrap())
        .visibility_timeout(0)
        .send()
        .await
        .unwrap();
    let err = client
        .change_message_visibility()
        .queue_url(&url)
        .receipt_handle(second[0].receipt_handle().unwrap())
        .visibility_timeout(10)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_message_not_inflight(), "{err:?}");
    let third = receive(30).await.unwrap().messages.unwrap();
    assert_eq!(
        third[0].attributes().unwrap()[&MessageSystemAttributeName::ApproximateReceiveCount],
        "3"
    );
    client
        .delete_message()
        .queue_url(&url)
        .receipt_handle(third[0].receipt_handle().unwrap())
        .send()
        .await
        .unwrap();
    let counts = queue_counts(&sim).await;
    assert_eq!(
        counts,
        json!({"queue_url": url, "visible": 0, "in_flight": 0, "delayed": 0, "deleted": 1, "received_total": 3, "sent_total": 1})
    );
    assert_eq!(sim.running.queue_counts().unwrap().deleted, 1);
}

#[tokio::test]
async fn deletes_in_batches_and_refuses_unknown_receipt_handles() {
    let sim = Sim::start(EVENTS).await;
    let url = sim.running.queue_url().unwrap();
    let client = sqs(&sim).await;
    for n in 0..3 {
        raw_message(&sim, &format!("message {n}")).await;
    }
    let got = receive_all(&client, &url).await;
    assert_eq!(got.len(), 3);
    let entry = |id: &str, handle: &str| {
        DeleteMessageBatchRequestEntry::builder()
            .id(id)
            .receipt_handle(handle)
            .build()
            .unwrap()
    };
    let out = client
        .delete_message_batch()
        .queue_url(&url)
        .entries(entry("a", got[0].receipt_handle().unwrap()))
        .entries(entry("b", got[1].receipt_handle().unwrap()))
        .entries(entry("c", "AQEBnot-a-handle-the-queue-gave"))
        .send()
        .await
        .unwrap();
    let ok: Vec<&str> = out.successful().iter().map(|e| e.id()).collect();
    assert_eq!(ok, ["a", "b"]);
    assert_eq!(out.failed().len(), 1);
    assert_eq!(out.failed()[0].id(), "c");
    assert_eq!(out.failed()[0].code(), "ReceiptHandleIsInvalid");
    assert!(out.failed()[0].sender_fault());
    assert_eq!(queue_counts(&sim).await["deleted"], 2);

    let err = client
        .delete_message()
        .queue_url(&url)
        .receipt_handle("AQEBunknown")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_receipt_handle_is_invalid(), "{err:?}");
    assert_eq!(err.code(), Some("ReceiptHandleIsInvalid"));
    let err = client
        .change_message_visibility()
        .queue_url(&url)
        .receipt_handle("AQEBunknown")
        .visibility_timeout(5)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_receipt_handle_is_invalid(), "{err:?}");

    // Batch errors.
    let err = client
        .delete_message_batch()
        .queue_url(&url)
        .set_entries(Some(vec![]))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_empty_batch_request(), "{err:?}");
    let eleven: Vec<_> = (0..11).map(|n| entry(&format!("e{n}"), "AQEBx")).collect();
    let err = client
        .delete_message_batch()
        .queue_url(&url)
        .set_entries(Some(eleven))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_too_many_entries_in_batch_request(), "{err:?}");
    let err = client
        .delete_message_batch()
        .queue_url(&url)
        .entries(entry("same", "AQEBx"))
        .entries(entry("same", "AQEBy"))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_batch_entry_ids_not_distinct(), "{err:?}");
    let err = client
        .delete_message_batch()
        .queue_url(&url)
        .entries(entry("not valid!", "AQEBx"))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_invalid_batch_entry_id(), "{err:?}");
}

#[tokio::test]
async fn receive_message_validates_its_inputs_like_aws() {
    let sim = Sim::start(EVENTS).await;
    let url = sim.running.queue_url().unwrap();
    let client = sqs(&sim).await;
    for (max, wait, vt, message) in [
        (
            Some(11),
            None,
            None,
            "Value 11 for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided.",
        ),
        (
            Some(0),
            None,
            None,
            "Value 0 for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided.",
        ),
        (
            None,
            Some(21),
            None,
            "Value 21 for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= 20, if provided.",
        ),
        (
            None,
            None,
            Some(43_201),
            "Value 43201 for parameter VisibilityTimeout is invalid. Reason: Must be >= 0 and <= 43200, if provided.",
        ),
    ] {
        let err = client
            .receive_message()
            .queue_url(&url)
            .set_max_number_of_messages(max)
            .set_wait_time_seconds(wait)
            .set_visibility_timeout(vt)
            .send()
            .await
            .unwrap_err()
            .into_service_error();
        assert_eq!(err.code(), Some("InvalidParameterValue"), "{err:?}");
        assert_eq!(err.message(), Some(message));
    }
    // Raw: an unknown attribute name, and the headers of an SQS error.
    let resp = signed_sqs(
        &sim,
        "ReceiveMessage",
        json!({"QueueUrl": url, "MessageSystemAttributeNames": ["Nope"]}),
    )
    .await;
    assert_eq!(resp.status(), 400);
    assert_eq!(
        resp.headers()["x-amzn-query-error"].to_str().unwrap(),
        "InvalidAttributeName;Sender"
    );
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "application/x-amz-json-1.0"
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({"__type": "com.amazonaws.sqs#InvalidAttributeName", "message": "Unknown Attribute Nope."})
    );
}

/// A request as aws-sdk-sqs sends it: JSON 1.0, `X-Amz-Target`, a SigV4 header for `sqs`.
async fn signed_sqs(sim: &Sim, operation: &str, body: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(sim.running.endpoint_url())
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amz-target", format!("AmazonSQS.{operation}"))
        .header(
            "authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/sqs/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature={}",
                "ab".repeat(32)
            ),
        )
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn errors_have_sqs_json_shape_and_query_error_header() {
    let sim = Sim::start(EVENTS).await;
    let resp = signed_sqs(&sim, "GetQueueUrl", json!({"QueueName": "missing"})).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(
        resp.headers()["x-amzn-query-error"].to_str().unwrap(),
        "AWS.SimpleQueueService.NonExistentQueue;Sender"
    );
    assert!(resp.headers().contains_key("x-amzn-requestid"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({"__type": "com.amazonaws.sqs#QueueDoesNotExist", "message": "The specified queue does not exist."})
    );
    let resp = signed_sqs(
        &sim,
        "DeleteMessage",
        json!({"QueueUrl": sim.running.queue_url(), "ReceiptHandle": "AQEBnope"}),
    )
    .await;
    assert_eq!(resp.status(), 404);
    assert_eq!(
        resp.headers()["x-amzn-query-error"].to_str().unwrap(),
        "ReceiptHandleIsInvalid;Sender"
    );
    let resp = signed_sqs(&sim, "SendMessage", json!({})).await;
    assert_eq!(resp.status(), 400);
    // Unsigned.
    let resp = reqwest::Client::new()
        .post(sim.running.endpoint_url())
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amz-target", "AmazonSQS.ReceiveMessage")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(
        resp.headers()["x-amzn-query-error"].to_str().unwrap(),
        "MissingAuthenticationToken;Sender"
    );
}

#[tokio::test]
async fn only_the_exporters_own_credentials_may_use_the_queue() {
    let sim = Sim::start(EVENTS).await;
    let root = common::assume_root(&sim, ACCOUNT, 900).await.unwrap();
    let client = aws_sdk_sqs::Client::new(&sdk_config(&sim, root).await);
    let err = client
        .receive_message()
        .queue_url(sim.running.queue_url().unwrap())
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("AccessDenied"), "{err:?}");
}

#[tokio::test]
async fn create_access_key_enqueues_cloudtrails_event_and_the_audit_sees_the_key() {
    let sim = Sim::start(EVENTS).await;
    let url = sim.running.queue_url().unwrap();
    let client = sqs(&sim).await;
    let (status, answer) = root_action(&sim, ACCOUNT, json!({"action": "CreateAccessKey"})).await;
    assert_eq!(status, 200, "{answer}");
    let key = answer["access_key_id"].as_str().unwrap().to_string();
    assert!(key.starts_with("AKIA2222") && key.len() == 20, "{key}");
    assert_eq!(answer["account_id"], ACCOUNT);
    assert_eq!(answer["action"], "CreateAccessKey");
    assert_eq!(answer["event_name"], "CreateAccessKey");
    assert_eq!(answer["queued"], true);

    let messages = receive_all(&client, &url).await;
    assert_eq!(messages.len(), 1);
    let e = body_json(&messages[0]);
    let d = &e["detail"];
    assert_eq!(d["eventID"], answer["event_id"]);
    for v in [&e["id"], &d["eventID"], &d["requestID"]] {
        assert!(is_uuid(v), "{v}");
    }
    assert!(is_recent_rfc3339(&e["time"]), "{e}");
    assert_eq!(d["eventTime"], e["time"]);
    let session_key = d["userIdentity"]["accessKeyId"].as_str().unwrap();
    assert!(session_key.starts_with("ASIA") && session_key.len() == 20);
    let created = d["userIdentity"]["sessionContext"]["attributes"]["creationDate"].clone();
    assert!(is_recent_rfc3339(&created));
    let create_date = d["responseElements"]["accessKey"]["createDate"].as_str().unwrap();
    assert!(
        create_date.ends_with(" AM") || create_date.ends_with(" PM"),
        "{create_date}"
    );
    let expected = json!({
        "version": "0",
        "id": e["id"],
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.iam",
        "account": ACCOUNT,
        "time": e["time"],
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "eventVersion": "1.09",
            "userIdentity": {
                "type": "Root",
                "principalId": ACCOUNT,
                "arn": "arn:aws:iam::222222222222:root",
                "accountId": ACCOUNT,
                "accessKeyId": session_key,
                "sessionContext": {
                    "sessionIssuer": {},
                    "webIdFederationData": {},
                    "attributes": { "creationDate": created, "mfaAuthenticated": "false" },
                },
            },
            "eventTime": e["time"],
            "eventSource": "iam.amazonaws.com",
            "eventName": "CreateAccessKey",
            "awsRegion": "us-east-1",
            "sourceIPAddress": "192.0.2.10",
            "userAgent": "AWS Internal",
            "requestParameters": null,
            "responseElements": {
                "accessKey": { "accessKeyId": key, "status": "Active", "createDate": create_date },
            },
            "requestID": d["requestID"],
            "eventID": d["eventID"],
            "readOnly": false,
            "eventType": "AwsApiCall",
            "managementEvent": true,
            "recipientAccountId": ACCOUNT,
            "eventCategory": "Management",
            "tlsDetails": {
                "tlsVersion": "TLSv1.3",
                "cipherSuite": "TLS_AES_128_GCM_SHA256",
                "clientProvidedHostHeader": "iam.amazonaws.com",
            },
            "sessionCredentialFromConsole": "true",
        },
    });
    assert_eq!(e, expected);
    assert!(!messages[0].body().unwrap().to_lowercase().contains("secret"));

    // The audit sees the key.
    assert_eq!(root_keys(&sim, ACCOUNT).await, format!(",{key},true,"));

    // DeleteAccessKey of that key, from an AssumeRoot session.
    let (status, answer) = root_action(
        &sim,
        ACCOUNT,
        json!({"action": "DeleteAccessKey", "access_key_id": key, "session": "assumed_root"}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["access_key_id"], key.as_str());
    let messages = receive_all(&client, &url).await;
    assert_eq!(messages.len(), 1);
    let e = body_json(&messages[0]);
    let d = &e["detail"];
    assert_eq!(d["eventName"], "DeleteAccessKey");
    assert_eq!(d["requestParameters"], json!({"accessKeyId": key}));
    assert_eq!(d["responseElements"], Value::Null);
    assert_eq!(d["userIdentity"]["type"], "Root");
    assert_eq!(d["userIdentity"]["sessionContext"]["assumedRoot"], "true");
    assert_eq!(d["userIdentity"]["inScopeOf"]["issuerAccountId"], "111111111111");
    assert!(d.get("sessionCredentialFromConsole").is_none());
    // A key root no longer has.
    let (status, answer) = root_action(
        &sim,
        ACCOUNT,
        json!({"action": "DeleteAccessKey", "access_key_id": key}),
    )
    .await;
    assert_eq!(status, 404, "{answer}");
    // An AssumeRoot session cannot create keys.
    let (status, answer) = root_action(
        &sim,
        ACCOUNT,
        json!({"action": "CreateAccessKey", "session": "assumed_root"}),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("DeleteAccessKey"),
        "{answer}"
    );
    let (status, answer) = root_action(&sim, ACCOUNT, json!({"action": "RotateEverything"})).await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("UploadSigningCertificate"),
        "{answer}"
    );
}

/// Root's access keys as the audit reads them (AssumeRoot, then ListAccessKeys):
/// `,ID,ACTIVE,` for each, ACTIVE `true` or `false`.
async fn root_keys(sim: &Sim, account: &str) -> String {
    let (_, iam) = assume_root(sim, account).await;
    let keys = iam.list_access_keys().send().await.unwrap();
    keys.access_key_metadata()
        .iter()
        .map(|k| {
            format!(
                ",{},{},",
                k.access_key_id().unwrap_or_default(),
                k.status().map(|s| s.as_str() == "Active").unwrap_or(false)
            )
        })
        .collect()
}

#[tokio::test]
async fn console_login_is_a_sign_in_event_with_mfa_used() {
    let sim = Sim::start(EVENTS).await;
    let url = sim.running.queue_url().unwrap();
    let client = sqs(&sim).await;
    let (status, answer) = root_action(&sim, "333333333333", json!({"action": "ConsoleLogin"})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["mfa_used"], true);
    let messages = receive_all(&client, &url).await;
    let e = body_json(&messages[0]);
    let d = &e["detail"];
    assert!(is_uuid(&d["eventID"]) && is_recent_rfc3339(&e["time"]));
    let expected = json!({
        "version": "0",
        "id": e["id"],
        "detail-type": "AWS Console Sign In via CloudTrail",
        "source": "aws.signin",
        "account": "333333333333",
        "time": e["time"],
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "eventVersion": "1.09",
            "userIdentity": {
                "type": "Root",
                "principalId": "333333333333",
                "arn": "arn:aws:iam::333333333333:root",
                "accountId": "333333333333",
                "accessKeyId": "",
            },
            "eventTime": e["time"],
            "eventSource": "signin.amazonaws.com",
            "eventName": "ConsoleLogin",
            "awsRegion": "us-east-1",
            "sourceIPAddress": "192.0.2.10",
            "userAgent": d["userAgent"],
            "requestParameters": null,
            "responseElements": { "ConsoleLogin": "Success" },
            "additionalEventData": {
                "LoginTo": d["additionalEventData"]["LoginTo"],
                "MobileVersion": "No",
                "MFAUsed": "Yes",
                "MFAIdentifier": "arn:aws:iam::333333333333:mfa/root-account-mfa-device",
            },
            "eventID": d["eventID"],
            "readOnly": false,
            "eventType": "AwsConsoleSignIn",
            "managementEvent": true,
            "recipientAccountId": "333333333333",
            "eventCategory": "Management",
            "tlsDetails": {
                "tlsVersion": "TLSv1.3",
                "cipherSuite": "TLS_AES_128_GCM_SHA256",
                "clientProvidedHostHeader": "signin.aws.amazon.com",
            },
        },
    });
    assert_eq!(e, expected);
    // Without a password there is no sign-in.
    let (status, answer) = root_action(&sim, ACCOUNT, json!({"action": "ConsoleLogin"})).await;
    assert_eq!(status, 409, "{answer}");
    // Without MFA, MFAUsed is No.
    root_action(&sim, ACCOUNT, json!({"action": "CreateLoginProfile"})).await;
    root_action(&sim, ACCOUNT, json!({"action": "ConsoleLogin"})).await;
    let names: Vec<Value> = receive_all(&client, &url)
        .await
        .iter()
        .map(|m| body_json(m)["detail"]["additionalEventData"]["MFAUsed"].clone())
        .collect();
    assert_eq!(names, [Value::Null, json!("No")]);
}

fn event_names(messages: &[aws_sdk_sqs::types::Message]) -> Vec<String> {
    messages
        .iter()
        .map(|m| body_json(m)["detail"]["eventName"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn every_root_action_performs_its_call_and_enqueues_its_event() {
    let sim = Sim::start(EVENTS).await;
    let url = sim.running.queue_url().unwrap();
    let client = sqs(&sim).await;
    let steps = [
        json!({"action": "CreateAccessKey"}),
        json!({"action": "UpdateAccessKey", "status": "Inactive"}),
        json!({"action": "CreateLoginProfile"}),
        json!({"action": "UpdateLoginProfile"}),
        json!({"action": "EnableMFADevice", "mfa": "virtual"}),
        json!({"action": "DeactivateMFADevice"}),
        json!({"action": "DeleteVirtualMFADevice"}),
        json!({"action": "UploadSigningCertificate"}),
        json!({"action": "UpdateSigningCertificate", "status": "Inactive"}),
        json!({"action": "DeleteSigningCertificate"}),
        json!({"action": "DeleteLoginProfile", "session": "assumed_root"}),
        json!({"action": "DeleteAccessKey"}),
    ];
    let mut expected = Vec::new();
    for step in &steps {
        let (status, answer) = root_action(&sim, ACCOUNT, step.clone()).await;
        assert_eq!(status, 200, "{step}: {answer}");
        expected.push(step["action"].as_str().unwrap().to_string());
    }
    let mut got = Vec::new();
    loop {
        let batch = receive_all(&client, &url).await;
        if batch.is_empty() {
            break;
        }
        got.extend(batch);
    }
    assert_eq!(event_names(&got), expected);
    let bodies: Vec<Value> = got.iter().map(body_json).collect();
    assert_eq!(
        bodies[1]["detail"]["requestParameters"]["status"], "Inactive",
        "{}",
        bodies[1]
    );
    assert_eq!(
        bodies[4]["detail"]["requestParameters"],
        json!({"serialNumber": "arn:aws:iam::222222222222:mfa/root-account-mfa-device"})
    );
    assert!(bodies[7]["detail"]["responseElements"]["certificate"]["certificateId"].is_string());
    // Back where it started; what would fail in AWS is refused.
    for (step, status) in [
        (json!({"action": "DeleteAccessKey"}), 409),
        (json!({"action": "DeleteLoginProfile"}), 409),
        (json!({"action": "UpdateAccessKey"}), 400),
        (json!({"action": "UpdateAccessKey", "status": "Expired"}), 400),
        (json!({"action": "CreateAccessKey", "colour": "red"}), 422),
    ] {
        let (got, answer) = root_action(&sim, ACCOUNT, step.clone()).await;
        assert!(got == status || (status == 422 && got == 400), "{step}: {got} {answer}");
    }
    root_action(&sim, ACCOUNT, json!({"action": "CreateAccessKey"})).await;
    root_action(&sim, ACCOUNT, json!({"action": "CreateAccessKey"})).await;
    let (status, answer) = root_action(&sim, ACCOUNT, json!({"action": "CreateAccessKey"})).await;
    assert_eq!(status, 409, "{answer}");
}

#[tokio::test]
async fn put_root_enqueues_one_event_per_difference() {
    let sim = Sim::start(EVENTS).await;
    let url = sim.running.queue_url().unwrap();
    let client = sqs(&sim).await;
    // 333333333333: virtual MFA, a password, one active key.
    let r = put_json(
        &sim.control("/_simulator/accounts/333333333333/root"),
        json!({"mfa": ["hardware"], "password": false, "access_keys": ["Inactive", "Active"], "signing_certificates": ["Active"]}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().await.unwrap();
    let expected = [
        "UpdateAccessKey",
        "CreateAccessKey",
        "DeleteLoginProfile",
        "DeactivateMFADevice",
        "EnableMFADevice",
        "UploadSigningCertificate",
    ];
    assert_eq!(answer["events"], json!(expected));
    assert_eq!(answer["queued"], 6);
    let messages = receive_all(&client, &url).await;
    assert_eq!(event_names(&messages), expected);
    let bodies: Vec<Value> = messages.iter().map(body_json).collect();
    assert_eq!(bodies[0]["detail"]["requestParameters"]["status"], "Inactive");
    assert_eq!(
        bodies[3]["detail"]["requestParameters"]["serialNumber"],
        "arn:aws:iam::333333333333:mfa/root-account-mfa-device"
    );
    assert_eq!(bodies[4]["detail"]["requestParameters"]["serialNumber"], "GAHT12345678");
    // The key that stayed kept its id: UpdateAccessKey names the key the audit lists first.
    let keys = root_keys(&sim, "333333333333").await;
    let first = bodies[0]["detail"]["requestParameters"]["accessKeyId"]
        .as_str()
        .unwrap();
    let second = bodies[1]["detail"]["responseElements"]["accessKey"]["accessKeyId"]
        .as_str()
        .unwrap();
    assert_eq!(keys, format!(",{first},false,,{second},true,"));
    // The same root again: nothing changed, nothing queued.
    let r = put_json(
        &sim.control("/_simulator/accounts/333333333333/root"),
        json!({"mfa": ["hardware"], "password": false, "access_keys": ["Inactive", "Active"], "signing_certificates": ["Active"]}),
    )
    .await;
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["events"], json!([]));
    assert!(receive_all(&client, &url).await.is_empty());
    // Keys removed, certificate deactivated.
    let r = put_json(
        &sim.control("/_simulator/accounts/333333333333/root"),
        json!({"mfa": ["hardware"], "access_keys": [], "signing_certificates": ["Inactive"]}),
    )
    .await;
    let answer: Value = r.json().await.unwrap();
    assert_eq!(
        answer["events"],
        json!(["DeleteAccessKey", "DeleteAccessKey", "UpdateSigningCertificate"])
    );
}

#[tokio::test]
async fn events_arrive_after_the_delivery_delay() {
    let sim = Sim::start(&events_with("delivery_delay_ms = 800")).await;
    let url = sim.running.queue_url().unwrap();
    let client = sqs(&sim).await;
    let started = Instant::now();
    root_action(&sim, ACCOUNT, json!({"action": "CreateAccessKey"})).await;
    assert!(receive_all(&client, &url).await.is_empty());
    let counts = queue_counts(&sim).await;
    assert_eq!(
        (counts["delayed"].as_u64(), counts["visible"].as_u64()),
        (Some(1), Some(0))
    );
    let out = client
        .receive_message()
        .queue_url(&url)
        .wait_time_seconds(10)
        .send()
        .await
        .unwrap();
    let waited = started.elapsed();
    assert_eq!(out.messages.unwrap_or_default().len(), 1);
    assert!(
        waited >= Duration::from_millis(750) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
    // Raw messages have no delivery delay.
    raw_message(&sim, "now").await;
    assert_eq!(receive_all(&client, &url).await.len(), 1);
}

#[tokio::test]
async fn the_queues_default_visibility_timeout_comes_from_the_scenario() {
    let sim = Sim::start(&events_with("visibility_timeout_s = 1")).await;
    let url = sim.running.queue_url().unwrap();
    let client = sqs(&sim).await;
    raw_message(&sim, "again").await;
    assert_eq!(receive_all(&client, &url).await.len(), 1);
    assert!(receive_all(&client, &url).await.is_empty());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let again = receive_all(&client, &url).await;
    assert_eq!(
        again[0].attributes().unwrap()[&MessageSystemAttributeName::ApproximateReceiveCount],
        "2"
    );
}

#[tokio::test]
async fn faults_and_latency_apply_to_sqs_operations() {
    let sim = Sim::start(EVENTS).await;
    let url = sim.running.queue_url().unwrap();
    let client = sqs(&sim).await;
    let r = put_json(
        &sim.control("/_simulator/faults"),
        json!([
            {"operation": "ReceiveMessage", "kind": "throttling", "count": 1},
            {"operation": "ReceiveMessage", "kind": "server_error", "count": 1},
            {"operation": "ReceiveMessage", "kind": "access_denied", "count": 1},
            {"operation": "ReceiveMessage", "kind": "not_aws", "count": 1},
            {"operation": "ReceiveMessage", "kind": "slow", "delay_ms": 400, "count": 1},
        ]),
    )
    .await;
    assert_eq!(r.status(), 200);
    let receive = || client.receive_message().queue_url(&url).send();
    let err = receive().await.unwrap_err();
    assert_eq!(err.code(), Some("RequestThrottled"), "{err:?}");
    assert!(err.into_service_error().is_request_throttled());
    let err = receive().await.unwrap_err();
    assert_eq!(err.code(), Some("InternalError"), "{err:?}");
    assert_eq!(err.raw_response().unwrap().status().as_u16(), 500);
    let err = receive().await.unwrap_err();
    assert_eq!(err.code(), Some("AccessDenied"), "{err:?}");
    let err = receive().await.unwrap_err();
    assert_eq!(err.code(), None, "{err:?}");
    assert_eq!(err.raw_response().unwrap().status().as_u16(), 500);
    let started = Instant::now();
    receive().await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(400));
    receive().await.unwrap();
    assert_eq!(sim.running.calls("ReceiveMessage"), 6);
    // Faults name SQS operations like any other; an unknown one is refused with the list.
    let r = put_json(
        &sim.control("/_simulator/faults"),
        json!([{"operation": "SendMessage", "kind": "throttling"}]),
    )
    .await;
    assert_eq!(r.status(), 400);
    let answer: Value = r.json().await.unwrap();
    assert!(
        answer["error"].as_str().unwrap().contains("ChangeMessageVisibility"),
        "{answer}"
    );
}

#[tokio::test]
async fn a_rate_limit_throttles_sqs_with_request_throttled() {
    let sim = Sim::start(&format!(
        "{EVENTS}\n[rate_limits]\nReceiveMessage = {{ rate = 0.05, burst = 2 }}\n"
    ))
    .await;
    let url = sim.running.queue_url().unwrap();
    let client = sqs(&sim).await;
    let receive = || client.receive_message().queue_url(&url).send();
    receive().await.unwrap();
    receive().await.unwrap();
    let err = receive().await.unwrap_err();
    assert_eq!(err.code(), Some("RequestThrottled"), "{err:?}");
    let raw = err.raw_response().unwrap();
    assert_eq!(raw.status().as_u16(), 400);
    assert_eq!(raw.headers().get("x-amzn-query-error"), Some("RequestThrottled;Sender"));
    assert!(err.into_service_error().is_request_throttled());
    // Other operations have no limit; a long poll that is throttled answers at once.
    client
        .get_queue_url()
        .queue_name("aws-root-events")
        .send()
        .await
        .unwrap();
    let started = Instant::now();
    let err = client
        .receive_message()
        .queue_url(&url)
        .wait_time_seconds(20)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("RequestThrottled"));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(sim.running.calls("ReceiveMessage"), 4);
    assert_eq!(sim.running.throttled("ReceiveMessage"), 2);
    // Lifted through the control API.
    let r = put_json(&sim.control("/_simulator/rate_limits"), json!({})).await;
    assert_eq!(r.status(), 200);
    receive().await.unwrap();
}

#[tokio::test]
async fn a_long_poll_does_not_hold_up_the_simulators_stop() {
    let sim = Sim::start(EVENTS).await;
    let url = sim.running.queue_url().unwrap();
    let client = sqs(&sim).await;
    let poll = tokio::spawn(async move {
        let started = Instant::now();
        let _ = client
            .receive_message()
            .queue_url(url)
            .wait_time_seconds(20)
            .send()
            .await;
        started.elapsed()
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(sim);
    let waited = tokio::time::timeout(Duration::from_secs(5), poll)
        .await
        .unwrap()
        .unwrap();
    assert!(waited < Duration::from_secs(3), "{waited:?}");
}

#[tokio::test]
async fn raw_messages_are_checked_as_sqs_checks_bodies() {
    let sim = Sim::start(EVENTS).await;
    for (body, status) in [
        (json!({"body": ""}), 400),
        (json!({"body": "a\u{1}b"}), 400),
        (json!({"body": 5}), 422),
        (json!({"text": "x"}), 422),
        (json!({"body": "not json at all"}), 200),
    ] {
        let (got, answer) = post_json(&sim.control("/_simulator/queue/messages"), body.clone()).await;
        assert!(got == status || (status == 422 && got == 400), "{body}: {got} {answer}");
    }
}

/// Every message now visible, deleted, as parsed bodies (oldest first).
async fn take_events(client: &aws_sdk_sqs::Client, url: &str) -> Vec<Value> {
    let mut out = Vec::new();
    loop {
        let batch = receive_all(client, url).await;
        if batch.is_empty() {
            return out;
        }
        for m in &batch {
            client
                .delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
            out.push(body_json(m));
        }
    }
}

/// One root session opened by the exporter's own credentials with sts:AssumeRoot: its access
/// key id and an IAM client of it.
async fn assume_root(sim: &Sim, account: &str) -> (String, aws_sdk_iam::Client) {
    let root = common::assume_root(sim, account, 900).await.unwrap();
    (
        root.access_key_id().to_string(),
        aws_sdk_iam::Client::new(&sdk_config(sim, root).await),
    )
}

#[tokio::test]
async fn a_failed_console_sign_in_changes_nothing_and_queues_awss_failure_record() {
    let sim = Sim::start(EVENTS).await;
    let url = sim.running.queue_url().unwrap();
    let client = sqs(&sim).await;
    // 222222222222's root has no password: a success is refused, a failure is what AWS records.
    let (status, answer) = root_action(&sim, ACCOUNT, json!({"action": "ConsoleLogin"})).await;
    assert_eq!(status, 409, "{answer}");
    let (status, answer) = root_action(&sim, ACCOUNT, json!({"action": "ConsoleLogin", "outcome": "Failure"})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["outcome"], "Failure");
    assert_eq!(answer["queued"], true);
    let events = take_events(&client, &url).await;
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e["source"], "aws.signin");
    assert_eq!(e["detail-type"], "AWS Console Sign In via CloudTrail");
    let d = &e["detail"];
    assert_eq!(d["eventID"], answer["event_id"]);
    assert_eq!(
        d["userIdentity"],
        json!({"type": "Root", "principalId": ACCOUNT, "arn": "arn:aws:iam::222222222222:root", "accountId": ACCOUNT, "accessKeyId": ""})
    );
    assert_eq!(d["responseElements"], json!({"ConsoleLogin": "Failure"}));
    assert_eq!(d["errorMessage"], "Failed authentication");
    assert_eq!(d["additionalEventData"]["MFAUsed"], "No");
    assert_eq!(d["eventType"], "AwsConsoleSignIn");
    assert_eq!(d["recipientAccountId"], ACCOUNT);
    assert!(is_recent_rfc3339(&d["eventTime"]), "{d}");
    // Still no password, never used: the failure changed nothing.
    let (_, iam) = assume_root(&sim, ACCOUNT).await;
    let refused = iam.get_login_profile().send().await.unwrap_err();
    assert_eq!(refused.code(), Some("NoSuchEntity"), "{refused:?}");
    // 333333333333 has a password and MFA: a failure still says no MFA was used.
    let (status, answer) = root_action(
        &sim,
        "333333333333",
        json!({"action": "ConsoleLogin", "outcome": "Failure"}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let e = take_events(&client, &url).await.remove(0);
    assert_eq!(e["detail"]["additionalEventData"]["MFAUsed"], "No");
    let (_, iam) = assume_root(&sim, "333333333333").await;
    let user = iam.get_user().send().await.unwrap();
    assert_eq!(
        user.user().unwrap().password_last_used(),
        None,
        "a failed sign-in is no use of the password"
    );
    let (status, answer) = root_action(&sim, "333333333333", json!({"action": "ConsoleLogin"})).await;
    assert_eq!((status, &answer["outcome"]), (200, &json!("Success")), "{answer}");
    let user = iam.get_user().send().await.unwrap();
    assert!(user.user().unwrap().password_last_used().is_some(), "a success is");
    take_events(&client, &url).await;
    let (status, answer) = root_action(&sim, ACCOUNT, json!({"action": "ConsoleLogin", "outcome": "Maybe"})).await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("Failure"), "{answer}");
}

#[tokio::test]
async fn an_api_call_by_root_queues_its_cloudtrail_event_for_each_session() {
    let sim = Sim::start(EVENTS).await;
    let url = sim.running.queue_url().unwrap();
    let client = sqs(&sim).await;
    let call = |session: &str| json!({"action": "ApiCall", "event_source": "s3.amazonaws.com", "event_name": "PutBucketPolicy", "session": session});

    // From the console: a fresh session key, said in the answer.
    let (status, answer) = root_action(&sim, "333333333333", call("console")).await;
    assert_eq!(status, 200, "{answer}");
    let console_key = answer["access_key_id"].as_str().unwrap().to_string();
    assert!(console_key.starts_with("ASIA") && console_key.len() == 20, "{answer}");
    assert_eq!(answer["event_name"], "PutBucketPolicy");
    let e = take_events(&client, &url).await.remove(0);
    assert_eq!(e["source"], "aws.s3");
    assert_eq!(e["detail-type"], "AWS API Call via CloudTrail");
    assert_eq!(e["account"], "333333333333");
    assert!(is_recent_rfc3339(&e["time"]));
    let d = &e["detail"];
    assert_eq!(d["eventID"], answer["event_id"]);
    assert!(is_uuid(&d["eventID"]) && is_uuid(&d["requestID"]), "{d}");
    for (k, want) in [
        ("eventSource", json!("s3.amazonaws.com")),
        ("eventName", json!("PutBucketPolicy")),
        ("readOnly", json!(false)),
        ("eventType", json!("AwsApiCall")),
        ("managementEvent", json!(true)),
        ("eventCategory", json!("Management")),
        ("awsRegion", json!("us-east-1")),
        ("recipientAccountId", json!("333333333333")),
        ("sessionCredentialFromConsole", json!("true")),
    ] {
        assert_eq!(d[k], want, "{k}");
    }
    assert_eq!(d["userIdentity"]["type"], "Root");
    assert_eq!(d["userIdentity"]["accessKeyId"], console_key.as_str());
    assert_eq!(
        d["userIdentity"]["sessionContext"]["attributes"]["mfaAuthenticated"],
        "true"
    );
    assert!(d.get("invokedBy").is_none() && d["userIdentity"].get("invokedBy").is_none());

    // With root's access key: the key, and its last use is now, by s3.
    let (status, answer) = root_action(
        &sim,
        "333333333333",
        json!({"action": "ApiCall", "event_source": "s3.amazonaws.com", "event_name": "ListBuckets", "read_only": true, "session": "access_key"}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let key = answer["access_key_id"].as_str().unwrap().to_string();
    assert!(key.starts_with("AKIA"), "{answer}");
    let e = take_events(&client, &url).await.remove(0);
    let d = &e["detail"];
    assert_eq!(d["readOnly"], true);
    assert_eq!(d["userIdentity"]["accessKeyId"], key.as_str());
    assert!(d["userIdentity"].get("sessionContext").is_none(), "{d}");
    assert!(d.get("sessionCredentialFromConsole").is_none());
    let (_, iam) = assume_root(&sim, "333333333333").await;
    let used = iam.get_access_key_last_used().access_key_id(&key).send().await.unwrap();
    let used = used.access_key_last_used().unwrap();
    assert_eq!(used.service_name(), "s3");
    assert_eq!(used.region(), "us-east-1");
    let when = used.last_used_date().unwrap().secs();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((now - when).abs() < 60, "last used {when}, now {now}");
    // 222222222222's root has no key: 409.
    let (status, answer) = root_action(&sim, ACCOUNT, call("access_key")).await;
    assert_eq!(status, 409, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("no active access key"),
        "{answer}"
    );

    // In an AssumeRoot session an operator opened (the default): hints name the operator.
    let (status, answer) = root_action(&sim, ACCOUNT, call("assumed_root")).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["issued_to"],
        "arn:aws:sts::111111111111:assumed-role/Admin/operator"
    );
    let e = take_events(&client, &url).await.remove(0);
    let id = &e["detail"]["userIdentity"];
    assert_eq!(id["accessKeyId"], answer["access_key_id"]);
    assert_eq!(id["sessionContext"]["assumedRoot"], "true");
    assert_eq!(
        id["inScopeOf"],
        json!({"issuerAccountId": "111111111111", "credentialsIssuedTo": "arn:aws:sts::111111111111:assumed-role/Admin/operator"})
    );
    assert!(e["detail"].get("sessionCredentialFromConsole").is_none());

    // Credential changes in an AssumeRoot session default to the operator too.
    let (status, answer) = root_action(
        &sim,
        "333333333333",
        json!({"action": "DeleteLoginProfile", "session": "assumed_root"}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let e = take_events(&client, &url).await.remove(0);
    assert_eq!(
        e["detail"]["userIdentity"]["inScopeOf"]["credentialsIssuedTo"],
        "arn:aws:sts::111111111111:assumed-role/Admin/operator"
    );
}

#[tokio::test]
async fn issued_to_self_is_the_latest_assume_root_session_with_or_without_hints() {
    let sim = Sim::start(EVENTS).await;
    let url = sim.running.queue_url().unwrap();
    let client = sqs(&sim).await;
    let call = json!({"action": "ApiCall", "event_source": "iam.amazonaws.com", "event_name": "GetAccountSummary", "read_only": true, "session": "assumed_root", "issued_to": "self"});
    let (status, answer) = root_action(&sim, ACCOUNT, call.clone()).await;
    assert_eq!(status, 409, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains(ACCOUNT), "{answer}");
    assert_eq!(queue_counts(&sim).await["sent_total"], 0);

    let (first, _) = assume_root(&sim, ACCOUNT).await;
    let (session_key, _) = assume_root(&sim, ACCOUNT).await;
    assert_ne!(first, session_key);
    let sts = aws_sdk_sts::Client::new(&sdk_config(&sim, own_credentials()).await);
    let me = sts.get_caller_identity().send().await.unwrap();
    let me = me.arn().unwrap().to_string();

    let (status, answer) = root_action(&sim, ACCOUNT, call.clone()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["access_key_id"], session_key.as_str());
    assert_eq!(answer["issued_to"], me.as_str());
    let e = take_events(&client, &url).await.remove(0);
    let d = &e["detail"];
    assert_eq!(e["source"], "aws.iam");
    assert_eq!(d["readOnly"], true);
    assert_eq!(d["userIdentity"]["accessKeyId"], session_key.as_str());
    assert_eq!(d["userIdentity"]["sessionContext"]["assumedRoot"], "true");
    assert_eq!(
        d["userIdentity"]["inScopeOf"],
        json!({"issuerAccountId": "111111111111", "credentialsIssuedTo": me})
    );

    let mut bare = call.clone();
    bare["hints"] = false.into();
    let (status, answer) = root_action(&sim, ACCOUNT, bare).await;
    assert_eq!(status, 200, "{answer}");
    let e = take_events(&client, &url).await.remove(0);
    let id = &e["detail"]["userIdentity"];
    assert_eq!(id["accessKeyId"], session_key.as_str());
    assert!(id["sessionContext"].get("assumedRoot").is_none(), "{id}");
    assert!(id.get("inScopeOf").is_none(), "{id}");

    // A credential change of that session carries its key too.
    let (status, answer) = root_action(
        &sim,
        "333333333333",
        json!({"action": "DeleteLoginProfile", "session": "assumed_root", "issued_to": "self"}),
    )
    .await;
    assert_eq!(status, 409, "no session for 333333333333 yet: {answer}");
    assert_eq!(queue_counts(&sim).await["sent_total"], 2);
}

#[tokio::test]
async fn api_call_inputs_are_checked_and_hostile_issuers_round_trip() {
    let sim = Sim::start(EVENTS).await;
    let url = sim.running.queue_url().unwrap();
    let client = sqs(&sim).await;
    let base = json!({"action": "ApiCall", "event_source": "s3.amazonaws.com", "event_name": "PutBucketPolicy"});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    for (body, field, allowed) in [
        (
            with("event_source", json!("s3.example.com")),
            "event_source",
            "NAME.amazonaws.com",
        ),
        (
            with("event_source", json!("S3.amazonaws.com")),
            "event_source",
            "lowercase",
        ),
        (
            with("event_name", json!("Put Bucket")),
            "event_name",
            "letters and digits",
        ),
        (with("event_name", json!("")), "event_name", "1 to 128"),
        (json!({"action": "ApiCall", "event_name": "X"}), "event_source", "e.g."),
        (
            json!({"action": "ApiCall", "event_source": "s3.amazonaws.com", "event_name": "X", "session": "assumed_root", "issued_to": "Admin"}),
            "issued_to",
            "\"self\" or an ARN",
        ),
        (
            json!({"action": "ApiCall", "event_source": "s3.amazonaws.com", "event_name": "X", "issued_to": "self"}),
            "issued_to",
            "assumed_root",
        ),
        (
            json!({"action": "ConsoleLogin", "session": "access_key"}),
            "access_key",
            "ApiCall",
        ),
        (with("read_only", json!("yes")), "read_only", "expected"),
    ] {
        let (status, answer) = root_action(&sim, ACCOUNT, body.clone()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        let m = answer["error"].as_str().unwrap();
        assert!(m.contains(field) && m.contains(allowed), "{body}: {m}");
    }
    assert_eq!(
        queue_counts(&sim).await["sent_total"],
        0,
        "nothing queued for a refused call"
    );

    for hostile in [
        "arn:aws:sts::999999999999:assumed-role/Admin/\"quoted\"",
        "arn:aws:sts::999999999999:assumed-role/Admin/back\\slash",
        "arn:aws:sts::999999999999:assumed-role/Admin/new\nline",
        "arn:aws:sts::999999999999:assumed-role/Ädmin/ünïcødé-🔑",
    ] {
        let (status, answer) = root_action(
            &sim,
            ACCOUNT,
            json!({"action": "ApiCall", "event_source": "s3.amazonaws.com", "event_name": "X", "session": "assumed_root", "issued_to": hostile}),
        )
        .await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["issued_to"], hostile);
        let e = take_events(&client, &url).await.remove(0);
        assert_eq!(
            e["detail"]["userIdentity"]["inScopeOf"],
            json!({"issuerAccountId": "999999999999", "credentialsIssuedTo": hostile})
        );
    }
}
