"""`stats` on the real firmware: the counter lines other tests match stay
first and unchanged; after them uptime since reset, heap in use and its
(sampled) peak, lwIP's heap and pools, one line per smart host contacted
since reset, and the database's size and boot-time integrity check.

Smart hosts are peers.SmartHost on host loopback (10.0.2.2 from inside);
no DNS is needed, so this test holds no port lock.
"""
import re
import smtplib
import time
import unittest

from peers import SmartHost
from relaysim import Sim

OLD_LINES = ("smtp in   connections ", "messages  accepted ", "queue     ", "delivery  delivered ",
             "problems  credentials-unreadable ", "clock     ")

UPTIME = re.compile(r"^uptime    (\d+)d (\d+)h (\d+)m (\d+)s \(reset: ([a-z-]+)\)$", re.M)
HEAP = re.compile(r"^heap      in use (\d+) bytes, peak (\d+)"
                  r" \(highest of samples once a second\)$", re.M)
LWIP_HEAP = re.compile(r"^lwip heap used (\d+) max (\d+) of (\d+) bytes, failures (\d+)$", re.M)
POOL = re.compile(r"^lwip pool (\S+) +used (\d+) max (\d+) of (\d+), failures (\d+)$", re.M)
DATABASE = re.compile(r"^database  (\d+) bytes \((\d+) pages of (\d+), (\d+) free\)$", re.M)


def host_line(out, host_id):
    m = re.search(r"^smarthost %d (\S+) connections (\d+) delivered (\d+) deferred (\d+) "
                  r"refused (\d+) tls (\d+) downgrades (\d+)$" % host_id, out, re.M)
    if not m:
        return None
    keys = ("name", "connections", "delivered", "deferred", "refused", "tls", "downgrades")
    return {k: (v if k == "name" else int(v)) for k, v in zip(keys, m.groups())}


def uptime_s(out):
    m = UPTIME.search(out)
    d, h, mi, s = (int(x) for x in m.groups()[:4])
    return ((d * 24 + h) * 60 + mi) * 60 + s


