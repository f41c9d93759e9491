/* console.c — line discipline and table-driven dispatch; see console.h. */
#include "console.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define CTRL_A 0x01 /* Home, as in readline */
#define CTRL_C 0x03
#define CTRL_E 0x05 /* End */
#define BELL 0x07
#define BACKSPACE 0x08
#define TAB 0x09
#define CTRL_U 0x15
#define CTRL_W 0x17
#define ESC 0x1B
#define DEL 0x7F
#define HELP_INDENT 2  /* a form starts here */
#define HELP_CONT 6    /* continuation lines of a long form: deeper than a form */
#define HELP_COLUMN 30 /* width of the "name sub usage" column in help */
#define HELP_TEXT (HELP_INDENT + HELP_COLUMN + 1) /* where descriptions start */
#define COMPLETE_MAX 64 /* distinct words Tab can offer; more than the tables hold */

/* Escape sequence states: ESC, then CSI (ESC [) or SS3 (ESC O). */
enum { ESC_NONE, ESC_START, ESC_CSI, ESC_SS3 };
/* Editing keys escape sequences map to. */
enum key { KEY_NONE, KEY_UP, KEY_DOWN, KEY_LEFT, KEY_RIGHT, KEY_HOME, KEY_END, KEY_DELETE };

void console_init(struct console *con, const struct console_cmd *const *tables,
                  const char *prompt, console_write_fn write, void *write_ctx)
{
    memset(con, 0, sizeof *con);
    con->tables = tables;
    con->prompt = prompt;
    con->write = write;
    con->write_ctx = write_ctx;
}

void console_set_tx_room(struct console *con, console_room_fn room) { con->tx_room = room; }

void console_set_drain(struct console *con, void (*drain)(void *ctx)) { con->drain = drain; }

/* Send text to the terminal with every "\n" turned into "\r\n": prompts,
 * echo, and command output that is not gathered for JSON. */
static void term_write(struct console *con, const char *text)
{
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (n)
            con->write(con->write_ctx, p, n);
        if (!nl)
            break;
        con->write(con->write_ctx, "\r\n", 2);
        p = nl + 1;
    }
}

/* Command output: to the terminal, or gathered while a command without a
 * JSON form runs in JSON mode. */
void console_write(struct console *con, const char *text)
{
    if (!con->capture) {
        term_write(con, text);
        return;
    }
    /* The first "ok:" line, wherever it starts in this text. */
    int line_start = con->cap_len == 0 || con->cap[con->cap_len - 1] == '\n';
    for (const char *p = text; *p && !con->cap_ok[0]; line_start = 0) {
        if ((line_start || p > text) && strncmp(p, "ok: ", 4) == 0)
            snprintf(con->cap_ok, sizeof con->cap_ok, "%.*s", (int)strcspn(p + 4, "\n"), p + 4);
        const char *nl = strchr(p, '\n');
        if (!nl)
            break;
        p = nl + 1;
    }
    size_t n = strlen(text), room = sizeof con->cap - con->cap_len;
    if (n > room) {
        n = room;
        con->cap_cut = 1;
    }
    memcpy(con->cap + con->cap_len, text, n);
    con->cap_len += n;
}

static void json_sink(void *ctx, const char *data, size_t len)
{
    struct console *con = ctx;
    con->write(con->write_ctx, data, len);
}

struct jsonw *console_json(struct console *con)
{
    if (!con->json)
        return NULL;
    if (!con->native) {
        con->native = 1;
        con->capture = 0;
        con->cap_len = 0;
        jsonw_init(&con->jw, json_sink, con);
    }
    return &con->jw;
}

void console_json_end(struct console *con)
{
    jsonw_finish(&con->jw);
    con->write(con->write_ctx, "\r\n", 2);
}

void console_set_json(struct console *con, int on) { con->json = on ? 1 : 0; }

/* The JSON object of a command that printed text: its "ok:" line as the
 * message, "warning:" lines, an "error:" line, anything else as lines. */
static void emit_captured(struct console *con)
{
    struct jsonw *j = &con->jw; /* `output text` may have just left JSON mode */
    size_t warnings = 0, others = 0;
    if (con->cap_error[0])
        jsonw_string(j, "error", con->cap_error);
    else
        jsonw_bool(j, "ok", 1);
    if (con->cap_ok[0])
        jsonw_string(j, "message", con->cap_ok);
    /* pass 0 counts, 1 writes warnings, 2 writes the other lines; the
     * error and ok lines are the members above */
    for (int pass = 0; pass < 3; pass++) {
        if (pass == 1 && warnings)
            jsonw_array(j, "warnings");
        if (pass == 2 && others)
            jsonw_array(j, "lines");
        for (size_t at = 0; at < con->cap_len;) {
            const char *line = con->cap + at;
            const char *nl = memchr(line, '\n', con->cap_len - at);
            size_t len = nl ? (size_t)(nl - line) : con->cap_len - at;
            at += len + (nl ? 1 : 0);
            int warning = len >= 9 && memcmp(line, "warning: ", 9) == 0;
            if (!len || (len >= 7 && memcmp(line, "error: ", 7) == 0) ||
                (len >= 4 && memcmp(line, "ok: ", 4) == 0))
                continue;
            if (pass == 0)
                warning ? warnings++ : others++;
            else if (pass == 1 && warning)
                jsonw_string_len(j, NULL, line + 9, len - 9);
            else if (pass == 2 && !warning)
                jsonw_string_len(j, NULL, line, len);
        }
        if ((pass == 1 && warnings) || (pass == 2 && others))
            jsonw_end(j);
    }
    if (con->cap_cut)
        jsonw_bool(j, "truncated", 1);
    console_json_end(con);
}

