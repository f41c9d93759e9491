/* The boot state machine (bootstate.c) as a table of (state, event) ->
 * state; the boot decision (bootflow.c) with scripted slot checks; and a
 * power cut at every flash erase and program of an update (write the
 * image into the inactive slot, mark it for test, the trial boot, confirm)
 * and of a revert, on the NOR model with real signed images: after every
 * cut the device boots a verified image, and finishing the job afterwards
 * ends on the intended one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "bootflow.h"
#include "bootstate.h"
#include "fwupdate.h"
#include "hal_err.h"
#include "hal_fake_flash.h"
#include "hal_flash.h"
#include "imgverify.h"
#include "testimg.h"

#define A 0
#define B 1
#define N BOOTSTATE_NONE
#define E BOOTSTATE_EMPTY
#define T BOOTSTATE_TEST
#define C BOOTSTATE_CONFIRMED
#define X BOOTSTATE_BAD

/* --- the transition table --- */

struct st {
    uint8_t active, trial, started, img_a, img_b;
    uint32_t min;
};

enum event { PROGRAMMED, WRITING, MARK_TEST, TRIAL_BEGIN, CONFIRM, REVERT, REFUSED, SWITCH };

static const struct row {
    const char *what;
    struct st from;
    enum event ev;
    int slot;
    uint32_t cnt;
    int rc;
    struct st to; /* ignored when rc is -1: the state must not change */
} table[] = {
    {"programmer writes B", {A, N, 0, C, C, 5}, PROGRAMMED, B, 0, 0, {B, N, 0, C, C, 0}},
    {"programmer over a trial", {A, B, 1, C, T, 5}, PROGRAMMED, A, 0, 0, {A, N, 0, C, T, 0}},
    {"write the inactive slot", {A, N, 0, C, C, 3}, WRITING, B, 0, 0, {A, N, 0, C, E, 3}},
    {"never the active one", {A, N, 0, C, C, 3}, WRITING, A, 0, -1, {0}},
    {"rewrite a pending trial", {A, B, 0, C, T, 3}, WRITING, B, 0, 0, {A, N, 0, C, E, 3}},
    {"mark the written slot", {A, N, 0, C, E, 3}, MARK_TEST, B, 0, 0, {A, B, 0, C, T, 3}},
    {"mark needs a fresh write", {A, N, 0, C, C, 3}, MARK_TEST, B, 0, -1, {0}},
    {"mark a bad slot", {A, N, 0, C, X, 3}, MARK_TEST, B, 0, -1, {0}},
    {"mark the active slot", {A, N, 0, E, E, 3}, MARK_TEST, A, 0, -1, {0}},
    {"trial begins", {A, B, 0, C, T, 3}, TRIAL_BEGIN, 0, 0, 0, {A, B, 1, C, T, 3}},
    {"no trial to begin", {A, N, 0, C, C, 3}, TRIAL_BEGIN, 0, 0, -1, {0}},
    {"trial begins once", {A, B, 1, C, T, 3}, TRIAL_BEGIN, 0, 0, -1, {0}},
    {"trial confirms", {A, B, 1, C, T, 3}, CONFIRM, B, 7, 0, {B, N, 0, C, C, 7}},
    {"confirm before the trial ran", {A, B, 0, C, T, 3}, CONFIRM, B, 7, -1, {0}},
    {"active confirms again", {A, N, 0, C, E, 3}, CONFIRM, A, 2, 0, {A, N, 0, C, E, 3}},
    {"active raises the minimum", {A, N, 0, C, E, 3}, CONFIRM, A, 4, 0, {A, N, 0, C, E, 4}},
    {"not the active during a trial", {A, B, 1, C, T, 3}, CONFIRM, A, 3, -1, {0}},
    {"a slot that does not run", {A, N, 0, C, C, 3}, CONFIRM, B, 3, -1, {0}},
    {"revert a trial", {A, B, 1, C, T, 3}, REVERT, 0, 0, 0, {A, N, 0, C, X, 3}},
    {"nothing to revert", {A, N, 0, C, C, 3}, REVERT, 0, 0, -1, {0}},
    {"refuse the trial slot", {A, B, 0, C, T, 3}, REFUSED, B, 0, 0, {A, N, 0, C, X, 3}},
    {"refuse the active slot", {A, N, 0, C, C, 3}, REFUSED, A, 0, 0, {A, N, 0, X, C, 3}},
    {"switch to the confirmed other", {A, N, 0, X, C, 3}, SWITCH, B, 0, 0, {B, N, 0, X, C, 3}},
    {"never to an unconfirmed one", {A, B, 0, X, T, 3}, SWITCH, B, 0, -1, {0}},
};

