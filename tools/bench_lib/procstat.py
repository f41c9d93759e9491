"""CPU time and proportional memory (PSS) of process trees, from /proc.

CPU: utime+stime of a process plus cutime+cstime (its waited-for children).
For a tree, the sum over every live member: a child that exits is reaped by
its parent (Postfix's master reaps its daemons), so its time moves into the
parent's cutime and the sum stays whole. Take the sum before and after a
phase; the difference is what the tree spent in between.

PSS: /proc/PID/smaps_rollup "Pss:", so pages shared between the processes
of one system (Postfix's daemons share their text and libraries) count once
across the system, not once per process.
"""
import os
import threading
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid):
    """/proc/PID/stat fields after the command name (index 0 = state), or
    None if the process is gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            raw = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return raw[raw.rindex(b")") + 2:].split()


def ppid_of(pid):
    fields = _stat_fields(pid)
    return int(fields[1]) if fields else None


def comm(pid):
    """The process's command name ("" if gone)."""
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def cpu_ticks(pid):
    """utime+stime+cutime+cstime of one process in clock ticks (0 if gone)."""
    fields = _stat_fields(pid)
    if not fields:
        return 0
    # man 5 proc: utime(14) stime(15) cutime(16) cstime(17); fields[0] is (3).
    return sum(int(x) for x in fields[11:15])


def children_map():
    """{ppid: [pid, ...]} for every process now."""
    kids = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        fields = _stat_fields(int(name))
        if fields:
            kids.setdefault(int(fields[1]), []).append(int(name))
    return kids


def children(pid):
    return sorted(children_map().get(pid, []))


def tree(pid):
    """pid and all its live descendants."""
    kids = children_map()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def cpu_seconds(pids):
    return sum(cpu_ticks(p) for p in pids) / CLK_TCK


def pss_kib(pid):
    """Proportional set size of one process in KiB (0 if gone or a zombie)."""
    try:
        with open("/proc/%d/smaps_rollup" % pid, "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


class PssSampler:
    """Samples the summed PSS of `pids_fn()` every `interval` seconds in a
    thread while running; .peak_kib is the highest sum seen."""

    def __init__(self, pids_fn, interval=0.2):
        self.pids_fn = pids_fn
        self.interval = interval
        self.peak_kib = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = None

    def sample(self):
        total = sum(pss_kib(p) for p in self.pids_fn())
        self.peak_kib = max(self.peak_kib, total)
        self.samples += 1

    def _run(self):
        while not self._stop.is_set():
            try:
                self.sample()
            except Exception:   # a process tree changing under us: next sample
                pass
            self._stop.wait(self.interval)

    def __enter__(self):
        self.sample()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)
        self.sample()


def wait_gone(pids, timeout):
    """Wait until none of pids exists (zombies count as gone); returns the
    ones still there."""
    deadline = time.monotonic() + timeout
    while True:
        alive = [p for p in pids if (_stat_fields(p) or [b"Z"])[0] not in (b"Z", b"X")]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.05)