/* The running command has finished: its JSON object, if it is owed one. */
static void command_end(struct console *con)
{
    if (con->capture) {
        con->capture = 0;
        if (con->cap_len || con->ran) {
            jsonw_init(&con->jw, json_sink, con);
            jsonw_object(&con->jw, NULL);
            con->native = 1;
            emit_captured(con);
        }
    }
    memset(con->cap, 0, con->cap_len); /* it may have held a line with a name or key */
    con->cap_len = 0;
    con->cap_error[0] = con->cap_ok[0] = '\0';
    con->cap_cut = 0;
    con->native = 0;
    con->ran = 0;
}

static void console_vprintf(struct console *con, const char *fmt, va_list ap)
{
    char buf[512];
    vsnprintf(buf, sizeof buf, fmt, ap);
    console_write(con, buf);
}

void console_printf(struct console *con, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    console_vprintf(con, fmt, ap);
    va_end(ap);
}

int console_error(struct console *con, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (con->json && !con->capture) {
        /* A data command failing before its output, or an error outside
         * any command (a line too long): one object all the same. */
        struct jsonw j;
        jsonw_init(&j, json_sink, con);
        jsonw_object(&j, NULL);
        jsonw_string(&j, "error", msg);
        jsonw_finish(&j);
        con->write(con->write_ctx, "\r\n", 2);
        return -1;
    }
    if (con->capture && !con->cap_error[0])
        snprintf(con->cap_error, sizeof con->cap_error, "%s", msg);
    console_write(con, "error: ");
    console_write(con, msg);
    console_write(con, "\n");
    return -1;
}

int console_usage(struct console *con)
{
    const struct console_cmd *c = con->current;
    if (!c)
        return console_error(con, "bad arguments");
    return console_error(con, "usage: %s%s%s%s%s", c->name, c->sub ? " " : "",
                         c->sub ? c->sub : "", c->usage[0] ? " " : "", c->usage);
}

void console_prompt(struct console *con) { term_write(con, con->prompt); }

/* Split `line` into words in place. Double quotes group words ("a b") and
 * are removed. Returns the word count, or -1 with an error line. */
static int tokenize(struct console *con, char *line, char **argv)
{
    int argc = 0;
    char *src = line, *dst = line;
    for (;;) {
        while (*src == ' ' || *src == '\t')
            src++;
        if (!*src)
            return argc;
        if (argc == CONSOLE_ARGS_MAX)
            return console_error(con, "too many words (at most %d)", CONSOLE_ARGS_MAX);
        argv[argc++] = dst;
        int quoted = 0;
        while (*src && (quoted || (*src != ' ' && *src != '\t'))) {
            if (*src == '"')
                quoted = !quoted;
            else
                *dst++ = *src;
            src++;
        }
        if (quoted)
            return console_error(con, "unterminated quote");
        /* dst never passes src, so terminating here cannot clobber input
         * not yet read, except the separator just consumed. */
        int at_end = (*src == '\0');
        *dst++ = '\0';
        if (at_end)
            return argc;
        src++;
    }
}

static const struct console_cmd *find(const struct console *con, const char *name,
                                       const char *sub)
{
    for (const struct console_cmd *const *t = con->tables; *t; t++)
        for (const struct console_cmd *c = *t; c->name; c++)
            if (strcmp(c->name, name) == 0 &&
                ((!c->sub && !sub) || (c->sub && sub && strcmp(c->sub, sub) == 0)))
                return c;
    return NULL;
}

static int name_known(const struct console *con, const char *name, int *has_subs)
{
    int known = 0;
    *has_subs = 0;
    for (const struct console_cmd *const *t = con->tables; *t; t++)
        for (const struct console_cmd *c = *t; c->name; c++)
            if (strcmp(c->name, name) == 0) {
                known = 1;
                if (c->sub)
                    *has_subs = 1;
            }
    return known;
}

/* "error: usage: net show|set" for a group word without a valid sub-command. */
static int sub_usage(struct console *con, const char *name)
{
    char subs[128] = "";
    size_t used = 0;
    for (const struct console_cmd *const *t = con->tables; *t; t++)
        for (const struct console_cmd *c = *t; c->name; c++)
            if (c->sub && strcmp(c->name, name) == 0) {
                int n = snprintf(subs + used, sizeof subs - used, "%s%s",
                                 used ? "|" : "", c->sub);
                if (n > 0 && (size_t)n < sizeof subs - used)
                    used += (size_t)n;
            }
    return console_error(con, "usage: %s %s ...", name, subs);
}

