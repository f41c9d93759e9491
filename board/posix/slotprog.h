/* slotprog.h — the board writing a firmware image into a flash slot, as a
 * factory programmer (or debug probe) does: `tools/sim` flashes each build
 * into slot A this way. The image is a signed MCUboot image (fwsign); the
 * boot stage checks it at every boot, so the programmer only has to make a
 * torn write look like no image: the first write block, which holds the
 * header's magic, is programmed last. */
#ifndef SLOTPROG_H
#define SLOTPROG_H

#include <stddef.h>
#include <stdint.h>

#include "nor.h"

/* Write `img` into `slot` unless the slot already starts with exactly it.
 * Returns 1 when written, 0 when unchanged, a HAL error when flash fails
 * or the image does not fit. */
int slotprog_write(struct nor *slot, const uint8_t *img, size_t len);

#endif
