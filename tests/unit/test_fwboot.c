/* fwboot: the firmware confirms its image once the local self-test passes
 * (database, link, SMTP listener, a running loop), never waiting for DHCP
 * or anyone at the console; a trial that cannot pass in time resets so the
 * boot stage reverts; a confirmed image that is not working never resets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "bootstate.h"
#include "fwboot.h"
#include "hal_bootctl.h"
#include "hal_fake_flash.h"
#include "hal_fakes.h"
#include "log.h"

static struct hal_boot_state boot;

int hal_bootctl_state(struct hal_boot_state *state)
{
    *state = boot;
    return 0;
}

static const struct fwboot_check all_good = {1, 1, 1};

/* Slot A confirmed and active, slot B written and its trial begun, as the
 * boot stage leaves things when it starts B as a trial. */
static int setup_trial(void **state)
{
    (void)state;
    hal_fake_flash_reset_all();
    struct bootstate st;
    bootstate_default(&st);
    bootstate_programmed(&st, 0);
    st.min_sec_cnt = 2;
    bootstate_writing(&st, 1);
    bootstate_mark_test(&st, 1);
    bootstate_trial_begin(&st);
    assert_int_equal(bootstate_store(&st), 0);
    memset(&boot, 0, sizeof boot);
    boot.running = HAL_FLASH_SLOT_B;
    boot.trial = 1;
    boot.sec_cnt = 5;
    strcpy(boot.version, "1.1.0+0");
    hal_fake_now_ms = 1000;
    fwboot_init();
    return 0;
}

static int turns(const struct fwboot_check *c, int n)
{
    uint32_t ms = 0;
    for (int i = 0; i < n; i++)
        ms = fwboot_poll(c);
    return (int)ms;
}

static void test_trial_confirms_after_the_self_test(void **state)
{
    (void)state;
    turns(&all_good, FWBOOT_TURNS - 1);
    assert_int_equal(fwboot_status(), FWBOOT_TESTING);
    assert_string_equal(fwboot_waiting_for(), "the event loop");
    turns(&all_good, 1);
    assert_int_equal(fwboot_status(), FWBOOT_CONFIRMED);
    struct bootstate st;
    assert_int_equal(bootstate_load(&st), 0);
    assert_int_equal(st.active, 1);
    assert_int_equal(st.trial, BOOTSTATE_NONE);
    assert_int_equal(st.image[1], BOOTSTATE_CONFIRMED);
    assert_int_equal(st.min_sec_cnt, 5); /* the confirmed image's counter */
}

static void test_trial_that_cannot_pass_resets_to_revert(void **state)
{
    (void)state;
    struct fwboot_check no_db = {0, 1, 1};
    turns(&no_db, 100);
    assert_string_equal(fwboot_waiting_for(), "the database to open");
    hal_fake_now_ms = 1000 + FWBOOT_TRIAL_MS - 1;
    turns(&no_db, 1); /* just before the deadline: still waiting */
    if (setjmp(hal_fake_reset_jmp) == 0) {
        hal_fake_now_ms += 1;
        turns(&no_db, 1);
        fail_msg("the trial did not reset at its deadline");
    }
    /* Reverted before the reset, with the reason the next boot shows. */
    struct bootstate st;
    assert_int_equal(bootstate_load(&st), 0);
    assert_int_equal(st.active, 0);
    assert_int_equal(st.trial, BOOTSTATE_NONE);
    assert_int_equal(st.image[1], BOOTSTATE_BAD);
    assert_int_equal(st.reverts, 1);
    assert_string_equal(st.note, "slot B: failed its self-test (waited 120 s for the "
                                 "database to open)");
}

/* A confirmed image whose link is down stays up (waiting, saying why):
 * resetting it would not help, and there is nothing to revert to. */
static void test_confirmed_image_never_resets(void **state)
{
    (void)state;
    hal_fake_flash_reset_all();
    struct bootstate st;
    bootstate_default(&st);
    bootstate_programmed(&st, 0);
    assert_int_equal(bootstate_store(&st), 0);
    memset(&boot, 0, sizeof boot);
    fwboot_init();
    struct fwboot_check no_link = {1, 0, 1};
    if (setjmp(hal_fake_reset_jmp) != 0)
        fail_msg("a confirmed image reset");
    turns(&no_link, 50);
    hal_fake_now_ms += 10 * FWBOOT_TRIAL_MS;
    turns(&no_link, 5);
    assert_int_equal(fwboot_status(), FWBOOT_TESTING);
    assert_string_equal(fwboot_waiting_for(), "the network link");
    /* Once the link comes, it confirms again, without writing flash when
     * nothing changes (a power cut now would be harmless anyway). */
    hal_fake_cut_countdown = 0;
    turns(&all_good, 1);
    assert_int_equal(fwboot_status(), FWBOOT_CONFIRMED);
    assert_int_equal(hal_fake_powered_off, 0);
    hal_fake_power_on();
}

