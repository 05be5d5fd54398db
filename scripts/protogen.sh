#!/usr/bin/env bash
# Regenerates the chain's protobuf Go code (committed; `make generate` runs
# this and CI checks the result is unchanged). Plugins are pinned Go tools
# in go.mod; protoc comes from Debian (protobuf-compiler); third-party
# .proto includes come from the Go module cache at the versions go.mod pins.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v protoc >/dev/null || { echo "protoc missing: apt-get install -y protobuf-compiler libprotobuf-dev" >&2; exit 1; }
moddir() { go list -m -f '{{.Dir}}' "$1"; }
go mod download github.com/cosmos/cosmos-sdk github.com/cosmos/gogoproto github.com/cosmos/cosmos-proto github.com/grpc-ecosystem/grpc-gateway
SDK=$(moddir github.com/cosmos/cosmos-sdk)
GOGO=$(moddir github.com/cosmos/gogoproto)
CPROTO=$(moddir github.com/cosmos/cosmos-proto)
GW=$(moddir github.com/grpc-ecosystem/grpc-gateway)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/bin"
for tool in github.com/cosmos/gogoproto/protoc-gen-gocosmos \
            github.com/cosmos/cosmos-proto/cmd/protoc-gen-go-pulsar \
            github.com/grpc-ecosystem/grpc-gateway/protoc-gen-grpc-gateway; do
  go build -o "$tmp/bin/$(basename "$tool")" "$tool"
done
export PATH="$tmp/bin:$PATH"

includes=(-I chain/proto -I "$SDK/proto" -I "$GOGO" -I "$CPROTO/proto" -I "$GW/third_party/googleapis" -I /usr/include)
files=$(find chain/proto -name '*.proto' | sort)
mod=github.com/highway-compute/highway
mkdir -p "$tmp/gogo" "$tmp/pulsar"

# gogoproto types, gRPC services and the REST gateway, into x/escrow/types.
protoc "${includes[@]}" \
  --gocosmos_out="plugins=grpc,Mgoogle/protobuf/any.proto=github.com/cosmos/gogoproto/types/any:$tmp/gogo" \
  --grpc-gateway_out="logtostderr=true,allow_colon_final_segments=true:$tmp/gogo" \
  $files
rm -f chain/x/escrow/types/*.pb.go chain/x/escrow/types/*.pb.gw.go
mkdir -p chain/x/escrow/types
cp "$tmp/gogo/$mod/chain/x/escrow/types/"* chain/x/escrow/types/

# Pulsar (google.golang.org/protobuf API) into chain/api: registers the
# descriptors with protoregistry for autocli and x/tx signing. Cosmos
# dependencies map to cosmossdk.io/api so no gogo types leak in.
pulsar_opts="paths=import"
for f in $(cd chain/proto && find highway -name '*.proto' | sort); do
  pulsar_opts+=",M$f=$mod/chain/api/$(dirname "$f");$(basename "$(dirname "$(dirname "$f")")")$(basename "$(dirname "$f")")"
done
pulsar_opts+=",Mcosmos/msg/v1/msg.proto=cosmossdk.io/api/cosmos/msg/v1;msgv1"
pulsar_opts+=",Mcosmos/base/query/v1beta1/pagination.proto=cosmossdk.io/api/cosmos/base/query/v1beta1;queryv1beta1"
pulsar_opts+=",Mamino/amino.proto=cosmossdk.io/api/amino;amino"
pulsar_opts+=",Mgogoproto/gogo.proto=github.com/cosmos/gogoproto/gogoproto;gogoproto"
pulsar_opts+=",Mcosmos_proto/cosmos.proto=github.com/cosmos/cosmos-proto;cosmos_proto"
pulsar_opts+=",Mgoogle/api/annotations.proto=google.golang.org/genproto/googleapis/api/annotations;annotations"
protoc "${includes[@]}" --go-pulsar_out="$pulsar_opts:$tmp/pulsar" $files
rm -rf chain/api
mkdir -p chain/api
cp -r "$tmp/pulsar/$mod/chain/api/." chain/api/
gofmt -w chain/x/escrow/types/*.pb*.go chain/api
echo "protobuf code regenerated"
