//! The `aws-org-simulator` binary as a process: its two address lines, the endpoint behind them,
//! a graceful stop on SIGTERM, and its exit statuses.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_aws-org-simulator");
const DEMO_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/demo-org.toml");

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Run to completion with a time limit.
async fn run(mut c: Command) -> Output {
    c.stdin(Stdio::null());
    let waited = tokio::task::spawn_blocking(move || c.output().expect("the binary runs"));
    tokio::time::timeout(std::time::Duration::from_secs(30), waited)
        .await
        .expect("the binary exits within 30s")
        .unwrap()
}

/// The error output is exactly one line, `error: ...`.
fn one_error_line(stderr: &[u8]) -> String {
    let stderr = text(stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    lines[0].to_string()
}

#[tokio::test]
async fn prints_its_addresses_serves_aws_and_stops_on_sigterm() {
    let mut child = Command::new(BIN)
        .args(["--scenario", DEMO_PATH, "--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let second = lines.next().unwrap().unwrap();
    let url = first.strip_prefix("simulator listening on ").expect(&first).to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{first}");
    let control = second
        .strip_prefix("simulator control listening on ")
        .expect(&second)
        .to_string();
    assert!(control.starts_with("http://127.0.0.1:"), "{second}");
    assert_ne!(url, control);

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
    // A signed one is answered for the demo organization's management account.
    let resp = reqwest::Client::new()
        .post(&url)
        .header(
            "authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/sts/aws4_request, SignedHeaders=host;x-amz-date, Signature={}",
                "ab".repeat(32)
            ),
        )
        .form(&[("Action", "GetCallerIdentity"), ("Version", "2011-06-15")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.text().await.unwrap();
    assert!(body.contains("<Account>111111111111</Account>"), "{body}");
    let calls: serde_json::Value = reqwest::get(format!("{control}/_simulator/calls"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(calls, serde_json::json!({"GetCallerIdentity": 1}));

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[tokio::test]
async fn an_invalid_scenario_exits_two_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[organization]\nid = \"o-exampleorg1\"\nmanagement_account_id = \"1111\"\n",
    )
    .unwrap();
    let mut c = Command::new(BIN);
    c.arg("--scenario").arg(&path);
    let out = run(c).await;
    assert_eq!(out.status.code(), Some(2));
    let line = one_error_line(&out.stderr);
    assert!(line.contains("management_account_id \"1111\""), "{line}");
    assert!(line.contains("bad.toml"), "{line}");
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));

    // A typo in [latency] is not a silent no-op: one line with the key and what is allowed.
    let path = dir.path().join("typo.toml");
    std::fs::write(
        &path,
        "[organization]\nid = \"o-exampleorg1\"\nmanagement_account_id = \"111111111111\"\n\n[latency]\ndefualt_ms = 5\n",
    )
    .unwrap();
    let mut c = Command::new(BIN);
    c.arg("--scenario").arg(&path);
    let out = run(c).await;
    assert_eq!(out.status.code(), Some(2));
    let line = one_error_line(&out.stderr);
    for part in ["typo.toml", "latency.defualt_ms", "default_ms", "GetAccountSummary"] {
        assert!(line.contains(part), "{part}: {line}");
    }

    let path = dir.path().join("not-toml.toml");
    std::fs::write(&path, "[organization\n").unwrap();
    let mut c = Command::new(BIN);
    c.arg("--scenario").arg(&path);
    let out = run(c).await;
    assert_eq!(out.status.code(), Some(2));
    let line = one_error_line(&out.stderr);
    assert!(line.contains("not-toml.toml"), "{line}");
}

#[tokio::test]
async fn a_missing_scenario_exits_two_and_names_the_file_once() {
    let mut c = Command::new(BIN);
    c.args(["--scenario", "/nonexistent/scenario.toml"]);
    let out = run(c).await;
    assert_eq!(out.status.code(), Some(2));
    let line = one_error_line(&out.stderr);
    assert!(
        line.contains("cannot read scenario /nonexistent/scenario.toml"),
        "{line}"
    );
    // The I/O error is said once, not repeated as a cause.
    let cause = line.rsplit(": ").next().unwrap();
    assert_eq!(line.matches(cause).count(), 1, "{line}");
}

#[tokio::test]
async fn an_address_in_use_exits_one() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let mut c = Command::new(BIN);
    c.args(["--scenario", DEMO_PATH, "--listen", &addr]);
    let out = run(c).await;
    assert_eq!(out.status.code(), Some(1));
    let line = one_error_line(&out.stderr);
    assert!(line.contains("cannot bind") && line.contains(&addr), "{line}");
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
}

const EVENTS_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/scenarios/events.toml");

/// Start the binary, read its stdout lines until it is stopped with SIGTERM while a long poll
/// waits; returns the lines and how long the stop took.
async fn lines_until_sigterm(scenario: &str) -> (Vec<String>, std::time::Duration) {
    let mut child = Command::new(BIN)
        .args(["--scenario", scenario])
        .stdin(Stdio::null())
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
    // A long poll in flight (answered QueueDoesNotExist at once without a queue).
    let poll = tokio::spawn(async move {
        reqwest::Client::new()
            .post(&url)
            .header("content-type", "application/x-amz-json-1.0")
            .header("x-amz-target", "AmazonSQS.ReceiveMessage")
            .header(
                "authorization",
                format!(
                    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/sqs/aws4_request, SignedHeaders=host;x-amz-date, Signature={}",
                    "ab".repeat(32)
                ),
            )
            .body(format!(
                "{{\"QueueUrl\":\"{url}/111111111111/aws-root-events\",\"WaitTimeSeconds\":20}}"
            ))
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(status.code(), Some(0), "{status:?}");
    let _ = poll.await;
    let mut all = vec![first, second];
    all.extend(lines.map(Result::unwrap));
    (all, took)
}

#[tokio::test]
async fn prints_the_queue_url_only_with_events_and_a_long_poll_does_not_delay_the_stop() {
    let (lines, took) = lines_until_sigterm(EVENTS_PATH).await;
    assert_eq!(lines.len(), 3, "{lines:?}");
    let endpoint = lines[0].strip_prefix("simulator listening on ").unwrap();
    assert_eq!(
        lines[2],
        format!("simulator queue url {endpoint}/111111111111/aws-root-events")
    );
    assert!(took < std::time::Duration::from_secs(5), "{took:?}");
    let (lines, _) = lines_until_sigterm(DEMO_PATH).await;
    assert_eq!(lines.len(), 2, "{lines:?}");
}
