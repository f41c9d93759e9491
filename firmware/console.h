/* console.h — the serial console: line discipline and command dispatch.
 *
 * Sans-I/O: bytes typed on the UART go in through console_feed(), text for
 * the terminal comes out through the write function given at init. Commands
 * are rows of tables `{name, sub, usage, help, run}`, one table per module,
 * so adding a command never touches this file.
 *
 * Conventions every command follows (DESIGN.md): one clear line on success,
 * exactly one line starting with "error: " on failure, and no change when it
 * fails. The prompt ends in "> ". Output uses "\n"; the console sends
 * "\r\n" to the terminal. */
#ifndef CONSOLE_H
#define CONSOLE_H

#include <stddef.h>
#include <stdint.h>

#include "jsonw.h"

/* Longest line accepted, without the terminator; a longer line is refused
 * whole rather than run truncated (the bell rings at the first byte that
 * does not fit; nothing already typed is overwritten). */
#define CONSOLE_LINE_MAX 255
/* Most words in one command line. */
#define CONSOLE_ARGS_MAX 16
/* Command lines kept for the up/down arrows (lines typed at a password or
 * other asked-for prompt are never kept). */
#define CONSOLE_HISTORY 32
/* Bytes typed (or pasted) while a command runs on (console_busy), kept to
 * run in order once it is done. The UART HAL cannot hold input back (the
 * board drops what its RX ring cannot take), so this must absorb a whole
 * pasted script: 50 lines of 100 characters with CR LF are 5100 bytes. A
 * paste past it rings the bell; the complete lines kept still run, the rest
 * is discarded with an error line. */
#define CONSOLE_TYPEAHEAD 8192
/* Terminal width help output and completion lists are wrapped to. */
#define CONSOLE_WIDTH 80
/* Text a command prints in JSON mode without a JSON form of its own ("ok:",
 * "warning:" and "error:" lines), gathered into its one object. Such
 * commands print a line or two; data commands write JSON themselves. */
#define CONSOLE_CAPTURE_MAX 2048
/* A long output (console_stream) makes its next rows only when the
 * terminal can take this much more without waiting. */
#define CONSOLE_STREAM_ROOM 2048
/* Steps of a long output per console_poll(): then the loop serves the
 * network again. */
#define CONSOLE_STREAM_TURNS 4

struct console;

/* A command handler gets the words after its name (and sub-command). It
 * returns 0 on success, or the result of console_error() on failure. */
typedef int (*console_run_fn)(struct console *con, int argc, char **argv);

struct console_cmd {
    const char *name;  /* first word; NULL ends a table */
    const char *sub;   /* second word, or NULL for a one-word command */
    const char *usage; /* arguments after the words; "" when none */
    const char *help;  /* one line, no trailing period */
    console_run_fn run;
};

typedef void (*console_write_fn)(void *ctx, const char *data, size_t len);

/* A handler returns this when it asked for more input (console_ask_secret)
 * and will finish later: the prompt is not printed yet. */
#define CONSOLE_PENDING 1

/* Receives the next line typed at a console_ask_secret() prompt, or NULL
 * when the user pressed Ctrl-C. The line buffer is wiped after the call. */
typedef void (*console_secret_fn)(struct console *con, const char *line, void *ctx);

/* One step of a long output (console_stream): print the next rows (about
 * CONSOLE_STREAM_ROOM bytes at most) and return 1 while more follow, 0
 * once the output is complete. With `cancel` (Ctrl-C), print nothing more
 * than what ends the output properly (JSON closes its brackets), release
 * what the output holds, and return 0. */
typedef int (*console_step_fn)(struct console *con, void *ctx, int cancel);

/* Bytes the terminal can take now without waiting (console_set_tx_room). */
typedef size_t (*console_room_fn)(void *ctx);

