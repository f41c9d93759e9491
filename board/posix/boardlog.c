/* boardlog.c — the board's diagnostics file; see boardlog.h. */
#define _GNU_SOURCE
#include "boardlog.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int log_fd = -1;
static int copy_to_stderr = 1; /* until boardlog_open says otherwise */
static long log_bytes;
static char log_path[PATH_MAX + 16];

static int open_log(void)
{
    log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log_fd < 0)
        return -1;
    struct stat st;
    log_bytes = fstat(log_fd, &st) == 0 ? (long)st.st_size : 0;
    return 0;
}

int boardlog_open(const char *state_dir, int to_stderr, char *err, size_t errlen)
{
    snprintf(log_path, sizeof log_path, "%s/%s", state_dir, BOARDLOG_FILE);
    if (open_log() != 0) {
        snprintf(err, errlen, "cannot open %s: %s", log_path, strerror(errno));
        return -1;
    }
    copy_to_stderr = to_stderr;
    return 0;
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* a full disk loses diagnostics, never the board */
        p += w;
        n -= (size_t)w;
    }
}

static void rotate_if_full(void)
{
    if (log_bytes < BOARDLOG_MAX_BYTES)
        return;
    char old[sizeof log_path + 2];
    snprintf(old, sizeof old, "%s.1", log_path);
    close(log_fd);
    log_fd = -1;
    rename(log_path, old);
    open_log();
}

static void emit(int force_stderr, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void emit(int force_stderr, const char *fmt, va_list ap)
{
    char line[BOARDLOG_LINE_MAX];
    int n = snprintf(line, sizeof line, "board: ");
    int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    size_t len = (size_t)n + (m > 0 ? (size_t)m : 0);
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    line[len++] = '\n';
    if (log_fd >= 0) {
        write_all(log_fd, line, len);
        log_bytes += (long)len;
        rotate_if_full();
    }
    if (log_fd < 0 || copy_to_stderr || force_stderr)
        write_all(STDERR_FILENO, line, len);
}

void boardlog(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit(0, fmt, ap);
    va_end(ap);
}

void boardlog_fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit(1, fmt, ap);
    va_end(ap);
}

void boardlog_redirect_child_stderr(void)
{
    if (log_fd >= 0 && !copy_to_stderr)
        dup2(log_fd, STDERR_FILENO); /* dup2 clears O_CLOEXEC on the copy */
}
