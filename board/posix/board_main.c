/* board_main.c — the posix board (relay-board): the simulated hardware.
 *
 * It owns what outlives a CPU reset — the console port, the network
 * backend, the flash files, the state directory lock — and runs the device
 * (the CPU: boot stage, then firmware) as a child process connected by one
 * socketpair (link.h). Any exit of the device other than power-off is a
 * reset: the board starts it again, and the console path never changes. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "boardlog.h"
#include "conport.h"
#include "devproto.h"
#include "flashparts.h"
#include "hal_reset.h"
#include "hal_secret.h"
#include "link.h"
#include "slirpnet.h"
#include "tapnet.h"
#include "bootstate.h"
#include "flashhal.h"
#include "slotprog.h"

/* Device output waiting for the link socket; beyond this, frames drop like
 * on a saturated wire (the device's own RX ring drops first in practice). */
#define TXQ_MAX (8u << 20)
#define CONSOLE_PACE_MS 5 /* how often queued console output looks for room */
/* A device that dies sooner than this after starting is crash-looping. */
#define QUICK_CRASH_MS 2000
#define BACKOFF_MAX_MS 5000
#define POWER_OFF_GRACE_MS 1000
#define MAX_POLLFDS 256

/* Typed input the board holds for the device beyond its UART buffer; when
 * full the board stops reading the console, and a paste waits in the pty. */
#define BOARD_RXQ_MAX 65536

struct board {
    char state[PATH_MAX];
    char boot_path[PATH_MAX];
    struct conport con;
    uint64_t con_dropped_logged; /* con.tx_dropped already in board.log */
    uint64_t con_credited;       /* con.tx_gone already given back to the device */
    /* Typed input for the device, sent as its UART takes it: */
    uint8_t rxq[BOARD_RXQ_MAX];
    size_t rxq_len;
    uint32_t uart_rx_room; /* bytes the device's UART buffer can take now */
    struct slirpnet *net; /* --net slirp */
    struct tapnet *tap;   /* --net tap: exactly one of the two is set */
    int sigfd;
    pid_t dev_pid;
    int dev_fd;
    struct link_decoder dec;
    uint8_t *txq;
    size_t txq_off, txq_len;
    uint64_t egress_reported;
    unsigned boot_count;
    enum hal_reset_cause next_cause;
    int64_t started_ms;
    int64_t restart_at_ms; /* -1: no restart scheduled */
    unsigned quick_crashes;
    int clock_unset; /* --clock-unset: the device has no RTC (wall clock at 1970) */
    int recovery;    /* --recovery: the button is held at power-on (first start only) */
    long flash_cut;  /* --flash-cut-after N: power fails at that flash op (first start only) */
    int quit;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Diagnostics go through boardlog.h (<state>/board.log), never into the
 * stdio console. */
static int die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int die(const char *fmt, ...)
{
    char text[BOARDLOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    boardlog_fatal("%s", text);
    return 1;
}

/* --- state directory: lock, device secret, flash image --- */

static int lock_state(const char *state)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/board.lock", state);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return die("cannot open %s: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        char pid[32] = "";
        ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        return die("state directory %s is in use by another board (pid %s)", state,
                   pid[0] ? pid : "?");
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n)
        return die("cannot write %s: %s", path, strerror(errno));
    return 0; /* fd stays open: the lock lives as long as the board */
}

static int write_file_atomic(const char *path, const void *data, size_t len)
{
    char tmp[PATH_MAX + 8];
    snprintf(tmp, sizeof tmp, "%s.new", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    int ok = write(fd, data, len) == (ssize_t)len && fsync(fd) == 0;
    close(fd);
    return ok && rename(tmp, path) == 0 ? 0 : -1;
}

/* The unit's secret is "fused at the factory": made once, never changed. */
static int ensure_secret(const char *state)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/%s", state, DEV_SECRET_FILE);
    struct stat st;
    if (stat(path, &st) == 0 && st.st_size == HAL_SECRET_LEN)
        return 0;
    uint8_t secret[HAL_SECRET_LEN];
    if (getrandom(secret, sizeof secret, 0) != (ssize_t)sizeof secret ||
        write_file_atomic(path, secret, sizeof secret) != 0)
        return die("cannot create %s: %s", path, strerror(errno));
    return 0;
}

