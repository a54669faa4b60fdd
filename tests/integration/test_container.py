"""The container image builds (deploy/build-image.sh: debootstrap + buildah, no registry) and
runs once to a healthy state, answering a real Introspect from outside the container.
Skipped, with the reason printed, where those tools cannot run."""
import os
import shutil
import subprocess
import unittest
import uuid

from harness import ROOT, Env, wait_until

IMAGE = "localhost/pipe2-auth:test"
PODMAN = ["podman", "--storage-driver", "vfs", "--runtime", "runc"]


def why_not():
    if os.geteuid() != 0:
        return "building needs root (debootstrap, buildah)"
    for tool in ["buildah", "podman", "debootstrap", "runc"]:
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return None


class Container(unittest.TestCase):
    def test_image_builds_and_serves(self):
        reason = why_not()
        if reason:
            print(f"\n  SKIPPED: {reason}")
            self.skipTest(reason)
        b = subprocess.run([os.path.join(ROOT, "deploy", "build-image.sh"), IMAGE],
                           capture_output=True, text=True, timeout=900)
        self.assertEqual(b.returncode, 0, b.stdout[-3000:] + b.stderr[-3000:])
        print("\n  " + [l for l in b.stdout.splitlines() if l.startswith("==> localhost")][-1])
        env = Env()
        name = "p2a-test-" + uuid.uuid4().hex[:8]
        try:
            # what the container reads comes in as mounted folders its user (10001) can read
            svc_dir = os.path.join(env.dir, "svc-mount")
            os.makedirs(svc_dir)
            shutil.copy(env.svckeys_file, os.path.join(svc_dir, "service-keys"))
            for path in [env.keys_dir, svc_dir]:
                os.chmod(path, 0o755)
                for f in os.listdir(path):
                    os.chmod(os.path.join(path, f), 0o644)
            from harness import Authd, free_port
            rpc, http, metrics = free_port(), free_port(), free_port()
            run = subprocess.run(PODMAN + [
                "run", "-d", "--name", name, "--network", "host", "--read-only",
                "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
                "-v", f"{env.keys_dir}:/etc/pipe2-auth/keys:ro",
                "-v", f"{svc_dir}:/etc/pipe2-auth/service-keys:ro",
                "-e", f"PIPE2_AUTH_REDIS_URL={env.redis.url()}",
                "-e", f"PIPE2_AUTH_RPC_LISTEN=127.0.0.1:{rpc}",
                "-e", f"PIPE2_AUTH_HTTP_LISTEN=127.0.0.1:{http}",
                "-e", f"PIPE2_AUTH_METRICS_LISTEN=127.0.0.1:{metrics}",
                IMAGE], capture_output=True, text=True, timeout=120)
            self.assertEqual(run.returncode, 0, run.stderr)
            a = Authd(env)  # only to speak to it: the process is the container's
            a.port, a.http_port, a.metrics_port = rpc, http, metrics

            def logs():
                return subprocess.run(PODMAN + ["logs", name], capture_output=True,
                                      text=True).stderr

            try:
                wait_until(lambda: a.port_open(), 30, "the container to listen")
                wait_until(lambda: a.health() == 1, 30, "SERVING")
            except AssertionError as e:
                raise AssertionError(f"{e}\n{logs()[-3000:]}")
            admin = a.client(env.admin_key)
            mcp = a.client(env.introspect_key)
            try:
                issued = admin.issue("cora", "from outside the container")
                r = mcp.introspect(issued.token)
                self.assertTrue(r.active, logs())
                self.assertEqual(r.name, "from outside the container")
            finally:
                admin.close()
                mcp.close()
            self.assertEqual(a.http("/readyz")[0], 200)
            user = subprocess.run(PODMAN + ["exec", name, "/usr/bin/id", "-u"],
                                  capture_output=True, text=True)
            self.assertEqual(user.stdout.strip(), "10001")
            subprocess.run(PODMAN + ["stop", "-t", "30", name], capture_output=True, timeout=60)
            code = subprocess.run(PODMAN + ["inspect", name, "--format", "{{.State.ExitCode}}"],
                                  capture_output=True, text=True).stdout.strip()
            self.assertEqual(code, "0", logs()[-3000:])
        finally:
            subprocess.run(PODMAN + ["rm", "-f", name], capture_output=True)
            env.close()


if __name__ == "__main__":
    unittest.main()
