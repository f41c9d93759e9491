/* clockfmt.c — UTC formatting; see clockfmt.h. */
#include "clockfmt.h"

#include <stdio.h>

/* Days since 1970-01-01 to a civil date (proleptic Gregorian), after
 * Howard Hinnant's days_from_civil inverse. */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

char *clockfmt_utc(int64_t t, char buf[CLOCKFMT_UTC_LEN])
{
    int64_t days = t >= 0 ? t / 86400 : (t - 86399) / 86400;
    int64_t secs = t - days * 86400;
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    snprintf(buf, CLOCKFMT_UTC_LEN, "%04lld-%02u-%02u %02u:%02u:%02u", (long long)y, m, d,
             (unsigned)(secs / 3600), (unsigned)(secs / 60 % 60), (unsigned)(secs % 60));
    return buf;
}

char *clockfmt_rfc5322(int64_t t, char buf[CLOCKFMT_RFC5322_LEN])
{
    static const char *const days[] = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    int64_t d = t >= 0 ? t / 86400 : (t - 86399) / 86400;
    int64_t secs = t - d * 86400;
    int64_t y;
    unsigned m, day;
    civil_from_days(d, &y, &m, &day);
    int64_t wd = d % 7; /* 1970-01-01 was a Thursday */
    if (wd < 0)
        wd += 7;
    snprintf(buf, CLOCKFMT_RFC5322_LEN, "%s, %u %s %lld %02u:%02u:%02u +0000", days[wd], day,
             months[m - 1], (long long)y, (unsigned)(secs / 3600), (unsigned)(secs / 60 % 60),
             (unsigned)(secs % 60));
    return buf;
}
