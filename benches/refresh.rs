//! Speed and memory of one refresh and one scrape for a large simulated organization.
//! Prints figures; asserts nothing about time (this machine is shared and noisy).
//!
//!     cargo bench --bench refresh                 # 10,000 accounts
//!     BENCH_ACCOUNTS=2000 cargo bench --bench refresh

use std::sync::Arc;
use std::time::Instant;

use aws_org_simulator::Scenario;
use aws_root_exporter::app;
use aws_root_exporter::aws::Operation;
use aws_root_exporter::aws::clients::EndpointOverride;
use aws_root_exporter::config::{Checks, RawConfig};
use aws_root_exporter::render::metrics::MetricsSource;
use aws_root_exporter::telemetry::Telemetry;

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    let accounts: usize = std::env::var("BENCH_ACCOUNTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let scenario = Scenario::parse(
            &format!(
                "[organization]\nid = \"o-benchmark01\"\nmanagement_account_id = \"111111111111\"\n\n[generate]\naccounts = {accounts}\nseed = 7\naccess_keys = 0.02\npassword = 0.3\nmfa = 0.6\nsigning_certificates = 0.01\n"
            ),
            "bench",
        )
        .unwrap();
        let running = aws_org_simulator::start(&scenario, "127.0.0.1:0".parse().unwrap(), "127.0.0.1:0".parse().unwrap(), std::future::pending())
            .await
            .unwrap();
        let endpoint = EndpointOverride {
            url: running.endpoint_url(),
            access_key_id: "AKIDBENCHMARK0000001".into(),
            secret_access_key: "bench".into(),
        };
        println!("organization: {} member accounts (simulator in the same process)", accounts);
        for checks in [Checks::Summary, Checks::Full] {
            let config = Arc::new(
                RawConfig { checks, concurrency: 64, account_timeout: "60s".into(), ..RawConfig::default() }.validate().unwrap(),
            );
            let telemetry = Telemetry::default();
            let refresher = app::refresher(config.clone(), Some(&endpoint), &telemetry).await;
            let started = Instant::now();
            let snapshot = refresher.refresh(None).await;
            let took = started.elapsed();
            let c = snapshot.outcome_counts();
            println!(
                "refresh {checks:?}: {:.2} s, {:.0} accounts/s (audited {}, failed {}, skipped {}), AssumeRoot calls {}",
                took.as_secs_f64(),
                c.audited as f64 / took.as_secs_f64(),
                c.audited,
                c.failed,
                c.skipped,
                telemetry.requests_for(Operation::AssumeRoot)
            );
            let (tx, rx) = tokio::sync::watch::channel(Some(Arc::new(snapshot)));
            let (_config_tx, configs) = tokio::sync::watch::channel(config.clone());
            let metrics = MetricsSource::new(rx, configs, &telemetry);
            let rounds = 5;
            let started = Instant::now();
            let mut bytes = 0;
            for _ in 0..rounds {
                bytes = metrics.encode_openmetrics().len();
            }
            println!(
                "scrape {checks:?}: {:.1} ms per render, {} KiB",
                started.elapsed().as_secs_f64() * 1000.0 / rounds as f64,
                bytes / 1024
            );
            drop(tx);
        }
        if let Some(kib) = peak_rss_kib() {
            println!("peak RSS (exporter and simulator together): {} MiB", kib / 1024);
        }
    });
}
