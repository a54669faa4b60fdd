"""Real processes for the integration tests: redis-server and pipe2-authd on 127.0.0.1.

Every wait has a deadline and polls a condition; every process started is stopped by PID
in tearDown, and pipe2-authd must exit 0 on SIGTERM (under the sanitizers a leak or an
undefined behaviour report makes it exit non-zero, which fails the test).
"""
import base64
import hashlib
import json
import os
import resource
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import p2a_client  # noqa: E402
from p2a_client import pb  # noqa: E402

AUTHD = os.environ.get("P2A_AUTHD") or os.path.join(ROOT, "build", "pipe2-authd")
ISSUER = "http://127.0.0.1:8080"
RESOURCE = "http://127.0.0.1:3000/mcp"
OTHER_RESOURCE = "https://other.example.test/mcp"

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def read(path):
    with open(path, "rb") as f:
        return f.read()


_PORTS_GIVEN = set()


def free_port():
    """A port nothing listens on now and that this process has not handed out before: the
    kernel may give the same free port to two binds in a row (a daemon's RPC and HTTP ports
    once came out equal)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _PORTS_GIVEN:
            _PORTS_GIVEN.add(port)
            return port


def wait_until(pred, timeout, what, interval=0.02):
    """Polls pred until it returns a true value, which is returned; fails after timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            v = pred()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 -- the condition may fail until it holds
            last = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last error: {last})")


def stop_process(p, timeout=15):
    if p.poll() is None:
        p.send_signal(signal.SIGCONT)
        p.terminate()
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    return p.returncode


def _memory_dir(prefix, fallback):
    """A fresh folder in /dev/shm where there is one, else fallback (created)."""
    if os.access("/dev/shm", os.W_OK):
        return tempfile.mkdtemp(prefix=prefix, dir="/dev/shm")
    os.makedirs(fallback, exist_ok=True)
    return fallback


class Redis:
    """A redis-server with appendfsync always whose files live in memory: every acked write
    survives a SIGKILL of the process (what the durability tests need), while a busy disk
    (the container build running beside us) cannot stall an fsync past the daemon's Redis
    timeout and turn a test's requests into 503s."""

    def __init__(self, workdir):
        self.dir = _memory_dir("p2a-redis-", os.path.join(workdir, "redis"))
        self.port = free_port()
        self.proc = None

    def start(self, *extra):
        """extra: more redis-server arguments (--replicaof ...)."""
        self.proc = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--dir", self.dir,
             "--appendonly", "yes", "--appendfsync", "always", "--save", "",
             "--daemonize", "no", "--logfile", os.path.join(self.dir, "redis.log"), *extra])
        wait_until(lambda: self.cli("PING") == "PONG", 10, "redis-server to answer PING")

    def cli(self, *args):
        r = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), *args],
                           capture_output=True, text=True, timeout=10)
        return r.stdout.strip()

    def signal(self, sig):
        self.proc.send_signal(sig)

    def kill9(self):
        self.proc.kill()
        self.proc.wait()

    def stop(self):
        if self.proc is not None:
            stop_process(self.proc)

    def close(self):
        """Stops it for good and removes its files."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"


class Proxy:
    """A TCP forwarder on 127.0.0.1 in front of redis-server, to cut one replica off while
    the others still reach Redis: cut() closes every connection and refuses new ones,
    restore() accepts again."""

    def __init__(self, target_port):
        import threading
        self.target = target_port
        self.port = free_port()
        self.lock = threading.Lock()
        self.conns = []
        self.listener = None
        self.stopping = False
        self.restore()

    def restore(self):
        import threading
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", self.port))
        ls.listen(64)
        self.listener = ls
        threading.Thread(target=self._accept, args=(ls,), daemon=True).start()

    def _accept(self, ls):
        import threading
        while True:
            try:
                c, _ = ls.accept()
            except OSError:
                return
            try:
                u = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            except OSError:
                c.close()
                continue
            with self.lock:
                self.conns += [c, u]
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a, b):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                b.sendall(d)
        except OSError:
            pass
        for x in (a, b):
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
        except OSError:
            pass
        self.listener.close()
        with self.lock:
            conns, self.conns = self.conns, []
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()

    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"


REVOKE_DIRECTLY = """
local exp = redis.call('HGET', KEYS[1], 'expires_at') or ARGV[2]
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'revoked_at', ARGV[3]) end
redis.call('ZADD', 'p2a:{t}:revoked', exp, ARGV[1])
local seq = redis.call('INCR', 'p2a:{t}:revseq')
redis.call('ZADD', 'p2a:{t}:revlog', seq, ARGV[1])
return seq
"""


def revoke_directly(redis, jti, exp=None):
    """A revocation written into Redis the way RevokeToken writes it, but never published:
    only the repair poll (or a load) can bring it to a replica."""
    exp = exp or int(time.time()) + 3600
    return redis.cli("EVAL", REVOKE_DIRECTLY, "1", f"p2a:{{t}}:pat:{jti}", jti, str(exp),
                     str(int(time.time())))


class TestClient(p2a_client.Client):
    """The RPC client of the tests, which issue PATs to made-up user ids ("alice"): each is
    registered with PutUser first (once), as a dashboard registers its users. test_users.py
    checks the rule itself with the plain client."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self._users = set()

    def _register(self, user_id):
        if not user_id or user_id in self._users:
            return
        try:
            self.put_user(user_id)
            self._users.add(user_id)
        except Exception:  # noqa: BLE001 -- a bad id: the call itself answers for it
            pass

    def issue(self, user_id, name, *a, **kw):
        self._register(user_id)
        return super().issue(user_id, name, *a, **kw)

    def list(self, user_id, *a, **kw):
        self._register(user_id)
        return super().list(user_id, *a, **kw)


