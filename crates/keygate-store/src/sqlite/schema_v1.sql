-- keygate schema, version 1. Timestamps are microseconds since the Unix epoch (UTC).
CREATE TABLE organization (
    id            TEXT PRIMARY KEY,
    display_name  TEXT NOT NULL,
    crn_authority TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);
CREATE TABLE environments (
    id           TEXT PRIMARY KEY,
    display_name TEXT NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE TABLE resources (
    key            TEXT PRIMARY KEY,
    id             TEXT NOT NULL,
    kind           TEXT NOT NULL,
    environment_id TEXT NOT NULL REFERENCES environments(id),
    display_name   TEXT NOT NULL,
    upstream       TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE INDEX resources_env ON resources(environment_id);
CREATE TABLE accounts (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    display_name TEXT NOT NULL,
    description  TEXT NOT NULL,
    email        TEXT NOT NULL,
    auth_type    TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
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
    secret_hash    BLOB NOT NULL,
    disabled       INTEGER NOT NULL,
    expires_at     INTEGER,
    last_used_at   INTEGER,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE INDEX api_keys_owner ON api_keys(owner_id);
CREATE INDEX api_keys_resource ON api_keys(resource_key);
CREATE TABLE role_bindings (
    id          TEXT PRIMARY KEY,
    principal   TEXT NOT NULL,
    role        TEXT NOT NULL,
    crn_pattern TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
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
    created_at    INTEGER NOT NULL,
    UNIQUE (cluster_id, principal, resource_type, resource_name, pattern_type, operation, permission)
);
CREATE INDEX acls_principal ON acls(principal);
CREATE TABLE changes (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    at         INTEGER NOT NULL,
    entity     TEXT NOT NULL,
    entity_id  TEXT NOT NULL,
    cluster_id TEXT
);
