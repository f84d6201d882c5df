-- keygate schema, version 10: what a ksqlDB cluster runs on (its Kafka cluster, the
-- account whose credential it uses, its CSUs), a JSON object; NULL for other kinds
-- and for ksqlDB clusters registered before this version.
ALTER TABLE resources ADD COLUMN ksql TEXT;
