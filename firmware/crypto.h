/* crypto.h — the firmware's only door to mbedTLS.
 *
 * Secrets at rest: smart-host passwords are sealed with AES-256-GCM under a
 * key derived (HKDF-SHA256) from the HAL device secret, so a copy of the
 * database alone reveals nothing. The sealed blob is bound to a context
 * string (for a smart host: its domain, host and port), so a blob moved to
 * another row does not open. The device secret itself never leaves here. */
#ifndef CRYPTO_H
#define CRYPTO_H

#include <stddef.h>
#include <stdint.h>

/* version(1) | nonce(12) | ciphertext | tag(16) */
#define CRYPTO_SEAL_OVERHEAD (1 + 12 + 16)
#define CRYPTO_SECRET_MAX 256 /* longest secret sealed (a password) */
#define CRYPTO_SEALED_MAX (CRYPTO_SECRET_MAX + CRYPTO_SEAL_OVERHEAD)

/* Seed the DRBG from the HAL rng and derive keys from the device secret.
 * Returns 0, or -1 (then every other call fails). */
int crypto_init(void);

/* Seal `len` bytes; writes CRYPTO_SEAL_OVERHEAD + len bytes to `out`.
 * Returns that length, or -1. */
int crypto_seal(const char *context, const void *secret, size_t len,
                uint8_t *out, size_t cap);
/* Open a sealed blob into `out`; returns the secret's length, or -1 when it
 * was tampered with, sealed for another context, or on another device. */
int crypto_open(const char *context, const uint8_t *sealed, size_t len,
                void *out, size_t cap);

/* --- TLS identity: an EC P-256 key and a self-signed certificate --- */
#define CRYPTO_KEY_DER_MAX 256
#define CRYPTO_CERT_DER_MAX 1024
#define CRYPTO_TLS_VALID_DAYS 3650 /* self-signed: nobody renews it */

/* Make a key and a certificate for CN=`common_name`, valid from a day
 * before `now`. DER into the buffers; lengths returned through the pointers. */
int crypto_tls_identity_create(const char *common_name, int64_t now, uint8_t *key_der,
                               size_t *key_len, uint8_t *cert_der, size_t *cert_len);

struct crypto_cert_info {
    char subject[128];
    char issuer[128];
    char not_before[24]; /* "2026-11-28 07:58:01" UTC */
    char not_after[24];
    char sha256[96];     /* "AB:CD:..." */
};
int crypto_cert_info(const uint8_t *cert_der, size_t len, struct crypto_cert_info *info);

/* --- password hashes (PBKDF2-HMAC-SHA256) --- */
#define CRYPTO_HASH_LEN 32
#define CRYPTO_SALT_LEN 16
int crypto_pbkdf2(const char *password, const uint8_t *salt, size_t salt_len,
                  uint32_t iterations, uint8_t out[CRYPTO_HASH_LEN]);
/* Constant-time comparison; 1 when equal. */
int crypto_equal(const void *a, const void *b, size_t len);

/* Fill `buf` from the DRBG; 0 or -1. */
int crypto_random(void *buf, size_t len);
/* Overwrite memory holding a secret, in a way the compiler cannot drop. */
void crypto_wipe(void *buf, size_t len);

#endif
