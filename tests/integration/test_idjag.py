"""Enterprise-Managed Authorization (issue 23): /token redeems an Identity Assertion JWT
Authorization Grant (ID-JAG) that the company's identity provider issued, with
grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer.

The identity provider (JagIdP, on loopback in this process) is test_upstream.py's CraftedIdP --
discovery, keys, the authorization code grant for upstream sign-in -- plus the token exchange
Okta offers: an ID token it issued to a client, exchanged (RFC 8693, requested_token_type
urn:ietf:params:oauth:token-type:id-jag) for an ID-JAG naming that client's id at our
authorization server. Two pipe2-authd replicas share one Redis; the example MCP server
(examples/mcp-server) asks replica A's forward-auth.

- The SDK v2 CrossAppAccessProvider (node/id_jag.test.mjs) gets an ID-JAG from the provider and
  redeems it; the whoami tool shows the person's one subject: the one their upstream sign-in
  gives them.
- Every ID-JAG that must be refused is refused with invalid_grant and a reason; an unknown
  issuer is never fetched from; a replay on the other replica is refused.
"""
import base64
import json
import os
import secrets
import time
import unittest
import urllib.parse

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, utils

from harness import (Authd, Env, StartedTest, b64url, example_mcp_server, free_port,
                     jwt_hs256, run_node_suite, stop_process)
from test_oauth import FORM
import test_upstream  # its CraftedProvider (a TestCase) is not imported here: it would run here
from test_upstream import CLIENT_ID, CLIENT_SECRET, PREFIX, CraftedIdP, Person, rsa_key

import p2a_client  # noqa: E402 (harness puts scripts/ on the path)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ID_JAG = "urn:ietf:params:oauth:token-type:id-jag"
LIMIT = 40  # ID-JAGs an address, and a client, may present per 5 minutes here
IDP_APP, IDP_APP_SECRET = "mcp-agent-at-idp", "agent-secret-" + secrets.token_urlsafe(8)


