-- +goose Up
-- Checkpoints of the matching engine: its whole state after log entry seq
-- (market.Engine.Snapshot, base64 like the log's commands). The broker
-- keeps the two newest and the log from the older one on, so a start or a
-- takeover restores the newest and replays the tail after it, and can
-- fall back to the older one should the newest not restore.
CREATE TABLE market_checkpoints (
    seq      BIGINT PRIMARY KEY,
    taken_at TIMESTAMP NOT NULL,
    state    TEXT NOT NULL
);

-- +goose Down
DROP TABLE market_checkpoints;
