#!/usr/bin/env bash
# A private MariaDB for development and tests: data under $LUMO_RUN_DIR
# (default ./run/mariadb), its own socket and port on loopback, never the
# system service. Durable settings (innodb_flush_log_at_trx_commit=1).
#
#   tools/dev/mariadb.sh start   # idempotent; prints nothing on success
#   tools/dev/mariadb.sh stop
#   tools/dev/mariadb.sh status
#   tools/dev/mariadb.sh admin-dsn  # mysql://lumo_admin:PW@127.0.0.1:PORT/
#
# Environment: LUMO_RUN_DIR (run folder), LUMO_MYSQL_PORT (default 3307).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=tools/dev/mysql_admin.sh
. "$ROOT/tools/dev/mysql_admin.sh"
RUN_DIR="${LUMO_RUN_DIR:-$ROOT/run}"
# A relative run folder is relative to where the command is run (mysqld
# itself changes directory, so it must get absolute paths).
case "$RUN_DIR" in /*) ;; *) RUN_DIR="$PWD/$RUN_DIR" ;; esac
DB_DIR="$RUN_DIR/mariadb"
PORT="${LUMO_MYSQL_PORT:-3307}"
SOCK="$DB_DIR/mysqld.sock"
PID_FILE="$DB_DIR/mysqld.pid"
LOG="$DB_DIR/mysqld.err"

user_args=()
if [ "$(id -u)" = 0 ]; then user_args=(--user=root); fi

is_running() {
  [ -f "$PID_FILE" ] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null
}

# An admin account for migrations, bootstrap and tests, reachable over TCP
# on loopback. Its password is generated once into the run folder.
ensure_admin() {
  lumo_ensure_admin "$SOCK" "$RUN_DIR/secrets"
}

# Prints the admin DSN (no database part).
admin_dsn() {
  echo "mysql://lumo_admin:$(cat "$RUN_DIR/secrets/mysql-admin.password")@127.0.0.1:$PORT/"
}

start() {
  mkdir -p "$DB_DIR"
  if is_running; then return 0; fi
  if [ ! -d "$DB_DIR/data/mysql" ]; then
    mkdir -p "$DB_DIR/data" "$DB_DIR/tmp"
    # A private tmpdir: several private servers bootstrapping at once in
    # the shared /tmp once failed with "Could not remove temporary table".
    mariadb-install-db --no-defaults --datadir="$DB_DIR/data" \
      --tmpdir="$DB_DIR/tmp" \
      --auth-root-authentication-method=socket --skip-test-db \
      "${user_args[@]}" >"$DB_DIR/install.log" 2>&1 || {
        cat "$DB_DIR/install.log" >&2; exit 1; }
  fi
  mkdir -p "$DB_DIR/tmp"
  mariadbd --no-defaults --datadir="$DB_DIR/data" --socket="$SOCK" \
    --tmpdir="$DB_DIR/tmp" \
    --port="$PORT" --bind-address=127.0.0.1 --pid-file="$PID_FILE" \
    --log-error="$LOG" --skip-name-resolve \
    --innodb-flush-log-at-trx-commit=1 --sync-binlog=1 \
    --log-bin="$DB_DIR/data/binlog" --server-id=1 \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
    --innodb-buffer-pool-size=256M --max-connections=500 \
    "${user_args[@]}" >/dev/null 2>&1 &
  for _ in $(seq 1 100); do
    if mariadb-admin --no-defaults --socket="$SOCK" -uroot ping >/dev/null 2>&1; then
      ensure_admin
      return 0
    fi
    sleep 0.2
  done
  echo "mariadb did not start; log: $LOG" >&2
  tail -20 "$LOG" >&2 || true
  exit 1
}

stop() {
  if is_running; then
    local pid; pid="$(cat "$PID_FILE")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 150); do
      kill -0 "$pid" 2>/dev/null || return 0
      sleep 0.2
    done
    kill -9 "$pid" 2>/dev/null || true
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  admin-dsn) admin_dsn ;;
  status) if is_running; then echo "running (port $PORT, socket $SOCK)"; else echo stopped; exit 1; fi ;;
  *) echo "usage: $0 start|stop|status|admin-dsn" >&2; exit 2 ;;
esac
