"""Hostile traffic: each attack of the hostile-traffic issue, against real processes on
loopback, asserting the promises while it runs.

- A storm of sign-ins with random usernames from 30 addresses (127.0.0.x aliases) against
  replica A: a PAT revoked through replica B is REVOKED on A within 1 s, Introspect is never
  UNAVAILABLE, health stays SERVING, /healthz answers within 100 ms, sign-ins beyond the
  hashing capacity get 503 with Retry-After.
- 100 concurrent guesses at one account: at most the limit are evaluated, the right password
  is refused inside the burst; failures for other usernames from the victim's address do not
  stop the victim; behind a trusted proxy the limits follow the forwarded address, and
  forwarded headers from an untrusted peer are ignored; the account throttle spaces attempts
  out and lets the right password in once its delay has passed.
- Under a descriptor limit of 1024: 1,100 slow facade connections and 300 slow gRPC ones;
  new gRPC connections and calls work throughout, fewer than 100 log lines a second, and the
  slow connections are closed by their deadline.
- Half-sent gRPC requests (with and without a key) and half-sent facade bodies: RSS stays
  under 200 MB and the connections are closed by their deadline.
- Under a descriptor limit of 1024: 1,100 idle forward-auth connections and 600 idle HTTP/2
  ones from one address each; the server keeps only the per-address share of each port, and
  forward-auth, gRPC health and /healthz answer everyone else.
- 1,000 HTTP/2 connections x 256 half-open Health/Check streams with no key: RSS under
  200 MB, and gRPC health from another address SERVING meanwhile; 20 x 256 health checks
  whose answers the peer never takes (stream windows 0) keep no one else out either.
- Two peers (no key, and an introspect key) that never read nor acknowledge SETTINGS and
  send requests as fast as they are taken: the server stops reading them, RSS stays flat.

Every load is bounded in count and time; everything is stopped by PID (harness.Env).
"""
import concurrent.futures
import http.client
import os
import resource
import secrets
import select
import socket
import struct
import threading
import time
import unittest
import urllib.parse

from harness import Authd, Env, H2, basic, free_port, oauth_authd, wait_until
from p2a_client import pb

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
PASSWORD = "a long enough passphrase"
CSRF = "C" * 43
SVC = "/pipe2.auth.v1.TokenService/"
HEALTH = "/grpc.health.v1.Health/Check"


def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(n, hard), hard))


def login(port, username, password, src="127.0.0.1", headers=None, timeout=30):
    """POST /login as a browser would (double-submit CSRF); (status, headers, body), the
    Set-Cookie headers (session, device) joined by newlines."""
    body = urllib.parse.urlencode({"csrf": CSRF, "q": "response_type=code&client_id=c_x",
                                   "username": username, "password": password})
    h = {**FORM, "Cookie": f"p2a_csrf={CSRF}", **(headers or {})}
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout, source_address=(src, 0))
    try:
        c.request("POST", "/login", body, h)
        r = c.getresponse()
        got = {}
        for k, v in r.getheaders():
            got[k] = got[k] + "\n" + v if k in got else v
        return r.status, got, r.read().decode()
    finally:
        c.close()


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def closed_within(socks, seconds):
    """How many of socks the server has closed within seconds (each read until EOF/reset)."""
    deadline = time.monotonic() + seconds
    closed = 0
    for s in socks:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return closed
            s.settimeout(left)
            try:
                if not s.recv(65536):
                    closed += 1
                    break
            except (ConnectionResetError, BrokenPipeError):
                closed += 1
                break
            except socket.timeout:
                return closed
    return closed


