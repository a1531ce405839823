#!/usr/bin/env bash
# Browser tests of deploy/browser/capi-relay.js in headless Chromium (Node's built-in test runner,
# Chrome DevTools Protocol over a pipe: no npm packages).
#
#   tests/browser/run.sh           # against a stub relay implementing contract §3 (no build needed)
#   tests/browser/run.sh --real    # against build/bin/capi-relay (dry-run config, temporary spool)
#
# Installs what is missing (chromium, nodejs) with apt when run as root. Exits non-zero on failure.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"

MODE=stub
case "${1:-}" in
  --real) MODE=real ;;
  "") ;;
  *) echo "usage: $0 [--real]" >&2; exit 2 ;;
esac

missing=()
command -v node >/dev/null 2>&1 || missing+=(nodejs)
if [ -z "${CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1; then missing+=(chromium); fi
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing: ${missing[*]} (run as root to install them, or apt-get install -y ${missing[*]})" >&2
    exit 1
  fi
  echo "installing ${missing[*]} ..."
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ "$MODE" = real ]; then
  BIN="${CAPI_RELAY_BIN:-$ROOT/build/bin/capi-relay}"
  [ -x "$BIN" ] || { echo "no relay binary at $BIN (run scripts/test.sh or scripts/demo.sh first)" >&2; exit 1; }
  WORK="$(mktemp -d)"
  RELAY_PID=""
  cleanup() {
    if [ -n "$RELAY_PID" ] && kill -0 "$RELAY_PID" 2>/dev/null; then
      kill -TERM "$RELAY_PID" 2>/dev/null || true
      wait "$RELAY_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
  }
  trap cleanup EXIT
  # Four free loopback ports: ingest, admin, the allowed page origin, the refused page origin.
  read -r INGEST ADMIN ALLOWED REFUSED < <(node -e '
    const net = require("net");
    (async () => {
      const servers = [];
      for (let i = 0; i < 4; i++) {
        const s = net.createServer();
        await new Promise((r) => s.listen(0, "127.0.0.1", r));
        servers.push(s);
      }
      console.log(servers.map((s) => s.address().port).join(" "));
      servers.forEach((s) => s.close());
    })();')
  cat > "$WORK/relay.yaml" <<YAML
server:
  listen: 127.0.0.1:$INGEST
  ingest_keys: [public-key]
  cors_origins: ["http://127.0.0.1:$ALLOWED"]
  shutdown_grace: 100ms
  shutdown_timeout: 2s
admin:
  listen: 127.0.0.1:$ADMIN
log:
  level: warn
spool:
  dir: $WORK/spool
linkedin:
  dry_run: true
conversions:
  purchase: 123
  signup: 124
YAML
  "$BIN" check-config -c "$WORK/relay.yaml"
  "$BIN" serve -c "$WORK/relay.yaml" >"$WORK/relay.log" 2>&1 &
  RELAY_PID=$!
  if ! node -e '
    const url = process.argv[1];
    const deadline = Date.now() + 15000;
    (async function poll() {
      try { if ((await fetch(url)).status === 200) process.exit(0); } catch (e) {}
      if (Date.now() > deadline) process.exit(1);
      setTimeout(poll, 100);
    })();' "http://127.0.0.1:$ADMIN/readyz"; then
    echo "relay did not become ready; its log:" >&2
    cat "$WORK/relay.log" >&2
    exit 1
  fi
  export CAPI_RELAY_INGEST_URL="http://127.0.0.1:$INGEST"
  export CAPI_RELAY_ADMIN_URL="http://127.0.0.1:$ADMIN"
  export CAPI_RELAY_INGEST_KEY=public-key
  export CAPI_RELAY_TEST_ALLOWED_PORT="$ALLOWED"
  export CAPI_RELAY_TEST_REFUSED_PORT="$REFUSED"
  echo "browser tests against $BIN (ingest $CAPI_RELAY_INGEST_URL)"
else
  echo "browser tests against the stub relay"
fi

status=0
timeout 120 node --test --test-reporter=spec tests/browser/ || status=$?
if [ "$status" -ne 0 ] && [ "$MODE" = real ]; then
  echo "--- relay log ---" >&2
  tail -n 50 "$WORK/relay.log" >&2 || true
fi
exit "$status"
