//! The web configuration (`web_config_file`, docs/web-config.md) end to end: the real binary
//! serving over TLS, with basic auth and client certificates, asked by the real `curl`; reloads
//! and certificate rotation; the healthcheck over TLS; the TLS handshake under the server's
//! limits. Certificates are made for each test with the `openssl` command. Everything listens on
//! and talks to 127.0.0.1 only.

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_root_exporter::app::{self, Alive};
use common::{DEMO, Sim, exporter, free_port, run, text, with_sim_env};

// ---- certificates ------------------------------------------------------------------------------

/// A directory with two CAs and certificates they signed, made with `openssl`:
/// `ca` signs `server` (127.0.0.1, localhost) and `client`; `other-ca` signs `other-client` and
/// `server2` (for rotation). EC P-256 keys, valid for two days.
struct Pki {
    dir: tempfile::TempDir,
}

const SERVER_EXT: &str = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n";
const CLIENT_EXT: &str = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\nsubjectAltName=DNS:prometheus\n";

impl Pki {
    fn new() -> Pki {
        let pki = Pki {
            dir: tempfile::tempdir().unwrap(),
        };
        pki.ca("ca");
        pki.ca("other-ca");
        pki.leaf("server", "ca", SERVER_EXT);
        pki.leaf("client", "ca", CLIENT_EXT);
        pki.leaf("other-client", "other-ca", CLIENT_EXT);
        pki.leaf("server2", "other-ca", SERVER_EXT);
        pki
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn path(&self, name: &str) -> String {
        self.dir().join(name).to_str().unwrap().to_string()
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn openssl(&self, args: &[&str]) {
        let out = Command::new("openssl")
            .current_dir(self.dir())
            .args(args)
            .output()
            .expect("the openssl command runs");
        assert!(out.status.success(), "openssl {args:?}: {}", text(&out.stderr));
    }

    /// A self-signed certificate `{name}.{ext}` and its key `{name}.key`, valid 2 days, with
    /// these extensions.
    fn self_signed(&self, name: &str, ext: &str, subject: &str, extensions: &[&str]) {
        let (key, cert) = (format!("{name}.key"), format!("{name}.{ext}"));
        let mut args = vec![
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &cert,
            "-days",
            "2",
            "-subj",
            subject,
        ];
        for e in extensions {
            args.extend(["-addext", e]);
        }
        self.openssl(&args);
    }

    fn ca(&self, name: &str) {
        self.self_signed(
            name,
            "crt",
            &format!("/CN=test {name}"),
            &[
                "basicConstraints=critical,CA:TRUE",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
    }

    fn leaf(&self, name: &str, ca: &str, ext: &str) {
        self.write(&format!("{name}.ext"), ext);
        self.openssl(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/CN=test {name}"),
        ]);
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.crt"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-out",
            &format!("{name}.crt"),
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
        ]);
    }
}

// ---- the exporter and curl ---------------------------------------------------------------------

/// `serve` with `AWS_ROOT_EXPORTER_WEB_CONFIG_FILE`, its stderr collected; killed when dropped.
struct Exporter {
    child: Child,
    port: u16,
    stderr: Arc<Mutex<String>>,
}

impl Exporter {
    fn start(sim: &Sim, web_config: &Path) -> Exporter {
        let port = free_port();
        let mut c = exporter();
        with_sim_env(&mut c, sim);
        c.env("RUST_LOG", "info")
            .env("AWS_ROOT_EXPORTER_WEB_CONFIG_FILE", web_config)
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--refresh-interval",
                "1h",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("serve starts");
        let stderr = common::collect_stderr(&mut child);
        Exporter { child, port, stderr }
    }

    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    async fn wait_log(&self, needle: &str) -> bool {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if self.log().contains(needle) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// Wait until `/readyz` answers 200 to curl with `args` (the CA, a client certificate).
    async fn wait_ready(&mut self, args: &[&str]) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("the exporter exited with {status}: {}", self.log());
            }
            let mut all = args.to_vec();
            let url = self.url("/readyz");
            all.push(&url);
            if curl(&all).await.status == 200 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{} never became ready: {}", self.url("/readyz"), self.log());
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What `curl` got: its exit code (0: a complete HTTP exchange), the status (0 without one), the
/// response headers (lowercase names) and body.
#[derive(Debug)]
struct Answer {
    exit: i32,
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
    /// curl's message, shown when an assertion fails.
    #[allow(dead_code)]
    stderr: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

async fn curl(args: &[&str]) -> Answer {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let out = Command::new("curl")
            .args(["-q", "-sS", "--max-time", "10", "-D", "-", "-w", "\n%{http_code}"])
            .args(&args)
            .output()
            .expect("curl runs");
        let stdout = text(&out.stdout);
        let (rest, status) = stdout.rsplit_once('\n').unwrap_or(("", stdout.as_str()));
        let (head, body) = rest.split_once("\r\n\r\n").unwrap_or((rest, ""));
        let headers = head
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Answer {
            exit: out.status.code().unwrap_or(-1),
            status: status.trim().parse().unwrap_or(0),
            headers,
            body: body.to_string(),
            stderr: text(&out.stderr),
        }
    })
    .await
    .unwrap()
}

/// The `Config` of `healthcheck` for an exporter on `port` with `web_config`.
fn healthcheck_config(port: u16, web_config: &Path) -> Arc<aws_root_exporter::config::Config> {
    let path = web_config.to_str().unwrap().to_string();
    common::config(|c| {
        c.listen = format!("0.0.0.0:{port}");
        c.web_config_file = path;
    })
}

async fn healthcheck(port: u16, web_config: &Path) -> Result<Alive, String> {
    let config = healthcheck_config(port, web_config);
    tokio::task::spawn_blocking(move || app::healthcheck(&config).map_err(|e| e.to_string()))
        .await
        .unwrap()
}

const METRIC: &str = "aws_organizations_account_info{";

// ---- the tests ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_basic_auth_admits_the_right_password_only() {
    let pki = Pki::new();
    let hash = bcrypt::hash("right-password", 10).unwrap();
    // Relative paths: from the web config file's directory.
    let web = pki.write(
        "web.yml",
        &format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n\
             basic_auth_users:\n  alice: {hash}\n\
             http_server_config:\n  headers:\n    X-Frame-Options: deny\n    X-Content-Type-Options: nosniff\n    Strict-Transport-Security: max-age=31536000\n"
        ),
    );
    let sim = Sim::start(DEMO).await;
    let mut ex = Exporter::start(&sim, &web);
    let ca = pki.path("ca.crt");
    ex.wait_ready(&["--cacert", &ca]).await;
    let metrics = ex.url("/metrics");

    let none = curl(&["--cacert", &ca, &metrics]).await;
    assert_eq!(none.status, 401, "{none:?}");
    assert!(
        none.header("www-authenticate").is_some_and(|v| v.starts_with("Basic")),
        "{none:?}"
    );
    for (name, value) in [
        ("x-frame-options", "deny"),
        ("x-content-type-options", "nosniff"),
        ("strict-transport-security", "max-age=31536000"),
    ] {
        assert_eq!(none.header(name), Some(value), "{name} on a 401: {none:?}");
    }
    for creds in [
        "alice:wrong",
        "mallory:right-password",
        "alice:",
        "ALICE:right-password",
    ] {
        let a = curl(&["--cacert", &ca, "-u", creds, &metrics]).await;
        assert_eq!(a.status, 401, "{creds}: {a:?}");
        assert!(!a.body.contains(METRIC), "{creds}");
    }
    let bearer = curl(&["--cacert", &ca, "-H", "Authorization: Bearer right-password", &metrics]).await;
    assert_eq!(bearer.status, 401, "{bearer:?}");

    let right = curl(&["--cacert", &ca, "-u", "alice:right-password", &metrics]).await;
    assert_eq!(right.status, 200, "{right:?}");
    assert!(right.body.contains(METRIC), "{right:?}");
    assert_eq!(right.header("x-frame-options"), Some("deny"));
    // Again (the cached check) and over TLS 1.2, which the default min_version allows.
    let tls12 = curl(&[
        "--cacert",
        &ca,
        "--tls-max",
        "1.2",
        "-u",
        "alice:right-password",
        &metrics,
    ])
    .await;
    assert_eq!(tls12.status, 200, "{tls12:?}");
    let index = curl(&["--cacert", &ca, &ex.url("/")]).await;
    assert_eq!(index.status, 401, "the index page is behind basic auth too");

    // Probes need no credentials; /readyz then gives no details.
    let healthz = curl(&["--cacert", &ca, &ex.url("/healthz")]).await;
    assert_eq!((healthz.status, healthz.body.as_str()), (200, "ok\n"), "{healthz:?}");
    assert_eq!(healthz.header("x-content-type-options"), Some("nosniff"));
    let readyz = curl(&["--cacert", &ca, &ex.url("/readyz")]).await;
    assert_eq!(readyz.status, 200, "{readyz:?}");
    // The Prometheus spellings of the probes likewise; a reload needs the password.
    for probe in ["/-/healthy", "/-/ready"] {
        let r = curl(&["--cacert", &ca, &ex.url(probe)]).await;
        assert_eq!(r.status, 200, "{probe}: {r:?}");
    }
    let reload = curl(&["--cacert", &ca, "-X", "POST", &ex.url("/-/reload")]).await;
    assert_eq!(reload.status, 401, "{reload:?}");

    // Plain HTTP to the TLS port gets no HTTP answer; a client that does not trust the CA
    // refuses the server.
    let plain = curl(&[&format!("http://127.0.0.1:{}/metrics", ex.port)]).await;
    assert!(plain.exit != 0 && plain.status == 0, "{plain:?}");
    let untrusted = curl(&["-u", "alice:right-password", &metrics]).await;
    assert_eq!(untrusted.exit, 60, "certificate not trusted: {untrusted:?}");

    assert_eq!(
        healthcheck(ex.port, &web).await,
        Ok(Alive::Answered),
        "the healthcheck speaks TLS and needs no credentials"
    );

    let log = ex.log();
    assert!(
        log.contains("TLS on") && log.contains("basic auth on (1 user(s))"),
        "{log}"
    );
    for secret in ["right-password", hash.as_str(), "PRIVATE KEY"] {
        assert!(!log.contains(secret), "the log shows {secret:?}: {log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_admits_only_clients_of_the_client_ca() {
    let pki = Pki::new();
    let web = pki.write(
        "web.yml",
        &format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n",
            pki.path("server.crt")
        ),
    );
    let sim = Sim::start(DEMO).await;
    let mut ex = Exporter::start(&sim, &web);
    let (ca, cert, key) = (pki.path("ca.crt"), pki.path("client.crt"), pki.path("client.key"));
    let with_cert = ["--cacert", ca.as_str(), "--cert", cert.as_str(), "--key", key.as_str()];
    ex.wait_ready(&with_cert).await;
    let metrics = ex.url("/metrics");

    let mut args = with_cert.to_vec();
    args.push(&metrics);
    let right = curl(&args).await;
    assert_eq!(right.status, 200, "{right:?}");
    assert!(right.body.contains(METRIC));

    let none = curl(&["--cacert", &ca, &metrics]).await;
    assert!(none.exit != 0 && none.status == 0, "no client certificate: {none:?}");
    let (other, other_key) = (pki.path("other-client.crt"), pki.path("other-client.key"));
    let wrong = curl(&["--cacert", &ca, "--cert", &other, "--key", &other_key, &metrics]).await;
    assert!(
        wrong.exit != 0 && wrong.status == 0,
        "a client of another CA: {wrong:?}"
    );
    let probe = curl(&["--cacert", &ca, &ex.url("/healthz")]).await;
    assert_eq!(probe.status, 0, "/healthz is behind the handshake too: {probe:?}");
    // Refused handshakes are logged at info, a line per 10 s at most, without key material.
    assert!(ex.wait_log("TLS handshake failed").await, "{}", ex.log());
    let log = ex.log();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("TLS handshake failed")).collect();
    assert_eq!(lines.len(), 1, "three refused clients within 10 s, one line: {log}");
    assert!(lines[0].contains("INFO") && lines[0].contains("peer="), "{}", lines[0]);
    assert!(!log.contains("PRIVATE KEY") && !log.contains("BEGIN"), "{log}");

    // The healthcheck has no client certificate: the handshake answered is all it can see.
    assert_eq!(healthcheck(ex.port, &web).await, Ok(Alive::HandshakeAnswered));
    drop(ex);
    let gone = healthcheck(free_port(), &web).await.unwrap_err();
    assert!(gone.starts_with("cannot connect to 127.0.0.1:"), "{gone}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_versions_cipher_suites_and_curves_are_enforced() {
    let pki = Pki::new();
    let sim = Sim::start(DEMO).await;
    let ca = pki.path("ca.crt");
    let tls = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n";

    let web13 = pki.write("web13.yml", &format!("{tls}  min_version: TLS13\n"));
    let mut ex13 = Exporter::start(&sim, &web13);
    ex13.wait_ready(&["--cacert", &ca]).await;
    let old = curl(&["--cacert", &ca, "--tls-max", "1.2", &ex13.url("/healthz")]).await;
    assert!(old.exit != 0 && old.status == 0, "a TLS 1.2 client: {old:?}");
    let new = curl(&["--cacert", &ca, "--tlsv1.3", &ex13.url("/healthz")]).await;
    assert_eq!(new.status, 200, "{new:?}");

    let web12 = pki.write(
        "web12.yml",
        &format!(
            "{tls}  max_version: TLS12\n  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384]\n  curve_preferences: [CurveP384]\n"
        ),
    );
    let mut ex12 = Exporter::start(&sim, &web12);
    ex12.wait_ready(&["--cacert", &ca]).await;
    let url = ex12.url("/healthz");
    let allowed = curl(&[
        "--cacert",
        &ca,
        "--ciphers",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        // The client must also accept P-256 for the server's ECDSA P-256 certificate.
        "--curves",
        "P-384:P-256",
        &url,
    ])
    .await;
    assert_eq!(allowed.status, 200, "{allowed:?}");
    let suite = curl(&["--cacert", &ca, "--ciphers", "ECDHE-ECDSA-AES128-GCM-SHA256", &url]).await;
    assert!(suite.exit != 0 && suite.status == 0, "a suite not listed: {suite:?}");
    let curve = curl(&["--cacert", &ca, "--curves", "P-256", &url]).await;
    assert!(curve.exit != 0 && curve.status == 0, "a curve not listed: {curve:?}");
    let tls13 = curl(&["--cacert", &ca, "--tlsv1.3", &url]).await;
    assert!(
        tls13.exit != 0 && tls13.status == 0,
        "TLS 1.3 above max_version: {tls13:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_apply_to_new_requests_and_a_broken_file_keeps_the_running_one() {
    let pki = Pki::new();
    let alice = bcrypt::hash("alice-password", 4).unwrap();
    let bob = bcrypt::hash("bob-password", 4).unwrap();
    let tls = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n";
    let web = pki.write("web.yml", &format!("{tls}basic_auth_users:\n  alice: {alice}\n"));
    let sim = Sim::start(DEMO).await;
    let mut ex = Exporter::start(&sim, &web);
    let ca = pki.path("ca.crt");
    ex.wait_ready(&["--cacert", &ca]).await;
    let metrics = ex.url("/metrics");
    let status = |ca: String, creds: &'static str| {
        let metrics = metrics.clone();
        async move { curl(&["--cacert", &ca, "-u", creds, &metrics]).await.status }
    };
    // The status `creds` get, once it is `want` (the watcher polls twice a second).
    let eventually = |ca: String, creds: &'static str, want: u16| async move {
        let start = Instant::now();
        loop {
            let got = status(ca.clone(), creds).await;
            if got == want || start.elapsed() > Duration::from_secs(10) {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    // As a deployment tool should: a new file renamed over the old one.
    let replace = |content: String| {
        let tmp = web.with_extension("tmp");
        std::fs::write(&tmp, content).unwrap();
        std::fs::rename(&tmp, &web).unwrap();
    };
    assert_eq!(status(ca.clone(), "bob:bob-password").await, 401);

    // A user added: in force within a poll, no signal needed.
    replace(format!("{tls}basic_auth_users:\n  alice: {alice}\n  bob: {bob}\n"));
    assert_eq!(eventually(ca.clone(), "bob:bob-password", 200).await, 200);
    assert!(ex.wait_log("web configuration reloaded").await, "{}", ex.log());

    // Broken: logged once, the running configuration stays.
    replace(format!(
        "{tls}basic_auth_users:\n  alice: {alice}\n  carol: not-a-hash\n"
    ));
    assert!(ex.wait_log("keeping the running one").await, "{}", ex.log());
    assert_eq!(status(ca.clone(), "bob:bob-password").await, 200);
    assert_eq!(status(ca.clone(), "alice:alice-password").await, 200);
    let complaints = ex
        .log()
        .lines()
        .filter(|l| l.contains("`basic_auth_users.carol`"))
        .count();
    assert_eq!(complaints, 1, "one error per change, not per request: {}", ex.log());
    assert!(!ex.log().contains("not-a-hash"), "the log does not quote hashes");

    // Turning TLS off takes a restart: refused, TLS stays.
    replace(format!("basic_auth_users:\n  alice: {alice}\n"));
    assert!(
        ex.wait_log("it turns TLS off, which takes a restart").await,
        "{}",
        ex.log()
    );
    assert_eq!(status(ca.clone(), "alice:alice-password").await, 200);

    // Certificate rotation (as cert-manager renews a Secret): a certificate from another CA,
    // written in place one file after the other.
    replace(format!("{tls}basic_auth_users:\n  alice: {alice}\n"));
    std::fs::copy(pki.path("server2.crt"), pki.path("server.crt")).unwrap();
    std::fs::copy(pki.path("server2.key"), pki.path("server.key")).unwrap();
    assert_eq!(
        eventually(pki.path("other-ca.crt"), "alice:alice-password", 200).await,
        200
    );
    let old_ca = curl(&["--cacert", &ca, "-u", "alice:alice-password", &metrics]).await;
    assert_eq!(old_ca.exit, 60, "the new certificate is served: {old_ca:?}");
    assert_eq!(healthcheck(ex.port, &web).await, Ok(Alive::Answered));
}

/// With basic auth on, `/readyz` answers probes without credentials but keeps the reason (it may
/// name accounts and roles) for those who have them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_tells_the_reason_only_with_credentials() {
    let pki = Pki::new();
    let hash = bcrypt::hash("right-password", 4).unwrap();
    let web = pki.write(
        "web.yml",
        &format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  alice: {hash}\n"
        ),
    );
    let sim = Sim::start(DEMO).await;
    // An endpoint and a region, but no credentials: never ready, with a reason.
    let port = free_port();
    let mut c = exporter();
    c.env("AWS_ENDPOINT_URL", sim.running.endpoint_url())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ROOT_EXPORTER_WEB_CONFIG_FILE", &web)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = c.spawn().unwrap();
    let ca = pki.path("ca.crt");
    let url = format!("https://127.0.0.1:{port}/readyz");
    let with_reason = |r: &Answer| r.status == 503 && r.body.contains("no_credentials");
    let mut right = curl(&["--cacert", &ca, "-u", "alice:right-password", &url]).await;
    let start = Instant::now();
    while !with_reason(&right) && start.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        right = curl(&["--cacert", &ca, "-u", "alice:right-password", &url]).await;
    }
    let anonymous = curl(&["--cacert", &ca, &url]).await;
    let wrong = curl(&["--cacert", &ca, "-u", "alice:wrong", &url]).await;
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        (anonymous.status, anonymous.body.as_str()),
        (503, "not ready\n"),
        "{anonymous:?}"
    );
    assert_eq!((wrong.status, wrong.body.as_str()), (503, "not ready\n"), "{wrong:?}");
    assert!(with_reason(&right), "the reason, with credentials: {right:?}");
}

