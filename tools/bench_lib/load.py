"""The client and the sink every system gets: Postfix's smtp-source and
smtp-sink, a single-session smtplib client for latency, and the check that
every message reached the sink exactly once.

Messages are told apart by recipient: smtp-source -N prepends a sequence
number (1..M) to the recipient's local part, and every phase uses its own
tag, so the sink must hold exactly {"<i><tag>@example.com" : 1 <= i <= M},
each once. The latency client numbers its recipients the same way.
"""
import collections
import os
import re
import smtplib
import socket
import ssl
import stat
import subprocess
import sys
import tempfile
import threading
import time

SMTP_SOURCE = "/usr/sbin/smtp-source"
SMTP_SINK = "/usr/sbin/smtp-sink"
OPENSSL = "/usr/bin/openssl"
SETPRIV = "/usr/bin/setpriv"
LOOPBACK = "127.0.0.1"
DOMAIN = "example.com"
SENDER = "bench-sender@client.bench.test"
CLIENT_NAME = "client.bench.test"


class BenchError(Exception):
    pass


def free_port(address=LOOPBACK):
    """A TCP port on `address` nothing listens on right now."""
    with socket.socket() as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def wait_listening(port, timeout, proc=None, address=LOOPBACK):
    """Wait until address:port accepts a connection; False on timeout or
    when proc exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection((address, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def orphan_guard(argv):
    """argv wrapped so the child gets SIGTERM if this tool dies without
    cleaning up (even SIGKILL). The signal fires when the *thread* that
    started the child ends: start children from the main thread only. A
    child that changes its uid itself (smtp-sink -u) would lose it."""
    return [SETPRIV, "--pdeathsig", "TERM", "--"] + list(argv)


_REAPER_CODE = r"""
import os, signal, sys
procs = {}
for line in sys.stdin:
    op, _, rest = line.strip().partition(" ")
    if op == "+":
        pid, _, marker = rest.partition(" ")
        procs[int(pid)] = marker.encode()
    elif op == "-":
        procs.pop(int(rest), None)
for pid, marker in procs.items():
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            if marker in f.read():
                os.kill(pid, signal.SIGTERM)
    except OSError:
        pass
