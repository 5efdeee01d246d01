//! Every gauge family rendered from the snapshot, declared once: name, help, label names and
//! the function that produces its samples. [`render`] walks the table; `docs/metrics.md` is
//! checked against it (tests/metrics_docs.rs).

use std::time::{Duration, SystemTime};

use super::exposition::{Value, Writer};
use crate::activity::ActivityKind;
use crate::config::tag_label;
use crate::model::{CredentialStatus, DetailSource, RootSummary, unix_seconds};
use crate::snapshot::{AccountEntry, Snapshot};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The git revision the binary was built from (`unknown` outside a git checkout; build.rs).
pub const REVISION: &str = env!("AWS_ROOT_EXPORTER_BUILD_REVISION");
/// The date of that revision's commit, or `SOURCE_DATE_EPOCH` (build.rs).
pub const BUILD_DATE: &str = env!("AWS_ROOT_EXPORTER_BUILD_DATE");
/// The version of the Rust compiler that built it.
pub const RUSTC_VERSION: &str = env!("AWS_ROOT_EXPORTER_RUSTC_VERSION");

/// The labels every per-account family starts with.
pub const ACCOUNT_LABELS: [&str; 2] = ["account_id", "account_name"];

/// What a family's help text says about where its values come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Nothing is added.
    Plain,
    /// "Cached from the exporter's background refresh (every ...)."
    Refreshed,
    /// As `Refreshed`, and absent until the account was audited successfully.
    KnownOnly,
}

/// Where a family's samples come from.
#[derive(Clone, Copy)]
pub enum Source {
    /// The process itself: present before the first refresh too.
    Process(fn(&Process, &mut Samples<'_, '_>)),
    /// The latest snapshot: absent (no HELP/TYPE either) until the first refresh.
    Snapshot(fn(&Rendered<'_>, &mut Samples<'_, '_>)),
}

/// Facts about the running exporter that families read.
#[derive(Debug, Clone, Default)]
pub struct Process {
    pub refresh_interval: Duration,
    /// Account tag keys to serve, in `account_tags` order.
    pub account_tags: Vec<String>,
}

impl Process {
    /// What the running configuration says.
    pub fn of(config: &crate::config::Config) -> Process {
        Process {
            refresh_interval: config.refresh_interval,
            account_tags: config.account_tags.clone(),
        }
    }
}

pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub freshness: Freshness,
    /// Every label, in order; per-account families start with [`ACCOUNT_LABELS`].
    pub labels: &'static [&'static str],
    /// Followed by one `tag_<key>` label per configured account tag.
    pub tag_labels: bool,
    pub source: Source,
}

/// Samples of the family being written.
pub struct Samples<'w, 's> {
    writer: &'w mut Writer<'s>,
    family: &'static Family,
    names: Vec<&'w str>,
}

impl Samples<'_, '_> {
    /// A sample with these label values, in the order of the family's labels.
    pub fn add<'v>(&mut self, values: impl IntoIterator<Item = &'v str>, value: impl Into<Value>) {
        self.writer.sample(self.family.name, &self.names, values, value.into());
    }

    /// A per-account sample: the account's labels, then `extra`.
    pub fn account(&mut self, e: &AccountEntry, extra: &[&str], value: impl Into<Value>) {
        let values = [e.account.id.as_str(), e.account.name.as_str()]
            .into_iter()
            .chain(extra.iter().copied());
        self.add(values, value);
    }
}

/// What snapshot families read: one organization's snapshot, its name, and the process facts
/// of its configuration (tag keys).
pub struct Rendered<'a> {
    pub snapshot: &'a Snapshot,
    pub process: &'a Process,
    /// The organization's name: the `organization` label.
    pub organization: &'a str,
}

/// One organization as the families see it: its name, its latest snapshot (none before its
/// first refresh) and the process facts of its configuration.
#[derive(Clone, Copy)]
pub struct Organization<'a> {
    pub name: &'a str,
    pub snapshot: Option<&'a Snapshot>,
    pub process: &'a Process,
}

impl std::ops::Deref for Rendered<'_> {
    type Target = Snapshot;
    fn deref(&self) -> &Snapshot {
        self.snapshot
    }
}

const CACHED: &str = "Cached from the exporter's background refresh";

