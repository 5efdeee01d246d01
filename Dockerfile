# syntax=docker/dockerfile:1
#
# aws-root-exporter container image: a stripped glibc binary on distroless cc (Debian 12), run as
# uid 65532, no shell, no package manager.
#
#   docker build -t aws-root-exporter:0.1.0 .
#   docker run --rm -p 9312:9312 -e AWS_REGION=us-east-1 \
#     -v "$PWD/config/aws-root-exporter.toml:/etc/aws-root-exporter/config.toml:ro" \
#     aws-root-exporter:0.1.0 serve --config /etc/aws-root-exporter/config.toml
#
# Needs BuildKit (the default builder of current Docker) for the cache mounts.
#
# scripts/container-binary.sh builds the same binary outside Docker (same toolchain version,
# same cargo command and environment, read from this file) and checks what the image relies on:
# --version, healthcheck, the glibc symbol versions against the runtime base, the shared
# libraries it needs. Keep the build stage's ENV and the `cargo build` line in the form it reads.

# Base images by tag. The tags are pinned to a version; digests are not written here because none
# could be verified against the registry where this file is maintained. Whoever publishes the
# image runs scripts/pin-images.sh (docker buildx imagetools inspect) to add @sha256:<digest> to
# both, so that a rebuild cannot pick up a different base behind the same tag.
# The Rust version is the toolchain the project is tested with; the build stage is Debian 12
# (glibc 2.36), the same Debian as the runtime base, so the binary needs no newer glibc than the
# runtime has.
ARG RUST_IMAGE=rust:1.95.0-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

# ---- build ---------------------------------------------------------------------------------
FROM ${RUST_IMAGE} AS build
WORKDIR /src
# .dockerignore keeps target/, .git, virtualenvs and what the build never reads (deploy/, docs/,
# mixin/, ...) out of the context.
COPY . .
# Strip the symbol table (the release profile keeps no debug info): a smaller binary, same code.
ENV CARGO_PROFILE_RELEASE_STRIP=symbols
# The registry and target caches survive between builds; the binary is copied out of the
# cached target directory, which is not part of the image layer. Without the default `demo`
# feature the binary holds no simulator code (the simulator/ crate is only read as a workspace
# member, never built).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --no-default-features -p aws-root-exporter --bin aws-root-exporter \
 && install -D -m 0755 target/release/aws-root-exporter /out/aws-root-exporter

# ---- runtime -------------------------------------------------------------------------------
# distroless cc: glibc, libgcc_s (Rust's unwinder), CA certificates (HTTPS to AWS, through the
# system trust store), /etc/passwd with the nonroot user 65532, tzdata; no shell.
FROM ${RUNTIME_IMAGE}
ARG RUNTIME_IMAGE
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="aws-root-exporter" \
      org.opencontainers.image.description="Prometheus exporter for the root-user credentials of every account of an AWS Organization" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.base.name="${RUNTIME_IMAGE}"
# org.opencontainers.image.source (and .revision, .created) belong to whoever publishes the
# image: add them with `docker build --label org.opencontainers.image.source=<repository URL>`.

COPY --from=build /out/aws-root-exporter /usr/local/bin/aws-root-exporter
# Apache-2.0, section 4(a): a copy of the licence goes with every copy of the binary.
COPY LICENSE /usr/share/doc/aws-root-exporter/LICENSE

# Numeric, so that Kubernetes' runAsNonRoot can verify it without reading /etc/passwd (the
# base's `nonroot` user).
USER 65532:65532
EXPOSE 9312
# The binary asks itself (the image has no shell, curl or wget): GET /healthz on `listen`,
# loopback for 0.0.0.0. It reads the configuration as `serve` does, so set `listen` through the
# file or AWS_ROOT_EXPORTER_LISTEN rather than a `serve --listen` flag. Kubernetes ignores this
# and uses the probes of deploy/kubernetes/deployment.yaml.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/aws-root-exporter", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/aws-root-exporter"]
CMD ["serve"]
