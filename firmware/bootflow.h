/* bootflow.h — the boot stage's decision: which slot starts, and whether
 * as a trial.
 *
 * Portable: the board supplies `verify`, which checks a slot's image
 * (imgverify.h) on a private copy it keeps, so what was checked is what it
 * then starts. The decision follows the boot state (bootstate.h) and
 * stores every change before the slot starts:
 *   - a trial that already began and did not confirm is reverted (the
 *     trial slot becomes bad, the reason is kept for the firmware);
 *   - a slot marked for test is verified, recorded as started, and run;
 *   - otherwise the active slot is verified and run; if it fails, the
 *     other slot runs only when it holds a confirmed image that verifies
 *     with a counter not below the stored minimum;
 *   - a slot that fails verification is never started; when no slot can
 *     run, the caller says why on the console and waits. */
#ifndef BOOTFLOW_H
#define BOOTFLOW_H

#include <stddef.h>
#include <stdint.h>

#include "bootstate.h"

#define BOOTFLOW_WHY_MAX 256

struct bootflow_ops {
    /* Check `slot`'s image; 0 with its security counter, or -1 with why.
     * The board keeps each slot's last checked copy: the slot chosen is
     * started from that copy, never read again. */
    int (*verify)(void *ctx, int slot, uint32_t min_sec_cnt, uint32_t *sec_cnt, char *err,
                  size_t errlen);
    void *ctx;
    /* How the last run ended, as the board's reset cause tells it ("the
     * watchdog reset it"), or NULL: a trial that did not confirm is
     * reverted with this in its note, kept for `fw status` because the
     * failed image's own log died with it. */
    const char *last_reset;
};

struct bootflow_choice {
    int slot;  /* 0 = A, 1 = B */
    int trial; /* 1: started once as a trial; the firmware must confirm it */
};

/* Decide, updating the boot state record. Returns 0 with the choice, or
 * -1 with every slot's reason in `why` (nothing can start). `st` holds the
 * state as stored afterwards. */
int bootflow_choose(const struct bootflow_ops *ops, struct bootstate *st,
                    struct bootflow_choice *out, char *why, size_t whylen);

#endif
