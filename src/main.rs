//! The command line: parse flags, set up logging, load the configuration, run a command.

use std::io::IsTerminal;
#[cfg(feature = "demo")]
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use aws_root_exporter::app;
#[cfg(feature = "demo")]
use aws_root_exporter::aws::clients::EndpointOverride;
use aws_root_exporter::config::{self, Config, KeyFlags};
use aws_root_exporter::render::report::{self, Format};
use clap::{Args, Parser, Subcommand};
use serde::Serialize;

/// `--version`, as the Go exporters print it: version and revision, build date, toolchain.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (revision: ",
    env!("AWS_ROOT_EXPORTER_BUILD_REVISION"),
    ")\n  build date:   ",
    env!("AWS_ROOT_EXPORTER_BUILD_DATE"),
    "\n  rust version: ",
    env!("AWS_ROOT_EXPORTER_RUSTC_VERSION"),
    "\n  platform:     ",
    env!("AWS_ROOT_EXPORTER_PLATFORM"),
);

#[derive(Parser)]
#[command(
    version = VERSION,
    about = "Prometheus exporter for the root-user credentials of every account of an AWS Organization",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    flags: ServeFlags,
}

#[derive(Subcommand)]
enum Command {
    /// Refresh in the background and serve /metrics (the default).
    Serve {
        #[command(flatten)]
        flags: ServeFlags,
    },
    /// Audit the organization once, print the result on stdout, and exit: 0 when every account
    /// was audited, 1 when some failed (listed on stderr), 2 on bad configuration.
    Audit {
        #[arg(long, value_enum, default_value = "tsv")]
        format: Format,
        #[command(flatten)]
        flags: AuditCommandFlags,
    },
    /// Validate the configuration (every key, whichever command uses it) and print the
    /// effective values.
    CheckConfig {
        #[command(flatten)]
        flags: ServeFlags,
    },
    /// Ask the exporter running on `listen` (loopback when it listens on every address) whether
    /// it is alive: exit 0 when /healthz answers 200 within 3 s, else 1. For a container
    /// HEALTHCHECK without curl.
    Healthcheck {
        #[command(flatten)]
        flags: HealthcheckFlags,
    },
    /// Serve the simulated AWS organization of a scenario file (the project's AWS test double).
    #[cfg(feature = "demo")]
    Simulate {
        /// Scenario file (TOML); repeat it to serve several organizations in one world.
        #[arg(long, required = true)]
        scenario: Vec<PathBuf>,
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
        flags: ServeFlags,
    },
}

// Flags for the configuration keys: each overrides the file and the environment. A command
// offers the flags of the key groups it uses (`config::Offered`, from each key's `commands` in
// `config::KEYS`), but its file and environment may still set any key (one file serves every
// command), and every key is validated.
//
//   serve, demo, check-config: every key
//   audit:                     what one refresh reads
//   healthcheck:               where and how to listen, so where and how to ask

/// The configuration file, for every command that reads the configuration.
#[derive(Args, Default)]
struct ConfigFile {
    /// TOML configuration file.
    #[arg(long, visible_alias = "config.file")]
    config: Option<PathBuf>,
}

/// A command's flags: the configuration file, and the flags of the key groups it uses (`G`),
/// which serialize to the keys that were given, for the flag layer of `config::load`.
#[derive(Args, Serialize, Default)]
struct Flags<G: Args> {
    #[command(flatten)]
    #[serde(skip)]
    file: ConfigFile,
    #[command(flatten)]
    #[serde(flatten)]
    keys: G,
}

impl<G: Args + Serialize> Flags<G> {
    fn load(&self) -> Result<config::Loaded, config::ConfigError> {
        config::load(self.file.config.as_deref(), self)
    }
}

type ServeFlags = Flags<KeyFlags<config::EveryKey>>;
/// `audit`: no `listen`, no schedule, no events.
type AuditCommandFlags = Flags<KeyFlags<config::RefreshKeys>>;
/// `healthcheck`: where to ask.
type HealthcheckFlags = Flags<KeyFlags<config::ListenKeys>>;

/// Allocations of this size or more get pages of their own, given back to the system when freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 128 * 1024;

/// Two glibc malloc settings, each unless its `MALLOC_*_` variable in the environment says
/// otherwise. glibc raises its threshold for mapping big allocations on their own each time one
/// of them is freed (up to 32 MiB): after the first refresh, the snapshots, exposition chunks and
/// compressed bodies of later refreshes would come from the heap, whose freed space glibc keeps;
/// a fixed threshold gives that memory back (about 6 MiB at 10,000 accounts). And one arena for
/// all threads: with one per thread, each keeps its own freed memory (2 to 3 MiB more at the peak
/// of a refresh of 10,000 accounts, for no CPU time we could measure on two cores).
#[allow(unsafe_code)]
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
            // SAFETY: mallopt only sets a glibc malloc parameter; called before other threads.
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            }
        }
        if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
            // SAFETY: as above.
            unsafe {
                libc::mallopt(libc::M_ARENA_MAX, 1);
            }
        }
    }
}

