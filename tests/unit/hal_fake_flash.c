/* hal_fake_flash.c — see hal_fake_flash.h. */
#include "hal_fake_flash.h"

#include <string.h>

#include "hal_board.h"
#include "hal_err.h"
#include "hal_flash.h"
#include "hal_reset.h"
#include "hal_storage.h"

#define WRITE_BLOCK 8u

struct nor hal_fake_admin, hal_fake_bootctl, hal_fake_slot[2];
static uint8_t admin_mem[HAL_FAKE_ADMIN_SIZE];
static uint8_t admin_bitmap[HAL_FAKE_ADMIN_SIZE / WRITE_BLOCK / 8 + 1];
static uint8_t bootctl_mem[HAL_FAKE_BOOTCTL_SIZE];
static uint8_t bootctl_bitmap[HAL_FAKE_BOOTCTL_SIZE / WRITE_BLOCK / 8 + 1];
static uint8_t slot_mem[2][HAL_FAKE_SLOT_SIZE];
static uint8_t slot_bitmap[2][HAL_FAKE_SLOT_SIZE / WRITE_BLOCK / 8 + 1];
int hal_fake_recovery;
int hal_fake_storage_wipes;
jmp_buf hal_fake_reset_jmp;
int32_t hal_fake_cut_countdown = -1;
int hal_fake_powered_off;

static void init_part(struct nor *n, uint8_t *mem, size_t size, uint8_t *bitmap, size_t bits)
{
    memset(mem, 0xFF, size);
    memset(bitmap, 0, bits);
    nor_init(n, mem, (uint32_t)size, HAL_FAKE_SECTOR, WRITE_BLOCK, bitmap);
}

void hal_fake_flash_reset(void)
{
    init_part(&hal_fake_admin, admin_mem, sizeof admin_mem, admin_bitmap, sizeof admin_bitmap);
}

void hal_fake_flash_reset_all(void)
{
    hal_fake_flash_reset();
    init_part(&hal_fake_bootctl, bootctl_mem, sizeof bootctl_mem, bootctl_bitmap,
              sizeof bootctl_bitmap);
    for (int i = 0; i < 2; i++)
        init_part(&hal_fake_slot[i], slot_mem[i], sizeof slot_mem[i], slot_bitmap[i],
                  sizeof slot_bitmap[i]);
    hal_fake_power_on();
}

void hal_fake_power_on(void)
{
    struct nor *all[] = {&hal_fake_admin, &hal_fake_bootctl, &hal_fake_slot[0], &hal_fake_slot[1]};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        all[i]->powered_off = 0;
        all[i]->fault_countdown = -1;
    }
    hal_fake_cut_countdown = -1;
    hal_fake_powered_off = 0;
}

static struct nor *part(enum hal_flash_part p)
{
    if (!hal_fake_admin.mem)
        hal_fake_flash_reset();
    if (p == HAL_FLASH_ADMIN)
        return &hal_fake_admin;
    if (!hal_fake_bootctl.mem)
        return NULL; /* tests of the admin record alone */
    switch (p) {
    case HAL_FLASH_BOOTCTL: return &hal_fake_bootctl;
    case HAL_FLASH_SLOT_A: return &hal_fake_slot[0];
    case HAL_FLASH_SLOT_B: return &hal_fake_slot[1];
    default: return NULL;
    }
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

/* The board-wide countdown, when set, counts every partition's erases and
 * programs: one power cut stops them all. */
static int power_begin(struct nor *n)
{
    if (hal_fake_powered_off)
        return HAL_EPOWER;
    if (hal_fake_cut_countdown >= 0)
        n->fault_countdown = hal_fake_cut_countdown;
    return HAL_OK;
}

static int power_end(struct nor *n, int rc)
{
    if (hal_fake_cut_countdown >= 0) {
        hal_fake_cut_countdown = n->fault_countdown;
        n->fault_countdown = -1;
        if (n->powered_off)
            hal_fake_powered_off = 1;
    }
    return rc;
}

int hal_flash_erase(enum hal_flash_part p, uint32_t off)
{
    struct nor *n = part(p);
    if (!n)
        return HAL_EINVAL;
    int rc = power_begin(n);
    return rc ? rc : power_end(n, nor_erase(n, off));
}

int hal_flash_program(enum hal_flash_part p, uint32_t off, const void *buf, size_t len)
{
    struct nor *n = part(p);
    if (!n)
        return HAL_EINVAL;
    int rc = power_begin(n);
    return rc ? rc : power_end(n, nor_program(n, off, buf, len));
}

int hal_board_recovery_requested(void) { return hal_fake_recovery; }

int hal_storage_wipe(void)
{
    hal_fake_storage_wipes++;
    return HAL_OK;
}

void hal_reset(void) { longjmp(hal_fake_reset_jmp, 1); }
