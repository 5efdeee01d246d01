//! `/metrics`: a prometheus-client [`Collector`] that renders the latest snapshot at scrape time,
//! next to the registered self-metrics; and the conversion to the classic text format for
//! clients that do not ask for OpenMetrics.

use std::fmt;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::model::{CredentialStatus, MfaType, unix_seconds};
use crate::refresh::SnapshotReceiver;
use crate::snapshot::{AccountEntry, Snapshot};
use crate::telemetry::Telemetry;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Build the registry served on `/metrics`.
pub fn registry(snapshots: SnapshotReceiver, refresh_interval: Duration, telemetry: &Telemetry) -> Registry {
    let mut registry = Registry::default();
    telemetry.register(&mut registry);
    registry.register_collector(Box::new(SnapshotCollector {
        snapshots,
        refresh_interval,
    }));
    registry
}

/// Encode the registry as OpenMetrics text.
pub fn encode_openmetrics(registry: &Registry) -> String {
    let mut out = String::with_capacity(64 * 1024);
    prometheus_client::encoding::text::encode(&mut out, registry).expect("writing to a String cannot fail");
    out
}

/// Rewrite OpenMetrics text as the Prometheus text format 0.0.4: counter families are named
/// with their `_total` suffix, and the `# EOF` and `# UNIT` lines go.
pub fn openmetrics_to_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let rewritten = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters.contains(name).then(|| format!("{prefix}{name}_total {tail}"))
        });
        match rewritten {
            Some(l) => out.push_str(&l),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[derive(Debug)]
struct SnapshotCollector {
    snapshots: SnapshotReceiver,
    refresh_interval: Duration,
}

type Labels<'a> = Vec<(&'static str, &'a str)>;

/// Reads one flag of GetAccountSummary.
type SummaryFlag = fn(&crate::model::RootSummary) -> bool;

/// One family: descriptor, then its samples.
fn family<'a, N>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (Labels<'a>, N)>,
) -> fmt::Result
where
    ConstGauge<N>: EncodeMetric,
{
    let mut metric = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in samples {
        if labels.is_empty() {
            // A family without labels has exactly one sample, written without braces.
            return ConstGauge::new(value).encode(metric);
        }
        ConstGauge::new(value).encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

fn account_labels(e: &AccountEntry) -> Labels<'_> {
    vec![
        ("account_id", e.account.id.as_str()),
        ("account_name", e.account.name.as_str()),
    ]
}

fn with<'a>(mut base: Labels<'a>, key: &'static str, value: &'a str) -> Labels<'a> {
    base.push((key, value));
    base
}

const FROM_REFRESH: &str = "Cached from the exporter's background refresh";

impl Collector for SnapshotCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let interval = humantime::format_duration(self.refresh_interval).to_string();
        let cached = format!("{FROM_REFRESH} (every {interval}); absent until the account was audited successfully.");
        family(
            &mut enc,
            "aws_root_exporter_build_info",
            "The exporter's version; always 1.",
            [(vec![("version", VERSION)], 1i64)],
        )?;
        family(
            &mut enc,
            "aws_root_exporter_refresh_interval_seconds",
            "Configured time between refreshes of the organization snapshot.",
            [(vec![], self.refresh_interval.as_secs_f64())],
        )?;
        let snapshot = self.snapshots.borrow().clone();
        let Some(s) = snapshot.as_deref() else {
            return Ok(());
        };
        encode_self(&mut enc, s)?;
        encode_accounts(&mut enc, s, &cached, &interval)?;
        encode_details(&mut enc, s, &cached)?;
        Ok(())
    }
}

