/* firmware/ymodem.c (sans-I/O YMODEM receiver) driven by scripted sender
 * transcripts.
 *
 * A script is a list of steps: bytes the sender sends at a given time, or
 * a poll at a given time. The blocks in it are built here, with a CRC
 * written independently of the engine's (and both checked against the
 * CRC-16/XMODEM test vector). Every script is run three ways — each step
 * in one feed, one byte per feed, and in pseudo-random chunks — and the
 * three runs must agree on everything: what was sent back, what reached
 * the sink, the final status and reason. The sink checks the contract the
 * flash writer relies on: offsets from 0 with no gap, 1..1024 bytes.
 *
 * Responses are written as strings of the macros below; mind that a hex
 * escape swallows following hex digits ("\x06C" is one byte), hence the
 * macros. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ymodem.h"

#define SOH 0x01
#define STX 0x02
#define EOT 0x04
#define CANB 0x18

#define R_ACK "\x06"
#define R_NAK "\x15"
#define R_C "C"
#define R_CANS "\x18\x18\x18\x18\x18\x18\x18\x18"
#define R_HDR R_ACK R_C /* answer to a file header, and to the second EOT */

#define SLOT 8388608u

/* --- the independent CRC: byte-wise with a table built from the reflected
 * description of the polynomial, unlike the engine's bitwise loop --- */

static uint16_t crc_table[256];

static void crc_table_init(void)
{
    for (unsigned i = 0; i < 256; i++) {
        uint16_t c = (uint16_t)(i << 8);
        for (int k = 0; k < 8; k++)
            c = (uint16_t)((c << 1) ^ ((c & 0x8000) ? 0x1021 : 0));
        crc_table[i] = c;
    }
}

static uint16_t test_crc(const uint8_t *p, size_t n)
{
    uint16_t crc = 0;
    while (n--)
        crc = (uint16_t)((crc << 8) ^ crc_table[((crc >> 8) ^ *p++) & 0xff]);
    return crc;
}

/* --- scripts --- */

struct step {
    uint32_t at;
    size_t off, len;
    int poll;
};

#define SCRIPT_BYTES 600000
#define SCRIPT_STEPS 2048

struct script {
    uint8_t bytes[SCRIPT_BYTES];
    size_t len;
    struct step steps[SCRIPT_STEPS];
    int n;
    uint32_t now;
    struct ymodem_config cfg;
};

static struct script S;

static void sc_reset(void)
{
    S.len = 0;
    S.n = 0;
    S.now = 0;
    memset(&S.cfg, 0, sizeof S.cfg);
    S.cfg.max_size = SLOT;
}

/* Later steps happen at `ms`. */
static void sc_at(uint32_t ms)
{
    S.now = ms;
}

static void sc_raw(const void *data, size_t n)
{
    assert_true(S.len + n <= SCRIPT_BYTES);
    struct step *last = S.n ? &S.steps[S.n - 1] : NULL;
    if (!last || last->poll || last->at != S.now) {
        assert_true(S.n < SCRIPT_STEPS);
        last = &S.steps[S.n++];
        last->at = S.now;
        last->off = S.len;
        last->len = 0;
        last->poll = 0;
    }
    memcpy(S.bytes + S.len, data, n);
    S.len += n;
    last->len += n;
}

static void sc_byte(uint8_t b)
{
    sc_raw(&b, 1);
}

static void sc_poll(void)
{
    assert_true(S.n < SCRIPT_STEPS);
    struct step *st = &S.steps[S.n++];
    st->at = S.now;
    st->off = S.len;
    st->len = 0;
    st->poll = 1;
}

/* A block of `size` (128 or 1024) data bytes: `n` bytes of `data`, padded
 * with `pad`. Returns where the block starts in S.bytes, to spoil it. */
static size_t sc_block_pad(size_t size, uint8_t seq, const uint8_t *data, size_t n, uint8_t pad)
{
    uint8_t b[YMODEM_BLOCK_MAX];
    assert_true(n <= size);
    b[0] = size == 1024 ? STX : SOH;
    b[1] = seq;
    b[2] = (uint8_t)~seq;
    memcpy(b + 3, data, n);
    memset(b + 3 + n, pad, size - n);
    uint16_t crc = test_crc(b + 3, size);
    b[3 + size] = (uint8_t)(crc >> 8);
    b[4 + size] = (uint8_t)crc;
    size_t at = S.len;
    sc_raw(b, size + 5);
    return at;
}

static size_t sc_block(size_t size, uint8_t seq, const uint8_t *data, size_t n)
{
    return sc_block_pad(size, seq, data, n, 0x1A);
}

/* Block 0: "name\0" then `info` as given (its own NULs included). */
static void sc_header_raw(size_t size, const char *name, const char *info, size_t info_len)
{
    uint8_t p[1024];
    size_t nl = strlen(name);
    assert_true(nl + 1 + info_len <= size);
    memcpy(p, name, nl + 1);
    memcpy(p + nl + 1, info, info_len);
    sc_block_pad(size, 0, p, nl + 1 + info_len, 0);
}

/* A header as sz writes it: size, mtime and mode in octal, files left. */
static void sc_header(const char *name, uint64_t size)
{
    char info[80];
    int n = snprintf(info, sizeof info, "%llu 14761341720 100644 0 1 %llu",
                     (unsigned long long)size, (unsigned long long)size);
    sc_header_raw(128, name, info, (size_t)n + 1);
}

/* The end-of-batch header, with sz's stale block counts in bytes 126-127. */
static void sc_end_header(void)
{
    uint8_t p[128];
    memset(p, 0, sizeof p);
    p[126] = 0x01;
    p[127] = 0x23;
    sc_block_pad(128, 0, p, sizeof p, 0);
}

enum blocks {
    B_128,   /* sz --ymodem */
    B_1K,    /* all 1 KiB */
    B_SZK,   /* sz --ymodem -k: 1 KiB while more than 896 bytes are left */
    B_MIXED, /* alternating 1 KiB and 128 */
};

