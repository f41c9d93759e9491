/* tools/fwsign's pure parts: argument and number parsing, the image layout
 * (read back with firmware/mcuimg.c, the boot stage's parser), and `info`
 * on every prefix and every damaged copy of an image. Built with
 * AddressSanitizer and UBSan, each input in a buffer of exactly its size:
 * a read outside the bytes given fails the test. Signing and verifying
 * with real keys are tests/integration/test_fwsign.py's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fwsign_args.h"
#include "fwsign_image.h"
#include "mcuimg.h"

/* --- fwargs --- */

static struct fwargs_opt opts[] = {{"key", 1, NULL}, {"version", 1, NULL}, {"force", 0, NULL}};
#define NOPTS (sizeof opts / sizeof opts[0])

static int parse(const char **pos, size_t *npos, char *err, int argc, ...)
{
    char *argv[16];
    va_list ap;
    va_start(ap, argc);
    for (int i = 0; i < argc; i++)
        argv[i] = va_arg(ap, char *);
    va_end(ap);
    return fwargs_parse(argc, argv, opts, NOPTS, pos, 2, npos, err, 128);
}

static void test_args_forms(void **state)
{
    (void)state;
    const char *pos[2];
    size_t npos;
    char err[128];
    assert_int_equal(parse(pos, &npos, err, 6, "in", "--key", "k.pem", "--version=1.2", "--force",
                           "out"),
                     0);
    assert_int_equal(npos, 2);
    assert_string_equal(pos[0], "in");
    assert_string_equal(pos[1], "out");
    assert_string_equal(fwargs_get(opts, NOPTS, "key"), "k.pem");
    assert_string_equal(fwargs_get(opts, NOPTS, "version"), "1.2");
    assert_string_equal(fwargs_get(opts, NOPTS, "force"), "");
    assert_null(fwargs_get(opts, NOPTS, "nonesuch"));

    /* A second parse starts clean; "--" ends options, "-" is positional;
     * an empty value is a value. */
    assert_int_equal(parse(pos, &npos, err, 4, "--key=", "-", "--", "--version"), 0);
    assert_int_equal(npos, 2);
    assert_string_equal(pos[0], "-");
    assert_string_equal(pos[1], "--version");
    assert_string_equal(fwargs_get(opts, NOPTS, "key"), "");
    assert_null(fwargs_get(opts, NOPTS, "version"));
    assert_null(fwargs_get(opts, NOPTS, "force"));
    /* A value may itself start with dashes. */
    assert_int_equal(parse(pos, &npos, err, 2, "--key", "--force"), 0);
    assert_string_equal(fwargs_get(opts, NOPTS, "key"), "--force");
    assert_null(fwargs_get(opts, NOPTS, "force"));
}

static void test_args_errors(void **state)
{
    (void)state;
    const char *pos[2];
    size_t npos;
    char err[128];
    assert_int_equal(parse(pos, &npos, err, 1, "--bogus"), -1);
    assert_string_equal(err, "unknown option '--bogus'");
    assert_int_equal(parse(pos, &npos, err, 1, "--ke"), -1); /* no prefixes */
    assert_int_equal(parse(pos, &npos, err, 1, "-k"), -1);
    assert_string_equal(err, "unknown option '-k' (options are --name)");
    assert_int_equal(parse(pos, &npos, err, 1, "--key"), -1);
    assert_string_equal(err, "option '--key' needs a value");
    assert_int_equal(parse(pos, &npos, err, 2, "--force", "--force"), -1);
    assert_string_equal(err, "option '--force' given twice");
    assert_int_equal(parse(pos, &npos, err, 3, "--key=a", "--key", "b"), -1);
    assert_string_equal(err, "option '--key' given twice");
    assert_int_equal(parse(pos, &npos, err, 1, "--force=yes"), -1);
    assert_string_equal(err, "option '--force' takes no value");
    assert_int_equal(parse(pos, &npos, err, 3, "a", "b", "c"), -1);
    assert_string_equal(err, "unexpected argument 'c'");
}

