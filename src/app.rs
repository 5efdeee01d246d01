//! Wiring for the commands: build the AWS clients and the refresher, serve HTTP, run one audit,
//! start the demo. `main` only parses flags and calls these.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::info;

use crate::aws::Caller;
use crate::aws::access;
use crate::aws::clients::{AwsClients, EndpointOverride};
use crate::config::{Config, LogFormat};
use crate::http::{AppState, app};
use crate::refresh::Refresher;
use crate::render::metrics::MetricsSource;
use crate::snapshot::Snapshot;
use crate::telemetry::Telemetry;

/// The scenario `demo` runs, shipped as `config/demo-org.toml`.
#[cfg(feature = "demo")]
pub const DEMO_SCENARIO: &str = include_str!("../config/demo-org.toml");

pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,aws_config=warn,aws_smithy_runtime=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

pub async fn refresher(config: Arc<Config>, endpoint: Option<&EndpointOverride>, telemetry: &Telemetry) -> Refresher {
    let clients = AwsClients::new(&config, endpoint).await;
    let organizations = clients.organizations.clone();
    let access = access::build(&config, clients, Caller::new(telemetry.clone()));
    Refresher::new(organizations, access, config, telemetry.clone())
}

/// Refresh in the background and serve HTTP on `listener` until `shutdown` resolves.
pub async fn serve(
    config: Arc<Config>,
    endpoint: Option<EndpointOverride>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let telemetry = Telemetry::default();
    let refresher = refresher(config.clone(), endpoint.as_ref(), &telemetry).await;
    let (tx, rx) = watch::channel(None);
    let metrics = Arc::new(MetricsSource::new(rx.clone(), config.refresh_interval, &telemetry));
    let refreshing = tokio::spawn(refresher.run(tx));
    info!(listen = %listener.local_addr()?, refresh_interval = ?config.refresh_interval, checks = ?config.checks, access = config.access.as_str(), "serving /metrics");
    let result = axum::serve(listener, app(AppState { metrics, snapshots: rx }))
        .with_graceful_shutdown(shutdown)
        .await;
    refreshing.abort();
    info!("stopped");
    result
}

/// One refresh, for `audit`.
pub async fn audit_once(config: Arc<Config>, endpoint: Option<&EndpointOverride>) -> Snapshot {
    let telemetry = Telemetry::default();
    refresher(config, endpoint, &telemetry).await.refresh(None).await
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => info!("SIGINT received, shutting down"),
        _ = term => info!("SIGTERM received, shutting down"),
    }
}
