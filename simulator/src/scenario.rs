//! The simulator's scenario file: an organization, its accounts and their root users, optional
//! generated accounts for large organizations, latency and injected faults.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::SystemTime;

use serde::Deserialize;

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
}

/// Organization features that `iam:ListOrganizationsFeatures` reports. The simulator's own list,
/// deliberately not shared with the exporter.
pub(crate) const FEATURES: [&str; 2] = ["RootCredentialsManagement", "RootSessions"];

/// An AWS account id: exactly 12 ASCII digits. The simulator's own check, deliberately not shared
/// with the exporter, so that a mistake in one is not hidden by the other.
pub(crate) fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// Organizations account states (the `State` field of an account).
pub(crate) const ACCOUNT_STATES: [&str; 5] = ["PENDING_ACTIVATION", "ACTIVE", "SUSPENDED", "PENDING_CLOSURE", "CLOSED"];

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
    /// `[[faults]]` (a list), or `[faults.OPERATION]` tables keyed by operation.
    #[serde(default, deserialize_with = "fault_list")]
    pub(crate) faults: Vec<FaultSpec>,
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
}

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
    #[serde(default)]
    pub(crate) root: RootSpec,
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
}

/// `default_ms`, plus per-operation overrides written either as `operations = { AssumeRoot = 50 }`
/// or directly as `AssumeRoot = 50` in `[latency]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(from = "RawLatency")]
pub(crate) struct LatencySpec {
    pub(crate) default_ms: u64,
    pub(crate) operations: BTreeMap<String, u64>,
}

#[derive(Deserialize)]
struct RawLatency {
    #[serde(default)]
    default_ms: u64,
    #[serde(default)]
    operations: BTreeMap<String, u64>,
    #[serde(flatten)]
    direct: BTreeMap<String, u64>,
}

impl From<RawLatency> for LatencySpec {
    fn from(r: RawLatency) -> Self {
        let mut operations = r.direct;
        operations.extend(r.operations);
        LatencySpec {
            default_ms: r.default_ms,
            operations,
        }
    }
}

/// An injected fault: answers of `operation` (or every operation, `"*"`) fail as configured.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
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

fn fault_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<FaultSpec>, D::Error> {
    use serde::de::Error;
    let one = |v: toml::Value, at: String| {
        v.try_into::<FaultSpec>()
            .map_err(|e| D::Error::custom(format!("{at}: {} (kinds: {FAULT_KINDS})", e.to_string().trim())))
    };
    match toml::Value::deserialize(d)? {
        toml::Value::Array(list) => list
            .into_iter()
            .enumerate()
            .map(|(i, v)| one(v, format!("faults[{i}]")))
            .collect(),
        toml::Value::Table(map) => map
            .into_iter()
            .map(|(operation, v)| {
                let mut f = one(v, format!("faults.{operation}"))?;
                f.operation = operation;
                Ok(f)
            })
            .collect(),
        other => Err(D::Error::custom(format!(
            "faults {other}: expected [[faults]] tables or [faults.OPERATION] tables"
        ))),
    }
}

fn one() -> f64 {
    1.0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum FaultKind {
    /// `Throttling` (Query protocols) / `TooManyRequestsException` (Organizations), HTTP 400/429.
    Throttling,
    /// HTTP 500 `InternalFailure` / `ServiceUnavailable`.
    ServerError,
    /// Answer after `delay_ms`.
    Slow,
}

pub(crate) const FAULT_KINDS: &str = "throttling, server_error, slow";

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
        scenario.validate().map_err(|message| ScenarioError::Invalid {
            path: origin.to_string(),
            message,
        })?;
        Ok(scenario)
    }

    fn validate(&self) -> Result<(), String> {
        let org = &self.organization;
        if !org.id.starts_with("o-") || org.id.len() < 12 {
            return Err(format!(
                "organization.id {:?} is not an organization id (\"o-\" then 10 to 32 lowercase letters or digits)",
                org.id
            ));
        }
        if !is_account_id(&org.management_account_id) {
            return Err(format!(
                "organization.management_account_id {:?} is not an account id (exactly 12 digits)",
                org.management_account_id
            ));
        }
        if let Some(bad) = org.features.iter().find(|f| !FEATURES.contains(&f.as_str())) {
            return Err(format!(
                "organization.features: unknown feature {bad:?}; allowed: {}",
                FEATURES.join(", ")
            ));
        }
        let mut seen = HashSet::new();
        for (i, a) in self.accounts.iter().enumerate() {
            if !is_account_id(&a.id) {
                return Err(format!(
                    "accounts[{i}].id {:?} is not an account id (exactly 12 digits)",
                    a.id
                ));
            }
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
        }
        if let Some(g) = &self.generate {
            if g.accounts > 100_000 {
                return Err(format!(
                    "generate.accounts = {} is too many; allowed: 0 to 100000",
                    g.accounts
                ));
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
        for (i, f) in self.faults.iter().enumerate() {
            if !(0.0..=1.0).contains(&f.rate) {
                return Err(format!(
                    "faults[{i}].rate = {} is not a fraction; allowed: 0.0 to 1.0",
                    f.rate
                ));
            }
            if let Some(id) = &f.account_id
                && !is_account_id(id)
            {
                return Err(format!(
                    "faults[{i}].account_id {id:?} is not an account id (exactly 12 digits)"
                ));
            }
        }
        Ok(())
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
        assert_eq!(s.latency.operations["AssumeRoot"], 50);
        assert_eq!(s.latency.operations["ListAccounts"], 7);
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
}
