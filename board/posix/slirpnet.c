/* slirpnet.c — libslirp glue; see slirpnet.h. */
#define _GNU_SOURCE
#include "slirpnet.h"

#include <arpa/inet.h>
#include <errno.h>
#include <slirp/libslirp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "boardlog.h"
#include "egress.h"
#include "hal_eth.h"
#include "nettrace.h"

/* Frames waiting to cross between the two stacks, each direction. 512
 * frames cover a full TCP window per session for a dozen sessions; beyond
 * that frames drop, and TCP recovers as it does from any congested link. */
#define QUEUE_FRAMES 512
#define MAX_TIMERS 16

struct frame_queue {
    struct {
        uint16_t len;
        uint8_t data[HAL_ETH_FRAME_MAX];
    } f[QUEUE_FRAMES];
    unsigned head, tail;
};

struct slirp_timer {
    SlirpTimerCb cb;
    void *cb_opaque;
    int64_t expire_ms; /* -1 while not armed */
    int used;
};

struct slirpnet {
    Slirp *slirp;
    struct egress_policy policy;
    uint64_t egress_dropped;
    slirpnet_rx_fn rx;
    void *rx_ctx;
    struct frame_queue to_device, to_slirp;
    struct slirp_timer timers[MAX_TIMERS];
    struct pollfd *pfds; /* the board's array during fill/poll */
    size_t pfd_base, pfd_count, pfd_cap;
};

static int queue_push(struct frame_queue *q, const uint8_t *data, size_t len)
{
    if (len > HAL_ETH_FRAME_MAX || q->tail - q->head == QUEUE_FRAMES)
        return -1;
    q->f[q->tail % QUEUE_FRAMES].len = (uint16_t)len;
    memcpy(q->f[q->tail % QUEUE_FRAMES].data, data, len);
    q->tail++;
    return 0;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- callbacks slirp makes --- */

static ssize_t cb_send_packet(const void *buf, size_t len, void *opaque)
{
    struct slirpnet *sn = opaque;
    nettrace_frame("to device  ", buf, len);
    queue_push(&sn->to_device, buf, len); /* a full queue drops, like a busy wire */
    return (ssize_t)len;
}

static void cb_guest_error(const char *msg, void *opaque)
{
    (void)opaque;
    boardlog("slirp: guest error: %s", msg);
}

static int64_t cb_clock_get_ns(void *opaque)
{
    (void)opaque;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *cb_timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
    struct slirpnet *sn = opaque;
    for (int i = 0; i < MAX_TIMERS; i++)
        if (!sn->timers[i].used) {
            sn->timers[i] = (struct slirp_timer){cb, cb_opaque, -1, 1};
            return &sn->timers[i];
        }
    boardlog_fatal("slirp: out of timers");
    abort();
}

static void cb_timer_free(void *timer, void *opaque)
{
    (void)opaque;
    ((struct slirp_timer *)timer)->used = 0;
}

static void cb_timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
    (void)opaque;
    ((struct slirp_timer *)timer)->expire_ms = expire_ms;
}

static void cb_register_poll_fd(int fd, void *opaque) { (void)fd; (void)opaque; }

/* slirp keeps its forward's listening socket to itself: find it among our
 * descriptors by what it is (a listening TCP socket on that port). */
static int find_listener(uint16_t port)
{
    for (int fd = 0; fd < 1024; fd++) {
        int listening = 0;
        socklen_t len = sizeof listening;
        struct sockaddr_in addr;
        socklen_t alen = sizeof addr;
        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening &&
            getsockname(fd, (struct sockaddr *)&addr, &alen) == 0 && addr.sin_family == AF_INET &&
            ntohs(addr.sin_port) == port)
            return fd;
    }
    return -1;
}
static void cb_unregister_poll_fd(int fd, void *opaque) { (void)fd; (void)opaque; }
static void cb_notify(void *opaque) { (void)opaque; }

static const SlirpCb callbacks = {
    .send_packet = cb_send_packet,
    .guest_error = cb_guest_error,
    .clock_get_ns = cb_clock_get_ns,
    .timer_new = cb_timer_new,
    .timer_free = cb_timer_free,
    .timer_mod = cb_timer_mod,
    .register_poll_fd = cb_register_poll_fd,
    .unregister_poll_fd = cb_unregister_poll_fd,
    .notify = cb_notify,
};

struct slirpnet *slirpnet_new(uint16_t smtp_port, slirpnet_rx_fn rx, void *ctx,
                              char *err, size_t errlen)
{
    struct slirpnet *sn = calloc(1, sizeof *sn);
    if (!sn) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    sn->rx = rx;
    sn->rx_ctx = ctx;
    struct in_addr host_alias, guest;
    inet_pton(AF_INET, SLIRPNET_HOST_ALIAS, &host_alias);
    inet_pton(AF_INET, SLIRPNET_GUEST_ADDR, &guest);
    sn->policy.host_alias = ntohl(host_alias.s_addr);

    SlirpConfig cfg = {0};
    cfg.version = 4;
    cfg.restricted = 0; /* the egress filter restricts; slirp must reach host loopback */
    cfg.in_enabled = true;
    inet_pton(AF_INET, "10.0.2.0", &cfg.vnetwork);
    inet_pton(AF_INET, "255.255.255.0", &cfg.vnetmask);
    cfg.vhost = host_alias;
    cfg.in6_enabled = false;
    cfg.vdhcp_start = guest;
    inet_pton(AF_INET, "10.0.2.3", &cfg.vnameserver);
    cfg.if_mtu = 1500;
    cfg.if_mru = 1500;
    cfg.disable_host_loopback = false;
    cfg.enable_emu = false;
    cfg.disable_dns = true;
    cfg.disable_dhcp = false;
    sn->slirp = slirp_new(&cfg, &callbacks, sn);
    if (!sn->slirp) {
        snprintf(err, errlen, "slirp_new failed");
        free(sn);
        return NULL;
    }
    struct in_addr loopback;
    inet_pton(AF_INET, "127.0.0.1", &loopback);
    if (slirp_add_hostfwd(sn->slirp, 0, loopback, smtp_port, guest, 25) != 0) {
        snprintf(err, errlen, "cannot forward 127.0.0.1:%u (port in use?)", smtp_port);
        slirpnet_free(sn);
        return NULL;
    }
    /* slirp listens with a backlog of 1: clients connecting together would
     * wait a full SYN retransmission (1 s) each. Raise it. */
    int listener = find_listener(smtp_port);
    if (listener < 0 || listen(listener, SOMAXCONN) != 0)
        boardlog("cannot raise the listen backlog of 127.0.0.1:%u: %s", smtp_port,
                 listener < 0 ? "socket not found" : strerror(errno));
    return sn;
}

