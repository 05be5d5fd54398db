-- +goose Up
-- An Idempotency-Key stands for one request: a retry with the same key
-- and body gets the first order back; the same key with another body is
-- refused (422), and a key is honoured for 24 hours. The digest of the
-- request it was first used with is kept beside it, and the key is unique
-- per buyer so two racing requests cannot both place an order. (Keys
-- reused before this migration keep their oldest order.)
ALTER TABLE orders ADD COLUMN idempotency_hash TEXT NOT NULL DEFAULT '';
UPDATE orders SET idempotency_key = ''
WHERE idempotency_key <> '' AND id NOT IN (
    SELECT MIN(id) FROM orders WHERE idempotency_key <> '' GROUP BY buyer_id, idempotency_key
);
CREATE UNIQUE INDEX orders_buyer_idempotency_key ON orders (buyer_id, idempotency_key) WHERE idempotency_key <> '';

-- +goose Down
DROP INDEX orders_buyer_idempotency_key;
ALTER TABLE orders DROP COLUMN idempotency_hash;
