-- +goose Up
-- One-time enrollment tokens a provider creates in the console; only the
-- SHA-256 of the token is stored.
CREATE TABLE enrollment_tokens (
    id          TEXT PRIMARY KEY,
    token_hash  TEXT NOT NULL,
    provider_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  TIMESTAMP NOT NULL,
    expires_at  TIMESTAMP NOT NULL,
    used_at     TIMESTAMP NULL,
    agent_id    TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX enrollment_tokens_hash_key ON enrollment_tokens (token_hash);
CREATE INDEX enrollment_tokens_provider_idx ON enrollment_tokens (provider_id);

-- A provider's machine, as its agent last described it.
CREATE TABLE machines (
    id                TEXT PRIMARY KEY,
    provider_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    hostname          TEXT NOT NULL DEFAULT '',
    agent_version     TEXT NOT NULL DEFAULT '',
    driver_version    TEXT NOT NULL DEFAULT '',
    cuda_version      TEXT NOT NULL DEFAULT '',
    simulated         BOOLEAN NOT NULL DEFAULT FALSE,
    rtt_json          TEXT NOT NULL DEFAULT '{}',
    last_heartbeat_at TIMESTAMP NULL,
    verified_at       TIMESTAMP NULL,
    suspended_at      TIMESTAMP NULL,
    suspend_reason    TEXT NOT NULL DEFAULT '',
    created_at        TIMESTAMP NOT NULL,
    updated_at        TIMESTAMP NOT NULL
);
CREATE INDEX machines_provider_idx ON machines (provider_id);
CREATE INDEX machines_heartbeat_idx ON machines (last_heartbeat_at);

-- The agent on a machine and its ed25519 key. boot_id and last_seq let the
-- server reject a heartbeat older than the last one applied.
CREATE TABLE agents (
    id           TEXT PRIMARY KEY,
    machine_id   TEXT NOT NULL REFERENCES machines (id) ON DELETE CASCADE,
    provider_id  TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    public_key   TEXT NOT NULL,
    boot_id      TEXT NOT NULL DEFAULT '',
    last_seq     BIGINT NOT NULL DEFAULT 0,
    created_at   TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NULL,
    revoked_at   TIMESTAMP NULL
);
CREATE UNIQUE INDEX agents_public_key_key ON agents (public_key);
CREATE INDEX agents_machine_idx ON agents (machine_id);

-- GPUs as of the last heartbeat. A UUID belongs to one machine only: a
-- second machine claiming it is refused.
CREATE TABLE gpus (
    machine_id       TEXT NOT NULL REFERENCES machines (id) ON DELETE CASCADE,
    idx              INTEGER NOT NULL,
    uuid             TEXT NOT NULL,
    name             TEXT NOT NULL,
    class            TEXT NOT NULL,
    memory_total_mib BIGINT NOT NULL,
    memory_used_mib  BIGINT NOT NULL,
    utilization_pct  INTEGER NOT NULL,
    temperature_c    INTEGER NOT NULL,
    power_mw         BIGINT NOT NULL,
    power_limit_mw   BIGINT NOT NULL,
    ecc_uncorrected  BIGINT NOT NULL,
    pcie_gen         INTEGER NOT NULL,
    pcie_width       INTEGER NOT NULL,
    mig_enabled      BOOLEAN NOT NULL,
    free             BOOLEAN NOT NULL,
    lease_id         TEXT NOT NULL DEFAULT '',
    updated_at       TIMESTAMP NOT NULL,
    PRIMARY KEY (machine_id, idx)
);
CREATE UNIQUE INDEX gpus_uuid_key ON gpus (uuid);

-- +goose Down
DROP TABLE gpus;
DROP TABLE agents;
DROP TABLE machines;
DROP TABLE enrollment_tokens;
