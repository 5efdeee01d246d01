//! Ways into accounts. Everything specific to one way in lives in one implementation of
//! [`Access`]: its organization-level precheck and how a session into one account is opened.
//! [`Ways`] holds the configured ways and, once per refresh, makes a [`Plan`] that routes each
//! account to one of them (or says why none applies). Discovery, refresh, snapshot and rendering
//! only see [`Route`] and [`Method`].
//!
//! To add a way in: write a module here with an `impl Access`, give it a [`Method`], and route
//! to it in [`Plan::route`].

mod assume_root;
mod role;

use std::sync::{Arc, OnceLock};

use futures::future::BoxFuture;
use tracing::warn;

use super::call::{AwsCallError, Caller, Operation};
use super::clients::AwsClients;
use crate::config::Config;
use crate::model::{Account, FailureReason};

pub use crate::ids::{AccessMode, Method, role_arn_account};
pub use assume_root::{AUDIT_TASK_POLICY_ARN, ORGANIZATION_FEATURES};

/// What calls a session's credentials allow, and so how the audit reads the root user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind {
    /// A root session: the root-only calls (ListAccessKeys without a user name, ...) describe
    /// the root user.
    Root,
    /// A role or the exporter's own identity: `GetAccountSummary`, and the credential report and
    /// the virtual MFA devices for the deeper facts.
    Principal,
}

/// A session into one account. It holds temporary credentials (except for the exporter's own
/// account); it is dropped when the account's audit ends.
pub struct AccountSession {
    pub iam: aws_sdk_iam::Client,
    pub kind: SessionKind,
}

impl AccountSession {
    /// A session with the temporary credentials of an STS answer (`AssumeRoot`, `AssumeRole`);
    /// an answer without them is a `bad_response` of `operation`.
    fn from_sts(
        clients: &AwsClients,
        operation: Operation,
        kind: SessionKind,
        credentials: Option<&aws_sdk_sts::types::Credentials>,
    ) -> Result<AccountSession, AwsCallError> {
        let c = credentials.ok_or_else(|| AwsCallError::malformed(operation, "answer holds no Credentials"))?;
        clients
            .own_sessions
            .opened(c.access_key_id(), std::time::SystemTime::now());
        let credentials = aws_credential_types::Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_string()),
            std::time::SystemTime::try_from(*c.expiration()).ok(),
            operation.name(),
        );
        Ok(AccountSession {
            iam: clients.iam_with(credentials),
            kind,
        })
    }
}

impl std::fmt::Debug for AccountSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AccountSession {{ kind: {:?}, .. }}", self.kind)
    }
}

/// What a way in learned about the organization before opening any account.
#[derive(Debug, Clone, Default)]
pub struct Precheck {
    /// Organization features read on the way (`iam:ListOrganizationsFeatures`): (feature,
    /// enabled). `None` when not read or unreadable.
    pub features: Option<Vec<(&'static str, bool)>>,
    /// Set when this way in cannot reach any account in this refresh.
    pub blocked: Option<Blocked>,
}

/// Why an account cannot be audited in this refresh, before any session is tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    pub reason: FailureReason,
    pub message: String,
}

pub trait Access: Send + Sync {
    fn method(&self) -> Method;

    /// Once per refresh, before any account is opened.
    fn precheck(&self) -> BoxFuture<'_, Precheck>;

    /// Open a session into one account.
    fn open<'a>(&'a self, account: &'a Account) -> BoxFuture<'a, Result<AccountSession, AwsCallError>>;
}

/// The exporter's own credentials, for its own account.
struct OwnCredentials {
    iam: aws_sdk_iam::Client,
}

impl Access for OwnCredentials {
    fn method(&self) -> Method {
        Method::OwnCredentials
    }

    fn precheck(&self) -> BoxFuture<'_, Precheck> {
        Box::pin(async { Precheck::default() })
    }

    fn open<'a>(&'a self, _account: &'a Account) -> BoxFuture<'a, Result<AccountSession, AwsCallError>> {
        Box::pin(async move {
            Ok(AccountSession {
                iam: self.iam.clone(),
                kind: SessionKind::Principal,
            })
        })
    }
}

/// The configured ways into accounts.
pub struct Ways {
    mode: AccessMode,
    clients: AwsClients,
    caller: Caller,
    assume_root: Arc<dyn Access>,
    member_role: Option<Arc<dyn Access>>,
    own: Arc<dyn Access>,
    management_role: Option<Arc<dyn Access>>,
    /// The AWS partition of the exporter's credentials (`aws`, `aws-us-gov`, `aws-cn`), for the
    /// role ARNs; read with the caller identity.
    partition: Arc<OnceLock<String>>,
}

