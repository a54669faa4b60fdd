#!/usr/bin/python3
"""Writes the seed corpus under tests/fuzz/corpus/<target>/ from real requests: the bytes a
stock HTTP/2 client (python3-h2) sends for each RPC, gRPC-framed messages made with the
contract's own classes, JWT headers and payloads as pipe2-authd signs them, configuration
and service-key files as the docs show them. Run again after a contract change."""
import hashlib
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "scripts"))
import h2.config  # noqa: E402
import h2.connection  # noqa: E402

from p2a_client import health_pb, pb  # noqa: E402

OUT = os.path.join(HERE, "corpus")
ADMIN = "fuzz-admin-key"  # fuzz_common.h's key file holds its digest


def write(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def frame(msg):
    b = msg.SerializeToString() if hasattr(msg, "SerializeToString") else msg
    return bytes([0]) + len(b).to_bytes(4, "big") + b


HDR = {"alg": "ES256", "kid": "fuzz-key", "typ": "JWT"}
CLAIMS = {"iss": "http://127.0.0.1:8080", "sub": "alice", "aud": ["http://127.0.0.1:3000/mcp"],
          "jti": "OEHSlq0KDVZji9DchqEPdg", "iat": 1795662000, "exp": 1827198000,
          "token_use": "pat", "pat_name": "laptop", "scope": "mcp:read mcp:write"}
TOKEN = ("eyJhbGciOiJFUzI1NiIsImtpZCI6ImZ1enota2V5IiwidHlwIjoiSldUIn0.eyJzdWIiOiJhbGljZSJ9."
         "MEUCIQDq" + "A" * 78)


def main():
    # token: the signed form ('{' header NUL payload) and raw strings
    write("token", "pat", json.dumps(HDR) + "\0" + json.dumps(CLAIMS))
    oauth = dict(CLAIMS, token_use="access", client_id="c1", aud="http://127.0.0.1:3000/mcp")
    write("token", "oauth", json.dumps(HDR) + "\0" + json.dumps(oauth))
    exchanged = {k: v for k, v in oauth.items() if k != "pat_name"}
    exchanged.update(iat=1795662100, client_id="c_server_b", chain_iat=1795662000,
                     act={"sub": "c_server_b", "act": {"sub": "c_server_a"}},
                     chain=["x2JcnYk0EoU0Fv3ZVjyL2g", "OEHSlq0KDVZji9DchqEPdg"])
    write("token", "exchanged", json.dumps(HDR) + "\0" + json.dumps(exchanged))
    write("token", "nbf", json.dumps(HDR) + "\0" + json.dumps(dict(CLAIMS, nbf=1895662000)))
    write("token", "alg-none", json.dumps({"alg": "none", "kid": "fuzz-key"}) + "\0{}")
    write("token", "raw", TOKEN)
    write("token", "garbage", "not.a.token")

    # grpc_message: first byte picks the method, then a framed message
    write("grpc_message", "introspect", b"\x00" + frame(pb.IntrospectRequest(
        token=TOKEN, resource="http://127.0.0.1:3000/mcp", expected_kind=1)))
    write("grpc_message", "health", b"\x01" + frame(health_pb.HealthCheckRequest(service="")))
    write("grpc_message", "issue", b"\x02" + frame(pb.IssueTokenRequest(
        user_id="alice", name="laptop \u00e9", scope="mcp:read", expires_in_seconds=3600)))
    write("grpc_message", "revoke", b"\x03" + frame(pb.RevokeTokenRequest(jti="abc", user_id="a")))
    write("grpc_message", "list", b"\x04" + frame(pb.ListTokensRequest(user_id="alice",
                                                                       include_revoked=True)))

    # config: argv split at NUL
    write("config", "flags", "\0".join(["--workers=4", "--issuer=https://auth.example",
                                        "--resource=https://a.example/mcp, https://b.example/mcp",
                                        "--redis-url=redis://user:pw@redis:6380/2",
                                        "--rpc-listen", "[::1]:50051",
                                        "--revocation-staleness=20"]))
    write("config", "bad", "\0".join(["--workers=x", "--nope=1", "--rpc-listen=127.0.0.1"]))

    # svckeys: files as the README shows them
    d = hashlib.sha256(b"k").hexdigest()
    write("svckeys", "file", f"# comment\nadmin {d} dashboard\n  introspect {d} mcp server\n\n")
    write("svckeys", "bad", f"root {d}\nadmin zz\n")

    # h2_server: what a stock HTTP/2 client sends
    def conn(calls, end=True):
        c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        c.initiate_connection()
        for path, body, extra in calls:
            sid = c.get_next_available_stream_id()
            hdrs = [(":method", "POST"), (":scheme", "http"), (":path", path),
                    (":authority", "127.0.0.1"), ("content-type", "application/grpc"),
                    ("te", "trailers"), ("authorization", "Bearer " + ADMIN)] + extra
            c.send_headers(sid, hdrs)
            c.send_data(sid, body, end_stream=end)
        return c.data_to_send()

    svc = "/pipe2.auth.v1.TokenService/"
    intro = frame(pb.IntrospectRequest(token=TOKEN))
    write("h2_server", "introspect", conn([(svc + "Introspect", intro, [])]))
    write("h2_server", "health", conn([("/grpc.health.v1.Health/Check", frame(b""), [])]))
    write("h2_server", "issue-timeout", conn([(svc + "IssueToken", frame(pb.IssueTokenRequest(
        user_id="u", name="n")), [("grpc-timeout", "100m")])]))
    write("h2_server", "many", conn([(svc + "Introspect", intro, [])] * 8 +
                                     [(svc + "ListTokens", frame(pb.ListTokensRequest(user_id="u")),
                                       [])]))
    write("h2_server", "unknown", conn([(svc + "Nope", frame(b""), [("grpc-encoding", "gzip")])]))
    write("h2_server", "open-stream", conn([(svc + "Introspect", intro[:7], [])], end=False))
    write("h2_server", "http1", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")


if __name__ == "__main__":
    main()