static void to_state(const struct st *s, struct bootstate *out)
{
    bootstate_default(out);
    out->active = s->active;
    out->trial = s->trial;
    out->trial_started = s->started;
    out->image[A] = s->img_a;
    out->image[B] = s->img_b;
    out->min_sec_cnt = s->min;
}

static int apply(struct bootstate *st, enum event ev, int slot, uint32_t cnt)
{
    switch (ev) {
    case PROGRAMMED: return bootstate_programmed(st, slot);
    case WRITING: return bootstate_writing(st, slot);
    case MARK_TEST: return bootstate_mark_test(st, slot);
    case TRIAL_BEGIN: return bootstate_trial_begin(st);
    case CONFIRM: return bootstate_confirm(st, slot, cnt);
    case REVERT: return bootstate_revert(st, "why");
    case REFUSED: return bootstate_refused(st, slot, "why");
    case SWITCH: return bootstate_switch_active(st, slot, "why");
    }
    return -2;
}

static void test_transition_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        const struct row *r = &table[i];
        struct bootstate st, want;
        to_state(&r->from, &st);
        to_state(r->rc == 0 ? &r->to : &r->from, &want);
        int rc = apply(&st, r->ev, r->slot, r->cnt);
        if (rc != r->rc || st.active != want.active || st.trial != want.trial ||
            st.trial_started != want.trial_started || st.image[A] != want.image[A] ||
            st.image[B] != want.image[B] || st.min_sec_cnt != want.min_sec_cnt)
            fail_msg("row %zu (%s): rc %d, state active %d trial %d started %d images %d %d "
                     "min %u", i, r->what, rc, st.active, st.trial, st.trial_started, st.image[A],
                     st.image[B], (unsigned)st.min_sec_cnt);
    }
}

/* --- the decision, with scripted slot checks --- */

static int slot_ok[2];
static uint32_t slot_cnt[2];
static int verified[2];

static int fake_verify(void *ctx, int slot, uint32_t min, uint32_t *cnt, char *err, size_t len)
{
    (void)ctx;
    verified[slot]++;
    if (!slot_ok[slot]) {
        snprintf(err, len, "signature does not verify");
        return -1;
    }
    if (slot_cnt[slot] < min) {
        snprintf(err, len, "security counter below the minimum");
        return -1;
    }
    *cnt = slot_cnt[slot];
    return 0;
}

static const struct bootflow_ops fake_ops = {.verify = fake_verify};
static struct bootstate st;
static struct bootflow_choice choice;
static char why[BOOTFLOW_WHY_MAX];

static int setup_flow(void **state)
{
    (void)state;
    hal_fake_flash_reset_all();
    slot_ok[A] = slot_ok[B] = 1;
    slot_cnt[A] = slot_cnt[B] = 0;
    verified[A] = verified[B] = 0;
    why[0] = '\0';
    return 0;
}

static int boot(void) { return bootflow_choose(&fake_ops, &st, &choice, why, sizeof why); }

static void store(const struct st *s)
{
    struct bootstate b;
    to_state(s, &b);
    assert_int_equal(bootstate_store(&b), 0);
}

