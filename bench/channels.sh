#!/usr/bin/env bash
# bench/channels.sh BUILD_DIR — HTTP ingress throughput of `knit serve` with
# each channel backend, next to that backend's own raw rate measured in the
# same run on the same server:
#   log    knit.dev/durability fsync; reference: nginx `return 202` (the
#          HTTP ceiling, as bench/ingress.sh)
#   nats   a NatsJetStreamBroker on a fresh `nats-server -js` (loopback,
#          temporary store); reference: cnats js_PublishMsgAsync of the
#          same bytes with as many in flight as wrk has connections
#          (bench/nats_channel's raw round)
#   kafka  a Kafka broker on librdkafka's mock cluster (the kafka-mock tool,
#          3 brokers); reference: a librdkafka producer (acks=all,
#          idempotent) of the same bytes to the same cluster with as many
#          in flight as wrk has connections (bench/kafka_channel's raw
#          round, else kcat -P, which pipelines without such a bound)
# wrk drives the ingress with the event of bench/wrk-ce.lua (500 bytes of
# data, binary mode) made unique per request (bench/wrk-ce-ids.lua), over
# CONNS keep-alive connections. Prints events/s, p50/p99 and the ratio to
# the reference per backend; the target for NATS is a ratio >= 0.6.
# With bench/e2e_load built (bench/e2e.sh's load generator), it then
# measures end to end (producer → ingress → backend → trigger → subscriber)
# at E2E_RATE events/s per backend: delivered events/s and latency p99.
# Each backend runs ROUNDS rounds of (reference, then knit) back to back;
# the figures are medians and the ratio is the median of the rounds'
# ratios (the machine is shared and noisy).
# Env: DURATION (s per run, default 5), CONNS (32), THREADS (2), ROUNDS (3),
#      EVENTS (raw runs, default 100000), E2E_RATE (5000), E2E_DURATION (5),
#      BACKENDS ("log nats kafka").
set -euo pipefail
source "$(dirname "$0")/lib.bash"
bdir=$(cd "${1:-build-bench}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
DURATION=${DURATION:-5}; CONNS=${CONNS:-32}; THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
EVENTS=${EVENTS:-100000}; E2E_RATE=${E2E_RATE:-5000}
E2E_DURATION=${E2E_DURATION:-5}; BACKENDS=${BACKENDS:-"log nats kafka"}
tmp=$(mktemp -d /tmp/knit-bench-channels.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

run_wrk() { wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency -s "$here/wrk-ce-ids.lua" "$1" | grep '^RESULT'; }
rows=()
row() { rows+=("$(printf '%-7s %-44s %10s %8s %8s %7s' "$@")"); }

# start_knit NAME YAML: knit serve with the resources in YAML; sets kport.
start_knit() {
  mkdir -p "$tmp/$1/config"
  printf '%s\n' "$2" > "$tmp/$1/config/resources.yaml"
  kport=$(free_port); aport=$(free_port)
  "$bdir/knit" serve --config "$tmp/$1/config" --data "$tmp/$1/data" \
    --listen "127.0.0.1:$kport" --admin "127.0.0.1:$aport" \
    --log-level warn > "$tmp/$1/knit.log" 2>&1 &
  kpid=$!; pids+=("$kpid")
  wait_port "$kport"
  for _ in $(seq 200); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$kport/readyz")" = 200 ] && return 0
    sleep 0.05
  done
  echo "knit ($1) not ready:" >&2; cat "$tmp/$1/knit.log" >&2; return 1
}
stop_knit() { kill "$kpid" 2>/dev/null || true; wait "$kpid" 2>/dev/null || true; }

broker_yaml() { # NAME CLASS [CONFIGMAP]
  printf 'apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n  name: %s\n  namespace: default\n  annotations:\n    eventing.knative.dev/broker.class: %s\n' "$1" "$2"
  [ -n "${3:-}" ] && printf 'spec:\n  config: {apiVersion: v1, kind: ConfigMap, name: %s}\n' "$3"
  return 0
}
configmap_yaml() { # NAME KEY=VALUE...
  local name=$1; shift
  printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n  namespace: default\ndata:\n' "$name"
  for kv in "$@"; do printf '  %s: "%s"\n' "${kv%%=*}" "${kv#*=}"; done
}
trigger_yaml() { # NAME BROKER URL
  printf -- '---\napiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: %s\n  namespace: default\n  annotations: {knit.dev/max-in-flight: "256"}\nspec:\n  broker: %s\n  subscriber: {uri: "%s"}\n' "$1" "$2" "$3"
}

# utime + stime of a process, in clock ticks.

# ingress NAME YAML REFERENCE_LABEL REFERENCE_FUNCTION: ROUNDS rounds of
# (the reference's rate, then knit's ingress rate) back to back; the
# figures are the medians, the ratio the median of the rounds' ratios.
ingress() {
  local name=$1 yaml=$2 label=$3 reffn=$4 i r ref c0 c1 cpus="" refs="" rps="" p50="" p99="" ratios="" non2xx=0
  start_knit "$name" "$yaml"
  for ((i = 1; i <= ROUNDS; i++)); do
    ref=$($reffn)
    c0=$(cpu_ticks "$kpid")
    r=$(run_wrk "http://127.0.0.1:$kport/default/$name")
    c1=$(cpu_ticks "$kpid")
    cpus+=" $(awk -v t="$((c1 - c0))" -v hz="$(getconf CLK_TCK)" -v n="$(field "$r" requests)" 'BEGIN{ if (n > 0) printf "%.1f", t / hz * 1e6 / n; else print 0 }')"
    refs+=" $ref"; rps+=" $(field "$r" rps)"
    p50+=" $(field "$r" p50_us)"; p99+=" $(field "$r" p99_us)"
    ratios+=" $(ratio "$(field "$r" rps)" "$ref")"
    non2xx=$((non2xx + $(field "$r" non2xx)))
    echo "  $name round $i: knit $(field "$r" rps) ev/s, reference $ref/s, ratio $(ratio "$(field "$r" rps)" "$ref")" >&2
  done
  stop_knit
  row "$name" "knit ingress (wrk; knit $(median <<<"$cpus") CPU us/ev)" "$(median <<<"$rps")" \
      "$(ms "$(median <<<"$p50")")" "$(ms "$(median <<<"$p99")")" \
      "$(median <<<"$ratios")"
  row "$name" "$label" "$(median <<<"$refs")" "" "" "1.00"
  [ "$non2xx" = 0 ] || echo "  ($name: $non2xx non-2xx answers)" >&2
}

# e2e NAME YAML-WITHOUT-TRIGGER [WARMUP_S]: end to end at E2E_RATE through one trigger
# (a fresh knit; on Kafka/NATS the same topic/stream as the ingress run,
# the new trigger starts at its end).
e2e() {
  [ -x "$bdir/bench/e2e_load" ] || return 0
  local sport; sport=$(free_port)
  start_knit "$1-e2e" "$2
$(trigger_yaml t "$1" "http://127.0.0.1:$sport/")"
  local r
  r=$("$bdir/bench/e2e_load" --url "http://127.0.0.1:$kport/default/$1" \
        --sinks "$sport" --rate "$E2E_RATE" --duration "$E2E_DURATION" \
        --conns 64 --size 500 --warmup "${3:-1}" 2>&1 | tail -1)
  stop_knit
  if [ "${r#RESULT}" = "$r" ]; then
    row "$1" "end to end at $E2E_RATE/s: failed ($r)" "" "" "" ""
    return 0
  fi
  row "$1" "end to end at $E2E_RATE/s (delivered/s; lost $(field " $r" lost))" \
      "$(field " $r" deliver_rate)" "$(ms "$(field " $r" p50_us)")" \
      "$(ms "$(field " $r" p99_us)")" ""
}

echo "channels: DURATION=${DURATION}s CONNS=$CONNS THREADS=$THREADS ROUNDS=$ROUNDS EVENTS=$EVENTS (raw runs)"

for be in $BACKENDS; do
  case $be in
  log)
    nport=$(free_port)
    nginx_conf "$tmp/nginx" "$nport"
    nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" & npid=$!; pids+=("$npid")
    wait_port "$nport"
    ref_nginx() { field "$(run_wrk "http://127.0.0.1:$nport/default/log")" rps; }
    yaml="$(broker_yaml log Log)
    knit.dev/durability: fsync"
    ingress log "$yaml" "nginx return 202 (HTTP ceiling)" ref_nginx
    kill "$npid"; wait "$npid" 2>/dev/null || true
    e2e log "$yaml"
    ;;
  nats)
    if ! command -v nats-server >/dev/null; then echo "nats: skipped (nats-server not installed)"; continue; fi
    nsport=$(free_port)
    nats-server -js -a 127.0.0.1 -p "$nsport" -sd "$tmp/nats" > "$tmp/nats.log" 2>&1 & nspid=$!; pids+=("$nspid")
    wait_port "$nsport"
    url="nats://127.0.0.1:$nsport"
    ref_nats() {
      local out
      out=$(KNIT_TEST_NATS_URL=$url "$bdir/bench/nats_channel" "$EVENTS" "$CONNS" 500 1)
      sed -n 's/.*raw cnats js_PublishMsgAsync *\([0-9.]*\)\/s.*/\1/p' <<<"$out" | head -1
    }
    [ -x "$bdir/bench/nats_channel" ] || ref_nats() { echo 0; }
    yaml="$(configmap_yaml nats-cfg "url=$url")
