#!/usr/bin/env python3
"""Check the Grafana dashboards in dashboards/ for the project's rules.

  * valid JSON with uid, title and schemaVersion >= 36, unique panel ids, a gridPos each;
  * a `datasource` template variable of type datasource (query prometheus), and `job` and
    `instance` query variables;
  * every datasource reference anywhere is {"type": "prometheus", "uid": "${datasource}"}: no
    hard-coded datasource UID, no __inputs to fill in at import;
  * every panel query uses both $job and $instance (the instance variable's own query uses $job),
    and none names a job itself (`job="..."`): which jobs the dashboards show is the `job`
    variable's business, whose query the mixin builds from its exporterSelector.

Python 3 standard library only. Usage: tests/e2e/lint_dashboards.py [FILE...]
"""

import glob
import json
import os
import re
import sys

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DATASOURCE_VARIABLES = ("${datasource}", "$datasource")


def uses(expr, name):
    return re.search(r"\$\{" + name + r"(:[^}]*)?\}|\$" + name + r"\b|\[\[" + name + r"\]\]",
                     expr) is not None


# A job matcher whose value is not a Grafana variable: job="x", job=~"x.*", job!="x"...
HARD_CODED_JOB = re.compile(r'\bjob\s*(=~|!~|!=|=)\s*"(?!\$)')


def walk(node, path="$"):
    """Yield (json path, dict) for every object in the document."""
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk(value, f"{path}[{i}]")


def panels(dashboard):
    stack = list(dashboard.get("panels", []))
    while stack:
        panel = stack.pop(0)
        yield panel
        stack.extend(panel.get("panels", []))


def lint(path):
    problems = []
    with open(path, encoding="utf-8") as f:
        try:
            dashboard = json.load(f)
        except ValueError as err:
            return [f"not valid JSON: {err}"]

    for key in ("uid", "title"):
        if not dashboard.get(key):
            problems.append(f"no {key}")
    if dashboard.get("schemaVersion", 0) < 36:
        problems.append(f"schemaVersion {dashboard.get('schemaVersion')} < 36")
    if "__inputs" in dashboard:
        problems.append("__inputs present: use the ${datasource} variable instead")

    variables = {v.get("name"): v for v in dashboard.get("templating", {}).get("list", [])}
    ds = variables.get("datasource")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        problems.append("no template variable `datasource` of type datasource, query prometheus")
    for name in ("job", "instance"):
        if variables.get(name, {}).get("type") != "query":
            problems.append(f"no query template variable `{name}`")
    instance_query = variables.get("instance", {}).get("query", "")
    if isinstance(instance_query, dict):
        instance_query = instance_query.get("query", "")
    if not uses(instance_query, "job"):
        problems.append("the instance variable's query does not use $job")

    for where, node in walk(dashboard):
        ds_ref = node.get("datasource")
        if ds_ref is None:
            continue
        if isinstance(ds_ref, str) or ds_ref.get("uid") not in DATASOURCE_VARIABLES \
                or ds_ref.get("type") != "prometheus":
            problems.append(f"{where}: datasource {json.dumps(ds_ref)} is not "
                            '{"type": "prometheus", "uid": "${datasource}"}')

    seen = set()
    for panel in panels(dashboard):
        pid = panel.get("id")
        label = f"panel {pid} ({panel.get('title', '')})"
        if pid in seen:
            problems.append(f"{label}: duplicate panel id")
        seen.add(pid)
        if "gridPos" not in panel:
            problems.append(f"{label}: no gridPos")
        if panel.get("type") == "row":
            continue
        targets = panel.get("targets") or []
        if not targets:
            problems.append(f"{label}: no query")
        for target in targets:
            expr = target.get("expr", "")
            for name in ("job", "instance"):
                if not uses(expr, name):
                    problems.append(f"{label} {target.get('refId')}: query does not use ${name}")
            if HARD_CODED_JOB.search(expr):
                problems.append(f"{label} {target.get('refId')}: query hard-codes a job matcher; "
                                "use $job")
    return problems


def main(argv):
    paths = argv or sorted(glob.glob(os.path.join(REPO, "dashboards", "*.json")))
    if not paths:
        print("lint_dashboards: no dashboards found", file=sys.stderr)
        return 1
    failed = 0
    for path in paths:
        problems = lint(path)
        name = os.path.relpath(path, REPO)
        if problems:
            failed += 1
            print(f"FAIL  {name}")
            for problem in problems:
                print(f"      {problem}")
        else:
            print(f"ok    {name}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
