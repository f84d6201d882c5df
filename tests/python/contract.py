"""keygate's REST API against the hosted API's published OpenAPI document (shipped in
PyPI's cc-clients-python-lib), driven the way the hosted side's own clients drive it:
request bodies shaped as the Go SDK, the Terraform provider and the CLI send them
(object references with `related`, `resource_name`, `kind`, `api_version`; a cloud key
without `spec.resource`; empty filters), and every response validated against the
document with openapi-core. Then the package's own IamClient, pointed at keygate.

Env: BASE (keygate's REST URL), KEY/SECRET (an OrganizationAdmin's cloud key),
CLUSTER (a registered Kafka cluster id), ENV (its environment), SPEC (openapi.json),
CC_LIB (the directory holding the unpacked cc_clients_python_lib package).
"""
import json
import os
import sys
from urllib.parse import parse_qs, urlsplit

import requests
from openapi_core import OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse

BASE = os.environ["BASE"]
AUTH = (os.environ["KEY"], os.environ["SECRET"])
CLUSTER, ENV = os.environ["CLUSTER"], os.environ["ENV"]

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from contract_spec import load  # noqa: E402

API = OpenAPI.from_dict(load(os.environ["SPEC"], BASE))

checked = []


def breaks_document(method, path, status, body):
    """Whether the validator refuses this made-up response (it must bite)."""
    req = requests.Request(method, BASE + path, auth=AUTH).prepare()
    resp = requests.models.Response()
    resp.status_code, resp._content, resp.request = status, json.dumps(body).encode(), req
    resp.headers["Content-Type"] = "application/json"
    resp.url = req.url
    try:
        API.validate_response(RequestsOpenAPIRequest(req), RequestsOpenAPIResponse(resp))
        return False
    except Exception:
        return True


# The validator refuses what the document forbids: a key whose owner is a number, an
# ACL list in the management API's error shape, an undocumented status.
assert breaks_document("GET", "/iam/v2/api-keys/K1", 200, {"api_version": "iam/v2", "kind": "ApiKey", "id": "K1", "spec": {"owner": 5}})
assert breaks_document("GET", "/kafka/v3/clusters/lkc-1/acls", 403, {"errors": [{"status": "403", "detail": "no"}]})
assert breaks_document("POST", "/iam/v2/service-accounts", 418, {})
assert not breaks_document("GET", "/kafka/v3/clusters/lkc-1/acls", 403, {"error_code": 40301, "message": "no"})


def call(method, path, auth=AUTH, want=None, **kw):
    """One request; its response validated against the document."""
    r = requests.request(method, BASE + path, auth=auth, timeout=30, **kw)
    try:
        API.validate_response(RequestsOpenAPIRequest(r.request), RequestsOpenAPIResponse(r))
    except Exception as e:  # the validator's errors nest: show the innermost
        detail = e
        while getattr(detail, "__cause__", None) is not None:
            detail = detail.__cause__
        errs = getattr(detail, "schema_errors", None) or []
        print(f"FAIL {method} {path} → {r.status_code}: the response breaks the document: {e!r}")
        for s in errs[:5]:
            print("   ", s.message, "at", list(s.absolute_path))
        print("    body:", r.text[:800])
        sys.exit(1)
    if want is not None and r.status_code != want:
        print(f"FAIL {method} {path}: {r.status_code} (wanted {want}) {r.text[:500]}")
        sys.exit(1)
    checked.append((method, urlsplit(r.request.url).path, r.status_code))
    return r


def ref(kind, api_version, id_, related, crn, environment=None):
    """An object reference as the Go SDK and Terraform send it: read-only fields included."""
    r = {"id": id_, "related": related, "resource_name": crn, "kind": kind, "api_version": api_version}
    if environment:
        r["environment"] = environment
    return r


# Organization and environments.
org = call("GET", "/org/v2/organizations", want=200).json()["data"][0]
call("GET", f"/org/v2/organizations/{org['id']}", want=200)
call("GET", "/org/v2/organizations/org-doesnotexist", want=404)
renamed = call("PATCH", f"/org/v2/organizations/{org['id']}", json={"display_name": "Contract Org", "kind": "Organization"}, want=200).json()
assert renamed["display_name"] == "Contract Org" and renamed["metadata"]["resource_name"] == org["metadata"]["resource_name"], renamed
assert call("GET", f"/org/v2/organizations/{org['id']}", want=200).json()["display_name"] == "Contract Org"
call("PATCH", f"/org/v2/organizations/{org['id']}", json={"display_name": org["display_name"]}, want=200)
env = call("POST", "/org/v2/environments", json={"display_name": "contract", "stream_governance_config": {"package": "ESSENTIALS"}}, want=201).json()
call("GET", f"/org/v2/environments/{env['id']}", want=200)
call("PATCH", f"/org/v2/environments/{env['id']}", json={"display_name": "contract-2", "api_version": "org/v2", "kind": "Environment"}, want=200)
call("GET", "/org/v2/environments?page_size=1", want=200)

