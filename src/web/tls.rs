//! TLS with rustls and its aws-lc-rs provider (the ones the AWS SDK already brings): the names of
//! exporter-toolkit's file (Go's `crypto/tls` names) mapped to what rustls offers, the server
//! configuration, the verifiers for client certificates, and the client the `healthcheck`
//! command uses.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, SupportedKxGroup, aws_lc_rs};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme, SupportedCipherSuite,
    SupportedProtocolVersion,
};

/// `client_auth_type`: whether and how the server asks for a client certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    /// `NoClientCert` (the default): no client certificate asked for.
    #[default]
    None,
    /// `RequestClientCert`: asked for, neither required nor verified.
    Request,
    /// `RequireAnyClientCert` (or its old name `RequireClientCert`): required, not verified.
    RequireAny,
    /// `VerifyClientCertIfGiven`: optional, verified against the client CA when given.
    VerifyIfGiven,
    /// `RequireAndVerifyClientCert`: required and verified against the client CA (mutual TLS).
    RequireAndVerify,
}

impl ClientAuth {
    pub const ALLOWED: &str =
        "NoClientCert, RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert";

    pub fn parse(name: &str) -> Option<ClientAuth> {
        Some(match name {
            "" | "NoClientCert" => ClientAuth::None,
            "RequestClientCert" => ClientAuth::Request,
            "RequireAnyClientCert" | "RequireClientCert" => ClientAuth::RequireAny,
            "VerifyClientCertIfGiven" => ClientAuth::VerifyIfGiven,
            "RequireAndVerifyClientCert" => ClientAuth::RequireAndVerify,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ClientAuth::None => "NoClientCert",
            ClientAuth::Request => "RequestClientCert",
            ClientAuth::RequireAny => "RequireAnyClientCert",
            ClientAuth::VerifyIfGiven => "VerifyClientCertIfGiven",
            ClientAuth::RequireAndVerify => "RequireAndVerifyClientCert",
        }
    }

    /// Whether a client without a certificate is refused during the handshake.
    pub fn mandatory(self) -> bool {
        matches!(self, ClientAuth::RequireAny | ClientAuth::RequireAndVerify)
    }

    /// Whether the client certificate is checked against `client_ca_file`.
    pub fn verifies(self) -> bool {
        matches!(self, ClientAuth::VerifyIfGiven | ClientAuth::RequireAndVerify)
    }
}

/// `min_version` / `max_version`: the TLS versions rustls speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

/// Why a version name is not accepted.
pub enum VersionProblem {
    /// TLS10 or TLS11: valid in exporter-toolkit, not offered by rustls.
    Unsupported,
    Unknown,
}

impl TlsVersion {
    pub fn parse(name: &str) -> Result<TlsVersion, VersionProblem> {
        match name {
            "TLS12" => Ok(TlsVersion::Tls12),
            "TLS13" => Ok(TlsVersion::Tls13),
            "TLS10" | "TLS11" => Err(VersionProblem::Unsupported),
            _ => Err(VersionProblem::Unknown),
        }
    }

    fn rustls(self) -> &'static SupportedProtocolVersion {
        match self {
            TlsVersion::Tls12 => &rustls::version::TLS12,
            TlsVersion::Tls13 => &rustls::version::TLS13,
        }
    }
}

impl fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsVersion::Tls12 => "TLS12",
            TlsVersion::Tls13 => "TLS13",
        })
    }
}

/// What a cipher suite name means here.
pub enum Suite {
    /// A TLS 1.2 suite rustls offers.
    Tls12(SupportedCipherSuite),
    /// A TLS 1.3 suite: valid, but, as in Go, TLS 1.3 suites are not configurable (all three are
    /// always on), so it changes nothing.
    Tls13,
    /// A suite Go offers and rustls does not (CBC, RSA key exchange, 3DES, RC4).
    Unsupported,
    Unknown,
}

/// The TLS 1.2 suites rustls offers, by their Go (IANA) names, Go's short aliases included.
const TLS12_SUITES: [(&str, SupportedCipherSuite); 8] = {
    use aws_lc_rs::cipher_suite::*;
    [
        (
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        ),
        (
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
            TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        ),
        (
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
            TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        ),
        (
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
            TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        ),
        (
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        ),
        (
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
            TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        ),
        (
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
            TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        ),
        (
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
            TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        ),
    ]
};

const TLS13_SUITES: [&str; 3] = [
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
];