struct console {
    const struct console_cmd *const *tables; /* NULL-terminated list of tables */
    const char *prompt;
    console_write_fn write;
    void *write_ctx;
    const struct console_cmd *current; /* command running now, for usage errors */
    char line[CONSOLE_LINE_MAX + 1];
    size_t len;
    size_t cursor;    /* edit position in line, 0..len */
    uint8_t overflow; /* the line grew past CONSOLE_LINE_MAX; refuse it at Enter */
    uint8_t last_cr;  /* previous byte was CR, so a following LF is the same Enter */
    uint8_t esc;      /* escape sequence state (console.c), kept across feeds */
    uint8_t esc_mod;  /* the CSI sequence has modifiers (e.g. Ctrl+arrow): unbound */
    uint16_t esc_arg; /* numeric parameter of the CSI sequence so far */
    uint8_t in_line;  /* a finished line is being handled (command or asked line) */
    /* history: a ring of the last CONSOLE_HISTORY command lines */
    char hist[CONSOLE_HISTORY][CONSOLE_LINE_MAX + 1];
    uint8_t hist_count, hist_next; /* entries kept; slot the next one goes to */
    uint8_t hist_pos;              /* 0: editing a new line; k: k-th newest shown */
    char draft[CONSOLE_LINE_MAX + 1]; /* the new line, kept while browsing */
    /* typeahead: input that arrived while a command was busy */
    uint8_t ahead[CONSOLE_TYPEAHEAD];
    size_t ahead_head, ahead_len;
    uint8_t ahead_overflow; /* bytes were discarded; said when the command ends */
    console_secret_fn secret_fn; /* set while a line is asked for */
    void *secret_ctx;
    uint8_t ask_echo;            /* the asked line is echoed (not a secret) */
    void (*busy_cancel)(struct console *con, void *ctx); /* set while a command runs on */
    void *busy_ctx;
    /* console_ask_new_password() in progress */
    int (*pw_check)(const char *password, char *err, size_t errlen);
    void (*pw_done)(struct console *con, const char *password, void *ctx);
    void *pw_ctx;
    char pw_first[CONSOLE_LINE_MAX + 1];
    const char *pw_repeat_prompt;
    uint8_t locked; /* nobody is logged in: no command line runs (login.h) */
    /* output */
    console_room_fn tx_room; /* NULL: the terminal takes everything at once */
    uint8_t json;            /* `output json`: one JSON object per command */
    uint8_t capture;         /* gathering the running command's text for its object */
    uint8_t ran;             /* a command ran (or failed to parse) since exec began */
    uint8_t native;          /* the running command writes its own JSON */
    uint8_t cap_cut;         /* the gathered text was longer than cap */
    char cap[CONSOLE_CAPTURE_MAX];
    size_t cap_len;
    /* The first "error:" and "ok:" texts, kept apart: a long progress
     * transcript that fills cap must not turn a failure into success. */
    char cap_error[512], cap_ok[256];
    struct jsonw jw;         /* the running command's JSON writer */
    console_step_fn step;    /* the long output running, if any */
    void *step_ctx;
    void (*drain)(void *ctx); /* push all output to the line now (console_set_drain) */
};

void console_init(struct console *con, const struct console_cmd *const *tables,
                  const char *prompt, console_write_fn write, void *write_ctx);
/* How much the terminal takes now (called with write_ctx); long outputs
 * wait for room instead of piling up. */
void console_set_tx_room(struct console *con, console_room_fn room);
/* How to push everything written so far out to the line, waiting if need
 * be (called with write_ctx); for console_finish(). */
void console_set_drain(struct console *con, void (*drain)(void *ctx));
/* The running command's output is complete (its JSON object is written)
 * and on the line: call before a reset, which would lose what is queued. */
void console_finish(struct console *con);
/* Print the prompt; call once the boot banner is out. */
void console_prompt(struct console *con);
/* Feed bytes typed on the terminal: edits the line, echoes, runs commands. */
void console_feed(struct console *con, const uint8_t *data, size_t len);
/* Run one command line (modified in place); returns the handler's result,
 * or -1 when the line itself is malformed. Used by console_feed and tests. */
int console_exec(struct console *con, char *line);

