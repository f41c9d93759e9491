"""The wall clock on a board without one (`tools/sim --clock-unset`): not
synchronized at 1970, `tls verify` rows defer for it, SNTP from
`ntp-server` steps the clock and moves the queue's times with it (no
expiry, no retry years away), `timezone-offset` in `version`, and the
saved last-known time across a reboot.

The SNTP responder binds 127.0.0.1:123 (lwIP's SNTP port is fixed; the
appliance reaches it as 10.0.2.2): in ctest this test holds RESOURCE_LOCK
ntp123.
"""
import re
import smtplib
import socket
import struct
import threading
import time
import unittest

from peers import ClosedPort
from relaysim import Sim

NTP_EPOCH_OFFSET = 2208988800  # seconds from 1900 to 1970
# The time the responder tells: 2030-01-01 00:00:00 UTC plus what has
# passed since it started. Far from the host's clock on purpose: the
# appliance can only show it if it came over NTP.
TRUTH = 1893456000


class SntpResponder:
    """A minimal SNTP server on 127.0.0.1:123 (UDP): answers every client
    request with TRUTH + elapsed, echoing the request's transmit timestamp
    as the originate timestamp, as RFC 4330 servers do."""

    def __init__(self, base=TRUTH):
        self.base = base
        self.requests = 0
        self._sock = None
        self._thread = None
        self._stop = False

    def now(self):
        return self.base + (time.monotonic() - self._t0)

    def start(self):
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._sock.bind(("127.0.0.1", 123))
        except OSError as e:
            self._sock.close()
            raise AssertionError("cannot bind 127.0.0.1:123 for the SNTP responder (%s); "
                                 "it needs root and the ntp123 resource lock" % e)
        self._sock.settimeout(0.2)
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        return self

    def _serve(self):
        while not self._stop:
            try:
                data, peer = self._sock.recvfrom(512)
            except socket.timeout:
                continue
            except OSError:
                return
            if len(data) < 48 or data[0] & 0x07 != 3:  # client mode only
                continue
            self.requests += 1
            t = self.now() + NTP_EPOCH_OFFSET
            sec, frac = int(t), int((t % 1) * 2**32)
            reply = struct.pack("!BBbb", 0x24, 1, 6, -20)  # LI 0, v4, server; stratum 1
            reply += struct.pack("!II4s", 0, 0, b"TEST")
            reply += struct.pack("!II", sec, frac)   # reference
            reply += data[40:48]                      # originate = their transmit
            reply += struct.pack("!II", sec, frac)   # receive
            reply += struct.pack("!II", sec, frac)   # transmit
            self._sock.sendto(reply, peer)

    def stop(self):
        self._stop = True
        if self._thread:
            self._thread.join(2)
        if self._sock:
            self._sock.close()


class UnsetClockSim(Sim):
    def command_line(self):
        return super().command_line() + ["--clock-unset"]


def version_fields(out):
    time_m = re.search(r"^time (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d\d:\d\d)$", out, re.M)
    clock_m = re.search(r"^clock (.*)$", out, re.M)
    return (time_m.group(1) if time_m else None, clock_m.group(1) if clock_m else None)


