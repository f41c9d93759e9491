"""Inbound SMTP against real clients (issues 4 and 8): swaks, smtplib,
smtp-source, raw sockets."""
import base64
import os
import re
import select
import signal
import smtplib
import socket
import ssl
import subprocess
import threading
import time
import unittest

from relaysim import Sim

SWAKS = "/usr/bin/swaks"
SMTP_SOURCE = "/usr/sbin/smtp-source"


def swaks(sim, *args, timeout=60):
    r = subprocess.run([SWAKS, "--server", "127.0.0.1", "--port", str(sim.smtp_port),
                        "--from", "pst@vendor.test", "--to", "alice@example.com",
                        "--helo", "vendor.test"] + list(args),
                       capture_output=True, text=True, timeout=timeout)
    return r.returncode, r.stdout + r.stderr


def queued_ids(sim):
    return [r[0] for r in sim.query("SELECT id FROM message WHERE state = 'queued' ORDER BY id")]


def read_reply(f):
    """One SMTP reply (all its lines) from a binary file; returns the last line."""
    line = f.readline()
    while line[3:4] == b"-":
        line = f.readline()
    return line


def damage_db(sim, *statements):
    """Change the appliance's database behind its back, while it is off."""
    import sqlite3
    db = sqlite3.connect(sim.db_path())
    try:
        for sql in statements:
            db.execute(sql)
        db.commit()
    finally:
        db.close()


def received_header_end(body):
    """Length of our Received: header (first header, folded lines)."""
    m = re.match(rb"Received: [^\r]*\r\n(?:\t[^\r]*\r\n)*", body)
    assert m, body[:200]
    return m.end()


