//! `/metrics` as a pure function of a fixed snapshot: the golden file, the family table against
//! `docs/metrics.md` in both directions, and hostile account names, all read back with a real
//! exposition parser; and the same names through the `audit` reports (TSV, CSV, JSON).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_root_exporter::activity::{ActivityKind, ActivityLog};
use aws_root_exporter::aws::access::Method;
use aws_root_exporter::aws::{AwsCallError, Operation};
use aws_root_exporter::config::{RawConfig, tag_label};
use aws_root_exporter::model::{
    AccessKey, Account, AuditFindings, Credential, CredentialStatus, DetailSource, FailureReason, MfaType, Password,
    RootDetails, RootSummary,
};
use aws_root_exporter::render::families::{FAMILIES, Process};
use aws_root_exporter::render::metrics::{Format, MetricsSource, openmetrics_to_text, render_snapshot};
use aws_root_exporter::snapshot::{AccountEntry, AuditState, Known, OrganizationFacts, Snapshot};
use aws_root_exporter::telemetry::Telemetry;
use openmetrics_parser::{
    MetricFamily, RenderableMetricValue, openmetrics::parse_openmetrics, prometheus::parse_prometheus,
};

/// An account name with everything AWS allows and a careless exporter breaks on.
const HOSTILE: &str = "say \"hi\" \\ back\n\t{x=\"1\"} ünï ✓";

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

fn account(id: &str, name: &str, status: &str, is_management: bool) -> Account {
    Account {
        id: id.into(),
        name: name.into(),
        status: status.into(),
        is_management,
        ou_path: Some("Root".into()),
        tags: Vec::new(),
    }
}

fn entry(account: Account, state: AuditState, method: Option<Method>) -> AccountEntry {
    AccountEntry {
        account,
        state,
        method,
        updated: None,
    }
}

fn summary(mfa: bool, keys: bool, password: bool, certs: bool) -> RootSummary {
    RootSummary {
        mfa_enabled: mfa,
        access_keys_present: keys,
        password_present: password,
        signing_certificates_present: certs,
    }
}

fn known(findings: AuditFindings, secs: u64) -> Known {
    Known {
        findings: Arc::new(findings),
        at: at(secs),
    }
}