class ClockTest(unittest.TestCase):
    def setUp(self):
        self.ntp = SntpResponder().start()
        self.addCleanup(self.ntp.stop)
        self.sim = UnsetClockSim()
        self.addCleanup(self.sim.close)
        self.sim.start()

    def submit(self, rcpt):
        with smtplib.SMTP("127.0.0.1", self.sim.smtp_port, timeout=30) as c:
            c.sendmail("pst@vendor.test", [rcpt], b"Subject: clock\r\n\r\nbody\r\n")
        return self.sim.query("SELECT max(id) FROM message")[0][0]

    def rcpt(self, address):
        rows = self.sim.query("SELECT state, next_attempt, last_reply FROM recipient "
                              "WHERE address = ?", (address,))
        return rows[0] if rows else None

    def test_sync_moves_queue_and_persists(self):
        sim = self.sim
        t, clock = version_fields(sim.cmd_ok("version"))
        self.assertTrue(t and t.startswith("1970-01-01 "), t)
        self.assertEqual(clock, "not synchronized (no time known: counting from reset)")
        self.assertIn("clock     not synchronized", sim.cmd_ok("stats"))

        closed = ClosedPort()
        closed.start()
        self.addCleanup(closed.stop)
        for line in ("domain add example.com", "domain add secure.test", "allow add 10.0.2.2",
                     "settings set retry-initial 60", "settings set retry-max 120",
                     "smarthost add example.com 10.0.2.2 port %d" % closed.port,
                     "smarthost add secure.test mail.secure.test tls verify"):
            sim.cmd_ok(line)
        sim.dhcp_address()

        # Deferred before the sync: refused connection, next try in 60 s
        # on the 1970 clock.
        msg = self.submit("ok@example.com")
        sim.wait_for(lambda: (self.rcpt("ok@example.com") or ("",))[0] == "deferred", 20,
                     what="the first attempt deferred")
        received_before = sim.query("SELECT received FROM message WHERE id = ?", (msg,))[0][0]
        self.assertLess(received_before, 86400)  # stamped in 1970

        # A tls verify row cannot check certificate dates: deferred, and says why.
        self.submit("ok@secure.test")
        sim.wait_for(lambda: (self.rcpt("ok@secure.test") or ("",))[0] == "deferred", 20,
                     what="the verify row deferred")
        self.assertEqual(self.rcpt("ok@secure.test")[2],
                         "4.7.0 the clock is not synchronized (NTP); certificates cannot be checked")
        self.assertRegex(sim.cmd_ok("queue list"), r"ok@secure\.test \(deferred, .*4\.7\.0 the clock")

        # NTP: restarted on the setting change, answered within seconds.
        for bad in ("::1", "no such host!"):
            self.assertTrue(sim.cmd("settings set ntp-server %s" % bad).startswith("error:"))
        sim.cmd_ok("settings set ntp-server 10.0.2.2")
        sim.wait_for(lambda: "synchronized via NTP" in sim.cmd_ok("version")
                     and "not synchronized" not in sim.cmd_ok("version"), 30, 0.5,
                     "the clock synchronized via NTP")
        self.assertGreater(self.ntp.requests, 0)
        truth = self.ntp.now()
        t, clock = version_fields(sim.cmd_ok("version"))
        self.assertTrue(t.startswith("2030-01-01 00:0") and t.endswith(" +00:00"), t)
        self.assertRegex(clock, r"^synchronized via NTP 10\.0\.2\.2 at 2030-01-01 00:0\d:\d\d \+00:00$")
        self.assertRegex(sim.cmd_ok("stats"), r"clock     synchronized via NTP 10\.0\.2\.2")

        # The queue moved with the clock: the message is as old as it was
        # (not 60 years: not expired), its retry still minutes away.
        received = sim.query("SELECT received FROM message WHERE id = ?", (msg,))[0][0]
        self.assertLessEqual(received, truth + 1)
        self.assertGreater(received, truth - 120)
        state, next_attempt, _ = self.rcpt("ok@example.com")
        self.assertIn(state, ("deferred", "queued", "delivering"))
        self.assertLess(next_attempt - truth, 200)
        self.assertGreater(next_attempt, truth - 200)
        self.assertNotIn("5.4.7", sim.cmd_ok("queue list"))
        self.assertEqual(sim.query("SELECT count(*) FROM history WHERE outcome = 'failed'")[0][0], 0)

        # Local time for the console.
        sim.cmd_ok("settings set timezone-offset +02:00")
        t, clock = version_fields(sim.cmd_ok("version"))
        self.assertTrue(t.startswith("2030-01-01 02:0") and t.endswith(" +02:00"), t)
        self.assertTrue(clock.endswith(" +02:00"), clock)
        self.assertTrue(sim.cmd("settings set timezone-offset 15:00").startswith(
            "error: timezone-offset must be"))

        # Without NTP, a reset starts from the saved time, not from 1970.
        sim.cmd_ok("settings set ntp-server none")
        time.sleep(1.5)  # the setting is followed once a second
        sim.send("reboot\r")
        sim.expect("reset: software")
        sim.wait_prompt()
        t, clock = version_fields(sim.cmd_ok("version"))
        self.assertEqual(clock, "not synchronized (last known time from the saved clock record)")
        self.assertTrue(t.startswith("2030-01-01 02:0"), t)


if __name__ == "__main__":
    unittest.main()
