//! Wiring for the commands: build the AWS clients and the refresher, serve HTTP, run one audit,
//! start the demo. `main` only parses flags and calls these.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::activity::OwnSessions;
use crate::aws::Caller;
use crate::aws::access;
use crate::aws::clients::{AwsClients, EndpointOverride};
use crate::config::OrganizationRole;
use crate::config::{Config, ConfigError, Loaded};
use crate::events;
use crate::http::{self, AppState, Limits, app};
use crate::refresh::{self, Refresher};
use crate::render::metrics::MetricsSource;
use crate::snapshot::{Snapshot, Snapshots};
use crate::telemetry::Telemetry;
use crate::web::LiveWebConfig;

/// The scenario `demo` runs, shipped as `config/demo-org.toml`.
#[cfg(feature = "demo")]
pub const DEMO_SCENARIO: &str = include_str!("../config/demo-org.toml");

pub use crate::logging::init_logging;

/// A refresher for `config`, reaching its organization through `role` (none: the exporter's own
/// credentials); the sessions it opens are remembered in `own`.
pub async fn refresher(
    config: Arc<Config>,
    endpoint: Option<&EndpointOverride>,
    telemetry: &Telemetry,
    own: &OwnSessions,
    role: Option<&OrganizationRole>,
) -> Refresher {
    let clients = AwsClients::new(&config, endpoint, role).await.remembering(own);
    let organizations = clients.organizations.clone();
    let caller = Caller::new(telemetry.clone(), config.concurrency);
    let ways = access::Ways::new(&config, clients, caller.clone());
    Refresher::new(organizations, ways, config, caller, telemetry.clone())
}

/// Reads the configuration again (file and environment, with the flags given at start), for
/// SIGHUP.
pub type Reload = Box<dyn Fn() -> Result<Loaded, ConfigError> + Send + Sync>;

/// Refresh in the background (and, with `events_queue_url`, re-audit accounts as root credential
/// events arrive) and serve HTTP on `listener` until `shutdown` resolves. On `shutdown` the
/// refresh and the events consumer stop at once (no AWS call starts after it) and the server gets
/// [`Limits::grace`] to finish requests in flight. With `reload`, SIGHUP reloads the
/// configuration. With `web_config_file`, TLS, basic auth and headers apply as that file says,
/// re-read whenever it or a file it names changes (`crate::web::LiveWebConfig`).
pub async fn serve(
    config: Arc<Config>,
    endpoint: Option<EndpointOverride>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    reload: Option<Reload>,
) -> std::io::Result<()> {
    let web = match &config.web_config_file {
        Some(path) => {
            let live = LiveWebConfig::load(path).map_err(std::io::Error::other)?;
            info!(path = %path.display(), "web configuration: {}", live.current().summary());
            Some(Arc::new(live))
        }
        None => None,
    };
    let telemetry = Telemetry::default();
    // Every refresher's sessions, for the events consumers to tell the exporter's audit from
    // root activity; without a queue to read, nothing is remembered.
    let reads_events = crate::organization::of(&config)
        .iter()
        .any(|o| o.config.events_queue_url.is_some());
    let own = if reads_events {
        OwnSessions::default()
    } else {
        OwnSessions::none()
    };
    let (config_tx, configs) = watch::channel(config.clone());
    // Each organization refreshes on its own schedule with its own credentials and callers,
    // and reads its own events queue: one that cannot be reached never delays the others. The
    // list of organizations is read at start (a reload changes their settings, not the list).
    let mut tasks = Vec::new();
    let mut snapshots = Vec::new();
    for organization in crate::organization::of(&config) {
        let (tx, rx) = watch::channel(None);
        snapshots.push((Arc::<str>::from(organization.name.as_str()), rx));
        let telemetry = telemetry.for_organization(&organization.name);
        let (refreshers_tx, refreshers_rx) = watch::channel(None);
        let (org_configs, following) = organization_configs(configs.clone(), &organization);
        tasks.push(following);
        let role = organization.role.clone();
        tasks.push({
            let (telemetry, endpoint, own) = (telemetry.clone(), endpoint.clone(), own.clone());
            tokio::spawn(refresh::run(
                org_configs,
                move |config| {
                    let (endpoint, telemetry, own, role) =
                        (endpoint.clone(), telemetry.clone(), own.clone(), role.clone());
                    async move { refresher(config, endpoint.as_ref(), &telemetry, &own, role.as_ref()).await }
                },
                tx.clone(),
                refreshers_tx,
            ))
        });
        // Root events: one consumer per organization's queue (a changed `events_queue_url`
        // takes effect after a restart).
        if let Some(url) = &organization.config.events_queue_url {
            let clients = AwsClients::new(&organization.config, endpoint.as_ref(), organization.role.as_ref()).await;
            tasks.push(tokio::spawn(events::consume(
                clients.sqs_for_queue(url),
                url.clone(),
                refreshers_rx,
                tx,
                telemetry,
                events::Settings::default(),
                own.clone(),
            )));
        }
    }
    let snapshots = Snapshots(snapshots);
    let metrics = Arc::new(MetricsSource::of_organizations(
        snapshots.clone(),
        configs.clone(),
        &telemetry,
    ));
    let (reload_tx, reload_requests) = tokio::sync::mpsc::channel::<http::ReloadRequest>(4);
    let reloading = reload.map(|reload| tokio::spawn(reload_on_request(reload, config_tx, reload_requests)));
    let reload_tx = reloading.is_some().then_some(reload_tx);
    info!(listen = %listener.local_addr()?, refresh_interval = ?config.refresh_interval, checks = ?config.checks, access = config.access.as_str(), "serving /metrics");
    let stop = async move {
        shutdown.await;
        for task in tasks {
            task.abort();
        }
        if let Some(r) = reloading {
            r.abort();
        }
        info!("refresh stopped; closing connections");
    };
    let result = http::serve_with(
        listener,
        app(AppState {
            metrics,
            snapshots,
            reload: reload_tx,
            telemetry_path: config.telemetry_path.clone(),
        }),
        stop,
        Limits::default(),
        web,
    )
    .await;
    info!("stopped");
    result
}

