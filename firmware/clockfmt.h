/* clockfmt.h — wall-clock times as text, without libc time zones. */
#ifndef CLOCKFMT_H
#define CLOCKFMT_H

#include <stdint.h>

#define CLOCKFMT_UTC_LEN 48 /* "2026-11-28 07:58:01" and NUL; room for any int64 year */

/* "YYYY-MM-DD HH:MM:SS" in UTC for seconds since 1970. */
char *clockfmt_utc(int64_t t, char buf[CLOCKFMT_UTC_LEN]);

#endif
