//! The command line: parse flags, set up logging, load the configuration, run a command.

#[cfg(feature = "demo")]
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use aws_root_exporter::app;
#[cfg(feature = "demo")]
use aws_root_exporter::aws::clients::EndpointOverride;
use aws_root_exporter::config::{self, Config};
use aws_root_exporter::render::report::{self, Format};
use clap::{Args, Parser, Subcommand};
use serde::Serialize;

#[derive(Parser)]
#[command(
    version,
    about = "Prometheus exporter for the root-user credentials of every account of an AWS Organization",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    flags: ConfigFlags,
}

#[derive(Subcommand)]
enum Command {
    /// Refresh in the background and serve /metrics (the default).
    Serve {
        #[command(flatten)]
        flags: ConfigFlags,
    },
    /// Audit the organization once, print the result on stdout, and exit: 0 when every account
    /// was audited, 1 when some failed (listed on stderr), 2 on bad configuration.
    Audit {
        #[arg(long, value_enum, default_value = "tsv")]
        format: Format,
        #[command(flatten)]
        flags: ConfigFlags,
    },
    /// Validate the configuration and print the effective values.
    CheckConfig {
        #[command(flatten)]
        flags: ConfigFlags,
    },
    /// Ask the exporter running on `listen` (loopback when it listens on every address) whether
    /// it is alive: exit 0 when /healthz answers 200 within 3 s, else 1. For a container
    /// HEALTHCHECK without curl.
    Healthcheck {
        #[command(flatten)]
        flags: ConfigFlags,
    },
    /// Serve the simulated AWS organization of a scenario file (the project's AWS test double).
    #[cfg(feature = "demo")]
    Simulate {
        #[arg(long)]
        scenario: PathBuf,
        /// Address of the AWS endpoint (Organizations, STS, IAM).
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// Address of the control API.
        #[arg(long, default_value = "127.0.0.1:0")]
        control_listen: SocketAddr,
    },
    /// Run the exporter against a built-in simulated organization (config/demo-org.toml).
    #[cfg(feature = "demo")]
    Demo {
        #[command(flatten)]
        flags: ConfigFlags,
    },
}

/// Flags for the configuration keys; each overrides the file and the environment.
#[derive(Args, Serialize, Default)]
struct ConfigFlags {
    /// TOML configuration file.
    #[arg(long)]
    #[serde(skip)]
    config: Option<PathBuf>,
    #[arg(long, help = config::flag_help("listen"))]
    #[serde(skip_serializing_if = "Option::is_none")]
    listen: Option<String>,
    #[arg(long, help = config::flag_help("refresh_interval"))]
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_interval: Option<String>,
    #[arg(long, help = config::flag_help("concurrency"))]
    #[serde(skip_serializing_if = "Option::is_none")]
    concurrency: Option<usize>,
    #[arg(long, help = config::flag_help("account_timeout"))]
    #[serde(skip_serializing_if = "Option::is_none")]
    account_timeout: Option<String>,
    #[arg(long, help = config::flag_help("sts_region"))]
    #[serde(skip_serializing_if = "Option::is_none")]
    sts_region: Option<String>,
    #[arg(long, help = config::flag_help("session_duration"))]
    #[serde(skip_serializing_if = "Option::is_none")]
    session_duration: Option<String>,
    #[arg(long, help = config::flag_help("include_accounts"), value_delimiter = ',')]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    include_accounts: Vec<String>,
    #[arg(long, help = config::flag_help("exclude_accounts"), value_delimiter = ',')]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    exclude_accounts: Vec<String>,
    #[arg(long, help = config::flag_help("log_format"), value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    log_format: Option<LogFormatArg>,
    #[arg(long, help = config::flag_help("log_level"), value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    log_level: Option<LogLevelArg>,
    #[arg(long, help = config::flag_help("checks"), value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    checks: Option<ChecksArg>,
    #[arg(long, help = config::flag_help("access"), value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    access: Option<AccessArg>,
    #[arg(long, help = config::flag_help("member_role_name"))]
    #[serde(skip_serializing_if = "Option::is_none")]
    member_role_name: Option<String>,
    #[arg(long, help = config::flag_help("member_role_external_id"))]
    #[serde(skip_serializing_if = "Option::is_none")]
    member_role_external_id: Option<String>,
    #[arg(long, help = config::flag_help("management_account_role_arn"))]
    #[serde(skip_serializing_if = "Option::is_none")]
    management_account_role_arn: Option<String>,
    #[arg(long, help = config::flag_help("events_queue_url"))]
    #[serde(skip_serializing_if = "Option::is_none")]
    events_queue_url: Option<String>,
    #[arg(long, help = config::flag_help("account_tags"), value_delimiter = ',')]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    account_tags: Vec<String>,
}

#[derive(Clone, Copy, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
enum AccessArg {
    Auto,
    AssumeRoot,
    Role,
}

#[derive(Clone, Copy, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
enum LogFormatArg {
    Text,
    Json,
}

