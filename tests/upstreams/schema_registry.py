#!/usr/bin/env python3
"""TEST UPSTREAM — not Confluent Schema Registry.

A small, in-memory server that answers the Schema Registry REST API as the real one
does, for the subset keygate's tests drive (subjects, versions, schemas by id, lookup,
compatibility settings and modes). No Schema Registry server can be installed from the
registries this project's machines reach (Confluent's and Apicurio's are Java from Maven
or containers; Karapace is not on PyPI), so the HTTP gateway's Schema Registry tests run
real *clients* (confluent-kafka's SchemaRegistryClient and Avro serializer,
@kafkajs/confluent-schema-registry) against this. README says so too.

It also plays an upstream that demands its own credential (the gateway's, never the
client's) and records every request that reached it, so tests can prove what the
gateway forwarded and what it kept back: GET /__test/requests (JSON list of
{method, path, headers}), and POST /__test/reset.

Usage: schema_registry.py PORT [HEADER:VALUE]   (the credential it requires)
With TLS_CERT, TLS_KEY (and TLS_CLIENT_CA: a client certificate is then required, and
its common name recorded as the request's `client_cn`) it serves HTTPS.
"""
import json
import os
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

LOCK = threading.Lock()
STATE = {"subjects": {}, "schemas": {}, "next_id": 1, "config": "BACKWARD", "mode": "READWRITE",
         "subject_config": {}, "requests": []}
REQUIRED = None  # (header, value)


def schema_id_for(schema, schema_type, refs):
    key = json.dumps([schema, schema_type, refs], sort_keys=True)
    for sid, s in STATE["schemas"].items():
        if s["key"] == key:
            return sid
    sid = STATE["next_id"]
    STATE["next_id"] += 1
    STATE["schemas"][sid] = {"key": key, "schema": schema, "schemaType": schema_type, "references": refs}
    return sid


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            raw = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                raw += self.rfile.read(size)
                self.rfile.readline()
        else:
            n = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(n) if n else b""
        return json.loads(raw) if raw else {}

    def handle_any(self):
        url = urlsplit(self.path)
        parts = [unquote(p) for p in url.path.split("/") if p]
        if parts[:1] == ["__test"]:
            with LOCK:
                if parts == ["__test", "requests"]:
                    return self.reply(200, STATE["requests"])
                STATE["requests"].clear()
                return self.reply(200, {})
        with LOCK:
            peer = self.connection.getpeercert() if hasattr(self.connection, "getpeercert") else None
            cn = next((v for rdn in (peer or {}).get("subject", ()) for k, v in rdn if k == "commonName"), None)
            STATE["requests"].append({"method": self.command, "path": self.path, "client_cn": cn,
                                      "headers": {k.lower(): v for k, v in self.headers.items()}})
        if REQUIRED and self.headers.get(REQUIRED[0]) != REQUIRED[1]:
            return self.reply(401, {"error_code": 40101, "message": "Unauthorized"})
        m = self.command
        with LOCK:
            return self.route(m, parts)

    def route(self, m, p):
        subjects = STATE["subjects"]
        if m == "GET" and p == []:
            return self.reply(200, {})
        if m == "GET" and p == ["subjects"]:
            return self.reply(200, sorted(s for s, v in subjects.items() if v))
        if m == "GET" and p == ["schemas", "types"]:
            return self.reply(200, ["AVRO", "JSON", "PROTOBUF"])
        if p[:1] == ["subjects"] and len(p) >= 2:
            name = p[1]
            versions = subjects.get(name, [])
            if m == "POST" and len(p) == 3 and p[2] == "versions":
                b = self.body()
                sid = schema_id_for(b.get("schema"), b.get("schemaType", "AVRO"), b.get("references", []))
                if sid not in versions:
                    versions.append(sid)
                    subjects[name] = versions
                return self.reply(200, {"id": sid})
            if m == "POST" and len(p) == 2:
                b = self.body()
                for i, sid in enumerate(versions):
                    if STATE["schemas"][sid]["schema"] == b.get("schema"):
                        return self.reply(200, self.version(name, i + 1, sid))
                return self.reply(404, {"error_code": 40403, "message": "Schema not found"})
            if not versions:
                return self.reply(404, {"error_code": 40401, "message": f"Subject '{name}' not found."})
            if m == "GET" and len(p) == 3 and p[2] == "versions":
                return self.reply(200, list(range(1, len(versions) + 1)))
            if m == "GET" and len(p) >= 4 and p[2] == "versions":
                v = len(versions) if p[3] in ("latest", "-1") else int(p[3])
                if v < 1 or v > len(versions):
                    return self.reply(404, {"error_code": 40402, "message": "Version not found."})
                sid = versions[v - 1]
                if len(p) == 5 and p[4] == "schema":
                    return self.reply(200, json.loads(STATE["schemas"][sid]["schema"]))
                return self.reply(200, self.version(name, v, sid))
            if m == "DELETE" and len(p) == 2:
                del subjects[name]
                return self.reply(200, list(range(1, len(versions) + 1)))
        if m == "GET" and p[:2] == ["schemas", "ids"] and len(p) >= 3:
            sid = int(p[2])
            s = STATE["schemas"].get(sid)
            if not s:
                return self.reply(404, {"error_code": 40403, "message": "Schema not found"})
            users = sorted(n for n, vs in subjects.items() if sid in vs)
            if len(p) == 4 and p[3] == "subjects":
                return self.reply(200, users)
            if len(p) == 4 and p[3] == "versions":
                return self.reply(200, [{"subject": n, "version": subjects[n].index(sid) + 1} for n in users])
            out = {"schema": s["schema"]}
            if s["schemaType"] != "AVRO":
                out["schemaType"] = s["schemaType"]
            return self.reply(200, out)
        if p[:1] in (["config"], ["mode"]):
            key = "compatibilityLevel" if p[0] == "config" else "mode"
            if len(p) == 1:
                if m == "PUT":
                    b = self.body()
                    STATE[p[0]] = b.get("compatibility", b.get("mode"))
                    return self.reply(200, b)
                return self.reply(200, {key: STATE[p[0]]})
            if m == "PUT":
                b = self.body()
                STATE["subject_config"][(p[0], p[1])] = b.get("compatibility", b.get("mode"))
                return self.reply(200, b)
            return self.reply(200, {key: STATE["subject_config"].get((p[0], p[1]), STATE[p[0]])})
        return self.reply(404, {"error_code": 404, "message": "HTTP 404 Not Found"})

    def version(self, name, v, sid):
        s = STATE["schemas"][sid]
        out = {"subject": name, "version": v, "id": sid, "schema": s["schema"]}
        if s["schemaType"] != "AVRO":
            out["schemaType"] = s["schemaType"]
        return out

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = handle_any


if __name__ == "__main__":
    if len(sys.argv) > 2:
        h, v = sys.argv[2].split(":", 1)
        REQUIRED = (h, v)
    srv = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    srv.daemon_threads = True
    if os.environ.get("TLS_CERT"):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.environ["TLS_CERT"], os.environ["TLS_KEY"])
        if os.environ.get("TLS_CLIENT_CA"):
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(os.environ["TLS_CLIENT_CA"])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print("ready", flush=True)
    srv.serve_forever()