static int exec_line(struct console *con, char *line)
{
    /* A comment ("# ..."), as `config export` writes them: pasting an
     * export back must not stop at its notes. */
    const char *first = line + strspn(line, " \t");
    if (*first == '#')
        return 0;
    if (con->locked)
        return console_error(con, "not logged in");
    char *argv[CONSOLE_ARGS_MAX];
    int argc = tokenize(con, line, argv);
    if (argc <= 0)
        return argc;
    /* `<command> ?` asks for the usage instead of running anything. */
    if (strcmp(argv[argc - 1], "?") == 0)
        return console_help_words(con, argc - 1, argv);
    int has_subs;
    if (!name_known(con, argv[0], &has_subs))
        return console_error(con, "unknown command '%s' (type 'help')", argv[0]);
    const struct console_cmd *c = find(con, argv[0], NULL);
    int skip = 1;
    if (!c) {
        if (argc < 2 || !(c = find(con, argv[0], argv[1])))
            return sub_usage(con, argv[0]);
        skip = 2;
    }
    con->current = c;
    con->ran = 1;
    int rc = c->run(con, argc - skip, argv + skip);
    con->current = NULL;
    return rc;
}

int console_exec(struct console *con, char *line)
{
    if (con->json && !con->capture && !con->native) {
        con->capture = 1;
        con->cap_len = 0;
        con->cap_cut = 0;
        con->cap_error[0] = con->cap_ok[0] = '\0';
        con->ran = 0;
    }
    int rc = exec_line(con, line);
    if (!(rc == CONSOLE_PENDING && (con->secret_fn || con->busy_cancel)))
        command_end(con);
    return rc;
}

int64_t console_parse_id(const char *text)
{
    if (!*text || strlen(text) > 15)
        return 0;
    int64_t v = 0;
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9')
            return 0;
        v = v * 10 + (*p - '0');
    }
    return v;
}

int console_count_arg(struct console *con, int argc, char **argv, int def, int max, int *n)
{
    if (argc > 1)
        return console_usage(con);
    int64_t v = argc == 1 ? console_parse_id(argv[0]) : def;
    if (v <= 0 || v > max)
        return console_error(con, "N must be 1..%d", max);
    *n = (int)v;
    return 0;
}

/* --- help, wrapped to CONSOLE_WIDTH --- */

/* One output line being filled word by word; a word that would pass the
 * width starts a new line at `cont`, so nothing is ever cut. */
struct wrap {
    struct console *con;
    char buf[CONSOLE_WIDTH + 1];
    size_t len;  /* characters in buf */
    size_t cont; /* indent of the next line */
    int fresh;   /* nothing but indent on this line yet */
    int lines;   /* lines written so far */
};

static void wrap_indent(struct wrap *w, size_t indent)
{
    memset(w->buf, ' ', indent);
    w->len = indent;
    w->fresh = 1;
}

static void wrap_start(struct wrap *w, struct console *con, size_t indent, size_t cont)
{
    w->con = con;
    w->cont = cont;
    w->lines = 0;
    wrap_indent(w, indent);
}

static void wrap_flush(struct wrap *w)
{
    w->buf[w->len] = '\0';
    console_write(w->con, w->buf);
    console_write(w->con, "\n");
    w->lines++;
    wrap_indent(w, w->cont);
}

static void wrap_word(struct wrap *w, const char *word, size_t n)
{
    if (!w->fresh && w->len + 1 + n > CONSOLE_WIDTH)
        wrap_flush(w);
    if (!w->fresh)
        w->buf[w->len++] = ' ';
    /* A word wider than a whole line (no table has one) is split rather
     * than let a line pass the width. */
    while (w->len + n > CONSOLE_WIDTH) {
        size_t part = CONSOLE_WIDTH - w->len;
        memcpy(w->buf + w->len, word, part);
        w->len += part;
        word += part;
        n -= part;
        wrap_flush(w);
    }
    memcpy(w->buf + w->len, word, n);
    w->len += n;
    w->fresh = 0;
}

/* Add `text` word by word. With `groups`, spaces inside [...] do not split,
 * so an option like "[user NAME | nouser]" stays on one line. */
static void wrap_text(struct wrap *w, const char *text, int groups)
{
    const char *p = text;
    while (*p) {
        while (*p == ' ')
            p++;
        const char *start = p;
        int depth = 0;
        while (*p && (*p != ' ' || depth > 0)) {
            if (groups && *p == '[')
                depth++;
            else if (groups && *p == ']' && depth > 0)
                depth--;
            p++;
        }
        if (p > start)
            wrap_word(w, start, (size_t)(p - start));
    }
}

/* One form: "  name sub usage" then the description, at HELP_TEXT on the
 * same line when the form is short, on lines of their own otherwise. */
