"""TCP initial sequence numbers are not predictable (issue 8, RFC 6528).

lwIP's default ISN is a counter (iss += tcp_ticks): after one connection an
attacker knows the next ISN and can complete a handshake blind from a
spoofed, allowlisted address. This opens many connections to the appliance
and reads its SYN-ACK sequence numbers off the simulated wire (the board's
SHR_BOARD_TRACE frame trace): consecutive ISNs must show no fixed or small
increments.
"""
import re
import socket
import time
import unittest

from relaysim import Sim

CONNECTIONS = 200
ISN_SPACE = 1 << 32
SMALL_STEP = 1 << 24  # a counter's step; a random difference is this small 1 time in 256

# "board: 12.345678 from device ipv4 10.0.2.15 -> 10.0.2.2 tcp port 40123
#  (58 bytes, flags 0x12) sport 25 seq 3735928559 ack 123 tcpflags 0x12"
SYN_ACK = re.compile(r"from device ipv4 \S+ -> \S+ tcp port (\d+) .* sport 25 seq (\d+) "
                     r"ack \d+ tcpflags 0x12\b")


class TracedSim(Sim):
    """A sim whose board prints every frame, TCP sequence numbers included."""

    def env(self):
        env = super().env()
        env["SHR_BOARD_TRACE"] = "1"
        return env


def syn_ack_isns(log):
    """The appliance's ISNs for port 25, one per connection (a retransmitted
    SYN-ACK repeats peer port and ISN and is counted once), in wire order."""
    seen, isns = set(), []
    for m in SYN_ACK.finditer(log):
        key = (int(m.group(1)), int(m.group(2)))
        if key not in seen:
            seen.add(key)
            isns.append(key[1])
    return isns


class IsnTest(unittest.TestCase):
    def test_syn_ack_isns_have_no_fixed_increments(self):
        with TracedSim() as sim:
            sim.dhcp_address()
            sim.cmd_ok("allow add 10.0.2.2")
            deadline = time.monotonic() + 60
            for i in range(CONNECTIONS):
                self.assertLess(time.monotonic(), deadline, "connections are too slow")
                with socket.create_connection(("127.0.0.1", sim.smtp_port), timeout=10) as s:
                    # The greeting proves the handshake with the appliance
                    # finished (slirp accepts on the host side first).
                    greeting = s.recv(512)
                    self.assertTrue(greeting, "connection %d: no greeting" % i)
            # The last frames may still sit in the board's stderr buffer.
            def all_traced():
                isns = syn_ack_isns(sim.board_log())
                return isns if len(isns) >= CONNECTIONS else None
            isns = sim.wait_for(all_traced, timeout=10,
                                what="%d SYN-ACKs in the board trace" % CONNECTIONS)
        diffs = [(b - a) % ISN_SPACE for a, b in zip(isns, isns[1:])]
        detail = "first ISNs %s, first differences %s" % (isns[:8], diffs[:8])
        # A counter repeats its step; keyed hashes almost never do.
        self.assertGreaterEqual(len(set(diffs)), len(diffs) - 9, detail)
        # Nor does it creep forward in small steps.
        small = sum(1 for d in diffs if d < SMALL_STEP)
        self.assertLessEqual(small, len(diffs) // 10, detail)
        # And the values cover the whole space: the top bit is set about half
        # the time (binomial, mean 100, sd ~7 for 200 connections).
        top = sum(1 for v in isns if v >> 31)
        self.assertTrue(len(isns) * 0.3 <= top <= len(isns) * 0.7, detail)


if __name__ == "__main__":
    unittest.main()
