//! What the simulated organization holds, as the chaos suite set it: every account's root user,
//! how its root session behaves, the organization's features, the injected faults and whether
//! the simulator is up. Each is a [`History`] of versions tagged with the refreshes that may and
//! must see it, so that a scrape can be judged against what the simulator had while that refresh
//! ran, however the refresh loop and the changes interleave.

use std::collections::BTreeMap;
use std::collections::BTreeSet;

use serde_json::{Value, json};

/// `joined` of every scenario account in the simulator (2020-01-01T00:00:00Z): the creation date
/// it reports for keys, passwords and certificates without one of their own.
pub const JOINED: u64 = 1_577_836_800;

/// Deep operations, as `aws_root_audit_operation_failure{operation}` names them, and the part of
/// the findings each one feeds.
pub const DEEP_OPERATIONS: [(&str, Part); 6] = [
    ("ListAccessKeys", Part::Keys),
    ("GetAccessKeyLastUsed", Part::Keys),
    ("ListMFADevices", Part::Mfa),
    ("GetLoginProfile", Part::Password),
    ("GetUser", Part::Password),
    ("ListSigningCertificates", Part::Certificates),
];

/// Checks that the chaos model's deep operations are the calls a root session makes (the
/// operations the audit task policy allows, but GetAccountSummary): a new deep call in the
/// exporter must be modelled here too.
pub fn check_deep_operations() {
    use aws_root_exporter::operation::{Operation, Permission};
    let library: std::collections::BTreeSet<&str> = Operation::ALL
        .iter()
        .filter(|op| matches!(op.row().permission, Permission::TaskPolicy(_)))
        .map(|op| op.name())
        .collect();
    let modelled: std::collections::BTreeSet<&str> = DEEP_OPERATIONS.iter().map(|(o, _)| *o).collect();
    assert_eq!(
        modelled, library,
        "tests/chaos/world.rs DEEP_OPERATIONS against src/operation.rs"
    );
}

/// The operations an audit of one account makes before any deep call.
pub const AUDIT_OPERATIONS: [&str; 2] = ["AssumeRoot", "GetAccountSummary"];

/// Whether `label` is a failure reason the exporter has (docs/metrics.md lists the same set).
pub fn is_reason(label: &str) -> bool {
    aws_root_exporter::model::FailureReason::ALL
        .iter()
        .any(|r| r.as_str() == label)
}

/// A part of a full audit, fed by one or two deep calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Part {
    Keys,
    Mfa,
    Password,
    Certificates,
}

impl Part {
    /// The gauge families this part feeds.
    pub fn families(self) -> &'static [&'static str] {
        match self {
            Part::Keys => &[
                "aws_root_access_keys",
                "aws_root_access_key_created_timestamp_seconds",
                "aws_root_access_key_last_used_timestamp_seconds",
            ],
            Part::Mfa => &["aws_root_mfa_devices"],
            Part::Password => &[
                "aws_root_password_created_timestamp_seconds",
                "aws_root_password_last_used_timestamp_seconds",
            ],
            Part::Certificates => &["aws_root_signing_certificates"],
        }
    }
}

pub fn part_of(operation: &str) -> Option<Part> {
    DEEP_OPERATIONS.iter().find(|(o, _)| *o == operation).map(|(_, p)| *p)
}

/// The four `GetAccountSummary` flags.
pub const FLAG_FAMILIES: [&str; 4] = [
    "aws_root_access_keys_present",
    "aws_root_mfa_enabled",
    "aws_root_password_present",
    "aws_root_signing_certificates_present",
];

/// Every credential family: the flags and the deep families, keyed by account.
pub fn credential_families() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = FLAG_FAMILIES.to_vec();
    for p in [Part::Keys, Part::Mfa, Part::Password, Part::Certificates] {
        all.extend_from_slice(p.families());
    }
    all
}

#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    /// `Active`, `Inactive` or `Expired`.
    pub status: &'static str,
    pub created: Option<u64>,
    pub last_used: Option<u64>,
}

impl Key {
    pub fn plain(status: &'static str) -> Key {
        Key {
            status,
            created: None,
            last_used: None,
        }
    }

