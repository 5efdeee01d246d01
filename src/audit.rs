//! Stage 2: audit one account's root user inside its session.

use std::time::{Duration, SystemTime};

use aws_sdk_iam::types::SummaryKeyType;

use crate::aws::access::{AccountSession, Blocked};
use crate::aws::call::{AwsCallError, Caller, Operation};
use crate::config::Checks;
use crate::model::{
    AccessKey, AuditFindings, CredentialStatus, FailureReason, MfaType, Password, RootDetails, RootSummary,
};

/// Why one account's audit failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuditError {
    /// An AWS call failed.
    #[error(transparent)]
    Call(#[from] AwsCallError),
    /// The whole audit took longer than `account_timeout`.
    #[error("audit did not finish within account_timeout ({0:?})")]
    Timeout(Duration),
    /// The way in cannot reach any account in this refresh (e.g. a feature is off).
    #[error("{}", .0.message)]
    Blocked(Blocked),
}

impl AuditError {
    pub fn reason(&self) -> FailureReason {
        match self {
            AuditError::Call(e) => e.reason,
            AuditError::Timeout(_) => FailureReason::Timeout,
            AuditError::Blocked(b) => b.reason,
        }
    }

    /// The AWS operation that failed, when an AWS call failed.
    pub fn operation(&self) -> Option<Operation> {
        match self {
            AuditError::Call(e) => Some(e.operation),
            _ => None,
        }
    }
}

/// `summary`: GetAccountSummary only. `full`: also the six deeper calls, run concurrently; a
/// deeper call that fails leaves its part unknown and is listed, the summary still counts.
pub async fn audit(session: &AccountSession, checks: Checks, caller: &Caller) -> Result<AuditFindings, AwsCallError> {
    let iam = &session.iam;
    let summary = summary(iam, caller).await?;
    let mut findings = AuditFindings {
        summary,
        details: None,
        failed_operations: Vec::new(),
    };
    if checks == Checks::Full {
        let (keys, mfa, password, certificates) = futures::join!(
            access_keys(iam, caller),
            mfa_devices(iam, caller),
            password(iam, caller),
            signing_certificates(iam, caller),
        );
        let failed = &mut findings.failed_operations;
        findings.details = Some(RootDetails {
            access_keys: part(keys, failed),
            mfa_devices: part(mfa, failed),
            password: part(password, failed),
            signing_certificates: part(certificates, failed),
        });
    }
    Ok(findings)
}

/// A deeper part: its value, or `None` with the failure noted.
fn part<T>(result: Result<T, AwsCallError>, failed: &mut Vec<AwsCallError>) -> Option<T> {
    match result {
        Ok(v) => Some(v),
        Err(e) => {
            failed.push(e);
            None
        }
    }
}

async fn summary(iam: &aws_sdk_iam::Client, caller: &Caller) -> Result<RootSummary, AwsCallError> {
    const OP: Operation = Operation::GetAccountSummary;
    let out = caller.call(OP, || iam.get_account_summary().send()).await?;
    let map = out
        .summary_map()
        .ok_or_else(|| AwsCallError::malformed(OP, "answer holds no SummaryMap"))?;
    // A flag missing from the answer is unknown, never 0.
    let flag = |key: SummaryKeyType| -> Result<bool, AwsCallError> {
        match map.get(&key) {
            Some(0) => Ok(false),
            Some(1) => Ok(true),
            Some(v) => Err(AwsCallError::malformed(
                OP,
                format!("{} = {v}, expected 0 or 1", key.as_str()),
            )),
            None => Err(AwsCallError::malformed(
                OP,
                format!("SummaryMap lacks {}", key.as_str()),
            )),
        }
    };
    Ok(RootSummary {
        mfa_enabled: flag(SummaryKeyType::AccountMfaEnabled)?,
        access_keys_present: flag(SummaryKeyType::AccountAccessKeysPresent)?,
        password_present: flag(SummaryKeyType::AccountPasswordPresent)?,
        signing_certificates_present: flag(SummaryKeyType::AccountSigningCertificatesPresent)?,
    })
}

