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
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    listen: Option<String>,
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_interval: Option<String>,
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    concurrency: Option<usize>,
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    account_timeout: Option<String>,
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    sts_region: Option<String>,
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    session_duration: Option<String>,
    /// Account ids to audit (comma-separated); all when empty.
    #[arg(long, value_delimiter = ',')]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    include_accounts: Vec<String>,
    /// Account ids never to audit (comma-separated).
    #[arg(long, value_delimiter = ',')]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    exclude_accounts: Vec<String>,
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    log_format: Option<LogFormatArg>,
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    log_level: Option<LogLevelArg>,
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    checks: Option<ChecksArg>,
    /// Way into member accounts.
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    access: Option<AccessArg>,
    /// Role to assume in each member account (role mode).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    member_role_name: Option<String>,
    /// External id for the member role.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    member_role_external_id: Option<String>,
    /// Role in the management account, when the exporter does not run there.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    management_account_role_arn: Option<String>,
    /// SQS queue of root credential events (re-audit an account as soon as AWS reports a change).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    events_queue_url: Option<String>,
    /// Account tag keys to serve as tag_<key> labels (comma-separated).
    #[arg(long, value_delimiter = ',')]
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
        Command::Serve { flags } | Command::Audit { flags, .. } | Command::CheckConfig { flags } => flags,
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
        Command::Serve { flags } => report_error(run_serve(config, reloader(flags))),
        Command::Audit { format, .. } => run_audit(config, format),
        #[cfg(feature = "demo")]
        Command::Demo { flags } => report_error(run_demo(config, reloader(flags))),
        #[cfg(feature = "demo")]
        Command::Simulate { .. } => unreachable!("handled above"),
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
