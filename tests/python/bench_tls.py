"""TLS benchmark client (run by scripts/bench-tls).

The same confluent-kafka load runs through keygate's gateway and through HAProxy (TCP
mode), each in front of its own Tansu broker, alternating, in three modes: plaintext,
TLS on the client side, TLS on both sides. For each it reports the proxy process's CPU
seconds per GB carried (produce + consume, 1 KiB messages) and its CPU per request
with one message per request and one in flight, and the keygate / HAProxy ratios.

Settings come from the environment: TARGETS (JSON: mode -> proxy -> {pid, conf}),
MESSAGES, ROUNDS, REQUESTS, and optionally MODES and WHAT (subsets).
"""

import json
import os
import statistics
import time
import uuid

from confluent_kafka import Consumer, Producer

TARGETS = json.loads(os.environ["TARGETS"])
N = int(os.environ.get("MESSAGES", "100000"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
REQUESTS = int(os.environ.get("REQUESTS", "3000"))
# A comma-separated subset of plain,tls-client,tls-both (default: all).
MODES = [m for m in os.environ.get("MODES", "").split(",") if m]
WHAT = [w for w in os.environ.get("WHAT", "bulk,request").split(",") if w]
TOPIC = "bench"
PAYLOAD = os.urandom(1024)


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def produce(conf, n):
    p = Producer({**conf, "linger.ms": 5, "acks": "all", "enable.idempotence": False})
    for i in range(n):
        while True:
            try:
                p.produce(TOPIC, PAYLOAD)
                break
            except BufferError:
                p.poll(0.01)
        if i % 1000 == 0:
            p.poll(0)
    left = p.flush(60)
    assert left == 0, f"{left} messages not delivered"


def consume(conf, n):
    c = Consumer({**conf, "group.id": "bench-" + uuid.uuid4().hex[:6], "auto.offset.reset": "earliest",
                  "enable.auto.commit": False, "fetch.wait.max.ms": 10})
    c.subscribe([TOPIC])
    got, deadline = 0, time.time() + 180
    while got < n and time.time() < deadline:
        got += sum(1 for m in c.consume(1000, 0.5) if not m.error())
    c.close()
    assert got >= n, f"consumed {got} of {n}"


def one_in_flight(conf, n):
    """One message per request, one request in flight: the per-request cost."""
    p = Producer({**conf, "linger.ms": 0, "acks": "all", "enable.idempotence": False,
                  "max.in.flight.requests.per.connection": 1})
    p.produce(TOPIC, PAYLOAD)
    p.flush(10)
    for _ in range(n):
        p.produce(TOPIC, PAYLOAD)
        p.flush(10)


def measure(target, what):
    pid, conf = target["pid"], target["conf"]
    before = cpu_seconds(pid)
    if what == "bulk":
        produce(conf, N)
        consume(conf, N)
        gb = 2 * N * len(PAYLOAD) / 1e9
        return (cpu_seconds(pid) - before) / gb
    one_in_flight(conf, REQUESTS)
    return (cpu_seconds(pid) - before) / REQUESTS * 1e6


def main():
    results = {}
    for mode, proxies in TARGETS.items():
        if MODES and mode not in MODES:
            continue
        # Warm up: first connections, discovery, the broker's topic state.
        for target in proxies.values():
            produce(target["conf"], 2000)
            consume(target["conf"], 2000)
        for what in WHAT:
            runs = {name: [] for name in proxies}
            for r in range(ROUNDS):
                # Alternate the order so neither proxy always runs on a warmer machine.
                order = list(proxies) if r % 2 == 0 else list(reversed(list(proxies)))
                for name in order:
                    runs[name].append(measure(proxies[name], what))
            med = {name: statistics.median(v) for name, v in runs.items()}
            # CPU time comes in clock ticks (10 ms): too short a run can read 0.
            ratio = med["keygate"] / med["haproxy"] if med["haproxy"] > 0 else float("nan")
            results.setdefault(mode, {})[what] = {"median": med, "runs": runs, "ratio": ratio}
            unit = "CPU s/GB" if what == "bulk" else "CPU µs/request"
            print(f"{mode:10} {what:8} keygate {med['keygate']:8.2f}  haproxy {med['haproxy']:8.2f}  {unit}"
                  f"  ratio {ratio:.2f}", flush=True)
    print(json.dumps(results))


main()
