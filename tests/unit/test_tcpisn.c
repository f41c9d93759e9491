/* RFC 6528 initial sequence numbers (firmware/tcpisn.c) with the real
 * HMAC (crypto.c on mbedTLS); only the HAL clock and rng are faked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crypto.h"
#include "hal_fakes.h"
#include "tcpisn.h"

#define N_TUPLES 1000

static const uint8_t appliance[4] = {10, 0, 2, 15};
static const uint8_t peer[4] = {10, 0, 2, 2};

static struct tcpisn_tuple tuple(uint16_t remote_port)
{
    return (struct tcpisn_tuple){.local_addr = appliance, .remote_addr = peer, .addr_len = 4,
                                 .local_port = 25, .remote_port = remote_port};
}

static uint32_t isn_at(const uint8_t *key, const struct tcpisn_tuple *t, uint64_t now_us)
{
    uint32_t isn = 0;
    assert_int_equal(tcpisn_compute(key, t, now_us, &isn), 0);
    return isn;
}

static void key_fill(uint8_t key[TCPISN_KEY_LEN], uint8_t first)
{
    for (int i = 0; i < TCPISN_KEY_LEN; i++)
        key[i] = (uint8_t)(first + i);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* How many distinct values among n (sorts a copy). */
static size_t distinct(const uint32_t *v, size_t n)
{
    uint32_t *s = malloc(n * sizeof *s);
    assert_non_null(s);
    memcpy(s, v, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_u32);
    size_t d = n ? 1 : 0;
    for (size_t i = 1; i < n; i++)
        d += s[i] != s[i - 1];
    free(s);
    return d;
}

/* Pinned against an independent computation (Python's hmac module):
 * HMAC-SHA-256(key 00..1f, 04 | 0a00020f | 0019 | 0a000202 | c350), first
 * four bytes big-endian = 0xb830a907, plus 1 s / 4 µs = 250000. */
static void test_known_answer(void **state)
{
    (void)state;
    uint8_t key[TCPISN_KEY_LEN];
    key_fill(key, 0);
    struct tcpisn_tuple t = tuple(50000);
    assert_int_equal(isn_at(key, &t, 0), 0xb830a907u);
    assert_int_equal(isn_at(key, &t, 1000000), 0xb8347997u);
}

/* Neighbouring 4-tuples (the next source port, as a scanner would open)
 * give unrelated ISNs: all distinct, no common step between them, and
 * every bit of the difference flips about half the time. */
static void test_tuples_unrelated(void **state)
{
    (void)state;
    uint8_t key[TCPISN_KEY_LEN];
    key_fill(key, 7);
    static uint32_t isn[N_TUPLES], diff[N_TUPLES - 1];
    for (int i = 0; i < N_TUPLES; i++) {
        struct tcpisn_tuple t = tuple((uint16_t)(40000 + i));
        isn[i] = isn_at(key, &t, 123456789);
    }
    assert_int_equal(distinct(isn, N_TUPLES), N_TUPLES);
    for (int i = 0; i < N_TUPLES - 1; i++)
        diff[i] = isn[i + 1] - isn[i];
    assert_true(distinct(diff, N_TUPLES - 1) >= N_TUPLES - 2);
    for (int bit = 0; bit < 32; bit++) {
        int ones = 0;
        for (int i = 0; i < N_TUPLES - 1; i++)
            ones += (int)((isn[i] ^ isn[i + 1]) >> bit & 1);
        /* Binomial(999, 1/2): mean 500, sd ~16; 400..600 is > 6 sd. */
        assert_in_range(ones, 400, 600);
    }
    /* Every field of the tuple counts, the family too. */
    struct tcpisn_tuple base = tuple(40000), t = base;
    uint32_t ref = isn_at(key, &base, 0);
    t.local_port = 26;
    assert_int_not_equal(isn_at(key, &t, 0), ref);
    t = base;
    t.remote_addr = appliance;
    assert_int_not_equal(isn_at(key, &t, 0), ref);
    t = base;
    t.local_addr = peer;
    assert_int_not_equal(isn_at(key, &t, 0), ref);
    /* Swapping the two ends is another connection, not the same one. */
    t = (struct tcpisn_tuple){.local_addr = peer, .remote_addr = appliance, .addr_len = 4,
                              .local_port = 40000, .remote_port = 25};
    assert_int_not_equal(isn_at(key, &t, 0), ref);
    static const uint8_t v6a[16] = {0xfe, 0x80, [15] = 1}, v6b[16] = {0xfe, 0x80, [15] = 2};
    t = (struct tcpisn_tuple){.local_addr = v6a, .remote_addr = v6b, .addr_len = 16,
                              .local_port = 25, .remote_port = 40000};
    assert_int_not_equal(isn_at(key, &t, 0), ref);
}

