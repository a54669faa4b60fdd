"""The RPC contract through a stock gRPC client (python3-grpcio), against real processes."""
import json
import signal
import time
import unittest

import grpc

from harness import (H2, RESOURCE, ServiceTest, b64url, claims, grpc_body, grpc_status,
                     jwt_es256, jwt_hs256, pb, public_pem, wait_until)

SVC = "/pipe2.auth.v1.TokenService/"
R = pb.InactiveReason


class GrpcPython(ServiceTest):
    AUTHD_ENV = {"PIPE2_AUTH_LAST_USED_FLUSH_INTERVAL": "1",
                 "PIPE2_AUTH_REDIS_TIMEOUT_MS": "1500"}

    def code_of(self, fn, *a, **kw):
        with self.assertRaises(grpc.RpcError) as cm:
            fn(*a, **kw)
        return cm.exception.code(), cm.exception.details()

    # ---- the whole life of a PAT ----------------------------------------------------------

    def test_issue_introspect_list_revoke(self):
        issued = self.admin.issue("alice", "laptop", scope="mcp:read mcp:write")
        tok, info = issued.token, issued.info
        self.assertEqual(info.user_id, "alice")
        self.assertEqual(info.name, "laptop")
        self.assertEqual(len(info.jti), 22)
        self.assertEqual(info.expires_at - info.created_at, 365 * 86400)
        self.assertEqual(info.revoked_at, 0)

        r = self.mcp.introspect(tok, resource=RESOURCE)
        self.assertTrue(r.active)
        self.assertEqual(r.kind, pb.PERSONAL_ACCESS_TOKEN)
        self.assertEqual((r.sub, r.jti, r.name, r.exp, r.iat, r.scope),
                         ("alice", info.jti, "laptop", info.expires_at, info.created_at,
                          "mcp:read mcp:write"))
        self.assertEqual(list(r.aud), [RESOURCE])
        self.assertEqual(r.www_authenticate, "")

        listed = self.admin.list("alice").tokens
        self.assertIn(info.jti, [t.jti for t in listed])

        rv = self.admin.revoke(info.jti)
        self.assertFalse(rv.already_revoked)
        self.assertGreater(rv.revoked_at, 0)
        again = self.admin.revoke(info.jti)
        self.assertTrue(again.already_revoked)
        self.assertEqual(again.revoked_at, rv.revoked_at)

        r = self.mcp.introspect(tok)
        self.assertFalse(r.active)
        self.assertEqual(r.reason, R.Value("REVOKED"))
        self.assertIn('error="invalid_token"', r.www_authenticate)
        self.assertIn('error_description="Token revoked"', r.www_authenticate)
        self.assertIn('resource_metadata="http://127.0.0.1:3000/.well-known/'
                      'oauth-protected-resource/mcp"', r.www_authenticate)
        self.assertNotIn(info.jti, [t.jti for t in self.admin.list("alice").tokens])
        revoked = [t for t in self.admin.list("alice", include_revoked=True).tokens
                   if t.jti == info.jti]
        self.assertEqual(revoked[0].revoked_at, rv.revoked_at)

    def test_list_is_newest_first_and_per_user(self):
        jtis = [self.admin.issue("bob", f"token {i}").info.jti for i in range(3)]
        self.admin.issue("carol", "other user")
        listed = [t.jti for t in self.admin.list("bob").tokens]
        self.assertEqual(listed, list(reversed(jtis)))

    def test_revoke_checks_owner(self):
        info = self.admin.issue("dave", "mine").info
        code, msg = self.code_of(self.admin.revoke, info.jti, user_id="eve")
        self.assertEqual(code, grpc.StatusCode.NOT_FOUND)
        self.assertTrue(self.mcp.introspect(self.admin.issue("dave", "x").token).active)
        code, _ = self.code_of(self.admin.revoke, "NoSuchJtiAtAll123")
        self.assertEqual(code, grpc.StatusCode.NOT_FOUND)
        self.assertFalse(self.admin.revoke(info.jti, user_id="dave").already_revoked)

    def test_shorter_lifetime(self):
        info = self.admin.issue("frank", "short", expires_in=60).info
        self.assertEqual(info.expires_at - info.created_at, 60)

    # ---- tokens that must be refused, each with its reason --------------------------------

    def test_bad_tokens_get_their_reason(self):
        key = self.env.key_path
        kid = "it-key"
        good = {"alg": "ES256", "kid": kid, "typ": "JWT"}
        now = int(time.time())
        valid = jwt_es256(key, good, claims())
        h, p, s = valid.split(".")
        other_payload = jwt_es256(key, good, claims(sub="admin")).split(".")[1]
        revoked = self.admin.issue("gina", "to revoke")
        self.admin.revoke(revoked.info.jti)
        pat = self.admin.issue("gina", "pat").token
        oauth = jwt_es256(key, good, claims(token_use="access", client_id="client-1"))
        cases = [
            ("empty", "", "MISSING"),
            ("garbage", "garbage", "MALFORMED"),
            ("100 KB", "a" * 50000 + "." + "b" * 50000 + ".c", "MALFORMED"),
            ("two segments", f"{h}.{p}", "MALFORMED"),
            ("four segments", f"{h}.{p}.{s}.{s}", "MALFORMED"),
            ("bad base64", f"{h}.{p[:-2]}!!.{s}", "MALFORMED"),
            ("alg none", f"{b64url(json.dumps({'alg': 'none', 'kid': kid}).encode())}.{p}.",
             "BAD_SIGNATURE"),
            ("HS256 keyed with the public PEM",
             jwt_hs256(public_pem(key), {"alg": "HS256", "kid": kid, "typ": "JWT"}, claims()),
             "BAD_SIGNATURE"),
            ("unknown kid", jwt_es256(key, {"alg": "ES256", "kid": "nope"}, claims()),
             "UNKNOWN_KEY"),
            ("tampered payload", f"{h}.{other_payload}.{s}", "BAD_SIGNATURE"),
            ("expired by one second",
             jwt_es256(key, good, claims(iat=now - 100, exp=now - 1)), "EXPIRED"),
            ("nbf in the future", jwt_es256(key, good, claims(nbf=now + 3600)), "NOT_YET_VALID"),
            ("wrong iss", jwt_es256(key, good, claims(iss="http://evil.test")), "WRONG_ISSUER"),
            ("revoked", revoked.token, "REVOKED"),
        ]
        for name, token, reason in cases:
            with self.subTest(name):
                r = self.mcp.introspect(token)
                self.assertFalse(r.active, name)
                self.assertEqual(R.Name(r.reason), reason, name)
                self.assertTrue(r.www_authenticate.startswith("Bearer "), name)
        # the right token for the wrong resource, and each kind where the other is expected
        r = self.mcp.introspect(valid, resource="http://127.0.0.1:3000/other")
        self.assertEqual(R.Name(r.reason), "WRONG_AUDIENCE")
        r = self.mcp.introspect(pat, expected_kind=pb.OAUTH_ACCESS_TOKEN)
        self.assertEqual(R.Name(r.reason), "WRONG_AUDIENCE")
        r = self.mcp.introspect(oauth, expected_kind=pb.PERSONAL_ACCESS_TOKEN)
        self.assertEqual(R.Name(r.reason), "WRONG_AUDIENCE")
        self.assertTrue(self.mcp.introspect(oauth, expected_kind=pb.OAUTH_ACCESS_TOKEN).active)
        self.assertTrue(self.mcp.introspect(valid).active)
        # a missing token's header names the metadata and no error (RFC 6750 3.1)
        r = self.mcp.introspect("")
        self.assertEqual(r.www_authenticate, 'Bearer resource_metadata="http://127.0.0.1:3000/'
                                             '.well-known/oauth-protected-resource/mcp", '
                                             'scope="mcp"')
        r = self.mcp.introspect(jwt_es256(key, good, claims(iat=now - 100, exp=now - 1)))
        self.assertIn('error_description="Token expired"', r.www_authenticate)

    # ---- every status code ---------------------------------------------------------------

    # ---- scopes: defaults and step-up (MCP 2026-07-28, SEP-2350) ----------------------------

    def test_default_pat_scope_is_the_resources(self):
        t = self.admin.issue("u_default", "no scope asked").token
        r = self.mcp.introspect(t, resource=RESOURCE, required_scope="mcp")
        self.assertTrue(r.active, r)
        self.assertEqual(r.scope, "mcp")  # what the resource metadata and the 401 name

    def test_step_up_names_every_scope_needed(self):
        t = self.admin.issue("u_step", "step", scope="mcp files").token
        self.assertTrue(self.mcp.introspect(t, resource=RESOURCE, required_scope="files mcp").active)
        r = self.mcp.introspect(t, resource=RESOURCE, required_scope="admin mcp")
        self.assertFalse(r.active)
        self.assertEqual(r.reason, R.INSUFFICIENT_SCOPE)
        self.assertEqual(r.sub, "")  # nothing about the token beyond the reason
        prm = "http://127.0.0.1:3000/.well-known/oauth-protected-resource/mcp"
        self.assertEqual(r.www_authenticate,
                         'Bearer error="insufficient_scope", error_description="Token lacks a '
                         f'scope this request needs", resource_metadata="{prm}", '
                         'scope="mcp files admin"')
        # a bad token says why it is bad, whatever the call needs
        self.assertEqual(self.mcp.introspect("x.y.z", required_scope="admin").reason, R.MALFORMED)
        code, msg = self.code_of(self.mcp.introspect, t, required_scope="mcp  files")
        self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("required_scope", msg)

    def test_key_bound_to_its_resource(self):
        t = self.admin.issue("u_bound", "bound").token
        other = self.authd.client(self.env.other_key)
        try:
            for resource in ["", RESOURCE]:  # named or not, the token is not for this caller
                r = other.introspect(t, resource=resource)
                self.assertFalse(r.active)
                self.assertEqual(r.reason, R.WRONG_AUDIENCE)
            r = other.introspect(t)
            self.assertIn(f'resource_metadata="https://other.example.test/.well-known/'
                          f'oauth-protected-resource/mcp"', r.www_authenticate)
        finally:
            other.close()
        self.assertTrue(self.mcp.introspect(t).active)  # an unbound key still learns

    def test_unauthenticated(self):
        for key in ["", "not-a-key"]:
            c = self.authd.client(key)
            try:
                code, msg = self.code_of(c.introspect, "x", key=key)
            finally:
                c.close()
            self.assertEqual(code, grpc.StatusCode.UNAUTHENTICATED)
            self.assertIn("service key", msg)

    def test_permission_denied(self):
        code, msg = self.code_of(self.mcp.issue, "alice", "nope")
        self.assertEqual(code, grpc.StatusCode.PERMISSION_DENIED)
        self.assertIn("introspect", msg)
        for m, req in [("ListTokens", pb.ListTokensRequest(user_id="a")),
                       ("RevokeToken", pb.RevokeTokenRequest(jti="abc"))]:
            self.assertEqual(self.code_of(self.mcp.call, m, req)[0],
                             grpc.StatusCode.PERMISSION_DENIED)

    def test_unimplemented(self):
        code, _ = self.code_of(self.admin.raw, SVC + "DeleteEverything", b"")
        self.assertEqual(code, grpc.StatusCode.UNIMPLEMENTED)
        code, msg = self.code_of(self.mcp.introspect, "x" * 200,
                                 compression=grpc.Compression.Gzip)
        self.assertEqual(code, grpc.StatusCode.UNIMPLEMENTED)
        self.assertIn("compressed", msg)

    def test_invalid_argument_names_the_field(self):
        cases = [
            (dict(user_id="", name="n"), "user_id"),
            (dict(user_id="u", name=""), "name"),
            (dict(user_id="u", name="x" * 101), "name"),
            (dict(user_id="u", name="n", expires_in=365 * 86400 + 1), "expires_in_seconds"),
            (dict(user_id="u", name="n", expires_in=-5), "expires_in_seconds"),
            (dict(user_id="u", name="n", scope="bad  scope"), "scope"),
        ]
        for kw, field in cases:
            with self.subTest(field=field, kw=kw):
                code, msg = self.code_of(self.admin.issue, **kw)
                self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT)
                self.assertIn(field, msg)
        # undecodable protobuf, and a name that is not UTF-8 (field 2, 1 byte: 0xff)
        code, msg = self.code_of(self.admin.raw, SVC + "IssueToken", b"\xff\xff\xff\xff")
        self.assertEqual((code, msg), (grpc.StatusCode.INVALID_ARGUMENT,
                                       "malformed IssueTokenRequest"))
        code, msg = self.code_of(self.admin.raw, SVC + "IssueToken", b"\x0a\x01u\x12\x01\xff")
        self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("UTF-8", msg)
        code, msg = self.code_of(self.admin.revoke, "")
        self.assertEqual((code, msg), (grpc.StatusCode.INVALID_ARGUMENT, "jti is required"))

    def test_resource_exhausted_over_size_limit(self):
        code, msg = self.code_of(self.mcp.introspect, "t" * (300 * 1024))
        self.assertEqual(code, grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.assertIn("262144", msg)
        # a token under the limit is merely malformed
        r = self.mcp.introspect("t" * (200 * 1024))
        self.assertEqual(R.Name(r.reason), "MALFORMED")

    def test_health(self):
        self.assertEqual(self.mcp.health().status, 1)
        self.assertEqual(self.mcp.health("pipe2.auth.v1.TokenService").status, 1)
        with self.assertRaises(grpc.RpcError) as cm:
            self.mcp.health("no.such.Service")
        self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)

    def test_deadline_and_unavailable_when_redis_stops(self):
        """SIGSTOP redis: a call with grpc-timeout gets DEADLINE_EXCEEDED from the server
        (the raw client sets no deadline of its own); one without gets UNAVAILABLE once the
        Redis timeout passes; Introspect keeps answering; all recover on SIGCONT."""
        tok = self.admin.issue("hank", "before the stop").token
        self.env.redis.signal(signal.SIGSTOP)
        try:
            h2 = H2(self.authd.port)
            req = pb.IssueTokenRequest(user_id="hank", name="n").SerializeToString()
            t0 = time.monotonic()
            sid = h2.call(SVC + "IssueToken", grpc_body(req), key=self.env.admin_key,
                          extra=[("grpc-timeout", "300m")])
            st = h2.wait(sid, timeout=5)
            took = time.monotonic() - t0
            self.assertEqual(grpc_status(st)[0], 4)  # DEADLINE_EXCEEDED
            self.assertGreaterEqual(took, 0.29)
            self.assertLess(took, 1.4)  # before the Redis timeout could have answered
            h2.close()
            self.assertTrue(self.mcp.introspect(tok).active)  # never touches Redis
            code, msg = self.code_of(self.admin.issue, "hank", "during the stop")
            self.assertEqual(code, grpc.StatusCode.UNAVAILABLE)
            self.assertIn("no token was issued", msg)
        finally:
            self.env.redis.signal(signal.SIGCONT)
        wait_until(lambda: self.admin.issue("hank", "after").token, 10,
                   "IssueToken to work again after SIGCONT")

    # ---- last used --------------------------------------------------------------------------

    def test_last_used_is_flushed_in_batches(self):
        tokens = [self.admin.issue("ivy", f"t{i}") for i in range(3)]
        for t in self.admin.list("ivy").tokens:
            self.assertEqual(t.last_used_at, 0)
        # the audit trail's writes of the calls above are done first (a tick a second): from
        # here on only Introspect runs, which writes no event
        self.authd.wait_audit_settled()
        # count Redis commands from here; the bound below allows a flush at any moment
        self.env.redis.cli("CONFIG", "RESETSTAT")
        t0 = time.monotonic()
        for _ in range(100):
            for t in tokens:
                self.assertTrue(self.mcp.introspect(t.token).active)
        keys = [f"p2a:{{t}}:pat:{t.info.jti}" for t in tokens]
        wait_until(lambda: all(self.env.redis.cli("HGET", k, "last_used_at") not in ("", "0")
                               for k in keys), 10, "last_used_at to reach Redis")
        elapsed = time.monotonic() - t0
        stats = self.env.redis.cli("INFO", "commandstats")
        evals = 0
        for line in stats.splitlines():
            if line.startswith("cmdstat_eval:"):
                evals = int(line.split("calls=")[1].split(",")[0])
        # 300 uses of 3 tokens; one EVAL per 1-second flush interval at most
        self.assertGreaterEqual(evals, 1)
        self.assertLessEqual(evals, int(elapsed) + 2)
        listed = {t.jti: t for t in self.admin.list("ivy").tokens}
        for t in tokens:
            self.assertGreaterEqual(listed[t.info.jti].last_used_at, t.info.created_at)


if __name__ == "__main__":
    unittest.main()