/// One account in every state the exporter can serve, with fixed times.
fn fixed_snapshot() -> Snapshot {
    let deep = AuditFindings {
        summary: summary(true, true, true, true),
        details: Some(RootDetails {
            access_keys: Some(vec![
                AccessKey {
                    id: "AKIAEXAMPLEACTIVE001".into(),
                    status: CredentialStatus::Active,
                    created: Some(at(1_551_520_800)),
                    last_used: Some(at(1_761_998_400)),
                },
                AccessKey {
                    id: "AKIAEXAMPLEINACTIVE1".into(),
                    status: CredentialStatus::Inactive,
                    created: Some(at(1_590_969_600)),
                    last_used: None,
                },
            ]),
            mfa_devices: Some(vec![MfaType::Virtual, MfaType::Passkey]),
            password: Some(Some(Password {
                created: Some(at(1_551_430_800)),
                last_used: Some(at(1_761_812_100)),
            })),
            signing_certificates: Some(vec![CredentialStatus::Active, CredentialStatus::Inactive]),
            source: DetailSource::RootSession,
        }),
        failed_operations: vec![],
        inconsistencies: vec![],
    };
    let partial = AuditFindings {
        summary: summary(true, false, true, false),
        details: Some(RootDetails {
            access_keys: Some(vec![]),
            mfa_devices: None,
            password: Some(None),
            signing_certificates: Some(vec![]),
            source: DetailSource::RootSession,
        }),
        failed_operations: vec![AwsCallError {
            operation: Operation::ListMfaDevices,
            reason: FailureReason::Other,
            message: "ServiceUnavailable: try again".into(),
        }],
        inconsistencies: vec![],
    };
    let summary_only = AuditFindings {
        summary: summary(false, false, false, false),
        details: None,
        failed_operations: vec![],
        inconsistencies: vec![],
    };
    // Audited through a role: the deep facts come from the credential report.
    let from_report = AuditFindings {
        summary: summary(true, true, true, false),
        details: Some(RootDetails {
            access_keys: Some(vec![AccessKey {
                id: "key_1".into(),
                status: CredentialStatus::Active,
                created: Some(at(1_551_520_800)),
                last_used: None,
            }]),
            mfa_devices: Some(vec![MfaType::NonVirtual]),
            password: Some(Some(Password {
                created: None,
                last_used: Some(at(1_761_812_100)),
            })),
            signing_certificates: Some(vec![]),
            source: DetailSource::CredentialReport {
                generated: Some(at(1_763_999_000)),
            },
        }),
        failed_operations: vec![],
        inconsistencies: vec![],
    };
    // A root key created after the cached credential report: the summary says present, the
    // report none; the report's key figures are withheld, the contradiction named.
    let stale_report = AuditFindings {
        summary: summary(false, true, false, false),
        details: Some(RootDetails {
            access_keys: None,
            mfa_devices: Some(vec![]),
            password: Some(None),
            signing_certificates: Some(vec![]),
            source: DetailSource::CredentialReport {
                generated: Some(at(1_763_990_000)),
            },
        }),
        failed_operations: vec![],
        inconsistencies: vec![Credential::AccessKeys],
    };
    let mut workload = account("999999999999", "workload", "ACTIVE", false);
    workload.ou_path = Some("Root/Workloads/Prod".into());
    workload.tags = vec![("owner".into(), "team \"a\"".into())];
    let ok = |f: &AuditFindings| AuditState::Succeeded(known(f.clone(), 1_764_000_000));
    let entries = vec![
        entry(
            account("111111111111", "management", "ACTIVE", true),
            ok(&summary_only),
            Some(Method::OwnCredentials),
        ),
        entry(
            account("222222222222", "legacy-billing", "ACTIVE", false),
            ok(&deep),
            Some(Method::AssumeRoot),
        ),
        entry(
            account("333333333333", HOSTILE, "ACTIVE", false),
            ok(&summary_only),
            Some(Method::AssumeRoot),
        ),
        entry(
            account("444444444444", "partial", "ACTIVE", false),
            ok(&partial),
            Some(Method::AssumeRoot),
        ),
        entry(
            account("555555555555", "scp-blocked", "ACTIVE", false),
            AuditState::Failed {
                reason: FailureReason::AccessDenied,
                message:
                    "sts:AssumeRoot failed (access_denied): AccessDenied: explicit deny in a service control policy"
                        .into(),
                last_good: None,
            },
            Some(Method::AssumeRoot),
        ),
        entry(
            account("666666666666", "flaky", "ACTIVE", false),
            AuditState::Failed {
                reason: FailureReason::Throttled,
                message: "iam:GetAccountSummary failed (throttled): Throttling: Rate exceeded".into(),
                last_good: Some(known(summary_only.clone(), 1_763_990_000)),
            },
            Some(Method::AssumeRoot),
        ),
        entry(
            account("777777777777", "closing", "SUSPENDED", false),
            AuditState::Skipped,
            None,
        ),
        entry(
            account("888888888888", "just-joined", "ACTIVE", false),
            AuditState::Pending,
            Some(Method::AssumeRoot),
        ),
        entry(workload, ok(&from_report), Some(Method::MemberRole)),
        entry(
            account("123412341234", "stale-report", "ACTIVE", false),
            ok(&stale_report),
            Some(Method::MemberRole),
        ),
    ];
    Snapshot {
        accounts: Arc::new(entries),
        organization: OrganizationFacts {
            id: Some("o-exampleorg1".into()),
            management_account_id: Some("111111111111".into()),
            features: Some(vec![("RootCredentialsManagement", true), ("RootSessions", false)]),
        },
        refresh_ok: true,
        discovery_failure: None,
        refresh_duration: Duration::from_millis(12_500),
        last_refresh_success: Some(at(1_764_000_005)),
        activity: Arc::new(activity()),
    }
}

