/* hal_flash.h — NOR flash partitions.
 *
 * The NOR contract every board must honour (and the posix board enforces):
 *  - erase works on whole sectors and sets every byte of the sector to 0xFF;
 *  - program works on whole write blocks, aligned to the write block size;
 *  - each write block is programmed at most once between two erases of its
 *    sector (programming a block that is not all 0xFF fails with
 *    HAL_ENOTERASED), so code never relies on bit-clearing rewrites;
 *  - read has no alignment rules.
 * Sizes come from hal_flash_info(); no caller hard-codes them. */
#ifndef HAL_FLASH_H
#define HAL_FLASH_H

#include <stddef.h>
#include <stdint.h>

enum hal_flash_part {
    HAL_FLASH_BOOTCTL = 0, /* boot control records (which slot, trial or confirmed) */
    HAL_FLASH_SLOT_A,      /* firmware image slot A (primary) */
    HAL_FLASH_SLOT_B,      /* firmware image slot B (update / fallback) */
    HAL_FLASH_ADMIN,       /* the admin password record and key epoch (adminrec.h):
                            * two sectors, apart from the database so a damaged
                            * database neither locks out nor opens the console */
    HAL_FLASH_PART_COUNT
};

struct hal_flash_info {
    uint32_t size;        /* partition size in bytes, a multiple of sector_size */
    uint32_t sector_size; /* erase unit in bytes */
    uint32_t write_block; /* program unit in bytes, a power of two */
};

int hal_flash_info(enum hal_flash_part part, struct hal_flash_info *info);
int hal_flash_read(enum hal_flash_part part, uint32_t off, void *buf, size_t len);
/* Erase the sector that starts at `off` (must be sector aligned). */
int hal_flash_erase(enum hal_flash_part part, uint32_t off);
/* Program `len` bytes at `off`; both multiples of the write block size. */
int hal_flash_program(enum hal_flash_part part, uint32_t off, const void *buf, size_t len);

#endif
