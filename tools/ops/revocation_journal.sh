#!/usr/bin/env bash
# Revocation journal: keeps a restore from bringing back keys that were
# revoked, rotated or deleted after the backup was taken
# (docs/operations.md, "Backups and restores").
#
#   revocation_journal.sh export [--journal=FILE] [client options] DATABASE
#       Reads the state of every key that ever changed (api_keys.version > 1)
#       and prints one journal line per key; with --journal=FILE merges the
#       lines into FILE instead (created mode 0600, rewritten compacted and
#       atomically, under a lock on FILE.lock). Run it often (every minute)
#       and keep FILE off the database host and out of its backups.
#   revocation_journal.sh compact [FILE...]
#       Prints the latest state per key of the journal(s) (stdin without
#       FILE): one line per key, ordered by key id.
#   revocation_journal.sh apply [client options] DATABASE < JOURNAL
#       After restoring a backup and BEFORE starting any server: makes every
#       key at least as dead as the journal knows it (deleted stays deleted,
#       revoked stays revoked; a key whose restored version is below the
#       journal's is revoked, because the backup holds an outdated secret
#       digest). Writes one change-feed row per key it changes. Prints what
#       it did; running it again changes nothing.
#
# Journal line: <key id> TAB <version> TAB <state>, state `rotated` (alive,
# secret replaced), `revoked` or `deleted`; a line without state (the first
# format) counts as `rotated`. Lines repeat and come in any order; a key's
# latest state is its line with the highest version (at equal versions the
# deadest state). A journal with a malformed line is refused as a whole,
# naming the line.
#
# Client options go to the mariadb client; put the password in an option
# file (--defaults-extra-file=F, mode 0600) or MYSQL_PWD. A password on the
# command line is refused: every user on the host sees it in `ps`. Needs
# SELECT on api_keys (export) and SELECT/UPDATE on api_keys plus INSERT on
# key_changes and CREATE TEMPORARY TABLES (apply).
set -euo pipefail
umask 077

usage() {
  sed -n '2,34p' "$0" >&2
  exit 2
}

die() {
  echo "revocation_journal.sh: $*" >&2
  exit 1
}

# Scratch files (they hold journal lines) live in one private directory,
# removed on exit; `merged` is the journal's replacement while it is built.
work="$(mktemp -d "${TMPDIR:-/tmp}/revocation_journal.XXXXXX")"
merged=""
cleanup() {
  rm -rf -- "$work"
  if [ -n "$merged" ]; then rm -f -- "$merged"; fi
}
trap cleanup EXIT

# parse_client_args, run_mariadb.
. "$(dirname -- "${BASH_SOURCE[0]}")/client_args.sh"

# Validates journal lines and prints the latest state per key, ordered by
# key id. Exits 1 naming the first malformed line (file and line number,
# never its content).
compact() {
  LC_ALL=C awk -F '\t' '
    function newer(v, s, id) {
      if (!(id in version)) return 1
      if (length(v) != length(version[id])) return length(v) > length(version[id])
      if ((v "") != (version[id] "")) return (v "") > (version[id] "")
      return rank[s] > rank[state[id]]
    }
    BEGIN { rank["rotated"] = 1; rank["revoked"] = 2; rank["deleted"] = 3 }
    FNR == 1 { name = (FILENAME == "" || FILENAME == "-") ? "stdin" : FILENAME }
    $0 == "" { next }
    {
      s = (NF == 2) ? "rotated" : $3
      if ((NF != 2 && NF != 3) || length($1) != 12 || $1 ~ /[^0-9A-Za-z]/ ||
          $2 !~ /^[1-9][0-9]*$/ || length($2) > 18 || !(s in rank)) {
        printf "%s line %d: expected <12-character key id> TAB <version> TAB rotated|revoked|deleted\n", name, FNR > "/dev/stderr"
        failed = 1
        exit 1
      }
      if (newer($2, s, $1)) { version[$1] = $2; state[$1] = s }
    }
    END {
      if (failed) exit 1
      for (id in version) printf "%s\t%s\t%s\n", id, version[id], state[id]
    }' "$@" | LC_ALL=C sort
  return "${PIPESTATUS[0]}"
}

export_state() {
  run_mariadb -e "SELECT id, version,
      CASE WHEN deleted_at IS NOT NULL THEN 'deleted'
           WHEN revoked = 1 THEN 'revoked' ELSE 'rotated' END
    FROM api_keys WHERE version > 1 ORDER BY id"
}

