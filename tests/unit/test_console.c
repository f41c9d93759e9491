/* Console line discipline, tokenizer and table dispatch. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "console.h"

static char out[1 << 20];
static size_t out_len;
static char last_args[256];
static int runs;

static void capture(void *ctx, const char *data, size_t len)
{
    (void)ctx;
    assert_true(out_len + len < sizeof out);
    memcpy(out + out_len, data, len);
    out_len += len;
    out[out_len] = '\0';
}

static int record(struct console *con, int argc, char **argv)
{
    (void)con;
    runs++;
    last_args[0] = '\0';
    for (int i = 0; i < argc; i++) {
        strcat(last_args, "[");
        strcat(last_args, argv[i]);
        strcat(last_args, "]");
    }
    return 0;
}

static int fail_cmd(struct console *con, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return console_error(con, "it failed");
}

static int needs_one(struct console *con, int argc, char **argv)
{
    (void)argv;
    if (argc != 1)
        return console_usage(con);
    return 0;
}

static const struct console_cmd table_a[] = {
    {"echo", NULL, "[words]", "print words", record},
    {"fail", NULL, "", "always fails", fail_cmd},
    {NULL, NULL, NULL, NULL, NULL},
};
static const struct console_cmd table_b[] = {
    {"net", "show", "", "show it", record},
    {"net", "set", "<value>", "set it", needs_one},
    {NULL, NULL, NULL, NULL, NULL},
};
/* --- a command that goes on after its handler returned (console_busy) --- */

static int busy_starts, cancels, cancel_finishes;
static int seq_next, seq_bad; /* `seq N` lines must run in order 0, 1, 2... */

static void busy_cancel(struct console *c, void *ctx)
{
    (void)ctx;
    cancels++;
    if (cancel_finishes)
        console_done(c);
}

static int busy_cmd(struct console *c, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    busy_starts++;
    console_busy(c, busy_cancel, NULL);
    return CONSOLE_PENDING;
}

/* Fails at once after console_busy: console_done from inside the handler. */
static int busy_fail_cmd(struct console *c, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    console_busy(c, busy_cancel, NULL);
    console_done(c);
    return console_error(c, "could not start");
}

static int seq_cmd(struct console *c, int argc, char **argv)
{
    (void)c;
    runs++;
    if (argc != 1 || atoi(argv[0]) != seq_next)
        seq_bad++;
    seq_next++;
    return 0;
}

/* --- a long output (console_stream): `rows N` prints N rows, 3 a step --- */

static struct {
    int next, total, steps, cancelled, finished;
} rows;

static int rows_step(struct console *c, void *ctx, int cancel)
{
    (void)ctx;
    struct jsonw *j = console_json(c);
    rows.steps++;
    for (int i = 0; i < 3 && !cancel && rows.next < rows.total; i++, rows.next++) {
        if (j)
            jsonw_int(j, NULL, rows.next);
        else
            console_printf(c, "row %d\n", rows.next);
    }
    if (!cancel && rows.next < rows.total)
        return 1;
    rows.cancelled += cancel;
    rows.finished++;
    if (j)
        console_json_end(c);
    return 0;
}

static int rows_cmd(struct console *c, int argc, char **argv)
{
    if (argc != 1)
        return console_usage(c);
    memset(&rows, 0, sizeof rows);
    rows.total = atoi(argv[0]);
    struct jsonw *j = console_json(c);
    if (j) {
        jsonw_object(j, NULL);
        jsonw_array(j, "rows");
    }
    console_stream(c, rows_step, NULL);
    return CONSOLE_PENDING;
}

/* Prints a warning and an ok line, as configuration commands do. */
static int okwarn_cmd(struct console *c, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    console_printf(c, "warning: \"quoted\" thing\nnote line\nok: done\n");
    return 0;
}

static size_t room_now = SIZE_MAX;
static size_t fake_room(void *ctx)
{
    (void)ctx;
    return room_now;
}

/* Forms as long as the real `smarthost add` and `smarthost set`. */
#define SH_ADD_USAGE                                                                   \
    "<domain> <host> [port N] [priority N] [tls may|encrypt|verify|none] [user NAME] " \
    "[auth-plaintext]"
#define SH_SET_USAGE                                                                   \
    "<id> [host H] [port N] [priority N] [tls ...] [user NAME | nouser] [auth-plaintext on|off]"
#define SH_SET_HELP \
    "change a smart host (credentials asked again when they could go elsewhere or in clear)"

static const struct console_cmd table_c[] = {
    {"smarthost", "add", SH_ADD_USAGE,
     "add a smart host for an allowed domain (user: asks for the password)", record},
    {"smarthost", "list", "[<domain>]", "smart hosts by domain", record},
    {"smarthost", "set", SH_SET_USAGE, SH_SET_HELP, record},
    {"smarthost", "test", "<id|domain> <address>", "send a test message", busy_cmd},
    {"settings", "list", "", "settings", record},
    {"stats", NULL, "", "counters", record},
    {"status", NULL, "", "state", record},
    {"busyfail", NULL, "", "fails after console_busy", busy_fail_cmd},
    {"seq", NULL, "<n>", "must run in order", seq_cmd},
    {"rows", NULL, "<n>", "a long output", rows_cmd},
    {"okwarn", NULL, "", "warns, then ok", okwarn_cmd},
    {NULL, NULL, NULL, NULL, NULL},
};
static const struct console_cmd *const tables[] = {table_a, table_b, table_c, NULL};

static struct console con;

static int setup(void **state)
{
    (void)state;
    out_len = 0;
    out[0] = '\0';
    runs = 0;
    last_args[0] = '\0';
    busy_starts = cancels = seq_next = seq_bad = 0;
    cancel_finishes = 1;
    console_init(&con, tables, "relay> ", capture, NULL);
    room_now = SIZE_MAX;
    console_set_tx_room(&con, fake_room);
    return 0;
}

static void feed(const char *s) { console_feed(&con, (const uint8_t *)s, strlen(s)); }

static int exec(const char *line)
{
    char buf[CONSOLE_LINE_MAX + 1];
    snprintf(buf, sizeof buf, "%s", line);
    return console_exec(&con, buf);
}

static void test_words_and_quotes(void **state)
{
    (void)state;
    assert_int_equal(exec("  echo  a\tb \"c d\" e\"f g\"h  "), 0);
    assert_string_equal(last_args, "[a][b][c d][ef gh]");
    assert_int_equal(exec("echo \"\""), 0);
    assert_string_equal(last_args, "[]");
}

static void test_unterminated_quote(void **state)
{
    (void)state;
    assert_int_equal(exec("echo \"abc"), -1);
    assert_int_equal(runs, 0);
    assert_string_equal(out, "error: unterminated quote\r\n");
}

