#!/usr/bin/env bash
# Interop with the npm `cloudevents` SDK (v10): SDK-encoded HTTP messages
# (binary, structured, batch) decoded by knit, and knit-encoded messages
# accepted by the SDK's HTTP.toEvent. The logic is in sdk-interop.mjs; this
# wrapper installs the package into a temporary directory from the npm
# registry. Skipped (exit 77) only when node is missing.
set -euo pipefail
src=${KNIT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${KNIT_BUILD_DIR:-$src/build}
tool=$build/tests/ce_http_tool

if ! command -v node >/dev/null 2>&1; then
  echo "################################################################" >&2
  echo "## SKIPPED 0170-sdk-interop: node is not installed, so the     ##" >&2
  echo "## interop test against the npm cloudevents SDK did NOT run.   ##" >&2
  echo "## Install nodejs and npm (make deps) to run it.               ##" >&2
  echo "################################################################" >&2
  exit 77
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "0170-sdk-interop: node is installed but npm is not (install npm)" >&2
  exit 1
fi
if [ ! -x "$tool" ]; then
  echo "0170-sdk-interop: $tool not built" >&2
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
printf '{"name":"knit-sdk-interop","private":true,"type":"module"}\n' > package.json
if ! npm install --no-audit --no-fund --loglevel=error cloudevents@10 >npm.log 2>&1; then
  echo "0170-sdk-interop: npm install cloudevents@10 failed:" >&2
  cat npm.log >&2
  exit 1
fi
echo "cloudevents SDK $(node -p 'require("./node_modules/cloudevents/package.json").version'), node $(node --version)"
# Node resolves packages next to the script, so run a copy from here.
cp "$src/tests/integration/sdk-interop.mjs" .
node sdk-interop.mjs "$tool" "$work"
