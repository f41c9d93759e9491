/* flashhal.c — hal_flash over flashparts; see flashhal.h. */
#include "flashhal.h"

#include "hal_err.h"
#include "hal_flash.h"

static struct flashparts *attached;

void flashhal_attach(struct flashparts *fp) { attached = fp; }

static struct nor *part(enum hal_flash_part p)
{
    return (attached && p >= 0 && p < HAL_FLASH_PART_COUNT) ? &attached->part[p] : NULL;
}

int hal_flash_info(enum hal_flash_part p, struct hal_flash_info *info)
{
    struct nor *n = part(p);
    if (!n)
        return HAL_EINVAL;
    info->size = n->size;
    info->sector_size = n->sector_size;
    info->write_block = n->write_block;
    return HAL_OK;
}

int hal_flash_read(enum hal_flash_part p, uint32_t off, void *buf, size_t len)
{
    struct nor *n = part(p);
    return n ? nor_read(n, off, buf, len) : HAL_EINVAL;
}

int hal_flash_erase(enum hal_flash_part p, uint32_t off)
{
    struct nor *n = part(p);
    return n ? nor_erase(n, off) : HAL_EINVAL;
}

int hal_flash_program(enum hal_flash_part p, uint32_t off, const void *buf, size_t len)
{
    struct nor *n = part(p);
    return n ? nor_program(n, off, buf, len) : HAL_EINVAL;
}