impl Ways {
    pub fn new(config: &Config, clients: AwsClients, caller: Caller) -> Ways {
        let partition = Arc::new(OnceLock::new());
        let member_role = config.member_role_name.as_ref().map(|name| {
            Arc::new(role::Role::member(
                clients.clone(),
                caller.clone(),
                name.clone(),
                config.member_role_external_id.clone(),
                partition.clone(),
            )) as Arc<dyn Access>
        });
        let management_role = config.management_account_role_arn.as_ref().map(|arn| {
            Arc::new(role::Role::management(clients.clone(), caller.clone(), arn.clone())) as Arc<dyn Access>
        });
        Ways {
            mode: config.access,
            assume_root: Arc::new(assume_root::AssumeRoot::new(
                clients.clone(),
                config.session_duration,
                caller.clone(),
            )),
            own: Arc::new(OwnCredentials {
                iam: clients.iam.clone(),
            }),
            member_role,
            management_role,
            clients,
            caller,
            partition,
        }
    }

    /// `sts:GetCallerIdentity`: the exporter's own account id and partition.
    async fn identity(&self) -> Result<(String, String), AwsCallError> {
        const OP: Operation = Operation::GetCallerIdentity;
        let out = self
            .caller
            .call(OP, || self.clients.sts.get_caller_identity().send())
            .await?;
        let account = out
            .account()
            .filter(|a| crate::ids::is_account_id(a))
            .ok_or_else(|| AwsCallError::malformed(OP, "answer holds no 12-digit Account"))?;
        if let Some(arn) = out.arn() {
            self.clients.own_sessions.acting_as(arn);
        }
        let partition = out
            .arn()
            .and_then(|arn| arn.split(':').nth(1))
            .filter(|p| p.starts_with("aws"))
            .unwrap_or("aws");
        Ok((account.to_string(), partition.to_string()))
    }

    /// Once per refresh: who the exporter is and which way reaches member accounts now.
    pub async fn plan(&self) -> Plan {
        let identity = self.identity().await;
        let caller_account_id = match identity {
            Ok((account, partition)) => {
                let _ = self.partition.set(partition);
                Some(account)
            }
            Err(e) => {
                warn!(reason = %e.reason, error = ?e.message, "cannot tell which account the exporter's credentials belong to (sts:GetCallerIdentity); its own account is audited like any other");
                None
            }
        };
        let assume_root = match self.mode {
            AccessMode::Role => None,
            AccessMode::Auto | AccessMode::AssumeRoot => Some(self.assume_root.precheck().await),
        };
        let features = assume_root.as_ref().and_then(|p| p.features.clone());
        let member = member_way(self.mode, assume_root, self.member_role.is_some()).map(|way| match way {
            MemberWay::AssumeRoot => self.assume_root.clone(),
            MemberWay::Role => self
                .member_role
                .clone()
                .expect("member_way picks the role only when it is set"),
        });
        Plan {
            caller_account_id,
            features,
            member,
            own: self.own.clone(),
            management_role: self.management_role.clone(),
        }
    }
}

/// The way into member accounts a refresh uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberWay {
    AssumeRoot,
    Role,
}

/// Which way reaches member accounts, from the plan's inputs alone: the `access` mode, what the
/// AssumeRoot precheck found (`None`: not asked, in `role` mode) and whether `member_role_name`
/// is set. `auto`: AssumeRoot when centralized root access is on, or when it cannot be read and
/// no role is set; the member role when the feature is off, or cannot be read and a role is set.
pub fn member_way(mode: AccessMode, assume_root: Option<Precheck>, role: bool) -> Result<MemberWay, Blocked> {
    match (mode, assume_root, role) {
        (AccessMode::Role, _, true) => Ok(MemberWay::Role),
        (AccessMode::Role, _, false) => Err(Blocked {
            reason: FailureReason::NotConfigured,
            message: "access = \"role\" needs member_role_name".into(),
        }),
        (AccessMode::AssumeRoot, Some(p), _) => match p.blocked {
            Some(b) => Err(b),
            None => Ok(MemberWay::AssumeRoot),
        },
        (_, Some(p), role) => match (p.blocked, role) {
            (None, false) => Ok(MemberWay::AssumeRoot),
            (None, true) if p.features.is_none() => Ok(MemberWay::Role),
            (None, true) => Ok(MemberWay::AssumeRoot),
            (Some(_), true) => Ok(MemberWay::Role),
            (Some(b), false) => Err(Blocked {
                reason: b.reason,
                message: format!(
                    "{}; or set member_role_name to audit through a role in each account",
                    b.message
                ),
            }),
        },
        (_, None, _) => Ok(MemberWay::AssumeRoot),
    }
}

