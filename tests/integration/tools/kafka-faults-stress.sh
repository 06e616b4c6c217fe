#!/bin/bash
# kafka-faults-stress.sh: runs the produce-error case of test 0703 (errors
# injected into librdkafka's mock cluster while four threads append) many
# times, optionally with both cores kept busy, and keeps the full debug log
# (knit, the producer's librdkafka debug, the mock brokers) of every
# failing run. Not part of the suite (minutes, not seconds); see
# docs/channels-kafka.md.
#
# usage: tests/integration/tools/kafka-faults-stress.sh BUILD_DIR RUNS [load]
#   BUILD_DIR  a build tree with tests/test_0703-kafka-faults
#   RUNS       how many runs
#   load       also run one busy loop per core while it runs
# Environment: KT_RDDEBUG (default msg,eos,protocol,broker; empty = no
# librdkafka debug, which changes the timing), OUT (default a new
# /tmp/knit-kafka-stress-XXXXXX).
# Exit status: 0 if every run passed, 1 otherwise.
set -u
build=${1:?build dir}
runs=${2:?number of runs}
load=${3:-}
bin=$build/tests/test_0703-kafka-faults
[ -x "$bin" ] || { echo "no $bin" >&2; exit 2; }
out=${OUT:-$(mktemp -d /tmp/knit-kafka-stress-XXXXXX)}
mkdir -p "$out"
dbg=${KT_RDDEBUG-msg,eos,protocol,broker}

busy=()
stop_busy() {
    for p in "${busy[@]}"; do kill "$p" 2>/dev/null; done
    busy=()
}
trap stop_busy EXIT
if [ "$load" = load ]; then
    for _ in $(seq "$(nproc)"); do
        (while :; do :; done) &
        busy+=($!)
    done
fi

fails=0 implicit=0
for i in $(seq "$runs"); do
    env KT_FILTER=test_produce_errors KT_DEBUG=1 KT_RDDEBUG="$dbg" \
        ${dbg:+KT_MOCKDEBUG=mock} timeout 120 "$bin" >"$out/run.log" 2>&1
    rc=$?
    # runs where librdkafka acked without an offset and knit failed the
    # append instead (the race that lost events before)
    if grep -q 'said success without an offset' "$out/run.log"; then
        implicit=$((implicit + 1))
    fi
    if [ $rc -ne 0 ]; then
        fails=$((fails + 1))
        cp "$out/run.log" "$out/fail-$i.log"
        echo "run $i failed (rc $rc): $out/fail-$i.log"
    fi
done
rm -f "$out/run.log"
echo "$runs runs, $fails failed${load:+ (with a busy loop per core)};" \
    "$implicit hit an implicit ack; logs in $out"
[ $fails -eq 0 ]
