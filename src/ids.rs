//! Identity types every stage names: account ids and role ARNs, the way into member accounts a
//! user chooses (`access`) and the way an account was audited (the `method` label). A leaf: it
//! imports nothing of the exporter.

use serde::{Deserialize, Serialize};

use crate::label::labels;

/// An AWS account id: exactly 12 ASCII digits.
pub fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// The account id of a role ARN (`arn:PARTITION:iam::ACCOUNT:role/PATH/NAME`), when it is one.
pub fn role_arn_account(arn: &str) -> Option<&str> {
    let mut parts = arn.splitn(6, ':');
    let (scheme, partition, service, region, account, resource) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    let name = resource.strip_prefix("role/")?;
    let ok = scheme == "arn"
        && partition.starts_with("aws")
        && service == "iam"
        && region.is_empty()
        && is_account_id(account)
        && !name.is_empty()
        && name.len() <= 512;
    ok.then_some(account)
}

/// The `access` configuration key: which way into member accounts the exporter uses.
/// The flag spells the values as the file does (`--access assume_root`; `assume-root` is
/// accepted too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
#[value(rename_all = "snake_case")]
pub enum AccessMode {
    /// AssumeRoot where centralized root access is enabled, otherwise the member role when one
    /// is configured.
    #[default]
    Auto,
    /// Centralized root access: `sts:AssumeRoot` with the audit-only task policy.
    #[value(alias = "assume-root")]
    AssumeRoot,
    /// `sts:AssumeRole` into `member_role_name` in each member account.
    Role,
}

impl AccessMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AccessMode::Auto => "auto",
            AccessMode::AssumeRoot => "assume_root",
            AccessMode::Role => "role",
        }
    }
}

labels! {
    /// How an account is audited: the bounded `method` label.
    pub enum Method {
        /// A root session from `sts:AssumeRoot` (member accounts, centralized root access).
        AssumeRoot => "assume_root",
        /// `sts:AssumeRole` into the member audit role.
        MemberRole => "member_role",
        /// The exporter's own credentials, in its own account.
        OwnCredentials => "own_credentials",
        /// `sts:AssumeRole` into `management_account_role_arn`.
        ManagementRole => "management_role",
    }
}
