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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ring),
        cmocka_unit_test(test_long_text_truncated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
