"""Real Kafka clients against the keygate gateway, one scenario per invocation.

Run by the Rust integration tests (crates/keygate/tests/it/clients.rs) with the
virtualenv scripts/test creates. Settings come from the environment: BOOTSTRAP,
KEY, SECRET, TOPIC, GROUP; with CA_FILE set the client uses TLS (SASL_SSL) and trusts
that CA; with CLIENT_CERT and CLIENT_KEY too, it authenticates with that certificate
(SSL, no SASL). With OIDC_TOKEN_URL set, the client authenticates with
OAUTHBEARER through librdkafka's OIDC method instead: KEY and SECRET are then the
OAuth client id and secret, OIDC_EXTENSIONS the SASL extensions. Prints one JSON
line with what happened; exits non-zero when the scenario's expectation fails.
"""

import json
import os
import sys
import time
import uuid

BOOTSTRAP = os.environ["BOOTSTRAP"]
KEY = os.environ["KEY"]
SECRET = os.environ["SECRET"]
TOPIC = os.environ.get("TOPIC", "orders")
GROUP = os.environ.get("GROUP", "g1")

if os.environ.get("OIDC_TOKEN_URL"):
    CONF = {
        "bootstrap.servers": BOOTSTRAP,
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "OAUTHBEARER",
        "sasl.oauthbearer.method": "oidc",
        "sasl.oauthbearer.client.id": KEY,
        "sasl.oauthbearer.client.secret": SECRET,
        "sasl.oauthbearer.token.endpoint.url": os.environ["OIDC_TOKEN_URL"],
        "sasl.oauthbearer.scope": "kafka",
        "sasl.oauthbearer.extensions": os.environ.get("OIDC_EXTENSIONS", ""),
    }
else:
    CONF = {
        "bootstrap.servers": BOOTSTRAP,
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "PLAIN",
        "sasl.username": KEY,
        "sasl.password": SECRET,
    }


CA_FILE = os.environ.get("CA_FILE")
if CA_FILE:
    CONF["security.protocol"] = "SASL_SSL"
    CONF["ssl.ca.location"] = CA_FILE
# With CLIENT_CERT and CLIENT_KEY: mTLS, the certificate is the credential (no SASL).
CLIENT_CERT, CLIENT_KEY = os.environ.get("CLIENT_CERT"), os.environ.get("CLIENT_KEY")
if CLIENT_CERT:
    CONF = {"bootstrap.servers": BOOTSTRAP, "security.protocol": "SSL", "ssl.ca.location": CA_FILE,
            "ssl.certificate.location": CLIENT_CERT, "ssl.key.location": CLIENT_KEY}


def done(ok, **facts):
    print(json.dumps({"ok": ok, **facts}))
    sys.exit(0 if ok else 1)


def confluent_group():
    """Produce, consume in a group, commit, and resume from the committed offset."""
    from confluent_kafka import Consumer, Producer

    p = Producer(CONF)
    tag = uuid.uuid4().hex[:8]
    for i in range(10):
        p.produce(TOPIC, value=f"{tag}-{i}".encode())
    left = p.flush(15)

    def consume(max_seconds):
        c = Consumer({**CONF, "group.id": GROUP, "auto.offset.reset": "earliest", "enable.auto.commit": False,
                      "fetch.wait.max.ms": 10, "session.timeout.ms": 6000})
        c.subscribe([TOPIC])
        got, deadline = [], time.time() + max_seconds
        while time.time() < deadline:
            m = c.poll(0.5)
            if m is None:
                if got:
                    break
                continue
            if m.error():
                c.close()
                return got, str(m.error())
            got.append(m.value().decode())
        if got:
            c.commit(asynchronous=False)
        c.close()
        return got, None

    first, err1 = consume(30)
    second, err2 = consume(8)
    mine = [v for v in first if v.startswith(tag)]
    ok = left == 0 and len(mine) == 10 and not [v for v in second if v.startswith(tag)] and not err1 and not err2
    done(ok, unflushed=left, first=len(first), mine=len(mine), second=len(second), err1=err1, err2=err2)


