"""The hosted clients connect (issue 21): every metadata document in
tests/fixtures/client-metadata (shaped like Claude's, ChatGPT's with jwks_uri and with inline
jwks, Claude Code's, VS Code's, and one with many unused fields), served over https from
loopback with a test CA, goes through authorize, consent, code, refresh and a tool call with
openid-client and Chromium (node/fixtures.test.mjs); the ChatGPT ones sign their token
requests with private_key_jwt. Also: a refused document or token request is logged with its
reason, at most a line a second per client."""
import json
import unittest
import urllib.parse
import urllib.request
import urllib.error

from harness import Env, chromium_for, free_port, oauth_authd, run_node_suite, wait_until
from test_cimd import make_ca

PASSWORD = "a long enough passphrase"


class HostedClients(unittest.TestCase):
    def test_every_fixture_connects(self):
        chromium = chromium_for(self, "openid-client")
        env = Env()
        try:
            ca, cert, key = make_ca(env.dir)
            mcp_port = free_port()
            a = oauth_authd(env, {"PIPE2_AUTH_RESOURCE": f"http://127.0.0.1:{mcp_port}/mcp",
                                  "PIPE2_AUTH_FETCH_CA_FILE": ca,
                                  "PIPE2_AUTH_FETCH_ALLOW_LOOPBACK": "1"})
            admin = a.client(env.admin_key)
            user_id = admin.create_user("fia", PASSWORD).user_id
            admin.close()
            run_node_suite(self, "fixtures.test.mjs", {
                "P2A_ISSUER": a.issuer,
                "P2A_RPC": f"127.0.0.1:{a.port}",
                "P2A_MCP_PORT": str(mcp_port),
                "P2A_INTROSPECT_KEY": env.introspect_key,
                "P2A_DOC_CERT": cert,
                "P2A_DOC_KEY": key,
                "P2A_USER": "fia",
                "P2A_USER_ID": user_id,
                "P2A_PASSWORD": PASSWORD,
                "P2A_CHROMIUM": chromium,
            }, passes=7, timeout=240)
        finally:
            env.close()


class RefusalsLogged(unittest.TestCase):
    def test_a_refused_token_request_is_logged_once_a_second(self):
        env = Env()
        try:
            a = oauth_authd(env)
            form = urllib.parse.urlencode({"grant_type": "refresh_token", "refresh_token": "x",
                                           "client_id": "c_AAAAAAAAAAAAAAAAAAAAAA"}).encode()
            for _ in range(50):
                try:
                    urllib.request.urlopen(urllib.request.Request(
                        a.issuer + "/token", data=form, headers={
                            "Content-Type": "application/x-www-form-urlencoded"}), timeout=5)
                    self.fail("an unknown client got a token")
                except urllib.error.HTTPError as e:
                    self.assertEqual(e.code, 401)

            def refusals():
                lines = [json.loads(x) for x in a.output().splitlines()
                         if '"oauth.refused"' in x]
                return lines or None
            lines = wait_until(refusals, 10, "the refusal to be logged")
            self.assertIn("c_AAAAAAAAAAAAAAAAAAAAAA", lines[0]["msg"])
            self.assertIn("invalid_client", lines[0]["msg"])
            # 50 refusals well within a few seconds: a line a second at most, not 50
            self.assertLessEqual(len(lines), 5, lines)
        finally:
            env.close()


if __name__ == "__main__":
    unittest.main()
