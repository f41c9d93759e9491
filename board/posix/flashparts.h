/* flashparts.h — the posix board's NOR flash: one file per partition in the
 * state directory, mapped shared so both the board (which programs images
 * like a debug probe would) and the device see the same chip.
 *
 * Layout (sector 4 KiB, write block 8 bytes, as on common QSPI NOR):
 *   flash-bootctl.bin   8 KiB  boot control records
 *   flash-slot-a.bin    8 MiB  image slot A (primary)
 *   flash-slot-b.bin    8 MiB  image slot B
 *   flash-admin.bin     8 KiB  admin password record, key epoch
 * Slots are sized for the firmware ELF with room to double. */
#ifndef FLASHPARTS_H
#define FLASHPARTS_H

#include <stddef.h>

#include "hal_flash.h"
#include "nor.h"

#define FLASHPARTS_SECTOR 4096u
#define FLASHPARTS_WRITE_BLOCK 8u

struct flashparts {
    struct nor part[HAL_FLASH_PART_COUNT];
};

/* Map every partition file under `state_dir`, creating missing ones erased
 * (all 0xFF). Returns 0, or -1 with a reason in `err`. */
int flashparts_open(struct flashparts *fp, const char *state_dir, char *err, size_t errlen);
void flashparts_close(struct flashparts *fp);

#endif
