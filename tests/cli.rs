//! The binary as a user runs it: configuration layering and errors, `audit` through the
//! standard AWS environment variables, `simulate`.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use aws_root_exporter::config::{Commands, KEYS, Key, OnSighup, RawConfig};
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
    // The reason, then the message behind it (quoted: it holds commas or quotes or not), then
    // empty cells for the four unknown flags.
    let (head, message_and_rest) = blocked
        .split_once(",access_denied,")
        .unwrap_or_else(|| panic!("{blocked}"));
    assert_eq!(head, "135791357913,locked-down,ACTIVE,false,true,0", "{blocked}");
    assert!(message_and_rest.contains("AccessDenied"), "{blocked}");
    let after_message = match message_and_rest.strip_prefix('"') {
        Some(quoted) => quoted.split_once("\",").unwrap().1,
        None => message_and_rest.split_once(',').unwrap().1,
    };
    assert!(after_message.starts_with(",,,,"), "{blocked}");
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

/// Whether `command` offers the flag of `key`, by the key table's `commands` (every command's
/// file and environment may still set any key).
fn offers(command: &str, key: &Key) -> bool {
    matches!(
        (command, key.commands),
        ("serve" | "demo" | "check-config", _) | ("audit", Commands::Refresh) | ("healthcheck", Commands::Listen)
    )
}

/// The help block of `flag` (from its line to the next flag), if the help lists it.
fn flag_block<'a>(help: &'a str, flag: &str) -> Option<&'a str> {
    let start = help
        .match_indices(flag)
        .map(|(i, _)| i)
        .find(|&i| help[..i].ends_with("      ") && help[i + flag.len()..].starts_with(' '))?;
    let rest = &help[start..];
    let end = rest[flag.len()..]
        .find("\n      -")
        .map_or(rest.len(), |e| e + flag.len());
    Some(&rest[..end])
}

#[tokio::test]
async fn every_flag_shows_its_default_and_environment_variable() {
    for command in ["serve", "demo", "audit", "check-config", "healthcheck"] {
        let mut c = exporter();
        c.args([command, "--help"]);
        let out = run(c).await;
        let help = text(&out.stdout);
        assert!(out.status.success(), "{command}: {}", text(&out.stderr));
        assert!(
            flag_block(&help, "--config").is_some_and(|b| b.contains("TOML configuration file")),
            "{command} --help lists --config: {help}"
        );
        for key in &KEYS {
            let flag = key.flag();
            let block = flag_block(&help, &flag);
            if !offers(command, key) {
                assert!(
                    block.is_none(),
                    "{command} does not use {}, yet offers {flag}: {help}",
                    key.name
                );
                continue;
            }
            let block = block.unwrap_or_else(|| panic!("{command} --help lists {flag}: {help}"));
            let env = format!("[env: {}]", key.env());
            assert!(
                block.contains(&env) && block.contains("[default: "),
                "{command} {flag}: {block}"
            );
        }
        for (flag, default) in [
            ("--listen", "0.0.0.0:9312"),
            ("--refresh-interval", "5m, or 1h with events_queue_url"),
            ("--concurrency", "64"),
            ("--access", "auto"),
            ("--checks", "full"),
            ("--events-queue-url", "empty"),
            ("--include-accounts", "none"),
        ] {
            if let Some(block) = flag_block(&help, flag) {
                assert!(
                    block.contains(&format!("[default: {default}]")),
                    "{command} {flag}: {block}"
                );
            }
        }
    }
}

