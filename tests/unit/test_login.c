/* test_login.c — the admin record on flash (power cut at every step), the
 * sliced PBKDF2, and the login state machine driven through the console:
 * first-boot password, login, growing delays, input dropped during a
 * delay, idle logout, passwd, a damaged record, recovery mode. Real
 * console, crypto, config and SQLite; only the HAL is faked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "adminrec.h"
#include "commands.h"
#include "config.h"
#include "console.h"
#include "crypto.h"
#include "db.h"
#include "db_config.h"
#include "hal_fake_flash.h"
#include "hal_fakes.h"
#include "login.h"
#include "tmpdir.h"

#define PW "correct horse 42"
#define PW2 "battery staple 77"

/* --- the terminal: everything the console printed since the last take --- */

static char out[65536];
static size_t out_len;

static void term_write(void *ctx, const char *data, size_t len)
{
    (void)ctx;
    if (out_len + len >= sizeof out)
        len = sizeof out - 1 - out_len;
    memcpy(out + out_len, data, len);
    out_len += len;
    out[out_len] = '\0';
}

static void take(char *buf, size_t cap)
{
    size_t n = out_len < cap - 1 ? out_len : cap - 1;
    memcpy(buf, out, n);
    buf[n] = '\0';
    out_len = 0;
    out[0] = '\0';
}

static int ran_version;
static int cmd_version(struct console *con, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    ran_version++;
    console_printf(con, "version 1\n");
    return 0;
}

/* A long output that never ends on its own (as when nobody reads). */
static int endless_cancelled;
static int endless_step(struct console *c, void *ctx, int cancel)
{
    (void)c;
    (void)ctx;
    endless_cancelled += cancel;
    return !cancel;
}

static int cmd_endless(struct console *c, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    console_stream(c, endless_step, NULL);
    return CONSOLE_PENDING;
}

static const struct console_cmd test_table[] = {
    {"version", NULL, "", "version", cmd_version},
    {"endless", NULL, "", "a long output", cmd_endless},
    {NULL, NULL, NULL, NULL, NULL},
};
static const struct console_cmd *const tables[] = {test_table, cmd_admin_table, NULL};

static struct console con;
static char dir[64];
static struct db *db;

static void type(const char *text) { login_input((const uint8_t *)text, strlen(text)); }

/* Run login_poll until it stops hashing (bounded). */
static void settle(void)
{
    for (int i = 0; i < 100000; i++)
        if (login_poll() != 0)
            return;
    fail_msg("login_poll kept hashing");
}

static int setup(void **state)
{
    (void)state;
    hal_fake_flash_reset();
    hal_fake_recovery = 0;
    hal_fake_now_ms = 1000;
    hal_fake_us_step = 1000; /* every clock read is 1 ms later: calibration ends fast */
    out_len = 0;
    ran_version = 0;
    if (tmpdir_make(dir, sizeof dir, "shr-test-login") != 0)
        return -1;
    char path[128], err[256];
    snprintf(path, sizeof path, "%s/relay.db", dir);
    if (db_open(&db, path, err, sizeof err) != DB_OK)
        return -1;
    cfg_init(db);
    return crypto_init();
}

static int teardown(void **state)
{
    (void)state;
    cfg_init(NULL);
    if (db)
        db_close(db);
    db = NULL;
    tmpdir_remove(dir);
    return 0;
}

static void boot(int recovery)
{
    console_init(&con, tables, "relay> ", term_write, NULL);
    login_init(&con, recovery);
    login_start();
}

/* First boot up to an open session with PW. */
static void first_boot(void)
{
    char buf[4096];
    boot(0);
    type(PW "\r" PW "\r");
    settle();
    take(buf, sizeof buf);
    assert_non_null(strstr(buf, "ok: admin password set at first boot"));
    assert_true(login_is_open());
}

struct audit_count {
    const char *want;
    int n;
};