class Authd:
    def __init__(self, env, extra=None, tls=False, redis_url=None, wrap=()):
        self.env = env
        self.redis_url = redis_url
        self.wrap = list(wrap)  # e.g. ["taskset", "-c", "0"]
        self.port = free_port()
        self.http_port = free_port()
        self.metrics_port = free_port()
        self.tls = tls
        self.extra = extra or {}
        self.proc = None
        self.logpath = os.path.join(env.dir, f"authd-{self.port}.log")
        self.binary = AUTHD

    def start(self, wait_ready=True):
        e = dict(os.environ)
        e.update({
            "PIPE2_AUTH_KEYS_DIR": self.env.keys_dir,
            "PIPE2_AUTH_SERVICE_KEYS_FILE": self.env.svckeys_file,
            "PIPE2_AUTH_REDIS_URL": self.redis_url or self.env.redis.url(),
            "PIPE2_AUTH_RPC_LISTEN": f"127.0.0.1:{self.port}",
            "PIPE2_AUTH_HTTP_LISTEN": f"127.0.0.1:{self.http_port}",
            "PIPE2_AUTH_METRICS_LISTEN": f"127.0.0.1:{self.metrics_port}",
            "PIPE2_AUTH_ISSUER": ISSUER,
            "PIPE2_AUTH_RESOURCE": RESOURCE,
            "PIPE2_AUTH_WORKERS": "2",
            "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:exitcode=66",
            "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1:exitcode=67",
        })
        if self.tls:
            e["PIPE2_AUTH_TLS_CERT"] = self.env.cert
            e["PIPE2_AUTH_TLS_KEY"] = self.env.cert_key
        e.update(self.extra)
        self.log = open(self.logpath, "ab")
        self.proc = subprocess.Popen(self.wrap + [self.binary], env=e, stdout=self.log, stderr=subprocess.STDOUT)
        if wait_ready:
            self.wait_serving()

    def port_open(self):
        return port_open(self.port)

    def health(self):
        # a fresh channel each time: a refused channel would back off for seconds
        c = self.client()
        try:
            return c.health().status
        finally:
            c.close()

    def wait_serving(self, timeout=20):
        wait_until(lambda: self.alive() and self.port_open(), timeout,
                   "pipe2-authd to listen")
        wait_until(lambda: self.alive() and self.health() == 1, timeout,
                   "pipe2-authd to report SERVING")

    def alive(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"pipe2-authd exited with {self.proc.returncode}:\n"
                                 + self.output())
        return True

    def output(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode(errors="replace")

    def ops(self, path, method="GET", body=None, headers=None, timeout=5):
        """(status, headers, body) of one request to the metrics port."""
        return self.http(path, method, body, headers, timeout, port=self.metrics_port)

    def http(self, path, method="GET", body=None, headers=None, timeout=5, port=None):
        """(status, headers, body) of one request to the HTTP facade."""
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", port or self.http_port, timeout=timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, dict(r.getheaders()), r.read().decode()
        finally:
            c.close()

    def wait_audit_settled(self, quiet_s=1.5, timeout=15):
        """Waits until the audit trail's writes of what happened so far are in Redis (its
        writer ticks every second): nothing waiting, and no write for quiet_s."""
        import re
        seen = {"n": None, "since": time.monotonic()}

        def settled():
            _, _, body = self.ops("/metrics")
            n = re.search(r"^p2a_audit_events_written_total (\d+)", body, re.M).group(1)
            backlog = re.search(r"^p2a_audit_backlog (\d+)", body, re.M).group(1)
            if n != seen["n"]:
                seen.update(n=n, since=time.monotonic())
            return backlog == "0" and time.monotonic() - seen["since"] > quiet_s
        wait_until(settled, timeout, "the audit trail's writes to settle", interval=0.1)

    def client(self, key=None):
        if self.tls:
            return TestClient(f"127.0.0.1:{self.port}", key=key, root_cert=read(self.env.cert),
                              server_name="localhost")
        return TestClient(f"127.0.0.1:{self.port}", key=key)

    def wait_exit(self, timeout):
        """Waits for the process to end by itself (after a signal the test sent)."""
        code = self.proc.wait(timeout)
        self.log.close()
        self.proc = None
        return code

    def stop(self):
        """SIGTERM; returns the exit status (0 expected)."""
        if self.proc is None:
            return 0
        code = stop_process(self.proc)
        self.log.close()
        self.proc = None
        return code


class Env:
    """A temp folder with a signing key, two service keys, a redis-server, pipe2-authds."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="p2a-it-")
        self.keys_dir = os.path.join(self.dir, "keys")
        os.makedirs(self.keys_dir)
        self.key_path = os.path.join(self.keys_dir, "it-key.pem")
        subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-out", self.key_path],
                       check=True, capture_output=True)
        self.admin_key = "p2a_admin_" + secrets.token_urlsafe(32)
        self.introspect_key = "p2a_introspect_" + secrets.token_urlsafe(32)
        self.svckeys_file = os.path.join(self.dir, "service-keys")
        with open(self.svckeys_file, "w") as f:
            f.write(f"admin {hashlib.sha256(self.admin_key.encode()).hexdigest()} dash\n")
            f.write(f"introspect {hashlib.sha256(self.introspect_key.encode()).hexdigest()} mcp\n")
            # an MCP server's key bound to a resource this issuer does not serve
            self.other_key = "p2a_introspect_" + secrets.token_urlsafe(32)
            f.write(f"introspect {hashlib.sha256(self.other_key.encode()).hexdigest()} other mcp "
                    f"resource={OTHER_RESOURCE}\n")
        self.cert = os.path.join(self.dir, "cert.pem")
        self.cert_key = os.path.join(self.dir, "cert-key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                        "-keyout", self.cert_key, "-out", self.cert],
                       check=True, capture_output=True)
        self.redis = Redis(self.dir)
        self.redis.start()
        self.authds = []

    def authd(self, extra=None, tls=False, wait_ready=True, redis_url=None, wrap=()):
        a = Authd(self, extra, tls, redis_url, wrap)
        self.authds.append(a)
        a.start(wait_ready)
        return a

    def close(self, check_exit=True):
        failures = []
        for a in self.authds:
            code = a.stop()
            if code != 0:
                failures.append(f"pipe2-authd exited {code}:\n{a.output()[-6000:]}")
        self.redis.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        if check_exit and failures:
            raise AssertionError("\n".join(failures))


def oauth_authd(env, extra=None):
    """A pipe2-authd whose issuer is its own facade address (a browser must reach it)."""
    a = Authd(env)
    a.extra = {"PIPE2_AUTH_ISSUER": f"http://127.0.0.1:{a.http_port}"}
    a.extra.update(extra or {})
    a.issuer = a.extra["PIPE2_AUTH_ISSUER"]
    env.authds.append(a)
    a.start()
    return a


def port_open(port):
    """Whether something accepts connections on 127.0.0.1:port."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


EXAMPLE_MCP = os.path.join(ROOT, "examples", "mcp-server")


def example_mcp_server(port, forward_auth=None, facade=None):
    """The example MCP server (examples/mcp-server) on 127.0.0.1:port, asking forward_auth
    (a URL) about every request when given, else trusting a gateway's X-Auth-* headers;
    facade: the authorization server its metadata names. Returns its process once it
    listens; the caller stops it (stop_process)."""
    env = {**os.environ, "MCP_LISTEN": f"127.0.0.1:{port}"}
    if forward_auth:
        env["P2A_FORWARD_AUTH"] = forward_auth
    if facade:
        env["P2A_FACADE"] = facade
    p = subprocess.Popen(["node", "server.mjs"], cwd=EXAMPLE_MCP, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, env=env)
    try:
        wait_until(lambda: p.poll() is None and port_open(port), 20, "the example MCP server")
    except BaseException:
        stop_process(p)
        raise
    return p


class StartedTest(unittest.TestCase):
    """A test class whose cls.start() starts what it needs: pipe2-authd replicas in cls.env
    (an Env), other processes appended to cls.procs. When start() fails, what it started is
    stopped. tearDownClass closes cls.admin and cls.mcp when set, stops cls.procs in reverse
    and closes the Env."""

    @classmethod
    def setUpClass(cls):
        cls.env = Env()
        cls.procs = []
        try:
            cls.start()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for c in ("admin", "mcp"):
            if getattr(cls, c, None):
                getattr(cls, c).close()
        for p in reversed(cls.procs):
            stop_process(p)
        cls.env.close()


class ServiceTest(unittest.TestCase):
    """One redis-server and one pipe2-authd for a whole test class (settings in AUTHD_ENV;
    OAUTH: its issuer is its facade), with an admin and an introspect client."""
    AUTHD_ENV = {}
    OAUTH = False

    @classmethod
    def setUpClass(cls):
        cls.env = Env()
        cls.authd = (oauth_authd(cls.env, cls.AUTHD_ENV) if cls.OAUTH
                     else cls.env.authd(cls.AUTHD_ENV))
        cls.admin = cls.authd.client(cls.env.admin_key)
        cls.mcp = cls.authd.client(cls.env.introspect_key)

    @classmethod
    def tearDownClass(cls):
        cls.admin.close()
        cls.mcp.close()
        cls.env.close()


NODE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "node")


