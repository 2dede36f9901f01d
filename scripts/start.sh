#!/bin/sh
# Quick start: install what is missing, build, and run the daemon on its embedded defaults
# (config/vigil.example.yaml, its own redis-server under ./var). Extra arguments go to `vigil start`.
set -eu
cd "$(dirname "$0")/.."
. scripts/ensure.sh
exec node bin/vigil.js start "$@"
