#!/usr/bin/env bash
# A private three-node MariaDB Galera cluster for development and tests:
# every node on loopback with its own data directory, socket, client port,
# Galera (wsrep) port, IST port and SST (rsync) port; never the system
# service. Durable settings (innodb_flush_log_at_trx_commit=1).
#
#   tools/dev/galera.sh start          # bootstrap node 1, join 2 and 3; idempotent
#   tools/dev/galera.sh stop           # clean shutdown of every node (3, 2, then 1)
#   tools/dev/galera.sh wipe           # stop, then delete every node's data
#   tools/dev/galera.sh status         # one line per node: wsrep state, cluster size
#   tools/dev/galera.sh start-node N   # (re)join node N to the running cluster
#   tools/dev/galera.sh stop-node N    # clean shutdown of node N
#   tools/dev/galera.sh kill-node N    # kill -9 of node N (a crash)
#   tools/dev/galera.sh wait-synced N  # until node N is Synced in a primary component
#   tools/dev/galera.sh admin-dsn [N]  # mysql://lumo_admin:PW@127.0.0.1:PORT/ (node N, default 1)
#   tools/dev/galera.sh hosts          # 127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3
#   tools/dev/galera.sh port N         # node N's client port
#
# Environment: LUMO_RUN_DIR (run folder; the cluster lives in
# $LUMO_RUN_DIR/galera), LUMO_GALERA_PORT (node 1's client port, default
# 3361; nodes 2 and 3 use the next two), LUMO_GALERA_WSREP_PORT (default
# 4561), LUMO_GALERA_IST_PORT (default 4571), LUMO_GALERA_SST_PORT (default
# 4581); each likewise for nodes 2 and 3.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=tools/dev/mysql_admin.sh
. "$ROOT/tools/dev/mysql_admin.sh"
RUN_DIR="${LUMO_RUN_DIR:-$ROOT/run}"
# mariadbd changes directory, so it must get absolute paths.
case "$RUN_DIR" in /*) ;; *) RUN_DIR="$PWD/$RUN_DIR" ;; esac
CLUSTER_DIR="$RUN_DIR/galera"
PORT_BASE="${LUMO_GALERA_PORT:-3361}"
WSREP_BASE="${LUMO_GALERA_WSREP_PORT:-4561}"
IST_BASE="${LUMO_GALERA_IST_PORT:-4571}"
SST_BASE="${LUMO_GALERA_SST_PORT:-4581}"
PROVIDER="${LUMO_GALERA_PROVIDER:-/usr/lib/galera/libgalera_smm.so}"
NODES=(1 2 3)

# Run as root, the nodes run as the mysql system account (created by the
# mariadb-server package): the rsync daemon that receives a state transfer
# switches from root to "nobody", which cannot write the data directory.
user_args=()
RUN_AS=""
if [ "$(id -u)" = 0 ]; then RUN_AS=mysql; user_args=(--user=mysql); fi

# The account the nodes run as owns the cluster folder.
own_cluster_dir() {
  if [ -n "$RUN_AS" ]; then chown -R "$RUN_AS:$RUN_AS" "$CLUSTER_DIR/node"*; fi
}

# Makes the cluster folder. Run as root, the nodes run as $RUN_AS, which
# must reach it through every parent folder: the run and cluster folders are
# opened to search (o+x; a umask of 077 would leave them private), and a
# parent that stays closed to that account (a run folder inside a private
# `mktemp -d` folder, say) is reported here rather than as mariadbd's
# "Permission denied" in a node's log.
make_cluster_dir() {
  mkdir -p "$CLUSTER_DIR"
  if [ -z "$RUN_AS" ]; then return 0; fi
  chmod o+x "$RUN_DIR" "$CLUSTER_DIR"
  if runuser -u "$RUN_AS" -- test -x "$CLUSTER_DIR"; then return 0; fi
  local path="$CLUSTER_DIR" closed="$CLUSTER_DIR"
  while [ "$path" != / ]; do
    if ! runuser -u "$RUN_AS" -- test -x "$path"; then closed="$path"; fi
    path="$(dirname "$path")"
  done
  echo "galera.sh: the nodes run as '$RUN_AS', which cannot reach" \
    "$CLUSTER_DIR: $closed is closed to it; set LUMO_RUN_DIR to a folder" \
    "it can reach (every parent searchable by others)" >&2
  exit 1
}

node_dir() { echo "$CLUSTER_DIR/node$1"; }
node_port() { echo $((PORT_BASE + $1 - 1)); }
node_sock() { echo "$(node_dir "$1")/mysqld.sock"; }
node_pid_file() { echo "$(node_dir "$1")/mysqld.pid"; }
# The pid the harness started, written at launch (mariadbd writes its own
# pid file only once it is up).
node_proc_file() { echo "$(node_dir "$1")/launched.pid"; }

cluster_address() {
  local list=() n
  for n in "${NODES[@]}"; do list+=("127.0.0.1:$((WSREP_BASE + n - 1))"); done
  local IFS=,
  echo "gcomm://${list[*]}"
}

is_running() {
  local pid_file; pid_file="$(node_proc_file "$1")"
  [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null
}

root_sql() {
  mariadb --no-defaults --socket="$(node_sock "$1")" -uroot -N -B -e "$2"
}

# "state cluster_status cluster_size", or nothing when the node does not
# answer.
wsrep_status() {
  root_sql "$1" "SELECT
      (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS
        WHERE VARIABLE_NAME = 'WSREP_LOCAL_STATE'),
      (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS
        WHERE VARIABLE_NAME = 'WSREP_CLUSTER_STATUS'),
      (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS
        WHERE VARIABLE_NAME = 'WSREP_CLUSTER_SIZE')" 2>/dev/null || true
}

# Waits until node $1 is Synced (state 4) in a primary component.
wait_synced() {
  local n="$1" status
  for _ in $(seq 1 600); do
    status="$(wsrep_status "$n")"
    if [ -n "$status" ]; then
      set -- $status
      if [ "$1" = 4 ] && [ "$2" = Primary ]; then return 0; fi
    fi
    if ! is_running "$n"; then
      echo "galera node $n exited; log: $(node_dir "$n")/mysqld.err" >&2
      tail -30 "$(node_dir "$n")/mysqld.err" >&2 || true
      exit 1
    fi
    sleep 0.2
  done
  echo "galera node $n did not reach Synced; log: $(node_dir "$n")/mysqld.err" >&2
  tail -30 "$(node_dir "$n")/mysqld.err" >&2 || true
  exit 1
}

init_node() {
  local n="$1" dir; dir="$(node_dir "$n")"
  if [ -d "$dir/data/mysql" ]; then return 0; fi
  mkdir -p "$dir/data" "$dir/tmp"
  own_cluster_dir
  # Only node 1's system tables matter: the joiners receive node 1's data
  # by state transfer. Each still needs a datadir to start in.
  mariadb-install-db --no-defaults --datadir="$dir/data" --tmpdir="$dir/tmp" \
    --auth-root-authentication-method=socket --skip-test-db \
    "${user_args[@]}" >"$dir/install.log" 2>&1 || {
      cat "$dir/install.log" >&2; exit 1; }
}

# Starts node $1; extra arguments go to mariadbd (--wsrep-new-cluster).
launch_node() {
  local n="$1"; shift
  local dir; dir="$(node_dir "$n")"
  mkdir -p "$dir/tmp"
  own_cluster_dir
  local wsrep_port=$((WSREP_BASE + n - 1))
  local ist_port=$((IST_BASE + n - 1))
  local sst_port=$((SST_BASE + n - 1))
  # Failure detection (docs/operations.md, "Failure detection"):
  # a node silent for evs.suspect_timeout is suspected, checked every
  # inactive_check_period, and evicted once every other member suspects it
  # (join messages resent every join_retrans_period); writes on the
  # survivors stall until then. keepalive_period must stay at most a third
  # of the suspect timeout; causal_keepalive_period stays at 1 s (by
  # default it follows keepalive_period, and a shorter one makes more causal
  # reads wait for a round through the group).
  local evs="evs.suspect_timeout=PT2S;evs.inactive_timeout=PT6S"
  evs+=";evs.install_timeout=PT6S;evs.keepalive_period=PT0.5S"
  evs+=";evs.inactive_check_period=PT0.2S;evs.join_retrans_period=PT0.2S"
  evs+=";evs.causal_keepalive_period=PT1S"
  mariadbd --no-defaults --datadir="$dir/data" --socket="$(node_sock "$n")" \
    --tmpdir="$dir/tmp" \
    --port="$(node_port "$n")" --bind-address=127.0.0.1 \
    --pid-file="$(node_pid_file "$n")" --log-error="$dir/mysqld.err" \
    --skip-name-resolve \
    --innodb-flush-log-at-trx-commit=1 \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
    --innodb-buffer-pool-size=128M --max-connections=300 \
    --binlog-format=ROW --innodb-autoinc-lock-mode=2 \
    --server-id="$n" \
    --wsrep-on=ON --wsrep-provider="$PROVIDER" \
    --wsrep-cluster-name=lumo_galera \
    --wsrep-cluster-address="$(cluster_address)" \
    --wsrep-node-name="node$n" --wsrep-node-address="127.0.0.1:$wsrep_port" \
    --wsrep-provider-options="gmcast.listen_addr=tcp://127.0.0.1:$wsrep_port;ist.recv_addr=127.0.0.1:$ist_port;gcache.size=64M;$evs" \
    --wsrep-sst-method=rsync \
    --wsrep-sst-receive-address="127.0.0.1:$sst_port" \
    "${user_args[@]}" "$@" >/dev/null 2>&1 &
  echo $! >"$(node_proc_file "$n")"
}

# The admin account for migrations and tests. Created on the bootstrap
# node; Galera replicates account changes to the others.
ensure_admin() {
  lumo_ensure_admin "$(node_sock "$1")" "$CLUSTER_DIR/secrets"
}

any_running() {
  local n
  for n in "${NODES[@]}"; do
    if is_running "$n"; then return 0; fi
  done
  return 1
}

# The node to bootstrap a stopped cluster from: the one Galera marked safe
# to bootstrap (the last to leave after a clean shutdown), else the one with
# the highest committed seqno in grastate.dat, else node 1.
bootstrap_node() {
  local n best=1 best_seqno=-2 file seqno
  for n in "${NODES[@]}"; do
    file="$(node_dir "$n")/data/grastate.dat"
    [ -f "$file" ] || continue
    if grep -q '^safe_to_bootstrap: *1' "$file"; then echo "$n"; return 0; fi
    seqno="$(sed -n 's/^seqno: *//p' "$file")"
    if [ -n "$seqno" ] && [ "$seqno" -gt "$best_seqno" ]; then
      best="$n"; best_seqno="$seqno"
    fi
  done
  echo "$best"
}

