"""pyiceberg (PyPI) through keygate's Tableflow gateway, in front of a real Iceberg REST
catalog (Rustberg). The catalog client authenticates the Iceberg REST way: OAuth2 client
credentials at {uri}/v1/oauth/tokens with a Tableflow key and secret (credential=
"KEY:SECRET"), then Bearer.

Env: URI (the environment's catalog through the gateway), LKC (the Kafka cluster whose
topics are the tables), OTHER_LKC (a cluster of the environment the keys have no rights
on). Scenario (argv[1]) and its key in KEY/SECRET:
  writer  — ACLs: CREATE on the cluster, ALL on topics prefixed `ord`: create the
            namespace and the tables orders and ordinal, append rows, scan them back,
            see them listed; another cluster's namespace, a namespace that is not a
            cluster and a table it may not create are refused.
  reader  — DeveloperRead on topic orders: loads and scans the table; listing the
            namespace's tables is refused; listing namespaces shows none.
  manager — DeveloperManage on topics orders*: lists tables (orders, not ordinal),
            cannot read.
"""
import os
import sys

import pyarrow as pa
from pyiceberg.catalog import load_catalog
from pyiceberg.exceptions import ForbiddenError, NoSuchNamespaceError, NoSuchTableError, RESTError

LKC, OTHER = os.environ["LKC"], os.environ["OTHER_LKC"]
cat = load_catalog("tableflow", **{
    "type": "rest",
    "uri": os.environ["URI"],
    "credential": f"{os.environ['KEY']}:{os.environ['SECRET']}",
    "scope": "catalog",
})
ROWS = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "item": pa.array(["a", "b", "c"])})


def refused(what, fn):
    try:
        fn()
    except (ForbiddenError, NoSuchNamespaceError, NoSuchTableError, RESTError) as e:
        print("refused:", what, type(e).__name__)
        return
    print("NOT refused:", what)
    sys.exit(1)


scenario = sys.argv[1]
if scenario == "writer":
    cat.create_namespace(LKC)
    table = cat.create_table(f"{LKC}.orders", schema=ROWS.schema)
    table.append(ROWS)
    cat.create_table(f"{LKC}.ordinal", schema=ROWS.schema)
    back = cat.load_table(f"{LKC}.orders").scan().to_arrow()
    assert sorted(back["id"].to_pylist()) == [1, 2, 3], back
    print("round trip ok", back.num_rows)
    assert (LKC, "orders") in cat.list_tables(LKC), cat.list_tables(LKC)
    print("listed", cat.list_tables(LKC))
    refused("namespace of another cluster", lambda: cat.create_namespace(OTHER))
    refused("namespace that is not a cluster", lambda: cat.create_namespace("analytics"))
    refused("table it may not create", lambda: cat.create_table(f"{LKC}.secrets", schema=ROWS.schema))
elif scenario == "reader":
    rows = cat.load_table(f"{LKC}.orders").scan().to_arrow()
    assert rows.num_rows == 3, rows
    print("read ok", rows.num_rows)
    refused("listing tables", lambda: cat.list_tables(LKC))
    assert cat.list_namespaces() == [], cat.list_namespaces()
    print("namespaces listed: none")
    refused("commit", lambda: cat.load_table(f"{LKC}.orders").append(ROWS))
elif scenario == "manager":
    listed = cat.list_tables(LKC)
    assert listed == [(LKC, "orders")], listed
    print("listed", listed)
    refused("reading", lambda: cat.load_table(f"{LKC}.orders").scan().to_arrow())
else:
    sys.exit(f"unknown scenario {scenario}")
print("scenario ok", scenario)
