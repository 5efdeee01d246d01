//! Every account of the organization, through the real AWS SDK against the simulator: member
//! accounts through a role when centralized root access is off, the management account and the
//! exporter's own account, the OU tree and account tags.

mod common;

use std::time::SystemTime;

use aws_root_exporter::app::audit_once;
use aws_root_exporter::aws::access::{AccessMode, Method};
use aws_root_exporter::config::Checks;
use aws_root_exporter::model::{CredentialStatus, DetailSource, FailureReason, MfaType};
use aws_root_exporter::snapshot::{AccountEntry, Snapshot};
use common::{DEMO, Sim, config};

/// Centralized root access off; a member role in some accounts; the management account with a
/// root key; OUs and tags.
const NO_ROOT_ACCESS_WITH_ROLES: &str = include_str!("fixtures/scenarios/roles.toml");

fn entry<'a>(s: &'a Snapshot, id: &str) -> &'a AccountEntry {
    s.accounts
        .iter()
        .find(|e| e.account.id == id)
        .unwrap_or_else(|| panic!("account {id} listed"))
}

fn time(s: &str) -> Option<SystemTime> {
    Some(humantime::parse_rfc3339(s).unwrap())
}

#[tokio::test]
async fn role_mode_audits_every_member_with_the_role_truthfully() {
    let sim = Sim::start(NO_ROOT_ACCESS_WITH_ROLES).await;
    let snap = audit_once(
        config(|c| {
            c.access = AccessMode::Role;
            c.member_role_name = "RootAuditRole".into();
        }),
        Some(&sim.endpoint()),
    )
    .await;
    assert!(snap.refresh_ok);

    let e = entry(&snap, "222222222222");
    assert_eq!(e.method, Some(Method::MemberRole));
    assert!(e.succeeded(), "{:?}", e.state);
    let f = e.findings().unwrap();
    let s = f.summary;
    assert_eq!(
        (
            s.mfa_enabled,
            s.access_keys_present,
            s.password_present,
            s.signing_certificates_present
        ),
        (true, true, true, true)
    );
    let d = f.details.as_ref().expect("full audit");
    assert!(f.failed_operations.is_empty(), "{:?}", f.failed_operations);
    assert!(matches!(
        d.source,
        DetailSource::CredentialReport { generated: Some(_) }
    ));
    let keys = d.access_keys.as_ref().unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(
        (keys[0].id.as_str(), keys[0].status),
        ("key_1", CredentialStatus::Active)
    );
    assert_eq!(keys[0].created, time("2019-03-02T10:00:00Z"), "last rotated = created");
    assert_eq!(keys[0].last_used, time("2025-11-01T12:00:00Z"));
    assert_eq!(
        (keys[1].id.as_str(), keys[1].status),
        ("key_2", CredentialStatus::Inactive)
    );
    assert_eq!(d.mfa_devices.as_deref(), Some(&[MfaType::Virtual][..]));
    let password = d.password.unwrap().expect("a password");
    assert_eq!(password.last_used, time("2025-10-30T08:15:00Z"));
    assert_eq!(password.created, None, "the report does not know it");
    assert_eq!(d.signing_certificates.as_deref(), Some(&[CredentialStatus::Active][..]));

    let passkey = entry(&snap, "333333333333");
    let d = passkey.findings().unwrap().details.as_ref().unwrap();
    assert_eq!(d.mfa_devices.as_deref(), Some(&[MfaType::NonVirtual][..]));
    assert_eq!(d.access_keys.as_deref(), Some(&[][..]));
    assert_eq!(d.password.unwrap().unwrap().last_used, None, "never used");

    for id in ["444444444444", "555555555555"] {
        let e = entry(&snap, id);
        assert_eq!(
            e.failure(),
            Some(FailureReason::AccessDenied),
            "{id}: no role, or another external id"
        );
        assert!(e.findings().is_none(), "{id}: no credential gauges without an audit");
        assert_eq!(e.method, Some(Method::MemberRole));
    }

    let m = entry(&snap, "111111111111");
    assert_eq!(m.method, Some(Method::OwnCredentials));
    assert!(
        m.findings().unwrap().summary.access_keys_present,
        "the management root key"
    );
    assert_eq!(sim.calls("AssumeRoot"), 0, "role mode never assumes root");
}

#[tokio::test]
async fn auto_mode_uses_the_role_when_centralized_root_access_is_off() {
    let sim = Sim::start(NO_ROOT_ACCESS_WITH_ROLES).await;
    let snap = audit_once(
        config(|c| {
            c.member_role_name = "RootAuditRole".into();
            c.checks = Checks::Summary;
        }),
        Some(&sim.endpoint()),
    )
    .await;
    assert_eq!(entry(&snap, "222222222222").method, Some(Method::MemberRole));
    assert!(entry(&snap, "222222222222").succeeded());
    assert_eq!(sim.calls("AssumeRoot"), 0);
    // Without a role configured, auto mode says what is off and what would help.
    let snap = audit_once(config(|c| c.checks = Checks::Summary), Some(&sim.endpoint())).await;
    let e = entry(&snap, "222222222222");
    assert_eq!(e.failure(), Some(FailureReason::RootAccessNotEnabled));
    assert_eq!(e.method, None);
    assert!(
        entry(&snap, "111111111111").succeeded(),
        "the own account needs neither"
    );
}

