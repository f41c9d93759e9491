/* fwupdate.c — the inactive slot from upload to "marked for test"; see
 * fwupdate.h. */
#include "fwupdate.h"

#include <stdio.h>
#include <string.h>

#include "bootstate.h"

static int fail(char *err, size_t errlen, const char *why)
{
    snprintf(err, errlen, "%s", why);
    return -1;
}

int fwupdate_begin(struct fwupdate *u, uint32_t size, char *err, size_t errlen)
{
    memset(u, 0, sizeof *u);
    struct bootstate st;
    if (bootstate_load(&st) != BOOTSTATE_LOADED)
        return fail(err, errlen, "the boot state cannot be read; nothing changed");
    if (st.trial != BOOTSTATE_NONE && st.trial_started)
        return fail(err, errlen, "confirm or revert the running trial first");
    u->slot = st.active ? 0 : 1;
    u->part = u->slot ? HAL_FLASH_SLOT_B : HAL_FLASH_SLOT_A;
    struct hal_flash_info info;
    if (hal_flash_info(u->part, &info) != 0 || info.write_block > FWUPDATE_BLOCK_MAX ||
        info.write_block == 0)
        return fail(err, errlen, "the inactive slot cannot be written");
    if (size == 0 || size > info.size) {
        snprintf(err, errlen, "image of %lu bytes does not fit the slot (%lu bytes)",
                 (unsigned long)size, (unsigned long)info.size);
        return -1;
    }
    /* Recorded empty before the first byte changes: a half-written slot is
     * never anything the boot stage would fall back to. */
    if (bootstate_writing(&st, u->slot) != 0 || bootstate_store(&st) != 0)
        return fail(err, errlen, "the boot state could not be written; nothing changed");
    u->size = size;
    u->slot_size = info.size;
    u->sector = info.sector_size;
    u->block = info.write_block;
    u->open = 1;
    return 0;
}

/* Program the whole write block at `off` (erasing its sector first). */
static int program_block(struct fwupdate *u, uint32_t off, const uint8_t *data)
{
    while (u->erased_to <= off) {
        if (hal_flash_erase(u->part, u->erased_to) != 0)
            return -1;
        u->erased_to += u->sector;
    }
    return hal_flash_program(u->part, off, data, u->block);
}

int fwupdate_write(struct fwupdate *u, uint32_t off, const uint8_t *data, size_t len, char *err,
                   size_t errlen)
{
    if (!u->open || off != u->next || len > u->size - u->next)
        return fail(err, errlen, "image data out of order or past its size");
    u->next += (uint32_t)len;
    while (len) {
        uint32_t take = u->block - u->pend_len;
        if (take > len)
            take = (uint32_t)len;
        memcpy(u->pend + u->pend_len, data, take);
        u->pend_len += take;
        data += take;
        len -= take;
        if (u->pend_len == u->block) {
            uint32_t at = u->next - (uint32_t)len - u->block;
            if (program_block(u, at, u->pend) != 0) {
                u->open = 0;
                return fail(err, errlen, "writing the slot failed (flash error)");
            }
            u->pend_len = 0;
        }
    }
    return 0;
}

static int read_slot(void *ctx, uint32_t off, void *buf, size_t len)
{
    const struct fwupdate *u = ctx;
    return hal_flash_read(u->part, off, buf, len) == 0 ? 0 : -1;
}

int fwupdate_finish(struct fwupdate *u, const struct imgverify_policy *policy, struct mcuimg *m,
                    char *err, size_t errlen)
{
    if (!u->open || u->next != u->size) {
        u->open = 0;
        return fail(err, errlen, "the image is incomplete (truncated transfer)");
    }
    u->open = 0;
    if (u->pend_len) { /* the last partial block, padded as erased flash */
        memset(u->pend + u->pend_len, 0xFF, u->block - u->pend_len);
        if (program_block(u, u->size - u->pend_len, u->pend) != 0)
            return fail(err, errlen, "writing the slot failed (flash error)");
    }
    /* Verified as the boot stage will: what is on flash, not what came in. */
    static uint8_t tlv[IMGVERIFY_TLV_BUF];
    char why[FWUPDATE_ERR_MAX];
    if (imgverify_check_read(read_slot, u, u->size, policy, m, tlv, why, sizeof why) != 0) {
        snprintf(err, errlen, "image refused: %s", why);
        return -1;
    }
    struct bootstate st;
    if (bootstate_load(&st) != BOOTSTATE_LOADED || bootstate_mark_test(&st, u->slot) != 0 ||
        bootstate_store(&st) != 0)
        return fail(err, errlen, "the boot state could not be written; the image is not marked");
    return 0;
}

void fwupdate_abort(struct fwupdate *u) { u->open = 0; }
