"""Signing people in through an upstream OpenID Connect provider (issue 14).

Two providers:
- node-oidc-provider (tests/integration/node/upstream_idp.mjs), a real one: the official MCP
  SDK client drives Chromium through its login and consent pages and ours, calls a tool, and
  gets the same sub as a PAT issued for that person (node/upstream.test.mjs).
- a provider written here (CraftedIdP, on loopback in this process) that answers the token
  request with whatever ID token a test crafted: every attack on the ID token is refused
  with a page that says why, and no session is made. It also rotates its keys.
"""
import base64
import hashlib
import json
import secrets
import subprocess
import threading
import time
import unittest
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from harness import (NODE_DIR, RESOURCE, Env, b64url, chromium_for, free_port, jwt_hs256,
                     oauth_authd, run_node_suite, stop_process)
from test_oauth import FORM, Flow, pkce, query

import p2a_client  # noqa: E402 (harness puts scripts/ on the path)

CLIENT_ID, CLIENT_SECRET = "pipe2-auth", "upstream-secret-" + secrets.token_urlsafe(16)
PREFIX = "corp|"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # test_idjag.py's provider


def rsa_key(kid):
    k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    n = k.public_key().public_numbers()
    jwk = {"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
           "n": b64url(n.n.to_bytes((n.n.bit_length() + 7) // 8, "big")), "e": b64url(b"\x01\x00\x01")}
    return k, jwk


def rs256(key, kid, payload, alg="RS256"):
    h = b64url(json.dumps({"alg": alg, "kid": kid, "typ": "JWT"}).encode())
    p = b64url(json.dumps(payload).encode())
    sig = key.sign(f"{h}.{p}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{h}.{p}.{b64url(sig)}"


class CraftedIdP:
    """Discovery, keys and a token endpoint on 127.0.0.1; the ID token of the next token
    request is make(nonce), set by the test. It checks our client authentication and the
    PKCE verifier as a provider would, and counts the requests by path."""

    def __init__(self):
        self.keys = [rsa_key("k1")]
        self.make = None
        self.assertion_key = None  # our signing key's public half: private_key_jwt accepted
        self.auth_seen = []  # how each token request authenticated: "basic" or "assertion"
        self.challenges = {}  # code -> the code_challenge of its authorization request
        self.nonces = {}  # code -> the nonce of its authorization request
        self.hits = {}
        self.lock = threading.Lock()
        idp = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def send(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                path = self.path.split("?")[0]
                with idp.lock:
                    idp.hits[path] = idp.hits.get(path, 0) + 1
                if path == "/.well-known/openid-configuration":
                    return self.send(200, {
                        "issuer": idp.issuer, "authorization_endpoint": idp.issuer + "/auth",
                        "token_endpoint": idp.issuer + "/token", "jwks_uri": idp.issuer + "/jwks",
                        "response_types_supported": ["code"],
                        "subject_types_supported": ["public"],
                        "id_token_signing_alg_values_supported": ["RS256"],
                        "code_challenge_methods_supported": ["S256"]})
                if path == "/jwks":
                    return self.send(200, {"keys": [j for _, j in idp.keys]})
                self.send(404, {"error": "not_found"})

            def do_POST(self):
                with idp.lock:
                    idp.hits["/token"] = idp.hits.get("/token", 0) + 1
                n = int(self.headers.get("Content-Length", "0"))
                form = dict(urllib.parse.parse_qsl(self.rfile.read(n).decode()))
                if form.get("grant_type") == TOKEN_EXCHANGE and hasattr(idp, "exchange"):
                    return self.send(*idp.exchange(self.headers.get("Authorization"), form))
                if not idp.client_authenticated(self.headers.get("Authorization"), form):
                    return self.send(401, {"error": "invalid_client"})
                challenge = idp.challenges.get(form.get("code"))
                v = form.get("code_verifier", "")
                got = b64url(hashlib.sha256(v.encode()).digest())
                if challenge is None or got != challenge or form.get("grant_type") != "authorization_code":
                    return self.send(400, {"error": "invalid_grant"})
                idp.nonce = idp.nonces[form["code"]]
                self.send(200, {"access_token": "at", "token_type": "Bearer",
                                "id_token": idp.make(idp.nonce)})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.issuer = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def client_authenticated(self, authorization, form):
        """client_secret_basic, or an RFC 7523 assertion signed with assertion_key."""
        if "client_assertion" not in form:
            want = "Basic " + base64.b64encode(
                f"{CLIENT_ID}:{urllib.parse.quote(CLIENT_SECRET, safe='')}".encode()).decode()
            self.auth_seen.append("basic")
            return authorization == want
        self.auth_seen.append("assertion")
        if self.assertion_key is None or form.get("client_assertion_type") != \
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
            return False
        h, p, sig = form["client_assertion"].split(".")
        raw = base64.urlsafe_b64decode(sig + "==")
        der = utils.encode_dss_signature(int.from_bytes(raw[:32], "big"),
                                         int.from_bytes(raw[32:], "big"))
        try:
            self.assertion_key.verify(der, f"{h}.{p}".encode(), ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return False
        c = json.loads(base64.urlsafe_b64decode(p + "=="))
        return (c["iss"] == c["sub"] == CLIENT_ID and c["aud"] == self.issuer + "/token" and
                c["exp"] > time.time() and len(c["jti"]) >= 16)

    def claims(self, **over):
        now = int(time.time())
        c = {"iss": self.issuer, "aud": CLIENT_ID, "sub": "u-1001", "nonce": self.nonce,
             "iat": now, "exp": now + 300, "name": "Dana Example", "email": "dana@corp.example",
             "email_verified": True, "groups": ["mcp-users"]}
        c.update(over)
        return c

    def signed(self, key=0, **over):
        k, jwk = self.keys[key]
        return rs256(k, jwk["kid"], self.claims(**over))

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Person(Flow):
    """A browser that signs in at the crafted provider: /authorize sends it there, the test
    plays the provider's part (a code for the challenge it was sent), and the callback."""

    def start(self, idp, client, state="s1", **extra):
        self.verifier, challenge = pkce()
        st, h, page = self.authorize(response_type="code", client_id=client["client_id"],
                                     redirect_uri="http://127.0.0.1:4567/cb",
                                     code_challenge=challenge, code_challenge_method="S256",
                                     state=state, **extra)
        assert st == 302, (st, page)
        up = query(h["Location"])
        assert h["Location"].startswith(idp.issuer + "/auth?"), h["Location"]
        assert up["client_id"] == CLIENT_ID and up["code_challenge_method"] == "S256", up
        assert up["redirect_uri"] == self.authd.issuer + "/callback/upstream", up
        code = secrets.token_urlsafe(12)
        idp.challenges[code] = up["code_challenge"]
        idp.nonce = idp.nonces[code] = up["nonce"]
        return {"code": code, "state": up["state"]}

    def callback(self, params):
        return self.req("/callback/upstream?" + urllib.parse.urlencode(params))


class CraftedProvider(unittest.TestCase):
    resource = RESOURCE  # the one sign_in asks a token for (test_idjag.py serves another)

    @classmethod
    def setUpClass(cls):
        cls.idp = CraftedIdP()
        cls.env = Env()
        cls.authd = oauth_authd(cls.env, {
            "PIPE2_AUTH_LOCAL_ACCOUNTS": "off",
            "PIPE2_AUTH_UPSTREAM_ISSUER": cls.idp.issuer,
            "PIPE2_AUTH_UPSTREAM_CLIENT_ID": CLIENT_ID,
            "PIPE2_AUTH_UPSTREAM_CLIENT_SECRET": CLIENT_SECRET,
            "PIPE2_AUTH_UPSTREAM_SUBJECT_PREFIX": PREFIX,
            "PIPE2_AUTH_UPSTREAM_ALLOWED_DOMAINS": "corp.example, example.org",
            "PIPE2_AUTH_UPSTREAM_REQUIRED_CLAIM": "groups=mcp-users",
            "PIPE2_AUTH_REMEMBER_CONSENT": "0",
            "PIPE2_AUTH_TRUSTED_PROXIES": "127.0.0.1/32",
            "PIPE2_AUTH_REGISTER_RATE_LIMIT": "1000"})
        cls.admin = cls.authd.client(cls.env.admin_key)
        cls.mcp = cls.authd.client(cls.env.introspect_key)
        st, _, b = cls.authd.http("/register", "POST", json.dumps({
            "client_name": "Upstream test app", "redirect_uris": ["http://127.0.0.1/cb"],
            "token_endpoint_auth_method": "none"}), {"Content-Type": "application/json"})
        assert st == 201, b
        cls.client = json.loads(b)

    @classmethod
    def tearDownClass(cls):
        cls.admin.close()
        cls.mcp.close()
        cls.env.close()
        cls.idp.close()

    def refused(self, person, params, why, status=400):
        st, h, page = person.callback(params)
        self.assertEqual(st, status, page)
        self.assertIn("Sign-in failed" if status != 403 else "cannot sign in", page)
        self.assertIn(why, page.replace("&#39;", "'"))
        self.assertNotIn("p2a_session", person.cookies, "a refused sign-in made a session")
        self.assertIn("frame-ancestors 'none'", h.get("Content-Security-Policy", ""))
        return page

    def sign_in(self, person, **over):
        """The whole flow to a token: (introspection of the access token). Also called with
        another test case as self (test_idjag.py), one with idp, client, authd, mcp, resource."""
        params = person.start(self.idp, self.client)
        self.idp.make = lambda nonce: self.idp.signed(**over)
        st, h, page = person.callback(params)
        self.assertEqual(st, 303, page)
        self.assertTrue(h["Location"].startswith("/authorize?"), h)
        self.assertIn("p2a_session", person.cookies)
        st, h, page = person.req(h["Location"])
        self.assertEqual(st, 200, page)
        self.assertIn("Dana Example", page)  # the consent page, signed in as the name claim
        st, h, _ = person.consent(page)
        self.assertEqual(st, 303)
        code = query(h["Location"])["code"]
        st, _, b = self.authd.http("/token", "POST", urllib.parse.urlencode({
            "grant_type": "authorization_code", "code": code, "code_verifier": person.verifier,
            "redirect_uri": "http://127.0.0.1:4567/cb", "client_id": self.client["client_id"],
            "resource": self.resource}), FORM)
        self.assertEqual(st, 200, b)
        return self.mcp.introspect(json.loads(b)["access_token"], self.resource)

    def test_sign_in_gives_one_subject_with_pats(self):
        r = self.sign_in(Person(self.authd))
        self.assertTrue(r.active)
        self.assertEqual(r.sub, PREFIX + "u-1001")
        # the person exists now (a plain client: no PutUser first): a dashboard issues PATs to
        # the same id, with the same sub
        plain = p2a_client.Client(f"127.0.0.1:{self.authd.port}", key=self.env.admin_key)
        pat = plain.issue(PREFIX + "u-1001", "laptop", expires_in=3600)
        plain.close()
        self.assertEqual(self.mcp.introspect(pat.token, RESOURCE).sub, PREFIX + "u-1001")
        # the login page is never shown with local accounts off, nor does /login take a password
        st, _, page = self.authd.http("/login", "POST", "q=a&csrf=b&username=x&password=y", FORM)
        self.assertEqual(st, 404, page)
        self.assertIn("turned off", page)

    def test_id_token_attacks_are_refused(self):
        idp = self.idp
        k1, jwk1 = idp.keys[0]
        pub_pem = k1.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
        stranger, _ = rsa_key("k1")  # the same kid, another key
        cases = [
            ("wrong aud", lambda n: idp.signed(aud="someone-else"), "not for this service"),
            ("wrong nonce", lambda n: idp.signed(nonce="n-" + secrets.token_urlsafe(20)),
             "not issued for this sign-in"),
            ("expired", lambda n: idp.signed(exp=int(time.time()) - 3600, iat=int(time.time()) - 4000),
             "has expired"),
            ("alg none", lambda n: b64url(json.dumps({"alg": "none"}).encode()) + "." +
             b64url(json.dumps(idp.claims()).encode()) + ".", "only RS256 and ES256"),
            ("HS256 keyed with the public key",
             lambda n: jwt_hs256(pub_pem, {"alg": "HS256", "kid": "k1"}, idp.claims()),
             "only RS256 and ES256"),
            ("signed by another key", lambda n: rs256(stranger, "k1", idp.claims()),
             "does not verify"),
            ("wrong iss", lambda n: idp.signed(iss="https://evil.example"), "another issuer"),
            ("azp of another client", lambda n: idp.signed(aud=[CLIENT_ID, "x"], azp="x"),
             "another client (azp)"),
            ("several audiences, no azp", lambda n: idp.signed(aud=[CLIENT_ID, "x"]),
             "no azp"),
            ("issued in the future", lambda n: idp.signed(iat=int(time.time()) + 3600),
             "in the future"),
        ]
        for name, make, why in cases:
            with self.subTest(name):
                p = Person(self.authd)
                params = p.start(idp, self.client)
                idp.make = make
                self.refused(p, params, why)
        # the configured limits: a domain not admitted, a group not held
        for over, why in ((dict(email="eve@elsewhere.example"), "not in a domain"),
                          (dict(email_verified=False), "no verified email"),
                          (dict(groups=["other"]), "not in the group")):
            with self.subTest(str(over)):
                p = Person(self.authd)
                params = p.start(idp, self.client)
                idp.make = lambda n, over=over: idp.signed(**over)
                self.refused(p, params, why, status=403)

    def test_callback_replay_and_state_of_another_session(self):
        idp = self.idp
        idp.make = lambda n: idp.signed()
        a, b = Person(self.authd), Person(self.authd)
        pa = a.start(idp, self.client, state="a")
        pb_ = b.start(idp, self.client, state="b")
        # b's browser is handed a's answer (login CSRF): refused, a's sign-in still usable
        self.refused(b, pa, "started elsewhere")
        cookie = dict(a.cookies)
        st, _, page = a.callback(pa)
        self.assertEqual(st, 303, page)
        # the same answer again, even with the cookie it had: the sign-in was used once
        replay = Person(self.authd)
        replay.cookies = {k: v for k, v in cookie.items() if k != "p2a_session"}
        self.refused(replay, pa, "used already")
        # the provider's own error and a missing state
        self.refused(b, {"error": "access_denied", "state": pb_["state"]}, "answered access_denied")
        self.refused(Person(self.authd), {"code": "x"}, "started elsewhere")
        # a mix-up: the answer says it comes from another issuer (RFC 9207)
        c = Person(self.authd)
        pc = c.start(idp, self.client)
        self.refused(c, {**pc, "iss": "https://evil.example"}, "another provider")

    def test_key_rotation_then_unknown_key(self):
        idp = self.idp
        self.sign_in(Person(self.authd))  # the key set is cached now
        before = idp.hits.get("/jwks", 0)
        idp.keys.append(rsa_key("k2"))  # the provider rotates: k2 signs from now on
        p = Person(self.authd)
        params = p.start(idp, self.client)
        idp.make = lambda n: idp.signed(key=1)
        st, _, page = p.callback(params)
        self.assertEqual(st, 303, page)
        self.assertEqual(idp.hits["/jwks"], before + 1, "the new key was fetched once")
        # a kid nobody publishes, right after: refused without fetching the set again (bounded)
        ghost, _ = rsa_key("ghost")
        p = Person(self.authd)
        params = p.start(idp, self.client)
        idp.make = lambda n: rs256(ghost, "ghost", idp.claims())
        self.refused(p, params, "a key the provider does not publish")
        self.assertEqual(idp.hits["/jwks"], before + 1)

    def test_private_key_jwt_without_a_secret(self):
        # no client secret: we authenticate with an assertion signed by our signing key,
        # whose public half the provider reads at our /jwks.json
        idp = self.idp
        idp.assertion_key = serialization.load_pem_private_key(
            open(self.env.key_path, "rb").read(), None).public_key()
        b = oauth_authd(self.env, {
            "PIPE2_AUTH_LOCAL_ACCOUNTS": "off",
            "PIPE2_AUTH_UPSTREAM_ISSUER": idp.issuer,
            "PIPE2_AUTH_UPSTREAM_CLIENT_ID": CLIENT_ID,
            "PIPE2_AUTH_REMEMBER_CONSENT": "0"})
        p = Person(b)
        params = p.start(idp, self.client)
        idp.make = lambda n: idp.signed()
        st, h, page = p.callback(params)
        self.assertEqual(st, 303, page)
        self.assertEqual(idp.auth_seen[-1], "assertion")
        # a provider that does not know our key refuses, and the person is told
        idp.assertion_key = None
        p = Person(b)
        params = p.start(idp, self.client)
        self.refused(p, params, "did not exchange the code (invalid_client)", status=502)

    def test_account_pages_sign_in_through_the_provider(self):
        idp = self.idp
        b = oauth_authd(self.env, {
            "PIPE2_AUTH_LOCAL_ACCOUNTS": "off",
            "PIPE2_AUTH_ACCOUNT_PAGES": "on",
            "PIPE2_AUTH_UPSTREAM_ISSUER": idp.issuer,
            "PIPE2_AUTH_UPSTREAM_CLIENT_ID": CLIENT_ID,
            "PIPE2_AUTH_UPSTREAM_CLIENT_SECRET": CLIENT_SECRET})
        p = Person(b)
        st, h, page = p.req("/account/")
        self.assertEqual(st, 302, page)  # no password form: straight to the provider
        up = query(h["Location"])
        code = secrets.token_urlsafe(12)
        idp.challenges[code], idp.nonces[code] = up["code_challenge"], up["nonce"]
        idp.make = lambda n: idp.signed()
        st, h, page = p.callback({"code": code, "state": up["state"]})
        self.assertEqual((st, h.get("Location")), (303, "/account/"), page)
        st, _, page = p.req("/account/")
        self.assertEqual(st, 200, page)
        self.assertIn("Your account", page)
        self.assertIn("Dana Example", page)

    def test_sign_ins_started_leave_nothing_in_redis(self):
        # a sign-in in progress is a sealed cookie: anonymous starts write nothing, need no
        # limit, and a cookie that was tampered with opens nothing (the audit trail's writes
        # of the suite's earlier sign-ins settle first: they are not the starts')
        self.authd.wait_audit_settled()
        before = int(self.env.redis.cli("DBSIZE"))
        for _ in range(45):
            st, h, _ = Person(self.authd).req("/authorize?" + urllib.parse.urlencode(dict(
                response_type="code", client_id=self.client["client_id"],
                redirect_uri="http://127.0.0.1:4567/cb", code_challenge=pkce()[1],
                code_challenge_method="S256")), headers={"X-Forwarded-For": "203.0.113.9"})
            self.assertEqual(st, 302)
        self.authd.wait_audit_settled()
        self.assertEqual(int(self.env.redis.cli("DBSIZE")), before)
        p = Person(self.authd)
        params = p.start(self.idp, self.client)
        kid, sealed = p.cookies["p2a_upstream"].rsplit(".", 1)
        flipped = sealed[:20] + ("A" if sealed[20] != "A" else "B") + sealed[21:]
        for bad in (f"{kid}.{flipped}", f"other.{sealed}", sealed, ""):
            p.cookies["p2a_upstream"] = bad
            self.refused(p, params, "started elsewhere")


class NodeOidcProvider(unittest.TestCase):
    def test_sdk_client_signs_in_through_node_oidc_provider(self):
        chromium = chromium_for(self, "oidc-provider")
        env = Env()
        idp_port = free_port()
        idp = None
        try:
            mcp_port = free_port()
            a_http = free_port()
            issuer = f"http://127.0.0.1:{a_http}"
            idp = subprocess.Popen(["node", "upstream_idp.mjs", str(idp_port), CLIENT_ID,
                                    CLIENT_SECRET, issuer + "/callback/upstream"],
                                   cwd=NODE_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True)
            # (oidc-provider warns first on a Node.js older than 22)
            lines = [idp.stdout.readline().strip() for _ in range(1)]
            while lines[-1] != "READY" and len(lines) < 5 and lines[-1]:
                lines.append(idp.stdout.readline().strip())
            self.assertEqual(lines[-1], "READY", lines)
            a = oauth_authd(env, {
                "PIPE2_AUTH_HTTP_LISTEN": f"127.0.0.1:{a_http}",
                "PIPE2_AUTH_ISSUER": issuer,
                "PIPE2_AUTH_RESOURCE": f"http://127.0.0.1:{mcp_port}/mcp",
                "PIPE2_AUTH_UPSTREAM_ISSUER": f"http://127.0.0.1:{idp_port}",
                "PIPE2_AUTH_UPSTREAM_CLIENT_ID": CLIENT_ID,
                "PIPE2_AUTH_UPSTREAM_CLIENT_SECRET": CLIENT_SECRET,
                "PIPE2_AUTH_UPSTREAM_SCOPES": "openid email profile groups",
                "PIPE2_AUTH_UPSTREAM_SUBJECT_PREFIX": PREFIX,
                "PIPE2_AUTH_UPSTREAM_REQUIRED_CLAIM": "groups=mcp-users"})
            run_node_suite(self, "upstream.test.mjs", {
                "P2A_ISSUER": issuer,
                "P2A_RPC": f"127.0.0.1:{a.port}",
                "P2A_MCP_PORT": str(mcp_port),
                "P2A_ADMIN_KEY": env.admin_key,
                "P2A_INTROSPECT_KEY": env.introspect_key,
                "P2A_UPSTREAM": f"http://127.0.0.1:{idp_port}",
                "P2A_SUBJECT": PREFIX + "carol",
                "P2A_CHROMIUM": chromium,
            }, passes=1)
        finally:
            if idp is not None:
                stop_process(idp)
                idp.stdout.close()
            env.close()


if __name__ == "__main__":
    unittest.main()
