#!/usr/bin/env bash
# Pins the Dockerfile's base images by digest: asks the registry which digest each tag of
# `ARG RUST_IMAGE=` and `ARG RUNTIME_IMAGE=` names now (docker buildx imagetools inspect: the
# digest of the multi-platform index) and rewrites the ARG as TAG@sha256:DIGEST. Run it where the
# registries are reachable before building an image to publish, then review and commit the diff;
# run it again to move to the newest image behind the same tags. Needs Docker with buildx (no
# daemon: imagetools only talks to the registry). DOCKER=... names another docker binary.
set -euo pipefail
cd "$(dirname "$0")/.."
DOCKER=${DOCKER:-docker}

for name in RUST_IMAGE RUNTIME_IMAGE; do
  current=$(sed -n "s/^ARG $name=//p" Dockerfile)
  [ -n "$current" ] || { echo "error: no 'ARG $name=' in the Dockerfile" >&2; exit 1; }
  tag=${current%%@*}
  digest=$("$DOCKER" buildx imagetools inspect "$tag" | awk '$1 == "Digest:" { print $2; exit }')
  if ! [[ $digest =~ ^sha256:[0-9a-f]{64}$ ]]; then
    echo "error: no digest for $tag (got '$digest')" >&2
    exit 1
  fi
  sed -i "s|^ARG $name=.*|ARG $name=$tag@$digest|" Dockerfile
  echo "$name=$tag@$digest"
done
