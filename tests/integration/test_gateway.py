"""MCP servers with no auth code, behind a gateway: Debian's real nginx, started here on
loopback with deploy/nginx/mcp-single-origin.conf, in front of the example MCP server
(examples/mcp-server, the official TypeScript SDK) and pipe2-authd's facade on one origin;
and pipe2-authd's forward-auth listener asked directly, the way Traefik, Caddy and Envoy's
HTTP ext_authz ask it."""
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import unittest

from harness import (EXAMPLE_MCP, Authd, Env, chromium_for, claims, example_mcp_server,
                     free_port, jwt_es256, nginx_conf, port_open, run_node_suite, stop_process,
                     wait_until)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CONF = os.path.join(ROOT, "deploy", "nginx", "mcp-single-origin.conf")
PASSWORD = "correct horse battery staple"


def mcp_call(port, token=None, tool="whoami", arguments=None, extra=None, path="/mcp"):
    """One tools/call through the origin; (status, headers, text)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    h = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    if token:
        h["Authorization"] = f"Bearer {token}"
    h.update(extra or {})
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": tool, "arguments": arguments or {}}}
    c.request("POST", path, json.dumps(body), h)
    r = c.getresponse()
    names = [k.lower() for k, _ in r.getheaders()]
    assert names.count("www-authenticate") <= 1, r.getheaders()  # one challenge, never two
    out = (r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode())
    c.close()
    return out


def tool_text(sse):
    """The first text content of a tools/call answer sent as server-sent events."""
    for line in sse.splitlines():
        if line.startswith("data: "):
            return json.loads(line[6:])["result"]["content"][0]["text"]
    raise AssertionError(f"no data in {sse!r}")


class Gateway(unittest.TestCase):
    """One origin on nginx: the MCP endpoint behind auth_request, the facade beside it."""

    @classmethod
    def setUpClass(cls):
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        if not os.path.exists(nginx) or not os.path.isdir(os.path.join(EXAMPLE_MCP, "node_modules")):
            raise AssertionError("nginx or examples/mcp-server/node_modules is missing: run "
                                 "scripts/test.sh (it installs both)")
        cls.env = Env()
        cls.procs = []
        try:
            cls.start(nginx)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def start(cls, nginx):
        env = cls.env
        cls.origin_port, cls.fwd_port, cls.mcp_port = free_port(), free_port(), free_port()
        cls.origin = f"http://127.0.0.1:{cls.origin_port}"
        a = Authd(env)
        # two MCP servers behind one gateway (/mcp and /other), and a second host name for /mcp
        cls.other_host = f"other.test:{cls.origin_port}"
        a.extra = {"PIPE2_AUTH_ISSUER": cls.origin,
                   "PIPE2_AUTH_RESOURCE": f"{cls.origin}/mcp,{cls.origin}/other,"
                                          f"http://{cls.other_host}/mcp",
                   "PIPE2_AUTH_FORWARD_AUTH_LISTEN": f"127.0.0.1:{cls.fwd_port}",
                   "PIPE2_AUTH_FORWARD_AUTH_ALLOW_OPTIONS": "1",
                   "PIPE2_AUTH_TRUSTED_PROXIES": "127.0.0.1/32"}
        env.authds.append(a)
        a.start()
        cls.authd = a
        cls.admin = a.client(env.admin_key)
        cls.user_id = cls.admin.create_user("nia", PASSWORD).user_id
        # the example MCP server, behind the gateway: it trusts the X-Auth-* headers
        cls.example = example_mcp_server(cls.mcp_port)
        cls.procs.append(cls.example)
        # nginx with the deploy configuration, its four addresses replaced
        ngdir = os.path.join(env.dir, "nginx")
        os.makedirs(ngdir)
        with open(CONF) as f:
            site = (f.read().replace("127.0.0.1:3000", f"127.0.0.1:{cls.origin_port}")
                    .replace("127.0.0.1:8080", f"127.0.0.1:{a.http_port}")
                    .replace("127.0.0.1:8081", f"127.0.0.1:{cls.fwd_port}")
                    .replace("127.0.0.1:3001", f"127.0.0.1:{cls.mcp_port}"))
        # a second MCP server's location, the shipped /mcp one under another path
        block = re.search(r"\n    location /mcp \{.*?\n    \}\n", site, re.S).group(0)
        site = site.replace(block, block + block.replace("location /mcp {", "location /other {"))
        with open(os.path.join(ngdir, "site.conf"), "w") as f:
            f.write(site)
        main = nginx_conf(ngdir, f"    include {ngdir}/site.conf;\n")
        cls.nginx_dir = ngdir
        cls.nginx = subprocess.Popen([nginx, "-c", main, "-p", ngdir], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        cls.procs.append(cls.nginx)
        wait_until(lambda: cls.nginx.poll() is None and port_open(cls.origin_port), 10,
                   "nginx to listen")

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "admin", None):
            cls.admin.close()
        for p in reversed(cls.procs):
            stop_process(p)
        cls.env.close()

    def get(self, path, headers=None):
        c = http.client.HTTPConnection("127.0.0.1", self.origin_port, timeout=10)
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        out = (r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode())
        c.close()
        return out

    # ---- the origin's documents --------------------------------------------------------------

    def test_metadata_on_the_mcp_origin(self):
        st, _, body = self.get("/.well-known/oauth-authorization-server")
        self.assertEqual(st, 200)
        meta = json.loads(body)
        self.assertEqual(meta["issuer"], self.origin)
        for k in ("authorization_endpoint", "token_endpoint", "registration_endpoint"):
            self.assertTrue(meta[k].startswith(self.origin + "/"), meta[k])
        st, _, body = self.get("/.well-known/oauth-protected-resource/mcp")
        self.assertEqual(st, 200)
        prm = json.loads(body)
        self.assertEqual(prm["resource"], self.origin + "/mcp")
        self.assertEqual(prm["authorization_servers"], [self.origin])

    # ---- tokens through nginx ---------------------------------------------------------------

    def test_pat_reaches_the_tool_and_headers_cannot_be_forged(self):
        pat = self.admin.issue("nia", "through nginx", scope="mcp")
        st, _, body = mcp_call(self.origin_port, pat.token,
                               extra={"X-Auth-Subject": "mallory", "X-Auth-Scope": "admin",
                                      "X-Auth-Actor": "mallory"})
        self.assertEqual(st, 200, body)
        who = json.loads(tool_text(body))
        self.assertEqual(who["subject"], "nia")  # nginx set it from pipe2-auth, not the client
        self.assertEqual(who["kind"], "pat")
        self.assertEqual(who["token_id"], pat.info.jti)
        self.assertEqual(who["scope"], "mcp")
        self.assertEqual(who["expires"], pat.info.expires_at)
        self.assertEqual(who["actor"], "")  # a token not exchanged: no actor, whatever was sent
        st, _, body = mcp_call(self.origin_port, pat.token, tool="echo",
                               arguments={"text": "héllo"})
        self.assertEqual((st, tool_text(body)), (200, "héllo"))

    def test_no_token_gets_the_challenge_for_a_browser(self):
        st, h, body = mcp_call(self.origin_port, extra={"Origin": "https://app.example"})
        self.assertEqual(st, 401)
        self.assertEqual(h["www-authenticate"],
                         f'Bearer resource_metadata="{self.origin}/.well-known/'
                         f'oauth-protected-resource/mcp", scope="mcp"')
        self.assertIn("WWW-Authenticate", h["access-control-expose-headers"])
        self.assertEqual(h["access-control-allow-origin"], "*")
        self.assertEqual(json.loads(body)["hint"],
                         "send the token in the Authorization header: Authorization: Bearer "
                         "<token>")
        # a preflight carries no token: it reaches the MCP server, which answers it
        c = http.client.HTTPConnection("127.0.0.1", self.origin_port, timeout=10)
        c.request("OPTIONS", "/mcp", headers={"Origin": "https://app.example",
                                              "Access-Control-Request-Method": "POST"})
        r = c.getresponse()
        r.read()
        c.close()
        self.assertEqual(r.status, 204)
        self.assertIn("Authorization", r.getheader("Access-Control-Allow-Headers"))

    def test_expired_and_revoked(self):
        now = int(time.time())
        expired = jwt_es256(self.env.key_path, {"alg": "ES256", "kid": "it-key", "typ": "JWT"},
                            claims(sub="nia", aud=self.origin + "/mcp", iss=self.origin,
                                   iat=now - 100, exp=now - 1))
        st, h, body = mcp_call(self.origin_port, expired)
        self.assertEqual(st, 401)
        self.assertIn('error_description="Token expired"', h["www-authenticate"])
        self.assertEqual(json.loads(body)["error_description"], "Token expired")
        pat = self.admin.issue("nia", "to revoke", scope="mcp")
        self.assertEqual(mcp_call(self.origin_port, pat.token)[0], 200)
        self.admin.revoke(pat.info.jti)
        st, h, body = wait_until(
            lambda: (lambda r: r if r[0] == 401 else None)(mcp_call(self.origin_port, pat.token)),
            30, "the revocation to reach the gateway")
        self.assertIn('error_description="Token revoked"', h["www-authenticate"])
        self.assertIn("revoked", json.loads(body)["hint"])

    # ---- what forward-auth judges is what nginx routed (issue 22) ---------------------------

    def test_no_token_with_client_method_and_uri_headers_never_reaches_the_server(self):
        tricks = [{"X-Forwarded-Method": "OPTIONS"}, {"x-forwarded-method": "OPTIONS"},
                  {"X-Original-Method": "OPTIONS"}, {"X-FORWARDED-METHOD": "OPTIONS"},
                  {"X-Forwarded-Uri": "/.well-known/x"}, {"X-Original-URI": "/"},
                  {"X-Original-URL": "http://127.0.0.1/"}, {"X-Forwarded-Host": "evil.test"},
                  {"X-Forwarded-Method": "OPTIONS", "X-Forwarded-Uri": "/mcp"}]
        for extra in tricks:
            with self.subTest(extra=extra):
                st, _, body = mcp_call(self.origin_port, extra=extra)
                self.assertEqual(st, 401, body)  # nginx cleared them: judged as what it is
        # the same name twice, in one request (http.client would merge a dict: raw bytes)
        for name in (b"X-Forwarded-Method", b"X-Original-Method", b"x-forwarded-uri"):
            with self.subTest(repeated=name):
                got = raw(self.origin_port,
                          b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n" +
                          name + b": OPTIONS\r\n" + name + b": OPTIONS\r\n"
                          b"Connection: close\r\n\r\n{}")
                self.assertTrue(got.startswith(b"HTTP/1.1 401 "), got[:200])
        # a decoded CR LF in the path cannot split the subrequest's headers
        got = raw(self.origin_port, b"POST /mcp%0D%0AX-Forwarded-Method:%20OPTIONS HTTP/1.1\r\n"
                  b"Host: 127.0.0.1\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
        self.assertRegex(got[:20], rb"^HTTP/1\.1 (400|401) ")

    def test_a_token_for_mcp_is_refused_at_other(self):
        one = jwt_es256(self.env.key_path, {"alg": "ES256", "kid": "it-key", "typ": "JWT"},
                        claims(sub="nia", aud=[self.origin + "/mcp"], iss=self.origin))
        self.assertEqual(mcp_call(self.origin_port, one)[0], 200)  # it is good at /mcp
        st, h, body = mcp_call(self.origin_port, one, path="/other")
        self.assertEqual(st, 401, body)
        self.assertIn("oauth-protected-resource/other", h["www-authenticate"])
        for extra in ({"X-Forwarded-Uri": "/mcp"}, {"X-Original-URI": "/mcp"},
                      {"X-Original-URL": f"{self.origin}/mcp"}):
            with self.subTest(extra=extra):
                st, h, body = mcp_call(self.origin_port, one, path="/other", extra=extra)
                self.assertEqual(st, 401, body)
                self.assertIn("oauth-protected-resource/other", h["www-authenticate"])
        for path in ("/mcp/../other", "/mcp/%2e%2e/other", "/mcp/..%2fother", "/mcp/./../other",
                     "/mcp/%2E%2E/other", "/mcp//../other"):
            with self.subTest(path=path):
                got = raw(self.origin_port, f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:"
                          f"{self.origin_port}\r\nAuthorization: Bearer {one}\r\n"
                          "Content-Type: application/json\r\nAccept: application/json, "
                          "text/event-stream\r\nContent-Length: 2\r\nConnection: close\r\n\r\n"
                          "{}".encode())
                self.assertRegex(got[:20], rb"^HTTP/1\.1 (400|401) ", got[:300])
        # a path nginx decodes into one forward-auth will not judge: 400, saying why
        st, h, body = mcp_call(self.origin_port, one, path="/mcp/a%23b")
        self.assertEqual((st, json.loads(body)["error"]), (400, "invalid_request"), body)
        self.assertIn("#", json.loads(body)["error_description"])
        # absolute form: nginx routes on the request line's host, which the token is not for
        got = raw(self.origin_port, f"POST http://{self.other_host}/mcp HTTP/1.1\r\n"
                  f"Host: 127.0.0.1:{self.origin_port}\r\nAuthorization: Bearer {one}\r\n"
                  "Content-Type: application/json\r\nAccept: application/json, text/event-stream"
                  "\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}".encode())
        self.assertTrue(got.startswith(b"HTTP/1.1 401 "), got[:300])
        self.assertIn(f"http://{self.other_host}/.well-known/oauth-protected-resource/mcp"
                      .encode(), got)

    # ---- the official SDK client in a browser, through nginx -------------------------------

    def test_sdk_client_signs_in_through_nginx(self):
        chromium = chromium_for(self, "playwright-core")
        run_node_suite(self, "gateway.test.mjs", {
            "P2A_ORIGIN": self.origin, "P2A_USER": "nia", "P2A_USER_ID": self.user_id,
            "P2A_PASSWORD": PASSWORD,
            "P2A_CHROMIUM": chromium}, passes=2)


def raw(port, data, timeout=5):
    """Sends data on a fresh connection and reads until the server closes it or timeout."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(data)
    got = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            got += d
    except socket.timeout:
        pass
    s.close()
    return got


