//! Speed, memory and scrape cost of the real exporter binary (`serve`) against the simulator in
//! a process of its own (this bench binary, started again as the simulator), on generated
//! organizations with latency and rate limits. Prints each figure next to its target; asserts
//! nothing about time (this machine is shared and noisy).
//!
//!     cargo bench --bench refresh                       # every case
//!     BENCH_CASES=rate-1k cargo bench --bench refresh   # some cases (comma-separated names)
//!
//! The floor of a refresh is the longest of: the longest chain of calls that must follow each
//! other (the listing's `NextToken` chain of the biggest parent, its pages counted at the
//! simulator, then the audit of the account on its last page), all audit calls x latency / `concurrency`, and the calls of a rate-limited
//! operation / its rate. The seed-equivalent time scales the sequential seed script's measured
//! 73.8 s for 300 accounts at 50 ms per call (0.246 s per account, about 4.9 calls) to the case.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PAGE: usize = 20;
/// The seed script: seconds per account at 50 ms per call.
const SEED_SECONDS_PER_ACCOUNT_AT_50MS: f64 = 73.8 / 300.0;

#[derive(Clone, Copy)]
struct Case {
    name: &'static str,
    accounts: usize,
    /// OUs under the root the accounts are spread over (0: all under the root).
    ous: usize,
    latency_ms: u64,
    checks: &'static str,
    /// `AssumeRoot` rate limit (requests per second, burst), if any.
    assume_root_rate: Option<(f64, usize)>,
    /// Measure scrapes while idle and during a second refresh, and peak memory.
    serve: bool,
    targets: &'static [&'static str],
}

const CASES: [Case; 4] = [
    Case {
        name: "ous-10k",
        accounts: 10_000,
        ous: 20,
        latency_ms: 50,
        checks: "summary",
        assume_root_rate: None,
        serve: false,
        targets: &["refresh <= 1.1x floor", "speed-up >= 100x", "0 failed"],
    },
    Case {
        name: "flat-10k",
        accounts: 10_000,
        ous: 0,
        latency_ms: 50,
        checks: "summary",
        assume_root_rate: None,
        serve: false,
        targets: &["refresh <= 1.1x floor", "speed-up >= 100x", "0 failed"],
    },
    Case {
        name: "rate-1k",
        accounts: 1_000,
        ous: 10,
        latency_ms: 20,
        checks: "summary",
        assume_root_rate: Some((50.0, 50)),
        serve: false,
        targets: &["refresh <= 1.15x rate bound (20 s)", "0 failed"],
    },
    Case {
        name: "serve-10k-full",
        accounts: 10_000,
        ous: 20,
        latency_ms: 1,
        checks: "full",
        assume_root_rate: None,
        serve: true,
        targets: &[
            "peak RSS <= 40 MiB",
            "scrape p50 <= 5 ms",
            "<= 1 MiB per scrape with gzip",
        ],
    },
];

fn scenario(case: &Case) -> String {
    let mut s = format!(
        "[organization]\nid = \"o-benchmark01\"\nmanagement_account_id = \"111111111111\"\n\n[generate]\naccounts = {}\nous = {}\nseed = 7\naccess_keys = 0.02\npassword = 0.3\nmfa = 0.6\nsigning_certificates = 0.01\n\n[latency]\ndefault_ms = {}\n",
        case.accounts, case.ous, case.latency_ms
    );
    if let Some((rate, burst)) = case.assume_root_rate {
        s.push_str(&format!(
            "\n[rate_limits]\nAssumeRoot = {{ rate = {rate}, burst = {burst} }}\n"
        ));
    }
    s
}

