"""Client ID Metadata Documents and private_key_jwt against real processes: pipe2-authd
fetching from a local https server (docserver.py, its certificate from a test CA) on
127.0.0.1, through every guard of the fetch."""
import base64
import hashlib
import http.client
import json
import os
import secrets
import select
import subprocess
import sys
import threading
import time
import unittest
import urllib.parse

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from harness import RESOURCE, Env, oauth_authd, stop_process, wait_until
from test_oauth import FORM, JSONCT, PASSWORD, Flow, pkce, query

HERE = os.path.dirname(os.path.abspath(__file__))


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwk_of(key, kid):
    n = key.public_key().public_numbers()
    return {"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
            "x": b64(n.x.to_bytes(32, "big")), "y": b64(n.y.to_bytes(32, "big"))}


def es256(key, header, payload):
    inp = b64(json.dumps(header).encode()) + "." + b64(json.dumps(payload).encode())
    r, s = decode_dss_signature(key.sign(inp.encode(), ec.ECDSA(hashes.SHA256())))
    return inp + "." + b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def make_ca(d):
    """A test CA and a certificate for 127.0.0.1 and localhost it signed."""
    run = lambda *a: subprocess.run(a, check=True, capture_output=True)  # noqa: E731
    ca, ca_key = os.path.join(d, "ca.pem"), os.path.join(d, "ca-key.pem")
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-days", "2", "-subj", "/CN=pipe2-auth test CA", "-keyout", ca_key, "-out", ca)
    key, csr, cert = (os.path.join(d, n) for n in ("doc-key.pem", "doc.csr", "doc.pem"))
    ext = os.path.join(d, "doc.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", csr)
    run("openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
        "-days", "2", "-extfile", ext, "-out", cert)
    return ca, cert, key


def start_docserver(env):
    """docserver.py with a certificate from a fresh test CA, and a client key whose public
    half it publishes: (process, base URL, CA file, the client's private key)."""
    ca, cert, key = make_ca(env.dir)
    client_key = ec.generate_private_key(ec.SECP256R1())
    jwks = os.path.join(env.dir, "jwks.json")
    with open(jwks, "w") as f:
        json.dump({"keys": [jwk_of(client_key, "k1")]}, f)
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "docserver.py"), cert, key, jwks],
                            stdout=subprocess.PIPE, text=True)
    ready, _, _ = select.select([proc.stdout], [], [], 20)
    line = proc.stdout.readline() if ready else ""
    if not line.startswith("PORT "):
        stop_process(proc)
        raise AssertionError(f"docserver.py did not start: {line!r}")
    return proc, f"https://127.0.0.1:{int(line.split()[1])}", ca, client_key


def stop_docserver(proc):
    stop_process(proc)
    proc.stdout.close()


