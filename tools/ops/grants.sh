#!/usr/bin/env bash
# Grants the server's runtime account its privileges on every table of the
# database (docs/operations.md, "Database grants"):
#
#   grants.sh [client options] --account=USER@HOST... DATABASE
#
# every table except the audit log: SELECT, INSERT, UPDATE, DELETE;
# audit_events: SELECT, INSERT (a compromised server cannot rewrite
# history); audit_chain_heads: SELECT, INSERT, UPDATE. Tables come from
# information_schema, so a run after a migration that added a table covers
# it. Grants only add: running it again, or while servers run, takes nothing
# away. The accounts must exist (CREATE USER ... IDENTIFIED BY, once). Prints
# each statement it runs.
#
# Run it as the migration (operator) account, which needs GRANT OPTION on
# the database. Client options go to the mariadb client; a password on the
# command line is refused (use --defaults-extra-file=FILE or MYSQL_PWD).
set -euo pipefail

usage() {
  sed -n '2,17p' "$0" >&2
  exit 2
}

die() {
  echo "grants.sh: $*" >&2
  exit 1
}

# parse_client_args, run_mariadb.
. "$(dirname -- "${BASH_SOURCE[0]}")/client_args.sh"

accounts=()
rest=()
for arg in "$@"; do
  case "$arg" in
    --account=*)
      account="${arg#--account=}"
      user="${account%@*}"
      host="${account##*@}"
      # Spelled as SQL literals below: only characters that need no quoting.
      [[ "$account" == *@* && "$user" =~ ^[A-Za-z0-9_.-]{1,80}$ &&
         "$host" =~ ^[A-Za-z0-9_.%:-]{1,255}$ ]] ||
        die "--account must be USER@HOST (letters, digits, _ . - and, in" \
          "the host, % :), got '$account'"
      accounts+=("'$user'@'$host'") ;;
    *) rest+=("$arg") ;;
  esac
done
[ ${#accounts[@]} -ge 1 ] || usage
parse_client_args "${rest[@]}"
[[ "$database" =~ ^[A-Za-z0-9_]{1,64}$ ]] ||
  die "the database name must be letters, digits and _ (got '$database')"

tables="$(run_mariadb -e "SELECT table_name FROM information_schema.tables
  WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE'
  ORDER BY table_name")" || die "could not list the tables of $database"
[ -n "$tables" ] || die "database $database has no tables (migrate first)"

statements=()
to="$(IFS=,; echo "${accounts[*]}")"
to="${to//,/, }"
while IFS= read -r table; do
  [[ "$table" =~ ^[A-Za-z0-9_]+$ ]] || die "unexpected table name '$table'"
  case "$table" in
    audit_events) privileges="SELECT, INSERT" ;;
    audit_chain_heads) privileges="SELECT, INSERT, UPDATE" ;;
    *) privileges="SELECT, INSERT, UPDATE, DELETE" ;;
  esac
  statements+=("GRANT $privileges ON \`$database\`.\`$table\` TO $to;")
done <<<"$tables"

printf '%s\n' "${statements[@]}"
printf '%s\n' "${statements[@]}" | run_mariadb ||
  die "granting failed (see the mariadb error above)"
