//! Reading a web configuration: the file and every file it names, each checked into the parts of
//! a [`WebConfig`], with errors that name the key and never echo a value that could be a secret.

use super::*;

/// A file as it was when read: enough to tell that it changed (replaced, rewritten, removed or
/// created), without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Watched {
    file: PathBuf,
    stamp: Option<Stamp>,
}

impl Watched {
    pub(super) fn changed(&self) -> bool {
        Stamp::now(&self.file) != self.stamp
    }
}

/// Reads files (see [`read`]), notes them for reloads and digests what it read.
pub(super) struct Reader {
    dir: PathBuf,
    watched: Vec<Watched>,
    digest: aws_lc_rs::digest::Context,
}

impl Reader {
    pub(super) fn new(dir: PathBuf) -> Reader {
        Reader {
            dir,
            watched: Vec::new(),
            digest: aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256),
        }
    }

    /// The file at `file`, noted (also when it cannot be read, so that its appearance is seen).
    pub(super) fn read_file(&mut self, file: &Path) -> Result<Vec<u8>, ReadError> {
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
    pub(super) fn read(&mut self, key: &'static str, name: &str) -> Result<Vec<u8>, Problem> {
        let file = self.dir.join(name);
        self.read_file(&file)
            .map_err(|error| Problem::ReadNamed { key, file, error })
    }
}

/// `section.name` for an error message, when the name is plain (a user name, a header name);
/// otherwise the section alone: a map key can be anything pasted there.
pub(super) fn key_path(section: &str, name: &str) -> String {
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
pub(super) fn shown(value: &str) -> String {
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

pub(super) fn load(path: &Path, reader: &mut Reader) -> Result<WebConfig, Problem> {
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

pub(super) fn lower(name: &'static str) -> &'static str {
    match name {
        "Strict-Transport-Security" => "strict-transport-security",
        "X-Content-Type-Options" => "x-content-type-options",
        "X-Frame-Options" => "x-frame-options",
        "X-XSS-Protection" => "x-xss-protection",
        _ => "content-security-policy",
    }
}

/// `cipher_suites`: the TLS 1.2 suites to offer, in order, without repeats (TLS 1.3 suites are
/// not configurable, as in Go); a list of only TLS 1.3 suites is refused while TLS 1.2 is on.
pub(super) fn tls12_suites(
    names: Option<Vec<String>>,
    min_version: TlsVersion,
) -> Result<Vec<rustls::SupportedCipherSuite>, Problem> {
    let mut tls12_suites = Vec::new();
    let suites_listed = names.as_ref().is_some_and(|v| !v.is_empty());
    for name in names.unwrap_or_default() {
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
    Ok(tls12_suites)
}

/// `curve_preferences`: the key exchange groups, in order, without repeats.
pub(super) fn kx_groups(names: Vec<String>) -> Result<Vec<&'static dyn rustls::crypto::SupportedKxGroup>, Problem> {
    let mut kx_groups: Vec<&'static dyn rustls::crypto::SupportedKxGroup> = Vec::new();
    for name in names {
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
    Ok(kx_groups)
}

/// Check `tls_server_config` and read the files it names. `None`: no certificate, key, CA or
/// client auth type set, so no TLS (as in exporter-toolkit).
pub(super) fn tls_settings(mut raw: file::RawTls, reader: &mut Reader) -> Result<Option<TlsSettings>, Problem> {
    if !tls_wanted(&raw)? {
        return Ok(None);
    }
    if raw.client_allowed_sans.is_some() {
        return Err(unsupported(
            "tls_server_config.client_allowed_sans",
            "client certificate SANs are not matched; use a client CA that signs only the allowed clients",
        ));
    }
    let client_auth = client_auth(&raw)?;
    let (min_version, max_version) = version_range(&raw)?;
    let tls12_suites = tls12_suites(raw.cipher_suites.take(), min_version)?;
    let kx_groups = kx_groups(raw.curve_preferences.take().unwrap_or_default())?;
    let pems = TlsPems::read(&raw, client_auth, reader)?;
    Ok(Some(TlsSettings {
        certs: pems.certs,
        key: pems.key,
        client_auth,
        client_cas: pems.client_cas,
        min_version,
        max_version,
        tls12_suites,
        kx_groups,
        prefer_server_cipher_suites: raw.prefer_server_cipher_suites.unwrap_or(true),
    }))
}

/// Whether a value is set (not blank).
fn is_set(value: &Option<String>) -> bool {
    value.as_deref().is_some_and(|s| !s.trim().is_empty())
}

/// Whether `tls_server_config` turns TLS on: a certificate, key, client CA or client auth type
/// is set. Other TLS settings without them are an error: exporter-toolkit silently serves plain
/// HTTP there, and a file that looks like TLS but is not would be a trap.
fn tls_wanted(raw: &file::RawTls) -> Result<bool, Problem> {
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
    .any(is_set);
    if enabled {
        return Ok(true);
    }
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
    match stray {
        Some((name, _)) => Err(invalid(
            format!("tls_server_config.{name}"),
            "TLS settings without a certificate: set cert_file and key_file to turn TLS on, or remove them",
        )),
        None => Ok(false),
    }
}

/// `client_auth_type`.
fn client_auth(raw: &file::RawTls) -> Result<ClientAuth, Problem> {
    let name = raw.client_auth_type.as_deref().unwrap_or("").trim();
    ClientAuth::parse(name).ok_or_else(|| {
        invalid(
            "tls_server_config.client_auth_type",
            format!("{} is not one of {}", shown(name), ClientAuth::ALLOWED),
        )
    })
}

/// `min_version` and `max_version` (TLS 1.2 and 1.3 by default), the lower not above the upper.
fn version_range(raw: &file::RawTls) -> Result<(TlsVersion, TlsVersion), Problem> {
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
    Ok((min_version, max_version))
}

/// The certificate chain, its private key and the client CAs, inline or from the files named.
struct TlsPems {
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_cas: Vec<CertificateDer<'static>>,
}

impl TlsPems {
    /// Checks that what must be there is, before reading anything; then reads and parses it.
    fn read(raw: &file::RawTls, client_auth: ClientAuth, reader: &mut Reader) -> Result<TlsPems, Problem> {
        if !is_set(&raw.cert) && !is_set(&raw.cert_file) {
            return Err(invalid(
                "tls_server_config.cert_file",
                "missing: TLS needs a certificate (cert_file, or cert inline)",
            ));
        }
        if !is_set(&raw.key) && !is_set(&raw.key_file) {
            return Err(invalid(
                "tls_server_config.key_file",
                "missing: TLS needs the certificate's private key (key_file, or key inline)",
            ));
        }
        let ca_set = is_set(&raw.client_ca) || is_set(&raw.client_ca_file);
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
        Ok(TlsPems { certs, key, client_cas })
    }
}

/// The PEM of `inline` or of the file `file_key` names (exactly one is set), with the key it came
/// from.
pub(super) fn pem_source(
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
pub(super) fn parse_certs(key: String, pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, Problem> {
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
pub(super) fn parse_key(key: String, pem: &[u8]) -> Result<PrivateKeyDer<'static>, Problem> {
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
