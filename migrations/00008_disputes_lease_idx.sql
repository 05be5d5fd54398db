-- +goose Up
-- Every render of a lease page (and each live refresh of it) lists the
-- lease's disputes.
CREATE INDEX disputes_lease_idx ON disputes (lease_id, created_at);

-- +goose Down
DROP INDEX disputes_lease_idx;
