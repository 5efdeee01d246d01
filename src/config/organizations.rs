//! `[[organizations]]` (file only): several organizations from one exporter. Each entry has a
//! `name` (the `organization` label), optionally a `role_arn` (with `external_id` and
//! `session_name`) that the exporter assumes with its own credentials to reach that
//! organization, and overrides of the keys the table marks `per_organization`; the top-level
//! keys are the defaults. Without entries the configuration means what it always meant: one
//! organization, `default`, reached with the exporter's own credentials.

use std::collections::BTreeMap;

use super::{Config, ConfigError, KEYS, RawConfig, key};
use crate::ids::{is_account_id, role_arn_account};

/// An entry as the file gives it: its keys and their values, checked by [`parse`].
pub type RawOrganization = BTreeMap<String, serde_json::Value>;

/// The session name of the exporter's AssumeRole into an organization's access role, unless the
/// entry names one.
pub const DEFAULT_SESSION_NAME: &str = "aws-root-exporter";

/// How the exporter reaches an organization that is not its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganizationRole {
    pub role_arn: String,
    pub external_id: Option<String>,
    pub session_name: String,
}

/// One checked `[[organizations]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct OrganizationEntry {
    pub name: String,
    /// `None`: the exporter's own credentials.
    pub role: Option<OrganizationRole>,
    /// The per-organization keys it sets, as raw values.
    pub overrides: serde_json::Map<String, serde_json::Value>,
}

/// The keys of an entry that are not configuration keys.
const ENTRY_KEYS: [&str; 4] = ["name", "role_arn", "external_id", "session_name"];

const NAME_ALLOWED: &str = "1-32 of a-z, 0-9, _ and -";

fn name_ok(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// AWS's `RoleSessionName`: 2-64 of letters, digits and `+=,.@_-`.
fn session_name_ok(name: &str) -> bool {
    (2..=64).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
}

/// AWS's `ExternalId`: 2-1224 of letters, digits and `+=,.@:/_-`.
fn external_id_ok(id: &str) -> bool {
    (2..=1224).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@:/_-".contains(c))
}

fn error(entry: &str, what: String) -> ConfigError {
    ConfigError::Load(format!("organizations entry {entry}: {what}"))
}

/// Keys an entry may set, for error messages.
fn allowed_keys() -> String {
    ENTRY_KEYS
        .iter()
        .copied()
        .chain(KEYS.iter().filter(|k| k.per_organization).map(|k| k.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A string value of an entry; `what` says what is allowed.
fn text<'a>(entry: &str, raw: &'a RawOrganization, key: &str, what: &str) -> Result<Option<&'a str>, ConfigError> {
    match raw.get(key) {
        None => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s.trim())),
        Some(other) => Err(error(entry, format!("`{key}` is {other}, expected {what}"))),
    }
}

/// One entry on its own.
fn entry(index: usize, raw: &RawOrganization) -> Result<OrganizationEntry, ConfigError> {
    let at = format!("#{}", index + 1);
    let name = match text(&at, raw, "name", NAME_ALLOWED)? {
        Some(n) if name_ok(n) => n.to_string(),
        Some(n) => return Err(error(&at, format!("invalid name {n:?}: expected {NAME_ALLOWED}"))),
        None => return Err(error(&at, format!("has no `name` (required: {NAME_ALLOWED})"))),
    };
    let at = format!("`{name}`");
    let mut overrides = serde_json::Map::new();
    for (k, v) in raw {
        if ENTRY_KEYS.contains(&k.as_str()) {
            continue;
        }
        match key(k) {
            Some(k) if k.per_organization => {
                overrides.insert(k.name.to_string(), v.clone());
            }
            Some(k) => {
                return Err(error(
                    &at,
                    format!(
                        "`{}` is set for the whole exporter, not per organization; an entry may set: {}",
                        k.name,
                        allowed_keys()
                    ),
                ));
            }
            None => {
                return Err(error(
                    &at,
                    format!("unknown key `{k}`; an entry may set: {}", allowed_keys()),
                ));
            }
        }
    }
    const ARN: &str = "a role ARN like arn:aws:iam::123456789012:role/aws-root-exporter-org-access";
    let role_arn = text(&at, raw, "role_arn", ARN)?.filter(|a| !a.is_empty());
    if let Some(arn) = role_arn
        && role_arn_account(arn).is_none()
    {
        return Err(error(&at, format!("invalid role_arn {arn:?}: expected {ARN}")));
    }
    const EXTERNAL: &str = "2-1224 of letters, digits and +=,.@:/_-";
    let external_id = text(&at, raw, "external_id", EXTERNAL)?.filter(|a| !a.is_empty());
    if let Some(id) = external_id
        && !external_id_ok(id)
    {
        // The value is a shared secret of sorts: not shown.
        return Err(error(
            &at,
            format!("invalid external_id (not shown): expected {EXTERNAL}"),
        ));
    }
    const SESSION: &str = "2-64 of letters, digits and +=,.@_-";
    let session_name = text(&at, raw, "session_name", SESSION)?.filter(|a| !a.is_empty());
    if let Some(s) = session_name
        && !session_name_ok(s)
    {
        return Err(error(&at, format!("invalid session_name {s:?}: expected {SESSION}")));
    }
    let role = match role_arn {
        Some(arn) => Some(OrganizationRole {
            role_arn: arn.to_string(),
            external_id: external_id.map(str::to_string),
            session_name: session_name.unwrap_or(DEFAULT_SESSION_NAME).to_string(),
        }),
        None if external_id.is_some() || session_name.is_some() => {
            return Err(error(
                &at,
                "external_id and session_name need role_arn: they are sent when assuming it".into(),
            ));
        }
        None => None,
    };
    Ok(OrganizationEntry { name, role, overrides })
}

