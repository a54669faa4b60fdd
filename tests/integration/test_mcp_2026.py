"""Clients of the 2026-07-28 revision that nobody here wrote, against pipe2-authd: the MCP
TypeScript SDK v2 client (a Client ID Metadata Document instead of registration, sign-in
through headless Chromium, then step-up: 403 insufficient_scope, the union of scopes asked
for again), and openid-client 6, which validates every response (discovery, a document
client with private_key_jwt, code + PKCE, refresh, introspection, revocation, invalid_client
for an unknown client). Runs node/sdk_v2.test.mjs and node/oidc_client.test.mjs with
redis-server, docserver.py (the clients' documents over https from a test CA) and
pipe2-authd started here."""
import os
import unittest

from cryptography.hazmat.primitives import serialization

from harness import Env, chromium_for, free_port, oauth_authd, run_node_suite
from test_cimd import start_docserver, stop_docserver

PASSWORD = "a long enough passphrase"


class McpSdkV2(unittest.TestCase):
    def test_document_client_and_step_up(self):
        chromium = chromium_for(self, "@modelcontextprotocol", "client")
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


class StepUpRegistered(unittest.TestCase):
    """SDK v2 and v1 clients registered at /register (with the first challenge's scope) step
    up to a tool that needs another scope: the registered scope is no ceiling, and
    remembered consent (on, the default) asks again for the wider scope. The Inspector CLI
    does too."""

    def test_registered_clients_step_up(self):
        chromium = chromium_for(self, "@modelcontextprotocol", "client")
        env = Env()
        try:
            mcp_port = free_port()
            a = oauth_authd(env, {"PIPE2_AUTH_RESOURCE": f"http://127.0.0.1:{mcp_port}/mcp",
                                  "PIPE2_AUTH_SCOPES": "mcp files offline_access"})
            admin = a.client(env.admin_key)
            user_id = admin.create_user("uma", PASSWORD).user_id
            admin.close()
            suite_env = {
                "P2A_ISSUER": a.issuer,
                "P2A_RPC": f"127.0.0.1:{a.port}",
                "P2A_MCP_PORT": str(mcp_port),
                "P2A_INTROSPECT_KEY": env.introspect_key,
                "P2A_USER": "uma",
                "P2A_USER_ID": user_id,
                "P2A_PASSWORD": PASSWORD,
                "P2A_CHROMIUM": chromium,
            }
            run_node_suite(self, "step_up.test.mjs", suite_env, passes=2)
            run_node_suite(self, "inspector_cli.test.mjs", suite_env, passes=1)
        finally:
            env.close()


class OpenIdClient(unittest.TestCase):
    def test_every_response_validates(self):
        chromium = chromium_for(self, "openid-client")
        env = Env()
        docs = None
        try:
            docs, base, ca, client_key = start_docserver(env)
            key_file = os.path.join(env.dir, "signer.pem")
            with open(key_file, "wb") as f:
                f.write(client_key.private_bytes(serialization.Encoding.PEM,
                                                 serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()))
            resource = f"http://127.0.0.1:{free_port()}/mcp"
            a = oauth_authd(env, {"PIPE2_AUTH_RESOURCE": resource,
                                  "PIPE2_AUTH_FETCH_CA_FILE": ca,
                                  "PIPE2_AUTH_FETCH_ALLOW_LOOPBACK": "1"})
            admin = a.client(env.admin_key)
            admin.create_user("oli", PASSWORD)
            admin.close()
            run_node_suite(self, "oidc_client.test.mjs", {
                "P2A_ISSUER": a.issuer,
                "P2A_RESOURCE": resource,
                "P2A_SIGNER_DOC": base + "/clients/pkjwt.json",
                "P2A_SIGNER_KEY": key_file,
                "P2A_USER": "oli",
                "P2A_PASSWORD": PASSWORD,
                "P2A_CHROMIUM": chromium,
            }, passes=2)
        finally:
            if docs is not None:
                stop_docserver(docs)
            env.close()


if __name__ == "__main__":
    unittest.main()
