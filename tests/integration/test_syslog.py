"""Remote log (issue 9): every log line as an RFC 5424 message over UDP to
`syslog-target`, received on host loopback (the appliance's 10.0.2.2)."""
import calendar
import re
import smtplib
import socket
import time
import unittest

from peers import Dns
from relaysim import Sim

# RFC 5424 6, strictly: HEADER SP STRUCTURED-DATA [SP MSG]. PRINTUSASCII is
# [!-~]; SD-NAME is PRINTUSASCII but '=', SP, ']' and '"'; inside
# PARAM-VALUE, '"', '\' and ']' appear only escaped.
SD_NAME = r'[!#-<>-\\^-~]{1,32}'
PARAM_VALUE = r'(?:[^"\\\]]|\\["\\\]])*'
SD_ELEMENT = r'\[%s(?: %s="%s")*\]' % (SD_NAME, SD_NAME, PARAM_VALUE)
RFC5424 = re.compile(
    r'<(?P<pri>0|[1-9]\d{0,2})>(?P<version>[1-9]\d{0,2}) '
    r'(?P<timestamp>-|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d)) '
    r'(?P<hostname>-|[!-~]{1,255}) '
    r'(?P<app>-|[!-~]{1,48}) '
    r'(?P<procid>-|[!-~]{1,128}) '
    r'(?P<msgid>-|[!-~]{1,32}) '
    r'(?P<sd>-|(?:%s)+)'
    r'(?: (?P<msg>.*))?\Z' % SD_ELEMENT, re.S)


def parse(datagram):
    """One datagram as a dict of RFC 5424 fields; fails the test if the
    datagram is not RFC 5424."""
    text = datagram.decode("ascii")  # ours are ASCII: log.c escapes the rest
    m = RFC5424.match(text)
    assert m, "not RFC 5424: %r" % text
    d = m.groupdict()
    d["pri"] = int(d["pri"])
    assert d["pri"] <= 191, text
    d["params"] = {}
    if d["sd"] != "-":
        for elem in re.finditer(r'\[(%s)((?: %s="%s")*)\]' % (SD_NAME, SD_NAME, PARAM_VALUE),
                                d["sd"]):
            for p in re.finditer(r' (%s)="(%s)"' % (SD_NAME, PARAM_VALUE), elem.group(2)):
                value = re.sub(r'\\(["\\\]])', r"\1", p.group(2))
                d["params"][(elem.group(1), p.group(1))] = value
    d["raw"] = text
    return d