static void help_one(struct console *con, const struct console_cmd *c)
{
    struct wrap w;
    wrap_start(&w, con, HELP_INDENT, HELP_CONT);
    wrap_text(&w, c->name, 0);
    if (c->sub)
        wrap_text(&w, c->sub, 0);
    wrap_text(&w, c->usage, 1);
    w.cont = HELP_TEXT;
    if (w.lines == 0 && w.len < HELP_TEXT) {
        /* Short enough: the description follows on the same line. */
        memset(w.buf + w.len, ' ', HELP_TEXT - w.len);
        w.len = HELP_TEXT;
        w.fresh = 1;
    } else {
        wrap_flush(&w);
    }
    wrap_text(&w, c->help, 0);
    wrap_flush(&w);
}

static void help_json_one(struct jsonw *j, const struct console_cmd *c)
{
    jsonw_object(j, NULL);
    jsonw_string(j, "command", c->name);
    if (c->sub)
        jsonw_string(j, "sub", c->sub);
    jsonw_string(j, "usage", c->usage);
    jsonw_string(j, "help", c->help);
    jsonw_end(j);
}

/* {"commands": [...]}: the forms `topic` names (NULL: all), or only `one`. */
static void help_json(struct console *con, const char *topic, const struct console_cmd *one)
{
    struct jsonw *j = console_json(con);
    jsonw_object(j, NULL);
    jsonw_array(j, "commands");
    for (const struct console_cmd *const *t = con->tables; *t; t++)
        for (const struct console_cmd *c = *t; c->name; c++)
            if (one ? c == one : (!topic || strcmp(topic, c->name) == 0))
                help_json_one(j, c);
    console_json_end(con);
}

int console_help(struct console *con, const char *topic)
{
    int has_subs;
    if (con->json && topic && !name_known(con, topic, &has_subs))
        return console_error(con, "no command '%s' (type 'help')", topic);
    if (con->json) {
        help_json(con, topic, NULL);
        return 0;
    }
    int shown = 0;
    for (const struct console_cmd *const *t = con->tables; *t; t++)
        for (const struct console_cmd *c = *t; c->name; c++) {
            if (topic && strcmp(topic, c->name) != 0)
                continue;
            help_one(con, c);
            shown++;
        }
    if (topic && !shown)
        return console_error(con, "no command '%s' (type 'help')", topic);
    return 0;
}

/* The words typed before "?": nothing lists every command, a name its
 * forms, a name and sub-command that one form. */
int console_help_words(struct console *con, int argc, char **argv)
{
    if (argc == 0)
        return console_help(con, NULL);
    int has_subs;
    if (!name_known(con, argv[0], &has_subs))
        return console_error(con, "unknown command '%s' (type 'help')", argv[0]);
    const struct console_cmd *c = argc >= 2 ? find(con, argv[0], argv[1]) : NULL;
    if (c && con->json) {
        help_json(con, NULL, c);
        return 0;
    }
    if (c) {
        help_one(con, c);
        return 0;
    }
    return console_help(con, argv[0]);
}

static void line_reset(struct console *con);

void console_ask_secret(struct console *con, const char *prompt, console_secret_fn fn, void *ctx)
{
    con->ask_echo = 0;
    con->secret_fn = fn;
    con->secret_ctx = ctx;
    line_reset(con);
    term_write(con, prompt);
}

void console_ask_line(struct console *con, const char *prompt, console_secret_fn fn, void *ctx)
{
    console_ask_secret(con, prompt, fn, ctx);
    con->ask_echo = 1;
}

static void pw_finish(struct console *con, const char *password)
{
    void (*done)(struct console *, const char *, void *) = con->pw_done;
    void *ctx = con->pw_ctx;
    con->pw_done = NULL;
    con->pw_check = NULL;
    done(con, password, ctx);
    memset(con->pw_first, 0, sizeof con->pw_first);
}

static void pw_repeat(struct console *con, const char *line, void *ctx)
{
    (void)ctx;
    if (!line) {
        console_error(con, "cancelled; nothing changed");
        pw_finish(con, NULL);
    } else if (strcmp(line, con->pw_first) != 0) {
        console_error(con, "the passwords do not match; nothing changed");
        pw_finish(con, NULL);
    } else {
        pw_finish(con, line);
    }
}

static void pw_first(struct console *con, const char *line, void *ctx)
{
    (void)ctx;
    char err[160];
    if (!line) {
        console_error(con, "cancelled; nothing changed");
        pw_finish(con, NULL);
        return;
    }
    if (con->pw_check && con->pw_check(line, err, sizeof err) != 0) {
        console_error(con, "%s; nothing changed", err);
        pw_finish(con, NULL);
        return;
    }
    snprintf(con->pw_first, sizeof con->pw_first, "%s", line);
    console_ask_secret(con, con->pw_repeat_prompt, pw_repeat, NULL);
}

void console_ask_new_password_as(struct console *con, const char *prompt,
                                 const char *repeat_prompt,
                                 int (*check)(const char *password, char *err, size_t errlen),
                                 void (*done)(struct console *con, const char *password,
                                              void *ctx),
                                 void *ctx)
{
    con->pw_check = check;
    con->pw_done = done;
    con->pw_ctx = ctx;
    con->pw_repeat_prompt = repeat_prompt;
    console_ask_secret(con, prompt, pw_first, NULL);
}

