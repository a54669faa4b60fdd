"""The client credentials grant (SEP-1046) and RevokeClient: pre-registered confidential
clients (RegisterClient with grant_types, keys and resources) get tokens for themselves at
/token, authenticated with client_secret_basic, client_secret_post or private_key_jwt (RFC 7523
2.2). Two pipe2-authd replicas on one redis-server, each in front of an example MCP server
through its forward-auth listener; node/client_credentials.test.mjs drives the SDK v2
providers through them, and the attacks here go at /token directly."""
import base64
import json
import os
import secrets
import subprocess
import time
import unittest
import urllib.parse

import grpc
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from harness import (OTHER_RESOURCE, Authd, StartedTest, basic, example_mcp_server,
                     free_port, jwt_hs256, run_node_suite, wait_until)
from test_cimd import es256, jwk_of
from test_gateway import mcp_call, tool_text
from test_oauth import FORM, PASSWORD, Flow, pkce

HERE = os.path.dirname(os.path.abspath(__file__))
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CC = "client_credentials"


class ClientCredentials(StartedTest):
    @classmethod
    def start(cls):
        env = cls.env
        cls.mcp_ports = [free_port(), free_port()]
        cls.resource = f"http://127.0.0.1:{cls.mcp_ports[0]}/mcp"
        a = Authd(env)
        cls.issuer = f"http://127.0.0.1:{a.http_port}"
        cls.replicas = [a, Authd(env)]
        for r in cls.replicas:
            r.fwd_port = free_port()
            r.issuer = cls.issuer
            r.extra = {"PIPE2_AUTH_ISSUER": cls.issuer,
                       "PIPE2_AUTH_RESOURCE": f"{cls.resource},{OTHER_RESOURCE}",
                       "PIPE2_AUTH_FORWARD_AUTH_LISTEN": f"127.0.0.1:{r.fwd_port}",
                       "PIPE2_AUTH_FORWARD_AUTH_RESOURCES": ",".join(
                           f"127.0.0.1:{p}/mcp={cls.resource}" for p in cls.mcp_ports),
                       "PIPE2_AUTH_CLIENT_CREDENTIALS_RATE_LIMIT": "40",
                       "PIPE2_AUTH_CLIENT_CREDENTIALS_CLIENT_RATE_LIMIT": "60",
                       "PIPE2_AUTH_REMEMBER_CONSENT": "0"}
            env.authds.append(r)
            r.start()
        cls.authd = a
        cls.admin = a.client(env.admin_key)
        cls.mcp = a.client(env.introspect_key)
        # an example MCP server per replica, each asking its replica's forward-auth; both are
        # routed to the one resource
        for port, r in zip(cls.mcp_ports, cls.replicas):
            cls.procs.append(example_mcp_server(
                port, f"http://127.0.0.1:{r.fwd_port}/forward-auth", f"http://127.0.0.1:{r.http_port}"))
        cls.key = ec.generate_private_key(ec.SECP256R1())

    # ---- helpers ----------------------------------------------------------------------------

    def secret_client(self, **kw):
        kw.setdefault("grant_types", [CC])
        kw.setdefault("resources", [self.resource])
        kw.setdefault("scope", "mcp files")
        r = self.admin.register_client([], "agent", method=kw.pop("method", ""), **kw)
        return r.client_id, r.client_secret

    def key_client(self, key=None):
        jwks = json.dumps({"keys": [jwk_of(key or self.key, "k1")]})
        return self.admin.register_client([], "signed agent", method="", grant_types=[CC],
                                          resources=[self.resource], jwks=jwks).client_id

    def token(self, form, headers=None, authd=None):
        h = dict(FORM)
        h.update(headers or {})
        st, hd, b = (authd or self.authd).http("/token", "POST", urllib.parse.urlencode(form), h)
        return st, hd, json.loads(b)

    def assertion(self, cid, key=None, aud=None, jti=None, exp_in=60, header=None):
        now = int(time.time())
        return es256(key or self.key, header or {"alg": "ES256", "kid": "k1", "typ": "JWT"},
                     {"iss": cid, "sub": cid, "aud": aud or self.issuer, "iat": now,
                      "exp": now + exp_in, "jti": jti or secrets.token_urlsafe(12)})

    def refused(self, form, status, error, why, headers=None):
        st, _, b = self.token(form, headers)
        self.assertEqual((st, b.get("error")), (status, error), b)
        self.assertIn(why, b.get("error_description", ""))

    # ---- the SDK v2 providers, through the example MCP server ------------------------------

    def test_sdk_v2_providers_and_revocation_on_both_replicas(self):
        run_node_suite(self, "client_credentials.test.mjs", {
            "P2A_ISSUER": self.issuer, "P2A_RESOURCE": self.resource,
            "P2A_RPC": f"127.0.0.1:{self.authd.port}", "P2A_ADMIN_KEY": self.env.admin_key,
            "P2A_MCP_A": f"http://127.0.0.1:{self.mcp_ports[0]}/mcp",
            "P2A_MCP_B": f"http://127.0.0.1:{self.mcp_ports[1]}/mcp"}, passes=2)

    # ---- the grant --------------------------------------------------------------------------

    def test_a_token_for_the_client_itself(self):
        cid, secret = self.secret_client()
        st, _, t = self.token({"grant_type": CC, "resource": self.resource, "scope": "mcp"},
                              basic(cid, secret))
        self.assertEqual(st, 200, t)
        self.assertEqual((t["token_type"], t["scope"]), ("Bearer", "mcp"))
        self.assertNotIn("refresh_token", t)
        r = self.mcp.introspect(t["access_token"], resource=self.resource)
        self.assertTrue(r.active)
        self.assertEqual((r.kind, r.sub, r.client_id, list(r.aud), r.actor),
                         (3, cid, cid, [self.resource], ""))  # CLIENT_ACCESS_TOKEN
        # only the kind it is: not a person's OAuth token, not a PAT
        self.assertFalse(self.mcp.introspect(t["access_token"], expected_kind=2).active)
        # client_secret_post too; no scope: what it registered; no resource: its only one
        st, _, t = self.token({"grant_type": CC, "client_id": cid, "client_secret": secret})
        self.assertEqual((st, t.get("scope")), (200, "mcp files"), t)
        # the other replica's forward-auth says who it is to the MCP server
        st, _, body = mcp_call(self.mcp_ports[1], t["access_token"])
        self.assertEqual(st, 200, body)
        me = json.loads(tool_text(body))
        self.assertEqual((me["subject"], me["kind"]), (cid, "client"))

    def test_metadata_advertises_the_grant(self):
        st, _, b = self.authd.http("/.well-known/oauth-authorization-server")
        m = json.loads(b)
        self.assertIn(CC, m["grant_types_supported"])
        self.assertIn("ES256", m["token_endpoint_auth_signing_alg_values_supported"])
        self.assertIn("private_key_jwt", m["token_endpoint_auth_methods_supported"])
        # token exchange is served too (test_exchange.py)
        self.assertIn("urn:ietf:params:oauth:grant-type:token-exchange",
                      m["grant_types_supported"])

    def test_refusals_each_say_why(self):
        cid, secret = self.secret_client()
        ok = {"grant_type": CC, "resource": self.resource}
        self.refused(ok, 401, "invalid_client", "client authentication failed",
                     basic(cid, secret + "x"))
        self.refused(ok, 401, "invalid_client", "unknown client", basic("c_" + "A" * 22, secret))
        self.refused(ok, 401, "invalid_client", "client authentication is required")
        self.refused({**ok, "resource": OTHER_RESOURCE}, 400, "invalid_target",
                     "not one this client was registered for", basic(cid, secret))
        self.refused({**ok, "resource": "https://evil.example/mcp"}, 400, "invalid_target",
                     "not a server this issuer serves", basic(cid, secret))
        self.refused({**ok, "scope": "mcp admin"}, 400, "invalid_scope",
                     "beyond what this client was registered for", basic(cid, secret))
        self.refused({**ok, "scope": "mcp\x01"}, 400, "invalid_scope", "malformed",
                     basic(cid, secret))
        # a client of the code grant (confidential, registered by an administrator)
        code_cid = self.admin.register_client(["https://app.example/cb"], "web app",
                                              method="client_secret_basic")
        self.refused(ok, 400, "unauthorized_client", "did not register this grant_type",
                     basic(code_cid.client_id, code_cid.client_secret))
        # anyone's registration (/register) asking for the grant does not get it
        st, _, b = self.authd.http("/register", "POST", json.dumps(
            {"redirect_uris": ["https://a.example/cb"], "grant_types": [CC, "authorization_code"],
             "token_endpoint_auth_method": "client_secret_basic",
             "resources": [self.resource]}), {"Content-Type": "application/json"})
        self.assertEqual(st, 201, b)
        reg = json.loads(b)
        self.assertEqual(reg["grant_types"], ["authorization_code"])
        self.refused(ok, 400, "unauthorized_client", "did not register this grant_type",
                     basic(reg["client_id"], reg["client_secret"]))

    def test_private_key_jwt_attacks(self):
        cid = self.key_client()
        ok = {"grant_type": CC, "resource": self.resource, "client_assertion_type": ASSERTION_TYPE}
        st, _, t = self.token({**ok, "client_assertion": self.assertion(cid)})
        self.assertEqual(st, 200, t)
        self.assertEqual(self.mcp.introspect(t["access_token"]).sub, cid)
        # the token endpoint as the audience is RFC 7523's other spelling
        st, _, t = self.token({**ok, "client_assertion": self.assertion(
            cid, aud=self.issuer + "/token")})
        self.assertEqual(st, 200, t)
        replay = self.assertion(cid)
        self.assertEqual(self.token({**ok, "client_assertion": replay})[0], 200)
        other = ec.generate_private_key(ec.SECP256R1())
        pub_pem = self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        now = int(time.time())
        body = {"iss": cid, "sub": cid, "aud": self.issuer, "iat": now, "exp": now + 60,
                "jti": secrets.token_urlsafe(12)}
        b64 = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()
        cases = [
            (self.assertion(cid, aud="https://other.example/"), "aud"),
            (self.assertion(cid, exp_in=-120), "expired"),
            (self.assertion(cid, exp_in=3600), "lives too long"),
            (replay, "used already"),
            (self.assertion(cid, key=other), ""),
            (b64({"alg": "none", "typ": "JWT"}) + "." + b64(body) + ".", ""),
            (jwt_hs256(pub_pem, {"alg": "HS256", "typ": "JWT"}, body), ""),
            (self.assertion("c_" + "B" * 22), ""),  # another client's name, our key
        ]
        for assertion, why in cases:
            st, _, b = self.token({**ok, "client_assertion": assertion})
            self.assertEqual((st, b.get("error")), (401, "invalid_client"), (why, b))
            self.assertIn(why, b.get("error_description", ""))
        # a secret is not a key: a secret client cannot sign, a key client has no secret
        sec_cid, secret = self.secret_client()
        self.refused({**ok, "client_assertion": self.assertion(sec_cid)}, 401, "invalid_client",
                     "does not use private_key_jwt")
        self.refused({"grant_type": CC}, 401, "invalid_client", "private_key_jwt",
                     basic(cid, "whatever"))

    def test_per_client_bounds(self):
        cid, secret = self.secret_client()
        got = [self.token({"grant_type": CC}, basic(cid, secret))[0] for _ in range(45)]
        self.assertEqual(got[:40], [200] * 40)
        st, h, b = self.token({"grant_type": CC}, basic(cid, secret))
        self.assertEqual((st, b["error"]), (429, "too_many_requests"), b)
        self.assertIn("this client", b["error_description"])
        self.assertGreater(int(h["Retry-After"]), 0)
        # another client is not held up by this one
        cid2, secret2 = self.secret_client()
        self.assertEqual(self.token({"grant_type": CC}, basic(cid2, secret2))[0], 200)

    # ---- RegisterClient, RevokeClient -------------------------------------------------------

    def test_register_client_checks_each_field(self):
        big = json.dumps({"keys": [jwk_of(self.key, "k%d" % i) for i in range(200)]})
        cases = [
            (dict(grant_types=["implicit"]), "grant_types[0] is not a grant type"),
            (dict(grant_types=[CC]), "needs resources"),
            (dict(grant_types=[CC], resources=["https://evil.example/"]),
             "resources[0] is not a resource"),
            (dict(grant_types=[CC], resources=[self.resource], method="none"),
             "needs a confidential client"),
            (dict(grant_types=[CC], resources=[self.resource], jwks="not json"),
             "jwks must be a JWK Set"),
            (dict(grant_types=[CC], resources=[self.resource], jwks=big), "at most 16384"),
            (dict(grant_types=[CC], resources=[self.resource], jwks='{"keys":[]}'), "jwks:"),
            (dict(grant_types=[CC], resources=[self.resource], jwks_uri="http://k.example/"),
             "jwks_uri must be an https URL"),
            (dict(grant_types=["authorization_code"]), "redirect_uris"),
        ]
        for kw, why in cases:
            method = kw.pop("method", "")
            with self.assertRaises(grpc.RpcError) as e:
                self.admin.register_client([], "x", method=method, **kw)
            self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT, kw)
            self.assertIn(why, e.exception.details())

    def test_revoke_client(self):
        for cid, code in [("nope", grpc.StatusCode.INVALID_ARGUMENT),
                          ("c_" + "Z" * 22, grpc.StatusCode.NOT_FOUND)]:
            with self.assertRaises(grpc.RpcError) as e:
                self.admin.revoke_client(cid)
            self.assertEqual(e.exception.code(), code)
        cid, secret = self.secret_client()
        with self.assertRaises(grpc.RpcError) as e:  # an MCP server's key may not
            self.mcp.revoke_client(cid)
        self.assertEqual(e.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
        st, _, t = self.token({"grant_type": CC}, basic(cid, secret))
        self.assertEqual(st, 200)
        self.admin.revoke_client(cid)
        self.admin.revoke_client(cid)  # again: harmless
        for r in self.replicas:
            c = r.client(self.env.introspect_key)
            wait_until(lambda: c.introspect(t["access_token"]).reason == 7, 5,
                       "the client's token REVOKED on every replica")
            c.close()
        self.refused({"grant_type": CC}, 401, "invalid_client", "this client was revoked",
                     basic(cid, secret))

    def test_p2a_registers_and_revokes_a_client(self):
        def p2a(*args):
            r = subprocess.run([os.path.join(HERE, "..", "..", "scripts", "p2a"), *args],
                               capture_output=True, text=True, timeout=30,
                               env={**os.environ, "P2A_ADDR": f"127.0.0.1:{self.authd.port}",
                                    "P2A_ADMIN_KEY": self.env.admin_key})
            self.assertEqual(r.returncode, 0, r.stderr)
            return r.stdout
        jwks = os.path.join(self.env.dir, "agent-jwks.json")
        with open(jwks, "w") as f:
            json.dump({"keys": [jwk_of(self.key, "k1")]}, f)
        reg = json.loads(p2a("register-client", "--name", "cli agent", "--grant-type", CC,
                             "--resource", self.resource, "--scope", "mcp", "--jwks-file", jwks))
        self.assertEqual((reg["grant_types"], reg["token_endpoint_auth_method"], reg["resources"]),
                         ([CC], "private_key_jwt", [self.resource]))
        cid = reg["client_id"]
        form = {"grant_type": CC, "client_assertion_type": ASSERTION_TYPE}
        self.assertEqual(self.token({**form, "client_assertion": self.assertion(cid)})[0], 200)
        self.assertIn("revoked", p2a("revoke-client", cid))
        self.refused({**form, "client_assertion": self.assertion(cid)}, 401, "invalid_client",
                     "this client was revoked")

    def test_revoke_client_ends_the_tokens_people_gave_it(self):
        """A confidential web client of the code grant: a person's tokens issued to it stop
        with it, refresh included."""
        user = "cora"
        self.admin.create_user(user, PASSWORD)
        reg = self.admin.register_client(["https://app.example/cb"], "web app",
                                         method="client_secret_basic", scope="mcp offline_access")
        v, c = pkce()
        code = Flow(self.authd, user).code(reg.client_id, "https://app.example/cb", c,
                                           scope="mcp offline_access", resource=self.resource)
        st, _, t = self.token({"grant_type": "authorization_code", "code": code,
                               "code_verifier": v, "redirect_uri": "https://app.example/cb"},
                              basic(reg.client_id, reg.client_secret))
        self.assertEqual(st, 200, t)
        self.assertTrue(self.mcp.introspect(t["access_token"]).active)
        self.admin.revoke_client(reg.client_id)
        wait_until(lambda: self.mcp.introspect(t["access_token"]).reason == 7, 5,
                   "the person's token given to the client REVOKED")
        self.refused({"grant_type": "refresh_token", "refresh_token": t["refresh_token"]}, 401,
                     "invalid_client", "this client was revoked",
                     basic(reg.client_id, reg.client_secret))


if __name__ == "__main__":
    unittest.main()
