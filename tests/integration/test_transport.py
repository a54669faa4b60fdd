"""What arrives on the RPC port besides well-formed gRPC: the service answers or closes that
connection cleanly, and goes on serving others."""
import socket
import ssl
import time
import unittest

import grpc
import h2.events as h2events

from harness import Env, H2, grpc_body, grpc_status, pb, wait_until

SVC = "/pipe2.auth.v1.TokenService/"


def closed_by_server(sock, timeout):
    """Reads until EOF; True if the server closed within timeout (it may send a GOAWAY)."""
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not sock.recv(65536):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False
    return False


class Transport(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.env = Env()
        cls.authd = cls.env.authd({"PIPE2_AUTH_IDLE_TIMEOUT": "1"})
        cls.tls = cls.env.authd(tls=True)
        cls.mcp = cls.authd.client(cls.env.introspect_key)
        cls.admin = cls.authd.client(cls.env.admin_key)
        cls.token = cls.admin.issue("tina", "transport").token

    @classmethod
    def tearDownClass(cls):
        cls.mcp.close()
        cls.admin.close()
        cls.env.close()

    def assertStillServing(self):
        c = self.authd.client(self.env.introspect_key)
        try:
            self.assertTrue(c.introspect(self.token).active)
        finally:
            c.close()

    def connect(self):
        return socket.create_connection(("127.0.0.1", self.authd.port), timeout=5)

    def introspect_body(self, token=None):
        return grpc_body(pb.IntrospectRequest(token=token or self.token).SerializeToString())

    def test_bytes_that_are_not_http2(self):
        s = self.connect()
        s.sendall(b"\x16\x03\x01\x02\x00garbage that is no HTTP/2 preface at all\r\n" * 4)
        self.assertTrue(closed_by_server(s, 5))
        s.close()
        self.assertStillServing()

    def test_http11_request_on_rpc_port(self):
        s = self.connect()
        s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n")
        self.assertTrue(closed_by_server(s, 5))
        s.close()
        self.assertStillServing()

    def test_silent_client_is_closed_after_idle_timeout(self):
        s = self.connect()
        t0 = time.monotonic()
        self.assertTrue(closed_by_server(s, 10))
        took = time.monotonic() - t0
        s.close()
        self.assertGreaterEqual(took, 0.9)  # PIPE2_AUTH_IDLE_TIMEOUT=1
        self.assertStillServing()

    def test_1000_connections_at_once(self):
        socks = []
        try:
            for _ in range(1000):
                s = socket.create_connection(("127.0.0.1", self.authd.port), timeout=5)
                s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
                socks.append(s)
            # with all of them open, real calls on new connections are answered
            for _ in range(5):
                self.assertStillServing()
            # and the open ones speak HTTP/2: call on a sample of fresh h2 connections
            conns = [H2(self.authd.port) for _ in range(20)]
            sids = [c.call(SVC + "Introspect", self.introspect_body(), self.env.introspect_key)
                    for c in conns]
            for c, sid in zip(conns, sids):
                self.assertEqual(grpc_status(c.wait(sid))[0], 0)
                c.close()
        finally:
            for s in socks:
                s.close()
        self.assertStillServing()

    def test_message_over_the_size_limit(self):
        h2 = H2(self.authd.port)
        sid = h2.start(SVC + "Introspect", self.env.introspect_key)
        # the prefix announces 1 MiB: refused at once, before the body arrives
        h2.send(sid, b"\x00" + (1 << 20).to_bytes(4, "big") + b"x" * 1000, end=False)
        st = h2.wait(sid)
        self.assertEqual(grpc_status(st), (8, "request message larger than 262144 bytes"))
        # the connection still serves
        sid = h2.call(SVC + "Introspect", self.introspect_body(), self.env.introspect_key)
        self.assertEqual(grpc_status(h2.wait(sid))[0], 0)
        h2.close()

    def test_truncated_grpc_frames(self):
        h2 = H2(self.authd.port)
        body = self.introspect_body()
        for cut in [3, 5, len(body) - 1]:
            with self.subTest(cut=cut):
                sid = h2.call(SVC + "Introspect", body[:cut], self.env.introspect_key)
                code, msg = grpc_status(h2.wait(sid))
                self.assertEqual((code, msg), (3, "truncated gRPC message"))
        sid = h2.call(SVC + "Introspect", b"", self.env.introspect_key)
        self.assertEqual(grpc_status(h2.wait(sid)), (3, "missing request message"))
        sid = h2.call(SVC + "Introspect", body + body, self.env.introspect_key)
        self.assertEqual(grpc_status(h2.wait(sid))[0], 3)
        h2.close()
        self.assertStillServing()

    def test_many_concurrent_streams_on_one_connection(self):
        h2 = H2(self.authd.port)
        sids = [h2.call(SVC + "Introspect", self.introspect_body(), self.env.introspect_key)
                for _ in range(200)]
        for sid in sids:
            st = h2.wait(sid)
            self.assertEqual(grpc_status(st)[0], 0)
            self.assertEqual(st["headers"]["content-type"], "application/grpc")
            resp = pb.IntrospectResponse.FromString(st["data"][5:])
            self.assertTrue(resp.active)
        h2.close()

    def test_stream_reset_midway_and_not_grpc_requests(self):
        h2 = H2(self.authd.port)
        sid = h2.start(SVC + "Introspect", self.env.introspect_key)
        h2.send(sid, self.introspect_body()[:4], end=False)
        h2.conn.reset_stream(sid)
        h2.flush()
        sid = h2.call(SVC + "Introspect", self.introspect_body(), self.env.introspect_key,
                      extra=[("grpc-timeout", "bogus")])
        self.assertEqual(grpc_status(h2.wait(sid))[0], 3)
        sid = h2.start(SVC + "Introspect", self.env.introspect_key, content_type="text/plain")
        h2.send(sid, b"hello")
        self.assertEqual(h2.wait(sid)["headers"][":status"], "415")
        sid = h2.call(SVC + "Introspect", self.introspect_body(), self.env.introspect_key)
        self.assertEqual(grpc_status(h2.wait(sid))[0], 0)
        h2.close()

    def test_requests_then_a_half_close_are_answered(self):
        """A client that shuts its sending side right after its requests (shutdown(SHUT_WR),
        the FIN in the same read as the requests) gets every answer, then the server closes.
        The h2c read finds the end of the input itself: it must not drop the answers already
        made (it did: 0 of 1 and 0 of 5, every time)."""
        for n in (1, 5) * 5:
            h2 = H2(self.authd.port)
            sids = []
            for _ in range(n):
                sid = h2.conn.get_next_available_stream_id()
                h2.conn.send_headers(sid, [
                    (":method", "POST"), (":scheme", "http"), (":path", SVC + "Introspect"),
                    (":authority", "127.0.0.1"), ("content-type", "application/grpc"),
                    ("te", "trailers"), ("authorization", "Bearer " + self.env.introspect_key)])
                h2.conn.send_data(sid, self.introspect_body(), end_stream=True)
                sids.append(sid)
            h2.flush()  # the requests in one write, the FIN right behind them
            h2.sock.shutdown(socket.SHUT_WR)
            statuses = {}
            h2.sock.settimeout(5)
            while data := h2.sock.recv(65536):  # to the server's close (a timeout fails)
                for ev in h2.conn.receive_data(data):
                    if isinstance(ev, h2events.TrailersReceived):
                        statuses[ev.stream_id] = dict(ev.headers).get(b"grpc-status")
            self.assertEqual(statuses, {sid: b"0" for sid in sids}, f"{n} requests")
            h2.close()
        self.assertStillServing()

    def test_tls_with_alpn_h2(self):
        admin = self.tls.client(self.env.admin_key)
        mcp = self.tls.client(self.env.introspect_key)
        try:
            issued = admin.issue("tls-user", "over TLS")
            r = mcp.introspect(issued.token)
            self.assertTrue(r.active)
            self.assertEqual(r.name, "over TLS")
            self.assertEqual([t.jti for t in admin.list("tls-user").tokens], [issued.info.jti])
            self.assertFalse(admin.revoke(issued.info.jti).already_revoked)
            self.assertEqual(pb.InactiveReason.Name(mcp.introspect(issued.token).reason),
                             "REVOKED")
            with self.assertRaises(grpc.RpcError) as cm:
                mcp.issue("x", "y")
            self.assertEqual(cm.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
        finally:
            admin.close()
            mcp.close()
        # a raw h2 client over TLS sees the same gRPC framing
        h2 = H2(self.tls.port, tls=True, cafile=self.env.cert)
        sid = h2.call(SVC + "Introspect", self.introspect_body(), self.env.introspect_key)
        self.assertEqual(grpc_status(h2.wait(sid))[0], 0)
        h2.close()

    def test_tls_client_without_h2_is_refused(self):
        ctx = ssl.create_default_context(cafile=self.env.cert)
        ctx.set_alpn_protocols(["http/1.1"])
        raw = socket.create_connection(("127.0.0.1", self.tls.port), timeout=5)
        with self.assertRaises(ssl.SSLError):
            ctx.wrap_socket(raw, server_hostname="localhost")
        raw.close()
        # plaintext h2c on the TLS port gets nowhere either
        s = socket.create_connection(("127.0.0.1", self.tls.port), timeout=5)
        s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        self.assertTrue(closed_by_server(s, 5))
        s.close()
        c = self.tls.client(self.env.introspect_key)
        try:
            wait_until(lambda: c.introspect(self.token).active, 5, "TLS port still serving")
        finally:
            c.close()


if __name__ == "__main__":
    unittest.main()
