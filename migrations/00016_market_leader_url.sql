-- +goose Up
-- Where the leader answers other replicas: a replica that does not lead
-- forwards the requests it cannot serve itself to this URL.
ALTER TABLE market_leader ADD COLUMN url TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE market_leader DROP COLUMN url;
