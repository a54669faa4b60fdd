"""The official MCP conformance package's authorization-server suite against pipe2-authd:
`conformance authorization` with its two scenarios run together (metadata, and the code
grant with a person signing in through headless Chromium), on the Node 22 the npm package
`node` brings. Every check must pass, with no failure and no warning."""
import glob
import json
import os
import select
import shutil
import subprocess
import time
import unittest

from harness import NODE_DIR, RESOURCE, Env, free_port, oauth_authd, stop_process

PASSWORD = "a long enough passphrase"


class Conformance(unittest.TestCase):
    def test_authorization_server_suite(self):
        node22 = os.path.join(NODE_DIR, "node_modules", ".bin", "node")
        cli = os.path.join(NODE_DIR, "node_modules", "@modelcontextprotocol", "conformance",
                           "dist", "index.js")
        chromium = shutil.which("chromium")
        if not (os.path.exists(node22) and os.path.exists(cli) and chromium):
            self.fail("node_modules or chromium missing: run scripts/test.sh (it installs both)")
        env = Env()
        proc = None
        try:
            a = oauth_authd(env, {"PIPE2_AUTH_RESOURCE": RESOURCE})
            admin = a.client(env.admin_key)
            admin.create_user("conf", PASSWORD)
            cid = admin.register_client(["http://127.0.0.1/callback"], "conformance").client_id
            admin.close()
            port, out = free_port(), os.path.join(env.dir, "conformance")
            proc = subprocess.Popen(
                [node22, cli, "authorization", "--url", a.issuer, "--client-id", cid,
                 "--resource", RESOURCE, "-p", str(port), "-o", out],
                cwd=NODE_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            # its authorization URL, read from the pipe itself: a buffered readline() after
            # select() would keep lines that came in one write where select() never sees them
            fd, log, part, url = proc.stdout.fileno(), [], "", None
            deadline = time.monotonic() + 60
            while url is None and time.monotonic() < deadline:
                if not select.select([fd], [], [], 1)[0]:
                    continue
                chunk = os.read(fd, 65536).decode(errors="replace")
                if not chunk:
                    break  # it ended
                *lines, part = (part + chunk).split("\n")
                for line in lines:
                    log.append(line + "\n")
                    if line.startswith(a.issuer + "/authorize?"):
                        url = line.strip()
            self.assertIsNotNone(url, "".join(log) + part)
            # its callback server listens once it has printed the URL
            signin = subprocess.run(
                ["node", "browser_signin.mjs", url, f"http://127.0.0.1:{port}/callback"],
                cwd=NODE_DIR, capture_output=True, text=True, timeout=90,
                env={**os.environ, "P2A_USER": "conf", "P2A_PASSWORD": PASSWORD,
                     "P2A_CHROMIUM": chromium})
            self.assertEqual(signin.returncode, 0, signin.stdout + signin.stderr)
            rest, _ = proc.communicate(timeout=60)
            text = "".join(log) + part + rest
            self.assertEqual(proc.returncode, 0, text)
            self.assertIn("Total: 3 passed, 0 failed", text)
            checks = []
            for f in glob.glob(os.path.join(out, "*", "checks.json")):
                with open(f) as fh:
                    checks += json.load(fh)
            self.assertEqual(sorted(c["id"] for c in checks),
                             ["authorization-code-grant", "authorization-server-metadata",
                              "authorization-server-metadata-cimd"])
            self.assertEqual({c["status"] for c in checks}, {"SUCCESS"}, checks)
        finally:
            if proc is not None:
                stop_process(proc)
            env.close()


if __name__ == "__main__":
    unittest.main()
