//! Stage 2: audit one account's root user inside its session.

use std::time::{Duration, SystemTime};

use aws_sdk_iam::types::SummaryKeyType;

use crate::aws::access::{AccountSession, Blocked, SessionKind};
use crate::aws::call::{AwsCallError, Caller, Operation};
use crate::aws::paging;
use crate::config::Checks;
use crate::credential_report;
use crate::model::{
    AccessKey, AuditFindings, Credential, CredentialStatus, DetailSource, FailureReason, MfaType, Password,
    RootDetails, RootSummary,
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
/// part unknown and is listed; the summary still counts. A deeper answer that is not of the form
/// AWS documents (`bad_response`, e.g. a ragged credential report) fails the whole audit: a
/// source that cannot be read as documented cannot be half-trusted. Deep figures that contradict
/// the summary are withheld ([`reconcile`]).
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
        inconsistencies: Vec::new(),
    };
    if checks == Checks::Full {
        let failed = &mut findings.failed_operations;
        let (mut details, report_mfa) = match session.kind {
            SessionKind::Root => (root_session_details(iam, caller, failed).await, None),
            SessionKind::Principal => report_details(iam, caller, &summary, report_wait, failed).await,
        };
        if let Some(bad) = failed.iter().find(|e| e.reason == FailureReason::BadResponse) {
            return Err(bad.clone());
        }
        findings.inconsistencies = reconcile(&summary, &mut details, report_mfa);
        findings.details = Some(details);
    }
    Ok(findings)
}

