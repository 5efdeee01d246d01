//! The audit through the real AWS SDK, over HTTP, against the simulator.

mod common;

use std::time::Duration;

use aws_root_exporter::app::audit_once;
use aws_root_exporter::aws::Operation;
use aws_root_exporter::config::Checks;
use aws_root_exporter::model::{CredentialStatus, FailureReason, MfaType};
use aws_root_exporter::snapshot::{AccountEntry, Snapshot};
use common::{DEMO, NO_FEATURES, NO_ROOT_ACCESS, Sim, config, expected_accounts, put_json};
use serde_json::json;

fn entry<'a>(s: &'a Snapshot, id: &str) -> &'a AccountEntry {
    s.accounts
        .iter()
        .find(|e| e.account.id == id)
        .unwrap_or_else(|| panic!("account {id} listed"))
}

#[tokio::test]
async fn demo_scenario_audits_every_member_as_the_scenario_says() {
    let sim = Sim::start(DEMO).await;
    let snap = audit_once(config(|_| {}), Some(&sim.endpoint())).await;
    assert!(snap.refresh_ok);
    let expected = expected_accounts(DEMO);
    // Every scenario account plus the management account, in listing order.
    assert_eq!(snap.accounts.len(), expected.len() + 1);
    // The management account is the caller: audited with the exporter's own credentials (the
    // demo's management root has a hardware MFA device and nothing else).
    let mgmt = entry(&snap, "111111111111");
    assert!(mgmt.account.is_management && mgmt.succeeded(), "{:?}", mgmt.state);
    assert_eq!(
        mgmt.method,
        Some(aws_root_exporter::aws::access::Method::OwnCredentials)
    );
    let s = mgmt.findings().unwrap().summary;
    assert!(s.mfa_enabled && !s.access_keys_present && !s.password_present);
    for x in &expected {
        let e = entry(&snap, &x.id);
        assert_eq!(e.account.name, x.name);
        assert_eq!(e.account.status, x.status);
        if x.status != "ACTIVE" {
            assert!(
                !e.is_selected() && e.findings().is_none(),
                "{} is not active and must not be audited",
                x.id
            );
            continue;
        }
        assert!(e.is_selected());
        if x.scp_blocked {
            assert_eq!(e.failure(), Some(FailureReason::AccessDenied), "{}", x.id);
            assert!(
                e.findings().is_none() && e.last_success().is_none(),
                "a never-audited account has no findings"
            );
            continue;
        }
        let s = e.findings().expect("audited").summary;
        assert_eq!(
            (
                s.mfa_enabled,
                s.access_keys_present,
                s.password_present,
                s.signing_certificates_present
            ),
            (x.mfa, x.keys, x.password, x.certs),
            "{}",
            x.id
        );
        assert!(e.failure().is_none() && e.last_success().is_some());
    }
    // AssumeRoot was never aimed at the management account or the suspended one.
    assert_eq!(
        sim.calls("AssumeRoot") as usize,
        expected.iter().filter(|x| x.status == "ACTIVE").count()
    );
}

