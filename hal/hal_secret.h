/* hal_secret.h — per-device key material.
 *
 * A fixed secret unique to this unit (OTP fuses or a protected flash page on
 * hardware). The firmware never uses it directly as a key: it derives
 * purpose-specific keys from it (e.g. for encrypting smart-host passwords at
 * rest), so the secret itself never leaves the crypto module. */
#ifndef HAL_SECRET_H
#define HAL_SECRET_H

#include <stdint.h>

#define HAL_SECRET_LEN 32

int hal_secret_get(uint8_t out[HAL_SECRET_LEN]);

#endif
