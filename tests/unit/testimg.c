/* testimg.c — see testimg.h. */
#include "testimg.h"

#include <string.h>

#include "mbedtls/ctr_drbg.h"
#include "mbedtls/ecp.h"
#include "mbedtls/sha256.h"
#include "mcuimg.h"

struct testimg_key testimg_key, testimg_other;
static mbedtls_ctr_drbg_context drbg;

/* Deterministic "entropy": the tests need keys, not secrecy. */
static int fixed_entropy(void *ctx, unsigned char *out, size_t len)
{
    (void)ctx;
    static uint32_t x = 12345;
    for (size_t i = 0; i < len; i++) {
        x = x * 1103515245u + 12345u;
        out[i] = (uint8_t)(x >> 16);
    }
    return 0;
}

static int make_key(struct testimg_key *k)
{
    mbedtls_pk_init(&k->pk);
    uint8_t buf[200];
    if (mbedtls_pk_setup(&k->pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) != 0 ||
        mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(k->pk),
                            mbedtls_ctr_drbg_random, &drbg) != 0)
        return -1;
    int n = mbedtls_pk_write_pubkey_der(&k->pk, buf, sizeof buf);
    if (n <= 0)
        return -1;
    memcpy(k->pub, buf + sizeof buf - n, (size_t)n);
    k->pub_len = (size_t)n;
    return 0;
}

int testimg_init(void)
{
    mbedtls_ctr_drbg_init(&drbg);
    if (mbedtls_ctr_drbg_seed(&drbg, fixed_entropy, NULL, NULL, 0) != 0)
        return -1;
    return make_key(&testimg_key) == 0 && make_key(&testimg_other) == 0 ? 0 : -1;
}

void testimg_free(void)
{
    mbedtls_pk_free(&testimg_key.pk);
    mbedtls_pk_free(&testimg_other.pk);
    mbedtls_ctr_drbg_free(&drbg);
}

void testimg_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

void testimg_put32(uint8_t *p, uint32_t v)
{
    testimg_put16(p, (uint16_t)v);
    testimg_put16(p + 2, (uint16_t)(v >> 16));
}

static size_t tlv(uint8_t *p, uint16_t type, const void *v, uint16_t len)
{
    testimg_put16(p, type);
    testimg_put16(p + 2, len);
    memcpy(p + 4, v, len);
    return 4u + len;
}

static size_t sign_hash(const struct testimg_key *k, const uint8_t hash[32], uint8_t *sig)
{
    size_t len = 0;
    mbedtls_pk_context *pk = (mbedtls_pk_context *)&k->pk;
    if (mbedtls_pk_sign(pk, MBEDTLS_MD_SHA256, hash, 32, sig, &len, mbedtls_ctr_drbg_random,
                        &drbg) != 0)
        return 0;
    return len;
}

static size_t sec_cnt_tlv(uint8_t *p, long sec_cnt)
{
    uint8_t v[4];
    testimg_put32(v, (uint32_t)sec_cnt);
    return tlv(p, MCUIMG_TLV_SEC_CNT, v, 4);
}

size_t testimg_build(uint8_t *img, const struct testimg *t)
{
    const struct testimg_key *signer = t->signer ? t->signer : &testimg_key;
    const struct testimg_key *kh = t->keyhash_of ? t->keyhash_of : signer;
    memset(img, 0, TESTIMG_MAX);
    size_t hdr = t->hdr_size;
    testimg_put32(img, MCUIMG_MAGIC);
    testimg_put16(img + 8, t->hdr_size);
    testimg_put32(img + 12, (uint32_t)t->payload_len);
    img[20] = t->version[0];
    img[21] = t->version[1];
    testimg_put16(img + 22, t->version[2]);
    testimg_put32(img + 24, (uint32_t)t->version[2] + 1);
    memcpy(img + hdr, t->payload, t->payload_len);
    size_t at = hdr + t->payload_len, prot = at;
    uint8_t sig[MCUIMG_SIG_MAX + 8];
    if ((t->sec_cnt >= 0 && !t->sec_cnt_unprotected) || t->board || t->sig_in_protected) {
        at += 4;
        if (t->sec_cnt >= 0 && !t->sec_cnt_unprotected)
            at += sec_cnt_tlv(img + at, t->sec_cnt);
        if (t->board)
            at += tlv(img + at, MCUIMG_TLV_BOARD, t->board, (uint16_t)strlen(t->board));
        if (t->sig_in_protected) {
            uint8_t h[32] = {0};
            at += tlv(img + at, MCUIMG_TLV_ECDSA_SIG, sig, (uint16_t)sign_hash(signer, h, sig));
        }
        testimg_put16(img + prot, MCUIMG_PROT_MAGIC);
        testimg_put16(img + prot + 2, (uint16_t)(at - prot));
        testimg_put16(img + 10, (uint16_t)(at - prot));
    }
    uint8_t hash[32], keyhash[32];
    mbedtls_sha256_ret(img, at, hash, 0);
    mbedtls_sha256_ret(kh->pub, kh->pub_len, keyhash, 0);
    size_t info = at;
    at += 4;
    if (!t->omit_sha)
        at += tlv(img + at, MCUIMG_TLV_SHA256, hash, 32);
    if (!t->omit_keyhash)
        at += tlv(img + at, MCUIMG_TLV_KEYHASH, keyhash, 32);
    if (t->sec_cnt >= 0 && t->sec_cnt_unprotected)
        at += sec_cnt_tlv(img + at, t->sec_cnt);
    for (int i = 0; !t->omit_sig && i < 1 + t->two_sigs; i++) {
        size_t sig_len = sign_hash(signer, hash, sig), tlv_len = sig_len;
        if (t->sig_pad_to > (int)sig_len) {
            memset(sig + sig_len, 0, (size_t)t->sig_pad_to - sig_len);
            tlv_len = (size_t)t->sig_pad_to;
        }
        at += tlv(img + at, MCUIMG_TLV_ECDSA_SIG, sig, (uint16_t)tlv_len);
    }
    testimg_put16(img + info, MCUIMG_TLV_MAGIC);
    testimg_put16(img + info + 2, (uint16_t)(at - info));
    return at;
}
