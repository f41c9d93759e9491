"""Issue 11 on the real sim: a firmware update over the console with the
real `sz --ymodem` (lrzsz) through the pty, as an operator's terminal
program does it.

The build is signed again as version 0.2.0 (security counter 1) with the
development key; `fw update` receives it into slot B and marks it for a
test boot; `reboot` starts the trial, which confirms itself. Bad uploads —
one flipped byte, another key, a truncated file, an older counter, a
transfer cancelled with Ctrl-X Ctrl-X — each end in one `error:` line and
the running firmware stays. SMTP is served during the upload.
"""
import os
import smtplib
import subprocess
import tempfile
import time
import unittest

from peers import SmtpLoad
from relaysim import BUILD, Sim

FWSIGN = os.path.join(BUILD, "tools", "fwsign", "fwsign")
ELF = os.path.join(BUILD, "board", "posix", "relay-fw")
DEV_KEY = os.path.join(BUILD, "keys", "dev-p256.pem")


def sign(out, version, counter, key=DEV_KEY):
    subprocess.run([FWSIGN, "sign", "--key", key, "--version", version, "--security-counter",
                    str(counter), "--board", "posix", ELF, out], check=True)


class UpdateTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="shr-update-")
        cls.v2 = os.path.join(cls.tmp.name, "v2.img")
        sign(cls.v2, "0.2.0", 1)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def setUp(self):
        self.sim = Sim()
        self.sim.start()

    def tearDown(self):
        self.sim.close()

    def upload(self, path, extra=()):
        """`fw update`, then sz through the pty; returns the console's answer."""
        sim = self.sim
        sim.send("fw update\r")
        sim.expect(r"start the YMODEM send now[^\r]*\r\n")
        fd = os.open(sim.pty_path, os.O_RDWR | os.O_NOCTTY)
        try:
            subprocess.run(["sz", "--ymodem", *extra, path], stdin=fd, stdout=fd,
                           stderr=subprocess.DEVNULL, timeout=120)
        finally:
            os.close(fd)
        return sim.wait_prompt(30).strip("C\n")

    def test_update_to_a_new_version_and_keep_it(self):
        sim = self.sim
        sim.cmd_ok("domain add example.com")
        sim.cmd_ok("allow add 10.0.2.2")
        with SmtpLoad(sim.smtp_port, limit=1000) as load:
            self.assertTrue(load.started.wait(20))
            before = len(load.done)
            out = self.upload(self.v2, ["-k"])
            during = len(load.done) - before
        self.assertEqual(load.errors, [])
        self.assertGreater(during, 5, "SMTP was not served during the upload")
        self.assertRegex(out, r"ok: image 0\.2\.0\+0 \(\d+ bytes\) is in slot B, marked for one "
                              r"test boot")
        status = sim.cmd_ok("fw status")
        self.assertIn("slot B   test, trial", status)
        queued = sim.query("SELECT count(*) FROM message")[0][0]
        sim.send("reboot\r")
        sim.wait_prompt(30)
        sim.wait_for(lambda: "state    confirmed" in sim.cmd_ok("fw status"), what="confirm")
        status = sim.cmd_ok("fw status")
        self.assertRegex(status, r"^running  slot B, .*image 0\.2\.0\+0 \(security counter 1\)")
        self.assertIn("slot A   confirmed\n", status)  # kept as the fallback
        self.assertRegex(status, r"slot B   confirmed, active\n         image 0\.2\.0\+0, "
                                 r"security counter 1, sha256 [0-9a-f]{16}\.\.\., verified\n")
        self.assertIn("minimum  security counter 1", status)
        self.assertEqual(sim.query("SELECT count(*) FROM message")[0][0], queued)
        sim.send("reboot\r")  # and it stays
        sim.wait_prompt(30)
        self.assertRegex(sim.cmd_ok("fw status"), r"^running  slot B, ")
        # Now an older counter is refused.
        v1 = os.path.join(self.tmp.name, "v1.img")
        sign(v1, "0.1.5", 0)
        out = self.upload(v1)
        self.assertIn("error: image refused: security counter 0 is below the minimum 1 "
                      "(a downgrade); the running firmware is unchanged", out)

    def test_an_image_that_dies_before_confirming_reverts(self):
        """A correctly signed image that exits before its self-test passes
        (here /bin/false, signed for this board): the upload is accepted,
        the trial starts once, and the next boot reverts to the previous
        image, which says why; the queue is untouched."""
        sim = self.sim
        sim.cmd_ok("domain add example.com")
        sim.cmd_ok("allow add 10.0.2.2")
        with smtplib.SMTP("127.0.0.1", sim.smtp_port, timeout=20) as c:
            c.sendmail("a@sender.example", ["b@example.com"],
                       "Subject: kept\r\n\r\nacross the revert\r\n")
        queued = sim.query("SELECT id FROM message")
        self.assertEqual(len(queued), 1)
        dies = os.path.join(self.tmp.name, "dies.img")
        subprocess.run([FWSIGN, "sign", "--key", DEV_KEY, "--version", "0.9.0",
                        "--security-counter", "1", "--board", "posix", "/bin/false", dies],
                       check=True)
        out = self.upload(dies)
        self.assertIn("ok: image 0.9.0+0", out)
        sim.send("reboot\r")
        boot = sim.wait_prompt(40)
        self.assertIn("boot: slot B: its trial boot reset before it confirmed itself; "
                      "reverted to slot A", boot)
        status = sim.cmd_ok("fw status")
        self.assertRegex(status, r"^running  slot A, ")
        self.assertIn("slot B   bad", status)
        self.assertIn("minimum  security counter 0", status)  # B never confirmed
        self.assertEqual(sim.query("SELECT id FROM message"), queued)

    def refused(self, data, reason):
        path = os.path.join(self.tmp.name, "bad.img")
        with open(path, "wb") as f:
            f.write(data)
        out = self.upload(path)
        self.assertIn("error: " + reason + "; the running firmware is unchanged", out)
        status = self.sim.cmd_ok("fw status")
        self.assertRegex(status, r"^running  slot A, ")
        self.assertIn("slot B   empty", status)
        self.assertNotIn(", verified", status.split("slot B")[1])

    def test_bad_uploads_are_refused(self):
        with open(self.v2, "rb") as f:
            good = f.read()
        flipped = bytearray(good)
        flipped[len(good) // 3] ^= 0x40
        self.refused(bytes(flipped),
                     "image refused: SHA-256 does not match: the image is damaged or was changed")
        key = os.path.join(self.tmp.name, "other.pem")
        subprocess.run([FWSIGN, "keygen", key], check=True)
        foreign = os.path.join(self.tmp.name, "foreign.img")
        sign(foreign, "0.3.0", 2, key=key)
        with open(foreign, "rb") as f:
            self.refused(f.read(), "image refused: signed with another key than this device "
                                   "trusts")
        self.refused(good[:len(good) - 100], "image refused: TLV area past the end of the slot")

    def test_cancel_returns_the_console(self):
        sim = self.sim
        sim.send("fw update\r")
        sim.expect(r"start the YMODEM send now[^\r]*\r\n")
        t = time.monotonic()
        sim.send("\x18\x18")  # Ctrl-X Ctrl-X, as a terminal program's abort sends
        out = sim.wait_prompt(15)
        self.assertLess(time.monotonic() - t, 5)
        self.assertIn("error: update not done: transfer cancelled by the sender", out)
        self.assertIn("Smart Host Relay", sim.cmd_ok("version"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
