/* slotprog.c — programming an image into a slot; see slotprog.h. */
#include "slotprog.h"

#include <string.h>

#include "hal_err.h"

int slotprog_write(struct nor *slot, const uint8_t *img, size_t len)
{
    uint32_t wb = slot->write_block;
    if (len == 0 || len > slot->size || wb > 64)
        return HAL_EINVAL;
    if (memcmp(slot->mem, img, len) == 0)
        return 0;
    for (uint32_t s = 0; s < slot->size; s += slot->sector_size) {
        int rc = nor_erase(slot, s);
        if (rc)
            return rc;
    }
    /* Everything after the first write block, then the last partial block
     * padded with 0xFF, then the first block: until that last step the
     * slot holds no image header at all. */
    size_t whole = len - len % wb;
    int rc = whole > wb ? nor_program(slot, wb, img + wb, whole - wb) : HAL_OK;
    if (rc == HAL_OK && whole < len) {
        uint8_t tail[64];
        memset(tail, 0xFF, sizeof tail);
        memcpy(tail, img + whole, len - whole);
        rc = nor_program(slot, (uint32_t)whole, tail, wb);
    }
    if (rc == HAL_OK) {
        uint8_t first[64];
        memset(first, 0xFF, sizeof first);
        memcpy(first, img, len < wb ? len : wb);
        rc = nor_program(slot, 0, first, wb);
    }
    return rc == HAL_OK ? 1 : rc;
}
