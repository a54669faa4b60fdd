"""Signing-key rotation without a restart: a new key file signs new tokens, tokens of the old
key verify while its file stays, and become UNKNOWN_KEY once it is removed."""
import base64
import json
import os
import subprocess
import time
import unittest

from harness import Env, pb, wait_until


def kid_of(token):
    head = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))["kid"]


class Rotation(unittest.TestCase):
    def test_add_then_remove_a_key(self):
        env = Env()
        try:
            authd = env.authd({"PIPE2_AUTH_KEYS_RELOAD_INTERVAL": "1"})
            admin = authd.client(env.admin_key)
            mcp = authd.client(env.introspect_key)
            t1 = admin.issue("rosa", "old key").token
            self.assertEqual(kid_of(t1), "it-key")
            for _ in range(5):  # cached on the worker before the rotation
                self.assertTrue(mcp.introspect(t1).active)

            new = os.path.join(env.keys_dir, "key-2027.pem")
            subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                            "ec_paramgen_curve:P-256", "-out", new], check=True,
                           capture_output=True)
            later = time.time() + 60  # the newest file signs
            os.utime(new, (later, later))
            t2 = wait_until(lambda: (lambda t: t if kid_of(t) == "key-2027" else None)(
                admin.issue("rosa", "new key").token), 10, "the new key to sign")
            self.assertTrue(mcp.introspect(t1).active)  # the old key still verifies
            self.assertTrue(mcp.introspect(t2).active)

            os.remove(env.key_path)
            wait_until(lambda: mcp.introspect(t1).reason == pb.InactiveReason.Value("UNKNOWN_KEY"),
                       10, "tokens of the removed key to be refused")
            self.assertTrue(mcp.introspect(t2).active)

            # a broken file is reported and changes nothing
            with open(os.path.join(env.keys_dir, "broken.pem"), "w") as f:
                f.write("not a key\n")
            wait_until(lambda: "keys.reload_failed" in authd.output(), 10, "the refusal")
            self.assertTrue(mcp.introspect(t2).active)
            self.assertEqual(kid_of(admin.issue("rosa", "still new").token), "key-2027")
            self.assertIn('"event":"keys.reloaded"', authd.output())
            admin.close()
            mcp.close()
        finally:
            env.close()  # exit 0 checked: the old keyring was freed, nothing leaked


if __name__ == "__main__":
    unittest.main()
