#!/usr/bin/python3
"""Revocation journal figures (docs/operations.md, "Restore figures"), each
a ratio against a baseline measured in the same run on the same database:

  export (one api_keys scan, printed)     vs  SELECT COUNT(*) of the same rows
  export --journal (merge into the file)  vs  export
  apply of a journal of --journal-lines   vs  loading the database's dump
                                              (the restore it follows)

Needs LUMO_TEST_MYSQL_DSN (admin DSN, e.g. `tools/dev/mariadb.sh admin-dsn`)
and a build (lumokeys-server for the migrations). Creates and drops its own
database.

    tools/bench/journal_bench.py [--keys 100000] [--changed 10000]
                                 [--journal-lines 100000] [--repeat 3]
"""
import argparse
import os
import secrets
import statistics
import string
import subprocess
import sys
import tempfile
import time
import urllib.parse

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TOOL = os.path.join(ROOT, "tools", "ops", "revocation_journal.sh")
BASE62 = string.digits + string.ascii_letters


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--keys", type=int, default=100000)
    p.add_argument("--changed", type=int, default=10000)
    p.add_argument("--journal-lines", type=int, default=100000)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    dsn = urllib.parse.urlsplit(os.environ["LUMO_TEST_MYSQL_DSN"])
    binary_dir = os.environ.get("LUMO_BINARY_DIR", os.path.join(ROOT, "build"))
    db = "lumo_journal_bench_" + secrets.token_hex(4)
    client = ["--no-defaults", f"-h{dsn.hostname}", f"-P{dsn.port or 3306}",
              f"-u{urllib.parse.unquote(dsn.username)}"]
    env = dict(os.environ, MYSQL_PWD=urllib.parse.unquote(dsn.password or ""))

    def mariadb(sql=None, stdin=None, database=db):
        cmd = ["mariadb", *client, "--batch", "--skip-column-names"]
        if sql is not None:
            cmd += ["-e", sql]
        if database:
            cmd.append(database)
        return subprocess.run(cmd, input=stdin, env=env, check=True,
                              capture_output=True, text=True).stdout

    def timed(fn):
        samples = []
        for _ in range(args.repeat):
            start = time.monotonic()
            fn()
            samples.append(time.monotonic() - start)
        return statistics.median(samples)

    base = f"mysql://{dsn.netloc}/"
    subprocess.run([os.path.join(binary_dir, "server", "lumokeys-server"),
                    "migrate", f"--mysql={base}{db}",
                    f"--migrations_dir={os.path.join(ROOT, 'sql', 'migrations')}"],
                   check=True, capture_output=True)
    work = tempfile.mkdtemp(prefix="journal-bench-")
    try:
        # Keys, all unchanged in the dump (the backup); then the first
        # --changed ones change (a third each rotated, revoked, deleted).
        ids = ["".join(secrets.choice(BASE62) for _ in range(12))
               for _ in range(args.keys)]
        sql = ["INSERT INTO tenants (id, slug, name, created_at) VALUES "
               "(1, 'bench', 'bench', UTC_TIMESTAMP(6));"]
        for i in range(0, len(ids), 1000):
            sql.append(
                "INSERT INTO api_keys (id, tenant_id, name, digest,"
                " pepper_version, scopes, allowed_cidrs, created_by_type,"
                " created_by_id, created_at) VALUES " + ",".join(
                    f"('{k}',1,'k',RANDOM_BYTES(32),1,'admin:read','',"
                    "'user','u',UTC_TIMESTAMP(6))" for k in ids[i:i + 1000])
                + ";")
        mariadb(stdin="\n".join(sql))
        dump = subprocess.run(["mysqldump", *client, "--single-transaction",
                               "--hex-blob", db], env=env, check=True,
                              capture_output=True, text=True).stdout
        changes = {
            "version = 2": ids[0:args.changed:3],
            "version = 2, revoked = 1, revoked_at = UTC_TIMESTAMP(6)":
                ids[1:args.changed:3],
            "version = 2, deleted_at = UTC_TIMESTAMP(6)":
                ids[2:args.changed:3],
        }
        sql = []
        for assignment, changed in changes.items():
            for i in range(0, len(changed), 1000):
                sql.append(f"UPDATE api_keys SET {assignment} WHERE id IN ("
                           + ",".join(f"'{k}'" for k in changed[i:i + 1000])
                           + ");")
        mariadb(stdin="\n".join(sql))

        def tool(*a, stdin=None):
            return subprocess.run([TOOL, *a, *client, db], input=stdin,
                                  env=env, check=True, capture_output=True,
                                  text=True).stdout

        scan = timed(lambda: mariadb(
            "SELECT COUNT(*) FROM api_keys WHERE version > 1"))
        export_text = tool("export")
        export = timed(lambda: tool("export"))
        journal_file = os.path.join(work, "keys.journal")
        tool("export", f"--journal={journal_file}")
        merge = timed(lambda: tool("export", f"--journal={journal_file}"))
        lines_per_export = export_text.count("\n")
        copies = -(-args.journal_lines // lines_per_export)
        journal = export_text * copies
        restore = timed(lambda: mariadb(stdin=dump))

        apply_samples = []
        for _ in range(args.repeat):
            mariadb(stdin=dump)  # each apply follows a fresh restore
            start = time.monotonic()
            applied = tool("apply", stdin=journal)
            apply_samples.append(time.monotonic() - start)
        apply = statistics.median(apply_samples)
        print(f"database: {args.keys} keys, {args.changed} changed; "
              f"median of {args.repeat}")
        print(f"{'measure':44} {'seconds':>8} {'ratio':>7}  baseline")
        print(f"{'SELECT COUNT(*) ... WHERE version > 1':44} {scan:8.3f}")
        print(f"{'export (stdout)':44} {export:8.3f} {export / scan:7.1f}  "
              "the COUNT(*) scan")
        print(f"{'export --journal (merge, compacted file)':44} {merge:8.3f} "
              f"{merge / export:7.1f}  export")
        print(f"{'restore (mariadb < dump)':44} {restore:8.3f}")
        print(f"{f'apply, {journal.count(chr(10))}-line journal':44} "
              f"{apply:8.3f} {apply / restore:7.2f}  the restore")
        print("apply said: " + applied.strip().replace("\n", " / "))
    finally:
        mariadb(f"DROP DATABASE IF EXISTS `{db}`", database=None)
        subprocess.run(["rm", "-rf", work], check=False)


if __name__ == "__main__":
    sys.exit(main())