def confluent_rebalance():
    """Two consumers of one group, as librdkafka's 0018_cgrp_term and 0118_commit_rebalance
    run them: both settle on disjoint shares of every partition and stay settled; when
    one closes, its LeaveGroup reaches the broker at once and the other takes every
    partition well before a session timeout would.

    The second consumer joins once the first has its assignment, and members heartbeat
    every 500 ms: Tansu 0.6 completes a rebalance about 3 s after it starts, without
    waiting for every known member to rejoin (Kafka waits up to the rebalance timeout),
    so a member that learns of the rebalance later than that is left out and the group
    ping-pongs — directly against Tansu as through the gateway (BENCHMARKS.md, issue 13).
    """
    from confluent_kafka import Consumer, Producer

    parts = int(os.environ.get("PARTITIONS", "4"))
    p = Producer(CONF)
    tag = uuid.uuid4().hex[:8]
    for i in range(200):
        p.produce(TOPIC, value=f"{tag}-{i}".encode(), partition=i % parts)
    left = p.flush(15)
    events, consumed = [], set()

    def member(name):
        owned = set()

        def on_assign(_c, ps):
            owned.update(x.partition for x in ps)
            events.append((name, "assign", sorted(x.partition for x in ps)))

        def on_revoke(_c, ps):
            owned.difference_update(x.partition for x in ps)
            events.append((name, "revoke", sorted(x.partition for x in ps)))

        c = Consumer({**CONF, "group.id": GROUP, "client.id": name, "auto.offset.reset": "earliest",
                      "fetch.wait.max.ms": 10, "session.timeout.ms": 6000, "heartbeat.interval.ms": 500})
        c.subscribe([TOPIC], on_assign=on_assign, on_revoke=on_revoke)
        return c, owned

    def pump(members, seconds, until=lambda: False):
        deadline = time.time() + seconds
        while time.time() < deadline:
            for c, _ in members:
                m = c.poll(0.1)
                if m is not None and not m.error():
                    consumed.add(m.value().decode())
            if until():
                return True
        return until()

    everything = set(range(parts))
    a = member("A")
    alone = pump([a], 30, lambda: a[1] == everything)
    b = member("B")

    def settled():
        return a[1] and b[1] and not (a[1] & b[1]) and (a[1] | b[1]) == everything

    shared = pump([a, b], 30, settled)
    before = len(events)
    pump([a, b], 8)
    stable = settled() and len(events) == before
    closed_at = time.time()
    b[0].close()
    took_over = pump([a], 20, lambda: a[1] == everything)
    takeover = time.time() - closed_at
    pump([a], 10, lambda: len([v for v in consumed if v.startswith(tag)]) == 200)
    a[0].close()
    mine = len([v for v in consumed if v.startswith(tag)])
    # Not all 200 are required: on a new topic, a member taking over a partition in
    # the first rebalance sometimes starts past its first messages, directly against
    # Tansu 0.6 as through the gateway (exact delivery is confluent_group's subject).
    ok = left == 0 and alone and shared and stable and took_over and takeover < 6.0 and mine > 0
    done(ok, alone=alone, shared=shared, stable=stable, took_over=took_over,
         takeover_s=round(takeover, 2), consumed=mine, events=events)


def confluent_group_denied():
    """A consumer whose group is not allowed gets GROUP_AUTHORIZATION_FAILED."""
    from confluent_kafka import Consumer, KafkaError

    c = Consumer({**CONF, "group.id": GROUP, "auto.offset.reset": "earliest", "fetch.wait.max.ms": 10})
    c.subscribe([TOPIC])
    deadline, err = time.time() + 20, None
    while time.time() < deadline and err is None:
        m = c.poll(0.5)
        if m is not None and m.error():
            err = m.error()
    c.close()
    code = err.code() if err else None
    done(code == KafkaError.GROUP_AUTHORIZATION_FAILED, error=str(err))


