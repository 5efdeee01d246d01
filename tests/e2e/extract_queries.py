#!/usr/bin/env python3
"""Print every PromQL expression shipped with aws-root-exporter, one JSON object a line.

Sources:
  * dashboards/*.json: every panel target's `expr` (rows' nested panels included) and every
    query template variable (`label_values(SELECTOR, LABEL)` becomes `count by (LABEL) (SELECTOR)`);
  * deploy/prometheus/*.yml: every rule's `expr`.

Grafana variables are replaced by concrete values: $job -> aws-root-exporter, $instance -> .*,
$organization -> .*,
$__rate_interval / $__interval / $__range -> 1m (see --job, --instance, --interval). An unknown
variable is an error, so a new one has to be given a value here.

Output lines: {"source": "...", "title": "...", "expr": "..."}. `source` identifies the
expression stably (file#panel-ID/REF, file#var-NAME, file#RULE) and is what
tests/e2e/allowed_empty.txt refers to; `title` is for humans.

Python 3 standard library only. The rule files are read with a small reader for the subset of
YAML they use: every rule is a list item (`- `) whose keys may come in any order (the files are
rendered from mixin/ with sorted keys, so `expr:` comes before `record:`); an `expr:` is a
one-line plain or quoted scalar, or a literal block (`|`, `|-`). Anything else (e.g. a folded
`>` block, which would glue PromQL `#` comments to the next line) is reported as an error
rather than guessed.

Usage: tests/e2e/extract_queries.py [--root REPO] [--job JOB] [--instance REGEX] [--interval 1m]
"""

import argparse
import glob
import json
import os
import re
import sys

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

# Grafana's ${name}, ${name:format}, $name and the deprecated [[name]] forms.
VARIABLE = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\$(\w+)|\[\[(\w+)\]\]")


class ExtractError(Exception):
    pass


def grafana_values(job, instance, interval):
    seconds = duration_seconds(interval)
    return {
        "datasource": "prometheus",
        "job": job,
        "instance": instance,
        "organization": ".*",
        "__rate_interval": interval,
        "__interval": interval,
        "__range": interval,
        "__range_s": str(seconds),
        "__range_ms": str(seconds * 1000),
        "__interval_ms": str(seconds * 1000),
    }


def duration_seconds(text):
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    match = re.fullmatch(r"(\d+)(ms|s|m|h|d)", text)
    if not match:
        raise ExtractError(f"--interval must look like 1m or 30s, not {text!r}")
    return int(int(match.group(1)) * units[match.group(2)])


def substitute(expr, values, where):
    def replace(match):
        name = match.group(1) or match.group(2) or match.group(3)
        if name not in values:
            raise ExtractError(f"{where}: no value for Grafana variable ${name}; add it to "
                               f"grafana_values() in {os.path.basename(__file__)}")
        return values[name]

    return VARIABLE.sub(replace, expr)


# --- dashboards --------------------------------------------------------------------------

def walk_panels(panels):
    for panel in panels or []:
        yield panel
        # collapsed rows keep their panels inside
        yield from walk_panels(panel.get("panels"))


def variable_expr(query):
    """The PromQL behind a Prometheus query variable, or None for non-PromQL ones."""
    if isinstance(query, dict):
        query = query.get("query", "")
    query = (query or "").strip()
    match = re.fullmatch(r"label_values\((.*),\s*(\w+)\s*\)", query, re.S)
    if match:
        return f"count by ({match.group(2)}) ({match.group(1).strip()})"
    match = re.fullmatch(r"query_result\((.*)\)", query, re.S)
    if match:
        return match.group(1).strip()
    # label_names(), metrics(), label_values(label) without a selector: no PromQL to check
    return None


def dashboard_queries(path, rel, values):
    with open(path, encoding="utf-8") as f:
        dashboard = json.load(f)
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("type") != "query":
            continue
        expr = variable_expr(var.get("query"))
        if expr:
            where = f"{rel}#var-{var['name']}"
            yield {"source": where, "title": f"variable {var['name']}",
                   "expr": substitute(expr, values, where)}
    for panel in walk_panels(dashboard.get("panels")):
        for target in panel.get("targets", []) or []:
            expr = target.get("expr")
            if not expr or target.get("hide"):
                continue
            where = f"{rel}#panel-{panel.get('id')}/{target.get('refId', '?')}"
            yield {"source": where, "title": panel.get("title", ""),
                   "expr": substitute(expr, values, where)}


