-- keygate schema, version 2: each Kafka cluster keeps its gateway port slot for life,
-- so that deleting one cluster never moves another's ports under its clients.
ALTER TABLE resources ADD COLUMN gateway_slot INTEGER;
UPDATE resources SET gateway_slot = (
    SELECT COUNT(*) FROM resources AS earlier
    WHERE earlier.kind = 'kafka'
      AND (earlier.created_at < resources.created_at
           OR (earlier.created_at = resources.created_at AND earlier.id < resources.id))
) WHERE kind = 'kafka';
CREATE UNIQUE INDEX resources_gateway_slot ON resources(gateway_slot) WHERE gateway_slot IS NOT NULL;