static void test_numbers(void **state)
{
    (void)state;
    uint64_t v;
    static const struct {
        const char *text;
        uint64_t max;
        int size; /* fwargs_size() rather than fwargs_number() */
        int rc;
        uint64_t want;
    } cases[] = {
        {"0", 10, 0, 0, 0},
        {"42", 100, 0, 0, 42},
        {"0x1f", 100, 0, 0, 31},
        {"0X1F", 100, 0, 0, 31},
        {"007", 100, 0, 0, 7},
        {"4294967295", UINT32_MAX, 0, 0, UINT32_MAX},
        {"0xffffffff", UINT32_MAX, 0, 0, UINT32_MAX},
        {"18446744073709551615", UINT64_MAX, 0, 0, UINT64_MAX},
        {"4294967296", UINT32_MAX, 0, -1, 0},
        {"18446744073709551616", UINT64_MAX, 0, -1, 0},
        {"0x10000000000000000", UINT64_MAX, 0, -1, 0},
        {"", 100, 0, -1, 0},
        {"0x", 100, 0, -1, 0},
        {"-1", 100, 0, -1, 0},
        {"+1", 100, 0, -1, 0},
        {" 1", 100, 0, -1, 0},
        {"1 ", 100, 0, -1, 0},
        {"1.5", 100, 0, -1, 0},
        {"12a", 100, 0, -1, 0},
        {"4K", 1u << 20, 0, -1, 0}, /* suffixes are for sizes only */
        {"4K", 1u << 20, 1, 0, 4096},
        {"4k", 1u << 20, 1, 0, 4096},
        {"0x10K", 1u << 20, 1, 0, 16384},
        {"1M", 1u << 20, 1, 0, 1u << 20},
        {"2M", 1u << 20, 1, -1, 0},
        {"1G", UINT64_MAX, 1, -1, 0},
        {"K", 100, 1, -1, 0},
        {"1KK", UINT64_MAX, 1, -1, 0},
        {"18014398509481984K", UINT64_MAX, 1, -1, 0}, /* 2^54 KiB: overflows */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        v = 12345;
        int rc = cases[i].size ? fwargs_size(cases[i].text, cases[i].max, &v)
                               : fwargs_number(cases[i].text, cases[i].max, &v);
        if (rc != cases[i].rc || (rc == 0 && v != cases[i].want))
            fail_msg("'%s': rc %d value %llu", cases[i].text, rc, (unsigned long long)v);
        if (rc != 0)
            assert_int_equal(v, 12345); /* untouched on failure */
    }
}

/* --- fwimg --- */

/* A DER-shaped ECDSA signature (SEQUENCE of two INTEGERs); mcuimg checks
 * the shape only, the value is the verifier's business. */
static const uint8_t fake_sig[] = {0x30, 0x08, 0x02, 0x02, 0x01, 0x02, 0x02, 0x02, 0x03, 0x04};

static void make(struct fwimg *img, const struct fwimg_params *p, size_t payload_len)
{
    uint8_t *payload = malloc(payload_len + 1);
    for (size_t i = 0; i < payload_len; i++)
        payload[i] = (uint8_t)(i * 7 + 3);
    char err[128];
    assert_int_equal(fwimg_begin(img, p, payload, payload_len, err, sizeof err), 0);
    free(payload);
    uint8_t digest[32], keyhash[32];
    memset(digest, 0xd1, sizeof digest);
    memset(keyhash, 0x4b, sizeof keyhash);
    assert_int_equal(fwimg_seal(img, digest, keyhash, fake_sig, sizeof fake_sig, err, sizeof err),
                     0);
}

