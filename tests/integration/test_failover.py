"""Redis in production: a primary, a replica and three sentinels (Debian's redis-server and
redis-sentinel) on 127.0.0.1, two pipe2-authd replicas in Sentinel mode, and a load of
issuances, revocations and introspections from this process. The primary is killed during
the load; no revocation that was acknowledged may be forgotten, and both replicas must
follow the new primary without a restart."""
import os
import signal
import subprocess
import threading
import time
import unittest

import grpc

from harness import Env, Redis, free_port, pb, stop_process, wait_until

MASTER = "mymaster"


class Sentinel:
    def __init__(self, workdir, i, primary_port, quorum=2, watched=None):
        self.dir = os.path.join(workdir, f"sentinel-{i}")
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        conf = os.path.join(self.dir, "sentinel.conf")
        with open(conf, "w") as f:  # sentinel rewrites its file: one of its own each
            f.write(f"port {self.port}\nbind 127.0.0.1\ndir {self.dir}\n"
                    f"sentinel monitor {MASTER} 127.0.0.1 {watched or primary_port} {quorum}\n"
                    f"sentinel down-after-milliseconds {MASTER} 1000\n"
                    f"sentinel failover-timeout {MASTER} 4000\n"
                    f"sentinel parallel-syncs {MASTER} 1\n")
        self.proc = subprocess.Popen(["redis-sentinel", conf, "--logfile",
                                      os.path.join(self.dir, "sentinel.log")])
        wait_until(lambda: self.cli("PING") == "PONG", 10, "redis-sentinel to answer PING")

    def cli(self, *args):
        return subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), *args],
                              capture_output=True, text=True, timeout=10).stdout.strip()

    def primary_port(self):
        out = self.cli("SENTINEL", "get-master-addr-by-name", MASTER).split()
        return int(out[1]) if len(out) == 2 else None

    def stop(self):
        stop_process(self.proc)


