-- +goose Up
-- A buyer's login for a private image, sealed (AES-256-GCM under the
-- wallet key, the order's id as additional data): it is opened only to
-- hand it to the agent with the lease's start, and erased when the order
-- fails or the lease ends (broker/registry.go).
ALTER TABLE orders ADD COLUMN registry_login TEXT NOT NULL DEFAULT '';
-- How far the agent has got pulling the lease's image (the lease page's
-- progress bar), and the digest it resolved: what runs.
ALTER TABLE leases ADD COLUMN pull_done BIGINT NOT NULL DEFAULT 0;
ALTER TABLE leases ADD COLUMN pull_total BIGINT NOT NULL DEFAULT 0;
ALTER TABLE leases ADD COLUMN pull_cached BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE leases ADD COLUMN image_digest TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE leases DROP COLUMN image_digest;
ALTER TABLE leases DROP COLUMN pull_cached;
ALTER TABLE leases DROP COLUMN pull_total;
ALTER TABLE leases DROP COLUMN pull_done;
ALTER TABLE orders DROP COLUMN registry_login;