"""


class Reaper:
    """A watchdog for children that drop the parent-death signal (Postfix's
    master changes its effective uid, which clears it): a small process
    reading "+ PID MARKER" / "- PID" lines from a pipe. When the pipe
    closes -- this tool exited, however it died -- it sends SIGTERM to each
    PID still registered whose command line still holds MARKER (never a
    recycled PID)."""

    _instance = None

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", _REAPER_CODE],
                                     stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     start_new_session=True, text=True)

    @classmethod
    def get(cls):
        if cls._instance is None or cls._instance.proc.poll() is not None:
            cls._instance = cls()
        return cls._instance

    def _send(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def watch(self, pid, marker):
        self._send("+ %d %s" % (pid, marker))

    def forget(self, pid):
        self._send("- %d" % pid)

    @classmethod
    def close(cls):
        """At a normal end: nothing registered is killed."""
        if cls._instance is not None:
            cls._instance.proc.stdin.close()
            cls._instance.proc.wait(5)
            cls._instance = None


def recipient(i, tag):
    return "%d%s@%s" % (i, tag, DOMAIN)


def expected_recipients(tag, count):
    return [recipient(i, tag) for i in range(1, count + 1)]


def check_exact(expected, received):
    """Compare the recipients the sink got with those sent."""
    want = set(expected)
    got = collections.Counter(received)
    missing = sorted(want - set(got))
    duplicates = sorted(r for r, n in got.items() if n > 1 and r in want)
    unexpected = sorted(r for r in got if r not in want)
    return {
        "sent": len(expected),
        "received": sum(got.values()),
        "missing": len(missing),
        "duplicated": len(duplicates),
        "unexpected": len(unexpected),
        "exact": not missing and not duplicates and not unexpected,
        "examples": (missing[:3] + duplicates[:3] + unexpected[:3]),
    }


class Sink:
    """smtp-sink on address:port (default 127.0.0.1), every transaction
    appended to one dump file (-D), running counters (-c) read from stdout.
    Stop and start it again on the same port for the next phase (a fresh
    dump each time). Two sinks in one workdir need distinct names (their
    dump directories).

    Counting X-Rcpt-Args lines of the dump is exact even though sessions
    append concurrently: each transaction's smtp-sink headers are written
    in its first write, so a header line is never split."""

    def __init__(self, port, workdir, hostname="sink.bench.test", address=LOOPBACK,
                 name="sink"):
        self.port = port
        self.address = address
        self.hostname = hostname
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir, exist_ok=True)
        os.chmod(self.dir, 0o777)   # smtp-sink writes as nobody
        self.generation = 0
        self.proc = None
        self.dump = None
        self.count = 0
        self._cond = threading.Condition()
        self._stderr = b""
        self._readers = []

    def command_line(self):
        cmd = [SMTP_SINK, "-c", "-h", self.hostname, "-D", self.dump,
               "%s:%d" % (self.address, self.port), "256"]
        if os.geteuid() == 0:
            # smtp-sink will not run as root. Becoming nobody before the
            # exec (rather than smtp-sink -u) keeps the parent-death signal.
            return [SETPRIV, "--reuid", "nobody", "--regid", "nogroup", "--clear-groups",
                    "--pdeathsig", "TERM", "--"] + cmd
        return orphan_guard(cmd)

    def start(self, timeout=10):
        self.generation += 1
        self.dump = os.path.join(self.dir, "dump-%d" % self.generation)
        self.count = 0
        deadline = time.monotonic() + timeout
        while True:
            self._stderr = b""
            self.proc = subprocess.Popen(self.command_line(), stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            self._readers = [threading.Thread(target=self._read_counters, daemon=True),
                             threading.Thread(target=self._read_stderr, daemon=True)]
            for t in self._readers:
                t.start()
            if wait_listening(self.port, max(0.5, deadline - time.monotonic()), self.proc,
                              self.address):
                return
            self._reap()
            if time.monotonic() > deadline:
                raise BenchError("smtp-sink did not start on %s:%d: %s"
                                 % (self.address, self.port,
                                    self._stderr.decode(errors="replace").strip()))
            time.sleep(0.2)     # port still held (TIME_WAIT without reuse): try again

    def _read_counters(self):
        buf = b""
        while True:
            chunk = self.proc.stdout.read1(4096)
            if not chunk:
                return
            buf += chunk
            *records, buf = buf.replace(b"\n", b"\r").split(b"\r")
            for rec in records:
                m = re.search(rb"mesg=(\d+)", rec)
                if m:
                    with self._cond:
                        self.count = int(m.group(1))
                        self._cond.notify_all()

    def _read_stderr(self):
        while True:
            chunk = self.proc.stderr.read1(4096)
            if not chunk:
                return
            self._stderr += chunk

    def wait_for(self, n, timeout):
        """Wait until the sink counted n messages; returns whether it did."""
        with self._cond:
            return self._cond.wait_for(lambda: self.count >= n, timeout)

    def _reap(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for t in self._readers:
            t.join(5)
        self.proc.stdout.close()
        self.proc.stderr.close()
        self.proc = None

    def stop(self):
        self._reap()

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def received(self):
        """Recipients of every transaction in this generation's dump."""
        try:
            with open(self.dump, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return []
        return [m.decode("ascii", "replace")
                for m in re.findall(rb"^X-Rcpt-Args: <([^>]*)>", data, re.M)]

    def discard_dump(self):
        if self.dump and os.path.exists(self.dump):
            os.unlink(self.dump)

    def __repr__(self):
        return "Sink(%s:%d)" % (self.address, self.port)


def run_source(addr, messages, sessions, size, tag, timeout):
    """smtp-source to addr = (host, port): `messages` messages of `size`
    body bytes over `sessions` parallel sessions, each session reusing its
    connection (-d). Returns seconds until it exited; raises BenchError if
    it failed."""
    cmd = [SMTP_SOURCE, "-4", "-d", "-N", "-s", str(sessions), "-m", str(messages),
           "-l", str(size), "-M", CLIENT_NAME, "-f", SENDER, "-t", "%s@%s" % (tag, DOMAIN),
           "%s:%d" % tuple(addr)]
    t0 = time.monotonic()
    proc = subprocess.Popen(orphan_guard(cmd), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise BenchError("smtp-source did not finish %d messages within %ss" % (messages, timeout))
    elapsed = time.monotonic() - t0
    if proc.returncode != 0:
        raise BenchError("smtp-source failed (rc=%d): %s"
                         % (proc.returncode, (out + err).decode(errors="replace").strip()[-500:]))
    return elapsed


def make_message(i, tag, size):
    rcpt = recipient(i, tag)
    head = ("From: <%s>\r\nTo: <%s>\r\nSubject: bench %s %d\r\n"
            "Message-ID: <%d.%s@client.bench.test>\r\n\r\n" % (SENDER, rcpt, tag, i, i, tag))
    line = "X" * 76 + "\r\n"
    body = (line * (size // len(line) + 1))[:max(0, size - 2)] + "\r\n"
    return rcpt, (head + body).encode()


def _client_tls_context():
    # The systems under test present self-signed certificates: the bench
    # measures, it does not verify.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def latency_run(addr, messages, size, tag, tls=False, timeout=30):
    """One SMTP session to addr = (host, port) sending `messages` messages
    one after another; returns the seconds each MAIL..DATA transaction
    took."""
    times = []
    host, port = addr
    with smtplib.SMTP(host, port, local_hostname=CLIENT_NAME, timeout=timeout) as c:
        c.ehlo()
        if tls:
            c.starttls(context=_client_tls_context())
            c.ehlo()
        for i in range(1, messages + 1):
            rcpt, data = make_message(i, tag, size)
            t0 = time.monotonic()
            refused = c.sendmail(SENDER, [rcpt], data)
            times.append(time.monotonic() - t0)
            if refused:
                raise BenchError("latency client: %s refused: %r" % (rcpt, refused))
    return times


def percentile(values, p):
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def make_cert(workdir, name):
    """A self-signed EC P-256 certificate and key for name (test only);
    returns (cert_path, key_path)."""
    cert = os.path.join(workdir, "%s.crt.pem" % name)
    key = os.path.join(workdir, "%s.key.pem" % name)
    r = subprocess.run([OPENSSL, "req", "-x509", "-new", "-newkey", "ec",
                        "-pkeyopt", "ec_paramgen_curve:prime256v1", "-noenc",
                        "-keyout", key, "-out", cert, "-days", "30",
                        "-subj", "/O=SHR bench - TEST ONLY/CN=%s" % name,
                        "-addext", "subjectAltName=DNS:%s" % name],
                       capture_output=True, text=True, timeout=30,
                       )
    if r.returncode != 0:
        raise BenchError("openssl req failed: %s" % r.stderr.strip())
    os.chmod(key, 0o600)
    return cert, key


def workdir_root(base=None):
    """A temporary directory the postfix and nobody users can reach (its
    parents must let others search them: Postfix's daemons and smtp-sink
    do not run as root)."""
    path = tempfile.mkdtemp(prefix="shr-bench-", dir=base)
    os.chmod(path, 0o755)
    parent = os.path.dirname(path)
    while True:
        if not os.stat(parent).st_mode & stat.S_IXOTH:
            os.rmdir(path)
            raise BenchError("%s is not searchable by other users (postfix, nobody): "
                             "choose another --workdir" % parent)
        if parent == os.path.dirname(parent):
            return path
        parent = os.path.dirname(parent)
