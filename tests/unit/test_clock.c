/* firmware/clocksync.c — the engine (boot source, step threshold, status
 * text, timezone parsing) with times passed in, and the glue against a real
 * SQLite queue (db_queue_rebase through clock_ntp_answer), config.c for the
 * `ntp-server` and `timezone-offset` settings, and the fake HAL clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "clocksync.h"
#include "config.h"
#include "crypto.h"
#include "db.h"
#include "db_queue.h"
#include "hal_clock.h"
#include "hal_fakes.h"
#include "tmpdir.h"

/* --- the engine --- */

static void test_tz_parse(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int ok, minutes;
    } cases[] = {
        {"0", 1, 0},          {"60", 1, 60},        {"-300", 1, -300},   {"+05:30", 1, 330},
        {"-03:00", 1, -180},  {"5:45", 1, 345},     {"+14:00", 1, 840},  {"-12:00", 1, -720},
        {"+14:01", 0, 0},     {"-721", 0, 0},       {"", 0, 0},          {"+", 0, 0},
        {"1:5", 0, 0},        {"01:60", 0, 0},      {"001:00", 0, 0},    {"abc", 0, 0},
        {"60 ", 0, 0},        {"+05:30x", 0, 0},    {"99999", 0, 0},     {"--1", 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int m = 12345;
        int rc = clocksync_tz_parse(cases[i].text, &m);
        if (cases[i].ok != (rc == 0) || (rc == 0 && m != cases[i].minutes))
            fail_msg("'%s': rc %d minutes %d", cases[i].text, rc, m);
    }
}

static void test_boot_source(void **state)
{
    (void)state;
    struct clocksync cs;
    /* No RTC: the later saved time wins. */
    assert_int_equal(clocksync_boot(&cs, 0, 5, 1, 1700000000), 1700000000);
    assert_int_equal(cs.source, CLOCKSYNC_SAVED);
    assert_false(clocksync_valid(&cs));
    /* ...but never moves the clock back. */
    assert_int_equal(clocksync_boot(&cs, 0, 1700000500, 1, 1700000000), 1700000500);
    assert_int_equal(cs.source, CLOCKSYNC_BOARD);
    /* No record at all (first power-on). */
    assert_int_equal(clocksync_boot(&cs, 0, 5, 0, 1700000000), 5);
    assert_int_equal(cs.source, CLOCKSYNC_BOARD);
    assert_false(clocksync_valid(&cs));
    /* A valid RTC is kept even when the record is later. */
    assert_int_equal(clocksync_boot(&cs, 1, 1700000000, 1, 1800000000), 1700000000);
    assert_true(clocksync_valid(&cs));
}

static void test_answer_delta(void **state)
{
    (void)state;
    assert_int_equal(clocksync_answer_delta(1000, 1000), 0);
    assert_int_equal(clocksync_answer_delta(1000, 1000 + CLOCKSYNC_REBASE_MIN_S), 0);
    assert_int_equal(clocksync_answer_delta(1000, 1000 - CLOCKSYNC_REBASE_MIN_S), 0);
    assert_int_equal(clocksync_answer_delta(1000, 1061), 61);
    assert_int_equal(clocksync_answer_delta(1000, 939), -61);
    assert_int_equal(clocksync_answer_delta(12, 1700000000), 1700000000 - 12);
}

static void test_describe(void **state)
{
    (void)state;
    struct clocksync cs;
    char out[512];
    clocksync_boot(&cs, 0, 5, 0, 0);
    clocksync_describe(&cs, 0, out, sizeof out);
    assert_string_equal(out, "not synchronized (no time known: counting from reset)");
    clocksync_boot(&cs, 0, 5, 1, 1700000000);
    clocksync_describe(&cs, 0, out, sizeof out);
    assert_string_equal(out, "not synchronized (last known time from the saved clock record)");
    clocksync_answered(&cs, 1700000010, 1767225600, "10.0.2.2"); /* 2026-01-01 00:00:00 */
    assert_true(clocksync_valid(&cs));
    assert_int_equal(cs.last_step, 1767225600 - 1700000010);
    clocksync_describe(&cs, 90, out, sizeof out);
    assert_string_equal(out, "synchronized via NTP 10.0.2.2 at 2026-01-01 01:30:00 +01:30");
    clocksync_format_local(1767225600, -300, out, sizeof out);
    assert_string_equal(out, "2025-12-31 19:00:00 -05:00");
}