/* The boot state names another slot than the one running (it cannot
 * confirm what the boot stage did not start as active or trial). */
static void test_confirm_refused_for_a_slot_not_on_record(void **state)
{
    (void)state;
    boot.running = HAL_FLASH_SLOT_A;
    boot.trial = 0;
    fwboot_init();
    struct bootstate st;
    bootstate_load(&st);
    turns(&all_good, FWBOOT_TURNS); /* A is active but B's trial is on record */
    assert_int_equal(fwboot_status(), FWBOOT_FAILED);
}

/* A confirm that cannot be written is tried again; a trial that still
 * cannot confirm by its deadline resets (and so reverts now). */
static void test_failed_confirm_retries_then_resets(void **state)
{
    (void)state;
    hal_fake_cut_countdown = 0; /* the next flash operation fails */
    turns(&all_good, FWBOOT_TURNS);
    hal_fake_power_on(); /* the flash works again, for a moment */
    assert_int_equal(fwboot_status(), FWBOOT_TESTING);
    assert_string_equal(fwboot_waiting_for(), "the boot state to be written");
    hal_fake_cut_countdown = 0;
    hal_fake_now_ms += 5000;
    turns(&all_good, 1); /* tried again: fails again */
    hal_fake_power_on();
    assert_int_equal(fwboot_status(), FWBOOT_TESTING);
    if (setjmp(hal_fake_reset_jmp) == 0) {
        hal_fake_cut_countdown = 0;
        hal_fake_now_ms = 1000 + FWBOOT_TRIAL_MS;
        turns(&all_good, 1);
        fail_msg("the trial did not reset at its deadline");
    }
    hal_fake_power_on();
}

/* `fw confirm` during a trial that has not passed: confirmed at once, and
 * the trial deadline no longer resets it. */
static void test_confirm_by_hand_ends_the_trial_deadline(void **state)
{
    (void)state;
    struct fwboot_check no_db = {0, 1, 1};
    turns(&no_db, 3);
    assert_int_equal(fwboot_confirm_by_hand(), 0);
    assert_int_equal(fwboot_status(), FWBOOT_CONFIRMED);
    struct bootstate st;
    assert_int_equal(bootstate_load(&st), 0);
    assert_int_equal(st.active, 1);
    assert_int_equal(st.image[1], BOOTSTATE_CONFIRMED);
    hal_fake_now_ms += 10 * FWBOOT_TRIAL_MS;
    if (setjmp(hal_fake_reset_jmp) == 0)
        turns(&no_db, 1);
    else
        fail_msg("a trial confirmed by hand was reset at its deadline");
}

/* A revert is reported once, by the firmware that runs after it, with the
 * reason the boot state kept; the count seen lives with the caller. */
static void test_a_revert_is_reported_once(void **state)
{
    (void)state;
    struct fwboot_check no_db = {0, 1, 1};
    if (setjmp(hal_fake_reset_jmp) == 0) {
        hal_fake_now_ms = 1000 + FWBOOT_TRIAL_MS;
        turns(&no_db, 1);
        fail_msg("the trial did not reset at its deadline");
    }
    boot.running = HAL_FLASH_SLOT_A; /* the boot stage starts the confirmed slot */
    boot.trial = 0;
    fwboot_init();
    uint32_t seen = 0;
    assert_int_equal(fwboot_report_reverts(&seen), 1);
    assert_int_equal(seen, 1);
    uint32_t last = log_last_seq();
    assert_string_equal(log_get_seq(last)->text,
                        "fw: running slot A after a revert: slot B: failed its self-test "
                        "(waited 120 s for the database to open) (1 revert in all)");
    assert_int_equal(fwboot_report_reverts(&seen), 0); /* the next boot: nothing new */
    assert_int_equal(log_last_seq(), last);
}

/* Without a boot state record the firmware writes nothing up. */
static void test_no_record_no_confirm(void **state)
{
    (void)state;
    hal_fake_flash_reset_all();
    memset(&boot, 0, sizeof boot);
    fwboot_init();
    turns(&all_good, FWBOOT_TURNS);
    assert_int_equal(fwboot_status(), FWBOOT_FAILED);
    struct bootstate st;
    assert_int_equal(bootstate_load(&st), BOOTSTATE_UNWRITTEN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_trial_confirms_after_the_self_test, setup_trial),
        cmocka_unit_test_setup(test_trial_that_cannot_pass_resets_to_revert, setup_trial),
        cmocka_unit_test_setup(test_confirmed_image_never_resets, setup_trial),
        cmocka_unit_test_setup(test_confirm_refused_for_a_slot_not_on_record, setup_trial),
        cmocka_unit_test_setup(test_failed_confirm_retries_then_resets, setup_trial),
        cmocka_unit_test_setup(test_confirm_by_hand_ends_the_trial_deadline, setup_trial),
        cmocka_unit_test_setup(test_a_revert_is_reported_once, setup_trial),
        cmocka_unit_test_setup(test_no_record_no_confirm, setup_trial),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
