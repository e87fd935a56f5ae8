#!/usr/bin/env bash
# Configures (once) and builds the libFuzzer targets (tests/fuzz) with clang
# and -fsanitize=fuzzer,address,undefined into ./build-fuzz (or
# $LUMO_FUZZ_BUILD_DIR). Only the fuzz targets and the libraries they need
# are built; the main build stays g++.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD_DIR="${LUMO_FUZZ_BUILD_DIR:-$ROOT/build-fuzz}"
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
    -DLUMO_FUZZ=ON -DLUMO_BORINGSSL_TESTS=OFF \
    "-DCMAKE_C_FLAGS=-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer" \
    "-DCMAKE_CXX_FLAGS=-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer" \
    "-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=address,undefined" >/dev/null
fi
cmake --build "$BUILD_DIR" -j"${LUMO_JOBS:-2}" --target lumo_fuzzers
