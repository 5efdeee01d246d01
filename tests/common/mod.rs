//! Shared test helpers: a simulator on loopback, configurations, endpoints.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use aws_org_simulator::{RunningSimulator, Scenario};
use aws_root_exporter::app;
use aws_root_exporter::aws::clients::EndpointOverride;
use aws_root_exporter::config::{Config, RawConfig};

pub const DEMO: &str = include_str!("../../config/demo-org.toml");

/// The demo organization with centralized root access (`RootCredentialsManagement`) off.
pub const NO_ROOT_ACCESS: &str = include_str!("../fixtures/scenarios/no-root-access.toml");

/// The demo organization with no organization feature enabled.
pub const NO_FEATURES: &str = include_str!("../fixtures/scenarios/no-features.toml");

/// A simulator serving on 127.0.0.1 until the value is dropped.
pub struct Sim {
    pub running: RunningSimulator,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Sim {
    pub async fn start(scenario_toml: &str) -> Sim {
        let scenario = Scenario::parse(scenario_toml, "test scenario").expect("test scenario parses");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let running = aws_org_simulator::start(
            &scenario,
            "127.0.0.1:0".parse().unwrap(),
            "127.0.0.1:0".parse().unwrap(),
            async {
                let _ = rx.await;
            },
        )
        .await
        .expect("simulator binds loopback");
        Sim { running, _stop: tx }
    }

    /// Several organizations in one world, one per scenario text (the first is the
    /// organization of any caller key no scenario's `caller_access_key_ids` lists); the
    /// scenarios are named `test scenario 1`, `test scenario 2`... in errors.
    pub async fn start_many(scenario_tomls: &[&str]) -> Sim {
        let scenarios: Vec<Scenario> = scenario_tomls
            .iter()
            .enumerate()
            .map(|(i, text)| Scenario::parse(text, &format!("test scenario {}", i + 1)).expect("test scenario parses"))
            .collect();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let running = aws_org_simulator::start_many(
            &scenarios,
            "127.0.0.1:0".parse().unwrap(),
            "127.0.0.1:0".parse().unwrap(),
            async {
                let _ = rx.await;
            },
        )
        .await
        .expect("the scenarios go together and the simulator binds loopback");
        Sim { running, _stop: tx }
    }

    pub fn endpoint(&self) -> EndpointOverride {
        EndpointOverride {
            url: self.running.endpoint_url(),
            access_key_id: "AKIDTESTEXPORTER0001".into(),
            secret_access_key: "test-secret".into(),
        }
    }

    pub fn control(&self, path: &str) -> String {
        format!("{}{path}", self.running.control_url())
    }

    /// Calls the simulator answered for one operation.
    pub fn calls(&self, operation: &str) -> u64 {
        self.running.calls(operation)
    }
}

/// A free port on 127.0.0.1 (free when asked; whoever asked binds it right after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

pub fn config(edit: impl FnOnce(&mut RawConfig)) -> Arc<Config> {
    let mut raw = RawConfig {
        listen: "127.0.0.1:0".into(),
        account_timeout: "10s".into(),
        ..RawConfig::default()
    };
    edit(&mut raw);
    Arc::new(raw.validate().expect("test config is valid"))
}

pub async fn put_json(url: &str, body: serde_json::Value) -> reqwest::Response {
    reqwest::Client::new()
        .put(url)
        .json(&body)
        .send()
        .await
        .expect("control API answers")
}

pub async fn post(url: &str, body: serde_json::Value) -> serde_json::Value {
    let r = reqwest::Client::new().post(url).json(&body).send().await.unwrap();
    assert!(r.status().is_success(), "{url}: {}", r.status());
    r.json().await.unwrap_or(serde_json::Value::Null)
}

/// Poll `/metrics` until `check` holds; how long it took.
pub async fn until(base: &str, limit: Duration, what: &str, check: impl Fn(&str) -> bool) -> Duration {
    let started = std::time::Instant::now();
    loop {
        let m = scrape(base).await;
        if check(&m) {
            return started.elapsed();
        }
        assert!(started.elapsed() < limit, "{what} within {limit:?}; last scrape:\n{m}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A sample's value as a number; 0 when absent.
pub fn number(m: &str, name: &str, labels: &str) -> f64 {
    value(m, name, labels).and_then(|v| v.parse().ok()).unwrap_or(0.0)
}

pub async fn wait_ready(base: &str) {
    for _ in 0..200 {
        if let Ok(r) = reqwest::get(format!("{base}/readyz")).await
            && r.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{base}/readyz never became ready");
}

/// Expected root flags of one scenario account, computed from the scenario text alone.
pub struct Expected {
    pub id: String,
    pub name: String,
    pub status: String,
    pub scp_blocked: bool,
    pub mfa: bool,
    pub keys: bool,
    pub password: bool,
    pub certs: bool,
}

pub fn expected_accounts(scenario_toml: &str) -> Vec<Expected> {
    let v: toml::Value = toml::from_str(scenario_toml).unwrap();
    v["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let root = a.get("root").cloned().unwrap_or(toml::Value::Table(Default::default()));
            let non_empty = |k: &str| root.get(k).and_then(|x| x.as_array()).is_some_and(|x| !x.is_empty());
            let password = match root.get("password") {
                Some(toml::Value::Boolean(b)) => *b,
                Some(toml::Value::Table(_)) => true,
                _ => false,
            };
            Expected {
                id: a["id"].as_str().unwrap().into(),
                name: a["name"].as_str().unwrap().into(),
                status: a.get("status").and_then(|s| s.as_str()).unwrap_or("ACTIVE").into(),
                scp_blocked: a.get("assume_root").and_then(|s| s.as_str()) == Some("access_denied"),
                mfa: non_empty("mfa"),
                keys: non_empty("access_keys"),
                password,
                certs: non_empty("signing_certificates"),
            }
        })
        .collect()
}

pub const BIN: &str = env!("CARGO_BIN_EXE_aws-root-exporter");

/// The exporter binary with a clean environment: no AWS or exporter variables from the host,
/// and no instance metadata lookups.
pub fn exporter() -> Command {
    let mut c = Command::new(BIN);
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::temp_dir())
        .env("AWS_CONFIG_FILE", "/nonexistent/aws-config")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("RUST_LOG", "warn");
    c
}

/// Point the standard AWS variables at the simulator.
pub fn with_sim_env(c: &mut Command, sim: &Sim) {
    c.env("AWS_ENDPOINT_URL", sim.running.endpoint_url())
        .env("AWS_ACCESS_KEY_ID", "AKIDTESTEXPORTER0001")
        .env("AWS_SECRET_ACCESS_KEY", "test-secret")
        .env("AWS_REGION", "us-east-1");
}

pub async fn run(mut c: Command) -> Output {
    tokio::task::spawn_blocking(move || c.output().expect("binary runs"))
        .await
        .unwrap()
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `serve` on 127.0.0.1:0 until dropped.
pub struct Served {
    pub base: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

pub async fn serve(sim: &Sim, config: Arc<Config>) -> Served {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let endpoint = sim.endpoint();
    tokio::spawn(async move {
        app::serve(
            config,
            Some(endpoint),
            listener,
            async {
                let _ = rx.await;
            },
            None,
        )
        .await
        .unwrap();
    });
    Served { base, _stop: tx }
}

pub async fn scrape(base: &str) -> String {
    reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Samples of one metric: labels rendered as text -> value.
pub fn samples(exposition: &str, name: &str) -> BTreeMap<String, String> {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (n, labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            (n == name).then(|| (labels.to_string(), value.to_string()))
        })
        .collect()
}

pub fn value(exposition: &str, name: &str, labels: &str) -> Option<String> {
    samples(exposition, name).get(labels).cloned()
}

/// The child's stderr, read line by line as it comes (for assertions on the log of a process
/// that keeps running).
pub fn collect_stderr(child: &mut std::process::Child) -> std::sync::Arc<std::sync::Mutex<String>> {
    use std::io::BufRead;
    let collected = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let pipe = child.stderr.take().expect("stderr is piped");
    let sink = collected.clone();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
            let mut s = sink.lock().unwrap();
            s.push_str(&line);
            s.push('\n');
        }
    });
    collected
}

/// What `/metrics` served (the text format), as `promtool test rules` input series: every sample
/// held at its value for `minutes` minutes, with the `job` and `instance` labels a Prometheus
/// scrape adds and the scrape's own `up 1`. Timestamps (`*_timestamp_seconds`,
/// `process_start_time_seconds`) are made relative to the scrape, which becomes promtool's time
/// 0. Label values are copied as the exposition escapes them (the same escapes PromQL reads).
pub fn promtool_series(exposition: &str, scraped_at: std::time::SystemTime, minutes: u32) -> String {
    const TARGET: &str = r#"job="aws-root-exporter",instance="exporter:9312""#;
    let now = scraped_at.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let mut out = format!("      - series: 'up{{{TARGET}}}'\n        values: '1+0x{minutes}'\n");
    for line in exposition.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let (series, value) = line.rsplit_once(' ').expect("a sample line has a value");
        let mut value: f64 = value.parse().expect("a sample value is a number");
        if !value.is_finite() {
            continue;
        }
        let name = series.split('{').next().unwrap();
        if name.ends_with("_timestamp_seconds") || name == "process_start_time_seconds" {
            value -= now;
        }
        let labelled = match series.split_once('{') {
            Some((n, rest)) => format!("{n}{{{TARGET},{rest}"),
            None => format!("{series}{{{TARGET}}}"),
        };
        // YAML single quotes: a quote is doubled.
        out.push_str(&format!(
            "      - series: '{}'\n        values: '{value}+0x{minutes}'\n",
            labelled.replace('\'', "''")
        ));
    }
    out
}

/// Run `promtool test rules` with the shipped alerting and recording rules on `series` (from
/// [`promtool_series`]) and `(PromQL, eval time, expected value)` checks; the expression must
/// give one sample without labels (wrap it in `count(...) or vector(0)`). Panics with promtool's
/// output when a check fails.
pub fn promtool_expect(series: &str, checks: &[(&str, &str, f64)]) {
    let dir = tempfile::tempdir().unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    let mut tests = String::new();
    for (expr, at, value) in checks {
        tests.push_str(&format!(
            "      - expr: '{}'\n        eval_time: {at}\n        exp_samples:\n          - value: {value}\n",
            expr.replace('\'', "''")
        ));
    }
    let file = format!(
        "rule_files:\n  - {root}/deploy/prometheus/aws-root-exporter.rules.yml\n  - {root}/deploy/prometheus/aws-root-exporter.recording.yml\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n{series}    promql_expr_test:\n{tests}"
    );
    let path = dir.path().join("test.yaml");
    std::fs::write(&path, &file).unwrap();
    let out = Command::new("promtool")
        .arg("test")
        .arg("rules")
        .arg(&path)
        .output()
        .expect("promtool runs (scripts/test.sh installs Debian's prometheus package)");
    assert!(
        out.status.success(),
        "promtool test rules failed:\n{}{}\n--- test file ---\n{file}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// `text` with the build's own label values (`revision`, `rustc_version` of
/// `aws_root_exporter_build_info`) as placeholders, for golden files that outlive a commit.
pub fn without_build_facts(text: &str) -> String {
    use aws_root_exporter::render::families::{REVISION, RUSTC_VERSION};
    text.replace(&format!("revision=\"{REVISION}\""), "revision=\"<revision>\"")
        .replace(
            &format!("rustc_version=\"{RUSTC_VERSION}\""),
            "rustc_version=\"<rustc_version>\"",
        )
}