static void test_no_record_boots_what_verifies(void **state)
{
    (void)state;
    assert_int_equal(boot(), 0);
    assert_int_equal(choice.slot, A);
    assert_int_equal(choice.trial, 0);
    struct bootstate saved;
    assert_int_equal(bootstate_load(&saved), 0); /* what ran is now on record */
    assert_int_equal(saved.active, A);
    assert_int_equal(saved.image[A], C);
    setup_flow(NULL);
    slot_ok[A] = 0;
    assert_int_equal(boot(), 0);
    assert_int_equal(choice.slot, B);
}

static void test_nothing_verifies_says_why(void **state)
{
    (void)state;
    slot_ok[A] = slot_ok[B] = 0;
    assert_int_equal(boot(), -1);
    assert_string_equal(why, "no slot holds an image that may run: slot A refused: signature "
                             "does not verify; slot B refused: signature does not verify");
}

static void test_trial_runs_once_then_reverts(void **state)
{
    (void)state;
    store(&(struct st){A, B, 0, C, T, 0});
    assert_int_equal(boot(), 0);
    assert_int_equal(choice.slot, B);
    assert_int_equal(choice.trial, 1);
    struct bootstate saved;
    bootstate_load(&saved);
    assert_int_equal(saved.trial_started, 1); /* stored before B started */
    /* B resets before confirming: the next boot reverts to A and says why. */
    assert_int_equal(boot(), 0);
    assert_int_equal(choice.slot, A);
    assert_int_equal(choice.trial, 0);
    bootstate_load(&saved);
    assert_int_equal(saved.image[B], X);
    assert_int_equal(saved.trial, N);
    assert_int_equal(saved.reverts, 1);
    assert_string_equal(saved.note, "slot B: its trial boot reset before it confirmed itself");
    /* ...and B is never tried again. */
    verified[B] = 0;
    assert_int_equal(boot(), 0);
    assert_int_equal(choice.slot, A);
    assert_int_equal(verified[B], 0);
}

/* The board says how the trial's run ended; the revert keeps it, since
 * the failed image's own log died with it. */
static void test_trial_revert_says_how_it_ended(void **state)
{
    (void)state;
    struct bootflow_ops ops = fake_ops;
    ops.last_reset = "the watchdog reset it";
    store(&(struct st){A, B, 0, C, T, 0});
    assert_int_equal(bootflow_choose(&ops, &st, &choice, why, sizeof why), 0);
    assert_int_equal(choice.slot, B);
    assert_int_equal(bootflow_choose(&ops, &st, &choice, why, sizeof why), 0);
    assert_int_equal(choice.slot, A);
    struct bootstate saved;
    bootstate_load(&saved);
    assert_string_equal(saved.note, "slot B: its trial boot ended before it confirmed itself "
                                    "(the watchdog reset it)");
}

static void test_trial_confirms(void **state)
{
    (void)state;
    slot_cnt[B] = 4;
    store(&(struct st){A, B, 0, C, T, 1});
    assert_int_equal(boot(), 0);
    assert_int_equal(choice.trial, 1);
    assert_int_equal(bootstate_confirm(&st, B, 4), 0);
    assert_int_equal(bootstate_store(&st), 0);
    assert_int_equal(boot(), 0);
    assert_int_equal(choice.slot, B);
    assert_int_equal(choice.trial, 0);
    assert_int_equal(st.min_sec_cnt, 4);
}

static void test_trial_that_fails_verification_never_starts(void **state)
{
    (void)state;
    slot_ok[B] = 0;
    store(&(struct st){A, B, 0, C, T, 0});
    assert_int_equal(boot(), 0);
    assert_int_equal(choice.slot, A);
    assert_int_equal(st.image[B], X);
    assert_string_equal(st.note, "slot B refused: signature does not verify");
}