#[tokio::test]
async fn audit_offers_only_the_flags_it_uses() {
    let mut c = exporter();
    c.args(["audit", "--help"]);
    let out = run(c).await;
    let help = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for flag in ["--listen", "--refresh-interval", "--events-queue-url"] {
        assert!(!help.contains(flag), "audit --help mentions {flag}: {help}");
    }
    let checks = flag_block(&help, "--checks").unwrap_or_else(|| panic!("audit --help lists --checks: {help}"));
    assert!(
        checks.contains("[default: full]") && checks.contains("[env: AWS_ROOT_EXPORTER_CHECKS]"),
        "{checks}"
    );
    assert!(
        flag_block(&help, "--format").is_some_and(|b| b.contains("[default: tsv]")),
        "{help}"
    );

    for (flag, value) in [
        ("--listen", "127.0.0.1:9312"),
        ("--refresh-interval", "1m"),
        (
            "--events-queue-url",
            "https://sqs.us-east-1.amazonaws.com/111111111111/q",
        ),
    ] {
        let mut c = exporter();
        c.args(["audit", flag, value]);
        let out = run(c).await;
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "audit {flag}: {stderr}");
        assert!(
            stderr.contains(&format!("unexpected argument '{flag}'")),
            "clap rejects {flag}, before any AWS call: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    }
}

#[tokio::test]
async fn keys_a_command_does_not_use_are_still_accepted_from_file_and_environment() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("all.toml");
    std::fs::write(
        &path,
        "listen = \"127.0.0.1:1\"\nrefresh_interval = \"2m\"\nchecks = \"summary\"\n",
    )
    .unwrap();
    // healthcheck reads `listen` from the file (nothing listens on port 1: exit 1, not 2).
    let mut c = exporter();
    c.env(
        "AWS_ROOT_EXPORTER_EVENTS_QUEUE_URL",
        "https://sqs.us-east-1.amazonaws.com/111111111111/q",
    )
    .args(["healthcheck", "--config"])
    .arg(&path);
    let out = run(c).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("cannot connect to 127.0.0.1:1"),
        "{}",
        text(&out.stderr)
    );
    // A serve-only key in the environment is still validated for every command.
    let mut c = exporter();
    c.env("AWS_ROOT_EXPORTER_REFRESH_INTERVAL", "forever")
        .args(["healthcheck", "--config"])
        .arg(&path);
    let out = run(c).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("`refresh_interval`"),
        "{}",
        text(&out.stderr)
    );
    // check-config shows what the file and a flag made of them.
    let mut c = exporter();
    c.args(["check-config", "--checks", "full", "--config"]).arg(&path);
    let out = run(c).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: toml::Value = toml::from_str(&text(&out.stdout)).unwrap();
    assert_eq!(v["listen"].as_str(), Some("127.0.0.1:1"));
    assert_eq!(v["refresh_interval"].as_str(), Some("2m"));
    assert_eq!(v["checks"].as_str(), Some("full"), "flag beats file");
}

#[tokio::test]
async fn audit_with_a_file_that_sets_serve_keys_runs() {
    let sim = Sim::start(DEMO).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("serve.toml");
    std::fs::write(
        &path,
        "listen = \"127.0.0.1:1\"\nrefresh_interval = \"2m\"\nexclude_accounts = [\"135791357913\"]\n",
    )
    .unwrap();
    let mut c = exporter();
    with_sim_env(&mut c, &sim);
    c.args(["audit", "--format", "tsv", "--config"]).arg(&path);
    let out = run(c).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "the file's serve keys are accepted, its exclude_accounts applies: {}",
        text(&out.stderr)
    );
    assert!(text(&out.stdout).starts_with("accountId\t"), "{}", text(&out.stdout));
}

/// `audit` on a terminal (a pseudo-terminal from `script`) shows how far it is on stderr; with
/// stderr not a terminal it stays quiet. The report on stdout is the same either way.
#[tokio::test]
async fn audit_shows_progress_on_a_terminal_only() {
    // 100 ms per call: the audit takes about a second, so several progress lines are drawn.
    let sim = Sim::start(&format!("{DEMO}\n[latency]\ndefault_ms = 100\n")).await;
    let bin = env!("CARGO_BIN_EXE_aws-root-exporter");
    let mut c = Command::new("script");
    c.args(["-qefc", &format!("{bin} audit --format tsv"), "/dev/null"]);
    with_sim_env(&mut c, &sim);
    c.env("AWS_EC2_METADATA_DISABLED", "true");
    let out = run(c).await;
    let on_terminal = text(&out.stdout);
    assert!(
        on_terminal.contains("\r\x1b[2Kaudited 0 of"),
        "progress starts at once: {on_terminal:?}"
    );
    let done = on_terminal.matches(" accounts").count();
    assert!(done >= 3, "a line per quarter second: {on_terminal:?}");
    // The line is cleared before the report, which follows intact.
    let report = on_terminal.rsplit("\r\x1b[2K").next().unwrap();
    assert!(report.contains("accountId\taccountName"), "{report:?}");

    let mut c = exporter();
    with_sim_env(&mut c, &sim);
    c.args(["audit", "--format", "tsv"]);
    let out = run(c).await;
    let stderr = text(&out.stderr);
    assert!(
        !stderr.contains("audited ") && !stderr.contains('\r'),
        "quiet without a terminal: {stderr}"
    );
    assert_eq!(
        text(&out.stdout),
        std::fs::read_to_string("tests/golden/demo-org.tsv").unwrap()
    );
}

