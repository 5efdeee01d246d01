#!/usr/bin/env bash
# Builds the container image's binary outside Docker, exactly as the Dockerfile's build stage does,
# and checks what the image relies on:
#   - the toolchain and Debian release are the ones the Dockerfile names (rust:X.Y.Z-<codename>);
#   - the build stage's ENV lines and its one `cargo build` line, read from the Dockerfile and
#     run as they are (nothing else from this shell's environment: RUSTFLAGS, CARGO_PROFILE_*,
#     CARGO_BUILD_* are cleared), into target/container so that other builds are not disturbed;
#   - the binary is stripped, dynamically linked against nothing but what distroless cc has, and
#     needs no newer glibc symbol version than the runtime base's Debian ships;
#   - `--version` prints the version of Cargo.toml and of the image label; there is no simulator
#     (`demo`, `simulate`) in it;
#   - in an empty environment (env -i, as in the image: no PATH, no HOME), `serve` starts without
#     AWS and `healthcheck` exits 0 against it, 1 against a port where nothing listens; SIGTERM
#     stops `serve` with exit 0.
# Slow: a release build takes 10 minutes or more on 2 cores, so scripts/test.sh does not run it.
# Everything it starts listens on 127.0.0.1; the exporter's AWS endpoint is 127.0.0.1:9 (nothing
# answers), with dummy static credentials and the instance metadata lookup off.
#
#   scripts/container-binary.sh            build (incremental) and check
#   scripts/container-binary.sh --no-build check the binary already in target/container
set -euo pipefail
cd "$(dirname "$0")/.."
# Pipelines here end in commands that read all their input: no SIGPIPE under pipefail.

TARGET_DIR=target/container
BIN=$TARGET_DIR/release/aws-root-exporter
build=1
[ "${1:-}" = "--no-build" ] && build=0

failures=0
ok() { echo "ok: $*"; }
bad() {
  echo "FAILED: $*"
  failures=$((failures + 1))
}
die() {
  echo "error: $*" >&2
  exit 2
}

# ---- what the Dockerfile says ------------------------------------------------------------------
arg() { sed -n "s/^ARG $1=//p" Dockerfile; }
rust_image=$(arg RUST_IMAGE)
runtime_image=$(arg RUNTIME_IMAGE)
label_version=$(arg VERSION)
if [ -z "$rust_image" ] || [ -z "$runtime_image" ] || [ -z "$label_version" ]; then
  die "Dockerfile: ARG RUST_IMAGE, RUNTIME_IMAGE and VERSION with defaults expected"
fi

# rust:1.95.0-bookworm[@sha256:...] -> 1.95.0 and bookworm
rust_tag=${rust_image%%@*}
rust_tag=${rust_tag#rust:}
rust_version=${rust_tag%%-*}
build_codename=${rust_tag#*-}
[[ $rust_image == rust:* && $rust_version =~ ^[0-9]+\.[0-9]+\.[0-9]+$ && -n $build_codename ]] \
  || die "Dockerfile: RUST_IMAGE should be rust:X.Y.Z-<debian codename>, not $rust_image"

# gcr.io/distroless/cc-debian12:nonroot -> Debian 12
runtime_debian=$(sed -n 's/^.*distroless\/cc-debian\([0-9]*\).*$/\1/p' <<<"$runtime_image")
[ -n "$runtime_debian" ] || die "Dockerfile: RUNTIME_IMAGE should be distroless cc-debianN, not $runtime_image"
# Debian release -> codename and glibc version (from Debian's libc6 package of that release).
case $runtime_debian in
  12) runtime_codename=bookworm runtime_glibc=2.36 ;;
  13) runtime_codename=trixie runtime_glibc=2.41 ;;
  *) die "unknown glibc of Debian $runtime_debian: add it to this script" ;;
esac

build_stage=$(awk '/^FROM .* AS build$/ { b = 1; next } /^FROM / { b = 0 } b' Dockerfile)
env_lines=$(grep -c '^ENV ' <<<"$build_stage" || true)
mapfile -t build_env < <(sed -n 's/^ENV \([A-Za-z_][A-Za-z0-9_]*=[A-Za-z0-9_.,:=+\/-]*\)$/\1/p' <<<"$build_stage")
[ "$env_lines" -eq "${#build_env[@]}" ] \
  || die "Dockerfile: write each ENV of the build stage as one NAME=value (no quotes, spaces or continuation) so that this script can apply it"