static void audit_row(void *ctx, int64_t at, const char *actor, const char *action)
{
    (void)at;
    (void)actor;
    struct audit_count *c = ctx;
    if (strstr(action, c->want))
        c->n++;
}

/* Audit rows whose action contains `action`. */
static int count_audit(const char *action)
{
    struct audit_count c = {action, 0};
    return db_audit_list(db, 1000, audit_row, &c) == DB_OK ? c.n : -1;
}

/* --- adminrec --- */

static void test_record_empty_then_stored(void **state)
{
    (void)state;
    struct adminrec r, back;
    assert_int_equal(adminrec_load(&r), ADMINREC_EMPTY);
    memset(&r, 0, sizeof r);
    r.flags = ADMINREC_HAS_PASSWORD;
    r.iterations = 12345;
    memset(r.salt, 0xA5, sizeof r.salt);
    memset(r.hash, 0x5A, sizeof r.hash);
    r.reset_at = -7;
    for (int i = 0; i < 5; i++) { /* alternating sectors, newest wins */
        r.iterations = 1000 + (uint32_t)i;
        assert_int_equal(adminrec_store(&r), 0);
        assert_int_equal(adminrec_load(&back), ADMINREC_OK);
        assert_memory_equal(&back, &r, sizeof r);
    }
}

static void test_record_survives_a_power_cut_anywhere(void **state)
{
    (void)state;
    struct adminrec old, neu, back;
    memset(&old, 0, sizeof old);
    old.flags = ADMINREC_HAS_PASSWORD;
    old.iterations = 1;
    neu = old;
    neu.iterations = 2;
    int saw_new = 0;
    for (int cut = 0; cut < 10; cut++) {
        hal_fake_flash_reset();
        assert_int_equal(adminrec_store(&old), 0);
        assert_int_equal(adminrec_store(&old), 0); /* both sectors written */
        hal_fake_admin.fault_countdown = cut;
        int rc = adminrec_store(&neu);
        hal_fake_admin.fault_countdown = -1;
        hal_fake_admin.powered_off = 0; /* power back on */
        assert_int_equal(adminrec_load(&back), ADMINREC_OK);
        assert_true(back.iterations == 1 || back.iterations == 2);
        if (rc == 0)
            assert_int_equal(back.iterations, 2); /* acknowledged means stored */
        saw_new |= back.iterations == 2;
    }
    assert_true(saw_new);
}

static void test_record_damaged_is_not_a_first_boot(void **state)
{
    (void)state;
    struct adminrec r;
    memset(&r, 0, sizeof r);
    r.flags = ADMINREC_HAS_PASSWORD;
    assert_int_equal(adminrec_store(&r), 0);
    /* Flip one bit of the only copy: its digest no longer matches. */
    hal_fake_admin.mem[20] ^= 0x01;
    assert_int_equal(adminrec_load(&r), ADMINREC_DAMAGED);
    /* A copy torn in the other sector does not hide an intact one. */
    hal_fake_flash_reset();
    assert_int_equal(adminrec_store(&r), 0);
    hal_fake_admin.mem[HAL_FAKE_ADMIN_SECTOR + 3] = 0x00;
    assert_int_equal(adminrec_load(&r), ADMINREC_OK);
}

/* --- sliced PBKDF2 --- */