void slirpnet_free(struct slirpnet *sn)
{
    if (!sn)
        return;
    slirp_cleanup(sn->slirp);
    free(sn);
}

static int cb_add_poll(int fd, int events, void *opaque)
{
    struct slirpnet *sn = opaque;
    if (sn->pfd_base + sn->pfd_count >= sn->pfd_cap) {
        boardlog("slirp: too many descriptors");
        return -1;
    }
    short ev = 0;
    if (events & SLIRP_POLL_IN) ev |= POLLIN;
    if (events & SLIRP_POLL_OUT) ev |= POLLOUT;
    if (events & SLIRP_POLL_PRI) ev |= POLLPRI;
    if (events & SLIRP_POLL_ERR) ev |= POLLERR;
    if (events & SLIRP_POLL_HUP) ev |= POLLHUP;
    size_t i = sn->pfd_base + sn->pfd_count++;
    sn->pfds[i] = (struct pollfd){.fd = fd, .events = ev};
    return (int)(i - sn->pfd_base);
}

static int cb_get_revents(int idx, void *opaque)
{
    struct slirpnet *sn = opaque;
    if (idx < 0 || (size_t)idx >= sn->pfd_count)
        return 0;
    short re = sn->pfds[sn->pfd_base + (size_t)idx].revents;
    int ev = 0;
    if (re & POLLIN) ev |= SLIRP_POLL_IN;
    if (re & POLLOUT) ev |= SLIRP_POLL_OUT;
    if (re & POLLPRI) ev |= SLIRP_POLL_PRI;
    if (re & POLLERR) ev |= SLIRP_POLL_ERR;
    if (re & POLLHUP) ev |= SLIRP_POLL_HUP;
    return ev;
}

void slirpnet_fill(struct slirpnet *sn, struct pollfd *pfds, size_t *n, size_t cap,
                   int *timeout_ms)
{
    sn->pfds = pfds;
    sn->pfd_base = *n;
    sn->pfd_count = 0;
    sn->pfd_cap = cap;
    uint32_t slirp_timeout = *timeout_ms < 0 ? UINT32_MAX : (uint32_t)*timeout_ms;
    slirp_pollfds_fill(sn->slirp, &slirp_timeout, cb_add_poll, sn);
    int64_t now = now_ms();
    for (int i = 0; i < MAX_TIMERS; i++) {
        struct slirp_timer *t = &sn->timers[i];
        if (t->used && t->expire_ms >= 0) {
            int64_t left = t->expire_ms - now;
            if (left < (int64_t)slirp_timeout)
                slirp_timeout = left < 0 ? 0 : (uint32_t)left;
        }
    }
    /* Frames already queued for slirp must not wait for a timeout. */
    if (sn->to_slirp.tail != sn->to_slirp.head)
        slirp_timeout = 0;
    *timeout_ms = slirp_timeout > INT32_MAX ? -1 : (int)slirp_timeout;
    *n += sn->pfd_count;
}

void slirpnet_poll(struct slirpnet *sn, const struct pollfd *pfds, int poll_failed)
{
    (void)pfds; /* read through cb_get_revents from the array given to fill */
    slirp_pollfds_poll(sn->slirp, poll_failed, cb_get_revents, sn);
    int64_t now = now_ms();
    for (int i = 0; i < MAX_TIMERS; i++) {
        struct slirp_timer *t = &sn->timers[i];
        if (t->used && t->expire_ms >= 0 && t->expire_ms <= now) {
            t->expire_ms = -1;
            t->cb(t->cb_opaque);
        }
    }
    while (sn->to_slirp.head != sn->to_slirp.tail) {
        unsigned i = sn->to_slirp.head++ % QUEUE_FRAMES;
        slirp_input(sn->slirp, sn->to_slirp.f[i].data, sn->to_slirp.f[i].len);
    }
    while (sn->to_device.head != sn->to_device.tail) {
        unsigned i = sn->to_device.head++ % QUEUE_FRAMES;
        sn->rx(sn->rx_ctx, sn->to_device.f[i].data, sn->to_device.f[i].len);
    }
}

int slirpnet_send(struct slirpnet *sn, const uint8_t *frame, size_t len)
{
    if (egress_check(&sn->policy, frame, len) != EGRESS_PASS) {
        nettrace_dropped(++sn->egress_dropped, frame, len);
        return -1;
    }
    nettrace_frame("from device", frame, len);
    queue_push(&sn->to_slirp, frame, len);
    return 0;
}

uint64_t slirpnet_egress_dropped(const struct slirpnet *sn) { return sn->egress_dropped; }
