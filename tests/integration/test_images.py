"""Issue 10 on the real sim: the boot stage starts only a verified image.

tools/sim signs each build (fwsign, development key) and flashes it into
slot A like a factory programmer. Here a test places other images in the
slots behind the device's back — the build with one byte flipped, the build
signed with another key, an image for another board — and powers on with
the flash as it is (tools/sim --no-flash): the boot stage refuses such a
primary slot with a clear console line and starts the confirmed image in
slot B; with nothing verifiable in either slot it says so and waits.
"""
import hashlib
import os
import re
import struct
import subprocess
import tempfile
import time
import unittest

from relaysim import BUILD, Sim, SimError

SIGNED = os.path.join(BUILD, "board", "posix", "relay-fw.img")
ELF = os.path.join(BUILD, "board", "posix", "relay-fw")
FWSIGN = os.path.join(BUILD, "tools", "fwsign", "fwsign")
SECTOR = 4096


def boot_state_record(active, images, trial=0xFF, started=0, min_sec_cnt=0):
    """One copy of the boot state as firmware/bootstate.c and nvrec.c lay
    it out: magic, format, flags, sequence, payload, SHA-256."""
    payload = bytes([active, trial, started]) + bytes(images)
    payload += struct.pack("<II", min_sec_cnt, 0) + bytes(96)
    head = b"SHRB" + bytes([1, 0, 0, 0]) + struct.pack("<I", 1)
    body = head + payload
    return body + hashlib.sha256(body).digest()


def write_flash(state_dir, name, data):
    """Replace a partition file's contents (the rest stays erased, 0xFF)."""
    path = os.path.join(state_dir, name)
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.write(data + b"\xff" * (size - len(data)))


