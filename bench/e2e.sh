#!/usr/bin/env bash
# bench/e2e.sh BUILD_DIR — end-to-end delivery: producer → knit ingress (log
# channel, durability fsync) → one trigger → a fast C subscriber (202,
# keep-alive), all on loopback, driven by bench/e2e_load (one process: the
# producer and the subscriber share a clock, so the latency is the
# producer's send → the subscriber's receipt). Reports delivered events/s
# and latency p50/p99/p99.9 at fixed rates and at saturation, then
# fan-out: each event matched by 100 triggers on 10 subscribers
# (deliveries/s). The reference measured in the same run is the ingress
# alone at saturation (no trigger), so the ratio shows what delivery costs.
# Env: DURATION (s per step, default 5), RATES ("1000 5000 20000"),
#      CONNS (64), FANOUT_TRIGGERS (100), FANOUT_SINKS (10),
#      FANOUT_RATE (events/s offered in the fan-out run, default 1000),
#      MIF (max-in-flight per trigger, default 256; fan-out: FANOUT_MIF 16),
#      PARTS ("ref one fan backlog"), BACKLOG (events, default 200000).
set -euo pipefail
source "$(dirname "$0")/lib.bash"
bdir=$(cd "${1:-build-bench}" && pwd)
DURATION=${DURATION:-5}; RATES=${RATES:-"1000 5000 20000"}; CONNS=${CONNS:-64}
FANOUT_TRIGGERS=${FANOUT_TRIGGERS:-100}; FANOUT_SINKS=${FANOUT_SINKS:-10}
FANOUT_RATE=${FANOUT_RATE:-1000}; PARTS=${PARTS:-"ref one fan backlog"}
BACKLOG=${BACKLOG:-200000}
FANOUT_MIF=${FANOUT_MIF:-16}
part() { [[ " $PARTS " == *" $1 "* ]]; }
load="$bdir/bench/e2e_load"
tmp=$(mktemp -d /tmp/knit-bench-e2e.XXXXXX)
kpid=
cleanup() { [ -n "$kpid" ] && kill "$kpid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT


# start_knit NAME TRIGGERS SINK_PORTS...: a fresh knit with broker `bench`
# and TRIGGERS triggers spread over the sink ports (0 triggers: none).
start_knit() {
  local name=$1 ntrig=$2; shift 2
  local ports=("$@") cfg="$tmp/$name/config"
  mkdir -p "$cfg"
  cat > "$cfg/broker.yaml" <<CONF
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: bench, namespace: default}
CONF
  for ((i = 0; i < ntrig; i++)); do
    cat >> "$cfg/broker.yaml" <<CONF
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata:
  name: t$i
  namespace: default
  annotations: {knit.dev/max-in-flight: "${MIF:-256}"}
spec:
  broker: bench
  subscriber: {uri: "http://127.0.0.1:${ports[$((i % ${#ports[@]}))]}/"}
CONF
  done
  kport=$(free_port); aport=$(free_port)
  "$bdir/knit" serve --config "$cfg" --data "$tmp/$name/data" \
    --listen "127.0.0.1:$kport" --admin "127.0.0.1:$aport" --log-level warn &
  kpid=$!
  wait_port "$kport"
}
stop_knit() {
  peak_rss=$(awk '/VmHWM/{print $2}' /proc/$kpid/status)
  kill "$kpid"; wait "$kpid" 2>/dev/null || true; kpid=
}
row() { # label result
  local st cl; st=$(field "$2" stalled); cl=$(field "$2" closed)
  [ "${st:-0}${cl:-0}" != 00 ] && echo "  (ingress: $st requests unanswered > 5 s, $cl connections closed)"
  printf '%-26s %10s %10s %9s %9s %9s %6s\n' "$1" "$(field "$2" send_rate)" \
    "$(field "$2" deliver_rate)" \
    "$(awk -v v="$(field "$2" p50_us)" 'BEGIN{printf "%.2f", v/1000}')" \
    "$(awk -v v="$(field "$2" p99_us)" 'BEGIN{printf "%.2f", v/1000}')" \
    "$(awk -v v="$(field "$2" p999_us)" 'BEGIN{printf "%.2f", v/1000}')" \
    "$(field "$2" lost)"
}

