"""Remembered consent and grants: an MCP client a person approved is not asked about again
until the grant is revoked or asks for more; ListGrants shows a person's connected clients
and RevokeGrant disconnects one, its tokens stopping on every replica within the bound."""
import json
import time
import unittest
import urllib.parse

import grpc

from harness import Env, oauth_authd, wait_until
from test_oauth import FORM, JSONCT, PASSWORD, Flow, pkce, query

REDIRECT = "http://127.0.0.1/cb"


def register(a, name="Remembered"):
    st, _, b = a.http("/register", "POST", json.dumps(
        {"client_name": name, "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none",
         "scope": "mcp offline_access"}), JSONCT)
    assert st == 201, b
    return json.loads(b)["client_id"]


def authorize(f, cid, scope="mcp", **extra):
    """(status, headers, page) of /authorize for cid, signed in already or not."""
    v, c = pkce()
    st, h, page = f.authorize(response_type="code", client_id=cid, redirect_uri=REDIRECT,
                              code_challenge=c, code_challenge_method="S256", state="s",
                              scope=scope, **extra)
    return v, st, h, page


def exchange(a, cid, code, v):
    st, _, b = a.http("/token", "POST", urllib.parse.urlencode(
        {"grant_type": "authorization_code", "code": code, "code_verifier": v, "client_id": cid,
         "redirect_uri": REDIRECT}), FORM)
    return st, json.loads(b)


