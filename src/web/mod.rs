//! The web configuration (`web_config_file`, `docs/web-config.md`): TLS (with client
//! certificates), HTTP basic authentication with bcrypt hashes, and extra response headers, in
//! the file format of the Prometheus exporter-toolkit, so that one file serves this exporter and
//! the Go ones alike.
//!
//! [`WebConfig::load`] reads and checks the file and every file it names, and builds the rustls
//! server configuration; [`LiveWebConfig`] has a watcher thread re-read them when one of them
//! changes, off the request path (requests and new connections only take the configuration last
//! published), and never lets a change weaken the protections on its own; [`guard`] is the
//! middleware for basic auth and headers.

mod auth;
mod file;
mod live;
pub mod read;
pub mod tls;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

pub use auth::{BasicAuth, MAX_BCRYPT_COST, Verdict, is_bcrypt_hash};
pub use live::{LiveWebConfig, POLL_INTERVAL};
pub use tls::{ClientAuth, TlsVersion};

use read::{ReadError, Stamp};

use tls::{BuildError, Curve, Suite, TlsSettings, VersionProblem};

/// Paths served without basic authentication, for probes (kubelet `httpGet` cannot send
/// credentials without putting them in the pod spec). TLS and client certificates still apply.
pub const UNAUTHENTICATED_PATHS: [&str; 2] = ["/healthz", "/readyz"];

/// The response headers exporter-toolkit lets a file set, and the values it allows (none listed:
/// any value).
const HEADERS: [(&str, &[&str]); 5] = [
    ("Strict-Transport-Security", &[]),
    ("X-Content-Type-Options", &["nosniff"]),
    ("X-Frame-Options", &["deny", "sameorigin"]),
    ("X-XSS-Protection", &[]),
    ("Content-Security-Policy", &[]),
];

/// A checked web configuration.
pub struct WebConfig {
    /// The file it came from.
    pub path: PathBuf,
    /// The TLS server configuration; `None`: plain HTTP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// How client certificates are asked for (`NoClientCert` without TLS).
    pub client_auth: ClientAuth,
    /// User name -> bcrypt hash; empty: no basic authentication.
    pub users: BTreeMap<String, String>,
    /// Added to every response.
    pub headers: HeaderMap,
    /// The lowest TLS version accepted (`None` without TLS).
    pub min_version: Option<TlsVersion>,
    /// What a check for an unknown user name is verified against: a hash of the median cost of
    /// the users' hashes, so that an unknown user costs what a known one does.
    dummy_hash: String,
    /// Whether the users' hashes have different costs (then timing can tell users apart).
    costs_differ: bool,
    /// Whether client certificates are verified against the system's roots (a verifying
    /// `client_auth_type` without `client_ca_file`).
    system_roots: bool,
    /// SHA-256 over every file read, to tell two reads of the same content.
    digest: [u8; 32],
    /// The files read, as they were read.
    watched: Vec<Watched>,
}

impl fmt::Debug for WebConfig {
    /// Without the hashes or key material.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebConfig")
            .field("path", &self.path)
            .field("tls", &self.tls.is_some())
            .field("client_auth", &self.client_auth)
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .field("headers", &self.headers)
            .field("min_version", &self.min_version)
            .finish()
    }
}

/// Why a web configuration file cannot be used: one line naming the file, the key and what is
/// allowed.
#[derive(Debug)]
pub struct WebConfigError {
    pub path: PathBuf,
    pub problem: Problem,
    /// The files read before the problem was found, for reloads.
    watched: Vec<Watched>,
}

impl fmt::Display for WebConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "web config file {}: {}", self.path.display(), self.problem)
    }
}

impl std::error::Error for WebConfigError {}

#[derive(Debug, thiserror::Error)]
pub enum Problem {
    /// The web configuration file itself cannot be read.
    #[error("cannot read it: {0}")]
    Read(ReadError),
    /// A file it names cannot be read.
    #[error("`{key}`: cannot read {}: {error}", file.display())]
    ReadNamed {
        key: &'static str,
        file: PathBuf,
        error: ReadError,
    },
    /// Not YAML of the expected shape (unknown key, wrong type), with its position; never with
    /// a value of the file.
    #[error("{0}")]
    Syntax(String),
    /// A value that is not allowed.
    #[error("`{key}`: {message}")]
    Invalid { key: String, message: String },
    /// Something exporter-toolkit offers and this exporter does not.
    #[error("`{key}`: {message} (not supported by this exporter; see docs/web-config.md)")]
    Unsupported { key: String, message: String },
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

fn unsupported(key: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem::Unsupported {
        key: key.into(),
        message: message.into(),
    }
}

/// A file as it was when read: enough to tell that it changed (replaced, rewritten, removed or
/// created), without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Watched {
    file: PathBuf,
    stamp: Option<Stamp>,
}

impl Watched {
    fn changed(&self) -> bool {
        Stamp::now(&self.file) != self.stamp
    }
}

/// Reads files (see [`read`]), notes them for reloads and digests what it read.
struct Reader {
    dir: PathBuf,
    watched: Vec<Watched>,
    digest: aws_lc_rs::digest::Context,
}