# Service accounts: Terraform's create (unknown fields ignored) and data source by name.
sa = call("POST", "/iam/v2/service-accounts", json={"display_name": "tf-orders", "description": "from terraform", "api_version": "iam/v2", "kind": "ServiceAccount"}, want=201).json()
other = call("POST", "/iam/v2/service-accounts", json={"display_name": "tf-other", "description": ""}, want=201).json()
found = call("GET", "/iam/v2/service-accounts?display_name=tf-orders", want=200).json()["data"]
assert [a["id"] for a in found] == [sa["id"]], found
call("PATCH", f"/iam/v2/service-accounts/{sa['id']}", json={"description": "changed", "display_name": "tf-orders"}, want=200)
call("POST", "/iam/v2/service-accounts", json={"display_name": "tf-orders"}, want=409)
call("POST", "/iam/v2/service-accounts", json={"description": "no name"}, want=422)
print("ok service accounts")

# API keys as the Go SDK / Terraform create them: full references, 202.
owner = ref("ServiceAccount", "iam/v2", sa["id"], sa["metadata"]["self"], sa["metadata"]["resource_name"])
cluster_key = call("POST", "/iam/v2/api-keys", json={"spec": {
    "display_name": "orders-app", "description": "terraform",
    "owner": owner,
    "resource": ref("Cluster", "cmk/v2", CLUSTER, f"{BASE}/cmk/v2/clusters/{CLUSTER}?environment={ENV}", "crn://x/kafka=" + CLUSTER, environment=ENV),
}}, want=202).json()
assert cluster_key["spec"]["secret"], "the secret is in the create response"
# A cloud key from Terraform: no spec.resource at all.
cloud_key = call("POST", "/iam/v2/api-keys", json={"spec": {"display_name": "tf-cloud", "owner": owner}}, want=202).json()
assert cloud_key["spec"]["resource"]["id"] == "CLOUD", cloud_key["spec"]["resource"]
# And with resource null, as the schema allows.
call("POST", "/iam/v2/api-keys", json={"spec": {"display_name": "tf-cloud-2", "owner": owner, "resource": None}}, want=202)
got = call("GET", f"/iam/v2/api-keys/{cluster_key['id']}", want=200).json()
assert "secret" not in got["spec"], "the secret is shown once"
call("PATCH", f"/iam/v2/api-keys/{cluster_key['id']}", json={"spec": {"display_name": "orders-app-2", "owner": owner}}, want=200)
# The hosted CLI's unfiltered list: empty filters are no filters.
everything = call("GET", "/iam/v2/api-keys?spec.owner=&spec.resource=&page_size=100", want=200).json()["data"]
assert {cluster_key["id"], cloud_key["id"]} <= {k["id"] for k in everything}, everything
mine = call("GET", f"/iam/v2/api-keys?spec.owner={sa['id']}", want=200).json()["data"]
assert len(mine) == 3, mine
on_cluster = call("GET", f"/iam/v2/api-keys?spec.owner={sa['id']}&spec.resource={CLUSTER}", want=200).json()["data"]
assert [k["id"] for k in on_cluster] == [cluster_key["id"]], on_cluster
# Paging keeps the filters: `next` lists the same owner's keys only.
page = call("GET", f"/iam/v2/api-keys?spec.owner={sa['id']}&page_size=2", want=200).json()
nxt = page["metadata"]["next"]
assert parse_qs(urlsplit(nxt).query)["spec.owner"] == [sa["id"]], nxt
rest = requests.get(nxt, auth=AUTH, timeout=30).json()["data"]
assert len(page["data"]) + len(rest) == 3 and all(k["spec"]["owner"]["id"] == sa["id"] for k in rest), rest
call("POST", "/iam/v2/api-keys", json={"spec": {"owner": owner, "resource": {"id": "lkc-nothere"}}}, want=422)
call("GET", "/iam/v2/api-keys/NOSUCHKEY", want=404)
print("ok api keys")

