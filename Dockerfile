# capi-relay container image: Debian 12 build stage, slim Debian 12 runtime stage.
#
#   docker build -t capi-relay:dev .
#   docker run --rm -p 8080:8080 -p 9464:9464 -v capi-relay-spool:/var/lib/capi-relay capi-relay:dev
#
# The image's own /etc/capi-relay/relay.yaml is a dry-run demo config (listens on all container
# interfaces, writes would-be uploads to /var/lib/capi-relay/dry-run/). For real use, mount your
# config over it (-v ./relay.yaml:/etc/capi-relay/relay.yaml:ro, or the Kubernetes ConfigMap in
# deploy/kubernetes/) and pass secrets as environment variables (LINKEDIN_ACCESS_TOKEN, ...).
# The spool (events not yet uploaded, dedup state, dead letters, token file) lives in the
# volume /var/lib/capi-relay: without a volume it dies with the container.

ARG DEBIAN_IMAGE=debian:bookworm-slim

# --- build -------------------------------------------------------------------------------------
FROM ${DEBIAN_IMAGE} AS build
# The packages scripts/install-deps.sh installs for tests (gtest/gmock/benchmark are unused with tests and
# benchmarks off, but keep the two builds on one package set).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake ninja-build ccache pkg-config libboost1.81-dev libssl-dev libsimdjson-dev \
      libyaml-cpp-dev libgtest-dev libgmock-dev libbenchmark-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DCAPI_RELAY_TESTS=OFF -DCAPI_RELAY_BENCH=OFF \
 && cmake --build build --target capi-relay \
 && strip build/bin/capi-relay \
 && build/bin/capi-relay --version

# --- runtime -----------------------------------------------------------------------------------
FROM ${DEBIAN_IMAGE}
# Shared libraries the binary links (Boost.Asio/Beast are header-only) and the CA bundle for TLS
# to api.linkedin.com. No curl: the health check below uses bash's /dev/tcp.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libssl3 libsimdjson14 libyaml-cpp0.7 ca-certificates \
 && rm -rf /var/lib/apt/lists/*

# A fixed non-root uid/gid (10001) so volume ownership and Kubernetes runAsUser/fsGroup agree.
RUN groupadd --system --gid 10001 capi-relay \
 && useradd --system --uid 10001 --gid capi-relay --home-dir /var/lib/capi-relay \
      --no-create-home --shell /usr/sbin/nologin capi-relay \
 && install -d -m 0700 -o capi-relay -g capi-relay /var/lib/capi-relay \
 && install -d -m 0755 /etc/capi-relay \
 && printf '%s\n' \
      '# Demo config baked into the image: dry run, nothing is sent to LinkedIn.' \
      '# Mount your own file over /etc/capi-relay/relay.yaml (see config/relay.example.yaml).' \
      'server:' \
      '  listen: 0.0.0.0:8080' \
      'admin:' \
      '  listen: 0.0.0.0:9464' \
      'spool:' \
      '  dir: /var/lib/capi-relay' \
      'linkedin:' \
      '  access_token: ${LINKEDIN_ACCESS_TOKEN:-}' \
      '  dry_run: true' \
      'conversions:' \
      '  purchase: urn:lla:llaPartnerConversion:123' \
      > /etc/capi-relay/relay.yaml

COPY --from=build /src/build/bin/capi-relay /usr/local/bin/capi-relay

USER 10001:10001
WORKDIR /var/lib/capi-relay
VOLUME /var/lib/capi-relay
# 8080: ingest (POST /v1/events). 9464: admin (/metrics, /healthz, /readyz, /v1/status).
EXPOSE 8080 9464

# Liveness of the process through the admin listener, without curl: bash (essential in Debian)
# opens a TCP connection with /dev/tcp and checks the status line of GET /healthz. This assumes
# admin.listen answers on 127.0.0.1:9464 inside the container (true for 0.0.0.0:9464 and
# 127.0.0.1:9464); with another admin port, override HEALTHCHECK. /healthz rather than /readyz:
# a full spool makes the relay unready, not dead, and Docker would only mark it unhealthy.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/9464 && printf 'GET /healthz HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && IFS= read -r -t 3 status <&3 && [[ $status == *' 200 '* ]]"]

# The relay handles SIGTERM itself (drain, flush for server.shutdown_timeout, exit 0): give
# `docker stop` enough time, e.g. docker stop -t 45 (> shutdown_grace + shutdown_timeout).
STOPSIGNAL SIGTERM
ENTRYPOINT ["capi-relay"]
CMD ["serve", "-c", "/etc/capi-relay/relay.yaml"]
