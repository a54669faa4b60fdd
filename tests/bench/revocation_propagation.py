#!/usr/bin/python3
"""Revocation propagation across replicas: the time from the RevokeToken answer (through
replica A) until every replica (A, B, C) answers REVOKED, over N revocations, next to two
references measured in the same run: the floor, a Redis PUBLISH to subscriber round trip on
the same redis-server through plain Python sockets; and the measuring client's own cost,
one round of three parallel Introspect calls (python3-grpcio) on tokens already revoked.

    tests/bench/revocation_propagation.py [--revocations 1000] [--authd PATH]

Default settings (poll 5 s, staleness 20 s): a revocation reaching B and C faster than the
poll interval came by the pub/sub message. Loopback only; it stops what it starts."""
import argparse
import os
import socket
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import harness  # noqa: E402

REVOKED = harness.pb.InactiveReason.Value("REVOKED")


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def resp(*args):
    out = [f"*{len(args)}\r\n".encode()]
    for a in args:
        b = a.encode() if isinstance(a, str) else a
        out.append(f"${len(b)}\r\n".encode() + b + b"\r\n")
    return b"".join(out)


def read_message(sock, buf, channel):
    """Reads until one complete pub/sub 'message' frame for channel has arrived."""
    marker = b"$7\r\nmessage\r\n"
    while True:
        i = buf.find(marker)
        if i >= 0:
            # the payload is the last bulk string of the frame: wait for its CRLF
            tail = buf[i + len(marker):]
            parts = tail.split(b"\r\n")
            if len(parts) >= 5:
                frame_len = len(marker) + sum(len(p) + 2 for p in parts[:4])
                return buf[i + frame_len:]
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("redis closed")
        buf += data


def floor_rtt(port, n):
    sub = socket.create_connection(("127.0.0.1", port))
    pub = socket.create_connection(("127.0.0.1", port))
    sub.sendall(resp("SUBSCRIBE", "bench-floor"))
    buf = b""
    while b"subscribe" not in buf:
        buf += sub.recv(4096)
    buf = b""
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        pub.sendall(resp("PUBLISH", "bench-floor", f"1 jti{i} 0 0"))
        buf = read_message(sub, buf, "bench-floor")
        out.append(time.perf_counter() - t0)
        pub.recv(64)  # the publisher's integer reply
    sub.close()
    pub.close()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--revocations", type=int, default=1000)
    ap.add_argument("--authd", default=os.environ.get("P2A_AUTHD"))
    a = ap.parse_args()
    if a.authd:
        harness.AUTHD = a.authd
    env = harness.Env()
    try:
        replicas = [env.authd({"PIPE2_AUTH_WORKERS": "1"}) for _ in range(3)]
        admin = replicas[0].client(env.admin_key)
        mcps = [r.client(env.introspect_key) for r in replicas]
        tokens = [admin.issue(f"bench{i % 50}", f"t{i}") for i in range(a.revocations)]
        for t in tokens:  # every replica has every token verified and cached
            for m in mcps:
                assert m.introspect(t.token).active
        md = [("authorization", "Bearer " + env.introspect_key)]
        stubs = {m: m.channel.unary_unary(
            "/pipe2.auth.v1.TokenService/Introspect", request_serializer=lambda x: x,
            response_deserializer=harness.pb.IntrospectResponse.FromString) for m in mcps}

        def round_of(clients, token):
            """One Introspect on each client at once; the ones not answering REVOKED."""
            body = harness.pb.IntrospectRequest(token=token).SerializeToString()
            futs = [(m, stubs[m].future(body, metadata=md, timeout=5)) for m in clients]
            return [m for m, f in futs if f.result().reason != REVOKED]

        lat, rounds = [], []
        for t in tokens:
            admin.revoke(t.info.jti)
            t0 = time.perf_counter()
            pending = list(mcps)
            while pending:
                pending = round_of(pending, t.token)
                if time.perf_counter() - t0 > 30:
                    raise SystemExit(f"FAIL: {t.info.jti} still active after 30 s")
            lat.append(time.perf_counter() - t0)
            t1 = time.perf_counter()
            assert not round_of(mcps, t.token)  # the client's own cost of looking
            rounds.append(time.perf_counter() - t1)
        floor = floor_rtt(env.redis.port, a.revocations)
        for c in mcps + [admin]:
            c.close()
    finally:
        env.close()

    def row(name, xs):
        return (f"| {name} | {len(xs)} | {pct(xs, 50) * 1e3:.2f} | {pct(xs, 99) * 1e3:.2f} | "
                f"{max(xs) * 1e3:.2f} |")
    print("| measure | n | p50 ms | p99 ms | max ms |")
    print("|---|---|---|---|---|")
    print(row("RevokeToken answer -> A, B and C all answer REVOKED", lat))
    print(row("floor: Redis PUBLISH -> subscriber receives", floor))
    print(row("client cost: one round of 3 parallel Introspect (already revoked)", rounds))
    print(f"\nratio p50 {statistics.median(lat) / statistics.median(floor):.1f} x floor; "
          f"target p99 < 50 ms: {'met' if pct(lat, 99) < 0.050 else 'MISSED'}")


if __name__ == "__main__":
    main()