# Role bindings: DELETE answers 200 with the binding.
crn = org["metadata"]["resource_name"] + f"/environment={ENV}/cloud-cluster={CLUSTER}"
rb = call("POST", "/iam/v2/role-bindings", json={"principal": f"User:{sa['id']}", "role_name": "CloudClusterAdmin", "crn_pattern": crn}, want=201).json()
listed = call("GET", f"/iam/v2/role-bindings?crn_pattern={requests.utils.quote(crn, safe='')}&principal=User:{sa['id']}", want=200).json()["data"]
assert [b["id"] for b in listed] == [rb["id"]], listed
call("GET", f"/iam/v2/role-bindings/{rb['id']}", want=200)
gone = call("DELETE", f"/iam/v2/role-bindings/{rb['id']}", want=200).json()
assert gone["id"] == rb["id"] and gone["role_name"] == "CloudClusterAdmin", gone
call("GET", f"/iam/v2/role-bindings/{rb['id']}", want=404)
call("POST", "/iam/v2/role-bindings", json={"principal": "nobody", "role_name": "Operator", "crn_pattern": crn}, want=422)
print("ok role bindings")

# Kafka REST ACLs with the cluster's own key, as Terraform's confluent_kafka_acl does.
admin_sa = call("POST", "/iam/v2/service-accounts", json={"display_name": "tf-acl-admin"}, want=201).json()
call("POST", "/iam/v2/role-bindings", json={"principal": f"User:{admin_sa['id']}", "role_name": "CloudClusterAdmin", "crn_pattern": crn}, want=201)
k = call("POST", "/iam/v2/api-keys", json={"spec": {"owner": {"id": admin_sa["id"]}, "resource": {"id": CLUSTER, "environment": ENV}}}, want=202).json()
ck = (k["id"], k["spec"]["secret"])
acls = f"/kafka/v3/clusters/{CLUSTER}/acls"
acl = {"resource_type": "TOPIC", "resource_name": "orders", "pattern_type": "LITERAL",
       "principal": f"User:{sa['id']}", "host": "*", "operation": "WRITE", "permission": "ALLOW"}
call("POST", acls, auth=ck, json=acl, want=201)
lst = call("GET", acls + f"?principal=User:{sa['id']}", auth=ck, want=200).json()
assert lst["kind"] == "KafkaAclList" and len(lst["data"]) == 1, lst
assert call("GET", acls + "?host=10.0.0.1", auth=ck, want=200).json()["data"] == [], "host filters"
bad = call("DELETE", acls + "?resource_type=TOPIC", auth=ck, want=400).json()
assert set(bad) == {"error_code", "message"}, bad
denied = call("GET", acls, auth=(k["id"], "wrong-secret"), want=401).json()
assert denied["error_code"] == 40101, denied
# The same cluster key is worth nothing on the management API or another cluster's ACLs.
call("GET", "/iam/v2/service-accounts", auth=ck, want=401)
assert call("GET", "/kafka/v3/clusters/lkc-another1/acls", auth=ck, want=401).json()["error_code"] == 40101
deleted = call("DELETE", acls + f"?resource_type=TOPIC&resource_name=orders&pattern_type=LITERAL&principal=User:{sa['id']}&host=*&operation=WRITE&permission=ALLOW", auth=ck, want=200).json()
assert len(deleted["data"]) == 1, deleted
call("POST", f"/kafka/v3/clusters/{CLUSTER}/acls:batch", auth=ck, json={"data": [acl, dict(acl, operation="READ")]}, want=201)
# The cloud key works there too.
assert len(call("GET", acls + "?operation=ANY", want=200).json()["data"]) == 2
print("ok kafka acls")

# The package's own client, pointed at keygate.
sys.path.insert(0, os.environ["CC_LIB"])
from cc_clients_python_lib.iam_client import IamClient  # noqa: E402

client = IamClient({"confluent_cloud_api_key": AUTH[0], "confluent_cloud_api_secret": AUTH[1]})
client.base_url = BASE
status, err, pair = client.create_api_key(CLUSTER, other["id"], "via-cc-lib", "IamClient")
assert status in (200, 201, 202) and pair.get("key") and pair.get("secret"), (status, err, pair)
status, err, keys = client.get_all_api_keys_by_principal_id(other["id"], page_size=1)
assert status == 200 and list(keys) == [pair["key"]], (status, err, keys)
assert keys[pair["key"]]["resource_id"] == CLUSTER and keys[pair["key"]]["environment_id"] == ENV, keys
status, err = client.delete_api_key(pair["key"])
assert status == 204, (status, err)
print("ok IamClient from cc-clients-python-lib")

# Service quotas: the per-account key limit with each account's usage, and the
# listeners' organization-wide limits.
def key_quota(account):
    rows = call("GET", "/service-quota/v1/applied-quotas?scope=SERVICE_ACCOUNT&page_size=100", want=200).json()["data"]
    return [r for r in rows if r["user"]["id"] == account]