static void test_too_many_words(void **state)
{
    (void)state;
    assert_int_equal(exec("echo 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15"), 0);
    assert_int_equal(exec("echo 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16"), -1);
    assert_int_equal(runs, 1);
    assert_non_null(strstr(out, "error: too many words"));
}

static void test_empty_line_runs_nothing(void **state)
{
    (void)state;
    assert_int_equal(exec("   "), 0);
    assert_int_equal(runs, 0);
    assert_int_equal(out_len, 0);
}

static void test_unknown_command(void **state)
{
    (void)state;
    assert_int_equal(exec("frobnicate now"), -1);
    assert_string_equal(out, "error: unknown command 'frobnicate' (type 'help')\r\n");
}

/* `# ...` is a comment (what `config export` writes between commands):
 * nothing runs, nothing is printed, also after leading blanks. */
static void test_comment_lines(void **state)
{
    (void)state;
    assert_int_equal(exec("# net show"), 0);
    assert_int_equal(exec("  \t# frobnicate"), 0);
    assert_int_equal(runs, 0);
    assert_int_equal(out_len, 0);
}

static void test_subcommands(void **state)
{
    (void)state;
    assert_int_equal(exec("net show"), 0);
    assert_int_equal(runs, 1);
    assert_string_equal(last_args, "");
    assert_int_equal(exec("net"), -1);
    assert_string_equal(out, "error: usage: net show|set ...\r\n");
    out_len = 0;
    assert_int_equal(exec("net bogus"), -1);
    assert_string_equal(out, "error: usage: net show|set ...\r\n");
    assert_int_equal(runs, 1);
}

static void test_usage_error_names_the_command(void **state)
{
    (void)state;
    assert_int_equal(exec("net set"), -1);
    assert_string_equal(out, "error: usage: net set <value>\r\n");
    out_len = 0;
    assert_int_equal(exec("net set x"), 0);
    assert_int_equal(out_len, 0);
}

static void test_error_is_one_line(void **state)
{
    (void)state;
    assert_int_equal(exec("fail"), -1);
    assert_string_equal(out, "error: it failed\r\n");
}

static void test_help(void **state)
{
    (void)state;
    assert_int_equal(console_help(&con, NULL), 0);
    assert_non_null(strstr(out, "  echo [words]"));
    assert_non_null(strstr(out, "  net show"));
    assert_non_null(strstr(out, "  net set <value>"));
    out_len = 0;
    assert_int_equal(console_help(&con, "net"), 0);
    assert_null(strstr(out, "echo"));
    assert_non_null(strstr(out, "set it"));
    out_len = 0;
    assert_int_equal(console_help(&con, "nope"), -1);
    assert_string_equal(out, "error: no command 'nope' (type 'help')\r\n");
}

static void test_feed_echoes_and_runs(void **state)
{
    (void)state;
    console_prompt(&con);
    feed("echo hi\r");
    assert_string_equal(out, "relay> echo hi\r\nrelay> ");
    assert_string_equal(last_args, "[hi]");
}

static void test_crlf_is_one_enter(void **state)
{
    (void)state;
    feed("echo a\r\necho b\n\necho c\r\r");
    /* CR LF is one Enter; LF alone is one; CR CR is two (one empty line). */
    assert_int_equal(runs, 3);
    assert_string_equal(last_args, "[c]");
}

static void test_backspace_and_kill(void **state)
{
    (void)state;
    feed("echo abX\x7f" "c\r");
    assert_string_equal(last_args, "[abc]");
    feed("echo zzz\x15" "echo ok\r");
    assert_string_equal(last_args, "[ok]");
    feed("\b\b\becho q\r"); /* backspace on an empty line is harmless */
    assert_string_equal(last_args, "[q]");
}

static void test_ctrl_c_discards_line(void **state)
{
    (void)state;
    feed("fail\x03");
    assert_int_equal(runs, 0);
    assert_non_null(strstr(out, "^C\r\nrelay> "));
    assert_null(strstr(out, "error:"));
}

static void test_escape_sequences_ignored(void **state)
{
    (void)state;
    feed("ec\x1b[Aho\x1b[1;5D x\x1bOP\r");
    assert_string_equal(last_args, "[x]");
}

static void test_control_and_high_bytes_ignored(void **state)
{
    (void)state;
    const uint8_t line[] = {'e', 'c', 0x00, 'h', 0x07, 'o', ' ', 0xC3, 0xA9, 'y', '\r'};
    console_feed(&con, line, sizeof line);
    assert_string_equal(last_args, "[y]");
}

static void test_overlong_line_refused_whole(void **state)
{
    (void)state;
    char line[CONSOLE_LINE_MAX + 40];
    memset(line, 'a', sizeof line);
    memcpy(line, "echo ", 5);
    line[sizeof line - 1] = '\r';
    console_feed(&con, (const uint8_t *)line, sizeof line);
    assert_int_equal(runs, 0);
    assert_non_null(strstr(out, "error: line too long (at most 255 characters)\r\n"));
    /* The next line works normally. */
    feed("echo ok\r");
    assert_string_equal(last_args, "[ok]");
}

static void test_exactly_max_line_runs(void **state)
{
    (void)state;
    char line[CONSOLE_LINE_MAX + 1];
    memset(line, 'b', sizeof line);
    memcpy(line, "echo ", 5);
    line[CONSOLE_LINE_MAX] = '\r';
    console_feed(&con, (const uint8_t *)line, sizeof line);
    assert_int_equal(runs, 1);
    assert_int_equal(strlen(last_args), CONSOLE_LINE_MAX - 5 + 2);
}

static void test_newlines_become_crlf(void **state)
{
    (void)state;
    console_printf(&con, "a\nb\n\nc");
    assert_string_equal(out, "a\r\nb\r\n\r\nc");
}

/* --- secret prompts --- */

static char secret_got[64];
static int secret_calls, secret_cancelled, ask_again;

static void on_secret(struct console *c, const char *line, void *ctx)
{
    (void)ctx;
    secret_calls++;
    if (!line) {
        secret_cancelled++;
        return;
    }
    snprintf(secret_got, sizeof secret_got, "%s", line);
    if (ask_again) {
        ask_again = 0;
        console_ask_secret(c, "repeat password: ", on_secret, NULL);
    }
}

static int ask_cmd(struct console *c, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    console_ask_secret(c, "password: ", on_secret, NULL);
    return CONSOLE_PENDING;
}

static const struct console_cmd ask_table[] = {
    {"ask", NULL, "", "asks for a secret", ask_cmd},
    {NULL, NULL, NULL, NULL, NULL},
};
static const struct console_cmd *const ask_tables[] = {ask_table, NULL};

