"""Smart host configuration from the console, stored in SQLite (issue 3),
and the rows that could never work refused or flagged (issue 8)."""
import glob
import os
import re
import signal
import sqlite3
import unittest

from relaysim import Sim

PASSWORD = "Tr0ub4dor&3-smarthost"
IPV6 = "error: IPv6 is not supported on this firmware yet"
TLS_NONE_USER = ("error: tls none with a user can never deliver: credentials are sent only over "
                 "TLS unless the row allows auth-plaintext")


def rows(out):
    """Data rows of a table printed with a header line."""
    lines = out.splitlines()
    return [l.split() for l in lines[1:]] if lines and lines[0].startswith("id ") else []


class SeedWalkthroughTest(unittest.TestCase):
    """The vendor guide's flow: allow a domain, add two smart hosts with
    priorities 0 and 10 (one with credentials), list, change, delete,
    reboot, and see the same rows."""

    def test_walkthrough(self):
        with Sim() as sim:
            self.assertEqual(sim.cmd_ok("domain add Example.com"), "ok: domain example.com allowed")
            self.assertEqual(sim.cmd_ok("domain list"), "example.com" + " " * 30 + "0 smart hosts")
            self.assertEqual(sim.cmd_ok("smarthost add example.com mx1.example.com"),
                             "ok: smart host 1 added for example.com")
            out = sim.cmd_secrets("smarthost add example.com 10.0.2.2 port 2526 priority 10 "
                                  "tls encrypt user relay@example.com", [PASSWORD, PASSWORD])
            self.assertEqual(out, "ok: smart host 2 added for example.com")
            listing = sim.cmd_ok("smarthost list")
            self.assertEqual(rows(listing), [
                ["1", "example.com", "mx1.example.com", "25", "0", "may", "-"],
                ["2", "example.com", "10.0.2.2", "2526", "10", "encrypt", "user", "relay@example.com"],
            ])
            self.assertNotIn(PASSWORD, listing)

            # A priority change keeps the credentials without asking.
            self.assertEqual(sim.cmd_ok("smarthost set 2 priority 5"), "ok: smart host 2 changed")
            # A port change could send them elsewhere: asked again, twice.
            out = sim.cmd_secrets("smarthost set 2 port 2527", [PASSWORD, PASSWORD])
            self.assertEqual(out, "ok: smart host 2 changed")
            self.assertEqual(sim.cmd_ok("smarthost add example.com mx3.example.com priority 20"),
                             "ok: smart host 3 added for example.com")
            self.assertEqual(sim.cmd_ok("smarthost del 3"), "ok: smart host 3 deleted")
            before = sim.cmd_ok("smarthost list")
            self.assertEqual(rows(before)[1][3:5], ["2527", "5"])

            sim.send("reboot\r")
            sim.expect("reset: software")
            sim.wait_prompt()
            self.assertEqual(sim.cmd_ok("smarthost list"), before)
            self.assertEqual(sim.cmd_ok("smarthost list example.com"), before)
            self.assertEqual(sim.cmd_ok("smarthost list other.example"), "no smart hosts for other.example")

            # The password never shows: not in output, the log, the audit
            # trail, nor in plaintext in the database files.
            for text in [sim.cmd_ok("log 128"), sim.cmd_ok("audit 100"), sim.board_log()]:
                self.assertNotIn(PASSWORD, text)
            for path in glob.glob(os.path.join(sim.state_dir, "relay.db*")):
                with open(path, "rb") as f:
                    self.assertNotIn(PASSWORD.encode(), f.read(), path)
            audit = sim.cmd_ok("audit")
            self.assertIn("smarthost set 2 ", audit)
            self.assertIn("(credentials entered)", audit)


