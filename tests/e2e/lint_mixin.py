#!/usr/bin/env python3
"""Check the generated alerts and dashboards for the monitoring-mixins conventions.

Alerts (deploy/prometheus/aws-root-exporter.rules.yml):
  * every alert has a `severity` label and `summary`, `description`, `runbook_url` annotations;
  * `summary` is one static sentence ending with a period (no template): it groups alerts;
  * `description` is not empty and per-account alerts name the account in it
    ({{ $labels.account_id }}); exporter alerts name the instance ({{ $labels.instance }});
  * `runbook_url` is _config.runbookURLPattern with the alert's name in lower case.
Dashboards (dashboards/*.json):
  * `editable: false`;
  * the `job` variable is multi-select with an All option whose value is `.+`, and so is
    `instance`.
And mixin/jsonnetfile.json exists (a jsonnet-bundler file, so the mixin can be vendored).

Needs PyYAML (the test venv has it through cfn-lint) and jsonnet (to read runbookURLPattern).
Usage: tests/e2e/lint_mixin.py
"""

import glob
import json
import os
import subprocess
import sys

import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def config_value(key):
    out = subprocess.run(
        ["jsonnet", "-J", os.path.join(REPO, "mixin"), "-e",
         f'(import "mixin.libsonnet")._config.{key}'],
        check=True, capture_output=True, text=True, cwd=REPO)
    return json.loads(out.stdout)


def lint_alerts(path, pattern):
    problems = []
    with open(path) as f:
        rules = yaml.safe_load(f)
    alerts = [r for g in rules["groups"] for r in g["rules"] if "alert" in r]
    if not alerts:
        problems.append("no alerts")
    for rule in alerts:
        name = rule["alert"]
        annotations = rule.get("annotations", {})
        if "severity" not in rule.get("labels", {}):
            problems.append(f"{name}: no severity label")
        for key in ("summary", "description", "runbook_url"):
            if not annotations.get(key, "").strip():
                problems.append(f"{name}: no {key}")
        summary = annotations.get("summary", "")
        if "{{" in summary or not summary.endswith(".") or "\n" in summary.strip():
            problems.append(f"{name}: summary {summary!r} is not one static sentence ending with a period")
        description = annotations.get("description", "")
        per_account = "account_id" in rule["expr"] and "Exporter" not in name
        needed = "$labels.account_id" if per_account else "$labels.instance"
        if needed not in description and name not in ("AwsRootCredentialsManagementDisabled",):
            problems.append(f"{name}: description does not name {needed}")
        if annotations.get("runbook_url") != pattern % name.lower():
            problems.append(f"{name}: runbook_url {annotations.get('runbook_url')!r} is not "
                            f"{pattern % name.lower()!r}")
    return problems


def lint_dashboard(path):
    problems = []
    with open(path) as f:
        dashboard = json.load(f)
    if dashboard.get("editable") is not False:
        problems.append("editable is not false")
    variables = {v["name"]: v for v in dashboard.get("templating", {}).get("list", [])}
    for name in ("job", "instance"):
        v = variables.get(name)
        if v is None:
            problems.append(f"no {name} variable")
            continue
        if not (v.get("multi") and v.get("includeAll") and v.get("allValue") == ".+"):
            problems.append(f"{name}: not multi-select with All = '.+' "
                            f"(multi={v.get('multi')}, includeAll={v.get('includeAll')}, "
                            f"allValue={v.get('allValue')!r})")
    return problems


def main():
    failures = 0
    pattern = config_value("runbookURLPattern")
    if "%s" not in pattern:
        print(f"runbookURLPattern {pattern!r} has no %s")
        failures += 1
    checks = [("deploy/prometheus/aws-root-exporter.rules.yml",
               lambda p: lint_alerts(p, pattern))]
    checks += [(os.path.relpath(p, REPO), lint_dashboard)
               for p in sorted(glob.glob(os.path.join(REPO, "dashboards", "*.json")))]
    for rel, lint in checks:
        problems = lint(os.path.join(REPO, rel))
        print(("ok    " if not problems else "FAIL  ") + rel)
        for problem in problems:
            print(f"      {problem}")
        failures += len(problems)
    try:
        with open(os.path.join(REPO, "mixin", "jsonnetfile.json")) as f:
            bundle = json.load(f)
        if bundle.get("version") != 1:
            raise ValueError("version is not 1")
        print("ok    mixin/jsonnetfile.json")
    except (OSError, ValueError) as e:
        print(f"FAIL  mixin/jsonnetfile.json: {e}")
        failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
