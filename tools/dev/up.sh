#!/usr/bin/env bash
# THE RUN COMMAND (README): installs dependencies, builds, starts a private
# MariaDB (run/mariadb, 127.0.0.1:3307), applies migrations, starts the
# server and the HTTP gateway (127.0.0.1:8080), bootstraps the demo tenant
# `acme-corp` with an admin API key and a portal admin (login printed),
# prints how to use it, and stays in the foreground until Ctrl-C, which
# stops the server and the database.
#
# Secrets generated on first run live in run/secrets (mode 0700): the pepper
# set, the operator and service tokens, the database passwords and the demo
# key. Delete run/ to start from scratch.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

tools/dev/deps.sh
tools/dev/build.sh

export LUMO_RUN_DIR="${LUMO_RUN_DIR:-$ROOT/run}"
export LUMO_MYSQL_PORT="${LUMO_MYSQL_PORT:-3307}"
GRPC_ADDR="${LUMO_GRPC_ADDR:-127.0.0.1:50051}"
HTTP_ADDR="${LUMO_HTTP_ADDR:-127.0.0.1:8080}"
SECRETS="$LUMO_RUN_DIR/secrets"
BIN="$ROOT/build"
DB_NAME=lumokeys

tools/dev/mariadb.sh start
SERVER_PID=""
GATEWAY_PID=""
cleanup() {
  if [ -n "$GATEWAY_PID" ]; then kill "$GATEWAY_PID" 2>/dev/null || true; wait "$GATEWAY_PID" 2>/dev/null || true; fi
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  tools/dev/mariadb.sh stop || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$SECRETS"; chmod 700 "$SECRETS"
umask 077
new_secret() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
[ -s "$SECRETS/pepper" ] || echo "1:$(new_secret)" >"$SECRETS/pepper"
[ -s "$SECRETS/operator.token" ] || new_secret >"$SECRETS/operator.token"
[ -s "$SECRETS/service.token" ] || new_secret >"$SECRETS/service.token"
[ -s "$SECRETS/mysql-app.password" ] || new_secret >"$SECRETS/mysql-app.password"
# Secret files must be private (the binaries refuse others); older run/
# folders are repaired here.
chmod 600 "$SECRETS"/pepper "$SECRETS"/*.token "$SECRETS"/*.password

ADMIN_DSN="$(tools/dev/mariadb.sh admin-dsn)"
"$BIN/server/lumokeys-server" migrate --mysql="${ADMIN_DSN}${DB_NAME}" \
  --migrations_dir="$ROOT/sql/migrations"

# The server's own account: data access only, no DDL (docs/operations.md,
# "Database grants"; tools/ops/grants.sh grants exactly what it documents).
APP_PW="$(cat "$SECRETS/mysql-app.password")"
ROOT_CLIENT=(--no-defaults --socket="$LUMO_RUN_DIR/mariadb/mysqld.sock" -uroot)
mariadb "${ROOT_CLIENT[@]}" <<SQL
CREATE USER IF NOT EXISTS 'lumokeys'@'127.0.0.1' IDENTIFIED BY '$APP_PW';
CREATE USER IF NOT EXISTS 'lumokeys'@'localhost' IDENTIFIED BY '$APP_PW';
REVOKE ALL PRIVILEGES, GRANT OPTION FROM 'lumokeys'@'127.0.0.1', 'lumokeys'@'localhost';
SQL
tools/ops/grants.sh "${ROOT_CLIENT[@]}" --account=lumokeys@127.0.0.1 \
  --account=lumokeys@localhost "$DB_NAME" >/dev/null

"$BIN/server/lumokeys-server" \
  --listen="$GRPC_ADDR" \
  --mysql="mysql://lumokeys@127.0.0.1:$LUMO_MYSQL_PORT/$DB_NAME" \
  --mysql_password_file="$SECRETS/mysql-app.password" \
  --pepper_file="$SECRETS/pepper" \
  --operator_token_file="$SECRETS/operator.token" \
  --service_token_file="$SECRETS/service.token" \
  2>>"$LUMO_RUN_DIR/server.log" &
SERVER_PID=$!

CLI="$BIN/client/lumokeys"
export LUMOKEYS_ADDRESS="$GRPC_ADDR"
export LUMOKEYS_OPERATOR_TOKEN_FILE="$SECRETS/operator.token"
for _ in $(seq 1 100); do
  if "$CLI" health >/dev/null 2>&1; then break; fi
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "server exited; see $LUMO_RUN_DIR/server.log" >&2; tail -5 "$LUMO_RUN_DIR/server.log" >&2; exit 1
  fi
  sleep 0.2
done

"$BIN/gateway/lumokeys-gateway" \
  --listen="$HTTP_ADDR" --upstream="$GRPC_ADDR" \
  --service_token_file="$SECRETS/service.token" \
  2>>"$LUMO_RUN_DIR/gateway.log" &
GATEWAY_PID=$!
for _ in $(seq 1 100); do
  if curl -fsS "http://$HTTP_ADDR/healthz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$GATEWAY_PID" 2>/dev/null; then
    echo "gateway exited; see $LUMO_RUN_DIR/gateway.log" >&2; tail -5 "$LUMO_RUN_DIR/gateway.log" >&2; exit 1
  fi
  sleep 0.2
done

if "$CLI" tenant get acme-corp >/dev/null 2>&1; then
  "$CLI" --json --tenant acme-corp keys issue --name "Demo admin key" \
    --scopes admin:write >"$SECRETS/demo.json"
else
  "$CLI" --json tenant create acme-corp --name "Acme Corp" \
    --key-name "Demo admin key" --scopes admin:write >"$SECRETS/demo.json"
fi
/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); k=d.get("initialKey", d); print(k["key"])' \
  "$SECRETS/demo.json" >"$SECRETS/demo.key"
rm -f "$SECRETS/demo.json"

# The demo tenant's portal admin. Its password is
# generated once into run/secrets and (re)applied on every start.
DEMO_ADMIN_EMAIL="admin@acme-corp.example"
[ -s "$SECRETS/portal-admin.password" ] || new_secret >"$SECRETS/portal-admin.password"
"$CLI" --timeout 60 tenant set-admin acme-corp --admin-email "$DEMO_ADMIN_EMAIL" \
  --admin-password-file "$SECRETS/portal-admin.password" >/dev/null

cat <<EOF_INFO

LumoKeys is running.
  REST base URL   http://$HTTP_ADDR/t/acme-corp/api/v1/admin   (log: $LUMO_RUN_DIR/gateway.log)
  OpenAPI         http://$HTTP_ADDR/t/acme-corp/api/v1/openapi.json
  gRPC server     $GRPC_ADDR   (log: $LUMO_RUN_DIR/server.log)
  MariaDB         127.0.0.1:$LUMO_MYSQL_PORT (private, data in $LUMO_RUN_DIR/mariadb)
  demo tenant     acme-corp
  demo API key    $(cat "$SECRETS/demo.key")
                  (scope admin:write; also saved in $SECRETS/demo.key)

Portal (open in a browser):
  URL             http://$HTTP_ADDR/t/acme-corp/login
  email           $DEMO_ADMIN_EMAIL
  password        $(cat "$SECRETS/portal-admin.password")
                  (also saved in $SECRETS/portal-admin.password)
  A key created on http://$HTTP_ADDR/t/acme-corp/portal/settings/api-keys
  works with: curl -s -H "Authorization: Bearer <the key>" \\
    http://$HTTP_ADDR/t/acme-corp/api/v1/admin/api-keys

Try it with curl:
  curl -s -H "Authorization: Bearer $(cat "$SECRETS/demo.key")" \\
    http://$HTTP_ADDR/t/acme-corp/api/v1/admin/api-keys

Or with the CLI:
  export LUMOKEYS_ADDRESS=$GRPC_ADDR LUMOKEYS_TENANT=acme-corp
  export LUMOKEYS_API_KEY_FILE=$SECRETS/demo.key
  export LUMOKEYS_SERVICE_TOKEN_FILE=$SECRETS/service.token
  $CLI keys list
  $CLI verify < $SECRETS/demo.key

Ctrl-C stops the server and the database.
EOF_INFO
wait -n "$SERVER_PID" "$GATEWAY_PID"
