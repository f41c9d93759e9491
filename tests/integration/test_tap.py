"""The tap wire (tools/sim --net tap, root only): the appliance on a TAP
device in the board's own network namespace, the kernel's TCP on the host
side. It boots and gets its address by DHCP (or a static one), relays mail
from an allowlisted source address to a smart host on the host end while
another source address is refused, counts connections per source address,
sends nothing beyond its subnet, and leaves nothing behind — no link,
address, route, namespace or process — when the board exits or is killed.
And the board refuses clearly when it cannot build the wire."""
import os
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
import time
import unittest

from peers import Dns, SmartHost
from relaysim import BUILD, Sim, SimError

BOARD = os.path.join(BUILD, "board", "posix", "relay-board")
IP = "/usr/sbin/ip"
CLEANUP_TIMEOUT = 10  # seconds for the kernel to reap a killed board's namespace


def banner(sim, source, timeout=10):
    """The appliance's first reply to a connection from `source`."""
    with socket.create_connection(sim.smtp_addr, timeout=timeout,
                                  source_address=(source, 0)) as s:
        return s.recv(512).decode(errors="replace")


def ip_output(*args):
    return subprocess.run([IP] + list(args), capture_output=True, text=True, timeout=10,
                          check=True).stdout


def alive(pid):
    """Whether `pid` runs (a zombie waiting for a reaper counts as gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def children(pid):
    """Pids whose parent is `pid`."""
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open("/proc/%s/stat" % name) as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(name))
            except (OSError, ValueError, IndexError):
                pass
    return out


def netns_users(inode):
    """Pids whose network namespace is `inode`."""
    want = "net:[%d]" % inode
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.readlink("/proc/%s/ns/net" % name) == want:
                    pids.append(int(name))
            except OSError:
                pass
    return pids


@unittest.skipUnless(os.geteuid() == 0 and os.path.exists("/dev/net/tun"),
                     "the tap wire needs root and /dev/net/tun")
class TapRelayTest(unittest.TestCase):
    """One appliance on the tap wire: example.com relayed to a smart host on
    the host end, found by name through a resolver on the host end."""

    @classmethod
    def setUpClass(cls):
        cls.sim = Sim(net="tap")
        try:
            cls.sim.start()
            cls.host = SmartHost(address=cls.sim.host_addr, tls=False)
            cls.host.start()
            cls.dns = Dns(records={"mail.test": cls.sim.host_addr}, address=cls.sim.host_addr)
            cls.dns.start()
        except BaseException:
            cls.tearDownClass()
            raise
        cls.sim.dhcp_address()
        cls.allowed = cls.sim.add_source_addr()
        cls.other = cls.sim.add_source_addr()
        for line in ("domain add example.com", "allow add %s" % cls.allowed,
                     "net set dns %s" % cls.sim.host_addr,
                     "smarthost add example.com mail.test port %d" % cls.host.port):
            cls.sim.cmd_ok(line)

    @classmethod
    def tearDownClass(cls):
        for peer in ("dns", "host"):
            if getattr(cls, peer, None) is not None:
                getattr(cls, peer).stop()
        cls.sim.close()

    def test_dhcp_gives_the_printed_address_and_gateway(self):
        self.assertRegex(self.sim.device_addr, r"^10\.213\.\d+\.2$")
        self.assertEqual(self.sim.dhcp_address(), self.sim.device_addr)
        out = self.sim.cmd_ok("net show")
        self.assertRegex(out, r"gateway\s+%s\n" % re.escape(self.sim.host_addr))
        self.assertRegex(out, r"mode\s+dhcp \(lease")
        # The host end is on-link with the appliance, in no other namespace.
        self.assertIn("%s/%d" % (self.sim.host_addr, self.sim.prefix),
                      ip_output("-o", "addr", "show", "dev", self.sim.host_if))

    def test_mail_from_an_allowlisted_source_is_relayed(self):
        self.sim.dhcp_address()
        self.host.clear()
        body = b"Subject: over tap\r\nMessage-ID: <tap-1@vendor.test>\r\n\r\nkernel TCP\r\n"
        with smtplib.SMTP(*self.sim.smtp_addr, timeout=20,
                          source_address=(self.allowed, 0)) as c:
            c.ehlo("vendor.test")
            self.assertEqual(c.sendmail("pst@vendor.test", ["alice@example.com"], body), {})
        msg, = self.host.wait_for(1, timeout=20)
        self.assertEqual(msg.rcpt_tos, ["alice@example.com"])
        self.assertTrue(msg.data.endswith(body), msg.data[:300])
        # Each side sees the other's real address: no NAT, no proxy.
        self.assertEqual(msg.peer[0], self.sim.device_addr)
        self.assertIn(b"[%s]" % self.allowed.encode(), msg.data.split(b"\r\n\t", 1)[0])
        self.assertIn(("A", "mail.test", self.sim.device_addr), self.dns.queries)

    def test_no_wait_for_a_delayed_ack(self):
        """A client whose kernel holds a message's short last segment
        until its earlier data is ACKed (Nagle, on by default: Postfix's
        smtp client under TLS): lwIP used to delay that ACK up to 250 ms,
        one fast-timer tick, for every message. Each DATA here is two
        short writes; ten of them took ~1.3 s with the delay (0-250 ms
        each) and take tens of ms without."""
        s = socket.create_connection(self.sim.smtp_addr, timeout=20,
                                     source_address=(self.allowed, 0))
        f = s.makefile("rb")

        def reply():
            while True:
                line = f.readline()
                if not line or line[3:4] != b"-":
                    return line

        try:
            reply()
            s.sendall(b"EHLO vendor.test\r\n")
            reply()
            # Two short writes: the kernel sends the first at once and holds
            # the second until the first is ACKed (Nagle, Minshall's rule).
            head = b"Subject: nagle\r\n\r\n" + b"x" * 70 + b"\r\n"
            tail = b"y" * 70 + b"\r\n.\r\n"
            took = []
            for _ in range(10):
                s.sendall(b"MAIL FROM:<pst@vendor.test>\r\n")
                self.assertTrue(reply().startswith(b"250"))
                s.sendall(b"RCPT TO:<nagle@example.com>\r\n")
                self.assertTrue(reply().startswith(b"250"))
                s.sendall(b"DATA\r\n")
                self.assertTrue(reply().startswith(b"354"))
                t = time.monotonic()
                s.sendall(head)
                s.sendall(tail)
                self.assertTrue(reply().startswith(b"250"))
                took.append(time.monotonic() - t)
            s.sendall(b"QUIT\r\n")
        finally:
            f.close()
            s.close()
        self.assertLess(sum(took), 0.6, "DATA took %s s" % ["%.3f" % x for x in took])

    def test_mail_from_another_source_is_refused(self):
        reply = banner(self.sim, self.other)
        self.assertRegex(reply, r"^554 5\.7\.1 relay Access denied: %s is not allowed"
                         % re.escape(self.other))
        self.assertTrue(banner(self.sim, self.allowed).startswith("220 "))

    def test_nothing_leaves_the_subnet(self):
        def dropped():
            return int(re.search(r"egress-dropped (\d+)", self.sim.cmd_ok("net show")).group(1))
        before = dropped()
        # Log lines sent over UDP to an address beyond the gateway: the
        # board drops them (a host forwarding IP would route them on).
        self.sim.cmd_ok("settings set syslog-target 203.0.113.1")
        try:
            self.sim.cmd_ok("log")
            self.sim.wait_for(lambda: dropped() > before, timeout=10, interval=0.2,
                              what="frames to 203.0.113.1 dropped by the board")
        finally:
            self.sim.cmd_ok("settings reset syslog-target")
        self.assertIn("egress dropped #", self.sim.board_log())

    def test_connection_cap_is_per_source_address(self):
        third = self.sim.add_source_addr()
        self.sim.cmd_ok("allow add %s" % third)
        self.sim.cmd_ok("settings set smtp-connections-per-source 2")
        socks = []
        try:
            for _ in range(2):
                s = socket.create_connection(self.sim.smtp_addr, timeout=10,
                                             source_address=(self.allowed, 0))
                socks.append(s)
                self.assertTrue(s.recv(512).startswith(b"220 "))
            self.assertRegex(banner(self.sim, self.allowed),
                             r"^421 4\.7\.0 .*Too many connections from your address")
            # Another address is not held back by the first one's sessions.
            self.assertTrue(banner(self.sim, third).startswith("220 "))
        finally:
            for s in socks:
                s.close()
            self.sim.cmd_ok("settings reset smtp-connections-per-source")


@unittest.skipUnless(os.geteuid() == 0 and os.path.exists("/dev/net/tun"),
                     "the tap wire needs root and /dev/net/tun")
class TapAddressTest(unittest.TestCase):
    def test_static_address_and_back_to_dhcp(self):
        with Sim(net="tap") as sim:
            src = sim.add_source_addr()
            base = sim.host_addr.rsplit(".", 1)[0]
            static = "%s.20" % base
            sim.cmd_ok("allow add %s" % src)
            sim.cmd_ok("net set static %s/%d %s" % (static, sim.prefix, sim.host_addr))
            with socket.create_connection((static, 25), timeout=10,
                                          source_address=(src, 0)) as s:
                self.assertTrue(s.recv(512).startswith(b"220 "))
            sim.cmd_ok("net set dhcp")
            # The static address stays until the lease is bound.
            sim.wait_for(lambda: re.search(r"mode\s+dhcp \(lease .*\naddress\s+%s/%d\n" % (
                re.escape(sim.device_addr), sim.prefix), sim.cmd_ok("net show"), re.S),
                timeout=10, interval=0.2, what="the DHCP address again")
            self.assertTrue(banner(sim, src).startswith("220 "))


@unittest.skipUnless(os.geteuid() == 0 and os.path.exists("/dev/net/tun"),
                     "the tap wire needs root and /dev/net/tun")
class TapCleanupTest(unittest.TestCase):
    """Whatever ends the board, the wire goes with it."""

    def boot(self):
        sim = Sim(net="tap")
        self.addCleanup(sim.close)
        sim.start()
        src = sim.add_source_addr()
        board = sim.proc.pid
        found = {
            "sim": sim,
            "src": src,
            "subnet": sim.host_addr.rsplit(".", 1)[0] + ".",
            "netns": os.stat(sim.netns_path).st_ino,
            "pids": children(board),
        }
        self.assertIn(sim.device_pid(), found["pids"])
        self.assertEqual(len(found["pids"]), 2, "device and DHCP server: %r" % found["pids"])
        self.assertIn(sim.host_if, ip_output("-o", "link"))
        self.assertTrue(netns_users(found["netns"]))
        return found

    def leftovers(self, f):
        sim = f["sim"]
        left = []
        if sim.host_if in ip_output("-o", "link"):
            left.append("link %s" % sim.host_if)
        if f["subnet"] in ip_output("-o", "addr"):
            left.append("an address in %s0/24" % f["subnet"])
        if f["subnet"] in ip_output("route", "show", "table", "all"):
            left.append("a route to %s0/24" % f["subnet"])
        left += ["process %d" % pid for pid in f["pids"] if alive(pid)]
        left += ["process %d in the namespace" % pid for pid in netns_users(f["netns"])]
        return left

    def wait_clean(self, f, timeout):
        deadline = time.monotonic() + timeout
        while True:
            left = self.leftovers(f)
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(0.1)

    def test_sigkill_of_the_board_leaves_nothing(self):
        f = self.boot()
        f["sim"].stop(signal.SIGKILL)
        self.assertEqual(self.wait_clean(f, CLEANUP_TIMEOUT), [])

    def test_power_off_removes_the_wire_at_once(self):
        f = self.boot()
        self.assertEqual(f["sim"].stop(signal.SIGTERM), 0)
        # Deleted by the board itself, not left to the kernel's reaper.
        self.assertEqual(self.leftovers(f), [])
        self.assertIn("powered off", f["sim"].board_log())


@unittest.skipUnless(os.geteuid() == 0, "the refusals are checked as root")
class TapRefusalTest(unittest.TestCase):
    def run_board(self, args, tmp, user=None, prefix=()):
        state = os.path.join(tmp, "state")
        return subprocess.run(list(prefix) + [BOARD, "--state", state, "--console", "pty"] + args,
                              capture_output=True, text=True, timeout=30, user=user,
                              stdin=subprocess.DEVNULL)

    def test_not_root_is_refused(self):
        with tempfile.TemporaryDirectory() as tmp:
            os.chmod(tmp, 0o777)
            r = self.run_board(["--net", "tap"], tmp, user="nobody")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("--net tap needs root", r.stderr)
        self.assertNotIn("console:", r.stdout)

    def test_missing_tun_device_is_refused(self):
        # /dev/net hidden by an empty tmpfs in a private mount namespace,
        # which goes away with the board.
        with tempfile.TemporaryDirectory() as tmp:
            r = self.run_board(["--net", "tap"], tmp, prefix=[
                shutil.which("unshare") or "/usr/bin/unshare", "--mount", "--propagation",
                "private", "sh", "-c", 'mount -t tmpfs none /dev/net && exec "$0" "$@"'])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("--net tap needs /dev/net/tun", r.stderr)

    def test_smtp_port_has_no_meaning_on_tap(self):
        with tempfile.TemporaryDirectory() as tmp:
            r = self.run_board(["--net", "tap", "--smtp-port", "2525"], tmp)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("--smtp-port has no meaning with --net tap", r.stderr)

    def test_source_addresses_need_the_tap_wire(self):
        sim = Sim()
        try:
            with self.assertRaises(SimError):
                sim.add_source_addr()
        finally:
            sim.close()


if __name__ == "__main__":
    unittest.main()
