"""The systems under test, behind one interface the phases drive:

    setup() / teardown()
    smtp_addr                  (host, port) where clients connect
    peer_addr                  the host address the system's next hop (the
                               sink, or the back Postfix with --tls) must
                               listen on for the system to reach it
    mem_pids()                 processes whose summed PSS is the system's memory
    cpu_seconds()              CPU the system has used so far (see procstat)
    extra_cpu_seconds()        CPU of helpers not counted (the appliance's
                               board), None if there are none
    status()                   queue state, read back by wait_deferred()
    wait_idle(timeout)         nothing queued, nothing in flight
    wait_deferred(base, n, t)  n more messages deferred since status() `base`
    one_connection(on)         at most one connection to the next hop
    retry_now()                try all waiting mail now
    tls_sessions()             (inbound, outbound, downgrades) TLS sessions so far
    check_device()             raise if the system restarted under the run
    board_log()                its log, for error messages

The appliance row is "appliance/<wire>"; the wire is the sim's --net
backend (ApplianceSystem.wire_addresses):

  slirp  clients connect to 127.0.0.1:<forwarded port>; the device sees the
         host's loopback as 10.0.2.2, both as the smart host's address and
         as the source of every client connection (the allowlist); its next
         hop listens on 127.0.0.1.
  tap    (root) clients connect to <device>:25 (10.213.N.2, by DHCP) and
         come from the host end of the veth, 10.213.N.1, which the device
         also reaches its smart host at: the next hop must listen on
         10.213.N.1 (the address exists only while the board runs).

Postfix listens and relays on 127.0.0.1 only.
"""
import os
import sys
import time

from . import load, procstat
from .postfix import PostfixInstance

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))


class ApplianceSystem:
    WIRES = ("tap", "slirp")
    SLIRP_HOST_ALIAS = "10.0.2.2"   # the host's loopback as the device sees it over slirp
    BOOT_TIMEOUT = 30
    DHCP_TIMEOUT = 20

    def __init__(self, workdir, next_hop_port, wire="slirp", tls=None):
        if wire not in self.WIRES:
            raise load.BenchError("unknown appliance wire %r (have: %s)"
                                  % (wire, ", ".join(self.WIRES)))
        self.wire = wire
        self.name = "appliance/%s" % wire
        self.workdir = os.path.join(workdir, "appliance-%s" % wire)
        self.next_hop_port = next_hop_port
        self.tls = tls                      # None, or "encrypt": smart host TLS policy
        self.sim = None
        self.device_pid = None
        self.board_pid = None
        self.device_pids_seen = set()

    # --- lifecycle ----------------------------------------------------------

    def setup(self):
        import relaysim     # after tools/bench set SHR_BUILD_DIR

        class GuardedSim(relaysim.Sim):
            # The board powers off on SIGTERM: also when the bench is killed.
            def command_line(self):
                return load.orphan_guard(super().command_line())

        os.makedirs(self.workdir, exist_ok=True)
        self.sim = GuardedSim(state_dir=os.path.join(self.workdir, "state"), net=self.wire)
        self.sim.start(timeout=self.BOOT_TIMEOUT)
        self.board_pid = self.sim.proc.pid
        self._find_device()
        if self.wire == "tap":
            # Clients connect to the address DHCP gives: wait until it is bound.
            try:
                got = self.sim.dhcp_address(self.DHCP_TIMEOUT)
            except relaysim.SimError as e:
                raise load.BenchError("appliance/tap: %s" % e)
            if got != self.sim.device_addr:
                raise load.BenchError("appliance/tap: DHCP gave %s, the board announced %s"
                                      % (got, self.sim.device_addr))
        _, next_hop_seen_as, client_seen_as = self.wire_addresses()
        self.sim.cmd_ok("output json")
        self.cmd("domain add %s" % load.DOMAIN)
        self.cmd("allow add %s" % client_seen_as)
        line = "smarthost add %s %s port %d" % (load.DOMAIN, next_hop_seen_as,
                                                self.next_hop_port)
        if self.tls:
            line += " tls %s" % self.tls
        self.cmd(line)

    def teardown(self):
        if self.sim is not None:
            try:
                self.sim.close()
            finally:
                self.sim = None

    def wire_addresses(self):
        """(host address the next hop listens on, the same as the device
        reaches it, the source address the device sees clients come from)."""
        if self.wire == "tap":
            return self.sim.host_addr, self.sim.host_addr, self.sim.host_addr
        return load.LOOPBACK, self.SLIRP_HOST_ALIAS, self.SLIRP_HOST_ALIAS

    @property
    def smtp_addr(self):
        return tuple(self.sim.smtp_addr)

    @property
    def peer_addr(self):
        return self.wire_addresses()[0]

    def board_log(self):
        return self.sim.board_log() if self.sim else ""

    # --- console ------------------------------------------------------------

    def cmd(self, line, timeout=20):
        out = self.sim.cmd_json(line, timeout)
        if "error" in out:
            raise load.BenchError("appliance: %r failed: %s" % (line, out["error"]))
        return out

    def stats(self):
        return self.cmd("stats")

    def status(self):
        s = self.stats()
        return {"queued_bytes": s["queue"]["bytes"], "in_flight": s["delivery"]["in_flight"],
                "deferred": s["delivery"]["deferred"], "delivered": s["delivery"]["delivered"]}

    def wait_idle(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            st = self.status()
            if st["queued_bytes"] == 0 and st["in_flight"] == 0:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)

    def wait_deferred(self, baseline, n, timeout):
        """Wait until n more recipients were deferred than at `baseline`
        (a status()) and nothing is in flight."""
        deadline = time.monotonic() + timeout
        while True:
            st = self.status()
            if st["deferred"] - baseline["deferred"] >= n and st["in_flight"] == 0:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)

    def tls_sessions(self):
        """(inbound TLS sessions, outbound TLS sessions, TLS downgrades)
        since power-on, as the appliance counts them."""
        s = self.stats()
        hosts = s.get("smarthosts", [])
        return (s["smtp_in"]["tls"], sum(h.get("tls", 0) for h in hosts),
                sum(h.get("downgrades", 0) for h in hosts))

    def one_connection(self, on):
        if on:
            self.cmd("settings set smarthost-connections 1")
        else:
            self.cmd("settings reset smarthost-connections")

    def retry_now(self):
        self.cmd("queue retry")

    # --- accounting ---------------------------------------------------------

    def _read_device_pid(self):
        try:
            return self.sim.device_pid()
        except (OSError, ValueError):
            return None

    def _find_device(self):
        """The device process: the board's device.pid, which must be a
        child of the board (the firmware the board forked; with tap the
        board has a second child, dnsmasq)."""
        deadline = time.monotonic() + 10
        while True:
            kids = procstat.children(self.board_pid)
            pid = self._read_device_pid()
            if pid is not None and pid in kids:
                break
            if time.monotonic() > deadline:
                raise load.BenchError("cannot find the device process (board %d has children "
                                      "%r, device.pid says %r)" % (self.board_pid, kids, pid))
            time.sleep(0.05)
        if self.device_pid is not None and pid != self.device_pid:
            raise load.BenchError("the device process changed (%d -> %d): the device reset "
                                  "during the run; board log:\n%s"
                                  % (self.device_pid, pid, self.board_log()[-2000:]))
        self.device_pid = pid
        self.device_pids_seen.add(pid)

    def check_device(self):
        """Raise if the device reset since setup (its figures would be wrong)."""
        if (self._read_device_pid() != self.device_pid
                or self.device_pid not in procstat.children(self.board_pid)):
            self._find_device()

    def mem_pids(self):
        return [self.device_pid]

    def cpu_seconds(self):
        return procstat.cpu_seconds([self.device_pid])

    def extra_cpu_seconds(self):
        """The board process (slirp or the TAP device's frames, the pty):
        not the device's CPU, reported apart."""
        return procstat.cpu_ticks(self.board_pid) / procstat.CLK_TCK


