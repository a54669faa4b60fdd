"""Envoy's ext_authz Check on the RPC port, asked by @grpc/grpc-js built from Envoy's own
message shapes (node/envoy_api/), against real redis-server and pipe2-authd."""
import os
import unittest

from harness import NODE_DIR, Env, run_node_suite, wait_until

RESOURCES = "http://127.0.0.1:3000/mcp,https://files.example.test/mcp"


class ExtAuthz(unittest.TestCase):
    def test_check(self):
        if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "@grpc", "grpc-js")):
            self.fail("tests/integration/node/node_modules is missing: run scripts/test.sh")
        env = Env()
        try:
            a = env.authd({"PIPE2_AUTH_RESOURCE": RESOURCES,
                           "PIPE2_AUTH_FORWARD_AUTH_RESOURCES":
                               "gw.example.test/files=https://files.example.test/mcp,"
                               "127.0.0.1:3000/mcp=http://127.0.0.1:3000/mcp"})
            admin = a.client(env.admin_key)
            pat = admin.issue("envoy-user", "gateway")
            gone = admin.issue("envoy-user", "revoked")
            admin.revoke(gone.info.jti)
            mcp = a.client(env.introspect_key)
            wait_until(lambda: not mcp.introspect(gone.token).active, 10, "the revocation")
            admin.close()
            mcp.close()
            run_node_suite(self, "ext_authz.test.mjs", {
                "P2A_ADDR": f"127.0.0.1:{a.port}",
                "P2A_INTROSPECT_KEY": env.introspect_key,
                "P2A_RESOURCE": "http://127.0.0.1:3000/mcp",
                "P2A_PAT": pat.token,
                "P2A_PAT_JTI": pat.info.jti,
                "P2A_REVOKED_PAT": gone.token,
            }, passes=1, timeout=60)
        finally:
            env.close()


if __name__ == "__main__":
    unittest.main()
