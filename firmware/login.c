/* login.c — console login, first-boot password, idle logout, recovery,
 * factory reset; see login.h. */
#include "login.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adminrec.h"
#include "config.h"
#include "crypto.h"
#include "db.h"
#include "hal_clock.h"
#include "hal_reset.h"
#include "hal_storage.h"
#include "log.h"

#define PROMPT_PASSWORD "password: "
#define PROMPT_NEW "new admin password: "
#define PROMPT_REPEAT "repeat new admin password: "
#define PROMPT_CURRENT "current password: "
#define RESET_WORD "factory-reset"
#define IDLE_CHECK_MS 1000 /* how often the idle timeout setting is read */
#define CTRL_C 0x03

/* What the session is doing. Hashing states run a PBKDF2 job. */
enum state {
    ST_FIRST,         /* no password stored: asking for one */
    ST_LOCKED,        /* asking "password: " */
    ST_CHECK,         /* hashing a login attempt */
    ST_DELAY,         /* after a wrong password, until delay_until_ms */
    ST_SET_FIRST,     /* hashing the first-boot password */
    ST_OPEN,          /* logged in */
    ST_PASSWD_CHECK,  /* passwd: hashing the current password */
    ST_PASSWD_SET,    /* passwd: hashing the new one */
    ST_DAMAGED,       /* the admin record cannot be read: nobody logs in */
    ST_RECOVERY,      /* recovery mode: open, factory-reset only */
};

static struct {
    struct console *con;
    enum state state;
    enum adminrec_status rec_status;
    struct adminrec rec;
    /* the hash in progress */
    struct crypto_pbkdf2_job *job;
    uint32_t target;       /* iterations to run; 0: calibrate to LOGIN_HASH_MS */
    uint64_t spent_us;     /* time spent hashing so far */
    uint8_t new_salt[CRYPTO_SALT_LEN];
    /* failures and timers */
    unsigned failures;     /* wrong passwords in a row */
    unsigned failed_since; /* wrong passwords since the last login, to report */
    uint32_t delay_until_ms;
    uint32_t last_input_ms;
    uint32_t idle_checked_ms;
    uint32_t idle_s;
} lg;

static void ask_password(void);
static void ask_first(void);

int login_check_password(const char *password, char *err, size_t errlen)
{
    size_t n = strlen(password);
    if (n < LOGIN_PASSWORD_MIN) {
        snprintf(err, errlen, "the admin password needs at least %d characters",
                 LOGIN_PASSWORD_MIN);
        return -1;
    }
    size_t same = 1;
    while (same < n && password[same] == password[0])
        same++;
    if (same == n) {
        snprintf(err, errlen, "the admin password must not be one character repeated");
        return -1;
    }
    return 0;
}

uint32_t login_delay_s(unsigned failures)
{
    if (failures == 0)
        return 0;
    if (failures > 6) /* 2^5 = 32 is past the cap already */
        return LOGIN_DELAY_MAX_S;
    uint32_t d = 1u << (failures - 1);
    return d > LOGIN_DELAY_MAX_S ? LOGIN_DELAY_MAX_S : d;
}

/* --- the hash job --- */

static void job_stop(void)
{
    crypto_pbkdf2_abort(lg.job);
    lg.job = NULL;
}

/* Start hashing `password` with `salt`; iterations 0 calibrates. The
 * password is consumed here: the job keeps only HMAC's keyed state. */
static int job_start(const char *password, const uint8_t *salt, uint32_t iterations)
{
    job_stop();
    lg.job = crypto_pbkdf2_begin(password, salt, CRYPTO_SALT_LEN);
    lg.target = iterations;
    lg.spent_us = 0;
    return lg.job ? 0 : -1;
}

/* One slice of at most LOGIN_SLICE_US; returns 1 when the hash is
 * complete. Only time spent hashing counts towards calibration, so a busy
 * SMTP turn between slices does not shrink the iteration count. */