/* --- the glue and the queue, on a real database --- */

static char dir[64], path[128];
static struct db *db;
static char applied[8][CLOCKSYNC_SERVER_MAX];
static int applied_n;

static void fake_apply(const char *server)
{
    assert_true(applied_n < 8);
    snprintf(applied[applied_n++], sizeof applied[0], "%s", server);
}

static int setup(void **state)
{
    (void)state;
    if (tmpdir_make(dir, sizeof dir, "shr-test-clock") != 0)
        return -1;
    snprintf(path, sizeof path, "%s/relay.db", dir);
    char err[256];
    if (db_open(&db, path, err, sizeof err) != DB_OK) {
        fprintf(stderr, "db_open: %s\n", err);
        return -1;
    }
    if (crypto_init() != 0)
        return -1;
    cfg_init(db);
    hal_fake_now_ms = 0;
    hal_fake_wall_valid = 0;
    hal_fake_saved_valid = 0;
    hal_fake_wall_sets = hal_fake_saves = 0;
    applied_n = 0;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cfg_init(NULL);
    db_close(db);
    db = NULL;
    tmpdir_remove(dir);
    hal_fake_wall_valid = 1;
    return 0;
}

/* A queued message received at `received` with two recipients, both due
 * at once (next_attempt 0) until defer_first() defers the first. */
static int64_t queue_message(int64_t received)
{
    struct db_msg_new m = {received, "pst@vendor.test", "[10.0.2.2]:1", "vendor.test"};
    int64_t id;
    static const char *const rcpts[] = {"a@example.com", "b@example.com"};
    assert_int_equal(db_begin(db), DB_OK);
    assert_int_equal(db_msg_create(db, &m, &id), DB_OK);
    assert_int_equal(db_msg_chunk(db, id, 0, "x\r\n", 3), DB_OK);
    assert_int_equal(db_msg_commit(db, id, 3, "<m@vendor.test>", rcpts, 2, received), DB_OK);
    assert_int_equal(db_commit(db), DB_OK);
    return id;
}

struct rcpts {
    struct db_rcpt r[4];
    int n;
};

static void on_rcpt(void *ctx, const struct db_rcpt *r)
{
    struct rcpts *l = ctx;
    if (l->n < 4)
        l->r[l->n++] = *r;
}

static void defer_first(int64_t msg, int64_t next, int64_t now)
{
    struct rcpts l = {.n = 0};
    assert_int_equal(db_msg_recipients(db, msg, on_rcpt, &l), DB_OK);
    assert_int_equal(l.n, 2);
    assert_int_equal(db_rcpt_update(db, l.r[0].id, "deferred", 1, next, "4.4.1 closed", now),
                     DB_OK);
}

static void test_rebase_moves_queue_times(void **state)
{
    (void)state;
    int64_t msg = queue_message(100);
    defer_first(msg, 400, 150);

    const int64_t delta = 1700000000;
    assert_int_equal(db_begin(db), DB_OK);
    int64_t n = db_queue_rebase(db, delta);
    assert_int_equal(db_commit(db), DB_OK);
    assert_int_equal(n, 3); /* one message, two recipients */

    struct db_msg m;
    assert_int_equal(db_msg_get(db, msg, &m), DB_OK);
    assert_int_equal(m.received, 100 + delta);
    struct rcpts l = {.n = 0};
    assert_int_equal(db_msg_recipients(db, msg, on_rcpt, &l), DB_OK);
    assert_int_equal(l.n, 2);
    int64_t next[2] = {l.r[0].next_attempt, l.r[1].next_attempt};
    /* Deferred: still 250 s after its last try; due at once: still due. */
    assert_true((next[0] == 400 + delta && next[1] == 0) ||
                (next[1] == 400 + delta && next[0] == 0));
}