/// Root activity the consumer counted: sign-ins on the management account, a privileged
/// session and an API call on the account with the hostile name.
fn activity() -> ActivityLog {
    let mut log = ActivityLog::default();
    log.record("111111111111", ActivityKind::ConsoleSignin, at(1_763_999_000));
    log.record("111111111111", ActivityKind::ConsoleSignin, at(1_763_999_500));
    log.record("111111111111", ActivityKind::ConsoleSigninFailure, at(1_763_998_000));
    log.record("333333333333", ActivityKind::PrivilegedSession, at(1_763_999_900));
    log.record("333333333333", ActivityKind::ApiCall, at(1_700_000_000));
    log
}

/// The process facts the fixed snapshot is rendered with: a 1h interval, two account tags.
fn process() -> Process {
    Process {
        refresh_interval: Duration::from_secs(3600),
        account_tags: vec!["owner".into(), "cost-center".into()],
    }
}

#[test]
fn fixed_snapshot_matches_the_golden_file() {
    let text = common::without_build_facts(&openmetrics_to_text(&render_snapshot(
        Some(&fixed_snapshot()),
        &process(),
    )));
    let path = "tests/golden/fixed-snapshot.prom";
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(path, &text).unwrap();
    }
    let want = std::fs::read_to_string(path).expect("golden file exists; regenerate with UPDATE_GOLDEN=1");
    assert_eq!(
        text, want,
        "/metrics of the fixed snapshot changed; if on purpose, regenerate with UPDATE_GOLDEN=1 cargo test --test metrics"
    );
}

#[test]
fn rendering_is_a_pure_function_of_the_snapshot() {
    let s = fixed_snapshot();
    assert_eq!(
        render_snapshot(Some(&s), &process()),
        render_snapshot(Some(&s), &process())
    );
    let empty = render_snapshot(None, &process());
    let families = parse_openmetrics(&empty).expect("valid OpenMetrics").families;
    let names: BTreeSet<&str> = families.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        BTreeSet::from([
            "aws_root_exporter_build_info",
            "aws_root_exporter_refresh_interval_seconds"
        ]),
        "before the first refresh only the process families are served"
    );
}

/// What docs/metrics.md says of one metric.
#[derive(Debug)]
struct Documented {
    kind: String,
    labels: BTreeSet<String>,
}

/// Metric name -> type and labels, from the tables of docs/metrics.md.
fn documented() -> BTreeMap<String, Documented> {
    let doc = std::fs::read_to_string("docs/metrics.md").unwrap();
    let mut per_account = false;
    let mut out = BTreeMap::new();
    for line in doc.lines() {
        if let Some(heading) = line.strip_prefix("## ") {
            per_account = heading.starts_with("Per account");
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 5 || !cells[1].starts_with('`') {
            continue;
        }
        let mut labels: BTreeSet<String> = cells[3]
            .split(',')
            .map(|l| l.trim().trim_matches('`').to_string())
            .filter(|l| !l.is_empty())
            // `tag_<key>` stands for one label per configured tag key.
            .flat_map(|l| match l.as_str() {
                "tag_<key>" => process().account_tags.iter().map(|k| tag_label(k)).collect(),
                _ => vec![l],
            })
            .collect();
        if per_account {
            labels.extend(["account_id".to_string(), "account_name".to_string()]);
        }
        let name = cells[1].trim_matches('`').to_string();
        let doc = Documented {
            kind: cells[2].to_string(),
            labels,
        };
        assert!(out.insert(name.clone(), doc).is_none(), "{name} is documented twice");
    }
    assert!(out.len() > 20, "docs/metrics.md tables were read: {out:?}");
    out
}

/// The whole `/metrics` body of the fixed snapshot, with self-metrics that have counted.
fn full_exposition() -> String {
    let telemetry = Telemetry::default();
    telemetry.record_call(Operation::AssumeRoot, None);
    telemetry.record_call(Operation::GetAccountSummary, Some(FailureReason::AccessDenied));
    telemetry.record_refresh(true);
    telemetry.record_retry(Operation::AssumeRoot, FailureReason::Throttled);
    telemetry.record_throttled(Operation::AssumeRoot);
    telemetry.set_concurrency_limit(Operation::AssumeRoot, 8);
    telemetry.record_event("relevant");
    telemetry.record_event_audit(true);
    telemetry.observe_event_latency(std::time::Duration::from_millis(4200));
    telemetry.record_queue_read(false);
    // A refresh running: its progress is served while it lasts.
    let progress = telemetry.progress();
    let _running = progress.start();
    progress.found();
    progress.audited(false);
    let (_tx, rx) = tokio::sync::watch::channel(Some(Arc::new(fixed_snapshot())));
    let config = RawConfig {
        refresh_interval: "1h".into(),
        account_tags: process().account_tags,
        events_queue_url: "http://127.0.0.1:1/111111111111/aws-root-events".into(),
        ..RawConfig::default()
    };
    let (_config_tx, configs) = tokio::sync::watch::channel(Arc::new(config.validate().unwrap()));
    MetricsSource::new(rx, configs, &telemetry).encode_openmetrics()
}

/// The fixed snapshot's accounts many times over (distinct ids): an exposition of several MiB.
fn large_snapshot(copies: usize) -> Snapshot {
    let mut s = fixed_snapshot();
    let one: Vec<AccountEntry> = s.accounts.iter().cloned().collect();
    let mut entries = Vec::with_capacity(one.len() * copies);
    for n in 0..copies {
        for e in &one {
            let mut e = e.clone();
            e.account.id = format!("{:012}", 500_000_000_000 + entries.len());
            e.account.name = format!("{} #{n}", e.account.name);
            entries.push(e);
        }
    }
    s.accounts = Arc::new(entries);
    s
}

fn gunzip(bytes: &[u8]) -> String {
    use std::io::Read;
    let mut text = String::new();
    // GzDecoder checks the trailer's CRC-32 and length.
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut text)
        .expect("a valid gzip member");
    text
}