#[tokio::test]
async fn a_bad_web_config_stops_the_exporter_at_start_with_one_line() {
    let pki = Pki::new();
    for (content, needle) in [
        (
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  min_version: TLS10\n",
            "`tls_server_config.min_version`: TLS10",
        ),
        (
            "tls_server_config:\n  cert_file: missing.crt\n  key_file: server.key\n",
            "`tls_server_config.cert_file`: cannot read",
        ),
        // The key of another certificate.
        (
            "tls_server_config:\n  cert_file: server.crt\n  key_file: client.key\n",
            "`tls_server_config.key_file`: cannot be used with the certificate",
        ),
        (
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.crt\n",
            "no private key",
        ),
        (
            "basic_auth_users:\n  alice: secret\n",
            "`basic_auth_users.alice`: not a bcrypt hash",
        ),
    ] {
        let web = pki.write("bad.yml", content);
        let mut c = exporter();
        c.env("AWS_ROOT_EXPORTER_WEB_CONFIG_FILE", &web)
            .args(["serve", "--listen", "127.0.0.1:0"]);
        let out = run(c).await;
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{content}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with("error: configuration: `web_config_file`: web config file ") && stderr.contains(needle),
            "{needle}: {stderr}"
        );
        assert!(!stderr.contains("secret") && !stderr.contains("BEGIN"), "{stderr}");
    }
    let good = pki.write(
        "good.yml",
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n",
    );
    let mut c = exporter();
    c.env("AWS_ROOT_EXPORTER_WEB_CONFIG_FILE", &good).arg("check-config");
    let out = run(c).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&format!("web_config_file = \"{}\"", good.display())));
}

