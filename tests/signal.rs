//! No stale source, slow start or odd report may hide a root credential: what `serve` shows
//! against the simulator, fed to the shipped rules with the real `promtool`.

mod common;

use std::time::{Duration, SystemTime};

use aws_root_exporter::app::audit_once;
use aws_root_exporter::aws::access::AccessMode;
use aws_root_exporter::model::FailureReason;
use common::{
    DEMO, Sim, config, number, post, promtool_expect, promtool_series, put_json, scrape, serve, until, value,
    wait_ready,
};
use serde_json::json;

const ROLES: &str = include_str!("fixtures/scenarios/roles.toml");

fn account(id: &str, name: &str) -> String {
    format!("account_id=\"{id}\",account_name=\"{name}\"")
}

/// `alertname` fires for the account `id` at `at` on these series, and (when given) not for
/// `quiet`.
fn pages(series: &str, alertname: &str, id: &str, quiet: Option<&str>, at: &str) {
    let firing = |account: &str| {
        format!(
            "count(ALERTS{{alertname=\"{alertname}\", alertstate=\"firing\", account_id=\"{account}\"}}) or vector(0)"
        )
    };
    let mut checks = vec![(firing(id), 1.0)];
    if let Some(q) = quiet {
        checks.push((firing(q), 0.0));
    }
    let checks: Vec<(&str, &str, f64)> = checks.iter().map(|(e, v)| (e.as_str(), at, *v)).collect();
    promtool_expect(series, &checks);
}

