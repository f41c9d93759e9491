/* bootstate.c — the boot state record; see bootstate.h. */
#include "bootstate.h"

#include <stdio.h>
#include <string.h>

#include "nvrec.h"

/* Payload layout (nvrec adds magic, sequence and digest). */
#define P_ACTIVE 0
#define P_TRIAL 1
#define P_STARTED 2
#define P_IMAGE 3 /* one byte per slot */
#define P_MIN (P_IMAGE + BOOTSTATE_SLOTS)
#define P_REVERTS (P_MIN + 4)
#define P_NOTE (P_REVERTS + 4)
#define P_LEN (P_NOTE + BOOTSTATE_NOTE_MAX + 1)

static const struct nvrec_spec spec = {HAL_FLASH_BOOTCTL, {'S', 'H', 'R', 'B'}, 1, P_LEN};

static int valid_slot(int slot) { return slot >= 0 && slot < BOOTSTATE_SLOTS; }

void bootstate_default(struct bootstate *st)
{
    memset(st, 0, sizeof *st);
    st->active = 0;
    st->trial = BOOTSTATE_NONE;
}

/* A record that decodes to something impossible is treated as damaged. */
static int sane(const struct bootstate *st)
{
    if (!valid_slot(st->active) || (st->trial != BOOTSTATE_NONE && !valid_slot(st->trial)) ||
        st->trial == st->active || st->trial_started > 1)
        return 0;
    for (int i = 0; i < BOOTSTATE_SLOTS; i++)
        if (st->image[i] > BOOTSTATE_BAD)
            return 0;
    return 1;
}

enum bootstate_load_rc bootstate_load(struct bootstate *st)
{
    uint8_t flags, p[P_LEN];
    bootstate_default(st);
    enum nvrec_status got = nvrec_load(&spec, &flags, p);
    if (got != NVREC_OK)
        return got == NVREC_EMPTY ? BOOTSTATE_UNWRITTEN : BOOTSTATE_DAMAGED;
    struct bootstate s;
    s.active = p[P_ACTIVE];
    s.trial = p[P_TRIAL];
    s.trial_started = p[P_STARTED];
    memcpy(s.image, p + P_IMAGE, BOOTSTATE_SLOTS);
    s.min_sec_cnt = nvrec_get32(p + P_MIN);
    s.reverts = nvrec_get32(p + P_REVERTS);
    memcpy(s.note, p + P_NOTE, sizeof s.note);
    s.note[BOOTSTATE_NOTE_MAX] = '\0';
    if (!sane(&s))
        return BOOTSTATE_DAMAGED;
    *st = s;
    return BOOTSTATE_LOADED;
}

int bootstate_store(const struct bootstate *st)
{
    if (!sane(st))
        return -1;
    uint8_t p[P_LEN];
    memset(p, 0, sizeof p);
    p[P_ACTIVE] = st->active;
    p[P_TRIAL] = st->trial;
    p[P_STARTED] = st->trial_started;
    memcpy(p + P_IMAGE, st->image, BOOTSTATE_SLOTS);
    nvrec_put32(p + P_MIN, st->min_sec_cnt);
    nvrec_put32(p + P_REVERTS, st->reverts);
    memcpy(p + P_NOTE, st->note, strnlen(st->note, BOOTSTATE_NOTE_MAX));
    return nvrec_store(&spec, 0, p);
}

static void set_note(struct bootstate *st, const char *why)
{
    snprintf(st->note, sizeof st->note, "%s", why ? why : "");
}

int bootstate_programmed(struct bootstate *st, int slot)
{
    if (!valid_slot(slot))
        return -1;
    st->active = (uint8_t)slot;
    st->image[slot] = BOOTSTATE_CONFIRMED;
    st->trial = BOOTSTATE_NONE;
    st->trial_started = 0;
    st->min_sec_cnt = 0;
    return 0;
}

int bootstate_writing(struct bootstate *st, int slot)
{
    if (!valid_slot(slot) || slot == st->active)
        return -1; /* never overwrite what runs when no trial is due */
    st->image[slot] = BOOTSTATE_EMPTY;
    if (st->trial == slot) {
        st->trial = BOOTSTATE_NONE;
        st->trial_started = 0;
    }
    return 0;
}

int bootstate_mark_test(struct bootstate *st, int slot)
{
    if (!valid_slot(slot) || slot == st->active || st->image[slot] != BOOTSTATE_EMPTY)
        return -1; /* only a freshly written inactive slot */
    st->image[slot] = BOOTSTATE_TEST;
    st->trial = (uint8_t)slot;
    st->trial_started = 0;
    return 0;
}

int bootstate_trial_begin(struct bootstate *st)
{
    if (st->trial == BOOTSTATE_NONE || st->trial_started)
        return -1;
    st->trial_started = 1;
    return 0;
}

int bootstate_confirm(struct bootstate *st, int slot, uint32_t sec_cnt)
{
    if (!valid_slot(slot))
        return -1;
    if (st->trial == slot && st->trial_started) {
        st->active = (uint8_t)slot;
        st->trial = BOOTSTATE_NONE;
        st->trial_started = 0;
    } else if (slot != st->active || st->trial_started) {
        return -1; /* only what runs can confirm itself */
    }
    st->image[slot] = BOOTSTATE_CONFIRMED;
    if (sec_cnt > st->min_sec_cnt)
        st->min_sec_cnt = sec_cnt;
    return 0;
}

int bootstate_revert(struct bootstate *st, const char *why)
{
    if (st->trial == BOOTSTATE_NONE)
        return -1;
    st->image[st->trial] = BOOTSTATE_BAD;
    st->trial = BOOTSTATE_NONE;
    st->trial_started = 0;
    st->reverts++;
    set_note(st, why);
    return 0;
}

int bootstate_refused(struct bootstate *st, int slot, const char *why)
{
    if (!valid_slot(slot))
        return -1;
    st->image[slot] = BOOTSTATE_BAD;
    if (st->trial == slot) {
        st->trial = BOOTSTATE_NONE;
        st->trial_started = 0;
    }
    set_note(st, why);
    return 0;
}

int bootstate_switch_active(struct bootstate *st, int slot, const char *why)
{
    if (!valid_slot(slot) || st->image[slot] != BOOTSTATE_CONFIRMED)
        return -1;
    st->active = (uint8_t)slot;
    if (st->trial == slot) {
        st->trial = BOOTSTATE_NONE;
        st->trial_started = 0;
    }
    set_note(st, why);
    return 0;
}

const char *bootstate_image_name(enum bootstate_image image)
{
    switch (image) {
    case BOOTSTATE_EMPTY: return "empty";
    case BOOTSTATE_TEST: return "test";
    case BOOTSTATE_CONFIRMED: return "confirmed";
    case BOOTSTATE_BAD: return "bad";
    }
    return "?";
}

char bootstate_slot_letter(int slot) { return slot == 1 ? 'B' : 'A'; }