static int setup_ask(void **state)
{
    setup(state);
    secret_calls = secret_cancelled = ask_again = 0;
    secret_got[0] = '\0';
    console_init(&con, ask_tables, "relay> ", capture, NULL);
    return 0;
}

static void test_secret_not_echoed(void **state)
{
    (void)state;
    feed("ask\r");
    assert_string_equal(out, "ask\r\npassword: ");
    feed("s3cr\x7f" "et\r");
    assert_int_equal(secret_calls, 1);
    assert_string_equal(secret_got, "s3cet"); /* the backspace took the r */
    /* Nothing of the secret, not even the backspace, reaches the terminal. */
    assert_string_equal(out, "ask\r\npassword: \r\nrelay> ");
    /* The line buffer was wiped. */
    assert_null(memchr(con.line, 's', sizeof con.line));
}

static void test_secret_asked_twice(void **state)
{
    (void)state;
    ask_again = 1;
    feed("ask\rone\r");
    assert_string_equal(out, "ask\r\npassword: \r\nrepeat password: ");
    feed("two\r");
    assert_int_equal(secret_calls, 2);
    assert_string_equal(secret_got, "two");
    assert_string_equal(out, "ask\r\npassword: \r\nrepeat password: \r\nrelay> ");
}

static void test_secret_cancelled_by_ctrl_c(void **state)
{
    (void)state;
    feed("ask\rhalf\x03");
    assert_int_equal(secret_calls, 1);
    assert_int_equal(secret_cancelled, 1);
    assert_null(strstr(out, "half"));
    assert_non_null(strstr(out, "^C\r\nrelay> "));
    /* Back to normal: the next line is a command, echoed. */
    feed("ask\r");
    assert_non_null(strstr(out, "relay> ask\r\npassword: "));
}

static void test_overlong_secret_refused(void **state)
{
    (void)state;
    feed("ask\r");
    char line[CONSOLE_LINE_MAX + 10];
    memset(line, 'p', sizeof line);
    line[sizeof line - 1] = '\r';
    console_feed(&con, (const uint8_t *)line, sizeof line);
    assert_int_equal(secret_calls, 1);
    assert_int_equal(secret_cancelled, 1); /* handed over as NULL: nothing used */
    assert_non_null(strstr(out, "error: line too long"));
}

/* --- new password, asked twice --- */

static char pw_got[64];
static int pw_calls;

static int pw_check(const char *pw, char *err, size_t errlen)
{
    if (!*pw) {
        snprintf(err, errlen, "the password is empty");
        return -1;
    }
    return 0;
}

static void pw_done(struct console *c, const char *pw, void *ctx)
{
    (void)c;
    (void)ctx;
    pw_calls++;
    snprintf(pw_got, sizeof pw_got, "%s", pw ? pw : "(none)");
}

static int pw_cmd(struct console *c, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    console_ask_new_password(c, pw_check, pw_done, NULL);
    return CONSOLE_PENDING;
}

static const struct console_cmd pw_table[] = {
    {"pw", NULL, "", "asks for a new password", pw_cmd},
    {NULL, NULL, NULL, NULL, NULL},
};
static const struct console_cmd *const pw_tables[] = {pw_table, NULL};

static int setup_pw(void **state)
{
    setup(state);
    pw_calls = 0;
    pw_got[0] = '\0';
    console_init(&con, pw_tables, "relay> ", capture, NULL);
    return 0;
}

static void test_new_password_matches(void **state)
{
    (void)state;
    feed("pw\rsecret1\rsecret1\r");
    assert_int_equal(pw_calls, 1);
    assert_string_equal(pw_got, "secret1");
    assert_string_equal(out, "pw\r\npassword: \r\nrepeat password: \r\nrelay> ");
    assert_null(memchr(con.pw_first, 's', sizeof con.pw_first)); /* wiped */
}

static void test_new_password_mismatch(void **state)
{
    (void)state;
    feed("pw\rone\rtwo\r");
    assert_int_equal(pw_calls, 1);
    assert_string_equal(pw_got, "(none)");
    assert_non_null(strstr(out, "error: the passwords do not match; nothing changed\r\nrelay> "));
}

static void test_new_password_refused_by_check(void **state)
{
    (void)state;
    feed("pw\r\r");
    assert_int_equal(pw_calls, 1);
    assert_string_equal(pw_got, "(none)");
    assert_non_null(strstr(out, "error: the password is empty; nothing changed\r\nrelay> "));
    assert_null(strstr(out, "repeat password"));
}

static void test_new_password_cancelled(void **state)
{
    (void)state;
    feed("pw\rfirst\rhal\x03");
    assert_int_equal(pw_calls, 1);
    assert_string_equal(pw_got, "(none)");
    assert_non_null(strstr(out, "error: cancelled; nothing changed\r\nrelay> "));
}

/* --- line editing (issue 9) --- */

#define LEFT "\x1b[D"
#define RIGHT "\x1b[C"
#define UP "\x1b[A"
#define DOWN "\x1b[B"

/* A terminal's view of the output: the row the cursor is on and its
 * column, after printable bytes, BS, CR and LF (what both a VT100 and a
 * dumb terminal do with them). */
static char row[1024];
static size_t col;

static const char *screen_row(void)
{
    size_t len = 0;
    col = 0;
    for (size_t i = 0; i < out_len; i++) {
        unsigned char ch = (unsigned char)out[i];
        if (ch == '\n') {
            len = col = 0;
        } else if (ch == '\r') {
            col = 0;
        } else if (ch == '\b') {
            if (col)
                col--;
        } else if (ch >= 0x20 && ch < 0x7F) {
            assert_true(col < sizeof row - 1);
            row[col++] = (char)ch;
            if (col > len)
                len = col;
        } else {
            assert_int_equal(ch, 0x07); /* nothing else is ever sent */
        }
    }
    while (len && row[len - 1] == ' ')
        len--;
    row[len] = '\0';
    return row;
}

/* The line being edited is what the terminal shows, cursor included. */
static void assert_screen(const char *line, size_t cursor)
{
    char want[600];
    snprintf(want, sizeof want, "relay> %s", line);
    size_t n = strlen(want);
    while (want[n - 1] == ' ') /* the terminal cannot tell trailing spaces */
        want[--n] = '\0';
    assert_string_equal(screen_row(), want);
    assert_int_equal(col, strlen("relay> ") + cursor);
    assert_int_equal(con.len, strlen(line));
    assert_memory_equal(con.line, line, con.len);
    assert_int_equal(con.cursor, cursor);
}

