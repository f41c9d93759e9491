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
/* Seconds since 1970-01-01 UTC. */
int64_t hal_clock_wall(void);

#endif
