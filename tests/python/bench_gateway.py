"""Gateway benchmark client (run by scripts/bench-gateway).

The same confluent-kafka producer/consumer workload runs directly against Tansu and
through the keygate gateway, alternating, so both see the same machine state. Also
measures the time from a REST create-key response to the first successful SASL/PLAIN
authentication with that key, over a raw socket (no client start-up in the figure).
"""

import base64
import json
import os
import socket
import struct
import time
import urllib.request
import uuid

from confluent_kafka import Consumer, Producer

DIRECT = os.environ["DIRECT"]
GATEWAY = os.environ["GATEWAY"]
KEY, SECRET = os.environ["KEY"], os.environ["SECRET"]
REST, ADMIN_KEY, ADMIN_SECRET = os.environ["REST"], os.environ["ADMIN_KEY"], os.environ["ADMIN_SECRET"]
SA, LKC = os.environ["SA"], os.environ["LKC"]
TOPIC = os.environ.get("TOPIC", "bench")
N = int(os.environ.get("MESSAGES", "100000"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
PID = int(os.environ["KEYGATE_PID"])
PAYLOAD = os.urandom(1024)


def conf(via_gateway):
    if not via_gateway:
        return {"bootstrap.servers": DIRECT}
    return {"bootstrap.servers": GATEWAY, "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN",
            "sasl.username": KEY, "sasl.password": SECRET}


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int((len(xs) - 1) * p))]


def produce(via_gateway):
    p = Producer({**conf(via_gateway), "linger.ms": 5, "acks": "all", "enable.idempotence": False})
    lat = []

    def cb(err, msg, sent):
        if err is None:
            lat.append(time.perf_counter() - sent)

    start = time.perf_counter()
    for i in range(N):
        sent = time.perf_counter()
        while True:
            try:
                p.produce(TOPIC, PAYLOAD, on_delivery=lambda e, m, s=sent: cb(e, m, s))
                break
            except BufferError:
                p.poll(0.01)
        if i % 1000 == 0:
            p.poll(0)
    p.flush(60)
    secs = time.perf_counter() - start
    return secs, lat


def fixed_rate_latency(via_gateway, count=int(os.environ.get("LATENCY_MESSAGES", "6000")), rate=2000):
    """Produce at a fixed rate, well below saturation, with no batching delay: the
    delivery latency then measures the path, not queueing."""
    p = Producer({**conf(via_gateway), "linger.ms": 0, "acks": "all", "enable.idempotence": False})
    lat = []
    p.produce(TOPIC, PAYLOAD)
    p.flush(10)
    start = time.perf_counter()
    for i in range(count):
        due = start + i / rate
        # Sleep, not spin: on 2 cores a spinning client steals the CPU that Tansu and
        # the gateway need, and the p99 then measures the scheduler.
        wait = due - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        sent = time.perf_counter()
        p.produce(TOPIC, PAYLOAD, on_delivery=lambda e, m, s=sent: lat.append(time.perf_counter() - s) if e is None else None)
        p.poll(0)
    p.flush(30)
    return lat


def consume(via_gateway, expect):
    c = Consumer({**conf(via_gateway), "group.id": "bench-" + uuid.uuid4().hex[:6], "auto.offset.reset": "earliest",
                  "enable.auto.commit": False, "fetch.wait.max.ms": 10})
    c.subscribe([TOPIC])
    # Timed from the first message: joining a fresh group (rebalance delays) is not
    # throughput, and is the same protocol exchange either way.
    got, start, deadline = 0, None, time.time() + 120
    while got < expect and time.time() < deadline:
        msgs = c.consume(1000, 0.5)
        n = sum(1 for m in msgs if not m.error())
        if n and start is None:
            start = time.perf_counter()
        got += n
    secs = time.perf_counter() - (start or time.perf_counter())
    c.close()
    return secs, got


def sasl_auth(host, port, key, secret):
    """SaslHandshake v1 + SaslAuthenticate v1 over a raw socket; True on success."""
    s = socket.create_connection((host, port), timeout=5)

    def call(api_key, version, corr, body):
        client = b"bench"
        header = struct.pack(">hhih", api_key, version, corr, len(client)) + client
        msg = header + body
        s.sendall(struct.pack(">i", len(msg)) + msg)
        n = struct.unpack(">i", s.recv(4, socket.MSG_WAITALL))[0]
        return s.recv(n, socket.MSG_WAITALL)

    mech = b"PLAIN"
    r = call(17, 1, 1, struct.pack(">h", len(mech)) + mech)
    if struct.unpack(">h", r[4:6])[0] != 0:
        return False
    token = b"\0" + key.encode() + b"\0" + secret.encode()
    r = call(36, 1, 2, struct.pack(">i", len(token)) + token)
    s.close()
    return struct.unpack(">h", r[4:6])[0] == 0