static size_t bells(void)
{
    size_t n = 0;
    for (size_t i = 0; i < out_len; i++)
        n += out[i] == '\a';
    return n;
}

static void test_arrows_move_and_insert(void **state)
{
    (void)state;
    console_prompt(&con);
    feed("echo ac" LEFT "b");
    assert_screen("echo abc", 7);
    feed(LEFT LEFT LEFT LEFT LEFT LEFT LEFT LEFT); /* stops at the start */
    assert_screen("echo abc", 0);
    feed("x" RIGHT RIGHT RIGHT RIGHT "y");
    assert_screen("xechoy abc", 6);
    feed("\r");
    assert_int_equal(runs, 0); /* "xechoy" is unknown: nothing ran */
    feed("echo 1" LEFT "2" RIGHT RIGHT RIGHT "3\r"); /* right stops at the end */
    assert_string_equal(last_args, "[213]");
}

static void test_home_and_end_keys(void **state)
{
    (void)state;
    static const char *const home[] = {"\x1b[H", "\x1bOH", "\x1b[1~", "\x1b[7~", "\x01"};
    static const char *const end[] = {"\x1b[F", "\x1bOF", "\x1b[4~", "\x1b[8~", "\x05"};
    for (size_t i = 0; i < sizeof home / sizeof *home; i++) {
        char keys[64];
        snprintf(keys, sizeof keys, "cho x%se%sy\r", home[i], end[i]);
        runs = 0;
        feed(keys);
        assert_int_equal(runs, 1);
        assert_string_equal(last_args, "[xy]");
    }
    /* Application cursor mode arrows (ESC O x) move too. */
    feed("echo ac\x1bOD" "b\x1bOC" "d\r");
    assert_string_equal(last_args, "[abcd]");
}

static void test_escape_sequences_split_across_feeds(void **state)
{
    (void)state;
    /* Left, b, Home, Delete, e, End (SS3), z: "echo abcz". */
    const char *keys = "xcho ac\x1b[Db\x1b[1~\x1b[3~e\x1bOFz\r\n";
    /* Cut at every point, sequences and CR LF included. */
    for (size_t cut = 1; cut < strlen(keys); cut++) {
        runs = 0;
        console_feed(&con, (const uint8_t *)keys, cut);
        console_feed(&con, (const uint8_t *)keys + cut, strlen(keys) - cut);
        assert_int_equal(runs, 1);
        assert_string_equal(last_args, "[abcz]");
    }
    /* One byte per feed. */
    runs = 0;
    for (const char *p = keys; *p; p++)
        console_feed(&con, (const uint8_t *)p, 1);
    assert_int_equal(runs, 1);
    assert_string_equal(last_args, "[abcz]");
}

static void test_delete_key_and_both_backspaces(void **state)
{
    (void)state;
    console_prompt(&con);
    feed("echo abXYc" LEFT "\x7f" "\b");
    assert_screen("echo abc", 7);
    feed(LEFT LEFT "\x1b[3~");
    assert_screen("echo bc", 5);
    feed("\x1b[3~\x1b[3~\x1b[3~"); /* delete at the end does nothing */
    assert_screen("echo ", 5);
    feed("ok\r");
    assert_string_equal(last_args, "[ok]");
}

static void test_ctrl_w_deletes_a_word(void **state)
{
    (void)state;
    console_prompt(&con);
    feed("echo one two  \x17");
    assert_screen("echo one ", 9);
    feed("three" LEFT LEFT LEFT LEFT LEFT LEFT "\x17");
    assert_screen("echo  three", 5);
    feed("\r");
    assert_string_equal(last_args, "[three]");
    feed("\x17\x17 echo x\r"); /* on an empty line: harmless */
    assert_string_equal(last_args, "[x]");
}

static void test_ctrl_u_kills_to_the_start(void **state)
{
    (void)state;
    console_prompt(&con);
    feed("junk echo ok\x1b[H" RIGHT RIGHT RIGHT RIGHT RIGHT "\x15");
    assert_screen("echo ok", 0);
    feed("\r");
    assert_string_equal(last_args, "[ok]");
}

static void test_screen_follows_every_edit(void **state)
{
    (void)state;
    console_prompt(&con);
    feed("echo hello world" LEFT LEFT LEFT LEFT LEFT "\x17" "big " "\x1b[4~" "!" "\x01" "\x1b[3~E");
    assert_screen("Echo big world!", 1);
}

static void test_escape_then_control_byte_acts(void **state)
{
    (void)state;
    /* A lone ESC (the Escape key) does not swallow Enter or Ctrl-C. */
    feed("echo a\x1b\r");
    assert_int_equal(runs, 1);
    assert_string_equal(last_args, "[a]");
    feed("fail\x1b[\x03");
    assert_null(strstr(out, "error:"));
    assert_non_null(strstr(out, "^C\r\nrelay> "));
    /* Alt+key (ESC x) inserts nothing. */
    feed("echo \x1bqb\r");
    assert_string_equal(last_args, "[b]");
}

static void test_history_up_and_down(void **state)
{
    (void)state;
    feed("echo one\recho two\r");
    out_len = 0;
    console_prompt(&con);
    feed("ec");
    feed(UP);
    assert_screen("echo two", 8);
    feed(UP);
    assert_screen("echo one", 8);
    size_t b = bells();
    feed(UP); /* no older entry: bell, line unchanged */
    assert_int_equal(bells(), b + 1);
    assert_screen("echo one", 8);
    feed(DOWN);
    assert_screen("echo two", 8);
    feed(DOWN); /* back to the line being typed */
    assert_screen("ec", 2);
    feed(UP "X\r"); /* a recalled line can be edited and run */
    assert_string_equal(last_args, "[twoX]");
    feed(UP);
    assert_screen("echo twoX", 9);
    feed("\x03" "\x1bOA" "\r"); /* ESC O A is up too */
    assert_string_equal(last_args, "[twoX]");
    assert_int_equal(runs, 4);
}

static void test_history_keeps_the_last_32(void **state)
{
    (void)state;
    char line[32];
    for (int i = 0; i < 40; i++) {
        snprintf(line, sizeof line, "echo %d\r", i);
        feed(line);
    }
    feed("   \r");      /* blank lines are not kept */
    feed("echo 39\r"); /* nor a repeat of the newest */
    out_len = 0;
    console_prompt(&con);
    for (int i = 0; i < CONSOLE_HISTORY; i++)
        feed(UP);
    assert_int_equal(CONSOLE_HISTORY, 32);
    assert_screen("echo 8", 6);
    size_t b = bells();
    feed(UP);
    assert_int_equal(bells(), b + 1);
    assert_screen("echo 8", 6);
    for (int i = 0; i < CONSOLE_HISTORY - 1; i++)
        feed(DOWN);
    assert_screen("echo 39", 7);
}

