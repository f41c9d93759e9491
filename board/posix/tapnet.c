/* tapnet.c — the tap network backend; the layout is in tapnet.h.
 *
 * Choices, and why:
 * - An anonymous namespace (unshare in the board), not `ip netns add`: a
 *   named one is a bind mount that survives a SIGKILL of the board. The
 *   namespace is referenced only by the board and its children, and those
 *   all die with it (PR_SET_PDEATHSIG, hostcmd.h).
 * - A veth pair created from inside the namespace with its peer placed in
 *   the host namespace in the same request (`peer ... netns`), so there is
 *   no moment when a link exists that the namespace's death would not take
 *   away.
 * - A bridge in the namespace joins the TAP device and the veth: one L2
 *   subnet, so host clients are on-link with the appliance (its allowlist
 *   sees their real addresses) and no routing or NAT rule is needed
 *   anywhere (rules in the host namespace would outlive a SIGKILL).
 * - Subnets 10.213.N.0/24: a /16 of private space that common defaults
 *   leave alone (slirp 10.0.2/24, Docker 172.17/16, libvirt
 *   192.168.122/24). N starts at the board's pid modulo 256 and moves on
 *   past any /24 that overlaps a route of the host's main table, so several
 *   boards (ctest -j) and the host's own networks never collide. Choosing
 *   and claiming (the host route appears with the host address) happen
 *   under a host-wide lock: an abstract unix socket name, which the kernel
 *   releases when the board dies, leaving no file.
 * - ip(8) builds the network (Debian's iproute2, from tools/bootstrap): one
 *   readable command per step, and its error text reaches the board's
 *   error line. Host-side steps run in a child that setns() into the host
 *   namespace through a descriptor opened before the unshare.
 * - dnsmasq (dnsmasq-base) serves DHCP inside the namespace, DNS off: the
 *   firmware's own DHCP client then runs as on a real network. It runs as
 *   root (--user=root) because a change of user would clear its
 *   PR_SET_PDEATHSIG. */
#define _GNU_SOURCE
#include "tapnet.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "boardlog.h"
#include "egress.h"
#include "hal_eth.h"
#include "hostcmd.h"
#include "nettrace.h"

/* Debian's paths (packages iproute2 and dnsmasq-base, tools/bootstrap):
 * absolute, so the board's PATH cannot pick another program. */
#define IP_PROG "/usr/sbin/ip"
#define DNSMASQ_PROG "/usr/sbin/dnsmasq"
#define TUN_DEV "/dev/net/tun"

#define SUBNET_BASE 0x0AD50000u /* 10.213.0.0/16, one /24 per board */
#define SUBNETS 256
#define PREFIX 24
#define HOST_ID 1   /* the host's end of the veth: the gateway */
#define DEVICE_ID 2 /* what DHCP gives the appliance (its only address) */
#define SERVER_ID 3 /* the bridge in the namespace: the DHCP server */
/* Names inside the namespace are private to it: fixed. */
#define NS_TAP "tap0"
#define NS_BRIDGE "br0"
#define NS_VETH "veth0"
/* A lease long enough never to matter in a test, short enough that a
 * change of the setup shows within a session. */
#define LEASE "1h"
/* The host-wide setup lock (an abstract unix socket name) and how long a
 * board waits for another one's setup (a few ip commands). */
#define SETUP_LOCK_NAME "shr-tapnet-setup"
#define SETUP_LOCK_WAIT_MS 20000
/* Frames read from the TAP device per loop turn: the console and the link
 * get their turn even under a flood. */
#define RX_BURST 64
#define STOP_GRACE_MS 1000

struct tapnet {
    struct tapnet_info info;
    int tap_fd;
    int pfd_index; /* where tapnet_fill put the TAP descriptor; -1: not there */
    pid_t dhcp_pid;
    struct egress_policy policy;
    uint64_t egress_dropped;
    uint64_t tx_errors;
    tapnet_rx_fn rx;
    void *rx_ctx;
};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void ip_text(uint32_t a, char *out, size_t cap)
{
    struct in_addr in = {htonl(a)};
    inet_ntop(AF_INET, &in, out, (socklen_t)cap);
}

/* --- choosing a subnet --- */

/* Held while one board chooses and claims its subnet; -1 with err when
 * another board holds it for too long. */
static int setup_lock(char *err, size_t errlen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    /* Abstract name: sun_path[0] is NUL. */
    memcpy(sa.sun_path + 1, SETUP_LOCK_NAME, sizeof SETUP_LOCK_NAME - 1);
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
                                sizeof SETUP_LOCK_NAME - 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "setup lock: %s", strerror(errno));
        return -1;
    }
    long long deadline = now_ms() + SETUP_LOCK_WAIT_MS;
    while (bind(fd, (struct sockaddr *)&sa, len) != 0) {
        if (errno != EADDRINUSE || now_ms() > deadline) {
            snprintf(err, errlen, "setup lock @%s: %s", SETUP_LOCK_NAME,
                     errno == EADDRINUSE ? "another board held it too long" : strerror(errno));
            close(fd);
            return -1;
        }
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return fd;
}

