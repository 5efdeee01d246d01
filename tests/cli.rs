//! The binary as a user runs it: configuration layering and errors, `audit` through the
//! standard AWS environment variables, `simulate`.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use common::{DEMO, Sim};

use common::{exporter, run, text, with_sim_env};

#[tokio::test]
async fn audit_tsv_equals_the_classic_report_and_lists_failures() {
    let sim = Sim::start(DEMO).await;
    let mut c = exporter();
    with_sim_env(&mut c, &sim);
    c.args(["audit", "--format", "tsv"]);
    let out = run(c).await;
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "an SCP-blocked account makes the audit incomplete: {stderr}"
    );
    let golden = std::fs::read_to_string("tests/golden/demo-org.tsv").unwrap();
    assert_eq!(text(&out.stdout), golden);
    assert!(stderr.contains("135791357913 (locked-down): access_denied"), "{stderr}");
}

#[tokio::test]
async fn audit_exits_zero_when_every_account_was_audited_and_json_carries_details() {
    let sim = Sim::start(DEMO).await;
    let mut c = exporter();
    with_sim_env(&mut c, &sim);
    c.env("AWS_ROOT_EXPORTER_EXCLUDE_ACCOUNTS", "135791357913")
        .args(["audit", "--format", "json"]);
    let out = run(c).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let acct = |id: &str| {
        v["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["account_id"] == id)
            .unwrap()
            .clone()
    };
    let data_lake = acct("444444444444");
    assert_eq!(data_lake["summary"]["AccountAccessKeysPresent"], 1);
    assert_eq!(data_lake["details"]["access_keys"][0]["status"], "inactive");
    assert_eq!(
        acct("333333333333")["details"]["access_keys"][0]["last_used"],
        "2025-11-01T12:00:00Z"
    );
    assert_eq!(
        acct("888888888888")["details"]["mfa_devices"],
        serde_json::json!(["passkey"])
    );
    assert_eq!(acct("135791357913")["audited"], false);
    assert_eq!(v["features"]["RootCredentialsManagement"], true);
}

#[tokio::test]
async fn audit_csv_has_a_row_per_account_with_empty_cells_for_unknowns() {
    let sim = Sim::start(DEMO).await;
    let mut c = exporter();
    with_sim_env(&mut c, &sim);
    c.args(["audit", "--format", "csv"]);
    let out = run(c).await;
    let csv = text(&out.stdout);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 1 + 13);
    assert!(lines[0].starts_with("account_id,account_name,status,"));
    let blocked = lines.iter().find(|l| l.starts_with("135791357913,")).unwrap();
    assert!(
        blocked.starts_with("135791357913,locked-down,ACTIVE,false,true,0,access_denied,,,,,"),
        "{blocked}"
    );
    let shared = lines.iter().find(|l| l.starts_with("246802468024,")).unwrap();
    assert!(shared.contains(",1,1,"), "one active and one inactive key: {shared}");
}

#[tokio::test]
async fn audit_without_aws_reports_the_failure_and_exits_one() {
    let mut c = exporter();
    c.env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_ACCESS_KEY_ID", "AKIDTESTEXPORTER0001")
        .env("AWS_SECRET_ACCESS_KEY", "test-secret")
        .env("AWS_REGION", "us-east-1")
        .args(["audit", "--account-timeout", "5s"]);
    let out = run(c).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("cannot list the organization's accounts"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn config_layers_defaults_file_env_flags() {
    let mut c = exporter();
    c.env("AWS_ROOT_EXPORTER_CONCURRENCY", "4")
        .env("AWS_ROOT_EXPORTER_REFRESH_INTERVAL", "10m")
        .args([
            "check-config",
            "--config",
            "tests/fixtures/config/minimal.ok.toml",
            "--refresh-interval",
            "2m",
            "--checks",
            "summary",
        ]);
    let out = run(c).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: toml::Value = toml::from_str(&text(&out.stdout)).unwrap();
    assert_eq!(v["refresh_interval"].as_str(), Some("2m"), "flag beats env and file");
    assert_eq!(v["concurrency"].as_integer(), Some(4), "env beats default");
    assert_eq!(
        v["include_accounts"].as_array().unwrap().len(),
        2,
        "file: a number id is padded to a string"
    );
    assert_eq!(v["include_accounts"][1].as_str(), Some("333333333333"));
    assert_eq!(v["checks"].as_str(), Some("summary"));
    assert_eq!(v["listen"].as_str(), Some("0.0.0.0:9312"), "default");
    assert_eq!(v["sts_region"].as_str(), Some("us-east-1"));
}

#[tokio::test]
async fn shipped_example_config_is_valid_and_equals_the_defaults() {
    let mut with_file = exporter();
    with_file.args(["check-config", "--config", "config/aws-root-exporter.toml"]);
    let mut bare = exporter();
    bare.arg("check-config");
    let (a, b) = (run(with_file).await, run(bare).await);
    assert_eq!(a.status.code(), Some(0), "{}", text(&a.stderr));
    assert_eq!(text(&a.stdout), text(&b.stdout));
}

#[tokio::test]
async fn bad_config_fixtures_exit_two_with_one_line_naming_the_problem() {
    let dir = Path::new("tests/fixtures/config");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if !path.to_string_lossy().ends_with(".bad.toml") {
            continue;
        }
        let content = std::fs::read_to_string(&path).unwrap();
        let want = content
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# error: "))
            .expect("fixture names its error");
        let mut c = exporter();
        c.args(["check-config", "--config"]).arg(&path);
        let out = run(c).await;
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}: {stderr}", path.display());
        assert!(
            stderr.contains(want),
            "{}: expected {want:?} in {stderr:?}",
            path.display()
        );
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr:?}");
        checked += 1;
    }
    assert!(checked >= 8, "fixtures found: {checked}");
}

