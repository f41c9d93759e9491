"""Network peers for integration tests: the servers the appliance talks to.

Every peer listens on 127.0.0.1 (a free port unless told otherwise); the
appliance reaches host loopback as 10.0.2.2 through slirp, so a test hands it
"10.0.2.2" and `peer.port`. On the tap wire (Sim(net="tap")) the appliance
reaches the host at sim.host_addr instead: SmartHost, Sink and Dns take
address=sim.host_addr to listen there. Every peer is a context manager: it starts in
__enter__ (or start()) and stops, joins its threads and removes its files in
__exit__ (or stop()). All waits are bounded; all threads are daemons.

    SmartHost      aiosmtpd SMTP server: STARTTLS, AUTH, scripted failures,
                   records every message (exact DATA bytes) and connection
    TlsBrokenHost  advertises STARTTLS and breaks the handshake; plaintext
                   sessions deliver normally
    ClosedPort     a port nothing listens on (connect: refused)
    ResetServer    accepts and resets (RST) every connection
    Forwarder      forwards connections to another port; can reset the next ones
    SilentServer   accepts and never says a word (greeting timeouts)
    Sink           Postfix smtp-sink, counting messages, for bulk tests
    TestPKI        openssl-CLI test CA and server certificates
    Dns            dnsmasq on 127.0.0.1:53 with fixed records

Dns needs port 53: a ctest test that uses it must hold the resource lock
"dns53" (set_tests_properties(... PROPERTIES RESOURCE_LOCK dns53)) so that no
two such tests run at once.

Runs on Debian 12's /usr/bin/python3 with python3-aiosmtpd (1.4.3); no pip.
"""
import asyncio
import dataclasses
import errno
import functools
import logging
import os
import random
import select
import smtplib
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time
from typing import List, Optional, Tuple

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, TLSSetupException, syntax

SMTP_SINK = "/usr/sbin/smtp-sink"
DNSMASQ = "/usr/sbin/dnsmasq"
OPENSSL = "/usr/bin/openssl"
LOOPBACK = "127.0.0.1"
START_TIMEOUT = 5.0   # seconds for any peer to come up
STOP_TIMEOUT = 5.0    # seconds for any peer to shut down


class PeerError(Exception):
    """A peer could not start or behaved unexpectedly."""


class DnsPortBusy(PeerError):
    """127.0.0.1:53 is taken: another Dns (missing RESOURCE_LOCK dns53?) or a
    system resolver."""


# aiosmtpd 1.4.3 logs a deprecation warning on every successful AUTH (it sets
# the legacy Session.login_data itself); with no logging configured that is
# printed to stderr. Drop just that record.
logging.getLogger("mail.log").addFilter(
    lambda record: "login_data is deprecated" not in record.getMessage())


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def _listening(port, host=LOOPBACK):
    """Whether some socket LISTENs on host:port (from /proc, no connection)."""
    want = "%s:%04X" % ("".join("%02X" % b for b in reversed(socket.inet_aton(host))), port)
    anyaddr = "00000000:%04X" % port
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[3] == "0A" and fields[1] in (want, anyaddr):
                    return True
    except OSError:
        pass
    return False


class _Peer:
    """start()/stop() plus the context-manager protocol."""

    def start(self):
        raise NotImplementedError

    def stop(self):
        raise NotImplementedError

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()


# --- records ---------------------------------------------------------------

@dataclasses.dataclass
class Message:
    """One mail transaction that reached end of DATA."""
    mail_from: str
    rcpt_tos: List[str]
    data: bytes                        # DATA exactly as sent, dot-unstuffed, final CRLF kept
    mail_options: List[str]
    rcpt_options: List[str]
    ehlo: Optional[str]                # the HELO/EHLO argument of this session
    esmtp: bool                        # EHLO (True) or HELO (False)
    tls: bool
    tls_version: Optional[str]         # e.g. "TLSv1.2"
    tls_cipher: Optional[str]          # e.g. "ECDHE-ECDSA-AES256-GCM-SHA384"
    auth: Optional[str]                # AUTH identity (login), None if no AUTH
    auth_mechanism: Optional[str]      # "PLAIN" / "LOGIN"
    peer: Tuple[str, int]
    connection: int                    # index into .connections
    reply: str = "250"                 # the reply the peer gave to the final dot


@dataclasses.dataclass
class Connection:
    """One TCP connection to a peer."""
    peer: Tuple[str, int]
    commands: List[str] = dataclasses.field(default_factory=list)  # "MAIL FROM:<a@b>", AUTH
    # arguments are not recorded (only "AUTH PLAIN"); AUTH continuation lines never are
    ehlo: Optional[str] = None
    tls: bool = False
    tls_version: Optional[str] = None
    tls_cipher: Optional[str] = None
    tls_error: Optional[str] = None    # why a STARTTLS handshake failed
    auth: Optional[str] = None
    auth_mechanism: Optional[str] = None
    messages: int = 0
    closed: bool = False


class _Recorder:
    """Thread-safe lists of messages and connections, and waiting on them."""

    def _init_records(self):
        self._cond = threading.Condition()
        self.messages: List[Message] = []
        self.rejected: List[Message] = []     # reached the dot but got a scripted failure
        self.connections: List[Connection] = []

    def _new_connection(self, peer):
        with self._cond:
            conn = Connection(peer=peer)
            self.connections.append(conn)
            self._cond.notify_all()
            return conn, len(self.connections) - 1

    def _closed(self, conn):
        with self._cond:
            conn.closed = True
            self._cond.notify_all()

    def _record(self, msg, accepted=True):
        with self._cond:
            (self.messages if accepted else self.rejected).append(msg)
            self._cond.notify_all()

    def _wait_cond(self, predicate, timeout, what):
        with self._cond:
            if not self._cond.wait_for(predicate, timeout):
                raise TimeoutError("%s: %s after %ss" % (self, what(), timeout))

    def wait_for(self, n=1, timeout=10):
        """Wait until at least n messages were accepted; returns the first n."""
        self._wait_cond(lambda: len(self.messages) >= n, timeout,
                        lambda: "%d of %d messages" % (len(self.messages), n))
        with self._cond:
            return list(self.messages[:n])

    def wait_connections(self, n=1, timeout=10):
        """Wait until at least n connections were accepted; returns them."""
        self._wait_cond(lambda: len(self.connections) >= n, timeout,
                        lambda: "%d of %d connections" % (len(self.connections), n))
        with self._cond:
            return list(self.connections[:n])

    def wait_until(self, predicate, timeout=10, what="condition"):
        """Wait until predicate() is true (checked at every record and every
        50 ms, e.g. lambda: host.connections[-1].closed); returns its value."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                value = predicate()
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("%s: timed out after %ss waiting for %s" % (self, timeout, what))
                self._cond.wait(min(left, 0.05))

    def clear(self):
        with self._cond:
            self.messages.clear()
            self.rejected.clear()
            self.connections.clear()

    def __repr__(self):
        return "%s(%s:%s)" % (type(self).__name__, getattr(self, "address", LOOPBACK),
                              getattr(self, "port", "?"))


def _reply(code_text):
    code, text = code_text
    return "%d %s" % (code, text)


# --- TestPKI ---------------------------------------------------------------

_OPENSSL_CNF = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,$ENV::SHR_PKI_KU
extendedKeyUsage = serverAuth
subjectAltName = $ENV::SHR_PKI_SAN
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[self_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,$ENV::SHR_PKI_KU
extendedKeyUsage = serverAuth
subjectAltName = $ENV::SHR_PKI_SAN
subjectKeyIdentifier = hash
[ca]
default_ca = testca
[testca]
dir = $ENV::SHR_PKI_DIR
database = $dir/ca-db/index.txt
new_certs_dir = $dir/ca-db
certificate = $dir/test-ca.crt.pem
private_key = $dir/test-ca.key.pem
rand_serial = yes
default_md = sha256
policy = policy_cn
unique_subject = no
copy_extensions = none
[policy_cn]
commonName = supplied
"""

