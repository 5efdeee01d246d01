//! The `healthcheck` command's client: is the exporter on this machine alive? For a container
//! HEALTHCHECK without curl; it speaks TLS when the web configuration turns it on.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::{WebConfig, WebConfigError};

/// How `healthcheck` found the exporter alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alive {
    /// `/healthz` answered 200 (over TLS when the web configuration turns it on).
    Answered,
    /// Clients must present a certificate (`RequireAnyClientCert`, `RequireAndVerifyClientCert`)
    /// and the healthcheck has none: the server answered the TLS handshake and asked for one,
    /// then refused it, which is as far as it can get.
    HandshakeAnswered,
}

/// Why `healthcheck` finds the exporter not alive.
#[derive(Debug, thiserror::Error)]
pub enum Unhealthy {
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("no answer from {addr}: {source}")]
    NoAnswer {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("{addr}/healthz answered {head:?}")]
    Status { addr: std::net::SocketAddr, head: String },
    #[error("{0}")]
    WebConfig(#[from] WebConfigError),
}

/// GET /healthz on `listen` (loopback when it listens on every address) within
/// 3 s and expect 200. With a web configuration that turns TLS on, over TLS, without checking the
/// server certificate (the exporter's own, on loopback: liveness is all it asks; it sends nothing
/// secret) and without a client certificate; /healthz needs no basic auth. When client
/// certificates are required, see [`Alive::HandshakeAnswered`].
pub fn check(listen: SocketAddr, web_config_file: Option<&Path>) -> Result<Alive, Unhealthy> {
    let web = match web_config_file {
        Some(path) => Some(WebConfig::load(path)?),
        None => None,
    };
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let addr = SocketAddr::new(ip, listen.port());
    let timeout = Duration::from_secs(3);
    let stream = TcpStream::connect_timeout(&addr, timeout).map_err(|source| Unhealthy::Connect { addr, source })?;
    let no_answer = |source| Unhealthy::NoAnswer { addr, source };
    stream.set_read_timeout(Some(timeout)).map_err(no_answer)?;
    stream.set_write_timeout(Some(timeout)).map_err(no_answer)?;
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let mut head = [0u8; 12];
    match web.filter(|w| w.tls.is_some()) {
        None => {
            let mut stream = stream;
            stream.write_all(request.as_bytes()).map_err(no_answer)?;
            stream.read_exact(&mut head).map_err(no_answer)?;
        }
        Some(web) => {
            let resolver = Arc::new(super::tls::NoClientCert::default());
            let client =
                super::tls::healthcheck_client(resolver.clone()).map_err(|e| no_answer(std::io::Error::other(e)))?;
            let name = rustls::pki_types::ServerName::IpAddress(ip.into());
            let connection = rustls::ClientConnection::new(Arc::new(client), name)
                .map_err(|e| no_answer(std::io::Error::other(e)))?;
            let mut tls = rustls::StreamOwned::new(connection, stream);
            let exchanged = tls
                .write_all(request.as_bytes())
                .and_then(|()| tls.flush())
                .and_then(|()| tls.read_exact(&mut head));
            if let Err(e) = exchanged {
                let alert = e
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                    .is_some_and(|inner| matches!(inner, rustls::Error::AlertReceived(_)));
                if web.client_cert_required() && resolver.asked() && alert {
                    return Ok(Alive::HandshakeAnswered);
                }
                return Err(no_answer(e));
            }
        }
    }
    match &head {
        b"HTTP/1.1 200" => Ok(Alive::Answered),
        other => Err(Unhealthy::Status {
            addr,
            head: String::from_utf8_lossy(other).into_owned(),
        }),
    }
}
