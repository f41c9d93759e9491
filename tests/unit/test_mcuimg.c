/* mcuimg + imgverify: MCUboot image parsing and verification, with every
 * malformed case the boot stage must refuse, MCUboot imgtool's own images
 * (tests/data/mcuboot), and version handling. Images are built here with
 * mbedTLS: a header, the protected and unprotected TLV areas, a real
 * signature; each case then breaks one thing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crypto.h"
#include "imgverify.h"
#include "mbedtls/pk.h"
#include "mcuimg.h"
#include "testimg.h"

#define PAYLOAD_LEN 1000

static uint8_t payload[PAYLOAD_LEN];

static int group_setup(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)(i * 31 + 7);
    return testimg_init();
}

static int group_teardown(void **state)
{
    (void)state;
    testimg_free();
    return 0;
}

static const struct testimg plain = {.payload = payload, .payload_len = PAYLOAD_LEN,
                                     .hdr_size = 0x200, .version = {1, 2, 3}, .sec_cnt = 5,
                                     .board = "posix"};
#define put16 testimg_put16
#define put32 testimg_put32

static struct imgverify_policy policy(void)
{
    struct imgverify_policy p = {testimg_key.pub, testimg_key.pub_len, "posix", 0};
    return p;
}

static uint8_t img[TESTIMG_MAX];
static char err[160];
static struct mcuimg m;

/* The image read in pieces (imgverify_check_read), as from flash. */
struct mem_src {
    const uint8_t *data;
    size_t len;
    int reads;
};

static int mem_read(void *ctx, uint32_t off, void *buf, size_t len)
{
    struct mem_src *s = ctx;
    assert_true(off <= s->len && len <= s->len - off); /* never past what is there */
    memcpy(buf, s->data + off, len);
    s->reads++;
    return 0;
}

/* Both verifiers on the same bytes must agree, reason included. */
static int verify_both(const uint8_t *data, size_t len, const struct imgverify_policy *p)
{
    err[0] = '\0';
    int rc = imgverify_check(data, len, p, &m, err, sizeof err);
    char err2[sizeof err];
    struct mcuimg m2;
    static uint8_t tlv[IMGVERIFY_TLV_BUF];
    struct mem_src src = {data, len, 0};
    int rc2 = imgverify_check_read(mem_read, &src, (uint32_t)len, p, &m2, tlv, err2, sizeof err2);
    assert_int_equal(rc2, rc);
    if (rc)
        assert_string_equal(err2, err);
    else
        assert_int_equal(m2.total_len, m.total_len);
    return rc;
}

static int verify(size_t len)
{
    struct imgverify_policy p = policy();
    return verify_both(img, len, &p);
}

/* --- good images --- */

static void test_good_image_verifies(void **state)
{
    (void)state;
    size_t len = testimg_build(img, &plain);
    assert_int_equal(verify(len), 0);
    assert_int_equal(m.hdr_size, 0x200);
    assert_int_equal(m.img_size, PAYLOAD_LEN);
    assert_int_equal(m.hashed_len, 0x200 + PAYLOAD_LEN + m.prot_size);
    assert_int_equal(m.total_len, len);
    assert_true(m.has_sec_cnt);
    assert_int_equal(m.sec_cnt, 5);
    assert_string_equal(m.board, "posix");
    char v[32];
    mcuimg_version_format(&m.version, v, sizeof v);
    assert_string_equal(v, "1.2.3+4");
}

/* Slots are padded with 0xFF, an upload may end with anything: bytes after
 * the TLV area never matter. */
static void test_trailing_bytes_ignored(void **state)
{
    (void)state;
    size_t len = testimg_build(img, &plain);
    memset(img + len, 0xFF, 500);
    assert_int_equal(verify(len + 500), 0);
    memset(img + len, 0x5A, 500);
    assert_int_equal(verify(len + 500), 0);
}

static void test_header_size_just_the_header(void **state)
{
    (void)state;
    struct testimg b = plain;
    b.hdr_size = MCUIMG_HDR_LEN;
    assert_int_equal(verify(testimg_build(img, &b)), 0);
}

static void test_no_protected_area(void **state)
{
    (void)state;
    struct testimg b = plain;
    b.sec_cnt = -1;
    b.board = NULL;
    size_t len = testimg_build(img, &b);
    struct imgverify_policy p = policy();
    p.board = NULL; /* an image that names no board passes only where none is asked */
    assert_int_equal(imgverify_check(img, len, &p, &m, err, sizeof err), 0);
    assert_int_equal(m.prot_size, 0);
    assert_false(m.has_sec_cnt);
    assert_int_equal(verify(len), -1);
    assert_string_equal(err, "built for board '(none)', not 'posix'");
}

