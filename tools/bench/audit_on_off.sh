#!/usr/bin/env bash
# Verify throughput with usage auditing on vs off, in one run, interleaved
# (on, off, on, off). Needs the dev MariaDB (tools/dev/mariadb.sh start) and
# a build. Servers are pinned to CPU 0 and the load generator to CPU 1.
#
#   tools/bench/audit_on_off.sh [seconds] [inflight]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
SECONDS_PER_RUN="${1:-10}"
INFLIGHT="${2:-32}"
BIN="${LUMO_BUILD_DIR:-$ROOT/build}"
export LUMO_RUN_DIR="${LUMO_RUN_DIR:-$ROOT/run}"
ADMIN_DSN="$(tools/dev/mariadb.sh admin-dsn)"
DB="lumo_bench_$$"
WORK="$(mktemp -d)"
cleanup() {
  [ -n "${PID:-}" ] && kill "$PID" 2>/dev/null || true
  mariadb --no-defaults --socket="$LUMO_RUN_DIR/mariadb/mysqld.sock" -uroot \
    -e "DROP DATABASE IF EXISTS $DB" || true
  rm -rf "$WORK"
}
trap cleanup EXIT
umask 077
echo "1:$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$WORK/pepper"
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WORK/operator.token"
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WORK/service.token"
"$BIN/server/lumokeys-server" migrate --mysql="$ADMIN_DSN$DB" \
  --migrations_dir="$ROOT/sql/migrations" 2>/dev/null

start_server() {  # $1: extra flag or empty
  taskset -c 0 "$BIN/server/lumokeys-server" --listen=127.0.0.1:50199 \
    --mysql="$ADMIN_DSN$DB" --pepper_file="$WORK/pepper" \
    --operator_token_file="$WORK/operator.token" \
    --service_token_file="$WORK/service.token" ${LUMO_BENCH_SERVER_FLAGS:-} $1 2>>"$WORK/server.log" &
  PID=$!
  for _ in $(seq 1 100); do
    LUMOKEYS_ADDRESS=127.0.0.1:50199 "$BIN/client/lumokeys" health \
      >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "server did not start" >&2; cat "$WORK/server.log" >&2; exit 1
}
stop_server() { kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""; }

start_server ""
LUMOKEYS_ADDRESS=127.0.0.1:50199 LUMOKEYS_OPERATOR_TOKEN_FILE="$WORK/operator.token" \
  "$BIN/client/lumokeys" --json tenant create bench --scopes admin:read \
  | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["initialKey"]["key"])' \
  >"$WORK/key"
stop_server

echo "verify throughput, $INFLIGHT in flight, ${SECONDS_PER_RUN}s per run; server on CPU 0, load on CPU 1"
for round in 1 2; do
  for mode in on off; do
    if [ "$mode" = on ]; then start_server ""; else start_server --bench_disable_usage_audit; fi
    result=$(taskset -c 1 "$BIN/tools/verify_load" --target=127.0.0.1:50199 \
      --service_token_file="$WORK/service.token" --key_file="$WORK/key" \
      --tenant=bench --inflight="$INFLIGHT" --channels=4 \
      --seconds="$SECONDS_PER_RUN" --warmup_seconds=2)
    stop_server
    echo "round $round audit $mode: $result"
  done
done
used=$(mariadb --no-defaults --socket="$LUMO_RUN_DIR/mariadb/mysqld.sock" -uroot -N -B \
  -e "SELECT COUNT(*) FROM $DB.audit_events WHERE action = 'api_key.used'")
dropped=$(mariadb --no-defaults --socket="$LUMO_RUN_DIR/mariadb/mysqld.sock" -uroot -N -B \
  -e "SELECT COALESCE(SUM(JSON_VALUE(metadata, '$.dropped')), 0) FROM $DB.audit_events WHERE action = 'audit.dropped'")
echo "api_key.used rows written (audit-on rounds, incl. warm-up): $used; reported dropped (queue full): $dropped"