cargo_lines=$(grep -E '^[[:space:]]+cargo build ' <<<"$build_stage" | sed -E 's/^[[:space:]]+//; s/[[:space:]]*\\$//')
[ "$(grep -c . <<<"$cargo_lines")" -eq 1 ] || die "Dockerfile: exactly one 'cargo build' line expected in the build stage"
[[ $cargo_lines =~ ^[A-Za-z0-9\ ._=/-]+$ ]] || die "Dockerfile: the cargo line must be plain words, no shell syntax: $cargo_lines"
read -ra cargo_cmd <<<"$cargo_lines"
grep -q 'install -D -m 0755 target/release/aws-root-exporter ' <<<"$build_stage" \
  || die "Dockerfile: the build stage should copy target/release/aws-root-exporter out"

echo "Dockerfile: build on $rust_image, run on $runtime_image (Debian $runtime_debian, glibc $runtime_glibc)"
echo "Dockerfile: build environment: ${build_env[*]:-(none)}"
echo "Dockerfile: build command: ${cargo_cmd[*]}"

# ---- the same toolchain and Debian here --------------------------------------------------------
here_rust=$(rustc --version | awk '{ print $2 }')
if [ "$here_rust" = "$rust_version" ]; then
  ok "rustc $here_rust here, as the Dockerfile's $rust_image"
else
  bad "rustc $here_rust here, the Dockerfile builds with $rust_version: change one of them"
fi
here_codename=$(sed -n 's/^VERSION_CODENAME=//p' /etc/os-release)
here_glibc=$(ldd --version | awk 'NR == 1 { print $NF }')
if [ "$here_codename" = "$build_codename" ]; then
  ok "Debian $here_codename (glibc $here_glibc) here, as the Dockerfile's build stage"
else
  bad "Debian $here_codename here, the Dockerfile builds on $build_codename: the glibc check below is not the image's"
fi
[ "$build_codename" = "$runtime_codename" ] \
  || bad "the build stage ($build_codename) and the runtime (Debian $runtime_debian, $runtime_codename) differ"
for config in "$HOME/.cargo/config.toml" "$HOME/.cargo/config" .cargo/config.toml .cargo/config; do
  if [ -f "$config" ] && grep -Eq 'rustflags|\[profile|\[build' "$config"; then
    bad "$config sets build options the Docker build does not have"
  fi
done

# ---- build -------------------------------------------------------------------------------------
if [ "$build" -eq 1 ]; then
  clear=()
  while IFS='=' read -r name _; do
    case $name in
      RUSTFLAGS | RUSTDOCFLAGS | CARGO_ENCODED_RUSTFLAGS | CARGO_BUILD_* | CARGO_PROFILE_* | CARGO_TARGET_* | CARGO_INCREMENTAL)
        clear+=(-u "$name")
        ;;
    esac
  done < <(env)
  echo "==> CARGO_TARGET_DIR=$TARGET_DIR ${build_env[*]} ${cargo_cmd[*]}"
  started=$SECONDS
  env "${clear[@]}" "${build_env[@]}" CARGO_TARGET_DIR="$TARGET_DIR" nice -n 10 "${cargo_cmd[@]}"
  echo "built in $((SECONDS - started))s"
fi
[ -x "$BIN" ] || die "no binary at $BIN (run without --no-build)"
echo "binary: $BIN, $(stat -Lc %s "$BIN") bytes"

# ---- the file ----------------------------------------------------------------------------------
described=$(file -bL "$BIN")
echo "file: $described"
if [[ $described == *", stripped"* ]]; then ok "stripped"; else bad "not stripped: $described"; fi
if [[ $described == *"dynamically linked"* ]]; then
  ok "dynamically linked (glibc, as distroless cc provides)"
else
  bad "expected a dynamically linked glibc binary: $described"
fi

# Shared libraries: only what distroless cc has (glibc's libraries and libgcc_s).
needed=$(readelf -d "$BIN" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort | tr '\n' ' ')
echo "needed: $needed"
unexpected=""
for lib in $needed; do
  case $lib in
    libc.so.6 | libm.so.6 | libgcc_s.so.1 | libpthread.so.0 | libdl.so.2 | librt.so.1 | ld-linux-*.so.*) ;;
    *) unexpected="$unexpected $lib" ;;
  esac
done
if [ -z "$unexpected" ]; then
  ok "needs only glibc and libgcc_s"
else
  bad "needs libraries distroless cc may lack:$unexpected"
fi

# glibc symbol versions: none newer than the runtime's.
versions=$(objdump -T "$BIN" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV)
newest=$(tail -n 1 <<<"$versions")
echo "glibc symbol versions needed: $(tr '\n' ' ' <<<"$versions")"
if [ -n "$newest" ] && [ "$(printf '%s\n%s\n' "$newest" "$runtime_glibc" | sort -V | tail -n 1)" = "$runtime_glibc" ]; then
  ok "newest glibc symbol version GLIBC_$newest <= $runtime_glibc (Debian $runtime_debian, the runtime base)"