static int load_image(const char *state, const char *image)
{
    FILE *f = fopen(image, "rb");
    if (!f)
        return die("cannot open image %s: %s", image, strerror(errno));
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    rewind(f);
    uint8_t *buf = len > 0 ? malloc((size_t)len) : NULL;
    if (!buf || fread(buf, 1, (size_t)len, f) != (size_t)len) {
        fclose(f);
        free(buf);
        return die("cannot read image %s", image);
    }
    fclose(f);
    struct flashparts flash;
    char err[256];
    if (flashparts_open(&flash, state, err, sizeof err) != 0) {
        free(buf);
        return die("flash: %s", err);
    }
    /* Like a factory programmer: the image into slot A, and slot A active
     * and confirmed with the stored minimum security counter back at 0
     * (the programmer's privilege; the firmware can never lower it). */
    int rc = slotprog_write(&flash.part[HAL_FLASH_SLOT_A], buf, (size_t)len);
    /* An unchanged image leaves the state alone: after an update slot B
     * may rightly be the active one. */
    struct bootstate st;
    flashhal_attach(&flash);
    int state_rc = 0;
    if (rc >= 0 && (bootstate_load(&st) != BOOTSTATE_LOADED || rc == 1)) {
        bootstate_programmed(&st, 0);
        state_rc = bootstate_store(&st);
    }
    flashhal_attach(NULL);
    flashparts_close(&flash);
    free(buf);
    if (rc < 0)
        return die("cannot write %s into slot A (%ld bytes; error %d)", image, len, rc);
    if (state_rc != 0)
        return die("cannot write the boot state for slot A");
    if (rc == 1)
        boardlog("slot A written with %s (%ld bytes), active and confirmed", image, len);
    return 0;
}

/* --- the device process --- */

/* Returns 0, or -1 when the queue is saturated and the message dropped. */
static int queue_to_device(struct board *b, uint8_t type, const void *data, size_t len)
{
    if (b->dev_fd < 0)
        return -1;
    if (b->txq_off > 0 && b->txq_off + b->txq_len + LINK_MSG_MAX > TXQ_MAX) {
        memmove(b->txq, b->txq + b->txq_off, b->txq_len);
        b->txq_off = 0;
    }
    if (b->txq_off + b->txq_len + LINK_MSG_MAX > TXQ_MAX)
        return -1; /* saturated: drop */
    b->txq_len += link_encode(b->txq + b->txq_off + b->txq_len, LINK_MSG_MAX, type, data, len);
    return 0;
}

/* Console bytes that left the board go back to the device as credit, so it
 * sends more only as the terminal takes them (a UART paced by its line).
 * A credit is never lost: what the queue cannot take now goes next turn. */
