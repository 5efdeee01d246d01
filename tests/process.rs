//! `serve` as an operator runs it: the platform's environment, signals (SIGTERM with slow and idle
//! clients, SIGHUP reloads), no credentials at all, and what the log looks like.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{DEMO, Sim, exporter, free_port, run, text, with_sim_env};
use serde_json::json;

/// A running `serve` whose stderr is collected as it comes; killed when dropped.
struct Served {
    child: Child,
    base: String,
    port: u16,
    stderr: Arc<Mutex<String>>,
}

impl Served {
    fn start(mut c: Command, extra: &[&str]) -> Served {
        let port = free_port();
        let mut child = c
            .arg("serve")
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("serve starts");
        let stderr = common::collect_stderr(&mut child);
        Served {
            child,
            base: format!("http://127.0.0.1:{port}"),
            port,
            stderr,
        }
    }

    fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{name}");
    }

    /// Wait up to `limit` for the process to exit; its status, or `None` if it still runs.
    fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        None
    }

    async fn wait_log(&self, needle: &str, limit: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            if self.log().contains(needle) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn get(url: &str) -> (u16, String) {
    match reqwest::get(url).await {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(_) => (0, String::new()),
    }
}

/// The value of one sample (`name{labels}` as written in the exposition) of `/metrics`.
async fn metric(base: &str, series: &str) -> Option<f64> {
    let (_, body) = get(&format!("{base}/metrics")).await;
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn serve_starts_with_kubernetes_service_link_variables() {
    let sim = Sim::start(DEMO).await;
    let mut c = exporter();
    with_sim_env(&mut c, &sim);
    // What Kubernetes injects into a pod for a Service named aws-root-exporter.
    c.env("AWS_ROOT_EXPORTER_SERVICE_HOST", "10.96.0.12")
        .env("AWS_ROOT_EXPORTER_SERVICE_PORT", "9312")
        .env("AWS_ROOT_EXPORTER_PORT", "tcp://10.96.0.12:9312")
        .env("AWS_ROOT_EXPORTER_PORT_9312_TCP", "tcp://10.96.0.12:9312")
        .env("AWS_ROOT_EXPORTER_PORT_9312_TCP_PROTO", "tcp")
        .env("AWS_ROOT_EXPORTER_PORT_9312_TCP_PORT", "9312")
        .env("AWS_ROOT_EXPORTER_PORT_9312_TCP_ADDR", "10.96.0.12");
    let mut served = Served::start(c, &[]);
    common::wait_ready(&served.base).await;
    let log = served.log();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("ignoring environment variables"))
        .collect();
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(warnings[0].contains("AWS_ROOT_EXPORTER_PORT_9312_TCP_ADDR"), "{log}");
    served.signal("TERM");
    assert!(served.wait_exit(Duration::from_secs(10)).is_some_and(|s| s.success()));
}

#[test]
fn the_shipped_deployment_turns_service_links_off() {
    let manifest = std::fs::read_to_string("deploy/kubernetes/deployment.yaml").unwrap();
    let pod_spec = manifest.split("template:").nth(1).expect("a pod template");
    assert!(
        pod_spec.lines().any(|l| l.trim() == "enableServiceLinks: false"),
        "deploy/kubernetes/deployment.yaml sets enableServiceLinks: false in the pod spec"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_aws_calls_at_once_and_exits_despite_slow_and_idle_clients() {
    // Every call takes 150 ms and refreshes follow each other: one is always running.
    let scenario = format!("{DEMO}\n[latency]\ndefault_ms = 150\n");
    let sim = Sim::start(&scenario).await;
    let mut c = exporter();
    with_sim_env(&mut c, &sim);
    let mut served = Served::start(c, &["--refresh-interval", "1s"]);
    common::wait_ready(&served.base).await;
    let addr = format!("127.0.0.1:{}", served.port);
    // A client that sends half a request and then nothing.
    let mut half = TcpStream::connect(&addr).unwrap();
    half.write_all(b"GET /metrics HTTP/1.1\r\nHost: exporter\r\nAccept: */")
        .unwrap();
    // A client that keeps an idle keep-alive connection after one request.
    let mut idle = TcpStream::connect(&addr).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: exporter\r\n\r\n")
        .unwrap();
    let mut first = [0u8; 12];
    idle.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");

    let calls = |sim: &Sim| sim.running.all_calls().values().sum::<u64>();
    served.signal("TERM");
    let signalled = Instant::now();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let at_signal = calls(&sim);
    let status = tokio::task::block_in_place(|| served.wait_exit(Duration::from_secs(15)));
    let took = signalled.elapsed();
    assert!(status.is_some_and(|s| s.success()), "exit {status:?} after {took:?}");
    assert!(
        took < Duration::from_secs(12),
        "bounded by the 10 s grace period: {took:?}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(calls(&sim), at_signal, "no AWS call after the signal");
    drop((half, idle));
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let sim = Sim::start(DEMO).await;
    let mut c = exporter();
    with_sim_env(&mut c, &sim);
    let served = Served::start(c, &[]);
    common::wait_ready(&served.base).await;
    let mut slow = TcpStream::connect(format!("127.0.0.1:{}", served.port)).unwrap();
    slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: exporter\r\n").unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    let _ = slow.read_to_end(&mut rest);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(8) && took < Duration::from_secs(15),
        "the server closes after its 10 s header read timeout: {took:?}"
    );
    // Meanwhile and afterwards others are served.
    assert_eq!(get(&format!("{}/healthz", served.base)).await.0, 200);
}

#[tokio::test]
async fn sighup_reloads_the_configuration_and_keeps_it_when_invalid() {
    let sim = Sim::start(DEMO).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("exporter.toml");
    std::fs::write(&file, "refresh_interval = \"1h\"\n").unwrap();
    let mut c = exporter();
    with_sim_env(&mut c, &sim);
    c.env("RUST_LOG", "info");
    let mut served = Served::start(c, &["--config", file.to_str().unwrap()]);
    common::wait_ready(&served.base).await;
    let interval = "aws_root_exporter_refresh_interval_seconds";
    assert_eq!(metric(&served.base, interval).await, Some(3600.0));

    // (`listen` comes from a flag here, which wins over the file on reload too.)
    std::fs::write(&file, "refresh_interval = \"2h\"\nlog_level = \"debug\"\n").unwrap();
    served.signal("HUP");
    assert!(
        served.wait_log("configuration reloaded", Duration::from_secs(5)).await,
        "{}",
        served.log()
    );
    assert_eq!(metric(&served.base, interval).await, Some(7200.0));
    // log_level is set up once: the reload names it and keeps the running level.
    assert!(
        served
            .log()
            .contains("`log_level` changed; the new value takes effect after a restart"),
        "{}",
        served.log()
    );

    std::fs::write(&file, "refresh_interval = \"soon\"\n").unwrap();
    served.signal("HUP");
    assert!(
        served.wait_log("keeping the running one", Duration::from_secs(5)).await,
        "{}",
        served.log()
    );
    assert!(served.log().contains("\"soon\""), "the log says what was wrong");
    assert_eq!(metric(&served.base, interval).await, Some(7200.0));
    assert_eq!(get(&format!("{}/readyz", served.base)).await.0, 200);
    served.signal("TERM");
    assert!(served.wait_exit(Duration::from_secs(10)).is_some_and(|s| s.success()));
}

#[tokio::test]
async fn without_credentials_it_says_so_stays_unready_and_retries_discovery() {
    let sim = Sim::start(DEMO).await;
    let mut c = exporter();
    // An endpoint and a region, but no credentials anywhere in the chain.
    c.env("AWS_ENDPOINT_URL", sim.running.endpoint_url())
        .env("AWS_REGION", "us-east-1")
        .env("RUST_LOG", "info");
    let served = Served::start(c, &["--refresh-interval", "1h"]);
    let failures = "aws_root_exporter_refreshes_total{organization=\"default\",result=\"failure\"}";
    let started = Instant::now();
    let mut attempts = 0.0;
    while started.elapsed() < Duration::from_secs(45) && attempts < 3.0 {
        attempts = metric(&served.base, failures).await.unwrap_or(0.0);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        attempts >= 3.0,
        "discovery attempts in 45 s at refresh_interval = 1h: {attempts}"
    );
    let (status, body) = get(&format!("{}/readyz", served.base)).await;
    assert_eq!(status, 503);
    assert!(
        body.contains("no_credentials") && body.contains("no AWS credentials found"),
        "{body}"
    );
    let log = served.log();
    let said: Vec<&str> = log.lines().filter(|l| l.contains("no AWS credentials found")).collect();
    assert!(said.len() >= 3, "once per attempt: {log}");
    assert!(said.iter().all(|l| l.contains("reason=no_credentials")), "{log}");
    assert!(log.lines().all(|l| l.starts_with("20")), "one line per event: {log}");
    assert_eq!(
        sim.running.all_calls().values().sum::<u64>(),
        0,
        "nothing unsigned reached AWS"
    );
}

#[tokio::test]
async fn logs_are_single_lines_without_colour_and_debug_shows_the_exporters_own_events() {
    let sim = Sim::start(include_str!("fixtures/scenarios/hostile-names.toml")).await;
    for format in ["text", "json"] {
        let mut c = exporter();
        with_sim_env(&mut c, &sim);
        c.env_remove("RUST_LOG").args([
            "audit",
            "--format",
            "tsv",
            "--log-level",
            "debug",
            "--log-format",
            format,
        ]);
        let out = run(c).await;
        let stderr = text(&out.stderr);
        assert!(!stderr.contains('\u{1b}'), "no colour when stderr is not a terminal");
        let events: Vec<&str> = stderr.lines().filter(|l| !l.starts_with("not audited: ")).collect();
        for line in &events {
            match format {
                "json" => {
                    serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| panic!("{e}: {line}"));
                }
                _ => assert!(line.starts_with("20"), "a line that is not an event: {line:?}"),
            }
        }
        assert!(
            stderr.contains("audit started") && stderr.contains("audit finished"),
            "{stderr}"
        );
        if format == "json" {
            // Names are JSON strings of the name, not of its Debug form.
            let names: Vec<String> = events
                .iter()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .filter_map(|v| v["fields"]["account_name"].as_str().map(str::to_string))
                .collect();
            assert!(names.iter().any(|n| n == "plain"), "{names:?}");
            assert!(names.iter().any(|n| n == "say \"hi\" \\ back"), "{names:?}");
            assert!(names.iter().all(|n| !n.starts_with('"')), "{names:?}");
        }
        assert!(
            !stderr.contains("aws_smithy") && !stderr.contains("hyper"),
            "no SDK noise: {stderr}"
        );
        assert!(!stderr.contains("ASIA"), "no root-session key ids");
        // The failing account's summary line keeps its name on one line.
        assert!(
            stderr.contains("not audited: 555555555555 (trailing backslash \\\\): access_denied"),
            "{stderr}"
        );
    }
}

#[tokio::test]
async fn an_answer_that_is_not_from_aws_is_reported_with_its_http_status() {
    let sim = Sim::start(DEMO).await;
    let r = common::put_json(
        &sim.control("/_simulator/faults"),
        json!([{ "operation": "GetAccountSummary", "kind": "not_aws", "account_id": "222222222222" }]),
    )
    .await;
    assert_eq!(r.status(), 200);
    let mut c = exporter();
    with_sim_env(&mut c, &sim);
    c.args(["audit", "--format", "tsv", "--account-timeout", "30s"]);
    let out = run(c).await;
    let stderr = text(&out.stderr);
    let line = stderr
        .lines()
        .find(|l| l.contains("root audit failed") && l.contains("222222222222"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(
        line.contains("iam:GetAccountSummary") && line.contains("HTTP 500 (text/html"),
        "{line}"
    );
    assert!(!line.contains("unknown error code"), "{line}");
}

#[tokio::test]
async fn healthcheck_says_whether_serve_answers() {
    let sim = Sim::start(DEMO).await;
    let mut c = exporter();
    with_sim_env(&mut c, &sim);
    let mut served = Served::start(c, &[]);
    common::wait_ready(&served.base).await;
    let check = |port: u16| {
        let mut c = exporter();
        c.args(["healthcheck", "--listen", &format!("0.0.0.0:{port}")]);
        c
    };
    let out = run(check(served.port)).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    served.signal("TERM");
    assert!(served.wait_exit(Duration::from_secs(10)).is_some());
    let out = run(check(served.port)).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with("unhealthy: cannot connect to 127.0.0.1:"),
        "{}",
        text(&out.stderr)
    );
}

/// A basic-auth web configuration (plain HTTP) for user `alice` with password `alice-password`,
/// with a response header.
fn basic_auth_web_config() -> String {
    let hash = bcrypt::hash("alice-password", 4).unwrap();
    format!("http_server_config:\n  headers:\n    X-Frame-Options: deny\nbasic_auth_users:\n  alice: {hash}\n")
}

/// GET `url`, as `alice` when `authenticated`; the status (0 without an answer) and whether the
/// body is the exposition.
async fn scrape_as(client: &reqwest::Client, url: &str, authenticated: bool) -> (u16, bool) {
    let mut request = client.get(url);
    if authenticated {
        request = request.basic_auth("alice", Some("alice-password"));
    }
    match request.send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            let body = r.text().await.unwrap_or_default();
            (status, body.contains("aws_organizations_account_info{"))
        }
        Err(_) => (0, false),
    }
}

/// An editor or `cat > web.yml` truncates the file, then writes it: for a moment the file is
/// empty or cut short, a valid configuration without basic auth. Rewritten in place 100 times a
/// second for 10 s (every other time in two writes 2 ms apart, cut just before
/// `basic_auth_users`), three clients scraping without credentials never get `/metrics`, and an
/// authenticated one always does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_place_rewrite_of_the_web_config_never_turns_basic_auth_off() {
    let sim = Sim::start(DEMO).await;
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web.yml");
    let content = basic_auth_web_config();
    std::fs::write(&web, &content).unwrap();
    let mut c = exporter();
    with_sim_env(&mut c, &sim);
    c.env("RUST_LOG", "info").env("AWS_ROOT_EXPORTER_WEB_CONFIG_FILE", &web);
    let mut served = Served::start(c, &["--refresh-interval", "1h"]);
    let metrics = format!("{}/metrics", served.base);
    let client = reqwest::Client::new();
    let start = Instant::now();
    while scrape_as(&client, &metrics, true).await != (200, true) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "never ready: {}",
            served.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (stop, web, content) = (stop.clone(), web.clone(), content.clone());
        std::thread::spawn(move || {
            use std::sync::atomic::Ordering;
            let cut = content.find("basic_auth_users").unwrap();
            let mut writes = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .truncate(true)
                    .open(&web)
                    .unwrap();
                if writes.is_multiple_of(2) {
                    f.write_all(content.as_bytes()).unwrap();
                } else {
                    f.write_all(&content.as_bytes()[..cut]).unwrap();
                    std::thread::sleep(Duration::from_millis(2));
                    f.write_all(&content.as_bytes()[cut..]).unwrap();
                }
                drop(f);
                writes += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            writes
        })
    };
    let anonymous: Vec<_> = (0..3)
        .map(|_| {
            let (client, metrics) = (client.clone(), metrics.clone());
            tokio::spawn(async move {
                let (mut tries, mut leaked) = (0u32, 0u32);
                let start = Instant::now();
                while start.elapsed() < Duration::from_secs(10) {
                    let (status, exposition) = scrape_as(&client, &metrics, false).await;
                    tries += 1;
                    if status == 200 || exposition {
                        leaked += 1;
                    }
                }
                (tries, leaked)
            })
        })
        .collect();
    let (mut authenticated, mut refused) = (0u32, Vec::new());
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        let answer = scrape_as(&client, &metrics, true).await;
        authenticated += 1;
        if answer != (200, true) {
            refused.push(answer);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut tries = 0;
    for task in anonymous {
        let (t, leaked) = task.await.unwrap();
        assert_eq!(
            leaked,
            0,
            "{leaked} of {t} anonymous scrapes got /metrics: {}",
            served.log()
        );
        tries += t;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let writes = writer.join().unwrap();
    assert!(writes > 500, "the file was rewritten {writes} times");
    assert!(tries > 300, "the anonymous clients scraped {tries} times");
    assert!(
        refused.is_empty(),
        "of {authenticated} authenticated scrapes: {refused:?}"
    );
    // Left cut (a valid configuration without basic auth): refused, logged, auth stays on.
    let cut = content.find("basic_auth_users").unwrap();
    std::fs::write(&web, &content[..cut]).unwrap();
    assert!(
        served
            .wait_log(
                "it turns basic auth off, which takes a restart",
                Duration::from_secs(10)
            )
            .await,
        "{}",
        served.log()
    );
    assert_eq!(scrape_as(&client, &metrics, false).await.0, 401);
    assert_eq!(scrape_as(&client, &metrics, true).await, (200, true));
    served.signal("TERM");
    assert!(served.wait_exit(Duration::from_secs(10)).is_some_and(|s| s.success()));
}

/// The web configuration replaced by a FIFO, a 1 GiB (sparse) file or an endlessly nested one:
/// each is refused and logged by the watcher while `/healthz` and authenticated scrapes answer at
/// once, and SIGTERM still stops `serve`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_a_huge_or_a_nested_web_config_never_stalls_requests_or_shutdown() {
    let sim = Sim::start(DEMO).await;
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web.yml");
    std::fs::write(&web, basic_auth_web_config()).unwrap();
    let mut c = exporter();
    with_sim_env(&mut c, &sim);
    c.env("RUST_LOG", "info").env("AWS_ROOT_EXPORTER_WEB_CONFIG_FILE", &web);
    let mut served = Served::start(c, &["--refresh-interval", "1h"]);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let (healthz, metrics) = (format!("{}/healthz", served.base), format!("{}/metrics", served.base));
    let start = Instant::now();
    while scrape_as(&client, &metrics, true).await != (200, true) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "never ready: {}",
            served.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let replace = |make: &dyn Fn(&std::path::Path)| {
        let _ = std::fs::remove_file(&web);
        make(&web);
    };
    let fifo = |p: &std::path::Path| assert!(Command::new("mkfifo").arg(p).status().unwrap().success());
    let huge = |p: &std::path::Path| std::fs::File::create(p).unwrap().set_len(1 << 30).unwrap();
    let nested = |p: &std::path::Path| std::fs::write(p, "[".repeat(100_000)).unwrap();
    for (make, logged) in [
        (&fifo as &dyn Fn(&std::path::Path), "not a regular file"),
        (&huge, "larger than 1048576 bytes"),
        (&nested, "nested more than 32 levels"),
    ] {
        replace(make);
        assert!(
            served.wait_log(logged, Duration::from_secs(10)).await,
            "{logged}: {}",
            served.log()
        );
        // Several poll intervals: every request answered within the 1 s client timeout.
        for _ in 0..6 {
            let (status, _) = scrape_as(&client, &healthz, false).await;
            assert_eq!(status, 200, "/healthz with {logged}");
            assert_eq!(
                scrape_as(&client, &metrics, true).await,
                (200, true),
                "/metrics with {logged}"
            );
            assert_eq!(
                scrape_as(&client, &metrics, false).await.0,
                401,
                "still behind basic auth"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    replace(&fifo);
    tokio::time::sleep(Duration::from_secs(1)).await;
    served.signal("TERM");
    let status = served.wait_exit(Duration::from_secs(10));
    assert!(status.is_some_and(|s| s.success()), "{status:?}: {}", served.log());
}

/// What a Prometheus user types: `--web.listen-address`, `--config.file`, `--log.format logfmt`,
/// `--log.level`; `/-/healthy`, `/-/ready` like `/healthz`, `/readyz`; `POST /-/reload` like
/// SIGHUP.
#[tokio::test]
async fn prometheus_spellings_of_flags_and_paths_work() {
    let sim = Sim::start(DEMO).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("exporter.toml");
    std::fs::write(&file, "refresh_interval = \"1h\"\n").unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut c = exporter();
    with_sim_env(&mut c, &sim);
    c.env_remove("RUST_LOG");
    let mut child = c
        .args(["serve", "--web.listen-address", &format!("127.0.0.1:{port}")])
        .args(["--config.file", file.to_str().unwrap()])
        .args(["--log.format", "logfmt", "--log.level", "info"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = common::collect_stderr(&mut child);
    let mut ready = (0, String::new());
    for _ in 0..200 {
        ready = get(&format!("{base}/-/ready")).await;
        if ready.0 == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(ready, get(&format!("{base}/readyz")).await);
    assert_eq!(ready.0, 200);
    assert_eq!(
        get(&format!("{base}/-/healthy")).await,
        get(&format!("{base}/healthz")).await
    );
    let interval = "aws_root_exporter_refresh_interval_seconds";
    assert_eq!(metric(&base, interval).await, Some(3600.0));

    let client = reqwest::Client::new();
    std::fs::write(&file, "refresh_interval = \"2h\"\n").unwrap();
    let r = client.post(format!("{base}/-/reload")).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(metric(&base, interval).await, Some(7200.0));
    std::fs::write(&file, "refresh_interval = \"soon\"\n").unwrap();
    let r = client.post(format!("{base}/-/reload")).send().await.unwrap();
    assert_eq!(r.status(), 500);
    assert!(r.text().await.unwrap().contains("\"soon\""));
    assert_eq!(metric(&base, interval).await, Some(7200.0));
    assert_eq!(get(&format!("{base}/-/reload")).await.0, 405, "a reload is a POST");

    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
    let log = stderr.lock().unwrap().clone();
    let lines: Vec<&str> = log.lines().collect();
    assert!(lines.len() >= 3, "{log}");
    for line in &lines {
        assert!(
            line.starts_with("time=") && line.contains(" level=") && line.contains(" msg="),
            "logfmt: {line}"
        );
    }
    assert!(
        log.contains("msg=\"POST /-/reload: configuration reloaded; it applies from the next refresh\""),
        "{log}"
    );
}
