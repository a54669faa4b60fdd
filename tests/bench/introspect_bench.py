#!/usr/bin/python3
"""Introspection at the speed of HTTP/2: every figure next to its reference, measured in the
same invocation, min / median / max over --runs runs.

    tests/bench/introspect_bench.py [--runs 3] [--authd PATH]

Method: the server under test pinned to CPU 0, the load generator to CPU 1 (taskset),
loopback only, every load bounded in count, everything started stopped by PID.
Loads: h2load (nghttp2-client) POSTing a prebuilt gRPC body (5-byte prefix +
IntrospectRequest) with content-type application/grpc and te: trailers. A gRPC answer
carries its message (DATA) only with grpc-status 0 -- errors are Trailers-Only -- so each
load checks that every response was a 2xx with exactly one full IntrospectResponse of data.
References: nghttpd --no-tls (one worker) serving a 100-byte file to the same POST load;
openssl speed ecdsap256 verify/s on CPU 0; node-oidc-provider answering RFC 7662
introspection over HTTP/1.1 keep-alive (h2load --h1), client authenticated.
"""
import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import harness  # noqa: E402
from harness import pb  # noqa: E402

SERVER_CPU, LOAD_CPU = "0", "1"
PATH = "/pipe2.auth.v1.TokenService/Introspect"


def taskset(cpu):
    return ["taskset", "-c", cpu]


def h2load(url, body_file, n, c, m, headers, h1=False, log=None, rps=None):
    cmd = taskset(LOAD_CPU) + ["h2load", "-n", str(n), "-c", str(c), "-m", str(m)]
    if body_file:  # a POST of that file; none: GET
        cmd += ["-d", body_file]
    if rps:
        cmd.append(f"--rps={rps}")
    if h1:
        cmd.append("--h1")
    for h in headers:
        cmd += ["-H", h]
    if log:
        cmd.append(f"--log-file={log}")
    cmd.append(url)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300).stdout
    r = {"rps": float(re.search(r"finished in [\d.]+(?:us|ms|s), ([\d.]+) req/s", out).group(1))}
    m_ = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded", out)
    r["total"], r["succeeded"] = int(m_.group(1)), int(m_.group(3))
    r["data"] = int(re.search(r"\((\d+)\) data", out).group(1))
    r["2xx"] = int(re.search(r"status codes: (\d+) 2xx", out).group(1))
    if log:
        with open(log) as f:
            lat = sorted(int(line.split("\t")[2]) for line in f if line.strip())
        r["p50_us"] = lat[len(lat) // 2]
        r["p99_us"] = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    return r


def check_all_ok(r, per_response, what):
    want = r["total"] * per_response
    if r["succeeded"] != r["total"] or r["2xx"] != r["total"] or r["data"] != want:
        raise SystemExit(f"FAIL {what}: {r['succeeded']}/{r['total']} succeeded, "
                         f"{r['data']} data bytes, expected {want}")


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def wait_port(port, timeout=20):
    harness.wait_until(lambda: socket.create_connection(("127.0.0.1", port), 1).close() or True,
                       timeout, f"port {port}")


def malloc_shim(tmp):
    """malloc_count.c built into tmp: preloaded, it counts malloc, calloc and realloc calls."""
    shim = os.path.join(tmp, "malloc_count.so")
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", shim,
                    os.path.join(HERE, "malloc_count.c")], check=True)
    return shim


def malloc_calls(authd):
    """The count so far of a pipe2-authd started with malloc_shim() preloaded."""
    mark = "MALLOC_CALLS"
    seen = authd.output().count(mark)
    authd.proc.send_signal(signal.SIGUSR2)
    harness.wait_until(lambda: authd.output().count(mark) > seen, 5, "the count")
    return int(authd.output().rsplit(mark, 1)[1].split()[0])