def confluent_admin():
    """Create and delete a topic where allowed; refused elsewhere."""
    from confluent_kafka.admin import AdminClient, NewTopic
    from confluent_kafka import KafkaException

    a = AdminClient(CONF)
    allowed, denied = f"{TOPIC}-{uuid.uuid4().hex[:6]}", f"forbidden-{uuid.uuid4().hex[:6]}"
    a.create_topics([NewTopic(allowed, 1, 1)])[allowed].result(15)
    listed = allowed in a.list_topics(timeout=10).topics
    try:
        a.create_topics([NewTopic(denied, 1, 1)])[denied].result(15)
        denied_error = None
    except KafkaException as e:
        denied_error = e.args[0].name()
    a.delete_topics([allowed])[allowed].result(15)
    ok = listed and denied_error == "TOPIC_AUTHORIZATION_FAILED"
    done(ok, listed=listed, denied_error=denied_error)


def idempotent():
    """An idempotent producer (InitProducerId without a transactional id)."""
    from confluent_kafka import Producer

    errors = []
    p = Producer({**CONF, "enable.idempotence": True})
    for i in range(5):
        p.produce(TOPIC, value=f"idem-{i}".encode(), on_delivery=lambda e, m: errors.append(str(e)) if e else None)
    left = p.flush(20)
    done(left == 0 and not errors, unflushed=left, errors=errors)


def transactional_denied():
    """A transactional id without WRITE: the gateway refuses InitProducerId itself."""
    from confluent_kafka import Producer, KafkaException

    p = Producer({**CONF, "transactional.id": "tx-" + uuid.uuid4().hex[:6]})
    try:
        p.init_transactions(15)
        name = None
    except KafkaException as e:
        name = e.args[0].name()
    done(name == "TRANSACTIONAL_ID_AUTHORIZATION_FAILED", error=name)


def kafka_python():
    """kafka-python 3.x: produce and consume."""
    from kafka import KafkaConsumer, KafkaProducer

    common = dict(bootstrap_servers=BOOTSTRAP, security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN",
                  sasl_plain_username=KEY, sasl_plain_password=SECRET)
    if CA_FILE:
        common.update(security_protocol="SASL_SSL", ssl_cafile=CA_FILE)
    if CLIENT_CERT:
        common = dict(bootstrap_servers=BOOTSTRAP, security_protocol="SSL", ssl_cafile=CA_FILE,
                      ssl_certfile=CLIENT_CERT, ssl_keyfile=CLIENT_KEY)
    tag = uuid.uuid4().hex[:8]
    p = KafkaProducer(**common)
    for i in range(5):
        p.send(TOPIC, f"{tag}-{i}".encode())
    p.flush(15)
    p.close()
    c = KafkaConsumer(TOPIC, auto_offset_reset="earliest", consumer_timeout_ms=8000, fetch_max_wait_ms=10, **common)
    got = [m.value.decode() for m in c if m.value.decode().startswith(tag)]
    c.close()
    done(len(got) == 5, got=len(got))



def acl_change_on_open_connection():
    """Produce, wait for the test to revoke the ACL (it creates $SIGNAL when done), then
    produce again on the same connection: the second produce must be denied."""
    from confluent_kafka import Producer

    results = []
    p = Producer({**CONF, "enable.idempotence": False, "linger.ms": 0, "retries": 0,
                  "connections.max.idle.ms": 600000})
    p.produce(TOPIC, b"before", on_delivery=lambda e, m: results.append(str(e) if e else "ok"))
    p.flush(15)
    ready = os.environ["READY"]
    open(ready, "w").close()
    deadline = time.time() + 30
    while not os.path.exists(os.environ["SIGNAL"]) and time.time() < deadline:
        time.sleep(0.05)
    p.produce(TOPIC, b"after", on_delivery=lambda e, m: results.append(str(e) if e else "ok"))
    p.flush(15)
    done(len(results) == 2 and results[0] == "ok" and "TOPIC_AUTHORIZATION_FAILED" in results[1], results=results)



def _acl(principal):
    from confluent_kafka.admin import AclBinding, AclOperation, AclPermissionType, ResourcePatternType, ResourceType
    return AclBinding(ResourceType.TOPIC, TOPIC, ResourcePatternType.LITERAL, principal, "*",
                      AclOperation.READ, AclPermissionType.ALLOW)


def _any_filter():
    from confluent_kafka.admin import AclBindingFilter, AclOperation, AclPermissionType, ResourcePatternType, ResourceType
    return AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY, AclPermissionType.ANY)


