//! `serve` end to end on a real socket against the simulator: readiness, the golden `/metrics`,
//! the documentation table, state kept across failures, and the router without a socket.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{DEMO, NO_ROOT_ACCESS, Sim, config, put_json, samples, scrape, serve, value, wait_ready};
use serde_json::json;

/// Values that change from run to run become `<volatile>`; samples are sorted within families.
fn normalise(exposition: &str) -> String {
    const VOLATILE: [&str; 4] = [
        "aws_root_audit_last_success_timestamp_seconds",
        "aws_root_credential_report_generated_timestamp_seconds",
        "aws_root_exporter_last_refresh_success_timestamp_seconds",
        "aws_root_exporter_refresh_duration_seconds",
    ];
    let mut out = String::new();
    let mut block: Vec<String> = Vec::new();
    let flush = |block: &mut Vec<String>, out: &mut String| {
        block.sort();
        for l in block.drain(..) {
            out.push_str(&l);
            out.push('\n');
        }
    };
    for line in exposition.lines() {
        if line.starts_with('#') {
            flush(&mut block, &mut out);
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let name = line.split(['{', ' ']).next().unwrap();
        if VOLATILE.contains(&name) || name.starts_with("process_") {
            let (series, _) = line.rsplit_once(' ').unwrap();
            block.push(format!("{series} <volatile>"));
        } else {
            block.push(line.to_string());
        }
    }
    flush(&mut block, &mut out);
    common::without_build_facts(&out)
}

#[tokio::test]
async fn metrics_match_the_golden_file_for_the_demo_organization() {
    let sim = Sim::start(DEMO).await;
    let served = serve(&sim, config(|c| c.refresh_interval = "1h".into())).await;
    wait_ready(&served.base).await;
    let got = normalise(&scrape(&served.base).await);
    let path = "tests/golden/demo-org.metrics";
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(path, &got).unwrap();
    }
    let want = std::fs::read_to_string(path).expect("golden file exists; regenerate with UPDATE_GOLDEN=1");
    assert_eq!(
        got, want,
        "/metrics changed; if on purpose, regenerate with UPDATE_GOLDEN=1 cargo test --test http"
    );
}

#[tokio::test]
async fn demo_metrics_show_every_account_and_never_a_clean_value_for_the_blocked_one() {
    let sim = Sim::start(DEMO).await;
    let served = serve(&sim, config(|c| c.refresh_interval = "1h".into())).await;
    wait_ready(&served.base).await;
    let m = scrape(&served.base).await;
    let expected = common::expected_accounts(DEMO);
    let info = samples(&m, "aws_organizations_account_info");
    assert_eq!(info.len(), expected.len() + 1);
    for x in &expected {
        let l = format!("account_id=\"{}\",account_name=\"{}\"", x.id, x.name);
        assert!(
            info.keys()
                .any(|k| k.starts_with(&l) && k.contains(&format!("status=\"{}\"", x.status))),
            "{l}"
        );
        if x.status != "ACTIVE" {
            assert_eq!(value(&m, "aws_root_access_keys_present", &l), None);
            continue;
        }
        if x.scp_blocked {
            assert_eq!(value(&m, "aws_root_audit_success", &l).as_deref(), Some("0"));
            for g in [
                "aws_root_access_keys_present",
                "aws_root_mfa_enabled",
                "aws_root_password_present",
                "aws_root_signing_certificates_present",
            ] {
                assert_eq!(value(&m, g, &l), None, "{g} must be absent for a never-audited account");
            }
            assert_eq!(
                value(
                    &m,
                    "aws_root_audit_failure_reason",
                    &format!("{l},reason=\"access_denied\"")
                )
                .as_deref(),
                Some("1")
            );
            continue;
        }
        let bit = |b: bool| Some(if b { "1" } else { "0" }.to_string());
        assert_eq!(value(&m, "aws_root_audit_success", &l).as_deref(), Some("1"));
        assert_eq!(value(&m, "aws_root_access_keys_present", &l), bit(x.keys), "{l}");
        assert_eq!(value(&m, "aws_root_mfa_enabled", &l), bit(x.mfa), "{l}");
        assert_eq!(value(&m, "aws_root_password_present", &l), bit(x.password), "{l}");
        assert_eq!(
            value(&m, "aws_root_signing_certificates_present", &l),
            bit(x.certs),
            "{l}"
        );
    }
    // The deactivated-key-only account (present 1, active 0, inactive 1), each MFA kind of the
    // mixed account, and the organization's feature.
    let dl = "account_id=\"444444444444\",account_name=\"data-lake\"";
    let mixed = "account_id=\"999999999999\",account_name=\"mfa-mixed\"";
    let expected = [
        ("aws_root_access_keys", format!("{dl},status=\"active\""), "0"),
        ("aws_root_access_keys", format!("{dl},status=\"inactive\""), "1"),
        ("aws_root_mfa_devices", format!("{mixed},type=\"passkey\""), "1"),
        ("aws_root_mfa_devices", format!("{mixed},type=\"virtual\""), "1"),
        ("aws_root_mfa_devices", format!("{mixed},type=\"hardware\""), "0"),
        (
            "aws_organizations_feature_enabled",
            "organization=\"default\",feature=\"RootCredentialsManagement\"".to_string(),
            "1",
        ),
    ];
    for (metric, labels, want) in &expected {
        assert_eq!(
            value(&m, metric, labels).as_deref(),
            Some(*want),
            "{metric}{{{labels}}}"
        );
    }
}