printf '%-26s %10s %10s %9s %9s %9s %6s\n' "run" "sent/s" "deliv/s" \
  "p50 ms" "p99 ms" "p99.9 ms" "undel"

# reference: the ingress alone (no trigger), at saturation
ref=""
if part ref; then
sport=$(free_port)
start_knit ref 0 "$sport"
ref=$("$load" --url "http://127.0.0.1:$kport/default/bench" --sinks "$sport" \
      --rate 0 --duration "$DURATION" --conns "$CONNS" --fanout 0 | grep ^RESULT)
stop_knit
printf '%-26s %10s %10s\n' "ingress only (saturation)" "$(field "$ref" send_rate)" "-"
fi

# one trigger: fixed rates, then saturation
if part one; then
sport=$(free_port)
start_knit one 1 "$sport"
for r in $RATES 0; do
  label="1 trigger @ $r/s"; [ "$r" = 0 ] && label="1 trigger saturation"
  res=$("$load" --url "http://127.0.0.1:$kport/default/bench" --sinks "$sport" \
        --rate "$r" --duration "$DURATION" --conns "$CONNS" | grep ^RESULT)
  row "$label" "$res"
  [ "$r" = 0 ] && sat=$res
done
stop_knit
printf '%-26s %10s\n' "peak RSS (MB)" "$(awk -v v="$peak_rss" 'BEGIN{printf "%.1f", v/1024}')"
[ -n "$ref" ] && printf '%-26s %10s\n' "delivered/ingress-only" \
  "$(awk -v a="$(field "$sat" deliver_rate)" -v b="$(field "$ref" send_rate)" 'BEGIN{printf "%.2f", a/b}')"
fi

# fan-out: every event to FANOUT_TRIGGERS triggers on FANOUT_SINKS subscribers
if part fan; then
MIF=$FANOUT_MIF
ports=(); for ((i = 0; i < FANOUT_SINKS; i++)); do ports+=("$(free_port)"); done
start_knit fan "$FANOUT_TRIGGERS" "${ports[@]}"
sleep 1
res=$("$load" --url "http://127.0.0.1:$kport/default/bench" \
      --sinks "$(IFS=,; echo "${ports[*]}")" --rate "$FANOUT_RATE" \
      --duration "$DURATION" --conns 8 --fanout "$FANOUT_TRIGGERS" \
      --drain 15 | grep ^RESULT)
row "fan-out x$FANOUT_TRIGGERS (deliveries)" "$res"
stop_knit
fi

# backlog: BACKLOG events stored and delivered, then `knit replay trigger
# --from start` gives the trigger all of them again at once; the drain rate
# and the RSS while draining (bounded: the backlog stays on disk)
if part backlog; then
MIF=256
sport=$(free_port)
start_knit backlog 1 "$sport"
n=0
while [ "$n" -lt "$BACKLOG" ]; do
  res=$("$load" --url "http://127.0.0.1:$kport/default/bench" --sinks "$sport" \
        --rate 0 --duration 2 --warmup 0 --conns "$CONNS" --drain 30 | grep ^RESULT)
  n=$((n + $(field "$res" acked)))
done
rss_before=$(awk '/VmRSS/{print $2}' /proc/$kpid/status)
"$load" --sinks "$sport" --expect "$n" --drain 600 > "$tmp/backlog.out" &
lpid=$!
sleep 0.5
KNIT_ADMIN="127.0.0.1:$aport" "$bdir/knit" replay trigger default/t0 --from start >/dev/null
max_rss=0
while kill -0 "$lpid" 2>/dev/null; do
  r=$(awk '/VmRSS/{print $2}' /proc/$kpid/status); [ "$r" -gt "$max_rss" ] && max_rss=$r
  sleep 0.2
done
res=$(grep ^RESULT "$tmp/backlog.out")
printf '%-26s %10s %10s\n' "backlog $n: drain (ev/s)" "-" "$(field "$res" deliver_rate)"
printf '%-26s %10s\n' "RSS before / draining (MB)" \
  "$(awk -v a="$rss_before" -v b="$max_rss" 'BEGIN{printf "%.1f / %.1f", a/1024, b/1024}')"
stop_knit
fi
