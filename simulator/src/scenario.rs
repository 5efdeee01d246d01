//! The simulator's scenario file: an organization, its accounts and their root users, optional
//! generated accounts for large organizations, latency, rate limits and injected faults.

use std::cell::OnceCell;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::SystemTime;

use serde::Deserialize;

use crate::rng::Rng;

/// Why a scenario cannot be used. Each message is one line naming the file (or the origin given
/// to [`Scenario::parse`]) and the problem; the I/O error of `Read` is part of the message, not
/// an error source, so that `{e}` and `{e:#}` print the same.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file cannot be read.
    #[error("cannot read scenario {path}: {error}")]
    Read { path: String, error: std::io::Error },
    /// The text is not TOML, or not the scenario's shape.
    #[error("scenario {path}: {message}")]
    Parse { path: String, message: String },
    /// A value is out of range (an id, a state, a fraction...).
    #[error("scenario {path}: {message}")]
    Invalid { path: String, message: String },
    /// Scenarios served together clash (an account id, an organization id or a caller access
    /// key in two of them).
    #[error("scenarios {first} and {second}: {message}")]
    Conflict {
        first: String,
        second: String,
        message: String,
    },
}

/// Organization features that `iam:ListOrganizationsFeatures` reports. The simulator's own list,
/// deliberately not shared with the exporter.
pub(crate) const FEATURES: [&str; 2] = ["RootCredentialsManagement", "RootSessions"];

/// An AWS account id: exactly 12 ASCII digits. The simulator's own check, deliberately not shared
/// with the exporter, so that a mistake in one is not hidden by the other.
pub(crate) fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// `at ID is not an account id`, the one wording of the scenario file and the control API.
pub(crate) fn check_account_id(at: &str, id: &str) -> Result<(), String> {
    if is_account_id(id) {
        Ok(())
    } else {
        Err(format!("{at} {id:?} is not an account id (exactly 12 digits)"))
    }
}

/// Every name in `features` is one `iam:ListOrganizationsFeatures` knows (the scenario's
/// `organization.features` and the control API's `PUT /_simulator/features`).
pub(crate) fn check_features(at: &str, features: &[String]) -> Result<(), String> {
    match features.iter().find(|f| !FEATURES.contains(&f.as_str())) {
        None => Ok(()),
        Some(bad) => Err(format!(
            "{at}: unknown feature {bad:?}; allowed: {}",
            FEATURES.join(", ")
        )),
    }
}

/// Organizations account states (the `State` field of an account).
pub(crate) const ACCOUNT_STATES: [&str; 5] = ["PENDING_ACTIVATION", "ACTIVE", "SUSPENDED", "PENDING_CLOSURE", "CLOSED"];

/// The retired `Status` field of an account knows only three values; a PENDING_ACTIVATION
/// account has none.
pub(crate) fn legacy_status(state: &str) -> Option<&'static str> {
    match state {
        "ACTIVE" => Some("ACTIVE"),
        "SUSPENDED" | "CLOSED" => Some("SUSPENDED"),
        "PENDING_CLOSURE" => Some("PENDING_CLOSURE"),
        _ => None,
    }
}

/// `"*"` or an operation the simulator serves, for faults; the list in error messages.
fn allowed_operations(with_wildcard: bool) -> String {
    let ops = crate::served_operations().join(", ");
    if with_wildcard { format!("\"*\", {ops}") } else { ops }
}

fn is_served(operation: &str) -> bool {
    crate::served_operations().contains(&operation)
}

/// A parsed and validated scenario: the organization, its accounts and their root users,
/// generated accounts, latency and injected faults. The format is described in the crate's
/// README.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub(crate) organization: OrganizationSpec,
    #[serde(default)]
    pub(crate) accounts: Vec<AccountSpec>,
    pub(crate) generate: Option<GenerateSpec>,
    #[serde(default)]
    pub(crate) latency: LatencySpec,
    #[serde(default)]
    pub(crate) credential_report: CredentialReportSpec,
    /// `[events]`: an SQS queue that receives the EventBridge events of root credential changes.
    pub(crate) events: Option<EventsSpec>,
    /// `[[faults]]` (a list), or `[faults.OPERATION]` tables keyed by operation: read by
    /// [`parse_faults`] into `faults` once the organization's accounts are known.
    #[serde(default, rename = "faults")]
    raw_faults: Option<toml::Value>,
    #[serde(skip)]
    pub(crate) faults: Vec<FaultSpec>,
    /// `[rate_limits]`: a token bucket per operation, read by [`parse_rate_limits`].
    #[serde(default, rename = "rate_limits")]
    raw_rate_limits: Option<toml::Value>,
    #[serde(skip)]
    pub(crate) rate_limits: BTreeMap<String, RateLimitSpec>,
    /// Where the scenario came from (a path, or the origin given to [`Scenario::parse`]): names
    /// it when scenarios served together clash.
    #[serde(skip)]
    pub(crate) origin: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OrganizationSpec {
    pub(crate) id: String,
    pub(crate) management_account_id: String,
    /// Name of the management account when `[[accounts]]` does not list it.
    #[serde(default = "default_management_name")]
    pub(crate) management_account_name: String,
    #[serde(default = "default_features")]
    pub(crate) features: Vec<String>,
    /// When set, only these access key ids (and the simulator's own temporary ones) may call;
    /// any other key gets `InvalidClientTokenId`. When unset, any key acts as the management
    /// account.
    #[serde(default)]
    pub(crate) caller_access_key_ids: Option<Vec<String>>,
    /// The account the exporter's own credentials (any the simulator did not issue) belong to:
    /// the management account (the default) or, when another, the IAM delegated administrator,
    /// which must be an `[[accounts]]` entry.
    #[serde(default)]
    pub(crate) caller_account_id: Option<String>,
}

impl OrganizationSpec {
    /// `caller_account_id`, or the management account when unset.
    pub(crate) fn caller_account_id(&self) -> &str {
        self.caller_account_id.as_deref().unwrap_or(&self.management_account_id)
    }
}

/// `[credential_report]`: how IAM's credential report behaves.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CredentialReportSpec {
    /// How long a report takes from GenerateCredentialReport to COMPLETE.
    #[serde(default)]
    pub(crate) generation_ms: u64,
}

/// `[events]`: the SQS queue (a standard queue in the management account) that EventBridge
/// delivers the events of root credential changes to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventsSpec {
    pub(crate) queue_name: String,
    /// How long after a change its events become visible in the queue.
    #[serde(default)]
    pub(crate) delivery_delay_ms: u64,
    /// The queue's default visibility timeout (AWS's default: 30 seconds).
    #[serde(default = "default_visibility_timeout")]
    pub(crate) visibility_timeout_s: u64,
}

fn default_visibility_timeout() -> u64 {
    30
}

/// The longest `[events] delivery_delay_ms` accepted (an hour).
const MAX_DELIVERY_DELAY_MS: u64 = 3_600_000;
/// SQS's largest visibility timeout (12 hours).
pub(crate) const MAX_VISIBILITY_TIMEOUT_S: u64 = 43_200;

/// An SQS queue name: 1 to 80 of `A-Za-z0-9_-` (a standard queue: no `.fifo`).
pub(crate) fn is_queue_name(s: &str) -> bool {
    (1..=80).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The longest `[credential_report] generation_ms` accepted (an hour).
const MAX_GENERATION_MS: u64 = 3_600_000;

fn default_management_name() -> String {
    "management".into()
}

fn default_features() -> Vec<String> {
    FEATURES.iter().map(|s| s.to_string()).collect()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AccountSpec {
    pub(crate) id: String,
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) email: Option<String>,
    #[serde(default = "default_status")]
    pub(crate) status: String,
    #[serde(default)]
    pub(crate) assume_root: AssumeRootMode,
    /// Which of `State` and `Status` the account's `ListAccounts` entry carries.
    #[serde(default)]
    pub(crate) state_fields: StateFields,
    #[serde(default)]
    pub(crate) root: RootSpec,
    /// IAM roles in the account that `sts:AssumeRole` can reach.
    #[serde(default)]
    pub(crate) roles: Vec<RoleSpec>,
    /// The account's OU, as a path of OU names under the root (`"Workloads/Prod"`); directly
    /// under the root when absent.
    #[serde(default)]
    pub(crate) ou: Option<String>,
    /// The account's tags (`organizations:ListTagsForResource`).
    #[serde(default)]
    pub(crate) tags: BTreeMap<String, String>,
}

/// Which of the two state fields an account's `ListAccounts` entry carries. AWS retired
/// `Account.Status` on 2026-09-09 in favour of `State`; a client must still cope with an entry
/// that has only one of them, or neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum StateFields {
    /// `State`, and `Status` when the state has a legacy value (not for PENDING_ACTIVATION).
    #[default]
    StateAndStatus,
    StateOnly,
    /// Only the legacy `Status`: the account's state must have one.
    StatusOnly,
    /// Neither field.
    #[serde(rename = "none")]
    Neither,
}

