"""Boot, version, help, errors and the network on a real sim."""
import re
import time
import unittest

from relaysim import Sim


class BootTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sim = Sim()
        t0 = time.monotonic()
        cls.sim.start()
        print("boot to prompt: %.2f s" % (time.monotonic() - t0))

    @classmethod
    def tearDownClass(cls):
        cls.sim.close()

    def test_banner(self):
        self.assertRegex(self.sim.boot_text,
                         r"Smart Host Relay \d+\.\d+\.\d+ \(build \S+\) on posix, slot A, "
                         r"reset: power-on")

    def test_version(self):
        out = self.sim.cmd_ok("version")
        self.assertRegex(out.splitlines()[0],
                         r"^Smart Host Relay (\d+\.\d+\.\d+) \(build \S+\) board posix slot A "
                         r"image \1\+0$")

    def test_fw_status(self):
        out = self.sim.cmd_ok("fw status")
        version = re.search(r"Smart Host Relay (\d+\.\d+\.\d+) \(build (\S+)\)",
                            self.sim.cmd_ok("version"))
        # tools/sim flashed the signed build into slot A like a factory
        # programmer: active and confirmed, the minimum counter back at 0;
        # the image passed its self-test and confirmed itself.
        self.assertEqual(out.splitlines(), [
            "running  slot A, version %s, build %s, image %s+0 (security counter 0)"
            % (version.group(1), version.group(2), version.group(1)),
            "state    confirmed",
            "slot A   confirmed, active",
            out.splitlines()[3],
            "slot B   empty",
            "minimum  security counter 0",
            "boots    1 since power-on"])
        # Slot A's image, checked as the boot stage checks it.
        self.assertRegex(out.splitlines()[3], r"^         image %s\+0, security counter 0, "
                                              r"sha256 [0-9a-f]{16}\.\.\., verified$"
                         % re.escape(version.group(1)))
        self.assertRegex(self.sim.cmd("fw status now"), r"^error: usage: ")

    def test_help_lists_every_command(self):
        out = self.sim.cmd_ok("help")
        for form in ["help [command [sub-command]]", "version", "log [N]", "reboot", "net show", "net set"]:
            self.assertIn("  " + form, out)
        # One form alone, as `net set ?` shows it.
        one = self.sim.cmd_ok("help net set")
        self.assertIn("net set", one)
        self.assertNotIn("net show", one)
        self.assertEqual(one, self.sim.cmd_ok("net set ?"))
        net = self.sim.cmd_ok("help net")
        self.assertIn("net show", net)
        self.assertNotIn("reboot", net)

    def test_errors_are_one_line(self):
        cases = {
            "frobnicate": "error: unknown command 'frobnicate' (type 'help')",
            "net": "error: usage: net show|set ...",
            "net bogus": "error: usage: net show|set ...",
            "version extra": "error: usage: version",
            "help nothing": "error: no command 'nothing' (type 'help')",
            'net set "dns': "error: unterminated quote",
            "log 0": "error: N must be 1..512",
        }
        for line, want in cases.items():
            with self.subTest(line=line):
                self.assertEqual(self.sim.cmd(line), want)

    def test_net_show_reports_dhcp_lease(self):
        addr = self.sim.dhcp_address()
        self.assertRegex(addr, r"^10\.0\.2\.\d+$")
        out = self.sim.cmd_ok("net show")
        self.assertRegex(out, r"(?m)^mode\s+dhcp \(lease \d+ s, \d+ s left\)$")
        self.assertRegex(out, r"(?m)^link\s+up$")
        self.assertRegex(out, r"(?m)^mask\s+255\.255\.255\.0$")
        self.assertRegex(out, r"(?m)^gateway\s+10\.0\.2\.2$")
        self.assertRegex(out, r"(?m)^dns\s+10\.0\.2\.3$")
        m = re.search(r"(?m)^frames\s+rx (\d+) tx (\d+) rx-dropped (\d+) egress-dropped (\d+)$", out)
        self.assertIsNotNone(m, out)
        self.assertGreater(int(m.group(1)), 0)
        self.assertGreater(int(m.group(2)), 0)

    def test_net_set_rejects_bad_input_and_changes_nothing(self):
        self.sim.dhcp_address()
        before = self.sim.cmd_ok("net show").splitlines()[:7]
        bad = {
            "net set static 10.0.2.99 10.0.2.2": "is not an interface address",
            "net set static 10.0.2.0/24 10.0.2.2": "is not an interface address",
            "net set static 10.0.2.255/24 10.0.2.2": "is not an interface address",
            "net set static 10.0.2.99/33 10.0.2.2": "is not an interface address",
            "net set static 10.0.2.99/24 192.168.1.1": "is not another host on",
            "net set static 10.0.2.99/24 10.0.2": "is not an IPv4 address",
            "net set dns 10.0.2.256": "is not an IPv4 address",
            "net set dns 0.0.0.0": "is not an IPv4 address",
            "net set dhcp now": "usage: net set",
            "net set": "usage: net set",
        }
        for line, want in bad.items():
            with self.subTest(line=line):
                out = self.sim.cmd(line)
                self.assertTrue(out.startswith("error: "), out)
                self.assertIn(want, out)
                self.assertEqual(len(out.splitlines()), 1, out)
        self.assertEqual(self.sim.cmd_ok("net show").splitlines()[:7], before)

    def test_net_set_dns_override_and_back(self):
        self.sim.dhcp_address()
        self.assertEqual(self.sim.cmd_ok("net set dns 10.0.2.2"), "ok: dns 10.0.2.2")
        self.assertRegex(self.sim.cmd_ok("net show"), r"(?m)^dns\s+10\.0\.2\.2$")
        self.assertEqual(self.sim.cmd_ok("net set dns auto"), "ok: dns from dhcp")
        self.sim.wait_for(lambda: re.search(r"(?m)^dns\s+10\.0\.2\.3$", self.sim.cmd_ok("net show")),
                          what="DHCP's DNS server back")

    def test_egress_to_other_addresses_is_dropped_and_counted(self):
        # slirp's DHCP names 10.0.2.3 as DNS server, which the board's egress
        # filter refuses: resolving a smart host by name must go nowhere.
        self.sim.dhcp_address()
        self.sim.cmd_ok("domain add egress.test")
        self.sim.cmd_ok("smarthost add egress.test mail.egress.test")
        self.sim.send("smarthost test egress.test a@egress.test\r")
        self.sim.expect(r"resolving mail\.egress\.test")
        self.sim.wait_for(lambda: "egress dropped" in self.sim.board_log(), timeout=10,
                          what="a dropped DNS query")
        self.sim.send("\x03")
        self.assertIn("error: test message not delivered", self.sim.wait_prompt())
        # The query never leaves: already the ARP for 10.0.2.3 is refused.
        self.assertRegex(self.sim.board_log(),
                         r"egress dropped #\d+: (arp who-has 10\.0\.2\.3|"
                         r"ipv4 10\.0\.2\.15 -> 10\.0\.2\.3 udp port 53)")
        m = re.search(r"egress-dropped (\d+)", self.sim.cmd_ok("net show"))
        self.assertGreater(int(m.group(1)), 0)
        self.sim.cmd_ok("domain del egress.test force")

    def test_log_keeps_boot_lines_off_the_console(self):
        self.assertNotIn("dhcp started", self.sim.boot_text)
        # The whole ring: tests before this one (a smart host test, DHCP, the
        # clock) may have logged more than the default 20 lines since boot.
        out = self.sim.cmd_ok("log 128")
        self.assertRegex(out, r"info\s+boot: Smart Host Relay")
        self.assertIn("net: dhcp started", out)

    def test_line_editing_on_the_real_pty(self):
        self.sim.send("verX\x7fsion\r")
        out = self.sim.wait_prompt()
        self.assertIn("Smart Host Relay", out)
        self.sim.send("reboot\x03")  # Ctrl-C discards the line: no reboot
        self.sim.expect(r"\^C\r\nrelay> ")
        self.assertIn("board posix", self.sim.cmd_ok("version"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
