# Sourced by tools/dev/mariadb.sh and tools/dev/galera.sh: the admin account
# for migrations, bootstrap and tests, reachable over TCP on loopback.
#
#   lumo_ensure_admin SOCKET SECRETS_DIR
# creates (or updates) 'lumo_admin'@'127.0.0.1' and @'localhost' with every
# privilege, through the root account on SOCKET; the password is generated
# once into SECRETS_DIR/mysql-admin.password.

lumo_ensure_admin() {
  local socket="$1" secrets_dir="$2"
  mkdir -p "$secrets_dir"; chmod 700 "$secrets_dir"
  local pw_file="$secrets_dir/mysql-admin.password"
  if [ ! -s "$pw_file" ]; then
    (umask 077; head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$pw_file")
  fi
  local pw; pw="$(cat "$pw_file")"
  mariadb --no-defaults --socket="$socket" -uroot <<SQL
CREATE USER IF NOT EXISTS 'lumo_admin'@'127.0.0.1' IDENTIFIED BY '$pw';
CREATE USER IF NOT EXISTS 'lumo_admin'@'localhost' IDENTIFIED BY '$pw';
ALTER USER 'lumo_admin'@'127.0.0.1' IDENTIFIED BY '$pw';
ALTER USER 'lumo_admin'@'localhost' IDENTIFIED BY '$pw';
GRANT ALL PRIVILEGES ON *.* TO 'lumo_admin'@'127.0.0.1' WITH GRANT OPTION;
GRANT ALL PRIVILEGES ON *.* TO 'lumo_admin'@'localhost' WITH GRANT OPTION;
SQL
}
