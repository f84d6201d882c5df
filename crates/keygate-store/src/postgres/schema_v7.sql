-- keygate schema, version 7: how the gateway connects to a Kafka cluster's brokers
-- (TLS, SASL). JSON; its secrets (password, client key) are sealed by the IAM service
-- before they get here and are never stored in the clear. NULL: plaintext, no SASL.
ALTER TABLE resources ADD COLUMN upstream_security TEXT;
