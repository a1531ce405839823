#!/usr/bin/env bash
# The two-minute tour: installs what is missing, builds the relay, starts it with the embedded
# default config (dry run: no credentials, nothing is sent), posts a few sample events, shows the
# batch bodies it would have uploaded, stops the relay and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh demo
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/ccache}
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCAPI_RELAY_TESTS=OFF -DCAPI_RELAY_BENCH=OFF >/dev/null
cmake --build build --target capi-relay -j"$(nproc)"

work=$(mktemp -d /tmp/capi-relay-demo.XXXXXX)
cd "$work"
log="$work/relay.log"
"$OLDPWD/build/bin/capi-relay" serve 2>"$log" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -fsS http://127.0.0.1:9464/readyz >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS http://127.0.0.1:9464/readyz >/dev/null || { echo "relay did not start:"; cat "$log"; exit 1; }

now=$(($(date +%s) * 1000))
post() {
  echo "\$ curl -X POST http://127.0.0.1:8080/v1/events -H 'Content-Type: $1' --data '...'"
  curl -sS -X POST http://127.0.0.1:8080/v1/events -H "Content-Type: $1" --data-binary "$2"
  echo
}
echo "== posting sample events =="
post application/json "{\"event\":\"purchase\",\"eventId\":\"order-1001\",\"timestamp\":$now,\"value\":{\"amount\":\"50.00\",\"currency\":\"usd\"},\"user\":{\"email\":\"  John.Doe@Example.com \",\"firstName\":\"John\",\"lastName\":\"Doe\",\"countryCode\":\"us\"}}"
post application/x-ndjson "{\"event\":\"purchase\",\"eventId\":\"order-1002\",\"timestamp\":$now,\"user\":{\"liFatId\":\"a1b2c3d4\"}}
{\"event\":\"purchase\",\"eventId\":\"order-1001\",\"timestamp\":$now,\"user\":{\"email\":\"john.doe@example.com\"}}
{\"event\":\"signup\",\"eventId\":\"x-1\",\"user\":{\"email\":\"a@b.co\"}}
{\"event\":\"purchase\",\"eventId\":\"order-1003\",\"user\":{\"firstName\":\"Ann\"}}"
post text/plain "[{\"event\":\"purchase\",\"eventId\":\"order-1004\",\"user\":{\"ip\":\"203.0.113.7\",\"externalId\":\"crm-42\"}}]"

echo "== waiting for the uploader (flush_interval 1s) =="
for _ in $(seq 1 50); do
  ls "$work"/data/dry-run/*.json >/dev/null 2>&1 && break
  sleep 0.2
done
sleep 1.2
echo "== status: curl http://127.0.0.1:9464/v1/status =="
curl -sS http://127.0.0.1:9464/v1/status; echo
echo "== dry-run batches (what would be POSTed to /rest/conversionEvents) in $work/data/dry-run/ =="
for f in "$work"/data/dry-run/*.json; do
  echo "--- $f"
  if command -v python3 >/dev/null; then python3 -m json.tool "$f"; else cat "$f"; echo; fi
done
echo "== metrics (excerpt): curl http://127.0.0.1:9464/metrics =="
curl -sS http://127.0.0.1:9464/metrics | grep -E '^capi_relay_events_(received|accepted|duplicate|uploaded)_total|^capi_relay_events_rejected_total\{reason="(unknown_event|incomplete_name)"' || true
kill -TERM "$pid"
wait "$pid" || true
trap - EXIT
echo "== relay stopped; files kept in $work =="