/* Data blocks for `data`, from sequence number 1; returns the blocks. */
static unsigned sc_data(const uint8_t *data, size_t n, enum blocks how)
{
    size_t off = 0;
    unsigned seq = 1;
    int small = 0;
    while (off < n) {
        size_t size = 128;
        if (how == B_1K || (how == B_SZK && n - off > 896) || (how == B_MIXED && !small))
            size = 1024;
        small = !small;
        size_t take = n - off < size ? n - off : size;
        sc_block(size, (uint8_t)seq, data + off, take);
        off += take;
        seq++;
    }
    return seq - 1;
}

static void sc_eot_eot(void)
{
    sc_byte(EOT);
    sc_byte(EOT);
}

/* A whole batch: header, data, EOT EOT, end-of-batch header. */
static unsigned sc_file(const char *name, const uint8_t *data, size_t n, enum blocks how)
{
    sc_header(name, n);
    unsigned blocks = sc_data(data, n, how);
    sc_eot_eot();
    sc_end_header();
    return blocks;
}

/* --- the fake caller --- */

struct rec {
    uint8_t out[8192];
    size_t out_len;
    uint8_t data[SCRIPT_BYTES];
    size_t data_len;
    int sink_calls;
    size_t sink_max, sink_last;
    int begins;
    char begin_name[YMODEM_NAME_MAX + 1];
    uint32_t begin_size;
    /* knobs */
    long fail_at;  /* sink fails for a chunk reaching past this (-1: never) */
    int begin_rc;
    /* the end */
    enum ymodem_status status;
    char reason[YMODEM_REASON_MAX];
    char name[YMODEM_NAME_MAX + 1];
    uint32_t size;
    struct ymodem_rx rx;
};

static struct rec R[3];

static void fake_send(void *ctx, const uint8_t *data, size_t len)
{
    struct rec *r = ctx;
    assert_true(len > 0);
    assert_true(r->out_len + len <= sizeof r->out);
    memcpy(r->out + r->out_len, data, len);
    r->out_len += len;
}

static int fake_begin(void *ctx, const char *name, uint32_t size)
{
    struct rec *r = ctx;
    assert_int_equal(r->begins, 0);
    assert_int_equal(r->sink_calls, 0);
    r->begins++;
    snprintf(r->begin_name, sizeof r->begin_name, "%s", name);
    r->begin_size = size;
    return r->begin_rc;
}

static int fake_sink(void *ctx, uint32_t offset, const uint8_t *data, size_t len)
{
    struct rec *r = ctx;
    assert_int_equal(r->begins, 1);
    assert_int_equal(offset, r->data_len); /* in order, no gap, no repeat */
    assert_true(len >= 1 && len <= 1024);
    assert_true(offset + len <= r->begin_size); /* never past the size */
    if (r->fail_at >= 0 && (long)(offset + len) > r->fail_at)
        return -1;
    memcpy(r->data + r->data_len, data, len);
    r->data_len += len;
    r->sink_calls++;
    r->sink_last = len;
    if (len > r->sink_max)
        r->sink_max = len;
    return 0;
}

static const struct ymodem_ops OPS = {fake_send, fake_begin, fake_sink};

static uint32_t lcg = 12345;
static size_t rnd(size_t max)
{
    lcg = lcg * 1103515245u + 12345u;
    return 1 + (lcg >> 8) % max;
}

static void rec_reset(struct rec *r)
{
    memset(r, 0, sizeof *r);
    r->fail_at = -1;
}

/* Run S one way: mode 0 each step whole, 1 byte by byte, 2 random chunks. */
static void run_mode(struct rec *r, int mode)
{
    struct ymodem_rx *rx = &r->rx;
    ymodem_init(rx, &S.cfg, &OPS, r, 0);
    for (int i = 0; i < S.n; i++) {
        const struct step *st = &S.steps[i];
        if (st->poll) {
            ymodem_poll(rx, st->at);
            continue;
        }
        size_t off = 0;
        while (off < st->len) {
            size_t n = st->len - off;
            if (mode == 1)
                n = 1;
            else if (mode == 2 && n > 1)
                n = rnd(n < 1500 ? n : 1500);
            enum ymodem_status stv = ymodem_feed(rx, st->at, S.bytes + st->off + off, n);
            assert_int_equal(stv, rx->status);
            off += n;
        }
    }
    r->status = rx->status;
    memcpy(r->reason, rx->reason, sizeof r->reason);
    memcpy(r->name, rx->name, sizeof r->name);
    r->size = rx->size;
}

/* Knobs set on R[0] before run() apply to all three runs. */
static struct rec *run(void)
{
    long fail_at = R[0].fail_at;
    int begin_rc = R[0].begin_rc;
    for (int m = 0; m < 3; m++) {
        rec_reset(&R[m]);
        R[m].fail_at = fail_at;
        R[m].begin_rc = begin_rc;
        run_mode(&R[m], m);
    }
    for (int m = 1; m < 3; m++) {
        assert_int_equal(R[m].status, R[0].status);
        assert_string_equal(R[m].reason, R[0].reason);
        assert_int_equal(R[m].out_len, R[0].out_len);
        assert_memory_equal(R[m].out, R[0].out, R[0].out_len);
        assert_int_equal(R[m].data_len, R[0].data_len);
        assert_memory_equal(R[m].data, R[0].data, R[0].data_len);
        assert_int_equal(R[m].begins, R[0].begins);
    }
    if (R[0].status == YMODEM_DONE || R[0].status == YMODEM_RUNNING)
        assert_string_equal(R[0].reason, "");
    else
        assert_true(R[0].reason[0] != '\0');
    return &R[0];
}

static void expect_out_(const struct rec *r, const char *want, size_t n)
{
    if (r->out_len != n || memcmp(r->out, want, n) != 0) {
        fprintf(stderr, "sent (%zu):", r->out_len);
        for (size_t i = 0; i < r->out_len; i++)
            fprintf(stderr, " %02x", r->out[i]);
        fprintf(stderr, "\nwant (%zu):", n);
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, " %02x", (uint8_t)want[i]);
        fprintf(stderr, "\n");
        fail();
    }
}
#define expect_out(r, lit) expect_out_((r), (lit), sizeof(lit) - 1)