#[derive(Clone, Copy, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
enum LogLevelArg {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

#[derive(Clone, Copy, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
enum ChecksArg {
    Summary,
    Full,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve { flags: cli.flags });
    let flags = match &command {
        #[cfg(feature = "demo")]
        Command::Simulate {
            scenario,
            listen,
            control_listen,
        } => {
            app::init_logging(config::LogFormat::Text, config::LogLevel::Info);
            return run_simulator(scenario, *listen, *control_listen);
        }
        #[cfg(feature = "demo")]
        Command::Demo { flags } => flags,
        Command::Serve { flags }
        | Command::Audit { flags, .. }
        | Command::CheckConfig { flags }
        | Command::Healthcheck { flags } => flags,
    };
    let loaded = match config::load(flags.config.as_deref(), flags) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: configuration: {e}");
            return ExitCode::from(2);
        }
    };
    app::init_logging(loaded.config.log_format, loaded.config.log_level);
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    let config = Arc::new(loaded.config);
    match command {
        Command::CheckConfig { .. } => {
            print!("{}", config.to_toml());
            ExitCode::SUCCESS
        }
        Command::Healthcheck { .. } => match healthcheck(config.listen) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("unhealthy: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Serve { flags } => report_error(run_serve(config, reloader(flags))),
        Command::Audit { format, .. } => run_audit(config, format),
        #[cfg(feature = "demo")]
        Command::Demo { flags } => report_error(run_demo(config, reloader(flags))),
        #[cfg(feature = "demo")]
        Command::Simulate { .. } => unreachable!("handled above"),
    }
}

/// GET /healthz on `listen` (loopback for an unspecified address) and expect 200.
fn healthcheck(listen: std::net::SocketAddr) -> anyhow::Result<()> {
    use std::io::{Read, Write};
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
    use std::time::Duration;
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let addr = SocketAddr::new(ip, listen.port());
    let timeout = Duration::from_secs(3);
    let mut stream = TcpStream::connect_timeout(&addr, timeout).with_context(|| format!("cannot connect to {addr}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())?;
    let mut head = [0u8; 12];
    stream
        .read_exact(&mut head)
        .with_context(|| format!("no answer from {addr}"))?;
    match &head {
        b"HTTP/1.1 200" => Ok(()),
        other => anyhow::bail!("{addr}/healthz answered {:?}", String::from_utf8_lossy(other)),
    }
}

fn report_error(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Reads the file and environment again, with the same flags, for SIGHUP.
fn reloader(flags: ConfigFlags) -> app::Reload {
    Box::new(move || config::load(flags.config.as_deref(), &flags))
}

fn run_serve(config: Arc<Config>, reload: app::Reload) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {} (key `listen`)", config.listen))?;
        app::serve(config, None, listener, app::shutdown_signal(), Some(reload))
            .await
            .context("HTTP server failed")
    })
}

fn run_audit(config: Arc<Config>, format: Format) -> ExitCode {
    let snapshot = match runtime() {
        Ok(rt) => rt.block_on(app::audit_once(config, None)),
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    if !snapshot.refresh_ok {
        eprintln!("error: cannot list the organization's accounts (see the log above)");
        return ExitCode::FAILURE;
    }
    print!("{}", report::render(&snapshot, format));
    let failures = report::failures(&snapshot);
    for (entry, reason) in &failures {
        eprintln!(
            "not audited: {} ({}): {reason}",
            entry.account.id,
            report::printable(&entry.account.name)
        );
    }
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `simulate`: exit 2 when the scenario is bad, 1 on other failures.
#[cfg(feature = "demo")]
fn run_simulator(scenario: &std::path::Path, listen: SocketAddr, control_listen: SocketAddr) -> ExitCode {
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => return report_error(Err(e)),
    };
    match rt.block_on(aws_org_simulator::serve(
        scenario,
        listen,
        control_listen,
        app::shutdown_signal(),
    )) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ aws_org_simulator::ServeError::Scenario(_)) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(feature = "demo")]
fn run_demo(config: Arc<Config>, reload: app::Reload) -> anyhow::Result<()> {
    use aws_org_simulator::{Scenario, start};
    let scenario = Scenario::parse(app::DEMO_SCENARIO, "config/demo-org.toml (built in)")?;
    runtime()?.block_on(async {
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let running = start(&scenario, "127.0.0.1:0".parse()?, "127.0.0.1:0".parse()?, async {
            let _ = stop_rx.await;
        })
        .await
        .context("cannot start the simulator")?;
        let endpoint = EndpointOverride {
            url: running.endpoint_url(),
            access_key_id: "AKIDDEMOEXPORTER0001".into(),
            secret_access_key: "demo-secret-not-a-real-key".into(),
        };
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {} (key `listen`)", config.listen))?;
        let bound = listener.local_addr()?;
        let shown = match bound.ip().is_unspecified() {
            true => format!("127.0.0.1:{}", bound.port()),
            false => bound.to_string(),
        };
        println!(
            "demo: simulated organization at {} (control API {})",
            running.endpoint_url(),
            running.control_url()
        );
        println!("demo: metrics at http://{shown}/metrics (first refresh takes a moment; Ctrl-C stops)");
        let served = app::serve(config, Some(endpoint), listener, app::shutdown_signal(), Some(reload)).await;
        let _ = stop_tx.send(());
        served.context("HTTP server failed")
    })
}
