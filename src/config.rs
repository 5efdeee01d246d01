//! Configuration: built-in defaults < TOML file < `AWS_ROOT_EXPORTER_*` environment variables <
//! command-line flags, merged with figment, then checked by [`RawConfig::validate`].

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Format, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use serde::{Deserialize, Deserializer, Serialize};

use crate::ids::{AccessMode, is_account_id};

mod organizations;
pub use organizations::{DEFAULT_SESSION_NAME, OrganizationEntry, OrganizationRole, RawOrganization};

/// Prefix of the environment variables that set configuration keys.
pub const ENV_PREFIX: &str = "AWS_ROOT_EXPORTER_";

/// The exporter's default port, from the exporter range 9100-9999, not allocated to another
/// exporter in the Prometheus default port allocations list.
pub const DEFAULT_PORT: u16 = 9312;

/// Longest audit session AWS allows for a root session.
pub const MAX_SESSION_DURATION: Duration = Duration::from_secs(900);

/// Which commands offer a key's flag. Every command's file and environment may set any key (one
/// file serves every command), and every key is validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commands {
    /// What one refresh reads (discovery, the ways into accounts, the audit, logging): `serve`,
    /// `demo`, `check-config` and `audit`.
    Refresh,
    /// What only a long-running exporter reads (the schedule, the events consumer): `serve`,
    /// `demo`, `check-config`.
    ServeOnly,
    /// Where and how `serve` listens, and so where and how `healthcheck` asks: `serve`, `demo`,
    /// `check-config` and `healthcheck`.
    Listen,
}

/// What a SIGHUP reload does with a changed key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnSighup {
    /// The new value applies from the next refresh on.
    Applies,
    /// The running value is kept and a warning says the new one takes effect after a restart
    /// (the listener, the web configuration's path, logging and the events consumer are set up
    /// once, at start).
    Restart,
}

/// One configuration key, as `keys!` declares it: its name (the TOML key;
/// `AWS_ROOT_EXPORTER_<NAME>` in the environment), its flag, the values it allows in plain words
/// (error messages, `--help`), the commands that offer its flag, what a SIGHUP does with it, and
/// whether an `[[organizations]]` entry may override it.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    pub name: &'static str,
    /// The flag without its dashes: the name with `-` for `_` unless declared otherwise.
    pub long: &'static str,
    /// Other spellings of the flag, shown in `--help`.
    pub aliases: &'static [&'static str],
    /// The flag's value name in `--help`.
    pub value_name: &'static str,
    pub allowed: &'static str,
    /// The default as `--help` shows it, where the value in `RawConfig::default()` does not say
    /// it (it depends on another key).
    shown_default: Option<&'static str>,
    pub commands: Commands,
    pub on_sighup: OnSighup,
    /// Whether an `[[organizations]]` entry may set its own value (the top-level value is the
    /// default of every organization).
    pub per_organization: bool,
    /// The flag's clap setup and value, from the key's raw type ([`FlagValue`]).
    flag_arg: fn(clap::Arg) -> clap::Arg,
    flag_given: fn(&clap::ArgMatches, &str) -> Option<serde_json::Value>,
}

impl Key {
    /// The command-line flag.
    pub fn flag(&self) -> String {
        format!("--{}", self.long)
    }

    /// The environment variable.
    pub fn env(&self) -> String {
        format!("{ENV_PREFIX}{}", self.name.to_ascii_uppercase())
    }

    /// The `--help` text of the key's flag: what it allows, its default and its environment
    /// variable.
    pub fn help(&self) -> String {
        let default = self.shown_default.map(str::to_string).unwrap_or_else(|| {
            match RawConfig::default().values().get(self.name) {
                Some(serde_json::Value::String(s)) if s.is_empty() => "empty".to_string(),
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(serde_json::Value::Array(a)) if a.is_empty() => "none".to_string(),
                Some(other) => other.to_string(),
                None => "none".to_string(),
            }
        });
        format!("{}. [default: {default}] [env: {}]", self.allowed, self.env())
    }

    /// The key's flag, for the commands that offer it.
    fn arg(&self) -> clap::Arg {
        let arg = clap::Arg::new(self.name)
            .long(self.long)
            .value_name(self.value_name)
            .visible_aliases(self.aliases.iter().copied())
            .help(self.help());
        (self.flag_arg)(arg)
    }

    /// The error for a value this key does not allow.
    fn invalid(&self, value: impl ToString) -> ConfigError {
        ConfigError::invalid(self.name, value, self.allowed)
    }
}

/// The first argument when given, else the second.
macro_rules! given_or {
    (, $default:expr) => {
        $default
    };
    ($given:expr, $default:expr) => {
        $given
    };
}

/// A key's name as a `&'static str` with `_` replaced by `$sep`, upper case if `$upper`: the
/// flag (`refresh-interval`) and its value name (`REFRESH_INTERVAL`), as clap's derive spells them.
macro_rules! spelled {
    ($name:ident, $sep:literal, $upper:literal) => {{
        const SPELLED: [u8; stringify!($name).len()] = respell(stringify!($name), $sep, $upper);
        match std::str::from_utf8(&SPELLED) {
            Ok(s) => s,
            Err(_) => panic!("key names are ASCII"),
        }
    }};
}

const fn respell<const N: usize>(name: &str, sep: u8, upper: bool) -> [u8; N] {
    let (bytes, mut out, mut i) = (name.as_bytes(), [0u8; N], 0);
    while i < N {
        out[i] = match bytes[i] {
            b'_' => sep,
            b if upper => b.to_ascii_uppercase(),
            b => b,
        };
        i += 1;
    }
    out
}

