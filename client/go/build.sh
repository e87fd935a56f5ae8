#!/usr/bin/env bash
# Builds the Go client and its example service with Debian's Go toolchain
# and libraries (golang-go, golang-google-grpc-dev,
# golang-google-protobuf-dev; GOPATH mode over /usr/share/gocode, no
# network), after generating the stubs with protoc-gen-go and
# protoc-gen-go-grpc. Everything is written under <out dir>:
#   <out>/src/lumokeysgen/...   generated stubs (import lumokeysgen/lumo/...)
#   <out>/bin/hello_service     the example service
# Usage: client/go/build.sh <out dir>
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
OUT="${1:?usage: build.sh <out dir>}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
rm -rf "$OUT/src" "$OUT/bin"
mkdir -p "$OUT/src/lumokeysgen" "$OUT/bin"
ln -s "$HERE/lumokeys" "$OUT/src/lumokeys"
ln -s "$HERE/examples" "$OUT/src/lumokeys-examples"

PROTOS=(lumo/api/annotations.proto lumo/auth/v1/auth.proto)
MAP=(--go_opt=Mlumo/api/annotations.proto='lumokeysgen/lumo/api;api'
     --go_opt=Mlumo/auth/v1/auth.proto='lumokeysgen/lumo/auth/v1;authv1'
     --go-grpc_opt=Mlumo/api/annotations.proto='lumokeysgen/lumo/api;api'
     --go-grpc_opt=Mlumo/auth/v1/auth.proto='lumokeysgen/lumo/auth/v1;authv1')
protoc --proto_path="$ROOT/proto" \
  --go_out="$OUT/src" --go-grpc_out="$OUT/src" "${MAP[@]}" "${PROTOS[@]}"

export GO111MODULE=off GOPROXY=off GOFLAGS= \
  GOPATH="$OUT:/usr/share/gocode" GOCACHE="$OUT/gocache"
go build -o "$OUT/bin/hello_service" lumokeys-examples/hello_service
echo "built $OUT/bin/hello_service"
