/* slotimg.h — how a firmware image sits in a flash slot.
 *
 * A 64-byte header, then the image (on the posix board: the firmware ELF):
 *   0  magic "SHRI"
 *   4  u32 LE header length (64)
 *   8  u32 LE image length
 *  12  u32 LE reserved, 0
 *  16  SHA-256 of the image
 *  48  16 bytes reserved, 0
 * The digest lets the boot stage refuse a torn or corrupt slot, and lets the
 * board skip rewriting a slot that already holds the same build. Signed
 * images (update issue) extend this with a TLV area after the image. */
#ifndef SLOTIMG_H
#define SLOTIMG_H

#include <stddef.h>
#include <stdint.h>

#include "nor.h"

#define SLOTIMG_HDR_LEN 64u

/* Write `img` into `slot` unless the slot already holds it. Returns 1 when
 * written, 0 when unchanged, a HAL error when flash fails or it does not fit. */
int slotimg_install(struct nor *slot, const uint8_t *img, size_t len);
/* Check the slot's header and digest; on success sets the image's offset
 * and length within the slot and returns 0, else -1. */
int slotimg_check(const struct nor *slot, uint32_t *img_off, uint32_t *img_len);

#endif
