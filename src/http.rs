//! The HTTP face: `/metrics`, `/healthz`, `/readyz` and a small index page, and the server that
//! runs them. Handlers only read the latest snapshot; they never wait on AWS.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

use crate::refresh::SnapshotReceiver;
use crate::render::metrics::{MetricsSource, openmetrics_to_text};

#[derive(Clone)]
pub struct AppState {
    pub metrics: Arc<MetricsSource>,
    pub snapshots: SnapshotReceiver,
}

pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/", get(index))
        .route(
            "/metrics",
            get(metrics).layer(tower_http::compression::CompressionLayer::new().gzip(true)),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found; see / for the endpoints\n") })
        .with_state(state)
}

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Whether the `Accept` header prefers OpenMetrics: its best quality is above zero and not below
/// that of the text format (`text/plain`, `text/*`, `*/*`). No header: the text format.
pub fn prefers_openmetrics(accept: Option<&str>) -> bool {
    let (mut openmetrics, mut text) = (0.0f32, 0.0f32);
    for range in accept.unwrap_or("").split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0)
            .clamp(0.0, 1.0);
        match media.as_str() {
            "application/openmetrics-text" => openmetrics = openmetrics.max(q),
            "text/plain" | "text/*" | "*/*" => text = text.max(q),
            _ => {}
        }
    }
    openmetrics > 0.0 && openmetrics >= text
}

async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let body = state.metrics.encode_openmetrics();
    if prefers_openmetrics(accept) {
        ([(header::CONTENT_TYPE, OPENMETRICS)], body).into_response()
    } else {
        ([(header::CONTENT_TYPE, TEXT)], openmetrics_to_text(&body)).into_response()
    }
}

/// Ready once a refresh has listed the organization; until then 503 with the reason.
async fn ready(State(state): State<AppState>) -> Response {
    let snapshot = state.snapshots.borrow().clone();
    match snapshot.as_deref() {
        Some(s) if s.ever_listed() => (StatusCode::OK, "ready\n").into_response(),
        Some(s) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "not ready: cannot list the organization yet (retrying): {}\n",
                s.discovery_failure.as_deref().unwrap_or("unknown error")
            ),
        )
            .into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: first refresh still running\n",
        )
            .into_response(),
    }
}

async fn index() -> Html<&'static str> {
    Html(concat!(
        "<!doctype html><html><head><title>aws-root-exporter</title></head><body>",
        "<h1>aws-root-exporter ",
        env!("CARGO_PKG_VERSION"),
        "</h1><p>Root-user credentials of every account of an AWS Organization, as Prometheus metrics.</p>",
        "<ul><li><a href=\"metrics\">metrics</a></li><li><a href=\"healthz\">healthz</a> (alive)</li>",
        "<li><a href=\"readyz\">readyz</a> (the organization was listed)</li></ul></body></html>\n"
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
    let graceful = GracefulShutdown::new();
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
        let connection = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(router.clone()));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
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
}