static void test_layout(void **state)
{
    (void)state;
    struct fwimg_params p = {.version = {1, 2, 3, 4}, .hdr_size = 0x200, .has_sec_cnt = 1,
                             .sec_cnt = 0x01020304, .board = "posix"};
    struct fwimg img;
    make(&img, &p, 1000);
    static const uint8_t hdr[32] = {0x3d, 0xb8, 0xf3, 0x96, 0, 0, 0, 0, 0x00, 0x02, 21, 0,
                                    0xe8, 0x03, 0, 0, 0, 0, 0, 0, 1, 2, 3, 0, 4, 0, 0, 0};
    assert_memory_equal(img.data, hdr, sizeof hdr);
    for (size_t i = 32; i < 0x200; i++)
        assert_int_equal(img.data[i], 0);
    assert_int_equal(img.hashed_len, 0x200 + 1000 + 21);
    static const uint8_t prot[21] = {0x08, 0x69, 21, 0, 0x50, 0, 4, 0, 4, 3, 2, 1,
                                     0xa0, 0, 5, 0, 'p', 'o', 's', 'i', 'x'};
    assert_memory_equal(img.data + 0x200 + 1000, prot, sizeof prot);
    assert_int_equal(img.len, img.hashed_len + 4 + 36 + 36 + 4 + sizeof fake_sig);

    struct mcuimg m;
    char err[128];
    assert_int_equal(mcuimg_parse(img.data, img.len, &m, err, sizeof err), 0);
    assert_int_equal(m.hdr_size, 0x200);
    assert_int_equal(m.img_size, 1000);
    assert_int_equal(m.prot_size, 21);
    assert_int_equal(m.hashed_len, img.hashed_len);
    assert_int_equal(m.total_len, img.len);
    assert_true(m.has_sec_cnt);
    assert_int_equal(m.sec_cnt, 0x01020304);
    assert_string_equal(m.board, "posix");
    assert_int_equal(m.sig_len, sizeof fake_sig); /* not padded */
    assert_memory_equal(m.sig, fake_sig, sizeof fake_sig);
    assert_int_equal(m.sha256[0], 0xd1);
    assert_int_equal(m.keyhash[31], 0x4b);
    assert_int_equal(fwimg_seal(&img, m.sha256, m.keyhash, fake_sig, sizeof fake_sig, err,
                                sizeof err),
                     -1); /* once only */

    /* Padding: 0xFF up to the size, which may be exactly the image's. */
    size_t len = img.len;
    assert_int_equal(fwimg_pad(&img, len - 1, err, sizeof err), -1);
    assert_int_equal(img.len, len);
    assert_int_equal(fwimg_pad(&img, len, err, sizeof err), 0);
    assert_int_equal(fwimg_pad(&img, 0x1000, err, sizeof err), 0);
    assert_int_equal(img.len, 0x1000);
    for (size_t i = len; i < 0x1000; i++)
        assert_int_equal(img.data[i], 0xff);
    assert_int_equal(mcuimg_parse(img.data, img.len, &m, err, sizeof err), 0);
    assert_int_equal(m.total_len, len);
    fwimg_free(&img);

    /* No protected TLVs: no protected area at all. */
    struct fwimg_params bare = {.hdr_size = MCUIMG_HDR_LEN};
    make(&img, &bare, 0);
    assert_int_equal(img.hashed_len, MCUIMG_HDR_LEN);
    assert_int_equal(mcuimg_parse(img.data, img.len, &m, err, sizeof err), 0);
    assert_int_equal(m.prot_size, 0);
    assert_false(m.has_sec_cnt);
    assert_string_equal(m.board, "");
    fwimg_free(&img);
}

static void test_layout_refusals(void **state)
{
    (void)state;
    struct fwimg img;
    char err[128];
    uint8_t payload[4] = {0};
    struct fwimg_params p = {.hdr_size = 31};
    assert_int_equal(fwimg_begin(&img, &p, payload, 4, err, sizeof err), -1);
    p.hdr_size = 0x10000;
    assert_int_equal(fwimg_begin(&img, &p, payload, 4, err, sizeof err), -1);
    p.hdr_size = 0x20;
    static const char *bad_boards[] = {"", "two words", "tab\tbed", "\x7f", "caf\xc3\xa9",
                                       "0123456789012345678901234567890123"};
    for (size_t i = 0; i < sizeof bad_boards / sizeof bad_boards[0]; i++) {
        p.board = bad_boards[i];
        assert_int_equal(fwimg_board_ok(p.board), -1);
        assert_int_equal(fwimg_begin(&img, &p, payload, 4, err, sizeof err), -1);
    }
    assert_int_equal(fwimg_board_ok("0123456789012345678901234567890"), 0); /* 31 */
    assert_int_equal(fwimg_board_ok("stm32-f7/rev.B"), 0);
    /* Signatures: 1..MCUIMG_SIG_MAX bytes. */
    p.board = NULL;
    assert_int_equal(fwimg_begin(&img, &p, payload, 4, err, sizeof err), 0);
    uint8_t h[32] = {0}, sig[MCUIMG_SIG_MAX + 1] = {0};
    assert_int_equal(fwimg_seal(&img, h, h, sig, 0, err, sizeof err), -1);
    assert_int_equal(fwimg_seal(&img, h, h, sig, sizeof sig, err, sizeof err), -1);
    assert_int_equal(fwimg_seal(&img, h, h, sig, MCUIMG_SIG_MAX, err, sizeof err), 0);
    fwimg_free(&img);
}