static void test_active_fails_confirmed_other_runs(void **state)
{
    (void)state;
    slot_ok[A] = 0;
    store(&(struct st){A, N, 0, C, C, 0});
    assert_int_equal(boot(), 0);
    assert_int_equal(choice.slot, B);
    assert_int_equal(st.active, B); /* recorded */
    assert_string_equal(st.note, "slot A refused: signature does not verify");
}

static void test_never_an_unconfirmed_or_downgraded_fallback(void **state)
{
    (void)state;
    slot_ok[A] = 0;
    store(&(struct st){A, N, 0, C, T, 0}); /* B marked for test only: not a fallback */
    assert_int_equal(boot(), -1);
    assert_int_equal(verified[B], 0);
    assert_non_null(strstr(why, "slot B: test, not a confirmed image"));
    /* A confirmed B whose counter is below the minimum is refused too. */
    slot_cnt[B] = 2;
    store(&(struct st){A, N, 0, C, C, 3});
    assert_int_equal(boot(), -1);
    assert_non_null(strstr(why, "slot B refused: security counter below the minimum"));
}

/* A record damaged (bit rot, a bug, an erase) must not reopen the door to
 * an older image: of what verifies, the highest counter runs and becomes
 * the minimum. */
static void test_damaged_record_keeps_the_newest(void **state)
{
    (void)state;
    slot_cnt[A] = 1;
    slot_cnt[B] = 5;
    store(&(struct st){B, N, 0, C, C, 5});
    memset(hal_fake_bootctl.mem, 0, 16); /* both copies unreadable */
    memset(hal_fake_bootctl.mem + HAL_FAKE_SECTOR, 0, 16);
    assert_int_equal(bootstate_load(&st), BOOTSTATE_DAMAGED);
    assert_int_equal(boot(), 0);
    assert_int_equal(choice.slot, B);
    struct bootstate saved;
    assert_int_equal(bootstate_load(&saved), BOOTSTATE_LOADED);
    assert_int_equal(saved.active, B);
    assert_int_equal(saved.min_sec_cnt, 5);
    /* If only the older image verifies, it runs (never a dead device)... */
    setup_flow(NULL);
    slot_cnt[A] = 1;
    slot_ok[B] = 0;
    assert_int_equal(boot(), 0);
    assert_int_equal(choice.slot, A);
}

/* A trial that reset before confirming reverts only to an active slot that
 * still verifies; if it does not, the trial is the only image left. */
static void test_revert_only_to_an_image_that_runs(void **state)
{
    (void)state;
    slot_ok[A] = 0;
    store(&(struct st){A, B, 1, C, T, 0});
    assert_int_equal(boot(), 0);
    assert_int_equal(choice.slot, B);
    assert_int_equal(choice.trial, 1);
    struct bootstate saved;
    bootstate_load(&saved);
    assert_int_equal(saved.image[B], T); /* not marked bad */
    assert_int_equal(saved.reverts, 0);
}

/* --- power cuts, on the NOR model with real images --- */

#define PAYLOAD_LEN 3000
static uint8_t image[2][TESTIMG_MAX]; /* v1 (for A) and v2 (for B) */
static size_t image_len[2];
static uint8_t slot_copy[HAL_FAKE_SLOT_SIZE];

static int real_verify(void *ctx, int slot, uint32_t min, uint32_t *cnt, char *err, size_t len)
{
    (void)ctx;
    enum hal_flash_part part = slot ? HAL_FLASH_SLOT_B : HAL_FLASH_SLOT_A;
    if (hal_flash_read(part, 0, slot_copy, sizeof slot_copy) != 0) {
        snprintf(err, len, "cannot read the slot");
        return -1;
    }
    struct imgverify_policy p = {testimg_key.pub, testimg_key.pub_len, "posix", min};
    struct mcuimg m;
    if (imgverify_check(slot_copy, sizeof slot_copy, &p, &m, err, len) != 0)
        return -1;
    *cnt = m.has_sec_cnt ? m.sec_cnt : 0;
    return 0;
}