static int job_slice(void)
{
    uint64_t start = hal_clock_us();
    for (;;) {
        uint32_t done = crypto_pbkdf2_run(lg.job, 0), step = 256;
        if (lg.target && lg.target - done < step)
            step = lg.target - done;
        done = crypto_pbkdf2_run(lg.job, step);
        uint64_t now = hal_clock_us(), spent = lg.spent_us + (now - start);
        int complete = lg.target ? done >= lg.target
                                 : spent >= (uint64_t)LOGIN_HASH_MS * 1000 &&
                                       done >= LOGIN_ITERATIONS_MIN;
        if (complete || now - start >= LOGIN_SLICE_US) {
            lg.spent_us = spent;
            if (complete && !lg.target)
                lg.target = done; /* calibrated: this many took LOGIN_HASH_MS */
            return complete;
        }
    }
}

/* --- audit, best effort: the database may be what is broken --- */

static void audit(const char *action)
{
    if (cfg_audit(action) != 0)
        log_warn("login", "audit row not written (storage unavailable): %s", action);
}

/* --- logging in --- */

static void open_session(void)
{
    lg.state = ST_OPEN;
    console_set_locked(lg.con, 0);
    lg.last_input_ms = hal_clock_ms();
    if (lg.failed_since)
        console_printf(lg.con, "note: %u failed login%s since the last login (see 'audit')\n",
                       lg.failed_since, lg.failed_since == 1 ? "" : "s");
    lg.failed_since = 0;
    lg.failures = 0;
    log_info("login", "console login");
}

static void on_password(struct console *con, const char *line, void *ctx);

static void cancel_check(struct console *con, void *ctx)
{
    (void)con;
    (void)ctx;
    if (lg.state == ST_DELAY)
        return; /* Ctrl-C does not shorten the wait */
    job_stop();
    console_end_busy(lg.con, 1);
    ask_password();
}

static void ask_password(void)
{
    lg.state = lg.rec_status == ADMINREC_DAMAGED ? ST_DAMAGED : ST_LOCKED;
    console_set_locked(lg.con, 1);
    console_ask_secret(lg.con, PROMPT_PASSWORD, on_password, NULL);
}

static void say_damaged(void)
{
    console_error(lg.con, "the admin password record is damaged, so nobody can log in; "
                          "power on with the recovery button held (tools/sim --recovery) "
                          "and run factory-reset");
}

static void on_password(struct console *con, const char *line, void *ctx)
{
    (void)ctx;
    if (!line) { /* Ctrl-C or an overlong line: ask again */
        ask_password();
        return;
    }
    if (lg.state == ST_DAMAGED) {
        say_damaged();
        ask_password();
        return;
    }
    if (job_start(line, lg.rec.salt, lg.rec.iterations) != 0) {
        console_error(con, "cannot check the password now (crypto unavailable)");
        ask_password();
        return;
    }
    lg.state = ST_CHECK;
    console_busy(con, cancel_check, NULL);
}

static void check_done(void)
{
    uint8_t hash[CRYPTO_HASH_LEN];
    crypto_pbkdf2_end(lg.job, hash);
    lg.job = NULL;
    int ok = crypto_equal(hash, lg.rec.hash, sizeof hash);
    crypto_wipe(hash, sizeof hash);
    if (ok) {
        console_end_busy(lg.con, 0);
        open_session();
        console_prompt(lg.con);
        console_resume(lg.con);
        return;
    }
    lg.failures++;
    lg.failed_since++;
    uint32_t wait = login_delay_s(lg.failures);
    console_error(lg.con, "wrong password (next try in %lu s)", (unsigned long)wait);
    char action[64];
    snprintf(action, sizeof action, "login failed (%u in a row)", lg.failures);
    log_warn("login", "console %s", action);
    audit(action);
    lg.state = ST_DELAY;
    lg.delay_until_ms = hal_clock_ms() + wait * 1000;
}

