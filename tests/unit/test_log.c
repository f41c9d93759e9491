/* RAM log ring: bounded, oldest first, overwrites when full. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "hal_fakes.h"
#include "log.h"

static void test_ring(void **state)
{
    (void)state;
    assert_int_equal(log_count(), 0);
    assert_null(log_get(0));
    hal_fake_now_ms = 1234;
    log_info("boot", "hello %d", 1);
    assert_int_equal(log_count(), 1);
    const struct log_entry *e = log_get(0);
    assert_non_null(e);
    assert_string_equal(e->text, "boot: hello 1");
    assert_int_equal(e->ms, 1234);
    assert_int_equal(e->level, LOG_INFO);
    for (int i = 2; i <= LOG_RING_ENTRIES + 5; i++)
        log_warn("x", "line %d", i);
    assert_int_equal(log_count(), LOG_RING_ENTRIES);
    /* The oldest held entry is the one written LOG_RING_ENTRIES ago. */
    char want[32];
    snprintf(want, sizeof want, "x: line %d", 6);
    assert_string_equal(log_get(0)->text, want);
    snprintf(want, sizeof want, "x: line %d", LOG_RING_ENTRIES + 5);
    assert_string_equal(log_get(LOG_RING_ENTRIES - 1)->text, want);
    assert_int_equal(log_get(LOG_RING_ENTRIES - 1)->seq, LOG_RING_ENTRIES + 5);
    assert_null(log_get(LOG_RING_ENTRIES));
}

static void test_long_text_truncated(void **state)
{
    (void)state;
    char big[LOG_TEXT_MAX * 2];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    log_err("m", "%s", big);
    const struct log_entry *e = log_get(log_count() - 1);
    assert_int_equal(strlen(e->text), LOG_TEXT_MAX - 1);
    assert_memory_equal(e->text, "m: zzz", 6);
}

static const char *last(void) { return log_get(log_count() - 1)->text; }

/* Every entry is printable ASCII, whatever the caller passed. */
static void assert_printable(const char *t)
{
    for (; *t; t++)
        assert_true(*t >= 0x20 && *t < 0x7f);
}

/* What a peer sends cannot reach the operator's terminal raw: control
 * bytes and 8-bit bytes show as \xNN, a backslash as \\, so a forged
 * "\x1b" is told apart from an escaped ESC. */
static void test_peer_text_escaped(void **state)
{
    (void)state;
    log_info("smtp", "HELO %s", "evil\x1b[2J\r\nfake: line");
    assert_string_equal(last(), "smtp: HELO evil\\x1b[2J\\x0d\\x0afake: line");
    /* the same text sent literally, backslashes and all */
    log_info("smtp", "HELO %s", "evil\\x1b[2J");
    assert_string_equal(last(), "smtp: HELO evil\\\\x1b[2J");
    log_info("smtp", "HELO %s", "a\x1b[2Jb\r\nsmtp: forged\x07\x7f\x80\xff\t");
    assert_string_equal(last(),
                        "smtp: HELO a\\x1b[2Jb\\x0d\\x0asmtp: forged\\x07\\x7f\\x80\\xff\\x09");
    assert_printable(last());
    /* the module name too */
    log_warn("m\x1bx", "%s", "\xc3\xa9");
    assert_string_equal(last(), "m\\x1bx: \\xc3\\xa9");
}

/* Escaping never overruns the entry, and an escape is never cut in half. */
static void test_escaped_truncation(void **state)
{
    (void)state;
    char big[LOG_TEXT_MAX * 2];
    memset(big, 0x1b, sizeof big - 1);
    big[sizeof big - 1] = '\0';
    log_err("m", "%s", big);
    const char *t = last();
    size_t n = strlen(t);
    assert_true(n < LOG_TEXT_MAX);
    assert_memory_equal(t, "m: \\x1b", 7);
    assert_int_equal((n - 3) % 4, 0); /* whole \x1b escapes only */
    assert_true(n > LOG_TEXT_MAX - 5);
    assert_printable(t);
    memset(big, '\\', sizeof big - 1);
    log_err("m", "%s", big);
    t = last();
    n = strlen(t);
    assert_int_equal((n - 3) % 2, 0);
    assert_true(n >= LOG_TEXT_MAX - 2);
}

static void test_escape_function(void **state)
{
    (void)state;
    char out[16];
    assert_int_equal(log_escape(out, sizeof out, "ok\0x", 4), 7);
    assert_string_equal(out, "ok\\x00x");
    assert_int_equal(log_escape(out, 4, "\x01", 1), 0); /* no room for a whole escape */
    assert_string_equal(out, "");
    assert_int_equal(log_escape(out, 5, "\x01", 1), 4);
    assert_string_equal(out, "\\x01");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ring),
        cmocka_unit_test(test_long_text_truncated),
        cmocka_unit_test(test_peer_text_escaped),
        cmocka_unit_test(test_escaped_truncation),
        cmocka_unit_test(test_escape_function),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
