#!/usr/bin/env bash
# Installs every Debian package the build, the dev set-up and the tests need.
# Idempotent: only runs apt-get when something is missing. Needs root.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config git curl ca-certificates
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  # The standard google/api/{annotations,http}.proto our routes are declared
  # with (proto/CMakeLists.txt: LUMO_GOOGLEAPIS_PROTO_DIR).
  golang-github-gogo-googleapis-dev
  # protoc-gen-swagger, for the route interop test (annotations_interop_test).
  golang-grpc-gateway
  # The gRPC reflection protocol's proto (reflection test) and the Go
  # client's libraries and generators (client/go/build.sh).
  golang-google-grpc-dev golang-go golang-google-protobuf-dev
  protoc-gen-go protoc-gen-go-grpc golang-github-golang-protobuf-1-5-dev
  libabsl-dev libmysqlcppconn-dev libssl-dev android-libboringssl-dev
  # MariaDB's C client headers: one benchmark baseline calls it directly.
  libmariadb-dev
  libboost-dev libgtest-dev libgmock-dev
  mariadb-server mariadb-client
  # The three-node Galera harness (tools/dev/galera.sh): the wsrep provider,
  # and rsync + ss for its state transfers.
  galera-4 rsync iproute2
  # mariabackup, for the physical backup walk-through (docs/operations.md).
  mariadb-backup
  python3 python3-grpcio python3-protobuf
  wrk
  openssl
  # libFuzzer targets and sanitizer builds (tests/fuzz, tools/dev/sanitize.sh)
  clang libclang-rt-14-dev
  # The browser the portal tests drive (playwright-core).
  chromium
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# Node.js may come from elsewhere than Debian (it bundles npm then); only
# install Debian's when there is no npm at all.
if ! command -v npm >/dev/null 2>&1; then missing+=(nodejs npm); fi
if [ "${#missing[@]}" -eq 0 ]; then exit 0; fi

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
echo "installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian's mariadb-server package may try to start the system service; the
# project never uses it (tools/dev/mariadb.sh runs a private instance).
