/* crypto.c — mbedTLS behind a small API; see crypto.h. */
#include "crypto.h"

#include <string.h>

#include "hal_rng.h"
#include "hal_secret.h"
#include "mbedtls/ctr_drbg.h"
#include "mbedtls/entropy.h"
#include "mbedtls/gcm.h"
#include "mbedtls/hkdf.h"
#include "mbedtls/md.h"
#include "mbedtls/pk.h"
#include "mbedtls/ecp.h"
#include "mbedtls/pkcs5.h"
#include "mbedtls/platform_util.h"
#include "mbedtls/sha256.h"
#include "mbedtls/x509_crt.h"
#include "clockfmt.h"

#include <stdio.h>

#define SEAL_VERSION 1
#define NONCE_LEN 12
#define TAG_LEN 16
#define KEY_LEN 32
/* HKDF "info" labels: one key per purpose, so a key can never be misused
 * for another purpose even if one use leaks. */
#define LABEL_SECRETS "shr secrets-at-rest v1"

static mbedtls_entropy_context entropy;
static mbedtls_ctr_drbg_context drbg;
static uint8_t secrets_key[KEY_LEN];
static int ready;

/* mbedTLS entropy source backed by the HAL; a short read is a failure. */
static int hal_entropy(void *data, unsigned char *out, size_t len, size_t *olen)
{
    (void)data;
    if (hal_rng_fill(out, len) != 0)
        return MBEDTLS_ERR_ENTROPY_SOURCE_FAILED;
    *olen = len;
    return 0;
}

int crypto_init(void)
{
    if (ready)
        return 0;
    mbedtls_entropy_init(&entropy);
    mbedtls_ctr_drbg_init(&drbg);
    if (mbedtls_entropy_add_source(&entropy, hal_entropy, NULL, 32,
                                   MBEDTLS_ENTROPY_SOURCE_STRONG) != 0)
        return -1;
    static const char personal[] = "smart-host-relay";
    if (mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy,
                              (const unsigned char *)personal, sizeof personal - 1) != 0)
        return -1;
    uint8_t secret[HAL_SECRET_LEN];
    if (hal_secret_get(secret) != 0)
        return -1;
    int rc = mbedtls_hkdf(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), NULL, 0, secret,
                          sizeof secret, (const unsigned char *)LABEL_SECRETS,
                          sizeof LABEL_SECRETS - 1, secrets_key, sizeof secrets_key);
    crypto_wipe(secret, sizeof secret);
    if (rc != 0)
        return -1;
    ready = 1;
    return 0;
}

int crypto_random(void *buf, size_t len)
{
    if (!ready)
        return -1;
    return mbedtls_ctr_drbg_random(&drbg, buf, len) == 0 ? 0 : -1;
}

void crypto_wipe(void *buf, size_t len) { mbedtls_platform_zeroize(buf, len); }

int crypto_seal(const char *context, const void *secret, size_t len, uint8_t *out, size_t cap)
{
    if (!ready || len > CRYPTO_SECRET_MAX || cap < len + CRYPTO_SEAL_OVERHEAD)
        return -1;
    out[0] = SEAL_VERSION;
    uint8_t *nonce = out + 1, *ct = out + 1 + NONCE_LEN, *tag = ct + len;
    if (crypto_random(nonce, NONCE_LEN) != 0)
        return -1;
    mbedtls_gcm_context gcm;
    mbedtls_gcm_init(&gcm);
    int rc = mbedtls_gcm_setkey(&gcm, MBEDTLS_CIPHER_ID_AES, secrets_key, KEY_LEN * 8);
    if (rc == 0)
        rc = mbedtls_gcm_crypt_and_tag(&gcm, MBEDTLS_GCM_ENCRYPT, len, nonce, NONCE_LEN,
                                       (const unsigned char *)context, strlen(context),
                                       secret, ct, TAG_LEN, tag);
    mbedtls_gcm_free(&gcm);
    return rc == 0 ? (int)(len + CRYPTO_SEAL_OVERHEAD) : -1;
}

int crypto_open(const char *context, const uint8_t *sealed, size_t len, void *out, size_t cap)
{
    if (!ready || len < CRYPTO_SEAL_OVERHEAD || sealed[0] != SEAL_VERSION)
        return -1;
    size_t plain = len - CRYPTO_SEAL_OVERHEAD;
    if (plain > cap)
        return -1;
    const uint8_t *nonce = sealed + 1, *ct = sealed + 1 + NONCE_LEN, *tag = ct + plain;
    mbedtls_gcm_context gcm;
    mbedtls_gcm_init(&gcm);
    int rc = mbedtls_gcm_setkey(&gcm, MBEDTLS_CIPHER_ID_AES, secrets_key, KEY_LEN * 8);
    if (rc == 0)
        rc = mbedtls_gcm_auth_decrypt(&gcm, plain, nonce, NONCE_LEN,
                                      (const unsigned char *)context, strlen(context), tag,
                                      TAG_LEN, ct, out);
    mbedtls_gcm_free(&gcm);
    if (rc != 0) {
        crypto_wipe(out, plain);
        return -1;
    }
    return (int)plain;
}

/* --- TLS identity --- */

/* mbedTLS wants "YYYYMMDDhhmmss". */
static void x509_time(int64_t t, char out[16])
{
    char utc[CLOCKFMT_UTC_LEN];
    clockfmt_utc(t, utc); /* "YYYY-MM-DD hh:mm:ss" */
    snprintf(out, 16, "%.4s%.2s%.2s%.2s%.2s%.2s", utc, utc + 5, utc + 8, utc + 11, utc + 14,
             utc + 17);
}

