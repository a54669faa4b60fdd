"""What anonymous clients may leave in Redis, and the reserve kept for what must never fail.

An attacker once started 20,100 upstream sign-ins with 8 KB authorization requests from 400
addresses (+208 MB in Redis, and then everyone got 429 for 10 minutes), and registered 5,050
clients of 20 KB from 13 addresses (+103 MB, then 429 for an hour); with Redis at maxmemory a
RevokeToken then failed. Here, on loopback behind a trusted proxy (X-Forwarded-For speaks for
many addresses):
  - 6,000 sign-in starts (8 KB bodies, the longest request a sign-in carries) from 600
    addresses and 4,000 registrations of the largest record kept from 300 addresses grow
    Redis by less than 16 MB; the sign-in starts write nothing at all (sealed cookie);
  - the registrations pass the global limit, and a fresh address still registers and signs in;
  - with maxmemory just above the reserve, registrations are refused with 503 before Redis
    fills, and a RevokeToken still succeeds: the token is REVOKED.
"""
import json
import secrets
import threading
import unittest
import urllib.parse
import http.client

from harness import ServiceTest, wait_until
from p2a_client import pb
from test_oauth import JSONCT
from test_upstream import CLIENT_ID, CLIENT_SECRET, CraftedIdP

MB = 1024 * 1024
THREADS = 8


def used_memory(redis):
    info = redis.cli("INFO", "memory")
    return int(next(l for l in info.splitlines() if l.startswith("used_memory:")).split(":")[1])