static const struct bootflow_ops real_ops = {.verify = real_verify};

/* Which image a slot holds now: 1 or 2, 0 for none that verifies. */
static int image_in(int slot)
{
    uint32_t cnt;
    char err[128];
    if (real_verify(NULL, slot, 0, &cnt, err, sizeof err) != 0)
        return 0;
    return memcmp(slot_copy, image[1], image_len[1]) == 0 ? 2 : 1;
}

static int write_slot(int slot, const uint8_t *data, size_t len)
{
    enum hal_flash_part part = slot ? HAL_FLASH_SLOT_B : HAL_FLASH_SLOT_A;
    for (uint32_t off = 0; off < len; off += HAL_FAKE_SECTOR)
        if (hal_flash_erase(part, off) != 0)
            return -1;
    static uint8_t buf[TESTIMG_MAX + 8];
    size_t whole = (len + 7) / 8 * 8;
    memset(buf, 0xFF, whole);
    memcpy(buf, data, len);
    return hal_flash_program(part, 0, buf, whole) == 0 ? 0 : -1;
}

/* The factory programmer: v1 in A, active and confirmed. */
static void factory(void)
{
    hal_fake_flash_reset_all();
    assert_int_equal(write_slot(A, image[0], image_len[0]), 0);
    struct bootstate s;
    bootstate_default(&s);
    bootstate_programmed(&s, A);
    assert_int_equal(bootstate_store(&s), 0);
}

/* The update as the firmware does it: state first, then the image, then
 * the mark. Stops at the first failed flash operation (the power cut). */
static int install_b(void)
{
    struct bootstate s;
    bootstate_load(&s);
    if (s.active == B)
        return 0; /* done already */
    if (bootstate_writing(&s, B) != 0 || bootstate_store(&s) != 0 ||
        write_slot(B, image[1], image_len[1]) != 0 || bootstate_mark_test(&s, B) != 0 ||
        bootstate_store(&s) != 0)
        return -1;
    return 0;
}

/* Power on: the boot stage decides; a running trial that is good confirms
 * itself (the firmware's self-test) when `confirm` says so. Returns the
 * image that runs (1 or 2), or -1 when a flash operation failed on the way. */
static int power_on_and_run(int confirm)
{
    struct bootstate s;
    struct bootflow_choice c;
    char w[BOOTFLOW_WHY_MAX];
    if (bootflow_choose(&real_ops, &s, &c, w, sizeof w) != 0)
        fail_msg("cut left no bootable slot: %s", w);
    int running = image_in(c.slot);
    if (!running)
        fail_msg("the boot stage chose slot %d, which does not verify", c.slot);
    if (c.trial && confirm) {
        if (bootstate_confirm(&s, c.slot, 0) != 0 || bootstate_store(&s) != 0)
            return -1;
    }
    return running;
}

/* Every count of flash operations at which the power can go, for one
 * sequence; after each cut the device must boot a verified image, and
 * doing the whole job again must end on `want`. */
static void sweep(int (*sequence)(void), int confirm, int want, const char *name)
{
    int cuts = 0;
    for (int32_t cut = 0;; cut++) {
        factory();
        hal_fake_cut_countdown = cut;
        int finished = sequence() == 0 && !hal_fake_powered_off;
        hal_fake_power_on();
        if (finished) {
            assert_true(cut > 3); /* the sequence did write something */
            break;
        }
        cuts++;
        /* After the cut: the device boots something verified (a good
         * image in trial confirms itself, a bad one never does)... */
        assert_true(power_on_and_run(confirm) > 0);
        /* ...and doing the job again (the operator retries) ends right. */
        assert_int_equal(sequence(), 0);
        assert_int_equal(power_on_and_run(confirm), want);
        if (cut > 10000)
            fail_msg("%s: the sequence never finished", name);
    }
    factory();
    assert_int_equal(sequence(), 0);
    assert_int_equal(power_on_and_run(confirm), want);
    print_message("%s: %d power cuts, every one boots a verified image\n", name, cuts);
}

