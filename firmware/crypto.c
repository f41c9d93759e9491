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
#include "mbedtls/platform_util.h"

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
