#!/usr/bin/env bash
# Runs every libFuzzer target in build dir $1 for $2 seconds, starting from
# (a scratch copy of) its corpus in tests/fuzz/corpus/NAME. New inputs stay in
# the scratch copy; crashes are written under build dir/fuzz-artifacts.
set -euo pipefail
bdir=$1; secs=${2:-20}
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$bdir/fuzz-artifacts"
rc=0
for bin in "$bdir"/tests/fuzz_*; do
  [ -x "$bin" ] || continue
  name=$(basename "$bin"); corpus=${name#fuzz_}
  work="$bdir/fuzz-corpus/$corpus"
  mkdir -p "$work"
  cp -n "$root/tests/fuzz/corpus/$corpus"/* "$work"/ 2>/dev/null || true
  echo "== $name for ${secs}s"
  if ! "$bin" -max_total_time="$secs" -artifact_prefix="$bdir/fuzz-artifacts/$corpus-" \
        -print_final_stats=1 "$work" > "$bdir/fuzz-artifacts/$corpus.log" 2>&1; then
    echo "!! $name failed; see $bdir/fuzz-artifacts/$corpus.log"; tail -30 "$bdir/fuzz-artifacts/$corpus.log"; rc=1
  else
    grep -E 'stat::number_of_executed_units|Done' "$bdir/fuzz-artifacts/$corpus.log" | tail -2
  fi
done
exit $rc
