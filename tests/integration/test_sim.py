"""The tools/sim contract: options, state lock, power-off, flash slot, stdio console."""
import os
import signal
import subprocess
import tempfile
import time
import unittest

import pexpect

from relaysim import Sim, SIM, free_port, log_in


def run_sim(args, timeout=10):
    sim = Sim()
    env = sim.env()
    sim.close()
    return subprocess.run([SIM] + args, env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def boot_once(state):
    """Power a sim on state directory `state` on, check it answers, power it
    off; returns the board's log."""
    sim = Sim(state_dir=state, smtp_port=free_port())
    try:
        sim.start()
        if "board posix" not in sim.cmd_ok("version"):
            raise AssertionError("version does not name the board")
        sim.stop()
        return sim.board_log()
    finally:
        sim.close()


class SimContractTest(unittest.TestCase):
    def test_second_board_on_same_state_is_refused(self):
        with Sim() as first:
            r = run_sim(["--state", first.state_dir, "--smtp-port", str(free_port()),
                         "--console", "pty"])
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("is in use by another board (pid %d)" % first.proc.pid, r.stderr)
            self.assertIn("board posix", first.cmd_ok("version"))

    def test_sigterm_and_sigint_power_off_cleanly(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            with self.subTest(sig=sig):
                sim = Sim()
                try:
                    sim.start()
                    dev_pid = sim.device_pid()
                    self.assertEqual(sim.stop(sig), 0)
                    self.assertFalse(os.path.exists(os.path.join(sim.state_dir, "device.pid")))
                    with self.assertRaises(ProcessLookupError):
                        os.kill(dev_pid, 0)
                    self.assertIn("powered off", sim.board_log())
                finally:
                    sim.close()

    def test_bad_options_are_refused(self):
        cases = [
            (["--net", "vde"], "--net must be slirp or tap, not 'vde'"),
            (["--console", "serial"], "--console must be stdio or pty"),
            (["--smtp-port", "70000"], "--smtp-port must be 1..65535"),
            (["--bogus"], "unknown option"),
        ]
        for args, want in cases:
            with self.subTest(args=args):
                with tempfile.TemporaryDirectory() as tmp:
                    r = run_sim(args + ["--state", os.path.join(tmp, "s")])
                self.assertNotEqual(r.returncode, 0)
                self.assertIn(want, r.stderr)

    def test_busy_smtp_port_is_reported(self):
        import socket
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen()
            port = s.getsockname()[1]
            with tempfile.TemporaryDirectory() as tmp:
                r = run_sim(["--state", os.path.join(tmp, "s"), "--smtp-port", str(port),
                             "--console", "pty"])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("cannot forward 127.0.0.1:%d" % port, r.stderr)

    def test_slot_written_only_when_the_build_changes(self):
        with tempfile.TemporaryDirectory() as tmp:
            state = os.path.join(tmp, "state")
            self.assertIn("slot A written", boot_once(state))
            slot = os.path.join(state, "flash-slot-a.bin")
            mtime = os.stat(slot).st_mtime_ns
            self.assertNotIn("slot A written", boot_once(state))
            self.assertEqual(os.stat(slot).st_mtime_ns, mtime)

    def test_corrupt_slot_is_rewritten_not_run(self):
        with tempfile.TemporaryDirectory() as tmp:
            state = os.path.join(tmp, "state")
            boot_once(state)
            with open(os.path.join(state, "flash-slot-a.bin"), "r+b") as f:
                f.seek(5000)
                b = f.read(1)
                f.seek(5000)
                f.write(bytes([b[0] ^ 0xFF]))
            # The board finds the slot differs from the build and rewrites it.
            self.assertIn("slot A written", boot_once(state))

    def test_stdio_console_ctrl_c_goes_to_device_and_ctrl_a_x_quits(self):
        sim = Sim(console="stdio")
        try:
            child = pexpect.spawn(SIM, sim.command_line()[1:], env=sim.env(),
                                  encoding="utf-8", timeout=10)
            log_in(child)  # first boot: set the admin password
            child.send("version\r")
            child.expect(r"Smart Host Relay .* board posix")
            child.expect_exact("relay> ")
            child.send("reboot\x03")  # Ctrl-C reaches the device: line discarded
            child.expect_exact("^C")
            child.expect_exact("relay> ")
            child.send("version\r")
            child.expect(r"board posix")
            child.send("\x01x")
            child.expect(pexpect.EOF)
            child.close()
            self.assertEqual(child.exitstatus, 0)
            self.assertNotIn("rebooting", child.before or "")
        finally:
            sim.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