/* --- first boot and passwd: a new password --- */

static void store_new_password(const uint8_t hash[CRYPTO_HASH_LEN], const char *what)
{
    struct adminrec rec = lg.rec;
    rec.flags |= ADMINREC_HAS_PASSWORD;
    rec.iterations = lg.target;
    memcpy(rec.salt, lg.new_salt, sizeof rec.salt);
    memcpy(rec.hash, hash, sizeof rec.hash);
    if (adminrec_store(&rec) != 0) {
        console_error(lg.con, "cannot store the admin password (flash error); nothing changed");
        crypto_wipe(&rec, sizeof rec);
        return;
    }
    lg.rec = rec;
    lg.rec_status = ADMINREC_OK;
    crypto_wipe(&rec, sizeof rec);
    audit(what);
    log_info("login", "%s", what);
    console_printf(lg.con, "ok: %s (one check takes %lu ms on this board: %lu iterations)\n",
                   what, (unsigned long)(lg.spent_us / 1000), (unsigned long)lg.target);
}

static void cancel_set(struct console *con, void *ctx)
{
    (void)ctx;
    job_stop();
    if (lg.state == ST_SET_FIRST) {
        console_end_busy(con, 1);
        ask_first();
        return;
    }
    console_error(con, "cancelled; nothing changed");
    lg.state = ST_OPEN;
    console_done(con);
}

static void on_new_password(struct console *con, const char *password, void *ctx)
{
    (void)ctx;
    int first = lg.state == ST_FIRST;
    if (!password) { /* refused or mismatched: said already */
        if (first)
            ask_first();
        return;
    }
    if (crypto_random(lg.new_salt, sizeof lg.new_salt) != 0 ||
        job_start(password, lg.new_salt, 0) != 0) {
        console_error(con, "cannot hash the password now (crypto unavailable)");
        if (first)
            ask_first();
        return;
    }
    lg.state = first ? ST_SET_FIRST : ST_PASSWD_SET;
    console_busy(con, cancel_set, NULL);
}

static void ask_first(void)
{
    lg.state = ST_FIRST;
    console_set_locked(lg.con, 1);
    console_ask_new_password_as(lg.con, PROMPT_NEW, PROMPT_REPEAT, login_check_password,
                                on_new_password, NULL);
}

static void set_done(void)
{
    uint8_t hash[CRYPTO_HASH_LEN];
    crypto_pbkdf2_end(lg.job, hash);
    lg.job = NULL;
    if (lg.state == ST_SET_FIRST) {
        store_new_password(hash, "admin password set at first boot");
        crypto_wipe(hash, sizeof hash);
        if (!(lg.rec.flags & ADMINREC_HAS_PASSWORD)) {
            console_end_busy(lg.con, 1);
            ask_first();
            return;
        }
        console_end_busy(lg.con, 0);
        open_session();
        console_prompt(lg.con);
        console_resume(lg.con);
        return;
    }
    store_new_password(hash, "admin password changed");
    crypto_wipe(hash, sizeof hash);
    lg.state = ST_OPEN;
    console_done(lg.con);
}

/* passwd: the current password first, checked like a login (no delay:
 * whoever types it is logged in already), then the new one twice. */

static void passwd_current(struct console *con, const char *line, void *ctx)
{
    (void)ctx;
    if (!line) {
        console_error(con, "cancelled; nothing changed");
        return;
    }
    if (job_start(line, lg.rec.salt, lg.rec.iterations) != 0) {
        console_error(con, "cannot check the password now (crypto unavailable)");
        return;
    }
    lg.state = ST_PASSWD_CHECK;
    console_busy(con, cancel_set, NULL);
}