/* n ACKs, as a string in a static buffer */
static const char *acks(size_t n)
{
    static char b[4096];
    assert_true(n < sizeof b);
    memset(b, 0x06, n);
    b[n] = 0;
    return b;
}

/* The answers to a clean one-file batch of `blocks` data blocks. */
static void expect_clean(const struct rec *r, unsigned blocks)
{
    char want[4200];
    size_t n = 0;
    want[n++] = 'C';
    want[n++] = 0x06;
    want[n++] = 'C';
    memcpy(want + n, acks(blocks), blocks);
    n += blocks;
    want[n++] = 0x15;
    want[n++] = 0x06;
    want[n++] = 'C';
    want[n++] = 0x06;
    expect_out_(r, want, n);
}

static uint8_t file[300000];

static void fill_file(size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        file[i] = (uint8_t)(seed >> 24);
    }
}

static void expect_data(const struct rec *r, size_t n)
{
    assert_int_equal(r->data_len, n);
    assert_memory_equal(r->data, file, n);
    assert_int_equal(r->begins, 1);
    assert_int_equal(r->begin_size, n);
}

static int setup(void **state)
{
    (void)state;
    sc_reset();
    rec_reset(&R[0]);
    return 0;
}

/* --- CRC --- */

static void test_crc_vector(void **state)
{
    (void)state;
    const uint8_t *v = (const uint8_t *)"123456789";
    assert_int_equal(ymodem_crc16(0, v, 9), 0x31C3);
    assert_int_equal(test_crc(v, 9), 0x31C3);
    assert_int_equal(ymodem_crc16(ymodem_crc16(0, v, 4), v + 4, 5), 0x31C3);
    assert_int_equal(ymodem_crc16(0, v, 0), 0);
    fill_file(1024, 7);
    assert_int_equal(ymodem_crc16(0, file, 1024), test_crc(file, 1024));
}

/* --- clean transfers --- */

static void test_clean_1k(void **state)
{
    (void)state;
    fill_file(5000, 1);
    unsigned blocks = sc_file("image.bin", file, 5000, B_1K);
    assert_int_equal(blocks, 5);
    struct rec *r = run();
    assert_int_equal(r->status, YMODEM_DONE);
    assert_string_equal(r->name, "image.bin");
    assert_string_equal(r->begin_name, "image.bin");
    assert_int_equal(r->size, 5000);
    expect_data(r, 5000);
    expect_clean(r, 5);
    assert_int_equal(r->sink_calls, 5);
    assert_int_equal(r->sink_max, 1024);
    assert_int_equal(r->sink_last, 5000 - 4096); /* padding cut */
}

static void test_clean_128(void **state)
{
    (void)state;
    fill_file(3000, 2);
    unsigned blocks = sc_file("fw.img", file, 3000, B_128);
    assert_int_equal(blocks, 24);
    struct rec *r = run();
    assert_int_equal(r->status, YMODEM_DONE);
    expect_data(r, 3000);
    expect_clean(r, 24);
    assert_int_equal(r->sink_max, 128);
    assert_int_equal(r->sink_last, 3000 - 23 * 128);
}

/* What sz -k sends: 1 KiB blocks, then 128-byte ones for the last 896. */
static void test_sz_k_blocks(void **state)
{
    (void)state;
    fill_file(10000, 3);
    unsigned blocks = sc_file("fw.img", file, 10000, B_SZK);
    struct rec *r = run();
    assert_int_equal(r->status, YMODEM_DONE);
    expect_data(r, 10000);
    expect_clean(r, blocks);
}

static void test_mixed_blocks(void **state)
{
    (void)state;
    fill_file(7777, 4);
    unsigned blocks = sc_file("fw.img", file, 7777, B_MIXED);
    struct rec *r = run();
    assert_int_equal(r->status, YMODEM_DONE);
    expect_data(r, 7777);
    expect_clean(r, blocks);
}

/* A 1 KiB file header (a long name), as other senders send it. */
static void test_header_in_1k_block(void **state)
{
    (void)state;
    char name[200];
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = 0;
    fill_file(300, 5);
    sc_header_raw(1024, name, "300", 4);
    sc_data(file, 300, B_128);
    sc_eot_eot();
    sc_end_header();
    struct rec *r = run();
    assert_int_equal(r->status, YMODEM_DONE);
    expect_data(r, 300);
    assert_int_equal(strlen(r->name), YMODEM_NAME_MAX); /* kept for messages, cut */
}

/* The last block's 0x1A padding never reaches the sink, even when the file
 * itself ends in 0x1A bytes. */
static void test_padding_cut(void **state)
{
    (void)state;
    fill_file(1000, 6);
    memset(file + 990, 0x1A, 10);
    sc_file("fw.img", file, 1000, B_1K);
    struct rec *r = run();
    assert_int_equal(r->status, YMODEM_DONE);
    expect_data(r, 1000);
    assert_int_equal(r->sink_calls, 1);
}

static void test_exact_multiple(void **state)
{
    (void)state;
    fill_file(4096, 7);
    assert_int_equal(sc_file("fw.img", file, 4096, B_1K), 4);
    struct rec *r = run();
    assert_int_equal(r->status, YMODEM_DONE);
    expect_data(r, 4096);
    expect_clean(r, 4);

    sc_reset();
    assert_int_equal(sc_file("fw.img", file, 1024, B_128), 8);
    r = run();
    assert_int_equal(r->status, YMODEM_DONE);
    expect_data(r, 1024);
    expect_clean(r, 8);
}