static void test_sliced_pbkdf2_matches_one_shot(void **state)
{
    (void)state;
    const uint8_t salt[CRYPTO_SALT_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    static const uint32_t counts[] = {1, 2, 3, 257, 1000};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        uint8_t want[CRYPTO_HASH_LEN], got[CRYPTO_HASH_LEN];
        assert_int_equal(crypto_pbkdf2(PW, salt, sizeof salt, counts[i], want), 0);
        struct crypto_pbkdf2_job *job = crypto_pbkdf2_begin(PW, salt, sizeof salt);
        assert_non_null(job);
        uint32_t done = 1;
        for (uint32_t step = 1; done < counts[i]; step = step * 3 + 1) {
            uint32_t n = counts[i] - done < step ? counts[i] - done : step;
            done = crypto_pbkdf2_run(job, n);
        }
        assert_int_equal(done, counts[i]);
        crypto_pbkdf2_end(job, got);
        assert_memory_equal(got, want, sizeof want);
    }
    /* The pool is bounded and jobs come back after end/abort. */
    struct crypto_pbkdf2_job *a = crypto_pbkdf2_begin(PW, salt, sizeof salt);
    struct crypto_pbkdf2_job *b = crypto_pbkdf2_begin(PW, salt, sizeof salt);
    assert_non_null(a);
    assert_non_null(b);
    assert_null(crypto_pbkdf2_begin(PW, salt, sizeof salt));
    crypto_pbkdf2_abort(a);
    crypto_pbkdf2_abort(b);
    a = crypto_pbkdf2_begin(PW, salt, sizeof salt);
    assert_non_null(a);
    crypto_pbkdf2_abort(a);
}

/* --- rules --- */

static void test_password_rules_and_delays(void **state)
{
    (void)state;
    char err[160];
    assert_int_equal(login_check_password("123456789", err, sizeof err), -1);
    assert_non_null(strstr(err, "at least 10"));
    assert_int_equal(login_check_password("aaaaaaaaaaaa", err, sizeof err), -1);
    assert_non_null(strstr(err, "repeated"));
    assert_int_equal(login_check_password("aaaaaaaaaaab", err, sizeof err), 0);
    static const uint32_t want[] = {0, 1, 2, 4, 8, 16, 30, 30, 30};
    for (unsigned i = 0; i < sizeof want / sizeof want[0]; i++)
        assert_int_equal(login_delay_s(i), want[i]);
    assert_int_equal(login_delay_s(1000000), 30);
}

/* --- the state machine --- */

static void test_first_boot_sets_the_password(void **state)
{
    (void)state;
    char buf[4096];
    boot(0);
    take(buf, sizeof buf);
    assert_non_null(strstr(buf, "first boot"));
    assert_non_null(strstr(buf, "new admin password: "));
    assert_false(login_is_open());
    type("short\r");
    take(buf, sizeof buf);
    assert_non_null(strstr(buf, "error: the admin password needs at least 10 characters"));
    assert_non_null(strstr(buf, "new admin password: ")); /* asked again */
    type(PW "\r" PW "x\r");
    take(buf, sizeof buf);
    assert_non_null(strstr(buf, "do not match"));
    type("version\r"); /* not a command: a (too short) password */
    assert_int_equal(ran_version, 0);
    take(buf, sizeof buf);
    type(PW "\r" PW "\r");
    settle();
    take(buf, sizeof buf);
    assert_null(strstr(buf, PW)); /* never echoed */
    assert_non_null(strstr(buf, "ok: admin password set at first boot"));
    assert_non_null(strstr(buf, "relay> "));
    struct adminrec r;
    assert_int_equal(adminrec_load(&r), ADMINREC_OK);
    assert_true(r.flags & ADMINREC_HAS_PASSWORD);
    assert_true(r.iterations >= LOGIN_ITERATIONS_MIN);
    /* The stored hash is PBKDF2 of the password with the stored count. */
    uint8_t h[CRYPTO_HASH_LEN];
    assert_int_equal(crypto_pbkdf2(PW, r.salt, sizeof r.salt, r.iterations, h), 0);
    assert_memory_equal(h, r.hash, sizeof h);
    assert_int_equal(count_audit("admin password set at first boot"), 1);
    type("version\r");
    assert_int_equal(ran_version, 1);
}

