"""Keys a cluster-aware proxy can route: every Lua script pipe2-authd sends names every key it
touches in KEYS, and its keys share one slot.

The flows run against the ordinary single redis-server while `redis-cli MONITOR` records
every command, including those each script runs inside Redis. Then:
  - each command a script ran must touch only keys the script declared (COMMAND GETKEYS
    says which arguments of a command are keys): an undeclared key fails the test;
  - every script recorded is sent again, with the same keys and arguments, to a redis-server
    cluster of three nodes on loopback (`redis-cli -c` follows the redirections), where Redis
    itself refuses keys of more than one slot (CROSSSLOT) and a script that reaches a key
    outside its declared slot.
Every other command our code sends (outside scripts) is checked to name at most one slot.
"""
import json
import os
import re
import secrets
import socket
import subprocess
import threading
import time
import unittest
import urllib.parse

from harness import RESOURCE, Env, Redis, free_port, oauth_authd, wait_until
from cryptography.hazmat.primitives.asymmetric import ec

from test_cimd import es256, jwk_of
from test_oauth import FORM, JSONCT, PASSWORD, Flow, pkce
from test_upstream import CLIENT_ID, CLIENT_SECRET, CraftedIdP, Person

ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "a": "\a", "b": "\b", '"': '"', "\\": "\\"}


def monitor_args(line):
    """The arguments of one MONITOR line, its quoted strings decoded (sdscatrepr)."""
    out = []
    for m in re.finditer(r'"((?:[^"\\]|\\.)*)"', line):
        s, i, cur = m.group(1), 0, []
        while i < len(s):
            c = s[i]
            if c == "\\" and i + 1 < len(s):
                n = s[i + 1]
                if n == "x":
                    cur.append(chr(int(s[i + 2:i + 4], 16)))
                    i += 4
                    continue
                cur.append(ESCAPES.get(n, n))
                i += 2
                continue
            cur.append(c)
            i += 1
        out.append("".join(cur))
    return out


class Monitor:
    """MONITOR on its own connection, read by a thread until stop() (which returns the text):
    every line is kept, none lost in a buffer of a process stopped by a signal."""

    def __init__(self, port):
        self.port = port
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.sendall(b"MONITOR\r\n")
        self.buf = b""
        while b"\r\n" not in self.buf:  # +OK: on before the first command of the flows
            self.buf += self.sock.recv(65536)
        self.buf = self.buf.split(b"\r\n", 1)[1]
        self.sock.settimeout(0.2)
        self.done = False
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while not self.done:
            try:
                d = self.sock.recv(1 << 20)
            except socket.timeout:
                continue
            except OSError:
                break
            if not d:
                break
            self.buf += d

    def seen(self, text):
        return text.encode() in self.buf

    def stop(self):
        if not self.done:
            # a marker sent after the flows' last reply: once it is seen, all they sent is too
            marker = f"p2a-monitor-end-{secrets.token_hex(8)}"
            subprocess.run(["redis-cli", "-p", str(self.port), "ECHO", marker],
                           capture_output=True, timeout=10)
            wait_until(lambda: self.seen(marker), 10, "the monitor to see the end marker")
            self.done = True
            self.thread.join(5)
            self.sock.close()
        # each line is a RESP simple string: +<text>
        return "\n".join(line[1:].decode("utf-8", "replace")
                         for line in self.buf.split(b"\r\n") if line.startswith(b"+"))


def parse_monitor(text):
    """[(source, args)] in order; source is 'lua' for what a script ran, else the client."""
    entries = []
    for line in text.splitlines():
        m = re.match(r"^[\d.]+ \[\d+ ([^\]]+)\] ", line)
        if m:
            entries.append((m.group(1), monitor_args(line[m.end():])))
    return entries


def scripts_with_their_commands(entries):
    """[(eval args, [commands it ran])]: a script's commands are the run of 'lua' entries
    next to its EVAL (Redis feeds MONITOR one of the two orders; the test finds which)."""
    evals = [i for i, (src, a) in enumerate(entries) if src != "lua" and a and
             a[0].upper() in ("EVAL", "EVALSHA")]
    # which side: the lua entries follow their EVAL when the first lua entry comes after one
    first_lua = next((i for i, (src, _) in enumerate(entries) if src == "lua"), None)
    after = first_lua is None or any(i < first_lua for i in evals) and \
        entries[first_lua - 1][0] != "lua" and entries[first_lua - 1][1][0].upper() == "EVAL"
    out = []
    for i in evals:
        cmds = []
        j = i + 1 if after else i - 1
        while 0 <= j < len(entries) and entries[j][0] == "lua":
            cmds.append(entries[j][1])
            j = j + 1 if after else j - 1
        out.append((entries[i][1], cmds if after else list(reversed(cmds))))
    return out