/// The simulator child: serve the scenario at `path`, print the two URLs, stop when stdin closes.
fn simulator_child(path: &str) {
    let text = std::fs::read_to_string(path).expect("scenario file");
    let scenario = aws_org_simulator::Scenario::parse(&text, path).expect("valid scenario");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // The bench closes stdin (or ends) when it is done with this simulator.
    std::thread::spawn(|| {
        let mut sink = String::new();
        let _ = std::io::stdin().read_line(&mut sink);
        std::process::exit(0);
    });
    rt.block_on(async {
        let running = aws_org_simulator::start(
            &scenario,
            "127.0.0.1:0".parse().unwrap(),
            "127.0.0.1:0".parse().unwrap(),
            std::future::pending(),
        )
        .await
        .expect("simulator starts");
        println!("endpoint {}", running.endpoint_url());
        println!("control {}", running.control_url());
        std::io::stdout().flush().unwrap();
        std::future::pending::<()>().await;
    });
}

struct Simulator {
    child: Child,
    endpoint: String,
    control: String,
}

impl Simulator {
    fn start(case: &Case, dir: &std::path::Path) -> Simulator {
        let path = dir.join(format!("{}.toml", case.name));
        std::fs::write(&path, scenario(case)).unwrap();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env("BENCH_SIMULATOR", &path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the bench binary starts again as the simulator");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut url = |prefix: &str| {
            let line = lines.next().expect("simulator prints its URLs").unwrap();
            line.strip_prefix(prefix).expect("the URL line").trim().to_string()
        };
        let endpoint = url("endpoint ");
        let control = url("control ");
        Simulator {
            child,
            endpoint,
            control,
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

struct Exporter {
    child: Child,
    base: String,
}

impl Exporter {
    fn start(case: &Case, sim: &Simulator, refresh_interval: &str) -> Exporter {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_aws-root-exporter"))
            .arg("serve")
            .env_clear()
            .env("AWS_ENDPOINT_URL", &sim.endpoint)
            .env("AWS_ACCESS_KEY_ID", "AKIDBENCHMARK0000001")
            .env("AWS_SECRET_ACCESS_KEY", "bench")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_ROOT_EXPORTER_LISTEN", format!("127.0.0.1:{port}"))
            .env("AWS_ROOT_EXPORTER_CHECKS", case.checks)
            .env("AWS_ROOT_EXPORTER_REFRESH_INTERVAL", refresh_interval)
            .env("AWS_ROOT_EXPORTER_ACCOUNT_TIMEOUT", "10m")
            .env("AWS_ROOT_EXPORTER_LOG_LEVEL", "error")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the exporter binary starts");
        Exporter {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Peak resident memory of the exporter process so far.
    fn peak_rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .map(|kib| kib / 1024.0)
            .unwrap_or(f64::NAN)
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One sample's value: the first line of `name` whose labels contain `labels`.
fn sample(exposition: &str, name: &str, labels: &str) -> Option<f64> {
    exposition.lines().find_map(|l| {
        let rest = l.strip_prefix(name)?;
        let (series, value) = rest.rsplit_once(' ')?;
        (series.starts_with(['{', ' ']) || series.is_empty())
            .then_some(())
            .filter(|_| series.contains(labels))?;
        value.parse().ok()
    })
}

fn sum(exposition: &str, name: &str) -> f64 {
    exposition
        .lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .fold(0.0, |a, b| a + b)
}

struct Scrape {
    took: Duration,
    bytes: usize,
    body: String,
}

async fn scrape(client: &reqwest::Client, base: &str, gzip: bool) -> Option<Scrape> {
    use std::io::Read;
    let mut request = client.get(format!("{base}/metrics"));
    if gzip {
        request = request.header("accept-encoding", "gzip");
    }
    let started = Instant::now();
    let response = request.send().await.ok()?;
    let bytes = response.bytes().await.ok()?;
    let took = started.elapsed();
    let body = if gzip {
        let mut text = String::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_string(&mut text)
            .ok()?;
        text
    } else {
        String::from_utf8_lossy(&bytes).into_owned()
    };
    Some(Scrape {
        took,
        bytes: bytes.len(),
        body,
    })
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// Calls of one audit, one after the other, in the account's root session.
fn audit_chain(checks: &str) -> usize {
    // AssumeRoot, GetAccountSummary; `full` adds its concurrent lists (ListAccessKeys then
    // GetAccessKeyLastUsed is the longest).
    if checks == "full" { 4 } else { 2 }
}

struct Floor {
    chain: f64,
    throughput: f64,
    rate: f64,
}

/// Listing pages the simulator served in one refresh: (the root's OU listing, the accounts of
/// the biggest parent). Pages may be shorter than 20, as AWS's may (the simulator's every third
/// page), so they are counted, not computed. The generated accounts are spread evenly over the
/// OUs, and the root holds only the management account when there are OUs.
fn served_pages(case: &Case, calls: &std::collections::BTreeMap<String, f64>) -> Option<(usize, usize)> {
    let count = |op: &str| calls.get(op).map(|n| *n as usize);
    let accounts = count("ListAccountsForParent")?;
    if case.ous == 0 {
        return Some((0, accounts));
    }
    let units = count("ListOrganizationalUnitsForParent")?;
    // Each OU lists its (no) child OUs in one page; the rest are the root's pages.
    Some((
        units.saturating_sub(case.ous),
        accounts.saturating_sub(1).div_ceil(case.ous),
    ))
}

impl Floor {
    fn of(case: &Case, concurrency: usize, pages: Option<(usize, usize)>) -> Floor {
        let latency = case.latency_ms as f64 / 1000.0;
        let biggest_parent = if case.ous == 0 {
            case.accounts
        } else {
            case.accounts.div_ceil(case.ous)
        };
        let (unit_pages, account_pages) = pages.unwrap_or((
            usize::from(case.ous > 0) * case.ous.div_ceil(PAGE).max(1),
            biggest_parent.div_ceil(PAGE),
        ));
        // DescribeOrganization, ListRoots, the OU listing of the root when there are OUs, the
        // pages of the biggest parent, then the audit of its last account.
        let listing = 2 + unit_pages + account_pages;
        let chain = (listing + audit_chain(case.checks)) as f64 * latency;
        let calls = (case.accounts * audit_chain(case.checks)) as f64;
        let throughput = calls * latency / concurrency as f64;
        let rate = case
            .assume_root_rate
            .map(|(rate, burst)| case.accounts.saturating_sub(burst) as f64 / rate)
            .unwrap_or(0.0);
        Floor {
            chain,
            throughput,
            rate,
        }
    }

    fn value(&self) -> f64 {
        self.chain.max(self.throughput).max(self.rate)
    }
}

async fn run(case: &Case, dir: &std::path::Path) {
    println!();
    println!(
        "== {}: {} member accounts{}, {} ms per call, checks = {}{}, default settings (concurrency {})",
        case.name,
        case.accounts,
        match case.ous {
            0 => " under the root".to_string(),
            n => format!(" in {n} OUs"),
        },
        case.latency_ms,
        case.checks,
        case.assume_root_rate
            .map(|(r, b)| format!(", AssumeRoot limited to {r}/s (burst {b})"))
            .unwrap_or_default(),
        default_concurrency()
    );
    println!("   targets: {}", case.targets.join("; "));
    let sim = Simulator::start(case, dir);
    let interval = if case.serve { "45s" } else { "1h" };
    let exporter = Exporter::start(case, &sim, interval);
    let client = reqwest::Client::new();
    // Wait for the first refresh, scraping as Prometheus would meanwhile.
    let started = Instant::now();
    let mut last = None;
    while started.elapsed() < Duration::from_secs(900) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if let Some(s) = scrape(&client, &exporter.base, true).await
            && sum(&s.body, "aws_root_exporter_refreshes_total") >= 1.0
        {
            last = Some(s);
            break;
        }
    }
    let Some(first) = last else {
        println!("   the first refresh did not finish within 15 minutes");
        return;
    };
    let refresh = sample(
        &first.body,
        "aws_root_exporter_refresh_duration_seconds",
        "organization=\"default\"",
    )
    .unwrap_or(f64::NAN);
    let failed = sample(
        &first.body,
        "aws_root_exporter_accounts",
        "organization=\"default\",outcome=\"failed\"",
    )
    .unwrap_or(f64::NAN);
    let audited = sample(
        &first.body,
        "aws_root_exporter_accounts",
        "organization=\"default\",outcome=\"audited\"",
    )
    .unwrap_or(f64::NAN);
    let throttled = sum(&first.body, "aws_root_exporter_aws_throttled_answers_total");
    let limit = sample(
        &first.body,
        "aws_root_exporter_aws_concurrency_limit",
        "operation=\"AssumeRoot\"",
    )
    .unwrap_or(f64::NAN);
    let sim_throttled: f64 = match client
        .get(format!("{}/_simulator/calls/throttled", sim.control))
        .send()
        .await
    {
        Ok(r) => r
            .json::<std::collections::BTreeMap<String, f64>>()
            .await
            .map(|m| m.values().fold(0.0, |a, b| a + b))
            .unwrap_or(f64::NAN),
        Err(_) => f64::NAN,
    };
    let calls: Option<std::collections::BTreeMap<String, f64>> =
        match client.get(format!("{}/_simulator/calls", sim.control)).send().await {
            Ok(r) => r.json().await.ok(),
            Err(_) => None,
        };
    let pages = calls.as_ref().and_then(|c| served_pages(case, c));
    let floor = Floor::of(case, default_concurrency(), pages);
    let seed = case.accounts as f64 * SEED_SECONDS_PER_ACCOUNT_AT_50MS * case.latency_ms as f64 / 50.0;
    println!("   refresh            {refresh:>8.2} s   (audited {audited}, failed {failed}; target 0 failed)");
    if failed > 0.0 {
        println!("   failed because     {}", failure_reasons(&first.body));
    }
    let (exporter_cpu, simulator_cpu) = (cpu_seconds(exporter.child.id()), cpu_seconds(sim.child.id()));
    println!(
        "   CPU time           {exporter_cpu:>8.1} s exporter, {simulator_cpu:.1} s simulator (the machine has {} cores)",
        cores()
    );
    if case.serve {
        serve_figures(&client, &exporter).await;
        println!(
            "   peak RSS           {:>8.1} MiB (target <= 40 MiB)",
            exporter.peak_rss_mib()
        );
        return;
    }
    println!(
        "   floor              {:>8.2} s   (longest chain {:.2} s, calls x latency / concurrency {:.2} s, rate bound {:.2} s)",
        floor.value(),
        floor.chain,
        floor.throughput,
        floor.rate
    );
    if let Some((units, accounts)) = pages {
        println!(
            "   listing chain      {accounts} pages of the biggest parent{} (counted at the simulator; pages of fewer than {PAGE} accounts make it longer)",
            if units > 0 {
                format!(", after {units} of the root's OUs")
            } else {
                String::new()
            }
        );
    }
    let ratio = refresh / floor.value();
    let target = if case.assume_root_rate.is_some() { 1.15 } else { 1.1 };
    println!("   refresh / floor    {ratio:>8.2} x   (target <= {target}x)");
    if case.assume_root_rate.is_none() {
        // A refresh cannot beat its floor: where the floor is the listing's chain, that bounds
        // the speed-up whatever the exporter does.
        println!(
            "   seed-equivalent    {seed:>8.1} s   speed-up {:.0}x (target >= 100x at 50 ms; at most {:.0}x here: seed / floor)",
            seed / refresh,
            seed / floor.value()
        );
    }
    println!(
        "   throttling answers {throttled:>8.0}     (simulator counted {sim_throttled:.0}); AssumeRoot limit at the end: {limit}"
    );
    println!("   peak RSS           {:>8.1} MiB", exporter.peak_rss_mib());
}

/// The failed accounts' reasons with their counts, and the calls that failed after retries.
fn failure_reasons(exposition: &str) -> String {
    let label = |line: &str, name: &str| -> String {
        let key = format!("{name}=\"");
        line.split_once(key.as_str())
            .and_then(|(_, rest)| rest.split_once('"'))
            .map_or(String::new(), |(v, _)| v.to_string())
    };
    let mut reasons = std::collections::BTreeMap::<String, usize>::new();
    for l in exposition
        .lines()
        .filter(|l| l.starts_with("aws_root_audit_failure_reason{"))
    {
        *reasons.entry(label(l, "reason")).or_default() += 1;
    }
    let errors: Vec<String> = exposition
        .lines()
        .filter(|l| l.starts_with("aws_root_exporter_aws_request_errors_total{"))
        .filter(|l| l.rsplit_once(' ').is_some_and(|(_, v)| v != "0"))
        .map(|l| {
            format!(
                "{} {} x{}",
                label(l, "operation"),
                label(l, "reason"),
                l.rsplit_once(' ').unwrap().1
            )
        })
        .collect();
    format!("{reasons:?}; calls failed after retries: {}", errors.join(", "))
}

/// The exporter's default `concurrency`, which the bench runs with.
fn default_concurrency() -> usize {
    aws_root_exporter::config::RawConfig::default().concurrency
}

fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// User and system CPU time of a process so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name (which may hold spaces, in parentheses).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, r)| r.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(f64::NAN);
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

async fn serve_figures(client: &reqwest::Client, exporter: &Exporter) {
    // Idle: the first snapshot served, no refresh running.
    let mut idle = Vec::new();
    let mut gzip_bytes = 0;
    for _ in 0..60 {
        if let Some(s) = scrape(client, &exporter.base, true).await {
            idle.push(s.took);
            gzip_bytes = s.bytes;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let plain = scrape(client, &exporter.base, false)
        .await
        .map(|s| s.bytes)
        .unwrap_or(0);
    // During the second refresh (it starts 45 s after the first): scrape until it ends, four
    // clients at once, as two Prometheus pairs would.
    let refreshes = |body: &str| sum(body, "aws_root_exporter_refreshes_total");
    let mut during = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let Some(s) = scrape(client, &exporter.base, true).await else {
            break;
        };
        if refreshes(&s.body) >= 2.0 || Instant::now() > deadline {
            break;
        }
        let four: Vec<_> = futures::future::join_all((0..4).map(|_| scrape(client, &exporter.base, true))).await;
        during.extend(four.into_iter().flatten().map(|s| s.took));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    idle.sort();
    during.sort();
    println!(
        "   scrape idle        p50 {:.1} ms, p99 {:.1} ms over {} scrapes (target p50 <= 5 ms; client side, loopback)",
        percentile(&idle, 0.5),
        percentile(&idle, 0.99),
        idle.len()
    );
    println!(
        "   scrape in refresh  p50 {:.1} ms, p99 {:.1} ms over {} scrapes (4 at once)",
        percentile(&during, 0.5),
        percentile(&during, 0.99),
        during.len()
    );
    println!(
        "   bytes per scrape   {:.2} MiB with gzip (target <= 1 MiB), {:.1} MiB without",
        gzip_bytes as f64 / (1 << 20) as f64,
        plain as f64 / (1 << 20) as f64
    );
}

fn main() {
    if let Ok(path) = std::env::var("BENCH_SIMULATOR") {
        return simulator_child(&path);
    }
    // `cargo bench` passes `--bench`; nothing else is taken.
    let wanted: Vec<String> = std::env::var("BENCH_CASES")
        .map(|v| v.split(',').map(|s| s.trim().to_string()).collect())
        .unwrap_or_default();
    let dir = tempfile::tempdir().unwrap();
    println!(
        "aws-root-exporter {} bench: exporter binary and simulator in separate processes, {} cores",
        env!("CARGO_PKG_VERSION"),
        cores()
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for case in CASES
            .iter()
            .filter(|c| wanted.is_empty() || wanted.iter().any(|w| w == c.name))
        {
            run(case, dir.path()).await;
        }
    });
}
