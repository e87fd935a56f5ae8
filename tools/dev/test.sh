#!/usr/bin/env bash
# THE TEST COMMAND (README): installs dependencies, builds, starts a private
# MariaDB for the tests (run/test, port 3308, wiped first), runs the whole
# suite with ctest and stops what it started. Exit status is ctest's.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
start_time=$(date +%s)

tools/dev/deps.sh
tools/dev/build.sh
# The libFuzzer targets (clang, separate build dir; the suite runs each
# briefly).
tools/fuzz/build.sh
# npm packages for the OpenAPI check (pinned by package-lock.json).
(cd tests/gateway/openapi && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
# node-sql-parser for the MySQL 8.0 grammar check (pinned likewise).
(cd tests/storage/mysql_grammar && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
# Playwright-core for the browser tests (no browser
# download: they drive Debian's /usr/bin/chromium).
(cd tests/e2e/portal && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error >/dev/null)
# The Node client (client/node) its example service runs with.
(cd client/node && npm ci --no-audit --no-fund --loglevel=error >/dev/null)

export LUMO_RUN_DIR="$ROOT/run/test"
export LUMO_MYSQL_PORT="${LUMO_TEST_MYSQL_PORT:-3308}"
LUMO_RUN_DIR="$LUMO_RUN_DIR" tools/dev/mariadb.sh stop || true
rm -rf "$LUMO_RUN_DIR"
tools/dev/mariadb.sh start
cleanup() { tools/dev/mariadb.sh stop || true; }
trap cleanup EXIT

LUMO_TEST_MYSQL_DSN="$(tools/dev/mariadb.sh admin-dsn)"
export LUMO_TEST_MYSQL_DSN

status=0
ctest --test-dir build --output-on-failure -j2 --timeout 900 "$@" || status=$?
echo "test command took $(( $(date +%s) - start_time )) s"
exit $status
