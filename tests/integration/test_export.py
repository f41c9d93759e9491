"""`config export` (issue 9): the configuration as console commands that,
pasted into another appliance, rebuild it; passwords never leave the box.

Two real appliances on the posix board: one configured by hand, the other
fed the first one's export through its console in one paste."""
import re
import time
import unittest

import pexpect

from peers import TestPKI
from relaysim import PROMPT, Sim
from test_console import paste

PW = "export-secret-pw-1"


def rows_without_ids(listing):
    """`smarthost list` rows with the id column dropped (ids follow the
    order rows were added in, which the export may change)."""
    rows = []
    for line in listing.splitlines():
        m = re.match(r"^\d+\s+(.*)$", line)
        if m:
            rows.append(re.sub(r"\s+", " ", m.group(1)).strip())
    return sorted(rows)


class ExportTest(unittest.TestCase):
    def configure(self, sim):
        for line in ("domain add example.com", "domain add example.org",
                     "smarthost add example.com 10.0.2.2 port 2526 priority 5",
                     "smarthost add example.com mail.example.com port 587 priority 10 tls verify",
                     "smarthost add example.org 10.0.2.2 port 2527 tls encrypt",
                     "allow add 192.0.2.0/24", "allow add 10.0.2.2",
                     "settings set retry-initial 60", "settings set hostname relay-a.example.com",
                     "settings set bounce-address postmaster@example.org"):
            sim.cmd_ok(line)
        out = sim.cmd_secrets("smarthost add example.org 10.0.2.2 port 2528 tls encrypt "
                              "user relay", [PW, PW])
        self.assertRegex(out, r"^ok: smart host \d+ added")
        sim.send("tls ca set\r")
        sim.expect("paste the CA certificates")
        for line in TestPKI.shared().ca_pem.strip().splitlines():
            sim.send(line + "\r")
        sim.send("\r")
        self.assertIn("ok: 1 trusted CA certificate", sim.wait_prompt())

    def snapshot(self, sim):
        return {
            "domains": sim.cmd_ok("domain list"),
            "smarthosts": rows_without_ids(sim.cmd_ok("smarthost list")),
            "allow": sim.cmd_ok("allow list"),
            "settings": sim.cmd_ok("settings list"),
            "ca": sim.cmd_ok("tls ca show"),
        }

    def test_export_rebuilds_another_appliance(self):
        with Sim() as a, Sim() as b:
            self.configure(a)
            export = a.cmd_ok("config export")
            self.assertNotIn(PW, export)
            self.assertNotIn("error:", export)
            lines = export.splitlines()
            self.assertTrue(lines[0].startswith("# Smart Host Relay "), lines[0])
            self.assertEqual(lines[-1], "# end of configuration")
            # The row with credentials comes without them, with the command
            # that sets them (its id on the fresh appliance).
            note = [l for l in lines if l.startswith("# credentials are not exported")]
            self.assertEqual(len(note), 1, export)
            sid = int(re.search(r"smarthost set (\d+) user relay ", note[0]).group(1))
            self.assertIn("-----BEGIN CERTIFICATE-----", export)
            # Domains before smart hosts, smart hosts before the settings
            # that need them.
            self.assertLess(export.index("domain add example.org"),
                            export.index("smarthost add example.org"))
            self.assertLess(export.index("smarthost add example.org"),
                            export.index("settings set bounce-address"))
            self.assertNotIn("settings set queue-lifetime", export)  # defaults stay out

            # The other appliance takes it in one paste.
            paste(b, export.replace("\n", "\r\n") + "\r\n")
            b.expect(r"# end of configuration\r\n" + re.escape(PROMPT), timeout=60)
            got = b.transcript.getvalue()
            self.assertNotIn("error:", got[got.index("# Smart Host Relay"):])
            b.cmd_secrets("smarthost set %d user relay" % sid, [PW, PW])
            want, have = self.snapshot(a), self.snapshot(b)
            self.assertEqual(have, want)

    def test_comment_lines_are_ignored(self):
        with Sim() as sim:
            self.assertEqual(sim.cmd("# a note"), "")
            self.assertEqual(sim.cmd("   # indented note"), "")
            self.assertEqual(sim.cmd_ok("config export").splitlines()[-1], "# end of configuration")
            self.assertRegex(sim.cmd("config export now"), r"^error: usage: ")


if __name__ == "__main__":
    unittest.main(verbosity=2)
