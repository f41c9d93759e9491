/* flashhal.h — hal_flash.h over the posix board's flash files, for every
 * program that runs as the device's CPU (boot stage, firmware) and for the
 * board when it programs slots like a debug probe. */
#ifndef FLASHHAL_H
#define FLASHHAL_H

#include "flashparts.h"

/* The partitions hal_flash_* use from now on (NULL: none, calls fail). */
void flashhal_attach(struct flashparts *fp);

#endif
