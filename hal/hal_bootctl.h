/* hal_bootctl.h — which firmware slot runs, and whether it is confirmed.
 *
 * The boot stage picks a slot before the firmware starts. A slot booted for
 * a trial runs once; unless the firmware confirms it, the next reset boots
 * the other slot again (automatic revert). */
#ifndef HAL_BOOTCTL_H
#define HAL_BOOTCTL_H

#include <stdint.h>

#include "hal_flash.h"

struct hal_boot_state {
    enum hal_flash_part running; /* HAL_FLASH_SLOT_A or HAL_FLASH_SLOT_B */
    int trial;                   /* 1 when running a trial boot not yet confirmed */
    uint32_t boot_count;         /* boots since the board was powered on */
};

int hal_bootctl_state(struct hal_boot_state *state);
/* Mark the running slot as good; a no-op when it already is. */
int hal_bootctl_confirm(void);

#endif
