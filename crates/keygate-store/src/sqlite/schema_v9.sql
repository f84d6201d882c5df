-- keygate schema, version 9: objects a principal created through the HTTP gateway
-- whose later use depends on who created them (Flink jobs and jars: a FlinkDeveloper
-- sees and manages its own). Keyed by the resource's storage key and the service's own
-- id for the object; written once, when the upstream confirmed the creation.
CREATE TABLE service_objects (
    resource_key TEXT NOT NULL,
    object_id    TEXT NOT NULL,
    principal    TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (resource_key, object_id)
);
