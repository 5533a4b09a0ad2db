# syntax=docker/dockerfile:1
# One image with every service binary; a Deployment picks its binary with `command`.
#   docker build -t shelfguard:dev .
#   docker run --rm shelfguard:dev inventory --help

FROM rust:1-bookworm AS build
# librdkafka is compiled from C (cmake, perl) against the system OpenSSL (TLS/SASL).
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake perl pkg-config libssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Only the service packages: the embedded broker (local runs and tests) is not built.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bins \
      -p shelfguard-inventory \
      -p shelfguard-stockout-detector \
      -p shelfguard-offer-generator \
      -p shelfguard-floor-channel \
      -p shelfguard-conformance \
 && mkdir -p /out \
 && cp target/release/inventory target/release/stockout-detector target/release/offer-generator \
       target/release/floor-channel target/release/shelfguard-conformance /out/

FROM debian:bookworm-slim AS runtime
# libssl for TLS/SASL to the brokers, CA certificates for TLS and webhooks.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libssl3 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 65532 shelfguard \
 && useradd --uid 65532 --gid 65532 --no-create-home --shell /usr/sbin/nologin shelfguard
COPY --from=build /out/ /usr/local/bin/
# Numeric, so Kubernetes can check runAsNonRoot.
USER 65532:65532
ENV LOG_FORMAT=json
EXPOSE 8080
ENTRYPOINT []
CMD ["inventory"]