#[tokio::test]
async fn the_gzip_scrape_is_the_plain_exposition_compressed_and_prepared_once_per_snapshot() {
    let telemetry = Telemetry::default();
    telemetry.record_call(Operation::AssumeRoot, None);
    let (tx, rx) = tokio::sync::watch::channel(Some(Arc::new(large_snapshot(400))));
    let config = RawConfig {
        account_tags: process().account_tags,
        ..RawConfig::default()
    };
    let (config_tx, configs) = tokio::sync::watch::channel(Arc::new(config.validate().unwrap()));
    let metrics = MetricsSource::new(rx, configs, &telemetry);
    let plain = metrics.encode_openmetrics();
    assert!(plain.len() > 1 << 20, "several chunks: {} bytes", plain.len());
    let zipped = metrics.gzip(Format::OpenMetrics).await.to_vec();
    let om = gunzip(&zipped);
    // Self-metrics first (the process_* ones differ from moment to moment), families after.
    let families_at = |t: &str| {
        t.find("# HELP aws_root_exporter_build_info ")
            .expect("families are there")
    };
    assert_eq!(om[families_at(&om)..], plain[families_at(&plain)..]);
    assert!(om.ends_with("\n# EOF\n") && om.matches("# EOF").count() == 1);
    assert!(om.contains("aws_root_exporter_aws_requests_total{"));
    assert!(
        zipped.len() * 10 < om.len(),
        "compressed {} of {}",
        zipped.len(),
        om.len()
    );
    parse_openmetrics(&om).expect("the decompressed body is valid OpenMetrics");
    // Without gzip: the same text, streamed in chunks inflated from the prepared body.
    let chunks: Vec<Vec<u8>> = futures::StreamExt::collect(metrics.plain(Format::OpenMetrics).await).await;
    assert!(chunks.len() > 10, "{} chunks", chunks.len());
    let streamed = String::from_utf8(chunks.concat()).unwrap();
    assert_eq!(streamed[families_at(&streamed)..], plain[families_at(&plain)..]);
    let chunks: Vec<Vec<u8>> = futures::StreamExt::collect(metrics.plain(Format::Text).await).await;
    let streamed = String::from_utf8(chunks.concat()).unwrap();
    let want = openmetrics_to_text(&plain);
    assert_eq!(streamed[families_at(&streamed)..], want[families_at(&want)..]);

    let text = gunzip(&metrics.gzip(Format::Text).await.to_vec());
    let want = openmetrics_to_text(&plain);
    assert_eq!(text[families_at(&text)..], want[families_at(&want)..]);
    assert!(!text.contains("# EOF"));
    assert!(text.contains("# TYPE aws_root_exporter_aws_requests_total counter"));

    // Live self-metrics, prepared families: a new count shows, the families are not rendered again.
    let first = metrics.prepared().await;
    telemetry.record_call(Operation::AssumeRoot, None);
    assert!(
        gunzip(&metrics.gzip(Format::OpenMetrics).await.to_vec())
            .contains("aws_root_exporter_aws_requests_total{service=\"sts\",operation=\"AssumeRoot\"} 2")
    );
    assert!(Arc::ptr_eq(&first, &metrics.prepared().await));
    // A new snapshot, or a new configuration, is rendered anew.
    tx.send_replace(Some(Arc::new(fixed_snapshot())));
    let second = metrics.prepared().await;
    assert!(!Arc::ptr_eq(&first, &second));
    drop(first);
    let small = gunzip(&metrics.gzip(Format::OpenMetrics).await.to_vec());
    let plain = metrics.encode_openmetrics();
    assert_eq!(small[families_at(&small)..], plain[families_at(&plain)..]);
    config_tx.send_replace(Arc::new(RawConfig::default().validate().unwrap()));
    assert!(!Arc::ptr_eq(&second, &metrics.prepared().await));
    // Before the first refresh: the families that need no snapshot, still one valid member.
    tx.send_replace(None);
    let empty = gunzip(&metrics.gzip(Format::OpenMetrics).await.to_vec());
    assert!(empty.ends_with("# EOF\n") && !empty.contains("aws_organizations_account_info"));
}