/// Render every family the state allows, in table order: the process families once (from
/// `process`), each snapshot family once with the samples of every organization that has a
/// snapshot (a family has no HELP/TYPE while none has).
pub fn render(writer: &mut Writer<'_>, process: &Process, organizations: &[Organization<'_>]) {
    let interval = humantime::format_duration(process.refresh_interval).to_string();
    for family in FAMILIES.iter() {
        let help = match family.freshness {
            Freshness::Plain => family.help.to_string(),
            Freshness::Refreshed => format!("{} {CACHED} (every {interval}).", family.help),
            Freshness::KnownOnly => format!(
                "{} {CACHED} (every {interval}); absent until the account was audited successfully.",
                family.help
            ),
        };
        match family.source {
            Source::Process(samples) => {
                writer.gauge(family.name, &help);
                let names = family.labels.to_vec();
                samples(process, &mut Samples { writer, family, names });
            }
            Source::Snapshot(samples) => {
                if organizations.iter().all(|o| o.snapshot.is_none()) {
                    continue;
                }
                writer.gauge(family.name, &help);
                for o in organizations {
                    let Some(snapshot) = o.snapshot else { continue };
                    let tag_labels: Vec<String> = o.process.account_tags.iter().map(|k| tag_label(k)).collect();
                    let mut names: Vec<&str> = family.labels.to_vec();
                    if family.tag_labels {
                        names.extend(tag_labels.iter().map(String::as_str));
                    }
                    let mut out = Samples {
                        writer: &mut *writer,
                        family,
                        names,
                    };
                    let rendered = Rendered {
                        snapshot,
                        process: o.process,
                        organization: o.name,
                    };
                    samples(&rendered, &mut out);
                }
            }
        }
    }
}

fn flag(s: &Rendered<'_>, out: &mut Samples<'_, '_>, get: fn(&RootSummary) -> bool) {
    for e in s.accounts.iter() {
        if let Some(f) = e.findings() {
            out.account(e, &[], get(&f.summary));
        }
    }
}

/// Accounts with deep findings, and those findings.
fn details<'a>(s: &'a Rendered<'_>) -> impl Iterator<Item = (&'a AccountEntry, &'a crate::model::RootDetails)> {
    s.accounts
        .iter()
        .filter_map(|e| e.findings()?.details.as_ref().map(|d| (e, d)))
}

/// One sample per root access key with a known time (`time` picks it), labelled by key id.
fn key_times(
    s: &Rendered<'_>,
    out: &mut Samples<'_, '_>,
    time: fn(&crate::model::AccessKey) -> Option<std::time::SystemTime>,
) {
    for (e, d) in details(s) {
        for k in d.access_keys.iter().flatten() {
            if let Some(t) = time(k) {
                out.account(e, &[k.id.as_str()], unix_seconds(t));
            }
        }
    }
}

fn by_status(out: &mut Samples<'_, '_>, e: &AccountEntry, statuses: impl Iterator<Item = CredentialStatus>) {
    let (mut active, mut inactive) = (0i64, 0i64);
    for s in statuses {
        match s {
            CredentialStatus::Active => active += 1,
            _ => inactive += 1,
        }
    }
    out.account(e, &["active"], active);
    out.account(e, &["inactive"], inactive);
}

