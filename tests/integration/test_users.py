"""One subject per person: PATs and OAuth tokens of a person carry the same sub, and a PAT is
issued (or listed) only for a user who exists: one who signed in, whose account CreateUser
made, or whom a dashboard registered with PutUser."""
import json
import time
import unittest
import urllib.parse

import grpc

from harness import Env, oauth_authd, wait_until
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

    def test_a_disabled_user_holds_no_active_token(self):
        user_id = self.admin.create_user("dora", PASSWORD).user_id
        pat = self.admin.issue(user_id, "cli")
        other = self.admin.issue(self.admin.create_user("olga", PASSWORD).user_id, "cli")
        st, _, b = self.a.http("/register", "POST", json.dumps(
            {"client_name": "Two", "redirect_uris": ["http://127.0.0.1/cb"],
             "token_endpoint_auth_method": "none"}), JSONCT)
        cid = json.loads(b)["client_id"]
        flow = Flow(self.a, "dora")

        def a_code():
            v, c = pkce()
            return v, flow.code(cid, "http://127.0.0.1/cb", c)

        def oauth_tokens(v, code):
            return self.a.http("/token", "POST", urllib.parse.urlencode(
                {"grant_type": "authorization_code", "code": code, "code_verifier": v,
                 "client_id": cid, "redirect_uri": "http://127.0.0.1/cb"}), FORM)

        st, _, b = oauth_tokens(*a_code())
        self.assertEqual(st, 200, b)
        tok = json.loads(b)
        # a second replica, whose view learns of the disable through Redis
        b_ = self.env.authd({"PIPE2_AUTH_ISSUER": self.a.issuer})
        mcp_b = b_.client(self.env.introspect_key)
        try:
            for t in (pat.token, tok["access_token"]):
                self.assertTrue(mcp_b.introspect(t).active)
            pending = a_code()  # a code issued before the disable, exchanged after it
            u = self.admin.get_user(user_id)
            self.assertEqual((u.display_name, u.source, u.disabled), ("dora", "local", False))
            self.assertGreater(u.last_sign_in_at, 0)

            self.admin.set_user_disabled(user_id, True)
            for c in (self.mcp, mcp_b):  # every replica, within the bound
                for t in (pat.token, tok["access_token"]):
                    wait_until(lambda c=c, t=t: c.introspect(t).reason == p2a_client.pb.REVOKED,
                               5, "the disabled user's token to be revoked")
            self.assertTrue(mcp_b.introspect(other.token).active)  # nobody else's
            u = self.admin.get_user(user_id)
            self.assertTrue(u.disabled)
            # nothing new: no PAT, no access token by a refresh or by a code
            code, msg = self.code_of(self.admin.issue, user_id, "again")
            self.assertEqual(code, grpc.StatusCode.FAILED_PRECONDITION)
            self.assertIn("disabled", msg)
            st, _, b = self.a.http("/token", "POST", urllib.parse.urlencode(
                {"grant_type": "refresh_token", "refresh_token": tok["refresh_token"],
                 "client_id": cid}), FORM)
            self.assertEqual((st, json.loads(b)["error_description"]),
                             (400, "the user's account is disabled"))
            st, _, b = oauth_tokens(*pending)
            self.assertEqual((st, json.loads(b)["error_description"]),
                             (400, "the user's account is disabled"))
            st, _, page = flow.authorize(response_type="code", client_id=cid,
                                         redirect_uri="http://127.0.0.1/cb",
                                         code_challenge=pkce()[1], code_challenge_method="S256")
            self.assertEqual(st, 403, page)  # signed in still, but no new authorization
            self.assertIn("Your account is disabled", page)

            # enabled again: new tokens work, the old ones stay revoked. Tokens carry iat in
            # seconds: one issued in the second of the disable counts as before it
            self.admin.set_user_disabled(user_id, False)
            wait_until(lambda: int(time.time()) > u.disabled_at, 3, "the disable's second to end")
            fresh = self.admin.issue(user_id, "new laptop")
            self.assertTrue(mcp_b.introspect(fresh.token).active)
            self.assertEqual(mcp_b.introspect(pat.token).reason, p2a_client.pb.REVOKED)
            code, _ = self.code_of(self.admin.set_user_disabled, "nobody", True)
            self.assertEqual(code, grpc.StatusCode.NOT_FOUND)
            code, _ = self.code_of(self.admin.get_user, "nobody")
            self.assertEqual(code, grpc.StatusCode.NOT_FOUND)
            # disabled again later: what was issued since is revoked too (the cutoff moves)
            self.admin.set_user_disabled(user_id, True)
            wait_until(lambda: mcp_b.introspect(fresh.token).reason == p2a_client.pb.REVOKED, 5,
                       "the second disable to reach the other replica")
        finally:
            mcp_b.close()

    def test_a_disable_ends_refresh_tokens_for_good(self):
        """A refresh token from before a disable, never used while disabled: RFC 7662 calls it
        inactive while the user is disabled, and after the user is enabled again it gets
        invalid_grant (the family is over; the README: tokens of before stay revoked)."""
        user_id = self.admin.create_user("erin", PASSWORD).user_id
        st, _, b = self.a.http("/register", "POST", json.dumps(
            {"client_name": "Three", "redirect_uris": ["http://127.0.0.1/cb"],
             "token_endpoint_auth_method": "none"}), JSONCT)
        cid = json.loads(b)["client_id"]
        flow = Flow(self.a, "erin")

        def tokens():
            v, c = pkce()
            code = flow.code(cid, "http://127.0.0.1/cb", c)
            st, _, b = self.a.http("/token", "POST", urllib.parse.urlencode(
                {"grant_type": "authorization_code", "code": code, "code_verifier": v,
                 "client_id": cid, "redirect_uri": "http://127.0.0.1/cb"}), FORM)
            self.assertEqual(st, 200, b)
            return json.loads(b)

        def introspect(t):
            st, _, b = self.a.http("/introspect", "POST", urllib.parse.urlencode({"token": t}),
                                   {"Content-Type": FORM["Content-Type"],
                                    "Authorization": "Bearer " + self.env.introspect_key})
            self.assertEqual(st, 200, b)
            return json.loads(b)

        def refresh(t):
            st, _, b = self.a.http("/token", "POST", urllib.parse.urlencode(
                {"grant_type": "refresh_token", "refresh_token": t, "client_id": cid}), FORM)
            return st, json.loads(b)

        old, kept = tokens(), tokens()
        self.assertTrue(introspect(old["refresh_token"])["active"])
        self.admin.set_user_disabled(user_id, True)
        for t in (old, kept):  # RFC 7662 while disabled
            self.assertEqual(introspect(t["refresh_token"]), {"active": False})
        self.admin.set_user_disabled(user_id, False)
        self.assertEqual(introspect(old["refresh_token"]), {"active": False})
        st, j = refresh(old["refresh_token"])
        self.assertEqual((st, j["error"]), (400, "invalid_grant"), j)
        st, j = refresh(old["refresh_token"])  # and stays so (the family is revoked)
        self.assertEqual((st, j["error"]), (400, "invalid_grant"), j)
        # the other family of before too, and its access token was revoked by the disable
        st, j = refresh(kept["refresh_token"])
        self.assertEqual((st, j["error"]), (400, "invalid_grant"), j)
        self.assertFalse(introspect(kept["access_token"])["active"])
        # a family made after the enable works, and a later disable ends it too
        new = tokens()
        self.assertTrue(introspect(new["refresh_token"])["active"])
        st, j = refresh(new["refresh_token"])
        self.assertEqual(st, 200, j)
        self.admin.set_user_disabled(user_id, True)
        self.admin.set_user_disabled(user_id, False)
        self.assertEqual(introspect(j["refresh_token"]), {"active": False})
        st, j = refresh(j["refresh_token"])
        self.assertEqual((st, j["error"]), (400, "invalid_grant"), j)


if __name__ == "__main__":
    unittest.main()