    pub fn dated(status: &'static str, created: u64, last_used: Option<u64>) -> Key {
        Key {
            status,
            created: Some(created),
            last_used,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Password {
    None,
    Present,
    Dates {
        created: Option<u64>,
        last_used: Option<u64>,
    },
}

/// One root user, in the scenario's `root` shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Root {
    pub mfa: Vec<&'static str>,
    pub password: Password,
    pub keys: Vec<Key>,
    pub certificates: Vec<&'static str>,
}

impl Root {
    pub fn clean() -> Root {
        Root {
            mfa: vec![],
            password: Password::None,
            keys: vec![],
            certificates: vec![],
        }
    }

    fn password_value(&self) -> Value {
        match &self.password {
            Password::None => json!(false),
            Password::Present => json!(true),
            Password::Dates { created, last_used } => {
                let mut m = serde_json::Map::new();
                if let Some(c) = created {
                    m.insert("created".into(), json!(iso8601(*c)));
                }
                if let Some(u) = last_used {
                    m.insert("last_used".into(), json!(iso8601(*u)));
                }
                Value::Object(m)
            }
        }
    }

    /// The control API's body for `PUT /_simulator/accounts/{id}/root`.
    pub fn json(&self) -> Value {
        let keys: Vec<Value> = self
            .keys
            .iter()
            .map(|k| match (k.created, k.last_used) {
                (None, None) => json!(k.status),
                _ => {
                    let mut m = serde_json::Map::new();
                    m.insert("status".into(), json!(k.status));
                    if let Some(c) = k.created {
                        m.insert("created".into(), json!(iso8601(c)));
                    }
                    if let Some(u) = k.last_used {
                        m.insert("last_used".into(), json!(iso8601(u)));
                    }
                    Value::Object(m)
                }
            })
            .collect();
        json!({
            "mfa": self.mfa,
            "password": self.password_value(),
            "access_keys": keys,
            "signing_certificates": self.certificates,
        })
    }

    /// The same as a TOML inline table, for the scenario file.
    pub fn toml(&self) -> String {
        toml_inline(&self.json())
    }

    /// What a successful full audit of this root must serve, family by family (labels other
    /// than the account's, access key ids replaced by `*`; see [`normalise`]), leaving out the
    /// families of `failed` parts. Families without samples are left out.
    pub fn expected(&self, failed: &BTreeSet<Part>) -> Normalised {
        let mut out: Normalised = BTreeMap::new();
        let mut put = |family: &str, labels: &str, value: f64| {
            out.entry(family.to_string())
                .or_default()
                .push(format!("{labels} {}", number(value)));
        };
        let bit = |b: bool| if b { 1.0 } else { 0.0 };
        put("aws_root_access_keys_present", "", bit(!self.keys.is_empty()));
        put("aws_root_mfa_enabled", "", bit(!self.mfa.is_empty()));
        put("aws_root_password_present", "", bit(self.password != Password::None));
        put(
            "aws_root_signing_certificates_present",
            "",
            bit(!self.certificates.is_empty()),
        );
        if !failed.contains(&Part::Keys) {
            let active = self.keys.iter().filter(|k| k.status == "Active").count();
            put("aws_root_access_keys", "status=active", active as f64);
            put(
                "aws_root_access_keys",
                "status=inactive",
                (self.keys.len() - active) as f64,
            );
            for k in &self.keys {
                put(
                    "aws_root_access_key_created_timestamp_seconds",
                    "access_key_id=*",
                    k.created.unwrap_or(JOINED) as f64,
                );
                if let Some(u) = k.last_used {
                    put(
                        "aws_root_access_key_last_used_timestamp_seconds",
                        "access_key_id=*",
                        u as f64,
                    );
                }
            }
        }
        if !failed.contains(&Part::Mfa) {
            for t in ["hardware", "passkey", "sms", "virtual"] {
                let n = self.mfa.iter().filter(|m| **m == t).count();
                put("aws_root_mfa_devices", &format!("type={t}"), n as f64);
            }
        }
        if !failed.contains(&Part::Password) {
            match &self.password {
                Password::None => {}
                Password::Present => put("aws_root_password_created_timestamp_seconds", "", JOINED as f64),
                Password::Dates { created, last_used } => {
                    put(
                        "aws_root_password_created_timestamp_seconds",
                        "",
                        created.unwrap_or(JOINED) as f64,
                    );
                    if let Some(u) = last_used {
                        put("aws_root_password_last_used_timestamp_seconds", "", *u as f64);
                    }
                }
            }
        }
        if !failed.contains(&Part::Certificates) {
            let active = self.certificates.iter().filter(|c| **c == "Active").count();
            put("aws_root_signing_certificates", "status=active", active as f64);
            put(
                "aws_root_signing_certificates",
                "status=inactive",
                (self.certificates.len() - active) as f64,
            );
        }
        for v in out.values_mut() {
            v.sort();
        }
        out
    }
}

/// Credential samples of one account, comparable with [`Root::expected`]: family -> sorted
/// `labels value` lines, access key ids replaced by `*`.
pub type Normalised = BTreeMap<String, Vec<String>>;

/// A value as the comparisons write it: integers without a fraction.
pub fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:?}")
    }
}

