//! The simulator answers as AWS does, seen through the AWS SDK for Rust and raw HTTP.

mod common;

use std::time::Duration;

use aws_credential_types::Credentials;
use aws_org_simulator::Scenario;
use aws_sdk_iam::error::ProvideErrorMetadata;
use aws_sdk_sts::types::PolicyDescriptorType;
use common::{AUDIT, DEMO, Sim, assume_root, own_credentials, put_json, sdk_config};
use serde_json::json;

async fn root_iam(sim: &Sim, creds: Credentials) -> aws_sdk_iam::Client {
    aws_sdk_iam::Client::new(&sdk_config(sim, creds).await)
}

#[tokio::test]
async fn root_sessions_are_distinct_bound_to_their_account_and_to_the_task_policy() {
    let sim = Sim::start(DEMO).await;
    let a = assume_root(&sim, "222222222222", 120).await.unwrap();
    let b = assume_root(&sim, "333333333333", 120).await.unwrap();
    assert_ne!(a.access_key_id(), b.access_key_id());
    assert_ne!(a.session_token(), b.session_token());
    let iam_b = root_iam(&sim, b.clone()).await;
    let summary = iam_b.get_account_summary().send().await.unwrap();
    let map = summary.summary_map().unwrap();
    assert_eq!(map[&aws_sdk_iam::types::SummaryKeyType::AccountAccessKeysPresent], 1);
    let sts_b = aws_sdk_sts::Client::new(&sdk_config(&sim, b).await);
    let me = sts_b.get_caller_identity().send().await.unwrap();
    assert_eq!(me.arn(), Some("arn:aws:iam::333333333333:root"));
    // Outside the task policy.
    let err = iam_b.list_users().send().await.unwrap_err();
    assert_eq!(err.code(), Some("AccessDenied"));
    // Another user than root.
    let err = iam_b.list_access_keys().user_name("alice").send().await.unwrap_err();
    assert_eq!(err.code(), Some("AccessDenied"));
    // Organizations refuses a root session.
    let org = aws_sdk_organizations::Client::new(&sdk_config(&sim, a).await);
    let err = org.list_accounts().send().await.unwrap_err();
    assert_eq!(err.code(), Some("AccessDeniedException"));
}

#[tokio::test]
async fn assume_root_refuses_what_aws_refuses() {
    let sim = Sim::start(DEMO).await;
    for target in ["111111111111", "000000000001", "210987654321"] {
        assert_eq!(
            assume_root(&sim, target, 60).await.unwrap_err(),
            "AccessDenied",
            "{target}"
        );
    }
    assert_eq!(
        assume_root(&sim, "222222222222", 901).await.unwrap_err(),
        "ValidationError"
    );
    assert_eq!(
        assume_root(&sim, "not-an-account", 60).await.unwrap_err(),
        "ValidationError"
    );
    put_json(
        &sim.control("/_simulator/features"),
        json!({"enabled": ["RootSessions"]}),
    )
    .await;
    assert_eq!(assume_root(&sim, "222222222222", 60).await.unwrap_err(), "AccessDenied");
    // Root credentials cannot call AssumeRoot.
    put_json(
        &sim.control("/_simulator/features"),
        json!({"enabled": ["RootCredentialsManagement"]}),
    )
    .await;
    let root = assume_root(&sim, "222222222222", 60).await.unwrap();
    let err = common::assume_root_as(&sim, root, "333333333333", None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("AccessDenied"));
}

#[tokio::test]
async fn temporary_credentials_need_their_token_and_expire() {
    let sim = Sim::start(DEMO).await;
    let c = assume_root(&sim, "222222222222", 1).await.unwrap();
    let without_token = Credentials::new(c.access_key_id(), c.secret_access_key(), None, None, "no token");
    let err = root_iam(&sim, without_token)
        .await
        .get_account_summary()
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("InvalidClientTokenId"));
    let iam = root_iam(&sim, c).await;
    iam.get_account_summary().send().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let err = iam.get_account_summary().send().await.unwrap_err();
    assert_eq!(err.code(), Some("ExpiredToken"));
}

#[tokio::test]
async fn scp_blocked_account_opens_a_session_whose_iam_calls_are_denied() {
    let sim = Sim::start(DEMO).await;
    let c = assume_root(&sim, "135791357913", 60).await.unwrap();
    let err = root_iam(&sim, c).await.get_account_summary().send().await.unwrap_err();
    assert_eq!(err.code(), Some("AccessDenied"));
    assert!(err.message().unwrap().contains("service control policy"));
}

