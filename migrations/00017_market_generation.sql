-- +goose Up
-- The leader's change count, published after each change of the market
-- (orders, leases, disputes: what live pages show). A standby serving
-- pages from its own view tells its open pages to reload when it moves,
-- so a change the market log does not carry (a lease paid on chain) still
-- reaches them.
ALTER TABLE market_leader ADD COLUMN generation BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE market_leader DROP COLUMN generation;