/// A JSON value (objects, arrays, strings, booleans, numbers) as TOML inline syntax.
fn toml_inline(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let inner: Vec<String> = m.iter().map(|(k, v)| format!("{k} = {}", toml_inline(v))).collect();
            format!("{{ {} }}", inner.join(", "))
        }
        Value::Array(a) => {
            let inner: Vec<String> = a.iter().map(toml_inline).collect();
            format!("[{}]", inner.join(", "))
        }
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn iso8601(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Versions of one setting. A version set while refresh `n` had finished (the last one the
/// suite had seen) and refresh `m` had not (read after the change) may be seen by refreshes from
/// `n + 1` on and must be seen by refreshes from `m + 2` on: refresh `m + 1` may have started
/// before the change, refresh `m + 2` starts after `m + 1` has finished.
#[derive(Debug, Clone)]
pub struct History<T> {
    versions: Vec<Version<T>>,
}

#[derive(Debug, Clone)]
struct Version<T> {
    value: T,
    possible_from: u64,
    certain_from: u64,
}

impl<T: Clone> History<T> {
    pub fn new(value: T) -> Self {
        History {
            versions: vec![Version {
                value,
                possible_from: 0,
                certain_from: 0,
            }],
        }
    }

    pub fn set(&mut self, value: T, possible_from: u64, certain_from: u64) {
        self.versions.push(Version {
            value,
            possible_from,
            certain_from,
        });
    }

    pub fn current(&self) -> &T {
        &self.versions.last().expect("a history is never empty").value
    }

    /// The current version when every refresh from `refresh` on must see it.
    pub fn certain(&self, refresh: u64) -> Option<&T> {
        let v = self.versions.last().expect("a history is never empty");
        (v.certain_from <= refresh).then_some(&v.value)
    }

    /// The refresh from which the current version must be seen.
    pub fn certain_from(&self) -> u64 {
        self.versions.last().expect("a history is never empty").certain_from
    }

    /// Every version some refresh numbered `lo..=hi` may have seen (of the versions set so far).
    pub fn possible(&self, lo: u64, hi: u64) -> Vec<&T> {
        (0..self.versions.len())
            .filter(|&i| {
                self.versions[i].possible_from <= hi
                    && self.versions.get(i + 1).is_none_or(|next| next.certain_from > lo)
            })
            .map(|i| &self.versions[i].value)
            .collect()
    }
}

/// One injected fault, in the control API's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// An operation, or `*`.
    pub operation: &'static str,
    /// `throttling`, `server_error` or `slow`.
    pub kind: &'static str,
    pub rate: f64,
    pub delay_ms: u64,
    pub account_id: Option<&'static str>,
}

impl Fault {
    pub fn new(operation: &'static str, kind: &'static str, rate: f64) -> Fault {
        Fault {
            operation,
            kind,
            rate,
            delay_ms: 0,
            account_id: None,
        }
    }

    pub fn slow(operation: &'static str, delay_ms: u64, rate: f64) -> Fault {
        Fault {
            delay_ms,
            ..Fault::new(operation, "slow", rate)
        }
    }

    pub fn only(mut self, account_id: &'static str) -> Fault {
        self.account_id = Some(account_id);
        self
    }

    pub fn json(&self) -> Value {
        let mut m = serde_json::Map::new();
        m.insert("operation".into(), json!(self.operation));
        m.insert("kind".into(), json!(self.kind));
        m.insert("rate".into(), json!(self.rate));
        if self.kind == "slow" {
            m.insert("delay_ms".into(), json!(self.delay_ms));
        }
        if let Some(a) = self.account_id {
            m.insert("account_id".into(), json!(a));
        }
        Value::Object(m)
    }

    fn hits(&self, operation: &str, account_id: Option<&str>) -> bool {
        (self.operation == "*" || self.operation == operation)
            && match (self.account_id, account_id) {
                (None, _) => true,
                (Some(want), Some(got)) => want == got,
                (Some(_), None) => false,
            }
    }

    /// Reasons a call hit by this fault may end with, once retried within `account_timeout`.
    fn reasons(&self, timeout_ms: u64) -> &'static [&'static str] {
        match self.kind {
            "throttling" => &["throttled", "timeout"],
            "server_error" => &["other", "timeout"],
            "slow" if self.delay_ms >= timeout_ms => &["timeout"],
            "slow" => &[],
            _ => &["throttled", "timeout", "network", "other"],
        }
    }

    /// Every call it matches fails, for as long as it is set.
    fn always_fails(&self, timeout_ms: u64) -> bool {
        self.rate >= 1.0 && (self.kind != "slow" || self.delay_ms >= timeout_ms)
    }
}