class LoginStorm(unittest.TestCase):
    def test_sign_in_storm_never_costs_a_revocation(self):
        env = Env()
        try:
            a = oauth_authd(env)
            b = env.authd()
            admin_a, admin_b = a.client(env.admin_key), b.client(env.admin_key)
            mcp_a = a.client(env.introspect_key)
            admin_a.create_user("alice", PASSWORD)
            pat = admin_a.issue("u-storm", "storm").token
            self.assertTrue(mcp_a.introspect(pat).active)
            jti = admin_a.list("u-storm").tokens[0].jti

            results, stop = [], threading.Event()
            # an UNAVAILABLE Introspect raises: it ends the watch with "error"
            seen = {"not_serving": 0, "introspections": 0, "healthz_max": 0.0,
                    "revoked_after": None}

            def attacker(i):
                src = f"127.0.0.{2 + i % 30}"
                return login(a.http_port, "u" + secrets.token_hex(6), "wrong password", src)

            def watch():
                health = a.client()
                try:
                    while not stop.is_set():
                        mcp_a.introspect(pat)
                        seen["introspections"] += 1
                        if health.health().status != 1:
                            seen["not_serving"] += 1
                        t0 = time.monotonic()
                        st = a.http("/healthz", timeout=2)[0]
                        took = time.monotonic() - t0
                        self.assertEqual(st, 200)
                        seen["healthz_max"] = max(seen["healthz_max"], took)
                        time.sleep(0.02)
                except Exception as e:  # noqa: BLE001 -- any failure of a call counts
                    seen["error"] = repr(e)
                finally:
                    health.close()

            w = threading.Thread(target=watch)
            w.start()
            with concurrent.futures.ThreadPoolExecutor(max_workers=60) as pool:
                futs = [pool.submit(attacker, i) for i in range(400)]
                # the storm is on: revoke through B, watch A
                wait_until(lambda: sum(f.done() for f in futs) >= 20, 60, "the storm to start")
                t0 = time.monotonic()
                admin_b.revoke(jti)
                while mcp_a.introspect(pat).reason != pb.REVOKED:
                    self.assertLess(time.monotonic() - t0, 1.0, "revocation late on A")
                    time.sleep(0.005)
                seen["revoked_after"] = time.monotonic() - t0
                storm_running = sum(f.done() for f in futs) < 400
                results = [f.result() for f in futs]
            stop.set()
            w.join()
            codes = [r[0] for r in results]
            print(f"storm: {len(codes)} sign-ins, 401: {codes.count(401)}, 429: "
                  f"{codes.count(429)}, 503: {codes.count(503)}; revoked on A after "
                  f"{seen['revoked_after'] * 1000:.1f} ms; {seen['introspections']} "
                  f"introspections; /healthz max {seen['healthz_max'] * 1000:.1f} ms")
            self.assertNotIn("error", seen, seen.get("error"))
            self.assertTrue(storm_running, "the revocation must be checked during the storm")
            self.assertEqual(seen["not_serving"], 0)
            self.assertLess(seen["healthz_max"], 0.1)
            self.assertTrue(set(codes) <= {401, 429, 503}, set(codes))
            busy = [r for r in results if r[0] == 503]
            self.assertGreater(len(busy), 0, "the storm should exceed the hashing capacity")
            self.assertTrue(all(r[1].get("Retry-After") for r in busy))
            self.assertGreater(seen["introspections"], 10)
            for c in (admin_a, admin_b, mcp_a):
                c.close()
        finally:
            env.close()


class LoginLimits(unittest.TestCase):
    LIMIT = 5

    @classmethod
    def setUpClass(cls):
        cls.env = Env()
        # (100 connections at once from one address: over the connection bound per address,
        # which is not what this class tests)
        cls.a = oauth_authd(cls.env, {"PIPE2_AUTH_LOGIN_RATE_LIMIT": str(cls.LIMIT),
                                      "PIPE2_AUTH_LOGIN_THROTTLE_AFTER": "1000",
                                      "PIPE2_AUTH_HTTP_MAX_CONNECTIONS_PER_ADDRESS": "1000",
                                      "PIPE2_AUTH_TRUSTED_PROXIES": "127.0.0.1/32"})
        admin = cls.a.client(cls.env.admin_key)
        for u in ("alice", "bob", "carol", "dave"):
            admin.create_user(u, PASSWORD)
        admin.close()

    @classmethod
    def tearDownClass(cls):
        cls.env.close()

    def test_burst_at_one_account(self):
        # 99 wrong guesses and the right password last, all at once, from one address
        guesses = [f"guess {i}" for i in range(99)] + [PASSWORD]
        with concurrent.futures.ThreadPoolExecutor(max_workers=100) as pool:
            codes = list(pool.map(lambda pw: login(self.a.http_port, "alice", pw,
                                                   "127.0.0.5")[0], guesses))
        print(f"burst: 401 x{codes.count(401)}, 429 x{codes.count(429)}, 503 x{codes.count(503)}")
        evaluated = codes.count(401)
        self.assertLessEqual(evaluated, self.LIMIT)
        self.assertNotEqual(codes[-1], 303, "the right password got in inside the burst")
        self.assertEqual(evaluated + codes.count(429) + codes.count(503), 100)
        # the burst goes on one at a time: the attempts left are used up, then refused
        for _ in range(self.LIMIT - evaluated):
            self.assertEqual(login(self.a.http_port, "alice", "again", "127.0.0.5")[0], 401)
        st, h, page = login(self.a.http_port, "alice", PASSWORD, "127.0.0.5")
        self.assertEqual(st, 429)  # the right password, inside the window: refused
        self.assertIn("Retry-After", h)
        self.assertIn("Too many failed sign-in attempts", page)

    def test_other_usernames_do_not_lock_out(self):
        for _ in range(20):
            st = login(self.a.http_port, "u" + secrets.token_hex(5), "nope", "127.0.0.6")[0]
            self.assertEqual(st, 401)
        st, h, _ = login(self.a.http_port, "bob", PASSWORD, "127.0.0.6")
        self.assertEqual(st, 303)
        self.assertIn("p2a_session=", h.get("Set-Cookie", ""))

    def test_forwarded_addresses_behind_a_trusted_proxy(self):
        # 100 forwarded clients, one failure each at carol: none is over its own limit
        for i in range(100):
            st = login(self.a.http_port, "carol", "nope", "127.0.0.1",
                       {"X-Forwarded-For": f"203.0.113.{i}, 127.0.0.1"})[0]
            self.assertEqual(st, 401)
        # one forwarded client uses its attempts; another still signs in
        for _ in range(self.LIMIT - 1):
            login(self.a.http_port, "carol", "nope", "127.0.0.1", {"X-Forwarded-For": "203.0.113.7"})
        self.assertEqual(login(self.a.http_port, "carol", PASSWORD, "127.0.0.1",
                               {"X-Forwarded-For": "203.0.113.7"})[0], 429)
        self.assertEqual(login(self.a.http_port, "carol", PASSWORD, "127.0.0.1",
                               {"Forwarded": 'for="[2001:db8::9]:4711"'})[0], 303)

    def test_forwarded_headers_of_an_untrusted_peer_are_ignored(self):
        for i in range(self.LIMIT):
            st = login(self.a.http_port, "dave", "nope", "127.0.0.9",
                       {"X-Forwarded-For": f"198.51.100.{i}"})[0]
            self.assertEqual(st, 401)
        st = login(self.a.http_port, "dave", PASSWORD, "127.0.0.9",
                   {"X-Forwarded-For": "198.51.100.200"})[0]
        self.assertEqual(st, 429)


