/* Retry schedule arithmetic (5 min doubling, capped at 1 h; 5-day lifetime). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "retry.h"

static void test_default_schedule(void **state)
{
    (void)state;
    const int64_t expect[] = {300, 600, 1200, 2400, 3600, 3600, 3600};
    for (int i = 0; i < 7; i++)
        assert_int_equal(retry_delay(300, 3600, i + 1), expect[i]);
    /* Far beyond: still the cap, no overflow. */
    assert_int_equal(retry_delay(300, 3600, 1000000), 3600);
    assert_int_equal(retry_delay(300, 3600, 0x7FFFFFFF), 3600);
}

static void test_odd_settings(void **state)
{
    (void)state;
    assert_int_equal(retry_delay(1, 2, 1), 1);
    assert_int_equal(retry_delay(1, 2, 2), 2);
    assert_int_equal(retry_delay(1, 2, 3), 2);
    assert_int_equal(retry_delay(500, 100, 1), 500); /* max below initial: initial wins */
    assert_int_equal(retry_delay(0, 10, 1), 1);       /* never zero: no busy loop */
    assert_int_equal(retry_delay(300, 3600, 0), 300);  /* before any attempt */
}

static void test_lifetime(void **state)
{
    (void)state;
    const int64_t received = 1700000000, five_days = 5 * 86400;
    assert_false(retry_expired(received, five_days, received));
    assert_false(retry_expired(received, five_days, received + five_days - 1));
    assert_true(retry_expired(received, five_days, received + five_days));
    /* A clock that went backwards does not expire anything. */
    assert_false(retry_expired(received, five_days, received - 3600));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_schedule),
        cmocka_unit_test(test_odd_settings),
        cmocka_unit_test(test_lifetime),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
