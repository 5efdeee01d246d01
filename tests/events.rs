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
        number(
            &m,
            "aws_root_exporter_refreshes_total",
            "organization=\"default\",result=\"success\""
        ),
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

/// Root activity (CIS 4.3): with an hourly poll, a root console sign-in, a failed one, a root
/// API call and a privileged session of another principal are each counted with their kind
/// within 15 s; calls of the exporter's own audit session (the simulator's `"issued_to":
/// "self"`: the access key id of the root session it opened, with and without the `inScopeOf`
/// hints) count nothing.
#[tokio::test]
async fn root_activity_is_counted_by_kind_and_the_exporters_own_session_never() {
    let sim = Sim::start(&scenario()).await;
    let served = served(&sim).await;
    let act = |account: &str| sim.control(&format!("/_simulator/accounts/{account}/root_actions"));
    let activity = |account: &str, name: &str, kind: &str| {
        format!("account_id=\"{account}\",account_name=\"{name}\",kind=\"{kind}\"")
    };
    // The exporter's own audit session in mfa-passkey (opened by the first refresh): three
    // read-only calls with it, one without the hints AWS does not promise.
    for (event_name, hints) in [
        ("GetAccountSummary", true),
        ("ListMFADevices", true),
        ("ListAccessKeys", false),
    ] {
        post(
            &act("888888888888"),
            json!({"action": "ApiCall", "event_source": "iam.amazonaws.com", "event_name": event_name,
                   "read_only": true, "session": "assumed_root", "issued_to": "self", "hints": hints}),
        )
        .await;
    }
    let started = std::time::SystemTime::now();
    let posted = Instant::now();
    post(
        &act("555555555555"),
        json!({"action": "ConsoleLogin", "outcome": "Success"}),
    )
    .await;
    post(
        &act("444444444444"),
        json!({"action": "ConsoleLogin", "outcome": "Failure"}),
    )
    .await;
    post(
        &act("666666666666"),
        json!({"action": "ApiCall", "event_source": "s3.amazonaws.com", "event_name": "PutBucketPolicy", "session": "console"}),
    )
    .await;
    post(
        &act("777777777777"),
        json!({"action": "ApiCall", "event_source": "iam.amazonaws.com", "event_name": "DeleteLoginProfile",
               "session": "assumed_root"}),
    )
    .await;
    let expected = [
        activity("555555555555", "sandbox", "console_signin"),
        activity("444444444444", "data-lake", "console_signin_failure"),
        activity("666666666666", "mfa-virtual", "api_call"),
        activity("777777777777", "mfa-hardware", "privileged_session"),
    ];
    let received = |m: &str| {
        ["relevant", "activity", "irrelevant", "malformed"]
            .iter()
            .map(|o| {
                number(
                    m,
                    "aws_root_exporter_events_received_total",
                    &format!("outcome=\"{o}\""),
                )
            })
            .sum::<f64>()
    };
    until(
        &served.base,
        Duration::from_secs(15),
        "each kind of root activity, and every message read",
        |m| {
            expected
                .iter()
                .all(|l| value(m, "aws_root_activity_events_total", l).as_deref() == Some("1"))
                && received(m) >= 7.0
        },
    )
    .await;
    assert!(
        posted.elapsed() < Duration::from_secs(15),
        "counted within 15 s: {:?}",
        posted.elapsed()
    );
    let m = scrape(&served.base).await;
    let counted = common::samples(&m, "aws_root_activity_events_total");
    assert_eq!(
        counted.len(),
        4,
        "only the four uses count, not the exporter's own: {counted:?}"
    );
    assert!(
        !m.contains("account_id=\"888888888888\",account_name=\"mfa-passkey\",kind="),
        "the exporter's own audit session is not root activity:\n{m}"
    );
    assert_eq!(
        number(&m, "aws_root_exporter_events_received_total", "outcome=\"irrelevant\""),
        3.0,
        "the own session's three calls are read and dropped"
    );
    // The newest activity carries the event's own time.
    let since = started.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64() - 1.0;
    for l in &expected {
        let t = number(&m, "aws_root_activity_last_timestamp_seconds", l);
        assert!(t >= since, "{l}: {t} is the event's time, not older than {since}");
    }
    // No hourly poll was needed: one refresh in all.
    assert_eq!(
        number(
            &m,
            "aws_root_exporter_refreshes_total",
            "organization=\"default\",result=\"success\""
        ),
        1.0
    );

    // Fed what /metrics served, the shipped rules page for the accounts whose root was used,
    // and for no quiet account (prod) nor the exporter's own audit (mfa-passkey).
    let series = common::promtool_series(&m, std::time::SystemTime::now(), 30);
    let firing = |alert: &str, account: &str| {
        format!("count(ALERTS{{alertname=\"{alert}\", alertstate=\"firing\", account_id=\"{account}\"}}) or vector(0)")
    };
    common::promtool_expect(
        &series,
        &[
            (&firing("AwsRootUserActivity", "555555555555"), "1m", 1.0),
            (&firing("AwsRootUserActivity", "666666666666"), "1m", 1.0),
            (
                "count(ALERTS{alertname=\"AwsRootUserActivity\", alertstate=\"firing\"}) or vector(0)",
                "1m",
                2.0,
            ),
            (&firing("AwsRootUserActivity", "222222222222"), "1m", 0.0),
            (&firing("AwsRootPrivilegedSession", "777777777777"), "1m", 1.0),
            (
                "count(ALERTS{alertstate=\"firing\", account_id=\"888888888888\", alertname=~\"AwsRoot(UserActivity|PrivilegedSession|SignInFailures)\"}) or vector(0)",
                "1m",
                0.0,
            ),
            // One failed sign-in is not "repeated".
            (&firing("AwsRootSignInFailures", "444444444444"), "1m", 0.0),
        ],
    );
}