static void test_login_delays_grow_and_drop_input(void **state)
{
    (void)state;
    char buf[4096];
    first_boot();
    boot(0); /* a reboot: the password is asked */
    take(buf, sizeof buf);
    assert_string_equal(buf, "password: ");
    type("wrong password\r");
    settle();
    take(buf, sizeof buf);
    assert_non_null(strstr(buf, "error: wrong password (next try in 1 s)"));
    /* Typed during the delay: dropped, never tried as a password. */
    type(PW "\r");
    settle();
    hal_fake_now_ms += 999;
    assert_int_equal(login_poll(), 1);
    take(buf, sizeof buf);
    assert_null(strstr(buf, "password: "));
    hal_fake_now_ms += 1;
    login_poll();
    take(buf, sizeof buf);
    assert_string_equal(buf, "password: ");
    assert_false(login_is_open());
    type("wrong again!!\r");
    settle();
    take(buf, sizeof buf);
    assert_non_null(strstr(buf, "next try in 2 s"));
    hal_fake_now_ms += 2000;
    login_poll();
    type("version\r"); /* at the password prompt: a wrong password */
    settle();
    assert_int_equal(ran_version, 0);
    take(buf, sizeof buf);
    assert_non_null(strstr(buf, "next try in 4 s"));
    hal_fake_now_ms += 4000;
    login_poll();
    type(PW "\rversion\r"); /* the command typed ahead runs after the login */
    settle();
    take(buf, sizeof buf);
    assert_true(login_is_open());
    assert_non_null(strstr(buf, "note: 3 failed logins since the last login"));
    assert_int_equal(ran_version, 1);
    assert_int_equal(count_audit("login failed"), 3);
}

static void test_idle_logout_and_logout(void **state)
{
    (void)state;
    char buf[4096];
    first_boot();
    hal_fake_now_ms += 599000;
    login_poll();
    assert_true(login_is_open());
    type("vers"); /* typing is activity */
    hal_fake_now_ms += 599000;
    login_poll();
    assert_true(login_is_open());
    hal_fake_now_ms += 1000;
    login_poll();
    assert_false(login_is_open());
    take(buf, sizeof buf);
    assert_non_null(strstr(buf, "logged out: idle for 600 s"));
    assert_non_null(strstr(buf, "password: "));
    type("ion\r"); /* the half-typed line did not survive the logout */
    settle();
    assert_int_equal(ran_version, 0);
    hal_fake_now_ms += 1000;
    login_poll();
    type(PW "\r");
    settle();
    assert_true(login_is_open());
    type("logout\r");
    assert_false(login_is_open());
    take(buf, sizeof buf);
    assert_non_null(strstr(buf, "logged out\r\npassword: "));
    /* A shorter setting applies; 0 never logs out. */
    type(PW "\r");
    settle();
    char err[CFG_ERR_MAX];
    assert_int_equal(cfg_setting_set("console-idle-timeout", "4", err, sizeof err), -1);
    assert_int_equal(cfg_setting_set("console-idle-timeout", "0", err, sizeof err), 0);
    hal_fake_now_ms += 86400000;
    login_poll();
    login_poll();
    assert_true(login_is_open());
    assert_int_equal(cfg_setting_set("console-idle-timeout", "5", err, sizeof err), 0);
    hal_fake_now_ms += 1000;
    login_poll();
    hal_fake_now_ms += 5000;
    login_poll();
    assert_false(login_is_open());
}

/* A long output left waiting for a reader is no activity: the idle
 * logout ends it and the session. */
static void test_idle_logout_ends_an_unread_long_output(void **state)
{
    (void)state;
    char buf[4096];
    first_boot();
    endless_cancelled = 0;
    type("endless\r");
    settle();
    assert_true(console_is_streaming(&con));
    hal_fake_now_ms += 600000;
    login_poll();
    assert_int_equal(endless_cancelled, 1);
    assert_false(console_is_streaming(&con));
    assert_false(login_is_open());
    take(buf, sizeof buf);
    assert_non_null(strstr(buf, "logged out: idle for 600 s"));
}

