"""Token exchange (RFC 8693, issue 23): an MCP server exchanges the token of the person it
serves for a token of its own, for another resource, naming itself as the actor; and the
revocation that follows the chain: revoking the person's token, disconnecting their grant or
disabling them makes every token exchanged from it REVOKED on every replica within a second,
with no look at Redis on the Introspect path. Two pipe2-authd replicas and one redis-server;
refusals (attacks) of what a client may not get."""
import base64
import json
import http.client
import unittest
import urllib.parse

from harness import Env, basic, free_port, oauth_authd, wait_until
from test_grants import REDIRECT, register
from test_oauth import FORM, PASSWORD, Flow, pkce

A = "https://a.example.test/mcp"  # the MCP server that exchanges (its own resource)
B = "https://b.example.test/mcp"  # the one it calls for the person
C = "https://c.example.test/mcp"  # one it may not get tokens for
GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS = "urn:ietf:params:oauth:token-type:access_token"
REVOKED = 7


def claims_of(token):
    body = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


class Exchange(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.env = Env()
        res = {"PIPE2_AUTH_RESOURCE": f"{A},{B},{C}", "PIPE2_AUTH_SCOPES": "mcp files admin",
               "PIPE2_AUTH_RESOURCE_SCOPES": "mcp"}
        cls.a = oauth_authd(cls.env, res)
        cls.fwd = free_port()
        cls.b = cls.env.authd({**res, "PIPE2_AUTH_ISSUER": cls.a.issuer,
                               "PIPE2_AUTH_FORWARD_AUTH_LISTEN": f"127.0.0.1:{cls.fwd}"})
        cls.admin = cls.a.client(cls.env.admin_key)
        cls.mcp = [cls.a.client(cls.env.introspect_key), cls.b.client(cls.env.introspect_key)]
        cls.server_a = cls.client("Server A", [GRANT], [A, B])
        cls.server_b = cls.client("Server B", [GRANT], [B, C])

    @classmethod
    def tearDownClass(cls):
        cls.admin.close()
        for m in cls.mcp:
            m.close()
        cls.env.close()

    @classmethod
    def client(cls, name, grants, resources, method="client_secret_basic"):
        r = cls.admin.register_client([], name, method, grant_types=grants, resources=resources)
        return r.client_id, r.client_secret

    def person(self, username):
        """A person signed in through their MCP client: (user id, client id, browser)."""
        user_id = self.admin.create_user(username, PASSWORD).user_id
        return user_id, register(self.a, f"{username}'s client"), Flow(self.a, username)

    def oauth_token(self, cid, f, resource=A, scope="mcp files"):
        v, c = pkce()
        code = f.code(cid, REDIRECT, c, scope=scope, resource=resource)
        st, _, b = self.a.http("/token", "POST", urllib.parse.urlencode(
            {"grant_type": "authorization_code", "code": code, "code_verifier": v,
             "client_id": cid, "redirect_uri": REDIRECT}), FORM)
        self.assertEqual(st, 200, b)
        return json.loads(b)["access_token"]

    def exchange(self, who, subject, resource=B, authd=None, **extra):
        form = {"grant_type": GRANT, "subject_token": subject, "subject_token_type": ACCESS,
                "resource": resource, **extra}
        form = {k: v for k, v in form.items() if v is not None}
        st, _, b = (authd or self.a).http("/token", "POST", urllib.parse.urlencode(form),
                                          {**FORM, **basic(*who)})
        return st, json.loads(b)

    def exchanged(self, who, subject, resource=B, **extra):
        st, j = self.exchange(who, subject, resource, **extra)
        self.assertEqual(st, 200, j)
        return j["access_token"]

    def chain_of_two(self, subject):
        """Server A exchanges subject for B, server B that for C (on the other replica); both
        cached as active on both replicas."""
        t1 = self.exchanged(self.server_a, subject)
        t2 = self.exchanged(self.server_b, t1, C, authd=self.b)
        for m in self.mcp:
            self.assertTrue(m.introspect(t1).active and m.introspect(t2).active)
        return t1, t2

    def revoked_everywhere(self, tokens, what):
        """Waits (1 s at most) until each token is REVOKED on both replicas."""
        wait_until(lambda: all(m.introspect(t).reason == REVOKED for m in self.mcp
                               for t in tokens), 1.0, what)

    # ---- the exchange ----------------------------------------------------------------------

    def test_a_server_exchanges_a_persons_token_for_another_resource(self):
        user_id, cid, f = self.person("ana")
        subject = self.oauth_token(cid, f)
        st, j = self.exchange(self.server_a, subject, scope="files")
        self.assertEqual(st, 200, j)
        self.assertEqual((j["issued_token_type"], j["token_type"], j["scope"]),
                         (ACCESS, "Bearer", "files"))
        self.assertNotIn("refresh_token", j)
        t = j["access_token"]
        sc, tc = claims_of(subject), claims_of(t)
        self.assertLessEqual(tc["exp"], sc["exp"])
        self.assertEqual(tc["act"], {"sub": self.server_a[0]})
        for m in self.mcp:  # both replicas, from memory
            r = m.introspect(t, resource=B)
            self.assertTrue(r.active, r)
            self.assertEqual((r.sub, r.client_id, r.actor, list(r.aud), r.scope, r.kind),
                             (user_id, self.server_a[0], self.server_a[0], [B], "files", 2))
            self.assertEqual(m.introspect(t, resource=A).reason, 9)  # not for the first server
            self.assertEqual(m.introspect(subject).actor, "")
        # RFC 7662 shows act; the second server's exchange nests it (RFC 8693 4.1)
        t2 = self.exchanged(self.server_b, t, C, authd=self.b)
        st, _, b = self.b.http("/introspect", "POST", urllib.parse.urlencode({"token": t2}),
                               {**FORM, "Authorization": f"Bearer {self.env.introspect_key}"})
        j = json.loads(b)
        self.assertEqual((j["active"], j["sub"], j["aud"]), (True, user_id, [C]))
        self.assertEqual(j["act"], {"sub": self.server_b[0], "act": {"sub": self.server_a[0]}})
        self.assertEqual(self.mcp[1].introspect(t2).actor, self.server_b[0])
        # forward-auth passes the actor on, and an empty one for a token not exchanged, so that
        # a client's own X-Auth-Actor never reaches the server
        for token, actor in ((t, self.server_a[0]), (self.oauth_token(cid, f, resource=B), "")):
            c = http.client.HTTPConnection("127.0.0.1", self.fwd, timeout=5)
            c.request("GET", "/forward-auth/mcp", headers={
                "Host": "b.example.test", "Authorization": f"Bearer {token}",
                "X-Auth-Actor": "forged"})
            r = c.getresponse()
            r.read()
            c.close()
            self.assertEqual((r.status, r.getheader("X-Auth-Actor")), (200, actor))
            self.assertEqual(r.getheader("X-Auth-Subject"), user_id)

    def test_a_pat_may_be_exchanged_too(self):
        user_id = self.admin.create_user("pat-owner", PASSWORD).user_id
        pat = self.admin.issue(user_id, "laptop", scope="mcp").token  # for every resource
        t = self.exchanged(self.server_a, pat, audience=None)
        r = self.mcp[1].introspect(t)
        self.assertEqual((r.active, r.sub, r.actor, r.scope), (True, user_id, self.server_a[0], "mcp"))
        # the audience parameter names the resource as well; not both
        self.exchanged(self.server_a, pat, resource=None, audience=B)
        st, j = self.exchange(self.server_a, pat, audience=B)
        self.assertEqual((st, j["error"]), (400, "invalid_request"))

    # ---- refusals -------------------------------------------------------------------------

    def refused(self, who, subject, status, error, **kw):
        st, j = self.exchange(who, subject, **kw)
        self.assertEqual((st, j.get("error")), (status, error), j)
        self.assertTrue(j.get("error_description"), j)
        return j["error_description"]

    def test_what_a_server_may_not_get(self):
        _, cid, f = self.person("cai")
        subject = self.oauth_token(cid, f)
        other = self.oauth_token(cid, f, resource=B)
        sa = self.server_a
        self.refused(sa, subject, 400, "invalid_target", resource=C)  # beyond its audiences
        self.refused(sa, subject, 400, "invalid_scope", scope="files admin")  # wider scopes
        self.refused(sa, subject, 400, "invalid_scope", scope="files  mcp")
        # a token for another resource than the one it serves: only a token's audience
        # exchanges it
        self.assertIn("not for the resource", self.refused(sa, other, 400, "invalid_grant"))
        # what is not one of our live access tokens
        for bad in ("not-a-token", subject[:-4] + "AAAA", "x" * 9000):
            self.refused(sa, bad, 400, "invalid_grant")
        # the request's shape
        self.refused(sa, subject, 400, "invalid_request", subject_token_type=None)
        for odd in ("urn:ietf:params:oauth:token-type:id_token",
                    "urn:ietf:params:oauth:token-type:refresh_token",
                    "urn:ietf:params:oauth:token-type:jwt", "access_token"):
            self.refused(sa, subject, 400, "invalid_request", subject_token_type=odd)
        self.refused(sa, subject, 400, "invalid_request", subject_token=None)
        self.refused(sa, subject, 400, "invalid_request", resource=None)
        self.refused(sa, subject, 400, "invalid_request",
                     requested_token_type="urn:ietf:params:oauth:token-type:id_token")
        self.assertIn("actor_token", self.refused(
            sa, subject, 400, "invalid_request", actor_token=subject, actor_token_type=ACCESS))
        # a wrong secret; a client that did not register the grant; a public client (none
        # may register it)
        self.refused((sa[0], "wrong"), subject, 401, "invalid_client")
        code_only = self.client("Code only", ["client_credentials"], [A])
        self.refused(code_only, subject, 400, "unauthorized_client")
        st, _, b = self.a.http("/token", "POST", urllib.parse.urlencode(
            {"grant_type": GRANT, "subject_token": subject, "subject_token_type": ACCESS,
             "resource": B, "client_id": cid}), FORM)
        self.assertEqual((st, json.loads(b)["error"]), (400, "unauthorized_client"), b)
        # the grant is advertised (RFC 8414)
        st, _, b = self.a.http("/.well-known/oauth-authorization-server")
        self.assertIn(GRANT, json.loads(b)["grant_types_supported"])

    def test_expired_and_revoked_subject_tokens_are_refused(self):
        user_id = self.admin.create_user("dee", PASSWORD).user_id
        short = self.admin.issue(user_id, "short", scope="mcp", expires_in=1)
        wait_until(lambda: self.mcp[0].introspect(short.token).reason == 5, 5, "expiry")
        self.assertIn("expired", self.refused(self.server_a, short.token, 400, "invalid_grant"))
        pat = self.admin.issue(user_id, "gone", scope="mcp")
        self.admin.revoke(pat.info.jti, user_id)
        self.assertIn("revoked", self.refused(self.server_a, pat.token, 400, "invalid_grant"))

    def test_a_chain_is_bounded(self):
        user_id = self.admin.create_user("eve-chain", PASSWORD).user_id
        loop = self.client("Loop", [GRANT], [A])  # exchanges its own audience for itself
        t = self.admin.issue(user_id, "chain", scope="mcp").token
        for _ in range(4):
            t = self.exchanged(loop, t, A)
        self.assertEqual(len(json.dumps(claims_of(t)["act"]).split('"act"')), 4)
        self.assertTrue(self.mcp[1].introspect(t).active)
        self.assertIn("chain", self.refused(loop, t, 400, "invalid_grant", resource=A))

    # ---- revocation follows the chain -----------------------------------------------------

    def test_revoking_the_persons_oauth_token_revokes_the_chain(self):
        _, cid, f = self.person("fay")
        subject = self.oauth_token(cid, f)
        t1, t2 = self.chain_of_two(subject)
        st, _, b = self.a.http("/revoke", "POST", urllib.parse.urlencode(
            {"token": subject, "client_id": cid}), FORM)  # RFC 7009, by the person's client
        self.assertEqual(st, 200, b)
        self.revoked_everywhere([subject, t1, t2], "the exchanged tokens to be revoked")
        # and no exchange from a revoked link
        self.refused(self.server_b, t1, 400, "invalid_grant", resource=C)

    def test_revoking_a_pat_revokes_what_was_exchanged_from_it(self):
        user_id = self.admin.create_user("gus", PASSWORD).user_id
        pat = self.admin.issue(user_id, "laptop", scope="mcp")
        t1, t2 = self.chain_of_two(pat.token)
        other = self.exchanged(self.server_a, self.admin.issue(user_id, "desk", scope="mcp").token)
        self.admin.revoke(pat.info.jti, user_id)
        self.revoked_everywhere([t1, t2], "the exchanged tokens to be revoked")
        self.assertTrue(all(m.introspect(other).active for m in self.mcp))

    def test_disconnecting_the_grant_revokes_the_chain(self):
        user_id, cid, f = self.person("hal")
        subject = self.oauth_token(cid, f)
        t1, t2 = self.chain_of_two(subject)
        grant = self.admin.list_grants(user_id).grants[0]
        self.admin.revoke_grant(user_id, grant.grant_id)
        self.revoked_everywhere([t1, t2], "the grant's exchanged tokens to be revoked")

    def test_disabling_the_person_revokes_the_chain(self):
        user_id, cid, f = self.person("ida")
        subject = self.oauth_token(cid, f)
        t1, t2 = self.chain_of_two(subject)
        self.admin.set_user_disabled(user_id, True)
        self.revoked_everywhere([t1, t2], "the person's exchanged tokens to be revoked")
        self.admin.set_user_disabled(user_id, False)  # tokens of before stay revoked
        self.assertTrue(all(m.introspect(t2).reason == REVOKED for m in self.mcp))

    def test_revoking_a_server_revokes_what_was_exchanged_through_it(self):
        user_id = self.admin.create_user("jon", PASSWORD).user_id
        middle = self.client("Middle", [GRANT], [A, B])
        t1 = self.exchanged(middle, self.admin.issue(user_id, "laptop", scope="mcp").token)
        t2 = self.exchanged(self.server_b, t1, C)
        other = self.exchanged(self.server_a, self.admin.issue(user_id, "desk", scope="mcp").token)
        for m in self.mcp:
            self.assertTrue(m.introspect(t2).active)
        self.admin.revoke_client(middle[0])
        # its own token, and the one another server exchanged from it (act names it)
        self.revoked_everywhere([t1, t2], "the tokens exchanged through the revoked client")
        self.assertTrue(all(m.introspect(other).active for m in self.mcp))


if __name__ == "__main__":
    unittest.main()
