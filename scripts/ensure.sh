#!/bin/sh
# Installs what `npm start` and `npm test` need, or stops with one line that says what to install.
# Sourced by scripts/start.sh and scripts/test.sh.
set -eu

fail() { echo "vigil: $*" >&2; exit 1; }

command -v node >/dev/null 2>&1 || fail "Node.js 20 or newer is required: install it (e.g. apt-get install -y nodejs npm) and retry"
major=$(node -p 'process.versions.node.split(".")[0]')
minor=$(node -p 'process.versions.node.split(".")[1]')
if [ "$major" -lt 24 ] && { [ "$major" -ne 20 ] || [ "$minor" -lt 19 ]; }; then
  fail "Node.js $(node --version) is not supported: vigil needs Node.js 24 LTS (or 20.19+, past end of life)"
fi
[ "$major" -ge 20 ] || fail "Node.js $(node --version) is too old: vigil needs Node.js 24 LTS (20.19+ still runs it, past end of life)"
[ "$major" -ge 24 ] || echo "vigil: note: Node.js $(node --version) is past end of life; the supported runtime is Node.js 24 LTS" >&2

# npm packages, once per lockfile change.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "vigil: installing npm packages" >&2
  # Strict: an out-of-sync package-lock.json fails here instead of being rewritten (run `npm install` once after
  # changing dependencies, and commit the lock).
  npm ci --no-audit --no-fund --loglevel=error >&2 || fail "npm ci failed: if it says the lock file is out of sync, run npm install once and commit package-lock.json"
fi

# TypeScript → dist/ (incremental enough: tsc takes seconds).
npx --no-install tsc -p tsconfig.build.json >&2

# redis-server: the embedded default and the tests both start their own.
if ! command -v redis-server >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "vigil: installing redis-server with apt-get" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server) >&2 \
      || fail "apt-get could not install redis-server: install it by hand, or set redis.url in the config"
  else
    fail 'redis-server is not installed: run "sudo apt-get install -y redis-server", or set redis.url in the config to use an existing Redis'
  fi
fi
