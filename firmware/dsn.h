/* dsn.h — delivery status notifications (RFC 3464) for permanent failures.
 *
 * PST mail often carries spoofed internal senders, so a DSN goes to the
 * configured bounce address, not to the envelope sender (unless bouncing
 * to the sender is explicitly enabled); null senders never get one. This
 * module only composes text: the report parts (dsn_compose) and, after
 * them, the caller appends the original headers and dsn_trailer(). */
#ifndef DSN_H
#define DSN_H

#include <stddef.h>
#include <stdint.h>

#define DSN_RCPT_MAX 100

struct dsn_rcpt {
    const char *address;
    const char *status;  /* enhanced status "5.1.1"; "5.4.7" for lifetime expiry */
    const char *diagnostic; /* the remote reply, "smtp; 550 5.1.1 ..." is built from it */
    const char *remote_mta; /* smart host that answered, "" when none did */
};

struct dsn_info {
    const char *reporting_mta; /* our hostname */
    const char *to;            /* bounce address */
    const char *orig_sender;   /* envelope sender of the failed message */
    const char *orig_message_id;
    int64_t queue_id;
    int64_t arrival;  /* when the failed message was received */
    int64_t now;
    const char *boundary;      /* MIME boundary, unique per DSN */
    int rcpt_count;
    struct dsn_rcpt rcpts[DSN_RCPT_MAX];
};

/* Headers, the human-readable part, the delivery-status part, and the
 * header line opening the text/rfc822-headers part. Lines end in CRLF.
 * Returns the length written, or 0 when `cap` is too small. */
size_t dsn_compose(char *out, size_t cap, const struct dsn_info *info);
/* The closing boundary after the original headers. */
size_t dsn_trailer(char *out, size_t cap, const struct dsn_info *info);

#endif
