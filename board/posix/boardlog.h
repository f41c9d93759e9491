/* boardlog.h — the board's own diagnostics, kept off the console.
 *
 * What the simulator itself has to say (a frame the egress filter dropped,
 * a device reset, the SHR_BOARD_TRACE frame trace) is not the appliance's
 * output: on the console an operator would take it for the appliance's.
 * So every board line goes to <state>/board.log, and to stderr only in pty
 * mode, where the console is elsewhere and stderr is the board's own (the
 * test driver keeps it as the board log). Before the state directory is
 * locked there is no log file yet: lines go to stderr, and no console is
 * open yet either.
 *
 * Lines are "board: <text>\n", each written with one write() on an
 * O_APPEND descriptor, so a crash never leaves half a buffered line. The
 * file is bounded: past BOARDLOG_MAX_BYTES it moves to board.log.1 (one
 * old generation is kept) and a new one starts. */
#ifndef BOARDLOG_H
#define BOARDLOG_H

#include <stddef.h>

#define BOARDLOG_FILE "board.log"
/* A busy frame trace writes ~100 bytes per frame; this keeps the last few
 * tens of thousands of frames, twice over with the old generation. */
#define BOARDLOG_MAX_BYTES (8L << 20)
/* One line, cut beyond this. */
#define BOARDLOG_LINE_MAX 512

/* Start writing to <state_dir>/board.log; `to_stderr` also copies every
 * line to stderr (pty mode). -1 with a reason in `err` when the file
 * cannot be opened (lines then go to stderr only). */
int boardlog_open(const char *state_dir, int to_stderr, char *err, size_t errlen);
/* One diagnostic line ("board: " is prepended, "\n" appended). */
void boardlog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A fatal line: like boardlog(), and on stderr in every mode, since the
 * board is about to stop and the operator must see why. */
void boardlog_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* In a freshly forked device: its stderr (sanitizer reports, libc abort
 * messages) goes where board lines go, so in stdio mode it never lands in
 * the middle of the console either. */
void boardlog_redirect_child_stderr(void);

#endif
