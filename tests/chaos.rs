//! Chaos suite (issue "Trust", item 9): the simulator binary and the exporter's `serve` as real
//! processes on loopback; a matrix of faults and changes driven through the simulator's control
//! API (throttling, 5xx, calls slower than `account_timeout`, discovery failures, deep-call
//! failures, centralized root access switched off, an account turning SCP-blocked after a root
//! key appeared, the simulator killed and restarted on the same port), with rates below 1 so that
//! accounts succeed and fail in the same refresh. After every refresh the scrape alone (and what
//! earlier scrapes showed) must keep the exporter's promise: **a failure never looks like a clean
//! account** (see `chaos/check.rs` for the invariants).
//!
//! `harness = false`: `cargo test --test chaos` prints the number of checks; any violation is
//! printed and the exit status is 1. Evidence (scrapes, logs) is kept in a directory it names.

#[path = "chaos/check.rs"]
mod check;
mod common;
#[path = "chaos/procs.rs"]
mod procs;
#[path = "chaos/scrape.rs"]
mod scrape;
#[path = "chaos/world.rs"]
mod world;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use check::{Checker, Verdict};
use openmetrics_parser::prometheus::parse_prometheus;
use procs::{Exporter, Simulator, SimulatorProgram};
use scrape::Scrape;
use serde_json::json;
use world::{Account, Fault, History, Key, Password, Root, Weather, World};

/// The exporter's `account_timeout`, and what `slow` faults must exceed.
const ACCOUNT_TIMEOUT_MS: u64 = 3000;
/// The longest a refresh may take before the suite gives up on the exporter (8 retries of a
/// failing listing take about 13 s at worst).
const REFRESH_DEADLINE: Duration = Duration::from_secs(45);
/// How often `/metrics` is scraped while waiting for a refresh.
const POLL: Duration = Duration::from_millis(50);
/// The exporter's `refresh_interval`.
const REFRESH_INTERVAL: Duration = Duration::from_secs(1);
/// How much earlier than one interval after a refresh started the next one could possibly start
/// (timer latency), for deciding that a change precedes the next refresh.
const START_MARGIN: Duration = Duration::from_millis(300);
/// Refreshes allowed for the exporter to recover after the faults are cleared.
const RECOVERY_REFRESHES: u32 = 6;

const MANAGEMENT: &str = "100000000001";
const PROD: &str = "100000000002";
const BILLING: &str = "100000000003";
const LAKE: &str = "100000000004";
const MFA_MIXED: &str = "100000000005";
const SHARED: &str = "100000000006";
const SCP_TARGET: &str = "100000000007";
const LOCKED: &str = "100000000008";
const CHANGER: &str = "100000000009";
const EXPIRED: &str = "100000000010";

// Fixed dates (unix seconds).
const T2019: u64 = 1_551_520_800; // 2019-03-02T10:00:00Z
const T2020: u64 = 1_590_969_600; // 2020-06-01T00:00:00Z
const T2024: u64 = 1_717_243_200; // 2024-06-01T12:00:00Z
const T2025: u64 = 1_761_998_400; // 2025-11-01T12:00:00Z

fn account(id: &'static str, name: &'static str, status: &'static str, root: Root) -> Account {
    Account {
        id,
        name,
        status,
        management: false,
        root: History::new(root),
        denied: History::new(false),
    }
}