/* 300 blocks: the sequence number wraps from 255 to 0. */
static void test_sequence_wraps(void **state)
{
    (void)state;
    fill_file(300 * 128, 8);
    sc_header("fw.img", 300 * 128);
    for (unsigned i = 1; i <= 300; i++) {
        sc_block(128, (uint8_t)i, file + (i - 1) * 128, 128);
        /* block 256 (seq 0) again while 257 (seq 1) is expected: a
         * duplicate, ACKed and not written */
        if (i == 256)
            sc_block(128, 0, file + 255 * 128, 128);
    }
    sc_eot_eot();
    sc_end_header();
    struct rec *r = run();
    assert_int_equal(r->status, YMODEM_DONE);
    expect_data(r, 300 * 128);
    expect_clean(r, 301);
}

static void test_empty_file(void **state)
{
    (void)state;
    sc_file("empty", file, 0, B_128);
    struct rec *r = run();
    assert_int_equal(r->status, YMODEM_DONE);
    assert_int_equal(r->sink_calls, 0);
    assert_int_equal(r->begin_size, 0);
    expect_clean(r, 0);
}

/* The name goes to the terminal: control characters are replaced. */
static void test_name_sanitized(void **state)
{
    (void)state;
    fill_file(10, 9);
    sc_file("a\x1b[2Jb\x7f", file, 10, B_128);
    struct rec *r = run();
    assert_int_equal(r->status, YMODEM_DONE);
    assert_string_equal(r->name, "a?[2Jb?");
}

/* Line noise before the sender starts is ignored; 'C' goes on. */
static void test_noise_before_start(void **state)
{
    (void)state;
    fill_file(200, 10);
    sc_at(100);
    sc_raw("hello\r\n\x03", 8);
    sc_at(3100);
    sc_poll(); /* 3 s quiet since the noise: 'C' again */
    sc_at(3200);
    sc_file("fw.img", file, 200, B_128);
    struct rec *r = run();
    assert_int_equal(r->status, YMODEM_DONE);
    expect_data(r, 200);
    expect_out(r, R_C R_C R_HDR R_ACK R_ACK R_NAK R_HDR R_ACK);
}

/* --- errors on the line --- */

/* A bad CRC: NAK once the line has been quiet for purge_ms, not before;
 * the retry is taken. */
static void test_crc_error(void **state)
{
    (void)state;
    fill_file(400, 11);
    sc_at(10);
    sc_header("fw.img", 400);
    sc_block(128, 1, file, 128);
    size_t bad = sc_block(128, 2, file + 128, 128);
    S.bytes[bad + 3 + 128] ^= 0x01;
    sc_at(10 + YMODEM_PURGE_MS - 1);
    sc_poll();
    sc_at(10 + YMODEM_PURGE_MS);
    sc_poll();
    sc_at(300);
    sc_block(128, 2, file + 128, 128);
    sc_block(128, 3, file + 256, 128);
    sc_block(128, 4, file + 384, 16);
    sc_eot_eot();
    sc_end_header();
    struct rec *r = run();
    assert_int_equal(r->status, YMODEM_DONE);
    expect_data(r, 400);
    expect_out(r, R_C R_HDR R_ACK R_NAK R_ACK R_ACK R_ACK R_NAK R_HDR R_ACK);
}

/* A bad CRC in the very first data block: 'C' asks again (the sender may be
 * one that waits for 'C'); sz treats it as NAK. */
static void test_crc_error_first_block(void **state)
{
    (void)state;
    fill_file(100, 12);
    sc_header("fw.img", 100);
    size_t bad = sc_block(128, 1, file, 100);
    S.bytes[bad + 50] ^= 0x80;
    sc_at(1000);
    sc_poll();
    sc_block(128, 1, file, 100);
    sc_eot_eot();
    sc_end_header();
    struct rec *r = run();
    assert_int_equal(r->status, YMODEM_DONE);
    expect_data(r, 100);
    expect_out(r, R_C R_HDR R_C R_ACK R_NAK R_HDR R_ACK);
}

static void test_bad_complement(void **state)
{
    (void)state;
    fill_file(300, 13);
    sc_header("fw.img", 300);
    sc_block(128, 1, file, 128);
    size_t bad = sc_block(128, 2, file + 128, 128);
    S.bytes[bad + 2] = 0x00; /* ~2 is 0xfd */
    sc_at(1000);
    sc_poll();
    sc_block(128, 2, file + 128, 128);
    sc_block(128, 3, file + 256, 44);
    sc_eot_eot();
    sc_end_header();
    struct rec *r = run();
    assert_int_equal(r->status, YMODEM_DONE);
    expect_data(r, 300);
    expect_out(r, R_C R_HDR R_ACK R_NAK R_ACK R_ACK R_NAK R_HDR R_ACK);
}

/* An STX corrupted into SOH: the first 133 bytes fail, the remaining 896 are
 * purged (they hold SOH/STX/EOT/CAN bytes that would otherwise start bogus
 * blocks), one NAK, and the resent block is taken. Bytes still arriving
 * push the NAK back. */
static void test_misframed_block_purged(void **state)
{
    (void)state;
    fill_file(2048, 14);
    for (size_t i = 1024; i < 2048; i += 7)
        file[i] = (uint8_t)(i % 5); /* plenty of header-like bytes */
    sc_at(10);
    sc_header("fw.img", 2048);
    sc_block(1024, 1, file, 1024);
    size_t bad = sc_block(1024, 2, file + 1024, 1024);
    S.bytes[bad] = SOH;
    S.len -= 500; /* the tail of it arrives later */
    S.steps[S.n - 1].len -= 500;
    sc_at(10 + YMODEM_PURGE_MS - 50);
    {
        uint8_t tail[500];
        memcpy(tail, S.bytes + S.len, sizeof tail);
        sc_raw(tail, sizeof tail);
    }
    sc_at(10 + 2 * YMODEM_PURGE_MS - 60);
    sc_poll(); /* quiet for only purge - 10 ms: nothing */
    sc_at(10 + 2 * YMODEM_PURGE_MS - 50);
    sc_poll(); /* NAK */
    sc_at(1000);
    sc_block(1024, 2, file + 1024, 1024);
    sc_eot_eot();
    sc_end_header();
    struct rec *r = run();
    assert_int_equal(r->status, YMODEM_DONE);
    expect_data(r, 2048);
    expect_out(r, R_C R_HDR R_ACK R_NAK R_ACK R_NAK R_HDR R_ACK);
}

