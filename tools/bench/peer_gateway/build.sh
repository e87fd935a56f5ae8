#!/usr/bin/env bash
# Builds the benchmark's peer gateway (main.go: grpc-gateway's reverse proxy
# over KeyService) with Debian's Go toolchain, GOPATH mode, no module
# download:
# - Go stubs of lumo/keys/v1/keys.proto from protoc-gen-go and
#   protoc-gen-go-grpc (as client/go/build.sh);
# - the reverse proxy from Debian's protoc-gen-grpc-gateway (generate.py);
# - its runtime library from Debian's golang-github-grpc-ecosystem-grpc-
#   gateway-dev, fetched with `apt-get download` and unpacked under <out>,
#   not installed: installing it would replace the protobuf Go library and
#   remove protoc-gen-go, which the Go client needs;
# - genproto's field_mask package as an alias of the protobuf library's
#   FieldMask (field_mask_alias.go.in), first on GOPATH.
# Writes <out>/bin/peer_gateway. Usage: build.sh <out dir>
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
OUT="${1:?usage: build.sh <out dir>}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
GOOGLEAPIS="${LUMO_GOOGLEAPIS_PROTO_DIR:-/usr/share/gocode/src/github.com/gogo/googleapis}"
RUNTIME_PKG=golang-github-grpc-ecosystem-grpc-gateway-dev

if [ ! -d "$OUT/runtime/usr/share/gocode/src/github.com/grpc-ecosystem" ]; then
  rm -rf "$OUT/deb" "$OUT/runtime"
  mkdir -p "$OUT/deb"
  (cd "$OUT/deb" && apt-get download -q -o APT::Sandbox::User=root "$RUNTIME_PKG" >/dev/null)
  dpkg-deb -x "$OUT"/deb/"$RUNTIME_PKG"_*.deb "$OUT/runtime"
fi

rm -rf "$OUT/src" "$OUT/bin"
mkdir -p "$OUT/src/lumopeer/cmd/peer_gateway" "$OUT/bin" \
  "$OUT/src/google.golang.org/genproto/protobuf/field_mask"
cp "$HERE/main.go" "$OUT/src/lumopeer/cmd/peer_gateway/"
cp "$HERE/field_mask_alias.go.in" \
  "$OUT/src/google.golang.org/genproto/protobuf/field_mask/field_mask.go"
PKG=lumopeer/lumo/keys/v1
MAP="Mlumo/keys/v1/keys.proto=$PKG;lumo_keys_v1"
MAP+=",Mlumo/api/annotations.proto=lumopeer/lumo/api;api"
MAP+=",Mgoogle/api/annotations.proto=google.golang.org/genproto/googleapis/api/annotations"
MAP+=",Mgoogle/api/http.proto=google.golang.org/genproto/googleapis/api/annotations"
protoc --proto_path="$ROOT/proto" --proto_path="$GOOGLEAPIS" \
  --go_out="$OUT/src" --go_opt="$MAP" \
  --go-grpc_out="$OUT/src" --go-grpc_opt="$MAP" \
  lumo/keys/v1/keys.proto lumo/api/annotations.proto
protoc --proto_path="$ROOT/proto" --proto_path="$GOOGLEAPIS" \
  --include_imports --descriptor_set_out="$OUT/keys.pb" lumo/keys/v1/keys.proto
# Written as <import path>/keys.pb.gw.go, beside the stubs.
/usr/bin/python3 "$HERE/generate.py" "$OUT/keys.pb" "$OUT/src" "$PKG"

export GO111MODULE=off GOPROXY=off GOFLAGS= \
  GOPATH="$OUT:/usr/share/gocode:$OUT/runtime/usr/share/gocode" \
  GOCACHE="$OUT/gocache"
go build -o "$OUT/bin/peer_gateway" lumopeer/cmd/peer_gateway
echo "built $OUT/bin/peer_gateway"