else
  bad "the binary needs GLIBC_$newest, the runtime base (Debian $runtime_debian) has $runtime_glibc"
fi

# ---- what it says ------------------------------------------------------------------------------
# As in the image: nothing in the environment but what the checks set.
clean=(env -i)
cargo_version=$(awk -F '"' '/^version = / && !v { v = $2 } END { print v }' Cargo.toml)
printed=$("${clean[@]}" "$BIN" --version)
echo "--version: $printed"
if [ "$printed" = "aws-root-exporter $cargo_version" ] && [ "$label_version" = "$cargo_version" ]; then
  ok "--version prints $cargo_version, the version of Cargo.toml and of the image label"
else
  bad "--version printed '$printed'; Cargo.toml says $cargo_version, the Dockerfile's VERSION $label_version"
fi
commands=$("${clean[@]}" "$BIN" --help | sed -n '/^Commands:/,/^$/p')
if grep -Eq '^  (demo|simulate) ' <<<"$commands"; then
  bad "the binary has the simulator commands (built with the demo feature)"
else
  ok "no demo or simulate command (no simulator code)"
fi

# ---- serve and healthcheck, without AWS --------------------------------------------------------
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port=$(free_port)
# The exporter as the image runs it, but on loopback and with AWS pointing at nothing: the SDK's
# endpoint is 127.0.0.1:9 (discard, nothing listens), static dummy credentials, a region that does
# not exist, no instance metadata lookup, empty AWS config files. /healthz answers regardless.
run_env=(env -i
  AWS_ROOT_EXPORTER_LISTEN="127.0.0.1:$port"
  AWS_ENDPOINT_URL=http://127.0.0.1:9
  AWS_EC2_METADATA_DISABLED=true
  AWS_REGION=xx-nowhere-1
  AWS_ACCESS_KEY_ID=AKIDCONTAINERCHECK01
  AWS_SECRET_ACCESS_KEY=not-a-real-secret
  AWS_CONFIG_FILE=/dev/null
  AWS_SHARED_CREDENTIALS_FILE=/dev/null)
log=$(mktemp)
"${run_env[@]}" "$BIN" serve --config config/aws-root-exporter.toml >"$log" 2>&1 &
pid=$!
stop() {
  if kill -0 "$pid" 2>/dev/null; then kill "$pid" 2>/dev/null || true; fi
  rm -f "$log"
}
trap stop EXIT

healthy=1
for _ in $(seq 50); do
  if "${run_env[@]}" "$BIN" healthcheck >/dev/null 2>&1; then
    healthy=0
    break
  fi
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.2
done
set +e
"${run_env[@]}" "$BIN" healthcheck
rc=$?
set -e
if [ "$healthy" -eq 0 ] && [ "$rc" -eq 0 ]; then
  ok "healthcheck exits 0 against serve on 127.0.0.1:$port (listen from AWS_ROOT_EXPORTER_LISTEN)"
else
  bad "healthcheck exited $rc against serve on 127.0.0.1:$port; serve's log:"
  cat "$log"
fi
if command -v curl >/dev/null; then
  ready=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz" || true)
  if [ "$ready" = 503 ]; then
    ok "/readyz is 503 without AWS, while /healthz is 200"
  else
    bad "/readyz answered $ready without AWS (503 expected)"
  fi
fi

nothing=$(free_port)
set +e
out=$(env -i "$BIN" healthcheck --listen "127.0.0.1:$nothing" 2>&1)
rc=$?
set -e
echo "healthcheck --listen 127.0.0.1:$nothing: $out"
if [ "$rc" -eq 1 ]; then
  ok "healthcheck exits 1 when nothing listens"
else
  bad "healthcheck exited $rc when nothing listens (1 expected)"
fi

kill -TERM "$pid"
set +e
wait "$pid"
rc=$?
set -e
if [ "$rc" -eq 0 ]; then ok "serve exits 0 on SIGTERM"; else bad "serve exited $rc on SIGTERM"; fi
if grep -Eq 'amazonaws\.com|169\.254\.169\.254' "$log"; then
  bad "serve's log names an address beyond 127.0.0.1:"
  grep -E -m 5 'amazonaws\.com|169\.254\.169\.254' "$log"
fi
echo "serve's log (first lines):"
head -n 5 "$log" | cut -c1-240

echo
if [ "$failures" -eq 0 ]; then
  echo "container binary: all checks passed"
else
  echo "container binary: $failures check(s) failed"
  exit 1
fi