/// The TLS handshake counts against the connection limit and the header read timeout: a client
/// that connects and sends nothing, or sends plain HTTP, cannot hold a permit for long.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_client_cannot_hold_the_handshake_open() {
    use aws_root_exporter::http::{Limits, serve_with};
    use aws_root_exporter::web::LiveWebConfig;
    let pki = Pki::new();
    let web = pki.write(
        "web.yml",
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n",
    );
    let live = Arc::new(LiveWebConfig::load(&web).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = axum::Router::new().route("/", axum::routing::get(|| async { "hi" }));
    let limits = Limits {
        header_read_timeout: Duration::from_secs(1),
        max_connections: 1,
        grace: Duration::from_secs(2),
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_with(
        listener,
        router,
        async {
            let _ = stop_rx.await;
        },
        limits,
        Some(live),
    ));
    // The silent client takes the only permit.
    let silent = std::net::TcpStream::connect(addr).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let ca = pki.path("ca.crt");
    let url = format!("https://127.0.0.1:{}/", addr.port());
    let served = curl(&["--cacert", &ca, &url]).await;
    let waited = started.elapsed();
    assert_eq!((served.status, served.body.as_str()), (200, "hi"), "{served:?}");
    assert!(
        waited >= Duration::from_millis(700) && waited < Duration::from_secs(5),
        "served once the silent client's handshake timed out: {waited:?}"
    );
    let silent = tokio::task::spawn_blocking(move || {
        let mut silent = silent;
        silent.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 16];
        silent.read(&mut buf)
    })
    .await
    .unwrap();
    assert!(
        matches!(silent, Ok(0) | Err(_)),
        "the silent client was disconnected: {silent:?}"
    );
    // Plain HTTP is no handshake: cut off at once, the permit free again.
    let plain = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        out
    })
    .await
    .unwrap();
    assert!(
        !plain.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&plain)
    );
    assert_eq!(curl(&["--cacert", &ca, &url]).await.status, 200);
    let _ = stop_tx.send(());
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the server stops within its grace period")
        .unwrap()
        .unwrap();
}

