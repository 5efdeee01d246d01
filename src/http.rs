//! The HTTP face: `/metrics`, `/healthz`, `/readyz` and a small index page. Handlers only read
//! the latest snapshot; they never wait on AWS.

use std::sync::Arc;

use crate::refresh::SnapshotReceiver;
use crate::render::metrics::{MetricsSource, openmetrics_to_text};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

#[derive(Clone)]
pub struct AppState {
    pub metrics: Arc<MetricsSource>,
    pub snapshots: SnapshotReceiver,
}

pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found; see / for the endpoints\n") })
        .with_state(state)
}

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let wants_openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/openmetrics-text"));
    let body = state.metrics.encode_openmetrics();
    if wants_openmetrics {
        ([(header::CONTENT_TYPE, OPENMETRICS)], body).into_response()
    } else {
        ([(header::CONTENT_TYPE, TEXT)], openmetrics_to_text(&body)).into_response()
    }
}

async fn ready(State(state): State<AppState>) -> Response {
    if state.snapshots.borrow().is_some() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "first refresh still running\n").into_response()
    }
}

async fn index() -> Html<&'static str> {
    Html(concat!(
        "<!doctype html><html><head><title>aws-root-exporter</title></head><body>",
        "<h1>aws-root-exporter ",
        env!("CARGO_PKG_VERSION"),
        "</h1><p>Root-user credentials of every account of an AWS Organization, as Prometheus metrics.</p>",
        "<ul><li><a href=\"metrics\">metrics</a></li><li><a href=\"healthz\">healthz</a> (alive)</li>",
        "<li><a href=\"readyz\">readyz</a> (first refresh finished)</li></ul></body></html>\n"
    ))
}
