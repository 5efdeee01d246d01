//! The HTTP face: `/metrics`, `/healthz`, `/readyz` and a small index page, and the server that
//! runs them, over TLS and behind basic auth when a web configuration says so ([`crate::web`]).
//! Handlers only read the latest snapshot; they never wait on AWS.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

use crate::render::metrics::{Format, MetricsSource};
use crate::snapshot::Snapshots;
use crate::web::{self, LiveWebConfig};

/// A request to reload the configuration (`POST /-/reload`): the answer says whether the new one
/// applies, or why not.
pub type ReloadRequest = tokio::sync::oneshot::Sender<Result<(), String>>;

#[derive(Clone)]
pub struct AppState {
    pub metrics: Arc<MetricsSource>,
    /// Every organization's snapshots.
    pub snapshots: Snapshots,
    /// Where `POST /-/reload` asks for a reload (as SIGHUP does); `None`: reloads are off.
    pub reload: Option<tokio::sync::mpsc::Sender<ReloadRequest>>,
    /// Where the metrics are served (`telemetry_path`, `/metrics` by default).
    pub telemetry_path: String,
}

/// The routes. `/-/healthy`, `/-/ready` and `POST /-/reload` are the paths Prometheus and its
/// exporters use, beside this exporter's own `/healthz` and `/readyz`.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/", get(index))
        .route(&state.telemetry_path, get(metrics))
        .route("/healthz", get(healthy))
        .route("/-/healthy", get(healthy))
        .route("/readyz", get(ready))
        .route("/-/ready", get(ready))
        .route("/-/reload", axum::routing::post(reload))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found; see / for the endpoints\n") })
        .with_state(state)
}

async fn healthy() -> &'static str {
    "ok\n"
}

/// `POST /-/reload`: reload the configuration as SIGHUP does; 200 when it applies, 500 with the
/// reason when it is invalid (the running one is kept), 503 when reloads are off.
async fn reload(State(state): State<AppState>) -> Response {
    let Some(requests) = state.reload else {
        return (StatusCode::SERVICE_UNAVAILABLE, "configuration reloads are off\n").into_response();
    };
    let (answer, answered) = tokio::sync::oneshot::channel();
    if requests.send(answer).await.is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "configuration reloads are off\n").into_response();
    }
    match answered.await {
        Ok(Ok(())) => (StatusCode::OK, "configuration reloaded\n").into_response(),
        Ok(Err(why)) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{why}\n")).into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "the exporter is stopping\n").into_response(),
    }
}

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The items of an `Accept` or `Accept-Encoding` header, lower-cased, each with its quality
/// (`q`, default 1, within 0 and 1).
fn weighted(header: Option<&str>) -> impl Iterator<Item = (String, f32)> + '_ {
    header.unwrap_or("").split(',').map(|item| {
        let mut parts = item.split(';').map(str::trim);
        let name = parts.next().unwrap_or("").to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0)
            .clamp(0.0, 1.0);
        (name, q)
    })
}

/// Whether the `Accept` header prefers OpenMetrics: its best quality is above zero and not below
/// that of the text format (`text/plain`, `text/*`, `*/*`). No header: the text format.
pub fn prefers_openmetrics(accept: Option<&str>) -> bool {
    let (mut openmetrics, mut text) = (0.0f32, 0.0f32);
    for (media, q) in weighted(accept) {
        match media.as_str() {
            "application/openmetrics-text" => openmetrics = openmetrics.max(q),
            "text/plain" | "text/*" | "*/*" => text = text.max(q),
            _ => {}
        }
    }
    openmetrics > 0.0 && openmetrics >= text
}

/// Whether the `Accept-Encoding` header accepts gzip (`gzip`, `x-gzip` or `*` with a quality
/// above zero, and gzip not refused by name).
pub fn accepts_gzip(accept_encoding: Option<&str>) -> bool {
    let (mut named, mut any) = (None, None);
    for (coding, q) in weighted(accept_encoding) {
        match coding.as_str() {
            "gzip" | "x-gzip" => named = Some(named.unwrap_or(0.0f32).max(q)),
            "*" => any = Some(q),
            _ => {}
        }
    }
    named.or(any).is_some_and(|q| q > 0.0)
}

