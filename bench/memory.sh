#!/usr/bin/env bash
# bench/memory.sh BUILD_DIR — memory of `knit serve` with the quickstart
# config (examples/quickstart: broker default/demo, durability fsync, and
# its trigger): idle RSS after start-up, then RSS while EVENTS events
# (default 1,000,000) are stored by wrk (32 keep-alive connections, the
# 500-byte binary-mode event of bench/ingress), sampled at 0, 25, 50, 75
# and 100 % of the events, plus the maximum. The log lives on disk, so
# RSS should stay flat however many events are stored.
# Env: EVENTS (1000000), CONNS (32), THREADS (2), DURABILITY (the
# quickstart's fsync; `write` makes the run shorter on a slow disk).
set -euo pipefail
source "$(dirname "$0")/lib.bash"
bdir=$(cd "${1:-build-bench}" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
EVENTS=${EVENTS:-1000000}; CONNS=${CONNS:-32}; THREADS=${THREADS:-2}
tmp=$(mktemp -d /tmp/knit-bench-memory.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT


cp -r "$root/examples/quickstart" "$tmp/config"
if [ -n "${DURABILITY:-}" ]; then
  sed -i "s/knit.dev\/durability: .*/knit.dev\/durability: $DURABILITY/" \
    "$tmp/config/broker.yaml"
fi
durability=$(sed -n 's/.*knit.dev\/durability: *//p' "$tmp/config/broker.yaml")
kport=$(free_port); aport=$(free_port)
"$bdir/knit" serve --config "$tmp/config" --data "$tmp/data" \
  --listen "127.0.0.1:$kport" --admin "127.0.0.1:$aport" --log-level warn &
kpid=$!; pids+=($kpid)
wait_port "$kport"
sleep 1 # let start-up allocations settle
idle_rss=$(awk '/VmRSS/{print $2}' /proc/$kpid/status)

rss0=$(awk '/VmRSS/{print $2}' /proc/$kpid/status)
wrk -t"$THREADS" -c"$CONNS" -d3600s -s "$(dirname "$0")/wrk-count.lua" \
  "http://127.0.0.1:$kport/default/demo" > "$tmp/wrk.out" 2>&1 &
wpid=$!; pids+=($wpid)
# sampler: RSS when the stored count passes each quarter and the maximum;
# it stops wrk (SIGINT) once EVENTS are stored
python3 - "$kpid" "$aport" "$EVENTS" "$wpid" > "$tmp/samples" <<'PY'
import os, signal, sys, time, urllib.request
pid, port, total, wrk = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
marks = [total // 4, total // 2, 3 * total // 4, total]
def rss():
    with open("/proc/%s/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
def stored():
    url = "http://127.0.0.1:%s/metrics" % port
    body = urllib.request.urlopen(url, timeout=5).read().decode()
    for line in body.splitlines():
        if line.startswith("knit_channel_appended_events_total") and \
           'broker="demo"' in line:
            return int(float(line.split()[-1]))
    return 0
top, i = 0, 0
while i < len(marks):
    n, r = stored(), rss()
    top = max(top, r)
    while i < len(marks) and n >= marks[i]:
        print("at %d events: %d kB (stored %d)" % (marks[i], r, n), flush=True)
        i += 1
    try:
        os.kill(wrk, 0)  # wrk gave up (e.g. knit died): stop sampling
    except ProcessLookupError:
        break
    time.sleep(0.05 if total - n < total // 50 else 0.2)
try:
    os.kill(wrk, signal.SIGINT)
except ProcessLookupError:
    pass
print("max sampled: %d kB" % top, flush=True)
PY
wait "$wpid" || true
load=$(grep '^RESULT' "$tmp/wrk.out" || true)
sleep 1
peak_rss=$(awk '/VmHWM/{print $2}' /proc/$kpid/status)
after_rss=$(awk '/VmRSS/{print $2}' /proc/$kpid/status)
stored=$(curl -s "http://127.0.0.1:$aport/metrics" | awk '/^knit_channel_appended_events_total.*broker="demo"/{print $2}')

mb() { awk -v v="$1" 'BEGIN{printf "%.1f", v/1024}'; }
printf '%-34s %10s\n' "durability" "$durability"
printf '%-34s %10s\n' "knit idle RSS (MB)" "$(mb "$idle_rss")"
printf '%-34s %10s\n' "RSS at 0 events (MB)" "$(mb "$rss0")"
while read -r _ n _ kb _ _; do
  printf '%-34s %10s\n' "RSS at $n events (MB)" "$(mb "$kb")"
done < <(grep '^at ' "$tmp/samples")
printf '%-34s %10s\n' "max sampled RSS (MB)" \
  "$(mb "$(sed -n 's/^max sampled: \([0-9]*\).*/\1/p' "$tmp/samples")")"
printf '%-34s %10s\n' "peak RSS, VmHWM (MB)" "$(mb "$peak_rss")"
printf '%-34s %10s\n' "RSS after the load (MB)" "$(mb "$after_rss")"
printf '%-34s %10s\n' "requests / non-2xx / sock errors" \
  "$(field "$load" requests) / $(field "$load" non2xx) / $(field "$load" sockerr)"
printf '%-34s %10s\n' "events stored" "$stored"
printf '%-34s %10s\n' "load time (s)" "$(field "$load" seconds)"