def kafka_acls_create():
    """CreateAcls then DescribeAcls over the Kafka protocol (keygate's own ACLs)."""
    from confluent_kafka.admin import AdminClient

    a = AdminClient(CONF)
    b = _acl(os.environ["GRANTEE"])
    a.create_acls([b])[b].result(15)
    listed = a.describe_acls(_any_filter()).result(15)
    found = [x for x in listed if x.principal == os.environ["GRANTEE"] and x.name == TOPIC]
    done(len(found) == 1, described=len(listed))


def kafka_acls_delete():
    """DeleteAcls returns what it deleted."""
    from confluent_kafka.admin import AdminClient, AclBindingFilter, AclOperation, AclPermissionType, ResourcePatternType, ResourceType

    a = AdminClient(CONF)
    f = AclBindingFilter(ResourceType.TOPIC, TOPIC, ResourcePatternType.ANY, os.environ["GRANTEE"], None,
                         AclOperation.ANY, AclPermissionType.ANY)
    deleted = a.delete_acls([f])[f].result(15)
    done(len(deleted) == 1 and deleted[0].principal == os.environ["GRANTEE"], deleted=len(deleted))


def kafka_acls_denied():
    """Without ALTER on the cluster, CreateAcls is refused with CLUSTER_AUTHORIZATION_FAILED."""
    from confluent_kafka.admin import AdminClient
    from confluent_kafka import KafkaException

    a = AdminClient(CONF)
    b = _acl(os.environ["GRANTEE"])
    try:
        a.create_acls([b])[b].result(15)
        name = None
    except KafkaException as e:
        name = e.args[0].name()
    done(name == "CLUSTER_AUTHORIZATION_FAILED", error=name)



def long_producer():
    """Produce every 200 ms for SECONDS seconds on one producer (re-authentication,
    KIP-368, must keep it working)."""
    from confluent_kafka import Producer

    errors, delivered = [], []
    p = Producer({**CONF, "enable.idempotence": False, "linger.ms": 0})
    end = time.time() + float(os.environ.get("SECONDS", "9"))
    while time.time() < end:
        p.produce(TOPIC, b"tick", on_delivery=lambda e, m: (errors if e else delivered).append(str(e)))
        p.poll(0.2)
    p.flush(15)
    done(not errors and len(delivered) > 20, delivered=len(delivered), errors=errors[:3])



def direct_metadata():
    """kafka-python straight to a broker (around keygate), with its version pinned so it
    sends no ApiVersions before SASL (Tansu 0.6.0 with --authentication breaks
    librdkafka's ApiVersions-first start). DIRECT_PROTOCOL, and DIRECT_MECHANISM /
    DIRECT_USER / DIRECT_PASSWORD for SASL; CA_FILE for TLS. ok: the topics were listed
    within 10 s."""
    import threading
    from kafka import KafkaConsumer

    conf = dict(bootstrap_servers=BOOTSTRAP, security_protocol=os.environ["DIRECT_PROTOCOL"], api_version=(2, 5),
                request_timeout_ms=5000)
    if os.environ.get("DIRECT_MECHANISM"):
        conf.update(sasl_mechanism=os.environ["DIRECT_MECHANISM"], sasl_plain_username=os.environ["DIRECT_USER"],
                    sasl_plain_password=os.environ["DIRECT_PASSWORD"])
    if CA_FILE:
        conf.update(ssl_cafile=CA_FILE)
    out = {}

    def attempt():
        try:
            c = KafkaConsumer(**conf)
            out["topics"] = sorted(c.topics())
            c.close()
        except Exception as e:  # noqa: BLE001 - any failure is the answer
            out["error"] = f"{type(e).__name__}: {e}"[:300]

    t = threading.Thread(target=attempt, daemon=True)
    t.start()
    t.join(10)
    print(json.dumps({"ok": "topics" in out, **out}))
    os._exit(0 if "topics" in out else 1)


def list_groups():
    """ListGroups through the gateway; prints the group ids seen."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(CONF)
    groups = admin.list_consumer_groups(request_timeout=15).result()
    ids = sorted(g.group_id for g in groups.valid)
    done(True, groups=ids, errors=[str(e) for e in groups.errors])


if __name__ == "__main__":
    globals()[sys.argv[1].replace("-", "_")]()
