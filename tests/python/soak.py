"""Soak with churn (scripts/soak MINUTES): confluent-kafka producers and consumers
through keygate's gateway while a driver keeps creating, rotating, disabling, enabling
and deleting keys and adding and removing ACLs and role bindings. An oracle replays the
driver's change log: each produce is judged against the permissions in force over its
whole life (sent → delivery report), widened by the propagation bound at every change;
a produce whose window a relevant change touches is not judged. Results:

- false allows: a produce succeeded although no key/permission allowed it at any
  moment of its window;
- false denials: a produce was refused although a valid key and a permission held over
  its whole window (and the bound before it);
- lost: a message whose delivery was acknowledged and that no consumer read back;
- resident memory and file descriptors of the keygate process: the last half of the
  run must not grow over the first (max of the last half ≤ the first half's max plus
  10 % or 8 MiB, whichever is more — a 2-minute run is still warming its caches;
  descriptors ≤ first-half max + 16).

Environment: REST, ADMIN_KEY, ADMIN_SECRET, LKC, ENV, BOOTSTRAP, PID, MINUTES, TOPICS.
Prints one JSON summary line; exits 1 when any result fails.
"""

import json
import os
import random
import sys
import threading
import time
import base64
import logging
import urllib.request
import urllib.error

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer

REST = os.environ["REST"]
AUTH = "Basic " + base64.b64encode(
    f"{os.environ['ADMIN_KEY']}:{os.environ['ADMIN_SECRET']}".encode()
).decode()
LKC, ENV, BOOT = os.environ["LKC"], os.environ["ENV"], os.environ["BOOTSTRAP"]
PID = int(os.environ["PID"])
SECONDS = float(os.environ.get("MINUTES", "2")) * 60
TOPICS = os.environ.get("TOPICS", "soak-0,soak-1,soak-2,soak-3").split(",")
PRINCIPALS = int(os.environ.get("PRINCIPALS", "4"))
BOUND = float(os.environ.get("BOUND_S", "1.0"))  # the propagation bound
SEED = int(os.environ.get("SEED", "2026"))
rnd = random.Random(SEED)