start() {
  make_cluster_dir
  local n first
  if ! any_running; then
    for n in "${NODES[@]}"; do init_node "$n"; done
    first="$(bootstrap_node)"
    local state="$(node_dir "$first")/data/grastate.dat"
    if [ -f "$state" ]; then
      # A crash of the whole cluster leaves nobody marked safe; the harness
      # picked the most advanced node, so it may bootstrap.
      sed -i 's/^safe_to_bootstrap: *0/safe_to_bootstrap: 1/' "$state"
    fi
    launch_node "$first" --wsrep-new-cluster
    wait_synced "$first"
    ensure_admin "$first"
  fi
  # One joiner at a time: each needs a state transfer from a donor.
  for n in "${NODES[@]}"; do
    if ! is_running "$n"; then
      init_node "$n"
      launch_node "$n"
    fi
    wait_synced "$n"
  done
  # ensure_admin ran on whichever node bootstrapped; make sure it exists
  # even when the cluster was already running from an older harness.
  ensure_admin 1
}

start_node() {
  local n="$1"
  if ! any_running; then
    echo "no galera node is running; use '$0 start'" >&2; exit 1
  fi
  if ! is_running "$n"; then
    init_node "$n"
    launch_node "$n"
  fi
  wait_synced "$n"
}

stop_node() {
  local n="$1"
  if is_running "$n"; then
    local pid; pid="$(cat "$(node_proc_file "$n")")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 300); do
      kill -0 "$pid" 2>/dev/null || return 0
      sleep 0.2
    done
    kill -9 "$pid" 2>/dev/null || true
  fi
}