/* Whether 10.213.n.0/24 overlaps a route of the main table (default routes
 * aside, which overlap everything and are no conflict). Read in the host
 * namespace: /proc/net is the reader's namespace's. */
static int subnet_taken(uint32_t net, const uint32_t (*routes)[2], size_t nroutes)
{
    uint32_t mask = 0xFFFFFFFFu << (32 - PREFIX);
    for (size_t i = 0; i < nroutes; i++) {
        uint32_t rdst = routes[i][0], rmask = routes[i][1];
        if (rmask == 0)
            continue;
        uint32_t common = rmask & mask; /* the shorter prefix of the two */
        if ((rdst & common) == (net & common))
            return 1;
    }
    return 0;
}

static int choose_subnet(uint32_t *net, char *err, size_t errlen)
{
    static uint32_t routes[1024][2];
    size_t nroutes = 0;
    FILE *f = fopen("/proc/net/route", "r");
    if (!f) {
        snprintf(err, errlen, "/proc/net/route: %s", strerror(errno));
        return -1;
    }
    char line[512];
    if (!fgets(line, sizeof line, f))
        line[0] = '\0'; /* the header */
    while (fgets(line, sizeof line, f) && nroutes < sizeof routes / sizeof routes[0]) {
        char ifname[64];
        unsigned long dst, gw, mask;
        unsigned flags;
        /* Iface Destination Gateway Flags RefCnt Use Metric Mask ...: the
         * addresses as the kernel holds them (network order), in hex. */
        if (sscanf(line, "%63s %lx %lx %x %*d %*d %*d %lx", ifname, &dst, &gw, &flags, &mask) != 5)
            continue;
        routes[nroutes][0] = ntohl((uint32_t)dst);
        routes[nroutes][1] = ntohl((uint32_t)mask);
        nroutes++;
    }
    fclose(f);
    unsigned start = (unsigned)getpid() % SUBNETS;
    for (unsigned i = 0; i < SUBNETS; i++) {
        uint32_t candidate = SUBNET_BASE | ((start + i) % SUBNETS) << 8;
        if (!subnet_taken(candidate, (const uint32_t(*)[2])routes, nroutes)) {
            *net = candidate;
            return 0;
        }
    }
    snprintf(err, errlen, "every /24 of 10.213.0.0/16 overlaps a host route");
    return -1;
}

/* --- building the network --- */

/* ip(8) with up to 11 arguments, in the host namespace (host_ns >= 0) or
 * the board's. */
static int ip(int host_ns, char *err, size_t errlen, const char *a0, ...)
{
    char *argv[16] = {IP_PROG};
    int argc = 1;
    va_list ap;
    va_start(ap, a0);
    for (const char *a = a0; a && argc < 15; a = va_arg(ap, const char *))
        argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc] = NULL;
    return hostcmd_run(argv, host_ns, -1, err, errlen);
}

/* Each IPv6 multicast or router solicitation the kernel would send on the
 * new links is noise on the appliance's IPv4-only wire. Best effort: a
 * kernel without IPv6 has nothing to turn off. */
static void quiet_ipv6(void)
{
    static const char *const paths[] = {"/proc/sys/net/ipv6/conf/all/disable_ipv6",
                                        "/proc/sys/net/ipv6/conf/default/disable_ipv6"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        int fd = open(paths[i], O_WRONLY | O_CLOEXEC);
        if (fd >= 0) {
            (void)!write(fd, "1\n", 2);
            close(fd);
        }
    }
}

