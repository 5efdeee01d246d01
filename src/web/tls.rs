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
    /// The client CA certificates; empty when none are configured.
    pub client_cas: Vec<CertificateDer<'static>>,
    pub min_version: TlsVersion,
    pub max_version: TlsVersion,
    /// TLS 1.2 suites in preference order; empty: rustls's defaults.
    pub tls12_suites: Vec<SupportedCipherSuite>,
    /// Key exchange groups in preference order; empty: rustls's defaults.
    pub kx_groups: Vec<&'static dyn SupportedKxGroup>,
    pub prefer_server_cipher_suites: bool,
}

/// The crypto provider every TLS configuration here uses: aws-lc-rs, as the AWS SDK's rustls.
pub fn provider() -> CryptoProvider {
    aws_lc_rs::default_provider()
}

/// Build the rustls server configuration. Errors are rustls's, for the caller to name the key
/// they concern.
pub fn server_config(s: TlsSettings) -> Result<ServerConfig, BuildError> {
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
    let provider = Arc::new(provider);
    let versions: Vec<&'static SupportedProtocolVersion> = [TlsVersion::Tls12, TlsVersion::Tls13]
        .into_iter()
        .filter(|v| (s.min_version..=s.max_version).contains(v))
        .map(TlsVersion::rustls)
        .collect();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(BuildError::Versions)?;
    let mut roots = RootCertStore::empty();
    for ca in &s.client_cas {
        roots.add(ca.clone()).map_err(BuildError::ClientCa)?;
    }
    let builder = match s.client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        ClientAuth::Request | ClientAuth::RequireAny => builder.with_client_cert_verifier(Arc::new(AnyClientCert {
            mandatory: s.client_auth.mandatory(),
            hints: roots.subjects(),
            provider: provider.clone(),
        })),
        ClientAuth::VerifyIfGiven | ClientAuth::RequireAndVerify => {
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
            let verifier = match s.client_auth {
                ClientAuth::VerifyIfGiven => verifier.allow_unauthenticated(),
                _ => verifier,
            };
            builder.with_client_cert_verifier(
                verifier
                    .build()
                    .map_err(|e| BuildError::ClientCaVerifier(e.to_string()))?,
            )
        }
    };
    let mut config = builder.with_single_cert(s.certs, s.key).map_err(BuildError::Key)?;
    config.ignore_client_order = s.prefer_server_cipher_suites;
    // HTTP/1.1 only: the server loop speaks nothing else.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

#[derive(Debug)]
pub enum BuildError {
    Versions(rustls::Error),
    ClientCa(rustls::Error),
    ClientCaVerifier(String),
    Key(rustls::Error),
}

/// `RequestClientCert` and `RequireAnyClientCert`: a certificate is asked for (and, for the
/// latter, required), parsed and its handshake signature checked, but not verified against any
/// CA. As in Go, this authenticates no one; `RequireAndVerifyClientCert` does.
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
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
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
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

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
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
