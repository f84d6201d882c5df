"""A real Apache Flink cluster's REST API through keygate's HTTP gateway, with Python
requests: who may submit, see and cancel which jobs.

Env: GW (the region's base URL through the gateway), OTHER_GW (a region of another
environment), JAR (a jar whose job runs until cancelled), and keys as KEY:SECRET —
DEV1, DEV2 (FlinkDeveloper), OPER (Operator), ADMIN (FlinkAdmin), OUT (no role).
FLINK_HOME and FLINK_CONF_DIR: the distribution whose own `flink` CLI submits and
cancels a job through the gateway too (its REST client pointed at the gateway with
`rest.path`, the key in `FLINK_REST_CLIENT_HEADERS`).
"""
import base64
import os
import re
import subprocess
import sys
import time
from urllib.parse import urlsplit

import requests

GW, OTHER = os.environ["GW"], os.environ["OTHER_GW"]


def auth(name):
    k, s = os.environ[name].split(":", 1)
    return (k, s)


def call(who, method, path, base=GW, **kw):
    return requests.request(method, base + path, auth=auth(who), timeout=60, **kw)


def expect(r, status, what):
    if r.status_code != status:
        print(f"FAIL {what}: {r.status_code} (wanted {status}) {r.text[:300]}")
        sys.exit(1)
    print(f"ok {what}: {status}")
    return r


# A developer uploads and runs its jar; the job is its own.
with open(os.environ["JAR"], "rb") as f:
    up = expect(call("DEV1", "POST", "/jars/upload", files={"jarfile": ("forever.jar", f, "application/x-java-archive")}), 200, "dev1 uploads a jar")
jar = up.json()["filename"].rsplit("/", 1)[-1]
job = expect(call("DEV1", "POST", f"/jars/{jar}/run", json={}), 200, "dev1 runs its jar").json()["jobid"]
deadline = time.time() + 60
while call("DEV1", "GET", f"/jobs/{job}").json().get("state") != "RUNNING":
    assert time.time() < deadline, "the job never ran"
    time.sleep(0.5)
print("job running", job)
expect(call("DEV1", "GET", f"/jobs/{job}/exceptions"), 200, "dev1 reads its job")
ids = [j["id"] for j in expect(call("DEV1", "GET", "/jobs"), 200, "dev1 lists jobs").json()["jobs"]]
assert ids == [job], ids
assert [f["id"] for f in call("DEV1", "GET", "/jars").json()["files"]] == [jar]

# Another developer sees none of it and may not touch it.
expect(call("DEV2", "GET", f"/jobs/{job}"), 403, "dev2 reads dev1's job")
expect(call("DEV2", "PATCH", f"/jobs/{job}", params={"mode": "cancel"}), 403, "dev2 cancels dev1's job")
expect(call("DEV2", "POST", f"/jars/{jar}/run", json={}), 403, "dev2 runs dev1's jar")
expect(call("DEV2", "DELETE", f"/jars/{jar}"), 403, "dev2 deletes dev1's jar")
assert call("DEV2", "GET", "/jobs").json()["jobs"] == [], "dev2 sees dev1's job"
assert call("DEV2", "GET", "/jobs/overview").json()["jobs"] == [], "dev2 sees dev1's job in the overview"
assert call("DEV2", "GET", "/jars").json()["files"] == [], "dev2 sees dev1's jar"
print("ok dev2's listings are empty")

# The operator reads everything and changes nothing; a principal without a role nothing.
assert job in [j["jid"] for j in expect(call("OPER", "GET", "/jobs/overview"), 200, "operator lists").json()["jobs"]]
expect(call("OPER", "GET", f"/jobs/{job}"), 200, "operator reads the job")
expect(call("OPER", "PATCH", f"/jobs/{job}", params={"mode": "cancel"}), 403, "operator cancels")
expect(call("OPER", "POST", "/jars/upload", files={"jarfile": ("x.jar", b"PK", "application/x-java-archive")}), 403, "operator uploads")
expect(call("OUT", "GET", "/overview"), 403, "no role: overview")
expect(call("OUT", "GET", "/jobs"), 403, "no role: jobs")

# A key for this region is worth nothing in another environment's.
expect(call("DEV1", "GET", "/overview", base=OTHER), 401, "dev1's key in another environment")


def cli(who, *args):
    """Flink's own CLI, its REST client pointed at the gateway's path for the region."""
    gw = urlsplit(GW)
    token = base64.b64encode(os.environ[who].encode()).decode()
    env = dict(os.environ, FLINK_REST_CLIENT_HEADERS=f"Authorization:Basic {token}")
    cmd = [f"{os.environ['FLINK_HOME']}/bin/flink", args[0],
           f"-Drest.address={gw.hostname}", f"-Drest.port={gw.port}",
           f"-Drest.path={gw.path}", *args[1:]]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)


# Flink's own CLI submits through the gateway; the job is the submitter's.
run = cli("DEV2", "run", "-d", os.environ["JAR"])
found = re.search(r"JobID ([0-9a-f]{32})", run.stdout + run.stderr)
if run.returncode != 0 or not found:
    print("FAIL the flink CLI submits through the gateway:", run.stdout[-2000:], run.stderr[-2000:])
    sys.exit(1)
cli_job = found.group(1)
print("ok the flink CLI submitted", cli_job)
ids = [j["id"] for j in call("DEV2", "GET", "/jobs").json()["jobs"]]
assert ids == [cli_job], ids
assert cli_job not in [j["id"] for j in call("DEV1", "GET", "/jobs").json()["jobs"]], "dev1 sees dev2's CLI job"
denied = cli("DEV1", "cancel", cli_job)
assert denied.returncode != 0, "dev1 cancelled dev2's job with the CLI: " + denied.stdout[-3000:] + denied.stderr[-3000:]
listed = cli("DEV1", "list")
assert listed.returncode == 0 and cli_job not in listed.stdout, listed.stdout + listed.stderr
stolen = cli("OUT", "list")
assert stolen.returncode != 0, "a key without a role lists jobs with the CLI"
done = cli("DEV2", "cancel", cli_job)
assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
deadline = time.time() + 60
while call("DEV2", "GET", f"/jobs/{cli_job}").json().get("state") != "CANCELED":
    assert time.time() < deadline, "the CLI's cancel did not cancel"
    time.sleep(0.5)
print("ok the flink CLI: own job submitted, listed, cancelled; others' refused")

# The owner cancels its job; the admin sees and deletes everything.
expect(call("DEV1", "PATCH", f"/jobs/{job}", params={"mode": "cancel"}), 202, "dev1 cancels its job")
assert job in [j["id"] for j in expect(call("ADMIN", "GET", "/jobs"), 200, "admin lists").json()["jobs"]]
expect(call("ADMIN", "DELETE", f"/jars/{jar}"), 200, "admin deletes dev1's jar")
print("flink scenario ok")
