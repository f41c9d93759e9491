/* fwboot.c — self-test and confirm; see fwboot.h. */
#include "fwboot.h"

#include <stdio.h>

#include "bootstate.h"
#include "hal_bootctl.h"
#include "hal_clock.h"
#include "hal_reset.h"
#include "log.h"

static struct {
    struct hal_boot_state boot;
    uint32_t started_ms;
    uint32_t turns;
    enum fwboot_status status;
    char waiting[64];
} fb;

void fwboot_init(void)
{
    fb.status = FWBOOT_TESTING;
    fb.turns = 0;
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
static void confirm(void)
{
    int slot = fb.boot.running == HAL_FLASH_SLOT_B ? 1 : 0;
    struct bootstate st, next;
    bootstate_load(&st);
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
        log_err("fw", "slot %c: the boot state could not be written; not confirmed",
                bootstate_slot_letter(slot));
        fb.status = FWBOOT_FAILED;
        return;
    }
    fb.status = FWBOOT_CONFIRMED;
    if (fb.boot.trial)
        log_info("fw", "slot %c (%s) passed its self-test: confirmed", bootstate_slot_letter(slot),
                 fb.boot.version[0] ? fb.boot.version : "?");
}

uint32_t fwboot_poll(const struct fwboot_check *check)
{
    if (fb.status != FWBOOT_TESTING)
        return UINT32_MAX;
    fb.turns++;
    const char *why = missing(check);
    if (!why) {
        fb.waiting[0] = '\0';
        confirm();
        return UINT32_MAX;
    }
    snprintf(fb.waiting, sizeof fb.waiting, "%s", why);
    uint32_t elapsed = hal_clock_ms() - fb.started_ms;
    if (fb.boot.trial && elapsed >= FWBOOT_TRIAL_MS) {
        log_err("fw", "trial image failed its self-test (waited %lu s for %s): resetting "
                      "to revert", (unsigned long)(elapsed / 1000), why);
        hal_reset();
    }
    return fb.turns < FWBOOT_TURNS ? 0 : 100;
}

enum fwboot_status fwboot_status(void) { return fb.status; }

const char *fwboot_waiting_for(void) { return fb.waiting; }
