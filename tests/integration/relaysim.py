"""Console driver for integration tests.

Starts the appliance with `tools/sim --console pty`, attaches to the printed
pty, waits for the prompt and runs commands, returning their output. Every
integration test goes through this module, so later console features
(login, JSON output) are taught to tests here, in one place.

The network is slirp (default: the appliance's port 25 at
127.0.0.1:sim.smtp_port, host loopback seen as 10.0.2.2) or, as root, the tap
wire (Sim(net="tap")): the appliance at sim.device_addr:25 and the host at
sim.host_addr, on a /24 of their own that disappears with the board;
sim.add_source_addr() gives clients more host addresses on it. sim.smtp_addr
is where clients connect in either mode.

Runs on Debian's /usr/bin/python3 with python3-pexpect.
"""
import io
import itertools
import json
import os
import re
import select
import signal
import socket
import subprocess
import tempfile
import time

import pexpect
import pexpect.fdpexpect

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("SHR_BUILD_DIR", os.path.join(REPO, "build"))
SIM = os.path.join(REPO, "tools", "sim")
PROMPT = "relay> "
# The admin password the driver sets at first boot and logs in with: a
# test credential, never a real one.
TEST_ADMIN_PASSWORD = "test-admin-password-1"
# What the console asks before a session (login.h), in the order they can
# appear: the longer first-boot prompts end in the plain one.
LOGIN_PROMPTS = ["repeat new admin password: ", "new admin password: ", "password: "]
BOOT_TIMEOUT = 10  # seconds; the appliance must reach its prompt within this
IP = "/usr/sbin/ip"
NSENTER = "/usr/bin/nsenter"
# "tap: device 10.213.7.2 host 10.213.7.1/24 hostif shrtap123 netns /proc/123/ns/net"
TAP_LINE = re.compile(r"tap: device (\S+) host (\S+)/(\d+) hostif (\S+) netns (\S+)$")
_tap_logs = itertools.count()


def log_in(child, password=TEST_ADMIN_PASSWORD, prompt=PROMPT, timeout=BOOT_TIMEOUT):
    """For a console driven without Sim (a pexpect child on `tools/sim
    --console stdio`): answer the first-boot or login questions until the
    prompt; returns what was printed before it."""
    text = ""
    while True:
        i = child.expect_exact([prompt] + LOGIN_PROMPTS, timeout=timeout)
        text += child.before
        if i == 0:
            return text
        child.send(password + "\r")


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SimError(Exception):
    pass


