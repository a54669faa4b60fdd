"""The rolling rehearsal (deploy/rehearsal.py) with short steps: zero failed introspections
and zero revoked tokens accepted while three replicas are rolled and a fourth is added."""
import os
import subprocess
import unittest

from harness import AUTHD, ROOT


class Rehearsal(unittest.TestCase):
    def test_rolling_restart_under_load(self):
        r = subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "deploy", "rehearsal.py"),
                            "--seconds-per-step", "1.5", "--authd", AUTHD],
                           capture_output=True, text=True, timeout=240)
        print("\n" + r.stdout[-2000:])
        self.assertEqual(r.returncode, 0, r.stdout[-3000:] + r.stderr[-3000:])
        self.assertIn("RESULT: zero failures, zero revoked tokens accepted", r.stdout)


if __name__ == "__main__":
    unittest.main()