[q] = key_quota(sa["id"])
assert q["id"] == "iam.max_api_keys.per_account" and q["usage"] == 3, q
call("POST", "/iam/v2/api-keys", json={"spec": {"owner": {"id": sa["id"]}}}, want=202)
assert key_quota(sa["id"])[0]["usage"] == 4
org_wide = call("GET", "/service-quota/v1/applied-quotas?scope=ORGANIZATION&page_size=100", want=200).json()["data"]
assert {"kafka.max_connections.per_ip", "http_gateway.max_request_bytes"} <= {r["id"] for r in org_wide}, org_wide
one = call("GET", "/service-quota/v1/applied-quotas/kafka.max_connections.per_ip", want=200).json()
assert one["applied_limit"] > 0, one
call("GET", "/service-quota/v1/applied-quotas/no.such.quota", want=404)
print("ok service quotas")

# ksqlDB clusters as Terraform's confluent_ksql_cluster sends them (plus keygate's
# `upstream`: it registers a running ksqlDB rather than provisioning one).
ksql_spec = {
    "display_name": "ksql-contract", "csu": 4, "use_detailed_processing_log": True,
    "kafka_cluster": {"id": CLUSTER, "environment": ENV}, "credential_identity": {"id": sa["id"]},
    "environment": {"id": ENV},
}
body = call("POST", "/ksqldbcm/v2/clusters", json={"spec": ksql_spec}, want=422).json()
assert "upstream" in json.dumps(body), body
ksql = call("POST", "/ksqldbcm/v2/clusters", json={"spec": {**ksql_spec, "upstream": "http://127.0.0.1:8088"}}, want=202).json()
assert ksql["spec"]["kafka_cluster"]["id"] == CLUSTER and ksql["spec"]["csu"] == 4, ksql
assert ksql["spec"]["credential_identity"]["related"].endswith("/iam/v2/service-accounts/" + sa["id"]), ksql
call("GET", f"/ksqldbcm/v2/clusters/{ksql['id']}", want=200)
listed = call("GET", f"/ksqldbcm/v2/clusters?environment={ENV}&page_size=10", want=200).json()
assert [c["id"] for c in listed["data"]] == [ksql["id"]], listed
# A Kafka cluster that does not exist: refused, naming the field.
body = call("POST", "/ksqldbcm/v2/clusters", json={"spec": {**ksql_spec, "upstream": "http://127.0.0.1:8088", "kafka_cluster": {"id": "lkc-nothere"}}}, want=422).json()
assert "/spec/kafka_cluster/id" in json.dumps(body), body
call("DELETE", f"/ksqldbcm/v2/clusters/{ksql['id']}", want=204)
print("ok ksqlDB clusters")

# Client quotas as Terraform's confluent_kafka_client_quota sends them.
cq = call("POST", "/kafka-quotas/v1/client-quotas", want=202, json={"spec": {
    "display_name": "tf-quota", "description": "from terraform",
    "throughput": {"ingress_byte_rate": "1048576", "egress_byte_rate": "2097152"},
    "cluster": {"id": CLUSTER, "environment": ENV}, "principals": [{"id": sa["id"]}, {"id": "<default>"}],
    "environment": {"id": ENV}}}).json()
call("GET", f"/kafka-quotas/v1/client-quotas/{cq['id']}", want=200)
call("GET", f"/kafka-quotas/v1/client-quotas?spec.cluster={CLUSTER}&environment={ENV}", want=200)
call("PATCH", f"/kafka-quotas/v1/client-quotas/{cq['id']}", want=200, json={"spec": {
    "environment": {"id": ENV}, "throughput": {"ingress_byte_rate": "1", "egress_byte_rate": "2"}}})
call("POST", "/kafka-quotas/v1/client-quotas", want=409, json={"spec": {
    "display_name": "again", "throughput": {"ingress_byte_rate": "1", "egress_byte_rate": "1"},
    "cluster": {"id": CLUSTER}, "principals": [{"id": sa["id"]}], "environment": {"id": ENV}}})
call("DELETE", f"/kafka-quotas/v1/client-quotas/{cq['id']}", want=204)
print("ok client quotas")

# Clean-up through the documented deletes.
call("DELETE", f"/iam/v2/api-keys/{cloud_key['id']}", want=204)
call("DELETE", f"/iam/v2/service-accounts/{other['id']}", want=204)
call("DELETE", f"/org/v2/environments/{env['id']}", want=204)
print(f"contract ok: {len(checked)} responses validated against the document")
