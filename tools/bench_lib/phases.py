"""The measured phases, run for one system at a time (the other system is
idle meanwhile), each with a fresh sink on the same port:

  throughput  smtp-source, `messages` x `size` over `sessions` sessions:
              accepted (smtp-source ended; with --tls: the front relay had
              handed everything over), end-to-end (the sink counted every
              message), CPU of the system from start until it is idle again
  latency     one session, one message after another (smtplib): seconds per
              MAIL..DATA transaction
  drain1      with the next hop down, queue `drain` messages (each deferred
              once), allow one connection to the next hop, bring it up,
              retry now; seconds until the sink has them all

Every phase checks that the sink got every message exactly once.
"""
import time

from . import load


class PhaseError(load.BenchError):
    """A phase could not complete (timeout, failure); the run stops."""


class Topology:
    """What stands around the system under test. Plaintext: smtp-source and
    the latency client talk to the system (system.smtp_addr), the system to
    the sink (listening on system.peer_addr: a system on the tap wire has a
    sink of its own on the veth's host end). TLS: a front Postfix (plain in
    on 127.0.0.1, STARTTLS out to system.smtp_addr, connections cached)
    between smtp-source and the system, a back Postfix (STARTTLS in, also on
    system.peer_addr; plain out to the sink on 127.0.0.1) between the system
    and the sink; the latency client does STARTTLS itself; the drain's
    "next hop down" is the back relay down. Each phase counts one sink."""

    def __init__(self, sink, front=None, back=None):
        self.sink = sink
        self.front = front
        self.back = back

    @property
    def tls(self):
        return self.front is not None

    def next_hop_down(self):
        if self.back is not None:
            self.back.stop()

    def next_hop_up(self):
        if self.back is not None and not self.back.running:
            self.back.start()


def _wait_all(topo, system, n, timeout, what):
    if not topo.sink.wait_for(n, timeout):
        raise PhaseError("%s %s: the sink has %d of %d messages after %ss"
                         % (system.name, what, topo.sink.count, n, timeout))


def _finish(topo, system, tag, n, timeout, what):
    """After the sink counted n: let the system settle, stop the sink and
    check the dump."""
    idle = system.wait_idle(timeout)
    if topo.back is not None:
        idle = _wait_queue_empty(topo.back, timeout) and idle
    topo.sink.stop()
    exact = load.check_exact(load.expected_recipients(tag, n), topo.sink.received())
    topo.sink.discard_dump()
    exact["settled"] = idle
    return exact


def _wait_queue_empty(pf, timeout):
    deadline = time.monotonic() + timeout
    while pf.queued():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def throughput(topo, system, cfg, tag):
    n = cfg.messages
    topo.sink.start()
    system.check_device()
    cpu0, extra0 = system.cpu_seconds(), system.extra_cpu_seconds()
    addr = (load.LOOPBACK, topo.front.listen_port) if topo.tls else system.smtp_addr
    t0 = time.monotonic()
    try:
        source_s = load.run_source(addr, n, cfg.sessions, cfg.size, tag, cfg.timeout)
    except load.BenchError as e:
        raise PhaseError("%s throughput: %s\n%s" % (system.name, e, system.board_log()[-1500:]))
    accepted_s = source_s
    if topo.tls:
        # Accepted by the system = the front relay has nothing left.
        if not _wait_queue_empty(topo.front, cfg.timeout):
            raise PhaseError("%s throughput: the front relay still holds %d messages"
                             % (system.name, topo.front.queued()))
        accepted_s = time.monotonic() - t0
    _wait_all(topo, system, n, max(1, cfg.timeout - (time.monotonic() - t0)), "throughput")
    e2e_s = time.monotonic() - t0
    exact = _finish(topo, system, tag, n, 30, "throughput")
    system.check_device()
    cpu = system.cpu_seconds() - cpu0
    extra = system.extra_cpu_seconds()
    extra = None if extra is None else extra - extra0
    return {
        "messages": n,
        "accepted_s": accepted_s,
        "e2e_s": e2e_s,
        "accepted_per_s": n / accepted_s,
        "e2e_per_s": n / e2e_s,
        "cpu_s": cpu,
        "cpu_s_per_1000": cpu / n * 1000,
        "helper_cpu_s_per_1000": None if extra is None else extra / n * 1000,
        "exact": exact,
    }


def latency(topo, system, cfg, tag):
    n = cfg.latency_messages
    topo.sink.start()
    try:
        times = load.latency_run(system.smtp_addr, n, cfg.size, tag, tls=topo.tls)
    except Exception as e:
        raise PhaseError("%s latency: %s" % (system.name, e))
    _wait_all(topo, system, n, cfg.timeout, "latency")
    exact = _finish(topo, system, tag, n, 30, "latency")
    return {
        "messages": n,
        "p50_ms": load.percentile(times, 50) * 1000,
        "p99_ms": load.percentile(times, 99) * 1000,
        "mean_ms": sum(times) / n * 1000,
        "max_ms": max(times) * 1000,
        "exact": exact,
    }


def drain1(topo, system, cfg, tag):
    n = cfg.drain
    topo.next_hop_down()
    system.one_connection(True)
    try:
        base = system.status()
        # Straight into the system (also with --tls: only the outbound leg
        # is measured here).
        try:
            load.run_source(system.smtp_addr, n, cfg.sessions, cfg.size, tag, cfg.timeout)
        except load.BenchError as e:
            raise PhaseError("%s drain: queueing: %s" % (system.name, e))
        if not system.wait_deferred(base, n, cfg.timeout):
            raise PhaseError("%s drain: %d messages were not all deferred within %ss (%r)"
                             % (system.name, n, cfg.timeout, system.status()))
        topo.sink.start()
        topo.next_hop_up()
        t0 = time.monotonic()
        system.retry_now()
        _wait_all(topo, system, n, cfg.timeout, "drain")
        drain_s = time.monotonic() - t0
        exact = _finish(topo, system, tag, n, 30, "drain")
    finally:
        topo.next_hop_up()
        system.one_connection(False)
    return {
        "messages": n,
        "drain_s": drain_s,
        "drain_per_s": n / drain_s,
        "exact": exact,
    }


def run_round(topo, system, cfg, tag, sampler_cls):
    """All phases for one system; returns {phase: figures, "pss_peak_kib"}."""
    out = {}
    if topo.tls:
        tls0 = system.tls_sessions(), topo.front.tls_sessions_out()
    with sampler_cls(system.mem_pids) as mem:
        out["throughput"] = throughput(topo, system, cfg, tag + "t")
        out["latency"] = latency(topo, system, cfg, tag + "l")
        if cfg.drain:
            out["drain1"] = drain1(topo, system, cfg, tag + "d")
    if topo.tls:
        # Evidence that both legs really used TLS (their policies require
        # it anyway: the front and the system refuse to send in clear).
        (in0, out0, dg0), front0 = tls0
        (in1, out1, dg1), front1 = system.tls_sessions(), topo.front.tls_sessions_out()
        out["tls_sessions"] = {
            "front_to_system": front1 - front0,
            "system_inbound": None if in1 is None else in1 - in0,
            "system_to_next_hop": out1 - out0,
            "downgrades": dg1 - dg0,
        }
    out["pss_peak_kib"] = mem.peak_kib
    out["pss_samples"] = mem.samples
    return out
