//! Stage 2: audit one account's root user inside its session.

use std::time::{Duration, SystemTime};

use aws_sdk_iam::types::SummaryKeyType;

use crate::aws::access::{AccountSession, Blocked, SessionKind};
use crate::aws::call::{AwsCallError, Caller, Operation};
use crate::config::Checks;
use crate::credential_report;
use crate::model::{
    AccessKey, AuditFindings, CredentialStatus, DetailSource, FailureReason, MfaType, Password, RootDetails,
    RootSummary,
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

/// `summary`: GetAccountSummary only. `full`: also the deeper calls, run concurrently: in a root
/// session the root user's own lists, otherwise the credential report and the virtual MFA
/// devices (waiting at most `report_wait` for the report). A deeper call that fails leaves its
/// part unknown and is listed; the summary still counts.
pub async fn audit(
    session: &AccountSession,
    checks: Checks,
    caller: &Caller,
    report_wait: Duration,
) -> Result<AuditFindings, AwsCallError> {
    let iam = &session.iam;
    let summary = summary(iam, caller).await?;
    let mut findings = AuditFindings {
        summary,
        details: None,
        failed_operations: Vec::new(),
    };
    if checks == Checks::Full {
        let failed = &mut findings.failed_operations;
        findings.details = Some(match session.kind {
            SessionKind::Root => root_session_details(iam, caller, failed).await,
            SessionKind::Principal => report_details(iam, caller, &summary, report_wait, failed).await,
        });
    }
    Ok(findings)
}

async fn root_session_details(
    iam: &aws_sdk_iam::Client,
    caller: &Caller,
    failed: &mut Vec<AwsCallError>,
) -> RootDetails {
    let (keys, mfa, password, certificates) = futures::join!(
        access_keys(iam, caller),
        mfa_devices(iam, caller),
        password(iam, caller),
        signing_certificates(iam, caller),
    );
    RootDetails {
        access_keys: part(keys, failed),
        mfa_devices: part(mfa, failed),
        password: part(password, failed),
        signing_certificates: part(certificates, failed),
        source: DetailSource::RootSession,
    }
}

async fn report_details(
    iam: &aws_sdk_iam::Client,
    caller: &Caller,
    summary: &RootSummary,
    wait: Duration,
    failed: &mut Vec<AwsCallError>,
) -> RootDetails {
    let (report, virtual_devices) = futures::join!(
        credential_report(iam, caller, wait),
        root_virtual_mfa_devices(iam, caller)
    );
    let (row, generated) = match part(report, failed) {
        Some((row, generated)) => (Some(row), generated),
        None => (None, None),
    };
    let mfa_devices = part(virtual_devices, failed).map(|n| {
        let mut devices = vec![MfaType::Virtual; n];
        // MFA on without a virtual device: a hardware token or a FIDO key or passkey. (One next
        // to a virtual device cannot be seen without a root session.)
        if summary.mfa_enabled && n == 0 {
            devices.push(MfaType::NonVirtual);
        }
        devices
    });
    RootDetails {
        access_keys: row.as_ref().map(|r| r.access_keys.clone()),
        mfa_devices,
        password: row.as_ref().map(|r| {
            summary.password_present.then_some(Password {
                created: None,
                last_used: r.password_last_used,
            })
        }),
        signing_certificates: row.map(|r| r.signing_certificates),
        source: DetailSource::CredentialReport { generated },
    }
}

/// Ask for a credential report until it is complete (AWS makes a new one at most every 4 hours,
/// and answers with the cached one otherwise), then read the root user's row.
async fn credential_report(
    iam: &aws_sdk_iam::Client,
    caller: &Caller,
    wait: Duration,
) -> Result<(credential_report::RootRow, Option<SystemTime>), AwsCallError> {
    use aws_sdk_iam::types::ReportStateType;
    const GET: Operation = Operation::GetCredentialReport;
    let deadline = tokio::time::Instant::now() + wait;
    let mut pause = Duration::from_millis(250);
    loop {
        let generated = caller
            .call(Operation::GenerateCredentialReport, || {
                iam.generate_credential_report().send()
            })
            .await?;
        if generated.state() == Some(&ReportStateType::Complete) {
            let report = caller
                .call_or_absent(
                    GET,
                    || iam.get_credential_report().send(),
                    |e| e.is_credential_report_not_ready_exception() || e.is_credential_report_not_present_exception(),
                )
                .await?;
            if let Some(out) = report {
                let csv = out
                    .content()
                    .map(|b| String::from_utf8_lossy(b.as_ref()).into_owned())
                    .ok_or_else(|| AwsCallError::malformed(GET, "answer holds no Content"))?;
                let row = credential_report::root_row(&csv).map_err(|e| AwsCallError::malformed(GET, e.to_string()))?;
                return Ok((row, out.generated_time().and_then(to_system_time)));
            }
        }
        if tokio::time::Instant::now() + pause > deadline {
            return Err(AwsCallError {
                operation: GET,
                reason: FailureReason::Timeout,
                message: format!("the credential report was not ready within {wait:?}"),
            });
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

/// How many virtual MFA devices the root user has (`iam:ListVirtualMFADevices`, assigned ones,
/// whose user is `arn:...:root`).
async fn root_virtual_mfa_devices(iam: &aws_sdk_iam::Client, caller: &Caller) -> Result<usize, AwsCallError> {
    use aws_sdk_iam::types::AssignmentStatusType;
    let mut count = 0;
    let mut marker = None;
    for _ in 0..MAX_PAGES {
        let page = caller
            .call(Operation::ListVirtualMfaDevices, || {
                iam.list_virtual_mfa_devices()
                    .assignment_status(AssignmentStatusType::Assigned)
                    .set_marker(marker.clone())
                    .send()
            })
            .await?;
        count += page
            .virtual_mfa_devices()
            .iter()
            .filter(|d| d.user().is_some_and(|u| u.arn().ends_with(":root")))
            .count();
        marker = next_marker(page.is_truncated(), page.marker());
        if marker.is_none() {
            break;
        }
    }
    Ok(count)
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