fn encode_self(enc: &mut DescriptorEncoder, s: &Snapshot) -> fmt::Result {
    family(
        enc,
        "aws_root_exporter_refresh_duration_seconds",
        "Wall time of the last finished refresh (discovery and every audit).",
        [(vec![], s.refresh_duration.as_secs_f64())],
    )?;
    family(
        enc,
        "aws_root_exporter_refresh_success",
        "1 if the last refresh could list the organization, 0 if discovery failed and the previous snapshot is served.",
        [(vec![], i64::from(s.refresh_ok))],
    )?;
    family(
        enc,
        "aws_root_exporter_last_refresh_success_timestamp_seconds",
        "Unix time at which the last successful refresh finished.",
        s.last_refresh_success.map(|t| (vec![], unix_seconds(t))),
    )?;
    let (ok, failed, skipped) = s.outcome_counts();
    family(
        enc,
        "aws_root_exporter_accounts",
        "Accounts of the last snapshot by outcome: audited (last audit succeeded), failed, skipped (not audited).",
        [
            (vec![("outcome", "audited")], ok as i64),
            (vec![("outcome", "failed")], failed as i64),
            (vec![("outcome", "skipped")], skipped as i64),
        ],
    )
}

fn encode_accounts(enc: &mut DescriptorEncoder, s: &Snapshot, cached: &str, interval: &str) -> fmt::Result {
    let accounts = s.accounts.as_slice();
    family(
        enc,
        "aws_account_info",
        &format!("Every account of the organization; always 1. {FROM_REFRESH} (every {interval})."),
        accounts.iter().map(|e| {
            let mut l = account_labels(e);
            l.push(("status", e.account.status.as_str()));
            l.push(("management", if e.account.is_management { "true" } else { "false" }));
            l.push(("audited", if e.audited { "true" } else { "false" }));
            (l, 1i64)
        }),
    )?;
    let known = || accounts.iter().filter_map(|e| e.findings.as_ref().map(|f| (e, f)));
    let flags: [(&str, &str, SummaryFlag); 4] = [
        (
            "aws_root_access_keys_present",
            "1 if the root user has at least one access key, also when deactivated (AccountAccessKeysPresent).",
            |s| s.access_keys_present,
        ),
        (
            "aws_root_mfa_enabled",
            "1 if the root user has an MFA device (AccountMFAEnabled).",
            |s| s.mfa_enabled,
        ),
        (
            "aws_root_password_present",
            "1 if the root user has a console password (AccountPasswordPresent).",
            |s| s.password_present,
        ),
        (
            "aws_root_signing_certificates_present",
            "1 if the root user has an X.509 signing certificate (AccountSigningCertificatesPresent).",
            |s| s.signing_certificates_present,
        ),
    ];
    for (name, help, get) in flags {
        family(
            enc,
            name,
            &format!("{help} {cached}"),
            known().map(|(e, f)| (account_labels(e), i64::from(get(&f.summary)))),
        )?;
    }
    let audited = || {
        accounts
            .iter()
            .filter(|e| e.audited && (e.findings.is_some() || e.failure.is_some()))
    };
    family(
        enc,
        "aws_root_audit_success",
        &format!(
            "1 if the last audit attempt of the account succeeded, 0 if it failed. {FROM_REFRESH} (every {interval})."
        ),
        audited().map(|e| (account_labels(e), i64::from(e.failure.is_none()))),
    )?;
    family(
        enc,
        "aws_root_audit_failure_reason",
        "1 while the account's last audit attempt failed, with the reason; absent after a success.",
        audited().filter_map(|e| e.failure.map(|r| (with(account_labels(e), "reason", r.as_str()), 1i64))),
    )?;
    family(
        enc,
        "aws_root_audit_last_success_timestamp_seconds",
        "Unix time of the account's last successful audit; absent until the first one.",
        accounts
            .iter()
            .filter_map(|e| e.last_success.map(|t| (account_labels(e), unix_seconds(t)))),
    )?;
    family(
        enc,
        "aws_root_audit_operation_failure",
        "1 for each deeper call of a full audit that failed while GetAccountSummary succeeded (partial result), with the operation and reason.",
        known().flat_map(|(e, f)| {
            f.failed_operations.iter().map(move |(op, r)| {
                (
                    with(with(account_labels(e), "operation", op), "reason", r.as_str()),
                    1i64,
                )
            })
        }),
    )
}