/// What stands between the exporter and AWS: the injected faults, or the simulator being down.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Weather {
    pub faults: Vec<Fault>,
    pub down: bool,
}

impl Weather {
    pub fn faults(faults: Vec<Fault>) -> Weather {
        Weather { faults, down: false }
    }

    pub fn json(&self) -> Value {
        Value::Array(self.faults.iter().map(Fault::json).collect())
    }
}

pub struct Account {
    pub id: &'static str,
    pub name: &'static str,
    pub status: &'static str,
    pub management: bool,
    pub root: History<Root>,
    /// `assume_root = "access_denied"`: an SCP without the carve-out.
    pub denied: History<bool>,
}

impl Account {
    /// Selected for audit (`audited="true"`): every active account, the management account
    /// included (docs/metrics.md).
    pub fn selected(&self) -> bool {
        self.status == "ACTIVE"
    }
}

pub struct World {
    pub organization_id: &'static str,
    pub accounts: Vec<Account>,
    /// Whether `RootCredentialsManagement` is enabled.
    pub root_access: History<bool>,
    pub weather: History<Weather>,
    /// The exporter's `account_timeout`.
    pub timeout_ms: u64,
}

impl World {
    pub fn account_mut(&mut self, id: &str) -> &mut Account {
        self.accounts
            .iter_mut()
            .find(|a| a.id == id)
            .expect("an account of the world")
    }

    pub fn management(&self) -> &Account {
        self.accounts
            .iter()
            .find(|a| a.management)
            .expect("a management account")
    }

    /// The scenario file for the simulator's current state (faults are set through the control
    /// API, never here).
    pub fn scenario(&self) -> String {
        self.scenario_with(&[])
    }

    /// The scenario file with some root users replaced.
    pub fn scenario_with(&self, roots: &[(&str, Root)]) -> String {
        let m = self.management();
        let features: Vec<&str> = if *self.root_access.current() {
            vec!["RootCredentialsManagement", "RootSessions"]
        } else {
            vec!["RootSessions"]
        };
        let mut s = format!(
            "# Written by tests/chaos.rs.\n[organization]\nid = {:?}\nmanagement_account_id = {:?}\nmanagement_account_name = {:?}\nfeatures = {}\n",
            self.organization_id,
            m.id,
            m.name,
            toml_inline(&json!(features))
        );
        for a in &self.accounts {
            s.push_str(&format!(
                "\n[[accounts]]\nid = {:?}\nname = {:?}\nemail = \"aws+{}@example.com\"\nstatus = {:?}\nassume_root = {:?}\nroot = {}\n",
                a.id,
                a.name,
                a.id,
                a.status,
                if *a.denied.current() { "access_denied" } else { "ok" },
                roots
                    .iter()
                    .find(|(id, _)| *id == a.id)
                    .map(|(_, r)| r)
                    .unwrap_or(a.root.current())
                    .toml()
            ));
        }
        s
    }