class ClusterKeys(unittest.TestCase):
    def test_every_script_declares_its_keys_in_one_slot(self):
        env = Env()
        mon = cluster = None
        try:
            mon = Monitor(env.redis.port)
            self.run_every_flow(env, mon)
            entries = parse_monitor(mon.stop())
            scripts = scripts_with_their_commands(entries)
            kinds = {ev[1] for ev, _ in scripts}
            print(f"\n{len(scripts)} scripts run, {len(kinds)} different ones, "
                  f"{sum(len(c) for _, c in scripts)} commands inside them")
            # every script of src/store (41): a new one must join a flow above
            self.assertEqual(len(kinds), 41, "a script of src/store/ that no flow above ran?")
            self.check_declared(env, scripts)
            self.check_plain_commands(env, entries)
            cluster = Cluster(env.dir)
            self.check_on_cluster(cluster, scripts)
        finally:
            if mon is not None:
                mon.stop()
            if cluster is not None:
                cluster.stop()
            env.close()

    # ---- the flows: every script the code has ------------------------------------------------

    def run_every_flow(self, env, mon):
        a = oauth_authd(env, {"PIPE2_AUTH_LAST_USED_FLUSH_INTERVAL": "1",
                              "PIPE2_AUTH_REVOCATION_POLL_INTERVAL": "1",
                              "PIPE2_AUTH_SWEEP_INTERVAL": "1"})
        admin = a.client(env.admin_key)
        mcp = a.client(env.introspect_key)
        # PATs: issue, use (a last-used mark), list, revoke
        pat = admin.issue("carla", "cluster")
        self.assertTrue(mcp.introspect(pat.token).active)
        wait_until(lambda: admin.list("carla").tokens[0].last_used_at > 0, 10,
                   "the last-used flush")
        admin.revoke(pat.info.jti)
        self.assertEqual(len(admin.list("carla", include_revoked=True).tokens), 1)
        # the audit trail: its writes (above, by every admin call) and its reads
        wait_until(lambda: admin.list_audit(user_id="carla", types=["pat.revoked"]).events, 10,
                   "the revocation in the audit trail")
        admin.list_audit(page_size=5)
        # OAuth: a user, a client, a failed and a good sign-in, consent, codes, refresh,
        # introspection and revocation of each kind of token
        user_id = admin.create_user("ana", PASSWORD).user_id
        st, _, body = a.http("/register", "POST", json.dumps(
            {"client_name": "Cluster", "redirect_uris": ["http://127.0.0.1/cb"],
             "token_endpoint_auth_method": "none"}), JSONCT)
        self.assertEqual(st, 201)
        cid = json.loads(body)["client_id"]
        f = Flow(a)
        st, _, page = f.authorize(response_type="code", client_id=cid,
                                  redirect_uri="http://127.0.0.1/cb",
                                  code_challenge=pkce()[1], code_challenge_method="S256")
        self.assertEqual(f.login(page, password="wrong password")[0], 401)

        def grant():
            v, c = pkce()
            code = f.code(cid, "http://127.0.0.1/cb", c)
            form = {"grant_type": "authorization_code", "code": code, "code_verifier": v,
                    "client_id": cid, "redirect_uri": "http://127.0.0.1/cb"}
            return form, token(form)

        def token(form):
            st, _, b = a.http("/token", "POST", urllib.parse.urlencode(form), FORM)
            return st, json.loads(b)

        form, (st, tok) = grant()
        self.assertEqual(st, 200, tok)
        self.assertEqual(token(form)[1]["error"], "invalid_grant")  # a reused code
        _, (st, tok) = grant()
        st, new = token({"grant_type": "refresh_token", "refresh_token": tok["refresh_token"],
                         "client_id": cid})
        self.assertEqual(st, 200, new)
        key = {"Authorization": f"Bearer {env.introspect_key}", **FORM}
        for t in (new["refresh_token"], new["access_token"]):
            st, _, b = a.http("/introspect", "POST", f"token={t}", key)
            self.assertTrue(json.loads(b)["active"], b)
        for t in (new["access_token"], new["refresh_token"]):
            st, _, _ = a.http("/revoke", "POST", urllib.parse.urlencode(
                {"token": t, "client_id": cid}), FORM)
            self.assertEqual(st, 200)
        st, b = token({"grant_type": "refresh_token", "refresh_token": "no-such-token",
                       "client_id": cid})
        self.assertEqual(b["error"], "invalid_grant")  # the first step only
        # grants: a remembered approval, the person's list, and a disconnection
        v, c = pkce()
        st, h, _ = f.authorize(response_type="code", client_id=cid,
                               redirect_uri="http://127.0.0.1/cb", code_challenge=c,
                               code_challenge_method="S256", state="s")
        self.assertEqual(st, 302)  # no consent page: remembered
        grants = admin.list_grants(user_id).grants
        self.assertEqual(len(grants), 1)
        admin.revoke_grant(user_id, grants[0].grant_id)
        st, _, page = f.req("/logout")  # sign-out
        st, _, _ = f.req("/logout", "POST", urllib.parse.urlencode(
            {"csrf": Flow.field(page, "csrf")}), FORM)
        self.assertEqual(st, 200)
        # a client that signs its assertions (private_key_jwt): the assertion limit and jti
        key = ec.generate_private_key(ec.SECP256R1())
        st, _, body = a.http("/register", "POST", json.dumps(
            {"client_name": "Signer", "redirect_uris": ["https://app.example/cb"],
             "token_endpoint_auth_method": "private_key_jwt",
             "jwks": {"keys": [jwk_of(key, "k1")]}}), JSONCT)
        self.assertEqual(st, 201, body)
        scid = json.loads(body)["client_id"]
        v, c = pkce()
        code = f.code(scid, "https://app.example/cb", c)
        now = int(time.time())
        assertion = es256(key, {"alg": "ES256", "kid": "k1", "typ": "JWT"},
                          {"iss": scid, "sub": scid, "aud": a.issuer, "iat": now,
                           "exp": now + 60, "jti": secrets.token_urlsafe(12)})
        st, t = token({"grant_type": "authorization_code", "code": code, "code_verifier": v,
                       "client_id": scid, "redirect_uri": "https://app.example/cb",
                       "client_assertion_type":
                           "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                       "client_assertion": assertion})
        self.assertEqual(st, 200, t)
        # a user read, disabled (a subject's revocation) and enabled
        self.assertEqual(admin.get_user(user_id).source, "local")
        admin.set_user_disabled(user_id, True)
        admin.set_user_disabled(user_id, False)
        # a client of its own (client credentials): its bounds, then its end (RevokeClient)
        reg = admin.register_client([], "agent", grant_types=["client_credentials"],
                                    resources=[RESOURCE])
        st, t = token({"grant_type": "client_credentials", "client_id": reg.client_id,
                       "client_secret": reg.client_secret})
        self.assertEqual(st, 200, t)
        admin.revoke_client(reg.client_id)
        # a sign-in through an upstream provider: its pending record, counted, then taken
        idp = CraftedIdP()
        try:
            up = oauth_authd(env, {"PIPE2_AUTH_UPSTREAM_ISSUER": idp.issuer,
                                   "PIPE2_AUTH_UPSTREAM_CLIENT_ID": CLIENT_ID,
                                   "PIPE2_AUTH_UPSTREAM_CLIENT_SECRET": CLIENT_SECRET,
                                   "PIPE2_AUTH_LOCAL_ACCOUNTS": "off"})
            p = Person(up)
            params = p.start(idp, {"client_id": cid})
            idp.make = lambda n: idp.signed()
            self.assertEqual(p.callback(params)[0], 303)
        finally:
            idp.close()
        # the revocation view's repair poll and sweep (every second here) have run
        wait_until(lambda: mon.seen("'LIMIT', 0, tonumber(ARGV[2])") and
                   mon.seen("'-inf', ARGV[1], 'LIMIT', 0, 10000"), 10,
                   "the repair poll and the sweep")
        admin.close()
        mcp.close()

    # ---- the checks ----------------------------------------------------------------------------

    def check_declared(self, env, scripts):
        bad = []
        for ev, cmds in scripts:
            nkeys = int(ev[2])
            declared = set(ev[3:3 + nkeys])
            for c in cmds:
                for k in getkeys(env.redis, c):
                    if k not in declared:
                        bad.append(f"{c[0]} {k!r} not in KEYS {sorted(declared)} of "
                                   f"{ev[1][:80]!r}")
        self.assertEqual(bad, [], "\n".join(bad[:20]))

    def check_plain_commands(self, env, entries):
        bad = []
        for src, a in entries:
            if src == "lua" or not a or a[0].upper() in ("EVAL", "EVALSHA"):
                continue
            keys = getkeys(env.redis, a)
            if len({slot_of(k) for k in keys}) > 1:
                bad.append(f"{a[:4]} names keys of several slots")
        self.assertEqual(bad, [], "\n".join(bad[:20]))

    def check_on_cluster(self, cluster, scripts):
        seen, bad = set(), []
        for ev, _ in scripts:
            sig = (ev[1], tuple(ev[3:3 + int(ev[2])]))
            if sig in seen:
                continue
            seen.add(sig)
            r = cluster.cli(*ev)
            if "CROSSSLOT" in r or "non local key" in r or "do not hash to the same slot" in r \
                    or "ERR" in r.split("\n", 1)[0]:
                bad.append(f"{r.strip()[:200]} <- {ev[1][:80]!r} keys {ev[3:3 + int(ev[2])]}")
        self.assertGreater(len(seen), 20)
        self.assertEqual(bad, [], "\n".join(bad[:20]))


def slot_of(key):
    """Redis Cluster's slot: CRC16 (XMODEM) of the hash tag, or of the key, modulo 16384."""
    s = key.find("{")
    if s >= 0:
        e = key.find("}", s + 1)
        if e > s + 1:
            key = key[s + 1:e]
    crc = 0
    for b in key.encode():
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc % 16384


_GETKEYS = {}


def getkeys(redis, cmd):
    """The keys among cmd's arguments, as Redis says (COMMAND GETKEYS); none for a command
    that has none (TIME, PUBLISH, ...)."""
    name = cmd[0].upper()
    if name in ("TIME", "PUBLISH", "PING", "ROLE", "INFO", "SUBSCRIBE", "WAIT", "CLIENT",
                "HELLO", "AUTH", "SELECT", "MONITOR", "COMMAND", "CLUSTER", "SCRIPT"):
        return []
    r = subprocess.run(["redis-cli", "-p", str(redis.port), "COMMAND", "GETKEYS", *cmd],
                       capture_output=True, text=True, timeout=10)
    if r.stdout.startswith("(error)") or "ERR" in r.stdout[:10]:
        return []
    return [k for k in r.stdout.splitlines() if k]


def bus_safe_port():
    """A free port whose cluster bus port (itself + 10000) exists and is free too."""
    while True:
        p = free_port()
        if p + 10000 > 65535:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", p + 10000))
            except OSError:
                continue
        return p


class Cluster:
    """Three redis-server nodes in cluster mode on loopback, every slot assigned."""

    def __init__(self, workdir):
        self.nodes = []
        try:
            for i in range(3):
                n = Redis(os.path.join(workdir, f"cluster-{i}"))
                n.port = bus_safe_port()
                self.nodes.append(n)
                n.start("--cluster-enabled", "yes", "--cluster-config-file",
                        os.path.join(n.dir, "nodes.conf"), "--appendonly", "no")
            subprocess.run(["redis-cli", "--cluster", "create",
                            *[f"127.0.0.1:{n.port}" for n in self.nodes],
                            "--cluster-replicas", "0", "--cluster-yes"],
                           capture_output=True, text=True, timeout=60, check=True)
            wait_until(lambda: all("cluster_state:ok" in n.cli("CLUSTER", "INFO")
                                   for n in self.nodes), 30, "the cluster to be ok")
        except BaseException:
            self.stop()
            raise

    def cli(self, *args):
        r = subprocess.run(["redis-cli", "-c", "-p", str(self.nodes[0].port), *args],
                           capture_output=True, text=True, timeout=10)
        return r.stdout + r.stderr

    def stop(self):
        for n in self.nodes:
            n.close()


if __name__ == "__main__":
    unittest.main()
