#!/usr/bin/env python3
"""Lint and render the Helm chart deploy/helm/aws-root-exporter with Helm's own engine, and
validate what comes out.

Helm's engine: the helm-python-sdk wheel (PyPI), which binds Helm's official Go SDK (v4) through
a C library; no helm binary. For the default values and for each option, and with every option
on:

- `helm lint` (strict, Kubernetes 1.32) reports no error and no warning, and the values pass the
  chart's values.schema.json; values the schema must refuse are refused;
- the render's built-in kinds are valid, strictly (unknown fields are errors), for the Kubernetes
  versions of tests/deploy/check_kubernetes.py and 1.32; the prometheus-operator kinds get that
  script's CRD checks (the operator's CRD schemas from cloudcoil-models-prometheus-operator,
  unknown fields refused; known fields only, required fields, the ServiceMonitor selects the
  Service and names its port, the PrometheusRule through `promtool check rules`), and so do the
  manifests' promises (one replica with Recreate, no API token, the hardened security context,
  probes on /healthz and /readyz, the web config wiring, ...);
- with default values the objects equal the kustomize base (deploy/kubernetes/) in substance:
  the same kinds, names and specs, once Helm's own labels (helm.sh/chart,
  app.kubernetes.io/instance, /version, /managed-by), the namespace and the checksum annotation
  are set aside;
- the PrometheusRule holds exactly the groups of deploy/prometheus/*.yml, the dashboard
  ConfigMaps exactly dashboards/*.json; the ServiceMonitor's jobLabel names a label of the
  Service whose value is the job the rules select, whatever the release is called; a change of
  `config` changes the pod's checksum annotation; image.digest pins the image; appVersion is
  Cargo.toml's version.

Usage: check_helm.py [--kubectl PATH]
Needs helm-python-sdk, kubernetes-validate, cloudcoil-models-prometheus-operator, PyYAML and
kubectl in the test venv (scripts/test.sh
installs them), and promtool.
"""
import argparse
import copy
import json
import re
import sys
import tomllib
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import check_kubernetes as kube  # noqa: E402  (its checks and its error list)

try:
    import helm_python as helm
except ImportError:  # reported in main()
    helm = None

ROOT = kube.ROOT
CHART = ROOT / "deploy" / "helm" / "aws-root-exporter"
RULE_FILES = sorted((ROOT / "deploy" / "prometheus").glob("*.yml"), key=lambda p: p.name != "aws-root-exporter.rules.yml")
K8S = "1.32.0"
RELEASE = kube.NAME
JOB = "aws-root-exporter"
HELM_LABELS = {"helm.sh/chart", "app.kubernetes.io/instance", "app.kubernetes.io/version",
               "app.kubernetes.io/managed-by"}
DIGEST = "sha256:" + "0123456789abcdef" * 4
REPOSITORY, _, TAG = kube.IMAGE.rpartition(":")

fail = kube.fail