    /// Why an audit of `account` may fail in some refresh numbered `lo..=hi`: the failure
    /// reasons it may show. Empty: nothing could make it fail.
    pub fn possible_reasons(&self, account: &Account, lo: u64, hi: u64) -> BTreeSet<&'static str> {
        let mut reasons = BTreeSet::new();
        if self.root_access.possible(lo, hi).into_iter().any(|on| !on) {
            // Blocked by the precheck, or (when ListOrganizationsFeatures failed) AssumeRoot is
            // refused by AWS.
            reasons.extend(["root_access_not_enabled", "access_denied"]);
        }
        if account.denied.possible(lo, hi).into_iter().any(|d| *d) {
            reasons.insert("access_denied");
        }
        for w in self.weather.possible(lo, hi) {
            if w.down {
                reasons.extend(["network", "timeout", "other"]);
            }
            for f in &w.faults {
                let audit_call = AUDIT_OPERATIONS.iter().any(|o| f.hits(o, Some(account.id)));
                let deep_call = DEEP_OPERATIONS.iter().any(|(o, _)| f.hits(o, Some(account.id)));
                if audit_call {
                    reasons.extend(f.reasons(self.timeout_ms).iter().copied());
                }
                // A deep call that keeps failing is retried until the account's deadline.
                if deep_call && (f.kind != "slow" || f.delay_ms >= self.timeout_ms) {
                    reasons.insert("timeout");
                }
            }
        }
        reasons
    }

    /// Why an audit of `account` must fail in refresh `refresh`, if it must: the reasons it may
    /// show then (see [`World::possible_reasons`] for the refreshes since the previous scrape).
    pub fn certain_failure(&self, account: &Account, refresh: u64) -> bool {
        if self.root_access.certain(refresh) == Some(&false) {
            return true;
        }
        if account.denied.certain(refresh) == Some(&true) {
            return true;
        }
        match self.weather.certain(refresh) {
            Some(w) if w.down => true,
            Some(w) => w.faults.iter().any(|f| {
                f.always_fails(self.timeout_ms)
                    && (AUDIT_OPERATIONS.iter().any(|o| f.hits(o, Some(account.id)))
                        || f.kind == "slow" && DEEP_OPERATIONS.iter().any(|(o, _)| f.hits(o, Some(account.id))))
            }),
            None => false,
        }
    }

    /// Whether listing the organization must fail in refresh `refresh`: `DescribeOrganization`
    /// always fails (every refresh starts with it; the accounts may then be listed more than one
    /// way, so a fault on one listing call alone need not fail the refresh).
    pub fn discovery_must_fail(&self, refresh: u64) -> bool {
        match self.weather.certain(refresh) {
            Some(w) => {
                w.down
                    || w.faults.iter().any(|f| {
                        f.always_fails(self.timeout_ms)
                            && f.account_id.is_none()
                            && f.hits("DescribeOrganization", None)
                    })
            }
            None => false,
        }
    }

    /// Whether a call of `operation` into `account` may fail in some refresh numbered `lo..=hi`.
    pub fn may_fail(&self, operation: &str, account: Option<&str>, lo: u64, hi: u64) -> bool {
        self.weather
            .possible(lo, hi)
            .into_iter()
            .any(|w| w.down || w.faults.iter().any(|f| f.hits(operation, account)))
    }

    /// Reasons a deep call of `operation` into `account` may fail with in refreshes `lo..=hi`.
    pub fn deep_reasons(&self, operation: &str, account: &Account, lo: u64, hi: u64) -> BTreeSet<&'static str> {
        let mut reasons = BTreeSet::new();
        // Denied from the middle of an audit on: the summary was read, the deep calls are not.
        if account.denied.possible(lo, hi).into_iter().any(|d| *d)
            || self.root_access.possible(lo, hi).into_iter().any(|on| !on)
        {
            reasons.insert("access_denied");
        }
        // A root user replaced between ListAccessKeys and GetAccessKeyLastUsed: the key listed is
        // no longer the account's.
        if operation == "GetAccessKeyLastUsed" && account.root.possible(lo, hi).len() > 1 {
            reasons.insert("access_denied");
        }
        let account = account.id;
        for w in self.weather.possible(lo, hi) {
            if w.down {
                reasons.extend(["network", "timeout", "other"]);
            }
            for f in w.faults.iter().filter(|f| f.hits(operation, Some(account))) {
                match f.kind {
                    "slow" => {
                        reasons.insert("timeout");
                    }
                    _ => reasons.extend(f.reasons(self.timeout_ms).iter().copied()),
                }
            }
        }
        reasons
    }

    /// The refresh from which every setting's current version must be seen.
    pub fn settled_from(&self) -> u64 {
        let mut n = self.root_access.certain_from().max(self.weather.certain_from());
        for a in &self.accounts {
            n = n.max(a.root.certain_from()).max(a.denied.certain_from());
        }
        n
    }
}
