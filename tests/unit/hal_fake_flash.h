/* hal_fake_flash.h — flash partitions as NOR models in RAM (the posix
 * board's nor.c, with its power-cut countdown), and the storage, recovery
 * and reset HAL calls a factory reset makes. The admin partition alone by
 * default; hal_fake_flash_reset_all() adds the boot-control partition and
 * both image slots, with one power cut for all of them. */
#ifndef HAL_FAKE_FLASH_H
#define HAL_FAKE_FLASH_H

#include <setjmp.h>

#include "nor.h"

#include <stdint.h>

#define HAL_FAKE_SECTOR 4096u
#define HAL_FAKE_ADMIN_SECTOR HAL_FAKE_SECTOR
#define HAL_FAKE_ADMIN_SIZE (2 * HAL_FAKE_SECTOR)
#define HAL_FAKE_BOOTCTL_SIZE (2 * HAL_FAKE_SECTOR)
#define HAL_FAKE_SLOT_SIZE (8 * HAL_FAKE_SECTOR) /* a few KiB of test image */

extern struct nor hal_fake_admin; /* the partition; fault_countdown cuts power */
extern struct nor hal_fake_bootctl, hal_fake_slot[2];
/* Erase the admin partition (all 0xFF) and power it back on. */
void hal_fake_flash_reset(void);
/* Erase every partition, boot control and slots included. */
void hal_fake_flash_reset_all(void);
/* Cut the power after this many more erases and programs on any partition
 * (-1: never); the one that hits zero is left half done, every later one
 * fails with HAL_EPOWER until hal_fake_power_on(). */
extern int32_t hal_fake_cut_countdown;
extern int hal_fake_powered_off;
void hal_fake_power_on(void);

extern int hal_fake_recovery;      /* what hal_board_recovery_requested() returns */
extern int hal_fake_storage_wipes; /* hal_storage_wipe() calls */
/* hal_reset() longjmps here (set it before anything may reset). */
extern jmp_buf hal_fake_reset_jmp;

#endif
