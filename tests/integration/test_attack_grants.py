"""Attacks on the grants of issue 23 (client credentials, ID-JAG redemption, token exchange), as
an anonymous client on the internet and as a low-privilege registered client would try them,
against two real pipe2-authd replicas on one redis-server, with test_idjag.py's identity
provider. Each test is one attack (or a family of them); what the service must do is the
assertion. PIPE2_AUTH_CLOCK_SKEW is 120 here (the setting allows up to 300): an assertion the
skew still accepts must stay used until the skew no longer would.
"""
import http.client
import json
import secrets
import time
import unittest
import urllib.parse

from cryptography.hazmat.primitives.asymmetric import ec

from harness import Env, b64url, basic, free_port, oauth_authd, wait_until
from test_cimd import es256, jwk_of
from test_exchange import ACCESS, GRANT as EXCHANGE
from test_idjag import JWT_BEARER, JagIdP
from test_oauth import FORM, PASSWORD
from test_upstream import CLIENT_ID, CLIENT_SECRET, PREFIX

A = "https://a.example.test/mcp"  # served behind replica A's forward-auth
B = "https://b.example.test/mcp"
CC = "client_credentials"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SKEW = 120
TX_LIMIT = 30  # exchanges a client gets from one address per 5 minutes here
JSONCT = {"Content-Type": "application/json"}


