/* console.c — line discipline and table-driven dispatch; see console.h. */
#include "console.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define CTRL_C 0x03
#define CTRL_U 0x15
#define BACKSPACE 0x08
#define DEL 0x7F
#define ESC 0x1B
#define HELP_COLUMN 30 /* width of the "name sub usage" column in help */

void console_init(struct console *con, const struct console_cmd *const *tables,
                  const char *prompt, console_write_fn write, void *write_ctx)
{
    memset(con, 0, sizeof *con);
    con->tables = tables;
    con->prompt = prompt;
    con->write = write;
    con->write_ctx = write_ctx;
}

/* Send text to the terminal with every "\n" turned into "\r\n". */
void console_write(struct console *con, const char *text)
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
    console_write(con, "error: ");
    va_list ap;
    va_start(ap, fmt);
    console_vprintf(con, fmt, ap);
    va_end(ap);
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

void console_prompt(struct console *con) { console_write(con, con->prompt); }

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

int console_exec(struct console *con, char *line)
{
    char *argv[CONSOLE_ARGS_MAX];
    int argc = tokenize(con, line, argv);
    if (argc <= 0)
        return argc;
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
    int rc = c->run(con, argc - skip, argv + skip);
    con->current = NULL;
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

int console_help(struct console *con, const char *topic)
{
    int shown = 0;
    for (const struct console_cmd *const *t = con->tables; *t; t++)
        for (const struct console_cmd *c = *t; c->name; c++) {
            if (topic && strcmp(topic, c->name) != 0)
                continue;
            char form[96];
            snprintf(form, sizeof form, "%s%s%s%s%s", c->name, c->sub ? " " : "",
                     c->sub ? c->sub : "", c->usage[0] ? " " : "", c->usage);
            if (strlen(form) <= HELP_COLUMN)
                console_printf(con, "  %-*s %s\n", HELP_COLUMN, form, c->help);
            else
                console_printf(con, "  %s\n  %-*s %s\n", form, HELP_COLUMN, "", c->help);
            shown++;
        }
    if (topic && !shown)
        return console_error(con, "no command '%s' (type 'help')", topic);
    return 0;
}

void console_ask_secret(struct console *con, const char *prompt, console_secret_fn fn, void *ctx)
{
    con->ask_echo = 0;
    con->secret_fn = fn;
    con->secret_ctx = ctx;
    con->len = 0;
    con->overflow = 0;
    console_write(con, prompt);
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
    console_ask_secret(con, "repeat password: ", pw_repeat, NULL);
}

void console_ask_new_password(struct console *con,
                              int (*check)(const char *password, char *err, size_t errlen),
                              void (*done)(struct console *con, const char *password, void *ctx),
                              void *ctx)
{
    con->pw_check = check;
    con->pw_done = done;
    con->pw_ctx = ctx;
    console_ask_secret(con, "password: ", pw_first, NULL);
}

void console_busy(struct console *con, void (*cancel)(struct console *con, void *ctx), void *ctx)
{
    con->busy_cancel = cancel;
    con->busy_ctx = ctx;
}

void console_done(struct console *con)
{
    if (!con->busy_cancel)
        return;
    con->busy_cancel = NULL;
    con->busy_ctx = NULL;
    console_prompt(con);
}

int console_is_busy(const struct console *con) { return con->busy_cancel != NULL; }

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
    fn(con, (cancelled || con->overflow) ? NULL : con->line, ctx);
    memset(con->line, 0, sizeof con->line);
    con->len = 0;
    con->overflow = 0;
    if (!con->secret_fn && !con->busy_cancel)
        console_prompt(con);
}

static void end_line(struct console *con)
{
    console_write(con, "\n");
    if (con->secret_fn) {
        end_secret(con, 0);
        return;
    }
    if (con->overflow) {
        console_error(con, "line too long (at most %d characters)", CONSOLE_LINE_MAX);
    } else {
        con->line[con->len] = '\0';
        if (console_exec(con, con->line) == CONSOLE_PENDING &&
            (con->secret_fn || con->busy_cancel)) {
            con->len = 0;
            con->overflow = 0;
            return; /* the command goes on; its own prompt or output follows */
        }
    }
    con->len = 0;
    con->overflow = 0;
    console_prompt(con);
}

void console_feed(struct console *con, const uint8_t *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        uint8_t ch = data[i];
        if (con->busy_cancel) {
            /* A command is running: only Ctrl-C means anything. */
            if (ch == CTRL_C) {
                console_write(con, "^C\n");
                con->busy_cancel(con, con->busy_ctx);
            }
            continue;
        }
        int after_cr = con->last_cr;
        con->last_cr = 0;
        if (con->esc) {
            /* Arrow keys and friends: ESC [ params final, or ESC O x. */
            if (con->esc == 1)
                con->esc = (ch == '[' || ch == 'O') ? 2 : 0;
            else if (ch >= 0x40 && ch <= 0x7E)
                con->esc = 0;
            continue;
        }
        switch (ch) {
        case '\r':
            con->last_cr = 1;
            end_line(con);
            break;
        case '\n':
            if (!after_cr)
                end_line(con);
            break;
        case CTRL_C:
            console_write(con, "^C\n");
            if (con->secret_fn) {
                end_secret(con, 1);
                break;
            }
            con->len = 0;
            con->overflow = 0;
            console_prompt(con);
            break;
        case CTRL_U:
            while (con->len > 0) {
                if (!con->secret_fn || con->ask_echo)
                    con->write(con->write_ctx, "\b \b", 3);
                con->len--;
            }
            con->overflow = 0;
            break;
        case BACKSPACE:
        case DEL:
            if (con->len > 0 && !con->overflow) {
                con->len--;
                if (!con->secret_fn || con->ask_echo)
                    con->write(con->write_ctx, "\b \b", 3);
            }
            break;
        case ESC:
            con->esc = 1;
            break;
        default:
            if (ch < 0x20 || ch > 0x7E)
                break; /* other control bytes and non-ASCII are ignored */
            if (con->len < CONSOLE_LINE_MAX) {
                con->line[con->len++] = (char)ch;
                if (!con->secret_fn || con->ask_echo) /* secrets are never echoed */
                    con->write(con->write_ctx, (const char *)&ch, 1);
            } else {
                con->overflow = 1;
            }
        }
    }
}
