/* flashhal.c — hal_flash over flashparts; see flashhal.h. */
#include "flashhal.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "devproto.h"
#include "hal_err.h"
#include "hal_flash.h"

static struct flashparts *attached;
static long cut_after = -1; /* flash operations left before the power fails */

void flashhal_cut_from_env(void)
{
    const char *v = getenv(DEV_ENV_FLASH_CUT);
    char *end;
    long n = v && *v ? strtol(v, &end, 10) : -1;
    cut_after = (v && *v && !*end && n >= 0) ? n : -1;
}

void flashhal_cut_to_env(void)
{
    if (cut_after < 0) {
        unsetenv(DEV_ENV_FLASH_CUT);
        return;
    }
    char n[24];
    snprintf(n, sizeof n, "%ld", cut_after);
    setenv(DEV_ENV_FLASH_CUT, n, 1);
}

/* Count one erase or program; at the cut, leave it half done and die. */
static void before_op(struct nor *n)
{
    if (cut_after < 0)
        return;
    if (cut_after-- == 0)
        n->fault_countdown = 0; /* nor.c does half of it and powers off */
}

static int after_op(struct nor *n, int rc)
{
    if (n->powered_off)
        _exit(DEV_EXIT_POWER_CUT);
    return rc;
}

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
    if (!n)
        return HAL_EINVAL;
    before_op(n);
    return after_op(n, nor_erase(n, off));
}

int hal_flash_program(enum hal_flash_part p, uint32_t off, const void *buf, size_t len)
{
    struct nor *n = part(p);
    if (!n)
        return HAL_EINVAL;
    before_op(n);
    return after_op(n, nor_program(n, off, buf, len));
}
