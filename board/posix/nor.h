/* nor.h — a NOR flash chip modelled in memory, enforcing the contract in
 * hal/hal_flash.h.
 *
 * The memory is usually a shared mapping of a file in the state directory,
 * so the contents outlive the device process like a real chip outlives a
 * CPU reset. The fault countdown cuts the power after N more erase or
 * program operations: the operation that hits zero is left half done and it
 * and every later one fail with HAL_EPOWER, which is what power-cut tests
 * need to check that every write path survives an interruption anywhere. */
#ifndef NOR_H
#define NOR_H

#include <stddef.h>
#include <stdint.h>

struct nor {
    uint8_t *mem;
    uint32_t size;
    uint32_t sector_size;
    uint32_t write_block;
    /* One bit per write block, set when programmed, cleared by erase; NULL
     * to rely on the all-0xFF check alone. Catches a block programmed twice
     * even when the first write was all 0xFF. */
    uint8_t *programmed;
    /* Operations left before the power cut; negative means never. */
    int32_t fault_countdown;
    int powered_off;
};

/* Size in bytes of the `programmed` bitmap for a chip of these sizes. */
size_t nor_bitmap_size(uint32_t size, uint32_t write_block);
/* Returns HAL_EINVAL when the sizes break the contract (sector not a
 * multiple of the write block, size not a multiple of the sector...). */
int nor_init(struct nor *nor, uint8_t *mem, uint32_t size, uint32_t sector_size,
             uint32_t write_block, uint8_t *programmed);
int nor_read(const struct nor *nor, uint32_t off, void *buf, size_t len);
int nor_erase(struct nor *nor, uint32_t off);
int nor_program(struct nor *nor, uint32_t off, const void *buf, size_t len);

#endif