#[tokio::test]
async fn auto_mode_uses_assume_root_where_it_is_on_and_audits_the_management_account() {
    let sim = Sim::start(DEMO).await;
    let snap = audit_once(config(|_| {}), Some(&sim.endpoint())).await;
    assert_eq!(entry(&snap, "222222222222").method, Some(Method::AssumeRoot));
    let m = entry(&snap, "111111111111");
    assert_eq!(m.method, Some(Method::OwnCredentials));
    assert!(m.succeeded(), "{:?}", m.state);
    assert_eq!(sim.calls("GetCallerIdentity"), 1);
}

#[tokio::test]
async fn the_tree_gives_every_account_its_ou_path_and_tags_are_read_hourly() {
    let sim = Sim::start(NO_ROOT_ACCESS_WITH_ROLES).await;
    let cfg = config(|c| {
        c.member_role_name = "RootAuditRole".into();
        c.checks = Checks::Summary;
        c.account_tags = vec!["owner".into(), "environment".into(), "missing".into()];
    });
    let telemetry = aws_root_exporter::telemetry::Telemetry::default();
    let refresher =
        aws_root_exporter::app::refresher(cfg, Some(&sim.endpoint()), &telemetry, &Default::default(), None).await;
    let first = refresher.refresh(None).await;
    let paths: Vec<(&str, Option<&str>)> = first
        .accounts
        .iter()
        .map(|e| (e.account.id.as_str(), e.account.ou_path.as_deref()))
        .collect();
    for (id, path) in [
        ("111111111111", "Root"),
        ("222222222222", "Root/Workloads/Prod"),
        ("333333333333", "Root/Workloads/Dev"),
        ("444444444444", "Root/Sandbox"),
    ] {
        assert!(paths.contains(&(id, Some(path))), "{id} at {path}: {paths:?}");
    }
    assert_eq!(
        entry(&first, "222222222222").account.tags,
        vec![
            ("owner".to_string(), "team-a".to_string()),
            ("environment".into(), "prod".into())
        ]
    );
    assert!(sim.calls("ListAccounts") == 0 && sim.calls("ListAccountsForParent") >= 4);
    let tag_calls = sim.calls("ListTagsForResource");
    assert_eq!(tag_calls as usize, first.accounts.len(), "one per account");
    let second = refresher.refresh(Some(&first)).await;
    assert_eq!(sim.calls("ListTagsForResource"), tag_calls, "cached for an hour");
    assert_eq!(
        entry(&second, "222222222222").account.tags,
        entry(&first, "222222222222").account.tags
    );
}

#[tokio::test]
async fn from_the_delegated_administrator_the_management_account_needs_its_role() {
    let scenario = include_str!("fixtures/scenarios/delegated-admin.toml");
    let sim = Sim::start(scenario).await;
    let snap = audit_once(config(|c| c.checks = Checks::Summary), Some(&sim.endpoint())).await;
    let m = entry(&snap, "111111111111");
    assert_eq!(m.failure(), Some(FailureReason::NotConfigured), "{:?}", m.state);
    assert!(m.findings().is_none());
    let own = entry(&snap, "222222222222");
    assert_eq!(
        own.method,
        Some(Method::OwnCredentials),
        "the delegated administrator itself"
    );
    assert!(own.succeeded());
    assert_eq!(entry(&snap, "333333333333").method, Some(Method::AssumeRoot));
    assert!(entry(&snap, "333333333333").succeeded());

    let snap = audit_once(
        config(|c| {
            c.checks = Checks::Full;
            c.management_account_role_arn = "arn:aws:iam::111111111111:role/RootAuditManagementRole".into();
        }),
        Some(&sim.endpoint()),
    )
    .await;
    let m = entry(&snap, "111111111111");
    assert_eq!(m.method, Some(Method::ManagementRole));
    assert!(m.succeeded(), "{:?}", m.state);
    let f = m.findings().unwrap();
    assert!(f.summary.access_keys_present, "the management account's root key");
    let keys = f.details.as_ref().unwrap().access_keys.as_ref().unwrap();
    assert_eq!(keys.iter().filter(|k| k.status == CredentialStatus::Active).count(), 1);
}

#[tokio::test]
async fn a_credential_report_that_takes_too_long_is_a_timeout_of_that_part_only() {
    let scenario = format!("{NO_ROOT_ACCESS_WITH_ROLES}\n[credential_report]\ngeneration_ms = 5000\n");
    let sim = Sim::start(&scenario).await;
    let snap = audit_once(
        config(|c| {
            c.member_role_name = "RootAuditRole".into();
            c.account_timeout = "4s".into();
        }),
        Some(&sim.endpoint()),
    )
    .await;
    let e = entry(&snap, "222222222222");
    assert!(e.succeeded(), "the summary still counts: {:?}", e.state);
    let f = e.findings().unwrap();
    let failed: Vec<_> = f
        .failed_operations
        .iter()
        .map(|e| (e.operation.name(), e.reason))
        .collect();
    assert_eq!(failed, vec![("GetCredentialReport", FailureReason::Timeout)]);
    assert!(f.details.as_ref().unwrap().access_keys.is_none());
    assert!(
        f.details.as_ref().unwrap().mfa_devices.is_some(),
        "the virtual devices still count"
    );
}