/* mbedTLS writes DER at the END of the buffer; move it to the start. */
static int der_to_front(uint8_t *buf, size_t cap, int n, size_t *len)
{
    if (n <= 0 || (size_t)n > cap)
        return -1;
    memmove(buf, buf + cap - (size_t)n, (size_t)n);
    *len = (size_t)n;
    return 0;
}

int crypto_tls_identity_create(const char *common_name, int64_t now, uint8_t *key_der,
                               size_t *key_len, uint8_t *cert_der, size_t *cert_len)
{
    if (!ready)
        return -1;
    mbedtls_pk_context key;
    mbedtls_x509write_cert crt;
    mbedtls_mpi serial;
    mbedtls_pk_init(&key);
    mbedtls_x509write_crt_init(&crt);
    mbedtls_mpi_init(&serial);
    int rc = -1;
    char subject[160], from[16], to[16];
    uint8_t serial_bytes[16];
    snprintf(subject, sizeof subject, "CN=%s", common_name);
    x509_time(now - 86400, from);
    x509_time(now + (int64_t)CRYPTO_TLS_VALID_DAYS * 86400, to);
    if (mbedtls_pk_setup(&key, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) != 0 ||
        mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(key),
                            mbedtls_ctr_drbg_random, &drbg) != 0)
        goto out;
    if (crypto_random(serial_bytes, sizeof serial_bytes) != 0)
        goto out;
    serial_bytes[0] &= 0x7F; /* a positive serial number */
    if (mbedtls_mpi_read_binary(&serial, serial_bytes, sizeof serial_bytes) != 0)
        goto out;
    mbedtls_x509write_crt_set_version(&crt, MBEDTLS_X509_CRT_VERSION_3);
    mbedtls_x509write_crt_set_md_alg(&crt, MBEDTLS_MD_SHA256);
    mbedtls_x509write_crt_set_subject_key(&crt, &key);
    mbedtls_x509write_crt_set_issuer_key(&crt, &key);
    if (mbedtls_x509write_crt_set_subject_name(&crt, subject) != 0 ||
        mbedtls_x509write_crt_set_issuer_name(&crt, subject) != 0 ||
        mbedtls_x509write_crt_set_serial(&crt, &serial) != 0 ||
        mbedtls_x509write_crt_set_validity(&crt, from, to) != 0 ||
        mbedtls_x509write_crt_set_basic_constraints(&crt, 0, -1) != 0)
        goto out;
    if (der_to_front(key_der, CRYPTO_KEY_DER_MAX,
                     mbedtls_pk_write_key_der(&key, key_der, CRYPTO_KEY_DER_MAX), key_len) != 0)
        goto out;
    if (der_to_front(cert_der, CRYPTO_CERT_DER_MAX,
                     mbedtls_x509write_crt_der(&crt, cert_der, CRYPTO_CERT_DER_MAX,
                                               mbedtls_ctr_drbg_random, &drbg),
                     cert_len) != 0)
        goto out;
    rc = 0;
out:
    mbedtls_mpi_free(&serial);
    mbedtls_x509write_crt_free(&crt);
    mbedtls_pk_free(&key);
    return rc;
}

static void x509_time_text(const mbedtls_x509_time *t, char *out, size_t cap)
{
    snprintf(out, cap, "%04d-%02d-%02d %02d:%02d:%02d", t->year, t->mon, t->day, t->hour,
             t->min, t->sec);
}

int crypto_cert_info(const uint8_t *cert_der, size_t len, struct crypto_cert_info *info)
{
    mbedtls_x509_crt crt;
    mbedtls_x509_crt_init(&crt);
    int rc = mbedtls_x509_crt_parse_der(&crt, cert_der, len);
    if (rc == 0) {
        mbedtls_x509_dn_gets(info->subject, sizeof info->subject, &crt.subject);
        mbedtls_x509_dn_gets(info->issuer, sizeof info->issuer, &crt.issuer);
        x509_time_text(&crt.valid_from, info->not_before, sizeof info->not_before);
        x509_time_text(&crt.valid_to, info->not_after, sizeof info->not_after);
        uint8_t digest[32];
        mbedtls_sha256_ret(cert_der, len, digest, 0);
        for (int i = 0; i < 32; i++)
            snprintf(info->sha256 + 3 * i, sizeof info->sha256 - 3 * (size_t)i, "%02X%s",
                     digest[i], i < 31 ? ":" : "");
    }
    mbedtls_x509_crt_free(&crt);
    return rc == 0 ? 0 : -1;
}

/* --- password hashes --- */

int crypto_pbkdf2(const char *password, const uint8_t *salt, size_t salt_len,
                  uint32_t iterations, uint8_t out[CRYPTO_HASH_LEN])
{
    mbedtls_md_context_t md;
    mbedtls_md_init(&md);
    int rc = mbedtls_md_setup(&md, mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), 1);
    if (rc == 0)
        rc = mbedtls_pkcs5_pbkdf2_hmac(&md, (const unsigned char *)password, strlen(password),
                                       salt, salt_len, iterations, CRYPTO_HASH_LEN, out);
    mbedtls_md_free(&md);
    return rc == 0 ? 0 : -1;
}

int crypto_equal(const void *a, const void *b, size_t len)
{
    const volatile uint8_t *x = a, *y = b;
    uint8_t diff = 0;
    for (size_t i = 0; i < len; i++)
        diff |= (uint8_t)(x[i] ^ y[i]);
    return diff == 0;
}
