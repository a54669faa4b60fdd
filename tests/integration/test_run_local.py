"""The README's first command, deploy/run-local.sh, with every port moved through its
environment: it must start on the addresses it was given, print those, make alice through
the RPC address it started, and the commands it printed must work as printed (issue a PAT,
introspect it, revoke it; the example MCP server's challenge names the moved facade).

It runs the release build (scripts/test.sh builds it first; the script builds it when it is
missing) in a data folder of the test's own (P2A_VAR_DIR), and is stopped by PID."""
import os
import re
import shlex
import signal
import subprocess
import tempfile
import threading
import unittest
import urllib.error
import urllib.request

from harness import ROOT, free_port, wait_until


class RunLocal(unittest.TestCase):
    def setUp(self):
        self.var = tempfile.mkdtemp(prefix="p2a-run-local-")
        self.ports = {k: free_port() for k in ("redis", "rpc", "http", "fa", "metrics", "mcp")}
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("PIPE2_AUTH_") and not k.startswith("P2A_")}
        p = self.ports
        env.update({"P2A_VAR_DIR": self.var, "P2A_REDIS_PORT": str(p["redis"]),
                    "P2A_MCP_LISTEN": f"127.0.0.1:{p['mcp']}",
                    "PIPE2_AUTH_RPC_LISTEN": f"127.0.0.1:{p['rpc']}",
                    "PIPE2_AUTH_HTTP_LISTEN": f"127.0.0.1:{p['http']}",
                    "PIPE2_AUTH_FORWARD_AUTH_LISTEN": f"127.0.0.1:{p['fa']}",
                    "PIPE2_AUTH_METRICS_LISTEN": f"127.0.0.1:{p['metrics']}"})
        self.env = env
        self.lines = []
        self.proc = subprocess.Popen(["bash", os.path.join(ROOT, "deploy", "run-local.sh")],
                                     cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def tearDown(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # the script stops its children in order
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(5)
        self.proc.stdout.close()
        subprocess.run(["rm", "-rf", self.var], check=False)

    def out(self):
        return "\n".join(self.lines)

    def printed(self, pattern, timeout=240):
        """The first match of pattern in what the script printed, waited for."""
        def found():
            if self.proc.poll() is not None and not re.search(pattern, self.out(), re.M):
                raise AssertionError("run-local.sh exited:\n" + self.out()[-4000:])
            return re.search(pattern, self.out(), re.M)
        return wait_until(found, timeout, f"run-local.sh to print {pattern!r}", interval=0.2)

    def run_printed(self, exports, cmd):
        """A command as the script printed it, in a shell with the printed exports."""
        script = "\n".join(exports + [cmd.replace("scripts/p2a", os.path.join(ROOT, "scripts",
                                                                              "p2a"), 1)])
        env = {k: v for k, v in os.environ.items() if not k.startswith("P2A_")}
        r = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(r.returncode, 0, f"{cmd}\n{r.stdout}\n{r.stderr}")
        return r.stdout

    def test_every_port_moved(self):
        p = self.ports
        alice = self.printed(r'created the first user "alice" .* user id (\S+)').group(1)
        out = self.out()
        # it says where it listens, as given
        self.assertIn(f"gRPC on 127.0.0.1:{p['rpc']}", out)
        self.assertIn(f"OAuth and sign-in on http://127.0.0.1:{p['http']}", out)
        self.assertIn(f"forward-auth on 127.0.0.1:{p['fa']}", out)
        self.assertIn(f"http://127.0.0.1:{p['metrics']}/metrics", out)
        self.assertIn(f"http://127.0.0.1:{p['mcp']}/mcp", out)
        self.assertIn(f"http://127.0.0.1:{p['http']}/account/", out)
        for default in ("50051", ":8080", ":8081", ":9090", ":3000"):
            self.assertNotIn(default, out)
        exports = [line.strip() for line in self.lines if line.strip().startswith("export P2A_")]
        self.assertIn(f"export P2A_ADDR=127.0.0.1:{p['rpc']}", exports)
        self.assertEqual(len(exports), 3, exports)

        # the printed commands, as printed, with alice's id in place
        issue = next(line.strip() for line in self.lines if "scripts/p2a issue" in line)
        issue = issue.split("#")[0].replace("<alice's user id>", shlex.quote(alice))
        issued = self.run_printed(exports, issue)
        token = re.search(r"^token .*:\n(\S+)", issued, re.M).group(1)
        jti = re.search(r"^jti ([^,\s]+)", issued, re.M).group(1)
        self.assertIn('"active": true', self.run_printed(exports,
                                                         f"scripts/p2a introspect {token}"))
        self.assertIn(jti, self.run_printed(exports, f"scripts/p2a list --user {alice}"))
        self.run_printed(exports, f"scripts/p2a revoke {jti}")
        self.assertIn("REVOKED", self.run_printed(exports, f"scripts/p2a introspect {token}"))

        # the example MCP server, behind the moved forward-auth, points clients to the moved
        # facade; a PAT of alice's runs its tools
        mcp = f"http://127.0.0.1:{p['mcp']}/mcp"

        def challenge():
            try:
                urllib.request.urlopen(urllib.request.Request(mcp, data=b"{}", method="POST",
                                                              headers={"Content-Type": "application/json"}),
                                       timeout=5)
            except urllib.error.HTTPError as e:
                return e.code, e.headers.get("WWW-Authenticate", "")
            except OSError:
                return None
            return None
        status, www = wait_until(challenge, 30, "the example MCP server")
        self.assertEqual(status, 401)
        self.assertIn(f'resource_metadata="http://127.0.0.1:{p["mcp"]}/.well-known/'
                      'oauth-protected-resource/mcp"', www)
        self.assertNotIn("error=", www)  # RFC 6750 3.1: no token, no error code
        with urllib.request.urlopen(f"http://127.0.0.1:{p['mcp']}/.well-known/"
                                    "oauth-protected-resource/mcp", timeout=5) as r:
            self.assertIn(f"http://127.0.0.1:{p['http']}", r.read().decode())


if __name__ == "__main__":
    unittest.main()
