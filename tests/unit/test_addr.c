/* IPv4 text forms: strict parsing, formatting, masks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "addr.h"

static void test_parse_valid(void **state)
{
    (void)state;
    uint32_t a;
    assert_int_equal(addr_ip4_parse("10.0.2.15", &a), 0);
    assert_int_equal(a, 0x0A00020F);
    assert_int_equal(addr_ip4_parse("0.0.0.0", &a), 0);
    assert_int_equal(a, 0);
    assert_int_equal(addr_ip4_parse("255.255.255.255", &a), 0);
    assert_int_equal(a, 0xFFFFFFFFu);
}

static void test_parse_invalid(void **state)
{
    (void)state;
    const char *bad[] = {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.4 ", " 1.2.3.4",
                         "01.2.3.4", "1..3.4", "1.2.3.-4", "a.b.c.d", "1.2.3.4/24",
                         "1000.1.1.1", "1.2.3.4.", "0x1.2.3.4"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint32_t a = 0x12345678;
        assert_int_equal(addr_ip4_parse(bad[i], &a), -1);
        assert_int_equal(a, 0x12345678); /* untouched on failure */
    }
}

static void test_format(void **state)
{
    (void)state;
    char buf[ADDR_IP4_STRLEN];
    assert_string_equal(addr_ip4_format(0xC0000201, buf), "192.0.2.1");
    assert_string_equal(addr_ip4_format(0xFFFFFFFFu, buf), "255.255.255.255");
}

static void test_masks(void **state)
{
    (void)state;
    assert_int_equal(addr_ip4_mask(0), 0);
    assert_int_equal(addr_ip4_mask(24), 0xFFFFFF00u);
    assert_int_equal(addr_ip4_mask(32), 0xFFFFFFFFu);
    assert_int_equal(addr_ip4_prefix(0xFFFFFF00u), 24);
    assert_int_equal(addr_ip4_prefix(0), 0);
    assert_int_equal(addr_ip4_prefix(0xFFFFFFFFu), 32);
    assert_int_equal(addr_ip4_prefix(0xFF00FF00u), -1);
    assert_int_equal(addr_ip4_prefix(0x00FFFFFFu), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_valid),
        cmocka_unit_test(test_parse_invalid),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_masks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