static void report_uart_credit(struct board *b)
{
    while (b->con.tx_gone > b->con_credited) {
        uint64_t delta = b->con.tx_gone - b->con_credited;
        uint32_t n = delta > 0x7fffffffu ? 0x7fffffffu : (uint32_t)delta;
        uint8_t be[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
        if (queue_to_device(b, LINK_UART_CREDIT, be, sizeof be) != 0)
            return;
        b->con_credited += n;
    }
}

/* --- the network backend: slirp or tap --- */

static uint64_t net_egress_dropped(const struct board *b)
{
    if (b->net)
        return slirpnet_egress_dropped(b->net);
    return b->tap ? tapnet_egress_dropped(b->tap) : 0;
}

static void net_fill(struct board *b, struct pollfd *pfds, size_t *n, int *timeout)
{
    if (b->net)
        slirpnet_fill(b->net, pfds, n, MAX_POLLFDS, timeout);
    else if (b->tap)
        tapnet_fill(b->tap, pfds, n, MAX_POLLFDS);
}

static void net_poll(struct board *b, const struct pollfd *pfds, int poll_failed)
{
    if (b->net)
        slirpnet_poll(b->net, pfds, poll_failed);
    else if (b->tap && !poll_failed)
        tapnet_poll(b->tap, pfds);
}

/* A frame from the device; counted when the egress filter drops it. */
static void net_send(struct board *b, const uint8_t *frame, size_t len)
{
    if (b->net)
        slirpnet_send(b->net, frame, len);
    else if (b->tap)
        tapnet_send(b->tap, frame, len);
}

static void report_nic_stats(struct board *b)
{
    uint64_t v = net_egress_dropped(b);
    uint8_t be[8];
    for (int i = 0; i < 8; i++)
        be[i] = (uint8_t)(v >> (56 - 8 * i));
    queue_to_device(b, LINK_NIC_STATS, be, sizeof be);
    b->egress_reported = v;
}

static void write_pid_file(const struct board *b, pid_t pid)
{
    char path[PATH_MAX + 32], text[32];
    snprintf(path, sizeof path, "%s/%s", b->state, DEV_PID_FILE);
    int n = snprintf(text, sizeof text, "%ld\n", (long)pid);
    if (write_file_atomic(path, text, (size_t)n) != 0)
        boardlog("cannot write %s: %s", path, strerror(errno));
}

static int start_device(struct board *b)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return die("socketpair: %s", strerror(errno));
    int bufsize = 1 << 20;
    for (int i = 0; i < 2; i++) {
        setsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, &bufsize, sizeof bufsize);
        setsockopt(sv[i], SOL_SOCKET, SO_RCVBUF, &bufsize, sizeof bufsize);
    }
    b->boot_count++;
    char cause[16], count[16];
    snprintf(cause, sizeof cause, "%d", (int)b->next_cause);
    snprintf(count, sizeof count, "%u", b->boot_count);
    pid_t board_pid = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return die("fork: %s", strerror(errno));
    if (pid == 0) {
        /* Own process group: a Ctrl-C on the sim's terminal is for the
         * board (power off), never a signal into the CPU. */
        setpgid(0, 0);
        /* No CPU runs without its board: a SIGKILLed board takes the device
         * with it (in tap mode the device would otherwise keep the
         * board's network namespace alive). Kept across the boot stage's
         * exec of the firmware. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != board_pid)
            _exit(127);
        boardlog_redirect_child_stderr();
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (sv[1] == DEV_LINK_FD)
            fcntl(DEV_LINK_FD, F_SETFD, 0);
        else if (dup2(sv[1], DEV_LINK_FD) < 0)
            _exit(127);
        setenv(DEV_ENV_STATE, b->state, 1);
        setenv(DEV_ENV_RESET_CAUSE, cause, 1);
        setenv(DEV_ENV_BOOT_COUNT, count, 1);
        if (b->clock_unset)
            setenv(DEV_ENV_CLOCK_UNSET, "1", 1);
        if (b->recovery)
            setenv(DEV_ENV_RECOVERY, "1", 1);
        if (b->flash_cut >= 0) {
            char n[24];
            snprintf(n, sizeof n, "%ld", b->flash_cut);
            setenv(DEV_ENV_FLASH_CUT, n, 1);
        }
        execl(b->boot_path, "relay-boot", (char *)NULL);
        _exit(127);
    }
    close(sv[1]);
    b->dev_pid = pid;
    b->dev_fd = sv[0];
    /* The button is read at power-on only: a reset after it (e.g. the
     * factory reset it allows) boots normally. */
    b->recovery = 0;
    b->flash_cut = -1; /* the power fails once */
    fcntl(b->dev_fd, F_SETFL, fcntl(b->dev_fd, F_GETFL) | O_NONBLOCK);
    link_decoder_init(&b->dec);
    b->txq_off = b->txq_len = 0;
    /* A new device starts with its whole window: what the old one left in
     * the queue is not its to be credited for. */
    b->con_credited = b->con.tx_gone + b->con.tx_len;
    /* An empty UART buffer; what was typed while no CPU ran is gone, as on
     * a UART with nothing behind it. */
    b->uart_rx_room = DEV_UART_RX_WINDOW;
    b->rxq_len = 0;
    b->started_ms = now_ms();
    b->restart_at_ms = -1;
    write_pid_file(b, pid);
    report_nic_stats(b);
    return 0;
}

