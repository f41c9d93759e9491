/* Board/device link framing: any split of the stream decodes the same. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "link.h"

struct got {
    int count;
    uint8_t type[16];
    size_t len[16];
    uint8_t data[16][LINK_PAYLOAD_MAX];
};

static void collect(void *ctx, uint8_t type, const uint8_t *p, size_t len)
{
    struct got *g = ctx;
    assert_true(g->count < 16);
    g->type[g->count] = type;
    g->len[g->count] = len;
    memcpy(g->data[g->count], p, len);
    g->count++;
}

static struct got got;
static struct link_decoder dec;

static int setup(void **state)
{
    (void)state;
    memset(&got, 0, sizeof got);
    link_decoder_init(&dec);
    return 0;
}

static void test_encode_layout(void **state)
{
    (void)state;
    uint8_t buf[16];
    assert_int_equal(link_encode(buf, sizeof buf, LINK_UART, "hi", 2), 6);
    const uint8_t want[] = {LINK_UART, 0, 0, 2, 'h', 'i'};
    assert_memory_equal(buf, want, sizeof want);
}

static void test_encode_limits(void **state)
{
    (void)state;
    static uint8_t big[LINK_MSG_MAX + 1], payload[LINK_PAYLOAD_MAX + 1];
    assert_int_equal(link_encode(big, sizeof big, LINK_ETH, payload, LINK_PAYLOAD_MAX), LINK_MSG_MAX);
    assert_int_equal(link_encode(big, sizeof big, LINK_ETH, payload, LINK_PAYLOAD_MAX + 1), 0);
    assert_int_equal(link_encode(big, 5, LINK_ETH, payload, 2), 0);    /* no room */
    assert_int_equal(link_encode(big, sizeof big, 99, payload, 2), 0); /* unknown type */
}

/* Three messages, fed with every chunk size from 1 byte to all at once. */
static void test_any_split(void **state)
{
    (void)state;
    uint8_t stream[4000];
    uint8_t frame[1514];
    for (size_t i = 0; i < sizeof frame; i++)
        frame[i] = (uint8_t)(i * 7);
    size_t n = 0;
    n += link_encode(stream + n, sizeof stream - n, LINK_UART, "relay> ", 7);
    n += link_encode(stream + n, sizeof stream - n, LINK_ETH, frame, sizeof frame);
    n += link_encode(stream + n, sizeof stream - n, LINK_UART, "", 0);
    for (size_t chunk = 1; chunk <= n; chunk = chunk < 16 ? chunk + 1 : chunk * 3) {
        setup(NULL);
        for (size_t off = 0; off < n; off += chunk) {
            size_t take = n - off < chunk ? n - off : chunk;
            assert_int_equal(link_decoder_feed(&dec, stream + off, take, collect, &got), 0);
        }
        assert_int_equal(got.count, 3);
        assert_int_equal(got.type[0], LINK_UART);
        assert_int_equal(got.len[0], 7);
        assert_memory_equal(got.data[0], "relay> ", 7);
        assert_int_equal(got.type[1], LINK_ETH);
        assert_int_equal(got.len[1], sizeof frame);
        assert_memory_equal(got.data[1], frame, sizeof frame);
        assert_int_equal(got.type[2], LINK_UART);
        assert_int_equal(got.len[2], 0);
    }
}

static void test_unknown_type_fails_and_stays_failed(void **state)
{
    (void)state;
    const uint8_t bad[] = {7, 0, 0, 1, 'x'};
    assert_int_equal(link_decoder_feed(&dec, bad, sizeof bad, collect, &got), -1);
    uint8_t ok[8];
    size_t n = link_encode(ok, sizeof ok, LINK_UART, "a", 1);
    assert_int_equal(link_decoder_feed(&dec, ok, n, collect, &got), -1);
    assert_int_equal(got.count, 0);
}

static void test_oversized_length_fails(void **state)
{
    (void)state;
    const uint8_t bad[] = {LINK_ETH, 0, 0x08, 0x01}; /* 2049 */
    assert_int_equal(link_decoder_feed(&dec, bad, sizeof bad, collect, &got), -1);
    assert_int_equal(got.count, 0);
}

static void test_reserved_byte_must_be_zero(void **state)
{
    (void)state;
    const uint8_t bad[] = {LINK_UART, 1, 0, 0};
    assert_int_equal(link_decoder_feed(&dec, bad, sizeof bad, collect, &got), -1);
}

static void test_partial_header_waits(void **state)
{
    (void)state;
    uint8_t msg[16];
    size_t n = link_encode(msg, sizeof msg, LINK_NIC_STATS, "\0\0\0\0\0\0\0\5", 8);
    assert_int_equal(n, 12);
    assert_int_equal(link_decoder_feed(&dec, msg, 2, collect, &got), 0);
    assert_int_equal(got.count, 0);
    assert_int_equal(link_decoder_feed(&dec, msg + 2, n - 2, collect, &got), 0);
    assert_int_equal(got.count, 1);
    assert_int_equal(got.data[0][7], 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_encode_layout, setup),
        cmocka_unit_test_setup(test_encode_limits, setup),
        cmocka_unit_test_setup(test_any_split, setup),
        cmocka_unit_test_setup(test_unknown_type_fails_and_stays_failed, setup),
        cmocka_unit_test_setup(test_oversized_length_fails, setup),
        cmocka_unit_test_setup(test_reserved_byte_must_be_zero, setup),
        cmocka_unit_test_setup(test_partial_header_waits, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
