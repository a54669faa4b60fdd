"""Before against after, in one invocation: the instructions pipe2-authd spends per cached
forward-auth request and per cached Introspect call, for two builds (callgrind counts
instructions, not seconds: the same for the same binary and inputs whatever else the machine
is doing, which a shared 2-core machine needs). Reported as after/before throughput ratios
(before's instructions over after's: above 1 is faster).

    tests/bench/ab_bench.py --before OLD/pipe2-authd --after NEW/pipe2-authd [-n 3000]
    tests/bench/ab_bench.py --trail NEW/pipe2-authd [-n 3000]

--trail compares one build with the audit trail off (PIPE2_AUTH_AUDIT=off, "before") and on
("after").

Each build runs one worker under valgrind with instrumentation off until the load starts
(a warm-up fills the token cache first), then n requests from h2load; the dump's total over
n is the figure. Loopback only; everything started is stopped."""
import argparse
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import harness  # noqa: E402
from harness import pb  # noqa: E402
from introspect_bench import check_all_ok, h2load  # noqa: E402

RESOURCE = "http://127.0.0.1:3000/mcp"


def callgrind(tmp, name):
    return ["valgrind", "--tool=callgrind", "--instr-atstart=no",
            f"--callgrind-out-file={os.path.join(tmp, name)}.%p"]


def counted(pid, load):
    """Instructions the process at pid spends while load() runs."""
    subprocess.run(["callgrind_control", "--instr=on", str(pid)], check=True,
                   capture_output=True)
    load()
    subprocess.run(["callgrind_control", "--instr=off", str(pid)], check=True,
                   capture_output=True)
    out = subprocess.run(["callgrind_control", "--dump", str(pid)], check=True,
                         capture_output=True, text=True).stdout
    return out


def totals(tmp, name, pid):
    """The summed totals of every dump of pid so far."""
    total = 0
    for f in os.listdir(tmp):
        if f.startswith(f"{name}.{pid}"):
            with open(os.path.join(tmp, f)) as fh:
                m = re.search(r"^totals: (\d+)", fh.read(), re.M)
                total += int(m.group(1)) if m else 0
    return total


def measure(binary, n, tmp, extra=None):
    """{'fa': instructions per forward-auth, 'intro': per Introspect} for one build."""
    harness.AUTHD = binary
    env = harness.Env()
    try:
        fport = harness.free_port()
        name = os.path.basename(os.path.dirname(binary)) + str(harness.free_port())
        a = env.authd({"PIPE2_AUTH_WORKERS": "1", "PIPE2_AUTH_RESOURCE": RESOURCE,
                       "PIPE2_AUTH_FORWARD_AUTH_LISTEN": f"127.0.0.1:{fport}", **(extra or {})},
                      wrap=callgrind(tmp, name))
        admin = a.client(env.admin_key)
        token = admin.issue("bench", "bench token", scope="mcp").token
        admin.close()
        fa_url = f"http://127.0.0.1:{fport}/forward-auth"
        fa_headers = [f"authorization: Bearer {token}", "x-forwarded-host: 127.0.0.1:3000",
                      "x-forwarded-uri: /mcp"]
        body = os.path.join(tmp, "intro.bin")
        with open(body, "wb") as f:
            f.write(harness.grpc_body(pb.IntrospectRequest(token=token,
                                                           resource=RESOURCE).SerializeToString()))
        intro_url = f"http://127.0.0.1:{a.port}/pipe2.auth.v1.TokenService/Introspect"
        grpc_headers = ["content-type: application/grpc", "te: trailers",
                        f"authorization: Bearer {env.introspect_key}"]
        probe = h2load(intro_url, body, 1, 1, 1, grpc_headers)
        h2load(fa_url, None, 200, 4, 1, fa_headers, h1=True)  # warm: cache, connections
        out = {}
        for key, load in (
                ("fa", lambda: check_all_ok(h2load(fa_url, None, n, 4, 1, fa_headers, h1=True),
                                            0, "forward-auth")),
                ("intro", lambda: check_all_ok(h2load(intro_url, body, n, 4, 8, grpc_headers),
                                               probe["data"], "Introspect"))):
            before = totals(tmp, name, a.proc.pid)
            counted(a.proc.pid, load)
            out[key] = (totals(tmp, name, a.proc.pid) - before) / n
        return out
    finally:
        env.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--before")
    ap.add_argument("--after")
    ap.add_argument("--trail", help="one build: the audit trail off (before) and on (after)")
    ap.add_argument("-n", type=int, default=3000)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="p2a-ab-")
    if a.trail:
        b = measure(os.path.abspath(a.trail), a.n, tmp, {"PIPE2_AUTH_AUDIT": "off"})
        c = measure(os.path.abspath(a.trail), a.n, tmp, {"PIPE2_AUTH_AUDIT": "on"})
    else:
        b = measure(os.path.abspath(a.before), a.n, tmp)
        c = measure(os.path.abspath(a.after), a.n, tmp)
    for key, what in (("fa", "forward-auth (cached, HTTP/1.1 keep-alive)"),
                      ("intro", "Introspect (cached, gRPC)")):
        print(f"{what}: {b[key]:,.0f} -> {c[key]:,.0f} instructions a request; "
              f"after/before throughput {b[key] / c[key]:.3f}")


if __name__ == "__main__":
    main()
