-- keygate schema, version 3: external OAuth (identity providers and pools) and the
-- STS signing keys' lifecycle (the keys themselves are derived, never stored).
CREATE TABLE identity_providers (
    id              TEXT PRIMARY KEY,
    display_name    TEXT NOT NULL UNIQUE,
    description     TEXT NOT NULL,
    issuer          TEXT NOT NULL UNIQUE,
    jwks_uri        TEXT NOT NULL,
    identity_claim  TEXT NOT NULL,
    enabled         INTEGER NOT NULL,
    jwks            TEXT NOT NULL,
    jwks_fetched_at INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE TABLE identity_pools (
    id             TEXT PRIMARY KEY,
    provider_id    TEXT NOT NULL REFERENCES identity_providers(id),
    display_name   TEXT NOT NULL,
    description    TEXT NOT NULL,
    identity_claim TEXT NOT NULL,
    filter         TEXT NOT NULL,
    enabled        INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    UNIQUE (provider_id, display_name)
);
CREATE TABLE signing_keys (
    kid        TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL,
    retired_at INTEGER
);
