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
from introspect_bench import SERVER_CPU, check_all_ok, h2load, taskset  # noqa: E402
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
    """Instructions spent in digest_siphash128 (inclusive) in one callgrind dump: the token's
    cache key, the one cost that grows with the token's length."""
    out = subprocess.run(["callgrind_annotate", "--inclusive=yes", dump], capture_output=True,
                         text=True).stdout
    m = re.search(r"^\s*([\d,]+) .*digest_siphash128", out, re.M)
    return int(m.group(1).replace(",", "")) if m else 0


def measure(binary, n, tmp, wall_rounds=0):
    harness.AUTHD = binary
    env = harness.Env()
    try:
        wrap = taskset(SERVER_CPU) if wall_rounds else callgrind(tmp, "exchange")
        a = harness.Authd(env, wrap=wrap)
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
        if wall_rounds:
            return wall(a.proc.pid, url, tmp, headers, {"plain": plain, "exchanged": exchanged}, n,
                        wall_rounds)
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


def cpu_ns(pid):
    """CPU time the process's threads have run, in nanoseconds (schedstat's first field)."""
    total = 0
    for t in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{t}/schedstat") as fh:
            total += int(fh.read().split()[0])
    return total


def wall(pid, url, tmp, headers, tokens, n, rounds):
    """The server's CPU time a request (its threads' schedstat, so that the load generator,
    h2load -c 16 -m 32 on the other core, is not what is measured), the two tokens taking
    turns (which goes first alternates) for rounds rounds: the ratio of each round, so that
    the machine's drift between rounds cancels."""
    bodies = {}
    for key, token in tokens.items():
        bodies[key] = os.path.join(tmp, f"{key}.bin")
        with open(bodies[key], "wb") as fh:
            fh.write(harness.grpc_body(
                pb.IntrospectRequest(token=token, resource=B).SerializeToString()))
        probe = h2load(url, bodies[key], 1, 1, 1, headers)
        check_all_ok(h2load(url, bodies[key], 2000, 16, 32, headers), probe["data"], key)
    ratios = []
    for r in range(rounds):
        order = ["plain", "exchanged"] if r % 2 == 0 else ["exchanged", "plain"]
        ns = {}
        for k in order:
            before = cpu_ns(pid)
            h2load(url, bodies[k], n, 16, 32, headers)
            ns[k] = (cpu_ns(pid) - before) / n
        ratios.append(ns["plain"] / ns["exchanged"])
        print(f"  round {r + 1}: plain {ns['plain']:,.0f} ns of server CPU a call, exchanged "
              f"{ns['exchanged']:,.0f} ns, throughput ratio {ratios[-1]:.3f}")
    return sorted(ratios)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--authd", default=os.environ.get("P2A_AUTHD", os.path.join(
        HERE, "..", "..", "build", "release", "pipe2-authd")))
    ap.add_argument("-n", type=int, default=3000)
    ap.add_argument("--wall", type=int, default=0, metavar="ROUNDS",
                    help="the server's CPU time a call (server pinned, h2load on the other core) "
                         "in ROUNDS alternating rounds of n requests, instead of callgrind's "
                         "instructions")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="p2a-exchange-")
    if a.wall:
        ratios = measure(os.path.abspath(a.authd), a.n, tmp, a.wall)
        med = ratios[len(ratios) // 2]
        print(f"Introspect, cached, server CPU a call: exchanged/plain throughput, median of "
              f"{len(ratios)} rounds {med:.3f} (min {ratios[0]:.3f}, max {ratios[-1]:.3f}; "
              f"target >= 0.95)")
        if med < 0.95:
            raise SystemExit("FAIL: below 0.95")
        return
    r = measure(os.path.abspath(a.authd), a.n, tmp)
    ratio = r["plain"] / r["exchanged"]
    rest = (r["plain"] - r["plain_digest"]) / (r["exchanged"] - r["exchanged_digest"])
    print(f"Introspect, cached: plain OAuth token ({r['plain_len']} bytes) "
          f"{r['plain']:,.0f} instructions a call, exchanged token ({r['exchanged_len']} bytes, "
          f"a chain of one) {r['exchanged']:,.0f}: exchanged/plain throughput {ratio:.3f} "
          f"(target >= 0.95)")
    print(f"  of which the token's cache key (SipHash-2-4): {r['plain_digest']:,.0f} and "
          f"{r['exchanged_digest']:,.0f}; the rest {rest:.3f}")
    if ratio < 0.95:
        raise SystemExit("FAIL: below 0.95")

if __name__ == "__main__":
    main()
