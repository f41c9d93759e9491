"""A Postfix instance owned by the bench: its own config_directory,
queue_directory, data_directory and maillog_file under one temporary
directory, its master started as the bench's child and stopped by it.

Nothing of the system's Postfix is used or changed: /etc/postfix/main.cf is
not read or edited. `postfix -c DIR check` creates the queue directories
(root may name any config directory; alternate_config_directories only
binds the set-gid commands run by other users), then the master daemon runs
directly (`master -c DIR`: it stays in the foreground as the bench's child,
where `postfix start` would detach it). The bench stops it (SIGTERM: master
takes its children down); if the bench dies without cleaning up, a reaper
process does (load.Reaper; a parent-death signal would not do, master
clears it when it changes its effective uid). There is no syslog daemon:
logging goes to maillog_file through postlogd, allowed by
maillog_file_prefixes in the instance's own main.cf.
"""
import os
import pwd
import shutil
import signal
import subprocess
import time

from . import load, procstat

POSTFIX = "/usr/sbin/postfix"
POSTCONF = "/usr/sbin/postconf"
POSTQUEUE = "/usr/sbin/postqueue"
DAEMON_DIR = "/usr/lib/postfix/sbin"

# master.cf: the services a relay needs, none chrooted (a chroot would need
# copies of /etc files inside our queue directory). The inet line is added
# per instance.
MASTER_CF = """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
tlsproxy  unix  -       -       n       -       0       tlsproxy
postlog   unix-dgram n  -       n       -       1       postlogd
"""

QUEUES = ("maildrop", "incoming", "active", "deferred", "hold")


class PostfixError(load.BenchError):
    pass