/// The web config file the Kubernetes component ships is one the exporter accepts, with the
/// certificate files its projected volume provides.
#[test]
fn the_kubernetes_component_ships_a_valid_web_config() {
    use aws_root_exporter::web::{ClientAuth, WebConfig};
    let manifest = std::fs::read_to_string("deploy/kubernetes/components/web-config/secret-web-config.yaml").unwrap();
    let secret: serde_norway::Value = serde_norway::from_str(&manifest).unwrap();
    let file = secret["stringData"]["web-config.yml"]
        .as_str()
        .expect("stringData web-config.yml");
    let pki = Pki::new();
    std::fs::copy(pki.path("server.crt"), pki.dir().join("tls.crt")).unwrap();
    std::fs::copy(pki.path("server.key"), pki.dir().join("tls.key")).unwrap();
    let path = pki.write("web-config.yml", file);
    let web = WebConfig::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(web.tls.is_some());
    assert_eq!(web.client_auth, ClientAuth::None);
    assert_eq!(web.users.keys().collect::<Vec<_>>(), ["prometheus"]);
    let hash = &web.users["prometheus"];
    assert!(
        !bcrypt::verify("REPLACE-ME", hash).unwrap(),
        "the placeholder hash is not that of the placeholder password"
    );
}

/// The example of docs/web-config.md loads, and its hash is that of the password it names.
#[test]
fn the_documented_example_is_valid() {
    use aws_root_exporter::web::WebConfig;
    let doc = std::fs::read_to_string("docs/web-config.md").unwrap();
    let example = doc
        .split("```yaml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/web-config.md has a yaml example");
    assert!(example.contains("tls_server_config:"), "{example}");
    let pki = Pki::new();
    let path = pki.write("web-config.yml", example);
    let web = WebConfig::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(web.tls.is_some() && web.headers.len() == 3);
    assert!(bcrypt::verify("change-me", &web.users["prometheus"]).unwrap());
}

