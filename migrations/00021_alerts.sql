-- +goose Up
-- Alerts (broker/alerts.go): what happened to a user, shown under the
-- bell and sent to their webhooks. dedupe names the event, so one noticed
-- twice (a replayed block, a retried loop) alerts once.
CREATE TABLE notifications (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    kind       TEXT NOT NULL,
    text       TEXT NOT NULL,
    link       TEXT NOT NULL DEFAULT '',
    dedupe     TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    read_at    TIMESTAMP NULL
);
CREATE UNIQUE INDEX notifications_dedupe_idx ON notifications (user_id, dedupe);
CREATE INDEX notifications_user_idx ON notifications (user_id, created_at);

-- A user's webhook endpoints; secret keys the HMAC of every delivery.
CREATE TABLE webhooks (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    url        TEXT NOT NULL,
    secret     TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX webhooks_user_idx ON webhooks (user_id);

-- One notification's delivery to one webhook, retried with backoff for a
-- day; the log on the account page.
CREATE TABLE webhook_deliveries (
    id          TEXT PRIMARY KEY,
    webhook_id  TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    kind        TEXT NOT NULL,
    body        TEXT NOT NULL,
    status      TEXT NOT NULL,
    attempts    BIGINT NOT NULL DEFAULT 0,
    last_code   BIGINT NOT NULL DEFAULT 0,
    last_error  TEXT NOT NULL DEFAULT '',
    next_at     TIMESTAMP NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (status, next_at);
CREATE INDEX webhook_deliveries_hook_idx ON webhook_deliveries (webhook_id, created_at);

-- The buyer's low-balance threshold (uhwy; 0: off) and whether the
-- balance is below it now (one alert per crossing).
ALTER TABLE users ADD COLUMN alert_balance_below BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN alert_balance_low BOOLEAN NOT NULL DEFAULT FALSE;

-- +goose Down
ALTER TABLE users DROP COLUMN alert_balance_low;
ALTER TABLE users DROP COLUMN alert_balance_below;
DROP TABLE webhook_deliveries;
DROP TABLE webhooks;
DROP TABLE notifications;
