//! The one-shot report of `audit`: the classic tab-separated file, CSV, or JSON.

use serde_json::{Value, json};

use crate::model::{CredentialStatus, MfaType, unix_seconds};
use crate::snapshot::{AccountEntry, Snapshot};

/// The header of the classic report, byte for byte.
pub const TSV_HEADER: &str = "accountId\taccountName\tAccountMFAEnabled\tAccountAccessKeysPresent\tAccountPasswordPresent\tAccountSigningCertificatesPresent";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Tsv,
    Csv,
    Json,
}

pub fn render(snapshot: &Snapshot, format: Format) -> String {
    match format {
        Format::Tsv => tsv(snapshot),
        Format::Csv => csv(snapshot),
        Format::Json => serde_json::to_string_pretty(&json(snapshot)).expect("JSON of plain values") + "\n",
    }
}

/// `s` with control characters written as escapes (`\n`, `\t`, `\u{1b}`) and backslashes
/// doubled, for one-line human output.
pub fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() || c == '\\' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn bit(b: bool) -> &'static str {
    if b { "1" } else { "0" }
}

/// The classic report: one row per member account audited successfully, in listing order.
/// Accounts whose audit failed have no row (their state is unknown) and are listed by
/// [`failures`] instead.
pub fn tsv(snapshot: &Snapshot) -> String {
    let mut out = String::from(TSV_HEADER);
    out.push('\n');
    // Like the classic report: member accounts only (the management account is in CSV and JSON).
    for e in snapshot
        .accounts
        .iter()
        .filter(|e| e.succeeded() && !e.account.is_management)
    {
        let Some(f) = e.findings() else { continue };
        let s = &f.summary;
        out.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\n",
            e.account.id,
            e.account.name.replace(['\t', '\n', '\r'], " "),
            bit(s.mfa_enabled),
            bit(s.access_keys_present),
            bit(s.password_present),
            bit(s.signing_certificates_present)
        ));
    }
    out
}

/// Selected accounts whose last attempt did not succeed, with the reason and what went wrong.
pub fn failures(snapshot: &Snapshot) -> Vec<(&AccountEntry, &'static str, &str)> {
    snapshot
        .accounts
        .iter()
        .filter(|e| e.is_selected() && !e.succeeded())
        .map(|e| {
            (
                e,
                e.failure().map(|r| r.as_str()).unwrap_or("not_attempted"),
                e.failure_message().unwrap_or("no audit attempt finished"),
            )
        })
        .collect()
}

/// `audit_success` of the reports: known once an attempt finished.
fn audit_success(e: &AccountEntry) -> Option<bool> {
    e.attempted().then(|| e.succeeded())
}

const CSV_HEADER: &str = "account_id,account_name,status,management,audited,audit_success,failure_reason,failure_message,mfa_enabled,access_keys_present,password_present,signing_certificates_present,active_access_keys,inactive_access_keys,access_key_last_used,mfa_device_types,password_created,password_last_used,active_signing_certificates,failed_operations,inconsistencies,method,ou_path";

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn rfc3339(t: Option<std::time::SystemTime>) -> String {
    t.map(|t| humantime::format_rfc3339_seconds(t).to_string())
        .unwrap_or_default()
}

