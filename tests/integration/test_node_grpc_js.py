"""Runs node/grpc_js.test.mjs (@grpc/grpc-js, node's test runner) against real processes."""
import os
import unittest

from harness import NODE_DIR, Env, run_node_suite


class NodeGrpcJs(unittest.TestCase):
    def test_grpc_js_suite(self):
        if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "@grpc", "grpc-js")):
            self.fail("tests/integration/node/node_modules is missing: run scripts/test.sh "
                      "(it runs npm ci there)")
        env = Env()
        try:
            plain = env.authd({"PIPE2_AUTH_REDIS_TIMEOUT_MS": "1000"})
            tls = env.authd(tls=True)
            run_node_suite(self, "grpc_js.test.mjs", {
                "P2A_ADDR": f"127.0.0.1:{plain.port}",
                "P2A_TLS_ADDR": f"127.0.0.1:{tls.port}",
                "P2A_CA": env.cert,
                "P2A_ADMIN_KEY": env.admin_key,
                "P2A_INTROSPECT_KEY": env.introspect_key,
                "P2A_REDIS_PID": str(env.redis.proc.pid),
            }, passes=3, timeout=120)
        finally:
            env.close()


if __name__ == "__main__":
    unittest.main()
