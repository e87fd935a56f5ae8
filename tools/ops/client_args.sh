# Client options of the tools/ops scripts, sourced by them (not run).
#
# parse_client_args "[client options] DATABASE" sets the array `client` (the
# options for the mariadb client, option-file options first: the client
# accepts them only there) and `database` (the last argument). A password on
# the command line (-pSECRET, --password=..., --pass=...) is refused: every
# user on the host sees it in `ps`; use an option file
# (--defaults-extra-file=FILE, mode 0600) or MYSQL_PWD. The caller defines
# `usage` and `die MESSAGE...`.

parse_client_args() {
  [ $# -ge 1 ] || usage
  database="${!#}"
  case "$database" in
    -*|"") die "the last argument must be the database name (got '$database')" ;;
  esac
  local defaults=() rest=() arg
  for arg in "${@:1:$#-1}"; do
    case "$arg" in
      --no-defaults | --defaults-file=* | --defaults-extra-file=* | \
        --defaults-group-suffix=*)
        defaults+=("$arg") ;;
      -p?* | --password=* | --pass=*)
        die "refusing a password on the command line (visible in ps); use" \
          "--defaults-extra-file=FILE (mode 0600, [client] password=...)" \
          "or MYSQL_PWD" ;;
      *) rest+=("$arg") ;;
    esac
  done
  client=("${defaults[@]}" "${rest[@]}")
}

# Runs the mariadb client on `database` with the parsed options, tab-separated
# output without column names.
run_mariadb() {
  mariadb "${client[@]}" --batch --skip-column-names "$database" "$@"
}
