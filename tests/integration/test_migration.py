"""A Redis written before the hash-tag key layout: pipe2-authd refuses to serve against it
(its revocations would be invisible), and scripts/migrate-redis-keys.sh moves it so that
every token, revocation and account is found again."""
import os
import subprocess
import unittest

from harness import ROOT, Env, wait_until

MIGRATE = os.path.join(ROOT, "scripts", "migrate-redis-keys.sh")


def to_old_layout(redis):
    """The keys as the version before hash tags named them."""
    for key in redis.cli("--scan", "--pattern", "p2a:*").split():
        if key.startswith("p2a:{t}:"):
            redis.cli("RENAME", key, "p2a:" + key[len("p2a:{t}:"):])
        elif key.startswith("p2a:account:{"):
            redis.cli("RENAME", key, "p2a:account:" + key[len("p2a:account:{"):-1])


class Migration(unittest.TestCase):
    def test_refused_until_migrated_then_everything_is_found(self):
        env = Env()
        try:
            a = env.authd()
            admin = a.client(env.admin_key)
            kept = admin.issue("dora", "kept")
            gone = admin.issue("dora", "revoked")
            admin.revoke(gone.info.jti)
            admin.create_user("dora", "a long enough passphrase")
            admin.close()
            a.stop()
            to_old_layout(env.redis)
            self.assertEqual(env.redis.cli("EXISTS", "p2a:revseq"), "1")
            self.assertEqual(env.redis.cli("EXISTS", "p2a:{t}:revseq"), "0")

            # the old layout: never ready, and the log says what to run
            b = env.authd(wait_ready=False)
            wait_until(lambda: "store.legacy_layout" in b.output(), 20, "the refusal")
            self.assertIn("scripts/migrate-redis-keys.sh", b.output())
            self.assertNotEqual(b.health(), 1)  # not SERVING
            b.stop()

            out = subprocess.run([MIGRATE, "-p", str(env.redis.port)], capture_output=True,
                                 text=True, timeout=60)
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertRegex(out.stdout, r"migrate-redis-keys: \d+ keys moved")
            again = subprocess.run([MIGRATE, "-p", str(env.redis.port)], capture_output=True,
                                   text=True, timeout=60)
            self.assertIn("0 keys moved", again.stdout)  # idempotent

            c = env.authd()  # ready now
            mcp = c.client(env.introspect_key)
            admin = c.client(env.admin_key)
            self.assertTrue(mcp.introspect(kept.token).active)
            r = mcp.introspect(gone.token)
            self.assertFalse(r.active)  # the revocation survived the move
            listed = {t.jti: t.revoked_at for t in admin.list("dora", include_revoked=True).tokens}
            self.assertEqual(set(listed), {kept.info.jti, gone.info.jti})
            self.assertGreater(listed[gone.info.jti], 0)
            self.assertEqual(env.redis.cli("HGET", "p2a:account:{dora}", "user_id")[:2], "u_")
            mcp.close()
            admin.close()
        finally:
            env.close(check_exit=False)


if __name__ == "__main__":
    unittest.main()