/// Declares every configuration key once, and derives from the declarations: [`KEYS`],
/// [`RawConfig`] (the raw types, for the file, environment and flags) and its `Default`,
/// [`Config`] (the validated types), `RawConfig::parse_each` (each key's `parse`, in the order of
/// the declarations) and [`Config::to_raw`] ([`ToRaw`] of each validated type). The flags of each
/// command, the environment names, `--help`, `to_toml`, the SIGHUP reload and the tests read
/// [`KEYS`].
macro_rules! keys {
    ($(
        $(#[doc = $doc:literal])*
        $name:ident: $raw:ty => $ty:ty {
            default: $default:expr,
            allowed: $allowed:literal,
            commands: $commands:ident,
            on_sighup: $on_sighup:ident,
            per_organization: $per_organization:literal,
            $(deserialize_with: $with:literal,)?
            $(flag: $flag:literal,)?
            $(value_name: $value_name:literal,)?
            $(aliases: [$($alias:literal),*],)?
            $(shown_default: $shown_default:literal,)?
            parse: $parse:expr $(,)?
        }
    ),* $(,)?) => {
        /// Every configuration key, in the order of the declarations.
        pub const KEYS: [Key; [$(stringify!($name)),*].len()] = [$(Key {
            name: stringify!($name),
            long: given_or!($($flag)?, spelled!($name, b'-', false)),
            aliases: &[$($($alias),*)?],
            value_name: given_or!($($value_name)?, spelled!($name, b'_', true)),
            allowed: $allowed,
            shown_default: given_or!($(Some($shown_default))?, None),
            commands: Commands::$commands,
            on_sighup: OnSighup::$on_sighup,
            per_organization: $per_organization,
            flag_arg: <$raw as FlagValue>::arg,
            flag_given: <$raw as FlagValue>::given,
        }),*];

        /// The configuration as merged from its layers, before validation. Durations are
        /// strings like "5m" or "90s"; every key has a default.
        #[derive(Debug, Clone, Serialize, Deserialize)]
        #[serde(deny_unknown_fields, default)]
        pub struct RawConfig {
            $($(#[serde(deserialize_with = $with)])? pub $name: $raw,)*
            /// `[[organizations]]` (file only; not a key: no flag, no variable).
            #[serde(skip_serializing_if = "Vec::is_empty")]
            pub organizations: Vec<RawOrganization>,
        }

        impl Default for RawConfig {
            fn default() -> Self {
                RawConfig { $($name: $default,)* organizations: Vec::new() }
            }
        }

        /// The validated configuration the exporter runs with.
        #[derive(Debug, Clone, PartialEq)]
        pub struct Config {
            $($(#[doc = $doc])* pub $name: $ty,)*
            /// The `[[organizations]]` entries; empty: one organization, `default`, as the
            /// top-level keys say.
            pub organizations: Vec<OrganizationEntry>,
        }

        impl RawConfig {
            /// Each key's value checked on its own, in the order of the declarations (the
            /// organizations are checked after the keys they override).
            fn parse_each(self) -> Result<Config, ConfigError> {
                Ok(Config {$($name: {
                    let parse: fn(&Key, $raw) -> Result<$ty, ConfigError> = $parse;
                    parse(key(stringify!($name)).expect("every field is a key"), self.$name)?
                },)* organizations: Vec::new()})
            }
        }

        impl Config {
            /// The configuration as its keys' values again (validating them gives it back).
            pub fn to_raw(&self) -> RawConfig {
                RawConfig {
                    $($name: <$ty as ToRaw<$raw>>::to_raw(&self.$name),)*
                    organizations: self.organizations.iter().map(OrganizationEntry::to_raw).collect(),
                }
            }
        }
    };
}

const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

// Every configuration key, once: name, raw type (file, environment, flags) => validated type,
// default, what it allows, which commands offer its flag, what a SIGHUP does with it, whether an
// `[[organizations]]` entry may override it, the flag's spelling where it differs from the name,
// and `parse`, the check of its value on its own. Checks that tie keys together are in
// `RawConfig::validate`. A test checks README's table, the example configuration and each
// command's `--help` against this list.
keys! {
    /// Where `serve` listens (a host name is resolved once, at load).
    listen: String => SocketAddr {
        default: format!("0.0.0.0:{DEFAULT_PORT}"),
        allowed: "an address or host name with port, like 0.0.0.0:9312, [::]:9312 or localhost:9312",
        commands: Listen,
        on_sighup: Restart,
        per_organization: false,
        aliases: ["web.listen-address"],
        parse: |key, value| listen_address(&value).ok_or_else(|| key.invalid(value)),
    },
    /// Time between refreshes, start to start.
    refresh_interval: String => Duration {
        default: String::new(),
        allowed: "a duration from 1s to 24h, like \"90s\", \"5m\" or \"1h\"",
        commands: ServeOnly,
        on_sighup: Applies,
        per_organization: false,
        shown_default: "5m, or 1h with events_queue_url",
        parse: |key, value| duration_within(key, value.trim(), secs(1), secs(24 * 3600)),
    },
    /// Accounts audited at once.
    concurrency: usize => usize {
        default: 64,
        allowed: "a whole number from 1 to 256",
        commands: Refresh,
        on_sighup: Applies,
        per_organization: false,
        deserialize_with: "whole_number",
        parse: |key, n| if (1..=256).contains(&n) { Ok(n) } else { Err(key.invalid(n)) },
    },
    /// Longest audit of one account, retries included.
    account_timeout: String => Duration {
        default: "60s".into(),
        allowed: "a duration from 1s to 10m, like \"60s\"",
        commands: Refresh,
        on_sighup: Applies,
        per_organization: false,
        parse: |key, value| duration_within(key, &value, secs(1), secs(600)),
    },
    /// Regional STS endpoint.
    sts_region: String => String {
        default: "us-east-1".into(),
        allowed: "an AWS region like us-east-1",
        commands: Refresh,
        on_sighup: Applies,
        per_organization: false,
        parse: |key, value| if region_ok(&value) { Ok(value) } else { Err(key.invalid(value)) },
    },
    /// Lifetime of an audit session, in whole seconds.
    session_duration: String => Duration {
        default: "120s".into(),
        allowed: "whole seconds from 1s to 900s (the longest audit session AWS allows), like \"120s\"",
        commands: Refresh,
        on_sighup: Applies,
        per_organization: false,
        parse: |key, value| match duration_within(key, &value, secs(1), MAX_SESSION_DURATION)? {
            d if d.subsec_nanos() == 0 => Ok(d),
            _ => Err(key.invalid(value)),
        },
    },
    /// Account ids to audit only (none: every account).
    include_accounts: Vec<String> => Vec<String> {
        default: Vec::new(),
        allowed: "a list of quoted 12-digit account ids, like [\"123456789012\"] (comma-separated in the environment and flags)",
        commands: Refresh,
        on_sighup: Applies,
        per_organization: true,
        deserialize_with: "account_list",
        parse: account_ids,
    },
    /// Account ids never to audit.
    exclude_accounts: Vec<String> => Vec<String> {
        default: Vec::new(),
        allowed: "a list of quoted 12-digit account ids, like [\"123456789012\"] (comma-separated in the environment and flags)",
        commands: Refresh,
        on_sighup: Applies,
        per_organization: true,
        deserialize_with: "account_list",
        parse: account_ids,
    },
    log_format: LogFormat => LogFormat {
        default: LogFormat::Text,
        allowed: "\"text\", \"json\" or \"logfmt\"",
        commands: Refresh,
        on_sighup: Restart,
        per_organization: false,
        aliases: ["log.format"],
        parse: as_given,
    },
    log_level: LogLevel => LogLevel {
        default: LogLevel::Info,
        allowed: "\"error\", \"warn\", \"info\", \"debug\" or \"trace\"",
        commands: Refresh,
        on_sighup: Restart,
        per_organization: false,
        aliases: ["log.level"],
        parse: as_given,
    },
    checks: Checks => Checks {
        default: Checks::Full,
        allowed: "\"summary\" or \"full\"",
        commands: Refresh,
        on_sighup: Applies,
        per_organization: true,
        parse: as_given,
    },
    /// The way into member accounts.
    access: AccessMode => AccessMode {
        default: AccessMode::Auto,
        allowed: "\"auto\" (AssumeRoot where centralized root access is on, else the member role), \"assume_root\" or \"role\"",
        commands: Refresh,
        on_sighup: Applies,
        per_organization: true,
        parse: as_given,
    },
    /// Role to assume in each member account (`access = "role"`, or `auto` without centralized
    /// root access); `None` when not set.
    member_role_name: String => Option<String> {
        default: String::new(),
        allowed: "an IAM role name (1-64 of letters, digits and +=,.@_-), or empty for none",
        commands: Refresh,
        on_sighup: Applies,
        per_organization: true,
        parse: |key, value| optional(key, value, |name| {
            name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
        }),
    },
    member_role_external_id: String => Option<String> {
        default: String::new(),
        allowed: "2-1224 of letters, digits and +=,.@:/-, or empty for none",
        commands: Refresh,
        on_sighup: Applies,
        per_organization: true,
        // The id is a shared secret of sorts: an error does not echo it.
        parse: |key, value| optional(key, value, |id| {
            (2..=1224).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@:/-_".contains(c))
        })
        .map_err(|_| key.invalid("(not shown)")),
    },
    /// Role in the management account, for an exporter that does not run there.
    management_account_role_arn: String => Option<String> {
        default: String::new(),
        allowed: "a role ARN like arn:aws:iam::111111111111:role/RootAuditManagementRole, or empty for none",
        commands: Refresh,
        on_sighup: Applies,
        per_organization: true,
        parse: |key, value| optional(key, value, |arn| crate::ids::role_arn_account(arn).is_some()),
    },
    /// Account tag keys to read and serve as `tag_<key>` labels.
    account_tags: Vec<String> => Vec<String> {
        default: Vec::new(),
        allowed: "a list of tag keys, like [\"owner\", \"environment\"] (comma-separated in the environment and flags)",
        commands: Refresh,
        on_sighup: Applies,
        per_organization: true,
        deserialize_with: "string_list",
        parse: tag_keys,
    },
    /// The SQS queue of root credential events; `None`: no events, polling only.
    events_queue_url: String => Option<String> {
        default: String::new(),
        allowed: "an SQS queue URL like https://sqs.us-east-1.amazonaws.com/111111111111/aws-root-events, or empty for none",
        commands: ServeOnly,
        on_sighup: Restart,
        per_organization: true,
        parse: |key, value| optional(key, value, |url| queue_url_account(url).is_some()),
    },
    /// The web configuration (TLS, basic auth, headers; `crate::web`), checked at load; `None`:
    /// plain HTTP. Relative to the working directory.
    web_config_file: String => Option<PathBuf> {
        default: String::new(),
        allowed: "the path of a web configuration file in the Prometheus exporter-toolkit format (TLS, basic auth; docs/web-config.md), or empty for plain HTTP",
        commands: Listen,
        on_sighup: Restart,
        per_organization: false,
        flag: "web.config.file",
        value_name: "FILE",
        parse: web_config_file,
    },
    /// Where `/metrics` is served.
    telemetry_path: String => String {
        default: "/metrics".into(),
        allowed: "an absolute URL path for the metrics, like \"/metrics\" (not /, /healthz, /readyz or a /-/ path)",
        commands: ServeOnly,
        on_sighup: Restart,
        per_organization: false,
        flag: "web.telemetry-path",
        value_name: "PATH",
        parse: |key, value| match value.trim() {
            path if telemetry_path_ok(path) => Ok(path.to_string()),
            path => Err(key.invalid(path)),
        },
    },
}

/// The key of this name.
pub fn key(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.name == name)
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value that could not be read at all (wrong type, unknown key, unreadable file).
    #[error("{0}")]
    Load(String),
    /// A value that was read but is not allowed.
    #[error("invalid value {value:?} for `{key}`: expected {allowed}")]
    Invalid {
        key: &'static str,
        value: String,
        allowed: String,
    },
    /// The file `web_config_file` names cannot be used.
    #[error("`web_config_file`: {0}")]
    WebConfig(#[from] crate::web::WebConfigError),
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

/// Log verbosity of the exporter's own events (the AWS SDK's stay at `warn` unless `RUST_LOG`
/// says otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
    /// As Prometheus's promslog prints it: `time=... level=... source=... msg=... key=value`.
    Logfmt,
}

/// How deep each account is audited; ordered from shallow to deep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Checks {
    /// GetAccountSummary in the account's session: the four root flags.
    Summary,
    /// Also keys by status and last use, MFA device kinds, password dates, certificates.
    Full,
}

/// What a key allows, in plain words.
pub fn allowed(name: &str) -> &'static str {
    key(name).map(|k| k.allowed).unwrap_or("a known configuration key")
}

impl RawConfig {
    /// Each key's value, by name.
    fn values(&self) -> serde_json::Map<String, serde_json::Value> {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => unreachable!("RawConfig serializes to an object"),
        }
    }
}

impl Config {
    /// Whether the filters let this account be audited.
    pub fn selects(&self, account_id: &str) -> bool {
        (self.include_accounts.is_empty() || self.include_accounts.iter().any(|a| a == account_id))
            && !self.exclude_accounts.iter().any(|a| a == account_id)
    }

    /// The effective configuration as TOML, for `check-config`.
    pub fn to_toml(&self) -> String {
        toml::to_string(&self.to_raw()).unwrap_or_default()
    }

    /// `new` as a SIGHUP may apply it while `self` runs: every key that takes effect only after
    /// a restart ([`OnSighup::Restart`]) keeps its running value. Returns the configuration to
    /// run and the names of the keys whose new values wait for a restart.
    pub fn reloaded(&self, new: Config) -> (Config, Vec<&'static str>) {
        let (running, wanted) = (self.to_raw().values(), new.to_raw().values());
        let waiting: Vec<&'static str> = KEYS
            .iter()
            .filter(|k| k.on_sighup == OnSighup::Restart && running.get(k.name) != wanted.get(k.name))
            .map(|k| k.name)
            .collect();
        if waiting.is_empty() {
            return (new, waiting);
        }
        let mut merged = wanted;
        for name in &waiting {
            if let Some(v) = running.get(*name) {
                merged.insert(name.to_string(), v.clone());
            }
        }
        // Every value came from a valid configuration: keeping some running ones keeps it
        // valid (no check ties a restart-only key to another).
        let raw: RawConfig =
            serde_json::from_value(serde_json::Value::Object(merged)).expect("a valid configuration's keys");
        let Ok(mut config) = raw.validate() else {
            return (self.clone(), waiting);
        };
        // The running web configuration stays as it was loaded.
        config.web_config_file = self.web_config_file.clone();
        (config, waiting)
    }
}

/// A loaded configuration and what the operator should hear about it once logging runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub config: Config,
    /// One line each, e.g. environment variables that were ignored.
    pub warnings: Vec<String>,
}

/// Merge the layers. `overrides` are the command-line flags that were given (serialized with
/// unset keys skipped); `file` the `--config` path, if any.
pub fn load<T: Serialize>(file: Option<&Path>, overrides: &T) -> Result<Loaded, ConfigError> {
    // `vars_os`: `vars` panics on the first variable that is not UTF-8, whoever's it is.
    load_from(file, std::env::vars_os(), overrides)
}

/// [`load`] with an explicit environment, for tests.
pub fn load_from<T: Serialize, K: Into<OsString>, V: Into<OsString>>(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (K, V)>,
    overrides: &T,
) -> Result<Loaded, ConfigError> {
    let mut figment = Figment::from(Layer::new("built-in defaults", &RawConfig::default())?);
    if let Some(path) = file {
        if !path.is_file() {
            return Err(ConfigError::Load(format!(
                "config file {} does not exist or is not a file",
                path.display()
            )));
        }
        figment = figment.merge(Toml::file_exact(path));
    }
    let (env, ignored) = EnvLayer::read(env.into_iter().map(|(k, v)| (k.into(), v.into())))?;
    let raw: RawConfig = figment
        .merge(env)
        .merge(Layer::new("command-line flags", overrides)?)
        .extract()
        .map_err(|e| ConfigError::Load(figment_error_line(&e)))?;
    let mut warnings = Vec::new();
    if !ignored.is_empty() {
        warnings.push(format!(
            "ignoring environment variables that are not configuration keys: {} (the platform may set them, e.g. Kubernetes service links; known keys: {})",
            ignored.join(", "),
            KEYS.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
        ));
    }
    let config = raw.validate()?;
    if config.session_duration < config.account_timeout {
        warnings.push(format!(
            "session_duration ({}) is shorter than account_timeout ({}): a slow audit can outlive its session and fail with expired_token",
            humantime::format_duration(config.session_duration),
            humantime::format_duration(config.account_timeout)
        ));
    }
    Ok(Loaded { config, warnings })
}

/// A serializable value as a figment layer with a name for error messages.
struct Layer {
    name: &'static str,
    dict: Dict,
}

impl Layer {
    fn new<T: Serialize>(name: &'static str, value: &T) -> Result<Layer, ConfigError> {
        let dict = Value::serialize(value)
            .ok()
            .and_then(|v| v.into_dict())
            .ok_or_else(|| ConfigError::Load(format!("{name} cannot be read as configuration")))?;
        Ok(Layer { name, dict })
    }
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.name)
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.dict.clone()))
    }
}