#[tokio::test]
async fn full_checks_tell_active_from_inactive_keys_mfa_kinds_and_dates() {
    let sim = Sim::start(DEMO).await;
    let snap = audit_once(config(|_| {}), Some(&sim.endpoint())).await;
    let details = |id: &str| entry(&snap, id).findings().unwrap().details.clone().unwrap();

    let inactive_only = details("444444444444");
    let keys = inactive_only.access_keys.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].status, CredentialStatus::Inactive);
    assert!(keys[0].last_used.is_none(), "never used: no last-used time");

    let used = details("333333333333");
    let key = &used.access_keys.unwrap()[0];
    assert_eq!(key.status, CredentialStatus::Active);
    assert_eq!(
        key.last_used,
        Some(humantime::parse_rfc3339("2025-11-01T12:00:00Z").unwrap())
    );
    assert_eq!(
        key.created,
        Some(humantime::parse_rfc3339("2019-03-02T10:00:00Z").unwrap())
    );
    let pw = used.password.unwrap().unwrap();
    assert_eq!(
        pw.created,
        Some(humantime::parse_rfc3339("2019-03-01T09:00:00Z").unwrap())
    );
    assert_eq!(
        pw.last_used,
        Some(humantime::parse_rfc3339("2025-10-30T08:15:00Z").unwrap())
    );

    assert_eq!(details("666666666666").mfa_devices.unwrap(), vec![MfaType::Virtual]);
    assert_eq!(details("777777777777").mfa_devices.unwrap(), vec![MfaType::Hardware]);
    assert_eq!(details("888888888888").mfa_devices.unwrap(), vec![MfaType::Passkey]);
    assert_eq!(
        details("999999999999").mfa_devices.unwrap(),
        vec![MfaType::Virtual, MfaType::Passkey]
    );
    assert_eq!(
        details("222222222222").password.unwrap(),
        None,
        "NoSuchEntity means no password"
    );
    assert_eq!(
        details("123456789012").signing_certificates.unwrap(),
        vec![CredentialStatus::Active, CredentialStatus::Inactive]
    );
}

#[tokio::test]
async fn summary_checks_make_two_calls_per_account() {
    let sim = Sim::start(DEMO).await;
    let snap = audit_once(config(|c| c.checks = Checks::Summary), Some(&sim.endpoint())).await;
    let members = snap
        .accounts
        .iter()
        .filter(|e| e.is_selected() && !e.account.is_management)
        .count() as u64;
    assert_eq!(sim.calls("AssumeRoot"), members);
    assert_eq!(
        sim.calls("GetAccountSummary"),
        members + 1,
        "and the management account's own"
    );
    assert_eq!(sim.calls("ListAccessKeys"), 0);
    assert!(
        snap.accounts
            .iter()
            .filter_map(|e| e.findings())
            .all(|f| f.details.is_none())
    );
}

#[tokio::test]
async fn disabled_root_credentials_management_fails_every_member_clearly_without_assume_root() {
    let sim = Sim::start(NO_ROOT_ACCESS).await;
    let snap = audit_once(config(|_| {}), Some(&sim.endpoint())).await;
    assert_eq!(
        snap.organization.features,
        Some(vec![("RootCredentialsManagement", false), ("RootSessions", true)])
    );
    for e in snap
        .accounts
        .iter()
        .filter(|e| e.is_selected() && !e.account.is_management)
    {
        assert_eq!(
            e.failure(),
            Some(FailureReason::RootAccessNotEnabled),
            "{}",
            e.account.id
        );
        assert!(e.findings().is_none());
    }
    assert_eq!(sim.calls("AssumeRoot"), 0, "no point in a CloudTrail event per account");
}

#[tokio::test]
async fn assume_root_without_the_feature_is_access_denied_when_features_are_unreadable() {
    // The exporter's role may lack iam:ListOrganizationsFeatures (here: it keeps failing), so the
    // exporter cannot tell the feature is off and tries AssumeRoot; that fails safely.
    let sim = Sim::start(NO_FEATURES).await;
    put_json(
        &sim.control("/_simulator/faults"),
        json!([{ "operation": "ListOrganizationsFeatures", "kind": "server_error" }]),
    )
    .await;
    let snap = audit_once(config(|_| {}), Some(&sim.endpoint())).await;
    assert_eq!(snap.organization.features, None, "the features could not be read");
    let selected: Vec<_> = snap
        .accounts
        .iter()
        .filter(|e| e.is_selected() && !e.account.is_management)
        .collect();
    assert_eq!(selected.len(), 11);
    for e in selected {
        assert_eq!(e.failure(), Some(FailureReason::AccessDenied), "{}", e.account.id);
        assert!(e.findings().is_none());
    }
    assert_eq!(sim.calls("AssumeRoot"), 11, "without the features, AssumeRoot is tried");
    assert_eq!(
        sim.calls("GetAccountSummary"),
        1,
        "only the management account's own, with the exporter's credentials"
    );
}

