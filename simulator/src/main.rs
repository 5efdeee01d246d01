//! `aws-org-simulator`: serve the simulated AWS organization of a scenario file (or several
//! organizations, one per `--scenario`) until SIGTERM or SIGINT. Exit status: 0 after a signal, 2 when the scenario cannot be read or is invalid (or
//! the flags are wrong), 1 on any other failure.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use aws_org_simulator::ServeError;
use clap::Parser;

/// Serve the simulated AWS organization of a scenario file (the AWS test double of
/// aws-root-exporter): Organizations, STS and IAM on one address, a control API on another.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// Scenario file (TOML). Repeat it to serve several organizations in one world (account ids
    /// unique across them; any caller key no scenario lists is the first one's caller).
    #[arg(long, required = true)]
    scenario: Vec<PathBuf>,
    /// Address of the AWS endpoint (Organizations, STS, IAM).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Address of the control API.
    #[arg(long, default_value = "127.0.0.1:0")]
    control_listen: SocketAddr,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        // Install the handlers before the addresses are printed, so that a signal sent as soon
        // as they are read stops the simulator gracefully.
        let shutdown = match shutdown_signal() {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: cannot install the signal handlers: {e}");
                return ExitCode::FAILURE;
            }
        };
        match aws_org_simulator::serve_many(&cli.scenario, cli.listen, cli.control_listen, shutdown).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                match e {
                    ServeError::Scenario(_) => ExitCode::from(2),
                    _ => ExitCode::FAILURE,
                }
            }
        }
    })
}

/// A future that resolves on SIGINT (Ctrl-C) or SIGTERM; the handlers are installed now.
#[cfg(unix)]
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}

#[cfg(not(unix))]
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