/// `AWS_ROOT_EXPORTER_<KEY>` variables of known keys, as strings. The environment is shared with
/// the platform (Kubernetes injects `AWS_ROOT_EXPORTER_SERVICE_HOST` and friends for a Service of
/// that name), so other variables with the prefix are ignored, not errors.
/// Variables outside the prefix are not looked at, whatever their name or value (they may be
/// anyone's secrets, and need not be UTF-8); a value of ours that is not UTF-8 is an error naming
/// the variable, never showing the value.
struct EnvLayer(Dict);

impl EnvLayer {
    /// The layer, and the names of the variables it ignored (sorted).
    fn read(vars: impl IntoIterator<Item = (OsString, OsString)>) -> Result<(EnvLayer, Vec<String>), ConfigError> {
        let mut dict = Dict::new();
        let mut ignored = Vec::new();
        for (name, value) in vars {
            if !name.as_encoded_bytes().starts_with(ENV_PREFIX.as_bytes()) {
                continue;
            }
            let Some(name) = name.to_str() else {
                ignored.push(name.to_string_lossy().into_owned());
                continue;
            };
            let key = name[ENV_PREFIX.len()..].to_ascii_lowercase();
            if self::key(&key).is_none() {
                ignored.push(name.to_string());
                continue;
            }
            let Ok(value) = value.into_string() else {
                return Err(ConfigError::Load(format!(
                    "environment variable {name} is not valid UTF-8 (its value is not shown); expected {}",
                    allowed(&key)
                )));
            };
            dict.insert(key, Value::from(value));
        }
        ignored.sort();
        Ok((EnvLayer(dict), ignored))
    }
}

