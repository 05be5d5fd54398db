-- +goose Up
-- Failed sign-ins since the account's last successful one, so its owner
-- is told at the next login (how many, the last one's time and address).
ALTER TABLE users ADD COLUMN failed_logins INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN last_failed_login_at TIMESTAMP NULL;
ALTER TABLE users ADD COLUMN last_failed_login_ip TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE users DROP COLUMN last_failed_login_ip;
ALTER TABLE users DROP COLUMN last_failed_login_at;
ALTER TABLE users DROP COLUMN failed_logins;