/// Every entry, checked on its own and against the others, with its effective configuration
/// (the top-level `config` with its overrides) checked too.
pub(super) fn parse(raw: &[RawOrganization], config: &Config) -> Result<Vec<OrganizationEntry>, ConfigError> {
    let entries = raw
        .iter()
        .enumerate()
        .map(|(i, r)| entry(i, r))
        .collect::<Result<Vec<_>, _>>()?;
    let mut effective = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        for earlier in &entries[..i] {
            if earlier.name == e.name {
                return Err(error(
                    &format!("`{}`", e.name),
                    "the name is used twice: names must be unique".into(),
                ));
            }
            let reach = |x: &OrganizationEntry| x.role.as_ref().map(|r| r.role_arn.clone());
            if reach(earlier) == reach(e) {
                let how = match reach(e) {
                    Some(arn) => format!("both assume {arn}"),
                    None => "neither has a role_arn: both use the exporter's own credentials".into(),
                };
                return Err(error(
                    &format!("`{}`", e.name),
                    format!("reaches the same organization as `{}` ({how})", earlier.name),
                ));
            }
        }
        effective.push(config.for_organization(e)?);
    }
    for (i, c) in effective.iter().enumerate() {
        for (j, earlier) in effective[..i].iter().enumerate() {
            if let Some(id) = c.include_accounts.iter().find(|a| earlier.include_accounts.contains(a)) {
                debug_assert!(is_account_id(id));
                return Err(error(
                    &format!("`{}`", entries[i].name),
                    format!(
                        "account {id} is also in include_accounts of `{}`: an account belongs to one organization",
                        entries[j].name
                    ),
                ));
            }
        }
    }
    Ok(entries)
}

impl OrganizationEntry {
    /// The entry as the file gives it.
    pub fn to_raw(&self) -> RawOrganization {
        let mut raw = RawOrganization::new();
        raw.insert("name".into(), self.name.clone().into());
        if let Some(r) = &self.role {
            raw.insert("role_arn".into(), r.role_arn.clone().into());
            if let Some(id) = &r.external_id {
                raw.insert("external_id".into(), id.clone().into());
            }
            raw.insert("session_name".into(), r.session_name.clone().into());
        }
        raw.extend(self.overrides.iter().map(|(k, v)| (k.clone(), v.clone())));
        raw
    }
}

impl Config {
    /// The configuration `entry` runs with: the top-level keys, with the entry's overrides.
    pub fn for_organization(&self, entry: &OrganizationEntry) -> Result<Config, ConfigError> {
        let mut raw = self.to_raw();
        raw.organizations.clear();
        let mut values = raw.values();
        values.extend(entry.overrides.iter().map(|(k, v)| (k.clone(), v.clone())));
        let at = format!("`{}`", entry.name);
        let raw: RawConfig = serde_json::from_value(serde_json::Value::Object(values))
            .map_err(|e| error(&at, e.to_string().replace('\n', " ")))?;
        let mut config = raw.validate().map_err(|e| error(&at, e.to_string()))?;
        // The web configuration was checked once, with the top-level keys.
        config.web_config_file = self.web_config_file.clone();
        Ok(config)
    }
}