/* imgtool pads a short DER signature with zeros up to 72 bytes. */
static void test_signature_padding(void **state)
{
    (void)state;
    struct testimg b = plain;
    b.sig_pad_to = MCUIMG_SIG_MAX;
    size_t len = testimg_build(img, &b);
    assert_int_equal(verify(len), 0);
    assert_true(m.sig_len < MCUIMG_SIG_MAX); /* the exact DER went to mbedTLS */
    /* Padding that is not zeros is not padding. */
    img[len - 1] = 1;
    assert_int_equal(verify(len), -1);
    assert_string_equal(err, "signature is not a DER ECDSA signature");
}

/* --- malformed: each breaks one thing --- */

static void expect_refused(size_t len, const char *why)
{
    assert_int_equal(verify(len), -1);
    assert_string_equal(err, why);
}

static void test_bad_magic(void **state)
{
    (void)state;
    size_t len = testimg_build(img, &plain);
    img[0] ^= 1;
    expect_refused(len, "no image header (bad magic)");
    expect_refused(10, "shorter than an image header");
}

static void test_sizes_that_overflow_or_exceed_the_slot(void **state)
{
    (void)state;
    size_t len = testimg_build(img, &plain);
    put32(img + 12, 0xFFFFFFFFu); /* hdr + img wraps a 32-bit sum */
    expect_refused(len, "image size past the end of the slot");
    put32(img + 12, 0xFFFFFE00u);
    expect_refused(len, "image size past the end of the slot");
    put32(img + 12, (uint32_t)len); /* more than the bytes given */
    expect_refused(len, "image size past the end of the slot");
    testimg_build(img, &plain);
    put16(img + 8, 0xFFFF);
    expect_refused(len, "image size past the end of the slot");
}

static void test_header_smaller_than_the_header(void **state)
{
    (void)state;
    size_t len = testimg_build(img, &plain);
    put16(img + 8, MCUIMG_HDR_LEN - 1);
    expect_refused(len, "header size smaller than the header");
    put16(img + 8, 0);
    expect_refused(len, "header size smaller than the header");
}

static void test_flags_refused(void **state)
{
    (void)state;
    size_t len = testimg_build(img, &plain);
    put32(img + 16, 0x4); /* ENCRYPTED_AES128 */
    expect_refused(len, "image flags not supported (encrypted, RAM-load, ...)");
}

static void test_tlv_area_magic_wrong(void **state)
{
    (void)state;
    size_t len = testimg_build(img, &plain);
    size_t info = 0x200 + PAYLOAD_LEN + (size_t)(img[10] | img[11] << 8);
    assert_int_equal(verify(len), 0);
    img[info] ^= 0xFF;
    expect_refused(len, "no TLV area after the image (bad magic)");
    testimg_build(img, &plain);
    img[0x200 + PAYLOAD_LEN] ^= 0xFF; /* the protected area's magic */
    expect_refused(len, "protected TLV area does not match its header");
    testimg_build(img, &plain);
    put16(img + 10, (uint16_t)(img[10] + 4)); /* header and area disagree */
    expect_refused(len, "protected TLV area does not match its header");
}

static void test_tlv_lengths_past_the_end(void **state)
{
    (void)state;
    size_t len = testimg_build(img, &plain);
    size_t info = 0x200 + PAYLOAD_LEN + (size_t)(img[10] | img[11] << 8);
    put16(img + info + 4 + 2, 0x7000); /* the first TLV (SHA256) claims too much */
    expect_refused(len, "TLV length past the end of its area");
    testimg_build(img, &plain);
    put16(img + info + 2, (uint16_t)(len - info + 1)); /* area one past the bytes given */
    expect_refused(len, "TLV area past the end of the slot");
    testimg_build(img, &plain);
    put16(img + info + 2, (uint16_t)(len - info - 1)); /* the last TLV runs past its area */
    expect_refused(len, "TLV length past the end of its area");
    testimg_build(img, &plain);
    put16(img + info + 2, 3);
    expect_refused(len, "TLV area past the end of the slot");
}

static void test_missing_parts(void **state)
{
    (void)state;
    struct testimg b = plain;
    b.omit_sha = 1;
    expect_refused(testimg_build(img, &b), "no SHA256 TLV");
    b = plain;
    b.omit_keyhash = 1;
    expect_refused(testimg_build(img, &b), "no KEYHASH TLV");
    b = plain;
    b.omit_sig = 1;
    expect_refused(testimg_build(img, &b), "no signature");
}

