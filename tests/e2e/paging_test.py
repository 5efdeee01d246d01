#!/usr/bin/env python3
"""End-to-end paging test: a root access key appears in a member account and a page arrives.

Runs the whole chain on 127.0.0.1, each piece on a free port:

  aws-root-exporter simulate   the simulated AWS organization (scenario written by this test)
  aws-root-exporter serve      refreshing every 5s against the simulator, over TLS with basic
                               auth (a web config file, docs/web-config.md; certificates made
                               by this test with openssl)
  prometheus                   scraping every 1s through TLS and basic auth (scheme https,
                               tls_config.ca_file, basic_auth), evaluating the shipped rule
                               files every 1s
  prometheus-alertmanager      with the shipped deploy/alertmanager/alertmanager.yml
  webhook receiver             inside this script, standing in for the pager and ticket queue

Then:
  0. checks that the exporter refuses /metrics without credentials (401) and that Prometheus's
     scrape works through TLS + basic auth (up == 1 for the job);
  1. waits until the clean member account 222222222222 is audited and the already broken
     account 333333333333 has paged (the pipeline works end to end);
  2. PUTs an active root access key into 222222222222 through the simulator's control API,
     waits for AwsRootAccessKeyPresent{account_id="222222222222"} to reach the pager webhook,
     status firing, with annotations naming the account, and prints the delay;
  3. deletes the key, waits for the resolved notification and prints the delay;
  4. checks that warnings reach the ticket webhook (AwsRootAuditFailing of an account whose
     root session an SCP denies) and, with the full audit, that the account whose only root key
     is deactivated never paged;
  5. checks every rule loaded by Prometheus evaluates without error, and runs
     check_queries.py (every dashboard and rule expression) against this Prometheus;
  6. adds the key again, then makes the account's state unknown twice over: its audit fails
     (AccessDenied: the exporter keeps the last known gauges), then the exporter restarts and
     still cannot audit it (no credential gauge at all). AwsRootAccessKeyPresent must keep
     firing without a gap or a resolved notification, and AwsRootAuditFailing must reach the
     ticket webhook (docs/alerts.md, "Unknown is not clean");
  7. restarts the exporter with the events queue and a 1h refresh: a root key created and
     deleted through the simulator (which queues the CloudTrail events AWS delivers) pages and
     resolves, then a root console sign-in pages AwsRootUserActivity{kind="console_signin"}
     (root activity, CIS 4.3); a poll cannot be what finds them;
  8. runs check_queries.py (every dashboard and rule expression) against this Prometheus;
  9. restarts the exporter with [[organizations]]: this test's organization and a second one
     (tests/fixtures/scenarios/org-b.toml, served by the same simulator) reached through its
     access role; a root key put into the second's clean account pages AwsRootAccessKeyPresent
     with the organization named in the description, and so does its management account.

Rule files are loaded unchanged: AwsRootAccessKeyPresent has no `for:`, so nothing needs
shortening. The Alertmanager file is copied with three rewrites only: the placeholder webhook
base http://127.0.0.1:5001 becomes this script's receiver, and group_wait / group_interval
become 1s (the shipped 30s / 5m would make the test slow, not different).

Every wait is bounded (--timeout, 120s by default). Child processes are always stopped. On
failure the temporary directory (configs, logs) is kept and the tail of each log printed.

Python 3 standard library only. Needs prometheus and prometheus-alertmanager on PATH (Debian
packages prometheus and prometheus-alertmanager), openssl, and a built exporter.

Usage: tests/e2e/paging_test.py [--exporter-bin target/debug/aws-root-exporter]
                                [--timeout 120] [--checks full|summary] [--skip-queries]
                                [--skip-unknown-state] [--keep-tmp]
"""

import argparse
import base64
import datetime
import http.server
import json
import os
import queue
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.dont_write_bytecode = True  # importing the sibling module leaves no __pycache__
sys.path.insert(0, HERE)
import check_queries  # noqa: E402  (sibling module)
import extract_queries  # noqa: E402

RULE_FILES = [
    os.path.join(REPO, "deploy", "prometheus", "aws-root-exporter.rules.yml"),
    os.path.join(REPO, "deploy", "prometheus", "aws-root-exporter.recording.yml"),
]
ALERTMANAGER_CONFIG = os.path.join(REPO, "deploy", "alertmanager", "alertmanager.yml")
WEBHOOK_PLACEHOLDER = "http://127.0.0.1:5001"
JOB = "aws-root-exporter"

MANAGEMENT = "111111111111"
CLEAN = "222222222222"
BROKEN = "333333333333"
INACTIVE_ONLY = "444444444444"
ALERT = "AwsRootAccessKeyPresent"
# Account names as AWS allows them: the exporter must keep them inside their label values, or
# Prometheus rejects the whole scrape and no account's alert works.
EVENTS_MEMBER = "101010101010"
# The second organization (served by the same simulator) and its clean member.
SECOND_ORG_SCENARIO = os.path.join(REPO, "tests", "fixtures", "scenarios", "org-b.toml")
SECOND_ORG = "second"
SECOND_MANAGEMENT = "210000000000"
SECOND_CLEAN = "210000000003"
HOSTILE_KEY = "777777777777"
HOSTILE_KEY_NAME = 'say "hi" \\ back\n{x="1"} = ✓'
HOSTILE_CR = "888888888888"
HOSTILE_CR_NAME = "cr\rtab\tend\\"
EVER = float("-inf")  # `since` for notifications that may have arrived at any time
WITH_KEY = {"mfa": ["virtual"], "password": False, "access_keys": ["Active"], "signing_certificates": []}
WITHOUT_KEY = {"mfa": ["virtual"], "password": False, "access_keys": [], "signing_certificates": []}