void console_write(struct console *con, const char *text);
void console_printf(struct console *con, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Print "error: <message>" as one line; returns -1 for handlers to return. */
int console_error(struct console *con, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* "error: usage: <name> [sub] <usage>" for the running command; returns -1. */
int console_usage(struct console *con);
/* Ask for a secret: print `prompt` (it must end in "password: "), read the
 * next line without echo and hand it to `fn`. Called from a handler (which
 * then returns CONSOLE_PENDING) or from a previous `fn` to ask again. The
 * handler's argv points into the line buffer the secret will be typed into:
 * copy what you need first. */
void console_ask_secret(struct console *con, const char *prompt, console_secret_fn fn, void *ctx);

/* Ask for a new password twice ("password: ", "repeat password: "), without
 * echo. `check` (may be NULL) vets the first entry and returns 0 or -1 with
 * a reason; then `done` gets the password, or NULL after an `error:` line
 * was printed (refused, mismatch, Ctrl-C) — nothing must change then. The
 * copies are wiped once `done` returns. */
void console_ask_new_password(struct console *con,
                              int (*check)(const char *password, char *err, size_t errlen),
                              void (*done)(struct console *con, const char *password, void *ctx),
                              void *ctx);

/* The same with other prompts: `prompt` first, then `repeat_prompt` (both
 * ending in "password: "), e.g. "new admin password: ". */
void console_ask_new_password_as(struct console *con, const char *prompt,
                                 const char *repeat_prompt,
                                 int (*check)(const char *password, char *err, size_t errlen),
                                 void (*done)(struct console *con, const char *password,
                                              void *ctx),
                                 void *ctx);

/* Ask for a line that is not secret (echoed), e.g. pasted PEM text. */
void console_ask_line(struct console *con, const char *prompt, console_secret_fn fn, void *ctx);

/* A command that goes on after its handler returned (CONSOLE_PENDING), e.g.
 * `smarthost test`: Ctrl-C calls `cancel` (and discards input typed ahead);
 * other input is kept (CONSOLE_TYPEAHEAD) and runs, in order, once
 * console_done() has ended the command and brought the prompt back.
 * console_done() may be called from the handler itself: the prompt then
 * comes when the handler returns. */
void console_busy(struct console *con, void (*cancel)(struct console *con, void *ctx), void *ctx);
void console_done(struct console *con);
int console_is_busy(const struct console *con);
/* End the busy state without bringing the prompt back: the caller asks for
 * a line next (the login's "password: " after a check), then calls
 * console_resume(). With `discard`, what was typed meanwhile is thrown
 * away (typed during a wrong-password delay, it must not become the next
 * guess); otherwise it answers what is asked next. */
void console_end_busy(struct console *con, int discard);
/* Run input typed ahead; after console_end_busy() and the new question. */
void console_resume(struct console *con);
/* 1 while a line is asked for (a password prompt of a command or login). */
int console_is_asking(const struct console *con);
/* Lock or unlock the command line: while locked, console_exec runs
 * nothing and says so (defence in depth behind the login prompt). */
void console_set_locked(struct console *con, int locked);

/* A long output: the handler prepares `ctx`, calls this and returns
 * CONSOLE_PENDING. `step` then runs from console_poll() as the terminal
 * drains (the command is busy meanwhile: typed lines wait, Ctrl-C ends the
 * output), and the prompt comes when it returns 0. */
void console_stream(struct console *con, console_step_fn step, void *ctx);
/* A long output that cannot go on (a storage error between pages): in
 * text an error line; in JSON an "error" member of the command's object,
 * after closing the list it was in. The step then returns 0. */
void console_stream_error(struct console *con, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Run due steps of a long output; call once per loop turn. Returns 1 when
 * a step could run again at once (do not sleep), 0 otherwise. */
int console_poll(struct console *con);
/* Bytes of input the console can take now: what the typeahead has room
 * for while a command runs, unbounded otherwise. Read no more from the
 * UART: the rest waits there (and, on a UART with flow control, behind
 * it), so a paste behind a long output loses nothing. */
size_t console_input_room(const struct console *con);
/* 1 while a long output runs (console_stream). */
int console_is_streaming(const struct console *con);
/* End what runs as Ctrl-C would (a long output, `smarthost test`); its
 * output ends and the prompt comes back. No-op when nothing runs. */
void console_cancel(struct console *con);


/* --- machine-readable mode (`output json`) ---
 * Every command prints exactly one JSON object on one line. A command
 * without a JSON form gets one made of its text: {"ok": true, "message":
 * <the "ok:" line>, "warnings": [...], "lines": [...]} or {"error": ...}.
 * A data command writes its own: it calls console_json() before printing
 * anything, writes one object through the writer and ends with
 * console_json_end(). console_error() then prints {"error": "..."}. */
/* The writer for the running command in JSON mode, or NULL in text mode.
 * Called again by later steps of the same command, it returns the same
 * writer. */
struct jsonw *console_json(struct console *con);
/* Close what is open and end the line. */
void console_json_end(struct console *con);
/* Switch the session's output mode (`output json|text`). */
void console_set_json(struct console *con, int on);

/* A positive decimal id or count typed as an argument ("42"); 0 when the
 * text is anything else (signs, spaces, hex, more than 15 digits). */
int64_t console_parse_id(const char *text);

/* The optional "[N]" of commands like `log`, `audit`, `queue history`:
 * sets *n to `def` without an argument, or to 1..max; returns 0, or -1
 * after printing the usage or range error. */
int console_count_arg(struct console *con, int argc, char **argv, int def, int max, int *n);

/* List all commands, or only those named `topic` (NULL for all). Returns -1
 * with an error line when `topic` names no command. Each form is printed
 * whole, wrapped at word boundaries to CONSOLE_WIDTH: continuation lines of
 * a form are indented by 6, descriptions start in column 33. A command line
 * ending in the word "?" (`smarthost ?`, `smarthost add ?`) shows the same. */
int console_help(struct console *con, const char *topic);
/* Help for the words typed: none (every command), a command (its forms),
 * a command and sub-command (that form): `help smarthost add`, and what
 * `smarthost add ?` shows. */
int console_help_words(struct console *con, int argc, char **argv);

#endif
