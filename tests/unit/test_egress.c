/* The wire's egress filter: only the host alias (and DHCP's broadcast) pass;
 * in tap mode also the hosts of the board's subnet. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "egress.h"

#define HOST_ALIAS 0x0A000202u /* 10.0.2.2 */
#define GUEST 0x0A00020Fu      /* 10.0.2.15 */
#define SLIRP_DNS 0x0A000203u  /* 10.0.2.3 */

static const struct egress_policy policy = {HOST_ALIAS, 0, 0};
static uint8_t frame[1514];

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static size_t ipv4(uint32_t src, uint32_t dst, uint8_t proto, uint16_t dport)
{
    memset(frame, 0, sizeof frame);
    memset(frame, 0xFF, 6);
    frame[12] = 0x08;
    frame[13] = 0x00;
    uint8_t *ip = frame + 14;
    ip[0] = 0x45;
    ip[9] = proto;
    put32(ip + 12, src);
    put32(ip + 16, dst);
    ip[20 + 2] = (uint8_t)(dport >> 8);
    ip[20 + 3] = (uint8_t)dport;
    return 14 + 20 + 8;
}

static size_t arp(uint32_t sender, uint32_t target)
{
    memset(frame, 0, sizeof frame);
    frame[12] = 0x08;
    frame[13] = 0x06;
    uint8_t *a = frame + 14;
    a[1] = 1;    /* Ethernet */
    a[2] = 0x08; /* IPv4 */
    a[4] = 6;
    a[5] = 4;
    a[7] = 1; /* request */
    put32(a + 14, sender);
    put32(a + 24, target);
    return 14 + 28;
}

static void test_ipv4_to_host_alias_passes(void **state)
{
    (void)state;
    size_t n = ipv4(GUEST, HOST_ALIAS, 6, 2525);
    assert_int_equal(egress_check(&policy, frame, n), EGRESS_PASS);
}

static void test_ipv4_elsewhere_dropped(void **state)
{
    (void)state;
    uint32_t others[] = {SLIRP_DNS, 0x08080808u, 0x7F000001u, 0x0A0002FFu, 0xE0000001u};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        size_t n = ipv4(GUEST, others[i], 17, 53);
        assert_int_equal(egress_check(&policy, frame, n), EGRESS_DROP);
    }
}

static void test_dhcp_broadcast_passes(void **state)
{
    (void)state;
    size_t n = ipv4(0, 0xFFFFFFFFu, 17, 67);
    assert_int_equal(egress_check(&policy, frame, n), EGRESS_PASS);
}

static void test_other_broadcasts_dropped(void **state)
{
    (void)state;
    size_t n = ipv4(GUEST, 0xFFFFFFFFu, 17, 137); /* NetBIOS */
    assert_int_equal(egress_check(&policy, frame, n), EGRESS_DROP);
    n = ipv4(GUEST, 0xFFFFFFFFu, 6, 67); /* TCP, not UDP */
    assert_int_equal(egress_check(&policy, frame, n), EGRESS_DROP);
}

static void test_fragmented_broadcast_dropped(void **state)
{
    (void)state;
    size_t n = ipv4(0, 0xFFFFFFFFu, 17, 67);
    frame[14 + 6] = 0x20; /* more fragments */
    assert_int_equal(egress_check(&policy, frame, n), EGRESS_DROP);
}

static void test_ip_options_respected(void **state)
{
    (void)state;
    size_t n = ipv4(0, 0xFFFFFFFFu, 17, 0);
    frame[14] = 0x46; /* IHL 6: the UDP header starts 4 bytes later */
    frame[14 + 24 + 2] = 0;
    frame[14 + 24 + 3] = 67;
    assert_int_equal(egress_check(&policy, frame, n + 4), EGRESS_PASS);
    frame[14] = 0x44; /* IHL below 5 is malformed */
    assert_int_equal(egress_check(&policy, frame, n + 4), EGRESS_DROP);
}

