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

static void test_ip6_parse_and_format(void **state)
{
    (void)state;
    static const struct {
        const char *in, *canon;
    } ok[] = {
        {"::", "::"},
        {"::1", "::1"},
        {"2001:db8::1", "2001:db8::1"},
        {"2001:DB8:0:0:0:0:0:1", "2001:db8::1"},
        {"2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"}, /* a single zero group stays */
        {"2001:0:0:1:0:0:0:1", "2001:0:0:1::1"},          /* the longest run is cut */
        {"fe80::", "fe80::"},
        {"::ffff:10.0.2.2", "::ffff:a00:202"},
        {"1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"},
        {"1::", "1::"},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        uint8_t a[16];
        char buf[ADDR_IP6_STRLEN];
        assert_int_equal(addr_ip6_parse(ok[i].in, a), 0);
        assert_string_equal(addr_ip6_format(a, buf), ok[i].canon);
    }
    uint8_t a[16];
    assert_int_equal(addr_ip6_parse("2001:db8::1", a), 0);
    assert_int_equal(a[0], 0x20);
    assert_int_equal(a[1], 0x01);
    assert_int_equal(a[15], 1);
}

static void test_ip6_invalid(void **state)
{
    (void)state;
    const char *bad[] = {"", ":", ":::", "1:::2", "1::2::3", "12345::", "1:2:3:4:5:6:7:8:9",
                         "1:2:3:4:5:6:7", ":1::", "1::2:", "g::1", "[::1]", "::1%eth0",
                         "1:2:3:4:5:6:7:1.2.3.4", "::1.2.3", "1.2.3.4", "::/0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t a[16];
        assert_int_equal(addr_ip6_parse(bad[i], a), -1);
    }
}

static void test_net_parse(void **state)
{
    (void)state;
    struct addr_net n;
    char buf[ADDR_NET_STRLEN];
    assert_int_equal(addr_net_parse("10.0.2.0/24", &n), ADDR_NET_OK);
    assert_int_equal(n.family, 4);
    assert_int_equal(n.prefix, 24);
    assert_string_equal(addr_net_format(&n, buf), "10.0.2.0/24");
    assert_int_equal(addr_net_parse("10.0.2.2", &n), ADDR_NET_OK);
    assert_string_equal(addr_net_format(&n, buf), "10.0.2.2/32");
    assert_int_equal(addr_net_parse("2001:DB8::/32", &n), ADDR_NET_OK);
    assert_string_equal(addr_net_format(&n, buf), "2001:db8::/32");
    assert_int_equal(addr_net_parse("::1", &n), ADDR_NET_OK);
    assert_int_equal(n.prefix, 128);
    assert_int_equal(addr_net_parse("10.0.0.1/8", &n), ADDR_NET_HOST_BITS);
    addr_net_mask_host(&n);
    assert_string_equal(addr_net_format(&n, buf), "10.0.0.0/8");
    assert_int_equal(addr_net_parse("2001:db8::1/64", &n), ADDR_NET_HOST_BITS);
    addr_net_mask_host(&n);
    assert_string_equal(addr_net_format(&n, buf), "2001:db8::/64");
    const char *bad_prefix[] = {"10.0.0.0/33", "10.0.0.0/", "10.0.0.0/x", "10.0.0.0/08",
                                "::/129", "::/-1", "10.0.0.0/24/1"};
    for (size_t i = 0; i < sizeof bad_prefix / sizeof bad_prefix[0]; i++)
        assert_int_equal(addr_net_parse(bad_prefix[i], &n), ADDR_NET_BAD_PREFIX);
    const char *bad_addr[] = {"", "/24", "example.com/24", "10.0.0/24", "fe80::1%1/64"};
    for (size_t i = 0; i < sizeof bad_addr / sizeof bad_addr[0]; i++)
        assert_int_equal(addr_net_parse(bad_addr[i], &n), ADDR_NET_BAD_ADDR);
    assert_int_equal(addr_net_parse("0.0.0.0/0", &n), ADDR_NET_OK);
    assert_int_equal(n.prefix, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_valid),
        cmocka_unit_test(test_parse_invalid),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_masks),
        cmocka_unit_test(test_ip6_parse_and_format),
        cmocka_unit_test(test_ip6_invalid),
        cmocka_unit_test(test_net_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