class Sim:
    """One simulated appliance: board process, device process, console."""

    def __init__(self, state_dir=None, smtp_port=None, console="pty", auto_login=True,
                 extra_args=(), prompt=PROMPT, net="slirp"):
        self._tmp = None
        if state_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="shr-sim-")
            state_dir = os.path.join(self._tmp.name, "state")
        self.state_dir = state_dir
        if net not in ("slirp", "tap"):
            raise ValueError("net must be 'slirp' or 'tap'")
        self.net = net
        # slirp: the forwarded port on 127.0.0.1; tap has no forward (None).
        self.smtp_port = None if net == "tap" else (smtp_port or free_port())
        # tap: what the board chose (its "tap: ..." line), set by start().
        self.device_addr = self.host_addr = self.host_if = self.netns_path = None
        self.prefix = None
        self._source_addrs = []
        self.console = console
        # Set the admin password at first boot and log in whenever asked,
        # so tests not about the login never see it.
        self.auto_login = auto_login
        self.admin_password = TEST_ADMIN_PASSWORD
        self.extra_args = list(extra_args)
        self.prompt = prompt  # "recovery> " in recovery mode
        self.proc = None
        self.con = None
        self.pty_path = None
        self.boot_text = ""
        self.transcript = io.StringIO()
        tag = self.smtp_port or "tap-%d-%d" % (os.getpid(), next(_tap_logs))
        self._log_path = os.path.join(os.path.dirname(state_dir), "board-%s.log" % tag)

    # --- lifecycle ---------------------------------------------------------

    def command_line(self):
        if self.net == "tap":
            net = ["--net", "tap"]
        else:
            net = ["--smtp-port", str(self.smtp_port)]
        return [SIM, "--state", self.state_dir] + net + ["--console", self.console] + self.extra_args

    @property
    def smtp_addr(self):
        """(host, port) where clients reach the appliance's port 25."""
        if self.net == "tap":
            return (self.device_addr, 25)
        return ("127.0.0.1", self.smtp_port)

    def env(self):
        env = dict(os.environ)
        env["SHR_SIM_NO_BUILD"] = "1"
        env["SHR_BUILD_DIR"] = BUILD
        return env

    def start(self, timeout=BOOT_TIMEOUT, wait=True):
        """Power on and wait for the first prompt; returns the boot text.
        With wait=False, returns once the console is attached (tests of the
        login read the first question themselves)."""
        os.makedirs(os.path.dirname(self.state_dir), exist_ok=True)
        self._log = open(self._log_path, "ab")
        self.proc = subprocess.Popen(self.command_line(), env=self.env(),
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self._log, start_new_session=True)
        line = self._read_stdout_line(timeout)
        m = TAP_LINE.match(line)
        if m:
            self.device_addr, self.host_addr = m.group(1), m.group(2)
            self.prefix, self.host_if, self.netns_path = int(m.group(3)), m.group(4), m.group(5)
            line = self._read_stdout_line(timeout)
        elif self.net == "tap":
            raise SimError("sim printed %r instead of its tap addresses; board log:\n%s"
                           % (line, self.board_log()))
        m = re.match(r"console: (/dev/pts/\d+)$", line)
        if not m:
            raise SimError("sim printed %r instead of the console path; board log:\n%s"
                           % (line, self.board_log()))
        self.pty_path = m.group(1)
        fd = os.open(self.pty_path, os.O_RDWR | os.O_NOCTTY)
        self.con = pexpect.fdpexpect.fdspawn(fd, encoding="utf-8", codec_errors="replace",
                                             timeout=timeout)
        # Everything the console printed, for tests that look back.
        self.con.logfile_read = self.transcript
        if not wait:
            return ""
        self.boot_text = self.wait_prompt(timeout)
        return self.boot_text

    def _read_stdout_line(self, timeout):
        deadline = time.monotonic() + timeout
        buf = b""
        while not buf.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                raise SimError("no console path from the sim within %ss; board log:\n%s"
                               % (timeout, self.board_log()))
            chunk = os.read(self.proc.stdout.fileno(), 1)
            if not chunk:
                raise SimError("sim exited (rc=%s); board log:\n%s"
                               % (self.proc.wait(), self.board_log()))
            buf += chunk
        return buf.decode().strip()

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Power off; returns the board's exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
            raise SimError("board did not power off within %ss" % timeout)
        finally:
            if self.con is not None:
                self.con.close()
                self.con = None
            self.proc.stdout.close()
            self._log.close()
            self.proc = None
        return rc

    def close(self):
        try:
            self.stop()
        finally:
            if self._tmp is not None:
                self._tmp.cleanup()
                self._tmp = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()

    # --- console -----------------------------------------------------------

    def wait_prompt(self, timeout=BOOT_TIMEOUT):
        """Wait for the prompt at the start of a line; returns everything
        printed before it (output may contain "relay> " itself, e.g. in
        "<postmaster@relay> SIZE="). With auto_login, a login or first-boot
        question on the way is answered with the test admin password."""
        if not self.auto_login:
            self.con.expect_exact("\r\n" + self.prompt, timeout=timeout)
            return (self.con.before + "\r\n").replace("\r\n", "\n")
        text = ""
        deadline = time.monotonic() + timeout
        while True:
            i = self.con.expect_exact(["\r\n" + self.prompt] + LOGIN_PROMPTS,
                                      timeout=max(0.1, deadline - time.monotonic()))
            text += self.con.before
            if i == 0:
                return (text + "\r\n").replace("\r\n", "\n")
            self.con.send(self.admin_password + "\r")

    def expect(self, pattern, timeout=BOOT_TIMEOUT):
        """Wait for a regular expression in console output; returns the match."""
        self.con.expect(pattern, timeout=timeout)
        return self.con.match

    def send(self, text):
        self.con.send(text)

    def cmd(self, line, timeout=10):
        """Run one command line; returns its output without echo or prompt."""
        self.con.send(line + "\r")
        out = self.wait_prompt(timeout)
        echo = line + "\n"
        if not out.startswith(echo):
            raise SimError("console did not echo %r; got %r" % (line, out))
        return out[len(echo):].rstrip("\n")

    def cmd_secrets(self, line, secrets, timeout=10):
        """Run a command that asks for secrets (each prompt ends in
        "password: "); answers them in order and returns the output after the
        last one. The secrets must never be echoed."""
        self.con.send(line + "\r")
        self.con.expect_exact(line + "\r\n", timeout=timeout)
        for secret in secrets:
            self.con.expect(r"password: ", timeout=timeout)
            self.con.send(secret + "\r")
        out = self.wait_prompt(timeout)
        for secret in secrets:
            if secret and secret in out:
                raise SimError("a secret was echoed: %r" % out)
        return out.strip("\n")

    def cmd_json(self, line, timeout=10):
        """Run one command line in `output json` mode (the caller switched
        it on); returns the one JSON object it printed, parsed. Anything
        else than exactly one line holding one object is an error."""
        out = self.cmd(line, timeout)
        if "\n" in out:
            raise SimError("%r printed more than one line: %r" % (line, out[:500]))
        try:
            value = json.loads(out)
        except ValueError as e:
            raise SimError("%r printed no JSON (%s): %r" % (line, e, out[:500]))
        if not isinstance(value, dict):
            raise SimError("%r printed JSON that is not an object: %r" % (line, out[:500]))
        return value

    def cmd_ok(self, line, timeout=10):
        """Run a command that must succeed; returns its output."""
        out = self.cmd(line, timeout)
        if out.startswith("error:") or "\nerror:" in out:
            raise SimError("%r failed: %s" % (line, out))
        return out

    # --- the board and device ----------------------------------------------

    def board_log(self):
        try:
            with open(self._log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def device_pid(self):
        with open(os.path.join(self.state_dir, "device.pid")) as f:
            return int(f.read())

    def wait_for(self, predicate, timeout=10, interval=0.1, what="condition"):
        """Poll `predicate` until it returns a true value; returns that value."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise SimError("timed out waiting for %s" % what)
            time.sleep(interval)

    def db_path(self):
        return os.path.join(self.state_dir, "relay.db")

    def query(self, sql, args=()):
        """Read the appliance's database directly (the test's view of the
        queue); a short-lived read-only connection next to the firmware's."""
        import sqlite3
        db = sqlite3.connect("file:%s?mode=ro" % self.db_path(), uri=True, timeout=5)
        try:
            return db.execute(sql, args).fetchall()
        finally:
            db.close()

    def queued_body(self, queue_id):
        """The stored bytes of a queued message, chunks joined."""
        rows = self.query("SELECT data FROM message_chunk WHERE message = ? ORDER BY seq",
                          (queue_id,))
        return b"".join(r[0] for r in rows)

    # --- the tap wire ---------------------------------------------------------

    def add_source_addr(self):
        """tap: one more host address on the appliance's subnet (on the
        host end of the veth, so it goes away with the board), for clients
        that must come from a distinct source; returns it."""
        if self.net != "tap":
            raise SimError("distinct source addresses need Sim(net='tap')")
        base = self.host_addr.rsplit(".", 1)[0]
        addr = "%s.%d" % (base, 10 + len(self._source_addrs))
        r = subprocess.run([IP, "addr", "add", "%s/%d" % (addr, self.prefix), "dev", self.host_if],
                           capture_output=True, text=True, timeout=10)
        if r.returncode != 0:
            raise SimError("ip addr add %s: %s" % (addr, r.stderr.strip()))
        self._source_addrs.append(addr)
        return addr

    def netns_command(self, argv):
        """tap: argv run inside the board's network namespace (Debian 12's
        Python has no os.setns), e.g. subprocess.run(sim.netns_command([...]))."""
        if self.net != "tap":
            raise SimError("the board has a network namespace only with net='tap'")
        return [NSENTER, "--net=%s" % self.netns_path] + list(argv)

    def dhcp_address(self, timeout=10):
        """Wait until `net show` reports an address; returns it."""
        def bound():
            m = re.search(r"^address\s+(\d+\.\d+\.\d+\.\d+)/\d+$", self.cmd_ok("net show"), re.M)
            return m.group(1) if m and m.group(1) != "0.0.0.0" else None
        return self.wait_for(bound, timeout, 0.2, "a DHCP address")