/* History rows stay as they were (checked through db_history_list). */
static void on_history(void *ctx, const struct db_history *h) { *(struct db_history *)ctx = *h; }

static void test_rebase_leaves_history(void **state)
{
    (void)state;
    struct db_history h = {.queue_id = 7, .outcome = "failed", .received = 50, .finished = 60};
    assert_int_equal(db_history_add(db, &h), DB_OK);
    assert_int_equal(db_begin(db), DB_OK);
    assert_int_equal(db_queue_rebase(db, 1000), 0); /* empty queue: nothing moved */
    assert_int_equal(db_commit(db), DB_OK);
    struct db_history got;
    memset(&got, 0, sizeof got);
    assert_int_equal(db_history_list(db, 1, on_history, &got), DB_OK);
    assert_int_equal(got.received, 50);
    assert_int_equal(got.finished, 60);
}

/* The first NTP answer after a boot at 1970: the clock steps, the queue
 * moves with it, the time is saved, and the clock counts as valid. */
static void test_ntp_answer_moves_queue(void **state)
{
    (void)state;
    clock_boot(fake_apply);
    assert_false(clock_valid());
    int64_t wall = hal_clock_wall();
    int64_t msg = queue_message(wall - 30);
    defer_first(msg, wall + 300, wall - 10);

    const int64_t truth = wall + 50 * 365 * 86400LL;
    clock_ntp_answer(truth, "10.0.2.2");
    assert_int_equal(hal_fake_wall_set, truth);
    assert_true(hal_fake_saved_valid);
    assert_int_equal(hal_fake_saved_wall, truth);
    assert_true(clock_valid());
    char out[512];
    clock_describe(out, sizeof out);
    assert_non_null(strstr(out, "synchronized via NTP 10.0.2.2 at "));

    struct db_msg m;
    assert_int_equal(db_msg_get(db, msg, &m), DB_OK);
    assert_int_equal(m.received, truth - 30); /* still 30 s old: not expired */
    struct rcpts l = {.n = 0};
    assert_int_equal(db_msg_recipients(db, msg, on_rcpt, &l), DB_OK);
    int found = 0;
    for (int i = 0; i < l.n; i++)
        if (strcmp(l.r[i].state, "deferred") == 0) {
            assert_int_equal(l.r[i].next_attempt, truth + 300); /* still in 5 minutes */
            found = 1;
        }
    assert_true(found);
}

/* Drift within the threshold steps the clock without touching the queue. */
static void test_small_step_leaves_queue(void **state)
{
    (void)state;
    clock_boot(fake_apply);
    int64_t wall = hal_clock_wall();
    int64_t msg = queue_message(wall - 30);
    clock_ntp_answer(wall + 20, "pool.ntp.test");
    assert_int_equal(hal_fake_wall_set, wall + 20);
    struct db_msg m;
    assert_int_equal(db_msg_get(db, msg, &m), DB_OK);
    assert_int_equal(m.received, wall - 30);
}

/* A board without a clock starts from the saved time when it is later. */
static void test_boot_starts_from_saved(void **state)
{
    (void)state;
    hal_fake_saved_valid = 1;
    hal_fake_saved_wall = 1800000000; /* later than the fake clock's 1700000000 */
    clock_boot(fake_apply);
    assert_int_equal(hal_fake_wall_sets, 1);
    assert_int_equal(hal_fake_wall_set, 1800000000);
    assert_int_equal(clock_state()->source, CLOCKSYNC_SAVED);
    assert_false(clock_valid());
    /* A board with a valid clock keeps it. */
    hal_fake_wall_valid = 1;
    clock_boot(fake_apply);
    assert_int_equal(hal_fake_wall_sets, 1);
    assert_true(clock_valid());
}