/// The organization at the start: one account for each kind of root user, one locked by an SCP
/// from the start (never audited successfully until the end), two not audited.
fn initial_world() -> World {
    let mut accounts = vec![
        Account {
            management: true,
            ..account(
                MANAGEMENT,
                "management",
                "ACTIVE",
                Root {
                    mfa: vec!["hardware"],
                    password: Password::Present,
                    ..Root::clean()
                },
            )
        },
        account(PROD, "prod", "ACTIVE", Root::clean()),
        account(
            BILLING,
            "legacy-billing",
            "ACTIVE",
            Root {
                mfa: vec!["virtual"],
                password: Password::Dates {
                    created: Some(T2019),
                    last_used: Some(T2025),
                },
                keys: vec![Key::dated("Active", T2019, Some(T2025))],
                certificates: vec![],
            },
        ),
        account(
            LAKE,
            "data \"lake\" \\ eu",
            "ACTIVE",
            Root {
                mfa: vec!["hardware"],
                password: Password::Present,
                keys: vec![Key::dated("Inactive", T2020, None)],
                certificates: vec![],
            },
        ),
        account(
            MFA_MIXED,
            "mfa mixed",
            "ACTIVE",
            Root {
                mfa: vec!["virtual", "passkey", "sms"],
                password: Password::Present,
                keys: vec![],
                certificates: vec!["Active", "Inactive"],
            },
        ),
        account(
            SHARED,
            "shared-services",
            "ACTIVE",
            Root {
                mfa: vec!["virtual"],
                password: Password::None,
                keys: vec![Key::plain("Active"), Key::plain("Inactive")],
                certificates: vec![],
            },
        ),
        account(SCP_TARGET, "scp-target", "ACTIVE", Root::clean()),
        account(
            LOCKED,
            "locked-down",
            "ACTIVE",
            Root {
                mfa: vec![],
                password: Password::Present,
                keys: vec![Key::plain("Active")],
                certificates: vec![],
            },
        ),
        account(
            CHANGER,
            "changer",
            "ACTIVE",
            Root {
                mfa: vec!["virtual"],
                password: Password::Present,
                keys: vec![],
                certificates: vec![],
            },
        ),
        account(
            EXPIRED,
            "expired-key",
            "ACTIVE",
            Root {
                mfa: vec!["passkey"],
                password: Password::None,
                keys: vec![Key::dated("Expired", T2020, Some(T2024))],
                certificates: vec!["Inactive"],
            },
        ),
        account(
            "100000000011",
            "closed",
            "SUSPENDED",
            Root {
                keys: vec![Key::plain("Active")],
                ..Root::clean()
            },
        ),
        account("100000000012", "closing", "PENDING_CLOSURE", Root::clean()),
    ];
    accounts.iter_mut().find(|a| a.id == LOCKED).expect("listed").denied = History::new(true);
    World {
        organization_id: "o-chaos0000001",
        accounts,
        root_access: History::new(true),
        weather: History::new(Weather::default()),
        timeout_ms: ACCOUNT_TIMEOUT_MS,
    }
}

