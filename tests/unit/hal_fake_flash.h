/* hal_fake_flash.h — the admin flash partition as a NOR model in RAM (the
 * posix board's nor.c, with its power-cut countdown), and the storage,
 * recovery and reset HAL calls a factory reset makes. */
#ifndef HAL_FAKE_FLASH_H
#define HAL_FAKE_FLASH_H

#include <setjmp.h>

#include "nor.h"

#define HAL_FAKE_ADMIN_SECTOR 4096u
#define HAL_FAKE_ADMIN_SIZE (2 * HAL_FAKE_ADMIN_SECTOR)

extern struct nor hal_fake_admin; /* the partition; fault_countdown cuts power */
/* Erase the partition (all 0xFF) and power it back on. */
void hal_fake_flash_reset(void);

extern int hal_fake_recovery;      /* what hal_board_recovery_requested() returns */
extern int hal_fake_storage_wipes; /* hal_storage_wipe() calls */
/* hal_reset() longjmps here (set it before anything may reset). */
extern jmp_buf hal_fake_reset_jmp;

#endif
