/* hal_err.h — error codes every HAL function returns.
 *
 * 0 is success; failures are small negative numbers so callers can test
 * `rc < 0` and still pass counts through the same int where a call reads
 * or writes bytes. */
#ifndef HAL_ERR_H
#define HAL_ERR_H

#define HAL_OK          0
#define HAL_EINVAL    (-1)  /* argument out of range or misaligned */
#define HAL_EIO       (-2)  /* the device failed (bus error, lost link to the board) */
#define HAL_ENOTERASED (-3) /* flash: programming a write block that is not erased */
#define HAL_ENOSPC    (-4)  /* a queue or buffer is full; the caller may retry later */
#define HAL_EPOWER    (-5)  /* flash: simulated power cut; nothing after it happened */

/* Short English name of an error code, for `error:` lines and logs. */
const char *hal_strerror(int rc);

#endif
