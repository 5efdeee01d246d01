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
mod guard;
pub mod healthcheck;
mod live;
mod load;
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
pub use guard::{Unauthenticated, guard};
pub use live::{LiveWebConfig, POLL_INTERVAL};
pub use tls::{ClientAuth, TlsVersion};

use load::*;

use read::{ReadError, Stamp};

use tls::{BuildError, Curve, Suite, TlsSettings, VersionProblem};

/// Paths served without basic authentication, for probes (kubelet `httpGet` cannot send
/// credentials without putting them in the pod spec). TLS and client certificates still apply.
pub const UNAUTHENTICATED_PATHS: [&str; 4] = ["/healthz", "/readyz", "/-/healthy", "/-/ready"];

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