static void test_too_many_bad_blocks(void **state)
{
    (void)state;
    fill_file(300, 15);
    sc_header("fw.img", 300);
    sc_block(128, 1, file, 128);
    for (int i = 0; i <= YMODEM_RETRY_MAX; i++) {
        sc_at((uint32_t)(1000 * (i + 1)));
        size_t bad = sc_block(128, 2, file + 128, 128);
        S.bytes[bad + 10] ^= 0xff;
        sc_at((uint32_t)(1000 * (i + 1) + 500));
        sc_poll();
    }
    struct rec *r = run();
    assert_int_equal(r->status, YMODEM_PROTOCOL);
    assert_string_equal(r->reason, "too many bad blocks from the sender (at byte 128)");
    char want[64];
    size_t n = 0;
    want[n++] = 'C';
    want[n++] = 0x06;
    want[n++] = 'C';
    want[n++] = 0x06;
    for (int i = 0; i < YMODEM_RETRY_MAX; i++)
        want[n++] = 0x15;
    memset(want + n, 0x18, YMODEM_CAN_COUNT);
    n += YMODEM_CAN_COUNT;
    expect_out_(r, want, n);
}

/* The sender missed our ACK and sends the block again: ACK, not written
 * twice. The header again (before any data): ACK and 'C' again. */
static void test_duplicate_block(void **state)
{
    (void)state;
    fill_file(300, 16);
    sc_header("fw.img", 300);
    sc_header("fw.img", 300);
    sc_block(128, 1, file, 128);
    sc_block(128, 1, file, 128);
    sc_block(128, 2, file + 128, 128);
    sc_block(128, 2, file + 128, 128);
    sc_block(128, 3, file + 256, 44);
    sc_eot_eot();
    sc_end_header();
    struct rec *r = run();
    assert_int_equal(r->status, YMODEM_DONE);
    expect_data(r, 300);
    assert_int_equal(r->sink_calls, 3);
    assert_int_equal(r->begins, 1);
    expect_out(r, R_C R_HDR R_HDR R_ACK R_ACK R_ACK R_ACK R_ACK R_NAK R_HDR R_ACK);
}

/* A good block with a sequence number that is neither the next nor the
 * previous one: sender and receiver disagree, no retry can mend it. */
static void test_wrong_sequence(void **state)
{
    (void)state;
    fill_file(600, 17);
    sc_header("fw.img", 600);
    sc_block(128, 1, file, 128);
    sc_block(128, 3, file + 256, 128);
    sc_block(128, 4, file + 384, 128); /* after the end: dropped */
    struct rec *r = run();
    assert_int_equal(r->status, YMODEM_PROTOCOL);
    assert_string_equal(r->reason, "lost sync with the sender (sequence number 3, expected 2)");
    assert_int_equal(r->data_len, 128);
    expect_out(r, R_C R_HDR R_ACK R_CANS);
}

/* An XMODEM sender (block 1 first, no header). */
static void test_no_header(void **state)
{
    (void)state;
    fill_file(128, 18);
    sc_block(128, 1, file, 128);
    struct rec *r = run();
    assert_int_equal(r->status, YMODEM_PROTOCOL);
    assert_int_equal(r->begins, 0);
    expect_out(r, R_C R_CANS);
}

/* --- cancel --- */

static void test_cancel_by_sender(void **state)
{
    (void)state;
    fill_file(1000, 19);
    sc_header("fw.img", 1000);
    sc_block(128, 1, file, 128);
    sc_raw("\x18\x18\x18\x18\x18\b\b\b\b\b", 10); /* sz's canit(), shortened */
    struct rec *r = run();
    assert_int_equal(r->status, YMODEM_CANCELLED);
    assert_string_equal(r->reason, "transfer cancelled by the sender");
    assert_int_equal(r->data_len, 128);
    expect_out(r, R_C R_HDR R_ACK); /* no CANs back */
}

/* Ctrl-X Ctrl-X typed before the sender was started. */
static void test_cancel_before_start(void **state)
{
    (void)state;
    sc_at(2000);
    sc_raw("\x18\x18", 2);
    struct rec *r = run();
    assert_int_equal(r->status, YMODEM_CANCELLED);
    assert_int_equal(r->begins, 0);
    expect_out(r, R_C);
}

/* A lone CAN is forgotten (lrzsz's rz does the same: one CAN may be noise);
 * only two in a row where a header is expected cancel. */
static void test_lone_can_ignored(void **state)
{
    (void)state;
    fill_file(300, 20);
    sc_header("fw.img", 300);
    sc_byte(CANB);
    sc_block(128, 1, file, 128);
    sc_byte(CANB);
    sc_byte('x');
    sc_byte(CANB);
    sc_block(128, 2, file + 128, 128);
    sc_byte(CANB);
    sc_block(128, 3, file + 256, 44);
    sc_eot_eot();
    sc_end_header();
    struct rec *r = run();
    assert_int_equal(r->status, YMODEM_DONE);
    expect_data(r, 300);
    expect_clean(r, 3);
}

/* CAN bytes inside a block are data (and so are SOH, STX, EOT). */
static void test_can_in_payload(void **state)
{
    (void)state;
    for (size_t i = 0; i < 2000; i++)
        file[i] = (uint8_t)("\x18\x18\x01\x02\x04"[i % 5]);
    sc_file("fw.img", file, 2000, B_MIXED);
    struct rec *r = run();
    assert_int_equal(r->status, YMODEM_DONE);
    expect_data(r, 2000);
}

/* --- timeouts --- */