class AccountThrottle(unittest.TestCase):
    def test_throttle_spaces_attempts_without_locking_out(self):
        env = Env()
        try:
            a = oauth_authd(env, {"PIPE2_AUTH_LOGIN_THROTTLE_AFTER": "3",
                                  "PIPE2_AUTH_LOGIN_RATE_LIMIT": "100"})
            admin = a.client(env.admin_key)
            admin.create_user("erin", PASSWORD)
            admin.close()
            for i in range(3):  # from three addresses: no pair limit is reached
                self.assertEqual(login(a.http_port, "erin", "nope", f"127.0.0.{20 + i}")[0], 401)
            self.assertEqual(login(a.http_port, "erin", "nope", "127.0.0.30")[0], 401)
            # the 4th failure spaced attempts out: the next one waits, even the right one
            st, h, _ = login(a.http_port, "erin", PASSWORD, "127.0.0.31")
            self.assertEqual(st, 429)
            retry = int(h["Retry-After"])
            self.assertGreaterEqual(retry, 1)
            wait_until(lambda: login(a.http_port, "erin", PASSWORD, "127.0.0.31")[0] == 303,
                       retry + 5, "the right password once the delay has passed", interval=0.5)
        finally:
            env.close()


class LibeventLines(unittest.TestCase):
    def test_connection_close_requests_write_a_bounded_log(self):
        """libevent 2.1 warns once for every facade connection a "Connection: close" request
        ends: 300 such requests wrote 300 lines before; now a line a second at most."""
        env = Env()
        try:
            a = oauth_authd(env)
            before = len(a.output().splitlines())
            t0 = time.monotonic()
            for _ in range(300):
                with socket.create_connection(("127.0.0.1", a.http_port), timeout=5) as s:
                    s.sendall(b"GET /.well-known/oauth-authorization-server HTTP/1.1\r\n"
                              b"Host: x\r\nConnection: close\r\n\r\n")
                    while s.recv(65536):
                        pass
            seconds = time.monotonic() - t0
            lines = [x for x in a.output().splitlines()[before:] if '"libevent"' in x]
            self.assertLessEqual(len(lines), int(seconds) + 2, lines[:3])
        finally:
            env.close()


class SlowConnections(unittest.TestCase):
    def test_slow_connections_under_1024_descriptors(self):
        raise_nofile(8192)
        env = Env()
        try:
            a = env.authd({"PIPE2_AUTH_HEADER_TIMEOUT": "3", "PIPE2_AUTH_REQUEST_TIMEOUT": "3",
                           "PIPE2_AUTH_WORKERS": "2"},
                          wrap=["prlimit", "--nofile=1024:1024"] + os.environ.get("P2A_WRAP", "").split())
            log_before = len(a.output().splitlines())
            slow_http, slow_rpc = [], []
            t_attack = time.monotonic()
            for i in range(1100):
                s = socket.socket()
                s.bind((f"127.0.0.{10 + i % 30}", 0))
                s.settimeout(5)
                try:
                    s.connect(("127.0.0.1", a.http_port))
                    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                except OSError:
                    pass
                slow_http.append(s)
            for i in range(300):
                s = socket.socket()
                s.bind((f"127.0.0.{40 + i % 30}", 0))
                s.settimeout(5)
                try:
                    s.connect(("127.0.0.1", a.port))
                    s.sendall(b"PRI * HTTP/2.0\r\n")
                except OSError:
                    pass
                slow_rpc.append(s)
            # trickle a byte now and then, and call through new connections meanwhile
            calls = 0
            t_end = time.monotonic() + 2.5
            while time.monotonic() < t_end:
                for s in slow_http[::50] + slow_rpc[::20]:
                    try:
                        s.send(b"a")
                    except OSError:
                        pass
                mcp = a.client(env.introspect_key)
                try:
                    self.assertEqual(mcp.introspect("x").reason, pb.MALFORMED)
                    self.assertEqual(mcp.health().status, 1)
                    calls += 1
                finally:
                    mcp.close()
            # at its bound (a quarter of 1,024) the facade stops accepting: the rest wait in the
            # kernel's queue, holding no descriptor of ours, and are taken (and closed by the
            # deadline) a round at a time
            closed_http = closed_within(slow_http, 40)
            closed_rpc = closed_within(slow_rpc, 4)
            took = time.monotonic() - t_attack
            lines = len(a.output().splitlines()) - log_before
            print(f"slow: {calls} fresh-connection rounds served during the attack; "
                  f"{closed_http}/1100 facade and {closed_rpc}/300 RPC connections closed by "
                  f"the server; {lines} log lines in {took:.1f} s")
            self.assertGreater(calls, 3)
            self.assertEqual(closed_http, 1100)
            self.assertEqual(closed_rpc, 300)
            self.assertLess(lines / took, 100)
            for s in slow_http + slow_rpc:
                s.close()
            mcp = a.client(env.introspect_key)
            self.assertEqual(mcp.health().status, 1)
            mcp.close()
        finally:
            env.close()


