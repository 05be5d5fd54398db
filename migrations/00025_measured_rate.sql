-- +goose Up
-- A machine's measured Proof-of-Compute rate (broker/verify.go): what its
-- verification proof found, per GPU, in thousandths of an H100. 0: not
-- measured (verified before the measurement existed, or never).
ALTER TABLE machines ADD COLUMN measured_milli_h100 BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE machines DROP COLUMN measured_milli_h100;
