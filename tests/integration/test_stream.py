"""Issue 9, "Output is never lost while someone reads": on a full device,
long console outputs reach a deliberately slow reader whole, and SMTP is
served meanwhile.

The device is filled behind its back (rows written into its database while
it is off: 1200 delivery outcomes, 600 audit rows, 300 long domain names)
and by real traffic (hundreds of messages, each one log line). Then, read
through the pty in 512-byte bites with a pause after each:

- `queue history 1000` prints the last 1000 outcomes, each row once, whole
  and in order, while a client keeps sending mail that is accepted;
- `log 500` prints 500 log lines (the RAM ring must hold that many);
- `audit 500` prints the last 500 audit rows;
- `config export` prints every domain and network, up to its last line;
- Ctrl-C during `queue history 1000` stops it promptly: only a bounded
  amount of output follows the interrupt, which holds only when the
  firmware makes rows as the console drains rather than queuing them all;

and after each, the console answers and the board dropped no output.
"""
import datetime
import os
import re
import select
import smtplib
import sqlite3
import time
import unittest

from peers import SmtpLoad
from relaysim import PROMPT, Sim

CHUNK = 512  # bytes per read: a reader much slower than the board
PAUSE = 0.003  # seconds after each read
READ_TIMEOUT = 60  # seconds for one whole output; a hang fails, never waits forever
END = ("\r\n" + PROMPT).encode()

HISTORY_ROWS = 1200  # more than `queue history 1000` shows: the limit is checked too
AUDIT_ROWS = 600  # likewise for `audit 500`
DOMAINS = 300
NETWORKS = 30
LOG_MESSAGES = 540  # one log line each: fills a 512-entry ring
BASE_TIME = 1767225600  # 2026-01-01 00:00:00 UTC, the rows' made-up times

LOG_SENDER = "log-fill@sender.example"
LOAD_SENDER = "load@sender.example"

HISTORY_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (delivered|failed   ) q\d+ \S+ -> "
                          r"\S+ via \S+ \(\S+\) after \d+ attempts?: \S.*$")
AUDIT_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+ +\S.*$")
LOG_LINE = re.compile(r"^ *(\d+)\.(\d{3}) (error|warn |info |debug) \S.*$")
QUEUED = re.compile(r" smtp: \S+: queued (\d+), ")
EXPORT_LINE = re.compile(r"^(# .*|(domain|allow|smarthost) add \S.*|settings set \S+ \S.*)$")


def utc(t):
    """clockfmt_utc(): what the firmware prints for a time."""
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def domain_name(n):
    # Long but valid (labels under 64 characters): the export is ~30 KB.
    return "d%03d-%s.stream-%s.example.com" % (n, "x" * 50, "y" * 30)


def history_row(i):
    """Row i (1-based) of the history table, with text that names it."""
    failed = i % 5 == 0
    received = BASE_TIME + 60 * i
    return {
        "queue_id": 500000 + i,
        "message_id": "<hist%04d@stream.test>" % i,
        "sender": "" if i % 7 == 0 else "s%04d@sender.example" % i,  # "<>": a bounce
        "recipient": "r%04d@example.com" % i,
        "outcome": "failed" if failed else "delivered",
        "attempts": 1 + i % 3,
        "smarthost": "" if failed and i % 2 else "mx%d.example.net:25" % (i % 4),
        "tls": "" if failed else "TLSv1.3",
        "reply": ("550 5.1.1 <r%04d@example.com>: user unknown" % i if failed
                  else "250 2.0.0 Ok: queued as H%04d" % i),
        "received": received,
        "finished": received + 30,
    }


def history_line(h):
    """print_history() in cmd_queue.c."""
    return "%s %-9s q%d %s -> %s via %s (%s) after %d attempt%s: %s" % (
        utc(h["finished"]), h["outcome"], h["queue_id"], h["sender"] or "<>", h["recipient"],
        h["smarthost"] or "-", h["tls"] or "-", h["attempts"],
        "" if h["attempts"] == 1 else "s", h["reply"])


def audit_line(at, actor, action):
    """print_audit() in cmd_config.c."""
    return "%s %-8s %s" % (utc(at), actor, action)


def fill_database(sim):
    """Rows a long-running appliance would have, written while it is off."""
    db = sqlite3.connect(sim.db_path())
    try:
        rows = [history_row(i) for i in range(1, HISTORY_ROWS + 1)]
        db.executemany("INSERT INTO history(queue_id, message_id, sender, recipient, outcome, "
                       "attempts, smarthost, tls, reply, received, finished) VALUES "
                       "(:queue_id, :message_id, :sender, :recipient, :outcome, :attempts, "
                       ":smarthost, :tls, :reply, :received, :finished)", rows)
        db.executemany("INSERT INTO audit(at, actor, action) VALUES (?, 'console', ?)",
                       [(BASE_TIME + i, "stream test audit row %04d: settings set retry-initial "
                         "%d (made up to fill the audit)" % (i, 60 + i))
                        for i in range(1, AUDIT_ROWS + 1)])
        db.executemany("INSERT INTO domain(name, created) VALUES (?, ?)",
                       [(domain_name(n), BASE_TIME) for n in range(DOMAINS)])
        db.commit()
    finally:
        db.close()


