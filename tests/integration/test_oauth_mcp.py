"""The official MCP TypeScript SDK client and headless Chromium against pipe2-authd.

Starts redis-server and pipe2-authd (issuer = its own facade address, resource = the test
MCP server's URL, access tokens that live 6 s), creates a user over the RPC, then runs
node/oauth_e2e.test.mjs, which starts the MCP server (SDK, Streamable HTTP, Introspect
through grpc-js) and drives the SDK client through our login and consent pages. The
screenshots of both pages are kept in tests/integration/artifacts/.
"""
import os
import unittest

from harness import (Env, assert_screenshots, chromium_for, free_port, oauth_authd,
                     run_node_suite)

HERE = os.path.dirname(os.path.abspath(__file__))
SHOTS = os.path.join(HERE, "artifacts")


class OAuthWithMcpSdk(unittest.TestCase):
    def test_sdk_client_and_browser(self):
        chromium = chromium_for(self, "playwright-core")
        env = Env()
        try:
            mcp_port = free_port()
            a = oauth_authd(env, {"PIPE2_AUTH_ACCESS_TOKEN_LIFETIME": "6",
                                  "PIPE2_AUTH_RESOURCE": f"http://127.0.0.1:{mcp_port}/mcp"})
            admin = a.client(env.admin_key)
            user = admin.create_user("maria", "a long enough passphrase")
            admin.close()
            run_node_suite(self, "oauth_e2e.test.mjs", {
                "P2A_ISSUER": a.issuer,
                "P2A_RPC": f"127.0.0.1:{a.port}",
                "P2A_MCP_PORT": str(mcp_port),
                "P2A_ADMIN_KEY": env.admin_key,
                "P2A_INTROSPECT_KEY": env.introspect_key,
                "P2A_USER": "maria",
                "P2A_PASSWORD": "a long enough passphrase",
                "P2A_USER_ID": user.user_id,
                "P2A_CHROMIUM": chromium,
                "P2A_SHOTS": SHOTS,
            }, passes=2)
            assert_screenshots(self, SHOTS, "login.png", "consent.png")
        finally:
            env.close()


if __name__ == "__main__":
    unittest.main()