def create_key():
    body = json.dumps({"spec": {"owner": {"id": SA}, "resource": {"id": LKC}}}).encode()
    req = urllib.request.Request(f"{REST}/iam/v2/api-keys", data=body, method="POST",
                                 headers={"Content-Type": "application/json",
                                          "Authorization": "Basic " + base64.b64encode(f"{ADMIN_KEY}:{ADMIN_SECRET}".encode()).decode()})
    with urllib.request.urlopen(req) as resp:
        k = json.load(resp)
    return k["id"], k["spec"]["secret"]


def main():
    results = {"direct": [], "gateway": []}
    for r in range(ROUNDS):
        for mode in ("direct", "gateway"):
            via = mode == "gateway"
            cpu0 = cpu_seconds(PID)
            psecs, lat = produce(via)
            csecs, got = consume(via, N * (r + 1))
            cpu1 = cpu_seconds(PID)
            results[mode].append({"produce_s": psecs, "consume_s": csecs, "lat": lat, "got": got, "cpu": cpu1 - cpu0})
    mb = N * len(PAYLOAD) / 1e6
    out = {}
    for mode, rs in results.items():
        lat = [x for r in rs for x in r["lat"]]
        out[mode] = {
            "produce_MBps": sum(mb / r["produce_s"] for r in rs) / len(rs),
            "consume_MBps": sum(mb * (i + 1) / r["consume_s"] for i, r in enumerate(rs)) / len(rs),
            "produce_p50_ms": pct(lat, 0.5) * 1e3,
            "produce_p99_ms": pct(lat, 0.99) * 1e3,
            "keygate_cpu_s": sum(r["cpu"] for r in rs),
        }
    # Bytes moved through the gateway: each round produces N and consumes everything so far.
    gw_bytes = sum(N * len(PAYLOAD) * (1 + (i + 1)) for i in range(ROUNDS))
    gw_secs = sum(r["produce_s"] + r["consume_s"] for r in results["gateway"])
    cpu_per_gb = (out["gateway"]["keygate_cpu_s"] - out["direct"]["keygate_cpu_s"]) / (gw_bytes / 1e9)
    mbps = gw_bytes / 1e6 / gw_secs
    fixed = {"direct": [], "gateway": []}
    for _ in range(2):
        for mode in ("direct", "gateway"):
            fixed[mode] += fixed_rate_latency(mode == "gateway")
    fixed_summary = {m: {"p50_ms": pct(v, 0.5) * 1e3, "p99_ms": pct(v, 0.99) * 1e3, "n": len(v)} for m, v in fixed.items()}
    host, port = GATEWAY.split(":")
    create_to_auth = []
    for _ in range(int(os.environ.get("KEYS", "200"))):
        k, s = create_key()
        t0 = time.perf_counter()
        while not sasl_auth(host, int(port), k, s):
            pass
        create_to_auth.append(time.perf_counter() - t0)
    summary = {
        "messages_per_round": N, "rounds": ROUNDS, "payload_bytes": len(PAYLOAD),
        "direct": out["direct"], "gateway": out["gateway"],
        "produce_throughput_ratio": out["gateway"]["produce_MBps"] / out["direct"]["produce_MBps"],
        "consume_throughput_ratio": out["gateway"]["consume_MBps"] / out["direct"]["consume_MBps"],
        "produce_p50_delta_ms": out["gateway"]["produce_p50_ms"] - out["direct"]["produce_p50_ms"],
        "produce_p99_delta_ms": out["gateway"]["produce_p99_ms"] - out["direct"]["produce_p99_ms"],
        "gateway_cpu_s_per_GB": cpu_per_gb,
        "gateway_millicores_per_MBps": 1000 * cpu_per_gb / 1000,
        "gateway_MBps_during_rounds": mbps,
        "keygate_rss_MiB": rss_mib(PID),
        "fixed_rate_2000_per_s": fixed_summary,
        "fixed_rate_p50_delta_ms": fixed_summary["gateway"]["p50_ms"] - fixed_summary["direct"]["p50_ms"],
        "fixed_rate_p99_delta_ms": fixed_summary["gateway"]["p99_ms"] - fixed_summary["direct"]["p99_ms"],
        "create_key_to_first_auth_ms": {"p50": pct(create_to_auth, 0.5) * 1e3, "p99": pct(create_to_auth, 0.99) * 1e3,
                                         "max": max(create_to_auth) * 1e3, "n": len(create_to_auth)},
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
