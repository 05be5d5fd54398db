-- +goose Up
-- Keys for the public JSON API (Authorization: Bearer hwk_...). Only the
-- SHA-256 of a key is stored, so a leaked database does not leak working
-- keys; prefix keeps enough of the key for its owner to tell keys apart.
-- Revoked keys are kept (revoked_at set) so the account keeps a record of
-- what once had access.
CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    key_hash     TEXT NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP NULL,
    revoked_at   TIMESTAMP NULL
);
CREATE UNIQUE INDEX api_keys_key_hash_key ON api_keys (key_hash);
CREATE INDEX api_keys_user_id_idx ON api_keys (user_id);

-- +goose Down
DROP TABLE api_keys;
