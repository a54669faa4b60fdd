#!/usr/bin/python3
"""A local rehearsal of the cluster: one redis-server and three pipe2-authd replicas on
127.0.0.1, a steady introspection load spread over them the way a Kubernetes Service and a
gRPC client would spread it, revocations made while it runs, then a rolling restart of the
replicas one by one (SIGTERM, wait for exit, start again, wait for ready) and a fourth
replica added. It counts failed introspections (an error after every replica was tried) and
revoked tokens accepted (active = true for a token whose revocation had been acknowledged
before the introspection was sent); both must be zero.

    deploy/rehearsal.py [--seconds-per-step 2] [--authd build/release/pipe2-authd]
"""
import argparse
import os
import random
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import grpc  # noqa: E402

import harness  # noqa: E402


class Load:
    """Client threads introspecting tokens on whichever replicas are up, like a gRPC client
    behind a Service: a call refused before it was accepted (UNAVAILABLE) is tried on the
    next replica; only an error on every replica counts as a failure."""

    def __init__(self, env, tokens, threads=4):
        self.env = env
        self.tokens = tokens  # list of (token, jti)
        self.revoked_at = {}  # jti -> monotonic time its RevokeToken was answered
        self.replicas = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.ok = self.refused = self.failed = self.revoked_accepted = self.revoked_refused = 0
        self.errors = []
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(threads)]

    def set_replicas(self, replicas):
        with self.lock:
            self.replicas = list(replicas)

    def run(self):
        clients = {}
        try:
            while not self.stop.is_set():
                token, jti = random.choice(self.tokens)
                with self.lock:
                    order = list(self.replicas)
                    sent_after_revoke = jti in self.revoked_at
                random.shuffle(order)
                answered = False
                for r in order:
                    c = clients.get(r.port)
                    if c is None:
                        c = clients[r.port] = r.client(self.env.introspect_key)
                    try:
                        resp = c.introspect(token, timeout=5)
                    except grpc.RpcError as e:
                        if e.code() == grpc.StatusCode.UNAVAILABLE:
                            with self.lock:
                                self.refused += 1
                            continue
                        with self.lock:
                            self.errors.append(f"{e.code().name}: {e.details()}")
                        break
                    answered = True
                    with self.lock:
                        self.ok += 1
                        if sent_after_revoke:
                            if resp.active:
                                self.revoked_accepted += 1
                            else:
                                self.revoked_refused += 1
                    break
                if not answered:
                    with self.lock:
                        self.failed += 1
        finally:
            for c in clients.values():
                c.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds-per-step", type=float, default=2.0)
    ap.add_argument("--authd", default=os.environ.get("P2A_AUTHD"))
    a = ap.parse_args()
    if a.authd:
        harness.AUTHD = a.authd
    env = harness.Env()
    extra = {"PIPE2_AUTH_WORKERS": "1", "PIPE2_AUTH_SHUTDOWN_GRACE": "10"}
    try:
        replicas = [env.authd(extra) for _ in range(3)]
        admin = replicas[0].client(env.admin_key)
        issued = [admin.issue(f"user{i % 10}", f"rehearsal {i}") for i in range(40)]
        admin.close()
        load = Load(env, [(t.token, t.info.jti) for t in issued])
        load.set_replicas(replicas)
        for t in load.threads:
            t.start()
        t0 = time.monotonic()
        steps = []

        def revoke_some(n, via):
            c = via.client(env.admin_key)
            try:
                for t in issued:
                    if n == 0:
                        break
                    if t.info.jti not in load.revoked_at:
                        c.revoke(t.info.jti)
                        with load.lock:
                            load.revoked_at[t.info.jti] = time.monotonic()
                        n -= 1
            finally:
                c.close()

        time.sleep(a.seconds_per_step)  # steady load first
        for i in range(3):
            old = replicas[i]
            revoke_some(3, replicas[(i + 1) % 3])
            # SIGTERM while the load still sends it calls: those accepted finish, the ones
            # that come after the listener closed are refused and retried elsewhere
            old.proc.send_signal(15)
            harness.wait_until(lambda: not old.port_open(), 10, "the drain to close the listener")
            load.set_replicas([r for r in replicas if r is not old])  # endpoints drop it
            code = old.wait_exit(30)
            if code != 0:
                raise SystemExit(f"FAIL: replica {i} exited {code}")
            new = env.authd(extra)
            replicas[i] = new
            load.set_replicas(replicas)
            steps.append(f"replica {i} rolled (exit 0), new one ready")
            time.sleep(a.seconds_per_step)
        revoke_some(3, replicas[0])
        fourth = env.authd(extra)
        replicas.append(fourth)
        load.set_replicas(replicas)
        steps.append("fourth replica added")
        time.sleep(a.seconds_per_step)
        load.stop.set()
        for t in load.threads:
            t.join(15)
        took = time.monotonic() - t0
    finally:
        env.close(check_exit=False)
    for s in steps:
        print("  " + s)
    print(f"rehearsal: {took:.1f} s, {load.ok} introspections answered, {load.refused} refused "
          f"before being accepted and retried on another replica, {load.failed} failed; "
          f"{len(load.revoked_at)} tokens revoked during the load, {load.revoked_refused} "
          f"introspections of them refused, {load.revoked_accepted} accepted")
    if load.errors:
        print("errors:", load.errors[:5])
    ok = load.failed == 0 and load.revoked_accepted == 0 and not load.errors
    print("RESULT:", "zero failures, zero revoked tokens accepted" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