static void passwd_checked(void)
{
    uint8_t hash[CRYPTO_HASH_LEN];
    crypto_pbkdf2_end(lg.job, hash);
    lg.job = NULL;
    int ok = crypto_equal(hash, lg.rec.hash, sizeof hash);
    crypto_wipe(hash, sizeof hash);
    lg.state = ST_OPEN;
    if (!ok) {
        console_error(lg.con, "wrong password; nothing changed");
        log_warn("login", "passwd: wrong current password");
        audit("passwd refused: wrong current password");
        console_done(lg.con);
        return;
    }
    console_end_busy(lg.con, 0);
    console_ask_new_password_as(lg.con, PROMPT_NEW, PROMPT_REPEAT, login_check_password,
                                on_new_password, NULL);
    console_resume(lg.con);
}

int login_passwd(struct console *con)
{
    if (lg.state == ST_RECOVERY)
        return console_error(con, "no password in recovery mode; use factory-reset");
    console_ask_secret(con, PROMPT_CURRENT, passwd_current, NULL);
    return CONSOLE_PENDING;
}

int login_logout(struct console *con)
{
    if (lg.state == ST_RECOVERY)
        return console_error(con, "no login in recovery mode; power off to leave it");
    console_printf(con, "logged out\n");
    log_info("login", "console logout");
    ask_password();
    return CONSOLE_PENDING;
}

/* --- factory reset --- */

static void reset_confirmed(struct console *con, const char *line, void *ctx)
{
    (void)ctx;
    if (!line || strcmp(line, RESET_WORD) != 0) {
        console_error(con, "not confirmed; nothing changed");
        return;
    }
    int recovery = lg.state == ST_RECOVERY;
    log_warn("login", "factory reset (%s)", recovery ? "recovery mode" : "console");
    /* The database first: if the power goes before the admin record is
     * rewritten, the old password still guards an empty appliance, rather
     * than a new first-boot password guarding the old configuration. */
    struct db *db = cfg_db();
    cfg_init(NULL);
    if (db)
        db_close(db);
    if (hal_storage_wipe() != 0)
        console_error(con, "the data partition was not fully erased; the next boot may "
                           "report damaged storage (run factory-reset again from recovery)");
    struct adminrec rec;
    memset(&rec, 0, sizeof rec);
    rec.flags = ADMINREC_RESET_NOTED;
    rec.reset_at = hal_clock_wall();
    /* A new key epoch: secrets sealed before the reset stay sealed forever. */
    if (crypto_random(rec.epoch, sizeof rec.epoch) != 0 || adminrec_store(&rec) != 0)
        console_error(con, "the admin record was not rewritten; the old password stays");
    crypto_wipe(&rec, sizeof rec);
    console_printf(con, "factory reset done: restarting into first-boot setup\n");
    console_finish(con); /* the answer reaches the line before the reset */
    hal_reset();
}

int login_factory_reset(struct console *con)
{
    console_printf(con, "this erases the configuration, the mail queue, the TLS identity, "
                        "the admin password and the keys derived for this unit\n");
    console_ask_line(con, "type " RESET_WORD " again to confirm: ", reset_confirmed, NULL);
    return CONSOLE_PENDING;
}

/* --- lifecycle --- */

void login_init(struct console *con, int recovery)
{
    job_stop();
    memset(&lg, 0, sizeof lg);
    lg.con = con;
    lg.idle_s = LOGIN_IDLE_DEFAULT_S;
    lg.rec_status = adminrec_load(&lg.rec);
    crypto_set_epoch(lg.rec.epoch);
    if (recovery)
        lg.state = ST_RECOVERY;
    else if (lg.rec_status == ADMINREC_DAMAGED)
        lg.state = ST_DAMAGED;
    else if (!(lg.rec.flags & ADMINREC_HAS_PASSWORD))
        lg.state = ST_FIRST;
    else
        lg.state = ST_LOCKED;
    lg.last_input_ms = lg.idle_checked_ms = hal_clock_ms();
}

