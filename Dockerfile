# syntax=docker/dockerfile:1
#
# aws-root-exporter container image.
#
#   docker build -t aws-root-exporter:0.1.0 .
#   docker run --rm -p 9312:9312 -e AWS_REGION=us-east-1 \
#     -v "$PWD/config/aws-root-exporter.toml:/etc/aws-root-exporter/config.toml:ro" \
#     aws-root-exporter:0.1.0 serve --config /etc/aws-root-exporter/config.toml
#
# Needs BuildKit (the default builder of current Docker) for the cache mounts.

# Base images by tag. Whoever publishes the image pins both by digest, so that a rebuild cannot
# pick up a different base behind the same tag:
#   docker build --build-arg RUST_IMAGE=rust:1-bookworm@sha256:<digest> \
#                --build-arg RUNTIME_IMAGE=debian:bookworm-slim@sha256:<digest> ...
# (docker buildx imagetools inspect IMAGE:TAG prints the digest). No digest is written here:
# none was verified from the registry when this file was written.
ARG RUST_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

# ---- build ---------------------------------------------------------------------------------
FROM ${RUST_IMAGE} AS build
WORKDIR /src
# .dockerignore keeps target/, .git, virtualenvs and what the build never reads (deploy/, docs/,
# mixin/, ...) out of the context.
COPY . .
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
# glibc (the binary is built on bookworm), CA certificates for HTTPS to AWS, nothing else.
FROM ${RUNTIME_IMAGE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="aws-root-exporter" \
      org.opencontainers.image.description="Prometheus exporter for the root-user credentials of every account of an AWS Organization" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
# org.opencontainers.image.source (and .revision, .created) belong to whoever publishes the
# image: add them with `docker build --label org.opencontainers.image.source=<repository URL>`.

# ca-certificates is left unpinned on purpose: it should be the newest the release ships.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 65532 nonroot \
 && useradd --system --uid 65532 --gid 65532 --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin nonroot

COPY --from=build /out/aws-root-exporter /usr/local/bin/aws-root-exporter
# Apache-2.0, section 4(a): a copy of the licence goes with every copy of the binary.
COPY LICENSE /usr/share/doc/aws-root-exporter/LICENSE

# Numeric, so that Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 65532:65532
EXPOSE 9312
# The binary asks itself (the image has no curl or wget, on purpose): GET /healthz on `listen`,
# loopback for 0.0.0.0. Kubernetes ignores this and uses the probes of
# deploy/kubernetes/deployment.yaml.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/aws-root-exporter", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/aws-root-exporter"]
CMD ["serve"]
