#!/usr/bin/env bash
# HTTP load test: the relay (dry run, spool.fsync: batch, one I/O thread, spool on the real disk)
# against nginx answering `return 204` (one worker), both driven by the same wrk script in the
# same run, alternating, with the server pinned to one core and `wrk -t1 -c64` to another.
#   (a) single-event JSON posts, (b) 100-event NDJSON posts; every event has a unique eventId
#   (a counter in the wrk script) and a current timestamp, so the relay writes every event.
# Prints req/s, events/s, latency p50/p99, non-2xx answers, the relay's RSS (idle, after load),
# its mean commit group and fsync time (from /metrics), the relay/nginx ratios, and the
# fdatasync latency of the spool's file system (bench/fsync_bench) with the group-commit size it
# implies at 64 clients.
#
# Usage: bench/load.sh [build-dir]      (default: build; needs bin/capi-relay and bin/fsync_bench)
# Env:   DURATION=10s ROUNDS=2 CONNECTIONS=64 SERVER_CPU=0 CLIENT_CPU=1 UPLOAD=nginx|dry-run
#        DEDUP=local|redis (redis: a private redis-server on loopback, not pinned, flushed before
#        each relay run)  KINDS="single batch"  PROFILE=DIR (perf record -e cpu-clock with DWARF call graphs of each
#        relay run into DIR, with a flat report per run by thread: DIR/<kind>-<round>.txt; the
#        profiler costs the relay some throughput in that run)
# Needs: wrk, nginx (nginx-light), taskset, curl, awk.
# Numbers on a shared machine swing a lot between runs: compare only ratios from the same run.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-${BUILD_DIR:-$repo/build}}" && pwd)
relay_bin=$build/bin/capi-relay
fsync_bin=$build/bin/fsync_bench
duration=${DURATION:-10s}
rounds=${ROUNDS:-2}
conns=${CONNECTIONS:-64}
server_cpu=${SERVER_CPU:-0}
client_cpu=${CLIENT_CPU:-1}

for tool in wrk nginx taskset curl awk; do
  command -v "$tool" >/dev/null || { echo "load.sh: $tool not found (apt-get install wrk nginx-light util-linux curl)" >&2; exit 2; }
done
[ -x "$relay_bin" ] || { echo "load.sh: $relay_bin not built" >&2; exit 2; }