class PostfixSystem:
    def __init__(self, workdir, next_hop_port, listen_port=None, tls=None, tls_reuse=True):
        self.name = "postfix"
        self.tls = tls        # None, or (cert, key): STARTTLS in and required out
        params = {}
        if tls:
            cert, key = tls
            params.update({
                "smtpd_tls_chain_files": "%s, %s" % (key, cert),
                "smtpd_tls_security_level": "may",
                "smtp_tls_security_level": "encrypt",
                # Without this Postfix never reuses a TLS connection (the
                # appliance reuses its connections). With it, the TLS goes
                # through tlsproxy(8), which has its own cost.
                "smtp_tls_connection_reuse": "yes" if tls_reuse else "no",
                "smtp_tls_loglevel": "1",   # one line per TLS session, counted
            })
        self.pf = PostfixInstance("sut", workdir, listen_port or load.free_port(),
                                  next_hop_port, params)

    def setup(self):
        self.pf.start()

    def teardown(self):
        self.pf.stop()

    @property
    def smtp_addr(self):
        return (load.LOOPBACK, self.pf.listen_port)

    @property
    def peer_addr(self):
        return load.LOOPBACK

    def status(self):
        c = self.pf.queue_counts()
        return {"queued": sum(c.values()), "deferred": c["deferred"],
                "in_flight": c["active"] + c["incoming"] + c["maildrop"]}

    def wait_idle(self, timeout):
        deadline = time.monotonic() + timeout
        while self.pf.queued():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def wait_deferred(self, baseline, n, timeout):
        """Wait until n messages sit in the deferred queue and none is
        incoming or active."""
        deadline = time.monotonic() + timeout
        while True:
            st = self.status()
            if st["deferred"] >= n and st["in_flight"] == 0:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)

    def tls_sessions(self):
        """(inbound, outbound, downgrades): inbound is not logged by smtpd
        at the default smtpd_tls_loglevel (None); outbound from the log."""
        return (None, self.pf.tls_sessions_out(), 0)

    def one_connection(self, on):
        if on:
            self.pf.set_params({"smtp_destination_concurrency_limit": "1"})
        else:
            self.pf.set_params({"smtp_destination_concurrency_limit":
                                "$default_destination_concurrency_limit"})

    def retry_now(self):
        self.pf.flush()

    def check_device(self):
        if not self.pf.running:
            raise load.BenchError("Postfix master exited\n%s" % self.pf.log_tail())

    def mem_pids(self):
        return self.pf.pids()

    def cpu_seconds(self):
        return self.pf.cpu_seconds()

    def extra_cpu_seconds(self):
        return None     # nothing outside master's tree works for Postfix

    def board_log(self):
        return self.pf.log_tail(30)