static int open_tap(char *err, size_t errlen)
{
    int fd = open(TUN_DEV, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", TUN_DEV, strerror(errno));
        return -1;
    }
    struct ifreq ifr = {0};
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI; /* whole Ethernet frames, no header */
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", NS_TAP);
    if (ioctl(fd, TUNSETIFF, &ifr) != 0) {
        snprintf(err, errlen, "TUNSETIFF %s: %s", NS_TAP, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* Inside the new namespace: the bridge, the veth pair (its peer born in the
 * host namespace), the TAP device on the bridge, everything up. */
static int build_namespace_side(struct tapnet *tn, int host_ns, char *err, size_t errlen)
{
    char server[32], hostns_path[32];
    snprintf(server, sizeof server, "%s/%u", tn->info.server, PREFIX);
    snprintf(hostns_path, sizeof hostns_path, "/proc/self/fd/%d", host_ns);
    char *veth[] = {IP_PROG, "link", "add", NS_VETH, "type", "veth", "peer", "name",
                    tn->info.hostif, "netns", hostns_path, NULL};
    if (ip(-1, err, errlen, "link", "add", NS_BRIDGE, "type", "bridge", "stp_state", "0",
           "forward_delay", "0", NULL) ||
        hostcmd_run(veth, -1, host_ns, err, errlen) ||
        ip(-1, err, errlen, "link", "set", NS_TAP, "master", NS_BRIDGE, "up", NULL) ||
        ip(-1, err, errlen, "link", "set", NS_VETH, "master", NS_BRIDGE, "up", NULL) ||
        ip(-1, err, errlen, "addr", "add", server, "dev", NS_BRIDGE, NULL) ||
        ip(-1, err, errlen, "link", "set", NS_BRIDGE, "up", NULL))
        return -1;
    return 0;
}

/* In the host namespace: the veth's far end gets the host address (and
 * with it the subnet's route) and comes up. */
static int build_host_side(struct tapnet *tn, int host_ns, char *err, size_t errlen)
{
    char host[32], ignored[256];
    snprintf(host, sizeof host, "%s/%u", tn->info.host, PREFIX);
    /* No IPv6 link-local address, hence no solicitations onto the wire;
     * a host without IPv6 refuses this, which is just as quiet. */
    ip(host_ns, ignored, sizeof ignored, "link", "set", tn->info.hostif, "addrgenmode", "none",
       NULL);
    if (ip(host_ns, err, errlen, "addr", "add", host, "dev", tn->info.hostif, NULL) ||
        ip(host_ns, err, errlen, "link", "set", tn->info.hostif, "up", NULL))
        return -1;
    return 0;
}

static pid_t start_dhcp(const struct tapnet *tn, char *err, size_t errlen)
{
    char range[80], router[48], iface[32];
    snprintf(range, sizeof range, "--dhcp-range=%s,%s,255.255.255.0,%s", tn->info.device,
             tn->info.device, LEASE);
    snprintf(router, sizeof router, "--dhcp-option=option:router,%s", tn->info.host);
    snprintf(iface, sizeof iface, "--interface=%s", NS_BRIDGE);
    char *argv[] = {DNSMASQ_PROG, "--keep-in-foreground", "--conf-file=/dev/null",
                    "--no-hosts", "--no-resolv", "--port=0", /* DHCP only */
                    iface, "--bind-interfaces", range, router, "--dhcp-authoritative",
                    "--no-ping", /* the one address is ours to give: no 3 s probe */
                    "--leasefile-ro", "--pid-file", "--user=root", "--group=root",
                    "--log-facility=-", NULL};
    return hostcmd_spawn(argv, err, errlen);
}

struct tapnet *tapnet_new(tapnet_rx_fn rx, void *ctx, char *err, size_t errlen)
{
    if (geteuid() != 0) {
        snprintf(err, errlen, "--net tap needs root (it creates a network namespace, a TAP "
                              "device and a veth pair); use --net slirp without root");
        return NULL;
    }
    if (access(TUN_DEV, F_OK) != 0) {
        snprintf(err, errlen, "--net tap needs %s (%s): load the tun module (modprobe tun), "
                              "or pass the device into the container", TUN_DEV, strerror(errno));
        return NULL;
    }
    struct tapnet *tn = calloc(1, sizeof *tn);
    if (!tn) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    tn->tap_fd = -1;
    tn->pfd_index = -1;
    tn->dhcp_pid = -1;
    tn->rx = rx;
    tn->rx_ctx = ctx;
    int host_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    int lock = host_ns < 0 ? -1 : setup_lock(err, errlen);
    uint32_t net = 0;
    int ok = 0;
    if (host_ns < 0) {
        snprintf(err, errlen, "/proc/self/ns/net: %s", strerror(errno));
    } else if (lock >= 0 && choose_subnet(&net, err, errlen) == 0) {
        ip_text(net | HOST_ID, tn->info.host, sizeof tn->info.host);
        ip_text(net | DEVICE_ID, tn->info.device, sizeof tn->info.device);
        ip_text(net | SERVER_ID, tn->info.server, sizeof tn->info.server);
        tn->info.prefix = PREFIX;
        /* Unique among running boards (pid_max is at most 2^22, so the
         * modulo only shows the compiler the name fits IFNAMSIZ). */
        snprintf(tn->info.hostif, sizeof tn->info.hostif, "shrtap%u",
                 (unsigned)getpid() % 10000000u);
        snprintf(tn->info.netns, sizeof tn->info.netns, "/proc/%ld/ns/net", (long)getpid());
        if (unshare(CLONE_NEWNET) != 0) {
            snprintf(err, errlen, "unshare(CLONE_NEWNET): %s", strerror(errno));
        } else {
            quiet_ipv6();
            tn->tap_fd = open_tap(err, errlen);
            ok = tn->tap_fd >= 0 && build_namespace_side(tn, host_ns, err, errlen) == 0 &&
                 build_host_side(tn, host_ns, err, errlen) == 0;
        }
    }
    /* The subnet's route now exists on the host (or nothing was claimed). */
    if (lock >= 0)
        close(lock);
    if (host_ns >= 0)
        close(host_ns);
    if (ok) {
        tn->dhcp_pid = start_dhcp(tn, err, errlen);
        ok = tn->dhcp_pid > 0;
    }
    if (!ok) {
        /* Whatever was built goes with the namespace when the board exits. */
        if (tn->tap_fd >= 0)
            close(tn->tap_fd);
        free(tn);
        return NULL;
    }
    tn->policy.host_alias = net | HOST_ID;
    tn->policy.subnet = net;
    tn->policy.subnet_mask = 0xFFFFFFFFu << (32 - PREFIX);
    return tn;
}

static void stop_dhcp(struct tapnet *tn)
{
    if (tn->dhcp_pid <= 0)
        return;
    kill(tn->dhcp_pid, SIGTERM);
    long long deadline = now_ms() + STOP_GRACE_MS;
    int status;
    while (waitpid(tn->dhcp_pid, &status, WNOHANG) == 0) {
        if (now_ms() > deadline) {
            kill(tn->dhcp_pid, SIGKILL);
            waitpid(tn->dhcp_pid, &status, 0);
            break;
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    tn->dhcp_pid = -1;
}

void tapnet_free(struct tapnet *tn)
{
    if (!tn)
        return;
    stop_dhcp(tn);
    /* Deleting one end deletes both: the host link and its addresses go
     * now, not whenever the kernel reaps the namespace after we exit. */
    char err[256];
    if (ip(-1, err, sizeof err, "link", "del", NS_VETH, NULL) != 0)
        boardlog("tap: %s", err);
    close(tn->tap_fd);
    free(tn);
}

const struct tapnet_info *tapnet_info(const struct tapnet *tn) { return &tn->info; }

void tapnet_fill(struct tapnet *tn, struct pollfd *pfds, size_t *n, size_t cap)
{
    tn->pfd_index = -1;
    if (*n >= cap)
        return;
    tn->pfd_index = (int)*n;
    pfds[(*n)++] = (struct pollfd){.fd = tn->tap_fd, .events = POLLIN};
}

void tapnet_poll(struct tapnet *tn, const struct pollfd *pfds)
{
    if (tn->pfd_index < 0 || !(pfds[tn->pfd_index].revents & POLLIN))
        return;
    /* Without IFF_VNET_HDR the kernel hands over one whole frame per read,
     * never one larger than the MTU allows; a larger one is dropped here. */
    uint8_t frame[HAL_ETH_FRAME_MAX + 4];
    for (int i = 0; i < RX_BURST; i++) {
        ssize_t len = read(tn->tap_fd, frame, sizeof frame);
        if (len < 0 && errno == EINTR)
            continue;
        if (len <= 0)
            return; /* EAGAIN: the device queue is empty */
        if ((size_t)len > HAL_ETH_FRAME_MAX)
            continue;
        nettrace_frame("to device  ", frame, (size_t)len);
        tn->rx(tn->rx_ctx, frame, (size_t)len);
    }
}

int tapnet_send(struct tapnet *tn, const uint8_t *frame, size_t len)
{
    if (egress_check(&tn->policy, frame, len) != EGRESS_PASS) {
        nettrace_dropped(++tn->egress_dropped, frame, len);
        return -1;
    }
    nettrace_frame("from device", frame, len);
    if (write(tn->tap_fd, frame, len) == (ssize_t)len)
        return 0;
    /* A full queue drops the frame, like a busy wire; say so once in a while. */
    if (tn->tx_errors++ % 1000 == 0)
        boardlog("tap: frame to the host lost (%llu so far): %s",
                 (unsigned long long)tn->tx_errors, strerror(errno));
    return -1;
}

uint64_t tapnet_egress_dropped(const struct tapnet *tn) { return tn->egress_dropped; }

int tapnet_reaped(struct tapnet *tn, int pid, int status)
{
    if (!tn || pid != tn->dhcp_pid)
        return 0;
    tn->dhcp_pid = -1;
    /* Not restarted: a lease already given stays valid for its hour, and a
     * DHCP server that cannot run is a setup fault to fix, not to hide. */
    if (WIFEXITED(status))
        boardlog("tap: the DHCP server (dnsmasq) exited with status %d", WEXITSTATUS(status));
    else
        boardlog("tap: the DHCP server (dnsmasq) was stopped by signal %d", WTERMSIG(status));
    return 1;
}
