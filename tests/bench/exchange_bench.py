"""Introspect of a cached exchanged token (RFC 8693: act, and the chain it was exchanged
from, checked against the revocation set on every call) against a cached plain OAuth access
token, in one run of one pipe2-authd: the instructions each call costs (callgrind counts
instructions, not seconds, so a shared machine's noise stays out). Reported as plain's
instructions over exchanged's: the exchanged token's throughput relative to the plain one's
(target: at least 0.95).

    tests/bench/exchange_bench.py [--authd build/release/pipe2-authd] [-n 3000]

Both tokens are for the same resource and the same person, the plain one from a code grant,
the exchanged one from a code grant's token for another resource. One worker under valgrind
with instrumentation off until each load starts (a warm-up fills the token cache first).
Loopback only; everything started is stopped."""
import argparse
import base64
import json
import os
import re
import subprocess
import sys
import tempfile
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import harness  # noqa: E402
from harness import pb  # noqa: E402
from ab_bench import callgrind, counted, totals  # noqa: E402
from introspect_bench import check_all_ok, h2load  # noqa: E402
from test_oauth import FORM, PASSWORD, Flow, pkce  # noqa: E402
from test_grants import REDIRECT, register  # noqa: E402

A = "https://a.example.test/mcp"
B = "https://b.example.test/mcp"
GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS = "urn:ietf:params:oauth:token-type:access_token"


def post(a, form, headers=None):
    st, _, b = a.http("/token", "POST", urllib.parse.urlencode(form), {**FORM, **(headers or {})})
    if st != 200:
        raise SystemExit(f"FAIL /token {st}: {b}")
    return json.loads(b)["access_token"]


def code_token(a, cid, f, resource):
    v, c = pkce()
    code = f.code(cid, REDIRECT, c, scope="mcp", resource=resource)
    return post(a, {"grant_type": "authorization_code", "code": code, "code_verifier": v,
                    "client_id": cid, "redirect_uri": REDIRECT})


def digest_cost(dump):
    """Instructions spent in digest_sha256 (inclusive) in one callgrind dump: the token's
    digest, the cache key, the one cost that grows with the token's length."""
    out = subprocess.run(["callgrind_annotate", "--inclusive=yes", dump], capture_output=True,
                         text=True).stdout
    m = re.search(r"^\s*([\d,]+) .*digest_sha256", out, re.M)
    return int(m.group(1).replace(",", "")) if m else 0


def measure(binary, n, tmp):
    harness.AUTHD = binary
    env = harness.Env()
    try:
        a = harness.Authd(env, wrap=callgrind(tmp, "exchange"))
        a.binary = binary
        a.extra = {"PIPE2_AUTH_WORKERS": "1", "PIPE2_AUTH_RESOURCE": f"{A},{B}",
                   "PIPE2_AUTH_ISSUER": f"http://127.0.0.1:{a.http_port}"}
        a.issuer = a.extra["PIPE2_AUTH_ISSUER"]
        env.authds.append(a)
        a.start(wait_ready=False)
        a.wait_serving(120)
        admin = a.client(env.admin_key)
        admin.create_user("ana", PASSWORD)
        server = admin.call("RegisterClient", pb.RegisterClientRequest(
            client_name="Server A", grant_types=[GRANT], resources=[A, B],
            token_endpoint_auth_method="client_secret_basic"))
        admin.close()
        cid, f = register(a), Flow(a)
        plain = code_token(a, cid, f, B)
        subject = code_token(a, cid, f, A)
        raw = f"{server.client_id}:{server.client_secret}".encode()
        exchanged = post(a, {"grant_type": GRANT, "subject_token": subject,
                             "subject_token_type": ACCESS, "resource": B},
                         {"Authorization": "Basic " + base64.b64encode(raw).decode()})
        url = f"http://127.0.0.1:{a.port}/pipe2.auth.v1.TokenService/Introspect"
        headers = ["content-type: application/grpc", "te: trailers",
                   f"authorization: Bearer {env.introspect_key}"]
        out = {}
        for key, token in (("plain", plain), ("exchanged", exchanged)):
            body = os.path.join(tmp, f"{key}.bin")
            with open(body, "wb") as fh:
                fh.write(harness.grpc_body(
                    pb.IntrospectRequest(token=token, resource=B).SerializeToString()))
            probe = h2load(url, body, 1, 1, 1, headers)
            h2load(url, body, 200, 1, 1, headers)  # warm: the cache, the connections
            before = totals(tmp, "exchange", a.proc.pid)
            dumps = set(os.listdir(tmp))
            counted(a.proc.pid, lambda: check_all_ok(h2load(url, body, n, 1, 1, headers),
                                                     probe["data"], f"Introspect ({key})"))
            out[key] = (totals(tmp, "exchange", a.proc.pid) - before) / n
            out[key + "_digest"] = sum(digest_cost(os.path.join(tmp, f))
                                       for f in set(os.listdir(tmp)) - dumps) / n
            out[key + "_len"] = len(token)
        return out
    finally:
        env.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--authd", default=os.environ.get("P2A_AUTHD", os.path.join(
        HERE, "..", "..", "build", "release", "pipe2-authd")))
    ap.add_argument("-n", type=int, default=3000)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="p2a-exchange-")
    r = measure(os.path.abspath(a.authd), a.n, tmp)
    ratio = r["plain"] / r["exchanged"]
    rest = (r["plain"] - r["plain_digest"]) / (r["exchanged"] - r["exchanged_digest"])
    print(f"Introspect, cached: plain OAuth token ({r['plain_len']} bytes) "
          f"{r['plain']:,.0f} instructions a call, exchanged token ({r['exchanged_len']} bytes, "
          f"a chain of one) {r['exchanged']:,.0f}: exchanged/plain throughput {ratio:.3f} "
          f"(target >= 0.95)")
    print(f"  of which the token's SHA-256 (the cache key): {r['plain_digest']:,.0f} and "
          f"{r['exchanged_digest']:,.0f} (valgrind runs SHA-256 without the CPU's SHA "
          f"extensions: about 1,800 instructions each 64 bytes); the rest {rest:.3f}")
    if ratio < 0.95:
        raise SystemExit("FAIL: below 0.95")

if __name__ == "__main__":
    main()