# Each option as a values overlay, named after the kustomize component it stands for (the names
# check_kubernetes.check_promises knows).
OPTIONS = {
    "prometheus-rule": {"prometheusRule": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}}},
    "grafana-dashboards": {"grafanaDashboards": {"enabled": True}},
    "network-policy": {"networkPolicy": {"enabled": True}},
    "eks-pod-identity": {"eksPodIdentity": {"enabled": True}},
    "web-config": {
        "webConfig": {
            "enabled": True,
            "tlsSecret": "aws-root-exporter-tls",
            "config": {
                "tls_server_config": {"cert_file": "tls.crt", "key_file": "tls.key", "min_version": "TLS12"},
                "basic_auth_users": {
                    "prometheus": "$2b$10$uBaw126lbTxZAIudu0ZqPeIYQbYBrvgAT3zXdi1Re.rTPsOwW2Dam"},
            },
        },
        "serviceMonitor": {
            "labels": {"release": "kube-prometheus-stack"},
            "basicAuth": {"username": {"name": "aws-root-exporter-scrape-auth", "key": "username"},
                          "password": {"name": "aws-root-exporter-scrape-auth", "key": "password"}},
        },
    },
}
# Everything else a user may set, on in the all-options render.
EXTRAS = {
    "image": {"repository": REPOSITORY, "tag": TAG, "pullPolicy": "Always"},
    "imagePullSecrets": [{"name": "registry"}],
    "extraEnv": [{"name": "AWS_ROOT_EXPORTER_REFRESH_INTERVAL", "value": "10m"},
                 {"name": "AWS_ROOT_EXPORTER_ACCOUNT_TIMEOUT",
                  "valueFrom": {"configMapKeyRef": {"name": "tuning", "key": "timeout"}}}],
    "serviceAccount": {"annotations": {"example.com/owner": "security"}},
    "podAnnotations": {"example.com/team": "security"},
    "podLabels": {"team": "security"},
    "resources": {"requests": {"cpu": "100m", "memory": "96Mi"}, "limits": {"memory": "256Mi"}},
    "nodeSelector": {"kubernetes.io/os": "linux"},
    "tolerations": [{"key": "monitoring", "operator": "Exists", "effect": "NoSchedule"}],
    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64", "arm64"]}]}]}}},
    "priorityClassName": "monitoring",
    "service": {"annotations": {"example.com/scrape": "operator"}},
    "serviceMonitor": {"interval": "30s", "scrapeTimeout": "15s",
                       "metricRelabelings": [{"action": "labeldrop", "regex": "unused"}]},
}
# What the user creates beside the chart in the web-config render (the chart references it).
USER_SECRETS = [{
    "apiVersion": "v1", "kind": "Secret",
    "metadata": {"name": "aws-root-exporter-scrape-auth", "namespace": kube.NAMESPACE,
                 "labels": {"app.kubernetes.io/name": kube.NAME}},
    "stringData": {"username": "prometheus", "password": "not-checked"},
}]
# Values the schema must refuse.
BAD_VALUES = {
    "an unknown key": {"replicas": 2},
    "an unknown pull policy": {"image": {"pullPolicy": "Sometimes"}},
    "a digest that is no sha256": {"image": {"digest": "latest"}},
    "an empty repository": {"image": {"repository": ""}},
    "a scrape interval that is no duration": {"serviceMonitor": {"interval": "1 minute"}},
    "a web config key the exporter refuses": {"webConfig": {"config": {"tls_config": {}}}},
    "a plain password as a basic-auth hash": {"webConfig": {"config": {"basic_auth_users": {"p": "secret"}}}},
    "AWS_REGION in extraEnv (awsRegion sets it)": {"extraEnv": [{"name": "AWS_REGION", "value": "x"}]},
}


def merge(*layers):
    out = {}
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = merge(out[key], value)
            else:
                out[key] = copy.deepcopy(value)
    return out


def render(values, release=RELEASE):
    """The chart rendered by Helm's engine: (documents, NOTES.txt)."""
    with helm.Chart.load(CHART) as chart:
        manifests = chart.render(values, name=release, namespace=kube.NAMESPACE, is_install=True)
    docs, notes = [], ""
    for name, text in sorted(manifests.items()):
        if name.endswith("NOTES.txt"):
            notes = text
            continue
        docs.extend(d for d in yaml.safe_load_all(text) if d)
    return docs, notes


def lint(where, values):
    report = helm.lint(str(CHART), values, strict=True, kube_version=f"v{K8S}")
    for e in report.get("errors") or []:
        fail(where, f"helm lint: {e}")
    for m in report.get("messages") or []:
        if m.get("severity", 0) >= 2:
            fail(where, f"helm lint: {m.get('path')}: {m.get('error')}")


def schema(where, values, ok):
    with helm.Chart.load(CHART) as chart:
        try:
            chart.validate_schema(values)
            refused = None
        except helm.HelmError as e:
            refused = str(e)
    if ok and refused:
        fail(where, f"values.schema.json refuses the values: {refused}")
    if not ok and not refused:
        fail(where, "values.schema.json accepts them")


def validate(where, docs):
    versions = sorted({kube.OLDEST_K8S, K8S, kube.kubernetes_validate.latest_version()},
                      key=lambda v: tuple(int(x) for x in v.split(".")))
    for doc in docs:
        dw = f"{where}: {doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        crd = kube.CRD_CHECKS.get((doc.get("apiVersion"), doc.get("kind")))
        if crd:
            kube.validate_crd_schema(dw, doc)
            crd(dw, doc, docs)
        else:
            kube.validate_builtin(dw, doc, versions)
    return versions