/* Update: write B, mark it, trial boot, confirm; then B runs. */
static int update_sequence(void)
{
    if (install_b() != 0)
        return -1;
    int r = power_on_and_run(1); /* the trial boot; the firmware confirms */
    if (r < 0 || hal_fake_powered_off)
        return -1;
    return power_on_and_run(1) == 2 && !hal_fake_powered_off ? 0 : -1;
}

/* Revert: write B, mark it, trial boot that resets before confirming;
 * then A runs again and B is bad. */
static int revert_sequence(void)
{
    struct bootstate s;
    bootstate_load(&s);
    if (s.image[B] == X && s.active == A)
        return 0; /* reverted already */
    if (install_b() != 0)
        return -1;
    if (power_on_and_run(0) < 0 || hal_fake_powered_off) /* the trial: no confirm */
        return -1;
    return power_on_and_run(0) == 1 && !hal_fake_powered_off ? 0 : -1;
}

/* The upload as `fw update` does it (fwupdate.c): begin, the data in
 * pieces, finish (verify what is on flash, mark for test); then the trial
 * boot confirms and B runs. */
static int upload_b(const uint8_t *data, size_t len, char *err)
{
    struct fwupdate u;
    struct mcuimg m;
    struct bootstate s;
    bootstate_load(&s);
    if (s.active == B)
        return 0; /* done already */
    if (fwupdate_begin(&u, (uint32_t)len, err, FWUPDATE_ERR_MAX) != 0)
        return -1;
    for (size_t off = 0; off < len; off += 100) {
        size_t n = len - off < 100 ? len - off : 100;
        if (fwupdate_write(&u, (uint32_t)off, data + off, n, err, FWUPDATE_ERR_MAX) != 0)
            return -1;
    }
    struct imgverify_policy p = {testimg_key.pub, testimg_key.pub_len, "posix", s.min_sec_cnt};
    return fwupdate_finish(&u, &p, &m, err, FWUPDATE_ERR_MAX);
}

static int upload_sequence(void)
{
    char err[FWUPDATE_ERR_MAX];
    if (upload_b(image[1], image_len[1], err) != 0)
        return -1;
    int r = power_on_and_run(1); /* the trial boot; the firmware confirms */
    if (r < 0 || hal_fake_powered_off)
        return -1;
    return power_on_and_run(1) == 2 && !hal_fake_powered_off ? 0 : -1;
}

static void test_power_cut_during_upload(void **state)
{
    (void)state;
    sweep(upload_sequence, 1, 2, "upload");
}

/* Whatever is wrong with an upload, the slot stays recorded empty and the
 * running image stays what boots. */
