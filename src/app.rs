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
use crate::web::LiveWebConfig;

/// The scenario `demo` runs, shipped as `config/demo-org.toml`.
#[cfg(feature = "demo")]
pub const DEMO_SCENARIO: &str = include_str!("../config/demo-org.toml");

/// Log to stderr, one line per event. `level` applies to the exporter's own events; the AWS
/// SDK's stay at `warn`. `RUST_LOG`, when set, replaces both, except that the request signer and
/// the SDK's orchestrator are never logged below `info` (at debug and trace they print canonical
/// requests and the credentials' access key ids).
/// Colour only on a terminal. JSON lines come from [`JsonLines`].
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
        LogFormat::Json => builder.event_format(JsonLines).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// One JSON object per event, in tracing-subscriber's JSON shape (`timestamp`, `level`,
/// `fields` with `message`, `target`, and `spans` when there are any), except that a field
/// recorded with `?` whose Debug form is a quoted string (`account_name = ?name`, which keeps
/// hostile names on one line in text logs) is the JSON string of its content: `"prod"`, not
/// `"\"prod\""`. Numbers and booleans stay JSON numbers and booleans.
pub struct JsonLines;

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for JsonLines
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        use serde_json::{Map, Value};
        use tracing_subscriber::fmt::time::FormatTime;
        let mut timestamp = String::new();
        tracing_subscriber::fmt::time::SystemTime
            .format_time(&mut tracing_subscriber::fmt::format::Writer::new(&mut timestamp))?;
        let mut fields = Map::new();
        event.record(&mut JsonFields(&mut fields));
        let meta = event.metadata();
        let mut line = Map::new();
        line.insert("timestamp".into(), Value::String(timestamp));
        line.insert("level".into(), Value::String(meta.level().to_string()));
        line.insert("fields".into(), Value::Object(fields));
        line.insert("target".into(), Value::String(meta.target().to_string()));
        if let Some(scope) = ctx.event_scope() {
            let spans: Vec<Value> = scope.from_root().map(|s| Value::String(s.name().to_string())).collect();
            line.insert("spans".into(), Value::Array(spans));
        }
        writeln!(writer, "{}", Value::Object(line))
    }
}

/// Records an event's fields as JSON values.
struct JsonFields<'a>(&'a mut serde_json::Map<String, serde_json::Value>);

impl tracing::field::Visit for JsonFields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        let value = debug_string(&text).unwrap_or(text);
        self.0.insert(field.name().into(), serde_json::Value::String(value));
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
}

/// The content of a string in Rust's Debug form (`"say \"hi\"\n"`), or `None` when `text` is
/// not one (a struct, a number, an `Option`, or a quote inside that is not escaped).
fn debug_string(text: &str) -> Option<String> {
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return None,
            '\\' => out.push(match chars.next()? {
                'n' => '\n',
                'r' => '\r',
                't' => '\t',
                '0' => '\0',
                '\\' => '\\',
                '"' => '"',
                '\'' => '\'',
                'u' => {
                    let hex: String = chars.by_ref().skip(1).take_while(|c| *c != '}').collect();
                    char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?
                }
                _ => return None,
            }),
            c => out.push(c),
        }
    }
    Some(out)
}

pub async fn refresher(config: Arc<Config>, endpoint: Option<&EndpointOverride>, telemetry: &Telemetry) -> Refresher {
    let clients = AwsClients::new(&config, endpoint).await;
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
    let result = http::serve_with(
        listener,
        app(AppState { metrics, snapshots: rx }),
        stop,
        Limits::default(),
        web,
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
            let (new, waiting) = running.reloaded(loaded.config);
            for key in waiting {
                warn!(
                    key,
                    "SIGHUP: `{key}` changed; the new value takes effect after a restart (the running one is kept)"
                );
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
    use std::io::Write;
    let telemetry = Telemetry::default();
    let refresher = refresher(config, endpoint, &telemetry).await;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_strings_are_read_back() {
        for original in [
            "prod",
            "say \"hi\" \\ back",
            "two\nlines\tand {x=\"1\"}",
            "ünïcødé ✓ 🔑",
            "bell\u{7}",
            "",
        ] {
            assert_eq!(
                debug_string(&format!("{original:?}")).as_deref(),
                Some(original),
                "{original:?}"
            );
        }
        for not_a_string in [
            "Some(\"x\")",
            "42",
            "\"a\" and \"b\"",
            "\"",
            "\"bad \\q escape\"",
            "1.5s",
        ] {
            assert_eq!(debug_string(not_a_string), None, "{not_a_string}");
        }
    }

    /// The JSON lines of events logged with `format`, through the real layer.
    fn json_lines(log: impl FnOnce()) -> Vec<serde_json::Value> {
        #[derive(Clone, Default)]
        struct Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Buffer {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .event_format(JsonLines)
            .finish();
        tracing::subscriber::with_default(subscriber, log);
        let bytes = buffer.0.lock().unwrap().clone();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    #[test]
    fn json_log_fields_are_json_strings_numbers_and_booleans() {
        let hostile = "two\nlines \"q\" \\";
        let lines = json_lines(|| {
            let span = tracing::info_span!("refresh");
            let _entered = span.enter();
            tracing::info!(
                account_name = ?"prod",
                hostile = ?hostile,
                id = %"111111111111",
                duration = ?std::time::Duration::from_millis(1500),
                count = 3u64,
                ok = true,
                "audit finished"
            );
        });
        assert_eq!(lines.len(), 1);
        let line = &lines[0];
        let fields = &line["fields"];
        assert_eq!(fields["account_name"], "prod");
        assert_eq!(fields["hostile"], hostile);
        assert_eq!(fields["id"], "111111111111");
        assert_eq!(fields["duration"], "1.5s");
        assert_eq!(fields["count"], 3);
        assert_eq!(fields["ok"], true);
        assert_eq!(fields["message"], "audit finished");
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["spans"], serde_json::json!(["refresh"]));
        assert!(line["timestamp"].as_str().unwrap().starts_with("20"), "{line}");
        assert_eq!(line["target"], "aws_root_exporter::app::tests");
    }
}
