"""Resets: the board outlives the device, and the console path never changes."""
import os
import signal
import unittest

from relaysim import Sim


class ResetTest(unittest.TestCase):
    def setUp(self):
        self.sim = Sim()
        self.sim.start()

    def tearDown(self):
        self.sim.close()

    def test_reboot_comes_back_on_the_same_pty(self):
        pty, board_pid, dev_pid = self.sim.pty_path, self.sim.proc.pid, self.sim.device_pid()
        self.sim.send("reboot\r")
        self.sim.expect(r"rebooting")
        self.sim.expect(r"Smart Host Relay .* reset: software")
        self.sim.wait_prompt()
        # Same pty: the descriptor opened before the reboot still works.
        self.assertEqual(self.sim.pty_path, pty)
        self.assertIn("board posix", self.sim.cmd_ok("version"))
        self.assertIsNone(self.sim.proc.poll())
        self.assertEqual(self.sim.proc.pid, board_pid)
        self.assertNotEqual(self.sim.device_pid(), dev_pid)
        self.assertRegex(self.sim.dhcp_address(), r"^10\.0\.2\.")

    def test_sigkill_of_the_device_is_a_reset(self):
        dev_pid = self.sim.device_pid()
        os.kill(dev_pid, signal.SIGKILL)
        self.sim.expect(r"Smart Host Relay .* reset: fault")
        self.sim.wait_prompt()
        self.assertIsNone(self.sim.proc.poll(), "the board must survive")
        self.assertNotEqual(self.sim.device_pid(), dev_pid)
        self.assertIn("device stopped by signal 9", self.sim.board_log())
        self.assertIn("board posix", self.sim.cmd_ok("version"))
        self.assertRegex(self.sim.dhcp_address(), r"^10\.0\.2\.")

    def test_repeated_kills(self):
        for _ in range(3):
            os.kill(self.sim.device_pid(), signal.SIGKILL)
            self.sim.expect(r"reset: fault")
            self.sim.wait_prompt()
        self.assertIn("board posix", self.sim.cmd_ok("version"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