#[test]
fn every_emitted_metric_is_documented_and_every_documented_metric_is_emitted() {
    let om = full_exposition();
    let parsed = parse_openmetrics(&om).expect("/metrics is valid OpenMetrics");
    // The classic text format parses too, and holds the same families.
    let text = parse_prometheus(&openmetrics_to_text(&om)).expect("/metrics is valid Prometheus text");
    let docs = documented();
    let mut emitted = BTreeSet::new();
    for family in parsed.families.values() {
        let kind = format!("{:?}", family.family_type).to_lowercase();
        // OpenMetrics names a counter family without `_total`; the docs use the sample name.
        let name = match kind.as_str() {
            "counter" => format!("{}_total", family.family_name),
            _ => family.family_name.clone(),
        };
        assert!(
            text.families.contains_key(&name),
            "{name} is missing from the text format"
        );
        let doc = docs
            .get(&name)
            .unwrap_or_else(|| panic!("{name} is emitted but not in docs/metrics.md"));
        assert_eq!(doc.kind, kind, "type of {name}");
        let labels: BTreeSet<String> = family.get_label_names().iter().cloned().collect();
        assert_eq!(labels, doc.labels, "labels of {name} (emitted vs documented)");
        assert!(family.iter_samples().next().is_some(), "{name} has samples");
        emitted.insert(name);
    }
    let documented: BTreeSet<String> = docs.keys().cloned().collect();
    assert_eq!(
        documented.difference(&emitted).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "documented but never emitted for the fixed snapshot"
    );
}

#[test]
fn the_family_table_declares_what_the_docs_say() {
    let docs = documented();
    for family in &FAMILIES {
        let doc = docs
            .get(family.name)
            .unwrap_or_else(|| panic!("{} is in the family table but not documented", family.name));
        let mut declared: BTreeSet<String> = family.labels.iter().map(|l| l.to_string()).collect();
        if family.tag_labels {
            declared.extend(process().account_tags.iter().map(|k| tag_label(k)));
        }
        assert_eq!(declared, doc.labels, "labels of {}", family.name);
        assert_eq!(doc.kind, "gauge", "{}", family.name);
    }
}

/// The `account_name` of every sample of a parsed family.
fn account_names<T: Clone, V: RenderableMetricValue + Clone>(family: &MetricFamily<T, V>) -> Vec<String> {
    family
        .iter_samples()
        .map(|s| {
            let labels = s.get_labelset().expect("samples are bound to their family");
            labels
                .get_label_value("account_name")
                .expect("an account label")
                .to_string()
        })
        .collect()
}

