/* rsyslog_fmt.h — RFC 5424 syslog messages as text: the pure half of the
 * remote log (rsyslog.h sends them).
 *
 * No lwIP, no HAL: everything here is a function of its arguments, so the
 * exact bytes on the wire are unit-tested. Names are `rsyslog_`, never
 * `syslog`/`openlog`, which libc already defines. */
#ifndef RSYSLOG_FMT_H
#define RSYSLOG_FMT_H

#include <stddef.h>
#include <stdint.h>

/* RFC 5424 6.2.1: facility 2 is mail. */
#define RSYSLOG_FACILITY_MAIL 2
/* Datagram size limit: RFC 5426 3.2 says IPv4 receivers must take 480
 * octets and should take 2048; a log entry is at most LOG_TEXT_MAX (160)
 * octets, so 480 always holds a whole line and never fragments. */
#define RSYSLOG_MSG_MAX 480
/* Our private SD-ID: 32473 is the enterprise number RFC 5612 reserves for
 * documentation and examples, until the product has its own. */
#define RSYSLOG_SD_ID "shr@32473"
#define RSYSLOG_APP_NAME "shr"
#define RSYSLOG_PORT_DEFAULT 514
/* Wall-clock times before 2020-01-01 come from a clock nobody has set
 * (an RTC that starts at 0): sent as NILVALUE, never as a false date. */
#define RSYSLOG_WALL_MIN 1577836800
/* Longest queue id text (an int64 in decimal). */
#define RSYSLOG_QID_MAX 24

struct rsyslog_msg {
    int severity;          /* 0..7 (RFC 5424 6.2.1) */
    int64_t wall;          /* seconds since 1970 UTC; < RSYSLOG_WALL_MIN: "-" */
    const char *hostname;  /* NULL or "": "-" */
    const char *msgid;     /* the log module; NULL or "": "-" */
    const char *queue_id;  /* NULL or "": no structured data ("-") */
    const char *text;      /* the message, printable ASCII (log.h escapes it) */
};

/* Severity of a log level (enum log_level): err 3, warn 4, info 6, debug 7. */
int rsyslog_severity(int log_level);

/* `<PRI>1 TIMESTAMP HOSTNAME shr - MSGID SD MSG` into `out` (room for `cap`
 * bytes, NUL included). Header fields keep only what RFC 5424 allows
 * (PRINTUSASCII, cut to their maximum length); the queue id becomes
 * `[shr@32473 queue-id="..."]` with `"`, `\` and `]` escaped; bytes of the
 * message outside printable ASCII become '?'. The message is cut to fit.
 * Returns the length written, 0 when not even the header fits. */
size_t rsyslog_format(char *out, size_t cap, const struct rsyslog_msg *m);

/* Split a validated `host[:port]` (config.c checks the setting) into host
 * and port (RSYSLOG_PORT_DEFAULT when absent). 0, or -1 when the text is
 * empty, too long or its port is not 1..65535. */
int rsyslog_parse_target(const char *text, char *host, size_t hostcap, uint16_t *port);

/* The queued message a log line is about, when its module names its own
 * ids in a form we know: "smtp" ("<client>: queued N"), "dlv" and "spool"
 * ("message N"). Only those modules: others quote peers' text (a smart
 * host replying "message 42 accepted" must not make a false id). The first
 * such number wins; in those lines it comes before any quoted peer text.
 * Writes the digits to `out` and returns 1, or returns 0. */
int rsyslog_queue_id(const char *module, const char *text, char out[RSYSLOG_QID_MAX]);

#endif
