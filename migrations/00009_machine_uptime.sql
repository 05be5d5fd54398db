-- +goose Up
-- Each machine's online time per UTC day (days since 1970-01-01), for
-- reliability's 30-day uptime: it survives a marketplace restart and ages
-- out by the day. The broker writes a day's whole figure, so a repeated
-- write cannot count twice, and deletes days older than the window.
CREATE TABLE machine_uptime (
    machine_id TEXT NOT NULL REFERENCES machines (id) ON DELETE CASCADE,
    day        BIGINT NOT NULL,
    online_ms  BIGINT NOT NULL,
    PRIMARY KEY (machine_id, day)
);
CREATE INDEX machine_uptime_day_idx ON machine_uptime (day);

-- +goose Down
DROP TABLE machine_uptime;
