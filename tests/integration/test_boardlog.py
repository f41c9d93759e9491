"""The simulator's own messages (issue 9): board diagnostics go to
<state>/board.log (and to stderr in pty mode), never onto a stdio console
where an operator would take them for the appliance's output."""
import io
import os
import re
import time
import unittest

import pexpect

from relaysim import SIM, Sim, log_in

EGRESS_DROP = re.compile(r"(?m)^board: egress dropped #\d+: ")


def provoke_egress_drop(send, expect):
    """Resolving a smart host by name goes to slirp's DNS address, which the
    board's egress filter drops (as in test_boot)."""
    send("domain add egress.test\r")
    send("smarthost add egress.test mail.egress.test\r")
    send("smarthost test egress.test a@egress.test\r")
    expect(r"resolving mail\.egress\.test")


def read_file(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("no %s within %ss" % (what, timeout))


class BoardLogTest(unittest.TestCase):
    def test_pty_mode_logs_to_file_and_stderr(self):
        with Sim() as sim:
            sim.dhcp_address()
            provoke_egress_drop(sim.send, sim.expect)
            board_log = os.path.join(sim.state_dir, "board.log")
            wait_for(lambda: EGRESS_DROP.search(read_file(board_log)), 10,
                     "egress drop in board.log")
            # stderr too (relaysim keeps it; test_isn reads its frame trace).
            wait_for(lambda: EGRESS_DROP.search(sim.board_log()), 10,
                     "egress drop on stderr")
            sim.send("\x03")
            sim.wait_prompt()
            # The console never shows it.
            self.assertIsNone(EGRESS_DROP.search(sim.transcript.getvalue()))

    def test_stdio_console_shows_only_the_appliance(self):
        sim = Sim(console="stdio")
        board_log = os.path.join(sim.state_dir, "board.log")
        child = None
        try:
            child = pexpect.spawn(SIM, sim.command_line()[1:], env=sim.env(),
                                  encoding="utf-8", codec_errors="replace", timeout=15)
            # Everything the terminal showed, the board's stderr included.
            child.logfile_read = io.StringIO()
            log_in(child)  # first boot: set the admin password
            # Wait for an address, so that a lookup is really sent.
            deadline = time.monotonic() + 10
            while True:
                child.send("net show\r")
                child.expect_exact("relay> ")
                if re.search(r"address\s+10\.0\.2\.15/", child.before):
                    break
                self.assertLess(time.monotonic(), deadline, "no DHCP address")
                time.sleep(0.3)
            provoke_egress_drop(child.send, child.expect)
            wait_for(lambda: EGRESS_DROP.search(read_file(board_log)), 10,
                     "egress drop in board.log")
            child.send("\x03")
            child.expect_exact("relay> ")
            child.send("\x01x")
            child.expect(pexpect.EOF)
            child.close()
            self.assertEqual(child.exitstatus, 0)
            shown = sim_transcript(child)
            log = read_file(board_log)
            self.assertIsNone(EGRESS_DROP.search(shown.replace("\r\n", "\n")), shown)
            self.assertIn("board: powered off", log)
            # Of the board, the console shows only how to leave and where
            # its messages are, once, before the appliance speaks.
            board_lines = [line for line in shown.replace("\r", "").split("\n")
                           if line.startswith("board: ")]
            self.assertEqual(board_lines, ["board: console on this terminal; Ctrl-A x quits; "
                                           "board messages go to %s/board.log"
                                           % os.path.realpath(sim.state_dir)], shown)
        finally:
            if child is not None and child.isalive():
                child.terminate(force=True)
            sim.close()


def sim_transcript(child):
    return child.logfile_read.getvalue() if child.logfile_read else ""


if __name__ == "__main__":
    unittest.main(verbosity=2)