// ---- exporter-toolkit parity -------------------------------------------------------------------

/// What exporter-toolkit (Go) does with one of its `web/testdata` files, and what this exporter
/// must do.
enum Go {
    /// Go accepts it; so must this exporter.
    Accepts,
    /// Go refuses it; so must this exporter, naming this.
    Refuses(&'static str),
    /// Go accepts it; this exporter refuses it by name, as docs/web-config.md documents (CBC
    /// suites, P-521, `client_allowed_sans`, `rate_limit`, bcrypt costs above 14).
    Documented(&'static str),
}

/// The project's own equivalents of exporter-toolkit's `web/testdata` web configuration files
/// (those its `TestYAMLFiles`, `TestServerBehaviour` and `TestUsers` load), under the toolkit's
/// file names, written for this test (the toolkit's files are not copied): the same keys and the
/// same kinds of values, with this test's certificates. `fake(cost)` is a well-formed bcrypt hash
/// of that cost (loading parses hashes, it does not run them).
fn toolkit_files(pki: &Pki) -> Vec<(&'static str, String, Go)> {
    use Go::*;
    // Salt and digest of a cost-10 hash made for this project, under another cost.
    let fake = |cost: u32| format!("$2y${cost:02}$pQc88oiAvVu09YRYZtgjy.t5X19LsZ/qRm4blFxVrBfLkD4FPhvDS");
    let tls = "tls_server_config:\n  cert_file: \"server.crt\"\n  key_file: \"server.key\"\n";
    let verify_if_given = format!("{tls}  client_auth_type: \"VerifyClientCertIfGiven\"\n");
    let indented = |file: &str| {
        std::fs::read_to_string(pki.dir().join(file))
            .unwrap()
            .lines()
            .map(|l| format!("    {l}\n"))
            .collect::<String>()
    };
    let users = |costs: [u32; 4]| {
        let names = ["alice", "bob", "carol", "dave"];
        names
            .iter()
            .zip(costs)
            .map(|(n, c)| format!("  {n}: {}\n", fake(c)))
            .collect::<String>()
    };
    vec![
        ("web_config_empty.yml", String::new(), Accepts),
        ("web_config_junk.yml", "this is not: [a web, configuration]\n".into(), Refuses("unknown field")),
        ("web_config_junk_key.yml", "tls_server_config:\n  cert_filse: \"server.crt\"\n".into(), Refuses("cert_filse")),
        ("web_config_noAuth.good.yml", verify_if_given.clone(), Accepts),
        (
            "web_config_noAuth.good.blocking.yml",
            format!("{tls}  client_auth_type: \"RequireAndVerifyClientCert\"\n"),
            Accepts,
        ),
        (
            "web_config_noAuth_tlsInline.good.yml",
            format!(
                "tls_server_config:\n  cert: |\n{}  key: |\n{}  client_auth_type: \"VerifyClientCertIfGiven\"",
                indented("server.crt"),
                indented("server.key")
            ),
            Accepts,
        ),
        (
            "web_config_noAuth_certPath_empty.bad.yml",
            "tls_server_config:\n  cert_file: \"\"\n  key_file: \"server.key\"\n".into(),
            Refuses("`tls_server_config.cert_file`: missing"),
        ),
        (
            "web_config_noAuth_cert_empty.bad.yml",
            "tls_server_config:\n  cert: \"\"\n  key_file: \"server.key\"\n".into(),
            Refuses("`tls_server_config.cert_file`: missing"),
        ),
        (
            "web_config_noAuth_keyPath_empty.bad.yml",
            "tls_server_config:\n  cert_file: \"server.crt\"\n  key_file: \"\"\n".into(),
            Refuses("`tls_server_config.key_file`: missing"),
        ),
        (
            "web_config_noAuth_key_empty.bad.yml",
            "tls_server_config:\n  cert_file: \"server.crt\"\n  key: \"\"\n".into(),
            Refuses("`tls_server_config.key_file`: missing"),
        ),
        (
            "web_config_noAuth_certPath_keyPath_empty.bad.yml",
            "tls_server_config:\n  cert_file: \"\"\n  key_file: \"\"\n  client_auth_type: \"x\"\n".into(),
            Refuses("client_auth_type"),
        ),
        (
            "web_config_noAuth_certPath_invalid.bad.yml",
            "tls_server_config:\n  cert_file: \"somefile\"\n  key_file: \"server.key\"\n".into(),
            Refuses("cannot read"),
        ),
        (
            "web_config_noAuth_keyPath_invalid.bad.yml",
            "tls_server_config:\n  cert_file: \"server.crt\"\n  key_file: \"somefile\"\n".into(),
            Refuses("cannot read"),
        ),
        (
            "web_config_noAuth_certPath_keyPath_invalid.bad.yml",
            "tls_server_config:\n  cert_file: \"somefile\"\n  key_file: \"somefile\"\n".into(),
            Refuses("cannot read"),
        ),
        (
            "web_config_noAuth.bad.yml",
            format!("{tls}  client_ca_file: \"/dev/null\"\n"),
            Refuses("NoClientCert"),
        ),
        (
            "web_config_auth_clientCAs_invalid.bad.yml",
            format!("{tls}  client_auth_type: \"RequireAndVerifyClientCert\"\n  client_ca_file: \"somefile\"\n"),
            Refuses("cannot read"),
        ),
        (
            "web_config_auth_clientCAs_nocerts.bad.yml",
            format!("{tls}  client_auth_type: \"RequireAndVerifyClientCert\"\n  client_ca_file: \"tls-ca-chain-invalid.pem\"\n"),
            Refuses("`tls_server_config.client_ca_file"),
        ),
        (
            "web_config_auth_clientCAsText_nocerts.bad.yml",
            format!("{tls}  client_auth_type: \"RequireAndVerifyClientCert\"\n  client_ca: \"this is not a PEM encoded certificate\"\n"),
            Refuses("`tls_server_config.client_ca`"),
        ),
        (
            "web_config_auth_user_list_invalid.bad.yml",
            format!("{tls}basic_auth_users:\n  john: doe\n"),
            Refuses("not a bcrypt hash"),
        ),
        (
            "web_config_noAuth_inventedCiphers.bad.yml",
            format!("{verify_if_given}  cipher_suites:\n    - TLS_RSA_WITH_NOT_A_CIPHER_SUITE\n"),
            Refuses("not a cipher suite name"),
        ),
        (
            "web_config_noAuth_inventedCurves.bad.yml",
            format!("{verify_if_given}  curve_preferences:\n    - CurveP257\n"),
            Refuses("not a curve name"),
        ),
        (
            "web_config_noAuth_wrongTLSVersion.bad.yml",
            format!("{verify_if_given}  min_version: TLS111\n"),
            Refuses("not a TLS version"),
        ),
        (
            "web_config_noAuth_allCiphers.good.yml",
            format!(
                "{verify_if_given}  cipher_suites:\n  - TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256\n  - TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256\n  - TLS_AES_128_GCM_SHA256\n  - TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA\n  - TLS_RSA_WITH_AES_256_GCM_SHA384\n"
            ),
            Documented("CBC"),
        ),
        (
            "web_config_noAuth_someCiphers.good.yml",
            format!(
                "{verify_if_given}  cipher_suites:\n  - TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\n  - TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384\n  min_version: TLS12\n  max_version: TLS12\n"
            ),
            Accepts,
        ),
        (
            "web_config_noAuth_someCiphers_noOrder.good.yml",
            "tls_server_config :\n  cert_file : \"server.crt\"\n  key_file : \"server.key\"\n  client_auth_type : \"VerifyClientCertIfGiven\"\n  cipher_suites:\n  - TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384\n  - TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\n  prefer_server_cipher_suites: false\n  min_version: TLS12\n  max_version: TLS12\n".into(),
            Accepts,
        ),
        (
            "web_config_noAuth_allCurves.good.yml",
            format!("{verify_if_given}  curve_preferences:\n  - CurveP256\n  - CurveP384\n  - CurveP521\n  - X25519\n"),
            Documented("P-521"),
        ),
        (
            "web_config_noAuth_someCurves.good.yml",
            format!("{verify_if_given}  min_version: TLS13\n  curve_preferences:\n  - CurveP521\n"),
            Documented("P-521"),
        ),
        (
            "web_config_noAuth_noHTTP2.good.yml",
            format!("{verify_if_given}  cipher_suites:\n    - TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384\n  max_version: TLS12\nhttp_server_config:\n  http2: false\n"),
            Accepts,
        ),
        (
            "web_config_noAuth_noHTTP2Cipher.bad.yml",
            format!("{verify_if_given}  cipher_suites:\n    - TLS_RSA_WITH_AES_128_CBC_SHA\n  max_version: TLS12\n"),
            Refuses("TLS_RSA_WITH_AES_128_CBC_SHA"),
        ),
        (
            "web_config_headers.good.yml",
            "http_server_config:\n  headers:\n    X-Frame-Options: deny\n    Strict-Transport-Security: max-age=31536000; includeSubDomains\n    X-Content-Type-Options: nosniff\n    X-XSS-Protection: 1\n    Content-Security-Policy: \"default-src 'self' *.example.net\"\n".into(),
            Accepts,
        ),
        (
            "web_config_headers_content_type_options.bad.yml",
            "http_server_config:\n  headers:\n    X-Content-Type-Options: sniff-away\n".into(),
            Refuses("nosniff"),
        ),
        (
            "web_config_headers_frame_options.bad.yml",
            "http_server_config:\n  headers:\n    X-Frame-Options: allow-all\n".into(),
            Refuses("deny or sameorigin"),
        ),
        (
            "web_config_headers_extra_header.bad.yml",
            "http_server_config:\n  headers:\n    Content-Type: text/html\n".into(),
            Refuses("cannot be set"),
        ),
        (
            "tls_config_noAuth.requireanyclientcert.good.yml",
            format!("{tls}  client_auth_type: \"RequireAnyClientCert\"\n  client_ca_file: \"tls-ca-chain.pem\"\n"),
            Accepts,
        ),
        (
            "tls_config_noAuth.requireandverifyclientcert.good.yml",
            format!("{tls}  client_auth_type: \"RequireAndVerifyClientCert\"\n  client_ca_file: \"client_selfsigned.pem\"\n"),
            Accepts,
        ),
        (
            "web_config_auth_client_san.good.yaml",
            format!("{tls}  client_auth_type: \"RequireAndVerifyClientCert\"\n  client_ca_file: \"client2_selfsigned.pem\"\n  client_allowed_sans:\n    - \"one\"\n    - \"two\"\n"),
            Documented("client_allowed_sans"),
        ),
        (
            "web_config_auth_client_san.bad.yaml",
            format!("{tls}  client_auth_type: \"RequireAndVerifyClientCert\"\n  client_ca_file: \"client2_selfsigned.pem\"\n  client_allowed_sans:\n    - \"nope\"\n"),
            Documented("client_allowed_sans"),
        ),
        ("web_config_users_noTLS.good.yml", format!("basic_auth_users:\n{}", users([12, 14, 10, 10])), Accepts),
        (
            "web_config_users.good.yml",
            format!("{tls}basic_auth_users:\n{}", users([12, 18, 10, 10])),
            Documented("bcrypt cost 18 is above 14"),
        ),
        (
            "web_config_rate_limiter_nonblocking.yaml",
            "rate_limit:\n  interval: \"0s\"\n  burst: 0\n".into(),
            Documented("rate_limit"),
        ),
        (
            "web_config_rate_limiter_one_second.yaml",
            "rate_limit:\n  interval: \"1s\"\n  burst: 0\n".into(),
            Documented("rate_limit"),
        ),
    ]
}

impl Pki {
    /// What the toolkit's files name besides the server's: a self-signed client certificate with
    /// `CA:TRUE` (openssl's default for `req -x509`, like the toolkit's `client_selfsigned.pem`)
    /// and a second one, the CA chain, and a CA file without a certificate in it.
    fn toolkit_extras(&self) {
        for name in ["client_selfsigned", "client2_selfsigned"] {
            self.self_signed(name, "pem", &format!("/CN={name}"), &["subjectAltName=DNS:one"]);
        }
        std::fs::copy(self.dir().join("ca.crt"), self.dir().join("tls-ca-chain.pem")).unwrap();
        self.write(
            "tls-ca-chain-invalid.pem",
            "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n",
        );
    }
}

/// Every exporter-toolkit `web/testdata` web configuration is accepted or refused as the Go
/// toolkit does, except the documented unsupported features, which are refused by name.
#[test]
fn exporter_toolkit_testdata_files_are_accepted_or_refused_as_go_does() {
    use aws_root_exporter::web::WebConfig;
    let pki = Pki::new();
    pki.toolkit_extras();
    let selfsigned = std::fs::read_to_string(pki.dir().join("client_selfsigned.pem")).unwrap();
    assert!(
        Command::new("openssl")
            .args(["x509", "-noout", "-text"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                c.stdin.take().unwrap().write_all(selfsigned.as_bytes())?;
                c.wait_with_output()
            })
            .map(|o| text(&o.stdout).contains("CA:TRUE"))
            .unwrap(),
        "the pinned client certificate is a CA certificate, as the toolkit's"
    );
    let mut failures = Vec::new();
    for (name, content, go) in toolkit_files(&pki) {
        let path = pki.write(name, &content);
        match (WebConfig::load(&path), go) {
            (Ok(_), Go::Accepts) => {}
            (Err(e), Go::Refuses(needle)) if e.to_string().contains(needle) => {}
            (Err(e), Go::Documented(needle)) if e.to_string().contains(needle) => {
                let line = e.to_string();
                if !(line.contains("not supported") || line.contains("above 14")) {
                    failures.push(format!("{name}: refused, but not as documented: {line}"));
                }
            }
            (Ok(_), _) => failures.push(format!("{name}: accepted, Go refuses it or it is unsupported")),
            (Err(e), _) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The two toolkit files that need more than loading, served and asked by curl: a verifying
/// `client_auth_type` without `client_ca_file` (Go verifies against the system's roots, so a
/// client without a certificate is served under `VerifyClientCertIfGiven`, and one with a
/// certificate of a private CA is refused), and a self-signed `CA:TRUE` client certificate
/// pinned as `client_ca_file`, which Go accepts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exporter_toolkit_client_certificate_files_behave_as_in_go() {
    let pki = Pki::new();
    pki.toolkit_extras();
    let files: std::collections::BTreeMap<_, _> = toolkit_files(&pki).into_iter().map(|(n, c, _)| (n, c)).collect();
    let sim = Sim::start(DEMO).await;
    let ca = pki.path("ca.crt");
    let (client, client_key) = (pki.path("client.crt"), pki.path("client.key"));

    let web = pki.write("if-given.yml", &files["web_config_noAuth.good.yml"]);
    let mut ex = Exporter::start(&sim, &web);
    ex.wait_ready(&["--cacert", &ca]).await;
    let url = ex.url("/metrics");
    let none = curl(&["--cacert", &ca, &url]).await;
    assert_eq!(
        none.status, 200,
        "no client certificate, VerifyClientCertIfGiven: {none:?}"
    );
    let private = curl(&["--cacert", &ca, "--cert", &client, "--key", &client_key, &url]).await;
    assert!(
        private.exit != 0 && private.status == 0,
        "a private CA's client is not verified: {private:?}"
    );
    assert!(
        ex.log().contains("system's root certificates"),
        "the warning: {}",
        ex.log()
    );
    drop(ex);

    let web = pki.write("blocking.yml", &files["web_config_noAuth.good.blocking.yml"]);
    let ex = Exporter::start(&sim, &web);
    let url = ex.url("/healthz");
    let start = Instant::now();
    while !ex.log().contains("serving /metrics") && start.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let none = curl(&["--cacert", &ca, &url]).await;
    assert!(
        none.exit != 0 && none.status == 0,
        "RequireAndVerifyClientCert without a certificate: {none:?}"
    );
    let private = curl(&["--cacert", &ca, "--cert", &client, "--key", &client_key, &url]).await;
    assert!(private.exit != 0 && private.status == 0, "{private:?}");
    drop(ex);

    let web = pki.write(
        "pinned.yml",
        &files["tls_config_noAuth.requireandverifyclientcert.good.yml"],
    );
    let mut ex = Exporter::start(&sim, &web);
    let (pinned, pinned_key) = (pki.path("client_selfsigned.pem"), pki.path("client_selfsigned.key"));
    let with_pinned = [
        "--cacert",
        ca.as_str(),
        "--cert",
        pinned.as_str(),
        "--key",
        pinned_key.as_str(),
    ];
    ex.wait_ready(&with_pinned).await;
    let url = ex.url("/metrics");
    let mut args = with_pinned.to_vec();
    args.push(&url);
    let right = curl(&args).await;
    assert_eq!(
        right.status, 200,
        "the pinned self-signed CA:TRUE certificate: {right:?}"
    );
    let (other, other_key) = (pki.path("client2_selfsigned.pem"), pki.path("client2_selfsigned.key"));
    let wrong = curl(&["--cacert", &ca, "--cert", &other, "--key", &other_key, &url]).await;
    assert!(
        wrong.exit != 0 && wrong.status == 0,
        "another self-signed certificate: {wrong:?}"
    );
    let none = curl(&["--cacert", &ca, &url]).await;
    assert!(none.exit != 0 && none.status == 0, "{none:?}");
}

/// The in-place rewrite of tests/process.rs under TLS: the file cut just before
/// `basic_auth_users` is a valid TLS-only configuration. Rewritten 100 times a second, three
/// clients without credentials never get `/metrics` (shorter than the plain HTTP test: each
/// request here is a curl process).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_place_rewrite_under_tls_never_turns_basic_auth_off() {
    let pki = Pki::new();
    let hash = bcrypt::hash("alice-password", 4).unwrap();
    let content = format!(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  alice: {hash}\n"
    );
    let web = pki.write("web.yml", &content);
    let sim = Sim::start(DEMO).await;
    let mut ex = Exporter::start(&sim, &web);
    let ca = pki.path("ca.crt");
    ex.wait_ready(&["--cacert", &ca]).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (stop, web) = (stop.clone(), web.clone());
        std::thread::spawn(move || {
            let cut = content.find("basic_auth_users").unwrap();
            let mut writes = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .truncate(true)
                    .open(&web)
                    .unwrap();
                f.write_all(&content.as_bytes()[..cut]).unwrap();
                std::thread::sleep(Duration::from_millis(2));
                f.write_all(&content.as_bytes()[cut..]).unwrap();
                drop(f);
                writes += 1;
                std::thread::sleep(Duration::from_millis(8));
            }
            writes
        })
    };
    let metrics = ex.url("/metrics");
    let anonymous: Vec<_> = (0..3)
        .map(|_| {
            let (ca, metrics) = (ca.clone(), metrics.clone());
            tokio::spawn(async move {
                let (mut tries, mut leaked) = (0u32, 0u32);
                let start = Instant::now();
                while start.elapsed() < Duration::from_secs(4) {
                    let a = curl(&["--cacert", &ca, &metrics]).await;
                    tries += 1;
                    if a.status == 200 || a.body.contains(METRIC) {
                        leaked += 1;
                    }
                }
                (tries, leaked)
            })
        })
        .collect();
    let mut tries = 0;
    for task in anonymous {
        let (t, leaked) = task.await.unwrap();
        assert_eq!(
            leaked,
            0,
            "{leaked} of {t} anonymous scrapes got /metrics: {}",
            ex.log()
        );
        tries += t;
    }
    let right = curl(&["--cacert", &ca, "-u", "alice:alice-password", &metrics]).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let writes = writer.join().unwrap();
    assert!(writes > 150 && tries > 30, "{writes} rewrites, {tries} scrapes");
    assert_eq!(right.status, 200, "{right:?}");
    // Left cut (TLS only, a valid configuration): refused, logged, auth stays on.
    let cut = std::fs::read_to_string(&web).unwrap();
    std::fs::write(&web, &cut[..cut.find("basic_auth_users").unwrap()]).unwrap();
    assert!(
        ex.wait_log("it turns basic auth off, which takes a restart").await,
        "{}",
        ex.log()
    );
    assert_eq!(curl(&["--cacert", &ca, &metrics]).await.status, 401);
}

/// 40 wrong-password requests whose clients disconnect after 50 ms, against the real server
/// loop: at most one bcrypt hash runs at any moment, each to its end; at most 8 checks hold a
/// place, the others are answered 429 at once; once the clients are gone only the running hash
/// holds one; and the right password still gets in afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disconnecting_password_flood_runs_one_hash_at_a_time() {
    use aws_root_exporter::http::{Limits, serve_with};
    use aws_root_exporter::web::{LiveWebConfig, WebConfig};
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web.yml");
    let hash = bcrypt::hash("right-password", 8).unwrap();
    std::fs::write(&web, format!("basic_auth_users:\n  alice: {hash}\n")).unwrap();
    let live = Arc::new(LiveWebConfig::new(WebConfig::load(&web).unwrap()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = axum::Router::new().route("/metrics", axum::routing::get(|| async { "secret" }));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_with(
        listener,
        router,
        async {
            let _ = stop_rx.await;
        },
        Limits::default(),
        Some(live.clone()),
    ));
    let request = |password: &str| {
        let token = aws_smithy_types::base64::encode(format!("alice:{password}"));
        format!("GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {token}\r\n\r\n")
    };
    let clients: Vec<_> = (0..40)
        .map(|i| {
            let request = request(&format!("wrong-{i}"));
            std::thread::spawn(move || {
                let mut s = std::net::TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
                s.write_all(request.as_bytes()).unwrap();
                let mut head = [0u8; 12];
                let answered = s.read_exact(&mut head).is_ok();
                drop(s); // gone after 50 ms, answered or not
                answered.then(|| String::from_utf8_lossy(&head).into_owned())
            })
        })
        .collect();
    let (mut most_hashing, mut most_waiting) = (0, 0);
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(300) {
        most_hashing = most_hashing.max(live.auth().hashing());
        most_waiting = most_waiting.max(live.auth().waiting());
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let answers: Vec<Option<String>> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    let busy = answers.iter().filter(|a| a.as_deref() == Some("HTTP/1.1 429")).count();
    // 32 when all 40 arrive together; a client that arrives late (a loaded machine) may find a
    // place freed by another's disconnect.
    assert!(busy >= 20, "answered at once: {answers:?}");
    assert_eq!(most_hashing, 1, "one hash at a time");
    assert!(most_waiting <= 8, "{most_waiting} places held");
    // The clients are gone: the queued checks ended with them, a started hash runs to its end.
    let start = Instant::now();
    loop {
        let (hashing, waiting) = (live.auth().hashing(), live.auth().waiting());
        assert!(
            hashing <= 1 && waiting <= hashing,
            "{hashing} hashing, {waiting} waiting"
        );
        if waiting == 0 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "a hash never ended");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let right = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s.write_all(request("right-password").as_bytes()).unwrap();
        let mut head = [0u8; 12];
        s.read_exact(&mut head).unwrap();
        String::from_utf8_lossy(&head).into_owned()
    })
    .await
    .unwrap();
    assert_eq!(right, "HTTP/1.1 200");
    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(15), server).await;
}