static void test_tab_completes_a_unique_word(void **state)
{
    (void)state;
    console_prompt(&con);
    feed("ec\t");
    assert_screen("echo ", 5);
    feed("hi\r");
    assert_string_equal(last_args, "[hi]");
    out_len = 0;
    console_prompt(&con);
    feed("smarth\tl\t");
    assert_screen("smarthost list ", 15);
    feed("\x15" "help sm\t"); /* help takes command names */
    assert_screen("help smarthost ", 15);
    feed("\x15" "net s\t"); /* show and set: both start "s", listed */
    feed("h\t");
    assert_screen("net show ", 9);
}

static void test_tab_lists_choices_when_ambiguous(void **state)
{
    (void)state;
    console_prompt(&con);
    feed("s\t");
    assert_non_null(strstr(out, "relay> s\r\nsmarthost  settings  stats  status  seq\r\nrelay> s"));
    assert_screen("s", 1);
    feed("\x15");
    out_len = 0;
    console_prompt(&con);
    feed("sta\t"); /* extends to the shared "stat", rings, lists nothing yet */
    assert_screen("stat", 4);
    assert_int_equal(bells(), 1);
    feed("\t");
    assert_non_null(strstr(out, "\r\nstats  status\r\nrelay> stat"));
    feed("\x03");
    out_len = 0;
    console_prompt(&con);
    feed("smarthost  x" LEFT LEFT "\t"); /* mid-line: lists, cursor kept */
    assert_non_null(strstr(out, "\r\nadd  list  set  test\r\n"));
    assert_screen("smarthost  x", 10);
    feed("\x05\x15" "zz\t"); /* no choice: bell only */
    assert_int_equal(bells(), 1);
    assert_screen("zz", 2);
    feed("\x15" "echo a\t"); /* arguments are not completed */
    assert_screen("echo a", 6);
}

static void test_question_mark_shows_usage(void **state)
{
    (void)state;
    assert_int_equal(exec("net ?"), 0);
    assert_non_null(strstr(out, "  net show"));
    assert_non_null(strstr(out, "  net set <value>"));
    out_len = 0;
    out[0] = '\0';
    assert_int_equal(exec("net set ?"), 0);
    assert_null(strstr(out, "net show"));
    assert_non_null(strstr(out, "  net set <value>"));
    out_len = 0;
    out[0] = '\0';
    assert_int_equal(exec("smarthost add example.com ?"), 0);
    assert_non_null(strstr(out, "add a smart host"));
    assert_null(strstr(out, "smarthost list"));
    out_len = 0;
    out[0] = '\0';
    assert_int_equal(exec("?"), 0);
    assert_non_null(strstr(out, "  echo [words]"));
    assert_non_null(strstr(out, "  smarthost test"));
    out_len = 0;
    out[0] = '\0';
    assert_int_equal(exec("nope ?"), -1);
    assert_string_equal(out, "error: unknown command 'nope' (type 'help')\r\n");
    assert_int_equal(runs, 0); /* "?" never runs the command */
}

/* Lines of help output, each checked against the width; forms unwrapped:
 * a form starts at column 2, its continuation lines at column 6, and
 * descriptions at column 33. */
static int unwrap_help(char forms[][256], char helps[][256], int max)
{
    int n = -1;
    char *save, *text = strdup(out);
    for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        size_t len = strlen(l);
        assert_true(len >= 1 && l[len - 1] == '\r');
        l[--len] = '\0';
        assert_true(len <= CONSOLE_WIDTH);
        size_t indent = strspn(l, " ");
        if (indent == 2) {
            assert_true(++n < max);
            forms[n][0] = helps[n][0] = '\0';
        }
        assert_true(n >= 0);
        char *target = indent == 33 ? helps[n] : forms[n];
        if (indent == 2 && strstr(l + 2, "  ")) {
            /* a short form padded to its description on the same line */
            assert_true(len > 33 && l[32] == ' ' && l[33] != ' ');
            strncat(helps[n], l + 33, 255);
            *strstr(l + 2, "  ") = '\0';
        } else {
            assert_true(indent == 2 || indent == 6 || indent == 33);
        }
        if (target[0])
            strcat(target, " ");
        strncat(target, l + indent, 255 - strlen(target));
    }
    free(text);
    return n + 1;
}

static void test_help_wraps_and_never_cuts(void **state)
{
    (void)state;
    char forms[16][256], helps[16][256];
    assert_int_equal(console_help(&con, "smarthost"), 0);
    assert_int_equal(unwrap_help(forms, helps, 16), 4);
    assert_string_equal(forms[0], "smarthost add " SH_ADD_USAGE);
    assert_string_equal(helps[0],
                        "add a smart host for an allowed domain (user: asks for the password)");
    assert_string_equal(forms[1], "smarthost list [<domain>]");
    assert_string_equal(helps[1], "smart hosts by domain");
    assert_string_equal(forms[2], "smarthost set " SH_SET_USAGE);
    assert_string_equal(helps[2], SH_SET_HELP);
    /* An option group is never split across lines. */
    assert_null(strstr(out, "[user\r\n"));
    assert_null(strstr(out, "NAME |\r\n"));
    /* `smarthost ?` is the same text. */
    static char first[sizeof out];
    memcpy(first, out, out_len + 1);
    out_len = 0;
    assert_int_equal(exec("smarthost ?"), 0);
    assert_string_equal(out, first);
    /* The whole listing keeps the width too. */
    out_len = 0;
    assert_int_equal(console_help(&con, NULL), 0);
    assert_int_equal(unwrap_help(forms, helps, 16), 15);
    assert_string_equal(forms[0], "echo [words]");
    assert_string_equal(helps[0], "print words");
}

static void test_long_line_rings_and_keeps_what_fits(void **state)
{
    (void)state;
    char line[CONSOLE_LINE_MAX + 1];
    memset(line, 'a', CONSOLE_LINE_MAX);
    memcpy(line, "echo ", 5);
    line[CONSOLE_LINE_MAX] = '\0';
    console_prompt(&con);
    feed(line);
    assert_int_equal(bells(), 0);
    feed("XYZ");
    assert_int_equal(bells(), 1); /* once, not per byte */
    assert_screen(line, CONSOLE_LINE_MAX);
    /* Inserting in the middle of a full line overwrites nothing either. */
    feed(LEFT "Q");
    assert_int_equal(bells(), 1);
    assert_int_equal(con.len, CONSOLE_LINE_MAX);
    assert_null(memchr(con.line, 'Q', con.len));
    assert_null(memchr(con.line, 'X', con.len));
    feed("\r");
    assert_int_equal(runs, 0);
    assert_non_null(strstr(out, "error: line too long (at most 255 characters)\r\nrelay> "));
    /* Once the user edits after the bell, the line shown is the line run. */
    feed(line);
    feed("XY\x7f\r");
    assert_int_equal(runs, 1);
    assert_int_equal(strlen(last_args), CONSOLE_LINE_MAX - 5 - 1 + 2);
}

