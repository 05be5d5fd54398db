-- +goose Up
-- Forwarded ports (broker/forward.go): an HTTP port of a lease's workload
-- its buyer reaches at https://<slug>.<ports domain>/. The slug is random
-- and names the forward's own origin; a port is forwarded once at a time
-- per lease. Closed forwards stay as the lease's record.
CREATE TABLE port_forwards (
    id           TEXT PRIMARY KEY,
    lease_id     TEXT NOT NULL REFERENCES leases (id),
    user_id      TEXT NOT NULL REFERENCES users (id),
    port         INTEGER NOT NULL,
    slug         TEXT NOT NULL UNIQUE,
    created_at   TIMESTAMP NOT NULL,
    closed_at    TIMESTAMP NULL,
    close_reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX port_forwards_lease_idx ON port_forwards (lease_id, created_at);
CREATE UNIQUE INDEX port_forwards_open_idx ON port_forwards (lease_id, port) WHERE closed_at IS NULL;

-- +goose Down
DROP TABLE port_forwards;