static void test_unknown_key_hash(void **state)
{
    (void)state;
    struct testimg b = plain;
    b.keyhash_of = &testimg_other;
    expect_refused(testimg_build(img, &b), "signed with another key than this device trusts");
}

/* The right key hash, but signed by another key. */
static void test_foreign_signature(void **state)
{
    (void)state;
    struct testimg b = plain;
    b.signer = &testimg_other;
    b.keyhash_of = &testimg_key; /* the trusted key's hash, another key's signature */
    expect_refused(testimg_build(img, &b), "signature does not verify");
    /* ...and the other key's images, checked with their own key, pass. */
    b.keyhash_of = &testimg_other;
    size_t len = testimg_build(img, &b);
    struct imgverify_policy p = {testimg_other.pub, testimg_other.pub_len, "posix", 0};
    assert_int_equal(imgverify_check(img, len, &p, &m, err, sizeof err), 0);
}

static void test_signature_in_protected_area(void **state)
{
    (void)state;
    struct testimg b = plain;
    b.sig_in_protected = 1;
    expect_refused(testimg_build(img, &b),
                   "hash, key hash or signature in the protected TLV area");
}

static void test_two_signatures(void **state)
{
    (void)state;
    struct testimg b = plain;
    b.two_sigs = 1;
    expect_refused(testimg_build(img, &b), "two signatures");
}

static void test_counter_outside_the_protected_area(void **state)
{
    (void)state;
    struct testimg b = plain;
    b.sec_cnt_unprotected = 1;
    expect_refused(testimg_build(img, &b),
                   "security counter or board name outside the protected area");
}

static void test_board_mismatch(void **state)
{
    (void)state;
    struct testimg b = plain;
    b.board = "mps2";
    expect_refused(testimg_build(img, &b), "built for board 'mps2', not 'posix'");
}

static void test_security_counter_minimum(void **state)
{
    (void)state;
    size_t len = testimg_build(img, &plain); /* counter 5 */
    struct imgverify_policy p = policy();
    p.min_sec_cnt = 5;
    assert_int_equal(imgverify_check(img, len, &p, &m, err, sizeof err), 0);
    p.min_sec_cnt = 6;
    assert_int_equal(imgverify_check(img, len, &p, &m, err, sizeof err), -1);
    assert_string_equal(err, "security counter 5 is below the minimum 6 (a downgrade)");
}

/* Any byte changed in the hashed part, or in the key hash or signature,
 * and the image is refused. */
static void test_every_flipped_byte_refused(void **state)
{
    (void)state;
    size_t len = testimg_build(img, &plain);
    for (size_t i = 0; i < len; i += (i < 64 || i > len - 200) ? 1 : 37) {
        if (i >= 32 && i < 0x200)
            continue; /* header padding: inside the hash, checked below */
        img[i] ^= 0x01;
        assert_int_not_equal(verify(len), 0);
        img[i] ^= 0x01;
    }
    img[0x100] ^= 0x80; /* header padding is covered by the hash too */
    expect_refused(len, "SHA-256 does not match: the image is damaged or was changed");
}

/* A 1-byte truncation anywhere (every length short of the whole image)
 * is refused, never read past. */
static void test_every_truncation_refused(void **state)
{
    (void)state;
    size_t len = testimg_build(img, &plain);
    uint8_t *copy = malloc(len);
    assert_non_null(copy);
    for (size_t cut = 0; cut < len; cut++) {
        memcpy(copy, img, cut); /* a heap block of exactly `cut` bytes: ASan sees overreads */
        struct imgverify_policy p = policy();
        uint8_t *exact = malloc(cut ? cut : 1);
        memcpy(exact, copy, cut);
        assert_int_equal(verify_both(exact, cut, &p), -1);
        free(exact);
    }
    free(copy);
}

/* --- MCUboot's imgtool made these (tests/data/mcuboot/README.md) --- */

