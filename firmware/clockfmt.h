/* clockfmt.h — wall-clock times as text, without libc time zones. */
#ifndef CLOCKFMT_H
#define CLOCKFMT_H

#include <stdint.h>

#define CLOCKFMT_UTC_LEN 48 /* "2026-11-28 07:58:01" and NUL; room for any int64 year */

/* "YYYY-MM-DD HH:MM:SS" in UTC for seconds since 1970. */
char *clockfmt_utc(int64_t t, char buf[CLOCKFMT_UTC_LEN]);

#define CLOCKFMT_RFC5322_LEN 48 /* "Sat, 28 Nov 2026 07:58:01 +0000" and NUL, with room */

/* RFC 5322 date-time in UTC, for Received: headers. */
char *clockfmt_rfc5322(int64_t t, char buf[CLOCKFMT_RFC5322_LEN]);

#endif