# Temp dir on the build directory's file system (the real disk; /tmp may be tmpfs).
tmp=$(mktemp -d "$build/load.XXXXXX")
nginx_pid=""
relay_pid=""
redis_pid=""
cleanup() {
  [ -n "$relay_pid" ] && kill "$relay_pid" 2>/dev/null && wait "$relay_pid" 2>/dev/null || true
  [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null && wait "$nginx_pid" 2>/dev/null || true
  [ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
fs_type=$(stat -f -c %T "$tmp")
[ "$fs_type" = tmpfs ] && echo "warning: $tmp is on tmpfs; fsync numbers will not be the disk's" >&2

free_port() {
  local p
  for _ in $(seq 50); do
    p=$((20000 + RANDOM % 40000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
  echo "load.sh: no free port" >&2
  exit 1
}

# --- wrk script: unique eventIds (run id + counter), timestamps of the current second ----------
cat >"$tmp/events.lua" <<'LUA'
local events, run, counter, cur_sec = 1, "run", 0, -1
local parts = {}
local function build(ts)
  parts = {}
  for i = 1, events do
    parts[#parts + 1] = (i > 1 and "\n" or "") .. '{"event":"purchase","eventId":"' .. run .. "-"
    parts[#parts + 1] = ""  -- the request counter
    parts[#parts + 1] = "-" .. i .. '","timestamp":' .. ts ..
      ',"value":{"amount":"129.90","currency":"EUR"},"user":{"email":"jane.doe' .. i ..
      '@example.com","firstName":"Jane","lastName":"Doe","title":"Buyer",' ..
      '"companyName":"Example GmbH","countryCode":"DE"}}'
  end
end
function init(args)
  events = tonumber(args[1]) or 1
  run = args[2] or "run"
  wrk.method = "POST"
  wrk.path = "/v1/events"
  wrk.headers["Content-Type"] = events > 1 and "application/x-ndjson" or "application/json"
end
function request()
  local sec = os.time()
  if sec ~= cur_sec then
    cur_sec = sec
    build(sec * 1000)
  end
  counter = counter + 1
  local c = tostring(counter)
  for i = 2, #parts, 3 do parts[i] = c end
  return wrk.format(nil, nil, nil, table.concat(parts))
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d non2xx=%d sockerr=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
LUA

# --- nginx: one worker, return 204, no access log, loopback --------------------------------------
nginx_port=$(free_port)
mkdir -p "$tmp/nginx"
cat >"$tmp/nginx/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $tmp/nginx/body;
  proxy_temp_path $tmp/nginx/proxy;
  fastcgi_temp_path $tmp/nginx/fastcgi;
  uwsgi_temp_path $tmp/nginx/uwsgi;
  scgi_temp_path $tmp/nginx/scgi;
  client_max_body_size 0;  # the relay uploads batches of up to 5,000 events (~2 MB)
  server {
    listen 127.0.0.1:$nginx_port;
    location / { return 204; }
  }
}
EOF
taskset -c "$server_cpu" nginx -e "$tmp/nginx/error.log" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" &
nginx_pid=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$nginx_port") 2>/dev/null && break; sleep 0.05; done

# UPLOAD=nginx (default): the relay uploads to the nginx; UPLOAD=dry-run: dry-run files.
upload_mode=${UPLOAD:-nginx}

# DEDUP=redis: the relays share dedup state through a redis-server of their own (as replicas do).
dedup_mode=${DEDUP:-local}
redis_port=""
if [ "$dedup_mode" = redis ]; then
  command -v redis-server >/dev/null || { echo "load.sh: DEDUP=redis needs redis-server" >&2; exit 2; }
  redis_port=$(free_port)
  redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no >"$tmp/redis.log" 2>&1 &
  redis_pid=$!
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$redis_port") 2>/dev/null && break; sleep 0.05; done
fi

# --- the relay: started fresh for every run (clean spool, idle RSS) -------------------------------
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
relay_ingest=""
relay_admin=""
start_relay() {
  local dir=$tmp/relay
  rm -rf "$dir"
  mkdir -p "$dir"
  cat >"$dir/relay.yaml" <<EOF
server:
  listen: 127.0.0.1:0
  io_threads: 1
  shutdown_grace: 0s
admin:
  listen: 127.0.0.1:0
log:
  level: info
spool:
  dir: ./data
  fsync: batch
  max_bytes: 64GiB
$(if [ "$dedup_mode" = redis ]; then
    printf 'dedup:\n  backend: redis\n  redis_url: redis://127.0.0.1:%s/0\n' "$redis_port"
  fi)
linkedin:
$(if [ "$upload_mode" = dry-run ]; then
    echo "  dry_run: true"
  else
    # The relay's uploads go to the same nginx (a 2xx without element statuses: all done), so the
    # upload side runs as in production instead of writing dry-run files.
    echo "  api_base: http://127.0.0.1:$nginx_port"
    echo "  access_token: bench"
  fi)
conversions:
  purchase: urn:lla:llaPartnerConversion:123
EOF
  if [ -n "$redis_port" ]; then
    redis-cli -p "$redis_port" flushall >/dev/null 2>&1 || true
  fi
  taskset -c "$server_cpu" "$relay_bin" serve -c "$dir/relay.yaml" 2>"$dir/relay.log" &
  relay_pid=$!
  for _ in $(seq 200); do
    if grep -q '"msg":"started"' "$dir/relay.log" 2>/dev/null; then break; fi
    sleep 0.05
  done
  relay_ingest=$(sed -n 's/.*"msg":"started".*"ingest_port":"\([0-9]*\)".*/\1/p' "$dir/relay.log" | head -1)
  relay_admin=$(sed -n 's/.*"msg":"started".*"admin_port":"\([0-9]*\)".*/\1/p' "$dir/relay.log" | head -1)
  if [ -z "$relay_ingest" ]; then
    echo "load.sh: relay did not start:" >&2
    cat "$dir/relay.log" >&2
    exit 1
  fi
  sleep 0.5  # settle before the idle RSS
}
stop_relay() {
  kill "$relay_pid" 2>/dev/null || true
  wait "$relay_pid" 2>/dev/null || true
  relay_pid=""
  rm -rf "$tmp/relay"
}
# Mean of a histogram from /metrics: <name>_sum / <name>_count.
metric_mean() {
  curl -s "http://127.0.0.1:$relay_admin/metrics" |
    awk -v n="$1" '$1 == n "_sum" {s = $2} $1 == n "_count" {c = $2} END {if (c > 0) printf "%.4g", s / c; else print "-"}'
}

run_wrk() {  # port events run-id -> "RESULT ..." line
  taskset -c "$client_cpu" wrk -t1 -c"$conns" -d"$duration" -s "$tmp/events.lua" \
    "http://127.0.0.1:$1" -- "$2" "$3" | grep '^RESULT'
}
field() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<" $2"; }

results=$tmp/results.txt
: >"$results"
echo "load: duration $duration, $rounds rounds, wrk -t1 -c$conns on cpu $client_cpu, servers on cpu $server_cpu, $(uptime | sed 's/.*load/load/')"
echo "spool on $fs_type ($tmp), dedup $dedup_mode"
printf '%-7s %-6s %-5s %10s %11s %9s %9s %7s %9s %9s %7s %8s %6s\n' \
  kind server round req/s events/s p50_ms p99_ms non2xx rss_idle rss_load group fsync_ms dedup
stamp=$(date +%s)
kinds=${KINDS:-single batch}
profile_dir=${PROFILE:-}
if [ -n "$profile_dir" ]; then
  command -v perf >/dev/null || { echo "load.sh: PROFILE needs perf (apt-get install linux-perf)" >&2; exit 2; }
  mkdir -p "$profile_dir"
  profile_dir=$(cd "$profile_dir" && pwd)
fi
for kind in $kinds; do
  events=1
  [ "$kind" = batch ] && events=100
  for round in $(seq "$rounds"); do
    for server in nginx relay; do
      rss0="-" rss1="-" group="-" fsync="-" dedup_mib="-"
      if [ "$server" = nginx ]; then
        line=$(run_wrk "$nginx_port" "$events" "n$kind$round-$stamp")
      else
        start_relay
        rss0=$(rss_kb "$relay_pid")
        perf_pid=""
        if [ -n "$profile_dir" ]; then
          perf record -q -e cpu-clock -F 499 --call-graph dwarf,16384 -p "$relay_pid" -o "$profile_dir/$kind-$round.data" 2>/dev/null &
          perf_pid=$!
        fi
        line=$(run_wrk "$relay_ingest" "$events" "r$kind$round-$stamp")
        if [ -n "$perf_pid" ]; then
          kill -INT "$perf_pid" 2>/dev/null || true
          wait "$perf_pid" 2>/dev/null || true
          perf report -i "$profile_dir/$kind-$round.data" --stdio --no-children --sort comm,dso,symbol \
            -g none --percent-limit 0.3 2>/dev/null | grep '%' | cut -c1-160 >"$profile_dir/$kind-$round.txt" || true
        fi
        rss1=$(rss_kb "$relay_pid")
        group=$(metric_mean capi_relay_spool_commit_group_requests)
        # RAM of the dedup table, part of rss_load: 12 bytes per slot for every unique eventId
        # accepted in the window (the run's own IDs), so it grows with the run's length.
        dedup_mib=$(curl -s "http://127.0.0.1:$relay_admin/metrics" |
          awk '$1 == "capi_relay_dedup_table_bytes" {printf "%dMiB", $2 / 1048576}')
        curl -s "http://127.0.0.1:$relay_admin/metrics" | awk -v k="$kind" -v r="$round" '
          $1 == "capi_relay_events_uploaded_total" {up = $2}
          $1 == "capi_relay_events_accepted_total" {acc = $2}
          $1 == "capi_relay_uploads_paused" {paused = $2}
          $1 ~ /^capi_relay_upload_requests_total/ {codes = codes " " $1 "=" $2}
          END {
            sub(/capi_relay_upload_requests_total/, "", codes)
            gsub(/capi_relay_upload_requests_total/, "", codes)
            printf "        upload side (%s %s): %d of %d accepted events uploaded during the run, paused %s, requests%s\n", k, r, up, acc, paused, (codes == "" ? " none" : codes)
          }' >>"$tmp/upload.txt"
        fsync=$(metric_mean capi_relay_spool_fsync_duration_seconds)
        [ "$fsync" != "-" ] && fsync=$(awk -v f="$fsync" 'BEGIN {printf "%.2f", f * 1000}')
        stop_relay
      fi
      req=$(field requests "$line") dur=$(field duration_us "$line")
      p50=$(field p50_us "$line") p99=$(field p99_us "$line") bad=$(field non2xx "$line")
      rps=$(awk -v r="$req" -v d="$dur" 'BEGIN {printf "%.0f", r / (d / 1e6)}')
      eps=$((rps * events))
      echo "$kind $server $round $rps $eps $p50 $p99 $bad $rss0 $rss1" >>"$results"
      printf '%-7s %-6s %-5s %10s %11s %9.2f %9.2f %7s %9s %9s %7s %8s %6s\n' "$kind" "$server" "$round" \
        "$rps" "$eps" "$(awk -v v="$p50" 'BEGIN {print v / 1000}')" \
        "$(awk -v v="$p99" 'BEGIN {print v / 1000}')" "$bad" \
        "$([ "$rss0" = - ] && echo - || echo "$((rss0 / 1024))MiB")" \
        "$([ "$rss1" = - ] && echo - || echo "$((rss1 / 1024))MiB")" "$group" "$fsync" "${dedup_mib:--}"
    done
  done
done

echo
cat "$tmp/upload.txt" 2>/dev/null || true
echo
echo "means over rounds (relay/nginx):"
awk '
  {k = $1; s = $2; n[k, s]++; rps[k, s] += $4; eps[k, s] += $5; p99[k, s] += $7; bad[k, s] += $8}
  END {
    split("single batch", kinds, " ")
    for (i = 1; i <= 2; i++) {
      k = kinds[i]
      if (!n[k, "nginx"] || !n[k, "relay"]) continue
      rr = rps[k, "relay"] / n[k, "relay"]; rn = rps[k, "nginx"] / n[k, "nginx"]
      printf "  %-7s relay %8.0f req/s %10.0f events/s | nginx %8.0f req/s | ratio %.2fx | relay non-2xx %d %s\n",
        k, rr, eps[k, "relay"] / n[k, "relay"], rn, rr / rn, bad[k, "relay"],
        (bad[k, "relay"] == 0 ? "(all 202)" : "(NOT all 202)")
    }
  }' "$results"

if [ -x "$fsync_bin" ]; then
  echo
  echo "fdatasync on the spool's file system ($fs_type): 270-byte append + fdatasync"
  probe=$(CAPI_RELAY_FSYNC_DIR="$tmp/fsync" "$fsync_bin" --benchmark_min_time=1 2>/dev/null || true)
  out=$(grep 'BM_AppendFdatasync/270/' <<<"$probe" || true)
  p50=$(sed -n 's/.*p50_us=\([0-9.]*\)\(k*\).*/\1 \2/p' <<<"$out" | awk '{print ($2 == "k") ? $1 * 1000 : $1}')
  p99=$(sed -n 's/.*p99_us=\([0-9.]*\)\(k*\).*/\1 \2/p' <<<"$out" | awk '{print ($2 == "k") ? $1 * 1000 : $1}')
  if [ -n "$p50" ]; then
    relay_single=$(awk '$1 == "single" && $2 == "relay" {s += $4; n++} END {if (n) print s / n; else print 0}' "$results")
    awk -v p50="$p50" -v p99="$p99" -v c="$conns" -v r="$relay_single" 'BEGIN {
      printf "  p50 %.2f ms, p99 %.2f ms\n", p50 / 1000, p99 / 1000
      printf "  at %d clients with one request each in flight, one sync covers the requests that\n", c
      printf "  arrived during the previous one: up to %d requests per group, so the fsync-bound\n", c
      printf "  ceiling is %d / %.2f ms = %.0f req/s (single events)\n", c, p50 / 1000, c / (p50 / 1e6)
      g = r * p50 / 1e6; if (g > c) g = c; if (g < 1) g = 1
      printf "  implied group at the measured %.0f req/s with a quiet-disk sync: %.1f requests\n", r, g
      printf "  (the relay'"'"'s own mean group and sync time under load are the group and fsync_ms columns)\n"
    }'
    echo "  all probes (bytes per sync; appended = the file grows, prewritten = blocks written before):"
    awk '/^BM_/ {
      split($1, a, "/"); kind = (a[1] == "BM_AppendFdatasync") ? "appended  " : "prewritten"
      p50 = ""; p99 = ""
      for (i = 2; i <= NF; i++) {
        if ($i ~ /^p50_us=/) p50 = substr($i, 8)
        if ($i ~ /^p99_us=/) p99 = substr($i, 8)
      }
      printf "    %s %6s bytes: p50 %s us, p99 %s us, cpu %s %s per sync\n", kind, a[2], p50, p99, $4, $5
    }' <<<"$probe"
  else
    echo "  fsync_bench gave no result"
  fi
else
  echo "(no $fsync_bin: build with -DCAPI_RELAY_BENCH=ON for the fdatasync probe)"
fi