# Memory is measured on the build that ships: a sanitizer's allocator keeps what is freed in
# quarantine, so RSS there says nothing about ours. The test command builds it first.
RELEASE_AUTHD = os.environ.get("P2A_RELEASE_AUTHD") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "build", "release", "pipe2-authd")


def release_authd(case, env, extra):
    """A release-build pipe2-authd (memory figures under ASan mean nothing) with 8,192
    descriptors allowed, started in env."""
    if not os.access(RELEASE_AUTHD, os.X_OK):
        case.fail(f"no release build at {RELEASE_AUTHD}: scripts/test.sh builds it")
    raise_nofile(8192)
    a = Authd(env, extra)
    a.binary = RELEASE_AUTHD
    env.authds.append(a)
    a.start()
    return a


class HalfSent(unittest.TestCase):
    def test_half_sent_requests_hold_bounded_memory(self):
        env = Env()
        try:
            a = release_authd(self, env, {
                "PIPE2_AUTH_HEADER_TIMEOUT": "3", "PIPE2_AUTH_REQUEST_TIMEOUT": "3",
                "PIPE2_AUTH_HTTP_MAX_CONNECTIONS": "1024",
                "PIPE2_AUTH_HTTP_MAX_CONNECTIONS_PER_ADDRESS": "1024"})
            pid = a.proc.pid
            base = rss_mb(pid)
            frame = bytes([0]) + (262_000).to_bytes(4, "big")
            # unauthenticated: health checks with a large, never finished message
            open_conns = []
            for _ in range(250):
                c = H2(a.port)
                for _ in range(4):
                    sid = c.start(HEALTH)
                    c.send(sid, frame + b"\0" * 16000, end=False)
                open_conns.append(c)
            # authenticated: IssueToken with 200 KB of a 262 KB message, never finished
            for _ in range(50):
                c = H2(a.port)
                for _ in range(4):
                    sid = c.start(SVC + "IssueToken", env.admin_key)
                    c.send(sid, frame + b"\0" * 200_000, end=False)
                open_conns.append(c)
            # the facade: bodies of 60,000 bytes, 50,000 sent
            facade = []
            for i in range(1000):
                s = socket.create_connection(("127.0.0.1", a.http_port), timeout=5)
                s.sendall(b"POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: "
                          b"application/x-www-form-urlencoded\r\nContent-Length: 60000\r\n\r\n"
                          + b"a" * 50_000)
                facade.append(s)
            peak = rss_mb(pid)
            # by their deadline: every stream reset or answered, every facade connection closed
            closed = closed_within(facade, 10)
            deadline = time.monotonic() + 10
            streams_ended = 0
            for c in open_conns:
                try:
                    while not all(st["ended"] for st in c.streams.values()):
                        c.pump(max(0.1, deadline - time.monotonic()))
                except (ConnectionError, OSError):
                    pass
                streams_ended += sum(st["ended"] for st in c.streams.values())
            after = rss_mb(pid)
            mcp = a.client(env.introspect_key)
            self.assertEqual(mcp.health().status, 1)
            mcp.close()
            try:
                wait_until(lambda: rss_mb(pid) < base + 40, 30, "memory to be returned",
                           interval=0.5)
            finally:
                print(f"half-sent: RSS {base:.0f} MB before, {peak:.0f} MB at the peak, "
                      f"{after:.0f} MB once closed, {rss_mb(pid):.0f} MB settled; "
                      f"{closed}/1000 facade connections closed and {streams_ended}/1200 "
                      f"streams ended by their deadline")
            self.assertEqual(streams_ended, 1200)
            self.assertLess(peak, 200)
            self.assertEqual(closed, 1000)
            for c in open_conns:
                c.close()
            for s in facade:
                s.close()
        finally:
            env.close()


def connect_from(src, port, data):
    """A socket from the source address src to port on 127.0.0.1 that has sent data; a
    connection refused or reset on the way is returned all the same (the server's choice)."""
    s = socket.socket()
    s.bind((src, 0))
    s.settimeout(5)
    try:
        s.connect(("127.0.0.1", port))
        s.sendall(data)
    except OSError:
        pass
    return s


