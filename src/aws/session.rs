//! The seam through which the audit gets into a member account. Today: `sts:AssumeRoot` with the
//! audit-only task policy. Other ways in (a cross-account role, the management account's own
//! credentials) implement [`SessionOpener`] without touching discovery, refresh or rendering.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sdk_sts::types::PolicyDescriptorType;
use futures::future::BoxFuture;

use super::clients::AwsClients;
use super::errors::{AwsCallError, classify};
use crate::config::AUDIT_TASK_POLICY_ARN;
use crate::model::{Account, FailureReason};
use crate::telemetry::Telemetry;

/// A session into one account: an IAM client whose calls describe that account's root user.
/// It holds temporary credentials; it is dropped when the account's audit ends.
pub struct AccountSession {
    pub iam: aws_sdk_iam::Client,
}

impl std::fmt::Debug for AccountSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccountSession { .. }")
    }
}

pub trait SessionOpener: Send + Sync {
    fn open<'a>(&'a self, account: &'a Account) -> BoxFuture<'a, Result<AccountSession, AwsCallError>>;
}

/// Centralized root access: `sts:AssumeRoot` scoped by `IAMAuditRootUserCredentials`.
pub struct AssumeRootOpener {
    clients: AwsClients,
    duration_seconds: i32,
    telemetry: Telemetry,
}

impl AssumeRootOpener {
    pub fn new(clients: AwsClients, duration: std::time::Duration, telemetry: Telemetry) -> Self {
        let duration_seconds = i32::try_from(duration.as_secs()).unwrap_or(900).clamp(1, 900);
        AssumeRootOpener {
            clients,
            duration_seconds,
            telemetry,
        }
    }
}

impl SessionOpener for AssumeRootOpener {
    fn open<'a>(&'a self, account: &'a Account) -> BoxFuture<'a, Result<AccountSession, AwsCallError>> {
        Box::pin(async move {
            let policy = PolicyDescriptorType::builder().arn(AUDIT_TASK_POLICY_ARN).build();
            let result = self
                .clients
                .sts
                .assume_root()
                .target_principal(&account.id)
                .task_policy_arn(policy)
                .duration_seconds(self.duration_seconds)
                .send()
                .await
                .map_err(|e| classify("sts", "AssumeRoot", &e));
            self.telemetry.record("sts", "AssumeRoot", &result);
            let output = result?;
            let Some(c) = output.credentials() else {
                return Err(AwsCallError {
                    service: "sts",
                    operation: "AssumeRoot",
                    reason: FailureReason::Other,
                    message: "AssumeRoot answered without credentials".into(),
                });
            };
            let expiry = SystemTime::try_from(*c.expiration()).ok();
            let credentials = Credentials::new(
                c.access_key_id(),
                c.secret_access_key(),
                Some(c.session_token().to_string()),
                expiry,
                "AssumeRoot",
            );
            Ok(AccountSession {
                iam: self.clients.iam_with(credentials),
            })
        })
    }
}