/* Nobody sends: 'C' every 3 s, then after 60 s the receiver gives up. */
static void test_sender_never_starts(void **state)
{
    (void)state;
    for (uint32_t t = 100; t < YMODEM_IDLE_TIMEOUT_MS; t += 100) {
        sc_at(t);
        sc_poll();
    }
    struct rec *r = run();
    assert_int_equal(r->status, YMODEM_RUNNING);
    assert_int_equal(r->out_len, YMODEM_IDLE_TIMEOUT_MS / YMODEM_START_INTERVAL_MS);
    assert_memory_equal(r->out, "CCCCCCCCCCCCCCCCCCCC", r->out_len);

    sc_at(YMODEM_IDLE_TIMEOUT_MS);
    sc_poll();
    r = run();
    assert_int_equal(r->status, YMODEM_TIMEOUT);
    assert_string_equal(r->reason, "no YMODEM sender started within 60 s");
    assert_int_equal(r->out_len, 20 + YMODEM_CAN_COUNT);
    assert_memory_equal(r->out + 20, R_CANS, YMODEM_CAN_COUNT);
}

/* The sender stops after block 1: NAK every 10 s, timeout 60 s after the
 * last block. */
static void test_sender_stalls(void **state)
{
    (void)state;
    fill_file(1000, 21);
    sc_at(1000);
    sc_header("fw.img", 1000);
    sc_block(1024, 1, file, 1000);
    sc_block(128, 2, file, 0); /* half a block: dropped at the first NAK */
    S.len -= 100;
    S.steps[S.n - 1].len -= 100;
    for (uint32_t t = 1500; t < 61000; t += 500) {
        sc_at(t);
        sc_poll();
    }
    struct rec *r = run();
    assert_int_equal(r->status, YMODEM_RUNNING);
    expect_out(r, R_C R_HDR R_ACK R_NAK R_NAK R_NAK R_NAK R_NAK);

    sc_at(61000);
    sc_poll();
    r = run();
    assert_int_equal(r->status, YMODEM_TIMEOUT);
    assert_string_equal(r->reason, "the transfer stalled: no block for 60 s");
    expect_out(r, R_C R_HDR R_ACK R_NAK R_NAK R_NAK R_NAK R_NAK R_CANS);
}

/* A block cut short and then silence: after 10 s the part is dropped, NAK,
 * and the whole block sent again is taken. */
static void test_partial_block_timeout(void **state)
{
    (void)state;
    fill_file(256, 22);
    sc_header("fw.img", 256);
    sc_block(128, 1, file, 128);
    sc_block(128, 2, file + 128, 128);
    S.len -= 30;
    S.steps[S.n - 1].len -= 30;
    sc_at(YMODEM_BLOCK_TIMEOUT_MS - 1);
    sc_poll();
    sc_at(YMODEM_BLOCK_TIMEOUT_MS);
    sc_poll();
    sc_block(128, 2, file + 128, 128);
    sc_eot_eot();
    sc_end_header();
    struct rec *r = run();
    assert_int_equal(r->status, YMODEM_DONE);
    expect_data(r, 256);
    expect_out(r, R_C R_HDR R_ACK R_NAK R_ACK R_NAK R_HDR R_ACK);
}

/* Timeouts are also counted per block: with a long idle timeout, the
 * retries run out first. Also: the missed first EOT answer is asked again. */
static void test_retries_run_out(void **state)
{
    (void)state;
    S.cfg.idle_timeout_ms = 1000000;
    S.cfg.block_timeout_ms = 1000;
    S.cfg.retry_max = 3;
    fill_file(100, 23);
    sc_header("fw.img", 100);
    sc_block(128, 1, file, 100);
    sc_byte(EOT);
    for (uint32_t t = 100; t <= 4000; t += 100) {
        sc_at(t);
        sc_poll();
    }
    struct rec *r = run();
    assert_int_equal(r->status, YMODEM_TIMEOUT);
    assert_string_equal(r->reason, "no answer from the sender");
    expect_out(r, R_C R_HDR R_ACK R_NAK R_NAK R_NAK R_NAK R_CANS);
}

/* A feed after a long gap runs the timers first: the stale partial block
 * is dropped before the new bytes are read. */
static void test_feed_runs_timers(void **state)
{
    (void)state;
    fill_file(256, 24);
    sc_header("fw.img", 256);
    sc_block(128, 1, file, 128);
    sc_raw("\x01\x02\xfd", 3); /* a block begins... */
    sc_at(YMODEM_BLOCK_TIMEOUT_MS + 5);
    sc_block(128, 2, file + 128, 128); /* ...and the sender resent it */
    sc_eot_eot();
    sc_end_header();
    struct rec *r = run();
    assert_int_equal(r->status, YMODEM_DONE);
    expect_data(r, 256);
    expect_out(r, R_C R_HDR R_ACK R_NAK R_ACK R_NAK R_HDR R_ACK);
}

/* --- sizes --- */

static void test_too_large(void **state)
{
    (void)state;
    sc_header("big.img", 9000000);
    sc_block(1024, 1, file, 1024);
    struct rec *r = run();
    assert_int_equal(r->status, YMODEM_TOO_LARGE);
    assert_string_equal(r->reason, "image of 9000000 bytes is larger than the slot (8388608)");
    assert_string_equal(r->name, "big.img");
    assert_int_equal(r->begins, 0);
    assert_int_equal(r->data_len, 0);
    expect_out(r, R_C R_CANS); /* no ACK: cancelled at the header */

    sc_reset();
    sc_header("huge.img", 99999999999999999ull);
    r = run();
    assert_int_equal(r->status, YMODEM_TOO_LARGE);
    assert_string_equal(r->reason,
                        "image of 99999999999999999 bytes is larger than the slot (8388608)");

    sc_reset();
    S.cfg.max_size = 3000;
    sc_header_raw(128, "huge.img", "123456789012345678901234567890", 31);
    r = run();
    assert_int_equal(r->status, YMODEM_TOO_LARGE);
}

static void test_exactly_slot_size(void **state)
{
    (void)state;
    S.cfg.max_size = 3000;
    fill_file(3000, 25);
    sc_file("fw.img", file, 3000, B_SZK);
    struct rec *r = run();
    assert_int_equal(r->status, YMODEM_DONE);
    expect_data(r, 3000);

    sc_reset();
    S.cfg.max_size = 2999;
    sc_file("fw.img", file, 3000, B_SZK);
    r = run();
    assert_int_equal(r->status, YMODEM_TOO_LARGE);
    assert_string_equal(r->reason, "image of 3000 bytes is larger than the slot (2999)");
}