def sign(key, header, payload, alg="RS256"):
    h = b64url(json.dumps(header).encode())
    p = b64url(json.dumps(payload).encode())
    data = f"{h}.{p}".encode()
    if alg == "ES256":
        r, s = utils.decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    elif alg == "PS256":
        sig = key.sign(data, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
    else:
        sig = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    return f"{h}.{p}.{b64url(sig)}"


class JagIdP(CraftedIdP):
    """CraftedIdP with Okta's token exchange: an ID token of its own, issued to IDP_APP, for an
    ID-JAG naming our client (self.client_at_as) for the audience and resource asked."""

    def __init__(self):
        super().__init__()
        self.client_at_as = None
        self.exchanges = 0

    def id_token(self, sub="u-1001"):
        now = int(time.time())
        k, jwk = self.keys[0]
        return sign(k, {"alg": "RS256", "kid": jwk["kid"], "typ": "JWT"},
                    {"iss": self.issuer, "aud": IDP_APP, "sub": sub, "iat": now,
                     "exp": now + 600, "name": "Dana Example"})

    def jag(self, key=0, header=None, alg="RS256", signer=None, **over):
        now = int(time.time())
        c = {"iss": self.issuer, "sub": "u-1001", "aud": self.audience, "resource": self.resource,
             "client_id": self.client_at_as, "jti": secrets.token_urlsafe(16), "iat": now,
             "exp": now + 300, "scope": "mcp"}
        c.update(over)
        c = {k: v for k, v in c.items() if v is not None}
        k, jwk = self.keys[key]
        h = {"alg": alg, "kid": jwk["kid"], "typ": "oauth-id-jag+jwt"}
        h.update(header or {})
        return sign(signer or k, h, c, alg)

    def exchange(self, authorization, form):
        """RFC 8693 at the provider: client_secret_post or _basic of IDP_APP; the subject
        token an ID token this provider issued to that client."""
        self.exchanges += 1
        cid, secret = form.get("client_id"), form.get("client_secret")
        if authorization and authorization.startswith("Basic "):
            cid, secret = base64.b64decode(authorization[6:]).decode().split(":", 1)
        if (cid, secret) != (IDP_APP, IDP_APP_SECRET):
            return 401, {"error": "invalid_client"}
        if (form.get("requested_token_type") != ID_JAG or
                form.get("subject_token_type") != "urn:ietf:params:oauth:token-type:id_token"):
            return 400, {"error": "invalid_request"}
        h, p, sig = form.get("subject_token", "..").split(".")
        claims = json.loads(base64.urlsafe_b64decode(p + "=="))
        k = self.keys[0][0]
        try:
            k.public_key().verify(base64.urlsafe_b64decode(sig + "=="), f"{h}.{p}".encode(),
                                  padding.PKCS1v15(), hashes.SHA256())
        except Exception:  # noqa: BLE001 (any failure: not our ID token)
            return 400, {"error": "invalid_grant"}
        if claims["aud"] != cid or claims["iss"] != self.issuer or claims["exp"] < time.time():
            return 400, {"error": "invalid_grant"}
        over = {"sub": claims["sub"], "aud": form["audience"], "resource": form["resource"]}
        if form.get("scope"):
            over["scope"] = form["scope"]
        return 200, {"issued_token_type": ID_JAG, "access_token": self.jag(**over),
                     "token_type": "N_A", "expires_in": 300}


class IdJag(StartedTest):
    @classmethod
    def start(cls):
        cls.idp = JagIdP()
        cls.evil = JagIdP()  # an issuer nobody configured: never asked for anything
        env = cls.env
        cls.mcp_port, fwd = free_port(), free_port()
        cls.resource = f"http://127.0.0.1:{cls.mcp_port}/mcp"
        a, b = Authd(env), Authd(env)
        cls.issuer = f"http://127.0.0.1:{a.http_port}"
        common = {"PIPE2_AUTH_ISSUER": cls.issuer, "PIPE2_AUTH_RESOURCE": cls.resource,
                  "PIPE2_AUTH_SCOPES": "mcp files offline_access",
                  "PIPE2_AUTH_LOCAL_ACCOUNTS": "off",
                  "PIPE2_AUTH_UPSTREAM_ISSUER": cls.idp.issuer,
                  "PIPE2_AUTH_UPSTREAM_CLIENT_ID": CLIENT_ID,
                  "PIPE2_AUTH_UPSTREAM_CLIENT_SECRET": CLIENT_SECRET,
                  "PIPE2_AUTH_UPSTREAM_SUBJECT_PREFIX": PREFIX,
                  "PIPE2_AUTH_REMEMBER_CONSENT": "0",
                  "PIPE2_AUTH_TRUSTED_PROXIES": "127.0.0.1/32",
                  "PIPE2_AUTH_ASSERTION_RATE_LIMIT": str(LIMIT),
                  "PIPE2_AUTH_ID_JAG_ISSUERS": f"https://idp.unused.example,{cls.idp.issuer}"}
        a.extra = dict(common, PIPE2_AUTH_FORWARD_AUTH_LISTEN=f"127.0.0.1:{fwd}")
        b.extra = dict(common)
        for x in (a, b):
            x.issuer = cls.issuer
            env.authds.append(x)
            x.start()
        cls.authd, cls.a, cls.b = a, a, b
        cls.admin = a.client(env.admin_key)
        cls.mcp = a.client(env.introspect_key)
        # the MCP client, registered by the operator for the grant (client_secret_basic)
        reg = cls.admin.call("RegisterClient", p2a_client.pb.RegisterClientRequest(
            client_name="Agent", token_endpoint_auth_method="client_secret_basic",
            grant_types=[JWT_BEARER]))
        cls.cid, cls.secret = reg.client_id, reg.client_secret
        other = cls.admin.call("RegisterClient", p2a_client.pb.RegisterClientRequest(
            client_name="Other agent", token_endpoint_auth_method="client_secret_basic",
            grant_types=[JWT_BEARER]))
        cls.other = (other.client_id, other.client_secret)
        for idp in (cls.idp, cls.evil):
            idp.client_at_as, idp.audience, idp.resource = cls.cid, cls.issuer + "/", cls.resource
        # a browser client for the upstream sign-in
        st, _, body = a.http("/register", "POST", json.dumps({
            "client_name": "Browser app", "redirect_uris": ["http://127.0.0.1/cb"],
            "token_endpoint_auth_method": "none"}), {"Content-Type": "application/json"})
        assert st == 201, body
        cls.client = json.loads(body)
        cls.example = example_mcp_server(cls.mcp_port, f"http://127.0.0.1:{fwd}/forward-auth",
                                         cls.issuer)
        cls.procs.append(cls.example)

    @classmethod
    def tearDownClass(cls):
        for c in ("admin", "mcp"):
            if getattr(cls, c, None):
                getattr(cls, c).close()
        for p in reversed(cls.procs):
            stop_process(p)
        cls.env.close()
        cls.idp.close()
        cls.evil.close()

    def redeem(self, assertion, authd=None, client=None, addr=None, **extra):
        cid, secret = client or (self.cid, self.secret)
        basic = base64.b64encode(f"{cid}:{secret}".encode()).decode()
        form = {"grant_type": JWT_BEARER, "assertion": assertion}
        form.update(extra)
        h = {**FORM, "Authorization": "Basic " + basic}
        if addr:
            h["X-Forwarded-For"] = addr
        st, _, body = (authd or self.a).http("/token", "POST", urllib.parse.urlencode(form), h)
        return st, json.loads(body)

    def refused(self, assertion, why, error="invalid_grant", **kw):
        st, body = self.redeem(assertion, **kw)
        self.assertEqual((st, body.get("error")), (400, error), body)
        self.assertIn(why, body.get("error_description", ""), body)
        return body

    def test_redeemed_for_the_person_with_no_refresh_token(self):
        st, body = self.redeem(self.idp.jag(scope="mcp files"), scope="files")
        self.assertEqual(st, 200, body)
        self.assertNotIn("refresh_token", body)
        self.assertEqual(body["scope"], "files")
        r = self.mcp.introspect(body["access_token"], self.resource)
        self.assertTrue(r.active)
        self.assertEqual(r.sub, PREFIX + "u-1001")  # as upstream sign-in maps the provider's sub
        self.assertEqual(r.client_id, self.cid)
        # no scope asked: the assertion's, those we offer
        st, body = self.redeem(self.idp.jag(scope="mcp other"))
        self.assertEqual((st, body.get("scope")), (200, "mcp"), body)

    def test_metadata_lists_the_grant_and_profile(self):
        st, _, body = self.a.http("/.well-known/oauth-authorization-server")
        m = json.loads(body)
        self.assertIn(JWT_BEARER, m["grant_types_supported"])
        self.assertEqual(m["authorization_grant_profiles_supported"],
                         ["urn:ietf:params:oauth:grant-profile:id-jag"])

    def test_every_bad_id_jag_is_refused_with_a_reason(self):
        idp = self.idp
        k, jwk = idp.keys[0]
        pem = k.public_key().public_bytes(serialization.Encoding.PEM,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
        now = int(time.time())
        unsigned = (b64url(json.dumps({"alg": "none", "typ": "oauth-id-jag+jwt"}).encode()) +
                    "." + b64url(json.dumps({"iss": idp.issuer}).encode()) + ".")
        claims = json.loads(base64.urlsafe_b64decode(idp.jag().split(".")[1] + "=="))
        cases = [
            ("wrong typ", idp.jag(header={"typ": "JWT"}), "typ must be oauth-id-jag+jwt"),
            ("wrong aud", idp.jag(aud="https://another-as.example"), "(aud)"),
            ("a resource not ours", idp.jag(resource="https://elsewhere.example/mcp"),
             "resource this authorization server does not serve"),
            ("expired", idp.jag(iat=now - 900, exp=now - 600), "has expired"),
            ("alg none", unsigned, "signed with none"),
            ("HS256 keyed with the public key",
             jwt_hs256(pem, {"alg": "HS256", "kid": jwk["kid"], "typ": "oauth-id-jag+jwt"},
                       claims), "signed with HS256"),
            ("an unknown issuer", self.evil.jag(), "does not trust"),
            ("another client's ID-JAG", idp.jag(client_id=self.other[0]),
             "another client (client_id)"),
            ("scopes beyond the assertion's", idp.jag(scope="mcp"),
             "more than the identity provider granted"),
            ("lives too long", idp.jag(exp=now + 3600), "longer than 10 minutes"),
            ("not a JWT", "abc", "not a JWT"),
        ]
        for name, assertion, why in cases:
            with self.subTest(name):
                extra = {"scope": "mcp files"} if name.startswith("scopes") else {}
                self.refused(assertion, why, **extra)
        self.assertEqual(self.evil.hits, {}, "the unknown issuer was asked for something")
        # refusals are logged with their reason, never with the assertion
        logged = self.a.output()
        self.assertIn("oauth.refused", logged)
        for name, assertion, _ in cases:
            for part in assertion.split(".")[1:2]:
                if len(part) > 16:
                    self.assertNotIn(part, logged, name)
        # the other client presenting our client's ID-JAG: the same refusal
        self.refused(idp.jag(), "another client (client_id)", client=self.other)
        # a resource asked for that the assertion does not name
        self.refused(idp.jag(), "differs from the assertion's", error="invalid_target",
                     resource="https://elsewhere.example/mcp")

    def agent(self, name):
        reg = self.admin.call("RegisterClient", p2a_client.pb.RegisterClientRequest(
            client_name=name, token_endpoint_auth_method="client_secret_basic",
            grant_types=[JWT_BEARER]))
        return reg.client_id, reg.client_secret

    def test_limits_per_address_and_per_client(self):
        # each client here presents another client's ID-JAG: refused, but counted first
        bad = self.idp.jag()
        # an address past its ID-JAGs, whichever client it authenticates as
        one, two = self.agent("Agent one"), self.agent("Agent two")
        for i in range(LIMIT):
            st, body = self.redeem(bad, client=(one, two)[i % 2], addr="198.51.100.7")
            self.assertEqual(st, 400, body)
        st, body = self.redeem(bad, client=one, addr="198.51.100.7")
        self.assertEqual((st, body["error"]), (429, "too_many_requests"), body)
        self.assertIn("from this address", body["error_description"])
        self.assertEqual(self.redeem(bad, client=two, addr="198.51.100.8")[0], 400)
        # a client past its ID-JAGs, from as many addresses
        busy = self.agent("Busy agent")
        for i in range(LIMIT):
            self.assertEqual(self.redeem(bad, client=busy, addr=f"203.0.113.{i}")[0], 400)
        st, body = self.redeem(bad, client=busy, addr="203.0.113.200")
        self.assertEqual(st, 429, body)
        self.assertIn("from this client", body["error_description"])
        # an ID-JAG of an issuer nobody trusts is refused before any limit or fetch
        st, body = self.redeem(self.evil.jag(), client=one, addr="198.51.100.7")
        self.assertEqual((st, body["error"]), (400, "invalid_grant"), body)

    def test_replay_on_the_other_replica(self):
        jag = self.idp.jag()
        st, body = self.redeem(jag, authd=self.a)
        self.assertEqual(st, 200, body)
        self.refused(jag, "redeemed already", authd=self.b)
        self.refused(jag, "redeemed already", authd=self.a)

    def test_a_disabled_person_gets_nothing(self):
        st, body = self.redeem(self.idp.jag(sub="u-2002"))
        self.assertEqual(st, 200, body)  # the person's record is made on first sight
        self.assertEqual(self.admin.get_user(PREFIX + "u-2002").source, "upstream")
        self.admin.set_user_disabled(PREFIX + "u-2002", True)
        r = self.mcp.introspect(body["access_token"], self.resource)
        self.assertFalse(r.active)
        self.refused(self.idp.jag(sub="u-2002"), "the user's account is disabled", authd=self.b)

    def test_rotated_keys_are_fetched_again(self):
        st, body = self.redeem(self.idp.jag())  # the issuer's key set is cached now
        self.assertEqual(st, 200, body)
        before = self.idp.hits.get("/jwks", 0)
        self.idp.keys.append(rsa_key("k-new"))  # the provider rotates; k-new signs, with PS256
        st, body = self.redeem(self.idp.jag(key=len(self.idp.keys) - 1, alg="PS256"))
        self.assertEqual(st, 200, body)
        self.assertEqual(self.idp.hits["/jwks"], before + 1, "the new key was fetched once")
        # a kid nobody publishes, right after: refused without fetching the set again (bounded)
        ghost, _ = rsa_key("ghost")
        self.refused(self.idp.jag(signer=ghost, header={"kid": "ghost"}), "does not publish")
        self.assertEqual(self.idp.hits["/jwks"], before + 1)

    def test_sdk_cross_app_access_gives_the_person_their_one_subject(self):
        # the person's subject as their upstream sign-in makes it (a browser, the consent page)
        signed_in = test_upstream.CraftedProvider.sign_in(self, Person(self.a))
        self.assertTrue(signed_in.active)
        run_node_suite(self, "id_jag.test.mjs", {
            "P2A_ISSUER": self.issuer, "P2A_MCP_URL": self.resource, "P2A_IDP": self.idp.issuer,
            "P2A_ID_TOKEN": self.idp.id_token(), "P2A_IDP_CLIENT": IDP_APP,
            "P2A_IDP_SECRET": IDP_APP_SECRET, "P2A_CLIENT_ID": self.cid,
            "P2A_CLIENT_SECRET": self.secret, "P2A_EXPECT_SUB": signed_in.sub}, passes=1)
        self.assertGreaterEqual(self.idp.exchanges, 1)


class Off(unittest.TestCase):
    def test_without_issuers_the_grant_is_off(self):
        env = Env()
        try:
            a = env.authd()
            st, _, body = a.http("/.well-known/oauth-authorization-server")
            m = json.loads(body)
            self.assertNotIn(JWT_BEARER, m["grant_types_supported"])
            self.assertNotIn("authorization_grant_profiles_supported", m)
            st, _, body = a.http("/token", "POST", urllib.parse.urlencode(
                {"grant_type": JWT_BEARER, "assertion": "a.b.c", "client_id": "x"}), FORM)
            self.assertEqual((st, json.loads(body)["error"]), (400, "unsupported_grant_type"))
        finally:
            env.close()


if __name__ == "__main__":
    unittest.main()