class BadInputTest(unittest.TestCase):
    """Every bad input gets one `error:` line and changes nothing."""

    @classmethod
    def setUpClass(cls):
        cls.sim = Sim()
        cls.sim.start()
        s = cls.sim
        s.cmd_ok("domain add example.com")
        s.cmd_ok("smarthost add example.com mail.example.com")
        s.cmd_ok("smarthost add example.com 192.0.2.10 priority 10")
        s.cmd_ok("allow add 10.0.2.2")

    @classmethod
    def tearDownClass(cls):
        cls.sim.close()

    def snapshot(self):
        s = self.sim
        return [s.cmd_ok(c) for c in ("domain list", "smarthost list", "allow list",
                                      "settings list", "audit 1000")]

    def test_bad_inputs(self):
        cases = {
            "smarthost add other.com mail.other.com": "domain other.com is not an allowed domain",
            "smarthost add example.com mail.example.com port 0": "port '0' is out of range",
            "smarthost add example.com mail.example.com port 65536": "port '65536' is out of range",
            "smarthost add example.com mail.example.com port 2x5": "is out of range",
            "smarthost add example.com h.example.com priority -1": "priority must be 0 or more",
            "smarthost add example.com h.example.com priority x": "is not a number",
            "smarthost add example.com bad_host.example.com": "neither a valid DNS name nor an IP",
            "smarthost add example.com 1.2.3.256": "neither a valid DNS name nor an IP",
            "smarthost add example.com -lead.example.com": "neither a valid DNS name nor an IP",
            "smarthost add example.com MAIL.example.com": "already exists for example.com (id 1)",
            "smarthost add example.com 192.0.2.10 tls verify": "tls verify needs a host name",
            "smarthost add example.com 2001:db8::25 tls verify": IPV6,
            "smarthost add example.com 2001:db8::25": IPV6,
            "smarthost add example.com [2001:db8::25] port 587": IPV6,
            "smarthost add example.com ::1 user u": IPV6,
            "smarthost set 2 host 2001:db8::26": IPV6,
            "smarthost set 2 host [2001:db8::26]": IPV6,
            "smarthost add example.com h.example.com tls none user u": TLS_NONE_USER,
            "smarthost set 2 tls none user u": TLS_NONE_USER,
            "smarthost add example.com h.example.com tls sometimes": "tls must be may, encrypt",
            "smarthost add example.com h.example.com auth-plaintext": "auth-plaintext needs a user",
            "smarthost add example.com h.example.com port": "'port' needs a value",
            "smarthost add example.com h.example.com port 25 port 26": "'port' given twice",
            "smarthost add example.com h.example.com bogus": "unexpected 'bogus'",
            "smarthost add example.com": "usage: smarthost add",
            "smarthost set 99 priority 1": "no smart host with id 99",
            "smarthost set x priority 1": "'x' is not a smart host id",
            "smarthost set 2 tls verify": "tls verify needs a host name",
            "smarthost set 2 host mail.example.com port 25": "already exists for example.com (id 1)",
            "smarthost set 1 auth-plaintext on": "auth-plaintext needs a user",
            "smarthost set 1": "usage: smarthost set",
            "smarthost del 99": "no smart host with id 99",
            "domain add localhost": "is not a valid domain name",
            "domain add example.com.": "is not a valid domain name",
            "domain add 10.0.0.1": "is not a valid domain name",
            "domain add ex_ample.com": "is not a valid domain name",
            "domain add example.com": "already allowed",
            "domain del example.com": "add 'force' to delete it anyway",
            "domain del nothere.com": "is not an allowed domain",
            "allow add 10.0.0.1/8": "has host bits set (did you mean 10.0.0.0/8?)",
            "allow add 2001:db8::1/32": IPV6,
            "allow add 2001:db8::/32": IPV6,
            "allow add 2001:DB8::1": IPV6,
            "allow add 10.0.0.0/33": "bad prefix",
            "allow add 10.0.0.0/": "bad prefix",
            "allow add ::/129": IPV6,
            "allow add 0.0.0.0/0": "would accept mail from anywhere",
            "allow add example.com": "is not an IPv4 or IPv6 network",
            "allow add 10.0.2.2/32": "already allowed",
            "allow del 192.0.2.0/24": "is not in the allowlist",
            "settings set nope 1": "no setting 'nope'",
            "settings set max-message-size 10k": "whole number",
            "settings set bounce-address nobody": "bounce-address must be an address",
            "settings set bounce-address postmaster@example.org":
                "example.org has no smart host, so reports to postmaster@example.org could never "
                "be delivered (smarthost add example.org <host> first)",
            "settings set hostname 10.0.0.1": "hostname must be a DNS name",
        }
        before = self.snapshot()
        for line, want in cases.items():
            with self.subTest(line=line):
                out = self.sim.cmd(line)
                self.assertTrue(out.startswith("error: "), out)
                self.assertEqual(len(out.splitlines()), 1, out)
                if want.startswith("error: "):
                    self.assertEqual(out, want)  # refused before any password prompt
                else:
                    self.assertIn(want, out)
        self.assertEqual(self.snapshot(), before)

    def test_password_mismatch_and_cancel_change_nothing(self):
        before = self.snapshot()
        out = self.sim.cmd_secrets("smarthost add example.com s.example.com user u1",
                                   ["one-password", "other-password"])
        self.assertEqual(out, "error: the passwords do not match; nothing changed")
        out = self.sim.cmd_secrets("smarthost add example.com s.example.com user u1", [""])
        self.assertEqual(out, "error: the password is empty; nothing changed")
        self.sim.send("smarthost add example.com s.example.com user u1\r")
        self.sim.expect("password: ")
        self.sim.send("half-typed\x03")
        self.assertIn("error: cancelled; nothing changed", self.sim.wait_prompt())
        self.assertEqual(self.snapshot(), before)