class Collector:
    """A UDP syslog collector on 127.0.0.1 (a free port)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.got = []

    def close(self):
        self.sock.close()

    def drain(self, seconds):
        """Everything that arrives within `seconds`."""
        out = []
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self.sock.settimeout(left)
            try:
                data, _ = self.sock.recvfrom(65535)
            except socket.timeout:
                break
            out.append(parse(data))
        self.got += out
        return out

    def wait_for(self, predicate, timeout=10, what="a datagram"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data, _ = self.sock.recvfrom(65535)
            except socket.timeout:
                break
            d = parse(data)
            self.got.append(d)
            if predicate(d):
                return d
        raise AssertionError("no %s within %ss; got:\n%s"
                             % (what, timeout, "\n".join(g["raw"] for g in self.got[-20:])))


class SyslogTest(unittest.TestCase):
    def setUp(self):
        self.col = Collector()
        self.sim = Sim()
        self.sim.start()
        self.sim.dhcp_address()

    def tearDown(self):
        self.sim.close()
        self.col.close()

    def check_common(self, d, hostname="relay"):
        self.assertEqual(d["version"], "1")
        self.assertEqual(d["pri"] >> 3, 2, d["raw"])  # facility mail
        self.assertIn(d["pri"] & 7, (3, 4, 6, 7), d["raw"])
        self.assertEqual(d["app"], "shr")
        self.assertEqual(d["procid"], "-")
        self.assertEqual(d["hostname"], hostname)
        self.assertNotEqual(d["msgid"], "-")
        ts = time.strptime(d["timestamp"], "%Y-%m-%dT%H:%M:%SZ")
        self.assertLess(abs(calendar.timegm(ts) - time.time()), 120, d["raw"])
        for ch in d["raw"]:
            self.assertTrue(" " <= ch < "\x7f", d["raw"])

    def test_setting_is_validated(self):
        for value, want in [
            ("[::1]:514", "error: IPv6 is not supported on this firmware yet"),
            ("::1", "error: IPv6 is not supported on this firmware yet"),
            ("10.0.2.2:0", "error: port '0' is out of range (1..65535)"),
            ("10.0.2.2:65536", "error: port '65536' is out of range (1..65535)"),
            ("10.0.2.2:", "error: port '' is out of range (1..65535)"),
            ("bad_host:514", "error: host 'bad_host' is neither"),
            ("10.0.2.2:5:5", "error: syslog-target must be host[:port]"),
        ]:
            with self.subTest(value=value):
                out = self.sim.cmd("settings set syslog-target %s" % value)
                self.assertTrue(out.startswith(want), out)
        self.assertRegex(self.sim.cmd_ok("settings list"), r"syslog-target\s")
        self.sim.cmd_ok("settings set syslog-target logs.example.test")
        self.sim.cmd_ok("settings set syslog-target 10.0.2.2:65535")
        self.sim.cmd_ok("settings reset syslog-target")

    def test_log_lines_arrive_as_rfc5424(self):
        sim, col = self.sim, self.col
        sim.cmd_ok("settings set syslog-target 10.0.2.2:%d" % col.port)
        d = col.wait_for(lambda d: d["msgid"] == "syslog", what="the syslog module's first line")
        self.assertEqual(d["msg"], "sending log lines to 10.0.2.2 port %d" % col.port)
        self.assertEqual(d["pri"], 2 * 8 + 6)  # mail.info
        self.check_common(d)

        sim.cmd_ok("domain add example.com")
        sim.cmd_ok("allow add 10.0.2.2")
        # Secrets never reach the log, hence never the collector.
        sim.cmd_secrets("inbound-auth set vendor", ["s3cret-in", "s3cret-in"])
        sim.cmd_ok("inbound-auth clear")
        d = col.wait_for(lambda d: d["msgid"] == "config" and "domain add" in (d["msg"] or ""))
        self.assertEqual(d["msg"], "domain add example.com")
        self.assertEqual(d["sd"], "-")

        # A peer's HELO: control bytes are refused by SMTP itself, and a
        # HELO that spells an escape out arrives with its backslash escaped,
        # so a collector can tell it from an escaped control byte.
        with smtplib.SMTP("127.0.0.1", sim.smtp_port, timeout=30) as c:
            self.assertEqual(c.docmd("HELO", "evil\x1b[2Jname")[0], 501)
            self.assertEqual(c.ehlo("forged\\x1b[2J")[0], 250)
            self.assertEqual(c.sendmail("p@vendor.test", ["a@example.com"],
                                        b"Subject: x\r\n\r\nx\r\n"), {})
        qid = str(sim.query("SELECT max(id) FROM message")[0][0])
        d = col.wait_for(lambda d: d["msgid"] == "smtp" and "queued" in (d["msg"] or ""),
                         what="the queued line")
        self.check_common(d)
        self.assertEqual(d["pri"], 2 * 8 + 6)
        self.assertEqual(d["params"], {("shr@32473", "queue-id"): qid}, d["raw"])
        self.assertRegex(d["msg"], r"^\[10\.0\.2\.2\]:\d+: queued %s, \d+ bytes, helo forged\\\\x1b\[2J$"
                         % qid)

        # The HOSTNAME follows the setting.
        sim.cmd_ok("settings set hostname mx1.example.net")
        sim.cmd_ok("domain add other.example")
        d = col.wait_for(lambda d: d["msgid"] == "config" and "other.example" in d["msg"])
        self.check_common(d, hostname="mx1.example.net")

        got = col.drain(0.5)
        self.assertFalse([g for g in col.got if "s3cret" in g["raw"]])
        self.assertTrue(all(g["app"] == "shr" for g in got + col.got))

        # Cleared: nothing more is sent.
        sim.cmd_ok("settings reset syslog-target")
        col.drain(1.0)  # the reset's own line may still go out
        sim.cmd_ok("domain add third.example")
        sim.cmd_ok("domain del third.example")
        self.assertIn("domain add third.example", sim.cmd_ok("log 5"))
        self.assertEqual(col.drain(2.0), [])

    def test_unresolved_name_drops_and_counts(self):
        sim, col = self.sim, self.col
        # slirp's DNS is off and its address is filtered: the name never
        # resolves, and lines logged meanwhile are dropped, not queued.
        sim.cmd_ok("settings set syslog-target logs.example.test:%d" % col.port)
        for i in range(3):
            sim.cmd_ok("domain add d%d.example" % i)
        self.assertEqual(col.drain(1.5), [])
        # Back to an address: the drops are reported there.
        sim.cmd_ok("settings set syslog-target 10.0.2.2:%d" % col.port)
        d = col.wait_for(lambda d: d["msgid"] == "syslog" and "not sent" in d["msg"],
                         what="the drop report")
        self.check_common(d)
        self.assertEqual(d["pri"], 2 * 8 + 4)  # mail.warning
        self.assertRegex(d["msg"], r"^\d+ log line\(s\) were not sent")
        self.assertGreaterEqual(int(d["msg"].split()[0]), 3)

    def test_name_target_is_resolved(self):
        sim, col = self.sim, self.col
        with Dns(records={"logs.test": "10.0.2.2"}) as dns:
            sim.cmd_ok("net set dns 10.0.2.2")
            sim.cmd_ok("settings set syslog-target logs.test:%d" % col.port)
            # Lines logged while the name resolves are counted, then reported.
            d = col.wait_for(lambda d: d["msgid"] == "syslog" and "not sent" in d["msg"],
                             what="the first line after the lookup")
            self.check_common(d)
            sim.cmd_ok("domain add resolved.example")
            d = col.wait_for(lambda d: d["msgid"] == "config" and "resolved.example" in d["msg"])
            self.check_common(d)
            self.assertIn("logs.test", [q[1] for q in dns.queries])

    def test_target_survives_a_reset(self):
        sim, col = self.sim, self.col
        sim.cmd_ok("settings set syslog-target 10.0.2.2:%d" % col.port)
        col.wait_for(lambda d: d["msgid"] == "syslog")
        sim.send("reboot\r")
        sim.expect(r"rebooting")
        sim.wait_prompt()
        # Read at boot; the boot's own lines logged before DHCP are counted.
        d = col.wait_for(lambda d: d["msgid"] == "syslog" and "not sent" in d["msg"],
                         timeout=20, what="the drop report after the reset")
        self.check_common(d)
        sim.cmd_ok("domain add after.reset")
        col.wait_for(lambda d: d["msgid"] == "config" and "after.reset" in d["msg"],
                     what="a line logged after the reset")


if __name__ == "__main__":
    unittest.main(verbosity=2)
