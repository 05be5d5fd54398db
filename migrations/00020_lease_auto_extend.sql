-- +goose Up
-- Auto-extend: while on (hours > 0), the leader extends the lease by that
-- many hours shortly before it ends, as long as the buyer's wallet would
-- still hold at least the floor (uhwy) afterwards (broker/autoextend.go).
-- The note says what the last attempt did, for the lease page.
ALTER TABLE leases ADD COLUMN auto_extend_hours BIGINT NOT NULL DEFAULT 0;
ALTER TABLE leases ADD COLUMN auto_extend_floor BIGINT NOT NULL DEFAULT 0;
ALTER TABLE leases ADD COLUMN auto_extend_note TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE leases DROP COLUMN auto_extend_note;
ALTER TABLE leases DROP COLUMN auto_extend_floor;
ALTER TABLE leases DROP COLUMN auto_extend_hours;
