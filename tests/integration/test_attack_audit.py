"""Attacks on the audit trail (README "Audit trail", SECURITY.md): what an anonymous client, a
signed-in person and a low-privilege service key can do to it, against a real pipe2-authd and
Redis. A person's events must survive whatever others send (the trail's count is small here,
1,000 events, so that a flood that would flush it shows in seconds); the stream on stdout stays
one JSON object a line; the security log page escapes what others chose; ListAuditEvents is the
admin's only and refuses what it did not give; the indexes leave with their events.
"""
import http.client
import json
import re
import secrets
import threading
import time
import unittest
import urllib.parse

import grpc

from harness import ServiceTest, pb, wait_until
from test_audit import TRAIL, all_events, metric
from test_oauth import FORM, PASSWORD, Flow, pkce

MAX_EVENTS = 1000  # PIPE2_AUTH_AUDIT_MAX_EVENTS below: the smallest allowed
RETENTION_DAYS = 7


class HostileBrowser(Flow):
    """A browser whose every request carries the user agent it chose."""

    def __init__(self, authd, username, user_agent):
        super().__init__(authd, username)
        self.user_agent = user_agent

    def req(self, path, method="GET", body=None, headers=None):
        h = dict(headers or {})
        h["User-Agent"] = self.user_agent
        h["X-Forwarded-For"] = "203.0.113.9"  # no trusted proxy here: never believed
        return super().req(path, method, body, h)


