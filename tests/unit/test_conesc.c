/* stdio console escape: Ctrl-A x quits, everything else reaches the device. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "conesc.h"

static void test_plain_bytes_and_ctrl_c_pass(void **state)
{
    (void)state;
    struct conesc e = {0};
    uint8_t out[8];
    int quit;
    const uint8_t in[] = {'l', 's', 0x03, '\r'};
    assert_int_equal(conesc_filter(&e, in, sizeof in, out, &quit), 4);
    assert_memory_equal(out, in, 4);
    assert_int_equal(quit, 0);
}

static void test_ctrl_a_x_quits(void **state)
{
    (void)state;
    struct conesc e = {0};
    uint8_t out[8];
    int quit;
    const uint8_t in[] = {'a', 0x01, 'x', 'b'};
    assert_int_equal(conesc_filter(&e, in, sizeof in, out, &quit), 1);
    assert_int_equal(out[0], 'a');
    assert_int_equal(quit, 1);
}

static void test_escape_split_across_reads(void **state)
{
    (void)state;
    struct conesc e = {0};
    uint8_t out[8];
    int quit;
    const uint8_t a[] = {0x01};
    const uint8_t x[] = {'x'};
    assert_int_equal(conesc_filter(&e, a, 1, out, &quit), 0);
    assert_int_equal(quit, 0);
    assert_int_equal(conesc_filter(&e, x, 1, out, &quit), 0);
    assert_int_equal(quit, 1);
}

static void test_double_ctrl_a_sends_one(void **state)
{
    (void)state;
    struct conesc e = {0};
    uint8_t out[8];
    int quit;
    const uint8_t in[] = {0x01, 0x01, 'x'};
    assert_int_equal(conesc_filter(&e, in, sizeof in, out, &quit), 2);
    assert_int_equal(out[0], 0x01);
    assert_int_equal(out[1], 'x');
    assert_int_equal(quit, 0);
}

static void test_unknown_escape_dropped(void **state)
{
    (void)state;
    struct conesc e = {0};
    uint8_t out[8];
    int quit;
    const uint8_t in[] = {0x01, 'h', 'k'};
    assert_int_equal(conesc_filter(&e, in, sizeof in, out, &quit), 1);
    assert_int_equal(out[0], 'k');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_bytes_and_ctrl_c_pass),
        cmocka_unit_test(test_ctrl_a_x_quits),
        cmocka_unit_test(test_escape_split_across_reads),
        cmocka_unit_test(test_double_ctrl_a_sends_one),
        cmocka_unit_test(test_unknown_escape_dropped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
