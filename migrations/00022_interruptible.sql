-- +goose Up
-- Interruptible capacity (market/spot.go, docs/matching.md). A provider's
-- floor per GPU-hour for interruptible use of a model's idle GPUs (0: none)
-- and the preemption notice it gives, in seconds.
ALTER TABLE prices ADD COLUMN spot_floor_per_gpu_hour BIGINT NOT NULL DEFAULT 0;
ALTER TABLE prices ADD COLUMN notice_s BIGINT NOT NULL DEFAULT 0;
-- An order that is a bid for interruptible GPUs, and the lease it became.
ALTER TABLE orders ADD COLUMN interruptible BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE leases ADD COLUMN interruptible BOOLEAN NOT NULL DEFAULT FALSE;
-- A preempted lease: when its notice ends (the workload is stopped and the
-- lease closed on chain then) and the order that took its GPUs.
ALTER TABLE leases ADD COLUMN preempt_at TIMESTAMP NULL;
ALTER TABLE leases ADD COLUMN preempted_by TEXT NOT NULL DEFAULT '';
CREATE INDEX leases_preempt_idx ON leases (preempt_at);

-- +goose Down
DROP INDEX leases_preempt_idx;
ALTER TABLE leases DROP COLUMN preempted_by;
ALTER TABLE leases DROP COLUMN preempt_at;
ALTER TABLE leases DROP COLUMN interruptible;
ALTER TABLE orders DROP COLUMN interruptible;
ALTER TABLE prices DROP COLUMN notice_s;
ALTER TABLE prices DROP COLUMN spot_floor_per_gpu_hour;
