/* fwsign_hal.c — the device secret firmware/crypto.c can ask for, on the
 * host: there is none on a build host, so asking is an error (fwsign never
 * calls crypto_init(), its only user). Entropy is the posix board's
 * hostrng.c (getrandom). */
#include "hal_err.h"
#include "hal_secret.h"

int hal_secret_get(uint8_t out[HAL_SECRET_LEN])
{
    (void)out;
    return HAL_EIO;
}