fn bool_str(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

pub static FAMILIES: [Family; 26] = [
    Family {
        name: "aws_root_exporter_build_info",
        help: "The exporter's version, the git revision it was built from and the Rust compiler's version; always 1.",
        freshness: Freshness::Plain,
        labels: &["version", "revision", "rustc_version"],
        tag_labels: false,
        source: Source::Process(|_, out| out.add([VERSION, REVISION, RUSTC_VERSION], 1i64)),
    },
    Family {
        name: "aws_root_exporter_refresh_interval_seconds",
        help: "Configured time between refreshes of the organization snapshot.",
        freshness: Freshness::Plain,
        labels: &[],
        tag_labels: false,
        source: Source::Process(|p, out| out.add([], p.refresh_interval.as_secs_f64())),
    },
    Family {
        name: "aws_root_exporter_refresh_duration_seconds",
        help: "Wall time of the last finished refresh (discovery and every audit).",
        freshness: Freshness::Plain,
        labels: &["organization"],
        tag_labels: false,
        source: Source::Snapshot(|s, out| out.add([s.organization], s.refresh_duration.as_secs_f64())),
    },
    Family {
        name: "aws_root_exporter_refresh_success",
        help: "1 if the last refresh could list the organization, 0 if discovery failed and the previous snapshot is served.",
        freshness: Freshness::Plain,
        labels: &["organization"],
        tag_labels: false,
        source: Source::Snapshot(|s, out| out.add([s.organization], s.refresh_ok)),
    },
    Family {
        name: "aws_root_exporter_last_refresh_success_timestamp_seconds",
        help: "Unix time at which the last successful refresh finished.",
        freshness: Freshness::Plain,
        labels: &["organization"],
        tag_labels: false,
        source: Source::Snapshot(|s, out| {
            if let Some(t) = s.last_refresh_success {
                out.add([s.organization], unix_seconds(t));
            }
        }),
    },
    Family {
        name: "aws_root_exporter_accounts",
        help: "Accounts of the last snapshot by outcome: audited (last audit succeeded), failed, skipped (not audited).",
        freshness: Freshness::Plain,
        labels: &["organization", "outcome"],
        tag_labels: false,
        source: Source::Snapshot(|s, out| {
            let c = s.outcome_counts();
            out.add([s.organization, "audited"], c.audited);
            out.add([s.organization, "failed"], c.failed);
            out.add([s.organization, "skipped"], c.skipped);
        }),
    },
    Family {
        name: "aws_organizations_account_info",
        help: "Every account of the organization, where it sits and how it is audited; always 1.",
        freshness: Freshness::Refreshed,
        labels: &[
            "account_id",
            "account_name",
            "status",
            "management",
            "audited",
            "method",
            "ou_path",
            "organization",
            "organization_id",
        ],
        tag_labels: true,
        source: Source::Snapshot(|s, out| {
            let organization_id = s.snapshot.organization.id.as_deref().unwrap_or("");
            for e in s.accounts.iter() {
                let mut extra = vec![
                    e.account.status.as_str(),
                    bool_str(e.account.is_management),
                    bool_str(e.is_selected()),
                    e.method.map(|m| m.as_str()).unwrap_or("none"),
                    e.account.ou_path.as_deref().unwrap_or(""),
                    s.organization,
                    organization_id,
                ];
                extra.extend(s.process.account_tags.iter().map(|key| {
                    e.account
                        .tags
                        .iter()
                        .find(|(k, _)| k == key)
                        .map(|(_, v)| v.as_str())
                        .unwrap_or("")
                }));
                out.account(e, &extra, 1i64);
            }
        }),
    },
    Family {
        name: "aws_root_access_keys_present",
        help: "1 if the root user has at least one access key, also when deactivated (AccountAccessKeysPresent).",
        freshness: Freshness::KnownOnly,
        labels: &ACCOUNT_LABELS,
        tag_labels: false,
        source: Source::Snapshot(|s, out| flag(s, out, |f| f.access_keys_present)),
    },
    Family {
        name: "aws_root_mfa_enabled",
        help: "1 if the root user has an MFA device (AccountMFAEnabled).",
        freshness: Freshness::KnownOnly,
        labels: &ACCOUNT_LABELS,
        tag_labels: false,
        source: Source::Snapshot(|s, out| flag(s, out, |f| f.mfa_enabled)),
    },
    Family {
        name: "aws_root_password_present",
        help: "1 if the root user has a console password (AccountPasswordPresent).",
        freshness: Freshness::KnownOnly,
        labels: &ACCOUNT_LABELS,
        tag_labels: false,
        source: Source::Snapshot(|s, out| flag(s, out, |f| f.password_present)),
    },
    Family {
        name: "aws_root_signing_certificates_present",
        help: "1 if the root user has an X.509 signing certificate (AccountSigningCertificatesPresent).",
        freshness: Freshness::KnownOnly,
        labels: &ACCOUNT_LABELS,
        tag_labels: false,
        source: Source::Snapshot(|s, out| flag(s, out, |f| f.signing_certificates_present)),
    },
    Family {
        name: "aws_root_audit_success",
        help: "1 if the last audit attempt of the account succeeded, 0 if it failed.",
        freshness: Freshness::Refreshed,
        labels: &ACCOUNT_LABELS,
        tag_labels: false,
        source: Source::Snapshot(|s, out| {
            for e in s.accounts.iter().filter(|e| e.attempted()) {
                out.account(e, &[], e.succeeded());
            }
        }),
    },
    Family {
        name: "aws_root_audit_failure_reason",
        help: "1 while the account's last audit attempt failed, with the reason; absent after a success.",
        freshness: Freshness::Plain,
        labels: &["account_id", "account_name", "reason"],
        tag_labels: false,
        source: Source::Snapshot(|s, out| {
            for e in s.accounts.iter() {
                if let Some(r) = e.failure() {
                    out.account(e, &[r.as_str()], 1i64);
                }
            }
        }),
    },
    Family {
        name: "aws_root_audit_last_success_timestamp_seconds",
        help: "Unix time of the account's last successful audit; absent until the first one.",
        freshness: Freshness::Plain,
        labels: &ACCOUNT_LABELS,
        tag_labels: false,
        source: Source::Snapshot(|s, out| {
            for e in s.accounts.iter() {
                if let Some(t) = e.last_success() {
                    out.account(e, &[], unix_seconds(t));
                }
            }
        }),
    },
    Family {
        name: "aws_root_audit_operation_failure",
        help: "1 for each deeper call of a full audit that failed while GetAccountSummary succeeded (partial result), with the operation and reason.",
        freshness: Freshness::Plain,
        labels: &["account_id", "account_name", "operation", "reason"],
        tag_labels: false,
        source: Source::Snapshot(|s, out| {
            for e in s.accounts.iter() {
                for failed in e.findings().map(|f| f.failed_operations.as_slice()).unwrap_or_default() {
                    out.account(e, &[failed.operation.name(), failed.reason.as_str()], 1i64);
                }
            }
        }),
    },
    Family {
        name: "aws_root_audit_inconsistency",
        help: "1 for each root credential whose deep figures contradicted GetAccountSummary in the account's last successful audit (most often a credential report older than the change); the deep gauges of that credential are withheld and the summary flag speaks for it.",
        freshness: Freshness::Plain,
        labels: &["account_id", "account_name", "credential"],
        tag_labels: false,
        source: Source::Snapshot(|s, out| {
            for e in s.accounts.iter() {
                for c in e.findings().map(|f| f.inconsistencies.as_slice()).unwrap_or_default() {
                    out.account(e, &[c.as_str()], 1i64);
                }
            }
        }),
    },
    Family {
        name: "aws_root_access_keys",
        help: "Number of root access keys by status (active, inactive; expired keys count as inactive).",
        freshness: Freshness::KnownOnly,
        labels: &["account_id", "account_name", "status"],
        tag_labels: false,
        source: Source::Snapshot(|s, out| {
            for (e, d) in details(s) {
                if let Some(keys) = &d.access_keys {
                    by_status(out, e, keys.iter().map(|k| k.status));
                }
            }
        }),
    },
    Family {
        name: "aws_root_access_key_created_timestamp_seconds",
        help: "Unix time at which the root access key was created.",
        freshness: Freshness::KnownOnly,
        labels: &["account_id", "account_name", "access_key_id"],
        tag_labels: false,
        source: Source::Snapshot(|s, out| key_times(s, out, |k| k.created)),
    },
    Family {
        name: "aws_root_access_key_last_used_timestamp_seconds",
        help: "Unix time of the root access key's last use; absent for a key never used.",
        freshness: Freshness::KnownOnly,
        labels: &["account_id", "account_name", "access_key_id"],
        tag_labels: false,
        source: Source::Snapshot(|s, out| key_times(s, out, |k| k.last_used)),
    },
    Family {
        name: "aws_root_mfa_devices",
        help: "Number of root MFA devices by type: in a root session told from the serial number (virtual, hardware TOTP token, passkey FIDO, sms); without one virtual or non_virtual.",
        freshness: Freshness::KnownOnly,
        labels: &["account_id", "account_name", "type"],
        tag_labels: false,
        source: Source::Snapshot(|s, out| {
            for (e, d) in details(s) {
                if let Some(devices) = &d.mfa_devices {
                    for &t in d.source.mfa_types() {
                        out.account(e, &[t.as_str()], devices.iter().filter(|d| **d == t).count());
                    }
                }
            }
        }),
    },
    Family {
        name: "aws_root_password_created_timestamp_seconds",
        help: "Unix time at which the root user's console password was created; absent without a password.",
        freshness: Freshness::KnownOnly,
        labels: &ACCOUNT_LABELS,
        tag_labels: false,
        source: Source::Snapshot(|s, out| {
            for (e, d) in details(s) {
                if let Some(t) = d.password.flatten().and_then(|p| p.created) {
                    out.account(e, &[], unix_seconds(t));
                }
            }
        }),
    },
    Family {
        name: "aws_root_password_last_used_timestamp_seconds",
        help: "Unix time of the root user's last console sign-in, when AWS knows it.",
        freshness: Freshness::KnownOnly,
        labels: &ACCOUNT_LABELS,
        tag_labels: false,
        source: Source::Snapshot(|s, out| {
            for (e, d) in details(s) {
                if let Some(t) = d.password.flatten().and_then(|p| p.last_used) {
                    out.account(e, &[], unix_seconds(t));
                }
            }
        }),
    },
    Family {
        name: "aws_root_signing_certificates",
        help: "Number of root X.509 signing certificates by status (active, inactive).",
        freshness: Freshness::KnownOnly,
        labels: &["account_id", "account_name", "status"],
        tag_labels: false,
        source: Source::Snapshot(|s, out| {
            for (e, d) in details(s) {
                if let Some(certificates) = &d.signing_certificates {
                    by_status(out, e, certificates.iter().copied());
                }
            }
        }),
    },
    Family {
        name: "aws_root_credential_report_generated_timestamp_seconds",
        help: "Unix time at which AWS generated the credential report that the deep facts of an account audited without a root session come from (AWS regenerates it at most every 4 hours).",
        freshness: Freshness::KnownOnly,
        labels: &ACCOUNT_LABELS,
        tag_labels: false,
        source: Source::Snapshot(|s, out| {
            for (e, d) in details(s) {
                if let DetailSource::CredentialReport { generated: Some(t) } = d.source {
                    out.account(e, &[], unix_seconds(t));
                }
            }
        }),
    },
    Family {
        name: "aws_organizations_feature_enabled",
        help: "1 if the organization has the centralized root access feature enabled (iam:ListOrganizationsFeatures), 0 if not; absent when it could not be read.",
        freshness: Freshness::Plain,
        labels: &["organization", "feature"],
        tag_labels: false,
        source: Source::Snapshot(|s, out| {
            for (feature, on) in s.snapshot.organization.features.iter().flatten() {
                out.add([s.organization, *feature], *on);
            }
        }),
    },
    Family {
        name: "aws_root_activity_last_timestamp_seconds",
        help: "Unix time of the root user's newest activity of each kind: the own time (CloudTrail eventTime) of the newest event counted in aws_root_activity_events_total, or for console_signin the root password's last use and for api_call a root access key's last use as the audits read them, whichever is newer; absent while neither is known.",
        freshness: Freshness::Plain,
        labels: &["account_id", "account_name", "kind"],
        tag_labels: false,
        source: Source::Snapshot(|s, out| {
            for e in s.accounts.iter() {
                for kind in ActivityKind::ALL {
                    if let Some(t) = last_activity(s, e, *kind) {
                        out.account(e, &[kind.as_str()], unix_seconds(t));
                    }
                }
            }
        }),
    },
];

/// The newest root activity of `kind` in `e`: from the events counted, or from what its last
/// good audit read (the password's last use is a console sign-in, a key's last use an API
/// call), whichever is newer.
pub fn last_activity(s: &Snapshot, e: &AccountEntry, kind: ActivityKind) -> Option<SystemTime> {
    let counted = s.activity.get(&e.account.id, kind).map(|t| t.last);
    let details = e.findings().and_then(|f| f.details.as_ref());
    let audited = match kind {
        ActivityKind::ConsoleSignin => details.and_then(|d| d.password.flatten()?.last_used),
        ActivityKind::ApiCall => details
            .and_then(|d| d.access_keys.as_ref())
            .and_then(|keys| keys.iter().filter_map(|k| k.last_used).max()),
        ActivityKind::ConsoleSigninFailure | ActivityKind::PrivilegedSession => None,
    };
    counted.max(audited)
}

/// The root activity counter, for the live part of `/metrics` (a counter's name differs between
/// the exposition formats, so it cannot be in the prepared body): one sample per account and
/// kind counted since the exporter started; no family at all while there is none.
pub fn render_activity(writer: &mut Writer<'_>, snapshots: &[Option<&Snapshot>]) {
    const NAMES: [&str; 3] = ["account_id", "account_name", "kind"];
    let mut counted = snapshots
        .iter()
        .flatten()
        .filter(|s| !s.activity.is_empty())
        .flat_map(|s| {
            s.accounts
                .iter()
                .filter(|e| s.activity.contains_account(&e.account.id))
                .map(move |e| (*s, e))
        })
        .peekable();
    if counted.peek().is_none() {
        return;
    }
    writer.counter(
        "aws_root_activity_events",
        "Root user activity seen in the events queue since the exporter started, by kind: console_signin, console_signin_failure, api_call (root's console session or access keys), privileged_session (an sts:AssumeRoot session not opened by the exporter). The exporter's own audit sessions never count.",
    );
    for (s, e) in counted {
        for kind in ActivityKind::ALL {
            if let Some(t) = s.activity.get(&e.account.id, *kind) {
                let values = [e.account.id.as_str(), e.account.name.as_str(), kind.as_str()];
                let count = Value::from(i64::try_from(t.count).unwrap_or(i64::MAX));
                writer.sample("aws_root_activity_events_total", &NAMES, values, count);
            }
        }
    }
}
