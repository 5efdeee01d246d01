#!/usr/bin/env python3
"""Run every shipped PromQL expression against a live Prometheus and check it returns data.

Each expression from extract_queries.py (dashboards and rule files) is sent to
PROMETHEUS/api/v1/query. The check fails when an expression
  * is rejected (does not parse, unknown function, ...), or
  * returns no data and is not listed in the allow list (tests/e2e/allowed_empty.txt).

Allow-list lines: `SOURCE  # reason`, SOURCE being the "source" printed by extract_queries.py
(e.g. deploy/prometheus/aws-root-exporter.rules.yml#AwsRootExporterDown). The reason is
mandatory. Blank lines and lines starting with # are ignored. An entry that matches no
expression is an error too, so the list cannot rot.

Expressions on the allow list that do return data are reported, not failed (an alert that is
legitimately quiet in one scenario may fire in another).

Python 3 standard library only.

Usage:
  tests/e2e/check_queries.py --prometheus http://127.0.0.1:9090 \
      [--allowed-empty tests/e2e/allowed_empty.txt] [--queries FILE|-] [--parse-only]
"""

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

sys.dont_write_bytecode = True  # importing the sibling module leaves no __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import extract_queries  # noqa: E402  (sibling module)

DEFAULT_ALLOWED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "allowed_empty.txt")


def read_allowed(path):
    """SOURCE -> reason; raises ValueError on a line without a reason."""
    allowed = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            source, sep, reason = line.partition(" #")
            if not sep or not reason.strip():
                raise ValueError(f"{path}:{number}: every entry needs a reason: "
                                 f"`SOURCE  # why it may be empty`")
            allowed[source.strip()] = reason.strip()
    return allowed


def query(base_url, expr, timeout=10.0):
    """Return (ok, result_count_or_error_text)."""
    url = base_url.rstrip("/") + "/api/v1/query"
    data = urllib.parse.urlencode({"query": expr}).encode()
    try:
        with urllib.request.urlopen(url, data=data, timeout=timeout) as response:
            body = json.load(response)
    except urllib.error.HTTPError as err:
        try:
            body = json.load(err)
        except ValueError:
            return False, f"HTTP {err.code}"
    except (urllib.error.URLError, OSError, ValueError) as err:
        return False, f"request failed: {err}"
    if body.get("status") != "success":
        return False, f"{body.get('errorType', 'error')}: {body.get('error', body)}"
    result = body["data"]
    if result["resultType"] in ("scalar", "string"):
        return True, 1
    return True, len(result["result"])


def check(base_url, queries, allowed, parse_only=False, out=sys.stdout):
    """Print one line per expression and a summary; return the number of failures."""
    failures = 0
    counts = {"data": 0, "allowed empty": 0, "allowed, has data": 0}
    sources = {q["source"] for q in queries}
    for source in sorted(set(allowed) - sources):
        print(f"FAIL  {source}: allow-list entry matches no expression (stale?)", file=out)
        failures += 1
    for q in queries:
        ok, result = query(base_url, q["expr"])
        source = q["source"]
        if not ok:
            print(f"FAIL  {source}: {result}\n      expr: {q['expr']}", file=out)
            failures += 1
        elif result:
            state = "allowed, has data" if source in allowed else "data"
            counts[state] += 1
            print(f"ok    {source}: {result} series" + (" (on the allow list)" if source in allowed else ""), file=out)
        elif source in allowed:
            counts["allowed empty"] += 1
            print(f"ok    {source}: empty, allowed ({allowed[source]})", file=out)
        elif parse_only:
            counts["allowed empty"] += 1
            print(f"ok    {source}: empty (--parse-only)", file=out)
        else:
            print(f"FAIL  {source}: no data and not on the allow list\n      expr: {q['expr']}", file=out)
            failures += 1
    print(f"check_queries: {len(queries)} expressions, {counts['data']} with data, "
          f"{counts['allowed empty']} empty and allowed, {counts['allowed, has data']} allowed "
          f"but with data, {failures} failures", file=out)
    return failures


def load_queries(path):
    if path is None:
        return extract_queries.extract()
    handle = sys.stdin if path == "-" else open(path, encoding="utf-8")
    with handle:
        return [json.loads(line) for line in handle if line.strip()]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prometheus", required=True, help="Prometheus base URL")
    parser.add_argument("--allowed-empty", default=DEFAULT_ALLOWED,
                        help="allow list (default: %(default)s)")
    parser.add_argument("--queries", help="JSON lines from extract_queries.py, - for stdin "
                                          "(default: extract from this checkout)")
    parser.add_argument("--parse-only", action="store_true",
                        help="only check that every expression is accepted; empty is fine")
    args = parser.parse_args()
    try:
        queries = load_queries(args.queries)
        allowed = {} if args.parse_only else read_allowed(args.allowed_empty)
    except (extract_queries.ExtractError, OSError, ValueError) as err:
        print(f"check_queries: {err}", file=sys.stderr)
        return 2
    return 1 if check(args.prometheus, queries, allowed, args.parse_only) else 0


if __name__ == "__main__":
    sys.exit(main())