static size_t read_file(const char *name, uint8_t **out)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", SHR_TEST_DATA_DIR "/mcuboot", name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    *out = malloc((size_t)n + 1);
    assert_non_null(*out);
    assert_int_equal(fread(*out, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    (*out)[n] = '\0';
    return (size_t)n;
}

static size_t vector_key(uint8_t *der)
{
    uint8_t *pem;
    size_t n = read_file("vector-p256.pub.pem", &pem);
    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
    assert_int_equal(mbedtls_pk_parse_public_key(&pk, pem, n + 1), 0);
    uint8_t buf[200];
    int len = mbedtls_pk_write_pubkey_der(&pk, buf, sizeof buf);
    assert_true(len > 0);
    memcpy(der, buf + sizeof buf - len, (size_t)len);
    mbedtls_pk_free(&pk);
    free(pem);
    return (size_t)len;
}

static void test_imgtool_vectors(void **state)
{
    (void)state;
    uint8_t der[200];
    struct imgverify_policy p = {der, vector_key(der), NULL, 0};
    uint8_t *data;
    size_t n = read_file("imgtool-3.1.4+15-sc7.bin", &data);
    assert_int_equal(verify_both(data, n, &p), 0);
    char v[32];
    mcuimg_version_format(&m.version, v, sizeof v);
    assert_string_equal(v, "3.1.4+15");
    assert_int_equal(m.sec_cnt, 7);
    assert_int_equal(m.prot_size, 0xc);
    assert_int_equal(m.img_size, 0x10000);
    assert_int_equal(m.sha256[0], 0x10);
    assert_int_equal(m.sha256[31], 0x08);
    p.min_sec_cnt = 8;
    assert_int_equal(imgverify_check(data, n, &p, &m, err, sizeof err), -1);
    p.min_sec_cnt = 0;
    p.board = "posix"; /* imgtool's images name no board: not for our slots */
    assert_int_equal(imgverify_check(data, n, &p, &m, err, sizeof err), -1);
    p.board = NULL;
    struct imgverify_policy foreign = {testimg_key.pub, testimg_key.pub_len, NULL, 0};
    assert_int_equal(imgverify_check(data, n, &foreign, &m, err, sizeof err), -1);
    assert_string_equal(err, "signed with another key than this device trusts");
    free(data);
    n = read_file("imgtool-0.9.0-padded.bin", &data);
    assert_int_equal(n, 0x40000);
    assert_int_equal(verify_both(data, n, &p), 0); /* read in pieces too */
    assert_false(m.has_sec_cnt);
    assert_true(m.total_len < n); /* the trailer and padding after it were ignored */
    free(data);
}

/* --- versions --- */

static void test_versions(void **state)
{
    (void)state;
    struct mcuimg_version a, b;
    assert_int_equal(mcuimg_version_parse("1.2.3+4", &a), 0);
    assert_int_equal(a.major, 1);
    assert_int_equal(a.minor, 2);
    assert_int_equal(a.revision, 3);
    assert_int_equal(a.build, 4);
    assert_int_equal(mcuimg_version_parse("2", &b), 0);
    assert_int_equal(mcuimg_version_cmp(&a, &b), -1);
    assert_int_equal(mcuimg_version_cmp(&b, &a), 1);
    assert_int_equal(mcuimg_version_parse("1.2.3+5", &b), 0);
    assert_int_equal(mcuimg_version_cmp(&a, &b), -1); /* the build counts too */
    assert_int_equal(mcuimg_version_parse("1.2.3+4", &b), 0);
    assert_int_equal(mcuimg_version_cmp(&a, &b), 0);
    assert_int_equal(mcuimg_version_parse("255.255.65535+4294967295", &b), 0);
    assert_int_equal(mcuimg_version_cmp(&a, &b), -1);
    const char *bad[] = {"", "1.", "256", "1.2.65536", "1.2.3+4294967296", "a", "1.2.3.4",
                         "-1", "1..2", "1.2+", "+3", "1.2.3 "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(mcuimg_version_parse(bad[i], &b), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_image_verifies),
        cmocka_unit_test(test_trailing_bytes_ignored),
        cmocka_unit_test(test_header_size_just_the_header),
        cmocka_unit_test(test_no_protected_area),
        cmocka_unit_test(test_signature_padding),
        cmocka_unit_test(test_bad_magic),
        cmocka_unit_test(test_sizes_that_overflow_or_exceed_the_slot),
        cmocka_unit_test(test_header_smaller_than_the_header),
        cmocka_unit_test(test_flags_refused),
        cmocka_unit_test(test_tlv_area_magic_wrong),
        cmocka_unit_test(test_tlv_lengths_past_the_end),
        cmocka_unit_test(test_missing_parts),
        cmocka_unit_test(test_unknown_key_hash),
        cmocka_unit_test(test_foreign_signature),
        cmocka_unit_test(test_signature_in_protected_area),
        cmocka_unit_test(test_two_signatures),
        cmocka_unit_test(test_counter_outside_the_protected_area),
        cmocka_unit_test(test_board_mismatch),
        cmocka_unit_test(test_security_counter_minimum),
        cmocka_unit_test(test_every_flipped_byte_refused),
        cmocka_unit_test(test_every_truncation_refused),
        cmocka_unit_test(test_imgtool_vectors),
        cmocka_unit_test(test_versions),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
