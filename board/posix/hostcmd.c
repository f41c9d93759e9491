/* hostcmd.c — running ip(8) and dnsmasq for the board; see hostcmd.h. */
#define _GNU_SOURCE
#include "hostcmd.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "boardlog.h"

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "ip link add ..." for messages: the program's base name and arguments. */
static void describe(char *const argv[], char *out, size_t cap)
{
    const char *base = strrchr(argv[0], '/');
    size_t n = (size_t)snprintf(out, cap, "%s", base ? base + 1 : argv[0]);
    for (int i = 1; argv[i] && n < cap; i++)
        n += (size_t)snprintf(out + n, cap - n, " %s", argv[i]);
}

/* In the child, before exec: what every program gets (see hostcmd.h).
 * Only async-signal-safe calls: the board may hold any lock at fork. */
static void child_setup(pid_t board)
{
    setpgid(0, 0);
    /* The board blocks these for its signalfd; a blocked SIGTERM would
     * survive exec and make the program deaf to it. */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != board) /* the board died before prctl: follow it now */
        _exit(127);
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
        dup2(null, STDIN_FILENO);
        dup2(null, STDOUT_FILENO);
        if (null > STDERR_FILENO)
            close(null);
    }
}

int hostcmd_run(char *const argv[], int netns_fd, int keep_fd, char *err, size_t errlen)
{
    char what[256];
    describe(argv, what, sizeof what);
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) != 0) {
        snprintf(err, errlen, "%s: pipe: %s", what, strerror(errno));
        return -1;
    }
    pid_t board = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "%s: fork: %s", what, strerror(errno));
        close(pipefd[0]);
        close(pipefd[1]);
        return -1;
    }
    if (pid == 0) {
        child_setup(board);
        dup2(pipefd[1], STDERR_FILENO);
        if (netns_fd >= 0 && setns(netns_fd, CLONE_NEWNET) != 0)
            _exit(126);
        if (keep_fd >= 0)
            fcntl(keep_fd, F_SETFD, 0);
        execv(argv[0], argv);
        _exit(127);
    }
    close(pipefd[1]);
    /* What it says on stderr becomes the error; the rest of a long message
     * is read and dropped so the program never blocks on a full pipe. */
    char text[512];
    size_t len = 0;
    long long deadline = now_ms() + HOSTCMD_TIMEOUT_MS;
    int timed_out = 0;
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0) {
            timed_out = 1;
            kill(pid, SIGKILL);
            break;
        }
        struct pollfd pfd = {.fd = pipefd[0], .events = POLLIN};
        int rc = poll(&pfd, 1, (int)left);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0)
            continue; /* the deadline check above ends it */
        char buf[256];
        ssize_t n = read(pipefd[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* EOF: it exited (or closed stderr) */
        size_t take = (size_t)n < sizeof text - 1 - len ? (size_t)n : sizeof text - 1 - len;
        memcpy(text + len, buf, take);
        len += take;
    }
    close(pipefd[0]);
    text[len] = '\0';
    while (len && (text[len - 1] == '\n' || text[len - 1] == ' '))
        text[--len] = '\0';
    for (char *p = text; *p; p++)
        if (*p == '\n')
            *p = ' '; /* one line in the board log */
    /* A program that closed stderr and kept running gets the same deadline. */
    int status = 0;
    for (;;) {
        pid_t w = waitpid(pid, &status, timed_out ? 0 : WNOHANG);
        if (w == pid || (w < 0 && errno != EINTR))
            break;
        if (w == 0 && now_ms() >= deadline) {
            timed_out = 1;
            kill(pid, SIGKILL);
        } else if (w == 0) {
            struct timespec ts = {0, 2 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    if (!timed_out && WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (timed_out)
        snprintf(err, errlen, "%s: no answer within %d s", what, HOSTCMD_TIMEOUT_MS / 1000);
    else if (text[0])
        snprintf(err, errlen, "%s: %s", what, text);
    else if (WIFEXITED(status) && WEXITSTATUS(status) == 126)
        snprintf(err, errlen, "%s: cannot enter the network namespace", what);
    else if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
        snprintf(err, errlen, "%s: cannot run %s (installed by tools/bootstrap)", what, argv[0]);
    else if (WIFEXITED(status))
        snprintf(err, errlen, "%s: exit status %d", what, WEXITSTATUS(status));
    else
        snprintf(err, errlen, "%s: killed by signal %d", what, WTERMSIG(status));
    return -1;
}

pid_t hostcmd_spawn(char *const argv[], char *err, size_t errlen)
{
    char what[256];
    describe(argv, what, sizeof what);
    if (access(argv[0], X_OK) != 0) {
        snprintf(err, errlen, "%s: %s (installed by tools/bootstrap)", argv[0], strerror(errno));
        return -1;
    }
    pid_t board = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "%s: fork: %s", what, strerror(errno));
        return -1;
    }
    if (pid == 0) {
        child_setup(board);
        boardlog_redirect_child_stderr();
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}