/// IAM lists of the root user are short (at most two keys or certificates, eight MFA devices);
/// a marker chain longer than this is a bug, not a bigger list.
const MAX_PAGES: usize = 100;

/// The marker for the next page, when IAM says there is one.
fn next_marker(truncated: bool, marker: Option<&str>) -> Option<String> {
    marker.filter(|m| truncated && !m.is_empty()).map(str::to_string)
}

fn to_system_time(t: &aws_smithy_types::DateTime) -> Option<SystemTime> {
    SystemTime::try_from(*t).ok()
}

async fn access_keys(iam: &aws_sdk_iam::Client, caller: &Caller) -> Result<Vec<AccessKey>, AwsCallError> {
    let mut keys = Vec::new();
    let mut marker = None;
    for _ in 0..MAX_PAGES {
        let page = caller
            .call(Operation::ListAccessKeys, || {
                iam.list_access_keys().set_marker(marker.clone()).send()
            })
            .await?;
        for k in page.access_key_metadata() {
            let Some(id) = k.access_key_id() else { continue };
            keys.push(AccessKey {
                id: id.to_string(),
                status: k
                    .status()
                    .map(|s| CredentialStatus::parse(s.as_str()))
                    .unwrap_or(CredentialStatus::Other),
                created: k.create_date().and_then(to_system_time),
                last_used: None,
            });
        }
        marker = next_marker(page.is_truncated(), page.marker());
        if marker.is_none() {
            break;
        }
    }
    // Last use of each key; a failure here leaves that key's last use unknown and fails the part.
    let lookups = futures::future::join_all(keys.iter().map(|k| async move {
        caller
            .call(Operation::GetAccessKeyLastUsed, || {
                iam.get_access_key_last_used().access_key_id(&k.id).send()
            })
            .await
            .map(|o| {
                o.access_key_last_used()
                    .and_then(|u| u.last_used_date())
                    .and_then(to_system_time)
            })
    }))
    .await;
    for (key, used) in keys.iter_mut().zip(lookups) {
        key.last_used = used?;
    }
    Ok(keys)
}

async fn mfa_devices(iam: &aws_sdk_iam::Client, caller: &Caller) -> Result<Vec<MfaType>, AwsCallError> {
    let mut devices = Vec::new();
    let mut marker = None;
    for _ in 0..MAX_PAGES {
        let page = caller
            .call(Operation::ListMfaDevices, || {
                iam.list_mfa_devices().set_marker(marker.clone()).send()
            })
            .await?;
        devices.extend(
            page.mfa_devices()
                .iter()
                .map(|d| MfaType::from_serial(d.serial_number())),
        );
        marker = next_marker(page.is_truncated(), page.marker());
        if marker.is_none() {
            break;
        }
    }
    Ok(devices)
}

/// `None` inside: the root user has no console password (`NoSuchEntity`).
async fn password(iam: &aws_sdk_iam::Client, caller: &Caller) -> Result<Option<Password>, AwsCallError> {
    let (profile, user) = futures::join!(
        caller.call_or_absent(
            Operation::GetLoginProfile,
            || iam.get_login_profile().send(),
            |e| e.is_no_such_entity_exception()
        ),
        caller.call(Operation::GetUser, || iam.get_user().send()),
    );
    let created = profile?.map(|out| out.login_profile().and_then(|p| to_system_time(p.create_date())));
    let last_used = user?
        .user()
        .and_then(|u| u.password_last_used())
        .and_then(to_system_time);
    Ok(created.map(|created| Password { created, last_used }))
}

async fn signing_certificates(
    iam: &aws_sdk_iam::Client,
    caller: &Caller,
) -> Result<Vec<CredentialStatus>, AwsCallError> {
    let mut certificates = Vec::new();
    let mut marker = None;
    for _ in 0..MAX_PAGES {
        let page = caller
            .call(Operation::ListSigningCertificates, || {
                iam.list_signing_certificates().set_marker(marker.clone()).send()
            })
            .await?;
        certificates.extend(
            page.certificates()
                .iter()
                .map(|c| CredentialStatus::parse(c.status().as_str())),
        );
        marker = next_marker(page.is_truncated(), page.marker());
        if marker.is_none() {
            break;
        }
    }
    Ok(certificates)
}
