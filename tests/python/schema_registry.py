"""confluent-kafka's Schema Registry client and Avro serializer through keygate: the
registry through the HTTP gateway (a key for the registry, basic.auth.user.info), the
records through the Kafka gateway (a key for the cluster).

Env: SR_URL, SR_KEY, SR_SECRET, BOOTSTRAP, KEY, SECRET. The key's owner may write
subjects orders*, write and read topic orders, and read group avro.
"""
import os
import sys
import time

from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

SCHEMA = """{"type": "record", "name": "Order", "namespace": "shop",
 "fields": [{"name": "id", "type": "long"}, {"name": "item", "type": "string"}]}"""

sr = SchemaRegistryClient({"url": os.environ["SR_URL"],
                           "basic.auth.user.info": f"{os.environ['SR_KEY']}:{os.environ['SR_SECRET']}"})
kafka = {"bootstrap.servers": os.environ["BOOTSTRAP"], "security.protocol": "SASL_PLAINTEXT",
         "sasl.mechanism": "PLAIN", "sasl.username": os.environ["KEY"], "sasl.password": os.environ["SECRET"],
         "fetch.wait.max.ms": 10}

serialize = AvroSerializer(sr, SCHEMA)  # registers orders-value on first use
p = Producer(kafka)
for i in range(3):
    value = serialize({"id": i, "item": f"book-{i}"}, SerializationContext("orders", MessageField.VALUE))
    p.produce("orders", value=value)
assert p.flush(20) == 0, "produce did not complete"
latest = sr.get_latest_version("orders-value")
print("registered orders-value version", latest.version, "id", latest.schema_id)

deserialize = AvroDeserializer(sr)
c = Consumer({**kafka, "group.id": "avro", "auto.offset.reset": "earliest"})
c.subscribe(["orders"])
got, deadline = [], time.time() + 30
while len(got) < 3 and time.time() < deadline:
    m = c.poll(0.5)
    if m is None or m.error():
        continue
    got.append(deserialize(m.value(), SerializationContext("orders", MessageField.VALUE)))
c.close()
assert [o["id"] for o in got] == [0, 1, 2], got
print("avro round trip ok", got)

try:
    sr.register_schema("payments-value", Schema(SCHEMA, "AVRO"))
    print("payments-value was registered: the gateway allowed what it must not")
    sys.exit(1)
except SchemaRegistryError as e:
    assert e.http_status_code == 403, e
    print("refused subject payments-value", e.http_status_code)