/// Suites Go knows (`tls.CipherSuites()` and `tls.InsecureCipherSuites()`) that rustls does not
/// implement (CBC, RSA key exchange, 3DES, RC4): refused by name rather than as unknown.
const UNSUPPORTED_SUITES: [&str; 16] = [
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_RC4_128_SHA",
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
];

impl Suite {
    pub fn parse(name: &str) -> Suite {
        if let Some((_, s)) = TLS12_SUITES.iter().find(|(n, _)| *n == name) {
            Suite::Tls12(*s)
        } else if TLS13_SUITES.contains(&name) {
            Suite::Tls13
        } else if UNSUPPORTED_SUITES.contains(&name) {
            Suite::Unsupported
        } else {
            Suite::Unknown
        }
    }

    /// The TLS 1.2 names accepted, for error messages.
    pub fn allowed() -> String {
        TLS12_SUITES
            .iter()
            .map(|(n, _)| *n)
            .filter(|n| n.ends_with("SHA256") || n.ends_with("SHA384"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// What a curve name means here.
pub enum Curve {
    Group(&'static dyn SupportedKxGroup),
    /// `CurveP521`: valid in Go, not offered by rustls.
    Unsupported,
    Unknown,
}

impl Curve {
    pub const ALLOWED: &str = "X25519, CurveP256, CurveP384 or X25519MLKEM768";

    pub fn parse(name: &str) -> Curve {
        use aws_lc_rs::kx_group;
        match name {
            "X25519" => Curve::Group(kx_group::X25519),
            "CurveP256" => Curve::Group(kx_group::SECP256R1),
            "CurveP384" => Curve::Group(kx_group::SECP384R1),
            "X25519MLKEM768" => Curve::Group(kx_group::X25519MLKEM768),
            "CurveP521" => Curve::Unsupported,
            _ => Curve::Unknown,
        }
    }
}

/// The TLS settings of a web configuration, ready to build a server configuration from.
pub struct TlsSettings {
    pub certs: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    pub client_auth: ClientAuth,
    /// The client CA certificates; empty when none are configured (then the verifying types
    /// verify against the system's root certificates, as Go does).
    pub client_cas: Vec<CertificateDer<'static>>,
    pub min_version: TlsVersion,
    pub max_version: TlsVersion,
    /// TLS 1.2 suites in preference order; empty: rustls's defaults.
    pub tls12_suites: Vec<SupportedCipherSuite>,
    /// Key exchange groups in preference order; empty: rustls's defaults.
    pub kx_groups: Vec<&'static dyn SupportedKxGroup>,
    pub prefer_server_cipher_suites: bool,
}

/// The signature checks of a certificate verifier, by the crypto provider in field `$field`
/// (the same for every verifier here).
macro_rules! signatures_by {
    ($field:tt) => {
        signatures_by!(@check $field, verify_tls12_signature);
        signatures_by!(@check $field, verify_tls13_signature);

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.$field.signature_verification_algorithms.supported_schemes()
        }
    };
    (@check $field:tt, $check:ident) => {
        fn $check(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::$check(message, cert, dss, &self.$field.signature_verification_algorithms)
        }
    };
}

/// The crypto provider every TLS configuration here uses: aws-lc-rs, as the AWS SDK's rustls.
pub fn provider() -> CryptoProvider {
    aws_lc_rs::default_provider()
}

/// Build the rustls server configuration. Errors are rustls's, for the caller to name the key
/// they concern.
pub fn server_config(s: TlsSettings) -> Result<ServerConfig, BuildError> {
    let provider = Arc::new(provider_for(&s));
    let versions: Vec<&'static SupportedProtocolVersion> = [TlsVersion::Tls12, TlsVersion::Tls13]
        .into_iter()
        .filter(|v| (s.min_version..=s.max_version).contains(v))
        .map(TlsVersion::rustls)
        .collect();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(BuildError::Versions)?;
    let builder = match client_verifier(&s, &provider)? {
        None => builder.with_no_client_auth(),
        Some(verifier) => builder.with_client_cert_verifier(verifier),
    };
    let mut config = builder.with_single_cert(s.certs, s.key).map_err(BuildError::Key)?;
    config.ignore_client_order = s.prefer_server_cipher_suites;
    // HTTP/1.1 only: the server loop speaks nothing else.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The crypto provider with the file's TLS 1.2 suites and key exchange groups, when it names
/// any.
fn provider_for(s: &TlsSettings) -> CryptoProvider {
    let mut provider = provider();
    if !s.tls12_suites.is_empty() {
        // TLS 1.3 suites stay as they are (not configurable, as in Go); the TLS 1.2 ones follow
        // the file's order.
        provider
            .cipher_suites
            .retain(|suite| matches!(suite, SupportedCipherSuite::Tls13(_)));
        provider.cipher_suites.extend(s.tls12_suites.iter().copied());
    }
    if !s.kx_groups.is_empty() {
        provider.kx_groups = s.kx_groups.clone();
    }
    provider
}

/// What checks client certificates, as `client_auth_type` says; `None`: none asked for.
fn client_verifier(
    s: &TlsSettings,
    provider: &Arc<CryptoProvider>,
) -> Result<Option<Arc<dyn ClientCertVerifier>>, BuildError> {
    let mut roots = RootCertStore::empty();
    for ca in &s.client_cas {
        roots.add(ca.clone()).map_err(BuildError::ClientCa)?;
    }
    let verifier: Arc<dyn ClientCertVerifier> = match s.client_auth {
        ClientAuth::None => return Ok(None),
        ClientAuth::Request | ClientAuth::RequireAny => Arc::new(AnyClientCert {
            mandatory: s.client_auth.mandatory(),
            accept: true,
            hints: roots.subjects(),
            provider: provider.clone(),
        }),
        ClientAuth::VerifyIfGiven | ClientAuth::RequireAndVerify => {
            if s.client_cas.is_empty() {
                // As Go with `ClientCAs` nil: the system's roots.
                for cert in system_roots() {
                    let _ = roots.add(cert);
                }
            }
            if roots.is_empty() {
                // No system roots either: as Go with an empty pool, no certificate verifies.
                Arc::new(AnyClientCert {
                    mandatory: s.client_auth.mandatory(),
                    accept: false,
                    hints: Vec::new(),
                    provider: provider.clone(),
                })
            } else {
                let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
                let verifier = match s.client_auth {
                    ClientAuth::VerifyIfGiven => verifier.allow_unauthenticated(),
                    _ => verifier,
                };
                let verifier = verifier
                    .build()
                    .map_err(|e| BuildError::ClientCaVerifier(e.to_string()))?;
                Arc::new(PinnedOrChained {
                    chained: verifier,
                    pinned: s.client_cas.clone(),
                    provider: provider.clone(),
                })
            }
        }
    };
    Ok(Some(verifier))
}

#[derive(Debug)]
pub enum BuildError {
    Versions(rustls::Error),
    ClientCa(rustls::Error),
    ClientCaVerifier(String),
    Key(rustls::Error),
}

/// The system's root certificates (`SSL_CERT_FILE`, `SSL_CERT_DIR` or the distribution's
/// bundle), read at each load of the web configuration that needs them.
pub fn system_roots() -> Vec<CertificateDer<'static>> {
    rustls_native_certs::load_native_certs().certs
}

/// `RequestClientCert` and `RequireAnyClientCert`: a certificate is asked for (and, for the
/// latter, required), parsed and its handshake signature checked, but not verified against any
/// CA. As in Go, this authenticates no one; `RequireAndVerifyClientCert` does. With `accept`
/// false, every certificate is refused (a verifying type with no root certificate at all).
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
    accept: bool,
    hints: Vec<DistinguishedName>,
    provider: Arc<CryptoProvider>,
}

impl ClientCertVerifier for AnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        ParsedCertificate::try_from(end_entity)?;
        if !self.accept {
            return Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            ));
        }
        Ok(ClientCertVerified::assertion())
    }

    signatures_by!(provider);
}

