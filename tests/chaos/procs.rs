//! The real programs as child processes: the simulator binary and the exporter's `serve`, each
//! killed and reaped when its guard is dropped (also while a panic unwinds), their output kept
//! for the evidence of a violation.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant, SystemTime};

pub const EXPORTER: &str = env!("CARGO_BIN_EXE_aws-root-exporter");

/// Lines a child wrote, both streams, in arrival order.
pub type Log = Arc<Mutex<Vec<String>>>;

/// A child process, SIGKILLed and reaped on drop.
pub struct Proc {
    pub name: String,
    child: Option<Child>,
    pub log: Log,
}

impl Proc {
    /// Spawn `command` with both streams piped into the log; `lines` receives stdout's lines.
    fn spawn(name: &str, mut command: Command) -> std::io::Result<(Proc, mpsc::Receiver<String>)> {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let log: Log = Arc::default();
        let (tx, rx) = mpsc::channel();
        pump(child.stdout.take().expect("piped"), log.clone(), Some(tx));
        pump(child.stderr.take().expect("piped"), log.clone(), None);
        Ok((
            Proc {
                name: name.to_string(),
                child: Some(child),
                log,
            },
            rx,
        ))
    }

    /// `Err` with its exit status when it has exited.
    pub fn check_alive(&mut self) -> Result<(), String> {
        match self.child.as_mut().map(|c| c.try_wait()) {
            Some(Ok(None)) => Ok(()),
            Some(Ok(Some(status))) => Err(format!("{} exited: {status}", self.name)),
            Some(Err(e)) => Err(format!("{}: cannot wait: {e}", self.name)),
            None => Err(format!("{} was killed", self.name)),
        }
    }

    /// SIGKILL and reap (idempotent).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log_text(&self) -> String {
        self.log.lock().map(|l| l.join("\n")).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

fn pump(stream: impl Read + Send + 'static, log: Log, lines: Option<mpsc::Sender<String>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if let Some(tx) = &lines {
                let _ = tx.send(line.clone());
            }
            if let Ok(mut l) = log.lock() {
                l.push(line);
            }
        }
    });
}

/// A command with a clean environment: nothing of the host's AWS set-up, and no instance
/// metadata lookups.
fn clean(program: &Path) -> Command {
    let mut c = Command::new(program);
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::temp_dir())
        .env("AWS_CONFIG_FILE", "/nonexistent/aws-config")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    c
}

/// How the simulator is started: its own binary, or (when that cannot be had up to date) the
/// exporter's `simulate`, which runs the same `aws_org_simulator::serve`.
#[derive(Debug, Clone)]
pub struct SimulatorProgram {
    program: PathBuf,
    leading_args: Vec<&'static str>,
    pub description: String,
}

/// The newest modification time of the simulator crate's sources.
fn newest_source(dir: &Path) -> Option<SystemTime> {
    let mut newest = None;
    let mut stack = vec![dir.join("src"), dir.join("Cargo.toml")];
    while let Some(p) = stack.pop() {
        let Ok(meta) = std::fs::metadata(&p) else { continue };
        if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&p) {
                stack.extend(entries.flatten().map(|e| e.path()));
            }
        } else if let Ok(m) = meta.modified() {
            newest = newest.max(Some(m));
        }
    }
    newest
}

fn up_to_date(bin: &Path, sources: Option<SystemTime>) -> bool {
    let built = std::fs::metadata(bin).and_then(|m| m.modified()).ok();
    match (built, sources) {
        (Some(b), Some(s)) => b >= s,
        (Some(_), None) => true,
        _ => false,
    }
}

