//! Ways into accounts. Everything specific to one way in lives in one implementation of
//! [`Access`]: its organization-level precheck, which accounts it can reach, how a session into
//! one account is opened, and how deep an audit that session supports. Discovery, refresh,
//! snapshot and rendering only see the trait.
//!
//! To add a way in: write a module here with an `impl Access`, add a variant to
//! [`AccessMethod`] and a line to [`build`].

mod assume_root;

use std::sync::Arc;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::call::{AwsCallError, Caller};
use super::clients::AwsClients;
use crate::config::{Checks, Config};
use crate::model::{Account, FailureReason};

/// The `access` configuration key: which way into accounts the exporter uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessMethod {
    /// Centralized root access: `sts:AssumeRoot` with the audit-only task policy.
    #[default]
    AssumeRoot,
}

impl AccessMethod {
    pub const ALL: [AccessMethod; 1] = [AccessMethod::AssumeRoot];

    pub fn as_str(self) -> &'static str {
        match self {
            AccessMethod::AssumeRoot => "assume_root",
        }
    }
}

/// Build the configured way in.
pub fn build(config: &Config, clients: AwsClients, caller: Caller) -> Arc<dyn Access> {
    match config.access {
        AccessMethod::AssumeRoot => Arc::new(assume_root::AssumeRoot::new(clients, config.session_duration, caller)),
    }
}

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

/// What a way in learned about the organization before opening any account.
#[derive(Debug, Clone, Default)]
pub struct Precheck {
    /// Organization features read on the way (`iam:ListOrganizationsFeatures`): (feature,
    /// enabled). `None` when not read or unreadable.
    pub features: Option<Vec<(&'static str, bool)>>,
    /// Set when no account can be reached in this refresh: every selected account fails with it
    /// and no session is opened.
    pub blocked: Option<Blocked>,
}

/// Why a way in cannot reach any account right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    pub reason: FailureReason,
    pub message: String,
}

pub trait Access: Send + Sync {
    /// Once per refresh, before any account is opened.
    fn precheck(&self) -> BoxFuture<'_, Precheck>;

    /// Whether this way in can reach the account at all. Accounts it cannot reach are listed but
    /// not audited.
    fn reaches(&self, account: &Account) -> bool;

    /// Open a session into one account.
    fn open<'a>(&'a self, account: &'a Account) -> BoxFuture<'a, Result<AccountSession, AwsCallError>>;

    /// The deepest audit a session of this kind can make.
    fn max_checks(&self) -> Checks;
}
