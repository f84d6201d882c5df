-- keygate schema, version 11: client quotas (the hosted Kafka quotas API): byte rates,
-- and optionally a request rate, per principal on one Kafka cluster. A principal is in
-- at most one quota per cluster (client_quota_principals' unique index says so in the
-- same transaction); `<default>` is every principal without a quota of its own.
CREATE TABLE client_quotas (
    id                TEXT PRIMARY KEY,
    cluster_id        TEXT NOT NULL,
    environment_id    TEXT NOT NULL,
    display_name      TEXT NOT NULL,
    description       TEXT NOT NULL,
    principals        TEXT NOT NULL,
    ingress_byte_rate INTEGER NOT NULL,
    egress_byte_rate  INTEGER NOT NULL,
    request_rate      INTEGER,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);
CREATE INDEX client_quotas_cluster ON client_quotas(cluster_id);
CREATE TABLE client_quota_principals (
    quota_id   TEXT NOT NULL,
    cluster_id TEXT NOT NULL,
    principal  TEXT NOT NULL
);
CREATE UNIQUE INDEX client_quota_principals_one ON client_quota_principals(cluster_id, principal);
CREATE INDEX client_quota_principals_quota ON client_quota_principals(quota_id);
