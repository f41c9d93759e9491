/* flashhal.h — hal_flash.h over the posix board's flash files, for every
 * program that runs as the device's CPU (boot stage, firmware) and for the
 * board when it programs slots like a debug probe. */
#ifndef FLASHHAL_H
#define FLASHHAL_H

#include "flashparts.h"

/* The partitions hal_flash_* use from now on (NULL: none, calls fail). */
void flashhal_attach(struct flashparts *fp);
/* Power-cut tests: the erase or program numbered `ops` from now (0 = the
 * next) is left half done and the device dies at once, as when the power
 * fails (exit DEV_EXIT_POWER_CUT); the board powers it on again. Read from
 * the environment (DEV_ENV_FLASH_CUT) by the programs of the device. */
void flashhal_cut_from_env(void);
/* Hand what is left of the count to the program exec'd next (the boot
 * stage to the firmware: the operations are the device's, in order). */
void flashhal_cut_to_env(void);

#endif