static void device_gone(struct board *b, int status)
{
    if (b->dev_fd >= 0)
        close(b->dev_fd);
    b->dev_fd = -1;
    b->dev_pid = 0;
    b->txq_off = b->txq_len = 0;
    if (WIFEXITED(status) && WEXITSTATUS(status) == DEV_EXIT_RESET)
        b->next_cause = HAL_RESET_SOFTWARE;
    else if (WIFEXITED(status) && WEXITSTATUS(status) == DEV_EXIT_POWER_CUT)
        b->next_cause = HAL_RESET_POWER_ON; /* the power came back */
    else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
        b->next_cause = HAL_RESET_WATCHDOG;
    else
        b->next_cause = HAL_RESET_FAULT;
    int64_t ran = now_ms() - b->started_ms;
    unsigned delay = 0;
    if (b->next_cause != HAL_RESET_SOFTWARE && ran < QUICK_CRASH_MS) {
        b->quick_crashes++;
        delay = 250u << (b->quick_crashes < 5 ? b->quick_crashes : 5);
        if (delay > BACKOFF_MAX_MS)
            delay = BACKOFF_MAX_MS;
    } else {
        b->quick_crashes = 0;
    }
    if (b->next_cause != HAL_RESET_SOFTWARE) {
        if (WIFSIGNALED(status))
            boardlog("device stopped by signal %d: reset (%s)", WTERMSIG(status),
                     hal_reset_cause_name(b->next_cause));
        else
            boardlog("device exited with status %d: reset", WEXITSTATUS(status));
    }
    b->restart_at_ms = now_ms() + delay;
}

static void reap(struct board *b)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
        if (pid == b->dev_pid)
            device_gone(b, status);
        else
            tapnet_reaped(b->tap, pid, status);
}