/* clock_poll applies `ntp-server` at first and on every change, and saves
 * the time every CLOCKSYNC_SAVE_EVERY_MS. */
static void test_poll_follows_setting_and_saves(void **state)
{
    (void)state;
    char err[CFG_ERR_MAX];
    clock_boot(fake_apply);
    clock_poll();
    assert_int_equal(applied_n, 1);
    assert_string_equal(applied[0], ""); /* default: the one DHCP offers */
    hal_fake_now_ms += CLOCKSYNC_SETTING_POLL_MS;
    clock_poll();
    assert_int_equal(applied_n, 1); /* unchanged: not restarted */
    assert_int_equal(cfg_setting_set("ntp-server", "10.0.2.2", err, sizeof err), 0);
    clock_poll();
    assert_int_equal(applied_n, 1); /* read at most once a second */
    hal_fake_now_ms += CLOCKSYNC_SETTING_POLL_MS;
    clock_poll();
    assert_int_equal(applied_n, 2);
    assert_string_equal(applied[1], "10.0.2.2");

    assert_int_equal(hal_fake_saves, 0);
    hal_fake_now_ms += CLOCKSYNC_SAVE_EVERY_MS;
    clock_poll();
    assert_int_equal(hal_fake_saves, 1);
    assert_int_equal(hal_fake_saved_wall, hal_clock_wall());
}

static void test_settings_checked(void **state)
{
    (void)state;
    char err[CFG_ERR_MAX], v[64];
    static const char *const good_ntp[] = {"", "none", "10.0.2.2", "pool.ntp.org"};
    for (size_t i = 0; i < sizeof good_ntp / sizeof good_ntp[0]; i++)
        if (cfg_setting_set("ntp-server", good_ntp[i], err, sizeof err) != 0)
            fail_msg("ntp-server '%s': %s", good_ntp[i], err);
    static const char *const bad_ntp[] = {"::1", "[2001:db8::1]", "bad name!", "a b"};
    for (size_t i = 0; i < sizeof bad_ntp / sizeof bad_ntp[0]; i++)
        if (cfg_setting_set("ntp-server", bad_ntp[i], err, sizeof err) == 0)
            fail_msg("ntp-server '%s' accepted", bad_ntp[i]);
    assert_int_equal(cfg_setting_get("ntp-server", v, sizeof v), 0);
    assert_string_equal(v, "pool.ntp.org");

    assert_int_equal(cfg_setting_get("timezone-offset", v, sizeof v), 0);
    assert_string_equal(v, "0");
    assert_int_equal(clock_tz_minutes(), 0);
    assert_int_equal(cfg_setting_set("timezone-offset", "+05:30", err, sizeof err), 0);
    assert_int_equal(clock_tz_minutes(), 330);
    assert_int_equal(cfg_setting_set("timezone-offset", "-300", err, sizeof err), 0);
    assert_int_equal(clock_tz_minutes(), -300);
    assert_int_not_equal(cfg_setting_set("timezone-offset", "15:00", err, sizeof err), 0);
    assert_non_null(strstr(err, "timezone-offset must be"));
    assert_int_equal(clock_tz_minutes(), -300); /* a refused value changes nothing */
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tz_parse),
        cmocka_unit_test(test_boot_source),
        cmocka_unit_test(test_answer_delta),
        cmocka_unit_test(test_describe),
        T(test_rebase_moves_queue_times),
        T(test_rebase_leaves_history),
        T(test_ntp_answer_moves_queue),
        T(test_small_step_leaves_queue),
        T(test_boot_starts_from_saved),
        T(test_poll_follows_setting_and_saves),
        T(test_settings_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