static void test_binary_garbage(void **state)
{
    (void)state;
    uint32_t x = 12345;
    uint8_t buf[97];
    for (int round = 0; round < 3000; round++) {
        for (size_t i = 0; i < sizeof buf; i++) {
            x = x * 1103515245u + 12345u;
            buf[i] = (uint8_t)(x >> 16);
        }
        console_feed(&con, buf, sizeof buf);
        assert_true(con.len <= CONSOLE_LINE_MAX);
        assert_true(con.cursor <= con.len);
        assert_true(con.ahead_len <= CONSOLE_TYPEAHEAD);
        if (console_is_busy(&con))
            console_done(&con);
        out_len = 0;
    }
    /* Whatever state the garbage left, Ctrl-C and a line get a command. */
    feed("\x03" "echo ok\r");
    assert_string_equal(last_args, "[ok]");
}

static void test_paste_runs_every_line_in_order(void **state)
{
    (void)state;
    char script[50 * 16 + 1] = "";
    for (int i = 0; i < 50; i++)
        snprintf(script + strlen(script), sizeof script - strlen(script), "seq %d\r\n", i);
    console_prompt(&con);
    feed(script);
    assert_int_equal(runs, 50);
    assert_int_equal(seq_bad, 0);
    assert_non_null(strstr(out, "relay> seq 0\r\nrelay> seq 1\r\nrelay> seq 2\r\n"));
    assert_string_equal(out + out_len - 15, "seq 49\r\nrelay> ");
}

static void test_paste_while_busy_waits_and_runs_in_order(void **state)
{
    (void)state;
    /* 50 lines of 100 characters behind a busy command, in one write. */
    char script[CONSOLE_TYPEAHEAD];
    size_t used = (size_t)snprintf(script, sizeof script, "smarthost test 1 a@b\r\n");
    for (int i = 0; i < 50; i++) {
        int n = snprintf(script + used, sizeof script - used, "seq %-96d\r\n", i);
        assert_int_equal(n, 100 + 2);
        used += (size_t)n;
    }
    console_prompt(&con);
    feed(script);
    assert_int_equal(busy_starts, 1);
    assert_int_equal(runs, 0); /* nothing runs while the command does */
    assert_true(console_is_busy(&con));
    feed("seq 50\rseq 51\n"); /* more typed while it runs */
    assert_int_equal(runs, 0);
    out_len = 0;
    console_done(&con);
    assert_int_equal(runs, 52);
    assert_int_equal(seq_bad, 0);
    assert_int_equal(strncmp(out, "relay> seq 0 ", 13), 0);
    assert_int_equal(bells(), 0);
}

static void test_typeahead_can_start_another_busy_command(void **state)
{
    (void)state;
    feed("smarthost test 1 a@b\rseq 0\rsmarthost test 2 a@b\rseq 1\r");
    assert_int_equal(busy_starts, 1);
    console_done(&con);
    assert_int_equal(busy_starts, 2);
    assert_int_equal(runs, 1);
    console_done(&con);
    assert_int_equal(runs, 2);
    assert_int_equal(seq_bad, 0);
    assert_false(console_is_busy(&con));
}

static void test_typeahead_overflow_keeps_whole_lines(void **state)
{
    (void)state;
    feed("smarthost test 1 a@b\r");
    int lines = 0, fit = 0;
    size_t total = 0;
    char l[32];
    while (total < CONSOLE_TYPEAHEAD + 500) {
        int n = snprintf(l, sizeof l, "seq %d\r", lines++);
        feed(l);
        total += (size_t)n;
        if (total <= CONSOLE_TYPEAHEAD)
            fit++;
    }
    assert_int_equal(bells(), 1);
    out_len = 0;
    console_done(&con);
    assert_non_null(strstr(out, "error: more than 8192 bytes typed ahead; the rest was discarded"));
    assert_int_equal(seq_bad, 0);
    /* Every line that fit whole ran; no cut one did. */
    assert_true(fit > 1000 && fit < lines);
    assert_int_equal(runs, fit);
    assert_string_equal(out + out_len - 9, "\r\nrelay> ");
    assert_false(console_is_busy(&con));
    assert_int_equal(con.len, 0);
}

static void test_ctrl_c_cancels_a_busy_command(void **state)
{
    (void)state;
    feed("smarthost test 1 a@b\r");
    out_len = 0;
    feed("seq 0\rhalf\x1b");
    feed("\x03");
    assert_int_equal(cancels, 1);
    assert_string_equal(out, "^C\r\nrelay> ");
    assert_int_equal(runs, 0); /* what was typed behind it is discarded */
    feed("echo ok\r");
    assert_string_equal(last_args, "[ok]");
    /* A cancel that finishes later: input after Ctrl-C waits for it. */
    cancel_finishes = 0;
    feed("smarthost test 1 a@b\r\x03" "echo later\r");
    assert_int_equal(cancels, 2);
    assert_string_equal(last_args, "[ok]");
    console_done(&con);
    assert_string_equal(last_args, "[later]");
}

static void test_done_inside_the_handler_prompts_once(void **state)
{
    (void)state;
    feed("busyfail\r");
    assert_string_equal(out, "busyfail\r\nerror: could not start\r\nrelay> ");
    assert_false(console_is_busy(&con));
}

static void test_cr_lf_split_and_behind_a_busy_command(void **state)
{
    (void)state;
    feed("echo a\r");
    feed("\n");
    assert_int_equal(runs, 1);
    out_len = 0;
    feed("smarthost test 1 a@b\r\n");
    console_done(&con);
    assert_string_equal(out, "smarthost test 1 a@b\r\nrelay> "); /* no empty second line */
    out_len = 0;
    feed("echo b\n\recho c\r\n");
    assert_int_equal(runs, 3); /* LF CR is two line ends, the second empty */
    assert_string_equal(out, "echo b\r\nrelay> \r\nrelay> echo c\r\nrelay> ");
}