/// The key names a text shows as `` `key` `` at the start of a table row (README) or as
/// `key = ` at the start of a line (the example configuration, commented or not).
fn keys_shown(text: &str, table: bool) -> std::collections::BTreeSet<String> {
    let mut shown = std::collections::BTreeSet::new();
    for line in text.lines() {
        if table {
            let Some(first) = line.strip_prefix("| ").and_then(|l| l.split(" | ").next()) else {
                continue;
            };
            for part in first.split(" / ") {
                if let Some(name) = part.strip_prefix('`').and_then(|p| p.strip_suffix('`')) {
                    shown.insert(name.to_string());
                }
            }
        } else if let Some((name, _)) = line.trim_start_matches("# ").split_once(" = ")
            && name.chars().all(|c| c.is_ascii_lowercase() || c == '_')
        {
            shown.insert(name.to_string());
        }
    }
    shown
}

#[test]
fn readme_and_the_example_configuration_show_every_key_of_the_table() {
    let keys: std::collections::BTreeSet<String> = KEYS.iter().map(|k| k.name.to_string()).collect();
    let readme = std::fs::read_to_string("README.md").unwrap();
    let table = readme
        .split("| key | default | meaning |")
        .nth(1)
        .expect("README has the configuration table")
        .split("\n\n")
        .next()
        .unwrap();
    assert_eq!(keys_shown(table, true), keys, "README's configuration table");
    let example = std::fs::read_to_string("config/aws-root-exporter.toml").unwrap();
    // The keys, before the commented `[[organizations]]` example (whose entries set a few of
    // them again, and keys of their own).
    let (top, organizations) = example
        .split_once("\n# [[organizations]]")
        .expect("the example shows [[organizations]]");
    assert_eq!(keys_shown(top, false), keys, "config/aws-root-exporter.toml");
    for k in ["name", "role_arn", "external_id", "session_name"] {
        assert!(
            organizations.contains(&format!("# {k} = ")),
            "the [[organizations]] example shows {k}"
        );
    }
    // ... and sets each to the default its declaration gives.
    let example: toml::Table = example.parse().unwrap();
    let defaults = toml::Table::try_from(RawConfig::default()).unwrap();
    assert_eq!(
        example, defaults,
        "config/aws-root-exporter.toml sets every key to its default"
    );
    // README names the keys a SIGHUP does not change, as the table says.
    let sighup = readme
        .split("`SIGHUP` reloads")
        .nth(1)
        .and_then(|p| p.split("\n\n").next())
        .expect("README says what SIGHUP reloads");
    for key in KEYS.iter().filter(|k| k.on_sighup == OnSighup::Restart) {
        assert!(
            sighup.contains(&format!("`{}`", key.name)),
            "README's SIGHUP paragraph names {}",
            key.name
        );
    }
}

#[tokio::test]
async fn enum_flags_are_spelled_as_in_the_file() {
    // `--access assume_root`, as `access = "assume_root"` in the file; the dashed spelling of
    // earlier versions still works.
    for value in ["assume_root", "assume-root"] {
        let mut c = exporter();
        c.args([
            "check-config",
            "--access",
            value,
            "--log-level",
            "debug",
            "--checks",
            "summary",
        ]);
        let out = run(c).await;
        assert!(out.status.success(), "{value}: {}", text(&out.stderr));
        let stdout = text(&out.stdout);
        assert!(stdout.contains("access = \"assume_root\""), "{stdout}");
        assert!(stdout.contains("log_level = \"debug\"") && stdout.contains("checks = \"summary\""));
    }
    let mut c = exporter();
    c.args(["check-config", "--access", "root"]);
    let out = run(c).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("assume_root"), "{}", text(&out.stderr));
}

