#!/usr/bin/env bash
# Revocation journal: keeps a restore from resurrecting revoked, rotated or
# deleted keys (docs/operations.md, "Backups and restores").
#
#   revocation_journal.sh export [mariadb client options] DATABASE >> JOURNAL
#       Appends one line `<key id>\t<version>` per key that was ever
#       changed (rotated, revoked or deleted: version > 1). Run it often
#       (e.g. every minute, systemd timer) and keep JOURNAL away from the
#       database and its backups (another host / bucket), append-only.
#   revocation_journal.sh apply [mariadb client options] DATABASE < JOURNAL
#       After restoring a backup and BEFORE starting any server: every key
#       whose restored version is below its highest journalled version was
#       changed after the backup was taken; it is revoked (and its version
#       moved past the journal's), because the backup holds an outdated
#       secret digest. Prints how many keys it revoked.
#
# The password comes from MYSQL_PWD or an option file, never the command
# line. Needs an account with SELECT (export) / UPDATE (apply) on api_keys.
set -euo pipefail

usage() {
  sed -n '2,20p' "$0" >&2
  exit 2
}
[ $# -ge 2 ] || usage
mode="$1"
shift
# Client options first (--no-defaults must lead), the database last.
database="${!#}"
client=("${@:1:$#-1}")
run_sql() {
  mariadb "${client[@]}" --batch --skip-column-names "$database" -e "$1"
}

case "$mode" in
  export)
    run_sql "SELECT id, version FROM api_keys WHERE version > 1 ORDER BY id"
    ;;
  apply)
    sql="CREATE TEMPORARY TABLE revocation_journal (
           id CHAR(12) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL
             PRIMARY KEY,
           version BIGINT NOT NULL);"
    line_number=0
    while IFS=$'\t' read -r id version rest; do
      line_number=$((line_number + 1))
      [ -z "$id" ] && continue
      # Key ids are 12 base62 characters, versions positive integers:
      # anything else is a corrupt journal, not something to run as SQL.
      if ! [[ "$id" =~ ^[0-9A-Za-z]{12}$ && "$version" =~ ^[0-9]{1,18}$ && -z "$rest" ]]; then
        echo "journal line $line_number: expected <12-character key id><TAB><version>" >&2
        exit 1
      fi
      sql+="INSERT INTO revocation_journal VALUES ('$id', $version)
            ON DUPLICATE KEY UPDATE version = GREATEST(version, VALUES(version));"
    done
    sql+="START TRANSACTION;
          SELECT COUNT(*) INTO @stale FROM api_keys k
            JOIN revocation_journal j ON k.id = j.id WHERE k.version < j.version;
          UPDATE api_keys k JOIN revocation_journal j ON k.id = j.id
             SET k.revoked = 1,
                 k.revoked_at = COALESCE(k.revoked_at, UTC_TIMESTAMP(6)),
                 k.version = j.version + 1
           WHERE k.version < j.version;
          COMMIT;
          SELECT CONCAT('revoked ', @stale, ' key(s) changed after the backup');"
    run_sql "$sql"
    ;;
  *)
    usage
    ;;
esac