void login_start(void)
{
    switch (lg.state) {
    case ST_RECOVERY:
        console_printf(lg.con, "recovery mode: only factory-reset is offered, without login; "
                               "power off to leave\n");
        console_set_locked(lg.con, 0);
        console_prompt(lg.con);
        break;
    case ST_FIRST:
        console_printf(lg.con, "first boot: choose the admin password for this console "
                               "(at least %d characters)\n", LOGIN_PASSWORD_MIN);
        ask_first();
        break;
    case ST_DAMAGED:
        say_damaged();
        ask_password();
        break;
    default:
        ask_password();
    }
}

void login_storage_ready(void)
{
    if (!(lg.rec.flags & ADMINREC_RESET_NOTED) || !cfg_db())
        return;
    char when[32];
    snprintf(when, sizeof when, "%lld", (long long)lg.rec.reset_at);
    char action[96];
    snprintf(action, sizeof action, "factory reset (at unix time %s)", when);
    if (cfg_audit(action) != 0)
        return; /* try again next boot */
    struct adminrec rec = lg.rec;
    rec.flags &= ~ADMINREC_RESET_NOTED;
    if (adminrec_store(&rec) == 0)
        lg.rec = rec;
    crypto_wipe(&rec, sizeof rec);
}

void login_input(const uint8_t *data, size_t len)
{
    lg.last_input_ms = hal_clock_ms();
    console_feed(lg.con, data, len);
}

int login_is_open(void) { return lg.state == ST_OPEN || lg.state == ST_RECOVERY; }

static void idle_logout(void)
{
    /* A question a command asked (a password for a smart host) is
     * cancelled as Ctrl-C would: nothing half-done stays behind. */
    for (int i = 0; i < 4 && console_is_asking(lg.con); i++) {
        static const uint8_t ctrl_c = CTRL_C;
        console_feed(lg.con, &ctrl_c, 1);
    }
    /* A long output nobody reads (it waits for the line) ends too: it must
     * not keep an unattended session open. */
    if (console_is_streaming(lg.con))
        console_cancel(lg.con);
    if (console_is_busy(lg.con) || lg.state != ST_OPEN)
        return;
    console_printf(lg.con, "\nlogged out: idle for %lu s\n", (unsigned long)lg.idle_s);
    log_info("login", "console logged out after %lu s idle", (unsigned long)lg.idle_s);
    ask_password();
}

uint32_t login_poll(void)
{
    uint32_t now = hal_clock_ms();
    switch (lg.state) {
    case ST_CHECK:
    case ST_SET_FIRST:
    case ST_PASSWD_CHECK:
    case ST_PASSWD_SET:
        if (!job_slice())
            return 0;
        if (lg.state == ST_CHECK)
            check_done();
        else if (lg.state == ST_PASSWD_CHECK)
            passwd_checked();
        else
            set_done();
        return 0;
    case ST_DELAY:
        if ((int32_t)(now - lg.delay_until_ms) < 0)
            return lg.delay_until_ms - now;
        console_end_busy(lg.con, 1);
        ask_password();
        return 0;
    case ST_OPEN: {
        if (now - lg.idle_checked_ms >= IDLE_CHECK_MS) {
            lg.idle_checked_ms = now;
            char v[16];
            cfg_setting_get("console-idle-timeout", v, sizeof v);
            lg.idle_s = (uint32_t)strtoul(v, NULL, 10);
        }
        /* A running `smarthost test` is bounded and counts as activity; a
         * long output waiting for a reader is not. */
        if (!lg.idle_s || (console_is_busy(lg.con) && !console_is_streaming(lg.con)))
            return IDLE_CHECK_MS;
        uint32_t idle_ms = now - lg.last_input_ms, limit = lg.idle_s * 1000;
        if (idle_ms >= limit) {
            idle_logout();
            return 0;
        }
        return limit - idle_ms < IDLE_CHECK_MS ? limit - idle_ms : IDLE_CHECK_MS;
    }
    default:
        return IDLE_CHECK_MS;
    }
}