#[tokio::test]
async fn throttling_storm_is_reported_and_recovers_on_the_next_refresh() {
    let sim = Sim::start(DEMO).await;
    let r = put_json(
        &sim.control("/_simulator/faults"),
        json!([{ "operation": "AssumeRoot", "kind": "throttling", "account_id": "222222222222" }]),
    )
    .await;
    assert_eq!(r.status(), 200);
    let cfg = config(|c| c.checks = Checks::Summary);
    let first = audit_once(cfg.clone(), Some(&sim.endpoint())).await;
    let e = entry(&first, "222222222222");
    assert_eq!(e.failure(), Some(FailureReason::Throttled));
    assert!(e.findings().is_none());
    assert!(
        entry(&first, "333333333333").succeeded(),
        "other accounts are unaffected"
    );
    let first_calls = sim.calls("AssumeRoot");

    put_json(&sim.control("/_simulator/faults"), json!([])).await;
    let second = audit_once(cfg, Some(&sim.endpoint())).await;
    assert!(entry(&second, "222222222222").succeeded());
    // Without throttling each account takes one AssumeRoot; the throttled one was retried with
    // backoff up to the 8 attempts of the retry policy before it was reported.
    let per_refresh = sim.calls("AssumeRoot") - first_calls;
    assert_eq!(
        first_calls,
        per_refresh - 1 + 8,
        "{per_refresh} AssumeRoot calls per refresh"
    );
}

#[tokio::test]
async fn an_audit_waits_out_throttling_past_max_attempts_while_its_deadline_allows() {
    // Eight throttling answers in a row, then none: the listing's 8 attempts would have failed
    // the account; an audit with time left before account_timeout tries once more.
    let sim = Sim::start(DEMO).await;
    let r = put_json(
        &sim.control("/_simulator/faults"),
        json!([{ "operation": "AssumeRoot", "kind": "throttling", "account_id": "222222222222", "count": 8 }]),
    )
    .await;
    assert_eq!(r.status(), 200);
    let cfg = config(|c| {
        c.checks = Checks::Summary;
        c.account_timeout = "40s".into();
    });
    let snap = audit_once(cfg.clone(), Some(&sim.endpoint())).await;
    let e = entry(&snap, "222222222222");
    assert!(e.succeeded(), "{:?}", e.state);
    let first_calls = sim.calls("AssumeRoot");
    audit_once(cfg, Some(&sim.endpoint())).await;
    let per_refresh = sim.calls("AssumeRoot") - first_calls;
    assert_eq!(
        first_calls,
        per_refresh + 8,
        "the eight throttling answers were waited out, the ninth attempt answered"
    );
}

#[tokio::test]
async fn a_slow_account_times_out_without_holding_up_the_others() {
    let sim = Sim::start(DEMO).await;
    put_json(
        &sim.control("/_simulator/faults"),
        json!([{ "operation": "GetAccountSummary", "kind": "slow", "delay_ms": 4000, "account_id": "555555555555" }]),
    )
    .await;
    let snap = audit_once(config(|c| c.account_timeout = "1s".into()), Some(&sim.endpoint())).await;
    assert_eq!(entry(&snap, "555555555555").failure(), Some(FailureReason::Timeout));
    assert!(entry(&snap, "222222222222").succeeded());
}