def substance(doc):
    """A rendered object without what Helm adds on purpose (its labels, the namespace, the
    checksum annotations) and without comments' traces (none survive parsing)."""
    doc = copy.deepcopy(doc)

    def strip(obj):
        if isinstance(obj, dict):
            for key in ("labels", "matchLabels", "selector"):
                if isinstance(obj.get(key), dict):
                    for label in HELM_LABELS:
                        obj[key].pop(label, None)
            annotations = obj.get("annotations")
            if isinstance(annotations, dict):
                for key in [k for k in annotations if k.startswith("checksum/")]:
                    del annotations[key]
                if not annotations:
                    del obj["annotations"]
            for value in obj.values():
                strip(value)
        elif isinstance(obj, list):
            for value in obj:
                strip(value)

    doc["metadata"].pop("namespace", None)
    strip(doc)
    return doc


def compare_with_base(where, docs, kubectl):
    base, err = kube.run_kustomize(kubectl, kube.BASE)
    if base is None:
        fail(where, f"kubectl kustomize deploy/kubernetes failed: {err}")
        return
    key = lambda d: (d["kind"], d["metadata"]["name"])  # noqa: E731
    ours = {key(d): substance(d) for d in docs}
    theirs = {key(d): substance(d) for d in base}
    if sorted(ours) != sorted(theirs):
        fail(where, f"objects {sorted(ours)} differ from the kustomize base's {sorted(theirs)}")
    for k in sorted(set(ours) & set(theirs)):
        if ours[k] != theirs[k]:
            fail(where, f"{k[0]}/{k[1]} differs from the kustomize base:\n"
                        f"  chart: {json.dumps(ours[k], sort_keys=True)}\n"
                        f"  base:  {json.dumps(theirs[k], sort_keys=True)}")


def one(docs, kind):
    found = [d for d in docs if d["kind"] == kind]
    return found[0] if len(found) == 1 else None


def check_rules_and_dashboards(where, docs):
    rule = one(docs, "PrometheusRule")
    expected = [g for p in RULE_FILES for g in yaml.safe_load(p.read_text())["groups"]]
    if rule is None:
        fail(where, "no single PrometheusRule")
    elif rule["spec"]["groups"] != expected:
        ours = {r.get("alert") or r.get("record") for g in rule["spec"]["groups"] for r in g["rules"]}
        shipped = {r.get("alert") or r.get("record") for g in expected for r in g["rules"]}
        fail(where, "the PrometheusRule's groups are not those of deploy/prometheus/*.yml "
                    f"(only in the chart: {sorted(ours - shipped)}, only shipped: {sorted(shipped - ours)}; "
                    "run tests/deploy/helm_files.py)")
    if rule is not None and rule["metadata"]["labels"].get("release") != "kube-prometheus-stack":
        fail(where, "prometheusRule.labels did not reach the PrometheusRule")
    boards = {k: json.loads(v) for d in docs if d["kind"] == "ConfigMap" for k, v in d.get("data", {}).items()
              if k.endswith(".json")}
    shipped = {p.name: json.loads(p.read_text()) for p in kube.DASHBOARDS.glob("*.json")}
    if boards != shipped:
        fail(where, f"the dashboard ConfigMaps {sorted(boards)} are not dashboards/*.json {sorted(shipped)} "
                    "(run tests/deploy/helm_files.py)")


