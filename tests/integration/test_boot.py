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
        self.assertRegex(out, r"^Smart Host Relay \d+\.\d+\.\d+ \(build \S+\) board posix slot A$")

    def test_help_lists_every_command(self):
        out = self.sim.cmd_ok("help")
        for form in ["help [command]", "version", "log [N]", "reboot", "net show", "net set"]:
            self.assertIn("  " + form, out)
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
            "log 0": "error: N must be 1..128",
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

    def test_log_keeps_boot_lines_off_the_console(self):
        self.assertNotIn("dhcp started", self.sim.boot_text)
        out = self.sim.cmd_ok("log")
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