/// The verifying types: a chain to the client CAs (webpki), or, as Go accepts it, a client
/// certificate that is itself one of the client CAs, byte for byte, within its validity period.
/// webpki refuses the latter when it is a CA certificate (`CA:TRUE`, as `openssl req -x509`
/// makes by default): a self-signed client certificate pinned as `client_ca_file`, which
/// exporter-toolkit's own tests use.
#[derive(Debug)]
struct PinnedOrChained {
    chained: Arc<dyn ClientCertVerifier>,
    pinned: Vec<CertificateDer<'static>>,
    /// The provider `chained` was built with: its signature checks are the same.
    provider: Arc<CryptoProvider>,
}

impl ClientCertVerifier for PinnedOrChained {
    fn offer_client_auth(&self) -> bool {
        self.chained.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.chained.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.chained.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        match self.chained.verify_client_cert(end_entity, intermediates, now) {
            Ok(verified) => Ok(verified),
            Err(e) => {
                let pinned = self.pinned.iter().any(|p| p.as_ref() == end_entity.as_ref());
                let current = validity(end_entity).is_some_and(|(from, to)| (from..=to).contains(&now.as_secs()));
                match (pinned, current) {
                    (true, true) => Ok(ClientCertVerified::assertion()),
                    (true, false) => Err(rustls::Error::InvalidCertificate(rustls::CertificateError::Expired)),
                    (false, _) => Err(e),
                }
            }
        }
    }