/* The same 4-tuple moves forward with a 4 µs clock, across the 32-bit wrap
 * of the tick count too. */
static void test_same_tuple_advances(void **state)
{
    (void)state;
    uint8_t key[TCPISN_KEY_LEN];
    key_fill(key, 1);
    struct tcpisn_tuple t = tuple(50001);
    uint32_t at0 = isn_at(key, &t, 1000);
    assert_int_equal(isn_at(key, &t, 1003), at0);         /* same 4 µs tick */
    assert_int_equal(isn_at(key, &t, 1004) - at0, 1);     /* next tick */
    assert_int_equal(isn_at(key, &t, 1000 + 4000) - at0, 1000);
    assert_int_equal(isn_at(key, &t, 1000 + 60000000) - at0, 15000000); /* a minute */
    /* 2^32 ticks later (4.8 hours) the count wraps; one tick still adds one. */
    const uint64_t wrap_us = 4ull << 32;
    uint32_t before = isn_at(key, &t, wrap_us - 4);
    assert_int_equal(isn_at(key, &t, wrap_us) - before, 1);
    assert_int_equal(isn_at(key, &t, wrap_us), at0 - 250); /* 1000 µs = 250 ticks */
}

/* Two boots draw two keys: the same 4-tuple at the same time gets
 * unrelated ISNs, so one boot's ISNs say nothing about the next one's. */
static void test_boots_differ(void **state)
{
    (void)state;
    uint8_t k1[TCPISN_KEY_LEN], k2[TCPISN_KEY_LEN];
    key_fill(k1, 0);
    key_fill(k2, 0);
    k2[31] ^= 1; /* one bit of key */
    static uint32_t delta[N_TUPLES];
    for (int i = 0; i < N_TUPLES; i++) {
        struct tcpisn_tuple t = tuple((uint16_t)(30000 + i));
        uint32_t a = isn_at(k1, &t, 5000000), b = isn_at(k2, &t, 5000000);
        assert_int_not_equal(a, b);
        delta[i] = b - a;
    }
    /* No fixed offset between the two boots either. */
    assert_true(distinct(delta, N_TUPLES) >= N_TUPLES - 1);
}

static void test_bad_tuple(void **state)
{
    (void)state;
    uint8_t key[TCPISN_KEY_LEN] = {0};
    uint32_t isn = 42;
    struct tcpisn_tuple t = tuple(1);
    t.addr_len = 6;
    assert_int_equal(tcpisn_compute(key, &t, 0, &isn), -1);
    t = tuple(1);
    t.remote_addr = NULL;
    assert_int_equal(tcpisn_compute(key, &t, 0, &isn), -1);
    assert_int_equal(isn, 42);
}

/* Runs before crypto_init(), as on a device whose crypto did not start:
 * the key then comes from the HAL rng; with no entropy at all there is no
 * key, and each connection gets a fresh random ISN rather than a counter. */
static void test_without_crypto(void **state)
{
    (void)state;
    struct tcpisn_tuple t = tuple(50003);
    hal_fake_now_us = 1000;
    hal_fake_rng_fail = 1;
    assert_int_equal(tcpisn_init(), -1);
    hal_fake_rng_fail = 0;
    assert_int_not_equal(tcpisn_next(&t), tcpisn_next(&t)); /* unkeyed: random */
    assert_int_equal(tcpisn_init(), 0); /* keyed from the HAL rng */
    uint32_t a = tcpisn_next(&t);
    hal_fake_now_us += 4000;
    assert_int_equal(tcpisn_next(&t) - a, 1000);
}

/* The boot path: a key from the DRBG, the HAL µs clock, and a new key at
 * the next boot (a second tcpisn_init()). */
static void test_boot_key_and_clock(void **state)
{
    (void)state;
    assert_int_equal(crypto_init(), 0);
    assert_int_equal(tcpisn_init(), 0);
    struct tcpisn_tuple t = tuple(50002);
    hal_fake_now_us = 7000000;
    uint32_t a = tcpisn_next(&t);
    hal_fake_now_us += 400;
    assert_int_equal(tcpisn_next(&t) - a, 100);
    assert_int_equal(tcpisn_init(), 0); /* reboot: fresh key */
    hal_fake_now_us -= 400;
    assert_int_not_equal(tcpisn_next(&t), a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answer),
        cmocka_unit_test(test_tuples_unrelated),
        cmocka_unit_test(test_same_tuple_advances),
        cmocka_unit_test(test_boots_differ),
        cmocka_unit_test(test_bad_tuple),
        cmocka_unit_test(test_without_crypto), /* before crypto_init() */
        cmocka_unit_test(test_boot_key_and_clock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
