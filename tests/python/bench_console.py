"""Console page latency with many keys (run by scripts/bench-console).

Creates KEYS API keys over REST (spread over service accounts), sets the admin's
password, signs in to the console like a browser (cookie), then loads every main
page ROUNDS times and prints p50 / p95 / max server-to-client times. Baseline in the
same run: GET /healthz (the smallest response the same server gives).
"""

import base64
import concurrent.futures
import http.cookiejar
import json
import os
import statistics
import time
import urllib.parse
import urllib.request

REST, AK, AS = os.environ["REST"], os.environ["ADMIN_KEY"], os.environ["ADMIN_SECRET"]
KEYS = int(os.environ.get("KEYS", "10000"))
ROUNDS = int(os.environ.get("ROUNDS", "20"))
AUTH = "Basic " + base64.b64encode(f"{AK}:{AS}".encode()).decode()


def call(method, path, body=None):
    req = urllib.request.Request(REST + path, method=method, data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Authorization": AUTH, "Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        text = r.read()
        return json.loads(text) if text else None


me = call("GET", "/iam/v2/users")["data"][0]["id"]
env = call("POST", "/org/v2/environments", {"display_name": "bench"})["id"]
lkc = call("POST", "/cmk/v2/clusters", {"spec": {"display_name": "bench", "environment": {"id": env}, "upstream": "127.0.0.1:9"}})["id"]
sas = [call("POST", "/iam/v2/service-accounts", {"display_name": f"bench-{i}", "description": ""})["id"] for i in range(20)]
start = time.time()
with concurrent.futures.ThreadPoolExecutor(8) as pool:
    list(pool.map(lambda i: call("POST", "/iam/v2/api-keys", {"spec": {"owner": {"id": sas[i % len(sas)]}, "resource": {"id": lkc}, "description": f"bench key {i}"}}), range(KEYS)))
print(f"created {KEYS} keys in {time.time() - start:.1f} s")
call("POST", f"/iam/v2/users/{me}/password", {"password": "benchmark password 1"})

jar = http.cookiejar.CookieJar()
opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
form = urllib.parse.urlencode({"email": "admin@keygate.local", "password": "benchmark password 1"}).encode()
opener.open(urllib.request.Request(REST + "/console/login", data=form, method="POST"))
assert any(c.name == "kg_session" for c in jar), "signed in"

pages = ["/healthz", "/console/service-accounts", "/console/api-keys", "/console/api-keys?page=199", "/console/api-keys/new",
         "/console/environments", "/console/role-bindings", f"/console/clusters/{lkc}/acls", "/console/identity-providers",
         "/console/audit"]
print(f"{'page':<36} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'bytes':>8}")
for p in pages:
    times, size = [], 0
    for _ in range(ROUNDS):
        t = time.perf_counter()
        with opener.open(REST + p) as r:
            body = r.read()
            assert r.status == 200, p
        times.append((time.perf_counter() - t) * 1000)
        size = len(body)
    times.sort()
    print(f"{p:<36} {statistics.median(times):8.1f} {times[int(len(times) * 0.95) - 1]:8.1f} {times[-1]:8.1f} {size:8d}")