static void power_off(struct board *b)
{
    if (b->dev_pid > 0) {
        kill(b->dev_pid, SIGTERM);
        int64_t deadline = now_ms() + POWER_OFF_GRACE_MS;
        int status;
        while (waitpid(b->dev_pid, &status, WNOHANG) == 0) {
            if (now_ms() > deadline) {
                kill(b->dev_pid, SIGKILL);
                waitpid(b->dev_pid, &status, 0);
                break;
            }
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        b->dev_pid = 0;
    }
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/%s", b->state, DEV_PID_FILE);
    unlink(path);
}

/* --- traffic --- */

static void feed_uart(struct board *b);

static void on_device_msg(void *ctx, uint8_t type, const uint8_t *p, size_t len)
{
    struct board *b = ctx;
    if (type == LINK_ETH)
        net_send(b, p, len);
    else if (type == LINK_UART)
        conport_write(&b->con, p, len);
    else if (type == LINK_UART_RX_CREDIT && len == 4) {
        uint32_t n = ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
        b->uart_rx_room = n > DEV_UART_RX_WINDOW - b->uart_rx_room ? DEV_UART_RX_WINDOW
                                                                    : b->uart_rx_room + n;
        feed_uart(b);
    }
}

static void on_net_frame(void *ctx, const uint8_t *frame, size_t len)
{
    queue_to_device(ctx, LINK_ETH, frame, len);
}

static void device_readable(struct board *b)
{
    uint8_t buf[65536];
    for (;;) {
        ssize_t n = read(b->dev_fd, buf, sizeof buf);
        if (n > 0) {
            if (link_decoder_feed(&b->dec, buf, (size_t)n, on_device_msg, b) != 0) {
                boardlog("device sent a corrupt link stream: resetting it");
                kill(b->dev_pid, SIGKILL);
                return;
            }
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        return; /* EAGAIN, or EOF: the exit arrives as SIGCHLD */
    }
}

static void device_writable(struct board *b)
{
    while (b->txq_len) {
        ssize_t n = write(b->dev_fd, b->txq + b->txq_off, b->txq_len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        b->txq_off += (size_t)n;
        b->txq_len -= (size_t)n;
    }
    b->txq_off = 0;
}

/* Typed input goes to the device no faster than its UART buffer empties
 * (LINK_UART_RX_CREDIT), like a UART with RTS/CTS. */
static void feed_uart(struct board *b)
{
    while (b->rxq_len && b->uart_rx_room && b->dev_fd >= 0) {
        size_t n = b->rxq_len;
        if (n > b->uart_rx_room)
            n = b->uart_rx_room;
        if (n > LINK_PAYLOAD_MAX)
            n = LINK_PAYLOAD_MAX;
        if (queue_to_device(b, LINK_UART, b->rxq, n) != 0)
            return; /* the link queue is full: next turn */
        b->uart_rx_room -= (uint32_t)n;
        memmove(b->rxq, b->rxq + n, b->rxq_len - n);
        b->rxq_len -= n;
    }
}

static void console_readable(struct board *b)
{
    int quit = 0;
    size_t room = sizeof b->rxq - b->rxq_len;
    if (!room)
        return; /* a hangup seen while full: read once there is room */
    int n = conport_read(&b->con, b->rxq + b->rxq_len, room < 1024 ? room : 1024, &quit);
    if (n > 0)
        b->rxq_len += (size_t)n;
    feed_uart(b);
    if (quit)
        b->quit = 1;
}

static void handle_signals(struct board *b)
{
    struct signalfd_siginfo si;
    while (read(b->sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGCHLD)
            reap(b);
        else
            b->quit = 1;
    }
}

static int run(struct board *b)
{
    struct pollfd pfds[MAX_POLLFDS];
    while (!b->quit) {
        if (!b->dev_pid && b->restart_at_ms >= 0 && now_ms() >= b->restart_at_ms)
            if (start_device(b) != 0)
                return 1;
        size_t n = 0;
        pfds[n++] = (struct pollfd){.fd = b->sigfd, .events = POLLIN};
        /* A full input queue is not read: the pty holds the rest (and a
         * hangup waits too: polling it would spin). */
        pfds[n++] = (struct pollfd){.fd = b->rxq_len < sizeof b->rxq ? b->con.in_fd : -1,
                                    .events = POLLIN};
        pfds[n++] = (struct pollfd){.fd = b->dev_fd,
                                    .events = (short)(POLLIN | (b->txq_len ? POLLOUT : 0))};
        int timeout = -1;
        if (!b->dev_pid && b->restart_at_ms >= 0) {
            int64_t left = b->restart_at_ms - now_ms();
            timeout = left < 0 ? 0 : (int)left;
        }
        net_fill(b, pfds, &n, &timeout);
        /* Console output waiting for the reader: look again soon (the pty
         * says nothing when the reader takes bytes). */
        if (conport_flush(&b->con) && (timeout < 0 || timeout > CONSOLE_PACE_MS))
            timeout = CONSOLE_PACE_MS;
        int rc = poll(pfds, n, timeout);
        if (rc < 0 && errno != EINTR)
            return die("poll: %s", strerror(errno));
        if (rc > 0) {
            if (pfds[0].revents)
                handle_signals(b);
            if (pfds[1].revents && b->con.in_fd >= 0)
                console_readable(b);
            if (b->dev_fd >= 0 && (pfds[2].revents & (POLLIN | POLLHUP)))
                device_readable(b);
        }
        net_poll(b, pfds, rc < 0);
        if (net_egress_dropped(b) != b->egress_reported)
            report_nic_stats(b);
        conport_flush(&b->con);
        report_uart_credit(b);
        feed_uart(b); /* input held back while the link queue was full */
        if (b->dev_fd >= 0 && b->txq_len)
            device_writable(b);
        if (b->con.tx_dropped != b->con_dropped_logged) {
            boardlog("console output dropped: %llu bytes in all (nobody read the console)",
                     (unsigned long long)b->con.tx_dropped);
            b->con_dropped_logged = b->con.tx_dropped;
        }
    }
    return 0;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: relay-board [--state DIR] [--net slirp|tap] [--smtp-port N]\n"
            "                   [--console stdio|pty] [--image FILE] [--boot FILE]\n"
            "                   [--clock-unset] [--recovery] [--flash-cut-after N]\n");
}

int main(int argc, char **argv)
{
    static struct board b;
    const char *state = "sim-state", *net = "slirp", *console = "stdio", *image = NULL;
    const char *boot = NULL;
    char err[256];
    long smtp_port = 2525;
    int smtp_port_given = 0;
    static const struct option opts[] = {
        {"state", required_argument, NULL, 's'}, {"net", required_argument, NULL, 'n'},
        {"smtp-port", required_argument, NULL, 'p'}, {"console", required_argument, NULL, 'c'},
        {"image", required_argument, NULL, 'i'}, {"boot", required_argument, NULL, 'b'},
        {"clock-unset", no_argument, NULL, 'u'}, {"recovery", no_argument, NULL, 'r'},
        {"flash-cut-after", required_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int opt;
    b.flash_cut = -1;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
        case 's': state = optarg; break;
        case 'n': net = optarg; break;
        case 'c': console = optarg; break;
        case 'i': image = optarg; break;
        case 'b': boot = optarg; break;
        case 'u': b.clock_unset = 1; break;
        case 'r': b.recovery = 1; break;
        case 'f': {
            char *end;
            b.flash_cut = strtol(optarg, &end, 10);
            if (*end || b.flash_cut < 0)
                return die("--flash-cut-after must be a count of flash operations");
            break;
        }
        case 'p': {
            char *end;
            smtp_port = strtol(optarg, &end, 10);
            if (*end || smtp_port < 1 || smtp_port > 65535)
                return die("--smtp-port must be 1..65535, not '%s'", optarg);
            smtp_port_given = 1;
            break;
        }
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    int use_tap = strcmp(net, "tap") == 0;
    if (!use_tap && strcmp(net, "slirp") != 0)
        return die("--net must be slirp or tap, not '%s'", net);
    /* In tap mode nothing listens on host loopback: a port given for it
     * would be silently unused, so it is refused instead. */
    if (use_tap && smtp_port_given)
        return die("--smtp-port has no meaning with --net tap: clients connect to the "
                   "device's own address, port 25 (printed as \"tap: device ...\")");
    enum conport_mode mode;
    if (strcmp(console, "stdio") == 0)
        mode = CONPORT_STDIO;
    else if (strcmp(console, "pty") == 0)
        mode = CONPORT_PTY;
    else
        return die("--console must be stdio or pty, not '%s'", console);

    if (mkdir(state, 0700) != 0 && errno != EEXIST)
        return die("cannot create state directory %s: %s", state, strerror(errno));
    if (!realpath(state, b.state))
        return die("state directory %s: %s", state, strerror(errno));
    if (boot) {
        snprintf(b.boot_path, sizeof b.boot_path, "%s", boot);
    } else {
        /* relay-boot lives beside relay-board in the build tree. */
        char self[PATH_MAX - 16];
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n <= 0)
            return die("cannot find relay-boot: pass --boot");
        self[n] = '\0';
        *strrchr(self, '/') = '\0';
        snprintf(b.boot_path, sizeof b.boot_path, "%s/relay-boot", self);
    }
    if (access(b.boot_path, X_OK) != 0)
        return die("boot stage %s: %s", b.boot_path, strerror(errno));
    if (lock_state(b.state))
        return 1;
    /* From here on diagnostics go to the state directory's board.log
     * (and to stderr only in pty mode): in stdio mode they would land in
     * the middle of the appliance's console. */
    if (boardlog_open(b.state, mode == CONPORT_PTY, err, sizeof err) != 0)
        boardlog("%s; diagnostics go to stderr", err);
    if (ensure_secret(b.state))
        return 1;
    if (image && load_image(b.state, image))
        return 1;

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    b.sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (b.sigfd < 0)
        return die("signalfd: %s", strerror(errno));
    signal(SIGPIPE, SIG_IGN);

    char tap_line[256] = "";
    if (use_tap) {
        b.tap = tapnet_new(on_net_frame, &b, err, sizeof err);
        if (!b.tap)
            return die("network: %s", err);
        const struct tapnet_info *ti = tapnet_info(b.tap);
        snprintf(tap_line, sizeof tap_line, "tap: device %s host %s/%u hostif %s netns %s",
                 ti->device, ti->host, ti->prefix, ti->hostif, ti->netns);
        boardlog("%s", tap_line);
    } else {
        b.net = slirpnet_new((uint16_t)smtp_port, on_net_frame, &b, err, sizeof err);
        if (!b.net)
            return die("network: %s", err);
    }
    b.txq = malloc(TXQ_MAX);
    if (!b.txq)
        return die("out of memory");
    if (conport_open(&b.con, mode, err, sizeof err) != 0)
        return die("console: %s", err);
    if (mode == CONPORT_PTY) {
        /* Parsed by tools (relaysim.py): the addresses, then the console. */
        if (tap_line[0])
            printf("%s\n", tap_line);
        printf("console: %s\n", b.con.path);
        fflush(stdout);
    } else if (conport_raw_stdio(&b.con)) {
        /* The one line of the simulator's own on this console: how to
         * leave, and where its messages went, before the appliance talks. */
        if (tap_line[0])
            fprintf(stderr, "board: %s\r\n", tap_line);
        fprintf(stderr, "board: console on this terminal; Ctrl-A x quits; board messages go "
                "to %s/%s\r\n", b.state, BOARDLOG_FILE);
    }
    b.dev_fd = -1;
    b.next_cause = HAL_RESET_POWER_ON;
    b.restart_at_ms = 0;
    int rc = run(&b);
    power_off(&b);
    conport_close(&b.con);
    slirpnet_free(b.net);
    tapnet_free(b.tap);
    boardlog("powered off");
    return rc;
}