def still_open(socks):
    """Drops from socks those the server has closed (EOF or reset); how many are left."""
    p = select.poll()
    by_fd = {s.fileno(): s for s in socks if s.fileno() >= 0}
    for fd in by_fd:
        p.register(fd, select.POLLIN)
    for fd, _ in p.poll(0):
        s = by_fd[fd]
        try:
            s.setblocking(False)
            while s.recv(65536):
                pass
        except BlockingIOError:
            continue
        except OSError:
            pass
        s.close()
        socks.remove(s)
    return len(socks)


H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes(9)[:3] + b"\x04\x00" + bytes(4)


def h2_frame(ftype, flags, sid, payload):
    return len(payload).to_bytes(3, "big") + bytes([ftype, flags]) + sid.to_bytes(4, "big") + payload


def h2_headers(path, key=None):
    """A request's HEADERS block in HPACK that needs no table (indexed static entries and
    literals without indexing), so one block serves every stream."""
    def lit(index, value):
        return bytes([index, len(value)]) + value
    block = (b"\x83\x86" + lit(0x04, path.encode()) + lit(0x01, b"127.0.0.1")
             + b"\x0f\x10" + bytes([16]) + b"application/grpc"
             + b"\x00\x02te\x08trailers")
    if key:  # authorization: static entry 23
        block += b"\x0f\x08" + lit(0, b"Bearer " + key.encode())[1:]
    return block


def h2_health_headers():
    """A HEADERS block for Health/Check with no key."""
    return h2_headers(HEALTH)


def h2_read_until_ping_ack(sock, deadline):
    """Reads frames until the server's PING ACK (it has processed everything sent before our
    PING); the number of RST_STREAM frames seen on the way."""
    buf, resets = b"", 0
    while True:
        while len(buf) >= 9:
            n = int.from_bytes(buf[:3], "big")
            if len(buf) < 9 + n:
                break
            ftype, flags = buf[3], buf[4]
            buf = buf[9 + n:]
            if ftype == 3:
                resets += 1
            if ftype == 6 and flags & 1:
                return resets
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("no PING ACK in time: the streams were not all read")
        sock.settimeout(left)
        data = sock.recv(65536)
        if not data:
            raise AssertionError("the server closed an attacking connection")
        buf += data