#[tokio::test]
async fn partial_failure_keeps_the_summary_and_names_the_operation() {
    let sim = Sim::start(DEMO).await;
    put_json(
        &sim.control("/_simulator/faults"),
        json!([{ "operation": "ListMFADevices", "kind": "server_error", "account_id": "666666666666" }]),
    )
    .await;
    // Eight attempts of a call that keeps answering 503 wait up to 12.7 s between them (6.35 s
    // on average): within a 4 s deadline, the call gives up when its next wait would pass the
    // deadline, and the audit keeps its summary instead of timing out as a whole.
    let snap = audit_once(config(|c| c.account_timeout = "4s".into()), Some(&sim.endpoint())).await;
    let e = entry(&snap, "666666666666");
    assert!(e.succeeded(), "{:?}", e.state);
    let f = e.findings().unwrap();
    assert!(f.summary.mfa_enabled);
    let failed: Vec<_> = f.failed_operations.iter().map(|e| (e.operation, e.reason)).collect();
    assert_eq!(failed, vec![(Operation::ListMfaDevices, FailureReason::Other)]);
    assert!(
        f.failed_operations[0].message.starts_with("ServiceUnavailable: "),
        "the AWS error code and message are kept for the log: {:?}",
        f.failed_operations[0].message
    );
    assert_eq!(f.details.as_ref().unwrap().mfa_devices, None);
}

#[tokio::test]
async fn large_organization_is_paged_completely() {
    let sim = Sim::start(include_str!("fixtures/scenarios/paged-150.toml")).await;
    let snap = audit_once(config(|c| c.checks = Checks::Summary), Some(&sim.endpoint())).await;
    assert_eq!(snap.accounts.len(), 137 + 13);
    let mut ids: Vec<&str> = snap.accounts.iter().map(|e| e.account.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 150, "no duplicates across pages");
    assert!(
        sim.calls("ListAccountsForParent") >= 8,
        "150 accounts under the root need at least 8 pages of 20"
    );
    assert_eq!(sim.calls("ListAccounts"), 0, "the tree walk lists them");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refresh_dropped_mid_listing_makes_no_more_calls() {
    // The listing runs in a task of its own: dropping the refresh (as a stop does) must end it.
    let scenario = format!(
        "{}\n[latency]\ndefault_ms = 100\n",
        include_str!("fixtures/scenarios/paged-150.toml")
    );
    let sim = Sim::start(&scenario).await;
    let endpoint = sim.endpoint();
    let refreshing = audit_once(config(|c| c.checks = Checks::Summary), Some(&endpoint));
    assert!(
        tokio::time::timeout(Duration::from_millis(650), refreshing)
            .await
            .is_err(),
        "8 pages at 100 ms each take longer than the time given"
    );
    // A request the task handed to its connection just before the abort may still arrive (the
    // simulator counts it then); the next page could only be asked for after its 100 ms answer.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let pages = sim.calls("ListAccountsForParent");
    assert!(
        (1..8).contains(&pages),
        "dropped while the listing was under way: {pages} pages"
    );
    // Six more page times: a listing still running would have asked for more.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        sim.calls("ListAccountsForParent"),
        pages,
        "no page asked for after the refresh was dropped"
    );
}

#[tokio::test]
async fn include_and_exclude_filters_select_accounts() {
    let sim = Sim::start(DEMO).await;
    let snap = audit_once(
        config(|c| {
            c.include_accounts = vec!["222222222222".into(), "333333333333".into()];
            c.exclude_accounts = vec!["333333333333".into()];
        }),
        Some(&sim.endpoint()),
    )
    .await;
    let audited: Vec<&str> = snap
        .accounts
        .iter()
        .filter(|e| e.is_selected())
        .map(|e| e.account.id.as_str())
        .collect();
    assert_eq!(audited, vec!["222222222222"]);
    assert_eq!(sim.calls("AssumeRoot"), 1);
}

#[tokio::test]
async fn organization_listing_failure_is_a_failed_refresh() {
    let sim = Sim::start(DEMO).await;
    put_json(
        &sim.control("/_simulator/faults"),
        json!([{ "operation": "ListAccountsForParent", "kind": "server_error" }]),
    )
    .await;
    let snap = tokio::time::timeout(
        Duration::from_secs(60),
        audit_once(config(|_| {}), Some(&sim.endpoint())),
    )
    .await
    .unwrap();
    assert!(!snap.refresh_ok);
    assert!(snap.accounts.is_empty());
}