def row_of(listing, sid):
    """The `smarthost list` line of smart host `sid`."""
    lines = [l for l in listing.splitlines() if l.startswith("%-4d " % sid)]
    assert len(lines) == 1, listing
    return lines[0]


class NeverDeliversTest(unittest.TestCase):
    """Issue 8: configuration refuses rows that could never deliver, asks
    for the password again before allowing it in clear, and keeps the
    bounce address deliverable (or says when it no longer is)."""

    @classmethod
    def setUpClass(cls):
        cls.sim = Sim()
        cls.sim.start()

    @classmethod
    def tearDownClass(cls):
        cls.sim.close()

    def add(self, line, password=None):
        s = self.sim
        out = s.cmd_ok(line) if password is None else s.cmd_secrets(line, [password, password])
        m = re.match(r"ok: smart host (\d+) added for ", out)
        self.assertTrue(m, out)
        return int(m.group(1))

    def test_tls_none_with_user_and_auth_plaintext(self):
        s = self.sim
        s.cmd_ok("domain add none.example")
        before = s.cmd_ok("smarthost list")
        # Refused at once: no password prompt first.
        self.assertEqual(s.cmd("smarthost add none.example mx.none.example tls none user relay"),
                         TLS_NONE_USER)
        self.assertEqual(s.cmd_ok("smarthost list"), before)
        # Allowed in clear explicitly: fine, with the password asked.
        sid = self.add("smarthost add none.example mx.none.example tls none user relay "
                       "auth-plaintext", PASSWORD)
        self.assertEqual(s.cmd("smarthost set %d auth-plaintext off" % sid), TLS_NONE_USER)
        self.assertRegex(row_of(s.cmd_ok("smarthost list"), sid), r" none +user relay auth-plaintext$")

        # Turning auth-plaintext on asks for the password, twice, like a move.
        sid2 = self.add("smarthost add none.example mx2.none.example tls may user relay", PASSWORD)
        self.assertEqual(s.cmd_secrets("smarthost set %d auth-plaintext on" % sid2,
                                       [PASSWORD, PASSWORD]),
                         "ok: smart host %d changed" % sid2)
        self.assertIn("user relay auth-plaintext", row_of(s.cmd_ok("smarthost list"), sid2))
        self.assertRegex(s.cmd_ok("audit 1"), r"smarthost set %d .* auth-plaintext "
                                              r"\(credentials entered\)$" % sid2)
        # Turning it off moves the password nowhere new: not asked.
        self.assertEqual(s.cmd("smarthost set %d auth-plaintext off" % sid2),
                         "ok: smart host %d changed" % sid2)
        # A mismatch or Ctrl-C at that prompt changes nothing.
        before = s.cmd_ok("smarthost list")
        self.assertEqual(s.cmd_secrets("smarthost set %d auth-plaintext on" % sid2,
                                       ["one-password", "other-password"]),
                         "error: the passwords do not match; nothing changed")
        s.send("smarthost set %d auth-plaintext on\r" % sid2)
        s.expect("password: ")
        s.send("\x03")
        self.assertIn("error: cancelled; nothing changed", s.wait_prompt())
        self.assertEqual(s.cmd_ok("smarthost list"), before)

    def test_bounce_address_needs_a_smart_host(self):
        s = self.sim
        s.cmd_ok("domain add bounce.example")
        want = ("error: bounce.example has no smart host, so reports to postmaster@bounce.example "
                "could never be delivered (smarthost add bounce.example <host> first)")
        self.assertEqual(s.cmd("settings set bounce-address postmaster@bounce.example"), want)
        self.assertRegex(s.cmd_ok("settings list"), r'(?m)^bounce-address +"" ')
        a = self.add("smarthost add bounce.example mx1.bounce.example")
        b = self.add("smarthost add bounce.example mx2.bounce.example")
        self.assertEqual(s.cmd("settings set bounce-address postmaster@bounce.example"),
                         "ok: bounce-address = postmaster@bounce.example")
        warning = ("warning: mail reports to postmaster@bounce.example cannot be delivered "
                   "until a smart host for bounce.example is added")
        # Not the last one: no warning.
        self.assertEqual(s.cmd("smarthost del %d" % a), "ok: smart host %d deleted" % a)
        # The last one: deleted all the same, with the warning.
        self.assertEqual(s.cmd("smarthost del %d" % b),
                         "ok: smart host %d deleted\n%s" % (b, warning))
        self.assertEqual(s.cmd_ok("smarthost list bounce.example"),
                         "no smart hosts for bounce.example")
        # The whole domain, forced: the same warning.
        self.add("smarthost add bounce.example mx3.bounce.example")
        self.assertEqual(s.cmd("domain del bounce.example force"),
                         "ok: domain bounce.example deleted with 1 smart host(s); "
                         "0 queued recipient(s) stay queued\n" + warning)
        self.assertNotIn("bounce.example", s.cmd_ok("domain list"))
        s.cmd_ok("settings reset bounce-address")


