-- +goose Up
-- The chain address the machine's agent signs quotes and proofs with (its
-- provider's own key; the marketplace never holds it), and the region the
-- machine is listed in (its lowest-RTT probe region).
ALTER TABLE machines ADD COLUMN provider_address TEXT NOT NULL DEFAULT '';
ALTER TABLE machines ADD COLUMN region TEXT NOT NULL DEFAULT '';
ALTER TABLE machines ADD COLUMN verify_error TEXT NOT NULL DEFAULT '';

-- A provider's ask per GPU-hour for each GPU model, in micro-units.
CREATE TABLE prices (
    provider_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    model              TEXT NOT NULL,
    price_per_gpu_hour BIGINT NOT NULL,
    updated_at         TIMESTAMP NOT NULL,
    PRIMARY KEY (provider_id, model)
);

-- The matching engine's input log (market.MarshalCommand, base64): the
-- engine is rebuilt by replaying it at start.
CREATE TABLE market_log (
    seq     BIGINT PRIMARY KEY,
    command TEXT NOT NULL
);

-- Managed buyer wallets: the secp256k1 key sealed with the wallet key from
-- the environment (AES-256-GCM), never stored in the clear.
CREATE TABLE wallets (
    user_id    TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    address    TEXT NOT NULL,
    sealed_key TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX wallets_address_key ON wallets (address);

-- Buyer orders and what became of them.
CREATE TABLE orders (
    id                 TEXT PRIMARY KEY,
    buyer_id           TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    type               TEXT NOT NULL,
    offer_id           TEXT NOT NULL DEFAULT '',
    model              TEXT NOT NULL DEFAULT '',
    min_vram_gib       BIGINT NOT NULL DEFAULT 0,
    gpus               BIGINT NOT NULL,
    max_price          BIGINT NOT NULL,
    region             TEXT NOT NULL,
    max_rtt_ms         BIGINT NOT NULL,
    hours              BIGINT NOT NULL,
    expires_at         TIMESTAMP NULL,
    latency_first      BOOLEAN NOT NULL DEFAULT FALSE,
    workload_json      TEXT NOT NULL DEFAULT '{}',
    status             TEXT NOT NULL,
    failure            TEXT NOT NULL DEFAULT '',
    machine_id         TEXT NOT NULL DEFAULT '',
    price              BIGINT NOT NULL DEFAULT 0,
    lease_id           TEXT NOT NULL DEFAULT '',
    idempotency_key    TEXT NOT NULL DEFAULT '',
    created_at         TIMESTAMP NOT NULL,
    updated_at         TIMESTAMP NOT NULL
);
CREATE INDEX orders_buyer_idx ON orders (buyer_id, created_at);
CREATE INDEX orders_status_idx ON orders (status);

-- Leases: the marketplace's view of a chain lease (the chain is the source
-- of truth for money; the amounts are refreshed from it as events arrive).
CREATE TABLE leases (
    id               TEXT PRIMARY KEY,
    chain_lease_id   BIGINT NOT NULL DEFAULT 0,
    order_id         TEXT NOT NULL,
    buyer_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    machine_id       TEXT NOT NULL,
    agent_id         TEXT NOT NULL,
    model            TEXT NOT NULL,
    gpus             BIGINT NOT NULL,
    gpu_uuids        TEXT NOT NULL DEFAULT '',
    price_per_hour   BIGINT NOT NULL,
    price_per_epoch  TEXT NOT NULL,
    epochs_total     BIGINT NOT NULL,
    status           TEXT NOT NULL,
    workload_status  TEXT NOT NULL DEFAULT '',
    workload_json    TEXT NOT NULL DEFAULT '{}',
    create_tx        TEXT NOT NULL DEFAULT '',
    remaining        TEXT NOT NULL DEFAULT '0',
    pending          TEXT NOT NULL DEFAULT '0',
    frozen           TEXT NOT NULL DEFAULT '0',
    paid             TEXT NOT NULL DEFAULT '0',
    refunded         TEXT NOT NULL DEFAULT '0',
    fees             TEXT NOT NULL DEFAULT '0',
    close_reason     TEXT NOT NULL DEFAULT '',
    ends_at          TIMESTAMP NOT NULL,
    created_at       TIMESTAMP NOT NULL,
    updated_at       TIMESTAMP NOT NULL
);
CREATE INDEX leases_buyer_idx ON leases (buyer_id, created_at);
CREATE INDEX leases_provider_idx ON leases (provider_id, created_at);
CREATE INDEX leases_chain_idx ON leases (chain_lease_id);

-- One row per epoch the chain settled (cleared or missed).
CREATE TABLE lease_epochs (
    lease_id     TEXT NOT NULL REFERENCES leases (id) ON DELETE CASCADE,
    n            BIGINT NOT NULL,
    status       TEXT NOT NULL,
    valid_nonces BIGINT NOT NULL DEFAULT 0,
    required     BIGINT NOT NULL DEFAULT 0,
    amount       TEXT NOT NULL DEFAULT '0',
    tx_hash      TEXT NOT NULL DEFAULT '',
    height       BIGINT NOT NULL,
    PRIMARY KEY (lease_id, n)
);

-- Workload output, per lease, de-duplicated by the agent's sequence number.
CREATE TABLE lease_logs (
    lease_id TEXT NOT NULL REFERENCES leases (id) ON DELETE CASCADE,
    seq      BIGINT NOT NULL,
    at       TIMESTAMP NOT NULL,
    stream   TEXT NOT NULL,
    text     TEXT NOT NULL,
    PRIMARY KEY (lease_id, seq)
);

-- Work handed to agents (start/stop a lease, verification challenges),
-- delivered by long-poll until the agent acknowledges a later id.
CREATE TABLE assignments (
    id         BIGINT PRIMARY KEY,
    agent_id   TEXT NOT NULL,
    lease_id   TEXT NOT NULL DEFAULT '',
    body       TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX assignments_agent_idx ON assignments (agent_id, id);

-- How far the chain indexer got.
CREATE TABLE chain_cursor (
    name   TEXT PRIMARY KEY,
    height BIGINT NOT NULL
);

-- Disputes over leases, resolved by an admin with an on-chain split.
CREATE TABLE disputes (
    id                 TEXT PRIMARY KEY,
    lease_id           TEXT NOT NULL REFERENCES leases (id) ON DELETE CASCADE,
    buyer_id           TEXT NOT NULL,
    provider_id        TEXT NOT NULL,
    status             TEXT NOT NULL,
    buyer_statement    TEXT NOT NULL,
    provider_statement TEXT NOT NULL DEFAULT '',
    buyer_bps          BIGINT NOT NULL DEFAULT 0,
    resolution         TEXT NOT NULL DEFAULT '',
    open_tx            TEXT NOT NULL DEFAULT '',
    resolve_tx         TEXT NOT NULL DEFAULT '',
    created_at         TIMESTAMP NOT NULL,
    resolved_at        TIMESTAMP NULL
);
CREATE INDEX disputes_status_idx ON disputes (status, created_at);

-- +goose Down
DROP TABLE disputes;
DROP TABLE chain_cursor;
DROP TABLE assignments;
DROP TABLE lease_logs;
DROP TABLE lease_epochs;
DROP TABLE leases;
DROP TABLE orders;
DROP TABLE wallets;
DROP TABLE market_log;
DROP TABLE prices;
ALTER TABLE machines DROP COLUMN verify_error;
ALTER TABLE machines DROP COLUMN region;
ALTER TABLE machines DROP COLUMN provider_address;