class TestFailure(Exception):
    pass


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- scenario --------------------------------------------------------------------------------

def scenario_toml():
    """The organization of this test; independent of config/demo-org.toml on purpose."""
    used = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1))
    used = used.strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"""\
# Written by tests/e2e/paging_test.py.
[organization]
id = "o-pagingtest1"
management_account_id = "111111111111"
features = ["RootCredentialsManagement", "RootSessions"]

# The management account, which AssumeRoot cannot target: the exporter runs there (the
# simulator's default caller) and audits it with its own credentials. Its root has a key.
[[accounts]]
id = "{MANAGEMENT}"
name = "management"
root = {{ mfa = ["hardware"], password = false, access_keys = ["Active"], signing_certificates = [] }}

# The account the test changes: clean at start (MFA, no password, no key).
[[accounts]]
id = "{CLEAN}"
name = "clean-member"
email = "clean@example.com"
status = "ACTIVE"
assume_root = "ok"
root = {{ mfa = ["virtual"], password = false, access_keys = [], signing_certificates = [] }}

# Everything wrong, so that every credential alert and dashboard panel has data: an active key
# used an hour ago, a password without MFA, a signing certificate.
[[accounts]]
id = "{BROKEN}"
name = "legacy-member"
email = "legacy@example.com"
root = {{ mfa = [], password = true, access_keys = [{{ status = "Active", created = "2019-03-02T10:00:00Z", last_used = "{used}", last_used_service = "s3", last_used_region = "eu-west-1" }}], signing_certificates = ["Active"] }}

# Only a deactivated key: must not page in full mode.
[[accounts]]
id = "{INACTIVE_ONLY}"
name = "inactive-key-member"
email = "inactive@example.com"
root = {{ mfa = ["virtual"], password = true, access_keys = ["Inactive"], signing_certificates = [] }}

# An SCP denies the root session: audit fails (AwsRootAuditFailing, error counters).
[[accounts]]
id = "555555555555"
name = "locked-member"
email = "locked@example.com"
assume_root = "access_denied"
root = {{ mfa = [], password = true, access_keys = [], signing_certificates = [] }}

# Hostile names (quotes, backslashes, newline, carriage return, tab, braces, `=`, unicode); the
# first has an active root key and must page with its name intact.
[[accounts]]
id = "{HOSTILE_KEY}"
name = {json.dumps(HOSTILE_KEY_NAME, ensure_ascii=False)}
root = {{ mfa = ["virtual"], password = false, access_keys = ["Active"], signing_certificates = [] }}

[[accounts]]
id = "{HOSTILE_CR}"
name = {json.dumps(HOSTILE_CR_NAME, ensure_ascii=False)}
root = {{ mfa = ["virtual"], password = false, access_keys = [], signing_certificates = [] }}

# Clean; the events phase creates and deletes a root key here with the exporter polling hourly.
[[accounts]]
id = "{EVENTS_MEMBER}"
name = "events-member"
root = {{ mfa = ["virtual"], password = false, access_keys = [], signing_certificates = [] }}

# Suspended: listed, skipped.
[[accounts]]
id = "666666666666"
name = "suspended-member"
email = "suspended@example.com"
status = "SUSPENDED"
root = {{ mfa = [], password = false, access_keys = [], signing_certificates = [] }}

# Root credential events reach the exporter through this queue in the events phase.
[events]
queue_name = "aws-root-events"
"""


