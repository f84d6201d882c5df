"""SASL authentications per second at the gateway, over real TCP connections:
OAUTHBEARER with an IdP token (per signature algorithm) against SASL/PLAIN with an API
key as the baseline, in the same run. Run by scripts/bench-oauth-gateway.

Each authentication is a new connection: connect, SaslHandshake v1, SaslAuthenticate
v1, close — sequential, one client, for SECONDS seconds per case.
"""

import json
import os
import socket
import struct
import sys
import time

HOST, PORT = os.environ["GATEWAY"].split(":")
PORT = int(PORT)
SECONDS = float(os.environ.get("SECONDS", "5"))


def authenticate(mechanism, token):
    s = socket.create_connection((HOST, PORT), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def call(api_key, corr, body):
        header = struct.pack(">hhih", api_key, 1, corr, 5) + b"bench"
        msg = header + body
        s.sendall(struct.pack(">i", len(msg)) + msg)
        n = struct.unpack(">i", s.recv(4, socket.MSG_WAITALL))[0]
        return s.recv(n, socket.MSG_WAITALL)

    r = call(17, 1, struct.pack(">h", len(mechanism)) + mechanism)
    ok = struct.unpack(">h", r[4:6])[0] == 0
    if ok:
        r = call(36, 2, struct.pack(">i", len(token)) + token)
        # error code 0 and no challenge (empty auth bytes)
        code = struct.unpack(">h", r[4:6])[0]
        mlen = struct.unpack(">h", r[6:8])[0]
        at = 8 + max(mlen, 0)
        blen = struct.unpack(">i", r[at:at + 4])[0]
        ok = code == 0 and blen == 0
    s.close()
    return ok


def run(mechanism, token):
    lat = []
    end = time.perf_counter() + SECONDS
    while time.perf_counter() < end:
        t = time.perf_counter()
        if not authenticate(mechanism, token):
            sys.exit(f"{mechanism.decode()} authentication failed")
        lat.append((time.perf_counter() - t) * 1000)
    lat.sort()
    return {"per_s": len(lat) / SECONDS, "p50_ms": lat[len(lat) // 2], "p99_ms": lat[int(len(lat) * 0.99)], "n": len(lat)}


def main():
    cases = json.loads(os.environ["CASES"])  # [{"alg":…, "token":…, "ext": "…"}]
    plain = ("\0" + os.environ["KEY"] + "\0" + os.environ["SECRET"]).encode()
    out = {"plain_baseline": run(b"PLAIN", plain)}
    for c in cases:
        msg = ("n,,\x01auth=Bearer " + c["token"] + "\x01" + c["ext"] + "\x01\x01").encode()
        r = run(b"OAUTHBEARER", msg)
        r["ratio_to_plain"] = r["per_s"] / out["plain_baseline"]["per_s"]
        out[c["alg"]] = r
    out["plain_baseline_again"] = run(b"PLAIN", plain)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