impl Config {
    /// What `check-config` prints after the configuration: each organization's effective
    /// settings (how it is reached, and every per-organization key), as TOML comments; empty
    /// without `[[organizations]]`.
    pub fn organizations_summary(&self) -> String {
        if self.organizations.is_empty() {
            return String::new();
        }
        let mut out = String::from(
            "\n# Effective settings of each organization (the top-level keys, with the entry's overrides):\n",
        );
        for entry in &self.organizations {
            let how = match &entry.role {
                Some(r) => format!(
                    "assumes {} (session name {}{})",
                    r.role_arn,
                    r.session_name,
                    if r.external_id.is_some() {
                        ", with an external id"
                    } else {
                        ""
                    }
                ),
                None => "the exporter's own credentials".to_string(),
            };
            out.push_str(&format!("# organization \"{}\": {how}\n", entry.name));
            let Ok(effective) = self.for_organization(entry) else {
                continue;
            };
            let values = effective.to_raw().values();
            for k in KEYS.iter().filter(|k| k.per_organization) {
                if let Some(v) = values.get(k.name) {
                    out.push_str(&format!("#   {} = {v}\n", k.name));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_toml(text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Load(e.to_string()))?;
        raw.validate()
    }

    #[test]
    fn entries_override_the_top_level_keys() {
        let config = parse_toml(
            r#"
access = "auto"
checks = "full"
[[organizations]]
name = "own"
[[organizations]]
name = "acquired"
role_arn = "arn:aws:iam::210000000000:role/aws-root-exporter-org-access"
external_id = "org-b-external"
checks = "summary"
include_accounts = ["210000000001"]
"#,
        )
        .unwrap();
        let [own, acquired] = &config.organizations[..] else {
            panic!("{config:?}")
        };
        assert_eq!(own.role, None);
        let role = acquired.role.as_ref().unwrap();
        assert_eq!(role.external_id.as_deref(), Some("org-b-external"));
        assert_eq!(role.session_name, DEFAULT_SESSION_NAME);
        let effective = config.for_organization(acquired).unwrap();
        assert_eq!(effective.checks, super::super::Checks::Summary);
        assert_eq!(effective.include_accounts, ["210000000001"]);
        assert!(effective.organizations.is_empty());
        assert_eq!(config.for_organization(own).unwrap().checks, super::super::Checks::Full);
        // Round trip through check-config's TOML, whose summary is comments.
        let printed = config.to_toml() + &config.organizations_summary();
        assert_eq!(parse_toml(&printed).unwrap(), config);
        assert!(printed.contains("# organization \"acquired\": assumes arn:aws:iam::210000000000:role/aws-root-exporter-org-access (session name aws-root-exporter, with an external id)"), "{printed}");
        assert!(printed.contains("#   checks = \"summary\""), "{printed}");
        assert!(
            !printed.contains("org-b-external\"\n#"),
            "the external id is in the entry, not repeated"
        );
    }

    #[test]
    fn bad_entries_are_one_line_errors_naming_the_entry() {
        let role = |a: &str| format!("role_arn = \"arn:aws:iam::{a}:role/r\"");
        for (text, says) in [
            ("[[organizations]]\nrole_arn = \"x\"", "entry #1: has no `name`"),
            ("[[organizations]]\nname = \"Prod\"", "invalid name \"Prod\""),
            (
                "[[organizations]]\nname = \"a\"\n[[organizations]]\nname = \"a\"\n"
                    .to_string()
                    .as_str(),
                "`a`: the name is used twice",
            ),
            (
                "[[organizations]]\nname = \"a\"\n[[organizations]]\nname = \"b\"\n",
                "`b`: reaches the same organization as `a` (neither has a role_arn",
            ),
            (
                &format!(
                    "[[organizations]]\nname = \"a\"\n{}\n[[organizations]]\nname = \"b\"\n{}\n",
                    role("111111111111"),
                    role("111111111111")
                ),
                "both assume arn:aws:iam::111111111111:role/r",
            ),
            (
                "[[organizations]]\nname = \"a\"\nconcurrency = 3",
                "`concurrency` is set for the whole exporter, not per organization",
            ),
            (
                "[[organizations]]\nname = \"a\"\nfavourite = 3",
                "unknown key `favourite`",
            ),
            (
                "[[organizations]]\nname = \"a\"\nrole_arn = \"arn:aws:iam::1:user/x\"",
                "invalid role_arn",
            ),
            (
                "[[organizations]]\nname = \"a\"\nexternal_id = \"abc\"",
                "need role_arn",
            ),
            ("[[organizations]]\nname = \"a\"\nchecks = \"most\"", "`a`: "),
            (
                &format!(
                    "[[organizations]]\nname = \"a\"\ninclude_accounts = [\"222222222222\"]\n[[organizations]]\nname = \"b\"\n{}\ninclude_accounts = [\"222222222222\"]\n",
                    role("333333333333")
                ),
                "account 222222222222 is also in include_accounts of `a`",
            ),
        ] {
            let e = parse_toml(text).expect_err(text).to_string();
            assert!(e.contains(says), "{text:?}: {e}");
            assert!(!e.contains('\n'), "one line: {e}");
            assert!(e.contains("organizations entry"), "{e}");
        }
    }
}