impl SimulatorProgram {
    /// `aws-org-simulator` next to the exporter binary (the same target directory and profile),
    /// built with cargo when it is missing or older than its sources.
    pub fn find() -> SimulatorProgram {
        let exporter = Path::new(EXPORTER);
        let bin_dir = exporter.parent().expect("the exporter binary is in a directory");
        let bin = bin_dir.join(format!("aws-org-simulator{}", std::env::consts::EXE_SUFFIX));
        let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("simulator");
        let sources = newest_source(&crate_dir);
        let own = |description: String| SimulatorProgram {
            program: bin.clone(),
            leading_args: vec![],
            description,
        };
        if up_to_date(&bin, sources) {
            return own(format!("{}", bin.display()));
        }
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(&cargo);
        build
            .args([
                "build",
                "--quiet",
                "-p",
                "aws-org-simulator",
                "--bin",
                "aws-org-simulator",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if bin_dir.file_name().is_some_and(|n| n == "release") {
            build.arg("--release");
        }
        if let Some(target) = bin_dir.parent() {
            build.env("CARGO_TARGET_DIR", target);
        }
        eprintln!(
            "chaos: {} is missing or older than its sources; building it",
            bin.display()
        );
        let built = build.spawn().ok().and_then(|mut child| {
            let started = Instant::now();
            loop {
                match child.try_wait() {
                    Ok(Some(status)) => return Some(status.success()),
                    Ok(None) if started.elapsed() < Duration::from_secs(300) => {
                        std::thread::sleep(Duration::from_millis(200))
                    }
                    _ => {
                        let _ = child.kill();
                        let _ = child.wait();
                        return None;
                    }
                }
            }
        });
        if built == Some(true) && up_to_date(&bin, sources) {
            return own(format!("{} (built by the suite)", bin.display()));
        }
        eprintln!(
            "chaos: cannot build aws-org-simulator ({built:?}); using `aws-root-exporter simulate`, which runs the same simulator library"
        );
        SimulatorProgram {
            program: exporter.to_path_buf(),
            leading_args: vec!["simulate"],
            description: format!("{EXPORTER} simulate"),
        }
    }
}

/// The simulator as a process, with its two addresses.
pub struct Simulator {
    pub proc: Proc,
    pub endpoint: SocketAddr,
    pub control: SocketAddr,
}

impl Simulator {
    /// Start on `listen` / `control_listen` (port 0: any free port) and wait for the two lines it
    /// prints once both are bound.
    pub fn start(
        program: &SimulatorProgram,
        scenario: &Path,
        listen: SocketAddr,
        control_listen: SocketAddr,
    ) -> Result<Simulator, String> {
        let mut c = clean(&program.program);
        c.args(&program.leading_args)
            .arg("--scenario")
            .arg(scenario)
            .args([
                "--listen",
                &listen.to_string(),
                "--control-listen",
                &control_listen.to_string(),
            ])
            .env("RUST_LOG", "warn");
        let (mut proc, lines) =
            Proc::spawn("simulator", c).map_err(|e| format!("cannot start {}: {e}", program.description))?;
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut endpoint = None;
        let mut control = None;
        while endpoint.is_none() || control.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left.min(Duration::from_millis(100))) {
                Ok(line) => {
                    let addr = |prefix: &str| -> Option<SocketAddr> {
                        line.strip_prefix(prefix)?.strip_prefix("http://")?.trim().parse().ok()
                    };
                    if let Some(a) = addr("simulator control listening on ") {
                        control = Some(a);
                    } else if let Some(a) = addr("simulator listening on ") {
                        endpoint = Some(a);
                    }
                }
                Err(_) => {
                    if let Err(e) = proc.check_alive() {
                        return Err(format!("{e}: {}", proc.log_text()));
                    }
                    if left.is_zero() {
                        return Err(format!("simulator printed no addresses in 20s: {}", proc.log_text()));
                    }
                }
            }
        }
        Ok(Simulator {
            proc,
            endpoint: endpoint.expect("read"),
            control: control.expect("read"),
        })
    }

    pub fn control_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.control)
    }
}

/// The exporter's `serve` as a process.
pub struct Exporter {
    pub proc: Proc,
    pub base: String,
}

impl Exporter {
    pub fn start(endpoint: SocketAddr, args: &[&str]) -> Result<Exporter, String> {
        let port = crate::common::free_port();
        let listen = format!("127.0.0.1:{port}");
        let mut c = clean(Path::new(EXPORTER));
        c.arg("serve")
            .args(["--listen", &listen])
            .args(args)
            .env("AWS_ENDPOINT_URL", format!("http://{endpoint}"))
            .env("AWS_ACCESS_KEY_ID", "AKIDCHAOSEXPORTER001")
            .env("AWS_SECRET_ACCESS_KEY", "chaos-secret")
            .env("AWS_REGION", "us-east-1")
            .env("RUST_LOG", "warn,aws_root_exporter=info");
        let (proc, _stdout) = Proc::spawn("exporter", c).map_err(|e| format!("cannot start the exporter: {e}"))?;
        Ok(Exporter {
            proc,
            base: format!("http://{listen}"),
        })
    }
}
