#!/usr/bin/env python3
"""TEST UPSTREAM — not ksqlDB.

Answers the ksqlDB REST API's shapes for the endpoints keygate's tests drive: /info,
/healthcheck, /status, /ksql (statements), /query-stream and /query (push queries
stream a row every 50 ms until the client goes away; pull queries end after three). No ksqlDB server can be installed
from the registries this project's machines reach (it is Java from Confluent's Maven and
containers), so the HTTP gateway's ksqlDB tests run against this. README says so too.

Like schema_registry.py it demands its own credential and records every request
(GET /__test/requests, POST /__test/reset).

Usage: ksqldb.py PORT [HEADER:VALUE]
"""
import base64
import hashlib
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
REQUESTS = []
REQUIRED = None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, ctype="application/json"):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def handle_any(self):
        if self.path.startswith("/__test/"):
            with LOCK:
                if self.path == "/__test/requests":
                    return self.reply(200, REQUESTS)
                REQUESTS.clear()
                return self.reply(200, {})
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        with LOCK:
            REQUESTS.append({"method": self.command, "path": self.path,
                             "headers": {k.lower(): v for k, v in self.headers.items()}})
        if REQUIRED and self.headers.get(REQUIRED[0]) != REQUIRED[1]:
            return self.reply(401, {"@type": "generic_error", "error_code": 40100, "message": "Unauthorized"})
        if self.path.startswith("/ws/query") and self.headers.get("Upgrade", "").lower() == "websocket":
            # ksqlDB's websocket push query: rows as text frames every 50 ms.
            accept = base64.b64encode(hashlib.sha1(
                (self.headers["Sec-WebSocket-Key"] + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
            self.send_response(101)
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade")
            self.send_header("Sec-WebSocket-Accept", accept.decode())
            self.end_headers()
            i = 0
            try:
                while True:
                    payload = json.dumps({"row": {"columns": [i]}}).encode()
                    self.wfile.write(bytes([0x81, len(payload)]) + payload)
                    self.wfile.flush()
                    i += 1
                    time.sleep(0.05)
            except (BrokenPipeError, ConnectionResetError):
                return
        if self.path == "/info":
            return self.reply(200, {"KsqlServerInfo": {"version": "test-upstream", "kafkaClusterId": "test",
                                                       "ksqlServiceId": "default_", "serverStatus": "RUNNING"}})
        if self.path == "/healthcheck":
            return self.reply(200, {"isHealthy": True, "details": {}})
        if self.path == "/status":
            return self.reply(200, {"commandStatuses": {}})
        if self.path == "/ksql" and self.command == "POST":
            stmt = json.loads(body or b"{}").get("ksql", "")
            return self.reply(200, [{"@type": "streams", "statementText": stmt, "streams": [], "warnings": []}])
        if self.path in ("/query-stream", "/query") and self.command == "POST":
            sql = json.loads(body or b"{}").get("sql", "")
            push = "EMIT CHANGES" in sql.upper()
            header = {"queryId": "q1", "columnNames": ["ID"], "columnTypes": ["BIGINT"]}
            if not push and "delimited" not in (self.headers.get("Accept") or ""):
                # application/json: one JSON array, the header then the rows.
                return self.reply(200, [header, [1], [2], [3]])
            self.send_response(200)
            self.send_header("Content-Type", "application/vnd.ksqlapi.delimited.v1")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            rows = [json.dumps(header)]
            i = 0
            try:
                while True:
                    for r in rows:
                        chunk = (r + "\n").encode()
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        self.wfile.flush()
                    i += 1
                    if not push and i > 3:
                        self.wfile.write(b"0\r\n\r\n")
                        return
                    rows = [json.dumps([i])]
                    time.sleep(0.05)
            except (BrokenPipeError, ConnectionResetError):
                return
        return self.reply(404, {"@type": "generic_error", "error_code": 40400, "message": "not found"})

    do_GET = do_POST = do_PUT = do_DELETE = handle_any


if __name__ == "__main__":
    if len(sys.argv) > 2:
        h, v = sys.argv[2].split(":", 1)
        REQUIRED = (h, v)
    srv = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    srv.daemon_threads = True
    srv.serve_forever()