impl StateFields {
    pub(crate) fn state(self) -> bool {
        matches!(self, StateFields::StateAndStatus | StateFields::StateOnly)
    }

    pub(crate) fn status(self) -> bool {
        matches!(self, StateFields::StateAndStatus | StateFields::StatusOnly)
    }
}

fn default_status() -> String {
    "ACTIVE".into()
}

/// How a root session into the account behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum AssumeRootMode {
    #[default]
    Ok,
    /// An SCP denies root actions without a carve-out for `aws:AssumedRoot`: AssumeRoot itself
    /// succeeds, every IAM call in the root session is denied.
    AccessDenied,
}

/// The root user's credentials. Also the body of the control API's `PUT .../root`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RootSpec {
    #[serde(default)]
    pub(crate) mfa: Vec<MfaKind>,
    #[serde(default)]
    pub(crate) password: PasswordSpec,
    #[serde(default)]
    pub(crate) access_keys: Vec<AccessKeySpec>,
    #[serde(default)]
    pub(crate) signing_certificates: Vec<CertificateSpec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum MfaKind {
    Virtual,
    Hardware,
    Passkey,
    Sms,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub(crate) enum KeyStatus {
    Active,
    Inactive,
    Expired,
}

impl KeyStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "Active",
            KeyStatus::Inactive => "Inactive",
            KeyStatus::Expired => "Expired",
        }
    }
}

/// `true`/`false`, or a table with the password's dates (meaning there is one).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "toml::Value")]
pub(crate) enum PasswordSpec {
    Flag(bool),
    Dates {
        created: Option<SystemTime>,
        last_used: Option<SystemTime>,
    },
}

impl Default for PasswordSpec {
    fn default() -> Self {
        PasswordSpec::Flag(false)
    }
}

impl PasswordSpec {
    pub(crate) fn present(&self) -> bool {
        !matches!(self, PasswordSpec::Flag(false))
    }
}

/// A plain status string, or a table with the key's dates.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "toml::Value")]
pub(crate) enum AccessKeySpec {
    Status(KeyStatus),
    Detailed {
        status: KeyStatus,
        created: Option<SystemTime>,
        last_used: Option<SystemTime>,
        /// Service and region of the last use; defaults to `iam` / `us-east-1`.
        last_used_service: Option<String>,
        last_used_region: Option<String>,
    },
}

impl AccessKeySpec {
    pub(crate) fn status(&self) -> KeyStatus {
        match self {
            AccessKeySpec::Status(s) => *s,
            AccessKeySpec::Detailed { status, .. } => *status,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "toml::Value")]
pub(crate) enum CertificateSpec {
    Status(KeyStatus),
    Detailed { status: KeyStatus },
}

impl CertificateSpec {
    pub(crate) fn status(&self) -> KeyStatus {
        match self {
            CertificateSpec::Status(s) | CertificateSpec::Detailed { status: s } => *s,
        }
    }
}

// The root credential fields take a plain value or a table. Read through `toml::Value` so that a
// bad entry gets an error naming what is allowed (serde's untagged enums only say "no variant
// matched"); this works for TOML scenarios and the control API's JSON alike.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordTable {
    #[serde(default, deserialize_with = "opt_time")]
    created: Option<SystemTime>,
    #[serde(default, deserialize_with = "opt_time")]
    last_used: Option<SystemTime>,
}

