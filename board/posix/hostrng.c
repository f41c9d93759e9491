/* hostrng.c — hal_rng_fill on the host kernel's random source, for every
 * posix program that needs entropy (firmware, boot stage, board, fwsign). */
#include <errno.h>
#include <sys/random.h>
#include <sys/types.h>

#include "hal_err.h"
#include "hal_rng.h"

int hal_rng_fill(void *buf, size_t len)
{
    unsigned char *p = buf;
    while (len) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return HAL_EIO;
        }
        p += (size_t)n;
        len -= (size_t)n;
    }
    return HAL_OK;
}
