/* Console line discipline, tokenizer and table dispatch. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "console.h"

static char out[8192];
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
static const struct console_cmd *const tables[] = {table_a, table_b, NULL};

static struct console con;

static int setup(void **state)
{
    (void)state;
    out_len = 0;
    out[0] = '\0';
    runs = 0;
    last_args[0] = '\0';
    console_init(&con, tables, "relay> ", capture, NULL);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_words_and_quotes, setup),
        cmocka_unit_test_setup(test_unterminated_quote, setup),
        cmocka_unit_test_setup(test_too_many_words, setup),
        cmocka_unit_test_setup(test_empty_line_runs_nothing, setup),
        cmocka_unit_test_setup(test_unknown_command, setup),
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
