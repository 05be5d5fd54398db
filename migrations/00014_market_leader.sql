-- +goose Up
-- The one row that says which replica's broker may write: its term rises
-- by one at every takeover, and every write of the leader checks, in its
-- own transaction, that the term is still its own (models/leader.go). A
-- deposed leader's late write is refused, however late it is.
CREATE TABLE market_leader (
    id     INTEGER PRIMARY KEY,
    term   BIGINT NOT NULL,
    holder TEXT NOT NULL,
    since  TIMESTAMP NOT NULL
);
INSERT INTO market_leader (id, term, holder, since) VALUES (1, 0, '', CURRENT_TIMESTAMP);

-- +goose Down
DROP TABLE market_leader;