#[tokio::test]
async fn bad_env_and_flag_values_are_named() {
    let mut c = exporter();
    c.env("AWS_ROOT_EXPORTER_SESSION_DURATION", "20m").arg("check-config");
    let out = run(c).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("`session_duration`"),
        "{}",
        text(&out.stderr)
    );

    let mut c = exporter();
    c.args(["check-config", "--include-accounts", "123"]);
    let out = run(c).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("include_accounts"), "{}", text(&out.stderr));

    let mut c = exporter();
    c.args(["check-config", "--config", "/nonexistent/file.toml"]);
    let out = run(c).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("/nonexistent/file.toml"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn simulate_prints_its_addresses_and_serves_aws() {
    let mut child = exporter()
        .args([
            "simulate",
            "--scenario",
            "config/demo-org.toml",
            "--listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let second = lines.next().unwrap().unwrap();
    let url = first.strip_prefix("simulator listening on ").expect(&first).to_string();
    assert!(
        second.starts_with("simulator control listening on http://127.0.0.1:"),
        "{second}"
    );
    // An unsigned request gets AWS's Query error shape.
    let resp = reqwest::Client::new()
        .post(&url)
        .form(&[("Action", "GetCallerIdentity"), ("Version", "2011-06-15")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let body = resp.text().await.unwrap();
    assert!(body.contains("<Code>MissingAuthenticationToken</Code>"), "{body}");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn simulate_rejects_a_bad_scenario_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[organization]\nid = \"o-exampleorg1\"\nmanagement_account_id = \"1111\"\n",
    )
    .unwrap();
    let mut c = exporter();
    c.args(["simulate", "--scenario"]).arg(&path);
    let out = run(c).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("management_account_id \"1111\""),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn root_access_not_enabled_is_said_clearly_once_and_per_account() {
    let sim = Sim::start(common::NO_ROOT_ACCESS).await;
    let mut c = exporter();
    with_sim_env(&mut c, &sim);
    c.env("RUST_LOG", "info").args(["audit", "--format", "tsv"]);
    let out = run(c).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr
            .matches("centralized root access (RootCredentialsManagement) is not enabled")
            .count(),
        1,
        "{stderr}"
    );
    assert!(
        stderr.contains("not audited: 222222222222 (prod): root_access_not_enabled"),
        "{stderr}"
    );
    assert_eq!(
        text(&out.stdout).lines().count(),
        1,
        "only the header: no account's values are known"
    );
}

#[tokio::test]
async fn serve_becomes_ready_and_stops_gracefully_on_sigterm() {
    let sim = Sim::start(DEMO).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut c = exporter();
    with_sim_env(&mut c, &sim);
    let mut child = c
        .env("RUST_LOG", "info")
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--log-format",
            "json",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    common::wait_ready(&format!("http://127.0.0.1:{port}")).await;
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = tokio::task::spawn_blocking(move || {
        for _ in 0..100 {
            if child.try_wait().unwrap().is_some() {
                return Some(child.wait_with_output().unwrap());
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        child.kill().ok();
        None
    })
    .await
    .unwrap()
    .expect("serve exits within 5s of SIGTERM");
    assert!(out.status.success(), "{:?}", out.status);
    let stderr = text(&out.stderr);
    assert!(stderr.lines().all(|l| l.starts_with('{')), "json logs: {stderr}");
    assert!(stderr.contains("SIGTERM received"), "{stderr}");
    assert!(!stderr.contains("ASIA"), "no temporary credentials in the log");
}

#[tokio::test]
async fn every_flag_shows_its_default_and_environment_variable() {
    for command in ["serve", "audit", "check-config", "healthcheck"] {
        let mut c = exporter();
        c.args([command, "--help"]);
        let out = run(c).await;
        let help = text(&out.stdout);
        assert!(out.status.success(), "{command}: {}", text(&out.stderr));
        for (flag, env, default) in [
            ("--listen", "AWS_ROOT_EXPORTER_LISTEN", "0.0.0.0:9312"),
            (
                "--refresh-interval",
                "AWS_ROOT_EXPORTER_REFRESH_INTERVAL",
                "5m, or 1h with events_queue_url",
            ),
            ("--concurrency", "AWS_ROOT_EXPORTER_CONCURRENCY", "16"),
            ("--access", "AWS_ROOT_EXPORTER_ACCESS", "auto"),
            ("--events-queue-url", "AWS_ROOT_EXPORTER_EVENTS_QUEUE_URL", "empty"),
        ] {
            let block = help
                .split(flag)
                .nth(1)
                .unwrap_or_else(|| panic!("{command} --help lists {flag}"));
            let block = block.split("\n      --").next().unwrap();
            assert!(
                block.contains(&format!("[env: {env}]")) && block.contains(&format!("[default: {default}]")),
                "{command} {flag}: {block}"
            );
        }
    }
}
