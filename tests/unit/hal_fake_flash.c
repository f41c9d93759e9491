/* hal_fake_flash.c — see hal_fake_flash.h. */
#include "hal_fake_flash.h"

#include <string.h>

#include "hal_board.h"
#include "hal_err.h"
#include "hal_flash.h"
#include "hal_reset.h"
#include "hal_storage.h"

#define WRITE_BLOCK 8u

struct nor hal_fake_admin;
static uint8_t admin_mem[HAL_FAKE_ADMIN_SIZE];
static uint8_t admin_bitmap[HAL_FAKE_ADMIN_SIZE / WRITE_BLOCK / 8 + 1];
int hal_fake_recovery;
int hal_fake_storage_wipes;
jmp_buf hal_fake_reset_jmp;

void hal_fake_flash_reset(void)
{
    memset(admin_mem, 0xFF, sizeof admin_mem);
    memset(admin_bitmap, 0, sizeof admin_bitmap);
    nor_init(&hal_fake_admin, admin_mem, sizeof admin_mem, HAL_FAKE_ADMIN_SECTOR, WRITE_BLOCK,
             admin_bitmap);
}

static struct nor *part(enum hal_flash_part p)
{
    if (p != HAL_FLASH_ADMIN)
        return NULL;
    if (!hal_fake_admin.mem)
        hal_fake_flash_reset();
    return &hal_fake_admin;
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

int hal_board_recovery_requested(void) { return hal_fake_recovery; }

int hal_storage_wipe(void)
{
    hal_fake_storage_wipes++;
    return HAL_OK;
}

void hal_reset(void) { longjmp(hal_fake_reset_jmp, 1); }