class PortBounds(unittest.TestCase):
    def test_one_address_takes_no_port_under_1024_descriptors(self):
        raise_nofile(8192)
        env = Env()
        try:
            fwd_port = free_port()
            a = env.authd({"PIPE2_AUTH_FORWARD_AUTH_LISTEN": f"127.0.0.1:{fwd_port}",
                           "PIPE2_AUTH_HEADER_TIMEOUT": "30", "PIPE2_AUTH_WORKERS": "2"},
                          wrap=["prlimit", "--nofile=1024:1024"] + os.environ.get("P2A_WRAP", "").split())
            # the derived bounds: 3/8 of 1,024 for the RPC port, 1/8 for forward-auth, per
            # address a quarter of the RPC port's and half of forward-auth's
            self.assertIn("connections: RPC 384 (96 per address), forward-auth 128 (64 per "
                          "address)", a.output())
            fwd = [connect_from("127.0.0.2", fwd_port, b"") for _ in range(1100)]
            rpc = [connect_from("127.0.0.3", a.port, H2_PREFACE) for _ in range(600)]
            wait_until(lambda: still_open(fwd) <= 64 and still_open(rpc) <= 96, 20,
                       "the connections past one address's share to be closed")
            held_fwd, held_rpc = len(fwd), len(rpc)
            answered, serving = 0, 0
            for i in range(10):
                s = connect_from(f"127.0.0.{100 + i}", fwd_port,
                                 b"GET /forward-auth HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                try:
                    answered += s.recv(100).startswith(b"HTTP/1.1 4")
                except OSError:
                    pass
                s.close()
                serving += a.health() == 1
            st, _, _ = a.ops("/healthz")
            print(f"ports: one address holds {held_fwd}/1100 forward-auth and {held_rpc}/600 "
                  f"RPC connections; {answered}/10 forward-auth answers and {serving}/10 "
                  f"health checks SERVING from other addresses")
            self.assertEqual(answered, 10)
            self.assertEqual(serving, 10)
            self.assertEqual(st, 200)
            self.assertGreaterEqual(held_fwd, 50)  # the share is kept, not everything refused
            for s in fwd + rpc:
                s.close()
        finally:
            env.close()

    def test_half_open_streams_are_bounded_per_worker(self):
        env = Env()
        try:
            a = release_authd(self, env, {
                "PIPE2_AUTH_HEADER_TIMEOUT": "60", "PIPE2_AUTH_REQUEST_TIMEOUT": "60",
                "PIPE2_AUTH_RPC_MAX_CONNECTIONS": "2000",
                "PIPE2_AUTH_RPC_MAX_CONNECTIONS_PER_ADDRESS": "100"})
            pid = a.proc.pid
            base = rss_mb(pid)
            block = h2_health_headers()
            conns, peak, started = [], base, time.monotonic()
            for i in range(1000):
                frames = [h2_frame(1, 0x4, 1 + 2 * k, block) for k in range(256)]  # END_HEADERS
                frames.append(h2_frame(6, 0, 0, b"p2a-ping"))
                s = connect_from(f"127.0.0.{10 + i % 20}", a.port, H2_PREFACE + b"".join(frames))
                conns.append(s)
                if i % 100 == 99:
                    peak = max(peak, rss_mb(pid))
            deadline = time.monotonic() + 120
            resets = 0
            for n, s in enumerate(conns):
                resets += h2_read_until_ping_ack(s, deadline)
                if n % 100 == 99:
                    peak = max(peak, rss_mb(pid))
            took = time.monotonic() - started
            peak = max(peak, rss_mb(pid))
            # every stream is read and held or refused: another address is still answered
            serving = sum(a.health() == 1 for _ in range(5))
            peak = max(peak, rss_mb(pid))
            print(f"streams: RSS {base:.0f} MB before, {peak:.0f} MB at the peak with 1,000 x "
                  f"256 half-open streams sent in {took:.1f} s; {resets} of 256,000 refused or "
                  f"trimmed; {serving}/5 health checks SERVING meanwhile")
            self.assertLess(peak, 200)
            self.assertEqual(serving, 5)
            self.assertGreater(resets, 0)
            for s in conns:
                s.close()
        finally:
            env.close()

    def test_answers_a_peer_does_not_take_hold_no_stream_from_others(self):
        """Health checks whose answers the peer never takes (its stream windows are 0): 20
        connections x 256 streams, more than the workers' bound; another address's health
        check is still SERVING, the stuck streams making room."""
        env = Env()
        try:
            a = env.authd()
            block = h2_health_headers()
            preface = (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
                       + h2_frame(4, 0, 0, b"\x00\x04" + bytes(4)))  # INITIAL_WINDOW_SIZE 0
            conns = []
            for i in range(20):
                frames = []
                for k in range(256):
                    frames.append(h2_frame(1, 0x4, 1 + 2 * k, block))  # END_HEADERS
                    frames.append(h2_frame(0, 0x1, 1 + 2 * k, bytes(5)))  # END_STREAM
                frames.append(h2_frame(6, 0, 0, b"p2a-ping"))
                conns.append(connect_from("127.0.0.2", a.port, preface + b"".join(frames)))
            deadline = time.monotonic() + 60
            for s in conns:
                h2_read_until_ping_ack(s, deadline)
            serving = sum(a.health() == 1 for _ in range(5))
            print(f"stuck answers: 20 x 256 health checks never read; {serving}/5 health checks "
                  f"SERVING from another address")
            self.assertEqual(serving, 5)
            for s in conns:
                s.close()
        finally:
            env.close()


class UnreadAnswers(unittest.TestCase):
    def test_a_peer_that_takes_no_answer_is_not_read(self):
        """Two peers that never read and never acknowledge our SETTINGS send requests with
        no body as fast as the server takes them, one with no key (Health/Check) and one
        with an introspect key (Introspect: its connection reads 64 KiB a turn). Once their
        answers back up, the server stops reading them: each can push only what the socket
        buffers hold, and the RSS stays flat. It read them on and refused every stream past
        the 256 with a RST_STREAM that nghttp2 held behind the full output: 20 MB of RSS a
        second a connection, without end."""
        env = Env()
        try:
            a = release_authd(self, env, {})
            pid = a.proc.pid
            base = rss_mb(pid)
            def batch(p):  # 256 requests with no body, on the peer's next stream ids
                ids = range(p["next"], p["next"] + 512, 2)
                p["next"] += 512
                return b"".join(h2_frame(1, 0x5, sid, p["block"]) for sid in ids)  # END_STREAM
            peers = []
            for path, key in ((HEALTH, None), (SVC + "Introspect", env.introspect_key)):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.connect(("127.0.0.1", a.port))
                s.sendall(H2_PREFACE)  # and never the ACK of the server's SETTINGS
                s.setblocking(False)
                p = {"sock": s, "block": h2_headers(path, key), "next": 1, "sent": 0,
                     "last": time.monotonic()}
                p["out"] = batch(p)
                peers.append(p)
            deadline, peak = time.monotonic() + 30, base
            while time.monotonic() < deadline and peak - base < 64:
                now = time.monotonic()
                if all(now - p["last"] > 1 for p in peers):
                    break  # neither has been read for a second
                for p in peers:
                    try:
                        n = p["sock"].send(p["out"])
                    except BlockingIOError:
                        continue
                    p["sent"] += n
                    p["last"] = now
                    p["out"] = p["out"][n:] or batch(p)
                peak = max(peak, rss_mb(pid))
                time.sleep(0.002)
            sent = [round(p["sent"] / 1e6, 1) for p in peers]
            print(f"unread answers: {sent} MB sent by a peer with no key and one with a key "
                  f"before the server stopped reading them; RSS {base:.0f} MB before, "
                  f"{peak:.0f} MB at the peak")
            self.assertTrue(all(time.monotonic() - p["last"] > 1 for p in peers),
                            f"the server still reads peers that take no answer ({sent} MB)")
            self.assertLess(peak - base, 32)
            self.assertEqual(a.health(), 1)
            for p in peers:
                p["sock"].close()
        finally:
            env.close()


def raw_http(port, data, timeout=5):
    """Sends data on a fresh connection; (everything answered, whether the server closed)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        got, closed = b"", False
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            got += chunk
        return got.decode(errors="replace"), closed
    finally:
        s.close()


class StrictEdges(unittest.TestCase):
    """Items 6 and 7 of the issue, each of which failed before its fix."""

    @classmethod
    def setUpClass(cls):
        from test_oauth import Flow, pkce  # noqa: F401 -- the browser of the OAuth tests
        cls.Flow, cls.pkce = Flow, staticmethod(pkce)
        cls.env = Env()
        cls.a = oauth_authd(cls.env, {"PIPE2_AUTH_REFRESH_GRACE": "10",
                                      "PIPE2_AUTH_REGISTER_RATE_LIMIT": "1000"})
        # a second replica on the same Redis and issuer, with no refresh grace
        cls.b = oauth_authd(cls.env, {"PIPE2_AUTH_ISSUER": cls.a.issuer,
                                      "PIPE2_AUTH_REFRESH_GRACE": "0"})
        cls.admin = cls.a.client(cls.env.admin_key)
        cls.mcp = cls.a.client(cls.env.introspect_key)
        cls.admin.create_user("ana", PASSWORD)

    @classmethod
    def tearDownClass(cls):
        cls.admin.close()
        cls.mcp.close()
        cls.env.close()

    def register(self, method="none"):
        import json
        st, _, b = self.a.http("/register", "POST", json.dumps(
            {"redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": method}),
            {"Content-Type": "application/json"})
        self.assertEqual(st, 201, b)
        return json.loads(b)

    def grant(self, client, authd=None):
        import json
        v, ch = self.pkce()
        code = self.Flow(self.a).code(client["client_id"], "http://127.0.0.1:4567/cb", ch)
        form = {"grant_type": "authorization_code", "code": code, "code_verifier": v,
                "redirect_uri": "http://127.0.0.1:4567/cb", "client_id": client["client_id"]}
        hdr = dict(FORM)
        if client.get("client_secret"):
            hdr.update(basic(client["client_id"], client["client_secret"]))
            del form["client_id"]
        st, _, b = (authd or self.a).http("/token", "POST", urllib.parse.urlencode(form), hdr)
        self.assertEqual(st, 200, b)
        return json.loads(b)

    def refresh(self, authd, client, rt):
        import json
        st, _, b = authd.http("/token", "POST", urllib.parse.urlencode(
            {"grant_type": "refresh_token", "refresh_token": rt,
             "client_id": client["client_id"]}), FORM)
        return st, json.loads(b)

    def introspect(self, token, headers, **form):
        import json
        st, _, b = self.a.http("/introspect", "POST",
                               urllib.parse.urlencode({"token": token, **form}),
                               {**FORM, **headers})
        return st, json.loads(b)

    def test_introspect_only_for_service_keys_and_confidential_clients(self):
        public, conf, other = self.register(), self.register("client_secret_basic"), \
            self.register("client_secret_basic")
        pat = self.admin.issue("u-intro", "x").token
        # any other scheme, or a public client, is refused (the hole: 'Authorization: x')
        self.assertEqual(self.introspect(pat, {"Authorization": "x"},
                                         client_id=public["client_id"])[0], 401)
        self.assertEqual(self.introspect(pat, {}, client_id=public["client_id"])[0], 401)
        self.assertEqual(self.introspect(pat, basic(public["client_id"], ""))[0],
                         401)
        # a confidential client learns about its own tokens only
        t = self.grant(conf)
        st, j = self.introspect(pat, basic(conf["client_id"], conf["client_secret"]))
        self.assertEqual((st, j), (200, {"active": False}))
        st, j = self.introspect(t["access_token"],
                                basic(other["client_id"], other["client_secret"]))
        self.assertEqual((st, j), (200, {"active": False}))
        st, j = self.introspect(t["access_token"],
                                basic(conf["client_id"], conf["client_secret"]))
        self.assertTrue(j["active"])
        st, j = self.introspect(t["access_token"], {}, client_id=conf["client_id"],
                                client_secret=conf["client_secret"])
        self.assertTrue(j["active"])
        # service keys see everything
        st, j = self.introspect(pat, {"Authorization": "Bearer " + self.env.introspect_key})
        self.assertTrue(j["active"])

    def test_request_framing_is_strict(self):
        port = self.a.http_port
        cases = [
            (b"POST /token HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 44\r\n\r\n"
             b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 400),
            (b"POST /token HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello", 400),
            (b"GET /healthz HTTP/1.1\r\nHost : x\r\n\r\n", 400),
            (b"POST /token HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
            (b"POST /token HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 411),
            (b"POST /token HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked"
             b"\r\n\r\nabc", 411),
            (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", 400),
            (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n", 400),
            (b"GET /healthz HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400),
            (b"GET /healthz HTTP/1.1\r\nHost: x\rX-A: b\r\n\r\n", 400),
        ]
        for data, status in cases:
            with self.subTest(data=data):
                got, closed = raw_http(port, data)
                self.assertTrue(got.startswith(f"HTTP/1.1 {status} "), got[:200])
                self.assertEqual(got.count("HTTP/1.1 "), 1, got)  # nothing hidden was served
                self.assertIn("Connection: close", got)
                self.assertTrue(closed)
        # a well-formed keep-alive pair on one connection: both answered, both checked
        got, _ = raw_http(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                                b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        self.assertEqual(got.count("HTTP/1.1 200"), 2, got)
        got, closed = raw_http(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                                     b"GET /healthz HTTP/1.1\r\nHost : x\r\n\r\n")
        self.assertEqual((got.count("HTTP/1.1 200"), got.count("HTTP/1.1 400")), (1, 1), got)

    def test_consent_csrf_is_bound_to_its_request(self):
        client = self.register()
        f = self.Flow(self.a)
        pages = []
        for state in ("first", "second"):
            st, _, page = f.authorize(response_type="code", client_id=client["client_id"],
                                      redirect_uri="http://127.0.0.1:4567/cb",
                                      code_challenge=self.pkce()[1], code_challenge_method="S256",
                                      state=state)
            if 'action="/login"' in page:
                st, h, _ = f.login(page)
                self.assertEqual(st, 303)
                st, _, page = f.req(h["Location"])
            self.assertIn('action="/consent"', page)
            pages.append(page)
        # the first page's token does not approve the second request
        st, _, _ = f.consent(pages[1], csrf=f.field(pages[0], "csrf"))
        self.assertEqual(st, 403)
        st, h, _ = f.consent(pages[1])
        self.assertEqual(st, 303)
        self.assertIn("state=second", h["Location"])

    def test_refresh_grace_once_and_zero_means_none(self):
        client = self.register()
        t1 = self.grant(client)
        st, t2 = self.refresh(self.a, client, t1["refresh_token"])
        self.assertEqual(st, 200, t2)
        st, t3 = self.refresh(self.a, client, t1["refresh_token"])  # a lost answer: once
        self.assertEqual(st, 200, t3)
        st, e = self.refresh(self.a, client, t1["refresh_token"])  # twice: reuse
        self.assertEqual((st, e["error"]), (400, "invalid_grant"))
        self.assertEqual(self.mcp.introspect(t3["access_token"]).reason, pb.REVOKED)
        # grace 0 (replica b): a replay in the same second is reuse
        t1 = self.grant(client)
        st, t2 = self.refresh(self.b, client, t1["refresh_token"])
        self.assertEqual(st, 200, t2)
        st, e = self.refresh(self.b, client, t1["refresh_token"])
        self.assertEqual((st, e["error"]), (400, "invalid_grant"))

    def test_high_s_twin_of_a_token_is_refused(self):
        import base64
        from harness import P256_N, b64url
        n = 0
        for _ in range(20):
            tok = self.admin.issue("u-sig", "x").token
            h, p, sig = tok.split(".")
            raw = base64.urlsafe_b64decode(sig + "==")
            r, s = raw[:32], int.from_bytes(raw[32:], "big")
            self.assertLessEqual(s, P256_N // 2)  # we sign with the low s
            twin = f"{h}.{p}.{b64url(r + (P256_N - s).to_bytes(32, 'big'))}"
            self.assertTrue(self.mcp.introspect(tok).active)
            self.assertEqual(self.mcp.introspect(twin).reason, pb.BAD_SIGNATURE)
            n += 1
        self.assertEqual(n, 20)

    def test_metrics_only_on_their_own_listener(self):
        self.assertEqual(self.a.http("/metrics")[0], 404)
        st, _, body = self.a.ops("/metrics")
        self.assertEqual(st, 200)
        self.assertIn("p2a_http_connections ", body)


class IssueDuringStall(unittest.TestCase):
    def test_failed_issuance_leaves_no_active_record(self):
        env = Env()
        try:
            a = env.authd({"PIPE2_AUTH_REDIS_TIMEOUT_MS": "300"})
            admin = a.client(env.admin_key)
            import signal
            import grpc
            env.redis.signal(signal.SIGSTOP)
            try:
                with self.assertRaises(grpc.RpcError) as cm:
                    admin.issue("u-stall", "during a stall", timeout=5)
                self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)
            finally:
                env.redis.signal(signal.SIGCONT)
            # Redis runs what it had queued; the store reconnects
            wait_until(lambda: admin.health().status == 1, 20, "SERVING again")
            wait_until(lambda: self._listed(admin) is not None, 20, "ListTokens to answer")
            self.assertEqual(self._listed(admin), [])
            self.assertEqual(env.redis.cli("KEYS", "p2a:{t}:pat:*").split(), [])
            admin.close()
        finally:
            env.close()

    @staticmethod
    def _listed(admin):
        import grpc
        try:
            return list(admin.list("u-stall", include_revoked=True).tokens)
        except grpc.RpcError:
            return None


if __name__ == "__main__":
    unittest.main()