impl Provider for EnvLayer {
    fn metadata(&self) -> Metadata {
        Metadata::named("environment variables")
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.0.clone()))
    }
}

/// One line naming the key, the value, where it came from and what is allowed.
fn figment_error_line(e: &figment::Error) -> String {
    use figment::error::Kind;
    let key = e.path.last().map(String::as_str).unwrap_or("");
    let source = match &e.metadata {
        Some(m) => match &m.source {
            Some(figment::Source::File(path)) => format!("config file {}", path.display()),
            _ if m.name == "environment variables" => {
                format!("environment variable {ENV_PREFIX}{}", key.to_ascii_uppercase())
            }
            _ => m.name.to_string(),
        },
        None => "configuration".into(),
    };
    match &e.kind {
        Kind::UnknownField(field, _) => format!(
            "unknown key `{field}` in {source}; known keys: {}",
            KEYS.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
        ),
        Kind::InvalidType(actual, _) | Kind::InvalidValue(actual, _) => {
            format!(
                "invalid value {actual} for `{key}` in {source}: expected {}",
                allowed(key)
            )
        }
        Kind::UnknownVariant(value, _) => {
            format!(
                "invalid value {value:?} for `{key}` in {source}: expected {}",
                allowed(key)
            )
        }
        Kind::Message(m) => format!("invalid value for `{key}` in {source}: {m}"),
        other => format!("`{key}` in {source}: {other}; expected {}", allowed(key)).replace('\n', " "),
    }
}

impl RawConfig {
    /// The configuration to run with: each key checked on its own (its `parse` in `keys!`),
    /// then the checks that tie keys together.
    pub fn validate(mut self) -> Result<Config, ConfigError> {
        // With events, the poll is a safety net: hourly unless set.
        if self.refresh_interval.trim().is_empty() {
            let default = if self.events_queue_url.trim().is_empty() {
                "5m"
            } else {
                "1h"
            };
            self.refresh_interval = default.into();
        }
        let organizations = std::mem::take(&mut self.organizations);
        let mut config = self.parse_each()?;
        if organizations.is_empty() {
            check_together(&config)?;
        } else {
            // The top-level keys are defaults: each entry's effective configuration is checked
            // as a whole instead.
            config.organizations = organizations::parse(&organizations, &config)?;
        }
        Ok(config)
    }
}

/// The checks that tie keys together.
fn check_together(config: &Config) -> Result<(), ConfigError> {
    if config.member_role_external_id.is_some() && config.member_role_name.is_none() {
        return Err(ConfigError::invalid(
            "member_role_external_id",
            "(not shown)",
            "set member_role_name too: the external id is sent when assuming that role",
        ));
    }
    if config.access == AccessMode::Role && config.member_role_name.is_none() {
        return Err(ConfigError::invalid(
            "member_role_name",
            "",
            "a role name: access = \"role\" assumes that role in every member account",
        ));
    }
    Ok(())
}

/// A value kept as given (an enum: the file, environment and flags already refuse the others).
fn as_given<T>(_: &Key, value: T) -> Result<T, ConfigError> {
    Ok(value)
}

