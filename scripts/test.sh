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
exec npx --no-install vitest run "$@"