    signatures_by!(provider);
}

/// One DER element: its tag, its content and what follows it.
fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |len, b| len << 8 | usize::from(*b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// A certificate's validity period (`notBefore`, `notAfter`) in seconds since the epoch.
fn validity(cert: &[u8]) -> Option<(u64, u64)> {
    let (0x30, cert, _) = der(cert)? else { return None };
    let (0x30, tbs, _) = der(cert)? else { return None };
    let (tag, _, mut rest) = der(tbs)?;
    if tag == 0xa0 {
        rest = der(rest)?.2; // the version came first; this was the serial number
    }
    let (_, _, rest) = der(rest)?; // signature algorithm
    let (_, _, rest) = der(rest)?; // issuer
    let (0x30, validity, _) = der(rest)? else { return None };
    let (from_tag, from, rest) = der(validity)?;
    let (to_tag, to, _) = der(rest)?;
    Some((time(from_tag, from)?, time(to_tag, to)?))
}

/// An X.509 UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`) in seconds since the
/// epoch.
fn time(tag: u8, bytes: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(bytes).ok()?.strip_suffix('Z')?;
    let (year, rest) = match (tag, text.len()) {
        (0x17, 12) => {
            let yy: i64 = text[..2].parse().ok()?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, &text[2..])
        }
        (0x18, 14) => (text[..4].parse().ok()?, &text[4..]),
        _ => return None,
    };
    let field = |i: usize| rest.get(i..i + 2)?.parse::<i64>().ok();
    let (month, day, hour, minute, second) = (field(0)?, field(2)?, field(4)?, field(6)?, field(8)?);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hour * 3_600 + minute * 60 + second).ok()
}

/// For `healthcheck` only: accepts any server certificate. The healthcheck talks to its own
/// exporter on loopback and asks whether it is alive; it sends nothing secret and trusts nothing
/// it reads beyond the status line. The handshake signature is still checked.
#[derive(Debug)]
struct AnyServerCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    signatures_by!(0);
}

/// The healthcheck presents no client certificate; this notes whether the server asked for one.
#[derive(Debug, Default)]
pub struct NoClientCert {
    asked: AtomicBool,
}

impl NoClientCert {
    pub fn asked(&self) -> bool {
        self.asked.load(Ordering::SeqCst)
    }
}

impl rustls::client::ResolvesClientCert for NoClientCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.asked.store(true, Ordering::SeqCst);
        None
    }

    fn has_certs(&self) -> bool {
        false
    }
}

/// The healthcheck's TLS client: any server certificate, no client certificate (`resolver` says
/// whether one was asked for), HTTP/1.1.
pub fn healthcheck_client(resolver: Arc<NoClientCert>) -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = Arc::new(provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(rustls::ALL_VERSIONS)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyServerCert(provider)))
        .with_client_cert_resolver(resolver);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_times_are_read() {
        assert_eq!(time(0x17, b"700101000000Z"), Some(0));
        assert_eq!(time(0x17, b"491231235959Z"), Some(2_524_607_999));
        assert_eq!(time(0x18, b"20260304120000Z"), Some(1_772_625_600));
        assert_eq!(time(0x18, b"2026030412000Z"), None);
        assert_eq!(time(0x17, b"260304120000"), None);
    }

    #[test]
    fn the_validity_of_a_real_certificate_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, _) = super::super::tests::self_signed(dir.path());
        let pem = std::fs::read(cert).unwrap();
        use rustls::pki_types::pem::PemObject;
        let cert = CertificateDer::from_pem_slice(&pem).unwrap();
        let (from, to) = validity(&cert).unwrap();
        let now = UnixTime::now().as_secs();
        assert!(from <= now && now < to, "{from} {now} {to}");
        assert_eq!(to - from, super::super::tests::CERT_DAYS * 86_400);
        assert_eq!(validity(&cert[..cert.len() / 2]), None);
    }
}
