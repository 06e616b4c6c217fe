#!/usr/bin/env bash
# bench/ingress.sh BUILD_DIR — HTTP ingress throughput of `knit serve` (log
# channel, durability fsync) next to nginx answering `return 202`, both
# driven by wrk with the same 500-byte binary-mode CloudEvent over 32
# keep-alive connections, measured in the same run. Prints events/s of
# both, the ratio, knit's p50/p99 latency and its peak RSS.
# Env: DURATION (s, default 10), CONNS (32), THREADS (2).
set -euo pipefail
bdir=$(cd "${1:-build-bench}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
DURATION=${DURATION:-10}; CONNS=${CONNS:-32}; THREADS=${THREADS:-2}
tmp=$(mktemp -d /tmp/knit-bench-ingress.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; return 1; }
run_wrk() { wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency -s "$here/wrk-ce.lua" "$1" | grep '^RESULT'; }
field() { sed -n "s/.* $2=\([0-9.]*\).*/\1/p" <<<"$1"; }

# --- nginx reference
nport=$(free_port)
mkdir -p "$tmp/nginx/logs"
cat > "$tmp/nginx/nginx.conf" <<CONF
worker_processes 2;
error_log $tmp/nginx/logs/error.log warn;
pid $tmp/nginx/nginx.pid;
daemon off;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $tmp/nginx/body;
  server { listen 127.0.0.1:$nport; keepalive_requests 1000000;
           location / { return 202; } }
}
CONF
nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" & pids+=($!)
wait_port "$nport"
ngx=$(run_wrk "http://127.0.0.1:$nport/default/bench")

# --- knit
kport=$(free_port); aport=$(free_port)
mkdir -p "$tmp/config"
cat > "$tmp/config/broker.yaml" <<CONF
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata:
  name: bench
  namespace: default
  annotations:
    knit.dev/durability: fsync
CONF
"$bdir/knit" serve --config "$tmp/config" --data "$tmp/data" \
  --listen "127.0.0.1:$kport" --admin "127.0.0.1:$aport" --log-level warn &
kpid=$!; pids+=($kpid)
wait_port "$kport"
idle_rss=$(awk '/VmRSS/{print $2}' /proc/$kpid/status)
knit=$(run_wrk "http://127.0.0.1:$kport/default/bench")
peak_rss=$(awk '/VmHWM/{print $2}' /proc/$kpid/status)

nrps=$(field "$ngx" rps); krps=$(field "$knit" rps)
printf '%-28s %12s\n' "nginx return 202 (req/s)" "$nrps"
printf '%-28s %12s\n' "knit ingress fsync (ev/s)" "$krps"
printf '%-28s %12s\n' "ratio knit/nginx" "$(awk -v a="$krps" -v b="$nrps" 'BEGIN{printf "%.2f", a/b}')"
printf '%-28s %12s\n' "knit p50 latency (ms)" "$(awk -v v="$(field "$knit" p50_us)" 'BEGIN{printf "%.2f", v/1000}')"
printf '%-28s %12s\n' "knit p99 latency (ms)" "$(awk -v v="$(field "$knit" p99_us)" 'BEGIN{printf "%.2f", v/1000}')"
printf '%-28s %12s\n' "knit non-2xx / sock errors" "$(field "$knit" non2xx) / $(field "$knit" sockerr)"
printf '%-28s %12s\n' "knit idle RSS (MB)" "$(awk -v v="$idle_rss" 'BEGIN{printf "%.1f", v/1024}')"
printf '%-28s %12s\n' "knit peak RSS (MB)" "$(awk -v v="$peak_rss" 'BEGIN{printf "%.1f", v/1024}')"
