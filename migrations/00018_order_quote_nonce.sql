-- +goose Up
-- The nonce of the quote an order's lease is created with, recorded before
-- the lease transaction is sent. A leader that stops between sending it
-- and recording the lease leaves a lease on chain the marketplace does not
-- know; the next leader's chain indexer finds the order by this nonce (the
-- chain's EventLeaseCreated carries it) and closes that lease, so the
-- buyer's escrow comes back (broker/reconcile.go).
ALTER TABLE orders ADD COLUMN quote_nonce BIGINT NOT NULL DEFAULT 0;
CREATE INDEX orders_quote_nonce ON orders (quote_nonce) WHERE quote_nonce <> 0;

-- +goose Down
DROP INDEX orders_quote_nonce;
ALTER TABLE orders DROP COLUMN quote_nonce;
