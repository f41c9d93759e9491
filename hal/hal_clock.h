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
 * numbers needs finer steps than hal_clock_ms() gives. */
uint64_t hal_clock_us(void);
/* Seconds since 1970-01-01 UTC. */
int64_t hal_clock_wall(void);

#endif
