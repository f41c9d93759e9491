"""tools/bench: its exactness check catches lost, duplicated and stray
messages at a real smtp-sink, and `tools/bench --smoke` relays every
message to the sink exactly once through the appliance on each default
wire (tap, when root with /dev/net/tun, and slirp) and through Postfix,
writes the fixed JSON keys and leaves nothing running."""
import json
import os
import smtplib
import subprocess
import sys
import tempfile
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH = os.path.join(REPO, "tools", "bench")
BUILD = os.environ.get("SHR_BUILD_DIR", os.path.join(REPO, "build"))
sys.path.insert(0, os.path.join(REPO, "tools"))

from bench_lib import load  # noqa: E402

RATIO_KEYS = ("e2e_ratio", "accepted_ratio", "drain1_ratio", "mem_ratio", "cpu_ratio")
TAP = os.geteuid() == 0 and os.path.exists("/dev/net/tun")
WIRES = ["tap", "slirp"] if TAP else ["slirp"]


def _processes_under(path):
    """Processes whose command line mentions path."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % name, "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if path in cmdline:
            found.append("%s %s" % (name, cmdline))
    return found


class ExactCheck(unittest.TestCase):
    def test_sink_counts_duplicates_missing_and_strays(self):
        with tempfile.TemporaryDirectory() as d:
            os.chmod(d, 0o755)
            sink = load.Sink(load.free_port(), d)
            sink.start()
            try:
                with smtplib.SMTP(load.LOOPBACK, sink.port, timeout=10) as c:
                    for i in (1, 2, 2):            # 2 twice, 3 never
                        rcpt, data = load.make_message(i, "tagx", 300)
                        c.sendmail(load.SENDER, [rcpt], data)
                    c.sendmail(load.SENDER, [load.recipient(1, "other")], b"Subject: x\r\n\r\nx\r\n")
                self.assertTrue(sink.wait_for(4, 10))
            finally:
                sink.stop()
            got = load.check_exact(load.expected_recipients("tagx", 3), sink.received())
            self.assertEqual((got["received"], got["missing"], got["duplicated"], got["unexpected"]),
                             (4, 1, 1, 1), got)
            self.assertFalse(got["exact"])
            exact = load.check_exact(load.expected_recipients("tagx", 2),
                                     [load.recipient(2, "tagx"), load.recipient(1, "tagx")])
            self.assertTrue(exact["exact"], exact)


class Smoke(unittest.TestCase):
    def test_smoke_run_is_exact_and_cleans_up(self):
        with tempfile.TemporaryDirectory() as d:
            os.chmod(d, 0o755)      # Postfix's daemons and smtp-sink run as other users
            out = os.path.join(d, "bench.json")
            # Plaintext and STARTTLS on both legs, every row (about a minute).
            r = subprocess.run([BENCH, "--smoke", "--tls", "--no-build", "--build-dir", BUILD,
                                "--workdir", d, "--json", out],
                               capture_output=True, text=True, timeout=280)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            with open(out) as f:
                doc = json.load(f)
            self.assertTrue(doc["complete"], doc["error"])
            self.assertTrue(doc["exact"])
            for key in RATIO_KEYS:
                self.assertIsInstance(doc[key], float, key)
            # The top-level ratios are the first row's (tap when there is
            # one); every row's are under ratios_by_wire.
            self.assertEqual(doc["params"]["wires"], WIRES)
            self.assertEqual(doc["primary_appliance_row"], "appliance/%s" % WIRES[0])
            self.assertEqual(sorted(doc["ratios_by_wire"]), sorted(WIRES))
            for wire in WIRES:
                for key in RATIO_KEYS:
                    self.assertIsInstance(doc["ratios_by_wire"][wire][key], float, (wire, key))
            for key in RATIO_KEYS:
                self.assertEqual(doc[key], doc["ratios_by_wire"][WIRES[0]][key], key)
            if TAP:
                # Clients and the next hop on the TAP link, not loopback.
                self.assertRegex(r.stderr, r"appliance/tap: clients -> 10\.213\.\d+\.2:25, "
                                           r"next hop sink on 10\.213\.\d+\.1:\d+")
            for system in ["appliance/%s" % w for w in WIRES] + ["postfix"]:
                row = doc["systems"][system]
                self.assertTrue(row["exact"], system)
                self.assertGreater(row["e2e_per_s"], 0)
                self.assertGreater(row["pss_peak_mib"], 0)
                self.assertGreater(row["cpu_s_per_1000"], 0)
            # The STARTTLS variant: the same checks on its rows.
            for key in RATIO_KEYS:
                self.assertIsInstance(doc["tls_" + key], float, key)
            for system in ["appliance/%s" % w for w in WIRES] + ["postfix"]:
                row = doc["tls_systems"][system]
                self.assertTrue(row["exact"], ("tls", system))
                self.assertGreater(row["e2e_per_s"], 0)
            self.assertIn("every msg once", r.stdout)
            self.assertEqual(_processes_under(d), [])
            self.assertEqual([n for n in os.listdir(d) if n.startswith("shr-bench-")], [],
                             "the run's temporary directory is left")


if __name__ == "__main__":
    unittest.main()