kill_node() {
  local n="$1"
  if is_running "$n"; then
    local pid; pid="$(cat "$(node_proc_file "$n")")"
    kill -9 "$pid"
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || return 0
      sleep 0.1
    done
  fi
}

stop() {
  local n
  for n in 3 2 1; do stop_node "$n"; done
}

wipe() {
  stop
  rm -rf "$CLUSTER_DIR"
}

status() {
  local n up=0 status
  for n in "${NODES[@]}"; do
    if is_running "$n"; then
      status="$(wsrep_status "$n")"
      echo "node $n: running (port $(node_port "$n")) local_state/cluster_status/size: ${status:-?}"
      up=1
    else
      echo "node $n: stopped"
    fi
  done
  [ "$up" = 1 ]
}

check_node() {
  case "${1:-}" in
    1|2|3) ;;
    *) echo "node must be 1, 2 or 3" >&2; exit 2 ;;
  esac
}

admin_dsn() {
  local n="${1:-1}"; check_node "$n"
  echo "mysql://lumo_admin:$(cat "$CLUSTER_DIR/secrets/mysql-admin.password")@127.0.0.1:$(node_port "$n")/"
}

hosts() {
  local list=() n
  for n in "${NODES[@]}"; do list+=("127.0.0.1:$(node_port "$n")"); done
  local IFS=,
  echo "${list[*]}"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  wipe) wipe ;;
  status) status ;;
  start-node) check_node "${2:-}"; start_node "$2" ;;
  stop-node) check_node "${2:-}"; stop_node "$2" ;;
  kill-node) check_node "${2:-}"; kill_node "$2" ;;
  wait-synced) check_node "${2:-}"; wait_synced "$2" ;;
  admin-dsn) admin_dsn "${2:-1}" ;;
  hosts) hosts ;;
  port) check_node "${2:-}"; node_port "$2" ;;
  *) echo "usage: $0 start|stop|wipe|status|start-node N|stop-node N|kill-node N|wait-synced N|admin-dsn [N]|hosts|port N" >&2; exit 2 ;;
esac