def flood(authd, requests):
    """Sends every (method, path, body, headers) over THREADS keep-alive connections; returns
    the statuses in order."""
    out = [None] * len(requests)
    nxt = iter(range(len(requests)))
    lock = threading.Lock()

    def run():
        c = None
        while True:
            with lock:
                i = next(nxt, None)
            if i is None:
                break
            method, path, body, headers = requests[i]
            for _ in range(3):
                try:
                    if c is None:
                        c = http.client.HTTPConnection("127.0.0.1", authd.http_port, timeout=20)
                    c.request(method, path, body=body, headers=headers)
                    r = c.getresponse()
                    r.read()
                    out[i] = (r.status, r.getheader("Set-Cookie") or "")
                    if r.getheader("Connection", "").lower() == "close":
                        c.close()
                        c = None
                    break
                except (OSError, http.client.HTTPException):
                    if c is not None:
                        c.close()
                    c = None
        if c is not None:
            c.close()

    ts = [threading.Thread(target=run) for _ in range(THREADS)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


def sign_in_start(addr, q_len=2500, body_len=8000):
    csrf = secrets.token_urlsafe(32)[:43].ljust(43, "A")
    q = "response_type=code&client_id=c_x&state=" + "s" * (q_len - 39)
    body = urllib.parse.urlencode({"csrf": csrf, "q": q})
    body += "&pad=" + "p" * max(0, body_len - len(body) - 5)
    return ("POST", "/login/upstream", body,
            {"Content-Type": "application/x-www-form-urlencoded", "X-Forwarded-For": addr,
             "Cookie": f"p2a_csrf={csrf}"})


def registration(addr, body):
    return ("POST", "/register", body, {**JSONCT, "X-Forwarded-For": addr})


def metadata(n_uris):
    return json.dumps({"client_name": "Flood " + "n" * 60, "token_endpoint_auth_method": "none",
                       "redirect_uris": [f"https://app.example/cb/{i}/" + "u" * 600
                                         for i in range(n_uris)]})


class Budget(ServiceTest):
    OAUTH = True

    @classmethod
    def setUpClass(cls):
        cls.idp = CraftedIdP()
        cls.AUTHD_ENV = {"PIPE2_AUTH_UPSTREAM_ISSUER": cls.idp.issuer,
                         "PIPE2_AUTH_UPSTREAM_CLIENT_ID": CLIENT_ID,
                         "PIPE2_AUTH_UPSTREAM_CLIENT_SECRET": CLIENT_SECRET,
                         "PIPE2_AUTH_TRUSTED_PROXIES": "127.0.0.1/32",
                         "PIPE2_AUTH_REGISTER_GLOBAL_RATE_LIMIT": "3000",
                         "PIPE2_AUTH_REDIS_RESERVE_MB": "8"}
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.idp.close()

    def largest_metadata(self):
        """The most redirect URIs a registration may carry: its record is the largest kept."""
        if getattr(Budget, "largest", None):
            return Budget.largest
        best = None
        for n in range(1, 11):
            st, _, b = self.authd.http("/register", "POST", metadata(n),
                                       {**JSONCT, "X-Forwarded-For": "192.0.2.1"})
            if st != 201:
                self.assertEqual((st, json.loads(b)["error"]), (400, "invalid_client_metadata"))
                self.assertIn("too large", json.loads(b)["error_description"])
                break
            best = n
        self.assertIsNotNone(best)
        Budget.largest = metadata(best)
        return Budget.largest

    def test_1_floods_leave_little(self):
        body = self.largest_metadata()
        # a request longer than a sign-in carries is refused, writing nothing
        m, p, b, h = sign_in_start("198.18.0.1", q_len=3000)
        st, _, page = self.authd.http(p, m, b, h)
        self.assertEqual(st, 400, page)
        self.authd.wait_audit_settled()  # the set-up's events are in Redis before we count
        before_keys = int(self.env.redis.cli("DBSIZE"))
        before = used_memory(self.env.redis)
        starts = flood(self.authd, [sign_in_start(f"198.18.{i % 600 // 250}.{i % 600 % 250}")
                                    for i in range(6000)])
        self.assertEqual({s for s, _ in starts}, {302}, "every sign-in start goes to the provider")
        self.assertTrue(all("p2a_upstream=" in c for _, c in starts))
        self.assertEqual(int(self.env.redis.cli("DBSIZE")), before_keys,
                         "a sign-in start writes nothing to Redis")
        regs = flood(self.authd, [registration(f"198.19.{i % 300 // 250}.{i % 300 % 250}", body)
                                  for i in range(4000)])
        codes = {}
        for s, _ in regs:
            codes[s] = codes.get(s, 0) + 1
        grown = used_memory(self.env.redis) - before
        print(f"\nRedis grew by {grown / MB:.2f} MB: 6,000 sign-in starts {set(s for s, _ in starts)},"
              f" 4,000 registrations {codes} ({len(body)} byte metadata)")
        self.assertLess(grown, 16 * MB)
        self.assertGreater(codes.get(201, 0), 2900)  # to the global limit (3,000 with the probes)
        self.assertEqual(set(codes) - {201, 429}, set())
        cid = next(k for k in self.env.redis.cli("--scan", "--pattern", "p2a:client:*").split())
        ttl = int(self.env.redis.cli("TTL", cid))
        self.assertTrue(0 < ttl <= 600, ttl)  # an unused registration lasts 10 minutes
        # past the global limit, an address seen flooding is refused, a fresh one registers
        st, h, b = self.authd.http("/register", "POST", body,
                                   {**JSONCT, "X-Forwarded-For": "198.19.0.7"})
        self.assertEqual(st, 429, b)
        st, _, b = self.authd.http("/register", "POST", body,
                                   {**JSONCT, "X-Forwarded-For": "203.0.113.77"})
        self.assertEqual(st, 201, b)
        # an IPv6 client is its /64: another address in it shares its count
        six = [self.authd.http("/register", "POST", body,
                               {**JSONCT, "X-Forwarded-For": f"2001:db8:7:7::{i:x}"})[0]
               for i in range(1, 6)]
        self.assertEqual(six, [201, 201, 201, 429, 429])
        st, _, b = self.authd.http("/register", "POST", body,
                                   {**JSONCT, "X-Forwarded-For": "2001:db8:7:8::1"})
        self.assertEqual(st, 201, b)

    def test_2_the_reserve_keeps_revocation_working(self):
        pat = self.admin.issue("u-budget", "budget")
        self.assertTrue(self.mcp.introspect(pat.token).active)
        used = used_memory(self.env.redis)
        self.env.redis.cli("CONFIG", "SET", "maxmemory", str(used + 10 * MB))
        self.env.redis.cli("CONFIG", "SET", "maxmemory-policy", "noeviction")
        try:
            # the facade reads Redis's memory every second: once it has seen the new maxmemory
            wait_until(lambda: f"p2a_redis_max_bytes {used + 10 * MB}\n" in
                       self.authd.ops("/metrics")[2], 5, "the facade to read maxmemory")
            body = self.largest_metadata()
            refused, i = 0, 0
            while refused < 50:  # fresh addresses, until the reserve stops them
                self.assertLess(i, 4000, "registrations were never refused")
                batch = flood(self.authd, [registration(f"100.64.{(i + k) // 250}.{(i + k) % 250}",
                                                        body) for k in range(200)])
                i += 200
                refused += sum(1 for s, _ in batch if s == 503)
            st, h, b = self.authd.http("/register", "POST", body,
                                       {**JSONCT, "X-Forwarded-For": "203.0.113.200"})
            self.assertEqual((st, json.loads(b)["error"]), (503, "temporarily_unavailable"))
            self.assertIn("Retry-After", h)
            info = self.env.redis.cli("INFO", "memory")
            free = int(self.env.redis.cli("CONFIG", "GET", "maxmemory").split()[1]) - \
                used_memory(self.env.redis)
            print(f"\nafter {i} registrations: {free / MB:.2f} MB of maxmemory free")
            self.assertGreater(free, 4 * MB, info)
            # what must never fail does not
            self.admin.revoke(pat.info.jti)
            self.assertEqual(self.mcp.introspect(pat.token).reason, pb.REVOKED)
            another = self.admin.issue("u-budget", "after")
            self.assertTrue(self.mcp.introspect(another.token).active)
            # a sign-in from a fresh address still starts (it writes nothing)
            m, p, b, h = sign_in_start("203.0.113.201")
            st, h, _ = self.authd.http(p, m, b, h)
            self.assertEqual(st, 302)
            self.assertTrue(h["Location"].startswith(self.idp.issuer))
        finally:
            self.env.redis.cli("CONFIG", "SET", "maxmemory", "0")


if __name__ == "__main__":
    unittest.main()
