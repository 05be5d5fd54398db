-- +goose Up
-- A buyer's open orders (resting, or matched with the lease not yet on
-- chain) hold their escrow in view: placing another order or withdrawing
-- sums them first (broker/orders.go, fundsInView). The partial index keeps
-- that a lookup of the few open rows, however long the buyer's history.
CREATE INDEX orders_buyer_open ON orders (buyer_id) WHERE status IN ('open', 'matched');

-- +goose Down
DROP INDEX orders_buyer_open;