void console_ask_new_password(struct console *con,
                              int (*check)(const char *password, char *err, size_t errlen),
                              void (*done)(struct console *con, const char *password, void *ctx),
                              void *ctx)
{
    console_ask_new_password_as(con, "password: ", "repeat password: ", check, done, ctx);
}

void console_busy(struct console *con, void (*cancel)(struct console *con, void *ctx), void *ctx)
{
    con->busy_cancel = cancel;
    con->busy_ctx = ctx;
}

int console_is_busy(const struct console *con) { return con->busy_cancel != NULL; }

int console_is_asking(const struct console *con) { return con->secret_fn != NULL; }

void console_set_locked(struct console *con, int locked)
{
    con->locked = locked ? 1 : 0;
    if (locked) {
        /* The session ends here (`logout`, idle): what the command said so
         * far is its answer, before the login prompt. A new session
         * starts in text mode. */
        command_end(con);
        con->json = 0;
    }
}

/* --- long outputs --- */

static void stream_finish(struct console *con)
{
    con->step = NULL;
    con->step_ctx = NULL;
    console_done(con);
}

static void stream_cancel(struct console *con, void *ctx)
{
    (void)ctx;
    con->step(con, con->step_ctx, 1);
    term_write(con, "^C\n");
    stream_finish(con);
}

void console_stream(struct console *con, console_step_fn step, void *ctx)
{
    con->step = step;
    con->step_ctx = ctx;
    console_busy(con, stream_cancel, NULL);
}

void console_stream_error(struct console *con, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!con->native) {
        console_error(con, "%s", msg);
        return;
    }
    while (con->jw.depth > 1)
        jsonw_end(&con->jw);
    jsonw_string(&con->jw, "error", msg);
}

static void ahead_clear(struct console *con);

int console_is_streaming(const struct console *con) { return con->step != NULL; }

void console_cancel(struct console *con)
{
    if (!con->busy_cancel)
        return;
    ahead_clear(con);
    if (!con->step)
        term_write(con, "^C\n");
    con->busy_cancel(con, con->busy_ctx);
}

size_t console_input_room(const struct console *con)
{
    if (!con->busy_cancel)
        return SIZE_MAX;
    return CONSOLE_TYPEAHEAD - con->ahead_len;
}

void console_finish(struct console *con)
{
    command_end(con);
    if (con->drain)
        con->drain(con->write_ctx);
}

int console_poll(struct console *con)
{
    for (int turn = 0; con->step && turn < CONSOLE_STREAM_TURNS; turn++) {
        if (con->tx_room && con->tx_room(con->write_ctx) < CONSOLE_STREAM_ROOM)
            return 0; /* the terminal's room is an event: the loop comes back */
        if (con->step(con, con->step_ctx, 0) == 0)
            stream_finish(con);
    }
    return con->step != NULL;
}

/* --- echo and the edit line ---
 *
 * Drawing uses only printable characters, space and BS, so it works on a
 * VT100 and on a dumb terminal alike: BS moves left, rewriting the rest of
 * the line and blanking what is left over redraws after an edit. */

/* Asked-for secrets are never echoed, not even as edits. */
static int echoing(const struct console *con) { return !con->secret_fn || con->ask_echo; }

static void put(struct console *con, const char *data, size_t n)
{
    if (n && echoing(con))
        con->write(con->write_ctx, data, n);
}

static void put_repeat(struct console *con, char ch, size_t n)
{
    char buf[32];
    memset(buf, ch, sizeof buf);
    while (n) {
        size_t k = n < sizeof buf ? n : sizeof buf;
        put(con, buf, k);
        n -= k;
    }
}

static void bell(struct console *con)
{
    static const char b = BELL;
    con->write(con->write_ctx, &b, 1);
}

/* Rewrite from the cursor to the end, blank `erase` stale columns after
 * it, and bring the terminal cursor back to con->cursor. */
static void redraw_tail(struct console *con, size_t erase)
{
    put(con, con->line + con->cursor, con->len - con->cursor);
    put_repeat(con, ' ', erase);
    put_repeat(con, BACKSPACE, con->len - con->cursor + erase);
}

static void line_reset(struct console *con)
{
    con->len = 0;
    con->cursor = 0;
    con->overflow = 0;
    con->hist_pos = 0;
}

static void insert_char(struct console *con, char ch)
{
    if (con->len >= CONSOLE_LINE_MAX) {
        /* Ring once; the line keeps what it has and is refused at Enter
         * unless an edit shows the user saw it. */
        if (!con->overflow)
            bell(con);
        con->overflow = 1;
        return;
    }
    memmove(con->line + con->cursor + 1, con->line + con->cursor, con->len - con->cursor);
    con->line[con->cursor++] = ch;
    con->len++;
    put(con, &ch, 1);
    redraw_tail(con, 0);
}