static void test_passwd(void **state)
{
    (void)state;
    char buf[4096];
    first_boot();
    type("passwd\r" PW2 "\r");
    settle();
    take(buf, sizeof buf);
    assert_non_null(strstr(buf, "current password: "));
    assert_non_null(strstr(buf, "error: wrong password; nothing changed"));
    type("passwd\r" PW "\r");
    settle();
    type(PW2 "\r" PW2 "\r");
    settle();
    take(buf, sizeof buf);
    assert_non_null(strstr(buf, "ok: admin password changed"));
    assert_null(strstr(buf, PW2));
    assert_int_equal(count_audit("admin password changed"), 1);
    assert_int_equal(count_audit("passwd refused"), 1);
    boot(0);
    type(PW "\r");
    settle();
    assert_false(login_is_open());
    hal_fake_now_ms += 1000;
    login_poll();
    type(PW2 "\r");
    settle();
    assert_true(login_is_open());
}

static void test_damaged_record_lets_nobody_in(void **state)
{
    (void)state;
    char buf[4096];
    first_boot();
    for (uint32_t off = 0; off < HAL_FAKE_ADMIN_SIZE; off += HAL_FAKE_ADMIN_SECTOR)
        hal_fake_admin.mem[off + 30] ^= 0xFF; /* both copies broken */
    boot(0);
    take(buf, sizeof buf);
    assert_non_null(strstr(buf, "admin password record is damaged"));
    assert_null(strstr(buf, "new admin password"));
    type(PW "\r");
    settle();
    assert_false(login_is_open());
    take(buf, sizeof buf);
    assert_non_null(strstr(buf, "recovery"));
    /* Recovery mode opens the console without a password. */
    boot(1);
    assert_true(login_is_open());
    take(buf, sizeof buf);
    assert_non_null(strstr(buf, "recovery mode"));
}

static void test_factory_reset(void **state)
{
    (void)state;
    char buf[4096];
    first_boot();
    struct adminrec before;
    assert_int_equal(adminrec_load(&before), ADMINREC_OK);
    type("factory-reset\rno\r");
    take(buf, sizeof buf);
    assert_non_null(strstr(buf, "error: not confirmed; nothing changed"));
    assert_int_equal(hal_fake_storage_wipes, 0);
    if (setjmp(hal_fake_reset_jmp) == 0) {
        type("factory-reset\rfactory-reset\r");
        fail_msg("factory-reset did not reset");
    }
    db = NULL; /* closed by the reset */
    assert_int_equal(hal_fake_storage_wipes, 1);
    struct adminrec after;
    assert_int_equal(adminrec_load(&after), ADMINREC_OK);
    assert_false(after.flags & ADMINREC_HAS_PASSWORD);
    assert_true(after.flags & ADMINREC_RESET_NOTED);
    assert_memory_not_equal(after.epoch, before.epoch, sizeof after.epoch);
    /* The next boot is a first boot, and the reset gets its audit row once
     * storage is back. */
    char path[128], err[256];
    snprintf(path, sizeof path, "%s/relay.db", dir);
    assert_int_equal(db_open(&db, path, err, sizeof err), DB_OK);
    cfg_init(db);
    boot(0);
    login_storage_ready();
    assert_int_equal(count_audit("factory reset"), 1);
    assert_int_equal(adminrec_load(&after), ADMINREC_OK);
    assert_false(after.flags & ADMINREC_RESET_NOTED);
    take(buf, sizeof buf);
    assert_non_null(strstr(buf, "new admin password: "));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_record_empty_then_stored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_record_survives_a_power_cut_anywhere, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_record_damaged_is_not_a_first_boot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sliced_pbkdf2_matches_one_shot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_password_rules_and_delays, setup, teardown),
        cmocka_unit_test_setup_teardown(test_first_boot_sets_the_password, setup, teardown),
        cmocka_unit_test_setup_teardown(test_login_delays_grow_and_drop_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_logout_and_logout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_logout_ends_an_unread_long_output, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_passwd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_record_lets_nobody_in, setup, teardown),
        cmocka_unit_test_setup_teardown(test_factory_reset, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
