-- +goose Up
-- Nonces of accepted agent requests, shared by every replica: a captured
-- request replayed at another replica is refused there too. A row lives
-- until its request could no longer pass the timestamp check; expired
-- rows may be reused and are pruned.
CREATE TABLE agent_nonces (
    nonce_key  TEXT PRIMARY KEY,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX agent_nonces_expires ON agent_nonces (expires_at);

-- +goose Down
DROP TABLE agent_nonces;
