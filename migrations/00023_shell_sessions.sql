-- +goose Up
-- Shell sessions into leases' workloads (broker/shell.go): who opened
-- one, when, for how long and how much went through, shown on the lease
-- page to its buyer, its provider and admins.
CREATE TABLE shell_sessions (
    id         TEXT PRIMARY KEY,
    lease_id   TEXT NOT NULL REFERENCES leases (id),
    user_id    TEXT NOT NULL REFERENCES users (id),
    started_at TIMESTAMP NOT NULL,
    ended_at   TIMESTAMP NULL,
    bytes_in   BIGINT NOT NULL DEFAULT 0,
    bytes_out  BIGINT NOT NULL DEFAULT 0,
    end_reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX shell_sessions_lease_idx ON shell_sessions (lease_id, started_at);

-- +goose Down
DROP TABLE shell_sessions;
