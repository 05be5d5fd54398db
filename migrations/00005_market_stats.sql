-- +goose Up
-- Periodic snapshots of the market for the charts: one row per model per
-- snapshot, plus a model '*' row with the network totals.
CREATE TABLE market_snapshots (
    at            TIMESTAMP NOT NULL,
    model         TEXT NOT NULL,
    gpus_online   BIGINT NOT NULL,
    gpus_free     BIGINT NOT NULL,
    median_price  BIGINT NOT NULL,
    h100e_milli   BIGINT NOT NULL,
    leases_active BIGINT NOT NULL,
    PRIMARY KEY (at, model)
);
CREATE INDEX market_snapshots_model_idx ON market_snapshots (model, at);

-- +goose Down
DROP TABLE market_snapshots;
