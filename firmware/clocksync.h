/* clocksync.h — the wall clock: where its time came from, SNTP answers,
 * the saved last-known time, and moving the queue's times with a step.
 *
 * Two layers. The engine (struct clocksync, clocksync_*) is pure: every
 * time is passed in, so unit tests drive it without a clock. The glue
 * (clock_*) applies its decisions: it reads and steps the HAL clock, keeps
 * the saved record (hal_clock_save_wall) and moves the queue's times
 * (db_queue_rebase). fwnet.c's SNTP callback calls clock_ntp_answer();
 * fw_main calls clock_boot() once and clock_poll() every loop turn.
 *
 * "Valid" is what the rest of the firmware asks (outbound `tls verify`
 * needs it to check certificate dates): an NTP answer since boot, or a
 * board whose own clock was valid from reset (hal_clock_wall_valid). A time
 * started from the saved record is only a lower bound: not valid. */
#ifndef CLOCKSYNC_H
#define CLOCKSYNC_H

#include <stddef.h>
#include <stdint.h>

/* A step larger than this moves the queue's times with it; smaller ones
 * are the drift an hourly SNTP answer corrects, not worth a transaction. */
#define CLOCKSYNC_REBASE_MIN_S 60
/* How often the last known time is saved: at most this much is lost
 * across a power cut, and one record write (flash wear) per period. */
#define CLOCKSYNC_SAVE_EVERY_MS (10u * 60u * 1000u)
/* How often the `ntp-server` setting is read for a change. */
#define CLOCKSYNC_SETTING_POLL_MS 1000u
#define CLOCKSYNC_SERVER_MAX 256 /* a host name of DB_NAME_MAX plus NUL, with room */

enum clocksync_source {
    CLOCKSYNC_BOARD, /* the board's own clock since reset */
    CLOCKSYNC_SAVED, /* started from the saved last-known time (later than the board's) */
    CLOCKSYNC_NTP,   /* an SNTP answer since boot */
};

struct clocksync {
    enum clocksync_source source;
    int board_valid;      /* the board's clock was valid from reset (RTC, host clock) */
    int64_t last_sync;    /* wall time the last SNTP answer set; 0 before one */
    int64_t last_step;    /* how far that answer moved the clock, seconds */
    char server[CLOCKSYNC_SERVER_MAX]; /* who answered */
};

/* At boot: the board's clock reads `wall` (valid or not, per `board_valid`)
 * and the saved record is `saved` when `have_saved`. Returns the time to
 * set the clock to: the saved one when the board's clock is not valid and
 * reads earlier, else `wall` (keep it). */
int64_t clocksync_boot(struct clocksync *cs, int board_valid, int64_t wall, int have_saved,
                       int64_t saved);
/* SNTP answered `ntp` while the clock read `wall`. Returns how far the
 * queue's times must move: ntp - wall when that exceeds
 * CLOCKSYNC_REBASE_MIN_S either way, else 0. */
int64_t clocksync_answer_delta(int64_t wall, int64_t ntp);
/* Record an answer that was applied (the clock now reads `ntp`). */
void clocksync_answered(struct clocksync *cs, int64_t wall, int64_t ntp, const char *server);
/* 1 when the time can be trusted for certificate dates. */
int clocksync_valid(const struct clocksync *cs);
/* One line without a newline: "synchronized via NTP <server> at <time>"
 * or "not synchronized (...)"; times shifted by `tz_minutes` east of UTC. */
void clocksync_describe(const struct clocksync *cs, int tz_minutes, char *out, size_t cap);
/* "YYYY-MM-DD HH:MM:SS +HH:MM": `t` in local time `tz_minutes` east of UTC. */
#define CLOCKSYNC_LOCAL_LEN 64 /* CLOCKFMT_UTC_LEN and " +HH:MM", with room */
void clocksync_format_local(int64_t t, int tz_minutes, char *out, size_t cap);

/* `timezone-offset`: whole minutes ("-300", "60") or [+-]HH:MM ("+05:30"),
 * east of UTC, from -12:00 to +14:00 (the zones in use). Returns 0 and the
 * minutes, or -1. Inline so config.c can check the setting without linking
 * this module. */
#define CLOCKSYNC_TZ_MIN (-12 * 60)
#define CLOCKSYNC_TZ_MAX (14 * 60)
static inline int clocksync_tz_parse(const char *v, int *minutes)
{
    int sign = 1, n = 0, digits = 0;
    if (*v == '+' || *v == '-')
        sign = *v++ == '-' ? -1 : 1;
    while (*v >= '0' && *v <= '9' && digits < 4) {
        n = n * 10 + (*v++ - '0');
        digits++;
    }
    if (!digits)
        return -1;
    if (*v == ':') {
        v++;
        if (digits > 2 || v[0] < '0' || v[0] > '5' || v[1] < '0' || v[1] > '9' || v[2])
            return -1;
        n = n * 60 + (v[0] - '0') * 10 + (v[1] - '0');
    } else if (*v) {
        return -1;
    }
    n *= sign;
    if (n < CLOCKSYNC_TZ_MIN || n > CLOCKSYNC_TZ_MAX)
        return -1;
    *minutes = n;
    return 0;
}

/* --- glue: the HAL clock, the saved record, the queue --- */

/* Applies an `ntp-server` value ("" for the DHCP-offered server, "none",
 * or a host name or IPv4 address): fwnet_sntp_config. */
typedef void (*clock_ntp_apply_fn)(const char *server);

/* Once at boot, before storage opens (so every time stamped at boot is in
 * the final frame): starts the clock from the saved record when the board
 * has no valid clock. `apply` is called from clock_poll() with the
 * `ntp-server` setting, at first and whenever it changes. */
void clock_boot(clock_ntp_apply_fn apply);
/* Every loop turn: saves the last known time now and then, follows the
 * `ntp-server` setting. Cheap when nothing is due. */
void clock_poll(void);
/* SNTP answered `t` (seconds since 1970) from `server`: moves the queue's
 * times by the step in one durable transaction, then steps the clock and
 * saves the new time. When the queue cannot be moved the clock is left
 * alone (the next answer tries again): a step without it could expire the
 * queue. */
void clock_ntp_answer(int64_t t, const char *server);
/* Told the step (seconds) after the queue was moved and before the clock
 * is: what holds queue times in RAM (delivery's jobs) moves them too. */
typedef void (*clock_step_fn)(int64_t delta);
void clock_on_step(clock_step_fn fn);
int clock_valid(void);
/* The `timezone-offset` setting in minutes (0 when unreadable). */
int clock_tz_minutes(void);
/* clocksync_describe() for the running clock. */
void clock_describe(char *out, size_t cap);
const struct clocksync *clock_state(void);

#endif