/* Remove `n` characters starting at `from`, the cursor ending at `from`. */
static void delete_range(struct console *con, size_t from, size_t n)
{
    if (!n)
        return;
    put_repeat(con, BACKSPACE, con->cursor - from);
    memmove(con->line + from, con->line + from + n, con->len - from - n);
    con->len -= n;
    con->cursor = from;
    con->overflow = 0; /* the user is editing: what is shown is what runs */
    redraw_tail(con, n);
}

static void kill_word(struct console *con)
{
    size_t from = con->cursor;
    while (from > 0 && con->line[from - 1] == ' ')
        from--;
    while (from > 0 && con->line[from - 1] != ' ')
        from--;
    delete_range(con, from, con->cursor - from);
}

static void move_to(struct console *con, size_t pos)
{
    if (pos < con->cursor)
        put_repeat(con, BACKSPACE, con->cursor - pos);
    else
        put(con, con->line + con->cursor, pos - con->cursor);
    con->cursor = pos;
}

/* Show `text` as the whole line, cursor at its end. */
static void replace_line(struct console *con, const char *text)
{
    size_t old = con->len, n = strlen(text);
    move_to(con, 0);
    memcpy(con->line, text, n);
    con->len = con->cursor = n;
    con->overflow = 0;
    put(con, con->line, n);
    if (old > n) {
        put_repeat(con, ' ', old - n);
        put_repeat(con, BACKSPACE, old - n);
    }
}

/* --- history --- */

static const char *hist_get(const struct console *con, unsigned k) /* k-th newest, 1-based */
{
    return con->hist[(con->hist_next + CONSOLE_HISTORY - k) % CONSOLE_HISTORY];
}

/* Keep a command line typed at the prompt (never an asked-for line):
 * blank lines and a repeat of the newest entry are not kept. */
static void hist_add(struct console *con)
{
    con->line[con->len] = '\0';
    if (strspn(con->line, " \t") == con->len)
        return;
    if (con->hist_count && strcmp(hist_get(con, 1), con->line) == 0)
        return;
    memcpy(con->hist[con->hist_next], con->line, con->len + 1);
    con->hist_next = (uint8_t)((con->hist_next + 1) % CONSOLE_HISTORY);
    if (con->hist_count < CONSOLE_HISTORY)
        con->hist_count++;
}

static void hist_move(struct console *con, int older)
{
    if (older ? con->hist_pos >= con->hist_count : con->hist_pos == 0) {
        bell(con);
        return;
    }
    if (older && con->hist_pos == 0) {
        con->line[con->len] = '\0';
        memcpy(con->draft, con->line, con->len + 1);
    }
    con->hist_pos = (uint8_t)(con->hist_pos + (older ? 1 : -1));
    replace_line(con, con->hist_pos ? hist_get(con, con->hist_pos) : con->draft);
}

/* --- Tab completion of command words and sub-commands --- */

struct choices {
    const char *word[COMPLETE_MAX];
    int count;
};

static void choice_add(struct choices *ch, const char *word, const char *prefix, size_t n)
{
    if (strncmp(word, prefix, n) != 0 || ch->count == COMPLETE_MAX)
        return;
    for (int i = 0; i < ch->count; i++)
        if (strcmp(ch->word[i], word) == 0)
            return;
    ch->word[ch->count++] = word;
}

/* Words that can stand at word index `index` after `first`: command names
 * first (and after "help"), sub-commands of `first` second. */
static void choices_for(const struct console *con, int index, const char *first, size_t first_len,
                        const char *prefix, size_t n, struct choices *ch)
{
    int names = index == 0 || (index == 1 && first_len == 4 && strncmp(first, "help", 4) == 0);
    ch->count = 0;
    if (index > 1)
        return;
    for (const struct console_cmd *const *t = con->tables; *t; t++)
        for (const struct console_cmd *c = *t; c->name; c++) {
            if (names)
                choice_add(ch, c->name, prefix, n);
            else if (c->sub && strlen(c->name) == first_len &&
                     strncmp(c->name, first, first_len) == 0)
                choice_add(ch, c->sub, prefix, n);
        }
}

static void list_choices(struct console *con, const struct choices *ch)
{
    struct wrap w;
    term_write(con, "\n");
    wrap_start(&w, con, 0, 0);
    for (int i = 0; i < ch->count; i++) {
        size_t n = strlen(ch->word[i]);
        if (!w.fresh) { /* two spaces between choices, or a new line */
            if (w.len + 2 + n > CONSOLE_WIDTH) {
                wrap_flush(&w);
            } else {
                memcpy(w.buf + w.len, "  ", 2);
                w.len += 2;
                w.fresh = 1;
            }
        }
        wrap_word(&w, ch->word[i], n);
    }
    wrap_flush(&w);
    /* Draw the prompt and the line again, cursor where it was. */
    console_prompt(con);
    put(con, con->line, con->len);
    put_repeat(con, BACKSPACE, con->len - con->cursor);
}

