#!/usr/bin/env bash
# Render the mixin into the files the repository ships:
#   deploy/prometheus/aws-root-exporter.rules.yml      (prometheusAlerts)
#   deploy/prometheus/aws-root-exporter.recording.yml  (prometheusRules)
#   dashboards/*.json                                  (grafanaDashboards)
# Usage: mixin/build.sh [OUTPUT_DIR]   (default: the repository root)
# Needs jsonnet (Debian's `jsonnet` package; scripts/test.sh installs it).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$(dirname "$here")}

if ! command -v jsonnet >/dev/null; then
  echo "mixin/build.sh: jsonnet not found (apt-get install jsonnet)" >&2
  exit 1
fi
mkdir -p "$out/deploy/prometheus" "$out/dashboards"
# -S: each value of render.jsonnet is a file's text; -m: one file per key, under $out.
jsonnet -S -J "$here" -m "$out" "$here/render.jsonnet" >/dev/null