static void test_missing_size(void **state)
{
    (void)state;
    sc_header_raw(128, "fw.img", "\0", 1);
    struct rec *r = run();
    assert_int_equal(r->status, YMODEM_PROTOCOL);
    assert_string_equal(r->reason, "the sender did not give the file size");
    expect_out(r, R_C R_CANS);

    sc_reset();
    sc_header_raw(128, "fw.img", " 100", 5);
    r = run();
    assert_int_equal(r->status, YMODEM_PROTOCOL);
    assert_string_equal(r->reason, "the sender did not give the file size");

    sc_reset();
    sc_header_raw(128, "fw.img", "12x4", 5);
    r = run();
    assert_int_equal(r->status, YMODEM_PROTOCOL);
    assert_string_equal(r->reason, "bad file size from the sender");

    /* a name filling the block, no NUL */
    sc_reset();
    memset(file, 'a', 128);
    sc_block_pad(128, 0, file, 128, 0);
    r = run();
    assert_int_equal(r->status, YMODEM_PROTOCOL);
    assert_string_equal(r->reason, "bad file header from the sender");
}

/* The file ends before its size: EOT too early. */
static void test_eot_before_size(void **state)
{
    (void)state;
    fill_file(1000, 26);
    sc_header("fw.img", 1000);
    sc_block(128, 1, file, 128);
    sc_eot_eot();
    struct rec *r = run();
    assert_int_equal(r->status, YMODEM_PROTOCOL);
    assert_string_equal(r->reason, "the sender ended the file after 128 of 1000 bytes");
    expect_out(r, R_C R_HDR R_ACK R_NAK R_CANS);
}

/* Blocks past the size are ACKed and dropped. */
static void test_blocks_past_size(void **state)
{
    (void)state;
    fill_file(512, 27);
    sc_header("fw.img", 100);
    sc_data(file, 512, B_128);
    sc_eot_eot();
    sc_end_header();
    struct rec *r = run();
    assert_int_equal(r->status, YMODEM_DONE);
    expect_data(r, 100);
    expect_clean(r, 4);
}

/* --- end of batch --- */

/* The first EOT is NAKed; a block after it means it was noise. An EOT
 * after the second one (our ACK was lost) is answered again. */
static void test_end_of_batch(void **state)
{
    (void)state;
    fill_file(256, 28);
    sc_header("fw.img", 256);
    sc_block(128, 1, file, 128);
    sc_byte(EOT); /* noise */
    sc_block(128, 2, file + 128, 128);
    sc_eot_eot();
    sc_byte(EOT);
    sc_end_header();
    sc_raw("junk after the end", 18);
    struct rec *r = run();
    assert_int_equal(r->status, YMODEM_DONE);
    expect_data(r, 256);
    expect_out(r, R_C R_HDR R_ACK R_NAK R_ACK R_NAK R_HDR R_HDR R_ACK);
}

/* The end-of-batch header never comes: after the file the receiver still
 * waits ('C' every 10 s), then times out: the batch did not end. */
static void test_no_end_of_batch(void **state)
{
    (void)state;
    fill_file(100, 29);
    sc_header("fw.img", 100);
    sc_block(128, 1, file, 100);
    sc_eot_eot();
    for (uint32_t t = 1000; t <= 60000; t += 1000) {
        sc_at(t);
        sc_poll();
    }
    struct rec *r = run();
    assert_int_equal(r->status, YMODEM_TIMEOUT);
    expect_data(r, 100);
    expect_out(r, R_C R_HDR R_ACK R_NAK R_HDR R_C R_C R_C R_C R_C R_CANS);
}

/* One image per transfer: a second file is refused by cancelling. */
static void test_second_file(void **state)
{
    (void)state;
    fill_file(200, 30);
    sc_header("a.img", 100);
    sc_block(128, 1, file, 100);
    sc_eot_eot();
    sc_header("b.img", 100);
    sc_block(128, 1, file + 100, 100);
    struct rec *r = run();
    assert_int_equal(r->status, YMODEM_PROTOCOL);
    assert_string_equal(r->reason, "more than one file sent: send the image alone");
    assert_int_equal(r->begins, 1);
    expect_data(r, 100);
    expect_out(r, R_C R_HDR R_ACK R_NAK R_HDR R_CANS);
}

/* A batch with no file (only the end-of-batch header): ACKed so that the
 * sender ends cleanly, but there is nothing to keep. */
static void test_empty_batch(void **state)
{
    (void)state;
    sc_end_header();
    struct rec *r = run();
    assert_int_equal(r->status, YMODEM_PROTOCOL);
    assert_string_equal(r->reason, "the sender sent no file");
    expect_out(r, R_C R_ACK);
}

/* --- the caller's side --- */

static void test_sink_failure(void **state)
{
    (void)state;
    fill_file(3000, 31);
    sc_file("fw.img", file, 3000, B_1K);
    R[0].fail_at = 2500;
    struct rec *r = run();
    assert_int_equal(r->status, YMODEM_WRITE_FAILED);
    assert_string_equal(r->reason, "writing the image failed at byte 2048");
    assert_int_equal(r->data_len, 2048);
    expect_out(r, R_C R_HDR R_ACK R_ACK R_CANS); /* the failed block is not ACKed */
}

static void test_begin_failure(void **state)
{
    (void)state;
    fill_file(300, 32);
    sc_file("fw.img", file, 300, B_1K);
    R[0].begin_rc = -1;
    struct rec *r = run();
    assert_int_equal(r->status, YMODEM_WRITE_FAILED);
    assert_string_equal(r->reason, "could not prepare the slot for the image");
    assert_int_equal(r->data_len, 0);
    expect_out(r, R_C R_CANS);
}