static void test_history_never_keeps_secrets(void **state)
{
    (void)state;
    feed("ask\rhunter2\r");
    assert_string_equal(secret_got, "hunter2");
    /* Arrows at a password prompt neither recall nor move anything. */
    feed("ask\r" UP LEFT "pw\x1b[H" "X\r");
    assert_string_equal(secret_got, "pwX");
    out_len = 0;
    console_prompt(&con);
    feed(UP);
    assert_screen("ask", 3);
    size_t b = bells();
    feed(UP); /* "ask" twice was kept once; nothing else was kept */
    assert_int_equal(bells(), b + 1);
    for (int i = 0; i < CONSOLE_HISTORY; i++) {
        const char *h = con.hist[i];
        assert_null(strstr(h, "hunter2"));
        assert_null(strstr(h, "pw"));
    }
    assert_null(strstr(con.draft, "hunter2"));
    /* Tab at a password prompt is not completion either. */
    feed("\x03" "ask\ras\t\r");
    assert_string_equal(secret_got, "as");
}

static void test_paste_answers_a_secret_prompt(void **state)
{
    (void)state;
    /* Lines after one that asks for a password answer it, in order. */
    ask_again = 1;
    feed("ask\r\none\r\ntwo\r\nask\r\nthree\r\n");
    assert_int_equal(secret_calls, 3);
    assert_string_equal(secret_got, "three");
    assert_null(strstr(out, "one"));
    assert_null(strstr(out, "two"));
    assert_non_null(strstr(out, "repeat password: \r\nrelay> ask\r\npassword: \r\nrelay> "));
}

/* --- long outputs --- */

static void poll_until_done(void)
{
    for (int i = 0; i < 1000 && console_poll(&con); i++)
        ;
    assert_false(console_poll(&con));
}

static void test_stream_waits_for_room(void **state)
{
    (void)state;
    room_now = CONSOLE_STREAM_ROOM - 1;
    feed("rows 7\r");
    assert_string_equal(out, "rows 7\r\n"); /* nothing before the loop polls */
    assert_true(console_is_busy(&con));
    assert_false(console_poll(&con)); /* no room: no step */
    assert_int_equal(rows.steps, 0);
    room_now = CONSOLE_STREAM_ROOM;
    poll_until_done();
    assert_string_equal(out, "rows 7\r\nrow 0\r\nrow 1\r\nrow 2\r\nrow 3\r\nrow 4\r\n"
                             "row 5\r\nrow 6\r\nrelay> ");
    assert_int_equal(rows.steps, 3);
    assert_false(console_is_busy(&con));
}

/* A step per poll at most CONSOLE_STREAM_TURNS times: the loop gets back
 * to the network in between. */
static void test_stream_yields_to_the_loop(void **state)
{
    (void)state;
    feed("rows 300\r");
    assert_true(console_poll(&con));
    assert_int_equal(rows.steps, CONSOLE_STREAM_TURNS);
    poll_until_done();
    assert_int_equal(rows.steps, 100);
    assert_non_null(strstr(out, "row 299\r\nrelay> "));
}

static void test_stream_typeahead_runs_after_it(void **state)
{
    (void)state;
    feed("rows 4\recho after\r");
    assert_int_equal(runs, 0);
    poll_until_done();
    assert_int_equal(runs, 1);
    assert_string_equal(last_args, "[after]");
    assert_non_null(strstr(out, "row 3\r\nrelay> echo after\r\nrelay> "));
}

static void test_stream_ctrl_c_ends_it(void **state)
{
    (void)state;
    feed("rows 100\r");
    console_poll(&con);
    out_len = 0;
    feed("echo typed\r\x03");
    assert_int_equal(rows.cancelled, 1);
    assert_int_equal(rows.finished, 1);
    assert_string_equal(out, "^C\r\nrelay> ");
    assert_false(console_is_busy(&con));
    assert_false(console_poll(&con)); /* no step after the end */
    assert_int_equal(runs, 0);        /* typed behind it: discarded */
}

/* --- `output json` --- */

static void json_on(void)
{
    console_set_json(&con, 1);
    out_len = 0;
    out[0] = '\0';
}

static void test_json_gathers_text_commands(void **state)
{
    (void)state;
    json_on();
    feed("okwarn\r");
    assert_string_equal(out, "okwarn\r\n{\"ok\":true,\"message\":\"done\",\"warnings\":"
                             "[\"\\\"quoted\\\" thing\"],\"lines\":[\"note line\"]}\r\n"
                             "relay> ");
    out_len = 0;
    feed("fail\r");
    assert_string_equal(out, "fail\r\n{\"error\":\"it failed\"}\r\nrelay> ");
    out_len = 0;
    feed("echo quiet\r"); /* prints nothing in text: still one object */
    assert_string_equal(out, "echo quiet\r\n{\"ok\":true}\r\nrelay> ");
    out_len = 0;
    feed("net set\r");
    assert_string_equal(out, "net set\r\n{\"error\":\"usage: net set <value>\"}\r\nrelay> ");
    out_len = 0;
    feed("bogus\r");
    assert_non_null(strstr(out, "{\"error\":\"unknown command 'bogus' (type 'help')\"}\r\n"));
    out_len = 0;
    feed("say \"unterminated\r");
    assert_string_equal(out, "say \"unterminated\r\n{\"error\":\"unterminated quote\"}\r\n"
                             "relay> ");
}

static void test_json_nothing_for_empty_and_comment_lines(void **state)
{
    (void)state;
    json_on();
    feed("\r# a comment\r");
    assert_string_equal(out, "\r\nrelay> # a comment\r\nrelay> ");
}

static void test_json_stream_is_one_line(void **state)
{
    (void)state;
    json_on();
    feed("rows 7\r");
    poll_until_done();
    assert_string_equal(out, "rows 7\r\n{\"rows\":[0,1,2,3,4,5,6]}\r\nrelay> ");
    out_len = 0;
    feed("rows 0\r");
    poll_until_done();
    assert_string_equal(out, "rows 0\r\n{\"rows\":[]}\r\nrelay> ");
    /* Cut short by Ctrl-C: still valid JSON. */
    out_len = 0;
    feed("rows 50\r");
    console_poll(&con);
    feed("\x03");
    char *line = strstr(out, "\r\n") + 2;
    assert_int_equal(strncmp(line, "{\"rows\":[0,1,2,", 15), 0);
    assert_non_null(strstr(line, "]}\r\n^C\r\nrelay> "));
    assert_null(strstr(line, "^C\r\n]}")); /* the object's line is not broken by the echo */
}

