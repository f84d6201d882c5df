"""Operations benchmark client (run by scripts/bench-operations).

1. Metrics and quotas on vs off, same run: two keygate instances in front of the same
   Tansu — OFF (metrics = false, no client quota), ON (metrics, and a client quota on
   the producing principal far above what it sends, so every request is metered and
   none throttled) — alternating rounds: gateway CPU per GB produced and consumed,
   and delivery p99 at a fixed rate.
2. Revocation latency: N open SASL connections of one key (raw sockets), then the
   REST disable of that key; the time until every one of them is closed. p50/p99.
"""

import asyncio
import base64
import json
import os
import struct
import time
import urllib.request
import uuid

from confluent_kafka import Consumer, Producer

INSTANCES = json.loads(os.environ["INSTANCES"])  # {"off": {...}, "on": {...}}
N = int(os.environ.get("MESSAGES", "100000"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
REVOCATIONS = json.loads(os.environ.get("REVOCATIONS", '{"1": 100, "100": 100, "1000": 20}'))
PAYLOAD = os.urandom(1024)
TOPIC = "bench"


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int((len(xs) - 1) * p))]


def conf(i):
    return {"bootstrap.servers": i["gateway"], "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN",
            "sasl.username": i["key"], "sasl.password": i["secret"]}


def produce(i):
    p = Producer({**conf(i), "linger.ms": 5, "acks": "all", "enable.idempotence": False})
    for k in range(N):
        while True:
            try:
                p.produce(TOPIC, PAYLOAD)
                break
            except BufferError:
                p.poll(0.01)
        if k % 1000 == 0:
            p.poll(0)
    p.flush(60)


def consume(i):
    c = Consumer({**conf(i), "group.id": "bench-" + uuid.uuid4().hex[:6], "auto.offset.reset": "earliest",
                  "enable.auto.commit": False, "fetch.wait.max.ms": 10})
    c.subscribe([TOPIC])
    got, deadline = 0, time.time() + 120
    while got < N and time.time() < deadline:
        got += sum(1 for m in c.consume(1000, 0.5) if not m.error())
    c.close()


def fixed_rate_p99(i, count=4000, rate=1000):
    p = Producer({**conf(i), "linger.ms": 0, "acks": "all", "enable.idempotence": False})
    lat = []
    p.produce(TOPIC, PAYLOAD)
    p.flush(10)
    start = time.perf_counter()
    for k in range(count):
        wait = start + k / rate - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        sent = time.perf_counter()
        p.produce(TOPIC, PAYLOAD, on_delivery=lambda e, m, s=sent: lat.append(time.perf_counter() - s) if e is None else None)
        p.poll(0)
    p.flush(30)
    return pct(lat, 0.99) * 1e3, pct(lat, 0.5) * 1e3


def on_off():
    res = {"off": {"cpu_per_gb": [], "p99": [], "p50": []}, "on": {"cpu_per_gb": [], "p99": [], "p50": []}}
    for r in range(ROUNDS):
        for name in ("off", "on"):
            i = INSTANCES[name]
            c0 = cpu_seconds(i["pid"])
            produce(i)
            consume(i)
            gb = 2 * N * len(PAYLOAD) / 1e9
            res[name]["cpu_per_gb"].append((cpu_seconds(i["pid"]) - c0) / gb)
            p99, p50 = fixed_rate_p99(i)
            res[name]["p99"].append(p99)
            res[name]["p50"].append(p50)
    med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    off, on = res["off"], res["on"]
    print(f"metrics+quotas off: CPU {med(off['cpu_per_gb']):.2f} s/GB, fixed-rate p50 {med(off['p50']):.2f} ms p99 {med(off['p99']):.2f} ms")
    print(f"metrics+quotas on:  CPU {med(on['cpu_per_gb']):.2f} s/GB, fixed-rate p50 {med(on['p50']):.2f} ms p99 {med(on['p99']):.2f} ms")
    print(f"on/off: CPU {med(on['cpu_per_gb']) / med(off['cpu_per_gb']):.3f}x, p99 {med(on['p99']) - med(off['p99']):+.2f} ms "
          f"(medians of {ROUNDS} alternating rounds; per round CPU off {['%.2f' % x for x in off['cpu_per_gb']]} on {['%.2f' % x for x in on['cpu_per_gb']]})")