/* ymodem_abort(): CANs, the caller's reason; afterwards nothing is taken
 * and ymodem_settled() waits for the line to be quiet. */
static void test_abort_and_settle(void **state)
{
    (void)state;
    struct rec *r = &R[0];
    rec_reset(r);
    struct ymodem_rx *rx = &r->rx;
    ymodem_init(rx, &S.cfg, &OPS, r, 0);
    fill_file(128, 33);
    sc_header("fw.img", 128);
    assert_int_equal(ymodem_feed(rx, 100, S.bytes, S.len), YMODEM_RUNNING);
    ymodem_abort(rx, 200, "the slot could not be erased");
    assert_int_equal(rx->status, YMODEM_ABORTED);
    assert_string_equal(rx->reason, "the slot could not be erased");
    expect_out(r, R_C R_HDR R_CANS);
    ymodem_abort(rx, 210, "again"); /* no-op */
    assert_string_equal(rx->reason, "the slot could not be erased");

    /* the sender is still in the middle of a block */
    assert_false(ymodem_settled(rx, 200 + YMODEM_SETTLE_MS - 1));
    assert_int_equal(ymodem_feed(rx, 900, file, 100), YMODEM_ABORTED);
    assert_false(ymodem_settled(rx, 200 + YMODEM_SETTLE_MS));
    assert_false(ymodem_settled(rx, 900 + YMODEM_SETTLE_MS - 1));
    assert_true(ymodem_settled(rx, 900 + YMODEM_SETTLE_MS));
    assert_int_equal(ymodem_poll(rx, 100000), YMODEM_ABORTED);
    assert_int_equal(r->data_len, 0);
    expect_out(r, R_C R_HDR R_CANS); /* nothing more sent */
    assert_string_equal(ymodem_status_name(YMODEM_ABORTED), "aborted");
    assert_string_equal(ymodem_status_name(YMODEM_DONE), "done");
}

/* The ms clock wraps during a transfer. */
static void test_clock_wraps(void **state)
{
    (void)state;
    struct rec *r = &R[0];
    rec_reset(r);
    struct ymodem_rx *rx = &r->rx;
    uint32_t t0 = UINT32_MAX - 5000;
    ymodem_init(rx, &S.cfg, &OPS, r, t0);
    fill_file(256, 34);
    sc_header("fw.img", 256);
    sc_block(128, 1, file, 128);
    assert_int_equal(ymodem_feed(rx, t0 + 10, S.bytes, S.len), YMODEM_RUNNING);
    ymodem_poll(rx, t0 + 10 + YMODEM_BLOCK_TIMEOUT_MS - 1); /* past the wrap */
    expect_out(r, R_C R_HDR R_ACK);
    ymodem_poll(rx, t0 + 10 + YMODEM_BLOCK_TIMEOUT_MS);
    expect_out(r, R_C R_HDR R_ACK R_NAK);
    ymodem_poll(rx, t0 + 10 + YMODEM_IDLE_TIMEOUT_MS - 1);
    assert_int_equal(rx->status, YMODEM_RUNNING);
    ymodem_poll(rx, t0 + 10 + YMODEM_IDLE_TIMEOUT_MS);
    assert_int_equal(rx->status, YMODEM_TIMEOUT);
}

int main(void)
{
    crc_table_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_crc_vector, setup),
        cmocka_unit_test_setup(test_clean_1k, setup),
        cmocka_unit_test_setup(test_clean_128, setup),
        cmocka_unit_test_setup(test_sz_k_blocks, setup),
        cmocka_unit_test_setup(test_mixed_blocks, setup),
        cmocka_unit_test_setup(test_header_in_1k_block, setup),
        cmocka_unit_test_setup(test_padding_cut, setup),
        cmocka_unit_test_setup(test_exact_multiple, setup),
        cmocka_unit_test_setup(test_sequence_wraps, setup),
        cmocka_unit_test_setup(test_empty_file, setup),
        cmocka_unit_test_setup(test_name_sanitized, setup),
        cmocka_unit_test_setup(test_noise_before_start, setup),
        cmocka_unit_test_setup(test_crc_error, setup),
        cmocka_unit_test_setup(test_crc_error_first_block, setup),
        cmocka_unit_test_setup(test_bad_complement, setup),
        cmocka_unit_test_setup(test_misframed_block_purged, setup),
        cmocka_unit_test_setup(test_too_many_bad_blocks, setup),
        cmocka_unit_test_setup(test_duplicate_block, setup),
        cmocka_unit_test_setup(test_wrong_sequence, setup),
        cmocka_unit_test_setup(test_no_header, setup),
        cmocka_unit_test_setup(test_cancel_by_sender, setup),
        cmocka_unit_test_setup(test_cancel_before_start, setup),
        cmocka_unit_test_setup(test_lone_can_ignored, setup),
        cmocka_unit_test_setup(test_can_in_payload, setup),
        cmocka_unit_test_setup(test_sender_never_starts, setup),
        cmocka_unit_test_setup(test_sender_stalls, setup),
        cmocka_unit_test_setup(test_partial_block_timeout, setup),
        cmocka_unit_test_setup(test_retries_run_out, setup),
        cmocka_unit_test_setup(test_feed_runs_timers, setup),
        cmocka_unit_test_setup(test_too_large, setup),
        cmocka_unit_test_setup(test_exactly_slot_size, setup),
        cmocka_unit_test_setup(test_missing_size, setup),
        cmocka_unit_test_setup(test_eot_before_size, setup),
        cmocka_unit_test_setup(test_blocks_past_size, setup),
        cmocka_unit_test_setup(test_end_of_batch, setup),
        cmocka_unit_test_setup(test_no_end_of_batch, setup),
        cmocka_unit_test_setup(test_second_file, setup),
        cmocka_unit_test_setup(test_empty_batch, setup),
        cmocka_unit_test_setup(test_sink_failure, setup),
        cmocka_unit_test_setup(test_begin_failure, setup),
        cmocka_unit_test_setup(test_abort_and_settle, setup),
        cmocka_unit_test_setup(test_clock_wraps, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