#[tokio::test]
async fn sustained_throttling_fails_no_more_accounts_in_later_refreshes() {
    // Half of all AssumeRoot calls are throttled, refresh after refresh. The SDK's standard retry
    // quota used to drain under this (6 failures of 200 in the first refresh, 57 in the fifth);
    // the exporter's own retries behave the same every time.
    let scenario = "[organization]\nid = \"o-throttle0001\"\nmanagement_account_id = \"111111111111\"\n\n[generate]\naccounts = 200\nseed = 11\n\n[[faults]]\noperation = \"AssumeRoot\"\nkind = \"throttling\"\nrate = 0.5\n";
    let sim = Sim::start(scenario).await;
    let cfg = config(|c| {
        c.checks = Checks::Summary;
        c.account_timeout = "30s".into();
    });
    let telemetry = aws_root_exporter::telemetry::Telemetry::default();
    let refresher =
        aws_root_exporter::app::refresher(cfg, Some(&sim.endpoint()), &telemetry, &Default::default(), None).await;
    let mut previous = None;
    let mut failures = Vec::new();
    for _ in 0..5 {
        let snap = refresher.refresh(previous.as_ref()).await;
        assert!(snap.refresh_ok);
        failures.push(snap.outcome_counts().failed);
        previous = Some(snap);
    }
    // At least 8 attempts at 50%: an account fails with probability 1/256 at most, about 0.8 of
    // 200 per refresh.
    assert!(failures.iter().all(|f| *f <= 6), "failures per refresh: {failures:?}");
    assert!(
        sim.calls("AssumeRoot") > 5 * 200,
        "throttled calls were retried in every refresh"
    );
}

#[tokio::test]
async fn an_account_listed_without_state_or_status_is_audited() {
    let sim = Sim::start(include_str!("fixtures/scenarios/account-states.toml")).await;
    let snap = audit_once(config(|_| {}), Some(&sim.endpoint())).await;
    let e = entry(&snap, "555555555555");
    assert_eq!(e.account.status, "UNKNOWN");
    assert!(e.is_selected() && e.succeeded(), "{:?}", e.state);
    assert!(e.findings().unwrap().summary.access_keys_present);
    for id in ["222222222222", "333333333333", "444444444444"] {
        assert_eq!(entry(&snap, id).account.status, "ACTIVE");
        assert!(entry(&snap, id).succeeded());
    }
    assert_eq!(entry(&snap, "666666666666").account.status, "SUSPENDED");
    assert!(!entry(&snap, "666666666666").is_selected());
}

#[tokio::test]
async fn a_session_that_expires_mid_audit_fails_with_expired_token() {
    let sim = Sim::start(include_str!("fixtures/scenarios/slow-summary.toml")).await;
    let snap = audit_once(
        config(|c| {
            c.session_duration = "1s".into();
            c.checks = Checks::Summary;
            c.include_accounts = vec!["222222222222".into(), "333333333333".into()];
        }),
        Some(&sim.endpoint()),
    )
    .await;
    assert_eq!(
        entry(&snap, "222222222222").failure(),
        Some(FailureReason::ExpiredToken)
    );
    assert!(entry(&snap, "222222222222").findings().is_none());
    assert!(entry(&snap, "333333333333").succeeded());
    assert_eq!(sim.calls("GetAccountSummary"), 2, "ExpiredToken is not retried");
}

#[tokio::test]
async fn a_denied_tree_walk_falls_back_to_list_accounts() {
    let sim = Sim::start(DEMO).await;
    put_json(
        &sim.control("/_simulator/faults"),
        json!([{ "operation": "ListRoots", "kind": "access_denied" }]),
    )
    .await;
    let snap = audit_once(config(|c| c.checks = Checks::Summary), Some(&sim.endpoint())).await;
    assert!(snap.refresh_ok);
    assert_eq!(snap.accounts.len(), expected_accounts(DEMO).len() + 1, "every account");
    assert!(
        snap.accounts.iter().all(|e| e.account.ou_path.is_none()),
        "no paths without the tree"
    );
    assert!(sim.calls("ListAccounts") >= 1);
    assert!(entry(&snap, "222222222222").succeeded());
}
