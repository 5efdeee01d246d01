//! Wiring for the commands: build the AWS clients and the refresher, serve HTTP, run one audit,
//! start the demo. `main` only parses flags and calls these.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::aws::Caller;
use crate::aws::access;
use crate::aws::clients::{AwsClients, EndpointOverride};
use crate::config::{Config, ConfigError, Loaded, LogFormat, LogLevel};
use crate::events;
use crate::http::{self, AppState, Limits, app};
use crate::refresh::{self, Refresher};
use crate::render::metrics::MetricsSource;
use crate::snapshot::Snapshot;
use crate::telemetry::Telemetry;

/// The scenario `demo` runs, shipped as `config/demo-org.toml`.
#[cfg(feature = "demo")]
pub const DEMO_SCENARIO: &str = include_str!("../config/demo-org.toml");

/// Log to stderr, one line per event. `level` applies to the exporter's own events; the AWS
/// SDK's stay at `warn`. `RUST_LOG`, when set, replaces both, except that the request signer and
/// the SDK's orchestrator are never logged below `info` (at debug and trace they print canonical
/// requests and the credentials' access key ids).
/// Colour only on a terminal.
pub fn init_logging(format: LogFormat, level: LogLevel) {
    use std::io::IsTerminal;
    let level = level.as_str();
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => tracing_subscriber::EnvFilter::new(v),
        _ => tracing_subscriber::EnvFilter::new(format!("warn,aws_root_exporter={level},aws_org_simulator={level}")),
    }
    .add_directive("aws_sigv4=info".parse().expect("a valid directive"))
    .add_directive(
        "aws_smithy_runtime::client::orchestrator=info"
            .parse()
            .expect("a valid directive"),
    );
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

pub async fn refresher(config: Arc<Config>, endpoint: Option<&EndpointOverride>, telemetry: &Telemetry) -> Refresher {
    let clients = AwsClients::new(&config, endpoint).await;
    let organizations = clients.organizations.clone();
    let ways = access::Ways::new(&config, clients, Caller::new(telemetry.clone()));
    Refresher::new(organizations, ways, config, telemetry.clone())
}

/// Reads the configuration again (file and environment, with the flags given at start), for
/// SIGHUP.
pub type Reload = Box<dyn Fn() -> Result<Loaded, ConfigError> + Send + Sync>;

/// Refresh in the background (and, with `events_queue_url`, re-audit accounts as root credential
/// events arrive) and serve HTTP on `listener` until `shutdown` resolves. On `shutdown` the
/// refresh and the events consumer stop at once (no AWS call starts after it) and the server gets
/// [`Limits::grace`] to finish requests in flight. With `reload`, SIGHUP reloads the
/// configuration.
pub async fn serve(
    config: Arc<Config>,
    endpoint: Option<EndpointOverride>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    reload: Option<Reload>,
) -> std::io::Result<()> {
    let telemetry = Telemetry::default();
    let (config_tx, configs) = watch::channel(config.clone());
    let (tx, rx) = watch::channel(None);
    let (refreshers_tx, refreshers_rx) = watch::channel(None);
    let metrics = Arc::new(MetricsSource::new(rx.clone(), configs.clone(), &telemetry));
    let refreshing = {
        let telemetry = telemetry.clone();
        let endpoint = endpoint.clone();
        tokio::spawn(refresh::run(
            configs,
            move |config| {
                let (endpoint, telemetry) = (endpoint.clone(), telemetry.clone());
                async move { refresher(config, endpoint.as_ref(), &telemetry).await }
            },
            tx.clone(),
            refreshers_tx,
        ))
    };
    // Root credential events: one consumer for the process (a changed `events_queue_url` takes
    // effect after a restart).
    let consuming = match &config.events_queue_url {
        Some(url) => {
            let clients = AwsClients::new(&config, endpoint.as_ref()).await;
            Some(tokio::spawn(events::consume(
                clients.sqs_for_queue(url),
                url.clone(),
                refreshers_rx,
                tx,
                telemetry.clone(),
                events::Settings::default(),
            )))
        }
        None => None,
    };
    let reloading = reload.map(|reload| tokio::spawn(reload_on_sighup(reload, config_tx)));
    info!(listen = %listener.local_addr()?, refresh_interval = ?config.refresh_interval, checks = ?config.checks, access = config.access.as_str(), "serving /metrics");
    let stop = async move {
        shutdown.await;
        refreshing.abort();
        if let Some(c) = consuming {
            c.abort();
        }
        if let Some(r) = reloading {
            r.abort();
        }
        info!("refresh stopped; closing connections");
    };
    let result = http::serve(
        listener,
        app(AppState { metrics, snapshots: rx }),
        stop,
        Limits::default(),
    )
    .await;
    info!("stopped");
    result
}

/// On each SIGHUP: reload; a valid configuration replaces the running one from the next refresh
/// on, an invalid one is logged and the running one kept.
async fn reload_on_sighup(reload: Reload, configs: watch::Sender<Arc<Config>>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "cannot listen for SIGHUP; configuration reloads are off");
                return;
            }
        };
        while hangups.recv().await.is_some() {
            let loaded = match reload() {
                Ok(l) => l,
                Err(e) => {
                    error!(error = %e, "SIGHUP: the configuration is invalid; keeping the running one");
                    continue;
                }
            };
            for warning in &loaded.warnings {
                warn!("{warning}");
            }
            let running = configs.borrow().clone();
            let mut new = loaded.config;
            if new.listen != running.listen {
                warn!(running = %running.listen, new = %new.listen, "SIGHUP: `listen` changed; it takes effect after a restart");
                new.listen = running.listen;
            }
            if (new.log_format, new.log_level) != (running.log_format, running.log_level) {
                warn!("SIGHUP: `log_format` and `log_level` take effect after a restart");
            }
            if new == *running {
                info!("SIGHUP: configuration unchanged");
            } else {
                configs.send_replace(Arc::new(new));
                info!("SIGHUP: configuration reloaded; it applies from the next refresh");
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (reload, configs);
    }
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
