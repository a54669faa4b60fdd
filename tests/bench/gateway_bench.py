#!/usr/bin/python3
"""The gateway paths, each next to its reference measured in the same invocation, min /
median / max over --runs runs.

    tests/bench/gateway_bench.py [--runs 3] [--authd PATH]

Method as introspect_bench.py: one worker pinned to CPU 0, the load (h2load) on CPU 1,
loopback only, every load bounded in count and checked (every response 2xx, every byte
of data accounted for), everything started stopped by PID.
  - forward-auth (GET /forward-auth, a cached PAT, HTTP/1.1 keep-alive, -c 16, no
    pipelining: how nginx auth_request and Traefik ask) against nginx answering `return 200`
    with one worker on the same CPU, the same load (target >= 0.5); and p50 at one
    connection, one request at a time, against nginx's;
  - RFC 7662 POST /introspect on the workers' listener (a cached PAT, an introspect key)
    against node-oidc-provider's introspection (the peer), the same load (target >= 10);
  - Envoy's Check over gRPC against Introspect on the same process (target >= 0.9).
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import harness  # noqa: E402
from harness import pb  # noqa: E402
from introspect_bench import (SERVER_CPU, bench_start, fmt, h2load,  # noqa: E402
                              malloc_calls, malloc_shim, start_peer, taskset, wait_port)

RESOURCE = "http://127.0.0.1:3000/mcp"


def check(r, per_response, what):
    """Every response 2xx and per_response bytes of data each."""
    if r["succeeded"] != r["total"] or r["2xx"] != r["total"] or \
            r["data"] != r["total"] * per_response:
        raise SystemExit(f"FAIL {what}: {r['succeeded']}/{r['total']} succeeded, {r['2xx']} "
                         f"2xx, {r['data']} data bytes, expected {r['total'] * per_response}")


def pb_field(num, payload):
    """A length-delimited protobuf field (wire type 2)."""
    key, n, out = (num << 3) | 2, len(payload), b""
    out += bytes([key])
    while True:
        b = n & 0x7F
        n >>= 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out + payload


def check_request(token):
    """envoy.service.auth.v3.CheckRequest, as Envoy sends it for POST /mcp."""
    headers = {"authorization": f"Bearer {token}", ":authority": "127.0.0.1:3000",
               "content-type": "application/json"}
    http = pb_field(2, b"POST") + b"".join(
        pb_field(3, pb_field(1, k.encode()) + pb_field(2, v.encode())) for k, v in headers.items())
    http += pb_field(4, b"/mcp") + pb_field(5, b"127.0.0.1:3000")
    return pb_field(1, pb_field(4, pb_field(2, http)))


def keepalive_runs(url, headers, n, log, label, rps, p50):
    """One HTTP/1.1 keep-alive throughput run (-c 16) into rps, one latency run (-c 1, its
    per-request log at log) into p50; every answer must be an empty 200."""
    r = h2load(url, None, n, 16, 1, headers, h1=True)
    check(r, 0, label)
    rps.append(r["rps"])
    r = h2load(url, None, 20000, 1, 1, headers, h1=True, log=log)
    check(r, 0, f"{label} -c1")
    p50.append(r["p50_us"])


def nginx_return_200(tmp, port):
    ngdir = os.path.join(tmp, "nginx")
    os.makedirs(ngdir, exist_ok=True)
    conf = harness.nginx_conf(ngdir, f"    keepalive_requests 1000000;\n"
                                     f"    server {{\n        listen 127.0.0.1:{port};\n"
                                     f"        location / {{ return 200; }}\n    }}\n",
                              worker_connections=1024, error_level="error")
    return subprocess.Popen(taskset(SERVER_CPU) + [shutil.which("nginx") or "/usr/sbin/nginx",
                                                   "-c", conf, "-p", ngdir],
                            stderr=subprocess.DEVNULL)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=200000)
    a, tmp, procs, env = bench_start(ap)
    R = {k: [] for k in ("fa", "fa_p50", "ng", "ng_p50", "rfc", "peer", "check", "intro")}
    try:
        fport = harness.free_port()
        authd = env.authd({"PIPE2_AUTH_WORKERS": "1", "PIPE2_AUTH_RESOURCE": RESOURCE,
                           "PIPE2_AUTH_FORWARD_AUTH_LISTEN": f"127.0.0.1:{fport}"},
                          wrap=taskset(SERVER_CPU))
        admin = authd.client(env.admin_key)
        token = admin.issue("bench", "bench token", scope="mcp").token
        fa_url = f"http://127.0.0.1:{fport}/forward-auth"
        fa_headers = [f"authorization: Bearer {token}", "x-forwarded-host: 127.0.0.1:3000",
                      "x-forwarded-uri: /mcp"]
        rfc_body = os.path.join(tmp, "rfc7662.txt")
        with open(rfc_body, "w") as f:
            f.write(f"token={token}")
        rfc_headers = ["content-type: application/x-www-form-urlencoded",
                       f"authorization: Bearer {env.introspect_key}"]
        rfc_url = f"http://127.0.0.1:{fport}/introspect"
        rfc_len = len(authd.http("/introspect", "POST", f"token={token}",
                                 {"Content-Type": "application/x-www-form-urlencoded",
                                  "Authorization": f"Bearer {env.introspect_key}"})[2])
        grpc_headers = ["content-type: application/grpc", "te: trailers",
                        f"authorization: Bearer {env.introspect_key}"]
        bodies = {}
        for name, msg in (("check", check_request(token)),
                          ("intro", pb.IntrospectRequest(token=token,
                                                         resource=RESOURCE).SerializeToString())):
            bodies[name] = os.path.join(tmp, f"{name}.bin")
            with open(bodies[name], "wb") as f:
                f.write(harness.grpc_body(msg))
        paths = {"check": "/envoy.service.auth.v3.Authorization/Check",
                 "intro": "/pipe2.auth.v1.TokenService/Introspect"}
        sizes = {}
        for name in bodies:  # one call each: its answer's size, every later one must match
            r = h2load(f"http://127.0.0.1:{authd.port}{paths[name]}", bodies[name], 1, 1, 1,
                       grpc_headers)
            sizes[name] = r["data"]
            if r["2xx"] != 1 or r["data"] < 10:
                raise SystemExit(f"FAIL: {name} probe: {r}")
        check(h2load(fa_url, None, 2000, 4, 1, fa_headers, h1=True), 0, "forward-auth warm-up")
        for i in range(a.runs):
            keepalive_runs(fa_url, fa_headers, a.n, os.path.join(tmp, f"fa{i}.log"),
                           "forward-auth", R["fa"], R["fa_p50"])
            r = h2load(rfc_url, rfc_body, a.n // 2, 16, 1, rfc_headers, h1=True)
            check(r, rfc_len, "RFC 7662 on the workers")
            R["rfc"].append(r["rps"])
            for name in ("check", "intro"):
                r = h2load(f"http://127.0.0.1:{authd.port}{paths[name]}", bodies[name], a.n, 16,
                           32, grpc_headers)
                check(r, sizes[name], name)
                R[name].append(r["rps"])
        admin.close()
        authd.stop()

        # ---- allocations per cached forward-auth and Check (malloc_count.c preloaded) --------
        env.authds.remove(authd)
        authd = env.authd({"PIPE2_AUTH_WORKERS": "1", "PIPE2_AUTH_RESOURCE": RESOURCE,
                           "PIPE2_AUTH_FORWARD_AUTH_LISTEN": f"127.0.0.1:{fport}",
                           "LD_PRELOAD": malloc_shim(tmp)}, wrap=taskset(SERVER_CPU))
        check_url = f"http://127.0.0.1:{authd.port}{paths['check']}"
        h2load(fa_url, None, 20000, 16, 1, fa_headers, h1=True)  # warm up: connections, slabs
        h2load(check_url, bodies["check"], 20000, 16, 32, grpc_headers)
        before = malloc_calls(authd)
        check(h2load(fa_url, None, 100000, 16, 1, fa_headers, h1=True), 0, "forward-auth, counted")
        R["fa_malloc"] = (malloc_calls(authd) - before) / 100000
        before = malloc_calls(authd)
        check(h2load(check_url, bodies["check"], 100000, 16, 32, grpc_headers), sizes["check"],
              "Check, counted")
        R["check_malloc"] = (malloc_calls(authd) - before) / 100000
        env.authds.remove(authd)
        authd.stop()

        # ---- nginx return 200, one worker on the same CPU ----------------------------------
        nport = harness.free_port()
        ng = nginx_return_200(tmp, nport)
        procs.append(ng)
        wait_port(nport)
        ng_url = f"http://127.0.0.1:{nport}/forward-auth"
        for i in range(a.runs):
            keepalive_runs(ng_url, fa_headers, a.n, os.path.join(tmp, f"ng{i}.log"),
                           "nginx return 200", R["ng"], R["ng_p50"])
        harness.stop_process(ng)

        # ---- the peer: node-oidc-provider's introspection ---------------------------------
        peer, peer_url, peer_body, peer_headers, probe_len = start_peer(tmp, procs)
        for _ in range(a.runs):
            r = h2load(peer_url, peer_body, 20000, 16, 1, peer_headers, h1=True)
            check(r, probe_len, "peer introspection")
            R["peer"].append(r["rps"])
        harness.stop_process(peer)
    finally:
        for p in procs:
            harness.stop_process(p)
        env.close(check_exit=False)
        shutil.rmtree(tmp, ignore_errors=True)

    med = statistics.median
    rows = [
        ("forward-auth, cached PAT, HTTP/1.1 -c 16 (req/s)", fmt(R["fa"]),
         f"nginx return 200 {fmt(R['ng'])}", med(R["fa"]) / med(R["ng"]), ">= 0.5"),
        ("forward-auth, -c 1, p50 latency (us)", fmt(R["fa_p50"]),
         f"nginx return 200 p50 {fmt(R['ng_p50'])}", med(R["fa_p50"]) / med(R["ng_p50"]), ""),
        ("RFC 7662 /introspect on the workers, cached PAT, -c 16 (req/s)", fmt(R["rfc"]),
         f"peer introspection {fmt(R['peer'])}", med(R["rfc"]) / med(R["peer"]), ">= 10"),
        ("Envoy Check over gRPC, cached PAT, -c 16 -m 32 (req/s)", fmt(R["check"]),
         f"Introspect {fmt(R['intro'])}", med(R["check"]) / med(R["intro"]), ">= 0.9"),
    ]
    print("| figure | pipe2-authd, median (min..max) | reference, median (min..max) | ratio | "
          "target |")
    print("|---|---|---|---|---|")
    for name, ours, ref, ratio, target in rows:
        print(f"| {name} | {ours} | {ref} | {ratio:.2f} | {target} |")
    print(f"| malloc calls per cached forward-auth (100,000 requests, 16 new connections) | "
          f"{R['fa_malloc']:.4f} | | | 0 |")
    print(f"| malloc calls per cached Check (100,000 requests, 16 new connections) | "
          f"{R['check_malloc']:.4f} | | | 0 |")
    print(f"\nruns: {a.runs}")


if __name__ == "__main__":
    main()