class ForwardAuth(unittest.TestCase):
    """The workers' listener asked directly: forward-auth as Traefik, Caddy and Envoy's HTTP
    ext_authz ask it, RFC 7662 for resource servers, and its bounds."""

    RESOURCES = "http://127.0.0.1:3000/mcp,https://files.example.test/mcp"

    @classmethod
    def setUpClass(cls):
        cls.env = Env()
        cls.port = free_port()
        cls.authd = cls.env.authd({
            "PIPE2_AUTH_RESOURCE": cls.RESOURCES,
            "PIPE2_AUTH_FORWARD_AUTH_LISTEN": f"127.0.0.1:{cls.port}",
            "PIPE2_AUTH_FORWARD_AUTH_RESOURCES":
                "gw.example.test/files=https://files.example.test/mcp,"
                "127.0.0.1:3000/mcp=http://127.0.0.1:3000/mcp",
            "PIPE2_AUTH_FORWARD_AUTH_MAX_CONNECTIONS": "8",
            "PIPE2_AUTH_FORWARD_AUTH_MAX_CONNECTIONS_PER_ADDRESS": "8",
            "PIPE2_AUTH_HEADER_TIMEOUT": "1"})
        cls.admin = cls.authd.client(cls.env.admin_key)
        cls.pat = cls.admin.issue("ola", "gateway", scope="mcp")

    @classmethod
    def tearDownClass(cls):
        cls.admin.close()
        cls.env.close()

    def ask(self, path="/forward-auth", method="GET", headers=None, body=None, conn=None):
        c = conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        out = (r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode())
        if conn is None:
            c.close()
        return out

    def test_traefik_caddy_and_envoy_shapes(self):
        bearer = {"Authorization": f"Bearer {self.pat.token}"}
        # Traefik / Caddy: X-Forwarded-Host and X-Forwarded-Uri name the original request
        st, h, body = self.ask(headers={**bearer, "X-Forwarded-Host": "127.0.0.1:3000",
                                        "X-Forwarded-Uri": "/mcp?x=1",
                                        "X-Forwarded-Method": "POST"})
        self.assertEqual((st, body), (200, ""))
        self.assertEqual((h["x-auth-subject"], h["x-auth-token-kind"], h["x-auth-token-id"],
                          h["x-auth-scope"], h["x-auth-expires"]),
                         ("ola", "pat", self.pat.info.jti, "mcp", str(self.pat.info.expires_at)))
        # Envoy's HTTP ext_authz: the original path after the prefix, the original Host
        st, h, _ = self.ask("/forward-auth/mcp", headers={**bearer, "Host": "127.0.0.1:3000"})
        self.assertEqual((st, h["x-auth-subject"]), (200, "ola"))
        # a token for one resource on a route to another: not its audience
        one = jwt_es256(self.env.key_path, {"alg": "ES256", "kid": "it-key", "typ": "JWT"},
                        claims(sub="ola", aud=["http://127.0.0.1:3000/mcp"]))
        st, h, body = self.ask(headers={"Authorization": f"Bearer {one}",
                                        "X-Forwarded-Host": "gw.example.test",
                                        "X-Forwarded-Uri": "/files/read"})
        self.assertEqual(st, 401)
        self.assertIn('resource_metadata="https://files.example.test/.well-known/'
                      'oauth-protected-resource/mcp"', h["www-authenticate"])
        self.assertEqual(json.loads(h["x-auth-denial"]), json.loads(body))
        # an address no route serves: 403, whoever asks
        st, _, body = self.ask(headers={**bearer, "X-Forwarded-Host": "gw.example.test",
                                        "X-Forwarded-Uri": "/admin"})
        self.assertEqual((st, json.loads(body)["error"]), (403, "unknown_resource"))
        # garbage in place of a token
        st, h, _ = self.ask(headers={"Authorization": "Bearer not.a.token",
                                     "X-Forwarded-Host": "127.0.0.1:3000",
                                     "X-Forwarded-Uri": "/mcp"})
        self.assertEqual(st, 401)
        self.assertIn('error="invalid_token"', h["www-authenticate"])

    def test_each_gateway_shape_with_a_clients_additions_is_refused(self):
        bearer = {"Authorization": f"Bearer {self.pat.token}"}
        # what each gateway sends (Host: the forward-auth service, except Envoy's)
        shapes = {
            "nginx": {"X-Forwarded-Host": "127.0.0.1:3000", "X-Original-URI": "/mcp",
                      "X-Original-Method": "POST"},
            "ingress-nginx": {"X-Forwarded-Host": "127.0.0.1:3000",
                              "X-Original-URL": "https://127.0.0.1:3000/mcp",
                              "X-Original-Method": "POST"},
            "traefik": {"X-Forwarded-Host": "127.0.0.1:3000", "X-Forwarded-Uri": "/mcp",
                        "X-Forwarded-Method": "POST"},
            "caddy": {"X-Forwarded-Host": "127.0.0.1:3000", "X-Forwarded-Uri": "/mcp",
                      "X-Forwarded-Method": "POST"},
        }
        additions = [("X-Forwarded-Method", "OPTIONS"), ("X-Original-Method", "OPTIONS"),
                     ("x-forwarded-method", "POST"), ("X-Forwarded-Uri", "/mcp"),
                     ("x-original-uri", "/mcp"), ("X-Original-URL", "http://127.0.0.1:3000/mcp"),
                     ("X-Forwarded-Host", "127.0.0.1:3000")]
        for gw, hs in shapes.items():
            self.assertEqual(self.ask(headers={**bearer, **hs})[0], 200, gw)
            for name, value in additions:
                with self.subTest(gateway=gw, added=name):
                    head = "".join(f"{k}: {v}\r\n" for k, v in {**bearer, **hs}.items())
                    got = raw(self.port, f"GET /forward-auth HTTP/1.1\r\nHost: fa\r\n{head}"
                              f"{name}: {value}\r\n\r\n".encode())
                    self.assertTrue(got.startswith(b"HTTP/1.1 400 "), got[:200])
                    self.assertIn(b'"error":"invalid_request"', got)
        # Envoy's HTTP ext_authz: the request's own method, Host and path after the prefix
        st, _, _ = self.ask("/forward-auth/mcp", "POST", {**bearer, "Host": "127.0.0.1:3000"})
        self.assertEqual(st, 200)
        # ... and a client's header beside that path (were Envoy to pass it): refused
        for extra in ({"X-Forwarded-Uri": "/mcp"}, {"X-Forwarded-Method": "OPTIONS"},
                      {"X-Original-Method": "GET"}, {"X-Forwarded-Host": "127.0.0.1:3000"}):
            with self.subTest(envoy_and=extra):
                st, h, body = self.ask("/forward-auth/files/x", "POST",
                                       {**bearer, "Host": "gw.example.test", **extra})
                self.assertEqual((st, json.loads(body)["error"]), (400, "invalid_request"))
                self.assertEqual(json.loads(h["x-auth-denial"]), json.loads(body))
        for path in ("/forward-auth/mcp/../files/x", "/forward-auth/mcp/%2e%2e/x",
                     "/forward-auth/mcp/..%2Fx", "/forward-auth/..", "/forward-auth/mcp//x",
                     "/forward-auth/mcp/..\\x", "/forward-auth/mcp%5c"):
            with self.subTest(path=path):
                got = raw(self.port, f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:3000\r\n"
                          f"Authorization: Bearer {self.pat.token}\r\n\r\n".encode())
                self.assertRegex(got[:20], rb"^HTTP/1\.1 (400|403) ")
        # empty values, two values in one, a method that is no token, segment boundaries
        for extra, status in (({"X-Forwarded-Method": ""}, 400),
                              ({"X-Forwarded-Host": "127.0.0.1:3000, gw.example.test"}, 400),
                              ({"X-Forwarded-Method": "GET, OPTIONS"}, 400),
                              ({"X-Forwarded-Uri": "/mcpx"}, 403),
                              ({"X-Forwarded-Uri": "mcp"}, 400),
                              ({"X-Forwarded-Uri": "/mcp#x"}, 400),
                              ({"X-Forwarded-Uri": "/" + "a" * 3000}, 431)):
            with self.subTest(extra=extra):
                hs = {**bearer, "X-Forwarded-Host": "127.0.0.1:3000", "X-Forwarded-Uri": "/mcp"}
                hs.update(extra)
                head = "".join(f"{k}: {v}\r\n" for k, v in hs.items())
                got = raw(self.port, f"GET /forward-auth HTTP/1.1\r\nHost: fa\r\n{head}"
                          "\r\n".encode())
                self.assertTrue(got.startswith(f"HTTP/1.1 {status} ".encode()), got[:200])
        # OPTIONS is judged like any request here (PIPE2_AUTH_FORWARD_AUTH_ALLOW_OPTIONS off)
        st, _, _ = self.ask(headers={"X-Forwarded-Host": "127.0.0.1:3000",
                                     "X-Forwarded-Uri": "/mcp", "X-Forwarded-Method": "OPTIONS"})
        self.assertEqual(st, 401)
        self.assertEqual(self.ask("/forward-auth/mcp", "OPTIONS",
                                  {"Host": "127.0.0.1:3000"})[0], 401)

    def test_rfc7662_on_the_workers_matches_the_facade(self):
        form = f"token={self.pat.token}"
        key = {"Authorization": f"Bearer {self.env.introspect_key}",
               "Content-Type": "application/x-www-form-urlencoded"}
        st, h, body = self.ask("/introspect", "POST", key, form)
        self.assertEqual((st, h["content-type"]), (200, "application/json"))
        ours = json.loads(body)
        st, _, public = self.authd.http("/introspect", "POST", form, key)
        self.assertEqual(st, 200)
        self.assertEqual(ours, json.loads(public))  # one answer, written once
        self.assertEqual((ours["active"], ours["sub"], ours["jti"]),
                         (True, "ola", self.pat.info.jti))
        self.assertEqual(json.loads(self.ask("/introspect", "POST", key, "token=opaque")[2]),
                         {"active": False})
        st, _, body = self.ask("/introspect", "POST",
                               {**key, "Authorization": "Bearer p2a_nope"}, form)
        self.assertEqual((st, json.loads(body)["error"]), (401, "invalid_client"))
        st, h, _ = self.ask("/introspect", "GET", key)
        self.assertEqual((st, h["allow"]), (405, "POST"))
        st, _, body = self.ask("/introspect", "POST", key, "token=a&token=b")
        self.assertEqual((st, json.loads(body)["error"]), (400, "invalid_request"))
        self.assertEqual(self.ask("/elsewhere")[0], 404)

    def test_keep_alive_and_pipelining(self):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        h = {"Authorization": f"Bearer {self.pat.token}", "X-Forwarded-Host": "127.0.0.1:3000",
             "X-Forwarded-Uri": "/mcp"}
        for _ in range(200):  # one connection, many requests
            self.assertEqual(self.ask(headers=h, conn=c)[0], 200)
        c.close()
        one = ("GET /forward-auth HTTP/1.1\r\nHost: 127.0.0.1:3000\r\nX-Forwarded-Uri: /mcp\r\n"
               f"Authorization: Bearer {self.pat.token}\r\n\r\n").encode()
        none = b"GET /forward-auth HTTP/1.1\r\nHost: 127.0.0.1:3000\r\nX-Forwarded-Uri: /mcp\r\n\r\n"
        last = b"GET /forward-auth HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        got = raw(self.port, one * 40 + none + one * 40 + last)  # in one write
        statuses = [int(x) for x in re.findall(rb"HTTP/1\.1 (\d{3}) ", got)]  # bodies end bare
        self.assertEqual(statuses, [200] * 40 + [401] + [200] * 40 + [403])

    def test_hostile_heads_are_refused_and_bounded(self):
        cases = [
            (b"GET /forward-auth HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
            (b"GET /forward-auth HTTP/1.1\r\nHost : x\r\n\r\n", 400),
            (b"GET /forward-auth HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 411),
            (b"GET /forward-auth HTTP/1.1\r\nX-Long: " + b"a" * 9000 + b"\r\n\r\n", 431),
            (b"GET /forward-auth HTTP/1.1\r\nAuthorization: Bearer a\r\n"
             b"Authorization: Bearer b\r\n\r\n", 400),
            (b"POST /introspect HTTP/1.1\r\nContent-Length: 20000\r\n\r\n", 413),
            (b"GARBAGE\r\n\r\n", 400),
        ]
        for data, status in cases:
            with self.subTest(status=status, head=data[:50]):
                got = raw(self.port, data)
                self.assertTrue(got.startswith(f"HTTP/1.1 {status} ".encode()), got[:200])
                self.assertIn(b"Connection: close", got)
        # 16 KiB of headers, each line short: the request does not fit, 431
        got = raw(self.port, b"GET /forward-auth HTTP/1.1\r\n" +
                  b"".join(b"X-%d: %s\r\n" % (i, b"c" * 200) for i in range(90)) + b"\r\n")
        self.assertTrue(got.startswith(b"HTTP/1.1 431 "), got[:100])

    def test_a_slow_head_is_cut_at_the_header_timeout(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        s.sendall(b"GET /forward-auth HTTP/1.1\r\nHost: x\r\n")  # never ends
        t0 = time.monotonic()
        self.assertEqual(s.recv(100), b"")  # closed by the server
        self.assertLess(time.monotonic() - t0, 5)  # HEADER_TIMEOUT is 1 s here
        s.close()

    def test_connections_are_bounded(self):
        held = [socket.create_connection(("127.0.0.1", self.port), timeout=5) for _ in range(8)]
        try:
            for s in held:  # each one is really served
                s.sendall(b"GET /forward-auth HTTP/1.1\r\nHost: x\r\n\r\n")
                self.assertTrue(s.recv(100).startswith(b"HTTP/1.1 403 "))
            extra = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            self.assertEqual(extra.recv(100), b"")  # the ninth is closed at once
            extra.close()
        finally:
            for s in held:
                s.close()
        wait_until(lambda: raw(self.port, b"GET /forward-auth HTTP/1.1\r\nHost: x\r\n"
                                          b"Connection: close\r\n\r\n").startswith(b"HTTP/1.1 403"),
                   10, "a slot once the held connections closed")


class ForwardAuthConfig(unittest.TestCase):
    def test_needs_a_port_of_its_own(self):
        env = Env()
        try:
            a = Authd(env)
            a.extra = {"PIPE2_AUTH_FORWARD_AUTH_LISTEN": f"127.0.0.1:{a.http_port}"}
            env.authds.append(a)
            a.start(wait_ready=False)
            wait_until(lambda: a.proc.poll() is not None, 10, "pipe2-authd to refuse")
            self.assertNotEqual(a.proc.returncode, 0)
            self.assertIn("PIPE2_AUTH_FORWARD_AUTH_LISTEN", a.output())
            self.assertIn("needs a port of its own", a.output())
        finally:
            env.close(check_exit=False)

    def test_drains_on_sigterm_with_a_gateway_connected(self):
        env = Env()
        try:
            port = free_port()
            a = env.authd({"PIPE2_AUTH_FORWARD_AUTH_LISTEN": f"127.0.0.1:{port}"})
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("GET", "/forward-auth", headers={"Host": "127.0.0.1:3000",
                                                       "X-Forwarded-Uri": "/mcp"})
            r = c.getresponse()
            r.read()
            self.assertEqual((r.status, r.getheader("Connection")), (401, None))  # kept alive
            t0 = time.monotonic()
            a.proc.send_signal(signal.SIGTERM)
            self.assertEqual(a.proc.wait(15), 0)
            self.assertLess(time.monotonic() - t0, 5)  # the idle gateway connection did not hold it
            c.close()
        finally:
            env.close(check_exit=False)


if __name__ == "__main__":
    unittest.main()