class NeedsCredentialsTest(unittest.TestCase):
    """Issue 8: a row whose stored password no longer opens is flagged in
    `smarthost list` with the command that mends it."""

    def setup_rows(self, sim):
        sim.cmd_ok("domain add example.com")
        sim.cmd_ok("smarthost add example.com bare.example.com")
        out = sim.cmd_secrets("smarthost add example.com mx.example.com user relay@example.com",
                              [PASSWORD, PASSWORD])
        self.assertEqual(out, "ok: smart host 2 added for example.com")
        self.assertNotIn("needs credentials", sim.cmd_ok("smarthost list"))

    def check_flagged(self, sim):
        listing = sim.cmd_ok("smarthost list")
        self.assertTrue(row_of(listing, 2).endswith(
            "user relay@example.com  ! needs credentials (smarthost set 2 user relay@example.com)"),
            listing)
        self.assertNotIn("needs credentials", row_of(listing, 1))
        # Typing the password again mends it.
        self.assertEqual(sim.cmd_secrets("smarthost set 2 user relay@example.com",
                                         [PASSWORD, PASSWORD]), "ok: smart host 2 changed")
        self.assertNotIn("needs credentials", sim.cmd_ok("smarthost list"))

    def test_damaged_sealed_password(self):
        with Sim() as sim:
            self.setup_rows(sim)
            sim.stop()
            db = sqlite3.connect(sim.db_path())
            sealed, = db.execute("SELECT password_sealed FROM smarthost WHERE id = 2").fetchone()
            damaged = bytes(sealed[:-1]) + bytes([sealed[-1] ^ 0x01])
            db.execute("UPDATE smarthost SET password_sealed = ? WHERE id = 2", (damaged,))
            db.commit()
            db.close()
            sim.start()
            self.check_flagged(sim)

    def test_database_from_another_unit(self):
        with Sim() as first, Sim() as other:
            self.setup_rows(first)
            first.stop()
            other.stop()
            with open(os.path.join(first.state_dir, "device-secret"), "rb") as f:
                a = f.read()
            with open(os.path.join(other.state_dir, "device-secret"), "rb") as f:
                self.assertNotEqual(f.read(), a)
            for p in glob.glob(other.db_path() + "*"):
                os.unlink(p)
            src = sqlite3.connect(first.db_path())
            dst = sqlite3.connect(other.db_path())
            src.backup(dst)
            src.close()
            dst.close()
            other.start()
            self.check_flagged(other)

    def test_rows_stored_before_the_rules_are_flagged(self):
        # An older firmware's database may hold rows the rules now refuse:
        # they can never deliver, and the listing says so.
        with Sim() as sim:
            self.setup_rows(sim)
            sim.stop()
            db = sqlite3.connect(sim.db_path())
            db.execute("UPDATE smarthost SET host = '2001:db8::25' WHERE id = 1")
            db.execute("UPDATE smarthost SET tls = 'none' WHERE id = 2")
            db.commit()
            db.close()
            sim.start()
            listing = sim.cmd_ok("smarthost list")
            self.assertTrue(row_of(listing, 1).endswith(
                "! IPv6 is not supported on this firmware yet: mail deferred"), listing)
            self.assertTrue(row_of(listing, 2).endswith(
                "! tls none with a user can never deliver: mail deferred"), listing)