static void complete(struct console *con)
{
    size_t start = con->cursor, first = 0, first_len = 0;
    while (start > 0 && con->line[start - 1] != ' ')
        start--;
    int index = 0;
    for (size_t i = 0; i < start; i++)
        if (con->line[i] != ' ' && (i == 0 || con->line[i - 1] == ' ')) {
            if (index++ == 0) {
                first = i;
                first_len = strcspn(con->line + i, " ");
            }
        }
    struct choices ch;
    size_t n = con->cursor - start;
    choices_for(con, index, con->line + first, first_len, con->line + start, n, &ch);
    if (ch.count == 0) {
        bell(con);
        return;
    }
    /* Extend to what every choice shares; a unique one also gets a space. */
    size_t common = strlen(ch.word[0]);
    for (int i = 1; i < ch.count; i++) {
        size_t k = n;
        while (k < common && ch.word[i][k] == ch.word[0][k])
            k++;
        common = k;
    }
    for (size_t k = n; k < common; k++)
        insert_char(con, ch.word[0][k]);
    if (ch.count == 1) {
        if (con->cursor == con->len || con->line[con->cursor] != ' ')
            insert_char(con, ' ');
        else
            move_to(con, con->cursor + 1);
    } else if (common == n) {
        list_choices(con, &ch);
    } else {
        bell(con);
    }
}

/* --- escape sequences: arrows, Home, End, Delete --- */

static enum key csi_key(uint8_t final, unsigned arg)
{
    switch (final) {
    case 'A': return KEY_UP;
    case 'B': return KEY_DOWN;
    case 'C': return KEY_RIGHT;
    case 'D': return KEY_LEFT;
    case 'H': return KEY_HOME;
    case 'F': return KEY_END;
    case '~':
        if (arg == 1 || arg == 7)
            return KEY_HOME;
        if (arg == 4 || arg == 8)
            return KEY_END;
        return arg == 3 ? KEY_DELETE : KEY_NONE;
    default: return KEY_NONE;
    }
}

/* One byte (>= 0x20) inside an escape sequence; returns the key it
 * completes, or KEY_NONE. Unknown sequences are swallowed whole. */
static enum key escape_byte(struct console *con, uint8_t ch)
{
    switch (con->esc) {
    case ESC_START:
        con->esc = ch == '[' ? ESC_CSI : ch == 'O' ? ESC_SS3 : ESC_NONE; /* Alt+key: dropped */
        con->esc_arg = 0;
        con->esc_mod = 0;
        return KEY_NONE;
    case ESC_SS3:
        con->esc = ESC_NONE;
        return ch == 'H' || ch == 'F' || (ch >= 'A' && ch <= 'D') ? csi_key(ch, 0) : KEY_NONE;
    default:
        if (ch >= '0' && ch <= '9') {
            if (con->esc_arg < 1000)
                con->esc_arg = (uint16_t)(con->esc_arg * 10 + (ch - '0'));
            return KEY_NONE;
        }
        if (ch >= 0x20 && ch <= 0x3F) { /* ';' and other parameter bytes */
            con->esc_mod = 1;
            return KEY_NONE;
        }
        con->esc = ESC_NONE;
        if (ch > 0x7E || con->esc_mod) /* malformed, or Ctrl/Shift+key: not bound */
            return KEY_NONE;
        return csi_key(ch, con->esc_arg);
    }
}

static void do_key(struct console *con, enum key key)
{
    int at_prompt = !con->secret_fn;
    if (!echoing(con))
        return; /* an unseen secret has no cursor to move */
    switch (key) {
    case KEY_LEFT:
        if (con->cursor > 0)
            move_to(con, con->cursor - 1);
        break;
    case KEY_RIGHT:
        if (con->cursor < con->len)
            move_to(con, con->cursor + 1);
        break;
    case KEY_HOME: move_to(con, 0); break;
    case KEY_END: move_to(con, con->len); break;
    case KEY_DELETE:
        if (con->cursor < con->len)
            delete_range(con, con->cursor, 1);
        break;
    case KEY_UP:
    case KEY_DOWN:
        if (at_prompt)
            hist_move(con, key == KEY_UP);
        break;
    case KEY_NONE: break;
    }
}

/* --- finished lines --- */

/* Hand a finished secret line (or NULL for Ctrl-C) to whoever asked. The
 * prompt comes back only when nobody asked for another line. */
static void end_secret(struct console *con, int cancelled)
{
    console_secret_fn fn = con->secret_fn;
    void *ctx = con->secret_ctx;
    con->secret_fn = NULL;
    con->secret_ctx = NULL;
    con->line[con->len] = '\0';
    if (!cancelled && con->overflow)
        console_error(con, "line too long (at most %d characters)", CONSOLE_LINE_MAX);
    uint8_t was = con->in_line;
    con->in_line = 1;
    fn(con, (cancelled || con->overflow) ? NULL : con->line, ctx);
    con->in_line = was;
    memset(con->line, 0, sizeof con->line);
    line_reset(con);
    if (!con->secret_fn && !con->busy_cancel) {
        command_end(con);
        console_prompt(con);
    }
}