/// Compare the deep figures with the summary of the same audit; withhold (set to `None`) every
/// deep part that contradicts it, and name those credentials. The summary is the floor of
/// truth: it is read at the moment of the audit, while the credential report may be hours old.
///
/// - Root session (read at the same moment as the summary): a part contradicts the summary when
///   it lists no credential of a kind the summary says is present, or lists one the summary says
///   is absent. A deactivated key next to `AccountAccessKeysPresent = 1` agrees (AWS counts
///   deactivated keys there).
/// - Credential report (cached up to 4 hours): as above, and also when the summary says keys (or
///   certificates) are present but the report shows none active: the report cannot tell a
///   deactivated key from one created after it was generated, so only the summary speaks.
///   MFA: the report's `mfa_active` and the virtual devices must agree with `AccountMFAEnabled`
///   (`report_mfa` is the report's `mfa_active`, when the report was read).
pub fn reconcile(summary: &RootSummary, details: &mut RootDetails, report_mfa: Option<bool>) -> Vec<Credential> {
    let cached = matches!(details.source, DetailSource::CredentialReport { .. });
    let agrees = |present: bool, statuses: &mut dyn Iterator<Item = CredentialStatus>| {
        let (mut any, mut active) = (false, false);
        for s in statuses {
            any = true;
            active |= s == CredentialStatus::Active;
        }
        if present {
            if cached { active } else { any }
        } else {
            !any
        }
    };
    let mut contradicted = Vec::new();
    if let Some(keys) = &details.access_keys
        && !agrees(summary.access_keys_present, &mut keys.iter().map(|k| k.status))
    {
        details.access_keys = None;
        contradicted.push(Credential::AccessKeys);
    }
    if let Some(certificates) = &details.signing_certificates
        && !agrees(summary.signing_certificates_present, &mut certificates.iter().copied())
    {
        details.signing_certificates = None;
        contradicted.push(Credential::SigningCertificates);
    }
    if let Some(devices) = &details.mfa_devices {
        let listed = devices.iter().any(|d| *d != MfaType::NonVirtual);
        let contradicts = match cached {
            // Without a root session the list holds the virtual devices read now, plus a
            // non-virtual one inferred from the summary itself.
            true => (listed && !summary.mfa_enabled) || report_mfa.is_some_and(|m| m != summary.mfa_enabled),
            false => listed != summary.mfa_enabled,
        };
        if contradicts {
            details.mfa_devices = None;
            contradicted.push(Credential::Mfa);
        }
    }
    if let Some(password) = &details.password
        && password.is_some() != summary.password_present
    {
        details.password = None;
        contradicted.push(Credential::Password);
    }
    contradicted
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

/// The deep facts without a root session, and the report's `mfa_active` (when it was read).
async fn report_details(
    iam: &aws_sdk_iam::Client,
    caller: &Caller,
    summary: &RootSummary,
    wait: Duration,
    failed: &mut Vec<AwsCallError>,
) -> (RootDetails, Option<bool>) {
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
    let report_mfa = row.as_ref().map(|r| r.mfa_active);
    let details = RootDetails {
        access_keys: row.as_ref().map(|r| r.access_keys.clone()),
        mfa_devices,
        // The report says `not_supported` for root's password: whether there is one is the
        // summary's word, its last use the report's.
        password: row.as_ref().map(|r| {
            summary.password_present.then_some(Password {
                created: None,
                last_used: r.password_last_used,
            })
        }),
        signing_certificates: row.map(|r| r.signing_certificates),
        source: DetailSource::CredentialReport { generated },
    };
    (details, report_mfa)
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
                let content = out
                    .content()
                    .ok_or_else(|| AwsCallError::malformed(GET, "answer holds no Content"))?;
                let csv = std::str::from_utf8(content.as_ref())
                    .map_err(|_| AwsCallError::malformed(GET, "the credential report is not UTF-8 text"))?;
                let row = credential_report::root_row(csv).map_err(|e| AwsCallError::malformed(GET, e.to_string()))?;
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
    let roots = paging::paged(
        caller,
        Operation::ListVirtualMfaDevices,
        MAX_PAGES,
        |marker| {
            iam.list_virtual_mfa_devices()
                .assignment_status(AssignmentStatusType::Assigned)
                .set_marker(marker)
                .send()
        },
        |page| page.marker().filter(|_| page.is_truncated()),
        |page| {
            page.virtual_mfa_devices()
                .iter()
                .filter(|d| d.user().is_some_and(|u| u.arn().ends_with(":root")))
                .map(|_| ())
                .collect()
        },
        &paging::Ignore,
    )
    .await?;
    Ok(roots.len())
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

/// IAM lists of the root user are short (at most two keys or certificates, eight MFA devices):
/// a marker chain longer than this is a bug, not a bigger list. Each list is read page by page
/// with [`paging::paged`], the next `Marker` taken while `IsTruncated`.
const MAX_PAGES: usize = 100;

fn to_system_time(t: &aws_smithy_types::DateTime) -> Option<SystemTime> {
    SystemTime::try_from(*t).ok()
}

async fn access_keys(iam: &aws_sdk_iam::Client, caller: &Caller) -> Result<Vec<AccessKey>, AwsCallError> {
    let mut keys = paging::paged(
        caller,
        Operation::ListAccessKeys,
        MAX_PAGES,
        |marker| iam.list_access_keys().set_marker(marker).send(),
        |page| page.marker().filter(|_| page.is_truncated()),
        |page| {
            page.access_key_metadata()
                .iter()
                .filter_map(|k| {
                    Some(AccessKey {
                        id: k.access_key_id()?.to_string(),
                        status: k
                            .status()
                            .map(|s| CredentialStatus::parse(s.as_str()))
                            .unwrap_or(CredentialStatus::Other),
                        created: k.create_date().and_then(to_system_time),
                        last_used: None,
                    })
                })
                .collect()
        },
        &paging::Ignore,
    )
    .await?;
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
    paging::paged(
        caller,
        Operation::ListMfaDevices,
        MAX_PAGES,
        |marker| iam.list_mfa_devices().set_marker(marker).send(),
        |page| page.marker().filter(|_| page.is_truncated()),
        |page| {
            page.mfa_devices()
                .iter()
                .map(|d| MfaType::from_serial(d.serial_number()))
                .collect()
        },
        &paging::Ignore,
    )
    .await
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
    paging::paged(
        caller,
        Operation::ListSigningCertificates,
        MAX_PAGES,
        |marker| iam.list_signing_certificates().set_marker(marker).send(),
        |page| page.marker().filter(|_| page.is_truncated()),
        |page| {
            page.certificates()
                .iter()
                .map(|c| CredentialStatus::parse(c.status().as_str()))
                .collect()
        },
        &paging::Ignore,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use CredentialStatus::{Active, Inactive};

    fn summary(mfa: bool, keys: bool, password: bool, certs: bool) -> RootSummary {
        RootSummary {
            mfa_enabled: mfa,
            access_keys_present: keys,
            password_present: password,
            signing_certificates_present: certs,
        }
    }

    fn key(status: CredentialStatus) -> AccessKey {
        AccessKey {
            id: "key_1".into(),
            status,
            created: None,
            last_used: None,
        }
    }

    fn details(source: DetailSource, keys: &[CredentialStatus], certs: &[CredentialStatus]) -> RootDetails {
        RootDetails {
            access_keys: Some(keys.iter().map(|s| key(*s)).collect()),
            mfa_devices: Some(vec![]),
            password: Some(None),
            signing_certificates: Some(certs.to_vec()),
            source,
        }
    }

    const REPORT: DetailSource = DetailSource::CredentialReport { generated: None };
    const ROOT: DetailSource = DetailSource::RootSession;

    #[test]
    fn deep_figures_that_contradict_the_summary_are_withheld() {
        // (source, summary keys flag, deep keys) -> contradicted?
        let cases: [(DetailSource, bool, &[CredentialStatus], bool); 10] = [
            (ROOT, false, &[], false),
            (ROOT, true, &[Active], false),
            // AWS counts a deactivated key in AccountAccessKeysPresent.
            (ROOT, true, &[Inactive], false),
            (ROOT, true, &[], true),
            (ROOT, false, &[Inactive], true),
            (REPORT, false, &[], false),
            (REPORT, true, &[Active, Inactive], false),
            // A key created after the cached report: the report cannot show it.
            (REPORT, true, &[], true),
            // The report cannot tell a deactivated key from a newer one: the summary speaks.
            (REPORT, true, &[Inactive], true),
            (REPORT, false, &[Active], true),
        ];
        for (source, present, keys, contradicted) in cases {
            for certificates in [false, true] {
                let s = match certificates {
                    false => summary(false, present, false, false),
                    true => summary(false, false, false, present),
                };
                let mut d = match certificates {
                    false => details(source, keys, &[]),
                    true => details(source, &[], keys),
                };
                let before = d.clone();
                let found = reconcile(&s, &mut d, Some(false));
                let credential = match certificates {
                    false => Credential::AccessKeys,
                    true => Credential::SigningCertificates,
                };
                let case = format!("{source:?} present={present} deep={keys:?} {credential}");
                match contradicted {
                    true => {
                        assert_eq!(found, vec![credential], "{case}");
                        let withheld = match certificates {
                            false => d.access_keys.is_none() && d.signing_certificates == before.signing_certificates,
                            true => d.signing_certificates.is_none() && d.access_keys == before.access_keys,
                        };
                        assert!(withheld, "{case}: {d:?}");
                    }
                    false => {
                        assert!(found.is_empty(), "{case}: {found:?}");
                        assert_eq!(d, before, "{case}");
                    }
                }
            }
        }
    }

    #[test]
    fn mfa_and_password_are_checked_against_the_summary() {
        // Root session: a listed device without AccountMFAEnabled, and no device with it.
        for (mfa, devices, contradicted) in [
            (true, vec![MfaType::Hardware], false),
            (false, vec![], false),
            (true, vec![], true),
            (false, vec![MfaType::Virtual], true),
        ] {
            let mut d = details(ROOT, &[], &[]);
            d.mfa_devices = Some(devices);
            let found = reconcile(&summary(mfa, false, false, false), &mut d, None);
            assert_eq!(found.contains(&Credential::Mfa), contradicted, "{mfa} {found:?}");
            assert_eq!(d.mfa_devices.is_none(), contradicted);
        }
        // Credential report: its mfa_active must agree too; the non-virtual device is inferred
        // from the summary and agrees by construction.
        for (mfa, report_mfa, devices, contradicted) in [
            (true, Some(true), vec![MfaType::NonVirtual], false),
            (true, None, vec![MfaType::Virtual], false),
            (true, Some(false), vec![MfaType::NonVirtual], true),
            (false, Some(true), vec![], true),
            (false, Some(false), vec![MfaType::Virtual], true),
        ] {
            let mut d = details(REPORT, &[], &[]);
            d.mfa_devices = Some(devices);
            let found = reconcile(&summary(mfa, false, false, false), &mut d, report_mfa);
            assert_eq!(
                found.contains(&Credential::Mfa),
                contradicted,
                "{mfa} {report_mfa:?} {found:?}"
            );
        }
        // A login profile without AccountPasswordPresent, and the reverse.
        for (present, profile, contradicted) in [
            (true, true, false),
            (false, false, false),
            (true, false, true),
            (false, true, true),
        ] {
            let mut d = details(ROOT, &[], &[]);
            d.password = Some(profile.then_some(Password {
                created: None,
                last_used: None,
            }));
            let found = reconcile(&summary(false, false, present, false), &mut d, None);
            assert_eq!(
                found,
                if contradicted {
                    vec![Credential::Password]
                } else {
                    vec![]
                }
            );
            assert_eq!(d.password.is_none(), contradicted);
        }
    }
}