/// A duration from `min` to `max`.
fn duration_within(key: &Key, value: &str, min: Duration, max: Duration) -> Result<Duration, ConfigError> {
    humantime::parse_duration(value.trim())
        .ok()
        .filter(|d| (min..=max).contains(d))
        .ok_or_else(|| key.invalid(value))
}

/// An optional value: blank is none, anything else is trimmed and must pass `ok`.
fn optional(key: &Key, value: String, ok: impl Fn(&str) -> bool) -> Result<Option<String>, ConfigError> {
    match value.trim() {
        "" => Ok(None),
        value if ok(value) => Ok(Some(value.to_string())),
        value => Err(key.invalid(value)),
    }
}

/// An AWS region name: lower-case letters, digits and dashes, ending in a digit.
fn region_ok(region: &str) -> bool {
    !region.is_empty()
        && region.len() <= 32
        && region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && region.contains('-')
        && region.ends_with(|c: char| c.is_ascii_digit())
}

fn account_ids(key: &Key, ids: Vec<String>) -> Result<Vec<String>, ConfigError> {
    match ids.iter().find(|id| !is_account_id(id)) {
        Some(bad) => Err(ConfigError::invalid(key.name, bad, "account ids of exactly 12 digits")),
        None => Ok(ids),
    }
}

/// Tag keys of 1 to 128 characters whose label names stay distinct.
fn tag_keys(key: &Key, tags: Vec<String>) -> Result<Vec<String>, ConfigError> {
    let mut labels = std::collections::BTreeMap::new();
    for tag in &tags {
        if tag.is_empty() || tag.chars().count() > 128 {
            return Err(ConfigError::invalid(key.name, tag, "tag keys of 1 to 128 characters"));
        }
        if let Some(other) = labels.insert(tag_label(tag), tag) {
            return Err(ConfigError::invalid(
                key.name,
                tag,
                format!(
                    "tag keys that stay distinct as label names; {other:?} gives the same label {}",
                    tag_label(tag)
                ),
            ));
        }
    }
    Ok(tags)
}

/// The web configuration's path, when set; the file is read and checked now.
fn web_config_file(key: &Key, value: String) -> Result<Option<PathBuf>, ConfigError> {
    let path = optional(key, value, |_| true)?.map(PathBuf::from);
    if let Some(path) = &path {
        crate::web::WebConfig::load(path)?;
    }
    Ok(path)
}

/// A validated value as its key's raw value again (`to_raw`, `to_toml`, the SIGHUP reload).
pub trait ToRaw<R> {
    fn to_raw(&self) -> R;
}

impl<T: Clone> ToRaw<T> for T {
    fn to_raw(&self) -> T {
        self.clone()
    }
}

impl ToRaw<String> for Duration {
    fn to_raw(&self) -> String {
        humantime::format_duration(*self).to_string()
    }
}

impl ToRaw<String> for SocketAddr {
    fn to_raw(&self) -> String {
        self.to_string()
    }
}

impl ToRaw<String> for Option<String> {
    fn to_raw(&self) -> String {
        self.clone().unwrap_or_default()
    }
}

impl ToRaw<String> for Option<PathBuf> {
    fn to_raw(&self) -> String {
        self.as_ref().map(|p| p.display().to_string()).unwrap_or_default()
    }
}

/// How a raw type is given on the command line: its clap value parser, and the value a given
/// flag puts in the flag layer.
pub trait FlagValue {
    fn arg(arg: clap::Arg) -> clap::Arg;
    fn given(matches: &clap::ArgMatches, id: &str) -> Option<serde_json::Value>;
}

/// A list: comma-separated, or the flag repeated.
impl FlagValue for Vec<String> {
    fn arg(arg: clap::Arg) -> clap::Arg {
        arg.action(clap::ArgAction::Append)
            .value_delimiter(',')
            .value_parser(clap::value_parser!(String))
    }
    fn given(matches: &clap::ArgMatches, id: &str) -> Option<serde_json::Value> {
        let items: Vec<String> = matches.get_many::<String>(id)?.cloned().collect();
        (!items.is_empty()).then(|| items.into())
    }
}

/// One value per flag. Enums: clap's value names are the file's spellings (`clap::ValueEnum`, as
/// serde names them).
macro_rules! single_flag_value {
    ($($type:ty),*) => {$(
        impl FlagValue for $type {
            fn arg(arg: clap::Arg) -> clap::Arg {
                arg.action(clap::ArgAction::Set).value_parser(clap::value_parser!($type))
            }
            fn given(matches: &clap::ArgMatches, id: &str) -> Option<serde_json::Value> {
                matches.get_one::<$type>(id).and_then(|v| serde_json::to_value(v).ok())
            }
        }
    )*};
}

single_flag_value!(String, usize, LogFormat, LogLevel, Checks, AccessMode);

/// The groups of keys whose flags a command offers, in `--help` order.
pub trait Offered {
    const GROUPS: &'static [Commands];
}

/// Every key's flag: `serve`, `demo`, `check-config`.
pub enum EveryKey {}

impl Offered for EveryKey {
    const GROUPS: &'static [Commands] = &[Commands::Listen, Commands::ServeOnly, Commands::Refresh];
}

/// What one refresh reads: `audit` (no `listen`, no schedule, no events).
pub enum RefreshKeys {}

impl Offered for RefreshKeys {
    const GROUPS: &'static [Commands] = &[Commands::Refresh];
}

/// Where and how to listen, and so where and how to ask: `healthcheck`.
pub enum ListenKeys {}

impl Offered for ListenKeys {
    const GROUPS: &'static [Commands] = &[Commands::Listen];
}

/// The flags of the keys of `O`'s groups, built from [`KEYS`] (clap's builder through a
/// hand-written `clap::Args`); the flags given serialize to their keys' values, for the flag
/// layer of [`load`].
pub struct KeyFlags<O> {
    given: serde_json::Map<String, serde_json::Value>,
    offered: std::marker::PhantomData<fn() -> O>,
}

impl<O: Offered> KeyFlags<O> {
    /// The keys whose flags these are, in `--help` order.
    pub fn keys() -> impl Iterator<Item = &'static Key> {
        O::GROUPS
            .iter()
            .flat_map(|group| KEYS.iter().filter(move |k| k.commands == *group))
    }

    /// The value of a key's flag, when given.
    pub fn given(&self, name: &str) -> Option<&serde_json::Value> {
        self.given.get(name)
    }

    /// Sets a key's flag as if given.
    pub fn set(&mut self, name: &str, value: impl Into<serde_json::Value>) {
        self.given.insert(name.to_string(), value.into());
    }
}

impl<O> Default for KeyFlags<O> {
    fn default() -> Self {
        KeyFlags {
            given: serde_json::Map::new(),
            offered: std::marker::PhantomData,
        }
    }
}

impl<O> Serialize for KeyFlags<O> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.given.serialize(serializer)
    }
}

