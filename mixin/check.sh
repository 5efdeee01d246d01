#!/usr/bin/env bash
# Fail when a committed file generated from the mixin differs from a fresh render: someone
# edited a generated file by hand, or changed mixin/ without running mixin/build.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$here/build.sh" "$tmp"
status=0
while IFS= read -r file; do
  if ! diff -u --label "$file (committed)" --label "$file (rendered from mixin/)" \
      "$root/$file" "$tmp/$file"; then
    status=1
  fi
done < <(cd "$tmp" && find . -type f | sed 's|^\./||' | sort)
# A dashboard in dashboards/ that the mixin does not render would escape the check.
for file in "$root"/dashboards/*.json; do
  rel=dashboards/$(basename "$file")
  if [ ! -e "$tmp/$rel" ]; then
    echo "$rel is not rendered by the mixin: add it to mixin/dashboards/ or delete it"
    status=1
  fi
done
if [ "$status" -ne 0 ]; then
  echo
  echo "mixin/check.sh: generated files differ from mixin/ (diff above)."
  echo "Edit mixin/ (thresholds and selectors: mixin/config.libsonnet), then run mixin/build.sh."
  exit 1
fi
echo "mixin/check.sh: $(cd "$tmp" && find . -type f | wc -l) generated files match mixin/"