class AttackGrants(unittest.TestCase):
    secrets_seen = []  # every secret, assertion and token sent: none may reach a log line

    @classmethod
    def setUpClass(cls):
        cls.idp = JagIdP()
        cls.env = Env()
        try:
            cls.start()
        except BaseException:
            cls.env.close(check_exit=False)
            raise

    @classmethod
    def start(cls):
        env = cls.env
        cls.fwd = free_port()
        common = {"PIPE2_AUTH_RESOURCE": f"{A},{B}",
                  "PIPE2_AUTH_SCOPES": "mcp files admin", "PIPE2_AUTH_RESOURCE_SCOPES": "mcp",
                  "PIPE2_AUTH_CLOCK_SKEW": str(SKEW),
                  "PIPE2_AUTH_UPSTREAM_ISSUER": cls.idp.issuer,
                  "PIPE2_AUTH_UPSTREAM_CLIENT_ID": CLIENT_ID,
                  "PIPE2_AUTH_UPSTREAM_CLIENT_SECRET": CLIENT_SECRET,
                  "PIPE2_AUTH_UPSTREAM_SUBJECT_PREFIX": PREFIX,
                  "PIPE2_AUTH_ID_JAG_ISSUERS": cls.idp.issuer,
                  "PIPE2_AUTH_TOKEN_EXCHANGE_RATE_LIMIT": str(TX_LIMIT)}
        cls.a = oauth_authd(env, {**common,
                                  "PIPE2_AUTH_FORWARD_AUTH_LISTEN": f"127.0.0.1:{cls.fwd}"})
        cls.issuer = cls.a.issuer
        cls.b = env.authd({**common, "PIPE2_AUTH_ISSUER": cls.issuer})
        cls.admin = cls.a.client(env.admin_key)
        cls.mcp = cls.a.client(env.introspect_key)
        cls.key = ec.generate_private_key(ec.SECP256R1())
        jwks = json.dumps({"keys": [jwk_of(cls.key, "k1")]})
        # an agent with client credentials by a secret, one by a key; an exchanging server
        # (serves A, may get B); an ID-JAG client
        r = cls.admin.register_client([], "agent", "client_secret_basic", scope="mcp",
                                      grant_types=[CC], resources=[A])
        cls.agent = (r.client_id, r.client_secret)
        cls.signer = cls.admin.register_client([], "signed agent", "", grant_types=[CC],
                                               resources=[A], jwks=jwks).client_id
        r = cls.admin.register_client([], "server A", "client_secret_basic",
                                      grant_types=[EXCHANGE], resources=[A, B])
        cls.server = (r.client_id, r.client_secret)
        r = cls.admin.register_client([], "jag agent", "client_secret_basic",
                                      grant_types=[JWT_BEARER])
        cls.jagger = (r.client_id, r.client_secret)
        cls.idp.client_at_as, cls.idp.audience, cls.idp.resource = r.client_id, cls.issuer, A
        cls.secrets_seen += [cls.agent[1], cls.server[1], cls.jagger[1]]

    @classmethod
    def tearDownClass(cls):
        cls.admin.close()
        cls.mcp.close()
        cls.env.close()

    # ---- helpers --------------------------------------------------------------------------

    def token(self, form, headers=None, authd=None):
        form = {k: v for k, v in form.items() if v is not None}
        for k in ("assertion", "client_assertion", "subject_token", "client_secret"):
            if form.get(k):
                self.secrets_seen.append(form[k])
        st, _, body = (authd or self.a).http("/token", "POST", urllib.parse.urlencode(form),
                                             {**FORM, **(headers or {})})
        j = json.loads(body)
        if "access_token" in j:
            self.secrets_seen.append(j["access_token"])
        return st, j

    def refused(self, form, status, error, headers=None, authd=None):
        st, j = self.token(form, headers, authd)
        self.assertEqual((st, j.get("error")), (status, error), j)
        self.assertTrue(j.get("error_description"), j)
        return j["error_description"]

    def granted(self, form, headers=None, authd=None):
        st, j = self.token(form, headers, authd)
        self.assertEqual(st, 200, j)
        return j["access_token"]

    def client_assertion(self, cid, exp, iat, jti=None, key=None):
        return es256(key or self.key, {"alg": "ES256", "kid": "k1", "typ": "JWT"},
                     {"iss": cid, "sub": cid, "aud": self.issuer, "iat": iat, "exp": exp,
                      "jti": jti or secrets.token_urlsafe(12)})

    def cc_token(self):
        return self.granted({"grant_type": CC, "resource": A}, basic(*self.agent))

    def jag_form(self, assertion, **extra):
        return {"grant_type": JWT_BEARER, "assertion": assertion, **extra}

    def forward_auth(self, token, **headers):
        c = http.client.HTTPConnection("127.0.0.1", self.fwd, timeout=5)
        try:
            c.request("GET", "/forward-auth/mcp", headers={
                "Host": "a.example.test", "Authorization": f"Bearer {token}", **headers})
            r = c.getresponse()
            r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}
        finally:
            c.close()

    # ---- an anonymous or self-registered client reaches none of the new grants ------------

    def test_anonymous_and_self_registered_clients_get_none_of_the_grants(self):
        for gt in (CC, JWT_BEARER, EXCHANGE):
            # no credentials at all; an unknown client; a forged Basic header
            self.refused({"grant_type": gt}, 401, "invalid_client")
            self.refused({"grant_type": gt, "client_id": "c_" + "A" * 22}, 401,
                         "invalid_client")
            self.refused({"grant_type": gt}, 401, "invalid_client",
                         basic(self.agent[0], "x" * 43))
            # /register leaves the grant out of the record (RFC 7591 3.2.1: the server may
            # replace what it will not grant), with any method; nor may the client use it
            for method in ("none", "client_secret_basic"):
                st, _, b = self.a.http("/register", "POST", json.dumps({
                    "client_name": "mine", "redirect_uris": ["http://127.0.0.1/cb"],
                    "grant_types": ["authorization_code", gt], "resources": [A, B],
                    "token_endpoint_auth_method": method}), JSONCT)
                self.assertEqual(st, 201, b)
                reg = json.loads(b)
                self.assertEqual(reg["grant_types"], ["authorization_code"])
                self.assertNotIn("resources", reg)
                who = ({"client_id": reg["client_id"]} if method == "none" else
                       {"client_id": reg["client_id"], "client_secret": reg["client_secret"]})
                self.secrets_seen.append(reg.get("client_secret", ""))
                self.refused({"grant_type": gt, **who}, 400, "unauthorized_client")
        # a confidential client from /register (code grant) may not use them either
        st, _, b = self.a.http("/register", "POST", json.dumps({
            "client_name": "mine", "redirect_uris": ["http://127.0.0.1/cb"],
            "token_endpoint_auth_method": "client_secret_basic",
            "resources": [A, B]}), JSONCT)
        self.assertEqual(st, 201, b)
        mine = json.loads(b)
        self.secrets_seen.append(mine["client_secret"])
        self.assertNotIn("resources", mine)
        subject = self.admin.issue(self.admin.create_user("reg-victim", PASSWORD).user_id,
                                   "laptop", scope="mcp").token
        for form in ({"grant_type": CC, "resource": A},
                     {"grant_type": EXCHANGE, "subject_token": subject,
                      "subject_token_type": ACCESS, "resource": B},
                     self.jag_form(self.idp.jag(client_id=mine["client_id"]))):
            self.refused(form, 400, "unauthorized_client",
                         basic(mine["client_id"], mine["client_secret"]))

    # ---- confusion between grants and between token kinds ---------------------------------

    def test_a_client_token_is_never_a_persons(self):
        t = self.cc_token()
        # no exchange of it: it is no person's
        self.assertIn("person", self.refused(
            {"grant_type": EXCHANGE, "subject_token": t, "subject_token_type": ACCESS,
             "resource": B}, 400, "invalid_grant", basic(*self.server)))
        # forward-auth names it a client's, and a client's own X-Auth-* never come back
        st, h = self.forward_auth(t, **{"X-Auth-Token-Kind": "oauth", "X-Auth-Actor": "alice",
                                        "X-Auth-Subject": "alice"})
        self.assertEqual(st, 200)
        self.assertEqual((h["x-auth-token-kind"], h["x-auth-subject"], h["x-auth-actor"]),
                         ("client", self.agent[0], ""))
        # an Introspect that wants a person's OAuth token refuses it
        self.assertFalse(self.mcp.introspect(t, resource=A, expected_kind=2).active)

    def test_assertions_of_one_kind_are_never_taken_for_the_other(self):
        now = int(time.time())
        jag = self.idp.jag()
        # an ID-JAG as a client assertion (private_key_jwt) of the client it names
        self.refused({"grant_type": CC, "client_id": self.signer,
                      "client_assertion_type": ASSERTION_TYPE, "client_assertion": jag},
                     401, "invalid_client")
        self.refused({"grant_type": CC, "client_assertion_type": ASSERTION_TYPE,
                      "client_assertion": jag}, 401, "invalid_client")
        # a client's own assertion as an ID-JAG: no trusted issuer signed it
        own = self.client_assertion(self.signer, now + 60, now)
        self.refused(self.jag_form(own), 400, "invalid_grant", basic(*self.jagger))
        # the provider's ID token (typ JWT, aud another client), and an ID-JAG of the right
        # issuer with the typ of another kind
        self.assertIn("typ", self.refused(self.jag_form(self.idp.id_token()), 400,
                                          "invalid_grant", basic(*self.jagger)))
        for typ in ("JWT", "at+jwt", "oauth-id-jag+jwt ", None):
            self.refused(self.jag_form(self.idp.jag(header={"typ": typ})), 400,
                         "invalid_grant", basic(*self.jagger))
        # one of our own access tokens (an exchange's subject) as an ID-JAG, or as a client
        # assertion
        t = self.cc_token()
        self.refused(self.jag_form(t), 400, "invalid_grant", basic(*self.jagger))
        self.refused({"grant_type": CC, "client_id": self.signer,
                      "client_assertion_type": ASSERTION_TYPE, "client_assertion": t},
                     401, "invalid_client")
        # an ID-JAG for another client, presented by a client registered for the grant
        self.assertIn("client_id", self.refused(
            self.jag_form(self.idp.jag(client_id=self.agent[0])), 400, "invalid_grant",
            basic(*self.jagger)))

    def test_one_jti_in_both_kinds_burns_neither(self):
        jti = "shared-" + secrets.token_urlsafe(8)
        now = int(time.time())
        self.granted({"grant_type": CC, "client_id": self.signer,
                      "client_assertion_type": ASSERTION_TYPE,
                      "client_assertion": self.client_assertion(self.signer, now + 60, now, jti)})
        self.granted(self.jag_form(self.idp.jag(jti=jti)), basic(*self.jagger), self.b)

    # ---- replay -----------------------------------------------------------------------------

    def replayed_after_its_record(self, first, again):
        """first() is granted; again() must be refused on the other replica, even once the
        assertion's own exp plus the margin the store used to keep (60 s) has passed."""
        first()
        time.sleep(2.2)  # the record of an assertion 90 s past its exp lived 1 s
        again()

    def test_a_client_assertion_the_skew_accepts_is_used_once(self):
        now = int(time.time())
        ca = self.client_assertion(self.signer, now - 90, now - 150)  # within the 120 s skew
        form = {"grant_type": CC, "client_id": self.signer,
                "client_assertion_type": ASSERTION_TYPE, "client_assertion": ca}
        self.replayed_after_its_record(
            lambda: self.granted(form),
            lambda: self.assertIn("used already", self.refused(form, 401, "invalid_client",
                                                               authd=self.b)))

    def test_an_id_jag_the_skew_accepts_is_redeemed_once(self):
        now = int(time.time())
        form = self.jag_form(self.idp.jag(iat=now - 200, exp=now - 90))
        self.replayed_after_its_record(
            lambda: self.granted(form, basic(*self.jagger)),
            lambda: self.assertIn("redeemed already", self.refused(
                form, 400, "invalid_grant", basic(*self.jagger), self.b)))

    # ---- scope and audience -----------------------------------------------------------------

    def test_no_scope_or_audience_beyond_what_was_registered_or_held(self):
        # client credentials: registered scope mcp, resource A
        for form, error in (({"grant_type": CC, "resource": A, "scope": "mcp admin"},
                             "invalid_scope"),
                            ({"grant_type": CC, "resource": B}, "invalid_target"),
                            ({"grant_type": CC, "resource": f"{A} {B}"}, "invalid_target"),
                            ({"grant_type": CC, "resource": "https://evil.example/mcp"},
                             "invalid_target")):
            self.refused(form, 400, error, basic(*self.agent))
        # token exchange: the person's PAT (scope mcp) for B; no wider scope, no other audience
        user_id = self.admin.create_user("scope-victim", PASSWORD).user_id
        pat = self.admin.issue(user_id, "laptop", scope="mcp").token
        x = {"grant_type": EXCHANGE, "subject_token": pat, "subject_token_type": ACCESS}
        self.refused({**x, "resource": B, "scope": "mcp admin"}, 400, "invalid_scope",
                     basic(*self.server))
        self.refused({**x, "resource": "https://evil.example/mcp"}, 400, "invalid_target",
                     basic(*self.server))
        self.refused({**x, "resource": f"{B} {A}"}, 400, "invalid_request", basic(*self.server))
        # ID-JAG: no scope beyond the assertion's, no resource other than the assertion's
        self.refused(self.jag_form(self.idp.jag(scope="mcp"), scope="mcp admin"), 400,
                     "invalid_grant", basic(*self.jagger))
        # an ID-JAG that names no scope: the resource's defaults (mcp), never admin, which no
        # person consented to and the identity provider never granted
        self.assertIn("no scope", self.refused(
            self.jag_form(self.idp.jag(scope=None), scope="admin files"), 400, "invalid_grant",
            basic(*self.jagger)))
        st, j = self.token(self.jag_form(self.idp.jag(scope=None)), basic(*self.jagger))
        self.assertEqual((st, j.get("scope")), (200, "mcp"), j)
        self.refused(self.jag_form(self.idp.jag(), resource=B), 400, "invalid_target",
                     basic(*self.jagger))
        self.refused(self.jag_form(self.idp.jag(resource="https://evil.example/mcp")), 400,
                     "invalid_grant", basic(*self.jagger))

    # ---- revocation holes -------------------------------------------------------------------

    def test_an_exchanged_id_jag_token_falls_with_its_person_and_the_jag_client(self):
        t = self.granted(self.jag_form(self.idp.jag(sub="u-revoke")), basic(*self.jagger))
        x = self.granted({"grant_type": EXCHANGE, "subject_token": t,
                          "subject_token_type": ACCESS, "resource": B}, basic(*self.server))
        self.assertTrue(self.mcp.introspect(x).active)
        self.admin.set_user_disabled(PREFIX + "u-revoke", True)
        wait_until(lambda: self.mcp.introspect(x).reason == 7, 1.0, "the exchanged token revoked")
        # the disabled person gets no new token by an ID-JAG
        self.assertIn("disabled", self.refused(self.jag_form(self.idp.jag(sub="u-revoke")), 400,
                                               "invalid_grant", basic(*self.jagger)))

    def test_a_revoked_client_is_refused_everywhere_at_once(self):
        r = self.admin.register_client([], "doomed", "client_secret_basic", grant_types=[CC],
                                       resources=[A])
        who = basic(r.client_id, r.client_secret)
        t = self.granted({"grant_type": CC}, who)
        self.admin.revoke_client(r.client_id)
        for authd in (self.a, self.b):
            self.assertIn("revoked", self.refused({"grant_type": CC}, 401, "invalid_client",
                                                  who, authd))
        wait_until(lambda: self.mcp.introspect(t).reason == 7, 1.0, "its token revoked")
        st, _ = self.forward_auth(t)
        self.assertEqual(st, 401)

    # ---- malformed and oversized input --------------------------------------------------------

    def test_malformed_and_oversized_input_gets_a_clear_error(self):
        big = "a" * 9000
        bad_jws = ["", ".", "..", "a.b.c", "a.b.c.d", b64url(b"{") + "." + b64url(b"{}") + ".x",
                   b64url(json.dumps({"alg": "ES256\r\nX-Injected: 1"}).encode()) + "." +
                   b64url(json.dumps({"iss": self.idp.issuer}).encode()) + ".AAAA",
                   b64url(b'{"alg":"none","typ":"oauth-id-jag+jwt"}') + "." +
                   b64url(json.dumps({"iss": self.idp.issuer}).encode()) + ".", big]
        for j in bad_jws:
            self.refused(self.jag_form(j), 400, "invalid_grant" if j else "invalid_request",
                         basic(*self.jagger))
            self.refused({"grant_type": CC, "client_id": self.signer,
                          "client_assertion_type": ASSERTION_TYPE, "client_assertion": j or "x"},
                         401, "invalid_client")
            self.refused({"grant_type": EXCHANGE, "subject_token": j or "x",
                          "subject_token_type": ACCESS, "resource": B}, 400, "invalid_grant",
                         basic(*self.server))
        for form in ({"grant_type": CC, "scope": "mcp " * 5000},
                     {"grant_type": CC, "resource": "https://" + "x" * 9000},
                     {"grant_type": CC, "scope": "m\u00e9p"}):
            st, j = self.token(form, basic(*self.agent))
            self.assertEqual(st, 400, j)
            self.assertTrue(j.get("error_description"), j)
        # both replicas still answer
        for authd in (self.a, self.b):
            self.assertEqual(authd.health(), 1)

    # ---- what an anonymous client can make us hold or do ---------------------------------

    def outside_the_trail(self):
        """Redis keys other than the audit trail's (whose folded refusals are bounded by
        test_attack_audit), once the trail's writes so far have settled."""
        for authd in (self.a, self.b):
            authd.wait_audit_settled()
        trail = self.env.redis.cli("--scan", "--pattern", "p2a:{audit}*").split()
        return int(self.env.redis.cli("DBSIZE")) - len(trail)

    def test_anonymous_refusals_leave_nothing_in_redis_and_few_log_lines(self):
        before = self.outside_the_trail()
        events = int(self.env.redis.cli("HLEN", "p2a:{audit}:ev") or 0)
        lines = self.a.output().count('"oauth.refused"')
        now = int(time.time())
        forms = []
        for i in range(40):  # 120 refusals from 40 client ids, within about a second
            cid = f"c_{secrets.token_urlsafe(16)}"
            forms += [({"grant_type": CC, "resource": A}, basic(cid, "s" * 43)),
                      ({"grant_type": CC, "client_id": self.signer,
                        "client_assertion_type": ASSERTION_TYPE,  # signed by another key
                        "client_assertion": self.client_assertion(
                            self.signer, now + 60, now, key=ec.generate_private_key(
                                ec.SECP256R1()))}, None),
                      (self.jag_form(self.idp.jag()), basic(self.jagger[0], "wrong" + str(i)))]
        t0 = time.monotonic()
        for form, h in forms:
            st, _ = self.token(form, h)
            self.assertEqual(st, 401)
        elapsed = time.monotonic() - t0
        self.assertEqual(self.outside_the_trail(), before)
        # the trail folds them: a few events a minute for this address, not 120
        self.assertLessEqual(int(self.env.redis.cli("HLEN", "p2a:{audit}:ev") or 0) - events, 6)
        # oauth.refused: at most one line a second for each of 64 limiters
        logged = self.a.output().count('"oauth.refused"') - lines
        self.assertLessEqual(logged, 64 * (int(elapsed) + 2))

    def test_a_self_registered_jwks_uri_is_never_fetched_from_a_private_address(self):
        import socket
        ls = socket.socket()
        ls.bind(("127.0.0.1", 0))
        ls.listen(8)
        ls.setblocking(False)
        try:
            uri = f"https://127.0.0.1:{ls.getsockname()[1]}/jwks"
            st, _, b = self.a.http("/register", "POST", json.dumps({
                "client_name": "keys elsewhere", "redirect_uris": ["http://127.0.0.1/cb"],
                "token_endpoint_auth_method": "private_key_jwt", "jwks_uri": uri}), JSONCT)
            self.assertEqual(st, 201, b)
            cid = json.loads(b)["client_id"]
            now = int(time.time())
            why = self.refused({"grant_type": "authorization_code", "code": "x",
                                "code_verifier": "v" * 43, "client_id": cid,
                                "client_assertion_type": ASSERTION_TYPE,
                                "client_assertion": self.client_assertion(cid, now + 60, now)},
                               401, "invalid_client")
            self.assertIn("jwks_uri", why)
            with self.assertRaises(BlockingIOError):
                ls.accept()
        finally:
            ls.close()

    def test_an_exchanging_client_cannot_grow_the_revocation_sets_without_bound(self):
        """Exchange, revoke, again: each revoked token is an entry in every replica's
        revocation set (and Redis) until it expires. No person is needed for the loop, so the
        exchanges a client gets are bounded as client credentials are."""
        user_id = self.admin.create_user("loop-victim", PASSWORD).user_id
        pat = self.admin.issue(user_id, "laptop", scope="mcp").token
        r = self.admin.register_client([], "looping server", "client_secret_basic",
                                       grant_types=[EXCHANGE], resources=[A, B])
        who = basic(r.client_id, r.client_secret)
        before = int(self.env.redis.cli("ZCARD", "p2a:{t}:revoked"))
        statuses = []
        for _ in range(TX_LIMIT + 10):
            st, j = self.token({"grant_type": EXCHANGE, "subject_token": pat,
                                "subject_token_type": ACCESS, "resource": B}, who)
            statuses.append(st)
            if st != 200:
                self.assertEqual((st, j["error"]), (429, "too_many_requests"), j)
                continue
            st, _, b = self.a.http("/revoke", "POST", urllib.parse.urlencode(
                {"token": j["access_token"]}), {**FORM, **who})
            self.assertEqual(st, 200, b)
        self.assertEqual(statuses.count(200), TX_LIMIT)
        grown = int(self.env.redis.cli("ZCARD", "p2a:{t}:revoked")) - before
        self.assertLessEqual(grown, TX_LIMIT)

    def test_a_client_may_revoke_or_introspect_only_its_own_tokens(self):
        user_id = self.admin.create_user("own-only", PASSWORD).user_id
        pat = self.admin.issue(user_id, "laptop", scope="mcp").token
        x = self.granted({"grant_type": EXCHANGE, "subject_token": pat,
                          "subject_token_type": ACCESS, "resource": B}, basic(*self.server))
        cc = self.cc_token()
        for who, token in ((self.agent, pat), (self.agent, x), (self.server, cc),
                           (self.jagger, x)):
            st, _, b = self.a.http("/revoke", "POST", urllib.parse.urlencode({"token": token}),
                                   {**FORM, **basic(*who)})
            self.assertEqual(st, 200, b)
            st, _, b = self.a.http("/introspect", "POST",
                                   urllib.parse.urlencode({"token": token}),
                                   {**FORM, **basic(*who)})
            self.assertFalse(json.loads(b).get("active"), b)
        for t in (pat, x, cc):
            self.assertTrue(self.mcp.introspect(t).active)

    def test_an_assertion_is_no_bearer_token(self):
        now = int(time.time())
        for t in (self.idp.jag(), self.client_assertion(self.signer, now + 60, now),
                  self.idp.id_token()):
            st, h = self.forward_auth(t, **{"X-Auth-Subject": "alice"})
            self.assertEqual(st, 401)
            self.assertNotIn("x-auth-subject", h)
            self.assertFalse(self.mcp.introspect(t).active)

    # ---- last: what the daemons wrote --------------------------------------------------------

    def test_zz_no_secret_or_assertion_reaches_a_log_line(self):
        self.test_a_client_token_is_never_a_persons()  # at least one of each, whatever ran
        self.granted(self.jag_form(self.idp.jag()), basic(*self.jagger))
        logs = self.a.output() + self.b.output()
        self.assertGreater(len(self.secrets_seen), 5)
        for s in self.secrets_seen:
            # a JWS by its signature (a token's jti may be logged, its signature never)
            tail = s.rsplit(".", 1)[-1]
            if len(tail) >= 16:
                self.assertNotIn(tail, logs)


if __name__ == "__main__":
    unittest.main()
