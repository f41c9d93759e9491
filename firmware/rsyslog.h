/* rsyslog.h — the remote log: every log line also sent as an RFC 5424
 * message over UDP to the `syslog-target` setting (host[:port]).
 *
 * A log sink (log_set_sink) formats each entry (rsyslog_fmt.h) and sends
 * it at once with lwIP's raw UDP API: nothing is queued, so memory never
 * grows. A line that cannot go now (no target address yet, the network
 * not up, no buffer) is dropped and counted; the count is logged (and so
 * sent) once the target is reachable again, at most once a minute.
 *
 * The settings are re-read from rsyslog_poll(), never from inside the
 * sink (which may run in the middle of a database transaction): at once
 * after a `settings set/reset` (seen as its "config: settings ..." log
 * line), and every RSYSLOG_REREAD_MS in any case (a restore, a reset of
 * everything). A host name is resolved with lwIP's DNS, asynchronously,
 * and looked up again every RSYSLOG_REFRESH_MS. */
#ifndef RSYSLOG_H
#define RSYSLOG_H

#include <stdint.h>

/* Longest a setting change goes unnoticed when its log line was missed. */
#define RSYSLOG_REREAD_MS 5000
/* A name is looked up again this often (lwIP's cache honours the TTL). */
#define RSYSLOG_REFRESH_MS (10 * 60 * 1000)
/* After a failed lookup, or when no UDP pcb could be had. */
#define RSYSLOG_RETRY_MS 30000
/* Dropped lines are reported at most this often. */
#define RSYSLOG_REPORT_MS 60000

struct rsyslog_status {
    int enabled;       /* a target is set */
    int resolved;      /* its address is known */
    uint32_t sent;     /* datagrams handed to lwIP since boot */
    uint32_t dropped;  /* lines not sent since boot */
};

/* Register the log sink. Call once at boot, after fwnet_init(). */
void rsyslog_init(void);
/* Every loop turn: re-read the settings when due, start lookups, report
 * drops. Cheap when nothing is due. */
void rsyslog_poll(void);
void rsyslog_status(struct rsyslog_status *st);

#endif
