-- keygate schema for PostgreSQL, versions 1 to 5 at once (the same tables as the
-- SQLite schema of version 5; later versions are added as their own files, for both).
-- Timestamps are microseconds since the Unix epoch (UTC), as in SQLite, so that one
-- set of statements serves both databases.
-- keygate schema, version 1. Timestamps are microseconds since the Unix epoch (UTC).
CREATE TABLE organization (
    id            TEXT PRIMARY KEY,
    display_name  TEXT NOT NULL,
    crn_authority TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE TABLE environments (
    id           TEXT PRIMARY KEY,
    display_name TEXT NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE TABLE resources (
    key            TEXT PRIMARY KEY,
    id             TEXT NOT NULL,
    kind           TEXT NOT NULL,
    environment_id TEXT NOT NULL REFERENCES environments(id),
    display_name   TEXT NOT NULL,
    upstream       TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE INDEX resources_env ON resources(environment_id);
CREATE TABLE accounts (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    display_name TEXT NOT NULL,
    description  TEXT NOT NULL,
    email        TEXT NOT NULL,
    auth_type    TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE UNIQUE INDEX accounts_sa_name ON accounts(display_name) WHERE kind = 'service-account';
CREATE UNIQUE INDEX accounts_user_email ON accounts(email) WHERE kind = 'user';
CREATE TABLE api_keys (
    id             TEXT PRIMARY KEY,
    display_name   TEXT NOT NULL,
    description    TEXT NOT NULL,
    owner_id       TEXT NOT NULL REFERENCES accounts(id),
    owner_kind     TEXT NOT NULL,
    resource_key   TEXT NOT NULL,
    resource_kind  TEXT,
    resource_id    TEXT,
    environment_id TEXT,
    secret_hash    BYTEA NOT NULL,
    disabled       BOOLEAN NOT NULL,
    expires_at     BIGINT,
    last_used_at   BIGINT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE INDEX api_keys_owner ON api_keys(owner_id);
CREATE INDEX api_keys_resource ON api_keys(resource_key);
CREATE TABLE role_bindings (
    id          TEXT PRIMARY KEY,
    principal   TEXT NOT NULL,
    role        TEXT NOT NULL,
    crn_pattern TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    UNIQUE (principal, role, crn_pattern)
);
CREATE INDEX role_bindings_principal ON role_bindings(principal);
CREATE TABLE acls (
    id            TEXT PRIMARY KEY,
    cluster_id    TEXT NOT NULL,
    principal     TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_name TEXT NOT NULL,
    pattern_type  TEXT NOT NULL,
    operation     TEXT NOT NULL,
    permission    TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    UNIQUE (cluster_id, principal, resource_type, resource_name, pattern_type, operation, permission)
);
CREATE INDEX acls_principal ON acls(principal);
CREATE TABLE changes (
    seq        BIGSERIAL PRIMARY KEY,
    at         BIGINT NOT NULL,
    entity     TEXT NOT NULL,
    entity_id  TEXT NOT NULL,
    cluster_id TEXT
);

-- keygate schema, version 2: each Kafka cluster keeps its gateway port slot for life,
-- so that deleting one cluster never moves another's ports under its clients.
ALTER TABLE resources ADD COLUMN gateway_slot BIGINT;
CREATE UNIQUE INDEX resources_gateway_slot ON resources(gateway_slot) WHERE gateway_slot IS NOT NULL;

-- keygate schema, version 3: external OAuth (identity providers and pools) and the
-- STS signing keys' lifecycle (the keys themselves are derived, never stored).
CREATE TABLE identity_providers (
    id              TEXT PRIMARY KEY,
    display_name    TEXT NOT NULL UNIQUE,
    description     TEXT NOT NULL,
    issuer          TEXT NOT NULL UNIQUE,
    jwks_uri        TEXT NOT NULL,
    identity_claim  TEXT NOT NULL,
    enabled         BOOLEAN NOT NULL,
    jwks            TEXT NOT NULL,
    jwks_fetched_at BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE TABLE identity_pools (
    id             TEXT PRIMARY KEY,
    provider_id    TEXT NOT NULL REFERENCES identity_providers(id),
    display_name   TEXT NOT NULL,
    description    TEXT NOT NULL,
    identity_claim TEXT NOT NULL,
    filter         TEXT NOT NULL,
    enabled        BOOLEAN NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    UNIQUE (provider_id, display_name)
);
CREATE TABLE signing_keys (
    kid        TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    retired_at BIGINT
);

-- keygate schema, version 4: the audit log. One row per CloudEvents record; the
-- indexed columns are copies of fields of `event` (the record as JSON) for queries.
-- The table is also the outbox of the other sinks: `audit_cursors` holds how far each
-- has confirmed delivery, and retention never deletes past the slowest cursor.
CREATE TABLE audit_events (
    seq        BIGSERIAL PRIMARY KEY,
    id         TEXT NOT NULL,
    time       BIGINT NOT NULL,
    type       TEXT NOT NULL,
    source     TEXT NOT NULL,
    principal  TEXT,
    method     TEXT NOT NULL,
    resource   TEXT NOT NULL,
    granted    BOOLEAN,
    identifier TEXT,
    event      TEXT NOT NULL
);
CREATE INDEX audit_events_time ON audit_events (time);
CREATE INDEX audit_events_principal ON audit_events (principal, seq);
CREATE INDEX audit_events_identifier ON audit_events (identifier, seq);
CREATE INDEX audit_events_method ON audit_events (method, seq);
CREATE TABLE audit_cursors (
    sink TEXT PRIMARY KEY,
    seq  BIGINT NOT NULL
);

-- keygate schema, version 5: console sign-in. Users' passwords (argon2id PHC strings,
-- never the password) and console sessions (the SHA-256 of the cookie value, never the
-- value). Both go with their user.
CREATE TABLE user_passwords (
    user_id    TEXT PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
    hash       TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE console_sessions (
    id_hash    BYTEA PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    csrf       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX console_sessions_user ON console_sessions (user_id);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);
