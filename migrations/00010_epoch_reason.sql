-- +goose Up
-- Why a missed epoch missed: "no proof by the deadline", or the chain's
-- rejection of its one proof ("proof rejected: …"), as EventEpochMissed
-- reports it. Epochs also get a row when their proof lands (status
-- 'pending' until the judging block's verdict).
ALTER TABLE lease_epochs ADD COLUMN reason TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE lease_epochs DROP COLUMN reason;
