"""Read a whole topic from the beginning with PyPI's confluent-kafka, straight from the
broker (no authentication), until EXPECT records with the given CloudEvents ids have
arrived or TIMEOUT seconds pass. Prints one JSON line per record:
{"partition": p, "offset": o, "key": k, "event": {...}}.

Used by crates/keygate/tests/it/audit.rs to check the audit topic sink.
Usage: audit_consume.py BOOTSTRAP TOPIC TIMEOUT [ID ...]
"""

import json
import sys
import time

from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING

bootstrap, topic, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
want = set(sys.argv[4:])
c = Consumer({
    "bootstrap.servers": bootstrap,
    "group.id": "audit-check",
    "enable.auto.commit": False,
    "fetch.wait.max.ms": 10,
    "log_level": 3,
})
deadline = time.time() + timeout
parts = []
while time.time() < deadline and not parts:
    md = c.list_topics(topic, timeout=5)
    t = md.topics.get(topic)
    if t is not None and t.error is None and t.partitions:
        parts = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in t.partitions]
    else:
        time.sleep(0.2)
if not parts:
    print(json.dumps({"error": f"topic {topic} not found"}))
    sys.exit(1)
c.assign(parts)
seen = set()
while time.time() < deadline:
    m = c.poll(0.5)
    if m is None:
        if want and want <= seen:
            break
        continue
    if m.error():
        continue
    ev = json.loads(m.value())
    seen.add(ev["id"])
    print(json.dumps({
        "partition": m.partition(),
        "offset": m.offset(),
        "key": (m.key() or b"").decode(),
        "event": ev,
    }), flush=True)
c.close()
sys.exit(0 if want <= seen else 2)