def nginx_conf(ngdir, http_body, worker_connections=256, error_level="warn"):
    """Writes <ngdir>/nginx.conf for one worker in the foreground, its pid, log and temporary
    files in ngdir, http_body inside http {} (access log off); returns its path."""
    temps = "".join(f"    {k}_temp_path {ngdir}/{k};\n"
                    for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    path = os.path.join(ngdir, "nginx.conf")
    with open(path, "w") as f:
        f.write(f"daemon off;\nworker_processes 1;\npid {ngdir}/nginx.pid;\n"
                f"error_log {ngdir}/error.log {error_level};\n"
                f"events {{ worker_connections {worker_connections}; }}\n"
                f"http {{\n    access_log off;\n{temps}{http_body}}}\n")
    return path


def chromium_for(case, *module):
    """Chromium's path, once it and tests/integration/node/node_modules/<module> are known to
    be there (scripts/test.sh installs both); the case fails otherwise."""
    chromium = shutil.which("chromium")
    if not chromium or not os.path.isdir(os.path.join(NODE_DIR, "node_modules", *module)):
        case.fail("chromium or tests/integration/node/node_modules is missing: run "
                  "scripts/test.sh (it installs both)")
    return chromium


def assert_screenshots(case, folder, *names):
    """Each screenshot a browser suite took is there, and an image of some size."""
    for name in names:
        case.assertGreater(os.path.getsize(os.path.join(folder, name)), 5000, name)


def run_node_suite(case, script, env_extra, passes, timeout=180):
    """Runs node --test on tests/integration/node/<script> with env_extra in its environment
    and asserts that exactly `passes` tests passed and none failed."""
    e = dict(os.environ)
    e.update(env_extra)
    r = subprocess.run(["node", "--test", "--test-reporter=spec", script], cwd=NODE_DIR, env=e,
                       capture_output=True, text=True, timeout=timeout)
    print(r.stdout[-4000:])
    case.assertEqual(r.returncode, 0, r.stdout[-6000:] + r.stderr[-4000:])
    case.assertRegex(r.stdout, rf"pass {passes}\b")
    case.assertRegex(r.stdout, r"fail 0\b")


# ---- hand-made JWTs, for the tokens pipe2-authd must refuse ----------------------------------

def basic(cid, secret):
    """HTTP Basic client credentials (RFC 6749 2.3.1: id and secret form-encoded first), as
    the header to send."""
    import urllib.parse
    raw = f"{urllib.parse.quote(cid, safe='')}:{urllib.parse.quote(secret, safe='')}"
    return {"Authorization": "Basic " + base64.b64encode(raw.encode()).decode()}


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def jwt_es256(key_pem_path, header, payload, high_s=False):
    """An ES256 JWT signed with the low s, as pipe2-authd accepts (high_s: the other one)."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, utils
    key = serialization.load_pem_private_key(read(key_pem_path), None)
    h = b64url(json.dumps(header).encode())
    p = b64url(json.dumps(payload).encode())
    der = key.sign(f"{h}.{p}".encode(), ec.ECDSA(hashes.SHA256()))
    r, s = utils.decode_dss_signature(der)
    if (s > P256_N // 2) != high_s:
        s = P256_N - s
    return f"{h}.{p}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def jwt_hs256(secret, header, payload):
    import hmac
    h = b64url(json.dumps(header).encode())
    p = b64url(json.dumps(payload).encode())
    mac = hmac.new(secret, f"{h}.{p}".encode(), hashlib.sha256).digest()
    return f"{h}.{p}.{b64url(mac)}"


def public_pem(key_pem_path):
    from cryptography.hazmat.primitives import serialization
    key = serialization.load_pem_private_key(read(key_pem_path), None)
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def claims(**over):
    now = int(time.time())
    c = {"iss": ISSUER, "sub": "mallory", "aud": [RESOURCE], "jti": secrets.token_urlsafe(16),
         "iat": now, "exp": now + 3600, "token_use": "pat", "pat_name": "crafted"}
    c.update(over)
    return c


# ---- a raw HTTP/2 client (python3-h2), for what stock gRPC clients will not send ------------

def grpc_body(message_bytes, flag=0):
    return bytes([flag]) + len(message_bytes).to_bytes(4, "big") + message_bytes


class H2:
    """One HTTP/2 connection to the RPC port, frames under the test's control."""

    def __init__(self, port, tls=False, cafile=None):
        import h2.config
        import h2.connection
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        if tls:
            ctx = ssl.create_default_context(cafile=cafile)
            ctx.set_alpn_protocols(["h2"])
            self.sock = ctx.wrap_socket(self.sock, server_hostname="localhost")
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.conn.initiate_connection()
        self.flush()
        self.streams = {}

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def start(self, path, key=None, extra=(), content_type="application/grpc"):
        sid = self.conn.get_next_available_stream_id()
        hdrs = [(":method", "POST"), (":scheme", "http"), (":path", path),
                (":authority", "127.0.0.1"), ("content-type", content_type), ("te", "trailers")]
        if key:
            hdrs.append(("authorization", "Bearer " + key))
        hdrs.extend(extra)
        self.conn.send_headers(sid, hdrs)
        self.streams[sid] = {"headers": None, "data": b"", "trailers": None, "ended": False,
                             "reset": None}
        self.flush()
        return sid

    def send(self, sid, data, end=True):
        # respect the peer's flow control window
        while data:
            window = self.conn.local_flow_control_window(sid)
            chunk = min(len(data), window, self.conn.max_outbound_frame_size)
            if chunk == 0:
                self.pump(1)
                continue
            self.conn.send_data(sid, data[:chunk], end_stream=end and chunk == len(data))
            data = data[chunk:]
            self.flush()
        if end and not data:
            pass
        self.flush()

    def call(self, path, body, key=None, extra=()):
        sid = self.start(path, key, extra)
        if body:
            self.send(sid, body, end=True)
        else:
            self.conn.end_stream(sid)
            self.flush()
        return sid

    def pump(self, timeout=5):
        import h2.events
        self.sock.settimeout(timeout)
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("server closed the connection")
        for ev in self.conn.receive_data(data):
            s = self.streams.get(getattr(ev, "stream_id", None))
            if isinstance(ev, h2.events.ResponseReceived):
                s["headers"] = dict((k.decode() if isinstance(k, bytes) else k,
                                     v.decode() if isinstance(v, bytes) else v)
                                    for k, v in ev.headers)
            elif isinstance(ev, h2.events.DataReceived):
                s["data"] += ev.data
                self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.TrailersReceived):
                s["trailers"] = dict((k.decode() if isinstance(k, bytes) else k,
                                      v.decode() if isinstance(v, bytes) else v)
                                     for k, v in ev.headers)
            elif isinstance(ev, h2.events.StreamEnded):
                s["ended"] = True
            elif isinstance(ev, h2.events.StreamReset):
                if s is not None:
                    s["reset"] = ev.error_code
                    s["ended"] = True
        self.flush()

    def wait(self, sid, timeout=10):
        deadline = time.monotonic() + timeout
        while not self.streams[sid]["ended"]:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"stream {sid} not answered within {timeout}s")
            self.pump(left)
        return self.streams[sid]

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def grpc_status(stream):
    """grpc-status and grpc-message of an answered stream (Trailers-Only or trailers)."""
    t = stream["trailers"] or stream["headers"] or {}
    from urllib.parse import unquote
    return int(t.get("grpc-status", -1)), unquote(t.get("grpc-message", ""))
