//! Centralized root access: `sts:AssumeRoot` scoped by the `IAMAuditRootUserCredentials` task
//! policy, from the management account or the IAM delegated administrator.

use std::time::Duration;

use aws_sdk_sts::types::PolicyDescriptorType;
use futures::future::BoxFuture;
use tracing::{error, warn};

use super::{Access, AccountSession, Blocked, Method, Precheck, SessionKind};
use crate::aws::call::{AwsCallError, Caller, Operation};
use crate::aws::clients::AwsClients;
use crate::model::{Account, FailureReason};

/// The IAM task policy that scopes the root session to auditing the root user's credentials.
pub const AUDIT_TASK_POLICY_ARN: &str = "arn:aws:iam::aws:policy/root-task/IAMAuditRootUserCredentials";

/// Organization features that `iam:ListOrganizationsFeatures` reports.
pub const ORGANIZATION_FEATURES: [&str; 2] = ["RootCredentialsManagement", "RootSessions"];

/// The feature that gates the audit task.
const GATE: &str = "RootCredentialsManagement";

/// Longest root session AWS allows (`DurationSeconds`).
const MAX_DURATION_SECONDS: i32 = 900;

pub struct AssumeRoot {
    clients: AwsClients,
    duration_seconds: i32,
    caller: Caller,
}

impl AssumeRoot {
    pub fn new(clients: AwsClients, duration: Duration, caller: Caller) -> Self {
        let duration_seconds = i32::try_from(duration.as_secs())
            .unwrap_or(MAX_DURATION_SECONDS)
            .clamp(1, MAX_DURATION_SECONDS);
        AssumeRoot {
            clients,
            duration_seconds,
            caller,
        }
    }

    /// `None` when the features cannot be read (the role may lack the permission).
    async fn features(&self) -> Option<Vec<(&'static str, bool)>> {
        let out = self
            .caller
            .call(Operation::ListOrganizationsFeatures, || {
                self.clients.iam.list_organizations_features().send()
            })
            .await;
        match out {
            Ok(o) => {
                let enabled: Vec<&str> = o.enabled_features().iter().map(|f| f.as_str()).collect();
                Some(
                    ORGANIZATION_FEATURES
                        .iter()
                        .map(|f| (*f, enabled.contains(f)))
                        .collect(),
                )
            }
            Err(e) => {
                warn!(reason = %e.reason, error = %e.message, "cannot read the organization's root access features (iam:ListOrganizationsFeatures)");
                None
            }
        }
    }
}

impl Access for AssumeRoot {
    fn method(&self) -> Method {
        Method::AssumeRoot
    }

    fn precheck(&self) -> BoxFuture<'_, Precheck> {
        Box::pin(async move {
            let features = self.features().await;
            let off = features
                .as_ref()
                .is_some_and(|f| f.iter().any(|(name, on)| *name == GATE && !on));
            let blocked = off.then(|| {
                error!(
                    "centralized root access (RootCredentialsManagement) is not enabled for this organization: no member account can be audited. Enable it with `aws iam enable-organizations-root-credentials-management` from the management account"
                );
                Blocked {
                    reason: FailureReason::RootAccessNotEnabled,
                    message: "centralized root access is not enabled for the organization".into(),
                }
            });
            Precheck { features, blocked }
        })
    }

    fn open<'a>(&'a self, account: &'a Account) -> BoxFuture<'a, Result<AccountSession, AwsCallError>> {
        Box::pin(async move {
            let policy = PolicyDescriptorType::builder().arn(AUDIT_TASK_POLICY_ARN).build();
            let output = self
                .caller
                .call(Operation::AssumeRoot, || {
                    self.clients
                        .sts
                        .assume_root()
                        .target_principal(&account.id)
                        .task_policy_arn(policy.clone())
                        .duration_seconds(self.duration_seconds)
                        .send()
                })
                .await?;
            AccountSession::from_sts(
                &self.clients,
                Operation::AssumeRoot,
                SessionKind::Root,
                output.credentials(),
            )
        })
    }
}