impl TryFrom<toml::Value> for PasswordSpec {
    type Error = String;
    fn try_from(v: toml::Value) -> Result<Self, String> {
        match v {
            toml::Value::Boolean(b) => Ok(PasswordSpec::Flag(b)),
            toml::Value::Table(_) => v
                .try_into::<PasswordTable>()
                .map(|t| PasswordSpec::Dates {
                    created: t.created,
                    last_used: t.last_used,
                })
                .map_err(|e| format!("password: {}", e.to_string().trim())),
            other => Err(format!(
                "password {other}: expected true, false or a table {{ created, last_used }}"
            )),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccessKeyTable {
    status: KeyStatus,
    #[serde(default, deserialize_with = "opt_time")]
    created: Option<SystemTime>,
    #[serde(default, deserialize_with = "opt_time")]
    last_used: Option<SystemTime>,
    #[serde(default)]
    last_used_service: Option<String>,
    #[serde(default)]
    last_used_region: Option<String>,
}

const STATUSES: &str = "\"Active\", \"Inactive\", \"Expired\"";

fn status(v: toml::Value, what: &str) -> Result<KeyStatus, String> {
    let shown = v.to_string();
    v.try_into::<KeyStatus>()
        .map_err(|_| format!("{what} status {shown} is not allowed; allowed: {STATUSES}"))
}

impl TryFrom<toml::Value> for AccessKeySpec {
    type Error = String;
    fn try_from(v: toml::Value) -> Result<Self, String> {
        match v {
            toml::Value::String(_) => status(v, "access key").map(AccessKeySpec::Status),
            toml::Value::Table(_) => v
                .try_into::<AccessKeyTable>()
                .map(|t| AccessKeySpec::Detailed {
                    status: t.status,
                    created: t.created,
                    last_used: t.last_used,
                    last_used_service: t.last_used_service,
                    last_used_region: t.last_used_region,
                })
                .map_err(|e| format!("access key: {}", e.to_string().trim())),
            other => Err(format!(
                "access key {other}: expected a status ({STATUSES}) or a table {{ status, created, last_used, last_used_service, last_used_region }}"
            )),
        }
    }
}

impl TryFrom<toml::Value> for CertificateSpec {
    type Error = String;
    fn try_from(v: toml::Value) -> Result<Self, String> {
        match v {
            toml::Value::String(_) => status(v, "signing certificate").map(CertificateSpec::Status),
            toml::Value::Table(mut t) => match (t.remove("status"), t.is_empty()) {
                (Some(s), true) => status(s, "signing certificate").map(|status| CertificateSpec::Detailed { status }),
                _ => Err("signing certificate: a table holds exactly one key, status".into()),
            },
            other => Err(format!(
                "signing certificate {other}: expected a status ({STATUSES}) or {{ status = ... }}"
            )),
        }
    }
}

/// An IAM role in an account: a role name (it trusts the caller account, needs no external id),
/// or a table `{ name, trusts, external_id, max_session_duration }`. Also an item of the control
/// API's `PUT .../roles` body.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "toml::Value")]
pub(crate) struct RoleSpec {
    pub(crate) name: String,
    /// Account ids the role's trust policy names; `None` means the caller account.
    pub(crate) trusts: Option<Vec<String>>,
    /// The `sts:ExternalId` the trust policy requires, if any.
    pub(crate) external_id: Option<String>,
    /// The role's MaxSessionDuration in seconds (AWS's default: 3600).
    pub(crate) max_session_duration: u64,
    /// The role's policy allows what the exporter's own role may do (Organizations reads,
    /// `iam:ListOrganizationsFeatures`, `sts:AssumeRoot` into the members, its own account's
    /// root): the per-organization access role of another organization's management account or
    /// delegated administrator. Only in those two accounts; `false` (the default) is an audit
    /// role that reads its own account's root only.
    pub(crate) organization_access: bool,
}

/// AWS's default MaxSessionDuration of a role, and the range it may be set to.
pub(crate) const DEFAULT_MAX_SESSION_DURATION: u64 = 3600;
const MAX_SESSION_DURATIONS: std::ops::RangeInclusive<u64> = 3600..=43_200;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleTable {
    name: String,
    #[serde(default)]
    trusts: Option<Vec<String>>,
    #[serde(default)]
    external_id: Option<String>,
    #[serde(default)]
    max_session_duration: Option<u64>,
    #[serde(default)]
    organization_access: bool,
}

impl TryFrom<toml::Value> for RoleSpec {
    type Error = String;
    fn try_from(v: toml::Value) -> Result<Self, String> {
        match v {
            toml::Value::String(name) => Ok(RoleSpec {
                name,
                trusts: None,
                external_id: None,
                max_session_duration: DEFAULT_MAX_SESSION_DURATION,
                organization_access: false,
            }),
            toml::Value::Table(_) => v
                .try_into::<RoleTable>()
                .map(|t| RoleSpec {
                    name: t.name,
                    trusts: t.trusts,
                    external_id: t.external_id,
                    max_session_duration: t.max_session_duration.unwrap_or(DEFAULT_MAX_SESSION_DURATION),
                    organization_access: t.organization_access,
                })
                .map_err(|e| format!("role: {}", e.to_string().trim())),
            other => Err(format!(
                "role {other}: expected a role name or a table {{ name, trusts, external_id, max_session_duration, organization_access }}"
            )),
        }
    }
}

/// IAM's pattern for role names and session names: letters, digits and `+=,.@_-`.
pub(crate) fn is_iam_name(s: &str) -> bool {
    s.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
}

/// The checks of an account's `roles` (the scenario's `accounts[N].roles`, the control API's
/// `PUT .../roles`); `at` names the list.
pub(crate) fn check_roles(at: &str, roles: &[RoleSpec]) -> Result<(), String> {
    let mut seen = HashSet::new();
    for (j, role) in roles.iter().enumerate() {
        let at = format!("{at}[{j}]");
        if role.name.is_empty() || role.name.len() > 64 || !is_iam_name(&role.name) {
            return Err(format!(
                "{at}: role name {:?} is not an IAM role name (1 to 64 letters, digits and +=,.@_-)",
                role.name
            ));
        }
        // IAM role names are unique regardless of case.
        if !seen.insert(role.name.to_ascii_lowercase()) {
            return Err(format!("{at}: role {:?} is listed twice", role.name));
        }
        for (k, id) in role.trusts.iter().flatten().enumerate() {
            check_account_id(&format!("{at}.trusts[{k}]"), id)?;
        }
        if let Some(x) = &role.external_id {
            let fits = (2..=1224).contains(&x.len())
                && x.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@:/_-".contains(c));
            if !fits {
                return Err(format!(
                    "{at}.external_id {x:?} is not an external id (2 to 1224 letters, digits and +=,.@:/_-)"
                ));
            }
        }
        if !MAX_SESSION_DURATIONS.contains(&role.max_session_duration) {
            return Err(format!(
                "{at}.max_session_duration = {} is out of range; allowed: 3600 to 43200 seconds",
                role.max_session_duration
            ));
        }
    }
    Ok(())
}

/// `organization_access = true` only on a role of the management account or of the caller
/// account (the delegated administrator): the accounts the Organizations API answers.
pub(crate) fn check_organization_access(
    at: &str,
    roles: &[RoleSpec],
    account_id: &str,
    management_account_id: &str,
    caller_account_id: &str,
) -> Result<(), String> {
    if account_id == management_account_id || account_id == caller_account_id {
        return Ok(());
    }
    match roles.iter().position(|r| r.organization_access) {
        Some(j) => Err(format!(
            "{at}[{j}].organization_access = true in account {account_id}; allowed only in the management account ({management_account_id}) or the caller account ({caller_account_id}), the accounts the Organizations API answers"
        )),
        None => Ok(()),
    }
}

/// The checks of an account's `tags` (the scenario's `accounts[N].tags`, the control API's
/// `PUT .../tags`), as Organizations checks TagResource: at most 50, keys of 1 to 128 and values
/// of up to 256 letters, digits, spaces and `_.:/=+-@`, no key starting with `aws:`.
pub(crate) fn check_tags(at: &str, tags: &BTreeMap<String, String>) -> Result<(), String> {
    if tags.len() > 50 {
        return Err(format!("{at}: {} tags; allowed: at most 50", tags.len()));
    }
    let fits = |s: &str| {
        s.chars()
            .all(|c| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c))
    };
    for (key, value) in tags {
        if key.is_empty() || key.chars().count() > 128 || !fits(key) {
            return Err(format!(
                "{at}: tag key {key:?} is not allowed; allowed: 1 to 128 letters, digits, spaces and _.:/=+-@"
            ));
        }
        if key.to_ascii_lowercase().starts_with("aws:") {
            return Err(format!(
                "{at}: tag key {key:?} is not allowed; the aws: prefix is AWS's"
            ));
        }
        if value.chars().count() > 256 || !fits(value) {
            return Err(format!(
                "{at}.{key}: tag value {value:?} is not allowed; allowed: up to 256 letters, digits, spaces and _.:/=+-@"
            ));
        }
    }
    Ok(())
}

/// OUs nest at most five levels under the root in AWS Organizations.
const MAX_OU_DEPTH: usize = 5;

/// An account's `ou`: OU names separated by `/`, one to five levels.
fn check_ou(at: &str, path: &str) -> Result<(), String> {
    let names: Vec<&str> = path.split('/').collect();
    if let Some(bad) = names.iter().find(|n| n.is_empty() || n.chars().count() > 128) {
        return Err(format!(
            "{at} {path:?} has an OU name {bad:?} that is empty or longer than 128 characters; expected OU names separated by \"/\", like \"Workloads/Prod\""
        ));
    }
    if names.len() > MAX_OU_DEPTH {
        return Err(format!(
            "{at} {path:?} is {} levels deep; allowed: 1 to {MAX_OU_DEPTH} (AWS's limit)",
            names.len()
        ));
    }
    Ok(())
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GenerateSpec {
    pub(crate) accounts: usize,
    #[serde(default)]
    pub(crate) seed: u64,
    #[serde(default)]
    pub(crate) access_keys: f64,
    #[serde(default)]
    pub(crate) password: f64,
    #[serde(default)]
    pub(crate) mfa: f64,
    #[serde(default)]
    pub(crate) signing_certificates: f64,
    /// Spread the generated accounts over this many OUs under the root (`generated-001`, ...),
    /// round robin; 0 (the default): directly under the root.
    #[serde(default)]
    pub(crate) ous: usize,
}

/// `default_ms`, plus per-operation overrides written either as `operations = { AssumeRoot = 50 }`
/// or directly as `AssumeRoot = 50` in `[latency]`. Any other key is refused by
/// [`Scenario::validate`], which names the operations the simulator serves.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct LatencySpec {
    #[serde(default)]
    pub(crate) default_ms: u64,
    #[serde(default)]
    pub(crate) operations: BTreeMap<String, u64>,
    /// Every other key of `[latency]`: an operation, or a mistake.
    #[serde(flatten)]
    pub(crate) direct: BTreeMap<String, u64>,
}

impl LatencySpec {
    /// Milliseconds added before answering `operation`.
    pub(crate) fn delay_ms(&self, operation: &str) -> u64 {
        self.operations
            .get(operation)
            .or_else(|| self.direct.get(operation))
            .copied()
            .unwrap_or(self.default_ms)
    }

    fn check(&self) -> Result<(), String> {
        for key in self.direct.keys() {
            if !is_served(key) {
                return Err(format!(
                    "latency.{key} is not a key of [latency]; allowed: default_ms, operations, or an operation the simulator serves: {}",
                    allowed_operations(false)
                ));
            }
            if self.operations.contains_key(key) {
                return Err(format!(
                    "latency.{key} and latency.operations.{key} are both set; set one"
                ));
            }
        }
        for key in self.operations.keys() {
            if !is_served(key) {
                return Err(format!(
                    "latency.operations.{key}: {key:?} is not an operation the simulator serves; allowed: {}",
                    allowed_operations(false)
                ));
            }
        }
        Ok(())
    }
}

/// An injected fault: answers of `operation` (or every operation, `"*"`) fail as configured.
/// Read from the scenario's `faults` and the control API's `PUT /_simulator/faults` alike, by
/// [`parse_faults`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FaultSpec {
    /// An operation name, or `"*"` (the default) for every operation.
    #[serde(default = "any_operation")]
    pub(crate) operation: String,
    pub(crate) kind: FaultKind,
    /// Fraction of calls affected (0..=1), drawn from the scenario's seed.
    #[serde(default = "one")]
    pub(crate) rate: f64,
    /// Affect only the next `count` matching calls (a burst); unlimited when absent.
    #[serde(default)]
    pub(crate) count: Option<u64>,
    /// Only for `kind = "slow"`: delay added before answering.
    #[serde(default)]
    pub(crate) delay_ms: u64,
    /// Only calls into this account (AssumeRoot target, or the root session's account).
    #[serde(default)]
    pub(crate) account_id: Option<String>,
}

fn any_operation() -> String {
    "*".into()
}

fn one() -> f64 {
    1.0
}

impl FaultSpec {
    /// The checks of one fault's values; `at` names it (`faults[0]`, `faults.AssumeRoot`),
    /// `named_by_table` says the operation came from a `[faults.OPERATION]` table's name, and
    /// `is_member` whether an account id is in the organization.
    fn check(&self, at: &str, named_by_table: bool, is_member: &dyn Fn(&str) -> bool) -> Result<(), String> {
        if self.operation != "*" && !is_served(&self.operation) {
            let key = if named_by_table {
                at.to_string()
            } else {
                format!("{at}.operation")
            };
            return Err(format!(
                "{key}: {:?} is not an operation the simulator serves; allowed: {}",
                self.operation,
                allowed_operations(true)
            ));
        }
        if !(0.0..=1.0).contains(&self.rate) {
            return Err(format!(
                "{at}.rate = {} is not a fraction; allowed: 0.0 to 1.0",
                self.rate
            ));
        }
        if self.count == Some(0) {
            return Err(format!(
                "{at}.count = 0 would never fire; allowed: 1 or more, or no count for every matching call"
            ));
        }
        match (self.kind, self.delay_ms) {
            (FaultKind::Slow, 0) => {
                return Err(format!(
                    "{at}: kind = \"slow\" needs delay_ms (milliseconds, 1 or more)"
                ));
            }
            (FaultKind::Slow, _) | (_, 0) => {}
            (kind, ms) => {
                return Err(format!(
                    "{at}.delay_ms = {ms} applies only to kind = \"slow\", not {:?}",
                    kind.name()
                ));
            }
        }
        if let Some(id) = &self.account_id {
            check_account_id(&format!("{at}.account_id"), id)?;
            if !is_member(id) {
                return Err(format!(
                    "{at}.account_id {id:?} is not an account of the organization (its management account, an [[accounts]] entry or a generated account)"
                ));
            }
        }
        Ok(())
    }
}

/// Faults as the scenario's `faults` and the control API's body hold them: a list of fault
/// tables, or tables keyed by operation (`[faults.AssumeRoot]`). Unknown keys, kinds, operations
/// and out-of-range values are refused with one line naming the fault and what is allowed; the
/// one reader of both, so that the file and the control API accept the same faults.
pub(crate) fn parse_faults(value: toml::Value, is_member: &dyn Fn(&str) -> bool) -> Result<Vec<FaultSpec>, String> {
    let entries: Vec<(String, toml::Value, Option<String>)> = match value {
        toml::Value::Array(list) => list
            .into_iter()
            .enumerate()
            .map(|(i, v)| (format!("faults[{i}]"), v, None))
            .collect(),
        toml::Value::Table(map) => map
            .into_iter()
            .map(|(operation, v)| (format!("faults.{operation}"), v, Some(operation)))
            .collect(),
        other => {
            return Err(format!(
                "faults = {other}: expected a list of faults ([[faults]]) or tables keyed by operation ([faults.OPERATION])"
            ));
        }
    };
    let mut faults = Vec::with_capacity(entries.len());
    for (at, v, table_operation) in entries {
        if !v.is_table() {
            return Err(format!(
                "{at} = {v}: expected a table {{ operation, kind, rate, count, delay_ms, account_id }}"
            ));
        }
        if table_operation.is_some() && v.get("operation").is_some() {
            return Err(format!(
                "{at}.operation is not allowed: the table's name is the operation"
            ));
        }
        check_fault_types(&at, &v)?;
        let mut fault: FaultSpec = v
            .try_into()
            .map_err(|e: toml::de::Error| format!("{at}: {} (kinds: {FAULT_KINDS})", e.message().trim()))?;
        if let Some(operation) = &table_operation {
            fault.operation = operation.clone();
        }
        fault.check(&at, table_operation.is_some(), is_member)?;
        faults.push(fault);
    }
    Ok(faults)
}

/// Each known key of a fault holds the type it takes; serde's own message would not name the key.
/// Unknown keys are left to `deny_unknown_fields`, whose message lists the known ones.
fn check_fault_types(at: &str, fault: &toml::Value) -> Result<(), String> {
    use toml::Value as V;
    let Some(table) = fault.as_table() else {
        return Ok(());
    };
    for (key, v) in table {
        let (fits, expected) = match key.as_str() {
            "operation" | "kind" | "account_id" => (v.is_str(), "a string"),
            "rate" => (matches!(v, V::Float(_) | V::Integer(_)), "a number from 0.0 to 1.0"),
            "count" | "delay_ms" => (matches!(v, V::Integer(n) if *n >= 0), "a whole number, 0 or more"),
            _ => continue,
        };
        if !fits {
            return Err(format!("{at}.{key} = {v} is not {expected}"));
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum FaultKind {
    /// `Throttling` (Query protocols) / `TooManyRequestsException` (Organizations), HTTP 400.
    Throttling,
    /// HTTP 503 `ServiceUnavailable` (Query) / 500 `ServiceException` (Organizations).
    ServerError,
    /// Answer after `delay_ms`.
    Slow,
    /// Not an AWS answer at all: HTTP 500, `Content-Type: text/html` and a small HTML page, as a
    /// generic reverse proxy or an AWS-compatible endpoint lacking the operation gives; no AWS
    /// error code anywhere.
    NotAws,
    /// The caller is not allowed: `AccessDenied` (Query, 403) / `AccessDeniedException`
    /// (Organizations, 400), as a missing permission or an SCP gives.
    AccessDenied,
}

impl FaultKind {
    fn name(self) -> &'static str {
        match self {
            FaultKind::Throttling => "throttling",
            FaultKind::ServerError => "server_error",
            FaultKind::Slow => "slow",
            FaultKind::NotAws => "not_aws",
            FaultKind::AccessDenied => "access_denied",
        }
    }
}

pub(crate) const FAULT_KINDS: &str = "throttling, server_error, slow, not_aws, access_denied";

/// One operation's token bucket (`[rate_limits] OPERATION = { rate, burst, scope }`): `burst`
/// tokens at most, `rate` tokens added per second; a call takes one, and is throttled when none
/// is left. Read from the scenario and the control API's `PUT /_simulator/rate_limits` alike, by
/// [`parse_rate_limits`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RateLimitSpec {
    /// Tokens added per second (above 0; 0.5 is one every two seconds).
    pub(crate) rate: f64,
    /// The bucket's size, and what it holds at the start.
    pub(crate) burst: u32,
    pub(crate) scope: RateLimitScope,
}

/// Whose calls share a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RateLimitScope {
    /// One bucket for every call of the operation.
    Global,
    /// One bucket per account whose credentials make the call (IAM and STS operations only): a
    /// root or role session's account, or the caller account for the caller's own credentials.
    Account,
}

/// The largest `rate` accepted (requests per second).
const MAX_RATE: f64 = 1_000_000.0;
/// The largest `burst` accepted.
const MAX_BURST: i64 = 1_000_000_000;

const RATE_LIMIT_KEYS: &str = "rate, burst, scope";

/// The scenario's `[rate_limits]` and the control API's `PUT /_simulator/rate_limits` body:
/// tables keyed by operation, `{ rate, burst, scope }`. Unknown operations and keys, a `rate` not
/// above 0, a `burst` of 0 and an unknown scope are refused with one line naming the key and what
/// is allowed; the one reader of both.
pub(crate) fn parse_rate_limits(value: toml::Value) -> Result<BTreeMap<String, RateLimitSpec>, String> {
    use toml::Value as V;
    let V::Table(table) = value else {
        return Err(format!(
            "rate_limits = {value}: expected tables keyed by operation, like AssumeRoot = {{ rate = 50, burst = 50 }}"
        ));
    };
    let mut limits = BTreeMap::new();
    for (operation, v) in table {
        let at = format!("rate_limits.{operation}");
        if !is_served(&operation) {
            return Err(format!(
                "{at}: {operation:?} is not an operation the simulator serves; allowed: {}",
                allowed_operations(false)
            ));
        }
        let V::Table(fields) = v else {
            return Err(format!("{at} = {v}: expected a table {{ {RATE_LIMIT_KEYS} }}"));
        };
        let (mut rate, mut burst, mut scope) = (None, None, RateLimitScope::Global);
        for (key, v) in &fields {
            match (key.as_str(), v) {
                ("rate", V::Float(f)) => rate = Some(*f),
                ("rate", V::Integer(n)) => rate = Some(*n as f64),
                ("rate", _) => return Err(format!("{at}.rate = {v} is not a number of requests per second")),
                ("burst", V::Integer(n)) => burst = Some(*n),
                ("burst", _) => return Err(format!("{at}.burst = {v} is not a whole number, 1 or more")),
                ("scope", V::String(s)) if s == "global" => scope = RateLimitScope::Global,
                ("scope", V::String(s)) if s == "account" => scope = RateLimitScope::Account,
                ("scope", _) => {
                    return Err(format!(
                        "{at}.scope = {v} is not a scope; allowed: \"global\" (one bucket, the default), \"account\" (one bucket per calling account)"
                    ));
                }
                _ => {
                    return Err(format!(
                        "{at}.{key} is not a key of a rate limit; allowed: {RATE_LIMIT_KEYS}"
                    ));
                }
            }
        }
        let Some(rate) = rate else {
            return Err(format!("{at}: rate is required (requests per second, above 0)"));
        };
        if !(rate > 0.0 && rate <= MAX_RATE) {
            return Err(format!(
                "{at}.rate = {rate} is out of range; allowed: above 0 to {MAX_RATE} requests per second (0.5 is one every two seconds)"
            ));
        }
        let burst = match burst {
            // The rate rounded up: a second's worth of calls.
            None => rate.ceil() as i64,
            Some(b) if (1..=MAX_BURST).contains(&b) => b,
            Some(b) => {
                return Err(format!(
                    "{at}.burst = {b} is out of range; allowed: 1 to {MAX_BURST} (default: the rate rounded up)"
                ));
            }
        };
        let per_account = crate::operations::IAM.contains(&operation.as_str())
            || crate::operations::STS.contains(&operation.as_str());
        if scope == RateLimitScope::Account && !per_account {
            return Err(format!(
                "{at}.scope = \"account\" applies to IAM and STS operations only (one bucket per account whose credentials call); {operation} is only called with the caller's own credentials: use scope = \"global\""
            ));
        }
        let burst = u32::try_from(burst).expect("at most MAX_BURST");
        limits.insert(operation, RateLimitSpec { rate, burst, scope });
    }
    Ok(limits)
}

impl Scenario {
    /// Read and validate a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|error| ScenarioError::Read {
            path: shown.clone(),
            error,
        })?;
        Self::parse(&text, &shown)
    }

    /// Parse and validate scenario TOML; `origin` names it in error messages (a path, or e.g.
    /// `"built-in demo"`).
    pub fn parse(text: &str, origin: &str) -> Result<Scenario, ScenarioError> {
        let scenario: Scenario = toml::from_str(text).map_err(|e| ScenarioError::Parse {
            path: origin.to_string(),
            message: e.to_string().trim().replace('\n', " "),
        })?;
        let mut scenario = scenario.validate().map_err(|message| ScenarioError::Invalid {
            path: origin.to_string(),
            message,
        })?;
        scenario.origin = origin.to_string();
        Ok(scenario)
    }

    fn validate(mut self) -> Result<Scenario, String> {
        let raw_faults = self.raw_faults.take();
        if let Some(raw) = self.raw_rate_limits.take() {
            self.rate_limits = parse_rate_limits(raw)?;
        }
        let org = &self.organization;
        if !org.id.starts_with("o-") || org.id.len() < 12 {
            return Err(format!(
                "organization.id {:?} is not an organization id (\"o-\" then 10 to 32 lowercase letters or digits)",
                org.id
            ));
        }
        check_account_id("organization.management_account_id", &org.management_account_id)?;
        check_features("organization.features", &org.features)?;
        if let Some(caller) = &org.caller_account_id {
            check_account_id("organization.caller_account_id", caller)?;
            if *caller != org.management_account_id && !self.accounts.iter().any(|a| a.id == *caller) {
                return Err(format!(
                    "organization.caller_account_id {caller:?} is neither the management account nor an [[accounts]] entry; the IAM delegated administrator must be listed"
                ));
            }
        }
        if self.credential_report.generation_ms > MAX_GENERATION_MS {
            return Err(format!(
                "credential_report.generation_ms = {} is too long; allowed: 0 to {MAX_GENERATION_MS}",
                self.credential_report.generation_ms
            ));
        }
        if let Some(e) = &self.events {
            if !is_queue_name(&e.queue_name) {
                return Err(format!(
                    "events.queue_name {:?} is not a standard queue name; allowed: 1 to 80 letters, digits, - and _",
                    e.queue_name
                ));
            }
            if e.delivery_delay_ms > MAX_DELIVERY_DELAY_MS {
                return Err(format!(
                    "events.delivery_delay_ms = {} is too long; allowed: 0 to {MAX_DELIVERY_DELAY_MS}",
                    e.delivery_delay_ms
                ));
            }
            if e.visibility_timeout_s > MAX_VISIBILITY_TIMEOUT_S {
                return Err(format!(
                    "events.visibility_timeout_s = {} is too long; allowed: 0 to {MAX_VISIBILITY_TIMEOUT_S} (SQS's limit)",
                    e.visibility_timeout_s
                ));
            }
        }
        let mut seen = HashSet::new();
        for (i, a) in self.accounts.iter().enumerate() {
            check_account_id(&format!("accounts[{i}].id"), &a.id)?;
            if !seen.insert(a.id.as_str()) {
                return Err(format!("accounts[{i}].id {:?} is listed twice", a.id));
            }
            if a.name.is_empty() {
                return Err(format!("accounts[{i}].name is empty"));
            }
            if !ACCOUNT_STATES.contains(&a.status.as_str()) {
                return Err(format!(
                    "accounts[{i}].status {:?} is not an account state; allowed: {}",
                    a.status,
                    ACCOUNT_STATES.join(", ")
                ));
            }
            if a.state_fields == StateFields::StatusOnly && legacy_status(&a.status).is_none() {
                return Err(format!(
                    "accounts[{i}].state_fields = \"status_only\" but status {:?} has no legacy Status value (only ACTIVE, SUSPENDED, PENDING_CLOSURE and CLOSED do); allowed here: state_and_status, state_only, none",
                    a.status
                ));
            }
            check_roles(&format!("accounts[{i}].roles"), &a.roles)?;
            check_organization_access(
                &format!("accounts[{i}].roles"),
                &a.roles,
                &a.id,
                &org.management_account_id,
                org.caller_account_id(),
            )?;
            if let Some(ou) = &a.ou {
                check_ou(&format!("accounts[{i}].ou"), ou)?;
            }
            check_tags(&format!("accounts[{i}].tags"), &a.tags)?;
        }
        if let Some(g) = &self.generate {
            if g.accounts > 100_000 {
                return Err(format!(
                    "generate.accounts = {} is too many; allowed: 0 to 100000",
                    g.accounts
                ));
            }
            if g.ous > 1000 {
                return Err(format!("generate.ous = {} is too many; allowed: 0 to 1000", g.ous));
            }
            for (key, v) in [
                ("access_keys", g.access_keys),
                ("password", g.password),
                ("mfa", g.mfa),
                ("signing_certificates", g.signing_certificates),
            ] {
                if !(0.0..=1.0).contains(&v) {
                    return Err(format!("generate.{key} = {v} is not a fraction; allowed: 0.0 to 1.0"));
                }
            }
        }
        self.latency.check()?;
        if let Some(raw) = raw_faults {
            let faults = {
                let listed: HashSet<&str> = std::iter::once(org.management_account_id.as_str())
                    .chain(self.accounts.iter().map(|a| a.id.as_str()))
                    .collect();
                // Generated accounts only when a fault names an account that is not listed.
                let generated: OnceCell<HashSet<String>> = OnceCell::new();
                let is_member = |id: &str| {
                    listed.contains(id)
                        || self.generate.as_ref().is_some_and(|g| {
                            generated
                                .get_or_init(|| generated_accounts(g, &listed).into_iter().map(|(id, _)| id).collect())
                                .contains(id)
                        })
                };
                parse_faults(raw, &is_member)?
            };
            self.faults = faults;
        }
        Ok(self)
    }
}