/// How the accounts of one refresh are reached.
pub struct Plan {
    /// The account the exporter's credentials belong to, when known.
    pub caller_account_id: Option<String>,
    /// Organization features read on the way, for `aws_organizations_feature_enabled`.
    pub features: Option<Vec<(&'static str, bool)>>,
    member: Result<Arc<dyn Access>, Blocked>,
    own: Arc<dyn Access>,
    management_role: Option<Arc<dyn Access>>,
}

/// How one selected account is audited in this refresh (an account that is not may not be
/// audited at all: [`Plan::route`] gives `None`).
#[derive(Clone)]
pub enum Route {
    /// Audited through this way in.
    Audit(Arc<dyn Access>),
    /// Selected, but no way in applies; the account fails with this, and no call is made.
    Fail(Blocked),
}

impl Plan {
    /// The way into `account`; `None` when it is not audited (not active: suspended, closed,
    /// ...).
    pub fn route(&self, account: &Account) -> Option<Route> {
        if !account.may_be_active() {
            return None;
        }
        Some(self.route_active(account))
    }

    fn route_active(&self, account: &Account) -> Route {
        let own = self.caller_account_id.as_deref() == Some(account.id.as_str());
        if own {
            return Route::Audit(self.own.clone());
        }
        if account.is_management {
            return match &self.management_role {
                Some(role) => Route::Audit(role.clone()),
                None => Route::Fail(Blocked {
                    reason: FailureReason::NotConfigured,
                    message: "the management account is audited with the exporter's own credentials when the exporter runs there; from elsewhere set management_account_role_arn".into(),
                }),
            };
        }
        match &self.member {
            Ok(access) => Route::Audit(access.clone()),
            Err(b) => Route::Fail(b.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_arns_are_read_strictly() {
        assert_eq!(
            role_arn_account("arn:aws:iam::111111111111:role/RootAudit"),
            Some("111111111111")
        );
        assert_eq!(
            role_arn_account("arn:aws-us-gov:iam::111111111111:role/path/RootAudit"),
            Some("111111111111")
        );
        for bad in [
            "arn:aws:iam::11111111111:role/x",
            "arn:aws:iam::111111111111:user/x",
            "arn:aws:sts::111111111111:role/x",
            "arn:aws:iam::111111111111:role/",
            "RootAudit",
        ] {
            assert_eq!(role_arn_account(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_way_into_member_accounts_follows_the_mode_the_feature_and_the_role() {
        use AccessMode::{AssumeRoot as Root, Auto, Role};
        use MemberWay::{AssumeRoot as ByRoot, Role as ByRole};
        let on = || {
            Some(Precheck {
                features: Some(vec![("RootCredentialsManagement", true)]),
                blocked: None,
            })
        };
        let unreadable = || Some(Precheck::default());
        let off = || {
            Some(Precheck {
                features: Some(vec![("RootCredentialsManagement", false)]),
                blocked: Some(Blocked {
                    reason: FailureReason::RootAccessNotEnabled,
                    message: "off".into(),
                }),
            })
        };
        // (mode, precheck, role set) -> way, or the reason it is blocked
        type Case = (AccessMode, Option<Precheck>, bool, Result<MemberWay, FailureReason>);
        let cases: Vec<Case> = vec![
            (Auto, on(), false, Ok(ByRoot)),
            (Auto, on(), true, Ok(ByRoot)),
            (Auto, unreadable(), false, Ok(ByRoot)),
            (Auto, unreadable(), true, Ok(ByRole)),
            (Auto, off(), true, Ok(ByRole)),
            (Auto, off(), false, Err(FailureReason::RootAccessNotEnabled)),
            (Root, on(), true, Ok(ByRoot)),
            (Root, unreadable(), false, Ok(ByRoot)),
            (Root, off(), true, Err(FailureReason::RootAccessNotEnabled)),
            (Role, None, true, Ok(ByRole)),
            (Role, None, false, Err(FailureReason::NotConfigured)),
            // Not asked (never in auto or assume_root, but the decision is total).
            (Auto, None, false, Ok(ByRoot)),
        ];
        for (mode, precheck, role, want) in cases {
            let case = format!("{mode:?} {precheck:?} role={role}");
            let got = member_way(mode, precheck, role).map_err(|b| b.reason);
            assert_eq!(got, want, "{case}");
        }
        // Blocked in auto without a role: the message says how to get around it.
        let b = member_way(Auto, off(), false).unwrap_err();
        assert!(b.message.contains("member_role_name"), "{}", b.message);
    }
}