/// The exposition: gzip from the prepared body when the client accepts it (Prometheus always
/// does), else rendered as plain text.
async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let (format, content_type) = match prefers_openmetrics(accept) {
        true => (Format::OpenMetrics, OPENMETRICS),
        false => (Format::Text, TEXT),
    };
    let encoding = headers.get(header::ACCEPT_ENCODING).and_then(|v| v.to_str().ok());
    if accepts_gzip(encoding) {
        let zipped = state.metrics.gzip(format).await;
        let length = zipped.len().to_string();
        let parts = futures::stream::iter(zipped.into_parts().map(Ok::<_, std::convert::Infallible>));
        return (
            [
                (header::CONTENT_TYPE, content_type),
                (header::CONTENT_ENCODING, "gzip"),
                (header::VARY, "accept-encoding"),
                (header::CONTENT_LENGTH, length.as_str()),
            ],
            axum::body::Body::from_stream(parts),
        )
            .into_response();
    }
    use futures::StreamExt;
    let chunks = state.metrics.plain(format).await;
    let body = axum::body::Body::from_stream(chunks.map(Ok::<_, std::convert::Infallible>));
    (
        [(header::CONTENT_TYPE, content_type), (header::VARY, "accept-encoding")],
        body,
    )
        .into_response()
}

/// Ready once a refresh has listed every organization; until then 503 with the reason (only
/// "not ready" to a request that skipped basic auth: the reason may name accounts and roles).
/// With one organization the reason is as it always was; with several each line names the
/// organization that is not ready.
async fn ready(State(state): State<AppState>, anonymous: Option<Extension<web::Unauthenticated>>) -> Response {
    let latest = state.snapshots.latest();
    let several = latest.len() > 1;
    let waiting: Vec<String> = latest
        .iter()
        .filter(|(_, s)| !s.as_deref().is_some_and(|s| s.ever_listed()))
        .map(|(name, s)| {
            let why = match s.as_deref() {
                Some(s) => format!(
                    "cannot list the organization yet (retrying): {}",
                    s.discovery_failure.as_deref().unwrap_or("unknown error")
                ),
                None => "first refresh still running".to_string(),
            };
            if several {
                format!("not ready: organization {name}: {why}\n")
            } else {
                format!("not ready: {why}\n")
            }
        })
        .collect();
    if waiting.is_empty() {
        (StatusCode::OK, "ready\n").into_response()
    } else if anonymous.is_some() {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, waiting.concat()).into_response()
    }
}

async fn index(State(state): State<AppState>) -> Html<String> {
    // Relative, as the other links (the page may sit behind a proxy's path prefix); the path is
    // printable ASCII (checked at load), and `&`, `"` and `<` are escaped here.
    let path = state
        .telemetry_path
        .trim_start_matches('/')
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;");
    Html(format!(
        concat!(
            "<!doctype html><html><head><title>aws-root-exporter</title></head><body>",
            "<h1>aws-root-exporter {version}</h1><p>Root-user credentials of every account of an AWS Organization, as Prometheus metrics.</p>",
            "<ul><li><a href=\"{path}\">metrics</a></li><li><a href=\"healthz\">healthz</a> (alive)</li>",
            "<li><a href=\"readyz\">readyz</a> (the organization was listed)</li></ul></body></html>\n"
        ),
        version = env!("CARGO_PKG_VERSION"),
        path = path
    ))
}

/// What keeps slow, idle or numerous clients from pinning the server or keeping it from stopping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A client must send a request's headers within this time.
    pub header_read_timeout: Duration,
    /// Connections served at once; further clients wait in the listen backlog.
    pub max_connections: usize,
    /// After the stop signal, requests in flight get this long to finish; then the server stops
    /// regardless of open connections.
    pub grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            max_connections: 256,
            grace: Duration::from_secs(10),
        }
    }
}

/// Serve `router` on `listener` (HTTP/1.1) until `shutdown` resolves, then stop accepting, close
/// idle connections, let requests in flight finish within `limits.grace`, and return.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()>,
    limits: Limits,
) -> std::io::Result<()> {
    serve_with(listener, router, shutdown, limits, None).await
}

