"""Self-test of peers.py from the host side (smtplib, ssl, raw sockets).

    cd tests/integration && /usr/bin/python3 -m unittest -v test_peers

Not registered in CMake. The Dns test binds 127.0.0.1:53 (root; nothing else
may be using it).
"""
import os
import smtplib
import socket
import ssl
import threading
import time
import unittest

from peers import (ClosedPort, Dns, DnsPortBusy, Message, ResetServer, SilentServer, Sink,
                   SmartHost, TestPKI, TlsBrokenHost, dns_query)

USER, PASSWORD = "relay", "s3cret pass"
# CRLF line ends, a line starting with "." (stuffed on the wire), a lone "."
# inside a line, 8-bit bytes, no header folding surprises.
BODY = (b"From: a@vendor.test\r\nTo: b@example.com\r\nSubject: exact bytes\r\n\r\n"
        b".leading dot\r\n..two dots\r\n.\tdot tab\r\nmid . dot\r\n\xc3\xa9 8bit\r\nend\r\n")


def smtp(port, host_name=None, timeout=5):
    """smtplib client on 127.0.0.1:port; host_name is what STARTTLS verifies."""
    s = smtplib.SMTP(timeout=timeout)
    s.connect("127.0.0.1", port)
    if host_name:
        s._host = host_name   # smtplib's starttls() uses it as server_hostname
    return s


def open_fds():
    return len(os.listdir("/proc/self/fd"))


