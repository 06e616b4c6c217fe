#!/usr/bin/env bash
# Installs the Debian packages knit needs to build, test and benchmark.
# Idempotent: does nothing when everything is present. Works as root or via
# sudo; otherwise says what to run.
set -euo pipefail
pkgs=(build-essential cmake pkg-config clang llvm libclang-rt-14-dev git curl ca-certificates
      libmicrohttpd-dev libcurl4-openssl-dev libjansson-dev libyaml-dev
      uuid-dev librdkafka-dev libnats-dev libcmocka-dev
      nats-server kcat python3 procps psmisc)
if [ "${1:-}" = "--bench" ]; then
  pkgs+=(wrk nginx-light)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
# node + npm for the SDK interop test (tests/integration/0170); a node that
# is already there (e.g. a NodeSource build that bundles npm) is kept.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO="sudo"
else
  echo "deps: missing packages: ${missing[*]}" >&2
  echo "deps: run as root: apt-get update && apt-get install -y ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps: done"