impl<O: Offered> clap::FromArgMatches for KeyFlags<O> {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let mut flags = Self::default();
        flags.update_from_arg_matches(matches)?;
        Ok(flags)
    }

    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        for key in Self::keys() {
            if let Some(value) = (key.flag_given)(matches, key.name) {
                self.given.insert(key.name.to_string(), value);
            }
        }
        Ok(())
    }
}

impl<O: Offered> clap::Args for KeyFlags<O> {
    fn augment_args(command: clap::Command) -> clap::Command {
        Self::keys().fold(command, |command, key| command.arg(key.arg()))
    }

    fn augment_args_for_update(command: clap::Command) -> clap::Command {
        Self::augment_args(command)
    }
}

/// The account id in an SQS queue URL (`https://sqs.REGION.amazonaws.com/ACCOUNT/NAME`, or any
/// http(s) endpoint with that path), when it is one.
pub fn queue_url_account(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"))?;
    let mut parts = rest.split('/');
    let (host, account, name) = (parts.next()?, parts.next()?, parts.next()?);
    let ok = !host.is_empty()
        && is_account_id(account)
        && !name.is_empty()
        && name.len() <= 80
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && parts.next().is_none_or(str::is_empty);
    ok.then_some(account)
}

/// A metrics path: absolute, at most 256 printable ASCII characters without spaces, `?` or `#`,
/// and none of the exporter's other paths.
fn telemetry_path_ok(path: &str) -> bool {
    path.starts_with('/')
        && path.len() > 1
        && path.len() <= 256
        && path.bytes().all(|b| b.is_ascii_graphic() && b != b'?' && b != b'#')
        && !["/healthz", "/readyz"].contains(&path)
        && !path.starts_with("/-/")
}

/// The label name for an account tag: `tag_` and the key with every character that a label name
/// cannot hold replaced by `_`.
pub fn tag_label(key: &str) -> String {
    let mut out = String::from("tag_");
    out.extend(key.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }));
    out
}

/// `listen` as a socket address: an IP address with port, or a host name with port resolved
/// once (the first address; IPv4 first for `localhost`-style names that give both).
fn listen_address(value: &str) -> Option<SocketAddr> {
    use std::net::ToSocketAddrs;
    let value = value.trim();
    if let Ok(addr) = value.parse() {
        return Some(addr);
    }
    let (host, port) = value.rsplit_once(':')?;
    if host.is_empty() || port.parse::<u16>().is_err() {
        return None;
    }
    let addrs: Vec<SocketAddr> = value.to_socket_addrs().ok()?.collect();
    addrs.iter().find(|a| a.is_ipv4()).or(addrs.first()).copied()
}

/// A whole number, from TOML or flags (a number) or the environment (a string of digits).
fn whole_number<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    struct Visitor;
    impl serde::de::Visitor<'_> for Visitor {
        type Value = usize;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a whole number")
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<usize, E> {
            usize::try_from(v).map_err(|_| E::custom(format!("{v} is too large")))
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<usize, E> {
            usize::try_from(v).map_err(|_| E::custom(format!("{v} is not a whole number from 1 to 256")))
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<usize, E> {
            v.trim()
                .parse()
                .map_err(|_| E::custom(format!("{v:?} is not a whole number from 1 to 256")))
        }
    }
    d.deserialize_any(Visitor)
}

/// A list of strings: a TOML array, or (environment, flags) a comma-separated string.
fn string_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum List {
        One(String),
        Many(Vec<String>),
    }
    let items = match List::deserialize(d)
        .map_err(|_| serde::de::Error::custom("expected a list of strings, like [\"owner\", \"environment\"]"))?
    {
        List::One(s) => s.split(',').map(|p| p.trim().to_string()).collect::<Vec<_>>(),
        List::Many(v) => v.into_iter().map(|p| p.trim().to_string()).collect(),
    };
    if items.iter().any(String::is_empty) && items.len() > 1 {
        return Err(serde::de::Error::custom("an empty item; separate the keys by commas"));
    }
    Ok(items.into_iter().filter(|i| !i.is_empty()).collect())
}