class Stats(unittest.TestCase):
    def setUp(self):
        self.sim = Sim()
        self.addCleanup(self.sim.close)
        self.sim.start()
        for line in ("domain add example.com", "allow add 10.0.2.2"):
            self.sim.cmd_ok(line)

    def submit(self, rcpts, subject):
        with smtplib.SMTP("127.0.0.1", self.sim.smtp_port, timeout=30) as c:
            c.sendmail("pst@vendor.test", rcpts,
                       b"From: <pst@vendor.test>\r\nSubject: %s\r\n\r\nbody\r\n" % subject.encode())

    def add_host(self, port):
        out = self.sim.cmd_ok("smarthost add example.com 10.0.2.2 port %d" % port)
        m = re.match(r"ok: smart host (\d+) added for example\.com$", out)
        self.assertTrue(m, out)
        return int(m.group(1))

    def stats_until(self, predicate, timeout=20):
        deadline = time.monotonic() + timeout
        while True:
            out = self.sim.cmd_ok("stats")
            if predicate(out):
                return out
            if time.monotonic() > deadline:
                self.fail("stats never matched:\n%s\n--- log\n%s" % (out, self.sim.cmd("log 30")))
            time.sleep(0.2)

    def test_lines_at_boot(self):
        out = self.sim.cmd_ok("stats")
        lines = out.split("\n")
        # The existing lines first, in their order, as other tests match them.
        for line, start in zip(lines, OLD_LINES):
            self.assertTrue(line.startswith(start), out)
        self.assertRegex(out, r"delivered 0 deferred 0 failed 0 bounces 0 tls-downgrades 0 "
                              r"in-flight 0")
        # Uptime since the reset that started this device, and it grows.
        m = UPTIME.search(out)
        self.assertTrue(m, out)
        self.assertEqual(m.group(5), "power-on")
        self.assertTrue(0 <= int(m.group(2)) < 24 and 0 <= int(m.group(3)) < 60
                        and 0 <= int(m.group(4)) < 60, out)
        first = uptime_s(out)
        self.assertLess(first, 120, out)
        time.sleep(2.2)
        later = self.sim.cmd_ok("stats")
        self.assertGreaterEqual(uptime_s(later) - first, 2, later)
        # Heap: SQLite and mbedTLS have allocated; the peak is at least now.
        m = HEAP.search(later)
        self.assertTrue(m, later)
        in_use, peak = int(m.group(1)), int(m.group(2))
        self.assertGreater(in_use, 0)
        self.assertGreaterEqual(peak, in_use)
        # lwIP's heap (MEM_SIZE 512 KiB) and its pools, one line each.
        m = LWIP_HEAP.search(later)
        self.assertTrue(m, later)
        self.assertEqual(int(m.group(3)), 512 * 1024)
        self.assertGreaterEqual(int(m.group(2)), int(m.group(1)))
        pools = {p[0]: [int(x) for x in p[1:]] for p in POOL.findall(later)}
        for name in ("TCP_PCB", "TCP_PCB_LISTEN", "TCP_SEG", "UDP_PCB", "PBUF_POOL",
                     "SYS_TIMEOUT"):
            self.assertIn(name, pools, later)
        self.assertEqual(pools["TCP_PCB"][2], 96)           # MEMP_NUM_TCP_PCB
        self.assertGreaterEqual(pools["TCP_PCB_LISTEN"][0], 1)  # port 25 listens
        self.assertGreaterEqual(pools["UDP_PCB"][0], 1)     # DHCP
        for used, mx, avail, err in pools.values():
            self.assertTrue(0 <= used <= mx <= avail, later)
            self.assertEqual(err, 0, later)
        self.assertIn("\nsmarthost none contacted since reset\n", later)
        # The database has its schema; quick_check passed at boot.
        m = DATABASE.search(later)
        self.assertTrue(m, later)
        size, pages, page_size = int(m.group(1)), int(m.group(2)), int(m.group(3))
        self.assertGreater(size, 0)
        self.assertEqual(size, pages * page_size)
        self.assertRegex(later, r"(?m)^integrity ok \(quick_check at boot\)$")
        self.assertTrue(later.endswith("integrity ok (quick_check at boot)"), later)

    def test_per_smart_host_counters(self):
        host = self.enterContext(SmartHost(tls=True))
        hid = self.add_host(host.port)
        self.submit(["ok@example.com"], "one")
        host.wait_for(1, 20)
        out = self.stats_until(lambda o: re.search(r"delivery  delivered 1 ", o))
        self.assertEqual(host_line(out, hid),
                         {"name": "10.0.2.2:%d" % host.port, "connections": 1, "delivered": 1,
                          "deferred": 0, "refused": 0, "tls": 1, "downgrades": 0}, out)

        # A second host, contacted without TLS: per recipient, what it said
        # (250, 450 and 550 in one transaction); the first host's line is
        # unchanged, and the lines are by id.
        other = self.enterContext(SmartHost(tls=False, reply_rcpt={
            "later@example.com": (450, "4.2.1 try later"),
            "bad@example.com": (550, "5.1.1 no such user")}))
        self.sim.cmd_ok("smarthost set %d priority 20" % hid)
        hid2 = self.add_host(other.port)
        self.sim.cmd_ok("smarthost set %d priority 10" % hid2)
        self.submit(["ok@example.com", "later@example.com", "bad@example.com"], "two")
        other.wait_for(1, 20)
        out = self.stats_until(lambda o: (host_line(o, hid2) or {}).get("refused") == 1
                               and host_line(o, hid2)["deferred"] == 1)
        self.assertEqual(host_line(out, hid2),
                         {"name": "10.0.2.2:%d" % other.port, "connections": 1, "delivered": 1,
                          "deferred": 1, "refused": 1, "tls": 0, "downgrades": 0}, out)
        self.assertEqual(host_line(out, hid)["connections"], 1, out)
        self.assertLess(out.index("smarthost %d " % hid), out.index("smarthost %d " % hid2))
        self.assertNotIn("smarthost none", out)
        # The heap peak never goes below the use seen now.
        m = HEAP.search(out)
        self.assertGreaterEqual(int(m.group(2)), int(m.group(1)))


if __name__ == "__main__":
    unittest.main()