impl Reader {
    fn new(dir: PathBuf) -> Reader {
        Reader {
            dir,
            watched: Vec::new(),
            digest: aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256),
        }
    }

    /// The file at `file`, noted (also when it cannot be read, so that its appearance is seen).
    fn read_file(&mut self, file: &Path) -> Result<Vec<u8>, ReadError> {
        match read::read(file) {
            Ok((bytes, stamp)) => {
                self.watched.push(Watched {
                    file: file.to_path_buf(),
                    stamp: Some(stamp),
                });
                self.digest.update(&(bytes.len() as u64).to_be_bytes());
                self.digest.update(&bytes);
                Ok(bytes)
            }
            Err(e) => {
                // A file that kept changing while read is read again at the next poll even if it
                // has settled by then: no stamp matches "unknown".
                let stamp = match e {
                    ReadError::Unsettled => None,
                    _ => Stamp::now(file),
                };
                self.watched.push(Watched {
                    file: file.to_path_buf(),
                    stamp,
                });
                Err(e)
            }
        }
    }

    /// A file named by `key`, relative to the web configuration file's directory.
    fn read(&mut self, key: &'static str, name: &str) -> Result<Vec<u8>, Problem> {
        let file = self.dir.join(name);
        self.read_file(&file)
            .map_err(|error| Problem::ReadNamed { key, file, error })
    }
}

/// `section.name` for an error message, when the name is plain (a user name, a header name);
/// otherwise the section alone: a map key can be anything pasted there.
fn key_path(section: &str, name: &str) -> String {
    let plain = !name.is_empty()
        && name.len() <= 32
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@' | '+'));
    match plain {
        true => format!("{section}.{name}"),
        false => format!("{section} (an entry whose name is not shown)"),
    }
}

/// A value of the file for an error message: shown only when it is short and plain (a name, a
/// version, a header value), never when it could be a password, a hash or key material.
fn shown(value: &str) -> String {
    let plain = value.len() <= 40
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ' ' | '=' | ';'));
    if plain && !value.is_empty() {
        format!("{value:?}")
    } else {
        "the value (not shown)".to_string()
    }
}

impl WebConfig {
    /// Read and check the file at `path` and every file it names (certificates, key, CA), and
    /// build the TLS configuration. Paths inside are relative to the file's directory.
    pub fn load(path: &Path) -> Result<WebConfig, WebConfigError> {
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut reader = Reader::new(dir);
        match load(path, &mut reader) {
            Ok(mut config) => {
                config.watched = reader.watched;
                config.digest.copy_from_slice(reader.digest.finish().as_ref());
                Ok(config)
            }
            Err(problem) => Err(WebConfigError {
                path: path.to_path_buf(),
                problem,
                watched: reader.watched,
            }),
        }
    }

    /// Whether clients must present a certificate to get past the TLS handshake.
    pub fn client_cert_required(&self) -> bool {
        self.tls.is_some() && self.client_auth.mandatory()
    }

    /// What the operator should hear about this configuration, one line each.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.system_roots {
            warnings.push(format!(
                "tls_server_config.client_auth_type {} without client_ca_file verifies client certificates against the system's root certificates (as exporter-toolkit does): any client with a certificate from a public CA passes; set client_ca_file for mutual TLS",
                self.client_auth.as_str()
            ));
        }
        if self.costs_differ {
            warnings.push(
                "basic_auth_users: the bcrypt hashes have different costs, so the time a wrong password takes tells which user it was for; give every user the same cost (htpasswd -nBC 10 USER)"
                    .to_string(),
            );
        }
        warnings
    }

    /// One line for the log: what is on.
    pub fn summary(&self) -> String {
        format!(
            "TLS {}, client certificates {}, basic auth {}, {} extra response header(s)",
            if self.tls.is_some() { "on" } else { "off" },
            self.client_auth.as_str(),
            match self.users.len() {
                0 => "off".to_string(),
                n => format!("on ({n} user(s))"),
            },
            self.headers.len()
        )
    }
}

