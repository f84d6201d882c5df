"""The hosted API's OpenAPI document, as keygate's contract is tested against it.

Two adjustments, both narrow and said here:
- `servers`: the document names the hosted hosts (and a per-cluster host for Kafka
  REST); the contract is the same at keygate's URL.
- 404 where an operation under a parent (a cluster's ACLs, a provider's pools) lists
  none: the document's own HTTP guidelines give 404 for "the requested resource doesn't
  exist", and its other Kafka REST operations answer an unknown cluster with its
  `NotFoundErrorResponse`. Only operations whose path has a parent id get it.

Run as a script: `contract_spec.py SPEC BASE OUT` writes the adjusted document.
"""
import json
import sys

PARENTS = ("{cluster_id}", "{provider_id}", "{certificate_authority_id}")


def load(spec_path, base):
    with open(spec_path) as f:
        spec = json.load(f)
    spec["servers"] = [{"url": base}]
    for path, item in spec["paths"].items():
        item.pop("servers", None)
        for method, op in item.items():
            if not isinstance(op, dict) or method == "parameters":
                continue
            op.pop("servers", None)
            responses = op.get("responses", {})
            if "404" not in responses and any(p in path for p in PARENTS):
                kafka = path.startswith("/kafka/v3/")
                ref = "NotFoundErrorResponse" if kafka else "NotFoundError"
                responses["404"] = {"$ref": f"#/components/responses/{ref}"}
    return spec


if __name__ == "__main__":
    spec_path, base, out = sys.argv[1:4]
    with open(out, "w") as f:
        json.dump(load(spec_path, base), f)