class PKI(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pki = TestPKI.shared()

    def handshake(self, host, ctx, name="mail.test"):
        s = smtp(host.port, name)
        try:
            s.ehlo("client.test")
            s.starttls(context=ctx)
            return s.sock.version()
        finally:
            s.close()

    def test_files_and_ca_pem(self):
        p = self.pki
        for path in (p.ca_cert, p.ca_key, p.server_cert, p.server_key, p.wrong_cert,
                     p.wrong_key, p.selfsigned_cert, p.selfsigned_key):
            self.assertTrue(os.path.basename(path).startswith("test-"), path)
            self.assertGreater(os.path.getsize(path), 0, path)
        self.assertTrue(p.ca_pem.startswith("-----BEGIN CERTIFICATE-----"))
        self.assertEqual(p.ca_pem.count("BEGIN CERTIFICATE"), 1)

    def test_good_cert_verifies_with_ca(self):
        with SmartHost(cert="good") as host:
            self.assertIn(self.handshake(host, self.pki.client_context()), ("TLSv1.2", "TLSv1.3"))
            self.handshake(host, self.pki.client_context(), "localhost")   # the second SAN

    def test_good_cert_fails_without_ca(self):
        with SmartHost(cert="good") as host:
            with self.assertRaises(ssl.SSLCertVerificationError):
                self.handshake(host, ssl.create_default_context(cafile=self.pki.selfsigned_cert))

    def test_wrong_name_fails_hostname_check(self):
        with SmartHost(cert="wrong-name") as host:
            with self.assertRaises(ssl.SSLCertVerificationError) as cm:
                self.handshake(host, self.pki.client_context())
            self.assertIn("Hostname mismatch", str(cm.exception))
            # The chain itself is fine: it verifies once the name is not checked.
            ctx = self.pki.client_context()
            ctx.check_hostname = False
            self.handshake(host, ctx)
            self.handshake(host, self.pki.client_context(), "wrong.test")

    def test_self_signed_fails(self):
        with SmartHost(cert="self-signed") as host:
            with self.assertRaises(ssl.SSLCertVerificationError) as cm:
                self.handshake(host, self.pki.client_context())
            self.assertIn("self-signed", str(cm.exception))
            # the server side saw the handshake fail too
            host.wait_until(lambda: host.connections[-1].closed, 2)
            self.assertIn("SSL", host.connections[-1].tls_error)
            self.assertFalse(host.connections[-1].tls)

    def test_expired_fails(self):
        with SmartHost(cert="expired") as host:
            with self.assertRaises(ssl.SSLCertVerificationError) as cm:
                self.handshake(host, self.pki.client_context())
            self.assertIn("expired", str(cm.exception))

    def test_rsa_and_own_dir(self):
        with TestPKI(key_type="rsa") as pki:
            self.assertTrue(os.path.isdir(pki.dir))
            with SmartHost(pki=pki) as host:
                self.handshake(host, pki.client_context())
                # a different CA: the shared one does not trust it
                with self.assertRaises(ssl.SSLCertVerificationError):
                    self.handshake(host, self.pki.client_context())
            d = pki.dir
        self.assertFalse(os.path.exists(d))


class SmartHostTests(unittest.TestCase):
    def test_starttls_auth_plain_exact_bytes(self):
        with SmartHost(auth=(USER, PASSWORD), require_auth=True) as host:
            s = smtp(host.port, "mail.test")
            s.ehlo("relay.vendor.test")
            self.assertIn("starttls", s.esmtp_features)
            self.assertNotIn("auth", s.esmtp_features)          # AUTH only after TLS
            s.starttls(context=host.pki.client_context())
            s.ehlo("relay.vendor.test")
            self.assertIn("PLAIN", s.esmtp_features["auth"])
            s.login(USER, PASSWORD)
            refused = s.sendmail("a@vendor.test", ["b@example.com", "C@Example.com"], BODY,
                                 mail_options=["BODY=8BITMIME"])
            self.assertEqual(refused, {})
            s.quit()
            (m,) = host.wait_for(1, timeout=5)
        self.assertIsInstance(m, Message)
        self.assertEqual(m.data, BODY)
        self.assertEqual(m.mail_from, "a@vendor.test")
        self.assertEqual(m.rcpt_tos, ["b@example.com", "C@Example.com"])
        self.assertIn("BODY=8BITMIME", m.mail_options)
        self.assertTrue(m.tls)
        self.assertIn(m.tls_version, ("TLSv1.2", "TLSv1.3"))
        self.assertTrue(m.tls_cipher)
        self.assertEqual((m.auth, m.auth_mechanism), (USER, "PLAIN"))
        self.assertEqual(m.ehlo, "relay.vendor.test")
        self.assertTrue(m.esmtp)
        conn = host.connections[m.connection]
        self.assertEqual(conn.commands[:3], ["EHLO relay.vendor.test", "STARTTLS",
                                             "EHLO relay.vendor.test"])
        self.assertIn("AUTH PLAIN", conn.commands)
        self.assertNotIn(PASSWORD, " ".join(conn.commands))
        self.assertEqual(conn.commands[-1], "QUIT")
        self.assertTrue(conn.tls and conn.auth == USER and conn.messages == 1)
        self.assertEqual(host.auth_attempts, [("PLAIN", USER, True)])
        self.assertEqual(host.errors, [])

    def test_auth_login_and_bad_password(self):
        with SmartHost(auth=(USER, PASSWORD), auth_mechanisms=("LOGIN",)) as host:
            s = smtp(host.port, "mail.test")
            s.starttls(context=host.pki.client_context())
            s.ehlo("x.test")
            self.assertEqual(s.esmtp_features["auth"].split(), ["LOGIN"])
            with self.assertRaises(smtplib.SMTPAuthenticationError) as cm:
                s.login(USER, "wrong")
            self.assertEqual(cm.exception.smtp_code, 535)
            s.login(USER, PASSWORD)
            s.sendmail("a@x.test", ["b@y.test"], b"Subject: login\r\n\r\nhi\r\n")
            s.quit()
            (m,) = host.wait_for(1)
            self.assertEqual((m.auth, m.auth_mechanism), (USER, "LOGIN"))
            self.assertEqual(host.auth_attempts, [("LOGIN", USER, False), ("LOGIN", USER, True)])

    def test_require_auth_and_plaintext_auth_option(self):
        with SmartHost(tls=False, auth=(USER, PASSWORD), require_auth=True,
                       auth_require_tls=False) as host:
            s = smtp(host.port)
            s.ehlo("x.test")
            self.assertNotIn("starttls", s.esmtp_features)
            self.assertIn("auth", s.esmtp_features)
            self.assertEqual(s.mail("a@x.test")[0], 530)
            s.login(USER, PASSWORD)
            s.sendmail("a@x.test", ["b@y.test"], b"x\r\n")
            s.quit()
            (m,) = host.wait_for(1)
            self.assertFalse(m.tls)
            self.assertIsNone(m.tls_version)
            self.assertEqual(m.auth, USER)

    def test_no_auth_configured_advertises_none(self):
        with SmartHost() as host:
            s = smtp(host.port, "mail.test")
            s.starttls(context=host.pki.client_context())
            s.ehlo("x.test")
            self.assertNotIn("auth", s.esmtp_features)
            s.quit()
            s = smtp(host.port)
            s.helo("old.test")       # HELO works too, and is what gets recorded
            s.sendmail("", ["b@y.test"], b"bounce\r\n")
            s.quit()
            (m,) = host.wait_for(1)
            self.assertEqual((m.mail_from, m.ehlo, m.esmtp, m.auth), ("", "old.test", False, None))
            # null sender and DSN/AUTH parameters over ESMTP, recorded verbatim
            s = smtp(host.port)
            s.ehlo("new.test")
            s.sendmail("", ["b@y.test"], b"dsn\r\n", mail_options=["RET=HDRS", "ENVID=Q1x", "AUTH=<>"],
                       rcpt_options=["NOTIFY=FAILURE", "ORCPT=rfc822;b@y.test"])
            self.assertEqual(s.docmd("RCPT TO:<b@y.test>")[0], 503)     # no MAIL yet
            s.mail("a@x.test")
            self.assertEqual(s.mail("a@x.test")[0], 503)                # nested
            s.quit()
            m = host.wait_for(2)[1]
            self.assertEqual((m.mail_from, m.data), ("", b"dsn\r\n"))
            self.assertEqual(m.mail_options, ["size=5", "RET=HDRS", "ENVID=Q1x", "AUTH=<>"])
            self.assertEqual(m.rcpt_options, ["NOTIFY=FAILURE", "ORCPT=rfc822;b@y.test"])
            self.assertFalse(m.tls)

    def test_scripted_rcpt_and_data(self):
        script = [(451, "4.3.0 try later"), None]
        with SmartHost(tls=False, reply_rcpt={"nobody@example.com": (550, "5.1.1 no such user")},
                       reply_data=script) as host:
            s = smtp(host.port)
            with self.assertRaises(smtplib.SMTPDataError) as cm:
                s.sendmail("a@x.test", ["b@example.com", "NOBODY@example.com"], b"one\r\n")
            self.assertEqual(cm.exception.smtp_code, 451)
            refused = s.sendmail("a@x.test", ["b@example.com", "nobody@example.com"], b"two\r\n")
            self.assertEqual(refused, {"nobody@example.com": (550, b"5.1.1 no such user")})
            s.sendmail("a@x.test", ["b@example.com"], b"three\r\n")   # script used up
            s.quit()
            msgs = host.wait_for(2)
            self.assertEqual([m.data for m in msgs], [b"two\r\n", b"three\r\n"])
            self.assertEqual(msgs[0].rcpt_tos, ["b@example.com"])
            self.assertEqual([(m.data, m.reply) for m in host.rejected],
                             [(b"one\r\n", "451 4.3.0 try later")])
            # changeable while running
            host.reply_data = (554, "5.6.0 no")
            s = smtp(host.port)
            with self.assertRaises(smtplib.SMTPDataError):
                s.sendmail("a@x.test", ["b@example.com"], b"four\r\n")
            s.close()
            self.assertEqual(len(host.messages), 2)

    def test_pipelined_batch(self):
        with SmartHost(tls=False) as host:
            with socket.create_connection(("127.0.0.1", host.port), timeout=5) as c:
                f = c.makefile("rb")

                def replies(n):
                    out = []
                    while len(out) < n:
                        line = f.readline()
                        self.assertTrue(line, out)
                        if line[3:4] == b" ":
                            out.append(line[:3])
                    return out
                self.assertEqual(replies(1), [b"220"])
                c.sendall(b"EHLO pipe.test\r\n")
                ehlo = []
                while True:
                    line = f.readline()
                    ehlo.append(line)
                    if line[3:4] == b" ":
                        break
                self.assertIn(b"250-PIPELINING\r\n", ehlo)
                c.sendall(b"MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\n"
                          b"RCPT TO:<c@y.test>\r\nDATA\r\n")
                self.assertEqual(replies(4), [b"250", b"250", b"250", b"354"])
                c.sendall(b"..x\r\n.\r\nQUIT\r\n")
                self.assertEqual(replies(2), [b"250", b"221"])
                f.close()
            (m,) = host.wait_for(1)
            self.assertEqual((m.data, m.rcpt_tos), (b".x\r\n", ["b@y.test", "c@y.test"]))

    def test_greeting_421(self):
        with SmartHost(greeting=(421, "4.3.2 busy")) as host:
            with self.assertRaises(smtplib.SMTPConnectError) as cm:
                smtplib.SMTP("127.0.0.1", host.port, timeout=5)
            self.assertEqual((cm.exception.smtp_code, cm.exception.smtp_error), (421, b"4.3.2 busy"))
            self.assertEqual(len(host.wait_connections(1)), 1)
            self.assertEqual(host.messages, [])

    def test_concurrent_sessions_and_wait_timeout(self):
        with SmartHost(tls=False) as host:
            with self.assertRaises(TimeoutError):
                host.wait_for(1, timeout=0.2)

            def send(i):
                with smtplib.SMTP("127.0.0.1", host.port, timeout=5) as s:
                    s.sendmail("a@x.test", ["b@y.test"], b"n=%d\r\n" % i)
            threads = [threading.Thread(target=send, args=(i,)) for i in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(10)
            msgs = host.wait_for(8, timeout=5)
            self.assertEqual(sorted(m.data for m in msgs), sorted(b"n=%d\r\n" % i for i in range(8)))

    def test_stop_with_open_connection(self):
        host = SmartHost()
        with host:
            s = smtp(host.port)
            s.ehlo("x.test")
            host.wait_connections(1)
        # the client sees the server go away; the port is free again
        with self.assertRaises((smtplib.SMTPServerDisconnected, ConnectionError)):
            s.noop()
        s.close()
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", host.port), timeout=2)


class TlsBroken(unittest.TestCase):
    def starttls(self, host):
        s = smtp(host.port, "mail.test")
        try:
            s.ehlo("relay.test")
            self.assertIn("starttls", s.esmtp_features)
            s.starttls(context=TestPKI.shared().client_context())
        finally:
            s.close()

    def test_handshake_breaks_plaintext_delivers(self):
        with TlsBrokenHost() as host:
            with self.assertRaises(ssl.SSLError):
                self.starttls(host)
            self.assertEqual((host.starttls, host.client_hellos), (1, 1))
            # "may": the client retries without STARTTLS and the mail goes through
            s = smtp(host.port)
            s.ehlo("relay.test")
            s.sendmail("a@x.test", ["b@y.test", "c@y.test"], BODY)   # smtplib adds size=N
            s.quit()
            (m,) = host.wait_for(1)
            self.assertEqual(m.data, BODY)
            self.assertEqual((m.mail_from, m.rcpt_tos, m.tls, m.ehlo), ("a@x.test", ["b@y.test", "c@y.test"], False, "relay.test"))
            self.assertEqual(m.mail_options, ["size=%d" % len(BODY)])
            self.assertEqual(host.connections[0].commands, ["EHLO relay.test", "STARTTLS"])
            self.assertTrue(host.connections[0].tls_error)

    def test_other_modes(self):
        for mode in ("close", "reset", "alert"):
            with self.subTest(mode=mode), TlsBrokenHost(mode=mode) as host:
                with self.assertRaises((ssl.SSLError, ConnectionError, smtplib.SMTPServerDisconnected)):
                    self.starttls(host)
                self.assertEqual(host.starttls, 1)

    def test_hang_until_client_gives_up(self):
        with TlsBrokenHost(mode="hang") as host:
            s = smtp(host.port, "mail.test", timeout=0.5)
            s.ehlo("x.test")
            t0 = time.monotonic()
            with self.assertRaises((socket.timeout, ssl.SSLError)):
                s.starttls(context=TestPKI.shared().client_context())
            self.assertLess(time.monotonic() - t0, 3)
            s.close()


class FailedHosts(unittest.TestCase):
    def test_closed_port_refuses(self):
        with ClosedPort() as cp:
            self.assertTrue(cp.port)
            with self.assertRaises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", cp.port), timeout=2)

    def test_reset_server_resets(self):
        with ResetServer() as rs:
            for _ in range(2):
                with self.assertRaises((ConnectionResetError, smtplib.SMTPServerDisconnected)):
                    smtplib.SMTP("127.0.0.1", rs.port, timeout=2)
            with self.assertRaises(ConnectionResetError):
                # connect() itself may already see the reset on loopback
                with socket.create_connection(("127.0.0.1", rs.port), timeout=2) as c:
                    time.sleep(0.1)
                    c.sendall(b"EHLO x\r\n")
                    c.recv(100)
            self.assertEqual(rs.accepted, 3)

    def test_silent_server(self):
        with SilentServer() as ss:
            c = socket.create_connection(("127.0.0.1", ss.port), timeout=0.3)
            with self.assertRaises(socket.timeout):
                c.recv(100)
            c.close()


class SinkTests(unittest.TestCase):
    def test_counts_five(self):
        with Sink(dump=True) as sink:
            self.assertEqual(sink.count, 0)
            with smtplib.SMTP("127.0.0.1", sink.port, timeout=5) as s:
                for i in range(4):
                    s.sendmail("a@x.test", ["b@y.test"], b"Subject: %d\r\n\r\n.dot\r\nn=%d\r\n" % (i, i))
            with smtplib.SMTP("127.0.0.1", sink.port, timeout=5) as s:
                s.sendmail("a@x.test", ["b@y.test", "c@y.test"], b"Subject: 4\r\n\r\nn=4\r\n")
            self.assertEqual(sink.wait_for(5, timeout=5), 5)
            sink.wait_for(5)
            dumps = sink.dumps()
            self.assertEqual(len(dumps), 5)
            self.assertEqual(sorted(d["data"] for d in dumps)[0], b"Subject: 0\n\n.dot\nn=0\n")
            last = [d for d in dumps if d["data"].endswith(b"n=4\n")][0]
            self.assertEqual((last["mail"], last["rcpts"]), ("<a@x.test>", ["<b@y.test>", "<c@y.test>"]))
            with self.assertRaises(TimeoutError):
                sink.wait_for(6, timeout=0.2)
            port = sink.port
        self.assertIsNone(sink.proc)
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2)

    def test_fixed_port(self):
        with ClosedPort() as cp:
            port = cp.port
        with Sink(port) as sink:
            self.assertEqual(sink.port, port)
            with smtplib.SMTP("127.0.0.1", port, timeout=5) as s:
                self.assertEqual(s.ehlo()[0], 250)


@unittest.skipUnless(os.geteuid() == 0, "Dns binds port 53: needs root")
class DnsTests(unittest.TestCase):
    def test_records(self):
        with Dns({"mail.test": "10.0.2.2", "multi.test": ["10.0.2.2", "192.0.2.7"]},
                 mx={"example.test": [(10, "mail.test"), (20, "backup.test")]},
                 cname={"alias.test": "mail.test"}) as dns:
            # the acceptance check: a raw UDP query to 127.0.0.1:53
            self.assertEqual(dns_query("mail.test", "A", ("127.0.0.1", 53)), (0, [("A", "10.0.2.2")]))
            self.assertEqual(dns.resolve("MAIL.TEST"), (0, [("A", "10.0.2.2")]))
            rcode, ans = dns.resolve("multi.test")
            self.assertEqual(sorted(v for _, v in ans), ["10.0.2.2", "192.0.2.7"])
            self.assertEqual(dns.resolve("nope.test")[0], 3)            # NXDOMAIN
            self.assertEqual(dns.resolve("www.example.com")[0], 3)      # no upstream
            self.assertEqual(dns.resolve("mail.test", "AAAA"), (0, []))
            rcode, ans = dns.resolve("example.test", "MX")
            self.assertEqual(sorted(v for _, v in ans), [(10, "mail.test"), (20, "backup.test")])
            rcode, ans = dns.resolve("alias.test")
            self.assertIn(("CNAME", "mail.test"), ans)
            self.assertIn(("A", "10.0.2.2"), ans)
            self.assertIn(("A", "mail.test", "127.0.0.1"), dns.queries)
            self.assertIn(("MX", "example.test", "127.0.0.1"), dns.queries)
            # port 53 is taken now: a second one says so clearly
            with self.assertRaises(DnsPortBusy) as cm:
                with Dns({"x.test": "10.0.2.2"}):
                    pass
            self.assertIn("dns53", str(cm.exception))
        with self.assertRaises(socket.timeout):
            dns_query("mail.test", timeout=0.2)


class NoLeaks(unittest.TestCase):
    def test_start_stop_everything(self):
        TestPKI.shared()
        threads, fds = threading.active_count(), open_fds()
        for _ in range(2):
            with SmartHost(auth=(USER, PASSWORD)) as h, TlsBrokenHost() as b, \
                    ResetServer() as r, ClosedPort(), SilentServer() as q, Sink() as k:
                open_conns = [socket.create_connection(("127.0.0.1", p.port), timeout=2)
                              for p in (h, b, q, k)]
                s = smtp(h.port, "mail.test")
                s.starttls(context=h.pki.client_context())
                s.ehlo("x.test")
                try:
                    socket.create_connection(("127.0.0.1", r.port), timeout=2).close()
                except OSError:
                    pass
                time.sleep(0.1)
            for c in open_conns:
                c.close()
            s.close()
        time.sleep(0.1)
        self.assertEqual(threading.active_count(), threads, threading.enumerate())
        self.assertEqual(open_fds(), fds)


if __name__ == "__main__":
    unittest.main()
