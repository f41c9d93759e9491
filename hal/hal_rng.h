/* hal_rng.h — true entropy, the seed for mbedTLS's DRBG.
 *
 * Signature matches mbedtls_entropy_f_source_ptr's data part so the crypto
 * module can register it directly. Returns HAL_OK only when all `len` bytes
 * are filled; any shortfall is an error, never a silently weak seed. */
#ifndef HAL_RNG_H
#define HAL_RNG_H

#include <stddef.h>

int hal_rng_fill(void *buf, size_t len);

#endif