static void test_arp(void **state)
{
    (void)state;
    size_t n = arp(GUEST, HOST_ALIAS);
    assert_int_equal(egress_check(&policy, frame, n), EGRESS_PASS);
    n = arp(GUEST, SLIRP_DNS);
    assert_int_equal(egress_check(&policy, frame, n), EGRESS_DROP);
    n = arp(GUEST, GUEST); /* gratuitous announcement */
    assert_int_equal(egress_check(&policy, frame, n), EGRESS_PASS);
    n = arp(GUEST, HOST_ALIAS);
    assert_int_equal(egress_check(&policy, frame, n - 1), EGRESS_DROP); /* truncated */
}

/* tap mode: 10.213.7.0/24, the host's veth end .1 as the host alias. */
#define TAP_NET 0x0AD50700u
#define TAP_HOST 0x0AD50701u
#define TAP_DEVICE 0x0AD50702u
static const struct egress_policy tap_policy = {TAP_HOST, TAP_NET, 0xFFFFFF00u};

static void test_tap_subnet_hosts_pass(void **state)
{
    (void)state;
    uint32_t ok[] = {TAP_HOST, TAP_NET | 3, TAP_NET | 10, TAP_NET | 254};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        size_t n = ipv4(TAP_DEVICE, ok[i], 6, 25);
        assert_int_equal(egress_check(&tap_policy, frame, n), EGRESS_PASS);
        n = arp(TAP_DEVICE, ok[i]);
        assert_int_equal(egress_check(&tap_policy, frame, n), EGRESS_PASS);
    }
    size_t n = ipv4(0, 0xFFFFFFFFu, 17, 67);
    assert_int_equal(egress_check(&tap_policy, frame, n), EGRESS_PASS);
}

static void test_tap_outside_subnet_dropped(void **state)
{
    (void)state;
    /* The subnet's own network and broadcast addresses, its neighbours,
     * loopback, the slirp alias, the Internet. */
    uint32_t no[] = {TAP_NET, TAP_NET | 255, 0x0AD50801u, 0x0AD506FEu,
                     0x7F000001u, HOST_ALIAS, 0x08080808u, 0xC0000202u};
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        size_t n = ipv4(TAP_DEVICE, no[i], 6, 25);
        assert_int_equal(egress_check(&tap_policy, frame, n), EGRESS_DROP);
        n = arp(TAP_DEVICE, no[i]);
        assert_int_equal(egress_check(&tap_policy, frame, n), EGRESS_DROP);
    }
    /* The slirp policy knows no subnet: its neighbours stay dropped. */
    size_t n = ipv4(GUEST, 0x0A000201u, 6, 25);
    assert_int_equal(egress_check(&policy, frame, n), EGRESS_DROP);
}

static void test_ipv6_and_unknown_dropped(void **state)
{
    (void)state;
    memset(frame, 0, sizeof frame);
    frame[12] = 0x86;
    frame[13] = 0xDD;
    assert_int_equal(egress_check(&policy, frame, 60), EGRESS_DROP);
    frame[12] = 0x81; /* VLAN tag */
    frame[13] = 0x00;
    assert_int_equal(egress_check(&policy, frame, 60), EGRESS_DROP);
}

static void test_truncated_dropped(void **state)
{
    (void)state;
    size_t n = ipv4(GUEST, HOST_ALIAS, 6, 25);
    (void)n;
    assert_int_equal(egress_check(&policy, frame, 13), EGRESS_DROP);
    assert_int_equal(egress_check(&policy, frame, 14 + 19), EGRESS_DROP);
    ipv4(0, 0xFFFFFFFFu, 17, 67);
    assert_int_equal(egress_check(&policy, frame, 14 + 20 + 3), EGRESS_DROP); /* no UDP port */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ipv4_to_host_alias_passes),
        cmocka_unit_test(test_ipv4_elsewhere_dropped),
        cmocka_unit_test(test_dhcp_broadcast_passes),
        cmocka_unit_test(test_other_broadcasts_dropped),
        cmocka_unit_test(test_fragmented_broadcast_dropped),
        cmocka_unit_test(test_ip_options_respected),
        cmocka_unit_test(test_arp),
        cmocka_unit_test(test_tap_subnet_hosts_pass),
        cmocka_unit_test(test_tap_outside_subnet_dropped),
        cmocka_unit_test(test_ipv6_and_unknown_dropped),
        cmocka_unit_test(test_truncated_dropped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
