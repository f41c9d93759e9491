"""Issue 11 on the real sim: a firmware update over the console with the
real `sz --ymodem` (lrzsz) through the pty, as an operator's terminal
program does it.

The build is signed again as version 0.2.0 (security counter 1) with the
development key; `fw update` receives it into slot B and marks it for a
test boot; `reboot` starts the trial, which confirms itself. Bad uploads —
one flipped byte, another key, a truncated file, an older counter, a
transfer cancelled with Ctrl-X Ctrl-X — each end in one `error:` line and
the running firmware stays. SMTP is served during the upload. Images that
exit or hang before confirming are reverted, with the reason kept. Mail
queued before an update is delivered through a smart host after it, and
after a revert.
"""
import json
import os
import smtplib
import re
import subprocess
import tempfile
import time
import unittest

from peers import SmartHost, SmtpLoad
from relaysim import BUILD, Sim

FWSIGN = os.path.join(BUILD, "tools", "fwsign", "fwsign")
ELF = os.path.join(BUILD, "board", "posix", "relay-fw")
DEV_KEY = os.path.join(BUILD, "keys", "dev-p256.pem")
HANG = os.path.join(BUILD, "tests", "integration", "test-fw-hang")


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

    def deliver_queue(self, expect):
        """Bring a smart host up for example.com and check that exactly the
        queued message ids `expect` reach it and leave the queue."""
        sim = self.sim
        with SmartHost(tls=False) as host:
            sim.cmd_ok("smarthost add example.com 10.0.2.2 port %d" % host.port)
            sim.cmd_ok("queue retry")
            host.wait_for(len(expect), timeout=60)
            sim.wait_for(lambda: sim.query("SELECT count(*) FROM message")[0][0] == 0,
                         timeout=30, what="the queue to empty")
            time.sleep(0.5)  # nothing more arrives: no duplicates
            ids = sorted(int(m) for msg in host.messages
                         for m in re.findall(rb"with ESMTP id (\d+)", msg.data))
        self.assertEqual(ids, sorted(expect))

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
        queued = sim.query("SELECT id FROM message")
        self.assertGreater(len(queued), 5)
        sim.send("reboot\r")
        sim.wait_prompt(30)
        sim.wait_for(lambda: "state    confirmed" in sim.cmd_ok("fw status"), what="confirm")
        status = sim.cmd_ok("fw status")
        self.assertRegex(status, r"^running  slot B, .*image 0\.2\.0\+0 \(security counter 1\)")
        self.assertIn("slot A   confirmed\n", status)  # kept as the fallback
        self.assertRegex(status, r"slot B   confirmed, active\n         image 0\.2\.0\+0, "
                                 r"security counter 1, sha256 [0-9a-f]{16}\.\.\., verified\n")
        self.assertIn("minimum  security counter 1", status)
        self.assertEqual(sim.query("SELECT id FROM message"), queued)
        sim.send("reboot\r")  # and it stays
        sim.wait_prompt(30)
        self.assertRegex(sim.cmd_ok("fw status"), r"^running  slot B, ")
        self.assertRegex(sim.cmd_ok("version"), r"^Smart Host Relay \S+ \(build \S+\) board posix "
                                                r"slot B image 0\.2\.0\+0\n")
        # What was queued before the update leaves through the new firmware.
        self.deliver_queue([row[0] for row in queued])
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
        self.assertIn("boot: slot B: its trial boot ended before it confirmed itself (it "
                      "crashed or exited); reverted to slot A", boot)
        status = sim.cmd_ok("fw status")
        self.assertRegex(status, r"^running  slot A, ")
        self.assertIn("slot B   bad", status)
        self.assertIn("minimum  security counter 0", status)  # B never confirmed
        self.assertEqual(sim.query("SELECT id FROM message"), queued)
        self.deliver_queue([queued[0][0]])

    def test_an_image_that_hangs_before_confirming_reverts(self):
        """A signed image that hangs before it ever kicks the watchdog
        (the boot stage started it before handing over): the watchdog
        resets it, the next boot reverts, and fw status keeps why."""
        sim = self.sim
        hangs = os.path.join(self.tmp.name, "hangs.img")
        subprocess.run([FWSIGN, "sign", "--key", DEV_KEY, "--version", "0.9.1",
                        "--security-counter", "1", "--board", "posix", HANG, hangs], check=True)
        self.assertIn("ok: image 0.9.1+0", self.upload(hangs, ["-k"]))
        sim.send("reboot\r")
        t = time.monotonic()
        boot = sim.wait_prompt(60)
        self.assertIn("boot: slot B: its trial boot ended before it confirmed itself (the "
                      "watchdog reset it); reverted to slot A", boot)
        self.assertGreater(time.monotonic() - t, 5)  # it did hang, for the watchdog's time
        status = sim.cmd_ok("fw status")
        self.assertRegex(status, r"^running  slot A, ")
        self.assertIn("slot B   bad", status)
        self.assertIn("last     slot B: its trial boot ended before it confirmed itself (the "
                      "watchdog reset it) (1 revert in all)", status)
        self.assertIn("fw: running slot A after a revert: slot B: its trial boot ended before "
                      "it confirmed itself (the watchdog reset it)", sim.cmd_ok("log 40"))

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

    def test_a_trial_that_cannot_pass_is_reverted_or_confirmed_by_hand(self):
        """A trial whose self-test cannot pass (here: no image can open the
        database, a directory stands in its place) waits and says so; fw
        update is refused meanwhile; fw revert marks it bad and restarts
        into slot A; after a second upload, fw confirm keeps it."""
        sim = self.sim
        db = os.path.join(sim.state_dir, "relay.db")
        self.assertIn("error: not running a trial: nothing to revert to", sim.cmd("fw revert"))
        self.assertIn("ok: image 0.2.0+0", self.upload(self.v2, ["-k"]))
        sim.stop()
        os.rename(db, db + ".aside")
        os.mkdir(db)
        sim.extra_args = ["--no-flash"]
        sim.start()
        status = sim.cmd_ok("fw status")
        self.assertRegex(status, r"^running  slot B, ")
        self.assertIn("state    trial boot, self-test running (not confirmed: a reset reverts), "
                      "waiting for the database to open", status)
        self.assertIn("error: confirm or revert the running trial first", sim.cmd("fw update"))
        sim.send("fw revert\r")
        sim.wait_prompt(30)
        status = sim.cmd_ok("fw status")
        self.assertRegex(status, r"^running  slot A, ")
        self.assertIn("slot B   bad", status)
        self.assertIn("last     reverted from the console (1 revert in all)", status)
        # Again, and this time the operator keeps it.
        self.assertIn("ok: image 0.2.0+0", self.upload(self.v2, ["-k"]))
        sim.send("reboot\r")
        sim.wait_prompt(30)
        self.assertIn("waiting for the database to open", sim.cmd_ok("fw status"))
        self.assertEqual(sim.cmd_ok("fw confirm"), "ok: slot B confirmed")
        status = sim.cmd_ok("fw status")
        self.assertIn("state    confirmed", status)
        self.assertIn("slot B   confirmed, active", status)
        self.assertIn("minimum  security counter 1", status)
        sim.stop()
        os.rmdir(db)
        os.rename(db + ".aside", db)
        sim.start()
        self.assertRegex(sim.cmd_ok("fw status"), r"^running  slot B, .*\nstate    confirmed")

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

    def upload_until_the_power_fails(self, path):
        """`fw update` and sz, until the device's power cut (the board logs
        exit status 102, DEV_EXIT_POWER_CUT); then sz is stopped, as an
        operator would give up on a dead line. Returns True if it was cut,
        False if the upload finished first (its answer read)."""
        sim = self.sim
        cuts_before = sim.board_log().count("exited with status 102")
        sim.send("fw update\r")
        sim.expect(r"start the YMODEM send now[^\r]*\r\n")
        fd = os.open(sim.pty_path, os.O_RDWR | os.O_NOCTTY)
        try:
            sz = subprocess.Popen(["sz", "--ymodem", "-k", path], stdin=fd, stdout=fd,
                                  stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 120
            cut = False
            while sz.poll() is None and time.monotonic() < deadline:
                if sim.board_log().count("exited with status 102") > cuts_before:
                    cut = True
                    break
                time.sleep(0.05)
            sz.kill()
            sz.wait()
        finally:
            os.close(fd)
        if cut:
            sim.send("\r")  # sz may have read the new boot's banner and login question
            sim.wait_prompt(30)
            return True
        # The transfer ended; the last block, the check and the mark follow.
        self.out = sim.wait_prompt(30)
        return sim.board_log().count("exited with status 102") > cuts_before

    def test_power_cuts_during_an_upload_sampled(self):
        """The power fails (tools/sim --flash-cut-after N) at sampled flash
        operations of a real upload: ops 0-1 record slot B as being
        written, then each 8-byte write block is programmed (a sector
        erased ahead), then ops D+2, D+3 mark it for test. After every cut
        the device boots the confirmed image in slot A, slot B is not
        marked (never a half-written fallback), and an update works again.
        A count one past the last operation is not reached: the upload
        completes and its trial confirms (so the samples above did hit the
        upload's last operations). Cuts at a trial's start are in
        test_images; test_bootflow sweeps every operation in-process."""
        size = os.path.getsize(self.v2)
        data_ops = -(-size // 8) + -(-size // 4096)
        samples = {1: "cut", 2 + data_ops // 2: "cut", 2 + data_ops - 1: "cut",
                   2 + data_ops + 1: "cut", 2 + data_ops + 2: "complete"}
        self.sim.stop()  # the first boot (setUp) flashed slot A
        for n, what in samples.items():
            with self.subTest(cut_after=n):
                sim = self.sim
                sim.extra_args = ["--no-flash", "--flash-cut-after", str(n)]
                sim.start()
                try:
                    cut = self.upload_until_the_power_fails(self.v2)
                    if what == "cut":
                        self.assertTrue(cut, "the power did not fail during the upload")
                        status = sim.cmd_ok("fw status")
                        self.assertRegex(status, r"^running  slot A, ")
                        self.assertIn("slot A   confirmed, active", status)
                        self.assertIn("slot B   empty", status)
                    else:
                        self.assertFalse(cut, "the power failed before the upload ended")
                        self.assertIn("ok: image 0.2.0+0", self.out)
                        sim.send("reboot\r")
                        sim.wait_prompt(40)
                        sim.wait_for(lambda: "state    confirmed" in sim.cmd_ok("fw status"),
                                     timeout=30, what="confirm")
                        self.assertRegex(sim.cmd_ok("fw status"), r"^running  slot B, ")
                finally:
                    sim.stop()
        # After the cuts, the same device still takes an update.
        self.sim.extra_args = ["--no-flash"]
        self.sim.start()
        self.assertIn("ok: image 0.2.0+0", self.upload(self.v2, ["-k"]))

    def test_json_mode_says_ready_then_the_result(self):
        """In JSON mode fw update answers two objects: "ready" when the
        receiver waits (not ok: nothing is done yet), then the result."""
        sim = self.sim
        sim.cmd("output json")
        sim.send("fw update\r")
        sim.expect(r'\{"ready":"ymodem","message":"start the YMODEM send now[^"]*"\}\r?\n')
        sim.send("\x18\x18")
        out = sim.wait_prompt(15)
        objs = [json.loads(line) for line in re.findall(r"\{.*\}", out)]
        self.assertEqual(objs, [{"error": "update not done: transfer cancelled by the sender; "
                                          "the running firmware is unchanged"}])

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