class PostfixInstance:
    """name: label (also in myhostname); listen_port: its smtpd's port, on
    each address of listen_addrs (default 127.0.0.1 only; one master.cf line
    each, while main.cf's inet_interfaces stays 127.0.0.1, a loopback
    address, so the SMTP client never binds a source address of its own);
    relay_host, relay_port: where mail for example.com goes
    (smtp:[relay_host]:relay_port; default host 127.0.0.1); params: extra
    main.cf settings."""

    def __init__(self, name, workdir, listen_port, relay_port, params=None,
                 relay_host=load.LOOPBACK, listen_addrs=(load.LOOPBACK,)):
        self.name = name
        self.root = os.path.join(workdir, "postfix-%s" % name)
        self.conf = os.path.join(self.root, "conf")
        self.queue = os.path.join(self.root, "queue")
        self.data = os.path.join(self.root, "data")
        self.maillog = os.path.join(self.root, "maillog")
        self.listen_port = listen_port
        self.listen_addrs = list(dict.fromkeys(listen_addrs))
        self.relay_port = relay_port
        self.relay_host = relay_host
        self.params = dict(params or {})
        self.proc = None

    # --- configuration ------------------------------------------------------

    def main_cf(self):
        p = {
            "compatibility_level": "3.6",
            "queue_directory": self.queue,
            "data_directory": self.data,
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "myhostname": "%s.bench.test" % self.name,
            "mydomain": "bench.test",
            "mydestination": "",
            "local_recipient_maps": "",
            "local_transport": "error:5.1.1 local delivery is off in the bench",
            "alias_maps": "",
            "alias_database": "",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            # The allowlist (the appliance's `allow add`): only loopback.
            "mynetworks": "127.0.0.1/32",
            "relay_domains": load.DOMAIN,
            "transport_maps": "inline:{ %s=smtp:[%s]:%d }" % (load.DOMAIN, self.relay_host,
                                                              self.relay_port),
            # Nothing may leave for anywhere else (and no DNS is looked up).
            "default_transport": "error:5.4.4 no route outside the bench",
            "smtp_host_lookup": "native",
            "smtp_tls_security_level": "may",
            "maillog_file": self.maillog,
            "maillog_file_prefixes": self.root,
            "biff": "no",
            "notify_classes": "",
        }
        p.update(self.params)
        return "".join("%s = %s\n" % kv for kv in p.items())

    def write_config(self):
        os.makedirs(self.conf, exist_ok=True)
        for d in (self.queue, self.data):
            os.makedirs(d, exist_ok=True)
        os.chmod(self.root, 0o755)
        pw = pwd.getpwnam("postfix")
        os.chown(self.data, pw.pw_uid, pw.pw_gid)
        with open(os.path.join(self.conf, "main.cf"), "w") as f:
            f.write(self.main_cf())
        with open(os.path.join(self.conf, "master.cf"), "w") as f:
            for addr in self.listen_addrs:
                f.write("%s:%d inet n - n - - smtpd\n" % (addr, self.listen_port))
            f.write(MASTER_CF)

    def _env(self):
        return dict(os.environ, MAIL_CONFIG=self.conf)

    def _run(self, argv, timeout=60):
        r = subprocess.run(argv, env=self._env(), capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise PostfixError("%s failed (rc=%d): %s\n%s" % (" ".join(argv), r.returncode,
                                                           (r.stdout + r.stderr).strip(),
                                                           self.log_tail()))
        return r.stdout

    def set_params(self, params):
        """Change main.cf settings of the running instance and reload it."""
        self.params.update(params)
        self._run([POSTCONF, "-c", self.conf, "-e"] + ["%s=%s" % kv for kv in params.items()])
        if self.running:
            self.reload()

    def _qmgr_pids(self):
        return {p for p in procstat.children(self.proc.pid) if procstat.comm(p) == "qmgr"}

    def reload(self, timeout=15):
        """SIGHUP to master (re-read main.cf and master.cf), then wait for
        the new queue manager: the old one may still be at work for a
        moment, and mail arriving meanwhile can be left in the incoming
        queue until the next periodic scan. Call with the queue empty."""
        old = self._qmgr_pids()
        self.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while True:
            now = self._qmgr_pids()
            if now and not (now & old):
                return
            if time.monotonic() > deadline:
                raise PostfixError("Postfix %s: no new qmgr %ss after reload\n%s"
                                   % (self.name, timeout, self.log_tail()))
            time.sleep(0.05)

    # --- lifecycle ----------------------------------------------------------

    def start(self, timeout=20):
        if os.geteuid() != 0:
            raise PostfixError("the Postfix instances need root (mail_owner postfix, setgid postdrop)")
        self.write_config()
        # Creates the queue directories with Postfix's own permissions.
        self._run([POSTFIX, "-c", self.conf, "check"])
        self.proc = subprocess.Popen([os.path.join(DAEMON_DIR, "master"), "-c", self.conf],
                                     env=self._env(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Stopped by the reaper if the bench dies without cleaning up.
        load.Reaper.get().watch(self.proc.pid, self.conf)
        for addr in self.listen_addrs:
            if not load.wait_listening(self.listen_port, timeout, self.proc, addr):
                rc = self.proc.poll()
                self.stop()
                raise PostfixError("Postfix %s did not listen on %s:%d (master rc=%s)\n%s"
                                   % (self.name, addr, self.listen_port, rc, self.log_tail()))

    def stop(self, timeout=10):
        """SIGTERM to master (passed on to every child, like `postfix
        abort`), then SIGKILL whatever of its tree is left."""
        if self.proc is None:
            return
        pids = procstat.tree(self.proc.pid) if self.proc.poll() is None else []
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for pid in procstat.wait_gone(pids, 5):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        procstat.wait_gone(pids, 5)
        load.Reaper.get().forget(self.proc.pid)
        self.proc = None

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def cleanup_files(self):
        shutil.rmtree(self.root, ignore_errors=True)

    # --- observation --------------------------------------------------------

    @property
    def master_pid(self):
        return self.proc.pid if self.proc else None

    def pids(self):
        """master and every live descendant."""
        return procstat.tree(self.proc.pid) if self.running else []

    def cpu_seconds(self):
        return procstat.cpu_seconds(self.pids())

    def queue_counts(self):
        """{queue: files} read from the queue directory (no Postfix process
        is asked, so watching costs the instance nothing)."""
        out = {}
        for q in QUEUES:
            n = 0
            for _, _, files in os.walk(os.path.join(self.queue, q)):
                n += len(files)
            out[q] = n
        return out

    def queued(self):
        return sum(self.queue_counts().values())

    def flush(self):
        """postqueue -f: deliver the deferred mail now (also forgets dead
        destinations)."""
        self._run([POSTQUEUE, "-c", self.conf, "-f"])

    def tls_sessions_out(self):
        """Outbound TLS sessions so far (smtp_tls_loglevel >= 1): one
        "TLS connection established to" line per session, from tlsproxy
        when it holds the TLS (smtp_tls_connection_reuse), else from smtp
        (with reuse smtp logs it too: count only one of them)."""
        daemon = ("postfix/tlsproxy[" if self.params.get("smtp_tls_connection_reuse") == "yes"
                  else "postfix/smtp[")
        try:
            with open(self.maillog, errors="replace") as f:
                return sum(1 for line in f
                           if daemon in line and "TLS connection established to" in line)
        except OSError:
            return 0

    def log_tail(self, lines=15):
        try:
            with open(self.maillog, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return "(no maillog)"

    def __repr__(self):
        return "Postfix(%s, %s port %d)" % (self.name, ", ".join(self.listen_addrs),
                                            self.listen_port)
