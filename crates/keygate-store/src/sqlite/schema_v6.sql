-- keygate schema, version 6: installation-wide settings shared by every instance, such
-- as the check value of the pepper (an instance with another pepper refuses to start).
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
