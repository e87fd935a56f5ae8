#!/usr/bin/env bash
# The whole test suite under AddressSanitizer + UndefinedBehaviorSanitizer
#. Not part of the normal test command: an instrumented
# build of everything plus the suite takes far longer than its budget.
#
#   tools/dev/sanitize.sh [ctest args...]
#
# Configures ./build-asan (g++, or $LUMO_SANITIZE_CXX) with
# -fsanitize=address,undefined and -fno-sanitize-recover=undefined (a UB
# finding fails the process, so the test fails), builds it (-j2), starts a
# private MariaDB (run/asan, port $LUMO_SANITIZE_MYSQL_PORT, default 3309),
# runs ctest (the fuzz entries excluded: they have their own clang build) and
# stops the database. Every sanitizer report of every process (also servers
# started by the Python tests, whose stderr is captured) is written under
# run/asan/reports/; the tool prints the test result and the number of
# reports, and fails if there is any. Leak checking is off by default
# (gRPC/protobuf keep process-lifetime allocations); LUMO_SANITIZE_LEAKS=1
# turns it on.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
start_time=$(date +%s)
BUILD_DIR="${LUMO_SANITIZE_BUILD_DIR:-$ROOT/build-asan}"
CXX_COMPILER="${LUMO_SANITIZE_CXX:-g++}"
C_COMPILER="${LUMO_SANITIZE_CC:-gcc}"
FLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"

tools/dev/deps.sh
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER="$C_COMPILER" -DCMAKE_CXX_COMPILER="$CXX_COMPILER" \
    "-DCMAKE_C_FLAGS=$FLAGS" "-DCMAKE_CXX_FLAGS=$FLAGS" \
    "-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=address,undefined" \
    "-DCMAKE_SHARED_LINKER_FLAGS=-fsanitize=address,undefined" >/dev/null
fi
cmake --build "$BUILD_DIR" -j"${LUMO_JOBS:-2}"
(cd tests/gateway/openapi && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
(cd tests/e2e/portal && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error >/dev/null)
# Instrumented processes are several times slower: tests that bound a wait
# scale it by this factor (tests/e2e/harness).
export LUMO_TEST_TIME_SCALE="${LUMO_TEST_TIME_SCALE:-4}"

export LUMO_RUN_DIR="$ROOT/run/asan"
export LUMO_MYSQL_PORT="${LUMO_SANITIZE_MYSQL_PORT:-3309}"
tools/dev/mariadb.sh stop || true
rm -rf "$LUMO_RUN_DIR"
tools/dev/mariadb.sh start
cleanup() { tools/dev/mariadb.sh stop || true; }
trap cleanup EXIT
LUMO_TEST_MYSQL_DSN="$(tools/dev/mariadb.sh admin-dsn)"
export LUMO_TEST_MYSQL_DSN

REPORTS="$LUMO_RUN_DIR/reports"
mkdir -p "$REPORTS"
leaks="${LUMO_SANITIZE_LEAKS:-0}"
export ASAN_OPTIONS="detect_leaks=$leaks:halt_on_error=1:abort_on_error=0:log_path=$REPORTS/asan:strict_string_checks=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$REPORTS/ubsan"
export LSAN_OPTIONS="log_path=$REPORTS/lsan"

status=0
ctest --test-dir "$BUILD_DIR" --output-on-failure -j2 --timeout 1800 \
  -E '^fuzz_' "$@" || status=$?

reports=$(find "$REPORTS" -type f | wc -l)
echo "sanitize: ctest exit $status, $reports sanitizer report file(s) in $REPORTS," \
     "took $(( $(date +%s) - start_time )) s"
for f in $(find "$REPORTS" -type f | head -20); do
  echo "== $f"; head -40 "$f"
done
if [ "$reports" != 0 ] && [ "$status" = 0 ]; then status=1; fi
exit $status