def start_peer(tmp, procs):
    """node-oidc-provider (peer/peer.mjs) on CPU 0, its access token checked active: the
    process, its introspection URL, a body file and headers for h2load (client_secret_basic),
    and the length of an answer."""
    import base64
    port = harness.free_port()
    peer = subprocess.Popen(taskset(SERVER_CPU) + ["node", "peer.mjs", str(port)],
                            cwd=os.path.join(HERE, "peer"), stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    procs.append(peer)
    token = ""
    while not token:  # the provider prints notices on stdout before our line
        line = peer.stdout.readline()
        if not line:
            raise SystemExit("FAIL: the peer exited")
        if line.startswith("TOKEN "):
            token = line.split()[1]
    wait_port(port)
    body = os.path.join(tmp, "peer.txt")
    with open(body, "w") as f:
        f.write(f"token={token}")
    secret = "resource-server:bench-secret-bench-secret-bench-secret"
    headers = ["content-type: application/x-www-form-urlencoded",
               f"authorization: Basic {base64.b64encode(secret.encode()).decode()}"]
    url = f"http://127.0.0.1:{port}/token/introspection"
    probe = subprocess.run(["curl", "-s", "-u", secret, "-d", f"token={token}", url],
                           capture_output=True).stdout
    if b'"active":true' not in probe:
        raise SystemExit(f"FAIL: the peer does not find its token active: {probe!r}")
    return peer, url, body, headers, len(probe)


def mmm(xs):
    return min(xs), statistics.median(xs), max(xs)


def fmt(xs, unit=""):
    lo, med, hi = mmm(xs)
    f = (lambda v: f"{v:,.0f}") if med >= 100 else (lambda v: f"{v:.2f}")
    return f"{f(med)}{unit} ({f(lo)}..{f(hi)})"


def bench_start(ap):
    """What every bench starts with: ap's arguments with --runs and --authd (the binary
    measured), a temporary folder, the list of processes to stop, a harness Env (its
    redis-server and keys)."""
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--authd", default=os.environ.get("P2A_AUTHD"))
    a = ap.parse_args()
    if a.authd:
        harness.AUTHD = a.authd
    return a, tempfile.mkdtemp(prefix="p2a-bench-"), [], harness.Env()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cached-n", type=int, default=300000)
    ap.add_argument("--uncached-n", type=int, default=30000)
    ap.add_argument("--tokens", type=int, default=100000, help="for the memory figure")
    a, tmp, procs, env = bench_start(ap)
    results = {}
    try:
        # ---- references that need no server of ours -------------------------------------
        speed = []
        for _ in range(a.runs):
            out = subprocess.run(taskset(SERVER_CPU) + ["openssl", "speed", "-seconds", "3",
                                                        "ecdsap256"],
                                 capture_output=True, text=True).stdout
            speed.append(float(out.strip().splitlines()[-1].split()[-1]))
        results["speed"] = speed

        # ---- pipe2-authd, cached --------------------------------------------------------
        authd = env.authd({"PIPE2_AUTH_WORKERS": "1", "PIPE2_AUTH_CACHE_ENTRIES": "131072"},
                          wrap=taskset(SERVER_CPU))
        admin = authd.client(env.admin_key)
        issued = admin.issue("bench", "bench token")
        body = pb.IntrospectRequest(token=issued.token).SerializeToString()
        body_file = os.path.join(tmp, "introspect.bin")
        with open(body_file, "wb") as f:
            f.write(harness.grpc_body(body))
        mcp = authd.client(env.introspect_key)
        resp_len = 5 + len(mcp.introspect(issued.token).SerializeToString())
        grpc_headers = ["content-type: application/grpc", "te: trailers",
                        f"authorization: Bearer {env.introspect_key}"]
        url = f"http://127.0.0.1:{authd.port}{PATH}"
        results["idle_rss_kb"] = rss_kb(authd.proc.pid)
        ours, ours_p99, ours_c1, ours_one = [], [], [], []
        for i in range(a.runs):
            # throughput without h2load's per-request log (it costs the load generator time),
            # then the same load again with it, for the latency percentiles
            r = h2load(url, body_file, a.cached_n, 16, 32, grpc_headers)
            check_all_ok(r, resp_len, "cached Introspect")
            ours.append(r["rps"])
            r = h2load(url, body_file, a.cached_n, 16, 32, grpc_headers,
                       log=os.path.join(tmp, f"ours{i}.log"))
            check_all_ok(r, resp_len, "cached Introspect (latency)")
            ours_p99.append(r["p99_us"] / 1000)
            r = h2load(url, body_file, 20000, 1, 1, grpc_headers,
                       log=os.path.join(tmp, f"ours-c1-{i}.log"))
            check_all_ok(r, resp_len, "Introspect -c1 -m1")
            ours_c1.append(r["p50_us"])
            # one connection with many streams: what a gRPC channel is
            r = h2load(url, body_file, a.cached_n // 2, 1, 32, grpc_headers)
            check_all_ok(r, resp_len, "Introspect -c1 -m32")
            ours_one.append(r["rps"])
        results.update(ours=ours, ours_p99=ours_p99, ours_c1=ours_c1, ours_one=ours_one)

        # ---- memory per cached token ----------------------------------------------------
        def growth(authd, mcp, use):
            """RSS growth per token over a.tokens distinct valid tokens of this kind."""
            extra = {"client_id": "bench-client"} if use == "access" else {}
            hdr = {"alg": "ES256", "kid": "it-key", "typ": "JWT"}
            tokens = [harness.jwt_es256(env.key_path, hdr, harness.claims(token_use=use, **extra))
                      for _ in range(a.tokens)]
            stub = mcp.channel.unary_unary(PATH, request_serializer=lambda x: x,
                                           response_deserializer=pb.IntrospectResponse.FromString)
            md = [("authorization", "Bearer " + env.introspect_key)]
            before = rss_kb(authd.proc.pid)
            for i in range(0, len(tokens), 500):
                futs = [stub.future(pb.IntrospectRequest(token=t).SerializeToString(),
                                    metadata=md, timeout=30) for t in tokens[i:i + 500]]
                assert all(f.result().active for f in futs)
            return (rss_kb(authd.proc.pid) - before) * 1024 / len(tokens)

        mcp.close()
        admin.close()
        env.authds.remove(authd)
        if authd.stop() != 0:
            raise SystemExit("pipe2-authd did not stop cleanly")
        for use in ("access", "pat"):  # each in a fresh process, warmed by one call
            authd = env.authd({"PIPE2_AUTH_WORKERS": "1", "PIPE2_AUTH_CACHE_ENTRIES": "131072"},
                              wrap=taskset(SERVER_CPU))
            mcp = authd.client(env.introspect_key)
            mcp.introspect(issued.token)
            results[f"per_{use}_b"] = growth(authd, mcp, use)
            mcp.close()
            env.authds.remove(authd)
            authd.stop()

        # ---- allocations per cached Introspect (malloc_count.c preloaded) ---------------
        authd = env.authd({"PIPE2_AUTH_WORKERS": "1", "LD_PRELOAD": malloc_shim(tmp)},
                          wrap=taskset(SERVER_CPU))
        url = f"http://127.0.0.1:{authd.port}{PATH}"

        h2load(url, body_file, 20000, 16, 32, grpc_headers)  # warm up: connections, slabs
        before = malloc_calls(authd)
        r = h2load(url, body_file, 100000, 16, 32, grpc_headers)
        check_all_ok(r, resp_len, "Introspect under the malloc counter")
        # the 16 new connections of the measured load allocate; requests must not
        results["mallocs_per_request"] = (malloc_calls(authd) - before) / 100000
        env.authds.remove(authd)
        authd.stop()

        # ---- pipe2-authd, never-seen tokens (no cache: every call verifies) -------------
        authd = env.authd({"PIPE2_AUTH_WORKERS": "1", "PIPE2_AUTH_CACHE_ENTRIES": "0"},
                          wrap=taskset(SERVER_CPU))
        url = f"http://127.0.0.1:{authd.port}{PATH}"
        uncached = []
        for _ in range(a.runs):
            r = h2load(url, body_file, a.uncached_n, 16, 32, grpc_headers)
            check_all_ok(r, resp_len, "uncached Introspect")
            uncached.append(r["rps"])
        results["uncached"] = uncached
        env.authds.remove(authd)
        authd.stop()

        # ---- nghttpd: the HTTP/2 ceiling ------------------------------------------------
        docroot = os.path.join(tmp, "htdocs")
        os.makedirs(os.path.join(docroot, "pipe2.auth.v1.TokenService"))
        with open(os.path.join(docroot, PATH.lstrip("/")), "wb") as f:
            f.write(b"x" * 100)
        port = harness.free_port()
        nd = subprocess.Popen(taskset(SERVER_CPU) + ["nghttpd", "--no-tls", "-n", "1", "-d",
                                                     docroot, str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(nd)
        wait_port(port)
        url = f"http://127.0.0.1:{port}{PATH}"
        ceiling, ceiling_p99, ceiling_c1, ceiling_one = [], [], [], []
        for i in range(a.runs):
            r = h2load(url, body_file, a.cached_n, 16, 32, grpc_headers)
            check_all_ok(r, 100, "nghttpd")
            ceiling.append(r["rps"])
            r = h2load(url, body_file, a.cached_n, 16, 32, grpc_headers,
                       log=os.path.join(tmp, f"nd{i}.log"))
            check_all_ok(r, 100, "nghttpd (latency)")
            ceiling_p99.append(r["p99_us"] / 1000)
            r = h2load(url, body_file, 20000, 1, 1, grpc_headers,
                       log=os.path.join(tmp, f"nd-c1-{i}.log"))
            check_all_ok(r, 100, "nghttpd -c1 -m1")
            ceiling_c1.append(r["p50_us"])
            r = h2load(url, body_file, a.cached_n // 2, 1, 32, grpc_headers)
            check_all_ok(r, 100, "nghttpd -c1 -m32")
            ceiling_one.append(r["rps"])
        harness.stop_process(nd)
        results.update(ceiling=ceiling, ceiling_p99=ceiling_p99, ceiling_c1=ceiling_c1,
                       ceiling_one=ceiling_one)

        # ---- the peer: node-oidc-provider ------------------------------------------------
        peer, url, peer_body, peer_headers, probe_len = start_peer(tmp, procs)
        peer_rps = []
        for _ in range(a.runs):
            r = h2load(url, peer_body, 20000, 16, 1, peer_headers, h1=True)
            check_all_ok(r, probe_len, "peer introspection")
            peer_rps.append(r["rps"])
        harness.stop_process(peer)
        results["peer"] = peer_rps
    finally:
        for p in procs:
            harness.stop_process(p)
        env.close(check_exit=False)
        shutil.rmtree(tmp, ignore_errors=True)

    R = results
    med = statistics.median
    rows = [
        ("Introspect, cached PAT, -c 16 -m 32 (req/s)", fmt(R["ours"]),
         f"nghttpd POST {fmt(R['ceiling'])}", med(R["ours"]) / med(R["ceiling"]), ">= 0.9"),
        ("Introspect, cached PAT, one connection, -c 1 -m 32 (req/s)", fmt(R["ours_one"]),
         f"nghttpd POST {fmt(R['ceiling_one'])}", med(R["ours_one"]) / med(R["ceiling_one"]),
         ">= 0.9"),
        ("", "", f"peer introspection {fmt(R['peer'])}", med(R["ours"]) / med(R["peer"]),
         ">= 40"),
        ("Introspect, never-seen tokens (req/s)", fmt(R["uncached"]),
         f"openssl speed ES256 verify/s {fmt(R['speed'])}",
         med(R["uncached"]) / med(R["speed"]), ">= 0.8"),
        ("Introspect, -c 1 -m 1, p50 latency (us)", fmt(R["ours_c1"]),
         f"nghttpd p50 {fmt(R['ceiling_c1'])}", med(R["ours_c1"]) / med(R["ceiling_c1"]),
         "<= 1.3"),
        ("Introspect, cached PAT, -c 16 -m 32, p99 latency (ms)", fmt(R["ours_p99"]),
         f"nghttpd p99 {fmt(R['ceiling_p99'])}", med(R["ours_p99"]) / med(R["ceiling_p99"]),
         "<= 2 ms"),
    ]
    print("| figure | pipe2-authd, median (min..max) | reference, median (min..max) | ratio | "
          "target |")
    print("|---|---|---|---|---|")
    for name, ours_s, ref, ratio, target in rows:
        print(f"| {name} | {ours_s} | {ref} | {ratio:.2f} | {target} |")
    print(f"| malloc calls per cached Introspect (100,000 requests, 16 new connections) | "
          f"{R['mallocs_per_request']:.4f} | | | 0 |")
    print(f"| idle RSS, 1 worker | {R['idle_rss_kb'] / 1024:.1f} MB | | | <= 30 MB |")
    print(f"| RSS growth per cached token ({a.tokens:,} OAuth access tokens) | "
          f"{R['per_access_b']:.0f} bytes | | | <= 300 bytes |")
    print(f"| RSS growth per cached PAT ({a.tokens:,} PATs: cache + last-used marks until the "
          f"flush) | {R['per_pat_b']:.0f} bytes | | | |")
    print(f"\nruns: {a.runs}; p99 target check: {fmt(R['ours_p99'])} ms")


if __name__ == "__main__":
    main()