def check_job_label(where, docs):
    sm, svc = one(docs, "ServiceMonitor"), one(docs, "Service")
    if sm is None or svc is None:
        fail(where, "no single ServiceMonitor and Service")
        return
    label = sm["spec"].get("jobLabel")
    if not label:
        fail(where, "the ServiceMonitor has no jobLabel: the job would be the Service's name "
                    f"{svc['metadata']['name']!r}")
    elif svc["metadata"].get("labels", {}).get(label) != JOB:
        fail(where, f"the ServiceMonitor's jobLabel {label!r} is not a label of the Service with "
                    f"the value {JOB!r} that the rules select")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    venv_kubectl = ROOT / "target" / "test-venv" / "bin" / "kubectl"
    parser.add_argument("--kubectl", default=str(venv_kubectl) if venv_kubectl.exists() else "kubectl")
    args = parser.parse_args()
    if helm is None:
        print("FAIL helm-python-sdk is not installed (scripts/test.sh installs it)")
        return 1
    if kube.kubernetes_validate is None:
        print("FAIL kubernetes-validate is not installed (scripts/test.sh installs it)")
        return 1
    if kube.prometheus_operator_v1 is None:
        print("FAIL cloudcoil-models-prometheus-operator is not installed (scripts/test.sh installs it)")
        return 1
    print(f"Helm engine: helm-python-sdk, Helm SDK {helm.helm_sdk_version()}")

    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    cargo = tomllib.loads((ROOT / "Cargo.toml").read_text())["package"]["version"]
    if chart.get("appVersion") != cargo:
        fail("Chart.yaml", f"appVersion {chart.get('appVersion')!r} is not Cargo.toml's version {cargo!r}")

    image = {"image": {"repository": REPOSITORY, "tag": TAG}}
    renders = [("default values", {}, [])]
    renders += [(name, merge(image, values), [name]) for name, values in OPTIONS.items()]
    every = merge(image, *OPTIONS.values(), EXTRAS)
    renders.append(("every option", every, list(OPTIONS)))

    for label, values, components in renders:
        where = f"helm {label}"
        lint(where, values)
        schema(where, values, ok=True)
        try:
            docs, notes = render(values)
        except helm.HelmError as e:
            fail(where, f"render failed: {e}")
            continue
        versions = validate(where, docs)
        extra = USER_SECRETS if "web-config" in components else []
        kube.check_promises(where, docs + extra, components, in_overlay=bool(components))
        if one(docs, "ServiceMonitor"):
            check_job_label(where, docs)
        if not notes.strip():
            fail(where, "NOTES.txt renders empty")
        kinds = sorted({d["kind"] for d in docs})
        print(f"rendered {label}: {len(docs)} objects ({', '.join(kinds)})")
        if label == "default values":
            compare_with_base(where, docs, args.kubectl)
        if label == "every option":
            check_rules_and_dashboards(where, docs)
            dep = one(docs, "Deployment")
            c = dep["spec"]["template"]["spec"]["containers"][0] if dep else {}
            names = [e["name"] for e in c.get("env", [])]
            for e in EXTRAS["extraEnv"]:
                if e["name"] not in names:
                    fail(where, f"extraEnv {e['name']} missing from the container")

    # Another release name: other object names, the same job.
    docs, _ = render({}, release="prod")
    check_job_label("helm release prod", docs)
    if one(docs, "Deployment")["metadata"]["name"] != "prod-aws-root-exporter":
        fail("helm release prod", "objects are not named after the release")

    # image.digest pins the image; the tag defaults to appVersion.
    pinned = one(render({"image": {"repository": REPOSITORY, "digest": DIGEST}})[0], "Deployment")
    got = pinned["spec"]["template"]["spec"]["containers"][0]["image"]
    if got != f"{REPOSITORY}:{chart['appVersion']}@{DIGEST}":
        fail("image.digest", f"image {got!r} is not REPOSITORY:appVersion@DIGEST")

    # A change of the configuration rolls the pod; the same configuration does not.
    def checksum(values):
        dep = one(render(values)[0], "Deployment")
        return dep["spec"]["template"]["metadata"]["annotations"].get("checksum/config")
    base_sum = checksum({})
    if not base_sum or base_sum != checksum({}):
        fail("checksum/config", "missing, or not the same for the same configuration")
    changed = yaml.safe_load((CHART / "values.yaml").read_text())["config"].replace('"5m"', '"10m"')
    if checksum({"config": changed}) == base_sum:
        fail("checksum/config", "a changed configuration does not change the pod template")

    # Bad values are refused by the schema (helm install/template/lint would stop there).
    for what, values in BAD_VALUES.items():
        schema(f"schema with {what}", values, ok=False)
    # And by the templates where the schema cannot tell.
    for what, values in {
        "webConfig on without a file": {"webConfig": {"enabled": True}},
        "no ServiceAccount and no name": {"serviceAccount": {"create": False}},
    }.items():
        try:
            render(values)
            fail(f"render with {what}", "rendered instead of failing")
        except helm.HelmError:
            pass

    for e in kube.errors:
        print(f"FAIL {e}")
    if kube.errors:
        return 1
    print(f"ok: {len(renders)} renders linted and valid against Kubernetes {' and '.join(versions)} "
          f"(CRDs against the prometheus-operator {kube.CRD_SCHEMA_VERSION} schemas and structurally, "
          f"rules by promtool); default render equals the kustomize base; "
          f"{len(BAD_VALUES)} bad values refused")
    return 0


if __name__ == "__main__":
    sys.exit(main())
