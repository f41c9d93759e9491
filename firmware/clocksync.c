/* clocksync.c — the wall clock's source, SNTP steps and the queue; see
 * clocksync.h. */
#include "clocksync.h"

#include <stdio.h>
#include <string.h>

#include "clockfmt.h"
#include "config.h"
#include "db.h"
#include "db_queue.h"
#include "hal_clock.h"
#include "hal_err.h"
#include "log.h"

/* --- the engine --- */

int64_t clocksync_boot(struct clocksync *cs, int board_valid, int64_t wall, int have_saved,
                       int64_t saved)
{
    memset(cs, 0, sizeof *cs);
    cs->source = CLOCKSYNC_BOARD;
    cs->board_valid = board_valid;
    /* A valid board clock wins even over a later record: the record may
     * come from a wrong NTP answer, the RTC was set on purpose. */
    if (!board_valid && have_saved && saved > wall) {
        cs->source = CLOCKSYNC_SAVED;
        return saved;
    }
    return wall;
}

int64_t clocksync_answer_delta(int64_t wall, int64_t ntp)
{
    int64_t d = ntp - wall;
    return (d > CLOCKSYNC_REBASE_MIN_S || d < -CLOCKSYNC_REBASE_MIN_S) ? d : 0;
}

void clocksync_answered(struct clocksync *cs, int64_t wall, int64_t ntp, const char *server)
{
    cs->source = CLOCKSYNC_NTP;
    cs->last_sync = ntp;
    cs->last_step = ntp - wall;
    snprintf(cs->server, sizeof cs->server, "%s", server ? server : "?");
}

int clocksync_valid(const struct clocksync *cs)
{
    return cs->source == CLOCKSYNC_NTP || cs->board_valid;
}

void clocksync_format_local(int64_t t, int tz_minutes, char *out, size_t cap)
{
    char utc[CLOCKFMT_UTC_LEN];
    clockfmt_utc(t + (int64_t)tz_minutes * 60, utc);
    /* Offsets are at most 14 hours (clocksync_tz_parse): two digits each. */
    unsigned a = (unsigned)(tz_minutes < 0 ? -tz_minutes : tz_minutes);
    snprintf(out, cap, "%s %c%02u:%02u", utc, tz_minutes < 0 ? '-' : '+', a / 60 % 100, a % 60);
}

void clocksync_describe(const struct clocksync *cs, int tz_minutes, char *out, size_t cap)
{
    char when[CLOCKSYNC_LOCAL_LEN];
    switch (cs->source) {
    case CLOCKSYNC_NTP:
        clocksync_format_local(cs->last_sync, tz_minutes, when, sizeof when);
        snprintf(out, cap, "synchronized via NTP %s at %s", cs->server, when);
        break;
    case CLOCKSYNC_SAVED:
        snprintf(out, cap, "not synchronized (last known time from the saved clock record)");
        break;
    case CLOCKSYNC_BOARD:
    default:
        snprintf(out, cap, cs->board_valid
                               ? "not synchronized via NTP (time from the board's real-time clock)"
                               : "not synchronized (no time known: counting from reset)");
        break;
    }
}

/* --- the glue --- */

static struct clocksync state;
static clock_ntp_apply_fn ntp_apply;
static char ntp_applied[CLOCKSYNC_SERVER_MAX];
static int ntp_applied_once;
static uint32_t saved_ms, setting_ms;

void clock_boot(clock_ntp_apply_fn apply)
{
    ntp_apply = apply;
    ntp_applied_once = 0;
    int64_t wall = hal_clock_wall(), saved = 0;
    int have = hal_clock_saved_wall(&saved) == HAL_OK;
    int64_t t = clocksync_boot(&state, hal_clock_wall_valid(), wall, have, saved);
    if (t != wall) {
        hal_clock_set_wall(t);
        char text[CLOCKFMT_UTC_LEN];
        log_info("clock", "no valid clock: starting from the saved time %s UTC",
                 clockfmt_utc(t, text));
    } else if (!state.board_valid) {
        log_warn("clock", "no valid clock and no later saved time; waiting for NTP");
    }
    uint32_t now = hal_clock_ms();
    saved_ms = now;
    setting_ms = now - CLOCKSYNC_SETTING_POLL_MS; /* read the setting at the first poll */
}

static void follow_setting(void)
{
    char v[CLOCKSYNC_SERVER_MAX];
    int rc = cfg_setting_get("ntp-server", v, sizeof v);
    /* An unreadable setting keeps what runs; at boot it starts the default. */
    if (rc == -1 || (rc == CFG_SETTING_UNREAD && ntp_applied_once))
        return;
    if (ntp_applied_once && strcmp(v, ntp_applied) == 0)
        return;
    snprintf(ntp_applied, sizeof ntp_applied, "%s", v);
    ntp_applied_once = 1;
    log_info("clock", "NTP server: %s", v[0] ? v : "from DHCP");
    ntp_apply(ntp_applied);
}

void clock_poll(void)
{
    uint32_t now = hal_clock_ms();
    if (ntp_apply && now - setting_ms >= CLOCKSYNC_SETTING_POLL_MS) {
        setting_ms = now;
        follow_setting();
    }
    if (now - saved_ms >= CLOCKSYNC_SAVE_EVERY_MS) {
        saved_ms = now;
        if (hal_clock_save_wall(hal_clock_wall()) != HAL_OK)
            log_warn("clock", "cannot save the last known time");
    }
}

/* Move the queue's times by `delta` in one durable transaction. */
static int rebase_queue(int64_t delta)
{
    struct db *db = cfg_db();
    if (!db)
        return 0; /* no storage: no queue to move */
    int64_t n = 0;
    int rc = db_begin(db);
    if (rc == DB_OK) {
        n = db_queue_rebase(db, delta);
        rc = n < 0 ? (int)n : db_commit(db);
    }
    if (rc != DB_OK) {
        db_rollback(db);
        log_err("clock", "cannot move the queue's times by %lld s (%s); clock not stepped",
                (long long)delta, db_errmsg(db));
        return -1;
    }
    log_info("clock", "moved the times of %lld queue rows by %lld s", (long long)n,
             (long long)delta);
    return 0;
}

static clock_step_fn step_hook;

void clock_on_step(clock_step_fn fn) { step_hook = fn; }

void clock_ntp_answer(int64_t t, const char *server)
{
    int64_t wall = hal_clock_wall();
    int64_t delta = clocksync_answer_delta(wall, t);
    if (delta && rebase_queue(delta) != 0)
        return;
    if (delta && step_hook)
        step_hook(delta); /* jobs in flight carry their own copy */
    int first = state.source != CLOCKSYNC_NTP;
    hal_clock_set_wall(t);
    clocksync_answered(&state, wall, t, server);
    char text[CLOCKFMT_UTC_LEN];
    if (first || delta)
        log_info("clock", "synchronized via NTP %s: %s UTC (stepped by %lld s)",
                 state.server, clockfmt_utc(t, text), (long long)(t - wall));
    saved_ms = hal_clock_ms();
    if (hal_clock_save_wall(t) != HAL_OK)
        log_warn("clock", "cannot save the last known time");
}

int clock_valid(void) { return clocksync_valid(&state); }

int clock_tz_minutes(void)
{
    char v[32];
    int m = 0;
    if (cfg_setting_get("timezone-offset", v, sizeof v) != 0 || clocksync_tz_parse(v, &m) != 0)
        return 0;
    return m;
}

void clock_describe(char *out, size_t cap) { clocksync_describe(&state, clock_tz_minutes(), out, cap); }

const struct clocksync *clock_state(void) { return &state; }
