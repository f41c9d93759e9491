/* dsn.h — delivery status notifications (RFC 3464) for permanent failures.
 *
 * PST mail often carries spoofed internal senders, so a DSN goes to the
 * configured bounce address, not to the envelope sender (unless bouncing
 * to the sender is explicitly enabled); null senders never get one. This
 * module only composes text, streamed piece by piece into a sink (the
 * queue takes it in chunks), so a report for any number of recipients
 * needs no buffer of its size: the report parts (dsn_write_report), then
 * the caller's copy of the original headers, then dsn_write_trailer(). */
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

/* Takes the next piece of the report; returns 0, or non-zero to stop
 * (storage full or failing). Pieces are at most DSN_PIECE_MAX octets. */
typedef int (*dsn_sink_fn)(void *ctx, const char *data, size_t len);
#define DSN_PIECE_MAX 1024

/* Headers, the human-readable part, the delivery-status part, and the
 * header line opening the text/rfc822-headers part. Lines end in CRLF and
 * are shorter than 998 octets; text from the original message or a remote
 * server is kept to one line of printable ASCII (at most DSN_TEXT_MAX
 * octets), so it cannot add a header or a part. Returns 0, or -1 when the
 * sink stopped. */
#define DSN_TEXT_MAX 320
int dsn_write_report(const struct dsn_info *info, dsn_sink_fn sink, void *ctx);
/* The closing boundary after the original headers; 0 or -1 as above. */
int dsn_write_trailer(const struct dsn_info *info, dsn_sink_fn sink, void *ctx);

#endif