cmd_export() {
  local journal="" arg rest=()
  for arg in "$@"; do
    case "$arg" in
      --journal=*) journal="${arg#--journal=}" ;;
      *) rest+=("$arg") ;;
    esac
  done
  parse_client_args "${rest[@]}"
  # The whole export first: a failed query never leaves half a line.
  local state="$work/state"
  export_state >"$state" || die "export failed (see the mariadb error above)"
  if [ -z "$journal" ]; then
    cat "$state"
    return
  fi
  local dir
  dir="$(dirname -- "$journal")"
  [ -d "$dir" ] || die "$dir: no such directory"
  exec 9>>"$journal.lock"
  flock 9
  merged="$(mktemp "$dir/.$(basename -- "$journal").XXXXXX")"
  local sources=("$state")
  [ -e "$journal" ] && sources=("$journal" "$state")
  compact "${sources[@]}" >"$merged" || die "$journal was left unchanged"
  chmod 600 "$merged"
  sync "$merged"
  mv -f -- "$merged" "$journal"
  sync "$dir"
}

cmd_apply() {
  parse_client_args "$@"
  local latest="$work/latest" sql="$work/apply.sql"
  compact >"$latest" || die "journal refused; nothing was changed"
  # The journal is validated (ids base62, versions digits, states from a
  # fixed set), so its values can be spelled as SQL literals. Rows go in
  # batches through stdin: no argument-size limit, no LOCAL INFILE.
  {
    cat <<'SQL'
CREATE TEMPORARY TABLE revocation_journal (
  id CHAR(12) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL PRIMARY KEY,
  version BIGINT NOT NULL,
  state VARCHAR(8) CHARACTER SET ascii COLLATE ascii_bin NOT NULL);
CREATE TEMPORARY TABLE revocation_changes (
  id CHAR(12) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL PRIMARY KEY,
  tenant_id BIGINT NOT NULL,
  change_type VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  version BIGINT NOT NULL);
SQL
    awk -F '\t' '
      { printf "%s('\''%s'\'',%s,'\''%s'\'')", (NR % 1000 == 1) ? "INSERT INTO revocation_journal VALUES " : ",", $1, $2, $3 }
      NR % 1000 == 0 { print ";" }
      END { if (NR % 1000 != 0) print ";" }' "$latest"
    cat <<'SQL'
START TRANSACTION;
-- Deleted in the journal: deleted here. Revoked in the journal, or changed
-- after the backup (restored version below the journal's): revoked here.
INSERT INTO revocation_changes
  SELECT k.id, k.tenant_id,
         IF(j.state = 'deleted', 'deleted', 'revoked'),
         GREATEST(k.version, j.version) + 1
    FROM api_keys k JOIN revocation_journal j ON k.id = j.id
   WHERE k.deleted_at IS NULL
     AND (j.state = 'deleted'
          OR (k.revoked = 0 AND (j.state = 'revoked' OR k.version < j.version)));
UPDATE api_keys k JOIN revocation_changes c ON k.id = c.id
   SET k.deleted_at = IF(c.change_type = 'deleted', UTC_TIMESTAMP(6), k.deleted_at),
       k.revoked = IF(c.change_type = 'revoked', 1, k.revoked),
       k.revoked_at = IF(c.change_type = 'revoked',
                         COALESCE(k.revoked_at, UTC_TIMESTAMP(6)), k.revoked_at),
       k.version = c.version;
INSERT INTO key_changes (tenant_id, key_id, change_type, key_version, created_at)
  SELECT tenant_id, id, change_type, version, UTC_TIMESTAMP(6)
    FROM revocation_changes ORDER BY id;
COMMIT;
SELECT CONCAT('revoked ', COUNT(CASE WHEN change_type = 'revoked' THEN 1 END),
              ' key(s) and deleted ', COUNT(CASE WHEN change_type = 'deleted' THEN 1 END),
              ' key(s) changed after the backup')
  FROM revocation_changes;
SELECT CONCAT('journal: ', COUNT(*), ' key(s); ',
              COUNT(CASE WHEN k.id IS NULL THEN 1 END),
              ' not in this database (created after the backup)')
  FROM revocation_journal j LEFT JOIN api_keys k ON k.id = j.id;
SQL
  } >"$sql"
  run_mariadb <"$sql" || die "apply failed (see the mariadb error above);" \
    "its transaction was rolled back, nothing was changed"
}

[ $# -ge 1 ] || usage
mode="$1"
shift
case "$mode" in
  export) cmd_export "$@" ;;
  compact) compact "$@" ;;
  apply) cmd_apply "$@" ;;
  *) usage ;;
esac
