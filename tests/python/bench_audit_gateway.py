"""Gateway throughput with the audit log off and on (run by scripts/bench-audit).

Two keygate servers front the same Tansu broker: one with audit_enabled = false, one
with the audit log on and every sink configured (database, file, Kafka topic). The
same confluent-kafka produce and consume workloads run through each, alternating
round by round, so both see the same machine state. Prints the medians and the
on/off ratios.
"""

import os
import statistics
import time
import uuid

from confluent_kafka import Consumer, Producer

TOPIC = os.environ.get("TOPIC", "bench")
N = int(os.environ.get("MESSAGES", "100000"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
PAYLOAD = os.urandom(1024)
SIDES = {
    "off": (os.environ["OFF_BOOTSTRAP"], os.environ["OFF_KEY"], os.environ["OFF_SECRET"]),
    "on": (os.environ["ON_BOOTSTRAP"], os.environ["ON_KEY"], os.environ["ON_SECRET"]),
}


def conf(side):
    b, k, s = SIDES[side]
    return {"bootstrap.servers": b, "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN",
            "sasl.username": k, "sasl.password": s}


def produce(side):
    p = Producer({**conf(side), "linger.ms": 5, "acks": "all", "enable.idempotence": False})
    start = time.perf_counter()
    for i in range(N):
        while True:
            try:
                p.produce(TOPIC, PAYLOAD)
                break
            except BufferError:
                p.poll(0.01)
        if i % 1000 == 0:
            p.poll(0)
    p.flush(60)
    return N / (time.perf_counter() - start)


def consume(side):
    c = Consumer({**conf(side), "group.id": "bench-" + uuid.uuid4().hex[:6], "auto.offset.reset": "earliest",
                  "enable.auto.commit": False, "fetch.wait.max.ms": 10})
    c.subscribe([TOPIC])
    got, start, deadline = 0, None, time.time() + 120
    while got < N and time.time() < deadline:
        msgs = c.consume(1000, 0.5)
        n = sum(1 for m in msgs if not m.error())
        if n and start is None:
            start = time.perf_counter()
        got += n
    secs = time.perf_counter() - (start or time.perf_counter())
    c.close()
    return got / secs if secs else 0.0


results = {(w, s): [] for w in ("produce", "consume") for s in SIDES}
for r in range(ROUNDS):
    order = ["off", "on"] if r % 2 == 0 else ["on", "off"]
    for side in order:
        results[("produce", side)].append(produce(side))
    for side in order:
        results[("consume", side)].append(consume(side))
    print(f"round {r + 1}: " + ", ".join(f"{w} {s} {results[(w, s)][-1]:,.0f} msg/s" for (w, s) in results), flush=True)

for w in ("produce", "consume"):
    off, on = statistics.median(results[(w, "off")]), statistics.median(results[(w, "on")])
    print(f"{w}: audit off {off:,.0f} msg/s ({off / 1024:.1f} MiB/s), on {on:,.0f} msg/s — ratio on/off {on / off:.3f}")