/// Account lists: a TOML array of strings, or (environment, flags) a comma-separated string.
/// Numbers are refused (they lose leading zeros), and so are empty items.
fn account_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    use serde::de::Error;
    struct Visitor;
    impl<'de> serde::de::Visitor<'de> for Visitor {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a list of quoted 12-digit account ids")
        }
        fn visit_str<E: Error>(self, v: &str) -> Result<Vec<String>, E> {
            // The environment may also hold a TOML-like list: ["111111111111", "222222222222"].
            let v = v.trim();
            let v = v
                .strip_prefix('[')
                .and_then(|v| v.strip_suffix(']'))
                .unwrap_or(v)
                .trim();
            if v.is_empty() {
                return Ok(Vec::new());
            }
            v.split(',').map(|p| item(p.trim().trim_matches('"').trim())).collect()
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
            let mut out = Vec::new();
            while let Some(v) = seq.next_element::<serde_json::Value>()? {
                match v {
                    serde_json::Value::String(s) => out.push(item(s.trim())?),
                    serde_json::Value::Number(n) => return Err(number(&n.to_string())),
                    other => return Err(A::Error::custom(format!("{other} is not a quoted account id"))),
                }
            }
            Ok(out)
        }
        fn visit_u64<E: Error>(self, v: u64) -> Result<Vec<String>, E> {
            Err(number(&v.to_string()))
        }
        fn visit_i64<E: Error>(self, v: i64) -> Result<Vec<String>, E> {
            Err(number(&v.to_string()))
        }
    }
    fn number<E: Error>(n: &str) -> E {
        E::custom(format!(
            "{n} is a number; write account ids as quoted strings (\"{n}\"), since a number loses leading zeros"
        ))
    }
    fn item<E: Error>(s: &str) -> Result<String, E> {
        if s.is_empty() {
            Err(E::custom(
                "an empty account id; list 12-digit account ids separated by commas",
            ))
        } else {
            Ok(s.to_string())
        }
    }
    d.deserialize_any(Visitor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate() {
        let c = RawConfig::default().validate().unwrap();
        assert_eq!(c.listen.port(), DEFAULT_PORT);
        assert_eq!(c.refresh_interval, Duration::from_secs(300));
        assert_eq!(c.concurrency, 64);
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
    fn a_reload_keeps_the_running_value_of_every_restart_only_key() {
        let running = RawConfig::default().validate().unwrap();
        let new = RawConfig {
            listen: "127.0.0.1:9999".into(),
            events_queue_url: "https://sqs.us-east-1.amazonaws.com/111111111111/q".into(),
            log_level: LogLevel::Debug,
            concurrency: 8,
            refresh_interval: "10m".into(),
            ..RawConfig::default()
        }
        .validate()
        .unwrap();
        let (applied, waiting) = running.reloaded(new);
        assert_eq!(waiting, ["listen", "log_level", "events_queue_url"]);
        assert_eq!(applied.listen, running.listen);
        assert_eq!(applied.events_queue_url, None);
        assert_eq!(applied.log_level, LogLevel::Info);
        // Keys a reload may change apply.
        assert_eq!(applied.concurrency, 8);
        assert_eq!(applied.refresh_interval, Duration::from_secs(600));
        // Every restart-only key is named in the table, and nothing else waits.
        let unchanged = running.reloaded(running.clone());
        assert_eq!(unchanged, (running.clone(), vec![]));
        let restart_only: Vec<&str> = KEYS
            .iter()
            .filter(|k| k.on_sighup == OnSighup::Restart)
            .map(|k| k.name)
            .collect();
        assert_eq!(
            restart_only,
            [
                "listen",
                "log_format",
                "log_level",
                "events_queue_url",
                "web_config_file",
                "telemetry_path"
            ]
        );
    }

    #[test]
    fn to_toml_round_trips() {
        let c = RawConfig::default().validate().unwrap();
        let raw: RawConfig = toml::from_str(&c.to_toml()).unwrap();
        assert_eq!(raw.validate().unwrap(), c);
    }

    fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
        vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn load_env(vars: &[(&str, &str)]) -> Result<Loaded, ConfigError> {
        load_from(None, env(vars), &serde_json::json!({}))
    }

    #[cfg(unix)]
    #[test]
    fn the_environment_is_read_as_bytes_and_only_ours() {
        use std::os::unix::ffi::OsStringExt;
        let bytes = |b: &[u8]| OsString::from_vec(b.to_vec());
        // Anyone else's variable, name or value not UTF-8: not looked at.
        let loaded = load_from(
            None,
            [
                (bytes(b"DB_PASSWORD"), bytes(b"hunter2-\xff")),
                (bytes(b"X\xfe"), bytes(b"y")),
                (bytes(b"AWS_ROOT_EXPORTER_CONCURRENCY"), bytes(b"3")),
            ],
            &serde_json::json!({}),
        )
        .unwrap();
        assert_eq!(loaded.config.concurrency, 3);
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        // Ours, not UTF-8: an error naming the variable, without the value.
        let e = load_from(
            None,
            [(
                bytes(b"AWS_ROOT_EXPORTER_MEMBER_ROLE_EXTERNAL_ID"),
                bytes(b"secret-\xff"),
            )],
            &serde_json::json!({}),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("environment variable AWS_ROOT_EXPORTER_MEMBER_ROLE_EXTERNAL_ID is not valid UTF-8"),
            "{e}"
        );
        assert!(!e.contains("secret"), "{e}");
        // A name with our prefix that is not UTF-8 is ignored like any unknown one of ours.
        let loaded = load_from(
            None,
            [(bytes(b"AWS_ROOT_EXPORTER_\xff"), bytes(b"1"))],
            &serde_json::json!({}),
        )
        .unwrap();
        assert_eq!(loaded.warnings.len(), 1);
    }

    #[test]
    fn kubernetes_service_link_variables_are_ignored_with_one_warning() {
        // What Kubernetes injects for a Service named aws-root-exporter in the namespace.
        let loaded = load_env(&[
            ("AWS_ROOT_EXPORTER_SERVICE_HOST", "10.96.0.12"),
            ("AWS_ROOT_EXPORTER_SERVICE_PORT", "9312"),
            ("AWS_ROOT_EXPORTER_SERVICE_PORT_METRICS", "9312"),
            ("AWS_ROOT_EXPORTER_PORT", "tcp://10.96.0.12:9312"),
            ("AWS_ROOT_EXPORTER_PORT_9312_TCP", "tcp://10.96.0.12:9312"),
            ("AWS_ROOT_EXPORTER_PORT_9312_TCP_PROTO", "tcp"),
            ("AWS_ROOT_EXPORTER_PORT_9312_TCP_PORT", "9312"),
            ("AWS_ROOT_EXPORTER_PORT_9312_TCP_ADDR", "10.96.0.12"),
            ("AWS_ROOT_EXPORTER_REFRESH_INTERVAL", "10m"),
            ("PATH", "/usr/bin"),
        ])
        .expect("service-link variables do not stop the exporter");
        assert_eq!(loaded.config.refresh_interval, Duration::from_secs(600));
        assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
        let w = &loaded.warnings[0];
        assert!(!w.contains('\n'));
        for name in ["AWS_ROOT_EXPORTER_SERVICE_HOST", "AWS_ROOT_EXPORTER_PORT_9312_TCP_ADDR"] {
            assert!(w.contains(name), "{w}");
        }
        assert!(!w.contains("REFRESH_INTERVAL") && !w.contains("PATH"), "{w}");
    }

    #[test]
    fn environment_values_are_strings_for_every_key() {
        let loaded = load_env(&[
            ("AWS_ROOT_EXPORTER_CONCURRENCY", "32"),
            ("AWS_ROOT_EXPORTER_INCLUDE_ACCOUNTS", "012345678901,222222222222"),
            ("AWS_ROOT_EXPORTER_EXCLUDE_ACCOUNTS", "[\"333333333333\"]"),
            ("AWS_ROOT_EXPORTER_LOG_LEVEL", "debug"),
        ])
        .unwrap();
        let c = loaded.config;
        assert_eq!(c.concurrency, 32);
        assert_eq!(
            c.include_accounts,
            ["012345678901", "222222222222"],
            "leading zeros kept"
        );
        assert_eq!(c.exclude_accounts, ["333333333333"]);
        assert_eq!(c.log_level, LogLevel::Debug);
        assert!(loaded.warnings.is_empty());
    }

    #[test]
    fn bad_environment_values_name_the_variable_and_what_is_allowed() {
        let e = load_env(&[("AWS_ROOT_EXPORTER_CONCURRENCY", "lots")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("AWS_ROOT_EXPORTER_CONCURRENCY") && e.contains("from 1 to 256"),
            "{e}"
        );
        assert!(!e.contains("usize") && !e.contains('\n'), "{e}");
        let e = load_env(&[("AWS_ROOT_EXPORTER_INCLUDE_ACCOUNTS", "222222222222,,333333333333")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("empty account id") && e.contains("include_accounts"), "{e}");
        let e = load_env(&[("AWS_ROOT_EXPORTER_CHECKS", "deep")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"summary\" or \"full\"") && !e.contains("variant"), "{e}");
    }

    #[test]
    fn numeric_account_ids_are_refused_not_padded() {
        let e = load_from(None, env(&[]), &serde_json::json!({"include_accounts": [123]}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("123 is a number") && !e.contains("untagged"), "{e}");
    }

    #[test]
    fn the_key_table_lists_exactly_the_configuration_keys() {
        // `keys!` derives RawConfig, Config, KEYS and the flags from one list; what it derives
        // must still agree where serde, clap and the TOML printer spell them.
        let names: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
        let fields: Vec<String> = RawConfig::default().values().keys().cloned().collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(sorted, fields, "RawConfig's fields");
        let config = RawConfig::default().validate().unwrap();
        let printed: Vec<String> = config
            .to_toml()
            .lines()
            .filter_map(|l| l.split_once(" = ").map(|(k, _)| k.to_string()))
            .collect();
        assert_eq!(printed, names, "check-config prints every key, in the table's order");
        // Flag spellings equal file spellings, but for the Prometheus habits declared.
        for key in &KEYS {
            let declared = [
                ("web_config_file", "web.config.file"),
                ("telemetry_path", "web.telemetry-path"),
            ];
            let expected = declared
                .iter()
                .find(|(name, _)| *name == key.name)
                .map_or(key.name.replace('_', "-"), |(_, flag)| flag.to_string());
            assert_eq!(key.long, expected, "{}", key.name);
            assert_eq!(key.env(), format!("AWS_ROOT_EXPORTER_{}", key.name.to_uppercase()));
        }
    }

    /// The flags clap builds for `O`, by id.
    fn flags_of<O: Offered>() -> Vec<String> {
        use clap::Args;
        let command = KeyFlags::<O>::augment_args(clap::Command::new("c"));
        command.get_arguments().map(|a| a.get_id().to_string()).collect()
    }

    #[test]
    fn each_command_offers_the_flags_of_its_groups_and_they_reach_the_flag_layer() {
        let in_group = |groups: &[Commands]| -> Vec<String> {
            let mut keys: Vec<String> = KEYS
                .iter()
                .filter(|k| groups.contains(&k.commands))
                .map(|k| k.name.to_string())
                .collect();
            keys.sort();
            keys
        };
        let sorted = |mut v: Vec<String>| {
            v.sort();
            v
        };
        assert_eq!(
            sorted(flags_of::<EveryKey>()),
            in_group(&[Commands::Listen, Commands::ServeOnly, Commands::Refresh])
        );
        assert_eq!(sorted(flags_of::<RefreshKeys>()), in_group(&[Commands::Refresh]));
        assert_eq!(sorted(flags_of::<ListenKeys>()), in_group(&[Commands::Listen]));
        // Every flag's value lands on its key, with the type the file would give it.
        use clap::{Args, FromArgMatches};
        let command = KeyFlags::<EveryKey>::augment_args(clap::Command::new("c").no_binary_name(true));
        let matches = command
            .try_get_matches_from([
                "--web.listen-address",
                "127.0.0.1:1",
                "--concurrency",
                "7",
                "--include-accounts",
                "111111111111,222222222222",
                "--access",
                "assume-root",
                "--web.telemetry-path",
                "/m",
            ])
            .unwrap();
        let flags = KeyFlags::<EveryKey>::from_arg_matches(&matches).unwrap();
        let config = load_from(None, env(&[]), &flags).unwrap().config;
        assert_eq!(config.listen.port(), 1);
        assert_eq!(config.concurrency, 7);
        assert_eq!(config.include_accounts, ["111111111111", "222222222222"]);
        assert_eq!(config.access, AccessMode::AssumeRoot);
        assert_eq!(config.telemetry_path, "/m");
        assert_eq!(flags.given("log_level"), None, "flags not given stay out of the layer");
    }

    #[test]
    fn enum_flags_take_exactly_the_file_spellings() {
        for key in &KEYS {
            let arg = key.arg();
            for value in arg.get_possible_values() {
                let name = value.get_name();
                let raw: RawConfig = serde_json::from_value(serde_json::json!({ key.name: name }))
                    .unwrap_or_else(|e| panic!("{} = {name:?} in the file: {e}", key.name));
                assert_eq!(raw.values()[key.name], name, "{}", key.name);
            }
        }
        let access = key("access").unwrap().arg();
        let names: Vec<String> = access
            .get_possible_values()
            .iter()
            .map(|v| v.get_name().to_string())
            .collect();
        assert_eq!(names, ["auto", "assume_root", "role"]);
    }

    #[test]
    fn organizations_may_override_the_keys_of_issue_21() {
        let per_organization: Vec<&str> = KEYS.iter().filter(|k| k.per_organization).map(|k| k.name).collect();
        let mut expected = [
            "access",
            "member_role_name",
            "member_role_external_id",
            "management_account_role_arn",
            "events_queue_url",
            "include_accounts",
            "exclude_accounts",
            "account_tags",
            "checks",
        ];
        expected.sort();
        let mut per_organization = per_organization;
        per_organization.sort();
        assert_eq!(per_organization, expected);
    }

    #[test]
    fn short_sessions_are_warned_about() {
        let loaded = load_env(&[
            ("AWS_ROOT_EXPORTER_SESSION_DURATION", "30s"),
            ("AWS_ROOT_EXPORTER_ACCOUNT_TIMEOUT", "60s"),
        ])
        .unwrap();
        assert!(
            loaded.warnings.iter().any(|w| w.contains("session_duration")),
            "{:?}",
            loaded.warnings
        );
    }

    #[test]
    fn web_config_file_is_checked_at_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web.yml");
        let var = "AWS_ROOT_EXPORTER_WEB_CONFIG_FILE";
        let e = load_env(&[(var, path.to_str().unwrap())]).unwrap_err().to_string();
        assert!(
            e.starts_with("`web_config_file`: web config file ") && e.contains("cannot read it") && !e.contains('\n'),
            "{e}"
        );
        std::fs::write(
            &path,
            "tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n  min_version: TLS10\n",
        )
        .unwrap();
        let e = load_env(&[(var, path.to_str().unwrap())]).unwrap_err().to_string();
        assert!(
            e.contains("`tls_server_config.min_version`") && e.contains("TLS10"),
            "{e}"
        );
        std::fs::write(
            &path,
            "http_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n",
        )
        .unwrap();
        let c = load_env(&[(var, path.to_str().unwrap())]).unwrap().config;
        assert_eq!(c.web_config_file.as_deref(), Some(path.as_path()));
        assert!(c.to_toml().contains("web_config_file = "), "{}", c.to_toml());
        assert_eq!(load_env(&[(var, " ")]).unwrap().config.web_config_file, None);
    }

    #[test]
    fn listen_takes_host_names() {
        let c = load_env(&[("AWS_ROOT_EXPORTER_LISTEN", "localhost:9400")])
            .unwrap()
            .config;
        assert!(c.listen.ip().is_loopback() && c.listen.port() == 9400, "{}", c.listen);
        for bad in ["localhost", ":9312", "localhost:http"] {
            let e = load_env(&[("AWS_ROOT_EXPORTER_LISTEN", bad)]).unwrap_err().to_string();
            assert!(
                e.contains("`listen`") && e.contains("host name with port"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn telemetry_paths_are_absolute_and_do_not_shadow_other_routes() {
        for good in ["/metrics", "/probe/metrics", "/m"] {
            assert!(telemetry_path_ok(good), "{good}");
        }
        for bad in [
            "",
            "/",
            "metrics",
            "/healthz",
            "/readyz",
            "/-/ready",
            "/m etrics",
            "/m?x",
            "/\u{7}",
        ] {
            assert!(!telemetry_path_ok(bad), "{bad:?}");
        }
        let err = RawConfig {
            telemetry_path: "/-/healthy".into(),
            ..RawConfig::default()
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(err.contains("telemetry_path") && err.contains("/-/healthy"), "{err}");
    }
}
