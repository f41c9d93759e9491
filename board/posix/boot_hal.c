/* boot_hal.c — the boot stage and the board check images with crypto.c but
 * are not the firmware: they never ask for the device secret. */
#include "hal_err.h"
#include "hal_secret.h"

int hal_secret_get(uint8_t out[HAL_SECRET_LEN])
{
    (void)out;
    return HAL_EIO;
}
