/* bootflow.c — the boot decision; see bootflow.h. */
#include "bootflow.h"

#include <stdio.h>
#include <string.h>

static int other(int slot) { return slot ? 0 : 1; }

/* Verify `slot`; on failure its reason goes into `note` ("slot A: ..."). */
static int check(const struct bootflow_ops *ops, const struct bootstate *st, int slot,
                 uint32_t *sec_cnt, char *note, size_t cap)
{
    char err[BOOTSTATE_NOTE_MAX - 16]; /* room for "slot A refused: " in the note */
    if (ops->verify(ops->ctx, slot, st->min_sec_cnt, sec_cnt, err, sizeof err) == 0)
        return 0;
    snprintf(note, cap, "slot %c refused: %s", bootstate_slot_letter(slot), err);
    return -1;
}

/* A trial is due: revert one that began (when the active slot can run:
 * otherwise the trial is the only image left and runs again), or verify
 * and begin it. Returns 1 when the trial slot is to start, 0 to go on with
 * the active slot. */
static int trial(const struct bootflow_ops *ops, struct bootstate *st)
{
    char note[BOOTSTATE_NOTE_MAX + 1];
    int slot = st->trial;
    uint32_t sec_cnt;
    if (st->trial_started) {
        if (check(ops, st, st->active, &sec_cnt, note, sizeof note) != 0)
            return check(ops, st, slot, &sec_cnt, note, sizeof note) == 0;
        if (ops->last_reset)
            snprintf(note, sizeof note, "slot %c: its trial boot ended before it confirmed "
                     "itself (%s)", bootstate_slot_letter(slot), ops->last_reset);
        else
            snprintf(note, sizeof note, "slot %c: its trial boot reset before it confirmed "
                     "itself", bootstate_slot_letter(slot));
        bootstate_revert(st, note);
        bootstate_store(st); /* if this fails the next boot reverts again */
        return 0;
    }
    if (check(ops, st, slot, &sec_cnt, note, sizeof note) != 0) {
        bootstate_refused(st, slot, note);
        bootstate_store(st);
        return 0;
    }
    /* Recorded before it starts: a reset during the trial must revert. */
    struct bootstate next = *st;
    if (bootstate_trial_begin(&next) != 0 || bootstate_store(&next) != 0)
        return 0; /* cannot record it: keep running what is confirmed */
    *st = next;
    return 1;
}

/* No record to go by (never programmed, or no copy intact): of the images
 * that verify, the one with the highest security counter runs, and its
 * counter becomes the minimum — a damaged record must not reopen the door
 * to an older image. */
static int unrecorded(const struct bootflow_ops *ops, struct bootstate *st,
                      struct bootflow_choice *out, char *why, size_t whylen)
{
    char notes[BOOTSTATE_SLOTS][BOOTSTATE_NOTE_MAX + 1] = {"", ""};
    uint32_t cnt[BOOTSTATE_SLOTS];
    int best = -1;
    bootstate_default(st);
    for (int slot = 0; slot < BOOTSTATE_SLOTS; slot++)
        if (check(ops, st, slot, &cnt[slot], notes[slot], sizeof notes[slot]) == 0 &&
            (best < 0 || cnt[slot] > cnt[best]))
            best = slot;
    if (best < 0) {
        snprintf(why, whylen, "no slot holds an image that may run: %s; %s", notes[0], notes[1]);
        return -1;
    }
    bootstate_programmed(st, best);
    st->min_sec_cnt = cnt[best];
    snprintf(st->note, sizeof st->note, "boot state rebuilt: slot %c (highest security counter)",
             bootstate_slot_letter(best));
    bootstate_store(st);
    out->slot = best;
    out->trial = 0;
    return 0;
}

int bootflow_choose(const struct bootflow_ops *ops, struct bootstate *st,
                    struct bootflow_choice *out, char *why, size_t whylen)
{
    if (bootstate_load(st) != BOOTSTATE_LOADED)
        return unrecorded(ops, st, out, why, whylen);
    if (st->trial != BOOTSTATE_NONE && trial(ops, st)) {
        out->slot = st->trial;
        out->trial = 1;
        return 0;
    }
    char notes[BOOTSTATE_SLOTS][BOOTSTATE_NOTE_MAX + 1] = {"", ""};
    int first = st->active;
    for (int i = 0; i < BOOTSTATE_SLOTS; i++) {
        int slot = i == 0 ? first : other(first);
        if (slot != st->active && st->image[slot] != BOOTSTATE_CONFIRMED) {
            snprintf(notes[slot], sizeof notes[slot], "slot %c: %s, not a confirmed image",
                     bootstate_slot_letter(slot),
                     bootstate_image_name((enum bootstate_image)st->image[slot]));
            continue;
        }
        uint32_t sec_cnt;
        if (check(ops, st, slot, &sec_cnt, notes[slot], sizeof notes[slot]) != 0)
            continue;
        if (slot != st->active) {
            struct bootstate next = *st;
            bootstate_switch_active(&next, slot, notes[other(slot)]);
            if (bootstate_store(&next) == 0)
                *st = next;
        }
        out->slot = slot;
        out->trial = 0;
        return 0;
    }
    snprintf(why, whylen, "no slot holds an image that may run: %s; %s", notes[first],
             notes[other(first)]);
    return -1;
}