class Failover(unittest.TestCase):
    def setUp(self):
        self.env = Env()  # its redis-server is the first primary
        self.replica = Redis(os.path.join(self.env.dir, "replica"))
        self.replica.start("--replicaof", "127.0.0.1", str(self.env.redis.port))
        wait_until(lambda: "master_link_status:up" in self.replica.cli("INFO", "replication"),
                   15, "the replica to sync")
        self.sentinels = [Sentinel(self.env.dir, i, self.env.redis.port) for i in range(3)]
        self.extra = []

    def tearDown(self):
        for s in self.sentinels + self.extra:
            s.stop()
        self.replica.signal(signal.SIGCONT)
        self.replica.close()
        self.env.close()

    def authd(self, sentinels=None, **more):
        ports = sentinels or [s.port for s in self.sentinels]
        return self.env.authd({"PIPE2_AUTH_REDIS_SENTINELS":
                               ",".join(f"127.0.0.1:{p}" for p in ports),
                               "PIPE2_AUTH_REDIS_WAIT_TIMEOUT_MS": "800",
                               "PIPE2_AUTH_REDIS_TIMEOUT_MS": "2000", **more})

    def test_primary_killed_during_load(self):
        a, b = self.authd(), self.authd()
        admin = a.client(self.env.admin_key)
        mcps = [x.client(self.env.introspect_key) for x in (a, b)]
        tokens = [admin.issue(f"u{i}", f"t{i}") for i in range(80)]
        acked, refused, lock = [], [], threading.Lock()
        stop = threading.Event()
        violations = []

        def revoker():
            for t in tokens:
                if stop.is_set():
                    return
                while not stop.is_set():  # revocation is idempotent: retry until it is acked
                    try:
                        admin.revoke(t.info.jti, timeout=5)
                        with lock:
                            acked.append((t, time.monotonic()))
                        break
                    except grpc.RpcError as e:
                        with lock:
                            refused.append((time.monotonic(), e.code()))
                        time.sleep(0.05)
                time.sleep(0.05)

        def checker():  # a revoked token must stop working within 30 s, on every replica
            while not stop.is_set():
                with lock:
                    snapshot = list(acked)
                for t, at in snapshot:
                    for m in mcps:
                        try:
                            r = m.introspect(t.token, timeout=5)
                        except grpc.RpcError:
                            continue  # fail closed is allowed; active is not
                        if r.active and time.monotonic() - at > 30:
                            violations.append(t.info.jti)
                time.sleep(0.1)

        workers = [threading.Thread(target=revoker), threading.Thread(target=checker)]
        for w in workers:
            w.start()
        wait_until(lambda: len(acked) >= 20, 30, "revocations before the failover")
        killed = time.monotonic()
        self.env.redis.kill9()
        new = wait_until(lambda: self.sentinels[0].primary_port() == self.replica.port, 30,
                         "the sentinels to promote the replica")
        promoted = time.monotonic()
        # its machine comes back: the sentinels make it a replica of the new primary, and
        # revocations (which wait for one replica) are acknowledged again
        self.env.redis.start()
        # writes resume on both pipe2-authd replicas, with no restart
        def issued_on(x):
            c = x.client(self.env.admin_key)
            try:
                return c.issue("after", "after failover", timeout=3)
            except grpc.RpcError:
                return None
            finally:
                c.close()
        wait_until(lambda: issued_on(a) and issued_on(b), 30, "both replicas to write again")
        followed = time.monotonic()
        try:
            wait_until(lambda: len(acked) == len(tokens), 60, "every revocation to be acked")
        except AssertionError:
            print(a.output()[-5000:])
            print(refused[-5:])
            raise
        stop.set()
        for w in workers:
            w.join(30)
        self.assertTrue(new)
        self.assertEqual(violations, [])
        # every acknowledged revocation is on the new primary and refused by both replicas
        for t, _ in acked:
            self.assertNotEqual(self.replica.cli("ZSCORE", "p2a:{t}:revoked", t.info.jti), "",
                                t.info.jti)
        for m in mcps:
            for t, _ in acked:
                wait_until(lambda: m.introspect(t.token).reason == pb.REVOKED, 30,
                           f"{t.info.jti} to be REVOKED")
        window = [at for at, _ in refused if at >= killed]
        print(f"\nfailover: promoted {promoted - killed:.2f} s after the kill; both replicas "
              f"wrote again {followed - killed:.2f} s after it; revocations refused "
              f"UNAVAILABLE for {(max(window) - killed) if window else 0:.2f} s "
              f"({len(window)} refusals); {len(acked)} revocations acknowledged, all kept")
        admin.close()
        for m in mcps:
            m.close()

    def test_revocation_waits_for_a_replica(self):
        a = self.authd()
        admin = a.client(self.env.admin_key)
        t = admin.issue("u", "wait")
        self.replica.signal(signal.SIGSTOP)  # WAIT cannot be satisfied now
        start = time.monotonic()
        with self.assertRaises(grpc.RpcError) as cm:
            admin.revoke(t.info.jti, timeout=10)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)
        self.assertLess(time.monotonic() - start, 3)  # the WAIT timeout, not the caller's
        self.replica.signal(signal.SIGCONT)
        def acked():  # raises UNAVAILABLE (caught, tried again) until WAIT is met
            admin.revoke(t.info.jti, timeout=5)
            return True

        wait_until(acked, 15, "the revocation to be acked once the replica is back")
        self.assertNotEqual(self.replica.cli("ZSCORE", "p2a:{t}:revoked", t.info.jti), "")
        admin.close()

    def test_a_stale_sentinel_is_not_believed(self):
        # a lone sentinel (quorum 1) that still thinks the replica is the primary
        stale = Sentinel(self.env.dir, 9, None, quorum=1, watched=self.replica.port)
        self.extra.append(stale)
        a = self.authd(sentinels=[stale.port] + [s.port for s in self.sentinels])
        admin = a.client(self.env.admin_key)
        wait_until(lambda: admin.issue("u", "stale", timeout=3), 20, "a write to succeed")
        self.assertIn("redis.not_primary", a.output())
        stats = self.replica.cli("INFO", "commandstats")
        self.assertNotIn("cmdstat_eval:", stats)  # nothing was ever sent to the replica
        admin.close()


if __name__ == "__main__":
    unittest.main()