/// One change to the simulated world.
enum Change {
    Root(&'static str, Root),
    Denied(&'static str, bool),
    RootAccess(bool),
    Faults(Vec<Fault>),
}

struct Suite {
    http: reqwest::Client,
    world: World,
    checker: Checker,
    program: SimulatorProgram,
    scenario: PathBuf,
    sim: Simulator,
    exporter: Exporter,
    /// Fingerprint of the last judged scrape.
    last_fingerprint: String,
    aborted: bool,
    started: Instant,
    /// Changes made before the next refresh could start (see `certain_from`).
    early_changes: u32,
    changes: u32,
    /// Time spent parsing scrapes.
    parsing: Duration,
}

impl Suite {
    async fn get(&self, url: &str, openmetrics: bool) -> Result<(u16, String), String> {
        let mut req = self.http.get(url);
        if openmetrics {
            req = req.header(
                "accept",
                "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
            );
        }
        let resp = req.send().await.map_err(|e| format!("GET {url}: {e}"))?;
        let status = resp.status().as_u16();
        let body = resp.text().await.map_err(|e| format!("GET {url}: {e}"))?;
        Ok((status, body))
    }

    /// `/metrics` as OpenMetrics, parsed; a failure to answer or parse is a violation.
    async fn scrape(&mut self) -> Option<Scrape> {
        let url = format!("{}/metrics", self.exporter.base);
        let mut body_seen = String::new();
        let parsed = match self.get(&url, true).await {
            Ok((200, body)) => {
                body_seen = body.clone();
                let t = Instant::now();
                let parsed = Scrape::parse(body);
                self.parsing += t.elapsed();
                parsed
            }
            Ok((status, body)) => Err(format!("/metrics answered {status}: {body}")),
            Err(e) => Err(e),
        };
        let ok = parsed.is_ok();
        self.checker.check(ok, || {
            format!("/metrics serves valid OpenMetrics: {:?}", parsed.as_ref().err())
        });
        if let Err(e) = &parsed
            && self.checker.evidence.len() < 20
        {
            self.checker
                .evidence
                .push(("unparseable.metrics".into(), format!("# {e}\n{body_seen}")));
        }
        parsed.ok()
    }

    /// 4. The exporter is alive and serving.
    async fn alive(&mut self) -> bool {
        let alive = self.exporter.proc.check_alive();
        let ok = alive.is_ok();
        self.checker
            .check(ok, || format!("the exporter process is running: {alive:?}"));
        ok
    }

    /// Wait for the next finished refresh, judge its scrape. `None` when the exporter is gone or
    /// hangs (the suite is then aborted).
    async fn next_refresh(&mut self) -> Option<Verdict> {
        if self.aborted {
            return None;
        }
        let deadline = Instant::now() + REFRESH_DEADLINE;
        let last = self.checker.last_refresh();
        loop {
            if !self.alive().await {
                self.aborted = true;
                return None;
            }
            if let Some(s) = self.scrape().await
                && s.refreshes() > last
                && s.fingerprint() != self.last_fingerprint
            {
                // The counter is bumped just before the snapshot is published: confirm that
                // this is the snapshot of the refresh the counter names.
                tokio::time::sleep(Duration::from_millis(5)).await;
                if let Some(again) = self.scrape().await
                    && again.refreshes() == s.refreshes()
                    && again.fingerprint() == s.fingerprint()
                {
                    return Some(self.judge(again).await);
                }
                continue;
            }
            if Instant::now() > deadline {
                let last_seen = self.checker.last_refresh();
                self.checker.check(false, || {
                    format!("no refresh finished within {REFRESH_DEADLINE:?} after refresh {last_seen}")
                });
                self.aborted = true;
                return None;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn judge(&mut self, s: Scrape) -> Verdict {
        self.last_fingerprint = s.fingerprint();
        let verdict = self.checker.observe(&s, &self.world);
        // 4. Still serving: /healthz, and the classic text format parses too.
        let health = self.get(&format!("{}/healthz", self.exporter.base), false).await;
        self.checker.check(matches!(health, Ok((200, _))), || {
            format!("/healthz answers 200: {health:?}")
        });
        let text = self.get(&format!("{}/metrics", self.exporter.base), false).await;
        let parses = match &text {
            Ok((200, body)) => parse_prometheus(body).map(|_| ()).map_err(|e| format!("{e:?}")),
            other => Err(format!("{other:?}")),
        };
        self.checker.check(parses.is_ok(), || {
            format!("/metrics serves valid Prometheus text: {parses:?}")
        });
        verdict
    }

    /// Wait for `n` refreshes that must see every change made so far (at most one more).
    async fn refreshes(&mut self, n: u32) {
        let settled = self.world.settled_from();
        let mut seen = 0;
        for _ in 0..=n {
            match self.next_refresh().await {
                Some(v) if v.refresh >= settled => seen += 1,
                Some(_) => {}
                None => return,
            }
            if seen == n {
                return;
            }
        }
    }

    /// Wait until a refresh audits every account it can (all settings settled), at most
    /// [`RECOVERY_REFRESHES`] refreshes after the last change must be seen.
    async fn recover(&mut self) {
        if self.aborted {
            return;
        }
        let settled = self.world.settled_from();
        loop {
            let Some(v) = self.next_refresh().await else { return };
            if v.all_good {
                return;
            }
            if v.refresh >= settled + u64::from(RECOVERY_REFRESHES) {
                let phase = self.checker.phase.clone();
                self.checker.check(false, || {
                    format!("{phase}: the exporter did not recover within {RECOVERY_REFRESHES} refreshes after the faults were cleared (refresh_success={})", v.refresh_ok)
                });
                return;
            }
        }
    }

    /// Finished refreshes now (a scrape).
    async fn refresh_count(&mut self) -> u64 {
        match self.scrape().await {
            Some(s) => s.refreshes(),
            // Unreachable while the exporter runs; the next check will say why.
            None => self.checker.last_refresh(),
        }
    }

    async fn put(&self, path: &str, body: serde_json::Value) {
        let url = self.sim.control_url(path);
        let resp = self
            .http
            .put(&url)
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("control API PUT {path}: {e}"));
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        assert!(status.is_success(), "control API PUT {path} {body}: {status} {text}");
    }

    /// Apply changes through the control API and record when refreshes may and must see them.
    async fn change(&mut self, changes: Vec<Change>) {
        if self.aborted {
            return;
        }
        let possible_from = self.checker.last_refresh() + 1;
        for c in &changes {
            match c {
                Change::Root(id, root) => self.put(&format!("/_simulator/accounts/{id}/root"), root.json()).await,
                Change::Denied(id, denied) => {
                    let mode = if *denied { "access_denied" } else { "ok" };
                    self.put(
                        &format!("/_simulator/accounts/{id}/assume_root"),
                        json!({ "mode": mode }),
                    )
                    .await
                }
                Change::RootAccess(on) => {
                    let enabled: Vec<&str> = if *on {
                        vec!["RootCredentialsManagement", "RootSessions"]
                    } else {
                        vec!["RootSessions"]
                    };
                    self.put("/_simulator/features", json!({ "enabled": enabled })).await
                }
                Change::Faults(faults) => {
                    self.put("/_simulator/faults", Weather::faults(faults.clone()).json())
                        .await
                }
            }
        }
        let certain_from = self.certain_from().await;
        self.record(changes, possible_from, certain_from);
    }

    /// The first refresh that must see a change just made. Refresh `n + 2`, `n` being the
    /// refreshes finished now: refresh `n + 1` may have started before the change. Refresh
    /// `n + 1` itself when it cannot have started yet: `refresh_interval` is measured start to
    /// start (README), and the last refresh, which listed the organization, started less than
    /// an interval (less a margin for timer latency) ago.
    async fn certain_from(&mut self) -> u64 {
        self.changes += 1;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs_f64();
        let n = self.refresh_count().await;
        let next_start = self
            .checker
            .last_started()
            .map(|s| s + REFRESH_INTERVAL.as_secs_f64() - START_MARGIN.as_secs_f64());
        if n == self.checker.last_refresh() && next_start.is_some_and(|t| now < t) {
            self.early_changes += 1;
            n + 1
        } else {
            n + 2
        }
    }

    fn record(&mut self, changes: Vec<Change>, possible_from: u64, certain_from: u64) {
        for c in changes {
            match c {
                Change::Root(id, root) => self.world.account_mut(id).root.set(root, possible_from, certain_from),
                Change::Denied(id, d) => self.world.account_mut(id).denied.set(d, possible_from, certain_from),
                Change::RootAccess(on) => self.world.root_access.set(on, possible_from, certain_from),
                Change::Faults(faults) => self
                    .world
                    .weather
                    .set(Weather::faults(faults), possible_from, certain_from),
            }
        }
    }

    fn phase(&mut self, name: &str) {
        println!(
            "chaos: phase {name} (after refresh {}, {} checks so far, {:.1}s)",
            self.checker.last_refresh(),
            self.checker.checks,
            self.started.elapsed().as_secs_f64()
        );
        self.checker.phase = name.to_string();
    }

    /// The simulator killed (SIGKILL) and restarted on the same addresses, with `while_down`
    /// applied to its scenario: AWS changed while the exporter could not see it.
    async fn kill_and_restart(&mut self, while_down: Vec<Change>) {
        if self.aborted {
            return;
        }
        let possible_from = self.checker.last_refresh() + 1;
        self.sim.proc.kill();
        let certain_from = self.certain_from().await;
        self.world.weather.set(
            Weather {
                faults: vec![],
                down: true,
            },
            possible_from,
            certain_from,
        );
        // Wait until a refresh could not list the organization.
        for _ in 0..4 {
            match self.next_refresh().await {
                Some(v) if !v.refresh_ok => break,
                Some(_) => {}
                None => return,
            }
        }
        let possible_from = self.checker.last_refresh() + 1;
        // The scenario file holds the world as it is now, with the changes made while down.
        let roots: Vec<(&'static str, Root)> = while_down
            .iter()
            .filter_map(|c| match c {
                Change::Root(id, root) => Some((*id, root.clone())),
                _ => None,
            })
            .collect();
        std::fs::write(&self.scenario, self.world.scenario_with(&roots)).expect("scenario written");
        let (endpoint, control) = (self.sim.endpoint, self.sim.control);
        self.sim = start_simulator(&self.program, &self.scenario, endpoint, control);
        let certain_from = self.certain_from().await;
        let mut changes = while_down;
        changes.push(Change::Faults(vec![]));
        self.record(changes, possible_from, certain_from);
    }
}

fn start_simulator(
    program: &SimulatorProgram,
    scenario: &std::path::Path,
    listen: SocketAddr,
    control: SocketAddr,
) -> Simulator {
    let mut last = String::new();
    for _ in 0..20 {
        match Simulator::start(program, scenario, listen, control) {
            Ok(s) => return s,
            Err(e) => {
                last = e;
                std::thread::sleep(Duration::from_millis(250));
            }
        }
    }
    panic!("cannot start the simulator on {listen} / {control}: {last}");
}

fn start_exporter(endpoint: SocketAddr) -> Exporter {
    let args = [
        "--refresh-interval",
        "1s",
        "--account-timeout",
        "3s",
        "--checks",
        "full",
        "--log-format",
        "json",
    ];
    let mut last = String::new();
    for _ in 0..3 {
        let mut e = Exporter::start(endpoint, &args).expect("the exporter starts");
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Err(err) = e.proc.check_alive() {
                last = format!("{err}: {}", e.proc.log_text());
                break;
            }
            let up = std::net::TcpStream::connect_timeout(
                &e.base.trim_start_matches("http://").parse().expect("an address"),
                Duration::from_millis(200),
            )
            .is_ok();
            if up {
                return e;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        e.proc.kill();
    }
    panic!("cannot start the exporter: {last}");
}

async fn run(started: Instant) -> (Checker, Vec<(String, String)>) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let scenario = dir.path().join("chaos-org.toml");
    let world = initial_world();
    std::fs::write(&scenario, world.scenario()).expect("scenario written");
    let program = SimulatorProgram::find();
    let any: SocketAddr = "127.0.0.1:0".parse().expect("an address");
    let sim = start_simulator(&program, &scenario, any, any);
    let exporter = start_exporter(sim.endpoint);
    println!(
        "chaos: simulator {} on {} (control {}), exporter on {} (set-up {:.1}s)",
        program.description,
        sim.endpoint,
        sim.control,
        exporter.base,
        started.elapsed().as_secs_f64()
    );
    let mut suite = Suite {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .no_proxy()
            .build()
            .expect("an HTTP client"),
        world,
        checker: Checker::default(),
        program,
        scenario,
        sim,
        exporter,
        last_fingerprint: String::new(),
        aborted: false,
        started,
        early_changes: 0,
        changes: 0,
        parsing: Duration::ZERO,
    };

    let state = |mfa: Vec<&'static str>, password: Password, keys: Vec<Key>, certificates: Vec<&'static str>| Root {
        mfa,
        password,
        keys,
        certificates,
    };

    suite.checker.keep_all = std::env::var_os("CHAOS_KEEP_LOGS").is_some();
    suite.phase("baseline");
    suite.recover().await;

    // Throttling, some accounts failing and some not in the same refresh; one account throttled
    // on every AssumeRoot while a root key appears in it.
    suite.phase("throttling");
    suite
        .change(vec![
            Change::Faults(vec![
                Fault::new("AssumeRoot", "throttling", 1.0).only(CHANGER),
                Fault::new("AssumeRoot", "throttling", 0.4),
                Fault::new("GetAccountSummary", "throttling", 0.3),
            ]),
            Change::Root(
                CHANGER,
                state(
                    vec!["virtual"],
                    Password::Present,
                    vec![Key::dated("Active", T2024, None)],
                    vec![],
                ),
            ),
        ])
        .await;
    suite.refreshes(3).await;
    suite.change(vec![Change::Faults(vec![])]).await;
    suite.recover().await;

    // Server errors; the features cannot be read; one account's summary always fails while a key
    // is deleted in it.
    suite.phase("server-errors");
    suite
        .change(vec![
            Change::Faults(vec![
                Fault::new("GetAccountSummary", "server_error", 1.0).only(SHARED),
                Fault::new("GetAccountSummary", "server_error", 0.5),
                Fault::new("AssumeRoot", "server_error", 0.3),
                Fault::new("ListOrganizationsFeatures", "server_error", 0.5),
            ]),
            Change::Root(
                SHARED,
                state(vec!["virtual"], Password::None, vec![Key::plain("Active")], vec![]),
            ),
        ])
        .await;
    suite.refreshes(2).await;
    suite.change(vec![Change::Faults(vec![])]).await;
    suite.recover().await;

    // Calls slower than account_timeout: some accounts time out, one always does while its key
    // is deleted.
    suite.phase("slow-calls");
    suite
        .change(vec![
            Change::Faults(vec![
                Fault::slow("AssumeRoot", 4000, 1.0).only(BILLING),
                Fault::slow("GetAccountSummary", 4000, 0.4),
                Fault::slow("ListMFADevices", 4000, 0.3),
            ]),
            Change::Root(
                BILLING,
                state(
                    vec!["virtual"],
                    Password::Dates {
                        created: Some(T2019),
                        last_used: Some(T2025),
                    },
                    vec![],
                    vec![],
                ),
            ),
        ])
        .await;
    suite.refreshes(2).await;
    suite.change(vec![Change::Faults(vec![])]).await;
    suite.recover().await;

    // Discovery: the organization cannot be read (the snapshot is kept as it was) while a
    // password appears; then every listing call (ListAccounts, and the OU tree walk) fails now
    // and then.
    suite.phase("discovery-down");
    suite
        .change(vec![
            Change::Faults(vec![Fault::new("DescribeOrganization", "server_error", 1.0)]),
            Change::Root(PROD, state(vec![], Password::Present, vec![], vec![])),
        ])
        .await;
    suite.refreshes(1).await;
    suite.change(vec![Change::Faults(vec![])]).await;
    suite.recover().await;

    suite.phase("discovery-flaky");
    suite
        .change(vec![Change::Faults(vec![
            Fault::new("DescribeOrganization", "throttling", 0.3),
            Fault::new("ListAccounts", "server_error", 0.5),
            Fault::new("ListRoots", "throttling", 0.3),
            Fault::new("ListOrganizationalUnitsForParent", "server_error", 0.3),
            Fault::new("ListAccountsForParent", "throttling", 0.5),
            Fault::new("ListOrganizationsFeatures", "throttling", 0.5),
            Fault::new("AssumeRoot", "throttling", 0.2),
        ])])
        .await;
    suite.refreshes(3).await;
    suite.change(vec![Change::Faults(vec![])]).await;
    suite.recover().await;

    // Deep calls fail: the flags stay fresh, the part a failed call feeds is absent, never 0.
    suite.phase("deep-calls");
    suite
        .change(vec![
            Change::Faults(vec![
                Fault::new("ListAccessKeys", "throttling", 1.0).only(SHARED),
                Fault::new("GetAccessKeyLastUsed", "server_error", 1.0).only(EXPIRED),
                Fault::new("ListMFADevices", "server_error", 0.5),
                Fault::new("GetLoginProfile", "throttling", 0.5),
                Fault::new("GetUser", "server_error", 0.3),
                Fault::new("ListSigningCertificates", "throttling", 0.6),
            ]),
            Change::Root(
                MFA_MIXED,
                state(vec!["virtual", "passkey", "sms"], Password::Present, vec![], vec![]),
            ),
        ])
        .await;
    suite.refreshes(2).await;
    suite.change(vec![Change::Faults(vec![])]).await;
    suite.recover().await;

    // Centralized root access switched off: no account can be audited; all keep their state.
    suite.phase("root-access-off");
    suite
        .change(vec![
            Change::RootAccess(false),
            Change::Root(
                LAKE,
                state(
                    vec!["hardware"],
                    Password::Present,
                    vec![Key::dated("Active", T2020, Some(T2025))],
                    vec![],
                ),
            ),
        ])
        .await;
    suite.refreshes(2).await;
    suite.change(vec![Change::RootAccess(true)]).await;
    suite.recover().await;

    // An SCP without the carve-out, right after a root key was added: the key may or may not have
    // been seen, the account must fail and keep what it showed.
    suite.phase("scp-after-new-key");
    let with_key = state(vec![], Password::None, vec![Key::dated("Active", T2025, None)], vec![]);
    suite
        .change(vec![
            Change::Root(SCP_TARGET, with_key.clone()),
            Change::Denied(SCP_TARGET, true),
        ])
        .await;
    suite.refreshes(2).await;
    suite.change(vec![Change::Denied(SCP_TARGET, false)]).await;
    suite.recover().await;
    // Seen with the key, then blocked, then the key deleted behind the SCP: still 1.
    suite.phase("scp-then-key-deleted");
    suite.change(vec![Change::Denied(SCP_TARGET, true)]).await;
    suite.refreshes(1).await;
    suite.change(vec![Change::Root(SCP_TARGET, Root::clean())]).await;
    suite.refreshes(2).await;
    suite
        .change(vec![Change::Denied(SCP_TARGET, false), Change::Denied(LOCKED, false)])
        .await;
    suite.recover().await;

    // The simulator killed mid-refresh (its calls are slow, so a refresh is running) and
    // restarted on the same port with a root user changed while it was down.
    suite.phase("simulator-restart");
    suite
        .change(vec![Change::Faults(vec![Fault::slow("GetAccountSummary", 400, 1.0)])])
        .await;
    suite.refreshes(1).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    suite
        .kill_and_restart(vec![Change::Root(
            CHANGER,
            state(
                vec![],
                Password::Present,
                vec![Key::plain("Active"), Key::plain("Inactive")],
                vec!["Active"],
            ),
        )])
        .await;
    suite.recover().await;

    if let Err(e) = suite.exporter.proc.check_alive() {
        suite
            .checker
            .check(false, || format!("the exporter is still running at the end: {e}"));
    }
    let mut evidence = std::mem::take(&mut suite.checker.evidence);
    if !suite.checker.violations.is_empty() || std::env::var_os("CHAOS_KEEP_LOGS").is_some() {
        evidence.push(("exporter.log".into(), suite.exporter.proc.log_text()));
        evidence.push(("simulator.log".into(), suite.sim.proc.log_text()));
        evidence.push(("scenario.toml".into(), suite.world.scenario()));
    }
    println!(
        "chaos: {} of {} changes were made before the next refresh could start; {:.1}s spent parsing scrapes",
        suite.early_changes,
        suite.changes,
        suite.parsing.as_secs_f64()
    );
    let Suite { checker, .. } = suite;
    (checker, evidence)
}

fn main() -> ExitCode {
    world::check_deep_operations();
    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    // The children are killed when the suite (and its guards) is dropped, panics included.
    let (checker, evidence) = runtime.block_on(run(started));
    let elapsed = started.elapsed().as_secs_f64();
    for v in &checker.violations {
        println!("chaos: violation: {v}");
    }
    if !evidence.is_empty() {
        let dir = std::env::temp_dir().join(format!("aws-root-exporter-chaos-{}", std::process::id()));
        if std::fs::create_dir_all(&dir).is_ok() {
            for (name, text) in &evidence {
                let _ = std::fs::write(dir.join(name), text);
            }
            println!("chaos: evidence in {}", dir.display());
        }
    }
    println!(
        "chaos: {} checks over {} refreshes, {} violations ({elapsed:.1}s)",
        checker.checks,
        checker.refreshes,
        checker.violations.len()
    );
    if checker.violations.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