/// The configuration of `organization`, following the running one (a reload) as the
/// organization's effective settings; an organization a reload no longer names keeps its last
/// ones (the list of organizations takes a restart). The task ends with `configs`.
fn organization_configs(
    mut configs: watch::Receiver<Arc<Config>>,
    organization: &crate::organization::Organization,
) -> (watch::Receiver<Arc<Config>>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = watch::channel(organization.config.clone());
    let name = organization.name.clone();
    let task = tokio::spawn(async move {
        while configs.changed().await.is_ok() {
            let config = configs.borrow_and_update().clone();
            if let Some(o) = crate::organization::of(&config).into_iter().find(|o| o.name == name) {
                tx.send_replace(o.config);
            }
        }
    });
    (rx, task)
}

/// On each SIGHUP, and each `POST /-/reload`: reload; a valid configuration replaces the running
/// one from the next refresh on, an invalid one is logged (and told to the request) and the
/// running one kept.
async fn reload_on_request(
    reload: Reload,
    configs: watch::Sender<Arc<Config>>,
    mut requests: tokio::sync::mpsc::Receiver<http::ReloadRequest>,
) {
    #[cfg(unix)]
    let mut hangups = {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                warn!(error = %e, "cannot listen for SIGHUP; reloads only through POST /-/reload");
                None
            }
        }
    };
    loop {
        #[cfg(unix)]
        let hangup = async {
            match hangups.as_mut() {
                Some(h) => h.recv().await,
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let hangup = std::future::pending::<Option<()>>();
        tokio::select! {
            signal = hangup => {
                if signal.is_none() {
                    return;
                }
                let _ = apply_reload(&reload, &configs, "SIGHUP");
            }
            request = requests.recv() => {
                let Some(answer) = request else { return };
                let _ = answer.send(apply_reload(&reload, &configs, "POST /-/reload"));
            }
        }
    }
}

/// One reload, asked for by `by` (for the log).
fn apply_reload(reload: &Reload, configs: &watch::Sender<Arc<Config>>, by: &str) -> Result<(), String> {
    let loaded = match reload() {
        Ok(l) => l,
        Err(e) => {
            error!(error = %e, "{by}: the configuration is invalid; keeping the running one");
            return Err(format!("the configuration is invalid; keeping the running one: {e}"));
        }
    };
    for warning in &loaded.warnings {
        warn!("{warning}");
    }
    let running = configs.borrow().clone();
    let (new, waiting) = running.reloaded(loaded.config);
    for key in waiting {
        warn!(
            key,
            "{by}: `{key}` changed; the new value takes effect after a restart (the running one is kept)"
        );
    }
    if new == *running {
        info!("{by}: configuration unchanged");
    } else {
        configs.send_replace(Arc::new(new));
        info!("{by}: configuration reloaded; it applies from the next refresh");
    }
    Ok(())
}

pub use crate::web::healthcheck::{Alive, Unhealthy};

/// `healthcheck`: ask the exporter that `config` describes whether it is alive
/// ([`crate::web::healthcheck::check`]).
pub fn healthcheck(config: &Config) -> Result<Alive, Unhealthy> {
    crate::web::healthcheck::check(config.listen, config.web_config_file.as_deref())
}

/// One refresh, for `audit`.
pub async fn audit_once(config: Arc<Config>, endpoint: Option<&EndpointOverride>) -> Snapshot {
    audit_with_progress(config, endpoint, false).await
}

/// [`audit_once`]; with `progress` (stderr is a terminal), a line on stderr says how far it is,
/// rewritten four times a second and cleared at the end.
pub async fn audit_with_progress(config: Arc<Config>, endpoint: Option<&EndpointOverride>, progress: bool) -> Snapshot {
    let mut snapshots = Vec::new();
    for organization in crate::organization::of(&config) {
        let telemetry = Telemetry::default().for_organization(&organization.name);
        let refresher = refresher(
            organization.config.clone(),
            endpoint,
            &telemetry,
            &OwnSessions::none(),
            organization.role.as_ref(),
        )
        .await;
        snapshots.push(audit_one_organization(&refresher, progress).await);
    }
    Snapshot::of_several(snapshots)
}

/// One refresh of one organization, with the progress line when asked.
async fn audit_one_organization(refresher: &Refresher, progress: bool) -> Snapshot {
    use std::io::Write;
    let refreshing = refresher.refresh(None);
    if !progress {
        return refreshing.await;
    }
    tokio::pin!(refreshing);
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
    let snapshot = loop {
        tokio::select! {
            s = &mut refreshing => break s,
            _ = tick.tick() => {
                let line = crate::render::report::progress_line(refresher.progress().now());
                let _ = write!(std::io::stderr(), "\r\x1b[2K{line}");
            }
        }
    };
    let _ = write!(std::io::stderr(), "\r\x1b[2K");
    snapshot
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
