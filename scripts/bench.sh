#!/usr/bin/env bash
# Runs every benchmark: the C benchmark programs built into BUILD/bench/ and
# the harness scripts bench/*.sh (which start knit and reference servers on
# loopback). BENCH=name restricts to one (e.g. BENCH=ingress).
set -uo pipefail
bdir=${1:-build-bench}
root=$(cd "$(dirname "$0")/.." && pwd)
rc=0
for exe in "$bdir"/bench/*; do
  [ -f "$exe" ] && [ -x "$exe" ] || continue
  name=$(basename "$exe")
  [ -n "${BENCH:-}" ] && [ "$BENCH" != "$name" ] && continue
  echo "=== $name"; "$exe" || rc=1
done
for sh in "$root"/bench/*.sh; do
  [ -f "$sh" ] || continue
  name=$(basename "$sh" .sh)
  [ -n "${BENCH:-}" ] && [ "$BENCH" != "$name" ] && continue
  echo "=== $name"; bash "$sh" "$bdir" || rc=1
done
exit $rc
