"""The MCP TypeScript SDK v2 client (@modelcontextprotocol/client) against pipe2-authd, as
the 2026-07-28 revision has it: a Client ID Metadata Document instead of registration,
sign-in through headless Chromium, then step-up (403 insufficient_scope, the union of
scopes asked for again). Runs node/sdk_v2.test.mjs with redis-server, docserver.py (the
client's document, over https from a test CA) and pipe2-authd started here."""
import os
import shutil
import unittest

from harness import NODE_DIR, Env, free_port, oauth_authd, run_node_suite
from test_cimd import start_docserver, stop_docserver

PASSWORD = "a long enough passphrase"


class McpSdkV2(unittest.TestCase):
    def test_document_client_and_step_up(self):
        chromium = shutil.which("chromium")
        if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "@modelcontextprotocol",
                                          "client")) or not chromium:
            self.fail("chromium or tests/integration/node/node_modules is missing: run "
                      "scripts/test.sh (it installs both)")
        env = Env()
        docs = None
        try:
            docs, base, ca, _ = start_docserver(env)
            mcp_port = free_port()
            a = oauth_authd(env, {"PIPE2_AUTH_RESOURCE": f"http://127.0.0.1:{mcp_port}/mcp",
                                  "PIPE2_AUTH_SCOPES": "mcp files offline_access",
                                  "PIPE2_AUTH_FETCH_CA_FILE": ca,
                                  "PIPE2_AUTH_FETCH_ALLOW_LOOPBACK": "1"})
            admin = a.client(env.admin_key)
            admin.create_user("nia", PASSWORD)
            admin.close()
            run_node_suite(self, "sdk_v2.test.mjs", {
                "P2A_ISSUER": a.issuer,
                "P2A_RPC": f"127.0.0.1:{a.port}",
                "P2A_MCP_PORT": str(mcp_port),
                "P2A_INTROSPECT_KEY": env.introspect_key,
                "P2A_CLIENT_DOC": base + "/clients/sdk.json",
                "P2A_USER": "nia",
                "P2A_PASSWORD": PASSWORD,
                "P2A_CHROMIUM": chromium,
            }, passes=1)
        finally:
            if docs is not None:
                stop_docserver(docs)
            env.close()


if __name__ == "__main__":
    unittest.main()
