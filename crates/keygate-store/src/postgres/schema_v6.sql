-- keygate schema, version 6: what several instances sharing one database coordinate
-- on. Settings such as the check value of the pepper (an instance with another pepper
-- refuses to start), and leases: one instance at a time ships each audit sink.
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