static void test_json_help(void **state)
{
    (void)state;
    json_on();
    feed("net ?\r");
    assert_string_equal(out, "net ?\r\n{\"commands\":[{\"command\":\"net\",\"sub\":\"show\","
                             "\"usage\":\"\",\"help\":\"show it\"},{\"command\":\"net\","
                             "\"sub\":\"set\",\"usage\":\"<value>\",\"help\":\"set it\"}]}\r\n"
                             "relay> ");
    out_len = 0;
    feed("net set ?\r");
    assert_string_equal(out, "net set ?\r\n{\"commands\":[{\"command\":\"net\",\"sub\":\"set\","
                             "\"usage\":\"<value>\",\"help\":\"set it\"}]}\r\nrelay> ");
    out_len = 0;
    assert_int_equal(console_help(&con, "nothing"), -1);
    assert_string_equal(out, "{\"error\":\"no command 'nothing' (type 'help')\"}\r\n");
}

/* A long transcript fills the gathered text; the failure at its end is
 * still the answer, never {"ok": true}. */
static void test_json_error_after_a_long_transcript(void **state)
{
    (void)state;
    json_on();
    feed("smarthost test 1 a@b\r");
    for (int i = 0; i < 60; i++)
        console_printf(&con, "step %d: a line of progress of some length ..........\n", i);
    console_error(&con, "test message not delivered");
    console_done(&con);
    char *obj = strstr(out, "{");
    assert_non_null(obj);
    static const char start[] = "{\"error\":\"test message not delivered\",\"lines\":[";
    assert_int_equal(strncmp(obj, start, sizeof start - 1), 0);
    assert_non_null(strstr(obj, "\"truncated\":true}\r\nrelay> "));
}

/* A new session (after a logout locked the console) starts in text. */
static void test_json_ends_with_the_session(void **state)
{
    (void)state;
    json_on();
    console_set_locked(&con, 1);
    console_set_locked(&con, 0);
    feed("fail\r");
    assert_string_equal(out, "fail\r\nerror: it failed\r\nrelay> ");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_words_and_quotes, setup),
        cmocka_unit_test_setup(test_unterminated_quote, setup),
        cmocka_unit_test_setup(test_too_many_words, setup),
        cmocka_unit_test_setup(test_empty_line_runs_nothing, setup),
        cmocka_unit_test_setup(test_unknown_command, setup),
        cmocka_unit_test_setup(test_comment_lines, setup),
        cmocka_unit_test_setup(test_subcommands, setup),
        cmocka_unit_test_setup(test_usage_error_names_the_command, setup),
        cmocka_unit_test_setup(test_error_is_one_line, setup),
        cmocka_unit_test_setup(test_help, setup),
        cmocka_unit_test_setup(test_feed_echoes_and_runs, setup),
        cmocka_unit_test_setup(test_crlf_is_one_enter, setup),
        cmocka_unit_test_setup(test_backspace_and_kill, setup),
        cmocka_unit_test_setup(test_ctrl_c_discards_line, setup),
        cmocka_unit_test_setup(test_escape_sequences_ignored, setup),
        cmocka_unit_test_setup(test_control_and_high_bytes_ignored, setup),
        cmocka_unit_test_setup(test_overlong_line_refused_whole, setup),
        cmocka_unit_test_setup(test_exactly_max_line_runs, setup),
        cmocka_unit_test_setup(test_newlines_become_crlf, setup),
        cmocka_unit_test_setup(test_secret_not_echoed, setup_ask),
        cmocka_unit_test_setup(test_secret_asked_twice, setup_ask),
        cmocka_unit_test_setup(test_secret_cancelled_by_ctrl_c, setup_ask),
        cmocka_unit_test_setup(test_overlong_secret_refused, setup_ask),
        cmocka_unit_test_setup(test_new_password_matches, setup_pw),
        cmocka_unit_test_setup(test_new_password_mismatch, setup_pw),
        cmocka_unit_test_setup(test_new_password_refused_by_check, setup_pw),
        cmocka_unit_test_setup(test_new_password_cancelled, setup_pw),
        cmocka_unit_test_setup(test_arrows_move_and_insert, setup),
        cmocka_unit_test_setup(test_home_and_end_keys, setup),
        cmocka_unit_test_setup(test_escape_sequences_split_across_feeds, setup),
        cmocka_unit_test_setup(test_delete_key_and_both_backspaces, setup),
        cmocka_unit_test_setup(test_ctrl_w_deletes_a_word, setup),
        cmocka_unit_test_setup(test_ctrl_u_kills_to_the_start, setup),
        cmocka_unit_test_setup(test_screen_follows_every_edit, setup),
        cmocka_unit_test_setup(test_escape_then_control_byte_acts, setup),
        cmocka_unit_test_setup(test_history_up_and_down, setup),
        cmocka_unit_test_setup(test_history_keeps_the_last_32, setup),
        cmocka_unit_test_setup(test_history_never_keeps_secrets, setup_ask),
        cmocka_unit_test_setup(test_tab_completes_a_unique_word, setup),
        cmocka_unit_test_setup(test_tab_lists_choices_when_ambiguous, setup),
        cmocka_unit_test_setup(test_question_mark_shows_usage, setup),
        cmocka_unit_test_setup(test_help_wraps_and_never_cuts, setup),
        cmocka_unit_test_setup(test_long_line_rings_and_keeps_what_fits, setup),
        cmocka_unit_test_setup(test_binary_garbage, setup),
        cmocka_unit_test_setup(test_paste_runs_every_line_in_order, setup),
        cmocka_unit_test_setup(test_paste_while_busy_waits_and_runs_in_order, setup),
        cmocka_unit_test_setup(test_typeahead_can_start_another_busy_command, setup),
        cmocka_unit_test_setup(test_typeahead_overflow_keeps_whole_lines, setup),
        cmocka_unit_test_setup(test_ctrl_c_cancels_a_busy_command, setup),
        cmocka_unit_test_setup(test_done_inside_the_handler_prompts_once, setup),
        cmocka_unit_test_setup(test_cr_lf_split_and_behind_a_busy_command, setup),
        cmocka_unit_test_setup(test_paste_answers_a_secret_prompt, setup_ask),
        cmocka_unit_test_setup(test_stream_waits_for_room, setup),
        cmocka_unit_test_setup(test_stream_yields_to_the_loop, setup),
        cmocka_unit_test_setup(test_stream_typeahead_runs_after_it, setup),
        cmocka_unit_test_setup(test_stream_ctrl_c_ends_it, setup),
        cmocka_unit_test_setup(test_json_gathers_text_commands, setup),
        cmocka_unit_test_setup(test_json_nothing_for_empty_and_comment_lines, setup),
        cmocka_unit_test_setup(test_json_stream_is_one_line, setup),
        cmocka_unit_test_setup(test_json_help, setup),
        cmocka_unit_test_setup(test_json_ends_with_the_session, setup),
        cmocka_unit_test_setup(test_json_error_after_a_long_transcript, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
