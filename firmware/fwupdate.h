/* fwupdate.h — writing an uploaded image into the inactive slot, then
 * verifying it whole and marking it for one test boot.
 *
 * Portable over hal_flash and the boot state (bootstate.h); the console's
 * `fw update` feeds it from the YMODEM receiver (ymodem.h). The order is
 * what makes every power cut safe: the slot is first recorded as empty
 * (so a half-written image is never a fallback), then erased a sector
 * ahead of the data and programmed in write blocks, then read back and
 * verified as the boot stage would (imgverify_check_read), and only then
 * marked for test. Anything that fails leaves the slot recorded empty and
 * nothing else changed. Memory: this struct; the image is never in RAM. */
#ifndef FWUPDATE_H
#define FWUPDATE_H

#include <stddef.h>
#include <stdint.h>

#include "hal_flash.h"
#include "imgverify.h"

#define FWUPDATE_ERR_MAX 160
#define FWUPDATE_BLOCK_MAX 64 /* largest write block handled */

struct fwupdate {
    int slot;                 /* 0 = A, 1 = B: the inactive one */
    enum hal_flash_part part;
    uint32_t size;            /* bytes the image has (from the transfer) */
    uint32_t slot_size, sector, block;
    uint32_t erased_to;       /* [0, erased_to) erased */
    uint32_t next;            /* offset the next data must start at */
    uint8_t pend[FWUPDATE_BLOCK_MAX]; /* data of the write block not yet programmed */
    uint32_t pend_len;
    int open;
};

/* Start an update of `size` bytes. Refused while the running image is an
 * unconfirmed trial (the other slot then holds the only confirmed image),
 * or when it does not fit the slot. Returns 0, or -1 with `err`. */
int fwupdate_begin(struct fwupdate *u, uint32_t size, char *err, size_t errlen);
/* The next `len` bytes, at `off` (in order, no gaps). 0 or -1 with err. */
int fwupdate_write(struct fwupdate *u, uint32_t off, const uint8_t *data, size_t len, char *err,
                   size_t errlen);
/* All bytes are in: program the tail, verify the slot with `policy` (its
 * minimum counter: the higher of the stored one and the running image's),
 * and mark it for a test boot. 0 with the image in *m, or -1 with err. */
int fwupdate_finish(struct fwupdate *u, const struct imgverify_policy *policy, struct mcuimg *m,
                    char *err, size_t errlen);
/* Give up (transfer cancelled): the slot stays recorded empty. */
void fwupdate_abort(struct fwupdate *u);

#endif