class Grants(unittest.TestCase):
    def setUp(self):
        self.env = Env()

    def tearDown(self):
        self.env.close()

    def person(self, extra=None, name="Remembered"):
        """pipe2-authd (with extra settings), its admin client, ana's user id, a registered
        client's id and ana's browser."""
        a = oauth_authd(self.env, extra)
        admin = a.client(self.env.admin_key)
        self.addCleanup(admin.close)
        user_id = admin.create_user("ana", PASSWORD).user_id
        return a, admin, user_id, register(a, name), Flow(a)

    def sign_in_and_approve(self, a, f, cid, scope="mcp"):
        v, st, h, page = authorize(f, cid, scope)
        self.assertEqual(st, 200)
        if 'action="/login"' in page:
            st, h, _ = f.login(page)
            self.assertEqual(st, 303)
            st, h, page = f.req(h["Location"])
        self.assertEqual(st, 200)
        self.assertIn('action="/consent"', page)
        st, h, _ = f.consent(page)
        self.assertEqual(st, 303)
        return v, query(h["Location"])["code"]

    def test_consent_is_remembered_until_more_is_asked(self):
        a, _, _, cid, f = self.person()
        v, code = self.sign_in_and_approve(a, f, cid)
        self.assertEqual(exchange(a, cid, code, v)[0], 200)
        # the same request again: straight back to the client with a code, no page
        v, st, h, _ = authorize(f, cid)
        self.assertEqual(st, 302)  # as every authorization response (RFC 6749 4.1.2)
        q = query(h["Location"])
        self.assertEqual((q["state"], q["iss"]), ("s", a.issuer))
        self.assertEqual(exchange(a, cid, q["code"], v)[0], 200)
        # prompt=none succeeds too, now that there is nothing to ask
        _, st, h, _ = authorize(f, cid, prompt="none")
        self.assertIn("code", query(h["Location"]))
        # more scope: asked again; prompt=consent: asked whatever was approved
        _, st, _, page = authorize(f, cid, scope="mcp offline_access")
        self.assertEqual(st, 200)
        self.assertIn('action="/consent"', page)
        _, st, _, page = authorize(f, cid, prompt="consent")
        self.assertIn('action="/consent"', page)
        # another browser signing in as the same person: consent is theirs, not the browser's
        g = Flow(a)
        _, st, _, page = authorize(g, cid)
        st, h, _ = g.login(page)
        st, h, _ = g.req(h["Location"])
        self.assertEqual(st, 302)
        self.assertIn("code", query(h["Location"]))

    def test_always_ask_when_configured(self):
        a, _, _, cid, f = self.person({"PIPE2_AUTH_REMEMBER_CONSENT": "0"})
        self.sign_in_and_approve(a, f, cid)
        _, st, _, page = authorize(f, cid)
        self.assertEqual(st, 200)
        self.assertIn('action="/consent"', page)

    def test_sign_out_ends_the_session(self):
        a, _, _, cid, f = self.person()
        self.sign_in_and_approve(a, f, cid)
        st, h, page = f.req("/logout")
        self.assertEqual(st, 200)
        self.assertEqual(h["X-Frame-Options"], "DENY")
        self.assertIn("Signed in as <strong>ana</strong>", page)
        csrf = Flow.field(page, "csrf")
        # a page elsewhere cannot sign a person out: no token, or another session's
        for bad in ("", "0" * 64):
            st, _, page = f.req("/logout", "POST", urllib.parse.urlencode({"csrf": bad}), FORM)
            self.assertEqual(st, 403)
        self.assertEqual(authorize(f, cid)[1], 302)  # still signed in (and remembered)
        st, h, page = f.req("/logout", "POST", urllib.parse.urlencode({"csrf": csrf}), FORM)
        self.assertEqual(st, 200)
        self.assertIn("You are signed out", page)
        self.assertIn("Max-Age=0", h["Set-Cookie"])
        _, st, _, page = authorize(f, cid)  # sign in again, whatever was remembered
        self.assertEqual(st, 200)
        self.assertIn('action="/login"', page)
        st, _, page = Flow(a).req("/logout")  # nobody signed in: nothing to do
        self.assertIn("You are signed out", page)

    def test_revoke_grant_ends_its_tokens_on_every_replica(self):
        a, admin, user_id, cid, f = self.person(name="Disconnect me")
        b = self.env.authd({"PIPE2_AUTH_ISSUER": a.issuer})  # a second replica
        other = register(a, "Keep me")
        tokens = []
        for client in (cid, cid, other):  # two authorizations of one client, one of another
            v, code = (self.sign_in_and_approve(a, f, client) if not tokens or client == other
                       else (lambda r: (r[0], query(r[2]["Location"])["code"]))(
                           authorize(f, client)))
            st, t = exchange(a, client, code, v)
            self.assertEqual(st, 200, t)
            tokens.append(t)
        mcp_b = b.client(self.env.introspect_key)
        for t in tokens:
            self.assertTrue(mcp_b.introspect(t["access_token"]).active)
        grants = {g.client_id: g for g in admin.list_grants(user_id).grants}
        self.assertEqual(set(grants), {cid, other})
        g = grants[cid]
        self.assertEqual((g.client_name, g.scope), ("Disconnect me", "mcp"))
        self.assertGreater(g.approved_at, 0)
        self.assertGreater(g.last_used_at, 0)
        self.assertEqual(len(g.grant_id), 64)

        t0 = time.monotonic()
        admin.revoke_grant(user_id, g.grant_id)
        for t in tokens[:2]:  # both authorizations of the client, on the other replica
            wait_until(lambda t=t: not mcp_b.introspect(t["access_token"]).active, 30,
                       "the grant's access token to stop on the second replica")
        self.assertLess(time.monotonic() - t0, 30)
        self.assertEqual(mcp_b.introspect(tokens[0]["access_token"]).reason, 7)  # REVOKED
        self.assertTrue(mcp_b.introspect(tokens[2]["access_token"]).active)  # the other client
        for t in tokens[:2]:
            st, _, body = a.http("/token", "POST", urllib.parse.urlencode(
                {"grant_type": "refresh_token", "refresh_token": t["refresh_token"],
                 "client_id": cid}), FORM)
            self.assertEqual((st, json.loads(body)["error"]), (400, "invalid_grant"))
        self.assertEqual([x.client_id for x in admin.list_grants(user_id).grants], [other])
        _, st, _, page = authorize(f, cid)  # asked again
        self.assertIn('action="/consent"', page)

        with self.assertRaises(grpc.RpcError) as e:
            admin.revoke_grant(user_id, g.grant_id)
        self.assertEqual(e.exception.code(), grpc.StatusCode.NOT_FOUND)
        with self.assertRaises(grpc.RpcError) as e:
            admin.revoke_grant(user_id, "not-hex")
        self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        mcp_b.close()


if __name__ == "__main__":
    unittest.main()
