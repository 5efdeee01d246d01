//! Stage 2: audit one account's root user inside its session.

use std::time::SystemTime;

use aws_sdk_iam::types::SummaryKeyType;

use crate::aws::AwsCallError;
use crate::aws::errors::classify;
use crate::aws::session::AccountSession;
use crate::config::Checks;
use crate::model::{
    AccessKey, AuditFindings, CredentialStatus, FailureReason, MfaType, Password, RootDetails, RootSummary,
};
use crate::telemetry::Telemetry;

/// `summary`: GetAccountSummary only. `full`: also the six deeper calls, run concurrently; a
/// deeper call that fails leaves its part unknown and is listed, the summary still counts.
pub async fn audit(
    session: &AccountSession,
    checks: Checks,
    telemetry: &Telemetry,
) -> Result<AuditFindings, AwsCallError> {
    let summary = summary(&session.iam, telemetry).await?;
    let mut findings = AuditFindings {
        summary,
        details: None,
        failed_operations: Vec::new(),
    };
    if checks == Checks::Full {
        let (keys, mfa, password, certificates) = futures::join!(
            access_keys(&session.iam, telemetry),
            mfa_devices(&session.iam, telemetry),
            password(&session.iam, telemetry),
            signing_certificates(&session.iam, telemetry),
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
fn part<T>(result: Result<T, AwsCallError>, failed: &mut Vec<(&'static str, FailureReason)>) -> Option<T> {
    match result {
        Ok(v) => Some(v),
        Err(e) => {
            failed.push((e.operation, e.reason));
            None
        }
    }
}

fn malformed(operation: &'static str, message: impl Into<String>) -> AwsCallError {
    AwsCallError {
        service: "iam",
        operation,
        reason: FailureReason::Other,
        message: message.into(),
    }
}

async fn summary(iam: &aws_sdk_iam::Client, telemetry: &Telemetry) -> Result<RootSummary, AwsCallError> {
    let out = iam
        .get_account_summary()
        .send()
        .await
        .map_err(|e| classify("iam", "GetAccountSummary", &e));
    telemetry.record("iam", "GetAccountSummary", &out);
    let out = out?;
    let map = out
        .summary_map()
        .ok_or_else(|| malformed("GetAccountSummary", "answer holds no SummaryMap"))?;
    // A flag missing from the answer is unknown, never 0.
    let flag = |key: SummaryKeyType| -> Result<bool, AwsCallError> {
        match map.get(&key) {
            Some(0) => Ok(false),
            Some(1) => Ok(true),
            Some(v) => Err(malformed(
                "GetAccountSummary",
                format!("{} = {v}, expected 0 or 1", key.as_str()),
            )),
            None => Err(malformed(
                "GetAccountSummary",
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

fn to_system_time(t: &aws_smithy_types::DateTime) -> Option<SystemTime> {
    SystemTime::try_from(*t).ok()
}

async fn access_keys(iam: &aws_sdk_iam::Client, telemetry: &Telemetry) -> Result<Vec<AccessKey>, AwsCallError> {
    let pages: Vec<_> = iam.list_access_keys().into_paginator().send().collect().await;
    let mut keys = Vec::new();
    for page in pages {
        let page = page.map_err(|e| classify("iam", "ListAccessKeys", &e));
        telemetry.record("iam", "ListAccessKeys", &page);
        for k in page?.access_key_metadata() {
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
    }
    // Last use of each key; a failure here leaves that key's last use unknown and fails the part.
    let lookups = futures::future::join_all(keys.iter().map(|k| async move {
        let out = iam
            .get_access_key_last_used()
            .access_key_id(&k.id)
            .send()
            .await
            .map_err(|e| classify("iam", "GetAccessKeyLastUsed", &e));
        telemetry.record("iam", "GetAccessKeyLastUsed", &out);
        out.map(|o| {
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

async fn mfa_devices(iam: &aws_sdk_iam::Client, telemetry: &Telemetry) -> Result<Vec<MfaType>, AwsCallError> {
    let pages: Vec<_> = iam.list_mfa_devices().into_paginator().send().collect().await;
    let mut devices = Vec::new();
    for page in pages {
        let page = page.map_err(|e| classify("iam", "ListMFADevices", &e));
        telemetry.record("iam", "ListMFADevices", &page);
        devices.extend(
            page?
                .mfa_devices()
                .iter()
                .map(|d| MfaType::from_serial(d.serial_number())),
        );
    }
    Ok(devices)
}

/// `None` inside: the root user has no console password (`NoSuchEntity`).
async fn password(iam: &aws_sdk_iam::Client, telemetry: &Telemetry) -> Result<Option<Password>, AwsCallError> {
    let (profile, user) = futures::join!(iam.get_login_profile().send(), iam.get_user().send());
    let created = match profile {
        Ok(out) => {
            telemetry.record::<()>("iam", "GetLoginProfile", &Ok(()));
            Some(out.login_profile().and_then(|p| to_system_time(p.create_date())))
        }
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_entity_exception()) => {
            telemetry.record::<()>("iam", "GetLoginProfile", &Ok(()));
            None
        }
        Err(e) => {
            let err = classify("iam", "GetLoginProfile", &e);
            telemetry.record::<()>("iam", "GetLoginProfile", &Err(err.clone()));
            return Err(err);
        }
    };
    let user = user.map_err(|e| classify("iam", "GetUser", &e));
    telemetry.record("iam", "GetUser", &user);
    let last_used = user?
        .user()
        .and_then(|u| u.password_last_used())
        .and_then(to_system_time);
    Ok(created.map(|created| Password { created, last_used }))
}

async fn signing_certificates(
    iam: &aws_sdk_iam::Client,
    telemetry: &Telemetry,
) -> Result<Vec<CredentialStatus>, AwsCallError> {
    let pages: Vec<_> = iam.list_signing_certificates().into_paginator().send().collect().await;
    let mut certificates = Vec::new();
    for page in pages {
        let page = page.map_err(|e| classify("iam", "ListSigningCertificates", &e));
        telemetry.record("iam", "ListSigningCertificates", &page);
        certificates.extend(
            page?
                .certificates()
                .iter()
                .map(|c| CredentialStatus::parse(c.status().as_str())),
        );
    }
    Ok(certificates)
}
