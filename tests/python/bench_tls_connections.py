"""Connection benchmarks of the TLS gateway (run by scripts/bench-tls-connections).

Raw Kafka frames over asyncio + ssl, so the figures are the gateway's, not a client
library's start-up:
- idle: N connections authenticated over TLS (SASL/PLAIN) and kept open; the gateway's
  RSS per connection;
- rate: new connections per second, TLS handshake + SASL/PLAIN, and TLS handshake with
  a client certificate (a certificate pool; the first ApiVersions answer proves the
  session), C at a time for S seconds;
- storm (after the script restarted keygate): N clients connecting and authenticating
  at once — the time until all are served, and the worst answer time seen meanwhile by
  a client that was already connected.
"""

import asyncio
import json
import os
import resource
import ssl
import struct
import sys
import time

HOST, PORT = os.environ["HOST"], int(os.environ["PORT"])
KEY, SECRET = os.environ["KEY"], os.environ["SECRET"]
CA, CERT, CERT_KEY = os.environ["CA"], os.environ["CERT"], os.environ["CERT_KEY"]
PID = int(os.environ["KEYGATE_PID"])

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def context(with_cert):
    ctx = ssl.create_default_context(cafile=CA)
    if with_cert:
        ctx.load_cert_chain(CERT, CERT_KEY)
    return ctx


PLAIN_CTX, CERT_CTX = context(False), context(True)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def call(reader, writer, api_key, version, corr, body):
    client = b"bench"
    header = struct.pack(">hhih", api_key, version, corr, len(client)) + client
    msg = header + body
    writer.write(struct.pack(">i", len(msg)) + msg)
    await writer.drain()
    n = struct.unpack(">i", await reader.readexactly(4))[0]
    return await reader.readexactly(n)


async def connect_plain():
    """TLS, then SaslHandshake v1 + SaslAuthenticate v1 (PLAIN). Returns the streams."""
    reader, writer = await asyncio.open_connection(HOST, PORT, ssl=PLAIN_CTX, server_hostname=HOST)
    mech = b"PLAIN"
    r = await call(reader, writer, 17, 1, 1, struct.pack(">h", len(mech)) + mech)
    assert struct.unpack(">h", r[4:6])[0] == 0, "SaslHandshake refused"
    token = b"\0" + KEY.encode() + b"\0" + SECRET.encode()
    r = await call(reader, writer, 36, 1, 2, struct.pack(">i", len(token)) + token)
    assert struct.unpack(">h", r[4:6])[0] == 0, "SaslAuthenticate refused"
    return reader, writer


async def connect_cert():
    """TLS with a client certificate, then ApiVersions v0 (answered once the
    certificate authenticated the session)."""
    reader, writer = await asyncio.open_connection(HOST, PORT, ssl=CERT_CTX, server_hostname=HOST)
    await call(reader, writer, 18, 0, 1, b"")
    return reader, writer


async def idle(n):
    before = rss_kib(PID)
    conns, sem = [], asyncio.Semaphore(200)

    async def one():
        async with sem:
            conns.append(await connect_plain())

    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    took = time.perf_counter() - start
    await asyncio.sleep(2)
    after = rss_kib(PID)
    for _, w in conns:
        w.close()
    return {"connections": n, "rss_before_mib": before / 1024, "rss_after_mib": after / 1024,
            "rss_per_connection_kib": (after - before) / n, "open_seconds": took}


async def rate(connect, seconds, concurrency):
    done, failed, stop = 0, 0, time.perf_counter() + seconds

    async def worker():
        nonlocal done, failed
        while time.perf_counter() < stop:
            try:
                _, w = await connect()
                w.close()
                done += 1
            except Exception:  # noqa: BLE001 - counted
                failed += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return {"per_second": done / (time.perf_counter() - start), "failed": failed}


async def watch():
    """A client already connected: ApiVersions every 20 ms until stdin closes; prints
    the worst and the 99th-percentile answer times. Its own process, so the storm's
    client-side work does not delay it."""
    r0, w0 = await connect_plain()
    times, corr = [], 10
    stop = asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    print("ready", flush=True)
    while not stop.done():
        t = time.perf_counter()
        await call(r0, w0, 18, 0, corr, b"")
        times.append(time.perf_counter() - t)
        corr += 1
        await asyncio.sleep(0.02)
    times.sort()
    return {"answers": len(times), "worst_ms": times[-1] * 1000,
            "p99_ms": times[int(len(times) * 0.99)] * 1000}


async def storm(n):
    """Everyone at once, while a client connected before keeps asking (in its own
    process)."""
    watcher = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "watch", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    assert (await watcher.stdout.readline()).strip() == b"ready"
    await asyncio.sleep(0.5)
    served, failed = 0, 0

    async def one():
        nonlocal served, failed
        for attempt in range(20):
            try:
                _, w = await connect_plain()
                served += 1
                return w
            except Exception:  # noqa: BLE001 - clients retry, as real ones do
                await asyncio.sleep(0.05 * (attempt + 1))
        failed += 1
        return None

    start = time.perf_counter()
    writers = await asyncio.gather(*(one() for _ in range(n)))
    took = time.perf_counter() - start
    watcher.stdin.close()
    seen = json.loads((await watcher.stdout.read()).decode())
    await watcher.wait()
    for w in writers:
        if w:
            w.close()
    return {"clients": n, "served": served, "failed": failed, "seconds_until_all_served": took,
            "connected_client": seen["watch"]}


async def main():
    what = sys.argv[1]
    n = int(os.environ.get("N", "10000"))
    if what == "idle":
        out = await idle(n)
    elif what == "watch":
        out = await watch()
    elif what == "rate":
        out = {"plain_over_tls": await rate(connect_plain, 10, 32),
               "certificate_pool": await rate(connect_cert, 10, 32)}
    else:
        out = await storm(n)
    print(json.dumps({what: out}), flush=True)


asyncio.run(main())
