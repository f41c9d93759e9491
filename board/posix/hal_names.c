/* hal_names.c — text for HAL codes, shared by the device and the board
 * (which names the reset it saw). */
#include "hal_err.h"
#include "hal_reset.h"

const char *hal_strerror(int rc)
{
    switch (rc) {
    case HAL_OK: return "ok";
    case HAL_EINVAL: return "invalid argument";
    case HAL_EIO: return "i/o error";
    case HAL_ENOTERASED: return "flash not erased";
    case HAL_ENOSPC: return "no space";
    case HAL_EPOWER: return "power cut";
    }
    return "unknown error";
}

const char *hal_reset_cause_name(enum hal_reset_cause cause)
{
    switch (cause) {
    case HAL_RESET_POWER_ON: return "power-on";
    case HAL_RESET_SOFTWARE: return "software";
    case HAL_RESET_WATCHDOG: return "watchdog";
    case HAL_RESET_FAULT: return "fault";
    }
    return "unknown";
}