fn encode_details(enc: &mut DescriptorEncoder, s: &Snapshot, cached: &str) -> fmt::Result {
    let accounts = s.accounts.as_slice();
    let details = || {
        accounts
            .iter()
            .filter_map(|e| e.findings.as_ref()?.details.as_ref().map(|d| (e, d)))
    };
    let keys = || details().filter_map(|(e, d)| d.access_keys.as_ref().map(|k| (e, k)));
    family(
        enc,
        "aws_root_access_keys",
        &format!("Number of root access keys by status (active, inactive; expired keys count as inactive). {cached}"),
        keys().flat_map(|(e, k)| {
            let active = k.iter().filter(|k| k.status == CredentialStatus::Active).count() as i64;
            let inactive = k.len() as i64 - active;
            [
                (with(account_labels(e), "status", "active"), active),
                (with(account_labels(e), "status", "inactive"), inactive),
            ]
        }),
    )?;
    family(
        enc,
        "aws_root_access_key_created_timestamp_seconds",
        &format!("Unix time at which the root access key was created. {cached}"),
        keys().flat_map(|(e, k)| {
            k.iter().filter_map(move |k| {
                k.created
                    .map(|t| (with(account_labels(e), "access_key_id", k.id.as_str()), unix_seconds(t)))
            })
        }),
    )?;
    family(
        enc,
        "aws_root_access_key_last_used_timestamp_seconds",
        &format!("Unix time of the root access key's last use; absent for a key never used. {cached}"),
        keys().flat_map(|(e, k)| {
            k.iter().filter_map(move |k| {
                k.last_used
                    .map(|t| (with(account_labels(e), "access_key_id", k.id.as_str()), unix_seconds(t)))
            })
        }),
    )?;
    family(
        enc,
        "aws_root_mfa_devices",
        &format!(
            "Number of root MFA devices by type, told from the serial number: virtual, hardware (TOTP token), passkey (FIDO), sms. {cached}"
        ),
        details()
            .filter_map(|(e, d)| d.mfa_devices.as_ref().map(|m| (e, m)))
            .flat_map(|(e, m)| {
                MfaType::ALL.map(|t| {
                    (
                        with(account_labels(e), "type", t.as_str()),
                        m.iter().filter(|d| **d == t).count() as i64,
                    )
                })
            }),
    )?;
    let passwords = || details().filter_map(|(e, d)| d.password.as_ref().and_then(|p| p.as_ref()).map(|p| (e, p)));
    family(
        enc,
        "aws_root_password_created_timestamp_seconds",
        &format!(
            "Unix time at which the root user's console password was created; absent without a password. {cached}"
        ),
        passwords().filter_map(|(e, p)| p.created.map(|t| (account_labels(e), unix_seconds(t)))),
    )?;
    family(
        enc,
        "aws_root_password_last_used_timestamp_seconds",
        &format!("Unix time of the root user's last console sign-in, when AWS knows it. {cached}"),
        passwords().filter_map(|(e, p)| p.last_used.map(|t| (account_labels(e), unix_seconds(t)))),
    )?;
    family(
        enc,
        "aws_root_signing_certificates",
        &format!("Number of root X.509 signing certificates by status (active, inactive). {cached}"),
        details()
            .filter_map(|(e, d)| d.signing_certificates.as_ref().map(|c| (e, c)))
            .flat_map(|(e, c)| {
                let active = c.iter().filter(|c| **c == CredentialStatus::Active).count() as i64;
                [
                    (with(account_labels(e), "status", "active"), active),
                    (with(account_labels(e), "status", "inactive"), c.len() as i64 - active),
                ]
            }),
    )?;
    family(
        enc,
        "aws_organizations_feature_enabled",
        "1 if the organization has the centralized root access feature enabled (iam:ListOrganizationsFeatures), 0 if not; absent when it could not be read.",
        s.organization
            .features
            .iter()
            .flatten()
            .map(|(f, on)| (vec![("feature", *f)], i64::from(*on))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_format_names_counters_with_total() {
        let om = "# HELP x_requests Calls.\n# TYPE x_requests counter\nx_requests_total{a=\"b\"} 3\n# HELP g A gauge.\n# TYPE g gauge\ng 1\n# EOF\n";
        let text = openmetrics_to_text(om);
        assert_eq!(
            text,
            "# HELP x_requests_total Calls.\n# TYPE x_requests_total counter\nx_requests_total{a=\"b\"} 3\n# HELP g A gauge.\n# TYPE g gauge\ng 1\n"
        );
    }
}