class DurabilityTest(unittest.TestCase):
    def test_kill_at_any_moment_keeps_every_acknowledged_change(self):
        with Sim() as sim:
            names = ["d%02d.example.com" % i for i in range(40)]
            # All commands in one burst; kill the CPU once some were answered.
            sim.send("".join("domain add %s\r" % n for n in names))
            sim.expect(r"ok: domain d1\d\.example\.com allowed")
            os.kill(sim.device_pid(), signal.SIGKILL)
            sim.expect("reset: fault")
            sim.wait_prompt()
            acked = set(re.findall(r"ok: domain (d\d\d\.example\.com) allowed",
                                   sim.transcript.getvalue()))
            listed = set(l.split()[0] for l in sim.cmd_ok("domain list").splitlines())
            self.assertTrue(acked <= listed, (acked - listed))
            self.assertTrue(listed <= set(names))
            self.assertGreaterEqual(len(listed), 10)
            # Each change and its audit line commit together (the other
            # row is the admin password set at first boot).
            audit = [l for l in sim.cmd_ok("audit 1000").splitlines() if "domain add" in l]
            self.assertEqual(len(audit), len(listed))
            sim.stop()
            db = sqlite3.connect(os.path.join(sim.state_dir, "relay.db"))
            self.assertEqual(db.execute("PRAGMA integrity_check").fetchone()[0], "ok")
            db.close()


class DamagedStorageTest(unittest.TestCase):
    """A bad database is reported; the appliance still boots and answers."""

    def boot_on(self, prepare):
        sim = Sim()
        sim.start()
        sim.cmd_ok("domain add example.com")
        sim.stop()
        path = os.path.join(sim.state_dir, "relay.db")
        prepare(path)
        with open(path, "rb") as f:
            before = f.read()
        sim.start()
        return sim, path, before

    def test_garbage_file(self):
        def garbage(path):
            for p in glob.glob(path + "*"):
                os.unlink(p)
            with open(path, "wb") as f:
                f.write(os.urandom(8192))
        sim, path, before = self.boot_on(garbage)
        try:
            self.assertRegex(sim.boot_text, r"storage: unavailable: .*not a database")
            self.assertEqual(sim.cmd("domain list"), "error: storage is unavailable (see 'log')")
            self.assertEqual(sim.cmd("domain add other.com"),
                             "error: storage is unavailable (see 'log')")
            self.assertIn("board posix", sim.cmd_ok("version"))
            self.assertIn("not a database", sim.cmd_ok("log"))
            with open(path, "rb") as f:
                self.assertEqual(f.read(), before)
        finally:
            sim.close()

    def test_newer_major_left_untouched(self):
        def newer(path):
            db = sqlite3.connect(path)
            db.execute("PRAGMA user_version = %d" % (2 << 16))
            db.commit()
            db.close()
        sim, path, before = self.boot_on(newer)
        try:
            self.assertIn("storage: unavailable: database schema 2.0 is newer than this "
                          "firmware's 1.0; left untouched", sim.boot_text)
            self.assertEqual(sim.cmd("smarthost list"), "error: storage is unavailable (see 'log')")
            sim.stop()
            with open(path, "rb") as f:
                self.assertEqual(f.read(), before)
        finally:
            sim.close()

    def test_newer_minor_is_used(self):
        def newer_minor(path):
            db = sqlite3.connect(path)
            db.execute("CREATE TABLE from_the_future (x INTEGER DEFAULT 1)")
            db.execute("PRAGMA user_version = %d" % ((1 << 16) | 3))
            db.commit()
            db.close()
        sim, path, _ = self.boot_on(newer_minor)
        try:
            self.assertNotIn("storage:", sim.boot_text)
            self.assertIn("example.com", sim.cmd_ok("domain list"))
            self.assertEqual(sim.cmd_ok("domain add other.com"), "ok: domain other.com allowed")
            self.assertIn("db: schema 1.3", sim.cmd_ok("log"))
            sim.stop()
            db = sqlite3.connect(path)
            self.assertEqual(db.execute("PRAGMA user_version").fetchone()[0], (1 << 16) | 3)
            self.assertEqual(db.execute("SELECT count(*) FROM from_the_future").fetchone()[0], 0)
            db.close()
        finally:
            sim.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