#[tokio::test]
async fn a_failing_account_keeps_its_last_known_state_and_age() {
    let sim = Sim::start(DEMO).await;
    let served = serve(&sim, config(|c| c.refresh_interval = "1s".into())).await;
    wait_ready(&served.base).await;
    let l = "account_id=\"333333333333\",account_name=\"legacy-billing\"";
    let m = scrape(&served.base).await;
    assert_eq!(value(&m, "aws_root_access_keys_present", l).as_deref(), Some("1"));
    let first_success = value(&m, "aws_root_audit_last_success_timestamp_seconds", l).unwrap();

    let r = put_json(
        &sim.control("/_simulator/accounts/333333333333/assume_root"),
        json!({"mode": "access_denied"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    // Also remove the key: the exporter cannot see it, so it must not report 0.
    put_json(
        &sim.control("/_simulator/accounts/333333333333/root"),
        json!({"mfa": [], "password": false, "access_keys": [], "signing_certificates": []}),
    )
    .await;
    let mut m = String::new();
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        m = scrape(&served.base).await;
        if value(&m, "aws_root_audit_success", l).as_deref() == Some("0") {
            break;
        }
    }
    assert_eq!(value(&m, "aws_root_audit_success", l).as_deref(), Some("0"));
    assert_eq!(
        value(&m, "aws_root_access_keys_present", l).as_deref(),
        Some("1"),
        "last known value kept, never a fresh 0"
    );
    let kept = value(&m, "aws_root_audit_last_success_timestamp_seconds", l).unwrap();
    assert_eq!(kept, first_success, "the age keeps growing from the last success");

    put_json(
        &sim.control("/_simulator/accounts/333333333333/assume_root"),
        json!({"mode": "ok"}),
    )
    .await;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        m = scrape(&served.base).await;
        if value(&m, "aws_root_audit_success", l).as_deref() == Some("1") {
            break;
        }
    }
    assert_eq!(
        value(&m, "aws_root_access_keys_present", l).as_deref(),
        Some("0"),
        "the fresh audit sees the key gone"
    );
}

#[tokio::test]
async fn not_ready_until_the_first_refresh_and_metrics_never_wait_on_aws() {
    let sim = Sim::start(include_str!("fixtures/scenarios/slow-discovery.toml")).await;
    let served = serve(&sim, config(|_| {})).await;
    let mut healthy = false;
    for _ in 0..50 {
        if let Ok(r) = reqwest::get(format!("{}/healthz", served.base)).await {
            healthy = r.status() == 200;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(healthy);
    let r = reqwest::get(format!("{}/readyz", served.base)).await.unwrap();
    assert_eq!(r.status(), 503);
    let started = std::time::Instant::now();
    let m = scrape(&served.base).await;
    assert!(
        started.elapsed() < Duration::from_millis(1000),
        "a scrape does not wait for AWS"
    );
    assert!(m.contains("aws_root_exporter_build_info{version="));
    assert!(
        !m.contains("aws_root_access_keys_present{"),
        "nothing about accounts before the first refresh"
    );
    wait_ready(&served.base).await;
}

#[tokio::test]
async fn content_negotiation_serves_openmetrics_or_text() {
    let sim = Sim::start(DEMO).await;
    let served = serve(&sim, config(|_| {})).await;
    wait_ready(&served.base).await;
    let client = reqwest::Client::new();
    let om = client
        .get(format!("{}/metrics", served.base))
        .header(
            "accept",
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        )
        .send()
        .await
        .unwrap();
    assert!(
        om.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let body = om.text().await.unwrap();
    assert!(body.ends_with("# EOF\n"));
    assert!(body.contains("# TYPE aws_root_exporter_refreshes counter"));
    let text = client.get(format!("{}/metrics", served.base)).send().await.unwrap();
    assert!(
        text.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let body = text.text().await.unwrap();
    assert!(!body.contains("# EOF"));
    assert!(body.contains("# TYPE aws_root_exporter_refreshes_total counter"));
    let index = client.get(&served.base).send().await.unwrap().text().await.unwrap();
    assert!(index.contains("href=\"metrics\""));
    let missing = client.get(format!("{}/nope", served.base)).send().await.unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn router_answers_without_a_socket() {
    use aws_root_exporter::http::{AppState, app};
    use aws_root_exporter::render::metrics::MetricsSource;
    use aws_root_exporter::telemetry::Telemetry;
    use tower::ServiceExt;
    let (_tx, rx) = tokio::sync::watch::channel(None);
    let (_config_tx, configs) = tokio::sync::watch::channel(config(|c| c.refresh_interval = "5m".into()));
    let metrics = Arc::new(MetricsSource::new(rx.clone(), configs, &Telemetry::default()));
    let router = app(AppState {
        metrics,
        snapshots: aws_root_exporter::snapshot::Snapshots::single(rx),
        reload: None,
        telemetry_path: "/metrics".into(),
    });
    let req = |uri: &str| {
        axum::http::Request::builder()
            .uri(uri)
            .body(axum::body::Body::empty())
            .unwrap()
    };
    assert_eq!(router.clone().oneshot(req("/healthz")).await.unwrap().status(), 200);
    assert_eq!(router.clone().oneshot(req("/readyz")).await.unwrap().status(), 503);
    let m = router.oneshot(req("/metrics")).await.unwrap();
    assert_eq!(m.status(), 200);
    let body = axum::body::to_bytes(m.into_body(), 1 << 20).await.unwrap();
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert!(
        text.contains("aws_root_exporter_refresh_interval_seconds 300.0"),
        "{text}"
    );
}

#[tokio::test]
async fn disabled_root_credentials_management_shows_in_metrics() {
    let sim = Sim::start(NO_ROOT_ACCESS).await;
    let served = serve(&sim, config(|c| c.refresh_interval = "1h".into())).await;
    wait_ready(&served.base).await;
    let m = scrape(&served.base).await;
    assert_eq!(
        value(
            &m,
            "aws_organizations_feature_enabled",
            "organization=\"default\",feature=\"RootCredentialsManagement\""
        )
        .as_deref(),
        Some("0")
    );
    assert_eq!(
        value(
            &m,
            "aws_organizations_feature_enabled",
            "organization=\"default\",feature=\"RootSessions\""
        )
        .as_deref(),
        Some("1")
    );
    let reasons = samples(&m, "aws_root_audit_failure_reason");
    assert_eq!(reasons.len(), 11, "every active member account");
    assert!(
        reasons
            .keys()
            .all(|k| k.ends_with("reason=\"root_access_not_enabled\"")),
        "{reasons:?}"
    );
    // Only the management account, audited with the exporter's own credentials, has gauges.
    let keys = samples(&m, "aws_root_access_keys_present");
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(
        keys.keys().all(|k| k.starts_with("account_id=\"111111111111\"")),
        "{keys:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_limit_holds_further_clients_until_one_leaves() {
    use aws_root_exporter::http::{Limits, serve as serve_http};
    use std::io::{Read, Write};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = axum::Router::new().route("/", axum::routing::get(|| async { "hi" }));
    let limits = Limits {
        max_connections: 2,
        ..Limits::default()
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_http(
        listener,
        router,
        async {
            let _ = stop_rx.await;
        },
        limits,
    ));
    let request = |mut s: std::net::TcpStream| {
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut buf = [0u8; 12];
        s.read_exact(&mut buf).map(|_| (buf, s))
    };
    let held: Vec<_> = (0..2)
        .map(|_| {
            let (buf, s) = request(std::net::TcpStream::connect(addr).unwrap()).unwrap();
            assert_eq!(&buf, b"HTTP/1.1 200");
            s
        })
        .collect();
    let third = std::net::TcpStream::connect(addr).unwrap();
    third.set_read_timeout(Some(Duration::from_millis(700))).unwrap();
    let waiting = tokio::task::spawn_blocking(move || request(third));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "a third client waits while two are connected");
    let outcome = waiting.await.unwrap();
    assert!(outcome.is_err(), "not served while both connections stay open");
    drop(held);
    let (buf, _s) = tokio::task::spawn_blocking(move || {
        let fourth = std::net::TcpStream::connect(addr).unwrap();
        fourth.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        request(fourth)
    })
    .await
    .unwrap()
    .expect("served once a connection left");
    assert_eq!(&buf, b"HTTP/1.1 200");
    let _ = stop_tx.send(());
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn metrics_are_gzipped_when_asked_and_plain_otherwise() {
    use std::io::Read;
    let sim = Sim::start(DEMO).await;
    let served = serve(&sim, config(|c| c.refresh_interval = "1h".into())).await;
    wait_ready(&served.base).await;
    let client = reqwest::Client::new();
    let zipped = client
        .get(format!("{}/metrics", served.base))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(zipped.headers()["content-encoding"], "gzip");
    let bytes = zipped.bytes().await.unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(&bytes[..])
        .read_to_string(&mut text)
        .unwrap();
    assert!(text.contains("aws_organizations_account_info{"), "{text}");
    assert!(
        bytes.len() * 3 < text.len(),
        "compressed: {} of {} bytes",
        bytes.len(),
        text.len()
    );
    let plain = client.get(format!("{}/metrics", served.base)).send().await.unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
    assert!(plain.text().await.unwrap().contains("aws_organizations_account_info{"));
}

#[tokio::test]
async fn the_metrics_path_is_configurable() {
    let sim = Sim::start(DEMO).await;
    let served = serve(
        &sim,
        config(|c| {
            c.refresh_interval = "1h".into();
            c.telemetry_path = "/probe/metrics".into();
        }),
    )
    .await;
    wait_ready(&served.base).await;
    let moved = reqwest::get(format!("{}/probe/metrics", served.base)).await.unwrap();
    assert_eq!(moved.status(), 200);
    assert!(moved.text().await.unwrap().contains("aws_root_access_keys_present{"));
    let old = reqwest::get(format!("{}/metrics", served.base)).await.unwrap();
    assert_eq!(old.status(), 404);
    let index = reqwest::get(format!("{}/", served.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(index.contains("href=\"probe/metrics\""), "{index}");
}