# ---- revocation latency -------------------------------------------------------------------

def rest(i, method, path, body=None):
    auth = base64.b64encode(f"{i['admin_key']}:{i['admin_secret']}".encode()).decode()
    req = urllib.request.Request(i["rest"] + path, method=method, data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Authorization": "Basic " + auth, "Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        text = r.read()
        return json.loads(text) if text else None


def frame(api, version, corr, body):
    head = struct.pack(">hhih", api, version, corr, 1) + b"b"
    msg = head + body
    return struct.pack(">i", len(msg)) + msg


async def read_frame(r):
    n = struct.unpack(">i", await r.readexactly(4))[0]
    return await r.readexactly(n)


async def sasl(host, port, key, secret):
    r, w = await asyncio.open_connection(host, port)
    w.write(frame(17, 1, 1, struct.pack(">h", 5) + b"PLAIN"))
    await read_frame(r)
    token = f"\0{key}\0{secret}".encode()
    w.write(frame(36, 1, 2, struct.pack(">i", len(token)) + token))
    resp = await read_frame(r)
    assert resp[4:6] == b"\0\0", "SASL failed"
    return r, w


async def one_revocation(i, n, gateway=None):
    """Disable a key through `i`'s REST API while `n` connections of it are open at
    `gateway` (default: `i`'s own)."""
    k = rest(i, "POST", "/iam/v2/api-keys", {"spec": {"owner": {"id": i["sa"]}, "resource": {"id": i["lkc"], "environment": i["env"]}}})
    host, port = (gateway or i["gateway"]).rsplit(":", 1)
    deadline = time.time() + 10
    while True:  # the other instance learns the new key from the change feed
        try:
            _, probe = await sasl(host, int(port), k["id"], k["spec"]["secret"])
            probe.close()
            break
        except (AssertionError, ConnectionError, asyncio.IncompleteReadError):
            if time.time() > deadline:
                raise
            await asyncio.sleep(0.05)
    sem = asyncio.Semaphore(100)

    async def opened():
        async with sem:
            return await sasl(host, int(port), k["id"], k["spec"]["secret"])

    conns = await asyncio.gather(*(opened() for _ in range(n)))
    closed = []

    async def until_closed(r):
        data = await r.read(1)
        assert data == b"", "a revoked connection kept talking"
        closed.append(time.perf_counter())

    waits = [asyncio.create_task(until_closed(r)) for r, _ in conns]
    await asyncio.sleep(0.05)
    t0 = time.perf_counter()
    await asyncio.to_thread(rest, i, "POST", f"/iam/v2/api-keys/{k['id']}/disable", {})
    await asyncio.wait_for(asyncio.gather(*waits), 30)
    for _, w in conns:
        w.close()
    rest(i, "DELETE", f"/iam/v2/api-keys/{k['id']}")
    return (max(closed) - t0) * 1e3


async def revocations():
    i = INSTANCES["on"]
    for n, times in sorted(((int(a), b) for a, b in REVOCATIONS.items())):
        lat = [await one_revocation(i, n) for _ in range(times)]
        print(f"revocation, {n} open connection(s): p50 {pct(lat, 0.5):.1f} ms, p99 {pct(lat, 0.99):.1f} ms, max {max(lat):.1f} ms ({times} revocations; REST disable sent → every connection closed)")


async def revocations_pg():
    pg = INSTANCES["pg"]
    a = pg["a"]
    for n, times in ((1, 100), (100, 30)):
        lat = [await one_revocation(a, n, gateway=pg["b"]["gateway"]) for _ in range(times)]
        print(f"revocation across two instances on PostgreSQL, {n} connection(s) at B, disabled at A: p50 {pct(lat, 0.5):.1f} ms, p99 {pct(lat, 0.99):.1f} ms, max {max(lat):.1f} ms ({times} revocations)")


if os.environ.get("PART", "all") in ("all", "onoff"):
    on_off()
if os.environ.get("PART", "all") in ("all", "revocation"):
    asyncio.run(revocations())
if os.environ.get("PART", "all") in ("all", "revocation-pg"):
    asyncio.run(revocations_pg())