# --- processes -------------------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Children:
    """Started child processes, their logs, and a reliable stop."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.procs = []  # (name, Popen, log path)
        self.retired = set()  # names of children stopped on purpose

    def start(self, name, argv, env=None, stdout_lines=None):
        path = os.path.join(self.tmp, f"{name}.log")
        logfile = open(path, "ab")
        log(f"starting {name}: {' '.join(argv)}")
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE if stdout_lines is not None else logfile,
                                stderr=logfile, env=env, cwd=self.tmp, start_new_session=True)
        self.procs.append((name, proc, path))
        if stdout_lines is not None:
            # copy stdout to the log, handing each line to the caller too
            def pump():
                for raw in proc.stdout:
                    logfile.write(raw)
                    logfile.flush()
                    stdout_lines.put(raw.decode(errors="replace").rstrip("\n"))
            threading.Thread(target=pump, daemon=True).start()
        return proc

    def check_alive(self):
        for name, proc, path in self.procs:
            if name not in self.retired and proc.poll() is not None:
                raise TestFailure(f"{name} exited with status {proc.returncode} (log: {path})")

    def stop(self, only=None):
        """Stop every child (or only the one named), SIGTERM first, SIGKILL after 10s."""
        chosen = [(n, p) for n, p, _ in reversed(self.procs) if only in (None, n)]
        for name, proc in chosen:
            self.retired.add(name)
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for name, proc in chosen:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log(f"{name} ignored SIGTERM; killing it")
                proc.kill()
                proc.wait()

    def print_logs(self, lines=30):
        for name, _, path in self.procs:
            try:
                with open(path, errors="replace") as f:
                    tail = f.readlines()[-lines:]
            except OSError:
                continue
            print(f"----- last {len(tail)} lines of {path}", file=sys.stderr)
            sys.stderr.writelines(tail)


# --- webhook receiver ------------------------------------------------------------------------

class Webhook:
    """Alertmanager webhook receiver: keeps (arrival time, path, payload) of every POST."""

    def __init__(self):
        self.notifications = []
        self.lock = threading.Lock()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                try:
                    payload = json.loads(body)
                except ValueError:
                    payload = {"unparsable": body.decode(errors="replace")}
                with owner.lock:
                    owner.notifications.append((time.monotonic(), self.path, payload))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def find(self, path, alertname, account_id, status, since, **more_labels):
        """First matching alert as (arrival time, alert), or None; `more_labels` must match too."""
        with self.lock:
            notes = list(self.notifications)
        for arrived, got_path, payload in notes:
            if arrived < since or got_path != path:
                continue
            for alert in payload.get("alerts", []):
                labels = alert.get("labels", {})
                if (labels.get("alertname") == alertname and labels.get("account_id") == account_id
                        and alert.get("status") == status
                        and all(labels.get(k) == v for k, v in more_labels.items())):
                    return arrived, alert
        return None

    def close(self):
        self.server.shutdown()
        self.server.server_close()


# --- HTTP helpers ----------------------------------------------------------------------------

def http_request(url, method="GET", body=None, timeout=5.0, context=None, headers=None):
    """(status, text); status 0 when the connection failed. `context`: TLS settings for https."""
    data = json.dumps(body).encode() if body is not None else None
    headers = dict(headers or {})
    if data:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")
    except (urllib.error.URLError, OSError):
        return 0, ""


def wait_for(what, predicate, timeout, children, interval=0.2):
    """Poll predicate() until it returns a truthy value; fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        children.check_alive()
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TestFailure(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def prom_query(prom_url, expr):
    status, text = http_request(f"{prom_url}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    if status != 200:
        return []
    return json.loads(text)["data"]["result"]


def put_simulator(control_url, account_id, what, body):
    status, text = http_request(f"{control_url}/_simulator/accounts/{account_id}/{what}", "PUT", body)
    if status != 200:
        raise TestFailure(f"PUT {what} of {account_id} answered {status}: {text}")


# --- TLS and basic auth for the exporter -------------------------------------------------------

class WebConfig:
    """The exporter's web config file (exporter-toolkit format, docs/web-config.md): a test CA
    and a server certificate for 127.0.0.1 made with openssl, and one bcrypt user. Every exporter
    of the test serves through it and Prometheus scrapes through it."""

    USER = "prometheus"
    PASSWORD = "e2e-scrape-password"
    # bcrypt of PASSWORD at cost 10 (made once with the bcrypt crate: the Python standard library
    # has no bcrypt). Changing PASSWORD needs a new hash, e.g. `htpasswd -nbBC 10 "" PASSWORD`.
    HASH = "$2b$10$dtj4rVt.YC/P6LWjLl56buqOYVDR4jcCIL.JTmi3gcTYcmnro9CYq"

    def __init__(self, tmp):
        self.dir = os.path.join(tmp, "tls")
        os.makedirs(self.dir)
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        self.openssl(["req", "-x509", *ec, "-days", "2", "-keyout", "ca.key", "-out", "ca.crt",
                      "-subj", "/CN=paging test CA",
                      "-addext", "basicConstraints=critical,CA:TRUE",
                      "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        with open(os.path.join(self.dir, "server.ext"), "w") as f:
            f.write("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                    "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n")
        self.openssl(["req", "-new", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=aws-root-exporter"])
        self.openssl(["x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                      "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "server.ext"])
        self.ca_file = os.path.join(self.dir, "ca.crt")
        self.path = os.path.join(self.dir, "web-config.yml")
        with open(self.path, "w") as f:
            # Paths relative to this file's directory, as exporter-toolkit reads them.
            f.write("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
                    f"basic_auth_users:\n  {self.USER}: {self.HASH}\n")
        self.context = ssl.create_default_context(cafile=self.ca_file)

    def openssl(self, args):
        out = subprocess.run(["openssl", *args], cwd=self.dir, capture_output=True, text=True)
        if out.returncode != 0:
            raise TestFailure(f"openssl {' '.join(args)} failed: {out.stderr.strip()}")


def check_scrape_through_tls_and_basic_auth(args, children, prom_url, exporter_port):
    """The exporter refuses /metrics without the password; Prometheus scrapes it anyway."""
    web = args.web
    url = f"https://127.0.0.1:{exporter_port}/metrics"
    status, _ = http_request(url, context=web.context)
    if status != 401:
        raise TestFailure(f"{url} without credentials answered {status}, expected 401")
    token = base64.b64encode(f"{web.USER}:wrong".encode()).decode()
    status, _ = http_request(url, context=web.context, headers={"Authorization": f"Basic {token}"})
    if status != 401:
        raise TestFailure(f"{url} with a wrong password answered {status}, expected 401")
    wait_for(f"Prometheus to scrape the exporter through TLS + basic auth (up{{job=\"{JOB}\"}} == 1)",
             lambda: prom_query(prom_url, f'up{{job="{JOB}"}} == 1'), args.timeout, children)
    log("Prometheus scrapes through TLS + basic auth (up == 1); without the password: 401")


# --- the test --------------------------------------------------------------------------------

def start_simulator(children, exporter_bin, tmp, timeout):
    """The test's organization, and a second one (tests/fixtures/scenarios/org-b.toml) whose
    management account has an access role trusting this one's management account."""
    path = os.path.join(tmp, "scenario.toml")
    with open(path, "w") as f:
        f.write(scenario_toml())
    lines = queue.Queue()
    children.start("simulator", [exporter_bin, "simulate", "--scenario", path,
                                 "--scenario", SECOND_ORG_SCENARIO,
                                 "--listen", "127.0.0.1:0", "--control-listen", "127.0.0.1:0"],
                   stdout_lines=lines)
    urls = {}
    deadline = time.monotonic() + timeout
    while len(urls) < 3:
        children.check_alive()
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            if time.monotonic() > deadline:
                raise TestFailure("the simulator did not print its two listen addresses "
                                  f"within {timeout:.0f}s") from None
            continue
        match = re.match(r"simulator (control )?listening on (http://\S+)", line)
        if match:
            urls["control" if match.group(1) else "aws"] = match.group(2).rstrip("/")
        match = re.match(r"simulator queue url (http://\S+)", line)
        if match:
            urls["queue"] = match.group(1)
    log(f"simulator: AWS endpoint {urls['aws']}, control {urls['control']}, queue {urls['queue']}")
    return urls["aws"], urls["control"], urls["queue"]


def start_exporter(children, exporter_bin, aws_url, checks, timeout, web, port=None,
                   name="exporter", refresh="5s", extra=()):
    port = port or free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_ENDPOINT_URL": aws_url, "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
                "AWS_SECRET_ACCESS_KEY": "secret", "AWS_REGION": "us-east-1",
                "AWS_EC2_METADATA_DISABLED": "true",
                "AWS_ROOT_EXPORTER_WEB_CONFIG_FILE": web.path})
    argv = [exporter_bin, "serve", "--listen", f"127.0.0.1:{port}", "--refresh-interval", refresh,
            *extra]
    if checks:
        argv += ["--checks", checks]
    children.start(name, argv, env=env)
    url = f"https://127.0.0.1:{port}"
    # /readyz needs no credentials (a probe endpoint), but TLS.
    wait_for("the exporter's /readyz", lambda: http_request(f"{url}/readyz", context=web.context)[0] == 200,
             timeout, children)
    log(f"exporter ready at {url}")
    return port


def alertmanager_config(webhook_url):
    with open(ALERTMANAGER_CONFIG) as f:
        text = f.read()
    rewrites = [
        (re.escape(WEBHOOK_PLACEHOLDER), webhook_url),
        (r"(?m)^(\s*group_wait:\s*)\S+", r"\g<1>1s"),
        (r"(?m)^(\s*group_interval:\s*)\S+", r"\g<1>1s"),
    ]
    for pattern, replacement in rewrites:
        text, count = re.subn(pattern, replacement, text)
        if not count:
            raise TestFailure(f"{ALERTMANAGER_CONFIG} has no match for {pattern!r}: update the "
                              "rewrites in paging_test.py")
    return text


def start_alertmanager(children, tmp, webhook_url, timeout):
    port = free_port()
    path = os.path.join(tmp, "alertmanager.yml")
    with open(path, "w") as f:
        f.write(alertmanager_config(webhook_url))
    children.start("alertmanager", ["prometheus-alertmanager", f"--config.file={path}",
                                    f"--storage.path={os.path.join(tmp, 'alertmanager-data')}",
                                    f"--web.listen-address=127.0.0.1:{port}",
                                    "--cluster.listen-address="])
    url = f"http://127.0.0.1:{port}"
    wait_for("Alertmanager's /-/ready", lambda: http_request(f"{url}/-/ready")[0] == 200,
             timeout, children)
    log(f"alertmanager ready at {url}")
    return port


def start_prometheus(children, tmp, exporter_port, alertmanager_port, timeout, web):
    port = free_port()
    path = os.path.join(tmp, "prometheus.yml")
    rule_files = "\n".join(f"  - {json.dumps(p)}" for p in RULE_FILES)
    with open(path, "w") as f:
        f.write(f"""\
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
{rule_files}
alerting:
  alertmanagers:
    - static_configs:
        - targets: ["127.0.0.1:{alertmanager_port}"]
scrape_configs:
  - job_name: {JOB}
    scheme: https
    tls_config:
      ca_file: {json.dumps(web.ca_file)}
    basic_auth:
      username: {web.USER}
      password: {web.PASSWORD}
    static_configs:
      - targets: ["127.0.0.1:{exporter_port}"]
""")
    children.start("prometheus", ["prometheus", f"--config.file={path}",
                                  f"--storage.tsdb.path={os.path.join(tmp, 'prometheus-data')}",
                                  f"--web.listen-address=127.0.0.1:{port}"])
    url = f"http://127.0.0.1:{port}"
    wait_for("Prometheus's /-/ready", lambda: http_request(f"{url}/-/ready")[0] == 200,
             timeout, children)
    log(f"prometheus ready at {url}")
    return url


def check_hostile_names(prom_url, webhook, args, children):
    """Accounts with hostile names are scraped, stored and paged with their names intact."""
    for account_id, name in [(HOSTILE_KEY, HOSTILE_KEY_NAME), (HOSTILE_CR, HOSTILE_CR_NAME)]:
        result = wait_for(f"Prometheus to store account {account_id} (hostile name)",
                          lambda: prom_query(prom_url, f'aws_organizations_account_info{{job="{JOB}", account_id="{account_id}"}}'),
                          args.timeout, children)
        got = result[0]["metric"]["account_name"]
        if got != name:
            raise TestFailure(f"account {account_id}: Prometheus stored the name {got!r}, expected {name!r}")
    _, alert = wait_for(f"{ALERT} for {HOSTILE_KEY} (hostile name) at the pager",
                        lambda: webhook.find("/pager", ALERT, HOSTILE_KEY, "firing", EVER),
                        args.timeout, children)
    if alert["labels"].get("account_name") != HOSTILE_KEY_NAME:
        raise TestFailure(f"the page names the account {alert['labels'].get('account_name')!r}, "
                          f"expected {HOSTILE_KEY_NAME!r}")
    if HOSTILE_KEY_NAME not in alert["annotations"].get("summary", "") + alert["annotations"].get("description", ""):
        log(f"note: the annotations do not quote the name verbatim: {alert['annotations']}")
    log(f"hostile names scraped and stored intact; {ALERT} for {HOSTILE_KEY} paged with its name")


def root_action(control_url, account_id, body):
    status, text = http_request(f"{control_url}/_simulator/accounts/{account_id}/root_actions",
                                method="POST", body=body)
    if status != 200:
        raise TestFailure(f"root action {body} on {account_id}: HTTP {status}: {text}")
    return json.loads(text)


def check_events_path(args, children, webhook, prom_url, control_url, aws_url, queue_url, port):
    """Restart the exporter with events_queue_url and refresh_interval 1h on the same address;
    create a root key through the simulator (which emits the CloudTrail event AWS would) and time
    the page, then delete it and time the resolve. A poll cannot be what finds them."""
    for name in ("exporter", "exporter-restarted"):
        children.stop(only=name)
    start_exporter(children, args.exporter_bin, aws_url, args.checks, args.timeout, args.web,
                   port=port, name="exporter-events", refresh="1h",
                   extra=("--events-queue-url", queue_url))
    wait_for("Prometheus to scrape the events exporter (refresh interval 1h)",
             lambda: prom_query(prom_url, f'aws_root_exporter_refresh_interval_seconds{{job="{JOB}"}} == 3600'),
             args.timeout, children)
    wait_for(f"Prometheus to see {EVENTS_MEMBER} audited without a key",
             lambda: prom_query(prom_url, f'aws_root_access_keys_present{{job="{JOB}", account_id="{EVENTS_MEMBER}"}} == 0'),
             args.timeout, children)
    created = time.monotonic()
    answer = root_action(control_url, EVENTS_MEMBER, {"action": "CreateAccessKey"})
    log(f"CreateAccessKey on {EVENTS_MEMBER}'s root user: {answer}")
    arrived, alert = wait_for(f"{ALERT} for {EVENTS_MEMBER} (firing) at the pager, by event",
                              lambda: webhook.find("/pager", ALERT, EVENTS_MEMBER, "firing", created),
                              args.timeout, children)
    fired_after = arrived - created
    check_annotations(alert, EVENTS_MEMBER, "events-member")
    log(f"EVENTS: FIRING notification {fired_after:.1f}s after CreateAccessKey")
    key_id = answer.get("access_key_id")
    deleted = time.monotonic()
    root_action(control_url, EVENTS_MEMBER, {"action": "DeleteAccessKey", "access_key_id": key_id})
    arrived, _ = wait_for(f"{ALERT} for {EVENTS_MEMBER} (resolved) at the pager, by event",
                          lambda: webhook.find("/pager", ALERT, EVENTS_MEMBER, "resolved", deleted),
                          args.timeout, children)
    resolved_after = arrived - deleted
    log(f"EVENTS: RESOLVED notification {resolved_after:.1f}s after DeleteAccessKey")
    signin_after = check_root_signin(args, children, webhook, control_url)
    polls = prom_query(prom_url, f'aws_root_exporter_refreshes_total{{job="{JOB}", result="success"}}')
    if not polls or float(polls[0]["value"][1]) != 1:
        raise TestFailure(f"the events exporter refreshed more than once: {polls}")
    return fired_after, resolved_after, signin_after


def check_root_signin(args, children, webhook, control_url):
    """Root activity (CIS 4.3): give the events member's root a password (no event: the state
    is set, as if long ago), then sign in to the console as root through the simulator, which
    queues the CloudTrail event AWS delivers. AwsRootUserActivity{kind="console_signin"} must
    page, naming the account and the kind."""
    put_simulator(control_url, EVENTS_MEMBER, "root",
                  {"mfa": ["virtual"], "password": True, "access_keys": [], "signing_certificates": []})
    signed_in = time.monotonic()
    root_action(control_url, EVENTS_MEMBER, {"action": "ConsoleLogin"})
    arrived, alert = wait_for(
        f"AwsRootUserActivity (console_signin) for {EVENTS_MEMBER} at the pager",
        lambda: webhook.find("/pager", "AwsRootUserActivity", EVENTS_MEMBER, "firing", signed_in,
                             kind="console_signin"),
        args.timeout, children)
    description = alert.get("annotations", {}).get("description", "")
    if EVENTS_MEMBER not in description or "console_signin" not in description:
        raise TestFailure(f"AwsRootUserActivity does not name the account and the kind: {description!r}")
    after = arrived - signed_in
    log(f"EVENTS: AwsRootUserActivity (console_signin) {after:.1f}s after the root sign-in")
    return after


def check_second_organization(args, children, webhook, control_url, aws_url, port, tmp):
    """Several organizations: restart the exporter on the same address with a configuration file
    naming two, this test's and the second through its access role; a root key put into a
    clean account of the second pages, the description naming the organization, and so does
    the second organization's management account (its root has a key)."""
    for name in ("exporter", "exporter-restarted", "exporter-events"):
        children.stop(only=name)
    config = os.path.join(tmp, "organizations.toml")
    with open(config, "w") as f:
        f.write(f"""\
[[organizations]]
name = "paging"

[[organizations]]
name = "{SECOND_ORG}"
role_arn = "arn:aws:iam::{SECOND_MANAGEMENT}:role/aws-root-exporter-org-access"
external_id = "org-b-external"
""")
    start_exporter(children, args.exporter_bin, aws_url, args.checks, args.timeout, args.web,
                   port=port, name="exporter-organizations", extra=("--config", config))
    put_simulator(control_url, SECOND_CLEAN, "root", WITH_KEY)
    added = time.monotonic()
    arrived, alert = wait_for(
        f"{ALERT} for {SECOND_CLEAN} of organization {SECOND_ORG} at the pager",
        lambda: webhook.find("/pager", ALERT, SECOND_CLEAN, "firing", added),
        args.timeout, children)
    description = alert.get("annotations", {}).get("description", "")
    if f"of organization {SECOND_ORG}" not in description or SECOND_CLEAN not in description:
        raise TestFailure(f"the page does not name the organization and account: {description!r}")
    log(f"ORGANIZATIONS: {ALERT} for {SECOND_CLEAN} {arrived - added:.1f}s after the key, "
        f"naming organization {SECOND_ORG}")
    _, alert = wait_for(
        f"{ALERT} for the second organization's management account {SECOND_MANAGEMENT}",
        lambda: webhook.find("/pager", ALERT, SECOND_MANAGEMENT, "firing", added),
        args.timeout, children)
    log(f"ORGANIZATIONS: the second organization's management account pages too")


def check_annotations(alert, account_id=CLEAN, account_name="clean-member"):
    annotations = alert.get("annotations", {})
    for key in ("summary", "description", "runbook_url"):
        if not annotations.get(key):
            raise TestFailure(f"the notification lacks the {key} annotation: {alert}")
    # The summary is one static sentence (monitoring-mixins conventions); the description names
    # the account.
    if "{{" in annotations["summary"] or not annotations["summary"].endswith("."):
        raise TestFailure(f"the summary is not one static sentence: {annotations['summary']!r}")
    if account_id not in annotations["description"] or account_name not in annotations["description"]:
        raise TestFailure(f"the description annotation does not name the account: "
                          f"{annotations['description']!r}")
    if alert["labels"].get("severity") != "critical":
        raise TestFailure(f"expected severity critical: {alert['labels']}")


def check_rule_health(prom_url):
    status, text = http_request(f"{prom_url}/api/v1/rules")
    if status != 200:
        raise TestFailure(f"/api/v1/rules answered {status}")
    loaded, broken = set(), []
    for group in json.loads(text)["data"]["groups"]:
        for rule in group["rules"]:
            loaded.add(rule["name"])
            if rule.get("health") != "ok":
                broken.append(f"{rule['name']}: {rule.get('health')} {rule.get('lastError', '')}")
    expected = {q["title"] for q in extract_queries.extract()
                if q["source"].startswith("deploy/prometheus/")}
    if broken:
        raise TestFailure("rules that do not evaluate cleanly:\n  " + "\n  ".join(broken))
    if loaded != expected:
        raise TestFailure(f"rules loaded by Prometheus {sorted(loaded)} differ from the rules "
                          f"extract_queries.py finds {sorted(expected)}")
    log(f"all {len(loaded)} rules loaded and evaluate without error")


def firing_timestamps(prom_url, alertname, seconds):
    """Evaluation times at which the alert was firing for CLEAN in the last `seconds`."""
    result = prom_query(prom_url, f'ALERTS{{alertname="{alertname}", account_id="{CLEAN}", '
                                  f'alertstate="firing"}}[{int(seconds)}s]')
    return sorted(float(t) for series in result for t, _ in series["values"])


def check_unknown_state(args, children, webhook, prom_url, control_url, aws_url, exporter_port):
    """A firing key alert must not go quiet when the account's state turns unknown.

    The key comes back; then the account's audit fails (the exporter keeps the last known
    gauges, aws_root_audit_success 0), then the exporter restarts and still cannot audit it
    (no credential gauge at all). Throughout, AwsRootAccessKeyPresent must keep firing without
    a gap and without a resolved notification, and AwsRootAuditFailing must fire too.
    """
    audit_alert = "AwsRootAuditFailing"
    put_simulator(control_url, CLEAN, "root", WITH_KEY)
    since = time.monotonic()
    wait_for(f"{ALERT} for {CLEAN} to page again",
             lambda: webhook.find("/pager", ALERT, CLEAN, "firing", since), args.timeout, children)
    phase_start = time.time()
    log(f"unknown state: {ALERT} fires again for {CLEAN}; now its audit fails")

    put_simulator(control_url, CLEAN, "assume_root", {"mode": "access_denied"})
    wait_for(f"{audit_alert} for {CLEAN} at the ticket queue",
             lambda: webhook.find("/tickets", audit_alert, CLEAN, "firing", since),
             args.timeout, children)
    log(f"audit failing, gauges kept: {audit_alert} reached /tickets")

    children.stop(only="exporter")
    log("exporter stopped; restarting it on the same address")
    start_exporter(children, args.exporter_bin, aws_url, args.checks, args.timeout, args.web,
                   port=exporter_port, name="exporter-restarted")
    wait_for(f"Prometheus to see {CLEAN} failing with no credential gauge after the restart",
             lambda: prom_query(prom_url, f'aws_root_audit_success{{job="{JOB}", account_id="{CLEAN}"}} == 0 '
                                          f'unless on (account_id) aws_root_access_keys_present{{job="{JOB}"}}'),
             args.timeout, children)
    time.sleep(5)  # a few more evaluations in the unknown state

    elapsed = time.time() - phase_start
    for name in (ALERT, audit_alert):
        times = firing_timestamps(prom_url, name, elapsed)
        if not times:
            raise TestFailure(f"{name} for {CLEAN} is not firing in the unknown state")
        gaps = [b - a for a, b in zip(times, times[1:]) if b - a > 3]
        if gaps or time.time() - times[-1] > 3:
            raise TestFailure(f"{name} for {CLEAN} stopped firing for a while during the unknown "
                              f"state (gaps {gaps}s, last firing {time.time() - times[-1]:.0f}s ago)")
    for name, path in ((ALERT, "/pager"), (audit_alert, "/tickets")):
        if webhook.find(path, name, CLEAN, "resolved", since):
            raise TestFailure(f"a resolved notification for {name} of {CLEAN} arrived while "
                              "the account's state was unknown")
    log(f"exporter restarted, {CLEAN} unknown: {ALERT} kept firing without a gap or a resolved "
        f"notification, {audit_alert} firing too")


def missing_prerequisite(args):
    for tool in ("prometheus", "prometheus-alertmanager", "openssl"):
        if not shutil.which(tool):
            return f"{tool} is not on PATH (Debian package of the same name)"
    if not os.access(args.exporter_bin, os.X_OK):
        return f"no exporter binary at {args.exporter_bin} (cargo build first)"
    return None


def run(args, tmp):
    children = Children(tmp)
    webhook = Webhook()
    try:
        log(f"webhook receiver at {webhook.url}")
        aws_url, control_url, queue_url = start_simulator(children, args.exporter_bin, tmp,
                                                          args.timeout)
        args.web = WebConfig(tmp)
        exporter_port = start_exporter(children, args.exporter_bin, aws_url, args.checks,
                                       args.timeout, args.web)
        am_port = start_alertmanager(children, tmp, webhook.url, args.timeout)
        prom_url = start_prometheus(children, tmp, exporter_port, am_port, args.timeout, args.web)

        # 0. the scrape goes through TLS and basic auth
        check_scrape_through_tls_and_basic_auth(args, children, prom_url, exporter_port)

        # 1. baseline: the clean account is audited and quiet; the broken one has paged
        wait_for(f"Prometheus to see account {CLEAN} audited",
                 lambda: prom_query(prom_url, f'aws_root_audit_success{{job="{JOB}", account_id="{CLEAN}"}} == 1'),
                 args.timeout, children)
        if prom_query(prom_url, f'ALERTS{{alertname="{ALERT}", account_id="{CLEAN}"}}'):
            raise TestFailure(f"{ALERT} is already active for the clean account {CLEAN}")
        wait_for(f"{ALERT} for {BROKEN} at the pager (pipeline check)",
                 lambda: webhook.find("/pager", ALERT, BROKEN, "firing", EVER),
                 args.timeout, children)
        log(f"pipeline works: {ALERT} for {BROKEN} reached /pager")
        check_hostile_names(prom_url, webhook, args, children)
        wait_for(f"{ALERT} for the management account {MANAGEMENT} at the pager",
                 lambda: webhook.find("/pager", ALERT, MANAGEMENT, "firing", EVER),
                 args.timeout, children)
        log(f"the management account's root key pages too: {ALERT} for {MANAGEMENT}")

        # 2. a root access key appears
        put_simulator(control_url, CLEAN, "root", WITH_KEY)
        added = time.monotonic()
        log(f"added an active root access key to {CLEAN}")
        arrived, alert = wait_for(
            f"{ALERT} for {CLEAN} (firing) at the pager",
            lambda: webhook.find("/pager", ALERT, CLEAN, "firing", added),
            args.timeout, children)
        fired_after = arrived - added
        check_annotations(alert)
        log(f"FIRING notification after {fired_after:.1f}s: {alert['annotations']['summary']}")

        # 3. the key is deleted
        put_simulator(control_url, CLEAN, "root", WITHOUT_KEY)
        removed = time.monotonic()
        log(f"deleted the root access key of {CLEAN}")
        arrived, alert = wait_for(
            f"{ALERT} for {CLEAN} (resolved) at the pager",
            lambda: webhook.find("/pager", ALERT, CLEAN, "resolved", removed),
            args.timeout, children)
        resolved_after = arrived - removed
        log(f"RESOLVED notification after {resolved_after:.1f}s")

        # 4. routing of warnings, and the deactivated key (full audit only) never paged
        wait_for("AwsRootAuditFailing for 555555555555 at the ticket queue",
                 lambda: webhook.find("/tickets", "AwsRootAuditFailing", "555555555555", "firing",
                                      EVER),
                 args.timeout, children)
        log("warnings reach /tickets: AwsRootAuditFailing for 555555555555")
        if args.checks != "summary":
            if (webhook.find("/pager", ALERT, INACTIVE_ONLY, "firing", EVER)
                    or prom_query(prom_url, f'ALERTS{{alertname="{ALERT}", account_id="{INACTIVE_ONLY}"}}')):
                raise TestFailure(f"{ALERT} fired for {INACTIVE_ONLY}, whose only key is deactivated")
            log(f"no page for {INACTIVE_ONLY}, whose only root key is deactivated")

        # 5. every rule evaluates
        check_rule_health(prom_url)

        # 6. the key alert survives the account's state turning unknown
        if args.skip_unknown_state:
            log("unknown-state phase skipped (--skip-unknown-state)")
        else:
            check_unknown_state(args, children, webhook, prom_url, control_url, aws_url,
                                exporter_port)

        # 7. events: the exporter polls hourly, and a root key created now pages anyway
        event_fired, event_resolved, signin_paged = check_events_path(
            args, children, webhook, prom_url, control_url, aws_url, queue_url, exporter_port)

        # 8. every shipped expression parses and has data (after the events phase, so that the
        # events panels have some too)
        if args.skip_queries:
            log("query check skipped (--skip-queries)")
        elif args.checks == "summary":
            log("query check skipped: allowed_empty.txt describes the full audit")
        else:
            failures = check_queries.check(prom_url, extract_queries.extract(),
                                           check_queries.read_allowed(check_queries.DEFAULT_ALLOWED))
            if failures:
                raise TestFailure(f"check_queries found {failures} problem(s), listed above")

        # 9. several organizations: a root key in the second pages, naming it
        check_second_organization(args, children, webhook, control_url, aws_url, exporter_port,
                                  tmp)

        print(f"PASS: polling (refresh 5s): page {fired_after:.1f}s after the key was added, "
              f"resolved {resolved_after:.1f}s after it was deleted; events (refresh 1h): page "
              f"{event_fired:.1f}s after CreateAccessKey, resolved {event_resolved:.1f}s after "
              f"DeleteAccessKey; root console sign-in paged {signin_paged:.1f}s after it",
              flush=True)
    except BaseException:
        children.stop()
        webhook.close()
        children.print_logs()
        raise
    children.stop()
    webhook.close()


def on_sigterm(signum, frame):
    """SIGTERM (e.g. from a CI timeout) unwinds like Ctrl-C, so children are stopped."""
    raise KeyboardInterrupt


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--exporter-bin", default=os.path.join(REPO, "target", "debug", "aws-root-exporter"))
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="upper bound of every wait, in seconds (default: %(default)s)")
    parser.add_argument("--checks", choices=["full", "summary"],
                        help="pass --checks to the exporter (default: the exporter's default)")
    parser.add_argument("--skip-queries", action="store_true",
                        help="do not run check_queries.py against the test's Prometheus")
    parser.add_argument("--skip-unknown-state", action="store_true",
                        help="skip the phase that fails the account's audit and restarts the exporter")
    parser.add_argument("--keep-tmp", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    args.exporter_bin = os.path.abspath(args.exporter_bin)

    problem = missing_prerequisite(args)
    if problem:
        print(f"FAIL: {problem}", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, on_sigterm)
    tmp = tempfile.mkdtemp(prefix="aws-root-paging-")
    try:
        run(args, tmp)
    except TestFailure as err:
        print(f"FAIL: {err}\n(configs and logs kept in {tmp})", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"interrupted (configs and logs kept in {tmp})", file=sys.stderr)
        return 130
    if args.keep_tmp:
        print(f"configs and logs kept in {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
