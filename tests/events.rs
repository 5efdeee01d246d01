//! Root credential events: `serve` with `events_queue_url` against the simulator's SQS queue,
//! which the control API fills with the EventBridge events AWS would deliver.

mod common;

use std::time::{Duration, Instant};

use common::{DEMO, Sim, config, number, post, scrape, serve, until, value, wait_ready};
use serde_json::json;

/// The demo organization with an events queue.
fn scenario() -> String {
    format!("{DEMO}\n[events]\nqueue_name = \"aws-root-events\"\n")
}

async fn queue(sim: &Sim) -> serde_json::Value {
    reqwest::get(sim.control("/_simulator/queue"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A CloudTrail event of a root credential change in `account`, as EventBridge delivers it.
fn root_event(account: &str, name: &str) -> String {
    json!({
        "version": "0",
        "id": "0d6a2b8e-1f2c-4c3a-9d1e-5a1b2c3d4e5f",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.iam",
        "account": account,
        "time": humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "eventVersion": "1.09",
            "userIdentity": {"type": "Root", "principalId": account, "arn": format!("arn:aws:iam::{account}:root"), "accountId": account},
            "eventSource": "iam.amazonaws.com",
            "eventName": name,
            "awsRegion": "us-east-1",
            "recipientAccountId": account,
            "eventType": "AwsApiCall",
        }
    })
    .to_string()
}

async fn served(sim: &Sim) -> common::Served {
    let url = sim.running.queue_url().expect("the scenario has a queue");
    let served = serve(
        sim,
        config(|c| {
            c.events_queue_url = url;
            c.checks = aws_root_exporter::config::Checks::Summary;
        }),
    )
    .await;
    wait_ready(&served.base).await;
    served
}

#[tokio::test]
async fn a_new_root_key_shows_within_seconds_without_a_refresh() {
    let sim = Sim::start(&scenario()).await;
    let served = served(&sim).await;
    let m = scrape(&served.base).await;
    let key = "account_id=\"222222222222\",account_name=\"prod\"";
    assert_eq!(value(&m, "aws_root_access_keys_present", key).as_deref(), Some("0"));
    assert_eq!(
        value(&m, "aws_root_exporter_refresh_interval_seconds", "").as_deref(),
        Some("3600.0"),
        "with events the poll is hourly by default"
    );
    post(
        &sim.control("/_simulator/accounts/222222222222/root_actions"),
        json!({"action": "CreateAccessKey"}),
    )
    .await;
    let took = until(&served.base, Duration::from_secs(20), "the new key", |m| {
        value(m, "aws_root_access_keys_present", key).as_deref() == Some("1")
    })
    .await;
    assert!(took < Duration::from_secs(10), "seen after {took:?}");
    let m = scrape(&served.base).await;
    assert_eq!(
        number(&m, "aws_root_exporter_refreshes_total", "result=\"success\""),
        1.0,
        "no poll found it"
    );
    assert!(number(&m, "aws_root_exporter_events_received_total", "outcome=\"relevant\"") >= 1.0);
    assert!(number(&m, "aws_root_exporter_event_audits_total", "result=\"success\"") >= 1.0);
    assert!(number(&m, "aws_root_exporter_event_to_snapshot_seconds_count", "") >= 1.0);
    assert_eq!(number(&m, "aws_root_exporter_events_queue_up", ""), 1.0);
    let q = queue(&sim).await;
    assert_eq!(
        (q["visible"].as_u64(), q["in_flight"].as_u64()),
        (Some(0), Some(0)),
        "{q}"
    );
    // Other accounts were not re-audited.
    assert_eq!(
        value(
            &m,
            "aws_root_access_keys_present",
            "account_id=\"555555555555\",account_name=\"sandbox\""
        )
        .as_deref(),
        Some("0")
    );
}

#[tokio::test]
async fn malformed_irrelevant_and_foreign_messages_are_counted_and_deleted() {
    let sim = Sim::start(&scenario()).await;
    let served = served(&sim).await;
    let ec2 = json!({"version": "0", "source": "aws.ec2", "detail-type": "EC2 Instance State-change Notification", "account": "222222222222", "detail": {"state": "running"}});
    for body in [
        "this is not an event".to_string(),
        ec2.to_string(),
        root_event("987654321098", "CreateAccessKey"),
    ] {
        post(&sim.control("/_simulator/queue/messages"), json!({ "body": body })).await;
    }
    until(
        &served.base,
        Duration::from_secs(30),
        "the three messages handled",
        |m| {
            number(m, "aws_root_exporter_events_received_total", "outcome=\"malformed\"") == 1.0
                && number(m, "aws_root_exporter_events_received_total", "outcome=\"irrelevant\"") == 2.0
        },
    )
    .await;
    let m = scrape(&served.base).await;
    assert_eq!(
        number(&m, "aws_root_exporter_event_audits_total", "result=\"success\""),
        0.0
    );
    let q = queue(&sim).await;
    assert_eq!(
        (q["visible"].as_u64(), q["in_flight"].as_u64()),
        (Some(0), Some(0)),
        "deleted: {q}"
    );
    assert_eq!(sim.calls("AssumeRoot"), 11, "only the first refresh's");
}

#[tokio::test]
async fn a_burst_of_events_for_one_account_gives_few_audits() {
    let sim = Sim::start(&scenario()).await;
    let served = served(&sim).await;
    let before = sim.calls("AssumeRoot");
    for _ in 0..100 {
        post(
            &sim.control("/_simulator/queue/messages"),
            json!({ "body": root_event("333333333333", "UpdateAccessKey") }),
        )
        .await;
    }
    until(&served.base, Duration::from_secs(60), "100 relevant events", |m| {
        number(m, "aws_root_exporter_events_received_total", "outcome=\"relevant\"") == 100.0
    })
    .await;
    until(&served.base, Duration::from_secs(20), "an audit", |m| {
        number(m, "aws_root_exporter_event_audits_total", "result=\"success\"") >= 1.0
    })
    .await;
    let started = Instant::now();
    loop {
        let q = queue(&sim).await;
        if (q["visible"].as_u64(), q["in_flight"].as_u64()) == (Some(0), Some(0)) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "the queue empties: {q}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Whatever the coalescing window left over is audited within it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let m = scrape(&served.base).await;
    let audits = number(&m, "aws_root_exporter_event_audits_total", "result=\"success\"");
    assert!((1.0..=3.0).contains(&audits), "100 events gave {audits} audits");
    assert!(sim.calls("AssumeRoot") - before <= 3);
}

#[tokio::test]
async fn a_failed_reaudit_leaves_the_events_for_redelivery() {
    let sim = Sim::start(&scenario()).await;
    let served = served(&sim).await;
    common::put_json(
        &sim.control("/_simulator/faults"),
        json!([{ "operation": "AssumeRoot", "kind": "access_denied", "account_id": "222222222222" }]),
    )
    .await;
    post(
        &sim.control("/_simulator/accounts/222222222222/root_actions"),
        json!({"action": "CreateAccessKey"}),
    )
    .await;
    until(&served.base, Duration::from_secs(20), "the failed re-audit", |m| {
        number(m, "aws_root_exporter_event_audits_total", "result=\"failure\"") >= 1.0
    })
    .await;
    let q = queue(&sim).await;
    assert_eq!(q["in_flight"].as_u64(), Some(1), "kept for redelivery: {q}");
    let m = scrape(&served.base).await;
    // A failure never looks clean: the account keeps its last known state, and says it failed.
    assert_eq!(
        value(
            &m,
            "aws_root_audit_success",
            "account_id=\"222222222222\",account_name=\"prod\""
        )
        .as_deref(),
        Some("0")
    );
    assert_eq!(
        value(
            &m,
            "aws_root_access_keys_present",
            "account_id=\"222222222222\",account_name=\"prod\""
        )
        .as_deref(),
        Some("0"),
        "the last known value, with its age"
    );
}