# --- rule files --------------------------------------------------------------------------

# A mapping key, with the list-item dash before it if any: group(1) is everything up to the key,
# so len(group(1)) is the key's column; a block scalar's lines are indented further than that.
KEY = re.compile(r'^(\s*(?:-\s+)?)"?(\w+)"?:\s*(.*?)\s*$')
ITEM = re.compile(r"^\s*-\s")


def scalar(text, where):
    """A one-line YAML scalar: plain (comment stripped), 'single' or "double" quoted."""
    if text.startswith("'"):
        if not text.endswith("'") or len(text) < 2:
            raise ExtractError(f"{where}: unterminated single-quoted expr")
        return text[1:-1].replace("''", "'")
    if text.startswith('"'):
        try:
            return json.loads(text)
        except ValueError as err:
            raise ExtractError(f"{where}: cannot read double-quoted expr: {err}") from None
    return re.split(r"\s+#", text, maxsplit=1)[0].strip()


def rule_queries(path, rel):
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    out = []
    rule = {}  # the keys of the current list item that matter: name, expr, where

    def finish():
        if "expr" in rule and "name" not in rule:
            raise ExtractError(f"{rule['where']}: expr in a rule without alert: or record:")
        if "name" in rule and "expr" not in rule:
            raise ExtractError(f"{rel}: rule {rule['name']} has no expr")
        if "expr" in rule:
            out.append({"source": f"{rel}#{rule['name']}", "title": rule["name"],
                        "expr": rule["expr"]})
        rule.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        where = f"{rel}:{i + 1}"
        if ITEM.match(line):
            finish()
        match = KEY.match(line)
        if not match:
            i += 1
            continue
        key_column, key, value = len(match.group(1)), match.group(2), match.group(3)
        i += 1
        if value[:1] in ("|", ">"):
            block = []
            while i < len(lines) and (not lines[i].strip() or
                                      len(lines[i]) - len(lines[i].lstrip()) > key_column):
                block.append(lines[i])
                i += 1
            if key != "expr":
                continue  # e.g. a multi-line annotation: skipped whole, never read as keys
            if value not in ("|", "|-", "|+"):
                raise ExtractError(f"{where}: expr must be a one-line scalar or a literal block "
                                   f"(|), not {value!r}")
            body = [b for b in block if b.strip()]
            if not body:
                raise ExtractError(f"{where}: empty expr block")
            indent = min(len(b) - len(b.lstrip()) for b in body)
            rule["expr"] = "\n".join(b[indent:] for b in block).strip("\n")
            rule["where"] = where
        elif key == "expr":
            if value == "":
                raise ExtractError(f"{where}: expr must be a one-line scalar or a literal block "
                                   f"(|), not an empty value")
            rule["expr"] = scalar(value, where)
            rule["where"] = where
        elif key in ("alert", "record"):
            rule["name"] = scalar(value, where)
    finish()
    return out


# --- main --------------------------------------------------------------------------------

def extract(root=REPO, job="aws-root-exporter", instance=".*", interval="1m"):
    values = grafana_values(job, instance, interval)
    out = []
    for path in sorted(glob.glob(os.path.join(root, "dashboards", "*.json"))):
        out.extend(dashboard_queries(path, os.path.relpath(path, root), values))
    for path in sorted(glob.glob(os.path.join(root, "deploy", "prometheus", "*.yml"))):
        out.extend(rule_queries(path, os.path.relpath(path, root)))
    seen = set()
    for query in out:
        if query["source"] in seen:
            raise ExtractError(f"two expressions share the source {query['source']}")
        seen.add(query["source"])
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=REPO, help="repository root (default: %(default)s)")
    parser.add_argument("--job", default="aws-root-exporter", help="value of $job")
    parser.add_argument("--instance", default=".*", help="value of $instance")
    parser.add_argument("--interval", default="1m",
                        help="value of $__rate_interval, $__interval and $__range")
    args = parser.parse_args()
    try:
        queries = extract(args.root, args.job, args.instance, args.interval)
    except (ExtractError, OSError, ValueError) as err:
        print(f"extract_queries: {err}", file=sys.stderr)
        return 1
    for query in queries:
        print(json.dumps(query))
    return 0


if __name__ == "__main__":
    sys.exit(main())
