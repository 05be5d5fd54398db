# syntax=docker/dockerfile:1
# Multi-stage: one build stage, one small non-root target per binary.
#   docker build --target highway -t highway .
# Later binaries (highwayd, provider-agent) add their own targets.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# The marketplace is pure Go (SQLite through glebarez/sqlite), so it links
# statically and runs on a distroless base with no libc.
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/highway ./cmd/highway \
 && mkdir -p /out/data

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
