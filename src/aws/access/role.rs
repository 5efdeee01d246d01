//! A role in the account: `sts:AssumeRole` into the member audit role (`member_role_name` in each
//! member account) or into `management_account_role_arn`. Role credentials see the account's
//! root user only through `GetAccountSummary`, the credential report and the virtual MFA
//! devices (a [`SessionKind::Principal`] session).

use std::sync::{Arc, OnceLock};

use futures::future::BoxFuture;

use super::{Access, AccountSession, Method, Precheck, SessionKind};
use crate::aws::call::{AwsCallError, Caller, Operation};
use crate::aws::clients::AwsClients;
use crate::model::Account;

/// AssumeRole sessions last at least 900 s; the audit needs seconds.
const DURATION_SECONDS: i32 = 900;

/// The session name, as CloudTrail in the target account shows it.
const SESSION_NAME: &str = "aws-root-exporter";

enum Target {
    /// `member_role_name` in whatever member account is opened.
    Member {
        name: String,
        partition: Arc<OnceLock<String>>,
    },
    /// One fixed role ARN (the management account's).
    Fixed(String),
}

pub struct Role {
    clients: AwsClients,
    caller: Caller,
    target: Target,
    external_id: Option<String>,
    method: Method,
}

impl Role {
    pub fn member(
        clients: AwsClients,
        caller: Caller,
        name: String,
        external_id: Option<String>,
        partition: Arc<OnceLock<String>>,
    ) -> Role {
        Role {
            clients,
            caller,
            target: Target::Member { name, partition },
            external_id,
            method: Method::MemberRole,
        }
    }

    pub fn management(clients: AwsClients, caller: Caller, arn: String) -> Role {
        Role {
            clients,
            caller,
            target: Target::Fixed(arn),
            external_id: None,
            method: Method::ManagementRole,
        }
    }

    fn arn(&self, account: &Account) -> String {
        match &self.target {
            Target::Member { name, partition } => {
                let partition = partition.get().map(String::as_str).unwrap_or("aws");
                format!("arn:{partition}:iam::{}:role/{name}", account.id)
            }
            Target::Fixed(arn) => arn.clone(),
        }
    }
}

impl Access for Role {
    fn method(&self) -> Method {
        self.method
    }

    fn precheck(&self) -> BoxFuture<'_, Precheck> {
        Box::pin(async { Precheck::default() })
    }

    fn open<'a>(&'a self, account: &'a Account) -> BoxFuture<'a, Result<AccountSession, AwsCallError>> {
        Box::pin(async move {
            let arn = self.arn(account);
            let output = self
                .caller
                .call(Operation::AssumeRole, || {
                    self.clients
                        .sts
                        .assume_role()
                        .role_arn(&arn)
                        .role_session_name(SESSION_NAME)
                        .duration_seconds(DURATION_SECONDS)
                        .set_external_id(self.external_id.clone())
                        .send()
                })
                .await?;
            AccountSession::from_sts(
                &self.clients,
                Operation::AssumeRole,
                SessionKind::Principal,
                output.credentials(),
            )
        })
    }
}
