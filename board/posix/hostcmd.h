/* hostcmd.h — the host programs the board runs for the tap wire: ip(8) to
 * build the network, dnsmasq to serve it DHCP.
 *
 * Every program runs with the board's signals unblocked, stdin and stdout
 * on /dev/null (in stdio mode they are the console), in its own process
 * group (a Ctrl-C on the sim's terminal is for the board), and with
 * PR_SET_PDEATHSIG: it dies with the board, even when the board is killed
 * with SIGKILL, so nothing it holds (a network namespace) outlives it.
 * Errors are returned with a message, never printed here. */
#ifndef HOSTCMD_H
#define HOSTCMD_H

#include <stddef.h>
#include <sys/types.h>

/* A program that did not finish within this is killed and reported: the
 * board's loop is not running yet and must not hang on a tool. */
#define HOSTCMD_TIMEOUT_MS 10000

/* Run argv (argv[0] an absolute path, NULL-terminated) to completion. With
 * netns_fd >= 0 it runs in that network namespace (setns) instead of the
 * board's; keep_fd >= 0 is inherited (so the program can name it as
 * /proc/self/fd/N). Returns 0 when it exited with status 0, else -1 with
 * "<argv joined>: <what it printed on stderr, or how it ended>" in err. */
int hostcmd_run(char *const argv[], int netns_fd, int keep_fd, char *err, size_t errlen);

/* Start argv in the background, in the board's network namespace, its
 * stderr where the board's diagnostics go (boardlog.h). Returns its pid
 * (the board reaps it), or -1 with the reason in err. */
pid_t hostcmd_spawn(char *const argv[], char *err, size_t errlen);

#endif