class Documents(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.env = Env()
        cls.docs, cls.base, ca, cls.client_key = start_docserver(cls.env)
        # each flow looks at the consent page: remembered consent is test_grants.py's
        cls.authd = oauth_authd(cls.env, {"PIPE2_AUTH_REMEMBER_CONSENT": "0",
                                          "PIPE2_AUTH_FETCH_CA_FILE": ca,
                                          "PIPE2_AUTH_FETCH_ALLOW_LOOPBACK": "1",
                                          "PIPE2_AUTH_FETCH_TIMEOUT_MS": "1500",
                                          "PIPE2_AUTH_LOGIN_RATE_LIMIT": "1000"})
        admin = cls.authd.client(cls.env.admin_key)
        admin.create_user("ana", PASSWORD)
        admin.close()
        cls.ca = ca

    @classmethod
    def tearDownClass(cls):
        stop_docserver(cls.docs)
        cls.env.close()

    def hits(self):
        return json.loads(subprocess.run(
            ["curl", "-s", "--cacert", self.ca, self.base + "/_hits"],
            capture_output=True, text=True, check=True).stdout)

    def authorize(self, client_id, redirect="http://127.0.0.1:4567/callback", authd=None):
        return Flow(authd or self.authd).authorize(
            response_type="code", client_id=client_id, redirect_uri=redirect,
            code_challenge=pkce()[1], code_challenge_method="S256", state="s")

    def token(self, form):
        st, h, b = self.authd.http("/token", "POST", urllib.parse.urlencode(form), FORM)
        return st, h, json.loads(b)

    def assertion(self, client_id, key=None, aud=None, jti=None, kid="k1"):
        now = int(time.time())
        return es256(key or self.client_key, {"alg": "ES256", "kid": kid, "typ": "JWT"},
                     {"iss": client_id, "sub": client_id, "aud": aud or self.authd.issuer,
                      "iat": now, "exp": now + 60, "jti": jti or secrets.token_urlsafe(12)})

    def signed_in(self, client_id, redirect, verifier_challenge):
        """Signs in and approves; returns (code, consent page)."""
        f = Flow(self.authd)
        st, h, page = f.authorize(response_type="code", client_id=client_id,
                                  redirect_uri=redirect, code_challenge=verifier_challenge[1],
                                  code_challenge_method="S256", state="s1")
        self.assertEqual(st, 200, page)
        st, h, _ = f.login(page)
        self.assertEqual(st, 303)
        st, h, consent = f.req(h["Location"])
        self.assertEqual(st, 200, consent)
        st, h, _ = f.consent(consent)
        self.assertEqual(st, 303)
        q = query(h["Location"])
        self.assertEqual((q["state"], q["iss"]), ("s1", self.authd.issuer))
        return q["code"], consent

    # ---- discovery ----

    def test_metadata_advertises_documents_and_signed_assertions(self):
        st, _, b = self.authd.http("/.well-known/oauth-authorization-server")
        m = json.loads(b)
        self.assertIs(m["client_id_metadata_document_supported"], True)
        self.assertIn("none", m["token_endpoint_auth_methods_supported"])  # Claude needs it
        self.assertIn("private_key_jwt", m["token_endpoint_auth_methods_supported"])
        self.assertEqual(m["token_endpoint_auth_signing_alg_values_supported"], ["ES256", "RS256"])

    # ---- a document client, from sign-in to refresh ----

    def test_document_client_signs_in_and_refreshes(self):
        cid = self.base + "/clients/good.json"
        before = self.hits().get("/clients/good.json", 0)
        v, ch = pkce()
        redirect = "http://127.0.0.1:4567/callback"  # listed without a port: loopback
        code, consent = self.signed_in(cid, redirect, (v, ch))
        self.assertIn("Published by <strong>127.0.0.1</strong>", consent)
        self.assertIn("Doc App", consent)
        self.assertIn("runs on your own computer", consent)  # the loopback warning
        st, _, t = self.token({"grant_type": "authorization_code", "code": code,
                               "code_verifier": v, "redirect_uri": redirect, "client_id": cid})
        self.assertEqual(st, 200, t)
        st, _, t2 = self.token({"grant_type": "refresh_token", "client_id": cid,
                                "refresh_token": t["refresh_token"]})
        self.assertEqual(st, 200, t2)
        # authorize, token and refresh looked the document up three times: fetched once
        after = self.hits()["/clients/good.json"]
        self.assertTrue(after >= 1 and after - before <= 1, (before, after))

    def test_unregistered_redirect_is_refused_without_a_redirect(self):
        st, h, page = self.authorize(self.base + "/clients/good.json", "https://evil.example/cb")
        self.assertEqual(st, 400)
        self.assertNotIn("Location", h)
        self.assertIn("not one it registered", page)

    # ---- the guards ----

    def test_every_guard_refuses_with_a_page(self):
        cases = [("/clients/wrongid.json", "client_id is not its URL"),
                 ("/clients/redirect.json", "redirects are not followed"),
                 ("/clients/big.json", "larger than the limit"),
                 ("/clients/html.json", "not served as application/json"),
                 ("/clients/secret.json", "must not hold a client secret"),
                 ("/clients/missing.json", "did not answer 200")]
        for path, phrase in cases:
            st, h, page = self.authorize(self.base + path)
            self.assertEqual(st, 400, path)
            self.assertNotIn("Location", h)
            self.assertIn(phrase, page, path)
            self.assertIn("metadata document could not be used", page)
        # a failure is remembered for a few seconds: asking again fetches nothing
        hits = self.hits()
        self.authorize(self.base + "/clients/wrongid.json")
        self.assertEqual(self.hits()["/clients/wrongid.json"], hits["/clients/wrongid.json"])
        # and /token says invalid_client with the reason, for a program to read
        st, h, e = self.token({"grant_type": "authorization_code", "code": "x",
                               "code_verifier": "a" * 43,
                               "client_id": self.base + "/clients/wrongid.json"})
        self.assertEqual((st, e["error"]), (401, "invalid_client"))
        self.assertIn("client_id is not its URL", e["error_description"])
        self.assertNotIn("WWW-Authenticate", h)

    def test_private_and_loopback_addresses_are_never_reached(self):
        for host in ["10.255.255.1", "169.254.169.254", "[fd00:ec2::254]", "192.168.0.1"]:
            st, _, page = self.authorize(f"https://{host}/clients/x.json")
            self.assertEqual(st, 400, host)
            self.assertIn("private, loopback, link-local or reserved", page, host)
        # the same documents from a replica that is not allowed loopback (production)
        strict = oauth_authd(self.env, {"PIPE2_AUTH_FETCH_CA_FILE": self.ca})
        port = self.base.rsplit(":", 1)[1]
        for cid in [self.base + "/clients/good.json",
                    f"https://localhost:{port}/clients/localhost.json"]:
            st, _, page = self.authorize(cid, authd=strict)
            self.assertEqual(st, 400, cid)
            self.assertIn("private, loopback, link-local or reserved", page)
        self.assertIn("config.unsafe", self.authd.output())  # the test settings said so

    def test_a_slow_document_holds_up_nothing_else(self):
        done = {}

        def slow():
            done["answer"] = self.authorize(self.base + "/clients/slow.json")
            done["at"] = time.monotonic()

        t = threading.Thread(target=slow)
        start = time.monotonic()
        t.start()
        wait_until(lambda: self.hits().get("/clients/slow.json", 0) >= 1, 10, "the slow fetch")
        answered = 0
        for _ in range(10):  # meanwhile the facade answers everyone else
            st, _, _ = self.authd.http("/.well-known/oauth-authorization-server")
            answered += st == 200
        self.assertEqual(answered, 10)
        self.assertTrue(t.is_alive(), "the slow document should still be waited on")
        t.join(10)
        st, _, page = done["answer"]
        self.assertEqual(st, 400)
        self.assertIn("did not answer in time", page)
        self.assertLess(done["at"] - start, 5)  # the fetch timeout (1.5 s), not the server's 6 s

    def test_fetches_in_flight_are_bounded(self):
        """Anyone may name a slow document: at most FETCH_MAX_PER_HOST (4) fetches run at
        once to one host (and FETCH_MAX_IN_FLIGHT, 32, in all); past them a request is told
        at once to try again, and holds nothing."""
        answers, lock = [], threading.Lock()

        def ask(i):
            st, _, page = self.authorize(f"{self.base}/clients/slow.json?bound={i}")
            with lock:
                answers.append((st, page, time.monotonic()))

        start = time.monotonic()
        threads = [threading.Thread(target=ask, args=(i,)) for i in range(40)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertEqual(len(answers), 40)
        busy = [a for a in answers if "too many documents are being fetched" in a[1]]
        slow = [a for a in answers if "did not answer in time" in a[1]]
        self.assertEqual(len(busy) + len(slow), 40)
        self.assertGreaterEqual(len(busy), 1)
        self.assertTrue(all(st == 400 for st, _, _ in answers))
        self.assertTrue(all(at - start < 1.4 for _, _, at in busy))  # before any fetch ended
        # the refused ones never reached the document server; at most 32 did (fewer may be
        # counted: a fetch can time out before the server has read its request)
        fetched = sum(n for path, n in self.hits().items() if "?bound=" in path)
        self.assertLessEqual(fetched, 40 - len(busy))
        self.assertLessEqual(fetched, 32)

    def authorize_from(self, src, client_id):
        """GET /authorize for client_id from the source address src: (status, page)."""
        q = urllib.parse.urlencode({"response_type": "code", "client_id": client_id,
                                    "redirect_uri": "http://127.0.0.1:4567/callback",
                                    "code_challenge": pkce()[1], "code_challenge_method": "S256",
                                    "state": "s"})
        c = http.client.HTTPConnection("127.0.0.1", self.authd.http_port, timeout=20,
                                       source_address=(src, 0))
        try:
            c.request("GET", "/authorize?" + q)
            r = c.getresponse()
            return r.status, r.read().decode()
        finally:
            c.close()

    def test_a_slow_host_holds_up_no_other_host(self):
        """40 requests from 40 addresses naming never-answering documents on one host hold
        that host's few slots; a client whose document is on another host (localhost, not
        127.0.0.1) still gets its sign-in page. And one address naming slow documents on two
        hosts holds FETCH_MAX_PER_REQUESTER (4) slots, no more."""
        port = urllib.parse.urlsplit(self.base).port
        answers, lock = [], threading.Lock()

        def ask(src, cid):
            st, page = self.authorize_from(src, cid)
            with lock:
                answers.append((src, st, page))

        slow = [threading.Thread(target=ask, args=(f"127.0.0.{10 + i}",
                                                   f"{self.base}/clients/slow.json?host={i}"))
                for i in range(40)]
        for t in slow:
            t.start()
        wait_until(lambda: len(answers) >= 36, 10, "the requests past the host's bound")
        self.assertTrue(all("too many documents are being fetched from this host" in a[2]
                            for a in answers), [a[2][-300:] for a in answers[:1]])
        # the four fetches are still running (1.5 s): another host is fetched meanwhile
        st, page = self.authorize_from("127.0.0.1", f"https://localhost:{port}/clients/localhost.json")
        self.assertEqual(st, 200, page[-500:])
        self.assertIn("Sign in", page)
        for t in slow:
            t.join(20)
        self.assertEqual(len(answers), 40)
        self.assertEqual(sum("did not answer in time" in a[2] for a in answers), 4)
        # one address, slow documents on two hosts (3 each): 4 fetched, 2 refused at once
        answers.clear()
        mine = [threading.Thread(target=ask, args=("127.0.0.2", f"https://{h}:{port}/clients/"
                                                                f"slow.json?mine={i}"))
                for i in range(3) for h in ("127.0.0.1", "localhost")]
        for t in mine:
            t.start()
        for t in mine:
            t.join(20)
        self.assertEqual(len(answers), 6)
        self.assertEqual(sum("being fetched for this address" in a[2] for a in answers), 2,
                         [a[2][-200:] for a in answers])
        self.assertEqual(sum("did not answer in time" in a[2] for a in answers), 4)

    # ---- private_key_jwt ----

    def exchange(self, cid, **auth):
        v, ch = pkce()
        redirect = "https://app.example/cb"
        code, _ = self.signed_in(cid, redirect, (v, ch))
        return self.token({"grant_type": "authorization_code", "code": code, "code_verifier": v,
                           "redirect_uri": redirect, "client_id": cid, **auth})

    def test_private_key_jwt_inline_keys(self):
        cid = self.base + "/clients/pkjwt.json"
        a = self.assertion(cid)
        at = {"client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
              "client_assertion": a}
        st, _, t = self.exchange(cid, **at)
        self.assertEqual(st, 200, t)
        # the same assertion again: refused (jti used once)
        st, _, e = self.exchange(cid, **at)
        self.assertEqual((st, e["error"]), (401, "invalid_client"))
        self.assertIn("used already", e["error_description"])
        # no assertion, another key, another audience
        st, _, e = self.exchange(cid)
        self.assertEqual((st, e["error"]), (401, "invalid_client"))
        other = ec.generate_private_key(ec.SECP256R1())
        for bad in [self.assertion(cid, key=other), self.assertion(cid, aud="https://x.example")]:
            st, _, e = self.exchange(cid, **{**at, "client_assertion": bad})
            self.assertEqual((st, e["error"]), (401, "invalid_client"), e)
        # the same client at /introspect and /revoke, with fresh assertions
        form = {"token": t["access_token"], **at,
                "client_assertion": self.assertion(cid, aud=self.authd.issuer + "/introspect")}
        st, _, b = self.authd.http("/introspect", "POST", urllib.parse.urlencode(form), FORM)
        self.assertEqual(st, 200, b)
        self.assertIs(json.loads(b)["active"], True)
        form = {"token": t["refresh_token"], **at, "client_assertion": self.assertion(cid)}
        st, _, b = self.authd.http("/revoke", "POST", urllib.parse.urlencode(form), FORM)
        self.assertEqual(st, 200, b)

    def test_private_key_jwt_keys_from_jwks_uri(self):
        cid = self.base + "/clients/pkjwt-uri.json"
        at = {"client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
              "client_assertion": self.assertion(cid)}
        st, _, t = self.exchange(cid, **at)
        self.assertEqual(st, 200, t)
        self.assertGreaterEqual(self.hits().get("/keys.json", 0), 1)

    def test_assertions_an_address_may_leave_are_bounded(self):
        """Anyone may publish a document and sign for it, and each assertion leaves its jti in
        Redis until it expires: an address gets PIPE2_AUTH_ASSERTION_RATE_LIMIT of them."""
        a = oauth_authd(self.env, {"PIPE2_AUTH_FETCH_CA_FILE": self.ca,
                                   "PIPE2_AUTH_FETCH_ALLOW_LOOPBACK": "1",
                                   "PIPE2_AUTH_ASSERTION_RATE_LIMIT": "3"})
        cid = self.base + "/clients/pkjwt.json"
        keys = lambda: len(self.env.redis.cli("KEYS", "p2a:aj:*").split())  # noqa: E731
        before = keys()
        answers = []
        for _ in range(5):
            form = {"grant_type": "refresh_token", "refresh_token": "not-one", "client_id": cid,
                    "client_assertion_type":
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    "client_assertion": self.assertion(cid, aud=a.issuer)}
            st, h, b = a.http("/token", "POST", urllib.parse.urlencode(form), FORM)
            answers.append((st, json.loads(b)["error"], h.get("Retry-After")))
        self.assertEqual([x[:2] for x in answers],
                         [(400, "invalid_grant")] * 3 + [(429, "too_many_requests")] * 2)
        self.assertTrue(0 < int(answers[3][2]) <= 300)
        self.assertEqual(keys(), before + 3)  # the refused ones left nothing

    def test_registered_client_with_private_key_jwt(self):
        body = {"client_name": "Signer", "redirect_uris": ["https://app.example/cb"],
                "token_endpoint_auth_method": "private_key_jwt",
                "jwks": {"keys": [jwk_of(self.client_key, "k1")]}}
        st, _, b = self.authd.http("/register", "POST", json.dumps(body), JSONCT)
        self.assertEqual(st, 201, b)
        reg = json.loads(b)
        self.assertNotIn("client_secret", reg)
        cid = reg["client_id"]
        st, _, t = self.exchange(cid, client_assertion_type="urn:ietf:params:oauth:client-"
                                 "assertion-type:jwt-bearer", client_assertion=self.assertion(cid))
        self.assertEqual(st, 200, t)


if __name__ == "__main__":
    unittest.main()