---
$(broker_yaml nats NatsJetStreamBroker nats-cfg)"
    ingress nats "$yaml" "cnats js_PublishMsgAsync, same bytes (raw)" ref_nats
    e2e nats "$yaml"
    kill "$nspid"; wait "$nspid" 2>/dev/null || true
    ;;
  kafka)
    mock="$bdir/tests/kafka-mock"
    if [ ! -x "$mock" ]; then echo "kafka: skipped (kafka-mock not built)"; continue; fi
    mkfifo "$tmp/mock.in"
    "$mock" --brokers 3 --topic knative-broker-default-kafka:10 \
      --topic knit-bench-raw:10 \
      < "$tmp/mock.in" > "$tmp/mock.out" 2>/dev/null & mpid=$!; pids+=("$mpid")
    exec 7>"$tmp/mock.in"   # keep the mock's stdin open
    for _ in $(seq 100); do grep -q ready "$tmp/mock.out" 2>/dev/null && break; sleep 0.05; done
    boot=$(head -1 "$tmp/mock.out")
    if [ -x "$bdir/bench/kafka_channel" ]; then
      ref_kafka() {
        local out
        out=$(KNIT_KAFKA_BOOTSTRAP=$boot "$bdir/bench/kafka_channel" "$EVENTS" "$CONNS" 500 1)
        sed -n 's/.*raw librdkafka *\([0-9.]*\) ev\/s.*/\1/p' <<<"$out" | head -1
      }
      rawlabel="librdkafka producer, same bytes (raw)"
    elif command -v kcat >/dev/null; then
      head -c 500 /dev/zero | tr '\0' x > "$tmp/payload"
      awk -v n="$EVENTS" -v p="$(cat "$tmp/payload")" 'BEGIN{for(i=0;i<n;i++)print p}' > "$tmp/msgs"
      ref_kafka() {
        local t0 t1
        t0=$(date +%s.%N)
        kcat -P -b "$boot" -t knit-bench-raw -X acks=all -X enable.idempotence=true \
          -X linger.ms=2 -H ce_specversion=1.0 -H ce_id=bench -H ce_source=/bench/wrk \
          -H ce_type=dev.knit.bench -H content-type=text/plain < "$tmp/msgs"
        t1=$(date +%s.%N)
        awk -v n="$EVENTS" -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", n/(b-a)}'
      }
      rawlabel="kcat -P acks=all idempotent, same bytes (raw)"
    else
      ref_kafka() { echo 0; }
      rawlabel="no raw reference (kafka_channel, kcat missing)"
    fi
    yaml="$(configmap_yaml kafka-cfg "bootstrap.servers=$boot" "kafka.consumer.fetch.wait.max.ms=5")
---
$(broker_yaml kafka Kafka kafka-cfg)"
    ingress kafka "$yaml" "$rawlabel" ref_kafka
    # the mock assigns a new group's partitions only after 3 s
    e2e kafka "$yaml" 5
    # `quit` on its stdin (a SIGTERM racing with its end-of-input pause()
    # can leave it waiting for another signal)
    echo quit >&7 || true
    exec 7>&-
    wait "$mpid" 2>/dev/null || true
    ;;
  *) echo "unknown backend $be" >&2; exit 2 ;;
  esac
done

printf '%-7s %-44s %10s %8s %8s %7s\n' backend what "events/s" "p50 ms" "p99 ms" ratio
printf '%s\n' "${rows[@]}"