#[test]
fn hostile_account_names_stay_inside_their_label_value() {
    let om = render_snapshot(Some(&fixed_snapshot()), &process());
    let from_om =
        account_names(&parse_openmetrics(&om).expect("valid OpenMetrics").families["aws_organizations_account_info"]);
    let text = parse_prometheus(&openmetrics_to_text(&om)).expect("valid Prometheus text");
    let from_text = account_names(&text.families["aws_organizations_account_info"]);
    for (format, names) in [("OpenMetrics", from_om), ("text", from_text)] {
        assert!(names.iter().any(|n| n == HOSTILE), "{format}: {names:?}");
        assert_eq!(names.len(), 10, "{format}: every account is one sample");
    }
}

/// The fixed snapshot with this name for its deep-audited account. (Every family keeps samples:
/// openmetrics-parser rejects a family without samples, which OpenMetrics allows.)
fn one_account(name: &str) -> Snapshot {
    let mut s = fixed_snapshot();
    let mut entries: Vec<AccountEntry> = s.accounts.iter().cloned().collect();
    entries[1].account.name = name.to_string();
    s.accounts = Arc::new(entries);
    s
}

use proptest::prelude::*;

/// Any name AWS allows: 1 to 50 characters of any kind, but for a bare carriage return. The
/// OpenMetrics ABNF allows it raw in a label value, and promtool and Prometheus read it so (the
/// e2e test scrapes one), but openmetrics-parser's grammar takes it for a line end.
fn account_name() -> impl Strategy<Value = String> {
    let char = any::<char>().prop_filter("openmetrics-parser reads \\r as a line end", |c| *c != '\r');
    proptest::collection::vec(char, 1..=50).prop_map(|c| c.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// AWS allows 1 to 50 characters of any kind in an account name; every one of them comes
    /// back from both exposition formats exactly, through a real parser.
    #[test]
    fn any_account_name_round_trips_through_both_formats(
        name in account_name()
    ) {
        let om = render_snapshot(Some(&one_account(&name)), &process());
        let parsed = parse_openmetrics(&om);
        prop_assert!(parsed.is_ok(), "OpenMetrics does not parse for {:?}: {:?}", name, parsed.err());
        let names = account_names(&parsed.unwrap().families["aws_organizations_account_info"]);
        prop_assert!(names.contains(&name), "{:?} not in {:?}", name, names);
        let text = parse_prometheus(&openmetrics_to_text(&om));
        prop_assert!(text.is_ok(), "text format does not parse for {:?}: {:?}", name, text.err());
        let names = account_names(&text.unwrap().families["aws_organizations_account_info"]);
        prop_assert!(names.contains(&name), "{:?} not in {:?}", name, names);
    }
}

/// Read RFC 4180 CSV: fields separated by commas, quoted fields with doubled quotes, line breaks
/// inside quotes kept.
fn read_csv(text: &str) -> Vec<Vec<String>> {
    let (mut rows, mut row, mut field) = (Vec::new(), Vec::new(), String::new());
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    rows
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// JSON and CSV carry any name exactly; the classic TSV, which cannot hold a tab or a line
    /// break inside a field, writes those as spaces and everything else as it is.
    #[test]
    fn any_account_name_survives_the_reports(
        name in prop_oneof![account_name(), Just("a\r\nb,\"c\"".to_string())]
    ) {
        use aws_root_exporter::render::report::{Format, render};
        let snapshot = one_account(&name);
        let json: serde_json::Value = serde_json::from_str(&render(&snapshot, Format::Json)).unwrap();
        prop_assert_eq!(json["accounts"][1]["account_name"].as_str(), Some(name.as_str()));
        let csv = read_csv(&render(&snapshot, Format::Csv));
        prop_assert_eq!(csv.len(), 1 + snapshot.accounts.len(), "one row per account");
        prop_assert_eq!(&csv[2][1], &name);
        prop_assert!(csv.iter().all(|r| r.len() == csv[0].len()), "every row has every column");
        let tsv = render(&snapshot, Format::Tsv);
        let row = tsv.lines().nth(1).unwrap();
        let fields: Vec<&str> = row.split('\t').collect();
        prop_assert_eq!(fields.len(), 6);
        prop_assert_eq!(fields[1], name.replace(['\t', '\n', '\r'], " "));
    }
}

/// Several organizations: each snapshot family has one HELP/TYPE with every organization's
/// samples, the self-metrics and account info name the organization, and an account two
/// organizations list (two entries reaching one organization) is served once, from the first:
/// the exposition stays valid.
#[tokio::test]
async fn several_organizations_render_as_one_valid_exposition() {
    use aws_root_exporter::snapshot::Snapshots;
    let telemetry = Telemetry::default();
    // Both count root activity of the account they both list: the live part of a scrape (the
    // activity counters) must serve it once too.
    let mut first = fixed_snapshot();
    let mut log = activity();
    log.record("222222222222", ActivityKind::ApiCall, at(1_763_999_000));
    first.activity = Arc::new(log);
    // The second lists one account of its own and one of the first's again.
    let mut second = fixed_snapshot();
    let twice = second.accounts[1].clone();
    let mut own = second.accounts[1].clone();
    own.account.id = "444455556666".into();
    own.account.name = "second-own".into();
    second.accounts = Arc::new(vec![twice, own]);
    second.organization.id = Some("o-secondorg01".into());
    let mut log = ActivityLog::default();
    log.record("222222222222", ActivityKind::ApiCall, at(1_763_999_100));
    log.record("444455556666", ActivityKind::ApiCall, at(1_763_999_200));
    second.activity = Arc::new(log);
    let (_a, rx_a) = tokio::sync::watch::channel(Some(Arc::new(first)));
    let (_b, rx_b) = tokio::sync::watch::channel(Some(Arc::new(second)));
    let (_c, rx_c) = tokio::sync::watch::channel(None);
    let snapshots = Snapshots(vec![
        ("first".into(), rx_a),
        ("second".into(), rx_b),
        ("waiting".into(), rx_c),
    ]);
    let config = RawConfig {
        account_tags: process().account_tags,
        ..RawConfig::default()
    };
    let (_config_tx, configs) = tokio::sync::watch::channel(Arc::new(config.validate().unwrap()));
    let metrics = MetricsSource::of_organizations(snapshots, configs, &telemetry);
    let om = gunzip(&metrics.gzip(Format::OpenMetrics).await.to_vec());
    let parsed = parse_openmetrics(&om).expect("valid OpenMetrics with several organizations");
    assert_eq!(om.matches("# TYPE aws_organizations_account_info gauge").count(), 1);
    assert!(
        om.contains("aws_root_exporter_refresh_success{organization=\"first\"} 1"),
        "{om}"
    );
    assert!(
        om.contains("aws_root_exporter_refresh_success{organization=\"second\"} 1"),
        "{om}"
    );
    assert!(
        !om.contains("organization=\"waiting\""),
        "nothing before its first refresh"
    );
    let info = &parsed.families["aws_organizations_account_info"];
    let orgs_of = |id: &str| -> Vec<String> {
        info.iter_samples()
            .filter(|s| s.get_labelset().unwrap().get_label_value("account_id") == Some(id))
            .map(|s| {
                s.get_labelset()
                    .unwrap()
                    .get_label_value("organization")
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    assert_eq!(
        orgs_of("222222222222"),
        ["first"],
        "an account listed twice is served once"
    );
    assert_eq!(orgs_of("444455556666"), ["second"]);
    assert!(
        om.contains("organization=\"second\",organization_id=\"o-secondorg01\""),
        "{om}"
    );
    let keys_present = om
        .lines()
        .filter(|l| l.starts_with("aws_root_access_keys_present{account_id=\"222222222222\""))
        .count();
    assert_eq!(keys_present, 1);
    let api_calls = |id: &str| {
        let series = format!("aws_root_activity_events_total{{account_id=\"{id}\"");
        om.lines()
            .filter(|l| l.starts_with(&series) && l.contains("kind=\"api_call\""))
            .count()
    };
    assert_eq!(api_calls("222222222222"), 1, "counted in both, served once: {om}");
    assert_eq!(api_calls("444455556666"), 1, "the second's own account: {om}");
    parse_prometheus(&openmetrics_to_text(&om)).expect("valid text format too");
}
