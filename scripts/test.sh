#!/bin/sh
# The whole test suite: install what is missing, build, then run vitest.
# Tests start their own redis-server, TLS and HTTP peers on loopback; nothing outside is touched.
set -eu
cd "$(dirname "$0")/.."
. scripts/ensure.sh
command -v openssl >/dev/null 2>&1 || fail "openssl is required by the TLS tests: apt-get install -y openssl"
exec npx --no-install vitest run "$@"