/// [`serve`] with a web configuration: TLS per connection (the handshake within
/// `limits.header_read_timeout`, holding a connection permit like any client), basic auth and
/// response headers per request, each from the configuration in force at that moment.
pub async fn serve_with(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()>,
    limits: Limits,
    web: Option<Arc<LiveWebConfig>>,
) -> std::io::Result<()> {
    let router = match &web {
        Some(live) => router.layer(axum::middleware::from_fn_with_state(live.clone(), web::guard)),
        None => router,
    };
    let graceful = GracefulShutdown::new();
    let handshakes = Arc::new(HandshakeFailures::default());
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        debug!(%peer, "connection");
        let service = TowerToHyperService::new(router.clone());
        let watcher = graceful.watcher();
        let web = web.clone();
        let builder = builder.clone();
        let handshakes = handshakes.clone();
        tokio::spawn(async move {
            // The configuration in force now (the last one the watcher published).
            let tls = web.as_ref().and_then(|w| w.current().tls.clone());
            let served = match tls {
                None => {
                    watcher
                        .watch(builder.serve_connection(TokioIo::new(stream), service))
                        .await
                }
                Some(tls) => {
                    let handshake = tokio_rustls::TlsAcceptor::from(tls).accept(stream);
                    match tokio::time::timeout(limits.header_read_timeout, handshake).await {
                        Ok(Ok(stream)) => {
                            watcher
                                .watch(builder.serve_connection(TokioIo::new(stream), service))
                                .await
                        }
                        Ok(Err(e)) => {
                            handshakes.failed(peer, &e.to_string());
                            Ok(())
                        }
                        Err(_) => {
                            handshakes.failed(peer, "timed out");
                            Ok(())
                        }
                    }
                }
            };
            if let Err(e) = served {
                debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => info!("all connections closed"),
        () = tokio::time::sleep(limits.grace) => warn!(
            grace = ?limits.grace,
            "connections still open after the grace period; stopping anyway"
        ),
    }
    Ok(())
}

/// TLS handshake failures (a client without the right certificate, an old TLS version, a port
/// scanner) are logged at `info`, at most one line per [`HandshakeFailures::EVERY`] with how many
/// more there were, so that a flood cannot fill the log; every one at `debug`. rustls's messages
/// name the alert or the certificate problem, never key material.
#[derive(Debug, Default)]
struct HandshakeFailures {
    state: std::sync::Mutex<(Option<std::time::Instant>, u64)>,
}

impl HandshakeFailures {
    const EVERY: Duration = Duration::from_secs(10);

    fn failed(&self, peer: std::net::SocketAddr, error: &str) {
        debug!(%peer, error, "TLS handshake failed");
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = std::time::Instant::now();
        match state.0 {
            Some(last) if now.duration_since(last) < Self::EVERY => state.1 += 1,
            _ => {
                let more = std::mem::take(&mut state.1);
                state.0 = Some(now);
                info!(%peer, error, not_logged_since_last = more, "TLS handshake failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_header_negotiation_honours_quality() {
        // What Prometheus sends.
        assert!(prefers_openmetrics(Some(
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        )));
        assert!(!prefers_openmetrics(None));
        assert!(!prefers_openmetrics(Some("text/plain")));
        assert!(!prefers_openmetrics(Some("application/openmetrics-text; q=0")));
        assert!(!prefers_openmetrics(Some(
            "application/openmetrics-text;q=0, text/plain"
        )));
        assert!(!prefers_openmetrics(Some(
            "application/openmetrics-text;q=0.3, text/plain;q=0.9"
        )));
        assert!(prefers_openmetrics(Some("application/openmetrics-text")));
        assert!(prefers_openmetrics(Some("Application/OpenMetrics-Text; version=1.0.0")));
    }

    #[test]
    fn accept_encoding_negotiation_honours_quality() {
        // What Prometheus sends.
        assert!(accepts_gzip(Some("gzip")));
        assert!(accepts_gzip(Some("deflate, gzip;q=1.0, *;q=0.5")));
        assert!(accepts_gzip(Some("x-gzip")));
        assert!(accepts_gzip(Some("*")));
        assert!(accepts_gzip(Some("br, GZIP ; q=0.2")));
        assert!(!accepts_gzip(None));
        assert!(!accepts_gzip(Some("")));
        assert!(!accepts_gzip(Some("identity")));
        assert!(!accepts_gzip(Some("gzip;q=0")));
        assert!(!accepts_gzip(Some("gzip;q=0, *")), "refused by name beats the wildcard");
        assert!(!accepts_gzip(Some("br, deflate")));
    }
}