fn opt_time<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<SystemTime>, D::Error> {
    // TOML offers native datetimes and strings; accept both, in RFC 3339.
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Date(toml::value::Datetime),
        Text(String),
    }
    let text = match Option::<Raw>::deserialize(d)? {
        None => return Ok(None),
        Some(Raw::Date(dt)) => dt.to_string(),
        Some(Raw::Text(s)) => s,
    };
    humantime::parse_rfc3339_weak(&text).map(Some).map_err(|_| {
        serde::de::Error::custom(format!(
            "{text:?} is not a date-time; expected RFC 3339 like \"2025-01-31T12:00:00Z\""
        ))
    })
}

/// The accounts `[generate]` adds, in listing order: increasing ids from 500000000001 on that
/// are not `taken` (the listed accounts), and their root users, drawn from the seed.
pub(crate) fn generated_accounts(g: &GenerateSpec, taken: &HashSet<&str>) -> Vec<(String, RootSpec)> {
    let mut grng = Rng::new(g.seed);
    let mut out = Vec::with_capacity(g.accounts);
    let mut candidate: u64 = 500_000_000_000;
    while out.len() < g.accounts {
        candidate += 1 + grng.next_u64() % 997;
        let id = format!("{candidate:012}");
        if taken.contains(id.as_str()) {
            continue;
        }
        let mut spec = RootSpec::default();
        if grng.fraction() < g.mfa {
            spec.mfa = vec![MfaKind::Virtual];
        }
        if grng.fraction() < g.password {
            spec.password = PasswordSpec::Flag(true);
        }
        if grng.fraction() < g.access_keys {
            spec.access_keys = vec![AccessKeySpec::Status(KeyStatus::Active)];
        }
        if grng.fraction() < g.signing_certificates {
            spec.signing_certificates = vec![CertificateSpec::Status(KeyStatus::Active)];
        }
        out.push((id, spec));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[organization]
id = "o-exampleorg1"
management_account_id = "111111111111"
"#;

    #[test]
    fn account_ids_are_exactly_twelve_ascii_digits() {
        assert!(is_account_id("012345678901"));
        for bad in [
            "",
            "12345678901",
            "1234567890123",
            "12345678901a",
            "１２３４５６７８９０１２",
            " 12345678901",
        ] {
            assert!(!is_account_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn minimal_scenario_has_all_features() {
        let s = Scenario::parse(MINIMAL, "t").unwrap();
        assert_eq!(s.organization.features.len(), 2);
        assert!(s.accounts.is_empty());
    }

    #[test]
    fn rich_fields_parse() {
        let text = format!(
            "{MINIMAL}\n[[accounts]]\nid = \"222222222222\"\nname = \"a\"\nroot = {{ mfa = [\"passkey\"], password = {{ created = \"2024-01-01T00:00:00Z\" }}, access_keys = [\"Inactive\", {{ status = \"Active\", last_used = \"2025-02-03T04:05:06Z\" }}], signing_certificates = [\"Active\"] }}\n"
        );
        let s = Scenario::parse(&text, "t").unwrap();
        let root = &s.accounts[0].root;
        assert!(root.password.present());
        assert_eq!(root.access_keys[0].status(), KeyStatus::Inactive);
        assert_eq!(root.access_keys[1].status(), KeyStatus::Active);
        assert_eq!(root.mfa, vec![MfaKind::Passkey]);
    }

    #[test]
    fn latency_and_faults_accept_both_forms() {
        let text = format!(
            "{MINIMAL}\n[latency]\ndefault_ms = 5\nAssumeRoot = 50\noperations = {{ ListAccounts = 7 }}\n\n[faults.AssumeRoot]\nkind = \"throttling\"\nrate = 0.5\n"
        );
        let s = Scenario::parse(&text, "t").unwrap();
        assert_eq!(s.latency.default_ms, 5);
        assert_eq!(s.latency.delay_ms("AssumeRoot"), 50);
        assert_eq!(s.latency.delay_ms("ListAccounts"), 7);
        assert_eq!(s.latency.delay_ms("GetAccountSummary"), 5);
        assert_eq!(s.faults.len(), 1);
        assert_eq!(s.faults[0].operation, "AssumeRoot");
        assert_eq!(s.faults[0].kind, FaultKind::Throttling);

        let list = format!("{MINIMAL}\n[[faults]]\nkind = \"server_error\"\ncount = 3\n");
        let s = Scenario::parse(&list, "t").unwrap();
        assert_eq!((s.faults[0].operation.as_str(), s.faults[0].count), ("*", Some(3)));

        let bad = format!("{MINIMAL}\n[[faults]]\nkind = \"explode\"\n");
        let err = Scenario::parse(&bad, "t").unwrap_err().to_string();
        assert!(
            err.contains("faults[0]") && err.contains("explode") && err.contains("throttling"),
            "{err}"
        );
    }

    #[test]
    fn bad_values_are_named() {
        let bad_status = format!("{MINIMAL}\n[[accounts]]\nid = \"222222222222\"\nname = \"a\"\nstatus = \"GONE\"\n");
        let err = Scenario::parse(&bad_status, "t").unwrap_err().to_string();
        assert!(
            err.contains("accounts[0].status \"GONE\"") && err.contains("ACTIVE"),
            "{err}"
        );

        let bad_id = format!("{MINIMAL}\n[[accounts]]\nid = \"22\"\nname = \"a\"\n");
        let err = Scenario::parse(&bad_id, "t").unwrap_err().to_string();
        assert!(err.contains("accounts[0].id \"22\""), "{err}");

        let bad_mfa =
            format!("{MINIMAL}\n[[accounts]]\nid = \"222222222222\"\nname = \"a\"\nroot = {{ mfa = [\"phone\"] }}\n");
        let err = Scenario::parse(&bad_mfa, "t").unwrap_err().to_string();
        assert!(err.contains("phone"), "{err}");

        let bad_key = format!(
            "{MINIMAL}\n[[accounts]]\nid = \"222222222222\"\nname = \"a\"\nroot = {{ access_keys = [\"Actve\"] }}\n"
        );
        let err = Scenario::parse(&bad_key, "t").unwrap_err().to_string();
        assert!(err.contains("\"Actve\"") && err.contains("Inactive"), "{err}");

        let bad_password =
            format!("{MINIMAL}\n[[accounts]]\nid = \"222222222222\"\nname = \"a\"\nroot = {{ password = \"yes\" }}\n");
        let err = Scenario::parse(&bad_password, "t").unwrap_err().to_string();
        assert!(err.contains("expected true, false or a table"), "{err}");

        let bad_feature = MINIMAL.replace("111111111111\"", "111111111111\"\nfeatures = [\"Nope\"]");
        let err = Scenario::parse(&bad_feature, "t").unwrap_err().to_string();
        assert!(err.contains("Nope") && err.contains("RootSessions"), "{err}");
    }

    fn error(text: &str) -> String {
        Scenario::parse(text, "s.toml").unwrap_err().to_string()
    }

    /// One line naming the scenario and each of `parts`.
    fn assert_names(err: &str, parts: &[&str]) {
        assert!(!err.contains('\n'), "{err}");
        assert!(err.starts_with("scenario s.toml: "), "{err}");
        for p in parts {
            assert!(err.contains(p), "{p:?} not in {err}");
        }
    }

    #[test]
    fn every_table_rejects_unknown_keys() {
        for (table, allowed) in [
            ("\n[latency]\ndefualt_ms = 5\n", "default_ms"),
            ("\n[generate]\naccounts = 1\nsede = 3\n", "seed"),
            ("\n[[faults]]\nkind = \"slow\"\ndelay_ms = 5\ndelay = 5\n", "delay_ms"),
            ("\n[faults.AssumeRoot]\nkind = \"throttling\"\nrat = 0.5\n", "rate"),
            (
                "\n[[accounts]]\nid = \"222222222222\"\nname = \"a\"\nstate = \"ACTIVE\"\n",
                "status",
            ),
            (
                "\n[[accounts]]\nid = \"222222222222\"\nname = \"a\"\nroot = { mfa = [], pasword = true }\n",
                "password",
            ),
            ("\n[extra]\nx = 1\n", "organization"),
            ("\n[credential_report]\ngeneration = 5\n", "generation_ms"),
            ("\n[rate_limits]\nAssumeRoot = { rate = 1, brust = 2 }\n", "burst"),
            (
                "\n[[accounts]]\nid = \"222222222222\"\nname = \"a\"\nroles = [{ name = \"R\", trust = [] }]\n",
                "trusts",
            ),
        ] {
            let err = error(&format!("{MINIMAL}{table}"));
            assert!(!err.contains('\n'), "{err}");
            assert!(err.contains("s.toml") && err.contains(allowed), "{table}: {err}");
        }
        let err = error(&MINIMAL.replace("management_account_id", "management_acount_id"));
        assert!(err.contains("management_acount_id"), "{err}");
    }

    #[test]
    fn latency_names_only_served_operations() {
        let err = error(&format!("{MINIMAL}\n[latency]\ndefualt_ms = 5\n"));
        assert_names(
            &err,
            &[
                "latency.defualt_ms",
                "default_ms, operations",
                "AssumeRoot",
                "ListOrganizationsFeatures",
            ],
        );
        let err = error(&format!(
            "{MINIMAL}\n[latency]\noperations = {{ AssumeRoleWithSAML = 5 }}\n"
        ));
        assert_names(
            &err,
            &[
                "latency.operations.AssumeRoleWithSAML",
                "\"AssumeRoleWithSAML\"",
                "GetCallerIdentity",
            ],
        );
        let err = error(&format!(
            "{MINIMAL}\n[latency]\nAssumeRoot = 5\noperations = {{ AssumeRoot = 6 }}\n"
        ));
        assert_names(&err, &["latency.AssumeRoot and latency.operations.AssumeRoot"]);
        for op in crate::served_operations() {
            let ok = format!("{MINIMAL}\n[latency]\n{op} = 1\noperations = {{ {op} = 2 }}\n");
            assert!(error(&ok).contains("both set"), "{op}");
            Scenario::parse(&format!("{MINIMAL}\n[latency]\n{op} = 1\n"), "t").unwrap();
        }
    }

    #[test]
    fn faults_name_only_served_operations_and_members() {
        let list = |body: &str| {
            format!("{MINIMAL}\n[[accounts]]\nid = \"222222222222\"\nname = \"a\"\n\n[[faults]]\n{body}\n")
        };
        for (body, parts) in [
            (
                "operation = \"AssumeRoleWithSAML\"\nkind = \"throttling\"",
                &[
                    "faults[0].operation",
                    "\"AssumeRoleWithSAML\"",
                    "\"*\", DescribeOrganization",
                    "ListSigningCertificates",
                ][..],
            ),
            (
                "kind = \"throttling\"\nrate = 1.5",
                &["faults[0].rate = 1.5", "0.0 to 1.0"],
            ),
            (
                "kind = \"throttling\"\ncount = 0",
                &["faults[0].count = 0", "1 or more"],
            ),
            ("kind = \"slow\"", &["faults[0]", "delay_ms"]),
            (
                "kind = \"throttling\"\ndelay_ms = 5",
                &["faults[0].delay_ms = 5", "slow"],
            ),
            ("kind = \"explode\"", &["faults[0]", "explode", "not_aws"]),
            (
                "kind = \"not_aws\"\naccount_id = \"22\"",
                &["faults[0].account_id \"22\"", "12 digits"],
            ),
            (
                "kind = \"not_aws\"\naccount_id = \"333333333333\"",
                &[
                    "faults[0].account_id \"333333333333\"",
                    "not an account of the organization",
                ],
            ),
        ] {
            assert_names(&error(&list(body)), parts);
        }
        // Members: the management account, listed accounts, generated ones.
        Scenario::parse(&list("kind = \"not_aws\"\naccount_id = \"111111111111\""), "t").unwrap();
        Scenario::parse(&list("kind = \"not_aws\"\naccount_id = \"222222222222\""), "t").unwrap();
        let generated = format!("{MINIMAL}\n[generate]\naccounts = 3\nseed = 7\n");
        let world = crate::state::World::new(&Scenario::parse(&generated, "t").unwrap());
        let last = &world.accounts.last().unwrap().id;
        Scenario::parse(
            &format!("{generated}\n[[faults]]\nkind = \"throttling\"\naccount_id = \"{last}\"\n"),
            "t",
        )
        .unwrap();

        let table = format!("{MINIMAL}\n[faults.AssumeRoleWithSAML]\nkind = \"throttling\"\n");
        assert_names(
            &error(&table),
            &["faults.AssumeRoleWithSAML: \"AssumeRoleWithSAML\"", "AssumeRoot"],
        );
        let table = format!("{MINIMAL}\n[faults.AssumeRoot]\nkind = \"throttling\"\noperation = \"ListAccounts\"\n");
        assert_names(&error(&table), &["faults.AssumeRoot.operation is not allowed"]);
        let star = format!("{MINIMAL}\n[[faults]]\noperation = \"*\"\nkind = \"not_aws\"\n");
        assert_eq!(Scenario::parse(&star, "t").unwrap().faults[0].kind, FaultKind::NotAws);
    }

    #[test]
    fn rate_limits_parse_with_defaults() {
        let s = Scenario::parse(
            &format!(
                "{MINIMAL}\n[rate_limits]\nAssumeRoot = {{ rate = 50, burst = 60 }}\nGetAccountSummary = {{ rate = 20, scope = \"account\" }}\nListAccounts = {{ rate = 0.5 }}\nGetCallerIdentity = {{ rate = 2.5, scope = \"global\" }}\n"
            ),
            "t",
        )
        .unwrap();
        let l = &s.rate_limits;
        assert_eq!(l.len(), 4);
        let spec = |rate, burst, scope| RateLimitSpec { rate, burst, scope };
        assert_eq!(l["AssumeRoot"], spec(50.0, 60, RateLimitScope::Global));
        assert_eq!(l["GetAccountSummary"], spec(20.0, 20, RateLimitScope::Account));
        assert_eq!(
            l["ListAccounts"],
            spec(0.5, 1, RateLimitScope::Global),
            "burst: the rate rounded up"
        );
        assert_eq!(l["GetCallerIdentity"], spec(2.5, 3, RateLimitScope::Global));
        assert!(Scenario::parse(MINIMAL, "t").unwrap().rate_limits.is_empty());
        // Per account: every IAM and STS operation.
        for op in crate::operations::IAM.into_iter().chain(crate::operations::STS) {
            let text = format!("{MINIMAL}\n[rate_limits]\n{op} = {{ rate = 1, scope = \"account\" }}\n");
            assert_eq!(
                Scenario::parse(&text, "t").unwrap().rate_limits[op].scope,
                RateLimitScope::Account
            );
        }
    }

    #[test]
    fn rate_limits_refuse_what_they_cannot_mean() {
        let limits = |body: &str| format!("{MINIMAL}\n[rate_limits]\n{body}\n");
        for (body, parts) in [
            (
                "AssumeRoleWithSAML = { rate = 1 }",
                &[
                    "rate_limits.AssumeRoleWithSAML: \"AssumeRoleWithSAML\" is not an operation the simulator serves",
                    "allowed: DescribeOrganization",
                    "ChangeMessageVisibility",
                ][..],
            ),
            ("\"*\" = { rate = 1 }", &["rate_limits.*: \"*\" is not an operation"]),
            (
                "AssumeRoot = { rate = 0 }",
                &["rate_limits.AssumeRoot.rate = 0 is out of range", "above 0"],
            ),
            (
                "AssumeRoot = { rate = -2.5 }",
                &["rate_limits.AssumeRoot.rate = -2.5 is out of range"],
            ),
            (
                "AssumeRoot = { rate = nan }",
                &["rate_limits.AssumeRoot.rate = NaN is out of range"],
            ),
            (
                "AssumeRoot = { rate = inf }",
                &["rate_limits.AssumeRoot.rate = inf is out of range"],
            ),
            (
                "AssumeRoot = { rate = \"fast\" }",
                &["rate_limits.AssumeRoot.rate = \"fast\" is not a number"],
            ),
            (
                "AssumeRoot = { rate = 1, burst = 0 }",
                &["rate_limits.AssumeRoot.burst = 0 is out of range", "1 to"],
            ),
            (
                "AssumeRoot = { rate = 1, burst = -1 }",
                &["rate_limits.AssumeRoot.burst = -1 is out of range"],
            ),
            (
                "AssumeRoot = { rate = 1, burst = 1.5 }",
                &["rate_limits.AssumeRoot.burst = 1.5 is not a whole number"],
            ),
            (
                "AssumeRoot = { burst = 3 }",
                &["rate_limits.AssumeRoot: rate is required"],
            ),
            (
                "AssumeRoot = { rate = 1, rat = 2 }",
                &[
                    "rate_limits.AssumeRoot.rat is not a key of a rate limit",
                    "allowed: rate, burst, scope",
                ],
            ),
            (
                "AssumeRoot = { rate = 1, scope = \"acount\" }",
                &[
                    "rate_limits.AssumeRoot.scope = \"acount\" is not a scope",
                    "\"global\"",
                    "\"account\"",
                ],
            ),
            (
                "ListAccounts = { rate = 1, scope = \"account\" }",
                &[
                    "rate_limits.ListAccounts.scope = \"account\" applies to IAM and STS operations only",
                    "\"global\"",
                ],
            ),
            (
                "ReceiveMessage = { rate = 1, scope = \"account\" }",
                &["rate_limits.ReceiveMessage.scope = \"account\""],
            ),
            (
                "AssumeRoot = 50",
                &["rate_limits.AssumeRoot = 50: expected a table { rate, burst, scope }"],
            ),
        ] {
            assert_names(&error(&limits(body)), parts);
        }
        assert_names(
            &error(&format!("rate_limits = 5\n{MINIMAL}")),
            &["rate_limits = 5: expected tables keyed by operation"],
        );
    }

    #[test]
    fn state_fields_default_to_both_and_status_only_needs_a_legacy_status() {
        let account = |extra: &str| format!("{MINIMAL}\n[[accounts]]\nid = \"222222222222\"\nname = \"a\"\n{extra}\n");
        assert_eq!(
            Scenario::parse(&account(""), "t").unwrap().accounts[0].state_fields,
            StateFields::StateAndStatus
        );
        for (value, want) in [
            ("state_and_status", StateFields::StateAndStatus),
            ("state_only", StateFields::StateOnly),
            ("status_only", StateFields::StatusOnly),
            ("none", StateFields::Neither),
        ] {
            let s = Scenario::parse(&account(&format!("state_fields = \"{value}\"")), "t").unwrap();
            assert_eq!(s.accounts[0].state_fields, want);
        }
        assert_names(
            &error(&account("state_fields = \"neither\"")),
            &["neither", "state_and_status", "state_only", "status_only", "none"],
        );
        assert_names(
            &error(&account(
                "status = \"PENDING_ACTIVATION\"\nstate_fields = \"status_only\"",
            )),
            &["accounts[0].state_fields", "PENDING_ACTIVATION"],
        );
        assert_eq!(legacy_status("CLOSED"), Some("SUSPENDED"));
        assert_eq!(legacy_status("PENDING_ACTIVATION"), None);
    }

    #[test]
    fn caller_account_id_is_the_management_account_or_a_listed_one() {
        let with_caller = |caller: &str| {
            MINIMAL.replace(
                "111111111111\"",
                &format!("111111111111\"\ncaller_account_id = \"{caller}\""),
            ) + "\n[[accounts]]\nid = \"222222222222\"\nname = \"a\"\n"
        };
        let s = Scenario::parse(&with_caller("222222222222"), "t").unwrap();
        assert_eq!(s.organization.caller_account_id(), "222222222222");
        let s = Scenario::parse(&with_caller("111111111111"), "t").unwrap();
        assert_eq!(s.organization.caller_account_id(), "111111111111");
        let s = Scenario::parse(MINIMAL, "t").unwrap();
        assert_eq!(s.organization.caller_account_id(), "111111111111");
        assert_names(
            &error(&with_caller("333333333333")),
            &[
                "organization.caller_account_id \"333333333333\"",
                "delegated administrator must be listed",
            ],
        );
        assert_names(
            &error(&with_caller("3333")),
            &["organization.caller_account_id \"3333\" is not an account id"],
        );
    }

    #[test]
    fn roles_ous_and_tags_parse_and_bad_ones_are_named() {
        let account = |extra: &str| format!("{MINIMAL}\n[[accounts]]\nid = \"222222222222\"\nname = \"a\"\n{extra}\n");
        let s = Scenario::parse(
            &account(
                "roles = [\"RootAuditRole\", { name = \"Other\", trusts = [\"333333333333\"], external_id = \"secret-id\", max_session_duration = 43200 }]\nou = \"Workloads/Prod\"\ntags = { owner = \"team-a\", environment = \"prod\" }",
            ),
            "t",
        )
        .unwrap();
        let a = &s.accounts[0];
        assert_eq!(
            a.roles[0],
            RoleSpec {
                name: "RootAuditRole".into(),
                trusts: None,
                external_id: None,
                max_session_duration: 3600,
                organization_access: false,
            }
        );
        assert_eq!(a.roles[1].trusts.as_deref(), Some(&["333333333333".to_string()][..]));
        assert_eq!(a.roles[1].external_id.as_deref(), Some("secret-id"));
        assert_eq!(a.ou.as_deref(), Some("Workloads/Prod"));
        assert_eq!(a.tags.len(), 2);
        for (extra, parts) in [
            (
                "roles = [\"bad name\"]",
                &["accounts[0].roles[0]", "\"bad name\"", "1 to 64"][..],
            ),
            ("roles = [\"R\", \"r\"]", &["accounts[0].roles[1]", "listed twice"]),
            (
                "roles = [{ name = \"R\", trusts = [\"12\"] }]",
                &["accounts[0].roles[0].trusts[0] \"12\"", "12 digits"],
            ),
            (
                "roles = [{ name = \"R\", external_id = \"a b\" }]",
                &["accounts[0].roles[0].external_id \"a b\"", "2 to 1224"],
            ),
            (
                "roles = [{ name = \"R\", max_session_duration = 100 }]",
                &["accounts[0].roles[0].max_session_duration = 100", "3600 to 43200"],
            ),
            ("roles = [5]", &["expected a role name or a table"]),
            (
                "roles = [\"R\", { name = \"Org\", organization_access = true }]",
                &[
                    "accounts[0].roles[1].organization_access = true in account 222222222222",
                    "management account (111111111111) or the caller account",
                ],
            ),
            (
                "ou = \"Workloads//Prod\"",
                &["accounts[0].ou \"Workloads//Prod\"", "Workloads/Prod"],
            ),
            ("ou = \"/Prod\"", &["accounts[0].ou"]),
            ("ou = \"a/b/c/d/e/f\"", &["accounts[0].ou", "6 levels", "1 to 5"]),
            (
                "tags = { \"aws:x\" = \"y\" }",
                &["accounts[0].tags", "\"aws:x\"", "aws: prefix"],
            ),
            ("tags = { \"\" = \"y\" }", &["accounts[0].tags", "tag key \"\""]),
            ("tags = { k = \"a;b\" }", &["accounts[0].tags.k", "\"a;b\""]),
            ("tags = { k = 1 }", &["string"]),
        ] {
            let err = error(&account(extra));
            assert!(!err.contains('\n'), "{err}");
            for p in parts {
                assert!(err.contains(p), "{extra}: {p:?} not in {err}");
            }
        }
        let many: String = (0..51).map(|n| format!("k{n} = \"v\", ")).collect();
        assert_names(
            &error(&account(&format!("tags = {{ {} }}", many.trim_end_matches(", ")))),
            &["accounts[0].tags: 51 tags", "at most 50"],
        );
        let deep = Scenario::parse(&account("ou = \"a/b/c/d/e\""), "t").unwrap();
        assert_eq!(deep.accounts[0].ou.as_deref(), Some("a/b/c/d/e"));
    }

    #[test]
    fn events_create_a_queue_with_bounded_settings() {
        let s = Scenario::parse(&format!("{MINIMAL}\n[events]\nqueue_name = \"aws-root-events\"\n"), "t").unwrap();
        let e = s.events.unwrap();
        assert_eq!(
            (e.queue_name.as_str(), e.delivery_delay_ms, e.visibility_timeout_s),
            ("aws-root-events", 0, 30)
        );
        assert!(Scenario::parse(MINIMAL, "t").unwrap().events.is_none());
        for (table, parts) in [
            (
                "queue_name = \"q.fifo\"",
                &["events.queue_name \"q.fifo\"", "1 to 80"][..],
            ),
            ("queue_name = \"\"", &["events.queue_name \"\""]),
            (
                "queue_name = \"q\"\ndelivery_delay_ms = 3600001",
                &["events.delivery_delay_ms = 3600001", "0 to 3600000"],
            ),
            (
                "queue_name = \"q\"\nvisibility_timeout_s = 43201",
                &["events.visibility_timeout_s = 43201", "0 to 43200"],
            ),
            (
                "queue_name = \"q\"\nvisibility = 5",
                &["visibility", "visibility_timeout_s"],
            ),
        ] {
            assert_names(&error(&format!("{MINIMAL}\n[events]\n{table}\n")), parts);
        }
    }

    #[test]
    fn credential_report_generation_is_bounded() {
        let s = Scenario::parse(&format!("{MINIMAL}\n[credential_report]\ngeneration_ms = 250\n"), "t").unwrap();
        assert_eq!(s.credential_report.generation_ms, 250);
        assert_eq!(
            Scenario::parse(MINIMAL, "t").unwrap().credential_report.generation_ms,
            0
        );
        assert_names(
            &error(&format!("{MINIMAL}\n[credential_report]\ngeneration_ms = 3600001\n")),
            &["credential_report.generation_ms = 3600001", "0 to 3600000"],
        );
    }

    #[test]
    fn the_workspace_scenarios_stay_valid() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
        let mut files = vec![format!("{root}/config/demo-org.toml")];
        for entry in std::fs::read_dir(format!("{root}/tests/fixtures/scenarios")).unwrap() {
            files.push(entry.unwrap().path().display().to_string());
        }
        for entry in std::fs::read_dir(format!("{root}/simulator/tests/scenarios")).unwrap() {
            files.push(entry.unwrap().path().display().to_string());
        }
        assert!(files.len() >= 6, "{files:?}");
        for f in files {
            if f.ends_with(".toml") {
                Scenario::load(Path::new(&f)).unwrap_or_else(|e| panic!("{e}"));
            }
        }
    }
}
