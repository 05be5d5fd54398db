# syntax=docker/dockerfile:1
# Multi-stage: one build stage, one small non-root target per binary.
#   docker build --target highway        -t highway .
#   docker build --target highwayd       -t highwayd .
#   docker build --target provider-agent -t provider-agent .

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# The marketplace is pure Go (SQLite through glebarez/sqlite), so it links
# statically and runs on a distroless base with no libc.
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/highway ./cmd/highway \
 && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/highwayd ./cmd/highwayd \
 && CGO_ENABLED=1 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/provider-agent ./cmd/provider-agent \
 && mkdir -p /out/data /out/chain /out/agent

FROM gcr.io/distroless/static-debian12:nonroot AS highway
# Templates and static assets are embedded: the binary is all it needs.
COPY --from=build /out/highway /usr/local/bin/highway
COPY --from=build --chown=nonroot:nonroot /out/data /data
WORKDIR /data
ENV HIGHWAY_LISTEN=:8080 \
    HIGHWAY_DATABASE=/data/highway.db \
    HIGHWAY_LOG_FORMAT=json
USER nonroot:nonroot
EXPOSE 8080
VOLUME ["/data"]
ENTRYPOINT ["/usr/local/bin/highway"]
CMD ["serve"]

FROM gcr.io/distroless/static-debian12:nonroot AS highwayd
# The chain node: pure Go (goleveldb, pure-Go secp256k1), static.
COPY --from=build /out/highwayd /usr/local/bin/highwayd
COPY --from=build --chown=nonroot:nonroot /out/chain /chain
ENV HIGHWAYD_HOME=/chain
USER nonroot:nonroot
# P2P, RPC, gRPC, REST.
EXPOSE 26656 26657 9090 1317
VOLUME ["/chain"]
ENTRYPOINT ["/usr/local/bin/highwayd"]
CMD ["start", "--home", "/chain"]

FROM gcr.io/distroless/base-debian12:nonroot AS provider-agent
# go-nvml loads libnvidia-ml.so at run time (cgo, glibc): the NVIDIA
# Container Toolkit mounts it into the container (docker run --gpus all).
COPY --from=build /out/provider-agent /usr/local/bin/provider-agent
COPY --from=build --chown=nonroot:nonroot /out/agent /agent
ENV HIGHWAY_STATE_DIR=/agent
USER nonroot:nonroot
VOLUME ["/agent"]
ENTRYPOINT ["/usr/local/bin/provider-agent"]
CMD ["run"]