/// Every account, with empty cells for what is unknown.
pub fn csv(snapshot: &Snapshot) -> String {
    let mut out = String::from(CSV_HEADER);
    out.push('\n');
    for e in snapshot.accounts.iter() {
        let f = e.findings();
        let summary = f.map(|f| f.summary);
        let details = f.and_then(|f| f.details.as_ref());
        let flag =
            |get: fn(&crate::model::RootSummary) -> bool| summary.map(|s| bit(get(&s)).to_string()).unwrap_or_default();
        let keys = details.and_then(|d| d.access_keys.as_ref());
        let active = keys.map(|k| k.iter().filter(|k| k.status == CredentialStatus::Active).count());
        let last_used = keys.and_then(|k| k.iter().filter_map(|k| k.last_used).max());
        let mfa = details
            .and_then(|d| d.mfa_devices.as_ref())
            .map(|m| m.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(" "));
        let password = details.and_then(|d| d.password.as_ref());
        let certs = details.and_then(|d| d.signing_certificates.as_ref());
        let failed_ops = f
            .map(|f| {
                f.failed_operations
                    .iter()
                    .map(|e| format!("{}:{}", e.operation.name(), e.reason))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        let row = [
            e.account.id.clone(),
            csv_field(&e.account.name),
            e.account.status.clone(),
            e.account.is_management.to_string(),
            e.is_selected().to_string(),
            audit_success(e).map(|ok| bit(ok).to_string()).unwrap_or_default(),
            e.failure().map(|r| r.as_str().to_string()).unwrap_or_default(),
            csv_field(e.failure_message().unwrap_or_default()),
            flag(|s| s.mfa_enabled),
            flag(|s| s.access_keys_present),
            flag(|s| s.password_present),
            flag(|s| s.signing_certificates_present),
            active.map(|n| n.to_string()).unwrap_or_default(),
            keys.zip(active)
                .map(|(k, a)| (k.len() - a).to_string())
                .unwrap_or_default(),
            rfc3339(last_used),
            mfa.unwrap_or_default(),
            rfc3339(password.and_then(|p| p.and_then(|p| p.created))),
            rfc3339(password.and_then(|p| p.and_then(|p| p.last_used))),
            certs
                .map(|c| c.iter().filter(|c| **c == CredentialStatus::Active).count().to_string())
                .unwrap_or_default(),
            failed_ops,
            f.map(|f| {
                f.inconsistencies
                    .iter()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default(),
            e.method.map(|m| m.as_str()).unwrap_or("none").to_string(),
            csv_field(e.account.ou_path.as_deref().unwrap_or("")),
        ];
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}

pub fn json(snapshot: &Snapshot) -> Value {
    let accounts: Vec<Value> = snapshot
        .accounts
        .iter()
        .map(|e| {
            let f = e.findings();
            json!({
                "account_id": e.account.id,
                "account_name": e.account.name,
                "status": e.account.status,
                "management": e.account.is_management,
                "audited": e.is_selected(),
                "method": e.method.map(|m| m.as_str()),
                "ou_path": e.account.ou_path,
                "tags": e.account.tags.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
                "audit_success": audit_success(e),
                "failure_reason": e.failure().map(|r| r.as_str()),
                "failure_message": e.failure_message(),
                "last_success": e.last_success().map(|t| humantime::format_rfc3339_seconds(t).to_string()),
                "last_success_unix": e.last_success().map(unix_seconds),
                "summary": f.map(|f| json!({
                    "AccountMFAEnabled": u8::from(f.summary.mfa_enabled),
                    "AccountAccessKeysPresent": u8::from(f.summary.access_keys_present),
                    "AccountPasswordPresent": u8::from(f.summary.password_present),
                    "AccountSigningCertificatesPresent": u8::from(f.summary.signing_certificates_present),
                })),
                "details": f.and_then(|f| f.details.as_ref()).map(|d| json!({
                    "access_keys": d.access_keys,
                    "mfa_devices": d.mfa_devices.as_ref().map(|m| m.iter().map(|t: &MfaType| t.as_str()).collect::<Vec<_>>()),
                    "password": d.password,
                    "signing_certificates": d.signing_certificates,
                    "source": d.source,
                })),
                "failed_operations": f.map(|f| f.failed_operations.iter().map(|e| json!({"operation": e.operation.name(), "reason": e.reason.as_str(), "message": e.message})).collect::<Vec<_>>()).unwrap_or_default(),
                "inconsistencies": f.map(|f| f.inconsistencies.iter().map(|c| c.as_str()).collect::<Vec<_>>()).unwrap_or_default(),
            })
        })
        .collect();
    json!({
        "organization_id": snapshot.organization.id,
        "management_account_id": snapshot.organization.management_account_id,
        "features": snapshot.organization.features.as_ref().map(|f| f.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>()),
        "accounts": accounts,
    })
}

/// The progress line of `audit` on a terminal: audits done of the accounts found, failures so
/// far, and whether the listing is still going on.
pub fn progress_line(p: crate::telemetry::ProgressNow) -> String {
    let total = match p.listed {
        true => p.found.to_string(),
        false => format!("{}+ (still listing)", p.found),
    };
    let failed = match p.failed {
        0 => String::new(),
        n => format!(", {n} failed"),
    };
    format!("audited {} of {total} accounts{failed}", p.done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::ProgressNow;

    #[test]
    fn progress_says_done_of_found_and_failures() {
        let p = |found, done, failed, listed| {
            progress_line(ProgressNow {
                found,
                done,
                failed,
                listed,
            })
        };
        assert_eq!(p(0, 0, 0, false), "audited 0 of 0+ (still listing) accounts");
        assert_eq!(
            p(120, 40, 1, false),
            "audited 40 of 120+ (still listing) accounts, 1 failed"
        );
        assert_eq!(p(10_000, 9_990, 3, true), "audited 9990 of 10000 accounts, 3 failed");
    }
}
