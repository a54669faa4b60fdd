#!/usr/bin/python3
"""Sign-ins against Introspect: what the hashing pool does, and what a sign-in storm costs
the hot path. Every figure next to a reference measured in the same invocation.

    tests/bench/signin_bench.py [--runs 3] [--authd PATH]

Method: pipe2-authd (1 worker, the default 2 hashing threads) pinned to CPU 0, every load
generator on CPU 1 (taskset), loopback only, loads bounded in count and time, everything
started stopped by PID.
- Sign-ins per second: 240 POST /login (wrong passwords for random usernames, so that each
  one is hashed and nothing is stored but the attempt counters) from 8 client threads on 8
  addresses. Reference: scrypt (N=2^15, r=8, p=1, the service's parameters) per second on
  one thread pinned to CPU 0 (Python's hashlib, OpenSSL underneath): all that core can hash,
  which is what the server, pinned there, has.
- Introspect p99, cached path (the attackers' threads run at nice 19 on CPU 1, so that
  h2load's clock measures the server, not its competition for CPU 1): h2load, 8 clients at a fixed 500 requests/s each (4,000/s),
  30,000 requests, quiet; then the same load during a sign-in storm of 16 clients (within
  what the pool holds: every sign-in is hashed, the CPU is saturated), and during a flood of
  48 clients on 24 addresses (beyond it: the surplus is answered 503 at once, thousands a
  second). Target: p99 during the storm at most 1.5 x quiet.
"""
import argparse
import concurrent.futures
import hashlib
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import harness  # noqa: E402
from harness import pb  # noqa: E402
from introspect_bench import LOAD_CPU, PATH, SERVER_CPU, check_all_ok, h2load, taskset  # noqa: E402
from test_hostile import login  # noqa: E402


def scrypt_per_second(seconds=3.0):
    """scrypt hashes per second on this thread, with the service's parameters."""
    n, t0 = 0, time.monotonic()
    while time.monotonic() - t0 < seconds:
        hashlib.scrypt(b"a password", salt=b"0123456789abcdef", n=1 << 15, r=8, p=1,
                       maxmem=64 << 20, dklen=32)
        n += 1
    return n / (time.monotonic() - t0)


def fmt(xs, unit=""):
    s = sorted(xs)
    return f"{statistics.median(s):,.2f}{unit} ({s[0]:,.2f}..{s[-1]:,.2f})"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--authd", default=os.environ.get("P2A_AUTHD"))
    a = ap.parse_args()
    if a.authd:
        harness.AUTHD = a.authd
    tmp = tempfile.mkdtemp(prefix="p2a-bench-")
    env = harness.Env()
    try:
        # reference: scrypt on CPU 0, in a child pinned there
        ref = []
        for _ in range(a.runs):
            out = subprocess.run(taskset(SERVER_CPU) + [sys.executable, "-c",
                                 "import sys; sys.path.insert(0, %r); import signin_bench as b; "
                                 "print(b.scrypt_per_second())" % HERE],
                                 capture_output=True, text=True, check=True).stdout
            ref.append(float(out.strip().splitlines()[-1]))

        authd = env.authd({"PIPE2_AUTH_WORKERS": "1",
                           "PIPE2_AUTH_ISSUER": "http://127.0.0.1:8080",
                           "PIPE2_AUTH_LOGIN_RATE_LIMIT": "1000000",
                           "PIPE2_AUTH_LOGIN_THROTTLE_AFTER": "1000000"},
                          wrap=taskset(SERVER_CPU))
        threads = 2
        # our load generators run on CPU 1
        os.sched_setaffinity(0, {int(LOAD_CPU)})

        answered = [0]

        def storm(n, workers, stop=None):
            def one(i):
                if stop is not None and stop.is_set():
                    return None
                # the attackers yield CPU 1 to h2load, whose clock measures the latencies
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
                code = login(authd.http_port, "u" + secrets.token_hex(6), "wrong password",
                             f"127.0.0.{100 + i % min(workers, 24)}")[0]
                answered[0] += 1
                return code
            with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
                return list(pool.map(one, range(n)))

        rates = []
        for _ in range(a.runs):
            t0 = time.monotonic()
            codes = storm(240, 8)
            took = time.monotonic() - t0
            if codes.count(401) != len(codes):
                raise SystemExit(f"FAIL sign-ins: {sorted(set(codes))}")
            rates.append(len(codes) / took)

        admin = authd.client(env.admin_key)
        tok = admin.issue("bench", "bench token").token
        admin.close()
        body_file = os.path.join(tmp, "introspect.bin")
        with open(body_file, "wb") as f:
            f.write(harness.grpc_body(pb.IntrospectRequest(token=tok).SerializeToString()))
        mcp = authd.client(env.introspect_key)
        resp_len = 5 + len(mcp.introspect(tok).SerializeToString())
        mcp.close()
        hdrs = ["content-type: application/grpc", "te: trailers",
                f"authorization: Bearer {env.introspect_key}"]
        url = f"http://127.0.0.1:{authd.port}{PATH}"

        def introspect_p99(tag):
            r = h2load(url, body_file, 30000, 8, 1, hdrs + [], log=os.path.join(tmp, tag),
                       rps=500)
            check_all_ok(r, resp_len, f"Introspect ({tag})")
            return r["p50_us"] / 1000, r["p99_us"] / 1000

        h2load(url, body_file, 20000, 8, 4, hdrs)  # warm up: connections, cache, slabs

        def during(workers, tag):
            stop = threading.Event()
            result = {}
            t = threading.Thread(target=lambda: result.update(codes=storm(100000, workers, stop)))
            before = answered[0]
            t.start()
            harness.wait_until(lambda: answered[0] >= before + workers, 30, "the storm to start")
            p = introspect_p99(tag)
            stop.set()
            t.join()
            codes = [c for c in result["codes"] if c is not None]
            return p, (codes.count(401), codes.count(503), len(codes))

        quiet, storm_p, flood_p, storm_codes, flood_codes = [], [], [], [], []
        for i in range(a.runs):
            quiet.append(introspect_p99(f"quiet{i}"))
            p, c = during(16, f"storm{i}")
            storm_p.append(p)
            storm_codes.append(c)
            p, c = during(48, f"flood{i}")
            flood_p.append(p)
            flood_codes.append(c)

        print(f"sign-ins per second, {threads} hashing threads, server on CPU 0: {fmt(rates)}")
        print(f"  reference: scrypt N=2^15 r=8 p=1 on CPU 0: {fmt(ref)}/s  -> ratio "
              f"{statistics.median(rates) / statistics.median(ref):.2f}")
        qp99 = [q[1] for q in quiet]
        print(f"Introspect at 4,000/s, quiet: p50 {fmt([q[0] for q in quiet], ' ms')}, "
              f"p99 {fmt(qp99, ' ms')}")
        for name, ps, cs in (("storm (16 clients: every sign-in hashed)", storm_p, storm_codes),
                             ("flood (48 clients: beyond the pool, 503s)", flood_p, flood_codes)):
            p99 = [x[1] for x in ps]
            print(f"  during a sign-in {name}: p50 {fmt([x[0] for x in ps], ' ms')}, "
                  f"p99 {fmt(p99, ' ms')} -> p99 ratio "
                  f"{statistics.median(p99) / statistics.median(qp99):.2f} (target <= 1.5)")
            for n401, n503, n in cs:
                print(f"    {n} sign-ins: {n401} hashed (401), {n503} refused 503")
    finally:
        env.close()


if __name__ == "__main__":
    main()
