/* slotimg.c — slot image header; see slotimg.h. */
#include "slotimg.h"

#include <mbedtls/sha256.h>
#include <string.h>

#include "hal_err.h"

static const uint8_t magic[4] = {'S', 'H', 'R', 'I'};

static void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static void make_header(uint8_t hdr[SLOTIMG_HDR_LEN], const uint8_t *img, size_t len)
{
    memset(hdr, 0, SLOTIMG_HDR_LEN);
    memcpy(hdr, magic, sizeof magic);
    put_le32(hdr + 4, SLOTIMG_HDR_LEN);
    put_le32(hdr + 8, (uint32_t)len);
    mbedtls_sha256_ret(img, len, hdr + 16, 0);
}

int slotimg_install(struct nor *slot, const uint8_t *img, size_t len)
{
    if (len > slot->size - SLOTIMG_HDR_LEN)
        return HAL_EINVAL;
    uint8_t hdr[SLOTIMG_HDR_LEN];
    make_header(hdr, img, len);
    uint32_t off, cur_len;
    if (slotimg_check(slot, &off, &cur_len) == 0 && memcmp(slot->mem, hdr, sizeof hdr) == 0)
        return 0;
    size_t total = SLOTIMG_HDR_LEN + len;
    for (uint32_t s = 0; s < total; s += slot->sector_size) {
        int rc = nor_erase(slot, s);
        if (rc)
            return rc;
    }
    /* Image first, header last: a cut in between leaves no valid header, so
     * the boot stage never runs a half-written image. */
    size_t whole = len - len % slot->write_block;
    int rc = whole ? nor_program(slot, SLOTIMG_HDR_LEN, img, whole) : HAL_OK;
    if (rc == HAL_OK && whole < len) {
        uint8_t tail[64];
        memset(tail, 0xFF, sizeof tail);
        memcpy(tail, img + whole, len - whole);
        rc = nor_program(slot, SLOTIMG_HDR_LEN + (uint32_t)whole, tail, slot->write_block);
    }
    if (rc == HAL_OK)
        rc = nor_program(slot, 0, hdr, sizeof hdr);
    return rc == HAL_OK ? 1 : rc;
}

int slotimg_check(const struct nor *slot, uint32_t *img_off, uint32_t *img_len)
{
    const uint8_t *hdr = slot->mem;
    if (memcmp(hdr, magic, sizeof magic) != 0 || get_le32(hdr + 4) != SLOTIMG_HDR_LEN)
        return -1;
    uint32_t len = get_le32(hdr + 8);
    if (len == 0 || len > slot->size - SLOTIMG_HDR_LEN)
        return -1;
    uint8_t digest[32];
    mbedtls_sha256_ret(slot->mem + SLOTIMG_HDR_LEN, len, digest, 0);
    if (memcmp(digest, hdr + 16, sizeof digest) != 0)
        return -1;
    *img_off = SLOTIMG_HDR_LEN;
    *img_len = len;
    return 0;
}
