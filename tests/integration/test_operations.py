"""The HTTP facade's operational endpoints: /healthz, /readyz, /metrics (Prometheus)."""
import re
import unittest

from harness import ServiceTest, pb, wait_until

SAMPLE = re.compile(r'^[a-z_:][a-z0-9_:]*(\{([a-z_]+="[^"\\]*"(,|))*\})? -?[0-9.e+-]+$')


def parse(text):
    """{series_with_labels: value}; fails on any line that is not Prometheus text format."""
    out, declared = {}, set()
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            declared.add(line.split()[2])
            continue
        assert SAMPLE.match(line), f"not a Prometheus sample line: {line!r}"
        name, value = line.rsplit(" ", 1)
        family = re.sub(r"_(bucket|sum|count)$", "", name.split("{")[0])
        assert family in declared or name.split("{")[0] in declared, f"undeclared: {line}"
        out[name] = float(value)
    return out


class Operations(ServiceTest):
    AUTHD_ENV = {"PIPE2_AUTH_LAST_USED_FLUSH_INTERVAL": "1",
                 "PIPE2_AUTH_REVOCATION_POLL_INTERVAL": "1",
                 "PIPE2_AUTH_REVOCATION_STALENESS": "3",
                 "PIPE2_AUTH_REDIS_TIMEOUT_MS": "500"}

    def metrics(self):
        status, headers, body = self.authd.ops("/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/plain; version=0.0.4"))
        return parse(body)

    def test_healthz_and_errors(self):
        self.assertEqual(self.authd.http("/healthz")[::2], (200, "ok\n"))
        status, _, body = self.authd.http("/nope")
        self.assertEqual(status, 404)
        self.assertIn('"error":"not_found"', body)
        status, headers, _ = self.authd.ops("/metrics", method="POST", body="x")
        self.assertEqual(status, 405)
        self.assertEqual(headers["Allow"], "GET, HEAD")
        status, _, _ = self.authd.http("/healthz", headers={"X-Big": "a" * 20000})
        self.assertEqual(status, 431)  # over the header bound: refused, nothing breaks
        self.assertEqual(self.authd.http("/healthz")[0], 200)

    def test_metrics_show_every_series(self):
        issued = self.admin.issue("olga", "metrics")
        for _ in range(20):
            self.assertTrue(self.mcp.introspect(issued.token).active)
        self.mcp.introspect("garbage")
        self.admin.revoke(issued.info.jti)
        self.assertEqual(self.mcp.introspect(issued.token).reason,
                         pb.InactiveReason.Value("REVOKED"))
        m = wait_until(lambda: (lambda x: x if x.get(
            'p2a_last_used_flushes_total{result="ok"}', 0) >= 1 else None)(self.metrics()),
                       10, "a last-used flush to be counted")
        self.assertGreaterEqual(m['p2a_rpc_requests_total{method="Introspect",code="OK"}'], 22)
        self.assertGreaterEqual(m['p2a_rpc_requests_total{method="IssueToken",code="OK"}'], 1)
        self.assertGreaterEqual(m['p2a_rpc_request_duration_seconds_count{method="Introspect"}'],
                                22)
        self.assertEqual(m['p2a_rpc_request_duration_seconds_bucket{method="Introspect",le="+Inf"}'],
                         m['p2a_rpc_request_duration_seconds_count{method="Introspect"}'])
        self.assertGreaterEqual(m['p2a_introspections_total{result="active"}'], 20)
        self.assertGreaterEqual(m['p2a_introspections_total{result="revoked"}'], 1)
        self.assertGreaterEqual(m['p2a_introspections_total{result="malformed"}'], 1)
        self.assertGreaterEqual(m["p2a_token_cache_hits_total"], 19)
        self.assertGreaterEqual(m["p2a_token_cache_misses_total"], 1)
        # the replica's own subscriber may apply it before the RevokeToken reply does
        self.assertGreaterEqual(m['p2a_revocations_applied_total{path="local"}'] +
                                m['p2a_revocations_applied_total{path="message"}'], 1)
        self.assertGreaterEqual(m["p2a_revocations"], 1)
        self.assertLess(m["p2a_revocation_view_age_seconds"], 3)
        self.assertIn("p2a_revocation_propagation_lag_seconds", m)
        self.assertEqual(m['p2a_redis_connected{connection="main"}'], 1)
        self.assertEqual(m['p2a_redis_connected{connection="subscriber"}'], 1)
        self.assertEqual(m['p2a_redis_connected{connection="worker0"}'], 1)
        self.assertGreaterEqual(m["p2a_last_used_marks_written_total"], 1)
        self.assertEqual(m["p2a_ready"], 1)
        self.assertGreaterEqual(m['p2a_http_requests_total{path="/metrics",code="200"}'], 1)
        # histogram buckets are cumulative
        buckets = [v for k, v in m.items()
                   if k.startswith('p2a_rpc_request_duration_seconds_bucket{method="Introspect"')]
        self.assertEqual(buckets, sorted(buckets))

    def test_readyz_follows_redis(self):
        self.assertEqual(self.authd.http("/readyz")[::2], (200, "ready\n"))
        self.env.redis.kill9()
        try:
            status, _, body = wait_until(
                lambda: (lambda r: r if r[0] == 503 else None)(self.authd.http("/readyz")), 10,
                "/readyz to turn 503")
            self.assertTrue(body.startswith("not ready: "), body)
            wait_until(lambda: "stale" in self.authd.http("/readyz")[2], 10,
                       "the view to go stale")
            self.assertEqual(self.metrics()["p2a_ready"], 0)
            self.assertEqual(self.metrics()['p2a_redis_connected{connection="main"}'], 0)
        finally:
            self.env.redis.start()
        wait_until(lambda: self.authd.http("/readyz")[0] == 200, 10, "ready again")


if __name__ == "__main__":
    unittest.main()
