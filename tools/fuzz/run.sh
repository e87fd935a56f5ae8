#!/usr/bin/env bash
# Runs one libFuzzer target (tests/fuzz/<target>.cc) for <seconds>.
#
#   tools/fuzz/run.sh <target> <seconds>       long run: builds if needed,
#       keeps what it learns in run/fuzz/<target>/ (the committed seeds in
#       tests/fuzz/corpus/<target>/ are read, never written); a finding is
#       saved as run/fuzz/<target>/crash-* — fix it and add the input to the
#       seed corpus as a regression.
#   tools/fuzz/run.sh --ci <target> <seconds>  the suite's short run (ctest):
#       never builds, scratch corpus in a temporary dir, every seed replayed
#       first, a finding is printed (base64) and fails the run.
#
# Prints the executions and findings. Exit status 0 means no finding.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CI=0
if [ "${1:-}" = "--ci" ]; then CI=1; shift; fi
if [ $# -ne 2 ]; then
  echo "usage: $0 [--ci] <target> <seconds>" >&2
  exit 2
fi
TARGET="$1"
SECONDS_TO_RUN="$2"
BUILD_DIR="${LUMO_FUZZ_BUILD_DIR:-$ROOT/build-fuzz}"
BIN="$BUILD_DIR/tests/fuzz/$TARGET"
SEEDS="$ROOT/tests/fuzz/corpus/$TARGET"

if [ ! -x "$BIN" ]; then
  if [ "$CI" = 1 ]; then
    echo "$BIN is missing: build the fuzz targets with tools/fuzz/build.sh" \
         "(tools/dev/test.sh does)" >&2
    exit 1
  fi
  "$ROOT/tools/fuzz/build.sh"
fi
if [ ! -d "$SEEDS" ]; then
  echo "no seed corpus at $SEEDS" >&2
  exit 1
fi

if [ "$CI" = 1 ]; then
  WORK="$(mktemp -d)"
  trap 'rm -rf "$WORK"' EXIT
else
  WORK="$ROOT/run/fuzz/$TARGET"
fi
mkdir -p "$WORK/corpus"
LOG="$WORK/fuzz.log"
# Findings of this run only (older crash-* files may be left from before).
STAMP="$WORK/.started"
touch "$STAMP"

export ASAN_OPTIONS="${ASAN_OPTIONS:-halt_on_error=1:detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
status=0
# New inputs go to the first directory; the seeds are only read.
"$BIN" -max_total_time="$SECONDS_TO_RUN" -timeout=10 -rss_limit_mb=2048 \
  -max_len=12000 -print_final_stats=1 -artifact_prefix="$WORK/" \
  "$WORK/corpus" "$SEEDS" >"$LOG" 2>&1 || status=$?

execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$LOG" | tail -1)"
findings="$(find "$WORK" -maxdepth 1 -newer "$STAMP" \( -name 'crash-*' -o -name 'leak-*' \
  -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)"
seeds="$(find "$SEEDS" -type f | wc -l)"
echo "fuzz $TARGET: ${execs:-?} executions in ${SECONDS_TO_RUN} s," \
     "$seeds seeds, $findings findings, exit $status"
if [ "$status" != 0 ] || [ "$findings" != 0 ]; then
  tail -n 60 "$LOG"
  for f in "$WORK"/crash-* "$WORK"/leak-* "$WORK"/timeout-* "$WORK"/oom-*; do
    [ -f "$f" ] && [ "$f" -nt "$STAMP" ] || continue
    echo "finding $f (base64):"
    base64 -w0 "$f"
    echo
  done
  [ "$status" != 0 ] || status=1
fi
exit $status
