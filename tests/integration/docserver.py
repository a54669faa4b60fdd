"""An https server of client documents for the tests: Client ID Metadata Documents, good and
bad, and a client's keys. Run as a process of its own on 127.0.0.1:

    python3 docserver.py CERT KEY JWKS_FILE

It prints "PORT <n>" once it listens, then serves until it is stopped. /_hits answers how
often each path was asked for (to see what pipe2-authd cached)."""
import collections
import json
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CERT, KEY, JWKS_FILE = sys.argv[1:4]
with open(JWKS_FILE) as f:
    JWKS = json.load(f)
HITS = collections.Counter()
LOCK = threading.Lock()


def client(base, path, **more):
    doc = {"client_id": base + path, "client_name": "Doc App",
           "redirect_uris": ["http://127.0.0.1/callback", "https://app.example/cb"],
           "grant_types": ["authorization_code", "refresh_token"],
           "response_types": ["code"], "token_endpoint_auth_method": "none"}
    doc.update(more)
    return doc


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def send(self, status, body, ctype="application/json", headers=()):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        base = f"https://127.0.0.1:{self.server.server_port}"
        p = self.path.split("?")[0]
        with LOCK:
            HITS[self.path] += 1
        if p == "/_hits":
            with LOCK:
                return self.send(200, dict(HITS))
        if p == "/clients/good.json":
            return self.send(200, client(base, p), headers=[("Cache-Control", "max-age=300")])
        if p == "/clients/sdk.json":  # the MCP SDK v2 client's document
            return self.send(200, client(base, p, client_name="MCP SDK v2 test",
                                         redirect_uris=["http://127.0.0.1/callback"]))
        if p == "/clients/localhost.json":  # named by host name, not address
            return self.send(200, client(f"https://localhost:{self.server.server_port}", p))
        if p == "/clients/wrongid.json":
            return self.send(200, client(base, "/clients/other.json"))
        if p == "/clients/redirect.json":
            return self.send(302, b"", headers=[("Location", base + "/clients/good.json")])
        if p == "/clients/big.json":
            return self.send(200, client(base, p, padding="x" * 6000))
        if p == "/clients/html.json":
            return self.send(200, json.dumps(client(base, p)).encode(), "text/html")
        if p == "/clients/secret.json":
            return self.send(200, client(base, p, client_secret="s3cret"))
        if p == "/clients/slow.json":
            time.sleep(6)
            return self.send(200, client(base, self.path))
        if p == "/clients/pkjwt.json":
            return self.send(200, client(base, p, token_endpoint_auth_method="private_key_jwt",
                                         jwks=JWKS))
        if p == "/clients/pkjwt-uri.json":
            return self.send(200, client(base, p, token_endpoint_auth_method="private_key_jwt",
                                         jwks_uri=base + "/keys.json"))
        if p == "/keys.json":
            return self.send(200, JWKS, "application/jwk-set+json")
        return self.send(404, {"error": "not found"})


def main():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(CERT, KEY)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print(f"PORT {srv.server_port}", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
