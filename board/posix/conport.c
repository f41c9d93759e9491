/* conport.c — pty and stdio console ports; see conport.h. */
#define _GNU_SOURCE
#include "conport.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static int open_pty(struct conport *cp, char *err, size_t errlen)
{
    int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0) {
        snprintf(err, errlen, "pty: %s", strerror(errno));
        if (master >= 0)
            close(master);
        return -1;
    }
    const char *name = ptsname(master);
    if (!name) {
        snprintf(err, errlen, "ptsname: %s", strerror(errno));
        close(master);
        return -1;
    }
    snprintf(cp->path, sizeof cp->path, "%s", name);
    cp->slave_fd = open(cp->path, O_RDWR | O_NOCTTY | O_CLOEXEC);
    struct termios tio;
    if (cp->slave_fd < 0 || tcgetattr(cp->slave_fd, &tio) != 0) {
        snprintf(err, errlen, "open %s: %s", cp->path, strerror(errno));
        close(master);
        return -1;
    }
    cfmakeraw(&tio);
    tcsetattr(cp->slave_fd, TCSANOW, &tio);
    set_nonblock(master);
    cp->in_fd = cp->out_fd = master;
    return 0;
}

static int open_stdio(struct conport *cp)
{
    cp->in_fd = STDIN_FILENO;
    cp->out_fd = STDOUT_FILENO;
    if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &cp->saved) == 0) {
        struct termios raw = cp->saved;
        cfmakeraw(&raw);
        /* Keep output post-processing so board messages stay readable. */
        raw.c_oflag |= OPOST | ONLCR;
        if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0)
            cp->restore = 1;
    }
    cp->stdin_flags = fcntl(STDIN_FILENO, F_GETFL);
    set_nonblock(STDIN_FILENO);
    return 0;
}

int conport_open(struct conport *cp, enum conport_mode mode, char *err, size_t errlen)
{
    memset(cp, 0, sizeof *cp);
    cp->mode = mode;
    cp->in_fd = cp->out_fd = cp->slave_fd = -1;
    cp->stdin_flags = -1;
    return mode == CONPORT_PTY ? open_pty(cp, err, errlen) : open_stdio(cp);
}

int conport_read(struct conport *cp, uint8_t *buf, size_t cap, int *quit)
{
    *quit = 0;
    if (cp->in_fd < 0)
        return -1;
    uint8_t raw[1024];
    if (cap > sizeof raw)
        cap = sizeof raw;
    ssize_t n = read(cp->in_fd, raw, cap);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR && errno != EIO)) {
        if (cp->mode == CONPORT_STDIO)
            cp->in_fd = -1; /* stdin closed: keep running without input */
        return -1;
    }
    if (n < 0)
        return 0;
    if (cp->mode == CONPORT_STDIO)
        return (int)conesc_filter(&cp->esc, raw, (size_t)n, buf, quit);
    memcpy(buf, raw, (size_t)n);
    return (int)n;
}

size_t conport_flush(struct conport *cp)
{
    while (cp->tx_len && cp->out_fd >= 0) {
        int unread = 0;
        if (ioctl(cp->slave_fd, FIONREAD, &unread) != 0)
            unread = 0;
        if (unread >= CONPORT_SLAVE_HIGH)
            break; /* the reader has enough to read for now */
        size_t n = (size_t)(CONPORT_SLAVE_HIGH - unread);
        if (n > cp->tx_len)
            n = cp->tx_len;
        ssize_t w = write(cp->out_fd, cp->tx, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        memmove(cp->tx, cp->tx + w, cp->tx_len - (size_t)w);
        cp->tx_len -= (size_t)w;
        cp->tx_gone += (size_t)w;
    }
    return cp->tx_len;
}

void conport_write(struct conport *cp, const uint8_t *data, size_t len)
{
    if (cp->mode == CONPORT_PTY) {
        if (!cp->tx && !(cp->tx = malloc(CONPORT_TXQ_MAX))) {
            cp->tx_dropped += len;
            cp->tx_gone += len;
            return;
        }
        size_t room = CONPORT_TXQ_MAX - cp->tx_len;
        size_t take = len < room ? len : room;
        memcpy(cp->tx + cp->tx_len, data, take);
        cp->tx_len += take;
        cp->tx_dropped += len - take; /* nobody has read a whole queue */
        cp->tx_gone += len - take;
        conport_flush(cp);
        return;
    }
    cp->tx_gone += len; /* stdio: written now or dropped, never held */
    while (len) {
        ssize_t n = write(cp->out_fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* full or gone: drop, as a serial line does */
        data += n;
        len -= (size_t)n;
    }
}

void conport_close(struct conport *cp)
{
    if (cp->restore) {
        tcsetattr(STDIN_FILENO, TCSANOW, &cp->saved);
        cp->restore = 0;
    }
    if (cp->mode == CONPORT_STDIO && cp->stdin_flags >= 0) {
        fcntl(STDIN_FILENO, F_SETFL, cp->stdin_flags);
        cp->stdin_flags = -1;
    }
    if (cp->mode == CONPORT_PTY) {
        if (cp->in_fd >= 0)
            close(cp->in_fd);
        if (cp->slave_fd >= 0)
            close(cp->slave_fd);
        cp->in_fd = cp->out_fd = cp->slave_fd = -1;
        free(cp->tx);
        cp->tx = NULL;
        cp->tx_len = 0;
    }
}

int conport_raw_stdio(const struct conport *cp) { return cp->restore; }