def confirmed_status(sim, timeout=40):
    """`fw status` once an image runs confirmed. The power may fail (an
    injected cut) after the prompt came: the console then shows the next
    boot instead of the answer (the driver logs in again on the way to the
    prompt), and the command is asked again."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            out = sim.cmd_ok("fw status")
            if "state    confirmed" in out:
                return out
        except SimError:
            pass  # the answer was a reboot; the driver is at the new prompt
        if time.monotonic() > deadline:
            raise AssertionError("no confirmed image within %d s" % timeout)
        time.sleep(0.3)


class BootStageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(SIGNED, "rb") as f:
            cls.good = f.read()
        cls.tmp = tempfile.TemporaryDirectory(prefix="shr-images-")
        key = os.path.join(cls.tmp.name, "other.pem")
        subprocess.run([FWSIGN, "keygen", key], check=True)
        cls.foreign = os.path.join(cls.tmp.name, "foreign.img")
        subprocess.run([FWSIGN, "sign", "--key", key, "--version", "9.9.9", "--board", "posix",
                        ELF, cls.foreign], check=True)
        cls.other_board = os.path.join(cls.tmp.name, "mps2.img")
        dev_key = os.path.join(BUILD, "keys", "dev-p256.pem")
        subprocess.run([FWSIGN, "sign", "--key", dev_key, "--version", "9.9.9", "--board", "mps2",
                        ELF, cls.other_board], check=True)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def setUp(self):
        self.sim = Sim()

    def tearDown(self):
        self.sim.close()

    def test_signed_build_boots_and_confirms(self):
        self.sim.start()
        status = self.sim.cmd_ok("fw status")
        self.assertIn("state    confirmed", status)
        self.assertIn("slot A   confirmed, active", status)
        out = subprocess.run([FWSIGN, "verify", "--key", os.path.join(BUILD, "keys", "dev-p256.pem"),
                              "--board", "posix", SIGNED], capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stderr)

    def primary_refused(self, bad_image, reason):
        """Slot A holds `bad_image`, slot B the good build, confirmed: the
        boot stage refuses A, says why, and B runs (and becomes active)."""
        sim = self.sim
        sim.start()  # the programmer writes the build and the boot state
        sim.stop()
        write_flash(sim.state_dir, "flash-slot-b.bin", self.good)
        write_flash(sim.state_dir, "flash-bootctl.bin",
                    boot_state_record(active=0, images=[2, 2]))
        write_flash(sim.state_dir, "flash-slot-a.bin", bad_image)
        sim.extra_args = ["--no-flash"]
        boot = sim.start()
        self.assertIn("boot: slot A refused: " + reason, boot)
        status = sim.cmd_ok("fw status")
        self.assertRegex(status, r"^running  slot B, ")
        self.assertIn("slot B   confirmed, active", status)
        self.assertIn("last     slot A refused: " + reason, status)
        # Mail is served by the image that runs.
        self.assertIn("Smart Host Relay", sim.cmd_ok("version"))

    def test_one_flipped_byte_refused(self):
        bad = bytearray(self.good)
        bad[len(bad) // 2] ^= 0x01  # in the payload (the firmware ELF)
        self.primary_refused(bytes(bad),
                             "SHA-256 does not match: the image is damaged or was changed")

    def test_other_key_refused(self):
        with open(self.foreign, "rb") as f:
            self.primary_refused(f.read(), "signed with another key than this device trusts")

    def test_other_board_refused(self):
        with open(self.other_board, "rb") as f:
            self.primary_refused(f.read(), "built for board 'mps2', not 'posix'")

    def test_trial_confirms_itself(self):
        """An image marked for test (slot B) runs once as a trial, passes
        its self-test and confirms itself: it is the active slot from then."""
        sim = self.sim
        sim.start()
        sim.stop()
        write_flash(sim.state_dir, "flash-slot-b.bin", self.good)
        write_flash(sim.state_dir, "flash-bootctl.bin",
                    boot_state_record(active=0, images=[2, 1], trial=1))
        sim.extra_args = ["--no-flash"]
        sim.start()
        sim.wait_for(lambda: "state    confirmed" in sim.cmd_ok("fw status"), what="confirm")
        status = sim.cmd_ok("fw status")
        self.assertRegex(status, r"^running  slot B, ")
        self.assertIn("slot A   confirmed\n", status)
        self.assertIn("slot B   confirmed, active", status)
        self.assertIn("passed its self-test: confirmed", sim.cmd_ok("log 50"))
        sim.stop()  # and it stays: the next power-on starts B again, not as a trial
        sim.start()
        self.assertIn("slot B   confirmed, active", sim.cmd_ok("fw status"))

    def test_crashing_trial_reverts(self):
        """A signed trial image that dies before confirming (here a program
        that exits at once) is started once; the next boot reverts to the
        confirmed slot, marks the trial bad and keeps the reason, which the
        reverted firmware reports."""
        sim = self.sim
        crasher = os.path.join(self.tmp.name, "crash.img")
        subprocess.run([FWSIGN, "sign", "--key", os.path.join(BUILD, "keys", "dev-p256.pem"),
                        "--version", "9.0.0", "--board", "posix", "/bin/false", crasher],
                       check=True)
        sim.start()
        sim.stop()
        with open(crasher, "rb") as f:
            write_flash(sim.state_dir, "flash-slot-b.bin", f.read())
        write_flash(sim.state_dir, "flash-bootctl.bin",
                    boot_state_record(active=0, images=[2, 1], trial=1))
        sim.extra_args = ["--no-flash"]
        boot = sim.start(timeout=20)
        why = "slot B: its trial boot ended before it confirmed itself (it crashed or exited)"
        self.assertIn("boot: %s; reverted to slot A" % why, boot)
        status = sim.cmd_ok("fw status")
        self.assertRegex(status, r"^running  slot A, ")
        self.assertIn("slot B   bad", status)
        self.assertIn("last     %s (1 revert in all)" % why, status)
        self.assertIn("fw: running slot A after a revert: %s (1 revert in all)" % why,
                      sim.cmd_ok("log 40"))
        sim.send("reboot\r")  # reported once, not at every boot
        sim.wait_prompt(30)
        self.assertNotIn("after a revert", sim.cmd_ok("log 40"))

    def test_power_cuts_during_a_trial_sampled(self):
        """The power fails at a handful of flash operations of a trial boot
        (tools/sim --flash-cut-after): the boot stage's "trial started"
        record (ops 0, 1), the firmware's confirm (ops 2, 3). After each
        the device boots a verified image: a cut before the trial is on
        record retries it (B confirms), a cut during the confirm reverts to
        A (B never confirmed). The in-process sweep (test_bootflow) covers
        every operation; this checks the real processes agree."""
        expected = {0: "B", 1: "B", 2: "A", 3: "A"}
        for cut, slot in expected.items():
            with self.subTest(cut=cut):
                sim = Sim()
                try:
                    sim.start()
                    sim.stop()
                    write_flash(sim.state_dir, "flash-slot-b.bin", self.good)
                    write_flash(sim.state_dir, "flash-bootctl.bin",
                                boot_state_record(active=0, images=[2, 1], trial=1))
                    sim.extra_args = ["--no-flash", "--flash-cut-after", str(cut)]
                    sim.start(timeout=30)
                    status = confirmed_status(sim)
                    self.assertRegex(status, r"^running  slot %s, " % slot)
                    self.assertIn("slot %s   confirmed, active" % slot, status)
                    if slot == "A":
                        self.assertIn("slot B   bad", status)
                finally:
                    sim.close()

    def test_damaged_boot_record_keeps_the_newest_image(self):
        """Both copies of the boot state unreadable (bit rot, not a power
        cut): the image with the highest security counter runs and its
        counter becomes the minimum, so the older one cannot come back."""
        sim = self.sim
        newer = os.path.join(self.tmp.name, "sc5.img")
        subprocess.run([FWSIGN, "sign", "--key", os.path.join(BUILD, "keys", "dev-p256.pem"),
                        "--version", "0.2.0", "--security-counter", "5", "--board", "posix",
                        ELF, newer], check=True)
        sim.start()
        sim.stop()
        with open(newer, "rb") as f:
            write_flash(sim.state_dir, "flash-slot-b.bin", f.read())
        write_flash(sim.state_dir, "flash-bootctl.bin", b"\x00" * 16 + b"\xff" * (SECTOR - 16)
                    + b"\x00" * 16)
        sim.extra_args = ["--no-flash"]
        boot = sim.start()
        self.assertIn("boot: the boot state record was damaged; boot state rebuilt: slot B "
                      "(highest security counter)", boot)
        status = sim.cmd_ok("fw status")
        self.assertRegex(status, r"^running  slot B, .*image 0\.2\.0\+0 \(security counter 5\)")
        self.assertIn("minimum  security counter 5", status)

    def test_nothing_verifies_the_device_says_so_and_waits(self):
        sim = self.sim
        sim.start()
        sim.stop()
        bad = bytearray(self.good)
        bad[1000] ^= 0xFF
        write_flash(sim.state_dir, "flash-slot-a.bin", bytes(bad))
        write_flash(sim.state_dir, "flash-slot-b.bin", b"")
        sim.extra_args = ["--no-flash"]
        sim.start(wait=False)
        m = sim.expect(r"boot: no slot holds an image that may run: ([^\r\n]*); halted", timeout=15)
        self.assertIn("slot A refused: SHA-256 does not match", m.group(1))
        self.assertIn("slot B: empty, not a confirmed image", m.group(1))
        # It waits (no boot loop): the device process stays, nothing more is printed.
        pid = sim.device_pid()
        with self.assertRaises(Exception):
            sim.expect(r"boot:", timeout=3)
        self.assertEqual(sim.device_pid(), pid)


if __name__ == "__main__":
    unittest.main(verbosity=2)