class Configured(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sim = Sim()
        cls.sim.start()
        cls.sim.cmd_ok("domain add example.com")
        cls.sim.cmd_ok("allow add 10.0.2.2")

    @classmethod
    def tearDownClass(cls):
        cls.sim.close()


class ClientsTest(Configured):
    def test_swaks_plain_tls_and_pipelining(self):
        for extra in ([], ["-tls"], ["--pipeline"], ["-tls", "--pipeline"]):
            with self.subTest(extra=extra):
                before = len(queued_ids(self.sim))
                rc, out = swaks(self.sim, *extra)
                self.assertEqual(rc, 0, out)
                self.assertRegex(out, r"250 2\.0\.0 Ok: queued as \d+")
                if "-tls" in extra:
                    self.assertIn("TLS started with cipher TLSv1.2", out)
                self.assertEqual(len(queued_ids(self.sim)), before + 1)

    def test_smtplib_bytes_are_stored_exactly(self):
        body = (b"From: PST <pst@vendor.test>\r\nTo: alice@example.com\r\n"
                b"Subject: byte check\r\nMessage-ID: <bytes-1@vendor.test>\r\n\r\n"
                b".leading dot\r\n..two dots\r\n.\t.\r\nmiddle . dot\r\n" +
                bytes(range(0x20, 0x7f)) + b"\r\n\xc3\xa9 8-bit \xff\r\n")
        with smtplib.SMTP("127.0.0.1", self.sim.smtp_port, timeout=30) as c:
            c.ehlo("vendor.test")
            code, msg = c.docmd("MAIL", "FROM:<pst@vendor.test> BODY=8BITMIME")
            self.assertEqual(code, 250)
            self.assertEqual(c.rcpt("alice@example.com")[0], 250)
            code, msg = c.data(body)
        self.assertEqual(code, 250, msg)
        qid = int(re.search(rb"queued as (\d+)", msg).group(1))
        stored = self.sim.queued_body(qid)
        hdr = received_header_end(stored)
        self.assertEqual(stored[hdr:], body)
        self.assertIn(b"by relay (Smart Host Relay) with ESMTP id %d" % qid, stored[:hdr])
        (size, mid), = self.sim.query("SELECT size, message_id FROM message WHERE id = ?", (qid,))
        self.assertEqual(size, len(stored))
        self.assertEqual(mid, "<bytes-1@vendor.test>")
        out = self.sim.cmd_ok("queue show %d" % qid)
        # No smart host here: the queue runner may already have deferred it
        # ("no smart host"), which is not what this test is about.
        self.assertRegex(out, r"to alice@example\.com: (queued, 0 attempts|deferred, 1 attempt, "
                              r"last reply: 4\.4\.0 no smart host)")
        self.assertIn("Subject: byte check", out)

    def test_large_message_over_many_chunks(self):
        lines = [(b"line %06d " % i) + b"x" * 80 + b"\r\n" for i in range(4000)]
        lines[100] = b".starts with a dot\r\n"
        body = b"Subject: big\r\n\r\n" + b"".join(lines)
        self.assertGreater(len(body), 300000)
        with smtplib.SMTP("127.0.0.1", self.sim.smtp_port, timeout=60) as c:
            c.starttls(context=ssl._create_unverified_context())
            errs = c.sendmail("pst@vendor.test", ["alice@example.com", "bob@example.com"], body)
            self.assertEqual(errs, {})
        qid = queued_ids(self.sim)[-1]
        stored = self.sim.queued_body(qid)
        self.assertEqual(stored[received_header_end(stored):], body)
        self.assertIn(b"with ESMTPS", stored[:300])
        # Delivery may already have looked at them (this domain has no smart
        # host, so they are deferred): only what was stored is checked here.
        rcpts = self.sim.query("SELECT address, domain, state IN ('queued', 'deferred') "
                               "FROM recipient WHERE message = ? ORDER BY id", (qid,))
        self.assertEqual(rcpts, [("alice@example.com", "example.com", 1),
                                 ("bob@example.com", "example.com", 1)])

    def test_smtp_source_20_parallel_sessions(self):
        before = len(queued_ids(self.sim))
        r = subprocess.run([SMTP_SOURCE, "-s", "20", "-m", "200", "-l", "2048",
                            "-f", "pst@vendor.test", "-t", "carol@example.com",
                            "-M", "vendor.test", "127.0.0.1:%d" % self.sim.smtp_port],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        ids = queued_ids(self.sim)
        self.assertEqual(len(ids), before + 200)
        # Every stored message is whole: smtp-source's body lines, then the end.
        for qid in ids[before:before + 200:37]:
            stored = self.sim.queued_body(qid)
            self.assertTrue(stored.endswith(b"\r\n"), stored[-40:])
            self.assertIn(b"From: <pst@vendor.test>", stored)
        self.assertRegex(self.sim.cmd_ok("stats"), r"accepted \d+")

    def burst(self, cmd, total, code, tls=False):
        """Send `total` bytes of `cmd` lines at once, reading replies as they
        come (one thread: an ssl socket must not be read and written from two
        at a time), then check that the session is still open."""
        raw = socket.create_connection(("127.0.0.1", self.sim.smtp_port), timeout=30)
        s = raw
        try:
            f = s.makefile("rb")
            self.assertTrue(f.readline().startswith(b"220 "))
            if tls:
                s.sendall(b"STARTTLS\r\n")
                self.assertTrue(f.readline().startswith(b"220 "))
                s = ssl._create_unverified_context().wrap_socket(raw)
            s.sendall(b"EHLO t\r\n")
            buf = b""
            while not re.search(rb"(^|\n)250 [^\n]*\n", buf):
                chunk = s.recv(4096)
                self.assertNotEqual(chunk, b"", buf)
                buf += chunk
            n = total // len(cmd)
            out = memoryview(cmd * n)
            buf = b""
            got = 0
            s.setblocking(False)
            deadline = time.monotonic() + 60
            while got < n:
                self.assertLess(time.monotonic(), deadline, "%d of %d replies" % (got, n))
                r, w, _ = select.select([s], [s] if out else [], [], 1)
                if w:
                    try:
                        out = out[s.send(out[:16384]):]
                    except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                        pass
                if r or (tls and s.pending()):
                    try:
                        chunk = s.recv(65536)
                    except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                        continue
                    self.assertNotEqual(chunk, b"", "closed after %d of %d replies" % (got, n))
                    buf += chunk
                    lines = buf.split(b"\r\n")
                    buf = lines.pop()
                    got += sum(1 for line in lines if line.startswith(code + b" "))
            self.assertEqual(got, n)
            self.assertEqual(buf, b"")
            s.setblocking(True)
            s.sendall(b"NOOP\r\nQUIT\r\n")
            while buf.count(b"\r\n") < 2:
                chunk = s.recv(4096)
                self.assertNotEqual(chunk, b"", buf)
                buf += chunk
            self.assertRegex(buf, rb"^250 2\.0\.0 Ok\r\n221 ")
        finally:
            s.close()

    def test_pipelined_burst_of_short_commands(self):
        # 1 KiB of NOOP in one write: 170 replies, the session stays open.
        self.burst(b"NOOP\r\n", 1024, b"250")
        # Commands whose replies are much longer than they are.
        self.burst(b"HELP\r\n", 1024, b"214")
        self.burst(b"EHLO x\r\n", 1024, b"250")
        # Far more than the reply buffer, in plaintext and in TLS: the input
        # waits (TCP flow control) while the client reads the replies.
        self.burst(b"NOOP\r\n", 64 * 1024, b"250")
        self.burst(b"NOOP\r\n", 64 * 1024, b"250", tls=True)
        self.assertNotIn("reply buffer full", self.sim.cmd_ok("log 128"))


class PolicyTest(Configured):
    def talk(self, lines, read_greeting=True):
        with socket.create_connection(("127.0.0.1", self.sim.smtp_port), timeout=20) as s:
            f = s.makefile("rwb")
            replies = []
            if read_greeting:
                replies.append(f.readline().decode())
            for line in lines:
                f.write(line.encode() + b"\r\n")
                f.flush()
                reply = f.readline().decode()
                while reply[3:4] == "-":
                    reply = f.readline().decode()
                replies.append(reply.strip())
            return replies

    def test_relay_attempts_refused(self):
        addrs = ["a@other.test", "a@evil-example.com", "a@example.com.evil",
                 "a@sub.example.com", "a%b@example.com", "a!b@example.com",
                 '"a@b"@example.com', "a@[10.0.0.1]", "@relay.example.com:a@other.test"]
        for a in addrs:
            with self.subTest(rcpt=a):
                r = self.talk(["EHLO t", "MAIL FROM:<x@vendor.test>", "RCPT TO:<%s>" % a, "QUIT"])
                self.assertTrue(r[3].startswith("550 5.7.1"), r)
        r = self.talk(["EHLO t", "MAIL FROM:<x@vendor.test>", "RCPT TO:<Bob@EXAMPLE.com>", "QUIT"])
        self.assertTrue(r[3].startswith("250 2.1.5"), r)

    def test_size_limit_and_nothing_stored(self):
        self.sim.cmd_ok("settings set max-message-size 2048")
        try:
            before = queued_ids(self.sim)
            with smtplib.SMTP("127.0.0.1", self.sim.smtp_port, timeout=30) as c:
                # Declared too big: refused at MAIL.
                c.ehlo("t")
                code, msg = c.docmd("MAIL", "FROM:<x@vendor.test> SIZE=4096")
                self.assertEqual((code, msg[:5]), (552, b"5.3.4"))
                # Not declared: read to the end, then refused, nothing kept.
                self.assertEqual(c.docmd("MAIL", "FROM:<x@vendor.test>")[0], 250)
                self.assertEqual(c.rcpt("a@example.com")[0], 250)
                code, msg = c.data(b"Subject: big\r\n\r\n" + (b"y" * 70 + b"\r\n") * 80)
                self.assertEqual((code, msg[:5]), (552, b"5.3.4"))
                # The session goes on.
                self.assertEqual(c.noop()[0], 250)
            self.assertEqual(queued_ids(self.sim), before)
            self.assertEqual(self.sim.query("SELECT count(*) FROM message WHERE state='incoming'"),
                             [(0,)])
        finally:
            self.sim.cmd_ok("settings reset max-message-size")

    def test_smuggling_variant_refused_end_to_end(self):
        before = queued_ids(self.sim)
        with socket.create_connection(("127.0.0.1", self.sim.smtp_port), timeout=20) as s:
            s.sendall(b"EHLO t\r\nMAIL FROM:<x@vendor.test>\r\nRCPT TO:<a@example.com>\r\nDATA\r\n")
            time.sleep(0.3)
            s.sendall(b"Subject: one\r\n\r\nbody\n.\nMAIL FROM:<evil@vendor.test>\r\n"
                      b"RCPT TO:<a@example.com>\r\nDATA\r\nsmuggled\r\n.\r\n")
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        self.assertIn(b"554 5.6.0", data)
        self.assertEqual(queued_ids(self.sim), before)

    def test_per_source_connection_cap(self):
        socks = []
        try:
            for i in range(50):
                s = socket.create_connection(("127.0.0.1", self.sim.smtp_port), timeout=20)
                socks.append(s)
                self.assertTrue(s.recv(512).startswith(b"220 "), i)
            extra = socket.create_connection(("127.0.0.1", self.sim.smtp_port), timeout=20)
            socks.append(extra)
            self.assertTrue(extra.recv(512).startswith(b"421 4.7.0"))
        finally:
            for s in socks:
                s.close()
        # Capacity comes back once they are gone.
        self.sim.wait_for(lambda: swaks(self.sim)[0] == 0, timeout=20, interval=0.5,
                          what="a session after the burst")
        self.assertRegex(self.sim.cmd_ok("stats"), r"refused-busy [1-9]")


class LimitsTest(unittest.TestCase):
    def test_command_deadline_is_not_a_read_timeout(self):
        with Sim() as sim:
            sim.cmd_ok("domain add example.com")
            sim.cmd_ok("allow add 10.0.2.2")
            sim.cmd_ok("settings set smtp-command-timeout 2")
            with socket.create_connection(("127.0.0.1", sim.smtp_port), timeout=20) as s:
                self.assertTrue(s.recv(512).startswith(b"220"))
                t0 = time.monotonic()
                data = b""
                # One byte every 0.4 s: every read is quick, the command never ends.
                for b in b"NOOP and a very slow line":
                    try:
                        s.sendall(bytes([b]))
                    except OSError:
                        break
                    time.sleep(0.4)
                    s.setblocking(False)
                    try:
                        data += s.recv(512)
                    except BlockingIOError:
                        pass
                    s.setblocking(True)
                    if data:
                        break
                elapsed = time.monotonic() - t0
            self.assertTrue(data.startswith(b"421 4.4.2"), data)
            self.assertLess(elapsed, 6)
            self.assertRegex(sim.cmd_ok("stats"), r"timeouts 1")
            # Quick commands keep a session alive past the deadline.
            with smtplib.SMTP("127.0.0.1", sim.smtp_port, timeout=20) as c:
                for _ in range(5):
                    self.assertEqual(c.noop()[0], 250)
                    time.sleep(0.8)

    def test_half_closed_client_still_gets_its_answers(self):
        with Sim() as sim:
            sim.cmd_ok("domain add example.com")
            sim.cmd_ok("allow add 10.0.2.2")
            with socket.create_connection(("127.0.0.1", sim.smtp_port), timeout=20) as s:
                s.sendall(b"EHLO t\r\nMAIL FROM:<h@vendor.test>\r\nRCPT TO:<a@example.com>\r\n"
                          b"DATA\r\nSubject: half\r\n\r\nbody\r\n.\r\nQUIT\r\n")
                s.shutdown(socket.SHUT_WR)  # as `printf ... | nc -N` does
                data = b""
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            self.assertRegex(data, rb"250 2\.0\.0 Ok: queued as \d+\r\n221 ")
            self.assertEqual(len(queued_ids(sim)), 1)

    def test_starttls_then_silence_is_timed_out(self):
        with Sim() as sim:
            sim.cmd_ok("allow add 10.0.2.2")
            sim.cmd_ok("settings set smtp-command-timeout 2")
            with socket.create_connection(("127.0.0.1", sim.smtp_port), timeout=20) as s:
                f = s.makefile("rb")
                f.readline()
                s.sendall(b"EHLO t\r\n")
                while f.readline()[3:4] == b"-":
                    pass
                s.sendall(b"STARTTLS\r\n")
                self.assertTrue(f.readline().startswith(b"220"))
                t0 = time.monotonic()
                self.assertEqual(s.recv(100), b"")  # closed by the relay, no ClientHello sent
                self.assertLess(time.monotonic() - t0, 8)
            self.assertRegex(sim.cmd_ok("stats"), r"timeouts 1.*\n|timeouts 1")

    def test_full_queue_says_452(self):
        with Sim() as sim:
            sim.cmd_ok("domain add example.com")
            sim.cmd_ok("allow add 10.0.2.2")
            sim.cmd_ok("settings set queue-max-size 1048576")
            body = b"Subject: filler\r\n\r\n" + (b"f" * 98 + b"\r\n") * 6000  # 600 kB
            small = b"Subject: small\r\n\r\n" + (b"s" * 98 + b"\r\n") * 3000  # 300 kB
            with smtplib.SMTP("127.0.0.1", sim.smtp_port, timeout=30) as c:
                self.assertEqual(c.sendmail("q@vendor.test", ["a@example.com"], body), {})
                # A declared size that does not fit is refused up front...
                code, msg = c.docmd("MAIL", "FROM:<q@vendor.test> SIZE=%d" % len(body))
                self.assertEqual((code, msg[:5]), (452, b"4.3.1"))
                # ...an undeclared one when its bytes reach the cap: the data
                # is read to the end, then refused, and nothing of it is kept...
                self.assertEqual(c.docmd("MAIL", "FROM:<q@vendor.test>")[0], 250)
                self.assertEqual(c.rcpt("a@example.com")[0], 250)
                code, msg = c.data(body)
                self.assertEqual((code, msg[:5]), (452, b"4.3.1"))
                self.assertEqual(sim.query("SELECT count(*) FROM message WHERE state='incoming'"),
                                 [(0,)])
                # ...and the session goes on: what still fits is taken.
                self.assertEqual(c.noop()[0], 250)
                self.assertEqual(c.sendmail("q@vendor.test", ["a@example.com"], small), {})
            self.assertEqual(len(queued_ids(sim)), 2)
            self.assertRegex(sim.cmd_ok("stats"), r"queue\s+9\d{5} bytes of 1048576")
            self.assertIn("queue full", sim.cmd_ok("log 40"))

    def test_sessions_without_size_cannot_overfill_the_queue(self):
        # Five sessions send 300 kB each without SIZE=, all at once: the cap
        # (1 MiB) holds on the bytes actually stored, in-flight ones
        # included; the sessions that would cross it get 452 4.3.1.
        with Sim() as sim:
            sim.cmd_ok("domain add example.com")
            sim.cmd_ok("allow add 10.0.2.2")
            sim.cmd_ok("settings set queue-max-size 1048576")
            body = b"Subject: part\r\n\r\n" + (b"p" * 98 + b"\r\n") * 3000  # 300 kB
            conns = []
            try:
                for i in range(5):
                    s = socket.create_connection(("127.0.0.1", sim.smtp_port), timeout=30)
                    f = s.makefile("rb")
                    conns.append((s, f))
                    self.assertTrue(f.readline().startswith(b"220"))
                    s.sendall(b"EHLO t\r\nMAIL FROM:<c%d@vendor.test>\r\n"
                              b"RCPT TO:<a@example.com>\r\nDATA\r\n" % i)
                    replies = [read_reply(f) for _ in range(4)]
                    self.assertTrue(replies[3].startswith(b"354"), replies)
                # Every message is open and its data sent before any ends.
                for s, f in conns:
                    s.sendall(body)
                codes = []
                for s, f in conns:
                    s.sendall(b".\r\n")
                    codes.append(read_reply(f)[:9])
                # Each session is still usable.
                for s, f in conns:
                    s.sendall(b"NOOP\r\n")
                    self.assertEqual(read_reply(f), b"250 2.0.0 Ok\r\n")
            finally:
                for s, f in conns:
                    s.close()
            accepted = codes.count(b"250 2.0.0")
            refused = codes.count(b"452 4.3.1")
            self.assertEqual(accepted + refused, 5, codes)
            self.assertGreaterEqual(accepted, 1, codes)
            self.assertGreaterEqual(refused, 2, codes)  # at most three fit
            (total,), = sim.query("SELECT coalesce(sum(size), 0) FROM message WHERE state='queued'")
            self.assertLessEqual(total, 1048576)
            self.assertEqual(len(queued_ids(sim)), accepted)
            # The refused messages left no partial rows behind.
            self.assertEqual(sim.query("SELECT count(*) FROM message WHERE state='incoming'"),
                             [(0,)])
            self.assertEqual(sim.query("SELECT count(*) FROM message_chunk WHERE message NOT IN "
                                       "(SELECT id FROM message WHERE state='queued')"), [(0,)])

    def test_tls_show_matches_the_certificate_served(self):
        with Sim() as sim:
            out = sim.cmd_ok("tls show")
            self.assertRegex(out, r"(?m)^subject\s+CN=relay$")
            fp = re.search(r"(?m)^sha256\s+([0-9A-F:]{95})$", out).group(1)
            sim.cmd_ok("allow add 10.0.2.2")
            r = subprocess.run(["openssl", "s_client", "-starttls", "smtp", "-connect",
                                "127.0.0.1:%d" % sim.smtp_port, "-servername", "relay"],
                               input=b"", capture_output=True, timeout=30)
            pem = re.search(rb"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----",
                            r.stdout, re.S).group(0)
            x = subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256"],
                               input=pem, capture_output=True, timeout=10)
            self.assertIn(fp, x.stdout.decode())
            # The same identity after a reboot.
            sim.send("reboot\r")
            sim.expect("reset: software")
            sim.wait_prompt()
            self.assertIn(fp, sim.cmd_ok("tls show"))


class AllowlistTest(unittest.TestCase):
    def test_outside_the_allowlist_is_refused_before_a_session(self):
        with Sim() as sim:
            sim.cmd_ok("domain add example.com")
            with socket.create_connection(("127.0.0.1", sim.smtp_port), timeout=20) as s:
                f = s.makefile("rwb")
                self.assertTrue(f.readline().startswith(b"554 5.7.1"))
                for line in (b"EHLO t", b"MAIL FROM:<a@b.test>", b"RCPT TO:<x@example.com>",
                             b"DATA", b"x" * 3000):
                    f.write(line + b"\r\n")
                    f.flush()
                    self.assertTrue(f.readline().startswith(b"503 5.7.1"), line)
                f.write(b"quit\r\n")
                f.flush()
                self.assertTrue(f.readline().startswith(b"221"))
                self.assertEqual(f.readline(), b"")  # closed
            self.assertRegex(sim.cmd_ok("stats"), r"denied 1")
            self.assertEqual(sim.query("SELECT count(*) FROM message"), [(0,)])

    def test_unreadable_allowlist_fails_closed(self):
        with Sim() as sim:
            sim.cmd_ok("domain add example.com")
            sim.cmd_ok("allow add 10.0.2.2")
            self.assertEqual(swaks(sim)[0], 0)
            sim.stop()
            damage_db(sim, "ALTER TABLE allow_net RENAME TO allow_net_damaged")
            sim.start()
            with socket.create_connection(("127.0.0.1", sim.smtp_port), timeout=20) as s:
                f = s.makefile("rwb")
                self.assertTrue(f.readline().startswith(b"554 5.7.1"))
                f.write(b"MAIL FROM:<a@vendor.test>\r\n")
                f.flush()
                self.assertTrue(f.readline().startswith(b"503 5.7.1"))
            self.assertEqual(len(queued_ids(sim)), 1)


class AuthTest(unittest.TestCase):
    def test_inbound_auth_gate(self):
        with Sim() as sim:
            sim.cmd_ok("domain add example.com")
            sim.cmd_ok("allow add 10.0.2.2")
            self.assertEqual(sim.cmd_secrets("inbound-auth set vendor", ["s3cret-in", "s3cret-in"]),
                             "ok: inbound mail needs AUTH as vendor (over TLS) from now on")
            rc, out = swaks(sim, "-tls")
            self.assertNotEqual(rc, 0)
            self.assertIn("530 5.7.0", out)
            rc, out = swaks(sim, "-a", "PLAIN", "-au", "vendor", "-ap", "s3cret-in")
            self.assertNotEqual(rc, 0)  # not offered without TLS
            for mech in ("PLAIN", "LOGIN"):
                rc, out = swaks(sim, "-tls", "-a", mech, "-au", "vendor", "-ap", "s3cret-in")
                self.assertEqual(rc, 0, out)
                self.assertIn("235 2.7.0", out)
            rc, out = swaks(sim, "-tls", "-a", "PLAIN", "-au", "vendor", "-ap", "wrong")
            self.assertIn("535 5.7.8", out)
            self.assertEqual(len(queued_ids(sim)), 2)
            self.assertNotIn("s3cret-in", sim.cmd_ok("log 128") + sim.cmd_ok("audit"))
            sim.cmd_ok("inbound-auth clear")
            self.assertEqual(swaks(sim)[0], 0)


    def test_unreadable_auth_setting_fails_closed(self):
        with Sim() as sim:
            sim.cmd_ok("domain add example.com")
            sim.cmd_ok("allow add 10.0.2.2")
            sim.cmd_secrets("inbound-auth set vendor", ["s3cret-in", "s3cret-in"])
            self.assertIn("530 5.7.0", swaks(sim, "-tls")[1])
            sim.stop()
            # A malformed account row: a hash of the wrong length.
            damage_db(sim, "UPDATE inbound_account SET hash = x'00'")
            sim.start()
            for extra in ([], ["-tls"]):
                with self.subTest(extra=extra):
                    rc, out = swaks(sim, *extra)
                    self.assertNotEqual(rc, 0, out)
                    self.assertIn("454 4.7.0", out)
                    self.assertNotIn("250 2.1.0", out)
            with smtplib.SMTP("127.0.0.1", sim.smtp_port, timeout=30) as c:
                c.ehlo("t")
                self.assertEqual(c.docmd("MAIL", "FROM:<x@vendor.test>")[0], 454)
                self.assertEqual(c.rcpt("a@example.com")[0], 503)
            self.assertEqual(queued_ids(sim), [])
            self.assertIn("cannot read inbound-auth", sim.cmd_ok("log 40"))


class LogEscapeTest(unittest.TestCase):
    def test_peer_text_in_the_log_is_escaped(self):
        with Sim() as sim:
            sim.cmd_ok("domain add example.com")
            sim.cmd_ok("allow add 10.0.2.2")
            sim.cmd_secrets("inbound-auth set vendor", ["s3cret-in", "s3cret-in"])
            evil_user = b"pw-in-user\x1b[2J\x1b[H\r\nsmtp: forged\x07\xff"
            with smtplib.SMTP("127.0.0.1", sim.smtp_port, timeout=30) as c:
                # A HELO name with control bytes is refused...
                code, _ = c.docmd("HELO", "evil\x1b[2Jname")
                self.assertEqual(code, 501)
                c.starttls(context=ssl._create_unverified_context())
                # ...and one that spells an escape out is logged as sent.
                self.assertEqual(c.ehlo("forged\\x1b[2J")[0], 250)
                # A failed AUTH: the "user name" may be a password.
                code, _ = c.docmd("AUTH", "LOGIN " + base64.b64encode(evil_user).decode())
                self.assertEqual(code, 334)
                code, _ = c.docmd(base64.b64encode(b"wrong").decode())
                self.assertEqual(code, 535)
                code, _ = c.docmd("AUTH", "PLAIN " + base64.b64encode(
                    b"\0s3cret-typed-as-user\0wrong").decode())
                self.assertEqual(code, 535)
                self.assertEqual(c.docmd("AUTH", "PLAIN " + base64.b64encode(
                    b"\0vendor\0s3cret-in").decode())[0], 235)
                self.assertEqual(c.sendmail("p@vendor.test", ["a@example.com"],
                                            b"Subject: x\r\n\r\nx\r\n"), {})
            out = sim.cmd_ok("log 40")
            for ch in out:
                self.assertTrue(ch == "\n" or " " <= ch < "\x7f", repr(out))
            self.assertEqual(out.count("failed AUTH"), 2, out)
            self.assertNotIn("pw-in-user", out)
            self.assertNotIn("s3cret-typed-as-user", out)
            self.assertIn("AUTH as vendor accepted", out)
            # The backslash is escaped too: a spelt-out escape stays told apart.
            self.assertIn("helo forged\\\\x1b[2J", out)


class KillDuringDataTest(unittest.TestCase):
    def test_kill_while_sessions_are_in_data(self):
        with Sim() as sim:
            sim.cmd_ok("domain add example.com")
            sim.cmd_ok("allow add 10.0.2.2")
            acked = []
            lock = threading.Lock()
            stop = threading.Event()

            def sender(n):
                i = 0
                while not stop.is_set():
                    body = (b"Subject: kill %d-%d\r\n\r\n" % (n, i)) + (b"z" * 76 + b"\r\n") * (20 + 500 * n)
                    try:
                        with smtplib.SMTP("127.0.0.1", sim.smtp_port, timeout=10) as c:
                            c.ehlo("t")
                            c.mail("k@vendor.test")
                            c.rcpt("a@example.com")
                            code, msg = c.data(body)
                            if code == 250:
                                with lock:
                                    acked.append((int(re.search(rb"queued as (\d+)", msg).group(1)), body))
                    except (OSError, smtplib.SMTPException):
                        pass
                    i += 1

            def slow(n):
                # Sessions parked in DATA when the power goes.
                try:
                    s = socket.create_connection(("127.0.0.1", sim.smtp_port), timeout=10)
                    s.sendall(b"EHLO t\r\nMAIL FROM:<p@vendor.test>\r\nRCPT TO:<a@example.com>\r\nDATA\r\n")
                    time.sleep(0.5)
                    s.sendall(b"Subject: partial\r\n\r\n" + (b"p" * 98 + b"\r\n") * 500)
                    stop.wait(10)
                    s.close()
                except OSError:
                    pass

            threads = [threading.Thread(target=sender, args=(n,)) for n in range(4)]
            threads += [threading.Thread(target=slow, args=(n,)) for n in range(3)]
            for t in threads:
                t.start()
            sim.wait_for(lambda: len(acked) >= 10, timeout=30, what="ten acknowledged messages")
            time.sleep(0.8)
            os.kill(sim.device_pid(), signal.SIGKILL)
            stop.set()
            for t in threads:
                t.join(20)
            sim.expect("reset: fault")
            sim.wait_prompt()
            with lock:
                got = list(acked)
            self.assertGreaterEqual(len(got), 10)
            for qid, body in got:
                stored = sim.queued_body(qid)
                self.assertEqual(stored[received_header_end(stored):], body, qid)
            # Nothing half-present: no incoming rows survive the boot, and
            # every queued message has its recipients and its full size.
            self.assertEqual(sim.query("SELECT count(*) FROM message WHERE state='incoming'"), [(0,)])
            for qid, size in sim.query("SELECT id, size FROM message"):
                self.assertEqual(len(sim.queued_body(qid)), size)
                self.assertEqual(sim.query("SELECT count(*) FROM recipient WHERE message=?", (qid,)),
                                 [(1,)])
            self.assertFalse(any(b"partial" in sim.queued_body(q) for q in queued_ids(sim)))


if __name__ == "__main__":
    unittest.main(verbosity=2)