/// What the simulator's control API says of the account's latest credential report.
async fn report_of(sim: &Sim, id: &str) -> serde_json::Value {
    reqwest::get(sim.control(&format!("/_simulator/accounts/{id}/credential_report")))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A root key created after the account's credential report was generated: the summary says
/// present, the cached report none. The report's key figures are withheld, the contradiction is
/// served, and the shipped alert pages on what `/metrics` serves two refreshes later.
async fn new_key_after_the_report_pages(sim: &Sim, served: &common::Served, id: &str, name: &str) {
    let acct = account(id, name);
    let refreshes = |m: &str| {
        number(
            m,
            "aws_root_exporter_refreshes_total",
            "organization=\"default\",result=\"success\"",
        )
    };
    // The first refresh read the report: no key yet.
    let m = scrape(&served.base).await;
    assert_eq!(
        value(&m, "aws_root_access_keys_present", &acct).as_deref(),
        Some("0"),
        "{m}"
    );
    assert_eq!(
        value(&m, "aws_root_access_keys", &format!("{acct},status=\"active\"")).as_deref(),
        Some("0")
    );
    let report = report_of(sim, id).await;
    assert_eq!(report["generations"], 1, "{report}");
    post(
        &sim.control(&format!("/_simulator/accounts/{id}/root_actions")),
        json!({"action": "CreateAccessKey"}),
    )
    .await;
    let before = refreshes(&m);
    until(&served.base, Duration::from_secs(30), "two more refreshes", |m| {
        refreshes(m) >= before + 2.0
    })
    .await;
    let scraped_at = SystemTime::now();
    let m = scrape(&served.base).await;
    // The cached report is still the one from before the key (AWS makes a new one at most every
    // four hours).
    let report = report_of(sim, id).await;
    assert_eq!(report["generations"], 1, "{report}");
    assert_eq!(value(&m, "aws_root_access_keys_present", &acct).as_deref(), Some("1"));
    for family in [
        "aws_root_access_keys",
        "aws_root_access_key_created_timestamp_seconds",
        "aws_root_access_key_last_used_timestamp_seconds",
    ] {
        assert!(
            !common::samples(&m, family).keys().any(|l| l.starts_with(&acct)),
            "{family} of {id} contradicts the summary and must be withheld:\n{m}"
        );
    }
    assert_eq!(
        value(
            &m,
            "aws_root_audit_inconsistency",
            &format!("{acct},credential=\"access_keys\"")
        )
        .as_deref(),
        Some("1")
    );
    assert_eq!(value(&m, "aws_root_audit_success", &acct).as_deref(), Some("1"));
    assert!(value(&m, "aws_root_credential_report_generated_timestamp_seconds", &acct).is_some());
    pages(
        &promtool_series(&m, scraped_at, 30),
        "AwsRootAccessKeyPresent",
        id,
        None,
        "1m",
    );
}

#[tokio::test]
async fn a_root_key_on_the_management_account_after_its_cached_report_pages() {
    // Default setup: AssumeRoot for members, the management account (the caller) with the
    // exporter's own credentials and its credential report.
    let sim = Sim::start(DEMO).await;
    let served = serve(&sim, config(|c| c.refresh_interval = "1s".into())).await;
    wait_ready(&served.base).await;
    new_key_after_the_report_pages(&sim, &served, "111111111111", "management").await;
    // A member without a key does not page on the same series.
    let scraped_at = SystemTime::now();
    let m = scrape(&served.base).await;
    pages(
        &promtool_series(&m, scraped_at, 30),
        "AwsRootAccessKeyPresent",
        "111111111111",
        Some("444444444444"),
        "1m",
    );
}

#[tokio::test]
async fn a_root_key_on_a_role_mode_member_after_its_cached_report_pages() {
    let sim = Sim::start(ROLES).await;
    let served = serve(
        &sim,
        config(|c| {
            c.refresh_interval = "1s".into();
            c.access = AccessMode::Role;
            c.member_role_name = "RootAuditRole".into();
        }),
    )
    .await;
    wait_ready(&served.base).await;
    // 333333333333 has the role and no root key.
    new_key_after_the_report_pages(&sim, &served, "333333333333", "passkey-only").await;
}

#[tokio::test]
async fn a_first_refresh_that_never_ends_pages_within_fifteen_minutes() {
    // Every AssumeRoot throttled, and audits allowed to wait ten minutes: the first refresh does
    // not end while this test looks.
    let sim = Sim::start(DEMO).await;
    put_json(
        &sim.control("/_simulator/faults"),
        json!([{ "operation": "AssumeRoot", "kind": "throttling" }]),
    )
    .await;
    let served = serve(&sim, config(|c| c.account_timeout = "10m".into())).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let scraped_at = SystemTime::now();
    let m = scrape(&served.base).await;
    // Nothing of the snapshot yet, but the refresh shows.
    assert!(
        value(&m, "aws_root_exporter_refresh_success", "organization=\"default\"").is_none(),
        "{m}"
    );
    let running = number(&m, "aws_root_exporter_refresh_in_progress_seconds", "");
    assert!((3.0..60.0).contains(&running), "in progress for {running}s:\n{m}");
    assert!(number(&m, "aws_root_exporter_refresh_in_progress_accounts", "state=\"found\"") >= 1.0);
    assert_eq!(number(&m, "aws_root_exporter_refresh_interval_seconds", ""), 300.0);
    // Held for 20 minutes at the default 5m interval: paged by 15 minutes, not at 5.
    let series = promtool_series(&m, scraped_at, 20);
    let stuck = "count(ALERTS{alertname=\"AwsRootExporterRefreshStuck\", alertstate=\"firing\"}) or vector(0)";
    let any = "count(ALERTS{alertstate=\"firing\"}) or vector(0)";
    promtool_expect(&series, &[(any, "5m", 0.0), (stuck, "15m", 1.0)]);
}

#[tokio::test]
async fn a_ragged_credential_report_fails_the_audit_with_a_named_reason() {
    let sim = Sim::start(DEMO).await;
    // The first audit generates the management account's report.
    let first = audit_once(config(|_| {}), Some(&sim.endpoint())).await;
    let mgmt = first.accounts.iter().find(|e| e.account.id == "111111111111").unwrap();
    assert!(mgmt.succeeded(), "{:?}", mgmt.state);
    for corruption in ["drop_field", "extra_field", "missing_column", "bad_time"] {
        // Fresh again, then broken.
        put_json(
            &sim.control("/_simulator/accounts/111111111111/credential_report"),
            json!({"age_seconds": 0}),
        )
        .await;
        let r = put_json(
            &sim.control("/_simulator/accounts/111111111111/credential_report"),
            json!({"corrupt": corruption}),
        )
        .await;
        assert!(r.status().is_success(), "{corruption}: {}", r.status());
        let snap = audit_once(config(|_| {}), Some(&sim.endpoint())).await;
        let mgmt = snap.accounts.iter().find(|e| e.account.id == "111111111111").unwrap();
        assert_eq!(
            mgmt.failure(),
            Some(FailureReason::BadResponse),
            "{corruption}: {:?}",
            mgmt.state
        );
        let message = mgmt.failure_message().unwrap();
        assert!(
            message.contains("GetCredentialReport") && message.contains("credential report"),
            "{corruption}: {message}"
        );
        // Members (root sessions) are not touched by the management account's report.
        assert!(
            snap.accounts
                .iter()
                .find(|e| e.account.id == "222222222222")
                .unwrap()
                .succeeded()
        );
    }
    // An unknown corruption is refused with the allowed ones.
    let r = put_json(
        &sim.control("/_simulator/accounts/111111111111/credential_report"),
        json!({"corrupt": "shuffle"}),
    )
    .await;
    assert_eq!(r.status(), 400);
    let body = r.text().await.unwrap();
    assert!(body.contains("drop_field") && body.contains("shuffle"), "{body}");
}
