"""tools/crashloop in CI: ten SIGKILLs of the device at random moments
while mail flows in and out; every message that got its 250 must reach
the smart host (duplicates are allowed and counted). The long form (50 or
1000 kills) is run by hand: docs/reliability.md."""
import os
import re
import subprocess
import unittest

from relaysim import BUILD

CRASHLOOP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools",
                         "crashloop")


class CrashLoop(unittest.TestCase):
    def test_ten_kills_lose_nothing(self):
        r = subprocess.run([CRASHLOOP, "--kills", "10", "--no-build", "--build-dir", BUILD],
                           capture_output=True, text=True, timeout=280)
        m = re.search(r"^accepted=(\d+) delivered=(\d+) lost=(\d+) duplicated=(\d+) kills=10$",
                      r.stdout, re.M)
        self.assertTrue(m, r.stdout + r.stderr)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        accepted, delivered, lost, _ = (int(g) for g in m.groups())
        self.assertGreater(accepted, 100, "hardly any mail flowed: " + r.stderr)
        self.assertEqual(lost, 0)
        self.assertGreaterEqual(delivered, accepted)


if __name__ == "__main__":
    unittest.main(verbosity=2)