static void test_refused_uploads_change_nothing(void **state)
{
    (void)state;
    char err[FWUPDATE_ERR_MAX];
    static uint8_t bad[TESTIMG_MAX];
    factory();
    memcpy(bad, image[1], image_len[1]);
    bad[600] ^= 0x01;
    assert_int_equal(upload_b(bad, image_len[1], err), -1);
    assert_string_equal(err, "image refused: SHA-256 does not match: the image is damaged or "
                             "was changed");
    struct bootstate s;
    bootstate_load(&s);
    assert_int_equal(s.image[B], E);
    assert_int_equal(s.trial, N);
    assert_int_equal(power_on_and_run(1), 1);
    /* Truncated: the transfer ended early. */
    struct fwupdate u;
    assert_int_equal(fwupdate_begin(&u, (uint32_t)image_len[1], err, sizeof err), 0);
    assert_int_equal(fwupdate_write(&u, 0, image[1], 1000, err, sizeof err), 0);
    struct mcuimg m;
    struct imgverify_policy p = {testimg_key.pub, testimg_key.pub_len, "posix", 0};
    assert_int_equal(fwupdate_finish(&u, &p, &m, err, sizeof err), -1);
    assert_string_equal(err, "the image is incomplete (truncated transfer)");
    /* Older than the minimum (image 2 carries counter 1). */
    p.min_sec_cnt = 2;
    assert_int_equal(fwupdate_begin(&u, (uint32_t)image_len[1], err, sizeof err), 0);
    assert_int_equal(fwupdate_write(&u, 0, image[1], image_len[1], err, sizeof err), 0);
    assert_int_equal(fwupdate_finish(&u, &p, &m, err, sizeof err), -1);
    assert_string_equal(err, "image refused: security counter 1 is below the minimum 2 (a "
                             "downgrade)");
    /* Too big for the slot. */
    assert_int_equal(fwupdate_begin(&u, HAL_FAKE_SLOT_SIZE + 1, err, sizeof err), -1);
    assert_string_equal(err, "image of 32769 bytes does not fit the slot (32768 bytes)");
    bootstate_load(&s);
    assert_int_equal(s.image[B], E);
    assert_int_equal(power_on_and_run(1), 1);
    /* A good one is accepted; during its trial another update is refused. */
    assert_int_equal(upload_b(image[1], image_len[1], err), 0);
    assert_int_equal(power_on_and_run(0), 2); /* the trial runs, not yet confirmed */
    assert_int_equal(fwupdate_begin(&u, (uint32_t)image_len[1], err, sizeof err), -1);
    assert_string_equal(err, "confirm or revert the running trial first");
}

static void test_power_cut_during_update(void **state)
{
    (void)state;
    sweep(update_sequence, 1, 2, "update");
}

static void test_power_cut_during_revert(void **state)
{
    (void)state;
    sweep(revert_sequence, 0, 1, "revert");
    struct bootstate s;
    assert_int_equal(bootstate_load(&s), 0);
    assert_int_equal(s.image[B], X);
    assert_int_equal(s.reverts, 1);
}

static uint8_t payload[2][PAYLOAD_LEN];

static int group_setup(void **state)
{
    (void)state;
    if (testimg_init() != 0)
        return -1;
    for (int v = 0; v < 2; v++) {
        for (size_t i = 0; i < PAYLOAD_LEN; i++)
            payload[v][i] = (uint8_t)(i * 13 + v * 101);
        struct testimg t = {.payload = payload[v], .payload_len = PAYLOAD_LEN, .hdr_size = 0x200,
                            .version = {1, (uint8_t)v, 0}, .sec_cnt = v, .board = "posix"};
        image_len[v] = testimg_build(image[v], &t);
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    testimg_free();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transition_table),
        cmocka_unit_test_setup(test_no_record_boots_what_verifies, setup_flow),
        cmocka_unit_test_setup(test_nothing_verifies_says_why, setup_flow),
        cmocka_unit_test_setup(test_trial_runs_once_then_reverts, setup_flow),
        cmocka_unit_test_setup(test_trial_revert_says_how_it_ended, setup_flow),
        cmocka_unit_test_setup(test_trial_confirms, setup_flow),
        cmocka_unit_test_setup(test_trial_that_fails_verification_never_starts, setup_flow),
        cmocka_unit_test_setup(test_active_fails_confirmed_other_runs, setup_flow),
        cmocka_unit_test_setup(test_never_an_unconfirmed_or_downgraded_fallback, setup_flow),
        cmocka_unit_test_setup(test_damaged_record_keeps_the_newest, setup_flow),
        cmocka_unit_test_setup(test_revert_only_to_an_image_that_runs, setup_flow),
        cmocka_unit_test(test_power_cut_during_update),
        cmocka_unit_test(test_power_cut_during_revert),
        cmocka_unit_test(test_power_cut_during_upload),
        cmocka_unit_test(test_refused_uploads_change_nothing),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