/* fwsign info on `len` bytes copied into a buffer of exactly that size;
 * returns what it printed (the caller frees). */
static char *info_exact(const uint8_t *data, size_t len)
{
    uint8_t *copy = malloc(len ? len : 1);
    memcpy(copy, data, len);
    char *text = NULL;
    size_t text_len = 0;
    FILE *out = open_memstream(&text, &text_len);
    assert_non_null(out);
    fwimg_info(copy, len, out);
    fclose(out);
    free(copy);
    return text;
}

static void test_info(void **state)
{
    (void)state;
    struct fwimg_params p = {.version = {3, 1, 4, 15}, .hdr_size = 0x40, .has_sec_cnt = 1,
                             .sec_cnt = 7, .board = "posix"};
    struct fwimg img;
    make(&img, &p, 64);
    char *text = info_exact(img.data, img.len);
    assert_non_null(strstr(text, "\nversion: 3.1.4+15\n"));
    assert_non_null(strstr(text, "\n  tlv SEC_CNT (0x50) len 4: 7\n"));
    assert_non_null(strstr(text, "\n  tlv BOARD (0xa0) len 5: \"posix\"\n"));
    assert_non_null(strstr(text, "\n  tlv ECDSA_SIG (0x22) len 10: 30080202010202020304\n"));
    assert_non_null(strstr(text, "(differs from the SHA256 TLV)")); /* a made-up digest */
    assert_non_null(strstr(text, "(0 bytes after it)"));
    free(text);

    /* Every prefix, and every byte changed three ways: no read outside. */
    for (size_t n = 0; n <= img.len; n++)
        free(info_exact(img.data, n));
    uint8_t *copy = malloc(img.len);
    for (size_t i = 0; i < img.len; i++) {
        static const uint8_t masks[] = {0x01, 0x80, 0xff};
        for (size_t k = 0; k < sizeof masks; k++) {
            memcpy(copy, img.data, img.len);
            copy[i] ^= masks[k];
            free(info_exact(copy, img.len));
        }
    }
    free(copy);
    /* Sizes at their extremes. */
    uint8_t big[64];
    memcpy(big, img.data, sizeof big);
    memset(big + 8, 0xff, 12); /* hdr_size, prot_size, img_size, flags */
    free(info_exact(big, sizeof big));
    memset(big + 8, 0, 12);
    free(info_exact(big, sizeof big));
    fwimg_free(&img);

    /* Random bytes behind a valid magic. */
    srand(10);
    uint8_t junk[300];
    for (int round = 0; round < 2000; round++) {
        size_t n = (size_t)rand() % sizeof junk;
        for (size_t i = 0; i < n; i++)
            junk[i] = (uint8_t)rand();
        if (n >= 4)
            memcpy(junk, "\x3d\xb8\xf3\x96", 4);
        if (n >= 12 && round % 2) { /* small sizes: the TLV walk gets somewhere */
            junk[8] = 0x20;
            junk[9] = 0;
            junk[10] = (uint8_t)(rand() % 16);
            junk[11] = 0;
            junk[12] = (uint8_t)(rand() % 64);
            memset(junk + 13, 0, 3);
        }
        free(info_exact(junk, n));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_args_forms),  cmocka_unit_test(test_args_errors),
        cmocka_unit_test(test_numbers),     cmocka_unit_test(test_layout),
        cmocka_unit_test(test_layout_refusals), cmocka_unit_test(test_info),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
