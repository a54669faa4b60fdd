"""The account pages (PIPE2_AUTH_ACCOUNT_PAGES): a person's PATs and connected clients, for
deployments without a dashboard of their own.

node/account.test.mjs drives them in headless Chromium (create a PAT shown once, use it, see
"last used", revoke it; connect an MCP client, disconnect it); the cases here check what a
browser would not show: the setting is off by default, signed-out requests, CSRF, framing.
The screenshots are kept in tests/integration/artifacts/ (the README shows them).
"""
import os
import re
import signal
import unittest
import urllib.parse

from harness import (Env, assert_screenshots, chromium_for, free_port, oauth_authd,
                     run_node_suite, wait_until)
from test_oauth import FORM, PASSWORD, Flow

HERE = os.path.dirname(os.path.abspath(__file__))
SHOTS = os.path.join(HERE, "artifacts")


def csrf_of(page):
    m = re.search(r'name="csrf" value="([^"]*)"', page)
    return m.group(1) if m else None


class AccountPages(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.env = Env()
        cls.mcp_port = free_port()
        cls.a = oauth_authd(cls.env, {"PIPE2_AUTH_ACCOUNT_PAGES": "on",
                                      "PIPE2_AUTH_LAST_USED_FLUSH_INTERVAL": "1",
                                      "PIPE2_AUTH_RESOURCE":
                                          f"http://127.0.0.1:{cls.mcp_port}/mcp"})
        admin = cls.a.client(cls.env.admin_key)
        cls.user_id = admin.create_user("pia", PASSWORD).user_id
        cls.other_id = admin.create_user("quinn", PASSWORD).user_id
        admin.close()

    @classmethod
    def tearDownClass(cls):
        cls.env.close()

    def signed_in(self, username):
        f = Flow(self.a, username)
        st, _, page = f.req("/account/")
        self.assertEqual(st, 200)
        self.assertIn('action="/login"', page)  # signed out: the login page, for the account
        self.assertIn("your Pipe2.ai account", page)
        st, h, _ = f.login(page)
        self.assertEqual((st, h["Location"]), (303, "/account/"))
        st, h, page = f.req("/account/")
        self.assertEqual(st, 200, page)
        return f, h, page

    def test_page_csrf_framing_and_signed_out(self):
        f, h, page = self.signed_in("pia")
        self.assertIn("Your account", page)
        self.assertEqual(h["X-Frame-Options"], "DENY")
        self.assertIn("frame-ancestors 'none'", h["Content-Security-Policy"])
        self.assertNotIn("script-src", h["Content-Security-Policy"])  # no script on this one
        self.assertNotRegex(page, r"<script|https?://[^\"<]*\.(js|css)")
        self.assertEqual(h["Cache-Control"], "no-store")
        csrf = csrf_of(page)
        # no token, another session's token, no session at all: nothing is created
        g, _, other_page = self.signed_in("quinn")
        before = self.env.redis.cli("KEYS", "p2a:{t}:pat:*")
        for who, token, status in ((f, None, 403), (f, csrf_of(other_page), 403),
                                   (Flow(self.a), csrf, 401)):
            form = {"name": "sneaky", "days": "7"}
            if token is not None:
                form["csrf"] = token
            st, _, body = who.req("/account/tokens", "POST", urllib.parse.urlencode(form), FORM)
            self.assertEqual(st, status, body)
        self.assertEqual(self.env.redis.cli("KEYS", "p2a:{t}:pat:*"), before)
        # a good form: the token is on that page only, pinned script and all
        st, h, body = f.req("/account/tokens", "POST",
                            urllib.parse.urlencode({"name": "cli", "days": "7", "csrf": csrf}), FORM)
        self.assertEqual(st, 200, body)
        self.assertRegex(h["Content-Security-Policy"], r"script-src 'sha256-[A-Za-z0-9+/=]{44}'")
        token = re.search(r'<pre id="token">([^<]+)</pre>', body).group(1)
        st, _, page = f.req("/account/")
        self.assertNotIn(token, page)
        self.assertIn("cli", page)
        # the other person cannot revoke it, even with their own valid form
        jti = re.search(r'data-jti="([^"]+)"', page).group(1)
        st, _, body = g.req("/account/tokens/revoke", "POST", urllib.parse.urlencode(
            {"jti": jti, "csrf": csrf_of(other_page)}), FORM)
        self.assertEqual(st, 404, body)
        # bad input: a lifetime over the maximum, an empty name, a malformed grant id
        for form, path in (({"name": "x", "days": "400"}, "/account/tokens"),
                           ({"name": "", "days": "7"}, "/account/tokens"),
                           ({"grant_id": "zz"}, "/account/clients/disconnect")):
            st, _, body = f.req(path, "POST", urllib.parse.urlencode({**form, "csrf": csrf}), FORM)
            self.assertEqual(st, 400, body)
        self.assertEqual(f.req("/account/tokens")[0], 405)

    def test_active_tokens_are_bounded(self):
        admin = self.a.client(self.env.admin_key)
        rex = admin.create_user("rex", PASSWORD).user_id
        for i in range(49):
            admin.issue(rex, f"t{i}")
        admin.close()
        f, _, page = self.signed_in("rex")
        form = urllib.parse.urlencode({"name": "fiftieth", "days": "7", "csrf": csrf_of(page)})
        self.assertEqual(f.req("/account/tokens", "POST", form, FORM)[0], 200)
        st, _, body = f.req("/account/tokens", "POST", form, FORM)  # the 51st active one
        self.assertEqual(st, 409, body)
        self.assertIn("Revoke one", body)

    def concurrent_creations(self, f, csrf, n):
        """n PAT creations on the account page at once (one connection each, the session's
        cookie); their statuses."""
        import http.client
        import threading
        cookie = "; ".join(f"{k}={v}" for k, v in f.cookies.items())
        statuses, go = [], threading.Barrier(n)

        def one(i):
            c = http.client.HTTPConnection("127.0.0.1", self.a.http_port, timeout=30)
            try:
                c.connect()
                go.wait(10)
                c.request("POST", "/account/tokens", urllib.parse.urlencode(
                    {"name": f"race{i}", "days": "7", "csrf": csrf}),
                    {**FORM, "Cookie": cookie})
                r = c.getresponse()
                r.read()
                statuses.append(r.status)
            finally:
                c.close()
        threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(len(statuses), n)
        return statuses

    def active_of(self, user_id):
        admin = self.a.client(self.env.admin_key)
        try:
            return [t for t in admin.list(user_id).tokens if t.revoked_at == 0]
        finally:
            admin.close()

    def test_the_cap_holds_against_concurrent_creations(self):
        """64 creations at once by a person who holds 40: exactly 10 more, never past the cap
        (the count is the script's that writes the record); a revoked token frees its place."""
        admin = self.a.client(self.env.admin_key)
        sid = admin.create_user("sid", PASSWORD).user_id
        first = [admin.issue(sid, f"t{i}") for i in range(40)]
        f, _, page = self.signed_in("sid")
        statuses = self.concurrent_creations(f, csrf_of(page), 64)
        self.assertEqual((statuses.count(200), statuses.count(409)), (10, 54), statuses)
        self.assertEqual(len(self.active_of(sid)), 50)
        admin.revoke(first[0].info.jti)
        admin.close()
        form = urllib.parse.urlencode({"name": "after", "days": "7", "csrf": csrf_of(page)})
        self.assertEqual(f.req("/account/tokens", "POST", form, FORM)[0], 200)
        st, _, body = f.req("/account/tokens", "POST", form, FORM)
        self.assertEqual(st, 409, body)

    def test_creations_are_rate_limited_per_person(self):
        """PIPE2_AUTH_ACCOUNT_PAT_RATE_LIMIT (20 an hour): a create-then-revoke loop cannot
        grow the revocation set past it; 64 at once make 20, the rest get 429 and Retry-After,
        and revoking does not give the hour's count back. Another person is not affected."""
        admin = self.a.client(self.env.admin_key)
        admin.create_user("tia", PASSWORD)
        admin.close()
        f, _, page = self.signed_in("tia")
        csrf = csrf_of(page)
        statuses = self.concurrent_creations(f, csrf, 64)
        self.assertEqual((statuses.count(200), statuses.count(429)), (20, 44), statuses)
        for jti in re.findall(r'data-jti="([^"]+)"', f.req("/account/")[2]):
            st, _, body = f.req("/account/tokens/revoke", "POST",
                                urllib.parse.urlencode({"jti": jti, "csrf": csrf}), FORM)
            self.assertEqual(st, 303, body)
        form = urllib.parse.urlencode({"name": "one more", "days": "7", "csrf": csrf})
        st, h, body = f.req("/account/tokens", "POST", form, FORM)
        self.assertEqual(st, 429, body)
        self.assertGreater(int(h["Retry-After"]), 3000)
        self.assertIn("in the last hour", body)
        g, _, other = self.signed_in("quinn")
        st, _, body = g.req("/account/tokens", "POST", urllib.parse.urlencode(
            {"name": "mine", "days": "7", "csrf": csrf_of(other)}), FORM)
        self.assertEqual(st, 200, body)

    def test_browser(self):
        chromium = chromium_for(self, "playwright-core")
        run_node_suite(self, "account.test.mjs", {
            "P2A_ISSUER": self.a.issuer,
            "P2A_RPC": f"127.0.0.1:{self.a.port}",
            "P2A_MCP_PORT": str(self.mcp_port),
            "P2A_INTROSPECT_KEY": self.env.introspect_key,
            "P2A_USER": "pia",
            "P2A_PASSWORD": PASSWORD,
            "P2A_USER_ID": self.user_id,
            "P2A_CHROMIUM": chromium,
            "P2A_SHOTS": SHOTS,
        }, passes=2)
        assert_screenshots(self, SHOTS, "account.png", "account-token.png")

    def test_unavailable_store_is_a_page(self):
        """Redis not answering: a signed-in person's page says so as a page (503, HTML,
        Retry-After), never a program's JSON; and the page works again once Redis is back."""
        f, _, _ = self.signed_in("pia")
        self.env.redis.signal(signal.SIGSTOP)
        try:
            st, h, body = f.req("/account/")
        finally:
            self.env.redis.signal(signal.SIGCONT)
        self.assertEqual(st, 503, body)
        self.assertIn("text/html", h["Content-Type"])
        self.assertEqual(h["Retry-After"], "1")
        self.assertIn("Try again in a moment", body)
        self.assertNotIn("temporarily_unavailable", body)
        wait_until(lambda: f.req("/account/")[0] == 200, 15, "the account page back")


class OffByDefault(unittest.TestCase):
    def test_account_pages_are_off_by_default(self):
        env = Env()
        try:
            a = oauth_authd(env)
            st, _, page = a.http("/account/")
            self.assertEqual(st, 404)
            self.assertIn("no account pages", page)
        finally:
            env.close()


if __name__ == "__main__":
    unittest.main()
