/* retry.h — when to try a deferred recipient again, and when to give up. */
#ifndef RETRY_H
#define RETRY_H

#include <stdint.h>

/* Seconds to wait after the `attempts`-th failed attempt (1 = the first):
 * `initial`, doubling each time, never more than `max`. */
int64_t retry_delay(int64_t initial, int64_t max, int32_t attempts);
/* 1 when a message received at `received` has outlived `lifetime` at `now`. */
int retry_expired(int64_t received, int64_t lifetime, int64_t now);

#endif