def rest(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(REST + path, data=data, method=method)
    req.add_header("Authorization", AUTH)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            raw = r.read()
            return r.status, (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def ok(method, path, body, want):
    code, b = rest(method, path, body)
    if code != want:
        raise SystemExit(f"{method} {path}: {code} {b}")
    return b


ORG = ok("GET", "/org/v2/organizations", None, 200)["data"][0]["metadata"]["resource_name"]


def topic_crn(topic):
    return f"{ORG}/environment={ENV}/cloud-cluster={LKC}/kafka={LKC}/topic={topic}"


# ---- the change log -------------------------------------------------------------
# Each entry: (t_send, t_ack, subject, value); subject is ("key", key_id) with value
# True/False (valid or not) or ("perm", sa, topic, "acl"|"binding") with True/False.
changes = []
changes_lock = threading.Lock()


def record(t_send, subject, value):
    with changes_lock:
        changes.append((t_send, time.monotonic(), subject, value))


class Account:
    def __init__(self, i):
        self.sa = ok("POST", "/iam/v2/service-accounts", {"display_name": f"soak-{i}"}, 201)["id"]
        self.key = None  # (id, secret) the clients use
        self.enabled = False
        self.acl = {t: False for t in TOPICS}
        self.binding = {t: None for t in TOPICS}
        self.lock = threading.Lock()


accounts = [Account(i) for i in range(PRINCIPALS)]


def new_key(a):
    t = time.monotonic()
    b = ok("POST", "/iam/v2/api-keys",
           {"spec": {"owner": {"id": a.sa}, "resource": {"id": LKC}}}, 202)
    kid, secret = b["id"], b["spec"]["secret"]
    record(t, ("key", kid), True)
    return kid, secret


def churn_once():
    a = rnd.choice(accounts)
    topic = rnd.choice(TOPICS)
    action = rnd.choice(["rotate", "disable", "enable", "delete", "acl", "acl", "binding", "binding"])
    if action == "rotate" or a.key is None:
        old = a.key
        a.key = new_key(a)
        a.enabled = True
        if old:
            t = time.monotonic()
            ok("DELETE", f"/iam/v2/api-keys/{old[0]}", None, 204)
            record(t, ("key", old[0]), False)
    elif action in ("disable", "enable"):
        t = time.monotonic()
        ok("POST", f"/iam/v2/api-keys/{a.key[0]}/{action}", None, 200)
        a.enabled = action == "enable"
        record(t, ("key", a.key[0]), a.enabled)
    elif action == "delete":
        t = time.monotonic()
        ok("DELETE", f"/iam/v2/api-keys/{a.key[0]}", None, 204)
        record(t, ("key", a.key[0]), False)
        a.key = new_key(a)
        a.enabled = True
    elif action == "acl":
        t = time.monotonic()
        if a.acl[topic]:
            q = (f"?resource_type=TOPIC&resource_name={topic}&pattern_type=LITERAL"
                 f"&principal=User:{a.sa}&operation=WRITE&permission=ALLOW")
            ok("DELETE", f"/kafka/v3/clusters/{LKC}/acls{q}", None, 200)
        else:
            ok("POST", f"/kafka/v3/clusters/{LKC}/acls",
               {"resource_type": "TOPIC", "resource_name": topic, "pattern_type": "LITERAL",
                "principal": f"User:{a.sa}", "host": "*", "operation": "WRITE",
                "permission": "ALLOW"}, 201)
        a.acl[topic] = not a.acl[topic]
        record(t, ("perm", a.sa, topic, "acl"), a.acl[topic])
    else:
        t = time.monotonic()
        if a.binding[topic]:
            ok("DELETE", f"/iam/v2/role-bindings/{a.binding[topic]}", None, 200)
            a.binding[topic] = None
        else:
            a.binding[topic] = ok("POST", "/iam/v2/role-bindings",
                                  {"principal": f"User:{a.sa}", "role_name": "DeveloperWrite",
                                   "crn_pattern": topic_crn(topic)}, 201)["id"]
        record(t, ("perm", a.sa, topic, "binding"), a.binding[topic] is not None)


# ---- the oracle -----------------------------------------------------------------
def judge(kid, sa, topic, start, end):
    """True / False when the permission was the same over [start - BOUND, end] and
    over each relevant change's [send, ack + BOUND]; None when a change touched it."""
    with changes_lock:
        log = list(changes)
    key_valid, perm = False, {"acl": False, "binding": False}
    for t_send, t_ack, subject, value in log:
        relevant = subject == ("key", kid) or subject[:3] == ("perm", sa, topic)
        if not relevant:
            continue
        if t_send <= end and t_ack + BOUND >= start - BOUND:
            return None
        if t_ack + BOUND < start:
            if subject[0] == "key":
                key_valid = value
            else:
                perm[subject[3]] = value
    return key_valid and (perm["acl"] or perm["binding"])


results = {"judged": 0, "unjudged": 0, "false_allow": 0, "false_deny": 0, "timeouts": 0,
           "acked": 0, "examples": []}
results_lock = threading.Lock()
acked_ids = set()
DENIED = {KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError._AUTHENTICATION,
          KafkaError.SASL_AUTHENTICATION_FAILED, KafkaError.CLUSTER_AUTHORIZATION_FAILED}
stop = threading.Event()
QUIET = logging.getLogger("librdkafka")
QUIET.setLevel(logging.CRITICAL)


def producer_for(kid, secret):
    return Producer({
        "bootstrap.servers": BOOT, "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanisms": "PLAIN", "sasl.username": kid, "sasl.password": secret,
        "message.timeout.ms": 4000, "reconnect.backoff.max.ms": 500,
        "allow.auto.create.topics": False, "linger.ms": 0,
        "logger": QUIET,
    })


def produce_loop(a, n):
    current, p = None, None
    seq = 0
    while not stop.is_set():
        key = a.key
        if key is None:
            time.sleep(0.05)
            continue
        if key != current:
            current, p = key, producer_for(*key)
        topic = rnd.choice(TOPICS)
        seq += 1
        payload = f"{a.sa}-{n}-{seq}"
        outcome = {}
        start = time.monotonic()
        try:
            p.produce(topic, payload.encode(),
                      on_delivery=lambda err, msg: outcome.setdefault("err", err))
            p.flush(10)
        except KafkaException as e:  # refused from metadata before sending
            outcome["err"] = e.args[0]
        end = time.monotonic()
        err = outcome.get("err", "no delivery report")
        with results_lock:
            if err is None:
                results["acked"] += 1
                acked_ids.add(payload)
            # Judged after the run: a change still in flight now is in the log then.
            outcomes.append((current[0], a.sa, topic, start, end, err, payload))
        if err is not None:
            current, p = None, None  # a refused or lost session: start afresh
        time.sleep(0.02)


outcomes = []


def judge_all():
    for kid, sa, topic, start, end, err, payload in outcomes:
        verdict = judge(kid, sa, topic, start, end)
        if verdict is None:
            results["unjudged"] += 1
            continue
        results["judged"] += 1
        refused = isinstance(err, KafkaError) and err.code() in DENIED
        if err is None and not verdict:
            results["false_allow"] += 1
            results["examples"].append(("allow", kid, topic, payload))
        elif err is not None and verdict and refused:
            results["false_deny"] += 1
            results["examples"].append(("deny", kid, topic, str(err)))
        elif err is not None and verdict:
            results["timeouts"] += 1


# ---- consumers: a stable principal that reads everything ---------------------------
reader = ok("POST", "/iam/v2/service-accounts", {"display_name": "soak-reader"}, 201)["id"]
rk = ok("POST", "/iam/v2/api-keys", {"spec": {"owner": {"id": reader}, "resource": {"id": LKC}}}, 202)
for t in TOPICS:
    for op in ("READ", "DESCRIBE"):
        ok("POST", f"/kafka/v3/clusters/{LKC}/acls",
           {"resource_type": "TOPIC", "resource_name": t, "pattern_type": "LITERAL",
            "principal": f"User:{reader}", "host": "*", "operation": op, "permission": "ALLOW"}, 201)
ok("POST", f"/kafka/v3/clusters/{LKC}/acls",
   {"resource_type": "GROUP", "resource_name": "soak", "pattern_type": "PREFIXED",
    "principal": f"User:{reader}", "host": "*", "operation": "READ", "permission": "ALLOW"}, 201)
seen = set()
seen_lock = threading.Lock()


def consume_loop(i):
    c = Consumer({
        "bootstrap.servers": BOOT, "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanisms": "PLAIN", "sasl.username": rk["id"], "sasl.password": rk["spec"]["secret"],
        "group.id": f"soak-verify-{i}", "auto.offset.reset": "earliest",
        "enable.auto.commit": False, "logger": QUIET,
    })
    c.subscribe(TOPICS)
    while not consumers_stop.is_set():
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        with seen_lock:
            seen.add(m.value().decode())
    c.close()


consumers_stop = threading.Event()

# ---- resources -----------------------------------------------------------------
samples = []


def sample_loop():
    while not stop.is_set():
        rss = 0
        with open(f"/proc/{PID}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
        fds = len(os.listdir(f"/proc/{PID}/fd"))
        samples.append((time.monotonic(), rss, fds))
        stop.wait(5)


def main():
    for a in accounts:
        a.key = new_key(a)
        a.enabled = True
    threads = [threading.Thread(target=produce_loop, args=(a, n), daemon=True)
               for n in range(2) for a in accounts]
    threads += [threading.Thread(target=consume_loop, args=(i,), daemon=True) for i in range(2)]
    threads.append(threading.Thread(target=sample_loop, daemon=True))
    for t in threads:
        t.start()
    deadline = time.monotonic() + SECONDS
    n_changes = 0
    while time.monotonic() < deadline:
        churn_once()
        n_changes += 1
        time.sleep(rnd.uniform(0.3, 1.2))
    stop.set()
    for t in threads[: 2 * len(accounts)]:
        t.join(30)
    # Every acknowledged message must be read back.
    t0 = time.monotonic()
    while time.monotonic() - t0 < 60:
        with seen_lock, results_lock:
            if acked_ids <= seen:
                break
        time.sleep(1)
    consumers_stop.set()
    judge_all()
    with seen_lock, results_lock:
        lost = len(acked_ids - seen)
    half = len(samples) // 2
    first, last = samples[:half] or samples, samples[half:] or samples
    rss_first, rss_last = max(s[1] for s in first), max(s[1] for s in last)
    fd_first, fd_last = max(s[2] for s in first), max(s[2] for s in last)
    out = dict(results, examples=results["examples"][:10], changes=n_changes, lost=lost,
               minutes=SECONDS / 60, rss_kib_first_half_max=rss_first,
               rss_kib_last_half_max=rss_last, fds_first_half_max=fd_first,
               fds_last_half_max=fd_last, samples=len(samples))
    print(json.dumps(out), flush=True)
    bad = (out["false_allow"] or out["false_deny"] or lost or results["judged"] == 0
           or rss_last > max(1.10 * rss_first, rss_first + 8192) or fd_last > fd_first + 16)
    sys.exit(1 if bad else 0)


main()
