//! Configuration: built-in defaults < TOML file < `AWS_ROOT_EXPORTER_*` environment variables <
//! command-line flags, merged with figment, then checked by [`RawConfig::validate`].

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Deserializer, Serialize};

use crate::aws::access::AccessMethod;

/// Prefix of the environment variables that set configuration keys.
pub const ENV_PREFIX: &str = "AWS_ROOT_EXPORTER_";

/// The exporter's default port, from the exporter range 9100-9999, not allocated to another
/// exporter in the Prometheus default port allocations list.
pub const DEFAULT_PORT: u16 = 9312;

/// Longest audit session AWS allows for a root session.
pub const MAX_SESSION_DURATION: Duration = Duration::from_secs(900);

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value that could not be read at all (wrong type, unknown key, unreadable file).
    #[error("{0}")]
    Load(String),
    /// A value that was read but is not allowed.
    #[error("invalid value {value:?} for `{key}`: {allowed}")]
    Invalid {
        key: &'static str,
        value: String,
        allowed: String,
    },
}

impl ConfigError {
    fn invalid(key: &'static str, value: impl ToString, allowed: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key,
            value: value.to_string(),
            allowed: allowed.into(),
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// How deep each account is audited; ordered from shallow to deep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Checks {
    /// GetAccountSummary in the account's session: the four root flags.
    Summary,
    /// Also keys by status and last use, MFA device kinds, password dates, certificates.
    Full,
}

/// The configuration as merged from its layers, before validation. Durations are strings like
/// "5m" or "90s"; every key has a default.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    pub listen: String,
    pub refresh_interval: String,
    pub concurrency: usize,
    pub account_timeout: String,
    pub sts_region: String,
    pub session_duration: String,
    #[serde(deserialize_with = "account_list")]
    pub include_accounts: Vec<String>,
    #[serde(deserialize_with = "account_list")]
    pub exclude_accounts: Vec<String>,
    pub log_format: LogFormat,
    pub checks: Checks,
    pub access: AccessMethod,
}

impl Default for RawConfig {
    fn default() -> Self {
        RawConfig {
            listen: format!("0.0.0.0:{DEFAULT_PORT}"),
            refresh_interval: "5m".into(),
            concurrency: 16,
            account_timeout: "60s".into(),
            sts_region: "us-east-1".into(),
            session_duration: "120s".into(),
            include_accounts: Vec::new(),
            exclude_accounts: Vec::new(),
            log_format: LogFormat::Text,
            checks: Checks::Full,
            access: AccessMethod::default(),
        }
    }
}

/// The validated configuration the exporter runs with.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub listen: SocketAddr,
    pub refresh_interval: Duration,
    pub concurrency: usize,
    pub account_timeout: Duration,
    pub sts_region: String,
    pub session_duration: Duration,
    pub include_accounts: Vec<String>,
    pub exclude_accounts: Vec<String>,
    pub log_format: LogFormat,
    pub checks: Checks,
    /// The way into accounts.
    pub access: AccessMethod,
}

impl Config {
    /// Whether the filters let this account be audited.
    pub fn selects(&self, account_id: &str) -> bool {
        (self.include_accounts.is_empty() || self.include_accounts.iter().any(|a| a == account_id))
            && !self.exclude_accounts.iter().any(|a| a == account_id)
    }

    /// The effective configuration as TOML, for `check-config`.
    pub fn to_toml(&self) -> String {
        let raw = RawConfig {
            listen: self.listen.to_string(),
            refresh_interval: humantime::format_duration(self.refresh_interval).to_string(),
            concurrency: self.concurrency,
            account_timeout: humantime::format_duration(self.account_timeout).to_string(),
            sts_region: self.sts_region.clone(),
            session_duration: humantime::format_duration(self.session_duration).to_string(),
            include_accounts: self.include_accounts.clone(),
            exclude_accounts: self.exclude_accounts.clone(),
            log_format: self.log_format,
            checks: self.checks,
            access: self.access,
        };
        toml::to_string(&raw).unwrap_or_default()
    }
}

/// Merge the layers. `overrides` are the command-line flags that were given (serialized with
/// unset keys skipped); `file` the `--config` path, if any.
pub fn load<T: Serialize>(file: Option<&Path>, overrides: &T) -> Result<Config, ConfigError> {
    load_from(file, Env::prefixed(ENV_PREFIX), overrides)
}

/// [`load`] with an explicit environment provider, for tests.
pub fn load_from<T: Serialize>(file: Option<&Path>, env: Env, overrides: &T) -> Result<Config, ConfigError> {
    let mut figment = Figment::from(Serialized::defaults(RawConfig::default()));
    if let Some(path) = file {
        if !path.is_file() {
            return Err(ConfigError::Load(format!(
                "config file {} does not exist or is not a file",
                path.display()
            )));
        }
        figment = figment.merge(Toml::file(path));
    }
    let raw: RawConfig = figment
        .merge(env)
        .merge(Serialized::defaults(overrides))
        .extract()
        .map_err(|e| ConfigError::Load(figment_error_line(e)))?;
    raw.validate()
}

