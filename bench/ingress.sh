#!/usr/bin/env bash
# bench/ingress.sh BUILD_DIR — HTTP ingress throughput of `knit serve` (log
# channel, durability fsync) next to nginx answering `return 202`, both
# driven by wrk with the same 500-byte binary-mode CloudEvent over 32
# keep-alive connections, measured in the same run. Prints events/s of
# both, the ratio, p50/p99 latency and knit's peak RSS; also the CPU
# time each server spent per request (user+system, from /proc), knit's
# events per fdatasync, and the same figures with durability `write`
# (ack once the OS has the bytes), which shows the CPU-bound cost apart
# from the disk's fdatasync latency.
# Env: DURATION (s, default 10), CONNS (32), THREADS (2),
#      MODES (knit durabilities to run, default "fsync write").
set -euo pipefail
source "$(dirname "$0")/lib.bash"
bdir=$(cd "${1:-build-bench}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
DURATION=${DURATION:-10}; CONNS=${CONNS:-32}; THREADS=${THREADS:-2}
MODES=${MODES:-fsync write}
tmp=$(mktemp -d /tmp/knit-bench-ingress.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

run_wrk() { wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency -s "$here/wrk-ce.lua" "$1" | grep '^RESULT'; }
# CPU ticks (user+system) used so far by the given processes
ticks() { for p in "$@"; do awk '{print $14+$15}' "/proc/$p/stat"; done | awk '{s+=$1} END{print s+0}'; }
# microseconds of CPU per request: ticks delta, requests
us_per() { awk -v t="$1" -v n="$2" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.1f", n ? t*1e6/hz/n : 0}'; }
row() { printf '%-34s %12s\n' "$1" "$2"; }
mb() { awk -v v="$1" 'BEGIN{printf "%.1f", v/1024}'; }

# --- nginx reference
nport=$(free_port)
nginx_conf "$tmp/nginx" "$nport"
nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" & npid=$!; pids+=($npid)
wait_port "$nport"
workers=$(pgrep -P "$npid" | tr '\n' ' ')
t0=$(ticks $workers)
ngx=$(run_wrk "http://127.0.0.1:$nport/default/bench")
ncpu=$(us_per $(( $(ticks $workers) - t0 )) "$(field "$ngx" requests)")
kill "$npid"; wait "$npid" 2>/dev/null || true
nrps=$(field "$ngx" rps)
row "nginx return 202 (req/s)" "$nrps"
row "nginx p50 latency (ms)" "$(ms "$(field "$ngx" p50_us)")"
row "nginx p99 latency (ms)" "$(ms "$(field "$ngx" p99_us)")"
row "nginx CPU per request (us)" "$ncpu"

# --- knit, once per durability mode
for mode in $MODES; do
  kport=$(free_port); aport=$(free_port)
  mkdir -p "$tmp/$mode/config"
  cat > "$tmp/$mode/config/broker.yaml" <<CONF
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata:
  name: bench
  namespace: default
  annotations:
    knit.dev/durability: $mode
CONF
  "$bdir/knit" serve --config "$tmp/$mode/config" --data "$tmp/$mode/data" \
    --listen "127.0.0.1:$kport" --admin "127.0.0.1:$aport" --log-level warn &
  kpid=$!; pids+=($kpid)
  wait_port "$kport"
  idle_rss=$(awk '/VmRSS/{print $2}' /proc/$kpid/status)
  t0=$(ticks $kpid)
  knit=$(run_wrk "http://127.0.0.1:$kport/default/bench")
  kcpu=$(us_per $(( $(ticks $kpid) - t0 )) "$(field "$knit" requests)")
  peak_rss=$(awk '/VmHWM/{print $2}' /proc/$kpid/status)
  fsyncs=$(curl -s "http://127.0.0.1:$aport/metrics" |
           awk '/^knit_channel_fsyncs_total/{print $2}')
  kill "$kpid"; wait "$kpid" 2>/dev/null || true
  krps=$(field "$knit" rps)
  row "knit ingress $mode (ev/s)" "$krps"
  row "ratio knit/nginx ($mode)" \
    "$(awk -v a="$krps" -v b="$nrps" 'BEGIN{printf "%.2f", a/b}')"
  row "knit p50 latency (ms, $mode)" "$(ms "$(field "$knit" p50_us)")"
  row "knit p99 latency (ms, $mode)" "$(ms "$(field "$knit" p99_us)")"
  row "knit CPU per event (us, $mode)" "$kcpu"
  if [ "$mode" = fsync ]; then
    row "knit events per fdatasync" "$(awk -v n="$(field "$knit" requests)" \
      -v f="${fsyncs:-0}" 'BEGIN{printf "%.1f", f ? n/f : 0}')"
  fi
  row "knit non-2xx / sock errors" \
    "$(field "$knit" non2xx) / $(field "$knit" sockerr)"
  row "knit idle RSS (MB, $mode)" "$(mb "$idle_rss")"
  row "knit peak RSS (MB, $mode)" "$(mb "$peak_rss")"
done