static void end_line(struct console *con)
{
    term_write(con, "\n");
    if (con->secret_fn) {
        end_secret(con, 0);
        return;
    }
    if (con->overflow) {
        console_error(con, "line too long (at most %d characters)", CONSOLE_LINE_MAX);
    } else {
        hist_add(con);
        con->line[con->len] = '\0';
        uint8_t was = con->in_line;
        con->in_line = 1;
        int rc = console_exec(con, con->line);
        con->in_line = was;
        if (rc == CONSOLE_PENDING && (con->secret_fn || con->busy_cancel)) {
            line_reset(con);
            return; /* the command goes on; its own prompt or output follows */
        }
    }
    line_reset(con);
    console_prompt(con);
}

static void cancel_line(struct console *con)
{
    term_write(con, "^C\n");
    if (con->secret_fn) {
        end_secret(con, 1);
        return;
    }
    line_reset(con);
    console_prompt(con);
}

/* One byte of input at a prompt (not while busy). */
static void edit_byte(struct console *con, uint8_t ch)
{
    int after_cr = con->last_cr;
    con->last_cr = 0;
    if (con->esc && ch >= 0x20) {
        do_key(con, escape_byte(con, ch));
        return;
    }
    con->esc = ESC_NONE; /* a control byte ends a sequence and still acts */
    switch (ch) {
    case '\r':
        con->last_cr = 1;
        end_line(con);
        break;
    case '\n':
        if (!after_cr) /* CR LF is one Enter */
            end_line(con);
        break;
    case CTRL_C: cancel_line(con); break;
    case CTRL_U: delete_range(con, 0, con->cursor); con->overflow = 0; break;
    case CTRL_W: kill_word(con); break;
    case CTRL_A: do_key(con, KEY_HOME); break;
    case CTRL_E: do_key(con, KEY_END); break;
    case BACKSPACE:
    case DEL:
        if (con->cursor > 0)
            delete_range(con, con->cursor - 1, 1);
        break;
    case TAB:
        if (!con->secret_fn)
            complete(con);
        break;
    case ESC: con->esc = ESC_START; break;
    default:
        if (ch >= 0x20 && ch < 0x7F) /* other control bytes and non-ASCII are ignored */
            insert_char(con, (char)ch);
    }
}

/* --- typeahead while a command is busy --- */

static void ahead_push(struct console *con, uint8_t ch)
{
    if (con->ahead_len == CONSOLE_TYPEAHEAD) {
        if (!con->ahead_overflow)
            bell(con);
        con->ahead_overflow = 1;
        return;
    }
    con->ahead[(con->ahead_head + con->ahead_len++) % CONSOLE_TYPEAHEAD] = ch;
}

static void ahead_clear(struct console *con)
{
    memset(con->ahead, 0, sizeof con->ahead); /* it may hold typed-ahead secrets */
    con->ahead_head = con->ahead_len = 0;
    con->ahead_overflow = 0;
}

/* After an overflow only complete lines are run: a line cut short by the
 * discarded bytes could do something else than what was typed. */
static void ahead_trim(struct console *con)
{
    console_error(con, "more than %d bytes typed ahead; the rest was discarded",
                  CONSOLE_TYPEAHEAD);
    con->ahead_overflow = 0;
    while (con->ahead_len) {
        uint8_t last = con->ahead[(con->ahead_head + con->ahead_len - 1) % CONSOLE_TYPEAHEAD];
        if (last == '\r' || last == '\n')
            break;
        con->ahead_len--;
    }
}

/* Run what was typed ahead, in order, until it is used up or a command
 * is busy again. */
static void ahead_run(struct console *con)
{
    while (con->ahead_len && !con->busy_cancel) {
        uint8_t *p = &con->ahead[con->ahead_head];
        uint8_t ch = *p;
        *p = 0;
        con->ahead_head = (con->ahead_head + 1) % CONSOLE_TYPEAHEAD;
        con->ahead_len--;
        edit_byte(con, ch);
    }
    if (!con->ahead_len)
        con->ahead_head = 0;
}

void console_done(struct console *con)
{
    if (!con->busy_cancel)
        return;
    con->busy_cancel = NULL;
    con->busy_ctx = NULL;
    if (con->in_line)
        return; /* called from the handler: the line's end brings the prompt */
    command_end(con);
    if (con->ahead_overflow)
        ahead_trim(con);
    console_prompt(con);
    ahead_run(con);
}

void console_end_busy(struct console *con, int discard)
{
    con->busy_cancel = NULL;
    con->busy_ctx = NULL;
    if (discard)
        ahead_clear(con);
    else if (con->ahead_overflow)
        ahead_trim(con);
}

void console_resume(struct console *con)
{
    if (!con->in_line)
        ahead_run(con);
}

void console_feed(struct console *con, const uint8_t *data, size_t len)
{
    ahead_run(con); /* never run new input before older typeahead */
    for (size_t i = 0; i < len; i++) {
        uint8_t ch = data[i];
        if (!con->busy_cancel) {
            edit_byte(con, ch);
        } else if (ch == CTRL_C) {
            /* Cancel the command and what was typed behind it, as a
             * terminal's interrupt flushes its input queue. */
            con->esc = ESC_NONE;
            console_cancel(con);
        } else {
            ahead_push(con, ch);
        }
    }
}
