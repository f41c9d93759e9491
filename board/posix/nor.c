/* nor.c — NOR flash model; see nor.h. */
#include "nor.h"

#include <string.h>

#include "hal_err.h"

static int is_pow2(uint32_t v) { return v != 0 && (v & (v - 1)) == 0; }

static int in_range(const struct nor *nor, uint32_t off, size_t len)
{
    return off <= nor->size && len <= (size_t)(nor->size - off);
}

size_t nor_bitmap_size(uint32_t size, uint32_t write_block)
{
    if (write_block == 0)
        return 0;
    return ((size_t)(size / write_block) + 7) / 8;
}

int nor_init(struct nor *nor, uint8_t *mem, uint32_t size, uint32_t sector_size,
             uint32_t write_block, uint8_t *programmed)
{
    if (!mem || !is_pow2(write_block) || sector_size == 0 ||
        sector_size % write_block != 0 || size == 0 || size % sector_size != 0)
        return HAL_EINVAL;
    nor->mem = mem;
    nor->size = size;
    nor->sector_size = sector_size;
    nor->write_block = write_block;
    nor->programmed = programmed;
    nor->fault_countdown = -1;
    nor->powered_off = 0;
    if (programmed)
        memset(programmed, 0, nor_bitmap_size(size, write_block));
    return HAL_OK;
}

int nor_read(const struct nor *nor, uint32_t off, void *buf, size_t len)
{
    if (!in_range(nor, off, len))
        return HAL_EINVAL;
    memcpy(buf, nor->mem + off, len);
    return HAL_OK;
}

/* Counts one erase/program against the fault countdown. Returns 1 when this
 * operation is the one the power cut interrupts. */
static int power_cut_now(struct nor *nor)
{
    if (nor->fault_countdown < 0)
        return 0;
    if (nor->fault_countdown == 0) {
        nor->powered_off = 1;
        return 1;
    }
    nor->fault_countdown--;
    return 0;
}

static void mark_blocks(struct nor *nor, uint32_t off, size_t len, int set)
{
    if (!nor->programmed)
        return;
    for (uint32_t b = off / nor->write_block; b < (off + len) / nor->write_block; b++) {
        if (set)
            nor->programmed[b / 8] |= (uint8_t)(1u << (b % 8));
        else
            nor->programmed[b / 8] &= (uint8_t)~(1u << (b % 8));
    }
}

int nor_erase(struct nor *nor, uint32_t off)
{
    if (nor->powered_off)
        return HAL_EPOWER;
    if (off % nor->sector_size != 0 || !in_range(nor, off, nor->sector_size))
        return HAL_EINVAL;
    if (power_cut_now(nor)) {
        /* An interrupted erase leaves the sector partly erased. */
        memset(nor->mem + off, 0xFF, nor->sector_size / 2);
        return HAL_EPOWER;
    }
    memset(nor->mem + off, 0xFF, nor->sector_size);
    mark_blocks(nor, off, nor->sector_size, 0);
    return HAL_OK;
}

static int block_programmed(const struct nor *nor, uint32_t off, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (nor->mem[off + i] != 0xFF)
            return 1;
    if (nor->programmed)
        for (uint32_t b = off / nor->write_block; b < (off + len) / nor->write_block; b++)
            if (nor->programmed[b / 8] & (1u << (b % 8)))
                return 1;
    return 0;
}

int nor_program(struct nor *nor, uint32_t off, const void *buf, size_t len)
{
    if (nor->powered_off)
        return HAL_EPOWER;
    if (off % nor->write_block != 0 || len % nor->write_block != 0 || !in_range(nor, off, len))
        return HAL_EINVAL;
    if (block_programmed(nor, off, len))
        return HAL_ENOTERASED;
    if (power_cut_now(nor)) {
        /* An interrupted program leaves the first part written. */
        memcpy(nor->mem + off, buf, len / 2);
        return HAL_EPOWER;
    }
    /* NOR programming only clears bits: AND models the physics, and the
     * erased check above means the result equals buf. */
    const uint8_t *src = buf;
    for (size_t i = 0; i < len; i++)
        nor->mem[off + i] &= src[i];
    mark_blocks(nor, off, len, 1);
    return HAL_OK;
}
