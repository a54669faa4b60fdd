"""One subject per person: PATs and OAuth tokens of a person carry the same sub, and a PAT is
issued (or listed) only for a user who exists: one who signed in, whose account CreateUser
made, or whom a dashboard registered with PutUser."""
import json
import unittest
import urllib.parse

import grpc

from harness import Env, oauth_authd
from test_oauth import FORM, JSONCT, PASSWORD, Flow, pkce

import p2a_client  # noqa: E402 -- on the path harness sets


class Users(unittest.TestCase):
    def setUp(self):
        self.env = Env()
        self.a = oauth_authd(self.env)
        # the plain client: no user is registered behind the test's back (harness.TestClient)
        self.admin = p2a_client.Client(f"127.0.0.1:{self.a.port}", key=self.env.admin_key)
        self.mcp = self.a.client(self.env.introspect_key)

    def tearDown(self):
        self.admin.close()
        self.mcp.close()
        self.env.close()

    def code_of(self, fn, *a, **kw):
        with self.assertRaises(grpc.RpcError) as e:
            fn(*a, **kw)
        return e.exception.code(), e.exception.details()

    def test_unknown_users_get_no_tokens_until_they_exist(self):
        code, msg = self.code_of(self.admin.issue, "bob", "laptop")
        self.assertEqual(code, grpc.StatusCode.NOT_FOUND)
        self.assertIn("PutUser", msg)  # says how users come to exist
        self.assertIn("CreateUser", msg)
        code, _ = self.code_of(self.admin.list, "bob")
        self.assertEqual(code, grpc.StatusCode.NOT_FOUND)
        self.assertEqual(self.env.redis.cli("KEYS", "p2a:{t}:pat:*"), "")  # nothing written
        self.assertTrue(self.admin.put_user("bob", "Bob Builder").created)
        self.assertFalse(self.admin.put_user("bob", "Bob B.").created)  # updated
        pat = self.admin.issue("bob", "laptop")
        self.assertEqual(self.mcp.introspect(pat.token).sub, "bob")
        self.assertEqual([t.jti for t in self.admin.list("bob").tokens], [pat.info.jti])
        self.assertEqual(self.env.redis.cli("HGET", "p2a:{t}:user:bob", "display_name"), "Bob B.")
        self.assertEqual(self.env.redis.cli("HGET", "p2a:{t}:user:bob", "source"), "dashboard")
        code, msg = self.code_of(self.admin.put_user, "", "x")
        self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT)
        code, msg = self.code_of(self.admin.put_user, "carl", "n" * 101)
        self.assertEqual((code, msg.split(":")[0]), (grpc.StatusCode.INVALID_ARGUMENT,
                                                     "display_name"))

    def test_a_person_has_one_subject(self):
        user_id = self.admin.create_user("rita", PASSWORD).user_id
        pat = self.admin.issue(user_id, "cli")  # the account's id exists: no PutUser needed
        st, _, b = self.a.http("/register", "POST", json.dumps(
            {"client_name": "One", "redirect_uris": ["http://127.0.0.1/cb"],
             "token_endpoint_auth_method": "none"}), JSONCT)
        cid = json.loads(b)["client_id"]
        v, c = pkce()
        code = Flow(self.a, "rita").code(cid, "http://127.0.0.1/cb", c)
        st, _, b = self.a.http("/token", "POST", urllib.parse.urlencode(
            {"grant_type": "authorization_code", "code": code, "code_verifier": v,
             "client_id": cid, "redirect_uri": "http://127.0.0.1/cb"}), FORM)
        self.assertEqual(st, 200, b)
        oauth = json.loads(b)["access_token"]
        subs = {self.mcp.introspect(t).sub for t in (pat.token, oauth)}
        self.assertEqual(subs, {user_id})  # an MCP server sees one person
        rec = self.env.redis.cli("HGETALL", f"p2a:{{t}}:user:{user_id}").split("\n")
        rec = dict(zip(rec[::2], rec[1::2]))
        self.assertEqual((rec["source"], rec["display_name"]), ("local", "rita"))
        self.assertGreater(int(rec["last_sign_in_at"]), 0)


if __name__ == "__main__":
    unittest.main()
