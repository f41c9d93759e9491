/* dev_hal.h — set up the posix board's HAL in the device process. */
#ifndef DEV_HAL_H
#define DEV_HAL_H

#include <stddef.h>

/* Map flash and read what the board and boot stage passed in the
 * environment. Returns 0, or -1 with a reason in `err`. */
int dev_hal_init(char *err, size_t errlen);

#endif
