#!/bin/sh
# The whole test suite: install what is missing, build, then run vitest.
# Tests start their own redis-server, TLS and HTTP peers on loopback; nothing outside is touched.
set -eu
cd "$(dirname "$0")/.."
. scripts/ensure.sh
exec npx --no-install vitest run "$@"