#[tokio::test]
async fn list_accounts_validates_max_results_and_tokens() {
    let sim = Sim::start(DEMO).await;
    let org = aws_sdk_organizations::Client::new(&sdk_config(&sim, own_credentials()).await);
    let err = org.list_accounts().max_results(21).send().await.unwrap_err();
    assert_eq!(err.code(), Some("InvalidInputException"));
    let err = org.list_accounts().next_token("forged").send().await.unwrap_err();
    assert_eq!(err.code(), Some("InvalidInputException"));
    let mut pages = 0;
    let mut total = 0;
    let mut token = None;
    loop {
        let page = org
            .list_accounts()
            .max_results(4)
            .set_next_token(token)
            .send()
            .await
            .unwrap();
        pages += 1;
        assert!(page.accounts().len() <= 4);
        total += page.accounts().len();
        token = page.next_token().map(String::from);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(total, 13);
    assert!(pages >= 4);
    let described = org.describe_organization().send().await.unwrap();
    assert_eq!(
        described.organization().unwrap().master_account_id(),
        Some("111111111111")
    );
}

#[tokio::test]
async fn caller_keys_can_be_restricted_and_requests_must_be_signed_for_the_right_service() {
    let restricted = DEMO.replace(
        "management_account_name = \"management\"",
        "caller_access_key_ids = [\"AKIDALLOWED000000001\"]",
    );
    assert_ne!(restricted, DEMO);
    let sim = Sim::start(&restricted).await;
    let org = aws_sdk_organizations::Client::new(&sdk_config(&sim, own_credentials()).await);
    let err = org.list_accounts().send().await.unwrap_err();
    assert_eq!(err.code(), Some("UnrecognizedClientException"), "{err:?}");
    let allowed = Credentials::new("AKIDALLOWED000000001", "s", None, None, "test");
    let org = aws_sdk_organizations::Client::new(&sdk_config(&sim, allowed).await);
    org.list_accounts().send().await.unwrap();

    let client = reqwest::Client::new();
    let signed_for = |service: &str| {
        format!(
            "AWS4-HMAC-SHA256 Credential=AKIDALLOWED000000001/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host;x-amz-date, Signature={}",
            "ab".repeat(32)
        )
    };
    let r = client
        .post(sim.running.endpoint_url())
        .header("authorization", signed_for("iam"))
        .header("x-amz-target", "AWSOrganizationsV20161128.ListAccounts")
        .header("content-type", "application/x-amz-json-1.1")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["__type"], "SignatureDoesNotMatch");
    let r = client
        .post(sim.running.endpoint_url())
        .header("authorization", signed_for("sts"))
        .form(&[("Action", "Frobnicate"), ("Version", "2011-06-15")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("<Code>InvalidAction</Code>"));
}

#[tokio::test]
async fn control_api_rejects_unknown_accounts_and_bad_bodies() {
    let sim = Sim::start(DEMO).await;
    let r = put_json(
        &sim.control("/_simulator/accounts/000000000000/root"),
        json!({"mfa": []}),
    )
    .await;
    assert_eq!(r.status(), 404);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("000000000000"));
    let r = put_json(
        &sim.control("/_simulator/accounts/222222222222/root"),
        json!({"mfa": ["phone"]}),
    )
    .await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("phone"));
    let r = put_json(
        &sim.control("/_simulator/accounts/222222222222/assume_root"),
        json!({"mode": "maybe"}),
    )
    .await;
    assert_eq!(r.status(), 400);
    let r = put_json(&sim.control("/_simulator/features"), json!({"enabled": ["Nope"]})).await;
    assert_eq!(r.status(), 400);
    let calls: serde_json::Value = reqwest::get(sim.control("/_simulator/calls"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(calls.is_object());
}

#[tokio::test]
async fn calls_are_counted_per_operation_in_process_and_over_the_control_api() {
    let sim = Sim::start(DEMO).await;
    assert_eq!(sim.running.calls("AssumeRoot"), 0);
    assert!(sim.running.all_calls().is_empty());
    assume_root(&sim, "222222222222", 60).await.unwrap();
    // Refused calls are answered, and counted, too.
    assume_root(&sim, "111111111111", 60).await.unwrap_err();
    let org = aws_sdk_organizations::Client::new(&sdk_config(&sim, own_credentials()).await);
    org.describe_organization().send().await.unwrap();
    assert_eq!(sim.running.calls("AssumeRoot"), 2);
    assert_eq!(sim.running.calls("DescribeOrganization"), 1);
    assert_eq!(sim.running.calls("ListAccounts"), 0);
    let all = sim.running.all_calls();
    assert_eq!(all.len(), 2, "{all:?}");
    let over_http: std::collections::BTreeMap<String, u64> = reqwest::get(sim.control("/_simulator/calls"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(over_http, all);
}

#[tokio::test]
async fn foreign_session_credentials_act_as_the_management_account() {
    // E.g. an SSO session of the person running the tests: not issued here, so the caller is the
    // management account, token and all.
    let sim = Sim::start(DEMO).await;
    let sso = Credentials::new(
        "ASIAFOREIGNSESSION01",
        "secret",
        Some("foreign-token".into()),
        None,
        "sso",
    );
    let org = aws_sdk_organizations::Client::new(&sdk_config(&sim, sso).await);
    let described = org.describe_organization().send().await.unwrap();
    assert_eq!(described.organization().unwrap().id(), Some("o-exampleorg1"));
}

#[tokio::test]
async fn scenario_fixtures_are_the_demo_with_other_features_and_refuse_assume_root() {
    let fixtures = [
        (
            include_str!("../../tests/fixtures/scenarios/no-root-access.toml"),
            r#"features = ["RootSessions"]"#,
        ),
        (
            include_str!("../../tests/fixtures/scenarios/no-features.toml"),
            "features = []",
        ),
    ];
    for (text, features) in fixtures {
        // A comment at the top, then the demo with its features line changed.
        let start = text.find("\n\n").expect("a comment, then a blank line") + 2;
        assert!(
            text[..start].lines().all(|l| l.starts_with('#') || l.is_empty()),
            "{text}"
        );
        let expected = DEMO.replace(r#"features = ["RootCredentialsManagement", "RootSessions"]"#, features);
        assert_ne!(expected, DEMO);
        assert_eq!(&text[start..], expected, "{features}");
        let sim = Sim::start(text).await;
        assert_eq!(
            assume_root(&sim, "222222222222", 60).await.unwrap_err(),
            "AccessDenied",
            "{features}"
        );
    }
}

#[test]
fn appended_scenario_fixtures_are_the_demo_plus_one_table() {
    let fixtures = [
        (
            include_str!("../../tests/fixtures/scenarios/slow-discovery.toml"),
            "\n[latency]\noperations = { DescribeOrganization = 1500 }\n",
        ),
        (
            include_str!("../../tests/fixtures/scenarios/paged-150.toml"),
            "\n[generate]\naccounts = 137\nseed = 7\naccess_keys = 0.1\npassword = 0.5\nmfa = 0.5\nsigning_certificates = 0.05\n",
        ),
    ];
    for (text, tail) in fixtures {
        let start = text.find("\n\n").expect("a comment, then a blank line") + 2;
        assert!(
            text[..start].lines().all(|l| l.starts_with('#') || l.is_empty()),
            "{text}"
        );
        assert_eq!(&text[start..], format!("{DEMO}{tail}"), "{tail}");
        Scenario::parse(text, "fixture").expect("the fixture is a valid scenario");
    }
}

// --- Trust: state fields, non-AWS answers, expiring sessions, the control API's validation ---

const STATE_FIELDS: &str = include_str!("scenarios/state-fields.toml");

/// An `Authorization` header the simulator accepts for `service`.
fn signed_for(service: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential=AKIDTESTEXPORTER0001/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host;x-amz-date, Signature={}",
        "ab".repeat(32)
    )
}

/// One served operation called over raw HTTP as the management account, in its protocol.
async fn raw_call(sim: &Sim, operation: &str) -> reqwest::Response {
    let client = reqwest::Client::new();
    let url = sim.running.endpoint_url();
    let (service, version) = match operation {
        "DescribeOrganization"
        | "ListAccounts"
        | "ListRoots"
        | "ListOrganizationalUnitsForParent"
        | "ListAccountsForParent"
        | "ListTagsForResource" => {
            return client
                .post(url)
                .header("authorization", signed_for("organizations"))
                .header("x-amz-target", format!("AWSOrganizationsV20161128.{operation}"))
                .header("content-type", "application/x-amz-json-1.1")
                .body("{}")
                .send()
                .await
                .unwrap();
        }
        "GetQueueUrl" | "ReceiveMessage" | "DeleteMessage" | "DeleteMessageBatch" | "ChangeMessageVisibility" => {
            return client
                .post(url)
                .header("authorization", signed_for("sqs"))
                .header("x-amz-target", format!("AmazonSQS.{operation}"))
                .header("content-type", "application/x-amz-json-1.0")
                .body("{}")
                .send()
                .await
                .unwrap();
        }
        "AssumeRoot" | "GetCallerIdentity" | "AssumeRole" => ("sts", "2011-06-15"),
        _ => ("iam", "2010-05-08"),
    };
    client
        .post(url)
        .header("authorization", signed_for(service))
        .form(&[
            ("Action", operation),
            ("Version", version),
            ("TargetPrincipal", "222222222222"),
            ("TaskPolicyArn.arn", AUDIT),
            ("RoleArn", "arn:aws:iam::222222222222:role/RootAuditRole"),
            ("RoleSessionName", "raw-call"),
        ])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn state_fields_choose_which_of_state_and_status_list_accounts_carries() {
    let sim = Sim::start(STATE_FIELDS).await;
    // Raw JSON: absent means absent, not null.
    let r = raw_call(&sim, "ListAccounts").await;
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    let fields = |id: &str| {
        let a = body["Accounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["Id"] == id)
            .unwrap_or_else(|| panic!("{id} listed"));
        (a.get("State").cloned(), a.get("Status").cloned())
    };
    let s = |v: &str| Some(json!(v));
    assert_eq!(
        fields("111111111111"),
        (s("ACTIVE"), s("ACTIVE")),
        "management: default"
    );
    assert_eq!(fields("222222222222"), (s("ACTIVE"), s("ACTIVE")));
    assert_eq!(fields("333333333333"), (s("ACTIVE"), None));
    assert_eq!(fields("444444444444"), (None, s("ACTIVE")));
    assert_eq!(fields("555555555555"), (None, None));
    assert_eq!(fields("666666666666"), (s("SUSPENDED"), None));

    // Through the SDK: the account without either field is listed all the same.
    let org = aws_sdk_organizations::Client::new(&sdk_config(&sim, own_credentials()).await);
    let listed = org.list_accounts().send().await.unwrap();
    let none = listed
        .accounts()
        .iter()
        .find(|a| a.id() == Some("555555555555"))
        .unwrap();
    assert_eq!(
        (none.state(), none.status(), none.name()),
        (None, None, Some("no-state"))
    );
    let status_only = listed
        .accounts()
        .iter()
        .find(|a| a.id() == Some("444444444444"))
        .unwrap();
    assert_eq!(status_only.state(), None);
    assert_eq!(
        status_only.status(),
        Some(&aws_sdk_organizations::types::AccountStatus::Active)
    );
    // ...and is an ordinary ACTIVE account: AssumeRoot reaches it, its root user reads as set.
    let creds = assume_root(&sim, "555555555555", 60).await.unwrap();
    let summary = root_iam(&sim, creds).await.get_account_summary().send().await.unwrap();
    let map = summary.summary_map().unwrap();
    use aws_sdk_iam::types::SummaryKeyType as K;
    assert_eq!(map[&K::AccountAccessKeysPresent], 1);
    assert_eq!(map[&K::AccountSigningCertificatesPresent], 1);
    assert_eq!(map[&K::AccountMfaEnabled], 0);
    // A suspended account stays unreachable whatever its listing carries.
    assert_eq!(assume_root(&sim, "666666666666", 60).await.unwrap_err(), "AccessDenied");
}

fn assert_not_aws(status: u16, content_type: Option<&str>, headers: &[&str], body: &str, what: &str) {
    assert_eq!(status, 500, "{what}");
    assert_eq!(content_type, Some("text/html"), "{what}");
    assert!(
        body.starts_with("<html>") && body.contains("500 Internal Server Error"),
        "{what}: {body}"
    );
    for aws in [
        "__type",
        "<Code>",
        "Exception",
        "Throttling",
        "ServiceUnavailable",
        "RequestId",
        "xmlns",
    ] {
        assert!(!body.contains(aws), "{what}: {aws} in {body}");
    }
    for h in headers {
        assert!(!h.starts_with("x-amz"), "{what}: AWS header {h}");
    }
}

#[tokio::test]
async fn not_aws_fault_answers_every_served_operation_with_an_html_500() {
    let sim = Sim::start(DEMO).await;
    let r = put_json(
        &sim.control("/_simulator/faults"),
        json!([{ "operation": "*", "kind": "not_aws" }]),
    )
    .await;
    assert_eq!(r.status(), 200);
    // Every operation the simulator serves reaches the fault, in either protocol.
    let served = aws_org_simulator::served_operations();
    assert_eq!(served.len(), 25);
    for op in &served {
        let r = raw_call(&sim, op).await;
        let status = r.status().as_u16();
        let content_type = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_string());
        let headers: Vec<String> = r.headers().keys().map(|k| k.as_str().to_string()).collect();
        let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
        let body = r.text().await.unwrap();
        assert_not_aws(status, content_type.as_deref(), &headers, &body, op);
    }
    assert_eq!(sim.running.calls("GetUser"), 1);

    // The SDK sees an error without an AWS error code, and the raw 500 HTML behind it.
    let org = aws_sdk_organizations::Client::new(&sdk_config(&sim, own_credentials()).await);
    let err = org.list_accounts().send().await.unwrap_err();
    assert_eq!(err.code(), None, "{err:?}");
    let raw = err.raw_response().expect("a response was received");
    assert_eq!(raw.status().as_u16(), 500);
    assert_eq!(raw.headers().get("content-type"), Some("text/html"));
    let sts = aws_sdk_sts::Client::new(&sdk_config(&sim, own_credentials()).await);
    let err = sts.get_caller_identity().send().await.unwrap_err();
    assert_eq!(err.code(), None, "{err:?}");
    assert_eq!(err.raw_response().unwrap().status().as_u16(), 500);

    // Scoped to one operation and account, from a scenario file: only the root session's
    // GetAccountSummary into that account answers HTML.
    let scoped = format!(
        "{DEMO}\n[[faults]]\noperation = \"GetAccountSummary\"\nkind = \"not_aws\"\naccount_id = \"333333333333\"\n"
    );
    let sim = Sim::start(&scoped).await;
    let ok = assume_root(&sim, "222222222222", 60).await.unwrap();
    root_iam(&sim, ok).await.get_account_summary().send().await.unwrap();
    let hit = assume_root(&sim, "333333333333", 60).await.unwrap();
    let iam = root_iam(&sim, hit).await;
    let err = iam.get_account_summary().send().await.unwrap_err();
    assert_eq!(err.code(), None, "{err:?}");
    assert_eq!(err.raw_response().unwrap().status().as_u16(), 500);
    iam.list_mfa_devices().send().await.unwrap();
}

#[tokio::test]
async fn a_call_that_outlasts_its_root_session_gets_expired_token() {
    // A 1-second session, and GetAccountSummary answering after 1.5 s: the call is refused with
    // ExpiredToken as if it had reached AWS that late, and so is every later call.
    let slow = format!(
        "{DEMO}\n[faults.GetAccountSummary]\nkind = \"slow\"\ndelay_ms = 1500\naccount_id = \"222222222222\"\n"
    );
    let sim = Sim::start(&slow).await;
    let short = assume_root(&sim, "222222222222", 1).await.unwrap();
    let iam = root_iam(&sim, short).await;
    let started = std::time::Instant::now();
    let err = iam.get_account_summary().send().await.unwrap_err();
    assert_eq!(err.code(), Some("ExpiredToken"), "{err:?}");
    assert_eq!(err.raw_response().unwrap().status().as_u16(), 403);
    assert!(started.elapsed() >= Duration::from_millis(1500));
    let err = iam.list_access_keys().send().await.unwrap_err();
    assert_eq!(err.code(), Some("ExpiredToken"), "{err:?}");
    // A session long enough outlives the same delay.
    let long = assume_root(&sim, "222222222222", 60).await.unwrap();
    root_iam(&sim, long).await.get_account_summary().send().await.unwrap();
    assert_eq!(sim.running.calls("GetAccountSummary"), 2);
}

/// The scenario file's error for `faults` holding `fault`, without its `scenario ORIGIN: ` prefix.
fn file_error(faults: serde_json::Value) -> String {
    let table: toml::Value = toml::Value::try_from(json!({ "faults": faults })).unwrap();
    let text = format!("{DEMO}\n{}", toml::to_string(&table).unwrap());
    let err = Scenario::parse(&text, "t").unwrap_err().to_string();
    err.strip_prefix("scenario t: ").unwrap_or(&err).to_string()
}

#[tokio::test]
async fn control_api_refuses_faults_the_scenario_file_refuses_with_the_same_message() {
    let sim = Sim::start(DEMO).await;
    let url = sim.control("/_simulator/faults");
    // A fault that stays in place through every refused PUT below.
    let r = put_json(&url, json!([{ "operation": "ListAccounts", "kind": "throttling" }])).await;
    assert_eq!(r.status(), 200);
    for (faults, names) in [
        (
            json!([{ "kind": "throttling", "kidn": 1 }]),
            &["faults[0]", "kidn", "`kind`"][..],
        ),
        (json!([{ "kind": "explode" }]), &["explode", "not_aws"]),
        (
            json!([{ "operation": "AssumeRoleWithSAML", "kind": "throttling" }]),
            &["\"AssumeRoleWithSAML\"", "\"*\", DescribeOrganization"],
        ),
        (
            json!({ "AssumeRoleWithSAML": { "kind": "throttling" } }),
            &["faults.AssumeRoleWithSAML", "AssumeRoot"],
        ),
        (
            json!({ "AssumeRoot": { "kind": "throttling", "operation": "ListAccounts" } }),
            &["faults.AssumeRoot.operation"],
        ),
        (
            json!([{ "kind": "throttling", "rate": 1.5 }]),
            &["faults[0].rate = 1.5", "0.0 to 1.0"],
        ),
        (
            json!([{ "kind": "throttling", "rate": -1 }]),
            &["faults[0].rate = -1", "0.0 to 1.0"],
        ),
        (json!([{ "kind": "throttling", "count": 0 }]), &["faults[0].count = 0"]),
        (json!([{ "kind": "slow" }]), &["delay_ms"]),
        (
            json!([{ "kind": "server_error", "delay_ms": 10 }]),
            &["faults[0].delay_ms = 10", "slow"],
        ),
        (
            json!([{ "kind": "throttling", "account_id": "22" }]),
            &["faults[0].account_id \"22\"", "12 digits"],
        ),
        (
            json!([{ "kind": "throttling", "account_id": 222222222222_u64 }]),
            &["faults[0].account_id = 222222222222 is not a string"],
        ),
        (
            json!([{ "kind": "slow", "delay_ms": -5 }]),
            &["faults[0].delay_ms = -5 is not a whole number"],
        ),
        (
            json!([{ "kind": "throttling", "account_id": "000000000000" }]),
            &["\"000000000000\"", "not an account of the organization"],
        ),
        (
            json!([{ "kind": "throttling" }, { "kind": "slow", "delay_ms": 5, "operation": "Nope" }]),
            &["faults[1].operation", "Nope"],
        ),
    ] {
        let r = put_json(&url, faults.clone()).await;
        assert_eq!(r.status(), 400, "{faults}");
        let body: serde_json::Value = r.json().await.unwrap();
        let message = body["error"].as_str().unwrap();
        for n in names {
            assert!(message.contains(n), "{n:?} not in {message}");
        }
        assert_eq!(message, file_error(faults.clone()), "{faults}");
    }
    let org = aws_sdk_organizations::Client::new(&sdk_config(&sim, own_credentials()).await);
    let err = org.list_accounts().send().await.unwrap_err();
    assert_eq!(err.code(), Some("TooManyRequestsException"), "the first faults stay");

    // Not a list nor an object keyed by operation; not JSON at all.
    let r = put_json(&url, json!("throttling")).await;
    assert_eq!(r.status(), 400);
    let r = reqwest::Client::new()
        .put(&url)
        .header("content-type", "application/json")
        .body("[{")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.json::<serde_json::Value>().await.unwrap()["error"].is_string());

    // What the file accepts: the table form, nulls as absent, a whole number as a rate, a
    // generated or listed account, "*"; replacing the faults lifts the throttling.
    let r = put_json(
        &url,
        json!({ "GetCallerIdentity": { "kind": "server_error", "rate": 1, "count": null, "account_id": "111111111111" } }),
    )
    .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    org.list_accounts().send().await.unwrap();
    let r = put_json(
        &url,
        json!([{ "operation": "*", "kind": "slow", "delay_ms": 1, "account_id": null }]),
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = put_json(&url, json!([])).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn control_api_refuses_bad_account_ids_features_and_root_keys_like_the_file() {
    let sim = Sim::start(DEMO).await;
    for what in ["root", "assume_root"] {
        let r = put_json(&sim.control(&format!("/_simulator/accounts/2222/{what}")), json!({})).await;
        assert_eq!(r.status(), 400, "{what}");
        let body: serde_json::Value = r.json().await.unwrap();
        let message = body["error"].as_str().unwrap();
        assert!(
            message.contains("\"2222\" is not an account id (exactly 12 digits)"),
            "{message}"
        );
    }
    let r = put_json(
        &sim.control("/_simulator/accounts/222222222222/root"),
        json!({"mfa": [], "pasword": true}),
    )
    .await;
    assert_eq!(r.status(), 400);
    let message = r.json::<serde_json::Value>().await.unwrap()["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("pasword") && message.contains("`password`"),
        "{message}"
    );
    let r = put_json(
        &sim.control("/_simulator/accounts/222222222222/assume_root"),
        json!({"mode": "ok", "extra": 1}),
    )
    .await;
    assert_eq!(r.status(), 400);
    let r = put_json(&sim.control("/_simulator/features"), json!({"enabled": ["Nope"]})).await;
    assert_eq!(r.status(), 400);
    let message = r.json::<serde_json::Value>().await.unwrap()["error"]
        .as_str()
        .unwrap()
        .to_string();
    let file = Scenario::parse(
        &DEMO.replace(
            r#"features = ["RootCredentialsManagement", "RootSessions"]"#,
            r#"features = ["Nope"]"#,
        ),
        "t",
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        message,
        "enabled: unknown feature \"Nope\"; allowed: RootCredentialsManagement, RootSessions"
    );
    assert!(
        file.ends_with(
            "organization.features: unknown feature \"Nope\"; allowed: RootCredentialsManagement, RootSessions"
        ),
        "{file}"
    );
}

// --- Rate limits: token buckets answered with each protocol's throttling error ---

/// The demo with these `[rate_limits]` lines (and any other tables after them).
fn demo_with_rate_limits(limits: &str) -> String {
    format!("{DEMO}\n[rate_limits]\n{limits}\n")
}

async fn throttled_over_http(sim: &Sim) -> std::collections::BTreeMap<String, u64> {
    reqwest::get(sim.control("/_simulator/calls/throttled"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// An SDK configuration whose standard retries (2 attempts, almost no backoff) retry what the
/// SDK classifies as throttling or transient: a 400 is retried only for such a code.
async fn retrying_sdk_config(sim: &Sim) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(sim.running.endpoint_url())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(own_credentials())
        .retry_config(
            aws_config::retry::RetryConfig::standard()
                .with_max_attempts(2)
                .with_initial_backoff(Duration::from_millis(1))
                .with_max_backoff(Duration::from_millis(5)),
        )
        .load()
        .await
}

#[tokio::test]
async fn a_rate_limit_throttles_sts_with_throttling_after_its_burst() {
    // One token every 20 seconds: refills cannot make the test pass by luck.
    let sim = Sim::start(&demo_with_rate_limits("AssumeRoot = { rate = 0.05, burst = 3 }")).await;
    for target in ["222222222222", "333333333333", "444444444444"] {
        assume_root(&sim, target, 60).await.unwrap();
    }
    let err = common::assume_root_as(&sim, own_credentials(), "555555555555", None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("Throttling"), "{err:?}");
    assert_eq!(err.message(), Some("Rate exceeded"));
    assert_eq!(err.raw_response().unwrap().status().as_u16(), 400);
    // Unlimited operations are not affected; the limit is global (any target, any caller).
    let sts = aws_sdk_sts::Client::new(&sdk_config(&sim, own_credentials()).await);
    sts.get_caller_identity().send().await.unwrap();
    assert_eq!(sim.running.calls("AssumeRoot"), 4);
    assert_eq!(sim.running.throttled("AssumeRoot"), 1);
    assert_eq!(sim.running.throttled("GetCallerIdentity"), 0);

    // The wire: AWS's Query-protocol error document.
    let r = raw_call(&sim, "AssumeRoot").await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["content-type"], "text/xml");
    let request_id = r.headers()["x-amzn-requestid"].to_str().unwrap().to_string();
    let body = r.text().await.unwrap();
    for part in [
        "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">",
        "<Type>Sender</Type>",
        "<Code>Throttling</Code>",
        "<Message>Rate exceeded</Message>",
        &format!("<RequestId>{request_id}</RequestId>"),
    ] {
        assert!(body.contains(part), "{part} not in {body}");
    }

    // The SDK classifies it as throttling: its standard retries retry this 400.
    let retrying = aws_sdk_sts::Client::new(&retrying_sdk_config(&sim).await);
    let err = retrying
        .assume_root()
        .target_principal("555555555555")
        .task_policy_arn(PolicyDescriptorType::builder().arn(AUDIT).build())
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("Throttling"));
    assert_eq!(sim.running.calls("AssumeRoot"), 7, "one call, two attempts");
    assert_eq!(sim.running.throttled("AssumeRoot"), 4);
    assert_eq!(throttled_over_http(&sim).await, sim.running.all_throttled());
}

#[tokio::test]
async fn an_account_scoped_rate_limit_keeps_a_bucket_per_calling_account() {
    let sim = Sim::start(&demo_with_rate_limits(
        "GetAccountSummary = { rate = 0.05, burst = 2, scope = \"account\" }",
    ))
    .await;
    for target in ["222222222222", "333333333333"] {
        let iam = root_iam(&sim, assume_root(&sim, target, 60).await.unwrap()).await;
        iam.get_account_summary().send().await.unwrap();
        iam.get_account_summary().send().await.unwrap();
        let err = iam.get_account_summary().send().await.unwrap_err();
        assert_eq!(err.code(), Some("Throttling"), "{target}: {err:?}");
        assert_eq!(err.raw_response().unwrap().status().as_u16(), 400);
        // Another operation in the same session is not limited.
        iam.list_access_keys().send().await.unwrap();
    }
    // A second root session into 222222222222 shares its account's bucket.
    let again = root_iam(&sim, assume_root(&sim, "222222222222", 60).await.unwrap()).await;
    let err = again.get_account_summary().send().await.unwrap_err();
    assert_eq!(err.code(), Some("Throttling"));
    // The caller's own credentials call in the caller (management) account: its own bucket.
    let own = aws_sdk_iam::Client::new(&sdk_config(&sim, own_credentials()).await);
    own.get_account_summary().send().await.unwrap();
    assert_eq!(sim.running.calls("GetAccountSummary"), 8);
    assert_eq!(sim.running.throttled("GetAccountSummary"), 3);
}

#[tokio::test]
async fn a_rate_limit_throttles_organizations_with_too_many_requests() {
    let sim = Sim::start(&demo_with_rate_limits("ListAccounts = { rate = 0.05, burst = 2 }")).await;
    let org = aws_sdk_organizations::Client::new(&sdk_config(&sim, own_credentials()).await);
    org.list_accounts().send().await.unwrap();
    org.list_accounts().send().await.unwrap();
    let err = org.list_accounts().send().await.unwrap_err();
    assert_eq!(err.code(), Some("TooManyRequestsException"), "{err:?}");
    let raw = err.raw_response().unwrap();
    assert_eq!(raw.status().as_u16(), 400);
    assert_eq!(raw.headers().get("content-type"), Some("application/x-amz-json-1.1"));
    assert!(err.into_service_error().is_too_many_requests_exception());
    org.describe_organization().send().await.unwrap();

    let r = raw_call(&sim, "ListAccounts").await;
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["__type"], "TooManyRequestsException");
    assert!(
        body["Message"].as_str().unwrap().contains("too many requests"),
        "{body}"
    );

    let retrying = aws_sdk_organizations::Client::new(&retrying_sdk_config(&sim).await);
    let err = retrying.list_accounts().send().await.unwrap_err();
    assert_eq!(err.code(), Some("TooManyRequestsException"));
    assert_eq!(
        sim.running.calls("ListAccounts"),
        6,
        "the SDK retried the throttled call"
    );
    assert_eq!(
        sim.running.all_throttled(),
        std::collections::BTreeMap::from([("ListAccounts".to_string(), 4)])
    );
}

#[tokio::test]
async fn a_throttled_answer_costs_the_latency_and_refills_over_time() {
    let sim = Sim::start(&format!(
        "{}\n[latency]\nGetCallerIdentity = 300\n",
        demo_with_rate_limits("GetCallerIdentity = { rate = 4, burst = 1 }")
    ))
    .await;
    let sts = aws_sdk_sts::Client::new(&sdk_config(&sim, own_credentials()).await);
    // Two calls at once: one token, so one of them is throttled, after the same latency.
    let started = std::time::Instant::now();
    let (a, b) = tokio::join!(sts.get_caller_identity().send(), sts.get_caller_identity().send());
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(a.is_ok() as u8 + b.is_ok() as u8, 1, "{a:?} {b:?}");
    let err = a.err().or(b.err()).unwrap();
    assert_eq!(err.code(), Some("Throttling"));
    // 4 a second: a token again 250 ms later (the 300 ms of latency are enough).
    sts.get_caller_identity().send().await.unwrap();
    assert_eq!(sim.running.throttled("GetCallerIdentity"), 1);
}

/// The scenario file's error for `[rate_limits]` holding `limits`, without its prefix.
fn rate_limits_file_error(limits: serde_json::Value) -> String {
    let table: toml::Value = toml::Value::try_from(json!({ "rate_limits": limits })).unwrap();
    let text = format!("{DEMO}\n{}", toml::to_string(&table).unwrap());
    let err = Scenario::parse(&text, "t").unwrap_err().to_string();
    err.strip_prefix("scenario t: ").unwrap_or(&err).to_string()
}

#[tokio::test]
async fn control_api_replaces_rate_limits_and_refuses_what_the_file_refuses() {
    let sim = Sim::start(DEMO).await;
    let url = sim.control("/_simulator/rate_limits");
    let sts = aws_sdk_sts::Client::new(&sdk_config(&sim, own_credentials()).await);
    sts.get_caller_identity().send().await.unwrap();
    let r = put_json(&url, json!({ "GetCallerIdentity": { "rate": 0.05, "burst": 1 } })).await;
    assert_eq!(r.status(), 200);
    let answer: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        answer,
        json!({ "updated": "rate_limits", "operations": ["GetCallerIdentity"] })
    );
    sts.get_caller_identity().send().await.unwrap();
    let err = sts.get_caller_identity().send().await.unwrap_err();
    assert_eq!(err.code(), Some("Throttling"));
    // Replacing the limits refills the buckets; {} lifts them.
    let r = put_json(&url, json!({ "GetCallerIdentity": { "rate": 0.05, "burst": 1 } })).await;
    assert_eq!(r.status(), 200);
    sts.get_caller_identity().send().await.unwrap();
    sts.get_caller_identity().send().await.unwrap_err();
    assert_eq!(put_json(&url, json!({})).await.status(), 200);
    for _ in 0..5 {
        sts.get_caller_identity().send().await.unwrap();
    }
    // A throttling fault is a throttling answer too.
    put_json(
        &sim.control("/_simulator/faults"),
        json!({ "GetCallerIdentity": { "kind": "throttling", "count": 1 } }),
    )
    .await;
    sts.get_caller_identity().send().await.unwrap_err();
    assert_eq!(sim.running.throttled("GetCallerIdentity"), 3);
    assert_eq!(sim.running.calls("GetCallerIdentity"), 11);
    assert_eq!(
        throttled_over_http(&sim).await,
        std::collections::BTreeMap::from([("GetCallerIdentity".to_string(), 3)])
    );

    for (limits, names) in [
        (
            json!({ "AssumeRoleWithSAML": { "rate": 1 } }),
            &[
                "rate_limits.AssumeRoleWithSAML",
                "not an operation the simulator serves",
            ][..],
        ),
        (
            json!({ "AssumeRoot": { "rate": 0 } }),
            &["rate_limits.AssumeRoot.rate = 0"],
        ),
        (
            json!({ "AssumeRoot": { "rate": 1, "burst": 0 } }),
            &["rate_limits.AssumeRoot.burst = 0"],
        ),
        (
            json!({ "AssumeRoot": { "rate": 1, "brust": 2 } }),
            &["rate_limits.AssumeRoot.brust is not a key", "rate, burst, scope"],
        ),
        (
            json!({ "AssumeRoot": { "rate": 1, "scope": "region" } }),
            &["rate_limits.AssumeRoot.scope = \"region\" is not a scope"],
        ),
        (
            json!({ "ListRoots": { "rate": 1, "scope": "account" } }),
            &["rate_limits.ListRoots.scope = \"account\" applies to IAM and STS operations only"],
        ),
        (
            json!({ "AssumeRoot": 5 }),
            &["rate_limits.AssumeRoot = 5: expected a table"],
        ),
    ] {
        let r = put_json(&url, limits.clone()).await;
        assert_eq!(r.status(), 400, "{limits}");
        let body: serde_json::Value = r.json().await.unwrap();
        let message = body["error"].as_str().unwrap();
        for n in names {
            assert!(message.contains(n), "{n:?} not in {message}");
        }
        assert_eq!(message, rate_limits_file_error(limits.clone()), "{limits}");
    }
    let r = put_json(&url, json!([{ "rate": 1 }])).await;
    assert_eq!(r.status(), 400);
    // Nothing refused changed the limits: none.
    sts.get_caller_identity().send().await.unwrap();
}

#[test]
fn the_readme_lists_the_served_operations() {
    let readme = include_str!("../README.md");
    let line = readme
        .split("\n\n")
        .find(|p| p.starts_with("Served operations:"))
        .expect("a \"Served operations:\" paragraph");
    let listed: Vec<&str> = line.split('`').skip(1).step_by(2).collect();
    assert_eq!(listed, aws_org_simulator::served_operations(), "{line}");
}