def message(sender, n):
    return ("From: %s\r\nTo: b@example.com\r\nSubject: %d\r\n\r\nbody %d\r\n" % (sender, n, n))


class StreamTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        sim = cls.sim = Sim()
        try:
            sim.start()
            # Through the console: what SMTP needs, and networks for the
            # export (allow_net rows hold binary addresses: the firmware
            # writes them).
            sim.cmd_ok("domain add example.com")
            sim.cmd_ok("allow add 10.0.2.2")  # where 127.0.0.1 arrives from through slirp
            for n in range(NETWORKS):
                sim.cmd_ok("allow add 198.18.%d.0/24" % n)
            sim.stop()
            fill_database(sim)
            sim.start()
            # Real activity for the log: each accepted message logs one line
            # ("smtp: ...: queued N"); a session without one logs nothing.
            with smtplib.SMTP("127.0.0.1", sim.smtp_port, timeout=20) as c:
                for n in range(LOG_MESSAGES):
                    c.sendmail(LOG_SENDER, ["b@example.com"], message(LOG_SENDER, n))
        except BaseException:
            sim.close()  # tearDownClass does not run after a failed setUpClass
            raise

    @classmethod
    def tearDownClass(cls):
        cls.sim.close()

    def tearDown(self):
        # After every long output the console still answers and the board
        # never threw output away.
        self.assertIn("Smart Host Relay", self.sim.cmd_ok("version"))
        self.assertNotIn("console output dropped", self.sim.board_log())

    # --- the slow reader ------------------------------------------------------

    def send_line(self, line):
        # Raw reads from here on bypass pexpect: nothing may wait in its buffer.
        self.assertEqual(self.sim.con.buffer, "", "console output left unread before %r" % line)
        os.write(self.sim.con.child_fd, (line + "\r").encode())

    def read_slowly(self, out, done, deadline, what):
        """Read the console in CHUNK-byte bites, pausing after each, into
        bytearray `out` until done(out); fails at `deadline`."""
        fd = self.sim.con.child_fd
        while not done(out):
            left = deadline - time.monotonic()
            if left <= 0:
                self.fail("%s: no end after %ss; %d bytes, last: %r"
                          % (what, READ_TIMEOUT, len(out), bytes(out[-300:])))
            if select.select([fd], [], [], min(left, 0.5))[0]:
                data = os.read(fd, CHUNK)
                out += data
                self.sim.transcript.write(data.decode(errors="replace"))
                time.sleep(PAUSE)  # the slow reader: not synchronisation

    def run_slowly(self, line):
        """Run a command, read its output slowly up to the prompt; returns
        the output lines (without echo and prompt)."""
        self.send_line(line)
        out = bytearray()
        self.read_slowly(out, lambda o: o.endswith(END), time.monotonic() + READ_TIMEOUT, line)
        text = out.decode()
        echo = line + "\r\n"
        self.assertTrue(text.startswith(echo), text[:200])
        body = text[len(echo):-len(END)]
        return body.split("\r\n") if body else []

    def assert_lines(self, lines, pattern, expected_count, what):
        self.assertEqual(len(lines), expected_count,
                         "%s: %d lines; first %r, last %r" % (what, len(lines), lines[:3],
                                                               lines[-3:]))
        bad = [line for line in lines if not pattern.match(line)]
        self.assertEqual(bad[:5], [], "%s: %d lines cut, merged or foreign" % (what, len(bad)))

    def expected_history(self, n):
        rows = self.sim.query("SELECT queue_id, message_id, sender, recipient, outcome, attempts, "
                              "smarthost, tls, reply, received, finished FROM history "
                              "ORDER BY id DESC LIMIT ?", (n,))
        keys = ("queue_id", "message_id", "sender", "recipient", "outcome", "attempts",
                "smarthost", "tls", "reply", "received", "finished")
        return [history_line(dict(zip(keys, r))) for r in reversed(rows)]

    # --- the checks --------------------------------------------------------------

    def test_queue_history_1000_while_smtp_flows(self):
        with SmtpLoad(self.sim.smtp_port, sender=LOAD_SENDER, limit=5000) as load:
            self.assertTrue(load.started.wait(20), "the SMTP client never started")
            self.assertEqual(load.errors, [])
            start = time.monotonic()
            lines = self.run_slowly("queue history 1000")
            end = time.monotonic()
        during = load.within(start, end)
        print("\nqueue history 1000: %d bytes in %.2f s; SMTP meanwhile: %d messages accepted, "
              "slowest %.0f ms" % (sum(len(x) + 2 for x in lines), end - start, len(during),
                                   1000 * max((t1 - t0 for t0, t1 in during), default=0)))
        self.assert_lines(lines, HISTORY_LINE, 1000, "queue history 1000")
        # The last 1000 of 1200 rows, each once, in order, byte for byte.
        self.assertEqual(lines[0], history_line(history_row(HISTORY_ROWS - 999)))
        self.assertEqual(lines[-1], history_line(history_row(HISTORY_ROWS)))
        self.assertEqual(len(set(lines)), 1000)
        self.assertEqual(lines, self.expected_history(1000))
        # Mail was served all along, none refused or failed.
        self.assertEqual(load.errors, [])
        self.assertGreaterEqual(len(during), 20)

    def test_log_500(self):
        lines = self.run_slowly("log 500")
        self.assertFalse(lines and lines[0].startswith("error:"),
                         "log 500 refused (the RAM log ring holds fewer entries): %r"
                         % lines[:1])
        self.assert_lines(lines, LOG_LINE, 500, "log 500")
        # Oldest first, as written.
        times = [int(m.group(1)) * 1000 + int(m.group(2))
                 for m in (LOG_LINE.match(line) for line in lines)]
        self.assertEqual(times, sorted(times))
        # No line lost or repeated: every message accepted over SMTP in the
        # span the lines cover has its "queued" line, once.
        ids = [int(m.group(1)) for m in (QUEUED.search(line) for line in lines) if m]
        self.assertGreater(len(ids), 400, "too few 'queued' lines: %r" % lines[-3:])
        accepted = [r[0] for r in self.sim.query(
            "SELECT id FROM message WHERE state = 'queued' AND sender IN (?, ?) "
            "AND id BETWEEN ? AND ? ORDER BY id", (LOG_SENDER, LOAD_SENDER, ids[0], ids[-1]))]
        self.assertEqual(ids, accepted)

    def test_audit_500(self):
        lines = self.run_slowly("audit 500")
        self.assert_lines(lines, AUDIT_LINE, 500, "audit 500")
        first = AUDIT_ROWS - 499
        self.assertIn("stream test audit row %04d: " % first, lines[0])
        self.assertIn("stream test audit row %04d: " % AUDIT_ROWS, lines[-1])
        rows = self.sim.query("SELECT at, actor, action FROM audit ORDER BY id DESC LIMIT 500")
        self.assertEqual(lines, [audit_line(*r) for r in reversed(rows)])

    def test_config_export_whole(self):
        lines = self.run_slowly("config export")
        self.assertGreater(sum(len(x) + 2 for x in lines), 30000)
        self.assertRegex(lines[0], r"^# Smart Host Relay .+ configuration; paste into a fresh "
                                   r"appliance$")
        self.assertEqual(lines[-1], "# end of configuration")
        bad = [line for line in lines if not EXPORT_LINE.match(line)]
        self.assertEqual(bad[:5], [], "lines cut, merged or foreign")
        # Every domain and network, once each, in the database's order.
        domains = [r[0] for r in self.sim.query("SELECT name FROM domain ORDER BY name")]
        self.assertEqual(len(domains), DOMAINS + 1)
        self.assertEqual([x for x in lines if x.startswith("domain add ")],
                         ["domain add %s" % d for d in domains])
        nets = [r[0] for r in self.sim.query("SELECT cidr FROM allow_net "
                                             "ORDER BY family, addr, prefix")]
        self.assertEqual(len(nets), NETWORKS + 1)
        self.assertEqual([x for x in lines if x.startswith("allow add ")],
                         ["allow add %s" % n for n in nets])

    def test_ctrl_c_stops_a_long_output_promptly(self):
        self.send_line("queue history 1000")
        out = bytearray()
        deadline = time.monotonic() + READ_TIMEOUT
        # The echo and 20 rows, then the interrupt.
        self.read_slowly(out, lambda o: o.count(b"\r\n") >= 21, deadline, "the first rows")
        os.write(self.sim.con.child_fd, b"\x03")
        sent_at = len(out)
        stop = b"^C\r\n" + PROMPT.encode()
        self.read_slowly(out, lambda o: o.endswith(stop), deadline, "^C and the prompt")
        cut = out.rfind(stop)
        after = cut - sent_at
        print("\nCtrl-C after %d bytes: %d more bytes before ^C" % (sent_at, after))
        # What the board and the pty already held may still come; the rest
        # of the ~150 KB must never have been made.
        self.assertLess(after, 16384, "%d bytes arrived after Ctrl-C before ^C and the prompt "
                                      "(more than the console's buffers should hold: rows "
                                      "made before the console drained)" % after)
        # The rows before the interrupt are whole, in order, and the first ones.
        text = out[:cut].decode()
        echo = "queue history 1000\r\n"
        self.assertTrue(text.startswith(echo), text[:200])
        rows = text[len(echo):].split("\r\n")
        self.assertEqual(rows[-1], "", "^C not at the start of a line: %r" % rows[-1])
        rows = rows[:-1]
        self.assertGreaterEqual(len(rows), 20)
        self.assertEqual(rows, self.expected_history(1000)[:len(rows)])
        # Nothing follows the prompt: tearDown's `version` sees its own echo first.


if __name__ == "__main__":
    unittest.main(verbosity=2)