fn load(path: &Path, reader: &mut Reader) -> Result<WebConfig, Problem> {
    let bytes = reader.read_file(path).map_err(Problem::Read)?;
    let text = String::from_utf8(bytes).map_err(|e| {
        Problem::Syntax(format!(
            "not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ))
    })?;
    let raw = file::parse(&text).map_err(Problem::Syntax)?;
    if raw.rate_limit.is_some() {
        return Err(unsupported("rate_limit", "no request rate limiter; remove the section"));
    }
    let mut headers = HeaderMap::new();
    if let Some(http) = raw.http_server_config {
        // `http2` is accepted for compatibility: the server speaks HTTP/1.1 only (its TLS offers
        // http/1.1 by ALPN), whatever it says.
        for (name, value) in http.headers.unwrap_or_default() {
            let key = key_path("http_server_config.headers", &name);
            let Some((canonical, values)) = HEADERS.iter().find(|(h, _)| h.eq_ignore_ascii_case(&name)) else {
                return Err(invalid(
                    key,
                    format!(
                        "this header cannot be set; allowed: {}",
                        HEADERS.iter().map(|(h, _)| *h).collect::<Vec<_>>().join(", ")
                    ),
                ));
            };
            let value = value.unwrap_or_default();
            if value.trim().is_empty() {
                continue; // blank: unset, as in exporter-toolkit
            }
            if !values.is_empty() && !values.iter().any(|v| v.eq_ignore_ascii_case(value.trim())) {
                return Err(invalid(
                    key,
                    format!("{} is not allowed; expected {}", shown(&value), values.join(" or ")),
                ));
            }
            let value = HeaderValue::from_str(value.trim())
                .map_err(|_| invalid(&key, "not a valid header value (control characters)"))?;
            headers.insert(HeaderName::from_static(lower(canonical)), value);
        }
    }
    let mut users = BTreeMap::new();
    for (user, hash) in raw.basic_auth_users.unwrap_or_default() {
        let key = key_path("basic_auth_users", &user);
        if user.is_empty() || user.contains(':') || user.chars().any(char::is_control) {
            return Err(invalid(
                key,
                "user names must be non-empty, without ':' or control characters (basic auth cannot send them)",
            ));
        }
        // The hash is not shown: it is no password, but it should not travel further.
        let hash = hash.unwrap_or_default();
        if !is_bcrypt_hash(hash.trim()) {
            return Err(invalid(
                key,
                "not a bcrypt hash (expected 60 characters like $2y$10$..., as `htpasswd -nBC 10 USER` prints after the colon)",
            ));
        }
        let cost = auth::cost(hash.trim()).unwrap_or(0);
        if cost > MAX_BCRYPT_COST {
            return Err(invalid(
                key,
                format!(
                    "bcrypt cost {cost} is above {MAX_BCRYPT_COST}, the most this exporter accepts (each step doubles the time: cost 10 takes about 70 ms per check, cost {MAX_BCRYPT_COST} about 1.1 s); make the hash with `htpasswd -nBC 10 USER`"
                ),
            ));
        }
        users.insert(user, hash.trim().to_string());
    }
    let (dummy_hash, costs_differ) = auth::dummy_hash(users.values().map(String::as_str));
    let ca_set_any = raw.tls_server_config.as_ref().is_some_and(|t| {
        [&t.client_ca, &t.client_ca_file]
            .into_iter()
            .any(|v| v.as_deref().is_some_and(|s| !s.trim().is_empty()))
    });
    let (tls, client_auth, min_version) = match raw.tls_server_config {
        Some(raw) => match tls_settings(raw, reader)? {
            Some(settings) => {
                let client_auth = settings.client_auth;
                let min_version = settings.min_version;
                let config = tls::server_config(settings).map_err(|e| match e {
                    BuildError::Versions(e) => invalid("tls_server_config.min_version", e.to_string()),
                    BuildError::ClientCa(e) => invalid(
                        "tls_server_config.client_ca_file",
                        format!("not a usable CA certificate: {e}"),
                    ),
                    BuildError::ClientCaVerifier(e) => invalid("tls_server_config.client_ca_file", e),
                    BuildError::Key(e) => invalid(
                        "tls_server_config.key_file",
                        format!("cannot be used with the certificate: {e}"),
                    ),
                })?;
                (Some(Arc::new(config)), client_auth, Some(min_version))
            }
            None => (None, ClientAuth::None, None),
        },
        None => (None, ClientAuth::None, None),
    };
    Ok(WebConfig {
        path: path.to_path_buf(),
        tls,
        client_auth,
        users,
        headers,
        min_version,
        dummy_hash,
        costs_differ,
        system_roots: client_auth.verifies() && !ca_set_any,
        digest: [0; 32],
        watched: Vec::new(),
    })
}

fn lower(name: &'static str) -> &'static str {
    match name {
        "Strict-Transport-Security" => "strict-transport-security",
        "X-Content-Type-Options" => "x-content-type-options",
        "X-Frame-Options" => "x-frame-options",
        "X-XSS-Protection" => "x-xss-protection",
        _ => "content-security-policy",
    }
}

/// Check `tls_server_config` and read the files it names. `None`: no certificate, key, CA or
/// client auth type set, so no TLS (as in exporter-toolkit).
fn tls_settings(raw: file::RawTls, reader: &mut Reader) -> Result<Option<TlsSettings>, Problem> {
    let set = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
    let enabled = [
        &raw.cert,
        &raw.key,
        &raw.cert_file,
        &raw.key_file,
        &raw.client_ca,
        &raw.client_ca_file,
        &raw.client_auth_type,
    ]
    .into_iter()
    .any(set);
    if !enabled {
        let stray = [
            ("min_version", raw.min_version.is_some()),
            ("max_version", raw.max_version.is_some()),
            (
                "cipher_suites",
                raw.cipher_suites.as_ref().is_some_and(|v| !v.is_empty()),
            ),
            (
                "curve_preferences",
                raw.curve_preferences.as_ref().is_some_and(|v| !v.is_empty()),
            ),
            ("client_allowed_sans", raw.client_allowed_sans.is_some()),
            ("prefer_server_cipher_suites", raw.prefer_server_cipher_suites.is_some()),
        ]
        .into_iter()
        .find(|(_, on)| *on);
        return match stray {
            // exporter-toolkit silently serves plain HTTP here; a file that looks like TLS
            // but is not would be a trap.
            Some((name, _)) => Err(invalid(
                format!("tls_server_config.{name}"),
                "TLS settings without a certificate: set cert_file and key_file to turn TLS on, or remove them",
            )),
            None => Ok(None),
        };
    }
    if raw.client_allowed_sans.is_some() {
        return Err(unsupported(
            "tls_server_config.client_allowed_sans",
            "client certificate SANs are not matched; use a client CA that signs only the allowed clients",
        ));
    }
    let client_auth_name = raw.client_auth_type.as_deref().unwrap_or("").trim();
    let client_auth = ClientAuth::parse(client_auth_name).ok_or_else(|| {
        invalid(
            "tls_server_config.client_auth_type",
            format!("{} is not one of {}", shown(client_auth_name), ClientAuth::ALLOWED),
        )
    })?;
    let version = |key: &'static str, value: &Option<String>, default: TlsVersion| match value.as_deref().map(str::trim)
    {
        None | Some("") => Ok(default),
        Some(name) => TlsVersion::parse(name).map_err(|p| match p {
            VersionProblem::Unsupported => unsupported(
                format!("tls_server_config.{key}"),
                format!("{name} (rustls speaks TLS 1.2 and 1.3 only); use TLS12 or TLS13"),
            ),
            VersionProblem::Unknown => invalid(
                format!("tls_server_config.{key}"),
                format!("{} is not a TLS version; expected TLS12 or TLS13", shown(name)),
            ),
        }),
    };
    let min_version = version("min_version", &raw.min_version, TlsVersion::Tls12)?;
    let max_version = version("max_version", &raw.max_version, TlsVersion::Tls13)?;
    if min_version > max_version {
        return Err(invalid(
            "tls_server_config.min_version",
            format!("{min_version} is above max_version {max_version}"),
        ));
    }
    let mut tls12_suites = Vec::new();
    let suites_listed = raw.cipher_suites.as_ref().is_some_and(|v| !v.is_empty());
    for name in raw.cipher_suites.unwrap_or_default() {
        let key = "tls_server_config.cipher_suites";
        match Suite::parse(name.trim()) {
            Suite::Tls12(s) => {
                if !tls12_suites.contains(&s) {
                    tls12_suites.push(s);
                }
            }
            Suite::Tls13 => {}
            Suite::Unsupported => {
                return Err(unsupported(
                    key,
                    format!(
                        "{name} (rustls has no CBC, RSA key exchange, 3DES or RC4 suites); TLS 1.2 suites available: {}",
                        Suite::allowed()
                    ),
                ));
            }
            Suite::Unknown => {
                return Err(invalid(
                    key,
                    format!(
                        "{} is not a cipher suite name; TLS 1.2 suites available: {}",
                        shown(&name),
                        Suite::allowed()
                    ),
                ));
            }
        }
    }
    if suites_listed && tls12_suites.is_empty() && min_version == TlsVersion::Tls12 {
        return Err(invalid(
            "tls_server_config.cipher_suites",
            "lists TLS 1.3 suites only (which are not configurable, as in Go), so TLS 1.2 clients would find no suite: add a TLS 1.2 suite or set min_version: TLS13",
        ));
    }
    let mut kx_groups: Vec<&'static dyn rustls::crypto::SupportedKxGroup> = Vec::new();
    for name in raw.curve_preferences.unwrap_or_default() {
        let key = "tls_server_config.curve_preferences";
        match Curve::parse(name.trim()) {
            Curve::Group(g) => {
                if !kx_groups.iter().any(|k| k.name() == g.name()) {
                    kx_groups.push(g);
                }
            }
            Curve::Unsupported => {
                return Err(unsupported(
                    key,
                    format!("{name} (rustls has no P-521 key exchange); use {}", Curve::ALLOWED),
                ));
            }
            Curve::Unknown => {
                return Err(invalid(
                    key,
                    format!("{} is not a curve name; expected {}", shown(&name), Curve::ALLOWED),
                ));
            }
        }
    }
    // What must be there, before reading anything.
    if !set(&raw.cert) && !set(&raw.cert_file) {
        return Err(invalid(
            "tls_server_config.cert_file",
            "missing: TLS needs a certificate (cert_file, or cert inline)",
        ));
    }
    if !set(&raw.key) && !set(&raw.key_file) {
        return Err(invalid(
            "tls_server_config.key_file",
            "missing: TLS needs the certificate's private key (key_file, or key inline)",
        ));
    }
    let ca_set = set(&raw.client_ca) || set(&raw.client_ca_file);
    if ca_set && client_auth == ClientAuth::None {
        return Err(invalid(
            "tls_server_config.client_auth_type",
            "client_ca_file is set but client_auth_type is NoClientCert: set RequireAndVerifyClientCert for mutual TLS, or remove client_ca_file",
        ));
    }
    // A verifying type without a client CA verifies against the system's roots, as in Go
    // (`WebConfig::warnings` says so).
    let (key_name, pem) = pem_source(reader, "cert", &raw.cert, "cert_file", &raw.cert_file)?;
    let certs = parse_certs(key_name, &pem, "certificate")?;
    let (key_name, pem) = pem_source(reader, "key", &raw.key, "key_file", &raw.key_file)?;
    let key = parse_key(key_name, &pem)?;
    let client_cas = if ca_set {
        let (key_name, pem) = pem_source(
            reader,
            "client_ca",
            &raw.client_ca,
            "client_ca_file",
            &raw.client_ca_file,
        )?;
        parse_certs(key_name, &pem, "CA certificate")?
    } else {
        Vec::new()
    };
    Ok(Some(TlsSettings {
        certs,
        key,
        client_auth,
        client_cas,
        min_version,
        max_version,
        tls12_suites,
        kx_groups,
        prefer_server_cipher_suites: raw.prefer_server_cipher_suites.unwrap_or(true),
    }))
}

/// The PEM of `inline` or of the file `file_key` names (exactly one is set), with the key it came
/// from.
fn pem_source(
    reader: &mut Reader,
    inline_key: &'static str,
    inline: &Option<String>,
    file_key: &'static str,
    file: &Option<String>,
) -> Result<(String, Vec<u8>), Problem> {
    let inline = inline.as_deref().filter(|s| !s.trim().is_empty());
    let file = file.as_deref().map(str::trim).filter(|s| !s.is_empty());
    match (inline, file) {
        (Some(_), Some(_)) => Err(invalid(
            format!("tls_server_config.{inline_key}"),
            format!("set {file_key} or {inline_key}, not both"),
        )),
        (Some(pem), None) => Ok((format!("tls_server_config.{inline_key}"), pem.as_bytes().to_vec())),
        (None, Some(name)) => {
            let full_key = match file_key {
                "cert_file" => "tls_server_config.cert_file",
                "key_file" => "tls_server_config.key_file",
                _ => "tls_server_config.client_ca_file",
            };
            let bytes = reader.read(full_key, name)?;
            Ok((format!("{full_key} ({})", reader.dir.join(name).display()), bytes))
        }
        (None, None) => Err(invalid(
            format!("tls_server_config.{file_key}"),
            format!("missing: set {file_key} or {inline_key}"),
        )),
    }
}

/// The certificates; errors never quote the file's content (rustls's PEM errors can hold a line
/// of it).
fn parse_certs(key: String, pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, Problem> {
    use rustls::pki_types::pem::Error;
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(pem)
            .collect::<Result<_, _>>()
            .map_err(|e| {
                let message = match e {
                    Error::MissingSectionEnd { .. } => "not PEM: a section has no END line",
                    Error::IllegalSectionStart { .. } => "not PEM: a malformed BEGIN line",
                    Error::Base64Decode(_) => "not PEM: a section is not valid base64",
                    _ => "not readable PEM",
                };
                invalid(&key, message)
            })?;
    if certs.is_empty() {
        return Err(invalid(
            key,
            format!("no {what} (PEM, -----BEGIN CERTIFICATE-----) in it"),
        ));
    }
    Ok(certs)
}

/// The private key; errors never quote the file's content.
fn parse_key(key: String, pem: &[u8]) -> Result<PrivateKeyDer<'static>, Problem> {
    use rustls::pki_types::pem::Error;
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| {
        let message = match e {
            Error::NoItemsFound if pem.windows(9).any(|w| w == b"ENCRYPTED") => {
                "an encrypted private key; decrypt it (e.g. `openssl pkey -in KEY -out KEY.plain`)"
            }
            Error::NoItemsFound => "no private key (PEM: PKCS#8, PKCS#1 RSA or SEC1 EC) in it",
            _ => "not a readable PEM private key",
        };
        invalid(key, message)
    })
}

/// Marks a request to an [`UNAUTHENTICATED_PATHS`] path that came without valid credentials
/// while basic auth is on: its handler answers without details.
#[derive(Debug, Clone, Copy)]
pub struct Unauthenticated;

/// Middleware: basic authentication (except for [`UNAUTHENTICATED_PATHS`]) and the configured
/// response headers, from the configuration in force for each request (the last one the watcher
/// published: no file is touched here).
pub async fn guard(State(live): State<Arc<LiveWebConfig>>, mut request: Request, next: Next) -> Response {
    let config = live.current();
    let mut response = if config.users.is_empty() {
        next.run(request).await
    } else if UNAUTHENTICATED_PATHS.contains(&request.uri().path()) {
        // Probes send no credentials (and pay no bcrypt); a person who does gets the details.
        let authorization = request.headers().get(header::AUTHORIZATION);
        let allowed = match authorization {
            None => false,
            Some(_) => live.auth().check(&config, authorization).await == Verdict::Allowed,
        };
        if !allowed {
            request.extensions_mut().insert(Unauthenticated);
        }
        next.run(request).await
    } else {
        match live
            .auth()
            .check(&config, request.headers().get(header::AUTHORIZATION))
            .await
        {
            Verdict::Allowed => next.run(request).await,
            Verdict::Denied => (
                StatusCode::UNAUTHORIZED,
                [(
                    header::WWW_AUTHENTICATE,
                    "Basic realm=\"aws-root-exporter\", charset=\"UTF-8\"",
                )],
                "unauthorized\n",
            )
                .into_response(),
            Verdict::Busy => (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, "1")],
                "too many password checks waiting; retry later\n",
            )
                .into_response(),
        }
    };
    for (name, value) in &config.headers {
        response.headers_mut().insert(name, value.clone());
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A web config file with `text` in a fresh directory (kept alive by the returned guard).
    fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web.yml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    fn error(text: &str) -> WebConfigError {
        let (_dir, path) = file(text);
        let e = WebConfig::load(&path).expect_err(text);
        let line = e.to_string();
        assert!(!line.contains('\n'), "one line: {line}");
        assert!(
            line.starts_with(&format!("web config file {}: ", path.display())),
            "{line}"
        );
        e
    }

    /// bcrypt of "right-password", cost 10.
    const HASH: &str = "$2b$10$pQc88oiAvVu09YRYZtgjy.t5X19LsZ/qRm4blFxVrBfLkD4FPhvDS";

    #[test]
    fn plain_files_load() {
        let (_dir, path) = file(&format!(
            "basic_auth_users:\n  alice: {HASH}\nhttp_server_config:\n  http2: true\n  headers:\n    X-Frame-Options: deny\n    Content-Security-Policy: \"\"\n"
        ));
        let c = WebConfig::load(&path).unwrap();
        assert!(c.tls.is_none());
        assert_eq!(c.users.keys().collect::<Vec<_>>(), ["alice"]);
        assert_eq!(c.headers.len(), 1, "a blank header is unset");
        assert_eq!(c.headers["x-frame-options"], "deny");
        assert!(!format!("{c:?}").contains(HASH), "Debug shows no hash");
        for empty in ["", "tls_server_config:\n", "tls_server_config: {}\n"] {
            let (_dir, path) = file(empty);
            assert!(WebConfig::load(&path).unwrap().tls.is_none(), "{empty:?}");
        }
    }

    #[test]
    fn unknown_keys_name_the_key() {
        let e = error("tls_server_config:\n  cert_file: a.crt\n  keyfile: a.key\n");
        assert!(matches!(e.problem, Problem::Syntax(_)), "{e}");
        assert!(e.to_string().contains("keyfile"), "{e}");
    }

    #[test]
    fn a_bad_client_auth_type_lists_the_allowed_ones() {
        let e = error("tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n  client_auth_type: Mutual\n");
        let line = e.to_string();
        assert!(
            line.contains("`tls_server_config.client_auth_type`")
                && line.contains("\"Mutual\"")
                && line.contains("RequireAndVerifyClientCert"),
            "{line}"
        );
    }

    #[test]
    fn old_tls_versions_are_not_supported() {
        for key in ["min_version", "max_version"] {
            for version in ["TLS10", "TLS11"] {
                let e = error(&format!(
                    "tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n  {key}: {version}\n"
                ));
                assert!(matches!(e.problem, Problem::Unsupported { .. }), "{e}");
                let line = e.to_string();
                assert!(
                    line.contains(&format!("`tls_server_config.{key}`"))
                        && line.contains("TLS12 or TLS13")
                        && line.contains("not supported"),
                    "{line}"
                );
            }
        }
        let e = error("tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n  min_version: TLS14\n");
        assert!(matches!(e.problem, Problem::Invalid { .. }), "{e}");
        let e = error(
            "tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n  min_version: TLS13\n  max_version: TLS12\n",
        );
        assert!(e.to_string().contains("above max_version"), "{e}");
    }

    #[test]
    fn verifying_without_a_ca_uses_the_system_roots_and_a_ca_needs_client_auth() {
        let dir = tempfile::tempdir().unwrap();
        self_signed(dir.path());
        for auth in ["RequireAndVerifyClientCert", "VerifyClientCertIfGiven"] {
            let path = dir.path().join("web.yml");
            std::fs::write(
                &path,
                format!(
                    "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: {auth}\n"
                ),
            )
            .unwrap();
            let c = WebConfig::load(&path).unwrap_or_else(|e| panic!("{auth}: {e}"));
            let warnings = c.warnings();
            assert!(
                warnings.len() == 1 && warnings[0].contains("system's root certificates"),
                "{warnings:?}"
            );
        }
        let e = error("tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n  client_ca_file: ca.crt\n");
        assert!(e.to_string().contains("NoClientCert"), "{e}");
    }

    #[test]
    fn passwords_must_be_bcrypt_hashes_and_are_not_shown() {
        let e = error("basic_auth_users:\n  alice: plain-secret\n");
        let line = e.to_string();
        assert!(
            line.contains("`basic_auth_users.alice`") && line.contains("bcrypt"),
            "{line}"
        );
        assert!(!line.contains("plain-secret"), "{line}");
        let e = error("basic_auth_users:\n  alice:\n");
        assert!(e.to_string().contains("bcrypt"), "{e}");
        let e = error(&format!("basic_auth_users:\n  \"al:ice\": {HASH}\n"));
        assert!(e.to_string().contains("':'"), "{e}");
    }

    #[test]
    fn a_missing_certificate_file_is_named_relative_to_the_web_config() {
        let e = error("tls_server_config:\n  cert_file: certs/server.crt\n  key_file: server.key\n");
        let Problem::ReadNamed { key, file, .. } = &e.problem else {
            panic!("{e}");
        };
        assert_eq!(*key, "tls_server_config.cert_file");
        assert_eq!(file, &e.path.parent().unwrap().join("certs/server.crt"));
        let e = error("tls_server_config:\n  key_file: server.key\n");
        assert!(e.to_string().contains("`tls_server_config.cert_file`: missing"), "{e}");
        let e = error("tls_server_config:\n  cert_file: server.crt\n");
        assert!(e.to_string().contains("`tls_server_config.key_file`: missing"), "{e}");
    }

    #[test]
    fn a_missing_web_config_file_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let e = WebConfig::load(&dir.path().join("absent.yml")).unwrap_err();
        assert!(matches!(e.problem, Problem::Read(_)), "{e}");
        assert!(e.to_string().contains("absent.yml: cannot read it"), "{e}");
    }

    #[test]
    fn what_exporter_toolkit_has_and_rustls_lacks_is_refused_by_name() {
        let tls = "tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n";
        for (extra, needle) in [
            (
                "  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA]\n",
                "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA (rustls has no CBC",
            ),
            (
                "  cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]\n",
                "TLS_RSA_WITH_RC4_128_SHA",
            ),
            ("  curve_preferences: [CurveP521]\n", "P-521"),
            (
                "  client_auth_type: RequireAnyClientCert\n  client_allowed_sans: [a.example]\n",
                "client_allowed_sans",
            ),
        ] {
            let e = error(&format!("{tls}{extra}"));
            assert!(matches!(e.problem, Problem::Unsupported { .. }), "{e}");
            assert!(
                e.to_string().contains(needle) && e.to_string().contains("not supported"),
                "{e}"
            );
        }
        for (extra, needle) in [
            (
                "  cipher_suites: [TLS_MADE_UP]\n",
                "\"TLS_MADE_UP\" is not a cipher suite name",
            ),
            ("  cipher_suites: [TLS_AES_128_GCM_SHA256]\n", "TLS 1.3 suites only"),
            ("  curve_preferences: [Curve25519]\n", "not a curve name"),
        ] {
            let e = error(&format!("{tls}{extra}"));
            assert!(e.to_string().contains(needle), "{e}");
        }
        let e = error("rate_limit:\n  interval: 1s\n  burst: 5\n");
        assert!(
            e.to_string().contains("`rate_limit`") && e.to_string().contains("not supported"),
            "{e}"
        );
        let e = error("tls_server_config:\n  min_version: TLS13\n");
        assert!(e.to_string().contains("without a certificate"), "{e}");
    }

    #[test]
    fn only_exporter_toolkit_headers_with_their_values() {
        let e = error("http_server_config:\n  headers:\n    Server: nginx\n");
        assert!(
            e.to_string().contains("`http_server_config.headers.Server`") && e.to_string().contains("X-Frame-Options"),
            "{e}"
        );
        let e = error("http_server_config:\n  headers:\n    X-Frame-Options: allow\n");
        assert!(e.to_string().contains("deny or sameorigin"), "{e}");
        let e = error("http_server_config:\n  headers:\n    X-Content-Type-Options: sniff\n");
        assert!(e.to_string().contains("nosniff"), "{e}");
    }

    #[test]
    fn live_configuration_reloads_on_change_and_keeps_the_last_good_one() {
        let (_dir, path) = file(&format!("basic_auth_users:\n  alice: {HASH}\n"));
        let live = LiveWebConfig::new(WebConfig::load(&path).unwrap());
        let first = live.current();
        live.check_files();
        assert!(
            Arc::ptr_eq(&first, &live.current()),
            "unchanged files: the same configuration"
        );
        std::fs::write(&path, format!("basic_auth_users:\n  alice: {HASH}\n  bob: {HASH}\n")).unwrap();
        assert_eq!(live.current().users.len(), 1, "nothing is read on the request path");
        live.check_files();
        assert_eq!(live.current().users.len(), 2, "a valid change applies");
        std::fs::write(&path, "basic_auth_users:\n  carol: not-a-hash\n").unwrap();
        live.check_files();
        let kept = live.current();
        assert_eq!(kept.users.len(), 2, "an invalid change keeps the running configuration");
        std::fs::write(&path, format!("basic_auth_users:\n  carol: {HASH}\n")).unwrap();
        live.check_files();
        assert_eq!(
            live.current().users.keys().collect::<Vec<_>>(),
            ["carol"],
            "a fixed file applies"
        );
    }

    #[test]
    fn turning_basic_auth_off_takes_a_restart_even_when_the_file_says_so() {
        let (_dir, path) = file(&format!("basic_auth_users:\n  alice: {HASH}\n"));
        let live = LiveWebConfig::new(WebConfig::load(&path).unwrap());
        // What `cat > web.yml` leaves for a moment: an empty file, a valid empty configuration.
        for text in ["", "basic_auth_users:\n", "http_server_config:\n  http2: true\n"] {
            std::fs::write(&path, text).unwrap();
            for _ in 0..3 {
                live.check_files();
                assert_eq!(live.current().users.len(), 1, "{text:?}");
            }
        }
    }

    #[test]
    fn a_weaker_configuration_applies_only_after_two_identical_reads() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed(dir.path());
        let _ = (cert, key);
        let path = dir.path().join("web.yml");
        let tls = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n";
        std::fs::write(
            &path,
            format!("{tls}  min_version: TLS13\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\n"),
        )
        .unwrap();
        let live = LiveWebConfig::new(WebConfig::load(&path).unwrap());
        assert_eq!(live.current().min_version, Some(TlsVersion::Tls13));
        std::fs::write(&path, tls).unwrap();
        live.check_files();
        assert_eq!(
            live.current().min_version,
            Some(TlsVersion::Tls13),
            "one read is not enough"
        );
        std::fs::write(&path, format!("{tls}  min_version: TLS12\n")).unwrap();
        live.check_files();
        assert_eq!(
            live.current().headers.len(),
            1,
            "a different weaker content starts over"
        );
        live.check_files();
        assert_eq!(
            live.current().min_version,
            Some(TlsVersion::Tls12),
            "the same content twice applies"
        );
        assert!(live.current().headers.is_empty());
        // TLS off is not a weakening the file can ask for.
        std::fs::write(&path, "").unwrap();
        live.check_files();
        live.check_files();
        assert!(live.current().tls.is_some());
    }

    /// How long [`self_signed`] certificates are valid.
    pub(super) const CERT_DAYS: u64 = 2;

    /// A self-signed server certificate and key in `dir` (server.crt, server.key), made with
    /// openssl.
    pub(super) fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
        let (cert, key) = (dir.join("server.crt"), dir.join("server.key"));
        let status = std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-days",
                &CERT_DAYS.to_string(),
                "-subj",
                "/CN=localhost",
                "-keyout",
            ])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        (cert, key)
    }

    #[test]
    fn key_material_and_hashes_never_appear_in_errors() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed(dir.path());
        let key_text = std::fs::read_to_string(&key).unwrap();
        let cert_text = std::fs::read_to_string(&cert).unwrap();
        let body = |pem: &str| -> Vec<String> {
            pem.lines()
                .filter(|l| !l.starts_with("-----"))
                .map(str::to_string)
                .collect()
        };
        let mut secrets = body(&key_text);
        secrets.extend(body(&cert_text));
        secrets.push(HASH[7..].to_string());
        for (name, text) in [
            ("key.pem", key_text.clone()),
            ("cert.pem", cert_text.clone()),
            ("hash.yml", format!("basic_auth_users: \"{HASH}\"\n")),
            ("hash-in-list.yml", format!("basic_auth_users:\n  alice: [\"{HASH}\"]\n")),
            ("key-as-user.yml", format!("basic_auth_users:\n  alice: |\n{}", key_text.lines().map(|l| format!("    {l}\n")).collect::<String>())),
            (
                "key-as-user-name.yml",
                format!("basic_auth_users:\n  \"{}\": not-a-hash\n", body(&key_text)[0]),
            ),
            (
                "key-as-header-name.yml",
                format!("http_server_config:\n  headers:\n    \"{}\": x\n", body(&key_text)[0]),
            ),
            ("key-as-auth-type.yml", format!("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: \"{}\"\n", body(&key_text)[0])),
            ("key-as-ca.yml", "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: server.key\n".to_string()),
            ("broken-cert.yml", "tls_server_config:\n  cert_file: broken.crt\n  key_file: server.key\n".to_string()),
        ] {
            std::fs::write(dir.path().join("broken.crt"), cert_text.replace("-----END CERTIFICATE-----", "")).unwrap();
            let path = dir.path().join(name);
            std::fs::write(&path, &text).unwrap();
            let e = WebConfig::load(&path).expect_err(name).to_string();
            for secret in &secrets {
                assert!(!e.contains(secret.as_str()), "{name}: {secret} in {e}");
            }
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn costs_above_14_are_refused_at_load() {
        let cost31 = format!("$2b$31${}", &HASH[7..]);
        let e = error(&format!("basic_auth_users:\n  alice: {cost31}\n")).to_string();
        assert!(
            e.contains("`basic_auth_users.alice`") && e.contains("bcrypt cost 31 is above 14"),
            "{e}"
        );
        assert!(!e.contains(&HASH[7..]), "{e}");
        let cost14 = format!("$2b$14${}", &HASH[7..]);
        let (_dir, path) = file(&format!("basic_auth_users:\n  alice: {cost14}\n"));
        WebConfig::load(&path).unwrap();
    }

    #[test]
    fn files_that_are_not_regular_or_too_big_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let e = WebConfig::load(Path::new("/dev/zero")).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
        let big = dir.path().join("big.yml");
        std::fs::File::create(&big).unwrap().set_len(1 << 30).unwrap();
        let e = WebConfig::load(&big).unwrap_err().to_string();
        assert!(e.contains("larger than 1048576 bytes"), "{e}");
        std::fs::write(
            dir.path().join("web.yml"),
            "tls_server_config:\n  cert_file: /dev/zero\n  key_file: big.yml\n",
        )
        .unwrap();
        let e = WebConfig::load(&dir.path().join("web.yml")).unwrap_err().to_string();
        assert!(
            e.contains("`tls_server_config.cert_file`: cannot read /dev/zero: not a regular file"),
            "{e}"
        );
    }
}