/// Without events the audits still tell of root use: a call with a root access key updates the
/// key's last use, which the next audit (full checks) reads, and
/// `aws_root_activity_last_timestamp_seconds{kind="api_call"}` serves it; the password's last
/// use after a console sign-in does the same for `console_signin`. Nothing is counted: the
/// counter is the events' alone.
#[tokio::test]
async fn audits_feed_the_newest_root_activity_without_events() {
    let sim = Sim::start(DEMO).await;
    let served = serve(&sim, config(|c| c.refresh_interval = "2s".into())).await;
    wait_ready(&served.base).await;
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        - 1.0;
    let act = |account: &str| sim.control(&format!("/_simulator/accounts/{account}/root_actions"));
    // legacy-billing has an active root key and a password.
    post(
        &act("333333333333"),
        json!({"action": "ApiCall", "event_source": "s3.amazonaws.com", "event_name": "ListBuckets",
               "read_only": true, "session": "access_key"}),
    )
    .await;
    post(&act("333333333333"), json!({"action": "ConsoleLogin"})).await;
    let labels = |kind: &str| format!("account_id=\"333333333333\",account_name=\"legacy-billing\",kind=\"{kind}\"");
    until(
        &served.base,
        Duration::from_secs(20),
        "the audit's newest root activity",
        |m| {
            number(m, "aws_root_activity_last_timestamp_seconds", &labels("api_call")) >= before
                && number(m, "aws_root_activity_last_timestamp_seconds", &labels("console_signin")) >= before
        },
    )
    .await;
    let m = scrape(&served.base).await;
    assert!(
        common::samples(&m, "aws_root_activity_events_total").is_empty()
            && !m.contains("# TYPE aws_root_activity_events"),
        "without an events queue nothing is counted:\n{m}"
    );
    // A quiet account with a password never used has no activity at all.
    assert_eq!(
        value(
            &m,
            "aws_root_activity_last_timestamp_seconds",
            &labels("privileged_session")
        ),
        None
    );
    assert!(
        !m.contains("account_id=\"555555555555\",account_name=\"sandbox\",kind="),
        "{m}"
    );
}
