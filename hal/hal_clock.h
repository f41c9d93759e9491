/* hal_clock.h — time.
 *
 * The monotonic clock drives every timer (lwIP, SMTP deadlines, retries); it
 * never jumps. Wall time is only for humans and mail headers, and may be
 * wrong until something sets it (SNTP). */
#ifndef HAL_CLOCK_H
#define HAL_CLOCK_H

#include <stdint.h>

/* Milliseconds since an arbitrary point before boot; wraps after 2^32 ms
 * (49.7 days), so compare with subtraction, as lwIP does. */
uint32_t hal_clock_ms(void);
/* Microseconds on the same kind of monotonic clock, 64 bits so it never
 * wraps in practice: the 4 µs clock of RFC 6528 TCP initial sequence
 * numbers needs finer steps than hal_clock_ms() gives. Counts from the
 * device's reset (a tick counter started there): `stats` shows it as the
 * uptime. */
uint64_t hal_clock_us(void);
/* Seconds since 1970-01-01 UTC. */
int64_t hal_clock_wall(void);
/* 1 when the wall clock was right from reset: a battery-backed RTC that
 * was set, or the posix board's host clock. 0 on a part that starts at
 * 1970 (the posix board's --clock-unset) until SNTP answers. */
int hal_clock_wall_valid(void);
/* Step the wall clock to `t` (SNTP answered). The monotonic clocks above
 * do not move: timers and deadlines never see the step. */
void hal_clock_set_wall(int64_t t);

/* The last known wall time, kept where it survives resets and power cuts
 * (a real part: RTC backup registers or a small flash record; the posix
 * board: a file in its state directory). A board without a battery-backed
 * clock starts near 1970 after a power-on; the firmware then starts from
 * this record, so time never runs backwards across a reset, and it updates
 * the record now and then (rarely: flash wears). */
int hal_clock_save_wall(int64_t t);
/* HAL_OK and the record in *t, or HAL_EIO when there is none (first
 * power-on) or it is damaged. */
int hal_clock_saved_wall(int64_t *t);

#endif
