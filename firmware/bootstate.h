/* bootstate.h — which firmware slot runs: the boot state record and its
 * transitions.
 *
 * The record (in the boot-control flash partition, via nvrec: every write
 * is a whole new copy, so a power cut leaves the old one or the new one)
 * names the active slot explicitly — never "the highest version" — and,
 * during an update, the slot marked for one test boot. Per slot it says
 * whether it holds a confirmed image, one marked for test, a bad one, or
 * nothing. The transitions are pure functions on the struct (a table of
 * (state, event) -> state in the tests); bootflow.h applies them at boot. */
#ifndef BOOTSTATE_H
#define BOOTSTATE_H

#include <stdint.h>

#define BOOTSTATE_SLOTS 2
#define BOOTSTATE_NONE 0xFF /* no slot */
#define BOOTSTATE_NOTE_MAX 95

enum bootstate_image {
    BOOTSTATE_EMPTY = 0,     /* nothing usable (erased, or being written) */
    BOOTSTATE_TEST = 1,      /* written and marked for one test boot */
    BOOTSTATE_CONFIRMED = 2, /* ran and confirmed itself */
    BOOTSTATE_BAD = 3,       /* failed verification, or its trial reset before confirming */
};

struct bootstate {
    uint8_t active;        /* slot started when no trial is due (0 = A, 1 = B) */
    uint8_t trial;         /* slot marked for a test boot, or BOOTSTATE_NONE */
    uint8_t trial_started; /* the test boot began: a reset before confirming reverts */
    uint8_t image[BOOTSTATE_SLOTS];
    uint32_t min_sec_cnt;  /* no image with a lower security counter is started */
    uint32_t reverts;      /* trials that ended in a revert, ever */
    char note[BOOTSTATE_NOTE_MAX + 1]; /* why the last revert or refusal happened */
};

/* A device never programmed: slot A active, nothing known about either. */
void bootstate_default(struct bootstate *st);
enum bootstate_load_rc {
    BOOTSTATE_LOADED = 0,
    BOOTSTATE_UNWRITTEN = 1, /* never written: a device never programmed */
    BOOTSTATE_DAMAGED = -1,  /* written, but no copy intact (or impossible values) */
};
/* Read the record; without one, *st is the default (the boot stage then
 * goes by what verifies: bootflow.h). */
enum bootstate_load_rc bootstate_load(struct bootstate *st);
/* Write the record; 0 or -1 (the previous record stays). */
int bootstate_store(const struct bootstate *st);

/* --- transitions; each returns 0, or -1 leaving *st unchanged --- */

/* The factory programmer wrote `slot`: it is active and confirmed, no
 * trial, and the stored minimum security counter starts again at 0 (the
 * programmer's privilege, not the firmware's). */
int bootstate_programmed(struct bootstate *st, int slot);
/* An image is about to be written into `slot` (not the active one): it
 * holds nothing usable until marked for test. */
int bootstate_writing(struct bootstate *st, int slot);
/* The image written into `slot` runs once as a trial at the next boot. */
int bootstate_mark_test(struct bootstate *st, int slot);
/* The boot stage starts the trial now (stored before it starts). */
int bootstate_trial_begin(struct bootstate *st);
/* The running firmware in `slot` passed its self-test, its security
 * counter is `sec_cnt`: a trial becomes the active confirmed slot, and the
 * counter becomes the stored minimum. */
int bootstate_confirm(struct bootstate *st, int slot, uint32_t sec_cnt);
/* The trial did not confirm (the device reset during it): the trial slot
 * is bad, the active slot runs again; `why` is kept for the firmware. */
int bootstate_revert(struct bootstate *st, const char *why);
/* `slot` failed verification: never started, `why` kept. */
int bootstate_refused(struct bootstate *st, int slot, const char *why);
/* The active slot cannot run but `slot` (confirmed, verified) can. */
int bootstate_switch_active(struct bootstate *st, int slot, const char *why);

const char *bootstate_image_name(enum bootstate_image image);
/* 'A' or 'B' */
char bootstate_slot_letter(int slot);

#endif
