-- keygate schema, version 4: the audit log. One row per CloudEvents record; the
-- indexed columns are copies of fields of `event` (the record as JSON) for queries.
-- The table is also the outbox of the other sinks: `audit_cursors` holds how far each
-- has confirmed delivery, and retention never deletes past the slowest cursor.
CREATE TABLE audit_events (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL,
    time       INTEGER NOT NULL,
    type       TEXT NOT NULL,
    source     TEXT NOT NULL,
    principal  TEXT,
    method     TEXT NOT NULL,
    resource   TEXT NOT NULL,
    granted    INTEGER,
    identifier TEXT,
    event      TEXT NOT NULL
);
CREATE INDEX audit_events_time ON audit_events (time);
CREATE INDEX audit_events_principal ON audit_events (principal, seq);
CREATE INDEX audit_events_identifier ON audit_events (identifier, seq);
CREATE INDEX audit_events_method ON audit_events (method, seq);
CREATE TABLE audit_cursors (
    sink TEXT PRIMARY KEY,
    seq  INTEGER NOT NULL
);