fn main() -> ExitCode {
    tune_allocator();
    let cli = Cli::parse();
    #[allow(unused_mut)]
    let mut command = cli.command.unwrap_or(Command::Serve { flags: cli.flags });
    #[cfg(feature = "demo")]
    if let Command::Demo { flags } = &mut command {
        demo_listens_on_loopback(flags);
    }
    let loaded = match &command {
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
        Command::Demo { flags } => flags.load(),
        Command::Serve { flags } | Command::CheckConfig { flags } => flags.load(),
        Command::Audit { flags, .. } => flags.load(),
        Command::Healthcheck { flags } => flags.load(),
    };
    let loaded = match loaded {
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
            print!("{}{}", config.to_toml(), config.organizations_summary());
            ExitCode::SUCCESS
        }
        Command::Healthcheck { .. } => match app::healthcheck(&config) {
            Ok(_) => ExitCode::SUCCESS,
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
fn reloader(flags: ServeFlags) -> app::Reload {
    Box::new(move || flags.load())
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
        // Progress only for a person watching: stderr on a terminal.
        Ok(rt) => rt.block_on(app::audit_with_progress(config, None, std::io::stderr().is_terminal())),
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
    for (entry, reason, message) in &failures {
        eprintln!(
            "not audited: {} ({}): {reason}: {}",
            entry.account.id,
            report::printable(&entry.account.name),
            report::printable(message)
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
fn run_simulator(scenario: &[PathBuf], listen: SocketAddr, control_listen: SocketAddr) -> ExitCode {
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => return report_error(Err(e)),
    };
    match rt.block_on(aws_org_simulator::serve_many(
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

/// The accounts of a scenario whose audit is denied on purpose (`assume_root = "access_denied"`).
#[cfg(feature = "demo")]
fn failing_on_purpose(scenario: &str) -> Vec<(String, String)> {
    let Ok(table) = scenario.parse::<toml::Table>() else {
        return Vec::new();
    };
    let accounts = table
        .get("accounts")
        .and_then(|a| a.as_array())
        .cloned()
        .unwrap_or_default();
    accounts
        .iter()
        .filter(|a| a.get("assume_root").and_then(|m| m.as_str()) == Some("access_denied"))
        .filter_map(|a| Some((a.get("id")?.as_str()?.to_string(), a.get("name")?.as_str()?.to_string())))
        .collect()
}

/// `demo` listens on loopback unless `listen` is set (flag, variable or file): a demo is not a
/// service for the network.
#[cfg(feature = "demo")]
fn demo_listens_on_loopback(flags: &mut ServeFlags) {
    let set_in_file = flags.file.config.as_deref().is_some_and(|path| {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|text| text.parse::<toml::Table>().ok())
            .is_some_and(|t| t.contains_key("listen"))
    });
    let set_in_env = std::env::var_os(format!("{}LISTEN", config::ENV_PREFIX)).is_some();
    if flags.keys.given("listen").is_none() && !set_in_env && !set_in_file {
        flags.keys.set("listen", format!("127.0.0.1:{}", config::DEFAULT_PORT));
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
        println!(
            "demo: simulated organization at {} (control API {})",
            running.endpoint_url(),
            running.control_url()
        );
        match bound.ip().is_unspecified() {
            true => println!(
                "demo: listening on every address, port {port}: http://127.0.0.1:{port}/metrics from this machine (first refresh takes a moment; Ctrl-C stops)",
                port = bound.port()
            ),
            false => println!("demo: metrics at http://{bound}/metrics (first refresh takes a moment; Ctrl-C stops)"),
        }
        for (id, name) in failing_on_purpose(app::DEMO_SCENARIO) {
            println!(
                "demo: account {id} ({name}) fails on purpose: an SCP denies its audit (aws_root_audit_success 0, reason access_denied); its WARN lines are expected"
            );
        }
        let served = app::serve(config, Some(endpoint), listener, app::shutdown_signal(), Some(reload)).await;
        let _ = stop_tx.send(());
        served.context("HTTP server failed")
    })
}

#[cfg(all(test, feature = "demo"))]
mod tests {
    use super::*;

    #[test]
    fn demo_binds_loopback_unless_told_otherwise() {
        // (The test process has no AWS_ROOT_EXPORTER_LISTEN.)
        let mut flags = ServeFlags::default();
        demo_listens_on_loopback(&mut flags);
        assert_eq!(flags.keys.given("listen"), Some(&"127.0.0.1:9312".into()));
        let mut told = ServeFlags::default();
        told.keys.set("listen", "0.0.0.0:9312");
        demo_listens_on_loopback(&mut told);
        assert_eq!(told.keys.given("listen"), Some(&"0.0.0.0:9312".into()));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "listen = \"0.0.0.0:9312\"\n").unwrap();
        let mut in_file = ServeFlags::default();
        in_file.file.config = Some(file);
        demo_listens_on_loopback(&mut in_file);
        assert_eq!(in_file.keys.given("listen"), None, "the file's listen stands");
    }

    #[test]
    fn the_demo_names_its_accounts_that_fail_on_purpose() {
        assert_eq!(
            failing_on_purpose(app::DEMO_SCENARIO),
            vec![("135791357913".to_string(), "locked-down".to_string())]
        );
    }
}
