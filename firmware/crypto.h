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

/* Fill `buf` from the DRBG; 0 or -1. */
int crypto_random(void *buf, size_t len);
/* Overwrite memory holding a secret, in a way the compiler cannot drop. */
void crypto_wipe(void *buf, size_t len);

#endif
