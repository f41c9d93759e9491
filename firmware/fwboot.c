/* fwboot.c — self-test and confirm; see fwboot.h. */
#include "fwboot.h"

#include <stdio.h>

#include "bootstate.h"
#include "hal_bootctl.h"
#include "hal_clock.h"
#include "hal_reset.h"
#include "log.h"

/* A failed confirm (a flash write) is tried again this much later; a trial
 * that still cannot confirm by its deadline resets, and so reverts now
 * rather than at some later, unrelated reset. */
#define CONFIRM_RETRY_MS 5000u

static struct {
    struct hal_boot_state boot;
    uint32_t started_ms;
    uint32_t retry_at_ms; /* a confirm failed: not before this */
    int retrying;
    uint32_t turns;
    enum fwboot_status status;
    char waiting[64];
} fb;

void fwboot_init(void)
{
    fb.status = FWBOOT_TESTING;
    fb.turns = 0;
    fb.retrying = 0;
    fb.started_ms = hal_clock_ms();
    fb.waiting[0] = '\0';
    if (hal_bootctl_state(&fb.boot) != 0)
        fb.boot.running = HAL_FLASH_SLOT_A;
}

static const char *missing(const struct fwboot_check *c)
{
    if (!c->db_open)
        return "the database to open";
    if (!c->netif_up)
        return "the network link";
    if (!c->smtp_listening)
        return "the SMTP listener";
    if (fb.turns < FWBOOT_TURNS)
        return "the event loop";
    return NULL;
}

/* Record the running image as confirmed; its counter becomes the stored
 * minimum. A confirmed image confirms again at every boot (a no-op on
 * flash unless the minimum rises). */
static void confirm(const char *how)
{
    int slot = fb.boot.running == HAL_FLASH_SLOT_B ? 1 : 0;
    struct bootstate st, next;
    if (bootstate_load(&st) != BOOTSTATE_LOADED) {
        /* The boot stage always leaves a record; without one, writing the
         * defaults would only make things up. */
        log_err("fw", "no boot state record to confirm slot %c in", bootstate_slot_letter(slot));
        fb.status = FWBOOT_FAILED;
        return;
    }
    next = st;
    if (bootstate_confirm(&next, slot, fb.boot.sec_cnt) != 0) {
        log_err("fw", "slot %c cannot confirm itself (the boot state names another slot)",
                bootstate_slot_letter(slot));
        fb.status = FWBOOT_FAILED;
        return;
    }
    int changed = next.active != st.active || next.trial != st.trial ||
                  next.image[slot] != st.image[slot] || next.min_sec_cnt != st.min_sec_cnt;
    if (changed && bootstate_store(&next) != 0) {
        log_err("fw", "slot %c: the boot state could not be written; not confirmed%s",
                bootstate_slot_letter(slot), fb.boot.trial ? " (trying again)" : "");
        if (fb.boot.trial) { /* the deadline still applies */
            fb.retrying = 1;
            fb.retry_at_ms = hal_clock_ms() + CONFIRM_RETRY_MS;
        } else {
            fb.status = FWBOOT_FAILED;
        }
        return;
    }
    fb.status = FWBOOT_CONFIRMED;
    if (fb.boot.trial)
        log_info("fw", "slot %c (%s) %s: confirmed", bootstate_slot_letter(slot),
                 fb.boot.version[0] ? fb.boot.version : "?", how);
}

/* The trial cannot pass: revert it now, with the reason in the boot state
 * (the RAM log dies with the reset), and reset into the confirmed slot. If
 * the record cannot be written, the boot stage still reverts the trial
 * that began and did not confirm, only with a vaguer reason. */
static void give_up(uint32_t elapsed, const char *why) __attribute__((noreturn));
static void give_up(uint32_t elapsed, const char *why)
{
    char note[BOOTSTATE_NOTE_MAX + 1];
    int slot = fb.boot.running == HAL_FLASH_SLOT_B ? 1 : 0;
    snprintf(note, sizeof note, "slot %c: failed its self-test (waited %lu s for %s)",
             bootstate_slot_letter(slot), (unsigned long)(elapsed / 1000), why);
    log_err("fw", "%s: resetting to revert", note);
    struct bootstate st;
    if (bootstate_load(&st) == BOOTSTATE_LOADED && st.trial == slot &&
        bootstate_revert(&st, note) == 0)
        (void)bootstate_store(&st);
    hal_reset();
}

uint32_t fwboot_poll(const struct fwboot_check *check)
{
    if (fb.status != FWBOOT_TESTING)
        return UINT32_MAX;
    fb.turns++;
    uint32_t now = hal_clock_ms();
    const char *why = missing(check);
    if (!why && fb.retrying && (int32_t)(now - fb.retry_at_ms) < 0)
        why = "the boot state to be written";
    if (!why) {
        fb.waiting[0] = '\0';
        confirm("passed its self-test");
        if (fb.status != FWBOOT_TESTING)
            return UINT32_MAX;
        why = "the boot state to be written";
    }
    snprintf(fb.waiting, sizeof fb.waiting, "%s", why);
    uint32_t elapsed = now - fb.started_ms;
    if (fb.boot.trial && elapsed >= FWBOOT_TRIAL_MS)
        give_up(elapsed, why);
    return fb.turns < FWBOOT_TURNS ? 0 : 100;
}

enum fwboot_status fwboot_status(void) { return fb.status; }

int fwboot_confirm_by_hand(void)
{
    if (fb.status != FWBOOT_CONFIRMED) {
        fb.status = FWBOOT_TESTING; /* a failed confirm may be tried again by hand */
        confirm("confirmed from the console");
    }
    return fb.status == FWBOOT_CONFIRMED ? 0 : -1;
}

int fwboot_report_reverts(uint32_t *seen)
{
    struct bootstate st;
    if (bootstate_load(&st) != BOOTSTATE_LOADED || st.reverts == *seen)
        return 0;
    if (st.reverts > *seen) /* below: a record rebuilt from scratch */
        log_warn("fw", "running slot %c after a revert: %s (%lu revert%s in all)",
                 fb.boot.running == HAL_FLASH_SLOT_B ? 'B' : 'A', st.note,
                 (unsigned long)st.reverts, st.reverts == 1 ? "" : "s");
    *seen = st.reverts;
    return 1;
}

const char *fwboot_waiting_for(void) { return fb.waiting; }