fn figment_error_line(e: figment::Error) -> String {
    // figment reports the first problem with the key path and where the value came from; keep it
    // to one line.
    // The "default." prefix is figment's profile name, which this exporter does not use.
    e.to_string().replace('\n', " ").replace("key \"default.", "key \"")
}

impl RawConfig {
    pub fn validate(self) -> Result<Config, ConfigError> {
        let listen: SocketAddr = self.listen.parse().map_err(|_| {
            ConfigError::invalid(
                "listen",
                &self.listen,
                "expected an address with port, like 0.0.0.0:9312 or [::]:9312",
            )
        })?;
        let refresh_interval = duration("refresh_interval", &self.refresh_interval)?;
        if refresh_interval < Duration::from_secs(1) {
            return Err(ConfigError::invalid(
                "refresh_interval",
                &self.refresh_interval,
                "must be at least 1s",
            ));
        }
        if !(1..=256).contains(&self.concurrency) {
            return Err(ConfigError::invalid(
                "concurrency",
                self.concurrency,
                "must be between 1 and 256",
            ));
        }
        let account_timeout = duration("account_timeout", &self.account_timeout)?;
        if account_timeout < Duration::from_secs(1) {
            return Err(ConfigError::invalid(
                "account_timeout",
                &self.account_timeout,
                "must be at least 1s",
            ));
        }
        let session_duration = duration("session_duration", &self.session_duration)?;
        if session_duration > MAX_SESSION_DURATION || session_duration < Duration::from_secs(1) {
            return Err(ConfigError::invalid(
                "session_duration",
                &self.session_duration,
                "must be between 1s and 900s (the longest audit session AWS allows)",
            ));
        }
        if session_duration.subsec_nanos() != 0 {
            return Err(ConfigError::invalid(
                "session_duration",
                &self.session_duration,
                "must be whole seconds",
            ));
        }
        let region_ok = !self.sts_region.is_empty()
            && self.sts_region.len() <= 32
            && self
                .sts_region
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && self.sts_region.contains('-')
            && self.sts_region.ends_with(|c: char| c.is_ascii_digit());
        if !region_ok {
            return Err(ConfigError::invalid(
                "sts_region",
                &self.sts_region,
                "expected an AWS region like us-east-1 (the exporter calls a regional STS endpoint)",
            ));
        }
        for (key, list) in [
            ("include_accounts", &self.include_accounts),
            ("exclude_accounts", &self.exclude_accounts),
        ] {
            if let Some(bad) = list.iter().find(|id| !is_account_id(id)) {
                return Err(ConfigError::invalid(key, bad, "account ids are exactly 12 digits"));
            }
        }
        Ok(Config {
            listen,
            refresh_interval,
            concurrency: self.concurrency,
            account_timeout,
            sts_region: self.sts_region,
            session_duration,
            include_accounts: self.include_accounts,
            exclude_accounts: self.exclude_accounts,
            log_format: self.log_format,
            checks: self.checks,
            access: self.access,
        })
    }
}

pub fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

fn duration(key: &'static str, value: &str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(value.trim())
        .map_err(|_| ConfigError::invalid(key, value, "expected a duration like \"90s\", \"5m\" or \"1h\""))
}

/// Account lists come from TOML arrays, environment variables (`[...]` or comma-separated) and
/// flags; ids may arrive as numbers, which lose leading zeros, so they are padded back.
fn account_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Item {
        Num(u64),
        Str(String),
    }
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum List {
        One(Item),
        Many(Vec<Item>),
    }
    let item = |i: Item| -> Vec<String> {
        match i {
            Item::Num(n) => vec![format!("{n:012}")],
            Item::Str(s) => s
                .split(',')
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .collect(),
        }
    };
    Ok(match List::deserialize(d)? {
        List::One(i) => item(i),
        List::Many(v) => v.into_iter().flat_map(item).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate() {
        let c = RawConfig::default().validate().unwrap();
        assert_eq!(c.listen.port(), DEFAULT_PORT);
        assert_eq!(c.refresh_interval, Duration::from_secs(300));
        assert_eq!(c.concurrency, 16);
        assert_eq!(c.checks, Checks::Full);
    }

    #[test]
    fn selects_honours_include_and_exclude() {
        let mut c = RawConfig::default().validate().unwrap();
        assert!(c.selects("222222222222"));
        c.include_accounts = vec!["222222222222".into()];
        assert!(c.selects("222222222222"));
        assert!(!c.selects("333333333333"));
        c.exclude_accounts = vec!["222222222222".into()];
        assert!(!c.selects("222222222222"));
    }

    #[test]
    fn to_toml_round_trips() {
        let c = RawConfig::default().validate().unwrap();
        let raw: RawConfig = toml::from_str(&c.to_toml()).unwrap();
        assert_eq!(raw.validate().unwrap(), c);
    }
}
