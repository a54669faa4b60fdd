"""The OAuth 2.1 facade, rule by rule, over plain HTTP against real processes.

Every negative rule of the issue has a test here: wrong verifier, plain PKCE, code reuse
(and the revocation it triggers), refresh reuse (family revoked), an unregistered redirect
URI (no redirect happens), unknown clients, a token for another resource, CSRF, the login
rate limit, malformed bodies, oversized bodies and headers. The browser and the MCP SDK
are test_oauth_mcp.py's.
"""
import base64
import collections
import hashlib
import http.client
import json
import re
import secrets
import unittest
import urllib.parse

import grpc

from harness import RESOURCE, Env, ServiceTest, oauth_authd, wait_until
from p2a_client import pb

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
JSONCT = {"Content-Type": "application/json"}
PASSWORD = "a long enough passphrase"


def pkce():
    v = secrets.token_urlsafe(48)
    c = base64.urlsafe_b64encode(hashlib.sha256(v.encode()).digest()).rstrip(b"=").decode()
    return v, c


def query(loc):
    return {k: v[0] for k, v in urllib.parse.parse_qs(urllib.parse.urlparse(loc).query).items()}


class Flow:
    """A person with a browser, reduced to cookies and forms."""

    def __init__(self, authd, username="ana"):
        self.authd = authd
        self.username = username
        self.cookies = {}

    def req(self, path, method="GET", body=None, headers=None):
        h = dict(headers or {})
        if self.cookies:
            h["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        c = http.client.HTTPConnection("127.0.0.1", self.authd.http_port, timeout=10)
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            for k, v in r.getheaders():
                if k.lower() == "set-cookie":
                    name, val = v.split(";")[0].split("=", 1)
                    self.cookies[name] = val
            return r.status, dict(r.getheaders()), r.read().decode()
        finally:
            c.close()

    def authorize(self, **params):
        return self.req("/authorize?" + urllib.parse.urlencode(params))

    @staticmethod
    def field(page, name):
        m = re.search(rf'name="{name}" value="([^"]*)"', page)
        return m.group(1).replace("&amp;", "&") if m else None

    def login(self, page, password=PASSWORD, csrf=None):
        form = {"csrf": csrf if csrf is not None else self.field(page, "csrf"),
                "q": self.field(page, "q"), "username": self.username, "password": password}
        return self.req("/login", "POST", urllib.parse.urlencode(form), FORM)

    def consent(self, page, decision="approve", csrf=None):
        form = {"csrf": csrf if csrf is not None else self.field(page, "csrf"),
                "q": self.field(page, "q"), "decision": decision}
        return self.req("/consent", "POST", urllib.parse.urlencode(form), FORM)

    def code(self, client_id, redirect_uri, challenge, state="s1", **extra):
        st, h, page = self.authorize(response_type="code", client_id=client_id,
                                     redirect_uri=redirect_uri, code_challenge=challenge,
                                     code_challenge_method="S256", state=state, **extra)
        if st == 200 and 'action="/login"' in page:
            st, h, _ = self.login(page)
            assert st == 303, st
            st, h, page = self.req(h["Location"])
        if st == 200:  # the consent page (a grant approved before skips it: 302 already)
            st, h, _ = self.consent(page)
            assert st == 303, (st, h)
        assert st in (302, 303), (st, page)
        q = query(h["Location"])
        assert q["state"] == state and q["iss"] == self.authd.issuer, q
        return q["code"]


class OAuth(ServiceTest):
    OAUTH = True
    # every flow here looks at the consent page: remembered consent is test_grants.py's
    AUTHD_ENV = {"PIPE2_AUTH_REMEMBER_CONSENT": "0",
                 "PIPE2_AUTH_REFRESH_GRACE": "0",
                 "PIPE2_AUTH_REGISTER_RATE_LIMIT": "1000000",
                 "PIPE2_AUTH_LOGIN_RATE_LIMIT": "1000",
                 "PIPE2_AUTH_RESOURCE": RESOURCE + ",http://127.0.0.1:3001/other"}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.user_id = cls.admin.create_user("ana", PASSWORD).user_id

    def register(self, uris=("http://127.0.0.1/cb",), method="none", **more):
        body = {"client_name": "Test app", "redirect_uris": list(uris),
                "token_endpoint_auth_method": method, **more}
        st, h, b = self.authd.http("/register", "POST", json.dumps(body), JSONCT)
        self.assertEqual(st, 201, b)
        return json.loads(b)

    def token(self, form, headers=None):
        st, h, b = self.authd.http("/token", "POST", urllib.parse.urlencode(form),
                               {**FORM, **(headers or {})})
        return st, h, json.loads(b)

    def grant(self, client=None, redirect="http://127.0.0.1:4567/cb", **extra):
        client = client or self.register()
        v, c = pkce()
        code = Flow(self.authd).code(client["client_id"], redirect, c, **extra)
        st, h, t = self.token({"grant_type": "authorization_code", "code": code,
                               "code_verifier": v, "redirect_uri": redirect,
                               "client_id": client["client_id"], "resource": RESOURCE})
        self.assertEqual(st, 200, t)
        return client, t

    # ---- discovery ----

    def test_metadata_and_cors(self):
        st, h, b = self.authd.http("/.well-known/oauth-authorization-server")
        m = json.loads(b)
        self.assertEqual(m["issuer"], self.authd.issuer)
        self.assertEqual(m["code_challenge_methods_supported"], ["S256"])
        self.assertIn("none", m["token_endpoint_auth_methods_supported"])
        self.assertTrue(m["authorization_response_iss_parameter_supported"])
        for k in ("registration_endpoint", "revocation_endpoint", "introspection_endpoint",
                  "jwks_uri"):
            self.assertTrue(m[k].startswith(self.authd.issuer + "/"), k)
        self.assertEqual(h["Access-Control-Allow-Origin"], "*")
        for path in ("/.well-known/oauth-protected-resource/mcp",
                     "/.well-known/oauth-protected-resource"):
            st, h, b = self.authd.http(path + "?x=1")
            self.assertEqual(st, 200, path)
            p = json.loads(b)
            self.assertEqual(p["resource"], RESOURCE)
            self.assertEqual(p["authorization_servers"], [m["issuer"]])  # byte-identical
            self.assertEqual(p["scopes_supported"], ["mcp"])
        st, _, b = self.authd.http("/.well-known/oauth-protected-resource/other")
        self.assertEqual(json.loads(b)["resource"], "http://127.0.0.1:3001/other")
        for path in ("/.well-known/openid-configuration", "/.well-known/whatever",
                     "/.well-known/oauth-authorization-server/nope"):
            self.assertEqual(self.authd.http(path)[0], 404, path)
        for path in ("/.well-known/oauth-authorization-server", "/register", "/token", "/revoke"):
            st, h, _ = self.authd.http(path, "OPTIONS", headers={
                "Origin": "https://claude.ai", "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "mcp-protocol-version"})
            self.assertEqual(st, 204, path)
            self.assertEqual(h["Access-Control-Allow-Origin"], "*")
            self.assertIn("MCP-Protocol-Version", h["Access-Control-Allow-Headers"])
        st, h, _ = Flow(self.authd).authorize(client_id="c_x")
        self.assertNotIn("Access-Control-Allow-Origin", h)  # not on the HTML pages
        st, h, b = self.authd.http("/jwks.json")
        k = json.loads(b)["keys"][0]
        self.assertEqual((k["kty"], k["crv"], k["alg"], k["kid"]), ("EC", "P-256", "ES256", "it-key"))

    # ---- registration ----

    def test_register_public_confidential_and_policy(self):
        c = self.register(["http://127.0.0.1/cb", "cursor://anysphere.cursor-mcp/oauth/callback",
                           "https://claude.ai/api/mcp/auth_callback", "http://localhost:8787/callback"],
                          scope="mcp", application_type="native", unknown_member=1)
        self.assertEqual(c["token_endpoint_auth_method"], "none")
        self.assertNotIn("client_secret", c)
        self.assertEqual(len(c["redirect_uris"]), 4)
        self.assertIsInstance(c["client_id_issued_at"], int)
        s = self.register(method="client_secret_post")
        self.assertEqual(s["client_secret_expires_at"], 0)
        self.assertGreaterEqual(len(s["client_secret"]), 43)
        stored = self.env.redis.cli("GET", "p2a:client:" + s["client_id"])
        self.assertNotIn(s["client_secret"], stored)  # only its digest is kept
        for bad in ("javascript:alert(1)", "data:text/html,x", "file:///etc/passwd",
                    "https://app.example/cb#frag", "http://app.example/cb",
                    "https://user:pw@app.example/cb", "vbscript:x"):
            st, _, b = self.authd.http("/register", "POST", json.dumps(
                {"redirect_uris": ["https://ok.example/cb", bad]}), JSONCT)
            self.assertEqual((st, json.loads(b)["error"]), (400, "invalid_redirect_uri"), bad)
        for body in ("{", "[]", '{"redirect_uris": "x"}', '{"redirect_uris":["https://a/b"],'
                     '"grant_types":["implicit"]}', '{"redirect_uris":["https://a/b"],'
                     '"token_endpoint_auth_method":"private_key_jwt"}'):
            st, _, b = self.authd.http("/register", "POST", body, JSONCT)
            self.assertEqual(st, 400, body)
            self.assertIn(json.loads(b)["error"], ("invalid_client_metadata", "invalid_redirect_uri"))
        st, _, b = self.authd.http("/register", "POST", "{}", {"Content-Type": "text/plain"})
        self.assertEqual(st, 400)
        st, _, _ = self.authd.http("/register", "POST", "x" * (70 * 1024), JSONCT)
        self.assertEqual(st, 413)
        st, _, _ = self.authd.http("/register", "POST", "{}", {**JSONCT, "X-Big": "y" * 9000})
        self.assertIn(st, (400, 431))

    def test_register_client_rpc_and_shared_by_replicas(self):
        r = self.admin.register_client(["https://app.example/cb"], client_name="Dash app",
                                       method="client_secret_basic")
        self.assertTrue(r.client_id.startswith("c_") and r.client_secret)
        self.assertEqual(json.loads(r.registration_json)["client_name"], "Dash app")
        with self.assertRaises(grpc.RpcError) as e:
            self.admin.register_client(["javascript:x"])
        self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        b = oauth_authd(self.env)  # a second replica knows the client at once
        st, _, page = Flow(b).authorize(response_type="code", client_id=r.client_id,
                                        code_challenge=pkce()[1], code_challenge_method="S256")
        self.assertEqual(st, 200)
        self.assertIn("Sign in", page)

    def test_create_user_rules(self):
        with self.assertRaises(grpc.RpcError) as e:
            self.admin.create_user("ana", PASSWORD + "x")
        self.assertEqual(e.exception.code(), grpc.StatusCode.ALREADY_EXISTS)
        for pw in ("short", "x" * 300, "bob-the-builder", "aaaaaaaaaaaa", "password123"):
            with self.assertRaises(grpc.RpcError) as e:
                self.admin.create_user("bob-the-builder", pw)
            self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT, pw)
        with self.assertRaises(grpc.RpcError) as e:
            self.mcp.create_user("carol", PASSWORD)
        self.assertEqual(e.exception.code(), grpc.StatusCode.PERMISSION_DENIED)

    # ---- authorization ----

    def test_authorize_errors_page_or_redirect(self):
        c = self.register(["http://127.0.0.1/cb", "https://app.example/cb"])
        f = Flow(self.authd)
        _, ch = pkce()
        base = dict(response_type="code", client_id=c["client_id"], code_challenge=ch,
                    code_challenge_method="S256", state="st8")
        # client and redirect URI problems: a page, never a redirect
        for params in ({**base, "client_id": "c_unknownclient00000000"},
                       {**base, "client_id": "not a client"},
                       {**base, "redirect_uri": "https://evil.example/cb"},
                       {**base, "redirect_uri": "http://localhost:9/cb"},  # not 127.0.0.1
                       base):  # two registered, none given
            st, h, page = f.authorize(**params)
            self.assertEqual(st, 400, params)
            self.assertNotIn("Location", h)
            self.assertIn("text/html", h["Content-Type"])
            self.assertEqual(h["X-Frame-Options"], "DENY")
        # the rest go back to the client with error, state and iss
        ok = {**base, "redirect_uri": "http://127.0.0.1:7777/cb"}  # any loopback port
        for params, error in (({**ok, "code_challenge_method": "plain"}, "invalid_request"),
                              ({k: v for k, v in ok.items() if k != "code_challenge"}, "invalid_request"),
                              ({**ok, "response_type": "token"}, "unsupported_response_type"),
                              ({**ok, "resource": "https://elsewhere.example/mcp"}, "invalid_target"),
                              ({**ok, "scope": "a\\b"}, "invalid_scope")):
            st, h, _ = f.authorize(**params)
            self.assertEqual(st, 302, params)
            q = query(h["Location"])
            self.assertTrue(h["Location"].startswith("http://127.0.0.1:7777/cb?"))
            self.assertEqual((q["error"], q["state"], q["iss"]), (error, "st8", self.authd.issuer))
        st, _, page = f.req("/authorize?client_id=a&client_id=b")
        self.assertEqual(st, 400)
        self.assertIn("more than once", page)

    def test_login_and_consent_pages(self):
        c = self.register()
        f = Flow(self.authd)
        v, ch = pkce()
        st, h, page = f.authorize(response_type="code", client_id=c["client_id"],
                                  code_challenge=ch, code_challenge_method="S256", state="z",
                                  scope="mcp claudeai", resource=RESOURCE + "/")
        self.assertEqual(st, 200)
        self.assertEqual(h["Cache-Control"], "no-store")
        self.assertIn("frame-ancestors 'none'", h["Content-Security-Policy"])
        self.assertIn("HttpOnly", h["Set-Cookie"])
        self.assertIn("SameSite=Lax", h["Set-Cookie"])
        self.assertNotRegex(page, r"<script|https?://[^\"<]*\.(js|css)")  # no external assets
        # CSRF: missing and wrong tokens are refused
        self.assertEqual(f.login(page, csrf="")[0], 403)
        self.assertEqual(f.login(page, csrf="A" * 43)[0], 403)
        # wrong password and unknown user: the same answer
        st1, _, p1 = f.login(page, password="wrong password!")
        other = Flow(self.authd, "nobody-here")
        other.cookies = dict(f.cookies)
        st2, _, p2 = other.login(page)
        self.assertEqual((st1, st2), (401, 401))
        self.assertIn("Wrong username or password.", p1)
        self.assertIn("Wrong username or password.", p2)
        st, h, _ = f.login(page)
        self.assertEqual(st, 303)
        st, h, page = f.req(h["Location"])
        self.assertIn("Test app", page)
        self.assertIn(RESOURCE, page)
        self.assertEqual(f.consent(page, csrf="B" * 64)[0], 403)
        st, h, _ = f.consent(page, decision="deny")
        self.assertEqual(st, 303)
        self.assertEqual(query(h["Location"])["error"], "access_denied")
        st, h, _ = f.consent(page)
        code = query(h["Location"])["code"]
        st, _, t = self.token({"grant_type": "authorization_code", "code": code,
                               "code_verifier": v, "client_id": c["client_id"]})
        self.assertEqual(st, 200, t)
        self.assertEqual(t["scope"], "mcp")  # the made-up scope is dropped, not an error
        self.assertEqual(t["token_type"], "Bearer")

    # ---- token endpoint ----

    def test_several_resources_in_one_grant(self):
        """RFC 8707: several resource parameters at /authorize; the token request and each
        refresh may narrow the audience to some of them, never widen it."""
        c = self.register()
        redirect = "http://127.0.0.1:4567/cb"
        other = "http://127.0.0.1:3001/other"
        f = Flow(self.authd)

        def code(resources):
            v, ch = pkce()
            q = urllib.parse.urlencode({"response_type": "code", "client_id": c["client_id"],
                                        "redirect_uri": redirect, "code_challenge": ch,
                                        "code_challenge_method": "S256", "state": "s1",
                                        "resource": resources}, doseq=True)
            st, h, page = f.req("/authorize?" + q)
            self.assertEqual(st, 200, page)
            if 'action="/login"' in page:
                st, h, _ = f.login(page)
                st, h, page = f.req(h["Location"])
            for r in resources:  # the consent page names every one
                self.assertIn(r, page)
            st, h, _ = f.consent(page)
            self.assertEqual(st, 303, h)
            return query(h["Location"])["code"], v

        def aud(token):
            return [r for r in (RESOURCE, other) if self.mcp.introspect(token, resource=r).active]

        form = {"grant_type": "authorization_code", "redirect_uri": redirect,
                "client_id": c["client_id"]}
        k, v = code([RESOURCE, other])
        st, _, t = self.token({**form, "code": k, "code_verifier": v})
        self.assertEqual(st, 200, t)
        self.assertEqual(aud(t["access_token"]), [RESOURCE, other])
        k, v = code([RESOURCE, other])
        st, _, t = self.token({**form, "code": k, "code_verifier": v, "resource": other})
        self.assertEqual(st, 200, t)
        self.assertEqual(aud(t["access_token"]), [other])
        refresh = {"grant_type": "refresh_token", "client_id": c["client_id"]}
        st, _, t2 = self.token({**refresh, "refresh_token": t["refresh_token"],
                                "resource": RESOURCE})
        self.assertEqual(st, 200, t2)  # the grant holds both: narrowed to the other one now
        self.assertEqual(aud(t2["access_token"]), [RESOURCE])
        k, v = code([RESOURCE])
        st, _, t = self.token({**form, "code": k, "code_verifier": v, "resource": other})
        self.assertEqual((st, t["error"]), (400, "invalid_target"))
        st, _, e = self.token({**refresh, "refresh_token": t2["refresh_token"],
                               "resource": "http://127.0.0.1:9/unknown"})
        self.assertEqual((st, e["error"]), (400, "invalid_target"))

    def test_code_rules(self):
        c = self.register()
        v, ch = pkce()
        redirect = "http://127.0.0.1:4567/cb"
        f = Flow(self.authd)
        code = f.code(c["client_id"], redirect, ch, resource=RESOURCE)
        form = {"grant_type": "authorization_code", "code": code, "code_verifier": v,
                "redirect_uri": redirect, "client_id": c["client_id"]}
        other = self.register()
        st, h, e = self.token({**form, "client_id": "c_doesnotexist000000000"})
        self.assertEqual((st, e["error"]), (401, "invalid_client"))
        self.assertNotIn("WWW-Authenticate", h)  # no challenge after form credentials
        st, _, e = self.token({**form, "code_verifier": pkce()[0]})
        self.assertEqual((st, e["error"]), (400, "invalid_grant"))  # and the code is burnt
        code = f.code(c["client_id"], redirect, ch)
        form["code"] = code
        self.assertEqual(self.token({**form, "client_id": other["client_id"]})[2]["error"],
                         "invalid_grant")
        code = f.code(c["client_id"], redirect, ch)
        form["code"] = code
        self.assertEqual(self.token({**form, "redirect_uri": "http://127.0.0.1:1/cb"})[2]["error"],
                         "invalid_grant")
        code = f.code(c["client_id"], redirect, ch)
        form["code"] = code
        self.assertEqual(self.token({**form, "resource": "http://127.0.0.1:3001/other"})[2]["error"],
                         "invalid_target")
        code = f.code(c["client_id"], redirect, ch)
        form["code"] = code
        st, _, t = self.token(form)
        self.assertEqual(st, 200, t)
        self.assertTrue(self.mcp.introspect(t["access_token"], resource=RESOURCE).active)
        # a token for another resource is refused there
        r = self.mcp.introspect(t["access_token"], resource="http://127.0.0.1:3001/other")
        self.assertEqual((r.active, r.reason), (False, pb.WRONG_AUDIENCE))
        header = base64.urlsafe_b64decode(t["access_token"].split(".")[0] + "==")
        self.assertEqual(json.loads(header)["typ"], "at+jwt")
        # the code again: refused, and what it issued is revoked
        st, _, e = self.token(form)
        self.assertEqual((st, e["error"]), (400, "invalid_grant"))
        self.assertEqual(self.mcp.introspect(t["access_token"]).reason, pb.REVOKED)
        st, _, e = self.token({"grant_type": "refresh_token", "refresh_token": t["refresh_token"],
                               "client_id": c["client_id"]})
        self.assertEqual(e["error"], "invalid_grant")

    def test_refresh_rotation_and_reuse(self):
        c, t1 = self.grant()
        rf = {"grant_type": "refresh_token", "client_id": c["client_id"]}
        st, _, t2 = self.token({**rf, "refresh_token": t1["refresh_token"], "resource": RESOURCE + "/"})
        self.assertEqual(st, 200, t2)
        self.assertNotEqual(t2["refresh_token"], t1["refresh_token"])
        st, _, e = self.token({**rf, "refresh_token": t2["refresh_token"], "scope": "mcp admin"})
        self.assertEqual(e["error"], "invalid_scope")
        st, _, e = self.token({**rf, "refresh_token": t2["refresh_token"],
                               "resource": "http://127.0.0.1:3001/other"})
        self.assertEqual(e["error"], "invalid_target")
        other = self.register()
        self.assertEqual(self.token({**rf, "client_id": other["client_id"],
                                     "refresh_token": t2["refresh_token"]})[2]["error"], "invalid_grant")
        st, _, t3 = self.token({**rf, "refresh_token": t2["refresh_token"], "scope": "mcp"})
        self.assertEqual(st, 200, t3)
        self.assertTrue(self.mcp.introspect(t3["access_token"]).active)
        # an old member again: the whole family goes, with its access tokens
        st, _, e = self.token({**rf, "refresh_token": t1["refresh_token"]})
        self.assertEqual((st, e["error"]), (400, "invalid_grant"))
        for t in (t1, t2, t3):
            self.assertEqual(self.mcp.introspect(t["access_token"]).reason, pb.REVOKED)
        self.assertEqual(self.token({**rf, "refresh_token": t3["refresh_token"]})[2]["error"],
                         "invalid_grant")

    def test_confidential_client_auth(self):
        c = self.register(method="client_secret_basic")
        cid, sec = c["client_id"], c["client_secret"]
        v, ch = pkce()
        redirect = "http://127.0.0.1:4567/cb"
        f = Flow(self.authd)
        form = {"grant_type": "authorization_code", "code_verifier": v, "redirect_uri": redirect}
        for auth, ok in ((None, False), ("Basic " + base64.b64encode(f"{cid}:wrong".encode()).decode(), False),
                         ("Basic !!!", False),
                         ("Basic " + base64.b64encode(f"{cid}:{sec}".encode()).decode(), True)):
            form["code"] = f.code(cid, redirect, ch)
            hdr = {"Authorization": auth} if auth else {}
            st, h, b = self.token(form if auth else {**form, "client_id": cid}, hdr)
            self.assertEqual(st, 200 if ok else 401, (auth, b))
            if not ok:
                self.assertEqual(b["error"], "invalid_client")
        # client_secret_post is accepted too, and the RFC 6749 form-encoded Basic
        form["code"] = f.code(cid, redirect, ch)
        self.assertEqual(self.token({**form, "client_id": cid, "client_secret": sec})[0], 200)
        form["code"] = f.code(cid, redirect, ch)
        enc = base64.b64encode(f"{urllib.parse.quote(cid)}:{urllib.parse.quote(sec)}".encode()).decode()
        self.assertEqual(self.token(form, {"Authorization": "Basic " + enc})[0], 200)

    def test_malformed_token_requests(self):
        for body, ct, error in (("grant_type=authorization_code&code=%zz", FORM, "invalid_request"),
                                ("grant_type=a&grant_type=b", FORM, "invalid_request"),
                                ("grant_type=password&username=a", FORM, "unsupported_grant_type"),
                                ("", FORM, "invalid_request"),
                                ('{"grant_type":"refresh_token"}', JSONCT, "invalid_request")):
            st, _, b = self.authd.http("/token", "POST", body, ct)
            self.assertEqual((st, json.loads(b)["error"]), (400, error), body)
        st, _, _ = self.authd.http("/token", "POST", "a=" + "b" * (70 * 1024), FORM)
        self.assertEqual(st, 413)
        st, h, _ = self.authd.http("/token", "GET")
        self.assertEqual(st, 405)

    # ---- revocation and introspection ----

    def test_revoke_and_introspect_endpoints(self):
        c, t = self.grant()
        # introspection needs a caller
        st, _, b = self.authd.http("/introspect", "POST", "token=" + t["access_token"], FORM)
        self.assertEqual(st, 401)
        auth = {"Authorization": "Bearer " + self.env.introspect_key}
        st, _, b = self.authd.http("/introspect", "POST", "token=" + t["access_token"], {**FORM, **auth})
        j = json.loads(b)
        self.assertTrue(j["active"])
        self.assertEqual((j["client_id"], j["sub"], j["aud"], j["token_type"]),
                         (c["client_id"], self.user_id, [RESOURCE], "Bearer"))
        self.assertIsInstance(j["exp"], int)
        st, _, b = self.authd.http("/introspect", "POST", "token=garbage", {**FORM, **auth})
        self.assertEqual((st, json.loads(b)), (200, {"active": False}))
        # revoking the refresh token revokes the grant's access tokens too
        st, _, b = self.authd.http("/revoke", "POST", urllib.parse.urlencode(
            {"token": t["refresh_token"], "client_id": c["client_id"]}), FORM)
        self.assertEqual(st, 200)
        st, _, b = self.authd.http("/introspect", "POST", "token=" + t["access_token"], {**FORM, **auth})
        self.assertEqual(json.loads(b), {"active": False})
        self.assertEqual(self.mcp.introspect(t["access_token"]).reason, pb.REVOKED)
        # unknown tokens: 200 all the same (RFC 7009 2.2)
        st, _, _ = self.authd.http("/revoke", "POST", urllib.parse.urlencode(
            {"token": "nope", "client_id": c["client_id"]}), FORM)
        self.assertEqual(st, 200)
        st, _, b = self.authd.http("/revoke", "POST", "token=x&client_id=c_nobody00000000000000", FORM)
        self.assertEqual((st, json.loads(b)["error"]), (401, "invalid_client"))
        # another client cannot revoke this client's access token
        c2, t2 = self.grant()
        self.authd.http("/revoke", "POST", urllib.parse.urlencode(
            {"token": t2["access_token"], "client_id": c["client_id"]}), FORM)
        self.assertTrue(self.mcp.introspect(t2["access_token"]).active)
        self.authd.http("/revoke", "POST", urllib.parse.urlencode(
            {"token": t2["access_token"], "client_id": c2["client_id"]}), FORM)
        self.assertEqual(self.mcp.introspect(t2["access_token"]).reason, pb.REVOKED)

    def test_revocation_reaches_another_replica(self):
        b = oauth_authd(self.env, {"PIPE2_AUTH_ISSUER": self.authd.issuer,
                                   "PIPE2_AUTH_RESOURCE": RESOURCE})
        mcp_b = b.client(self.env.introspect_key)
        try:
            c, t = self.grant()
            self.assertTrue(mcp_b.introspect(t["access_token"]).active)
            self.authd.http("/revoke", "POST", urllib.parse.urlencode(
                {"token": t["access_token"], "client_id": c["client_id"]}), FORM)
            wait_until(lambda: mcp_b.introspect(t["access_token"]).reason == pb.REVOKED, 30,
                       "the other replica to see the revocation")
        finally:
            mcp_b.close()


class RateLimits(unittest.TestCase):
    def test_register_and_login_limits(self):
        env = Env()
        try:
            a = oauth_authd(env, {"PIPE2_AUTH_REGISTER_RATE_LIMIT": "3",
                                  "PIPE2_AUTH_LOGIN_RATE_LIMIT": "3"})
            admin = a.client(env.admin_key)
            admin.create_user("ana", PASSWORD)
            admin.close()
            body = json.dumps({"redirect_uris": ["http://127.0.0.1/cb"],
                               "token_endpoint_auth_method": "none"})
            codes = [a.http("/register", "POST", body, JSONCT)[0] for _ in range(4)]
            self.assertEqual(codes, [201, 201, 201, 429])
            cid = env.redis.cli("KEYS", "p2a:client:*").split()[0].split(":")[-1]
            f = Flow(a)
            st, _, page = f.authorize(response_type="code", client_id=cid,
                                      code_challenge=pkce()[1], code_challenge_method="S256")
            self.assertEqual(st, 200)
            self.assertEqual([f.login(page, password="wrong password")[0] for _ in range(3)],
                             [401, 401, 401])
            st, _, p = f.login(page)  # the right password, too late
            self.assertEqual(st, 429)
            self.assertIn("Too many failed sign-in attempts", p)
        finally:
            env.close()


class DeviceCookies(unittest.TestCase):
    """No lock-out by guessing (OWASP's device cookies): a browser that signed in to an account
    before is not throttled by failures from elsewhere, and has its own failure limit; an
    attempt refused because the account is throttled counts against the address that sent
    it, not the account. 40 addresses speak through a trusted proxy (X-Forwarded-For)."""

    CSRF = "c" * 43

    def login(self, username, password, addr, cookies=None):
        """POST /login as the browser at addr would (its cookies: a dict, updated from
        Set-Cookie); (status, headers)."""
        cookies = cookies if cookies is not None else {}
        jar = {"p2a_csrf": self.CSRF, **cookies}
        body = urllib.parse.urlencode({"csrf": self.CSRF, "q": "response_type=code&client_id=c_x",
                                       "username": username, "password": password})
        c = http.client.HTTPConnection("127.0.0.1", self.a.http_port, timeout=30)
        try:
            c.request("POST", "/login", body, {
                **FORM, "X-Forwarded-For": addr,
                "Cookie": "; ".join(f"{k}={v}" for k, v in jar.items())})
            r = c.getresponse()
            r.read()
            for k, v in r.getheaders():
                if k.lower() == "set-cookie":
                    name, val = v.split(";")[0].split("=", 1)
                    cookies[name] = val
            return r.status, dict(r.getheaders())
        finally:
            c.close()

    def test_a_browser_that_signed_in_before_is_not_locked_out(self):
        env = Env()
        try:
            self.a = oauth_authd(env, {"PIPE2_AUTH_TRUSTED_PROXIES": "127.0.0.1/32",
                                       "PIPE2_AUTH_HTTP_MAX_CONNECTIONS_PER_ADDRESS": "1000",
                                       "PIPE2_AUTH_LOGIN_DEVICE_FAILURES": "3"})
            admin = self.a.client(env.admin_key)
            admin.create_user("alice", PASSWORD)
            admin.create_user("bruno", PASSWORD)
            admin.close()
            # alice signs in from two browsers, which keep their device cookies
            browser, laptop = {}, {}
            for jar, addr in ((browser, "198.51.100.7"), (laptop, "198.51.100.8")):
                st, h = self.login("alice", PASSWORD, addr, jar)
                self.assertEqual(st, 303)
                self.assertRegex(h["Set-Cookie"], r"p2a_device=[A-Za-z0-9_-]{43}; .*HttpOnly")
            self.assertNotEqual(browser["p2a_device"], laptop["p2a_device"])
            # 40 addresses guess at alice, polling all the while; between rounds alice, in
            # the browser that signed in before, signs in, and so does someone in a new one
            guesses, alice, fresh = collections.Counter(), collections.Counter(), collections.Counter()
            for rnd in range(20):
                for i in range(40):
                    guesses[self.login("alice", f"guess {rnd} {i}", f"203.0.113.{i}")[0]] += 1
                alice[self.login("alice", PASSWORD, "198.51.100.7", browser)[0]] += 1
                fresh[self.login("alice", PASSWORD, f"192.0.2.{rnd}")[0]] += 1
            print(f"\nguesses {dict(guesses)}; alice's browser {dict(alice)}; "
                  f"a new browser with the right password {dict(fresh)}")
            self.assertEqual(alice, {303: 20})  # 20 of 20
            self.assertEqual(set(guesses), {401, 429})
            self.assertGreater(fresh[429], 0)  # the account was throttled meanwhile
            # refused attempts cost their address: each has used its 5 and is refused now
            for i in (0, 17, 39):
                pair = int(env.redis.cli("GET", f"p2a:rl:{{alice}}:pair:203.0.113.{i}"))
                self.assertGreaterEqual(pair, 5)
            # ...not the account: it counts evaluated failures only (since the last sign-in
            # of a browser that was counted there), never the 429s
            acct = int(env.redis.cli("HGET", "p2a:rl:{alice}:account", "n") or 0)
            self.assertLessEqual(acct, guesses[401] + fresh[401])
            # a device cookie has its own failure limit (3 here): past it the browser is
            # counted like any other (at its address and the account), until it signs in
            digest = hashlib.sha256(laptop["p2a_device"].encode()).hexdigest()
            devices = "p2a:rl:{alice}:devices"
            for _ in range(3):
                self.assertEqual(self.login("alice", "nope", "203.0.113.200", laptop)[0], 401)
            self.assertEqual(env.redis.cli("HGET", devices, digest), "3")
            self.login("alice", "nope", "203.0.113.200", laptop)
            self.assertEqual(env.redis.cli("HGET", devices, digest), "3")
            self.assertEqual(env.redis.cli("GET", "p2a:rl:{alice}:pair:203.0.113.200"), "1")
            # alice's cookie is nothing at another account: counted as any browser's
            before = int(env.redis.cli("HGET", "p2a:rl:{bruno}:account", "n") or 0)
            self.assertEqual(self.login("bruno", "nope", "198.51.100.7", dict(browser))[0], 401)
            self.assertEqual(int(env.redis.cli("HGET", "p2a:rl:{bruno}:account", "n")),
                             before + 1)
            # alice's own browser still signs in, and its failures are back at 0
            self.assertEqual(self.login("alice", PASSWORD, "198.51.100.7", browser)[0], 303)
            digest = hashlib.sha256(browser["p2a_device"].encode()).hexdigest()
            self.assertEqual(env.redis.cli("HGET", devices, digest), "0")
            self.assertGreater(int(env.redis.cli("TTL", devices)), 29 * 86400)
            # a person signing in again and again without keeping cookies: 16 browsers at most
            for i in range(20):
                self.assertEqual(self.login("alice", PASSWORD, f"198.51.100.{100 + i}", {})[0],
                                 303)
            self.assertEqual(env.redis.cli("HLEN", devices), "16")
        finally:
            env.close()


class FacadeEdges(unittest.TestCase):
    """A pipelined request is held to the header deadline, not evhttp's longer read timeout;
    refused sign-ins are logged a line a second at most, however many there are."""

    def test_a_pipelined_request_is_cut_at_the_header_deadline(self):
        import socket
        import time
        env = Env()
        try:
            # evhttp's own timeout is HEADER_TIMEOUT + REQUEST_TIMEOUT: 8 s here
            a = oauth_authd(env, {"PIPE2_AUTH_HEADER_TIMEOUT": "2",
                                  "PIPE2_AUTH_REQUEST_TIMEOUT": "6"})
            s = socket.create_connection(("127.0.0.1", a.http_port), timeout=15)
            try:
                t0 = time.monotonic()
                # a whole request, and the start of a second one's head that never ends
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                          b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                got = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    got += chunk
                took = time.monotonic() - t0
            except ConnectionResetError:
                took = time.monotonic() - t0
            finally:
                s.close()
            print(f"\npipelined head cut after {took:.2f} s")
            self.assertTrue(got.startswith(b"HTTP/1.1 200"), got[:80])
            self.assertEqual(got.count(b"HTTP/1.1 "), 1)  # the unfinished one got nothing
            self.assertGreaterEqual(took, 1.5)
            self.assertLess(took, 4)
        finally:
            env.close()

    def test_a_flood_of_busy_sign_ins_logs_a_line_a_second(self):
        import threading
        import time
        env = Env()
        try:
            # two hashing slots: nearly every one of a flood of sign-ins is refused as busy
            a = oauth_authd(env, {"PIPE2_AUTH_HASH_THREADS": "1", "PIPE2_AUTH_HASH_QUEUE": "1",
                                  "PIPE2_AUTH_TRUSTED_PROXIES": "127.0.0.1/32",
                                  "PIPE2_AUTH_HTTP_MAX_CONNECTIONS_PER_ADDRESS": "1000"})
            csrf = "c" * 43
            statuses, lock, stop = collections.Counter(), threading.Lock(), time.monotonic() + 3

            def flood(k):
                n = 0
                while time.monotonic() < stop:
                    body = urllib.parse.urlencode({
                        "csrf": csrf, "q": "response_type=code&client_id=c_x",
                        "username": f"nobody{k}x{n}", "password": "wrong password"})
                    c = http.client.HTTPConnection("127.0.0.1", a.http_port, timeout=30)
                    try:
                        c.request("POST", "/login", body, {
                            **FORM, "Cookie": f"p2a_csrf={csrf}",
                            "X-Forwarded-For": f"203.0.113.{k}"})
                        r = c.getresponse()
                        r.read()
                        with lock:
                            statuses[r.status] += 1
                    finally:
                        c.close()
                    n += 1
            t0 = time.monotonic()
            threads = [threading.Thread(target=flood, args=(k,)) for k in range(24)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            seconds = time.monotonic() - t0
            with open(a.logpath, "rb") as f:
                lines = [ln for ln in f.read().decode(errors="replace").splitlines()
                         if "oauth.login_busy" in ln]
            print(f"\n{dict(statuses)} in {seconds:.1f} s; {len(lines)} login_busy lines")
            self.assertGreater(statuses[503], 100)
            self.assertLessEqual(len(lines), int(seconds) + 2)
            self.assertRegex(lines[-1], r"\(\d+ more since the last line\)")
            passed = sum(int(re.search(r"\((\d+) more", ln).group(1)) for ln in lines)
            # the ones passed over are counted (those since the last line, in the next one)
            self.assertGreater(passed, 100)
            self.assertLessEqual(passed + len(lines), statuses[503])
        finally:
            env.close()


class Registration(unittest.TestCase):
    """Dynamic registration as hosted clients use it: a client per user, from a few shared
    addresses, behind our proxy; every limit keyed on the real client address."""

    BODY = json.dumps({"client_name": "Hosted", "redirect_uris": ["https://host.example/cb"],
                       "token_endpoint_auth_method": "none", "application_type": "web"})

    def setUp(self):
        self.env = Env()

    def tearDown(self):
        self.env.close()

    def register(self, a, headers=None):
        return a.http("/register", "POST", self.BODY, {**JSONCT, **(headers or {})})

    def test_hosted_clients_behind_a_trusted_proxy(self):
        a = oauth_authd(self.env, {"PIPE2_AUTH_TRUSTED_PROXIES": "127.0.0.0/8"})
        codes = collections.Counter(
            self.register(a, {"X-Forwarded-For": f"203.0.113.{i % 100}"})[0] for i in range(500))
        self.assertEqual(codes, {201: 500})  # 100 users' addresses, 5 registrations each

    def test_one_address_meets_the_limit(self):
        a = oauth_authd(self.env)  # default limits; forwarded headers from anyone are ignored
        codes, retry = [], None
        for i in range(500):
            st, h, b = self.register(a, {"X-Forwarded-For": f"198.51.100.{i % 200}"})
            codes.append(st)
            if st == 429 and retry is None:
                retry = int(h["Retry-After"])
                self.assertEqual(json.loads(b)["error"], "too_many_requests")
        # a few hundred an hour from one address pass (a hosted client behind one egress)
        self.assertEqual(collections.Counter(codes), {201: 400, 429: 100})
        self.assertEqual(codes[:400], [201] * 400)
        self.assertTrue(0 < retry <= 3600, retry)

    def test_clients_expire_unless_used(self):
        a = oauth_authd(self.env)
        st, _, b = self.register(a)
        self.assertEqual(st, 201)
        cid = json.loads(b)["client_id"]
        ttl = int(self.env.redis.cli("TTL", f"p2a:client:{cid}"))
        self.assertTrue(500 < ttl <= 600, ttl)  # 10 minutes unless used
        f = Flow(a)
        st, _, _ = f.authorize(response_type="code", client_id=cid,
                               redirect_uri="https://host.example/cb",
                               code_challenge=pkce()[1], code_challenge_method="S256")
        self.assertEqual(st, 200)
        ttl = int(self.env.redis.cli("TTL", f"p2a:client:{cid}"))
        self.assertTrue(ttl <= 600, ttl)  # an anonymous /authorize keeps nothing alive
        admin = a.client(self.env.admin_key)
        try:
            admin.create_user("ana", PASSWORD)
        finally:
            admin.close()
        v, c = pkce()
        code = Flow(a).code(cid, "https://host.example/cb", c)
        st, _, b = a.http("/token", "POST", urllib.parse.urlencode({
            "grant_type": "authorization_code", "code": code, "code_verifier": v,
            "redirect_uri": "https://host.example/cb", "client_id": cid}), FORM)
        self.assertEqual(st, 200, b)  # tokens issued: the client is used
        ttl = int(self.env.redis.cli("TTL", f"p2a:client:{cid}"))
        self.assertTrue(7776000 - 100 < ttl <= 7776000, ttl)  # used: 90 days from now
        admin = a.client(self.env.admin_key)
        try:
            by_hand = admin.register_client(["http://127.0.0.1:5000/cb"], "by hand").client_id
        finally:
            admin.close()
        self.assertEqual(self.env.redis.cli("TTL", f"p2a:client:{by_hand}").strip(), "-1")

    def test_application_type_web_redirects_to_https_only(self):
        a = oauth_authd(self.env)
        body = json.dumps({"redirect_uris": ["http://127.0.0.1:5000/cb"],
                           "token_endpoint_auth_method": "none", "application_type": "web"})
        st, _, b = a.http("/register", "POST", body, JSONCT)
        self.assertEqual((st, json.loads(b)["error"]), (400, "invalid_redirect_uri"))
        body = json.dumps({"redirect_uris": ["http://127.0.0.1:5000/cb"],
                           "token_endpoint_auth_method": "none", "application_type": "native"})
        st, _, b = a.http("/register", "POST", body, JSONCT)
        self.assertEqual(st, 201, b)
        self.assertEqual(json.loads(b)["application_type"], "native")


if __name__ == "__main__":
    unittest.main()
