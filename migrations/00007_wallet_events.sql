-- +goose Up
-- The managed wallets' history, from the chain's bank transfer events as
-- the indexer sees them (block by block; idempotent by height and the
-- event's place in the block).
CREATE TABLE wallet_events (
    address      TEXT NOT NULL,
    height       BIGINT NOT NULL,
    seq          BIGINT NOT NULL,
    at           TIMESTAMP NULL,
    tx_hash      TEXT NOT NULL DEFAULT '',
    kind         TEXT NOT NULL,
    incoming     BOOLEAN NOT NULL,
    counterparty TEXT NOT NULL,
    amount       TEXT NOT NULL,
    PRIMARY KEY (address, height, seq)
);

-- +goose Down
DROP TABLE wallet_events;
