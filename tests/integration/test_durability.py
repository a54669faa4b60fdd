"""Acknowledged writes survive: a revoked PAT stays revoked after kill -9 of redis-server and
a restart of everything; a Redis that is gone gives UNAVAILABLE, never a wrong answer."""
import signal
import unittest

import grpc

from harness import Env, pb, wait_until


class Durability(unittest.TestCase):
    def setUp(self):
        self.env = Env()

    def tearDown(self):
        self.env.close()

    def test_revocation_survives_redis_kill9_and_restart(self):
        authd = self.env.authd()
        admin = authd.client(self.env.admin_key)
        kept = admin.issue("kim", "kept")
        gone = admin.issue("kim", "revoked")
        rv = admin.revoke(gone.info.jti)  # answered only after Redis fsynced the AOF
        admin.close()

        self.env.redis.kill9()
        self.assertEqual(authd.stop(), 0)
        self.env.redis.start()  # same folder, same append-only file
        authd = self.env.authd()  # a fresh process: all it knows comes from Redis

        mcp = authd.client(self.env.introspect_key)
        admin = authd.client(self.env.admin_key)
        try:
            r = mcp.introspect(gone.token)
            self.assertFalse(r.active)
            self.assertEqual(pb.InactiveReason.Name(r.reason), "REVOKED")
            self.assertTrue(mcp.introspect(kept.token).active)
            listed = {t.jti: t for t in admin.list("kim", include_revoked=True).tokens}
            self.assertEqual(listed[gone.info.jti].revoked_at, rv.revoked_at)
            self.assertEqual(listed[kept.info.jti].revoked_at, 0)
            self.assertTrue(admin.revoke(gone.info.jti).already_revoked)
        finally:
            mcp.close()
            admin.close()

    def test_redis_gone_means_unavailable_then_recovery(self):
        authd = self.env.authd({"PIPE2_AUTH_REDIS_TIMEOUT_MS": "500"})
        admin = authd.client(self.env.admin_key)
        mcp = authd.client(self.env.introspect_key)
        try:
            issued = admin.issue("lee", "before")
            self.env.redis.kill9()
            for fn, args in [(admin.issue, ("lee", "during")), (admin.list, ("lee",)),
                             (admin.revoke, (issued.info.jti,))]:
                with self.assertRaises(grpc.RpcError) as cm:
                    fn(*args)
                self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)
                self.assertIn("unavailable", cm.exception.details())
            # the hot path never needed Redis
            self.assertTrue(mcp.introspect(issued.token).active)
            self.env.redis.start()
            wait_until(lambda: admin.revoke(issued.info.jti), 10,
                       "RevokeToken to work once redis-server is back")
            self.assertEqual(pb.InactiveReason.Name(mcp.introspect(issued.token).reason),
                             "REVOKED")
        finally:
            admin.close()
            mcp.close()

    def test_starts_not_serving_until_redis_answers(self):
        self.env.redis.kill9()
        authd = self.env.authd(wait_ready=False)
        wait_until(lambda: authd.alive() and authd.port_open(), 10, "pipe2-authd to listen")
        self.assertEqual(authd.health(), 2)  # NOT_SERVING
        c = authd.client()
        try:  # but alive: the liveness probe must not restart a pod because Redis is away
            self.assertEqual(c.health("liveness").status, 1)
        finally:
            c.close()
        mcp = authd.client(self.env.introspect_key)
        try:
            with self.assertRaises(grpc.RpcError) as cm:
                mcp.introspect("anything")
            self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)
            self.assertIn("not loaded", cm.exception.details())
        finally:
            mcp.close()
        self.env.redis.start()
        authd.wait_serving(10)

    def test_sigstop_then_sigcont(self):
        authd = self.env.authd({"PIPE2_AUTH_REDIS_TIMEOUT_MS": "300"})
        admin = authd.client(self.env.admin_key)
        try:
            self.env.redis.signal(signal.SIGSTOP)
            with self.assertRaises(grpc.RpcError) as cm:
                admin.issue("max", "stopped")
            self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)
            self.env.redis.signal(signal.SIGCONT)
            wait_until(lambda: admin.issue("max", "resumed"), 10, "IssueToken after SIGCONT")
        finally:
            admin.close()


if __name__ == "__main__":
    unittest.main()