_ORG = "SHR Test PKI - TEST ONLY"


class TestPKI:
    """A throw-away PKI made with the openssl CLI: a test CA, server
    certificates signed by it, a self-signed one. Files are PEM, named
    test-*.pem, in `dir` (the given tmpdir, or a temporary directory removed
    by close()/__exit__).

    Made at construction, for "mail.test":
      ca_cert, ca_key, ca_pem (text of the CA certificate, for the appliance)
      server_cert, server_key        CN+SAN mail.test, SAN localhost; by the CA
      wrong_cert, wrong_key          CN+SAN wrong.test; by the CA
      selfsigned_cert, selfsigned_key  CN+SAN mail.test, SAN localhost; self-signed
    pair(kind, hostname) makes (and caches) more: kind "good", "wrong-name",
    "self-signed" or "expired" (by the CA, valid 2020-01-01..2021-01-01).
    key_type "ec" (P-256, default; what the firmware's mbedTLS uses itself)
    or "rsa" (2048).
    """
    __test__ = False   # not a unittest/pytest class despite the name

    KINDS = ("good", "wrong-name", "self-signed", "expired")
    WRONG_NAME = "wrong.test"

    def __init__(self, tmpdir=None, key_type="ec", hostname="mail.test"):
        if key_type not in ("ec", "rsa"):
            raise ValueError("key_type must be 'ec' or 'rsa'")
        self.key_type = key_type
        self._tmp = None
        if tmpdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="shr-pki-")
            tmpdir = self._tmp.name
        self.dir = os.path.abspath(tmpdir)
        os.makedirs(self.dir, exist_ok=True)
        self._lock = threading.Lock()
        self._pairs = {}
        self._cnf = os.path.join(self.dir, "test-openssl.cnf")
        with open(self._cnf, "w") as f:
            f.write(_OPENSSL_CNF)
        try:
            self.ca_cert = os.path.join(self.dir, "test-ca.crt.pem")
            self.ca_key = os.path.join(self.dir, "test-ca.key.pem")
            self._openssl(["req", "-x509", "-new"] + self._newkey(self.ca_key)
                          + ["-out", self.ca_cert, "-days", "3650", "-extensions", "ca_ext",
                             "-subj", "/O=%s/CN=SHR Test CA (TEST ONLY)" % _ORG])
            with open(self.ca_cert) as f:
                self.ca_pem = f.read()
            self.server_cert, self.server_key = self.pair("good", hostname)
            self.wrong_cert, self.wrong_key = self.pair("wrong-name", hostname)
            self.selfsigned_cert, self.selfsigned_key = self.pair("self-signed", hostname)
        except BaseException:
            self.close()
            raise

    _shared = None
    _shared_lock = threading.Lock()

    @classmethod
    def shared(cls):
        """One PKI per process (what SmartHost uses unless given one);
        removed at interpreter exit."""
        with cls._shared_lock:
            if cls._shared is None:
                import atexit
                cls._shared = cls()
                atexit.register(cls._shared.close)
            return cls._shared

    def _newkey(self, keyout):
        if self.key_type == "ec":
            spec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
        else:
            spec = ["-newkey", "rsa:2048"]
        return spec + ["-noenc", "-keyout", keyout]

    def _openssl(self, args, san="DNS:unused"):
        env = dict(os.environ, SHR_PKI_SAN=san, SHR_PKI_DIR=self.dir,
                   SHR_PKI_KU="digitalSignature" if self.key_type == "ec"
                   else "digitalSignature,keyEncipherment")
        env.pop("OPENSSL_CONF", None)
        r = subprocess.run([OPENSSL] + args[:1] + ["-config", self._cnf] + args[1:],
                           env=env, cwd=self.dir, capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise PeerError("openssl %s failed: %s" % (" ".join(args), r.stderr.strip()))
        return r.stdout

    def pair(self, kind="good", hostname="mail.test"):
        """(cert_path, key_path) of a server certificate of `kind` for hostname."""
        if kind not in self.KINDS:
            raise ValueError("kind must be one of %s" % (self.KINDS,))
        with self._lock:
            key = (kind, hostname)
            if key not in self._pairs:
                self._pairs[key] = self._make(kind, hostname)
            return self._pairs[key]

    def _make(self, kind, hostname):
        name = self.WRONG_NAME if kind == "wrong-name" else hostname
        stem = os.path.join(self.dir, "test-server-%s-%s" % (kind, name))
        cert, keyf = stem + ".crt.pem", stem + ".key.pem"
        san = "DNS:%s" % name + (",DNS:localhost" if name != "localhost" else "")
        subj = "/O=%s/CN=%s" % (_ORG, name)
        if kind == "self-signed":
            self._openssl(["req", "-x509", "-new"] + self._newkey(keyf)
                          + ["-out", cert, "-days", "825", "-extensions", "self_ext",
                             "-subj", subj], san)
        elif kind == "good" or kind == "wrong-name":
            self._openssl(["req", "-x509", "-new"] + self._newkey(keyf)
                          + ["-CA", self.ca_cert, "-CAkey", self.ca_key, "-out", cert,
                             "-days", "825", "-extensions", "server_ext", "-subj", subj], san)
        else:  # expired: `openssl ca` is the only CLI path to explicit dates in 3.0
            db = os.path.join(self.dir, "ca-db")
            os.makedirs(db, exist_ok=True)
            open(os.path.join(db, "index.txt"), "a").close()
            csr = stem + ".csr.pem"
            self._openssl(["req", "-new"] + self._newkey(keyf) + ["-out", csr, "-subj", subj], san)
            self._openssl(["ca", "-batch", "-notext", "-in", csr, "-out", cert,
                           "-startdate", "20200101000000Z", "-enddate", "20210101000000Z",
                           "-extensions", "server_ext"], san)
            os.unlink(csr)
        return cert, keyf

    def server_context(self, kind="good", hostname="mail.test"):
        """An ssl.SSLContext for a server presenting pair(kind, hostname)."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*self.pair(kind, hostname))
        return ctx

    def client_context(self):
        """An ssl.SSLContext that trusts only the test CA, checks hostnames."""
        ctx = ssl.create_default_context(cafile=self.ca_cert)
        return ctx

    def close(self):
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# --- SmartHost -------------------------------------------------------------

class _SmtpProtocol(SMTP):
    """aiosmtpd's SMTP with connection records, a scriptable greeting and a
    clean abort on shutdown."""

    def __init__(self, shr_host, handler, **kwargs):
        self._shr_host = shr_host
        self._shr_conn = None
        super().__init__(handler, **kwargs)
        # Set here, not as auth_required=: aiosmtpd warns (warnings + log) on
        # every connection when AUTH is required without TLS.
        self._auth_required = shr_host.require_auth
        # Record every recognised command of this connection.
        for verb, method in list(self._smtp_methods.items()):
            self._smtp_methods[verb] = self._shr_recording(verb, method)

    def _shr_recording(self, verb, method):
        @functools.wraps(method)
        async def recorded(arg):
            if self._shr_conn is not None:
                if verb == "AUTH":
                    line = "AUTH " + (arg or "").split(" ")[0]
                else:
                    line = verb + (" " + arg if arg else "")
                self._shr_conn.commands.append(line.rstrip())
            return await method(arg)
        return recorded

    # aiosmtpd 1.4.3's own MAIL and RCPT refuse the null reverse-path "<>"
    # (bounces!), answer 555 to any parameter but SIZE/BODY/SMTPUTF8 (so
    # AUTH=, RET=, ENVID=, NOTIFY=, ORCPT= fail) and upper-case the
    # parameters. These take "<>" and record any parameter verbatim.
    @syntax("MAIL FROM: <address>", extended=" [SP <mail-parameters>]")
    async def smtp_MAIL(self, arg):
        if await self.check_helo_needed() or await self.check_auth_needed("MAIL"):
            return
        syntaxerr = "501 5.5.4 Syntax: MAIL FROM:<address> [parameters]"
        rest = self._strip_command_keyword("FROM:", arg or "")
        if rest is None:
            return await self.push(syntaxerr)
        if rest.startswith("<>"):
            address, params = "", rest[2:]
        else:
            address, params = self._getaddr(rest)
            if address is None:
                return await self.push("553 5.1.3 Error: malformed address")
            if not address:
                return await self.push(syntaxerr)
        if getattr(self.envelope, "shr_mail", False):
            return await self.push("503 5.5.1 Error: nested MAIL command")
        options = params.split()
        if options and not self.session.extended_smtp:
            return await self.push(syntaxerr)
        named = {o.partition("=")[0].upper(): o.partition("=")[2] for o in options}
        size = named.get("SIZE", "")
        if size.isdigit() and self.data_size_limit and int(size) > self.data_size_limit:
            return await self.push("552 5.3.4 Error: message size exceeds fixed maximum")
        self.envelope.smtp_utf8 = "SMTPUTF8" in named
        await self.push(await self._call_handler_hook("MAIL", address, options))

    @syntax("RCPT TO: <address>", extended=" [SP <mail-parameters>]")
    async def smtp_RCPT(self, arg):
        if await self.check_helo_needed() or await self.check_auth_needed("RCPT"):
            return
        if not getattr(self.envelope, "shr_mail", False):
            return await self.push("503 5.5.1 Error: need MAIL command")
        syntaxerr = "501 5.5.4 Syntax: RCPT TO:<address> [parameters]"
        rest = self._strip_command_keyword("TO:", arg or "")
        if rest is None:
            return await self.push(syntaxerr)
        address, params = self._getaddr(rest)
        if address is None:
            return await self.push("553 5.1.3 Error: malformed address")
        if not address:
            return await self.push(syntaxerr)
        options = params.split()
        if options and not self.session.extended_smtp:
            return await self.push(syntaxerr)
        await self.push(await self._call_handler_hook("RCPT", address, options))

    def connection_made(self, transport):
        starttls = self._original_transport is not None
        super().connection_made(transport)
        if not starttls:
            self._shr_conn, self._shr_index = self._shr_host._new_connection(self.session.peer)
            self._shr_host._protocols.add(self)
        else:
            sslobj = self.session.ssl.get("ssl_object") if self.session.ssl else None
            self._shr_conn.tls = True
            if sslobj is not None:
                self._shr_conn.tls_version = sslobj.version()
                self._shr_conn.tls_cipher = sslobj.cipher()[0]

    def connection_lost(self, error):
        self._shr_host._protocols.discard(self)
        if self._shr_conn is not None:
            self._shr_host._closed(self._shr_conn)
        super().connection_lost(error)

    async def _handle_client(self):
        greeting = self._shr_host.greeting
        if greeting is not None:
            # Any scripted greeting: say it and hang up (what 421/554 hosts do).
            await self.push(_reply(greeting))
            self.transport.close()
            return
        await super()._handle_client()

    async def handle_exception(self, error):
        if isinstance(error, TLSSetupException):
            cause = error.__cause__ or error
            if self._shr_conn is not None:
                self._shr_conn.tls_error = "%s: %s" % (type(cause).__name__, cause)
        else:
            self._shr_host.errors.append(error)
        return "451 4.3.0 test server error: %s" % type(error).__name__

    def _shr_abort(self):
        transport = self._original_transport or self.transport
        if transport is not None:
            transport.abort()


class _SmartHostHandler:
    """aiosmtpd handler hooks (kept apart: aiosmtpd treats every handle_*
    attribute of the handler as a hook)."""

    def __init__(self, host):
        self.host = host

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname   # the 5-argument hook must do this itself
        if server._shr_conn is not None:
            server._shr_conn.ehlo = hostname
        if self.host.auth is None:
            responses = [r for r in responses if not r.startswith("250-AUTH")]
        if self.host.pipelining:
            # aiosmtpd serves commands strictly in order, so pipelined
            # batches work; 1.4.3 just never says so.
            responses.insert(1, "250-PIPELINING")
        return responses

    async def handle_HELO(self, server, session, envelope, hostname):
        session.host_name = hostname
        if server._shr_conn is not None:
            server._shr_conn.ehlo = hostname
        return "250 %s" % server.hostname

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.host.reply_mail is not None:
            return _reply(self.host.reply_mail)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        envelope.shr_mail = True
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        scripted = self.host.reply_rcpt or {}
        for key, value in scripted.items():
            if key == "*" or key.lower() == address.lower():
                return _reply(value)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        conn = server._shr_conn
        sslobj = session.ssl.get("ssl_object") if session.ssl else None
        msg = Message(
            mail_from=envelope.mail_from, rcpt_tos=list(envelope.rcpt_tos),
            # original_content: the bytes after dot-unstuffing, never decoded
            # (content is the same bytes only because decode_data=False).
            data=bytes(envelope.original_content),
            mail_options=list(envelope.mail_options), rcpt_options=list(envelope.rcpt_options),
            ehlo=session.host_name, esmtp=bool(session.extended_smtp),
            tls=sslobj is not None,
            tls_version=sslobj.version() if sslobj else None,
            tls_cipher=sslobj.cipher()[0] if sslobj else None,
            auth=session.auth_data if session.authenticated else None,
            auth_mechanism=getattr(session, "shr_auth_mechanism", None) if session.authenticated else None,
            peer=tuple(session.peer[:2]), connection=server._shr_index)
        failure = self.host._next_data_reply()
        if failure is not None:
            msg.reply = _reply(failure)
            self.host._record(msg, accepted=False)
            return msg.reply
        with self.host._cond:
            n = len(self.host.messages) + 1
        msg.reply = "250 2.0.0 OK queued as %d" % n
        if conn is not None:
            conn.messages += 1
        self.host._record(msg)
        return msg.reply


class _Controller(Controller):
    """aiosmtpd's Controller on a socket bound before start (no port race),
    with a bounded stop that closes every connection."""

    def __init__(self, shr_host, handler, sock, **kwargs):
        self._shr_host = shr_host
        self._shr_sock = sock
        super().__init__(handler, hostname=sock.getsockname()[0], port=sock.getsockname()[1],
                         ready_timeout=START_TIMEOUT, **kwargs)

    def factory(self):
        return _SmtpProtocol(self._shr_host, self.handler, **self.SMTP_kwargs)

    def _create_server(self):
        return self.loop.create_server(self._factory_invoker, sock=self._shr_sock)

    async def _shr_shutdown(self):
        if self.server is not None:
            self.server.close()
        for proto in list(self._shr_host._protocols):
            proto._shr_abort()
        me = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not me]
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=STOP_TIMEOUT / 2)
        for _ in range(3):      # let connection_lost callbacks close sockets
            await asyncio.sleep(0)

    def stop(self, no_assert=True):
        if self._thread is None:
            return
        try:
            if self.loop.is_running():
                fut = asyncio.run_coroutine_threadsafe(self._shr_shutdown(), self.loop)
                try:
                    fut.result(STOP_TIMEOUT)
                except Exception:
                    pass
                self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(STOP_TIMEOUT)
            if self._thread.is_alive():
                raise PeerError("%r: SMTP thread did not stop within %ss"
                                % (self._shr_host, STOP_TIMEOUT))
        finally:
            self._thread = None
            self._cleanup()


class SmartHost(_Recorder, _Peer):
    """A real SMTP server (aiosmtpd) on 127.0.0.1:port (or address:port).

    tls             offer STARTTLS with a certificate from `pki`
    cert            "good" | "wrong-name" | "self-signed" | "expired" (TestPKI.pair)
    pki             a TestPKI (default: TestPKI.shared()); the appliance must
                    trust pki.ca_pem
    auth            None (no AUTH advertised) or ("user", "pass")
    require_auth    530 to MAIL/RCPT/DATA until authenticated
    auth_require_tls  AUTH only after STARTTLS (default; 538 before it)
    auth_mechanisms the mechanisms offered, from ("PLAIN", "LOGIN")
    require_tls     530 to everything but EHLO/STARTTLS/NOOP/QUIT before TLS
    pipelining      advertise PIPELINING (default; commands are served in order)
    hostname        in the greeting and EHLO reply; the certificate's name
    greeting        None (220) or (code, text): say it and close
    reply_mail      None or (code, text) for every MAIL
    reply_rcpt      {"addr" or "*": (code, text)}: scripted RCPT replies
                    (addresses compared case-insensitively)
    reply_data      None, (code, text) for every DATA, or a list used one
                    per transaction (None items accept; accepts once used up)
    tls_context     an ssl.SSLContext to use instead of pki/cert
    address         where it listens (default 127.0.0.1; sim.host_addr on the tap wire)
    smtp_options    passed to aiosmtpd.smtp.SMTP (data_size_limit, ...)

    greeting, reply_mail, reply_rcpt and reply_data are read at every
    command and may be changed while running.

    Records: .messages (accepted Message), .rejected (Message that got a
    scripted DATA failure), .connections (Connection), .auth_attempts
    [(mechanism, login, ok)], .errors (exceptions in the handler: a bug).
    """

    def __init__(self, tls=True, auth=None, require_auth=False, cert="good",
                 hostname="mail.test", pki=None, auth_require_tls=True,
                 auth_mechanisms=("PLAIN", "LOGIN"), require_tls=False, pipelining=True,
                 greeting=None,
                 reply_mail=None, reply_rcpt=None, reply_data=None, tls_context=None,
                 address=LOOPBACK, **smtp_options):
        self._init_records()
        self.address = address
        self.tls = tls
        self.auth = tuple(auth) if auth is not None else None
        self.require_auth = require_auth
        self.cert = cert
        self.hostname = hostname
        self.pki = pki
        self.auth_require_tls = auth_require_tls
        self.auth_mechanisms = tuple(m.upper() for m in auth_mechanisms)
        self.require_tls = require_tls
        self.pipelining = pipelining
        self.greeting = greeting
        self.reply_mail = reply_mail
        self.reply_rcpt = reply_rcpt
        self.reply_data = reply_data
        self.tls_context = tls_context
        self.smtp_options = smtp_options
        self.auth_attempts = []
        self.errors = []
        self.port = None
        self._protocols = set()
        self._controller = None
        self._data_replies = 0

    @property
    def ca_pem(self):
        return self.pki.ca_pem if self.pki is not None else None

    def _next_data_reply(self):
        script = self.reply_data
        if script is None:
            return None
        if isinstance(script, tuple):
            return script
        with self._cond:
            i = self._data_replies
            self._data_replies += 1
        return script[i] if i < len(script) else None

    def _authenticator(self, server, session, envelope, mechanism, auth_data):
        login = auth_data.login.decode("utf-8", "replace")
        password = auth_data.password.decode("utf-8", "replace")
        ok = self.auth is not None and (login, password) == self.auth
        self.auth_attempts.append((mechanism, login, ok))
        if not ok:
            # handled=False makes aiosmtpd send 535; the default (handled=True)
            # would send nothing at all and leave the client waiting.
            return AuthResult(success=False, handled=False)
        session.shr_auth_mechanism = mechanism
        if server._shr_conn is not None:
            server._shr_conn.auth = login
            server._shr_conn.auth_mechanism = mechanism
        return AuthResult(success=True, auth_data=login)

    def start(self):
        kwargs = dict(server_hostname=self.hostname, authenticator=self._authenticator,
                      auth_require_tls=self.auth_require_tls,
                      auth_exclude_mechanism=[m for m in ("PLAIN", "LOGIN")
                                              if self.auth is None or m not in self.auth_mechanisms])
        if self.tls:
            ctx = self.tls_context
            if ctx is None:
                if self.pki is None:
                    self.pki = TestPKI.shared()
                ctx = self.pki.server_context(self.cert, self.hostname)
            kwargs["tls_context"] = ctx
            kwargs["require_starttls"] = self.require_tls
        kwargs.update(self.smtp_options)
        sock = socket.socket()
        try:
            sock.bind((self.address, 0))
            sock.listen(128)
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        self._controller = _Controller(self, _SmartHostHandler(self), sock, **kwargs)
        try:
            self._controller.start()
        except BaseException:
            sock.close()
            raise
        # Forget the connection aiosmtpd's start() makes to itself.
        self.clear()

    def stop(self):
        if self._controller is not None:
            try:
                self._controller.stop()
            finally:
                self._controller = None


# --- plain TCP peers -------------------------------------------------------

class _TcpServer(_Peer):
    """A listening socket on 127.0.0.1, an accept thread and one daemon
    thread per connection (handle(conn, addr)); stop() closes everything."""

    backlog = 128

    def __init__(self):
        self.port = None
        self.accepted = 0
        self._sock = None
        self._wake_r = self._wake_w = None
        self._thread = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._conns = set()
        self._workers = set()

    def start(self):
        self._sock = socket.socket()
        self._sock.bind((LOOPBACK, 0))
        self._sock.listen(self.backlog)
        self.port = self._sock.getsockname()[1]
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True,
                                        name="%s-accept" % type(self).__name__)
        self._thread.start()

    def _accept_loop(self):
        while not self._stopping.is_set():
            try:
                ready = select.select([self._sock, self._wake_r], [], [])[0]
            except (OSError, ValueError):
                return
            if self._wake_r in ready or self._stopping.is_set():
                return
            try:
                conn, addr = self._sock.accept()
            except OSError:
                continue
            with self._lock:
                self.accepted += 1
            if self.on_accept(conn, addr):
                continue
            with self._lock:
                self._conns.add(conn)
            t = threading.Thread(target=self._run_handler, args=(conn, addr), daemon=True,
                                 name="%s-conn" % type(self).__name__)
            with self._lock:
                self._workers.add(t)
            t.start()

    def on_accept(self, conn, addr):
        """Called in the accept thread; return True if conn was dealt with."""
        return False

    def _run_handler(self, conn, addr):
        try:
            conn.settimeout(30)
            self.handle(conn, addr)
        except (OSError, ValueError):
            pass
        finally:
            with self._lock:
                self._conns.discard(conn)
                self._workers.discard(threading.current_thread())
            conn.close()

    def handle(self, conn, addr):
        raise NotImplementedError

    def stop(self):
        self._stopping.set()
        if self._wake_w is not None:
            try:
                self._wake_w.send(b"x")
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT)
        with self._lock:
            conns, workers = list(self._conns), list(self._workers)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + STOP_TIMEOUT
        for t in workers:
            t.join(max(0.0, deadline - time.monotonic()))
        alive = [t for t in workers if t.is_alive()]
        for s in (self._sock, self._wake_r, self._wake_w):
            if s is not None:
                s.close()
        self._sock = self._wake_r = self._wake_w = None
        thread, self._thread = self._thread, None
        if (thread is not None and thread.is_alive()) or alive:
            raise PeerError("%r: threads did not stop within %ss" % (self, STOP_TIMEOUT))

    def __repr__(self):
        return "%s(127.0.0.1:%s)" % (type(self).__name__, self.port)


def _rst_close(sock):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class ResetServer(_TcpServer):
    """Accepts every TCP connection and resets it at once (SO_LINGER 0
    close: RST, no greeting). `.accepted` counts them."""

    def on_accept(self, conn, addr):
        _rst_close(conn)
        return True


class Forwarder(_TcpServer):
    """Forwards each connection to 127.0.0.1:`target`, byte for byte, both
    ways. While `reset_next` is above 0, each new connection is reset at
    once instead (and counted in `.resets`): what a peer that still holds
    an earlier connection may do to a new one."""

    def __init__(self, target):
        super().__init__()
        self.target = target
        self.reset_next = 0
        self.resets = 0

    def on_accept(self, conn, addr):
        with self._lock:
            if self.reset_next <= 0:
                return False
            self.reset_next -= 1
            self.resets += 1
        _rst_close(conn)
        return True

    def handle(self, conn, addr):
        with socket.create_connection((LOOPBACK, self.target), timeout=START_TIMEOUT) as up:
            conn.settimeout(None)
            up.settimeout(None)
            socks = [conn, up]
            while not self._stopping.is_set():
                ready = select.select(socks, [], [], 0.5)[0]
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    (up if s is conn else conn).sendall(data)


class SilentServer(_TcpServer):
    """Accepts connections and never sends a byte (reads and discards
    whatever comes) until the client or stop() closes them."""

    def handle(self, conn, addr):
        conn.settimeout(None)
        while conn.recv(4096):
            pass


class ClosedPort(_Peer):
    """A port on 127.0.0.1 where nothing listens: connections are refused.
    The port stays reserved (bound, not listening) until stop()."""

    def __init__(self):
        self.port = None
        self._sock = None

    def start(self):
        self._sock = socket.socket()
        self._sock.bind((LOOPBACK, 0))
        self.port = self._sock.getsockname()[1]

    def stop(self):
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __repr__(self):
        return "ClosedPort(127.0.0.1:%s)" % self.port


class TlsBrokenHost(_Recorder, _TcpServer):
    """An SMTP server whose STARTTLS never works: it advertises STARTTLS,
    answers "220 2.0.0 Ready to start TLS", then breaks the handshake. A
    session that does not use STARTTLS delivers mail normally and is
    recorded like SmartHost's (.messages, .connections, .wait_for).

    mode, after the client's first TLS record (its ClientHello):
      "garbage"  send a line of plain text, then close (default)
      "close"    close without a word (EOF in the handshake)
      "reset"    reset the connection (RST)
      "alert"    send a TLS fatal handshake_failure alert, then close
      "hang"     say nothing until the client gives up (or stop())
    `.starttls` counts STARTTLS commands answered; `.client_hellos` counts
    those after which a TLS record (0x16) arrived.
    """

    GARBAGE = b"this is not TLS: the test server breaks every handshake\r\n"
    ALERT = b"\x15\x03\x03\x00\x02\x02\x28"   # fatal handshake_failure

    def __init__(self, mode="garbage", hostname="broken.test"):
        if mode not in ("garbage", "close", "reset", "alert", "hang"):
            raise ValueError("bad mode %r" % mode)
        _TcpServer.__init__(self)
        self._init_records()
        self.mode = mode
        self.hostname = hostname
        self.starttls = 0
        self.client_hellos = 0

    __repr__ = _TcpServer.__repr__

    def handle(self, sock, addr):
        conn, index = self._new_connection(addr)
        try:
            self._session(sock, conn, index, addr)
        finally:
            self._closed(conn)

    def _session(self, sock, conn, index, addr):
        rfile = sock.makefile("rb")
        try:
            def send(*lines):
                sock.sendall(b"".join(l.encode() + b"\r\n" for l in lines))

            send("220 %s ESMTP TlsBrokenHost" % self.hostname)
            mail_from, rcpts, mail_opts, rcpt_opts = None, [], [], []
            while True:
                line = rfile.readline(4096)
                if not line:
                    return
                text = line.rstrip(b"\r\n").decode("utf-8", "surrogateescape")
                verb, _, arg = text.partition(" ")
                verb, arg = verb.upper(), arg.strip()
                conn.commands.append((verb + " " + arg).rstrip())
                if verb in ("EHLO", "HELO"):
                    if not arg:
                        send("501 5.5.4 Syntax: %s hostname" % verb)
                        continue
                    conn.ehlo, esmtp = arg, verb == "EHLO"
                    mail_from, rcpts, mail_opts, rcpt_opts = None, [], [], []
                    if esmtp:
                        send("250-%s" % self.hostname, "250-PIPELINING", "250-8BITMIME",
                             "250-SIZE 33554432",
                             "250-STARTTLS", "250 HELP")
                    else:
                        send("250 %s" % self.hostname)
                elif verb == "STARTTLS":
                    with self._cond:
                        self.starttls += 1
                    send("220 2.0.0 Ready to start TLS")
                    self._break(sock, rfile, conn)
                    return
                elif verb == "MAIL":
                    if conn.ehlo is None:
                        send("503 5.5.1 Error: send HELO/EHLO first")
                    elif not arg.upper().startswith("FROM:"):
                        send("501 5.5.4 Syntax: MAIL FROM:<address>")
                    else:
                        mail_from, params = _split_path(arg[5:])
                        mail_opts, rcpts, rcpt_opts = params, [], []
                        send("250 2.1.0 OK")
                elif verb == "RCPT":
                    if mail_from is None:
                        send("503 5.5.1 Error: need MAIL command")
                    elif not arg.upper().startswith("TO:"):
                        send("501 5.5.4 Syntax: RCPT TO:<address>")
                    else:
                        addr_, params = _split_path(arg[3:])
                        rcpts.append(addr_)
                        rcpt_opts.extend(params)
                        send("250 2.1.5 OK")
                elif verb == "DATA":
                    if not rcpts:
                        send("503 5.5.1 Error: need RCPT command")
                        continue
                    send("354 End data with <CR><LF>.<CR><LF>")
                    chunks = []
                    while True:
                        dline = rfile.readline(1 << 20)
                        if not dline:
                            return
                        if dline == b".\r\n":
                            break
                        chunks.append(dline[1:] if dline.startswith(b".") else dline)
                    with self._cond:
                        n = len(self.messages) + 1
                    reply = "250 2.0.0 OK queued as %d" % n
                    conn.messages += 1
                    self._record(Message(
                        mail_from=mail_from, rcpt_tos=rcpts, data=b"".join(chunks),
                        mail_options=mail_opts, rcpt_options=rcpt_opts, ehlo=conn.ehlo,
                        esmtp=esmtp, tls=False, tls_version=None, tls_cipher=None, auth=None,
                        auth_mechanism=None, peer=tuple(addr[:2]), connection=index,
                        reply=reply))
                    mail_from, rcpts, mail_opts, rcpt_opts = None, [], [], []
                    send(reply)
                elif verb == "RSET":
                    mail_from, rcpts, mail_opts, rcpt_opts = None, [], [], []
                    send("250 2.0.0 OK")
                elif verb == "NOOP":
                    send("250 2.0.0 OK")
                elif verb == "QUIT":
                    send("221 2.0.0 Bye")
                    return
                else:
                    send("502 5.5.2 Error: command not recognized")
        finally:
            rfile.close()

    def _break(self, sock, rfile, conn):
        # Read the client's first TLS record (normally its whole ClientHello)
        # so that closing does not turn into a reset by unread data.
        sock.settimeout(5)
        try:
            head = _read_exact(rfile, 5)
            if head and head[0] == 0x16:
                with self._cond:
                    self.client_hellos += 1
                _read_exact(rfile, struct.unpack(">H", head[3:5])[0])
        except (OSError, ValueError):
            pass
        conn.tls_error = "broken on purpose (%s)" % self.mode
        if self.mode == "reset":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return
        if self.mode == "hang":
            sock.settimeout(None)
            while rfile.read1(4096):
                pass
            return
        if self.mode == "garbage":
            sock.sendall(self.GARBAGE)
        elif self.mode == "alert":
            sock.sendall(self.ALERT)
        # Half-close and wait (bounded) for the client to hang up.
        try:
            sock.shutdown(socket.SHUT_WR)
            sock.settimeout(5)
            while rfile.read1(4096):
                pass
        except (OSError, ValueError):
            pass


def _read_exact(f, n):
    data = b""
    while len(data) < n:
        chunk = f.read1(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _split_path(text):
    """'<a@b> SIZE=10' -> ('a@b', ['SIZE=10'])."""
    text = text.strip()
    if text.startswith("<"):
        end = text.find(">")
        if end < 0:
            return text[1:], []
        return text[1:end], text[end + 1:].split()
    parts = text.split()
    return (parts[0] if parts else ""), parts[1:]


# --- Sink (Postfix smtp-sink) ----------------------------------------------

class Sink(_Peer):
    """Postfix's smtp-sink on 127.0.0.1:port (free port if None; `address`
    instead of 127.0.0.1, e.g. sim.host_addr on the tap wire): takes mail
    and throws it away, counting it. For bulk delivery tests.

    Counters come from smtp-sink -c (updated at every ".", QUIT and session
    end): .count (messages), .sessions, .quits. wait_for(n, timeout).
    dump=True also writes each message to a file (-d); .dumps() parses them
    into dicts {"helo", "mail", "rcpts", "data"} (data: bytes, LF line ends:
    smtp-sink writes lines with "\\n"). args: extra smtp-sink options, e.g.
    ["-r", "RCPT"] (4xx every RCPT) or ["-w", "2"] (slow DATA replies).
    As root it runs with -u nobody, which smtp-sink requires.
    """

    def __init__(self, port=None, hostname="sink.test", dump=False, args=(), backlog=128,
                 address=LOOPBACK):
        self.port = port
        self.address = address
        self.hostname = hostname
        self.dump = dump
        self.args = list(args)
        self.backlog = backlog
        self.count = self.sessions = self.quits = 0
        self.proc = None
        self._tmp = None
        self._cond = threading.Condition()
        self._stderr = b""
        self._readers = []

    def command_line(self):
        cmd = [SMTP_SINK, "-c", "-h", self.hostname]
        if os.geteuid() == 0:
            cmd += ["-u", "nobody"]
        if self.dump:
            cmd += ["-d", os.path.join(self.dump_dir, "%Y%m%d%H%M%S.")]
        return cmd + self.args + ["%s:%d" % (self.address, self.port), str(self.backlog)]

    @property
    def dump_dir(self):
        return os.path.join(self._tmp.name, "dump") if self._tmp else None

    def start(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="shr-sink-")
        os.chmod(self._tmp.name, 0o711)  # smtp-sink writes as nobody
        os.mkdir(self.dump_dir)
        os.chmod(self.dump_dir, 0o777)
        fixed = self.port is not None
        for attempt in range(3):
            if not fixed:
                self.port = free_port()
            if self._spawn():
                return
            if fixed or b"in use" not in self._stderr:
                break
        raise PeerError("smtp-sink did not start on %s:%s: %s"
                        % (self.address, self.port, self._stderr.decode(errors="replace").strip()))

    def _spawn(self):
        self._stderr = b""
        self.proc = subprocess.Popen(self.command_line(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     start_new_session=True)
        self._readers = [threading.Thread(target=self._read_counters, daemon=True),
                         threading.Thread(target=self._read_stderr, daemon=True)]
        for t in self._readers:
            t.start()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._reap()
                return False
            if _listening(self.port, self.address):
                return True
            time.sleep(0.02)
        self._reap()
        self._stderr += b"(not listening after %ss)" % START_TIMEOUT
        return False

    def _read_counters(self):
        out = self.proc.stdout
        buf = b""
        while True:
            chunk = out.read1(4096)
            if not chunk:
                return
            buf += chunk
            *records, buf = buf.replace(b"\n", b"\r").split(b"\r")
            for rec in records:
                fields = dict(kv.split(b"=", 1) for kv in rec.split() if b"=" in kv)
                try:
                    with self._cond:
                        self.sessions = int(fields[b"sess"])
                        self.quits = int(fields[b"quit"])
                        self.count = int(fields[b"mesg"])
                        self._cond.notify_all()
                except (KeyError, ValueError):
                    pass

    def _read_stderr(self):
        while True:
            chunk = self.proc.stderr.read1(4096)
            if not chunk:
                return
            self._stderr += chunk

    def wait_for(self, n, timeout=30):
        """Wait until smtp-sink counted at least n messages; returns the count."""
        with self._cond:
            if not self._cond.wait_for(lambda: self.count >= n, timeout):
                raise TimeoutError("%r: %d of %d messages after %ss"
                                   % (self, self.count, n, timeout))
            return self.count

    def dumps(self):
        """The dumped messages (dump=True), oldest first by file time."""
        if not self.dump:
            raise PeerError("Sink(dump=True) is needed for dumps()")
        out = []
        paths = [os.path.join(self.dump_dir, n) for n in os.listdir(self.dump_dir)]
        for path in sorted(paths, key=lambda p: (os.stat(p).st_mtime_ns, p)):
            with open(path, "rb") as f:
                raw = f.read()
            rec = {"helo": None, "mail": None, "rcpts": [], "data": b""}
            lines = raw.split(b"\n")
            i = 0
            while i < len(lines):
                line = lines[i]
                if line.startswith(b"X-Helo-Args: "):
                    rec["helo"] = line[13:].decode(errors="replace")
                elif line.startswith(b"X-Mail-Args: "):
                    rec["mail"] = line[13:].decode(errors="replace")
                elif line.startswith(b"X-Rcpt-Args: "):
                    rec["rcpts"].append(line[13:].decode(errors="replace"))
                elif line.startswith(b"Received: "):
                    i += 3      # the three-line Received: header ends smtp-sink's part
                    break
                i += 1
            body = b"\n".join(lines[i:])
            rec["data"] = body[:-1] if body.endswith(b"\n\n") else body  # the added empty line
            out.append(rec)
        return out

    def _reap(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(STOP_TIMEOUT)
        for t in self._readers:
            t.join(STOP_TIMEOUT)
        self._readers = []
        self.proc.stdout.close()
        self.proc.stderr.close()
        self.proc = None

    def stop(self):
        try:
            self._reap()
        finally:
            if self._tmp is not None:
                self._tmp.cleanup()
                self._tmp = None

    def __repr__(self):
        return "Sink(%s:%s)" % (self.address, self.port)


# --- Dns (dnsmasq) ---------------------------------------------------------

QTYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28}


def _encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode("idna" if not label.isascii() else "ascii")
    return out + b"\0"


def _decode_name(msg, off):
    labels, jumped, end = [], False, None
    for _ in range(128):
        n = msg[off]
        if n & 0xC0 == 0xC0:
            if not jumped:
                end = off + 2
            off = ((n & 0x3F) << 8) | msg[off + 1]
            jumped = True
            continue
        off += 1
        if n == 0:
            break
        labels.append(msg[off:off + n].decode("ascii", "replace"))
        off += n
    return ".".join(labels), (end if jumped else off)


def dns_query(name, qtype="A", server=(LOOPBACK, 53), timeout=2.0):
    """One DNS query over UDP with a hand-built packet.
    Returns (rcode, answers): answers are (type, value) with value an address
    for A/AAAA, (preference, host) for MX, a name for CNAME/NS/PTR, else bytes.
    Raises socket.timeout if nothing answers."""
    qt = QTYPES[qtype] if isinstance(qtype, str) else qtype
    qid = random.randrange(1 << 16)
    packet = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + _encode_name(name) \
        + struct.pack(">HH", qt, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(packet, server)
        deadline = time.monotonic() + timeout
        while True:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            resp = s.recv(4096)
            if len(resp) >= 12 and struct.unpack(">H", resp[:2])[0] == qid:
                break
    _, flags, qd, an, _, _ = struct.unpack(">HHHHHH", resp[:12])
    off = 12
    for _ in range(qd):
        off = _decode_name(resp, off)[1] + 4
    names = {v: k for k, v in QTYPES.items()}
    answers = []
    for _ in range(an):
        _, off = _decode_name(resp, off)
        rtype, _, _, rdlen = struct.unpack(">HHIH", resp[off:off + 10])
        off += 10
        rdata = resp[off:off + rdlen]
        if rtype == 1:
            value = socket.inet_ntop(socket.AF_INET, rdata)
        elif rtype == 28:
            value = socket.inet_ntop(socket.AF_INET6, rdata)
        elif rtype == 15:
            value = (struct.unpack(">H", rdata[:2])[0], _decode_name(resp, off + 2)[0])
        elif rtype in (2, 5, 12):
            value = _decode_name(resp, off)[0]
        else:
            value = rdata
        answers.append((names.get(rtype, rtype), value))
        off += rdlen
    return flags & 0xF, answers


class Dns(_Peer):
    """dnsmasq answering on 127.0.0.1:53 (UDP and TCP) from fixed records
    only; every other name is NXDOMAIN, AAAA of a known name is empty.

    records  {"mail.test": "10.0.2.2"} or {"name": ["ip", "ip"]}: A records
    mx       {"example.test": [(10, "mail.test"), ...]}: MX records
    cname    {"alias.test": "mail.test"}
    .queries  [(qtype, name, client)] as dnsmasq logged them
    .resolve(name, qtype) -> (rcode, answers), see dns_query()

    Port 53 is one per host: a ctest test using Dns must hold
    RESOURCE_LOCK "dns53". If 127.0.0.1:53 is taken, start() raises
    DnsPortBusy. Needs root (port 53; dnsmasq runs with --user=root).
    """

    RESOURCE_LOCK = "dns53"

    def __init__(self, records=None, mx=None, cname=None, port=53, address=LOOPBACK,
                 extra_args=()):
        self.records = dict(records or {})
        self.mx = dict(mx or {})
        self.cname = dict(cname or {})
        self.port = port
        self.address = address
        self.extra_args = list(extra_args)
        self.queries = []
        self.log = []
        self.proc = None
        self._tmp = None
        self._reader = None
        self._lock = threading.Lock()

    def command_line(self):
        cmd = [DNSMASQ, "--keep-in-foreground", "--conf-file=/dev/null", "--no-hosts",
               "--no-resolv", "--no-poll", "--bind-interfaces",
               "--listen-address=%s" % self.address, "--port=%d" % self.port,
               "--local=/#/",            # no upstream: unknown names are NXDOMAIN
               "--log-queries", "--log-facility=-",
               "--pid-file=%s" % os.path.join(self._tmp.name, "dnsmasq.pid")]
        if os.geteuid() == 0:
            cmd += ["--user=root", "--group=root"]
        for name, ips in self.records.items():
            for ip in ([ips] if isinstance(ips, str) else ips):
                cmd.append("--host-record=%s,%s" % (name, ip))
        for name, hosts in self.mx.items():
            for pref, host in hosts:
                cmd.append("--mx-host=%s,%s,%d" % (name, host, pref))
        for alias, target in self.cname.items():
            cmd.append("--cname=%s,%s" % (alias, target))
        return cmd + self.extra_args

    def _check_port(self):
        for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            with socket.socket(socket.AF_INET, kind) as s:
                if kind == socket.SOCK_STREAM:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind((self.address, self.port))
                except OSError as e:
                    if e.errno == errno.EADDRINUSE:
                        raise DnsPortBusy(
                            "%s:%d (%s) is already in use: another Dns running without "
                            "ctest RESOURCE_LOCK %r, or a system DNS service"
                            % (self.address, self.port,
                               "udp" if kind == socket.SOCK_DGRAM else "tcp",
                               self.RESOURCE_LOCK)) from None
                    if e.errno == errno.EACCES:
                        raise PeerError("Dns needs root to bind %s:%d" % (self.address, self.port)) from None
                    raise

    def start(self):
        self._check_port()
        self._tmp = tempfile.TemporaryDirectory(prefix="shr-dns-")
        self.proc = subprocess.Popen(self.command_line(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self._reader = threading.Thread(target=self._read_log, daemon=True)
        self._reader.start()
        probe = next(iter(self.records), "probe.invalid")
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                self._reader.join(STOP_TIMEOUT)
                text = "\n".join(self.log)
                if "in use" in text:
                    raise DnsPortBusy("dnsmasq could not bind %s:%d (in use; RESOURCE_LOCK %r?):\n%s"
                                      % (self.address, self.port, self.RESOURCE_LOCK, text))
                raise PeerError("dnsmasq exited (rc=%s):\n%s" % (self.proc.returncode, text))
            try:
                dns_query(probe, "A", (self.address, self.port), timeout=0.2)
                break
            except (socket.timeout, ConnectionRefusedError):
                if time.monotonic() > deadline:
                    raise PeerError("dnsmasq did not answer within %ss:\n%s"
                                    % (START_TIMEOUT, "\n".join(self.log)))
        with self._lock:
            self.queries.clear()    # forget the probe

    def _read_log(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._lock:
                self.log.append(line)
                # "dnsmasq[123]: query[A] mail.test from 127.0.0.1"
                _, _, rest = line.partition(": ")
                if rest.startswith("query["):
                    qtype, _, tail = rest[6:].partition("] ")
                    parts = tail.split(" ")
                    if len(parts) >= 3 and parts[1] == "from":
                        self.queries.append((qtype, parts[0], parts[2]))

    def resolve(self, name, qtype="A", timeout=2.0):
        return dns_query(name, qtype, (self.address, self.port), timeout)

    def stop(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(STOP_TIMEOUT)
            if self._reader is not None:
                self._reader.join(STOP_TIMEOUT)
                self._reader = None
            self.proc.stdout.close()
            self.proc = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __repr__(self):
        return "Dns(%s:%s)" % (self.address, self.port)


class SmtpLoad:
    """A client sending messages to the appliance one after another on one
    session until stopped (or `limit` messages), noting when each was
    accepted: tests check that SMTP keeps flowing while the console is busy
    (a password hash, a long output). Use as a context manager."""

    def __init__(self, port, sender="load@sender.example", rcpt="b@example.com", limit=100000):
        self.port = port
        self.sender = sender
        self.rcpt = rcpt
        self.limit = limit
        self.done = []  # (start, end) monotonic times per accepted message
        self.errors = []
        self.started = threading.Event()  # set at the first accepted message, or on failure
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(30)

    def _message(self, n):
        return ("From: %s\r\nTo: %s\r\nSubject: load %d\r\n\r\nbody %d\r\n"
                % (self.sender, self.rcpt, n, n))

    def _run(self):
        try:
            with smtplib.SMTP(LOOPBACK, self.port, timeout=20) as c:
                for n in range(self.limit):
                    if self._stop.is_set():
                        break
                    t = time.monotonic()
                    refused = c.sendmail(self.sender, [self.rcpt], self._message(n))
                    if refused:
                        self.errors.append("refused: %r" % refused)
                    else:
                        self.done.append((t, time.monotonic()))
                        self.started.set()
        except Exception as e:  # reported by the test
            self.errors.append(repr(e))
        finally:
            self.started.set()  # a test waits on it: never leave it hanging

    def within(self, start, end):
        """(start, end) of the messages sent wholly between two times."""
        return [(t0, t1) for (t0, t1) in self.done if start <= t0 and t1 <= end]

    def ended_between(self, start, end):
        """Seconds each message took, for those accepted between two times."""
        return [t1 - t0 for (t0, t1) in self.done if start <= t1 <= end]
