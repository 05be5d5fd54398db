-- +goose Up
-- When the chain settled each epoch (its block's time), for the providers'
-- earnings and proof history and the reliability window. NULL for epochs
-- indexed before this column existed.
ALTER TABLE lease_epochs ADD COLUMN settled_at TIMESTAMP NULL;
CREATE INDEX lease_epochs_settled_idx ON lease_epochs (settled_at);

-- +goose Down
DROP INDEX lease_epochs_settled_idx;
ALTER TABLE lease_epochs DROP COLUMN settled_at;
