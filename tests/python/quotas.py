"""Client quotas through the keygate gateway, with real clients.

produce: confluent-kafka producers as fast as they can — principal A (with an ingress
quota of RATE bytes/s) and principal B (no quota) together — after B alone. A's
acknowledged rate must hold within ±10 % of RATE over 20 s, A must see throttling
(librdkafka's throttle_cb), B none, and nobody an error.

consume: kafka-python reads a filled topic as principal A (egress quota RATE bytes/s):
its rate must hold within ±10 % over 20 s, without errors.

Env: BOOTSTRAP, KEY_A, SECRET_A, KEY_B, SECRET_B, TOPIC, RATE. Prints one JSON line.
"""

import json
import os
import sys
import threading
import time

BOOTSTRAP = os.environ["BOOTSTRAP"]
TOPIC = os.environ["TOPIC"]
RATE = int(os.environ["RATE"])
WARMUP, MEASURE = 3.0, 20.0
VALUE = b"q" * 1000


def conf(key, secret):
    return {
        "bootstrap.servers": BOOTSTRAP,
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "PLAIN",
        "sasl.username": key,
        "sasl.password": secret,
    }


class Producing:
    """One confluent-kafka producer sending 1 kB records until `stop`."""

    def __init__(self, key, secret):
        from confluent_kafka import Producer

        self.acked = []  # (time, bytes)
        self.errors = []
        self.throttles = 0
        c = conf(key, secret)
        c.update({"linger.ms": 5, "batch.size": 16384, "throttle_cb": self.throttled})
        self.p = Producer(c)

    def throttled(self, event):
        if event.throttle_time > 0:
            self.throttles += 1

    def delivered(self, err, msg):
        if err is not None:
            self.errors.append(str(err))
        else:
            self.acked.append((time.monotonic(), len(msg.value())))

    def run(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                self.p.produce(TOPIC, VALUE, on_delivery=self.delivered)
                self.p.poll(0)
            except BufferError:
                self.p.poll(0.05)
        self.p.flush(30)

    def rate(self, start, end):
        return sum(b for t, b in self.acked if start <= t < end) / (end - start)


def produce():
    b = Producing(os.environ["KEY_B"], os.environ["SECRET_B"])
    t0 = time.monotonic()
    b.run(4)
    alone = b.rate(t0 + 1, t0 + 4)
    a = Producing(os.environ["KEY_A"], os.environ["SECRET_A"])
    b2 = Producing(os.environ["KEY_B"], os.environ["SECRET_B"])
    threads = [threading.Thread(target=p.run, args=(WARMUP + MEASURE,)) for p in (a, b2)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    window = (start + WARMUP, start + WARMUP + MEASURE)
    out = {
        "quota": RATE,
        "a_rate": a.rate(*window),
        "b_rate": b2.rate(*window),
        "b_alone": alone,
        "a_throttles": a.throttles,
        "b_throttles": b2.throttles,
        "errors": a.errors[:3] + b2.errors[:3],
    }
    print(json.dumps(out))
    ok = (
        abs(out["a_rate"] - RATE) <= 0.10 * RATE
        and out["a_throttles"] > 0
        and out["b_throttles"] == 0
        and not out["errors"]
        and out["b_rate"] >= 3 * RATE
    )
    sys.exit(0 if ok else 1)


def consume():
    from confluent_kafka import Producer
    from kafka import KafkaConsumer

    # Fill the topic (as B, unthrottled): more than the window can read.
    p = Producer(conf(os.environ["KEY_B"], os.environ["SECRET_B"]))
    need = int(RATE * (WARMUP + MEASURE) * 1.5 / len(VALUE))
    for _ in range(need):
        while True:
            try:
                p.produce(TOPIC, VALUE)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    p.flush(60)
    c = KafkaConsumer(
        TOPIC,
        bootstrap_servers=BOOTSTRAP,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="PLAIN",
        sasl_plain_username=os.environ["KEY_A"],
        sasl_plain_password=os.environ["SECRET_A"],
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=65536,
        fetch_max_bytes=65536,
    )
    got = []
    start = time.monotonic()
    while time.monotonic() < start + WARMUP + MEASURE:
        for records in c.poll(timeout_ms=200).values():
            now = time.monotonic()
            got.extend((now, len(r.value)) for r in records)
    c.close()
    window = (start + WARMUP, start + WARMUP + MEASURE)
    rate = sum(b for t, b in got if window[0] <= t < window[1]) / MEASURE
    print(json.dumps({"quota": RATE, "rate": rate, "records": len(got), "filled": need}))
    sys.exit(0 if abs(rate - RATE) <= 0.10 * RATE else 1)


{"produce": produce, "consume": consume}[sys.argv[1]]()