class AuditAttacks(ServiceTest):
    OAUTH = True
    AUTHD_ENV = {"PIPE2_AUTH_AUDIT_MAX_EVENTS": str(MAX_EVENTS),
                 "PIPE2_AUTH_AUDIT_RETENTION_DAYS": str(RETENTION_DAYS),
                 "PIPE2_AUTH_ACCOUNT_PAGES": "on",
                 "PIPE2_AUTH_WORKERS": "1",
                 "PIPE2_AUTH_LAST_USED_FLUSH_INTERVAL": "1"}

    def drained(self):
        """Waits until the writer has nothing queued nor in flight for Redis."""
        def idle():
            w1 = metric(self.authd, "p2a_audit_events_written_total")
            if metric(self.authd, "p2a_audit_backlog") != 0:
                return None
            time.sleep(1.2)  # a writer tick (AUDIT_INTERVAL_S), to take what was queued
            w2 = metric(self.authd, "p2a_audit_events_written_total")
            return w1 == w2 and metric(self.authd, "p2a_audit_backlog") == 0
        wait_until(idle, 60, "the audit writer idle")

    def person_with_an_event(self, name):
        uid = self.admin.create_user(name, PASSWORD).user_id
        self.admin.issue(uid, "laptop")
        evs = wait_until(lambda: [e for e in all_events(self.admin, user_id=uid)
                                  if e.type == "pat.issued"] or None, 10, f"{name}'s event")
        return uid, evs[0].id

    def revoked_tokens(self, uid, n=64):
        """n PATs of uid, revoked (64: a worker's refusal table, AUDIT_REFUSALS_MAX)."""
        tokens = []
        for i in range(n):
            r = self.admin.issue(uid, f"old{i}")
            self.admin.revoke(r.info.jti)
            tokens.append(r.token)
        wait_until(lambda: self.mcp.introspect(tokens[-1]).reason == pb.REVOKED, 10,
                   "the revocations")
        return tokens

    def present(self, tokens, rounds):
        """Each token presented once in each of rounds refusal intervals (1 s here)."""
        deadline = time.monotonic() + 3 * rounds
        for _ in range(rounds):
            self.assertLess(time.monotonic(), deadline, "the presentations took too long")
            for t in tokens:
                self.assertEqual(self.mcp.introspect(t).reason, pb.REVOKED)
            time.sleep(1.05)

    def assert_still_there(self, uid, event_id):
        self.assertIn(event_id, {e.id for e in all_events(self.admin, user_id=uid)},
                      "a person's event was flushed out of the trail by someone else")
        self.assertTrue(self.env.redis.cli("HEXISTS", TRAIL, event_id).strip() == "1")

    # ---- flushing a person's events by count ------------------------------------------------

    def test_introspect_key_calling_admin_methods_cannot_flush_a_person_s_events(self):
        """FOUND: every admin method a low-privilege (introspect) key called was refused and
        written as its own admin.call event, among the persons' events: 1,200 refused calls
        flushed a person's events out of a 1,000-event trail."""
        uid, ev = self.person_with_an_event("alma")
        before = int(self.env.redis.cli("HLEN", TRAIL))
        denied = 0
        for _ in range(MAX_EVENTS + 200):
            try:
                self.mcp.list_audit(user_id=uid)
            except grpc.RpcError as e:
                self.assertEqual(e.code(), grpc.StatusCode.PERMISSION_DENIED)
                denied += 1
        self.assertEqual(denied, MAX_EVENTS + 200)
        self.drained()
        self.assert_still_there(uid, ev)
        # folded per key, address and minute: the trail grew by a handful, not by 1,200
        grown = int(self.env.redis.cli("HLEN", TRAIL)) - before
        self.assertLess(grown, 50, self.env.redis.cli("ZCARD", "p2a:{audit}:named"))

    def test_revoked_tokens_presented_again_cannot_flush_a_person_s_events(self):
        """FOUND: a revoked or expired token presented again was reported as a new event
        among the persons' events each interval, for ever: anyone holding 64 such tokens
        (their own, revoked) flushed everyone else's events at 64 a second per worker."""
        uid, ev = self.person_with_an_event("bela")
        mallory = self.admin.create_user("mallory", PASSWORD).user_id
        self.present(self.revoked_tokens(mallory), 20)  # ~1,300 refusals over 20 intervals
        self.drained()
        self.assert_still_there(uid, ev)
        # the refusals are still in the trail, on the token's owner's log
        self.assertTrue(any(e.type == "token.refused"
                            for e in all_events(self.admin, user_id=mallory)))

    def test_random_tokens_are_no_events(self):
        """HELD: only a token we signed and then revoked or that expired is noted as refused:
        2,000 made-up tokens (random, and a JWT with a forged signature) add no event."""
        self.drained()
        before = int(self.env.redis.cli("HLEN", TRAIL))
        forged = ("eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCJ9.eyJqdGkiOiJ4In0."
                  + "A" * 86)
        for i in range(2000):
            t = forged if i % 2 else "p2a_" + secrets.token_urlsafe(32)
            self.assertNotEqual(self.mcp.introspect(t).reason, pb.REVOKED)
        self.drained()
        self.assertEqual(int(self.env.redis.cli("HLEN", TRAIL)), before)

    def test_a_person_s_index_keeps_no_ids_of_events_gone(self):
        """FOUND: the anonymous budget removed the oldest anonymous events from the trail but
        left their ids in the person's index they named: someone presenting a person's
        revoked tokens filled it with ids of nothing, and once 5,000 of them (the scan
        budget) were newer than the person's events, their security log came back empty."""
        uid, ev = self.person_with_an_event("hana")
        self.present(self.revoked_tokens(uid), 5)  # 320 refusals: 3 anonymous budgets (100)
        self.drained()
        index = self.env.redis.cli("ZRANGE", f"p2a:{{audit}}:u:{uid}", "0", "-1").split()
        dead = [x for x in index if self.env.redis.cli("HEXISTS", TRAIL, x).strip() != "1"]
        self.assertEqual(dead, [], f"{len(dead)} of {len(index)} ids name no event")
        self.assert_still_there(uid, ev)

    # ---- Redis growth -------------------------------------------------------------------------

    def test_index_keys_leave_with_their_events(self):
        """FOUND: a person's and a client's index had no expiry: the keys of people and clients
        gone (a client_id is a metadata document URL anyone may choose) stayed for ever, after
        retention had removed every event they named."""
        uid, _ = self.person_with_an_event("cora")
        self.drained()
        limit = RETENTION_DAYS * 86400 * 1000
        ttl = int(self.env.redis.cli("PTTL", f"p2a:{{audit}}:u:{uid}"))
        self.assertGreater(ttl, 0, "a person's index never expires")
        self.assertLessEqual(ttl, limit)
        keys = self.env.redis.cli("KEYS", "p2a:{audit}:*").split()
        self.assertTrue(keys)
        for k in keys:
            if k.startswith(("p2a:{audit}:u:", "p2a:{audit}:c:")):
                self.assertGreater(int(self.env.redis.cli("PTTL", k)), 0, k)

    # ---- injection: the stdout stream, the security log page -------------------------------

    def test_hostile_user_agent_in_the_stream_and_on_the_security_log(self):
        """HELD: X-Forwarded-For from a peer that is no trusted proxy is not the address; a
        user agent with control characters (an ANSI escape) is refused before any handler;
        one with a JSON-breaking quote, HTML, bytes that are not UTF-8 and 6 KB stays
        one escaped JSON string, cut, on stdout and escaped text on the page, under a CSP
        without inline script."""
        self.admin.create_user("dina", PASSWORD)
        st, _, _ = HostileBrowser(self.authd, "dina", "\x1b[2J\x1b[31mevil").req("/account/")
        self.assertEqual(st, 400)
        ua = ('evil"},{"type":"pat.revoked"} <script>alert(1)</script><img src=x>\xe9'
              + "A" * 6000)
        f = HostileBrowser(self.authd, "dina", ua)
        st, _, page = f.req("/account/")
        self.assertEqual(st, 200)
        st, h, _ = f.login(page)
        self.assertEqual((st, h.get("Location")), (303, "/account/"))

        def shown():
            st, h, page = f.req("/account/")
            return (h, page) if st == 200 and 'id="security-log"' in page else None
        h, page = wait_until(shown, 10, "dina's security log")
        self.assertNotIn("<script>alert", page)
        self.assertNotIn("<img src=x", page)
        self.assertIn("&lt;script&gt;alert(1)&lt;/script&gt;", page)
        csp = h.get("Content-Security-Policy", "")
        self.assertIn("default-src 'none'", csp)
        self.assertNotRegex(csp, r"script-src[^;]*unsafe-inline")
        # every audit line on stdout is one JSON object; no raw escape reached the stream
        out = self.authd.output()
        self.assertNotIn("\x1b", out)
        lines = [ln for ln in out.splitlines() if '"specversion"' in ln]
        self.assertTrue(lines)
        for ln in lines:
            self.assertEqual(json.loads(ln)["specversion"], "1.0")
        ours = [json.loads(ln)["data"] for ln in lines if "alert(1)" in ln]
        self.assertTrue(ours)
        for d in ours:
            self.assertEqual(d["address"], "127.0.0.1")
            self.assertTrue(d["user_agent"].startswith('evil"},{"type":"pat.revoked"} <script>'))
            self.assertLess(len(d["user_agent"].encode()), 256)

    def test_hostile_client_name_in_the_consent_event(self):
        """FOUND: a client name (anyone registers one) with a newline and an ANSI escape was
        kept as it was in the consent event's detail, and handed raw by ListAuditEvents to
        dashboards and terminals; control characters in any field are now '?'. HELD: HTML and
        a quote in it are one JSON string on stdout, escaped on the person's security log."""
        self.admin.create_user("gus", PASSWORD)
        name = 'Evil\n\x1b[31m"}</td><script>alert(2)</script><img src=y onerror=alert(3)>'
        st, _, b = self.authd.http("/register", "POST", json.dumps(
            {"client_name": name, "redirect_uris": ["http://127.0.0.1:4567/cb"],
             "token_endpoint_auth_method": "none"}), {"Content-Type": "application/json"})
        if st != 201:  # refused with its control characters: the rest without them
            self.assertEqual(st, 400, b)
            name = name.replace("\n", " ").replace("\x1b", "^")
            st, _, b = self.authd.http("/register", "POST", json.dumps(
                {"client_name": name, "redirect_uris": ["http://127.0.0.1:4567/cb"],
                 "token_endpoint_auth_method": "none"}), {"Content-Type": "application/json"})
        self.assertEqual(st, 201, b)
        client_id = json.loads(b)["client_id"]
        f = Flow(self.authd, "gus")
        _, challenge = pkce()
        f.code(client_id, "http://127.0.0.1:4567/cb", challenge)

        def shown():
            st, _, page = f.req("/account/")
            return page if st == 200 and 'data-type="consent.granted"' in page else None
        page = wait_until(shown, 10, "gus's consent on his security log")
        self.assertNotIn("<script>alert(2)", page)
        self.assertNotIn("<img src=y", page)
        self.assertIn("&lt;script&gt;alert(2)", page)
        out = self.authd.output()
        self.assertNotIn("\x1b", out)
        lines = [ln for ln in out.splitlines() if '"specversion"' in ln and "alert(2)" in ln]
        self.assertTrue(lines)
        for ln in lines:
            self.assertEqual(json.loads(ln)["data"]["type"], "consent.granted")
        # nor a control character in what ListAuditEvents hands a dashboard or a terminal
        evs = [e for e in all_events(self.admin, types=["consent.granted"])
               if "alert(2)" in e.detail]
        self.assertTrue(evs)
        for e in evs:
            self.assertIsNone(re.search(r"[\x00-\x1f\x7f]", e.detail), repr(e.detail))

    # ---- ListAuditEvents ----------------------------------------------------------------------

    def test_list_audit_events_is_the_admin_s_and_checks_what_it_is_sent(self):
        """HELD: an introspect key is refused; forged page tokens, page sizes out of range,
        inverted or negative times and odd types are refused with INVALID_ARGUMENT."""
        with self.assertRaises(grpc.RpcError) as c:
            self.mcp.list_audit()
        self.assertEqual(c.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
        bad = [dict(page_token="+"), dict(page_token="-"), dict(page_token="[" + "0" * 20),
               dict(page_token="(0000000000000000-0-0"), dict(page_token="x" * 400),
               dict(page_token="0000000000000000-0-0\n"), dict(page_size=-1),
               dict(page_size=201), dict(page_size=2**31 - 1), dict(since=-1),
               dict(since=10, until=5), dict(until=2**62), dict(types=["pat.issued signin.failed"]),
               dict(types=["*"]), dict(types=["a"] * 17), dict(user_id="u" * 300)]
        for kw in bad:
            with self.subTest(kw=kw), self.assertRaises(grpc.RpcError) as c:
                self.admin.list_audit(**kw)
            self.assertEqual(c.exception.code(), grpc.StatusCode.INVALID_ARGUMENT, kw)
        # a well-formed token of the far future or past reads nothing odd
        r = self.admin.list_audit(page_token="9999999999999999-zz-zzzzzzzz", page_size=1)
        self.assertLessEqual(len(r.events), 1)
        r = self.admin.list_audit(page_token="0000000000000000-0-0")
        self.assertEqual((len(r.events), r.next_page_token), (0, ""))

    def test_a_person_s_page_shows_only_their_own_events(self):
        """HELD: the security log reads the signed-in person's index only, even when another
        person's user id is sent as a parameter."""
        uid, _ = self.person_with_an_event("ezra")
        self.admin.create_user("fern", PASSWORD)
        f = Flow(self.authd, "fern")
        st, _, page = f.req("/account/")
        st, h, _ = f.login(page)
        self.assertEqual(st, 303)
        for path in ("/account/", f"/account/?user_id={uid}", f"/account/?user={uid}"):
            st, _, page = f.req(path)
            self.assertEqual(st, 200)
            self.assertNotIn("Personal access token created", page)
            self.assertNotIn(uid, re.sub(r"\s+", " ", page))


class AuditFoldingBehindAProxy(ServiceTest):
    """Behind a trusted proxy (X-Forwarded-For read), as a deployment on the internet is."""
    OAUTH = True
    AUTHD_ENV = {"PIPE2_AUTH_TRUSTED_PROXIES": "127.0.0.1/32",
                 "PIPE2_AUTH_ACCOUNT_PAGES": "on"}

    def test_one_ipv6_subnet_cannot_hide_the_other_addresses(self):
        """FOUND: failed sign-ins were folded per address, and an IPv6 address is one of the
        2^64 anyone given a /64 has: 300 of them in a minute took every one of the 256
        buckets, and the address really stuffing credentials was folded into "(other
        addresses)". An IPv6 address now counts as its /64, as every limit per address does."""
        f = Flow(self.authd, "x")
        st, _, page = f.req("/account/")
        self.assertEqual(st, 200)
        form = {"csrf": Flow.field(page, "csrf"), "q": Flow.field(page, "q")}
        cookie = "; ".join(f"{k}={v}" for k, v in f.cookies.items())
        statuses, lock = {}, threading.Lock()

        def attempt(addr):
            body = urllib.parse.urlencode(dict(form, username="ghost" + secrets.token_hex(6),
                                               password="wrong " + secrets.token_hex(8)))
            c = http.client.HTTPConnection("127.0.0.1", self.authd.http_port, timeout=30)
            try:
                c.request("POST", "/login", body, dict(FORM, Cookie=cookie,
                                                       **{"X-Forwarded-For": addr}))
                st = c.getresponse().status
            finally:
                c.close()
            with lock:
                statuses[st] = statuses.get(st, 0) + 1

        # aligned to a minute's start, so that the whole burst folds in one minute
        wait_until(lambda: time.time() % 60 < 40, 30, "a minute with 20 s left", interval=0.2)
        started = time.time()

        def spray(k):
            for i in range(k, 300, 16):
                attempt(f"2001:db8:0:0:{secrets.randbelow(65536):x}:{i:x}::1")
        ts = [threading.Thread(target=spray, args=(k,)) for k in range(16)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        for _ in range(3):
            attempt("198.51.100.7")
        self.assertEqual(sum(statuses.values()), 303, statuses)
        self.assertEqual(int(started // 60), int(time.time() // 60), "the burst took a minute")
        wait_until(lambda: time.time() >= (int(started) // 60 + 1) * 60 + 2, 70,
                   "the next minute", interval=0.5)
        evs = wait_until(lambda: all_events(self.admin, types=["signin.failed"]) or None, 10,
                         "the aggregates written")
        addrs = {e.address: e for e in evs}
        self.assertIn("198.51.100.7", addrs, "the stuffing address was hidden among others")
        self.assertNotIn("(other addresses)", addrs)
        self.assertLessEqual(len(evs), 4)


if __name__ == "__main__":
    unittest.main()