/// `std::env::vars` panics on the first variable that is not UTF-8, and its panic message shows
/// the value. Kubernetes and CI environments carry such variables: every command must run.
#[cfg(unix)]
#[tokio::test]
async fn an_environment_variable_that_is_not_utf8_crashes_nothing_and_is_never_shown() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let sim = Sim::start(DEMO).await;
    let value = OsStr::from_bytes(b"hunter2-\xff");
    for args in [
        &["check-config"][..],
        &["healthcheck", "--listen", "127.0.0.1:9"],
        &["audit"],
    ] {
        let mut c = exporter();
        with_sim_env(&mut c, &sim);
        c.env("BAD", value)
            .env(OsStr::from_bytes(b"BAD_NAME_\xfe"), "x")
            .args(args);
        let out = run(c).await;
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert_ne!(out.status.code(), Some(101), "{args:?} panicked: {stderr}");
        assert!(
            !stdout.contains("hunter2") && !stderr.contains("hunter2"),
            "{args:?}: {stdout}{stderr}"
        );
        if args == ["check-config"] {
            assert_eq!(out.status.code(), Some(0), "{stderr}");
        }
    }
    // One of ours: an error naming the variable, without its value.
    let mut c = exporter();
    c.env("AWS_ROOT_EXPORTER_MEMBER_ROLE_EXTERNAL_ID", value)
        .arg("check-config");
    let out = run(c).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("environment variable AWS_ROOT_EXPORTER_MEMBER_ROLE_EXTERNAL_ID is not valid UTF-8"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

/// A private key, a certificate or a bcrypt hash given where the web configuration belongs: an
/// error that names the file and what is wrong, and shows none of it.
#[tokio::test]
async fn check_config_never_prints_key_material_or_hashes_from_a_wrong_web_config() {
    let dir = tempfile::tempdir().unwrap();
    let made = Command::new("openssl")
        .current_dir(dir.path())
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.crt",
        ])
        .args(["-days", "2", "-subj", "/CN=localhost"])
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", text(&made.stderr));
    let hash = bcrypt::hash("right-password", 4).unwrap();
    std::fs::write(dir.path().join("hash.yml"), format!("basic_auth_users: \"{hash}\"\n")).unwrap();
    let mut secrets: Vec<String> = ["server.key", "server.crt"]
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(dir.path().join(f))
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter(|l| !l.starts_with("-----"))
        .collect();
    secrets.push(hash[7..].to_string());
    for file in ["server.key", "server.crt", "hash.yml"] {
        let mut c = exporter();
        c.args(["check-config", "--web.config.file"]).arg(dir.path().join(file));
        let out = run(c).await;
        let output = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert_eq!(out.status.code(), Some(2), "{file}: {output}");
        assert!(output.contains(file) && output.lines().count() == 1, "{file}: {output}");
        for secret in &secrets {
            assert!(!output.contains(secret.as_str()), "{file}: {secret} in {output}");
        }
    }
}

#[tokio::test]
async fn version_says_the_revision_build_date_and_toolchain() {
    let mut c = exporter();
    c.arg("--version");
    let out = run(c).await;
    assert!(out.status.success());
    let version = text(&out.stdout);
    let revision = version
        .split("(revision: ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .unwrap_or_else(|| panic!("{version}"));
    assert_eq!(revision, aws_root_exporter::render::families::REVISION);
    // A build from a git checkout (as CI's clone) knows its commit.
    if Path::new(".git").exists() {
        assert!(
            revision.len() >= 7 && revision.bytes().all(|b| b.is_ascii_hexdigit()),
            "{version}"
        );
    }
    for line in ["build date:", "rust version: 1.", "platform:"] {
        assert!(version.contains(line), "{line} in {version}");
    }
}

/// `check-config` with `[[organizations]]`: the entries as given, then each organization's
/// effective settings (how it is reached, every per-organization key), and the whole output
/// loads again as the same configuration.
#[tokio::test]
async fn check_config_prints_each_organizations_effective_settings() {
    let mut c = exporter();
    c.args([
        "check-config",
        "--config",
        "tests/fixtures/config/organizations.ok.toml",
    ]);
    let out = run(c).await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    for line in [
        "# organization \"prod\": the exporter's own credentials",
        "# organization \"acquired\": assumes arn:aws:iam::210000000000:role/aws-root-exporter-org-access (session name aws-root-exporter, with an external id)",
        "#   checks = \"summary\"",
        "#   checks = \"full\"",
        "#   events_queue_url = \"https://sqs.us-east-1.amazonaws.com/210000000000/aws-root-events\"",
    ] {
        assert!(stdout.contains(line), "{line:?} in:\n{stdout}");
    }
    let printed: aws_root_exporter::config::RawConfig = toml::from_str(&stdout).unwrap();
    let again = printed.validate().unwrap();
    assert_eq!(again.organizations.len(), 2);
    assert_eq!(again.organizations[1].name, "acquired");
}
