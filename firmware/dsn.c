/* dsn.c — RFC 3464 delivery status notifications; see dsn.h. */
#include "dsn.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "clockfmt.h"

struct out {
    dsn_sink_fn sink;
    void *ctx;
    int failed;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
    if (o->failed)
        return;
    char piece[DSN_PIECE_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(piece, sizeof piece, fmt, ap);
    va_end(ap);
    /* Every format here is bounded far below a piece; a cut would be a
     * bug, and a report with a cut line is not sent. */
    if (n < 0 || (size_t)n >= sizeof piece || o->sink(o->ctx, piece, (size_t)n) != 0)
        o->failed = 1;
}

/* Text from elsewhere as one header-safe line: printable ASCII only (CR,
 * LF and other controls become spaces, 8-bit bytes '?'), at most
 * DSN_TEXT_MAX octets. */
static void put_clean(struct out *o, const char *text)
{
    char line[DSN_TEXT_MAX + 1];
    size_t n = 0;
    for (; *text && n < sizeof line - 1; text++) {
        unsigned char ch = (unsigned char)*text;
        line[n++] = ch < 32 || ch == 127 ? ' ' : ch > 127 ? '?' : (char)ch;
    }
    line[n] = '\0';
    put(o, "%s", line);
}

int dsn_write_report(const struct dsn_info *info, dsn_sink_fn sink, void *ctx)
{
    struct out o = {sink, ctx, 0};
    struct out *b = &o;
    char date[CLOCKFMT_RFC5322_LEN], arrival[CLOCKFMT_RFC5322_LEN];
    clockfmt_rfc5322(info->now, date);
    clockfmt_rfc5322(info->arrival, arrival);
    put(b, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n", info->reporting_mta);
    put(b, "To: <%s>\r\n", info->to);
    put(b, "Subject: Undelivered Mail Returned to Sender\r\n");
    put(b, "Date: %s\r\n", date);
    put(b, "Message-ID: <dsn.%lld.%lld@%s>\r\n", (long long)info->queue_id, (long long)info->now,
        info->reporting_mta);
    put(b, "Auto-Submitted: auto-replied\r\n");
    put(b, "MIME-Version: 1.0\r\n");
    put(b, "Content-Type: multipart/report; report-type=delivery-status;\r\n"
           "\tboundary=\"%s\"\r\n\r\n", info->boundary);
    put(b, "This is a MIME-encapsulated message.\r\n\r\n");
    put(b, "--%s\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n", info->boundary);
    put(b, "The relay %s could not deliver message %lld (Message-ID ", info->reporting_mta,
        (long long)info->queue_id);
    put_clean(b, info->orig_message_id[0] ? info->orig_message_id : "none");
    put(b, ")\r\nfrom <");
    put_clean(b, info->orig_sender);
    put(b, "> to these recipients:\r\n\r\n");
    for (int i = 0; i < info->rcpt_count; i++) {
        put(b, "<");
        put_clean(b, info->rcpts[i].address);
        put(b, ">: ");
        put_clean(b, info->rcpts[i].diagnostic);
        put(b, "\r\n");
    }
    put(b, "\r\n--%s\r\nContent-Type: message/delivery-status\r\n\r\n", info->boundary);
    put(b, "Reporting-MTA: dns; %s\r\n", info->reporting_mta);
    put(b, "X-Queue-ID: %lld\r\n", (long long)info->queue_id);
    put(b, "Arrival-Date: %s\r\n", arrival);
    for (int i = 0; i < info->rcpt_count; i++) {
        const struct dsn_rcpt *r = &info->rcpts[i];
        put(b, "\r\nFinal-Recipient: rfc822; ");
        put_clean(b, r->address);
        put(b, "\r\nAction: failed\r\nStatus: %s\r\n", r->status);
        if (r->remote_mta[0]) {
            put(b, "Remote-MTA: dns; ");
            put_clean(b, r->remote_mta);
            put(b, "\r\n");
        }
        put(b, "Diagnostic-Code: smtp; ");
        put_clean(b, r->diagnostic);
        put(b, "\r\nLast-Attempt-Date: %s\r\n", date);
    }
    put(b, "\r\n--%s\r\nContent-Type: text/rfc822-headers\r\n\r\n", info->boundary);
    return o.failed ? -1 : 0;
}

int dsn_write_trailer(const struct dsn_info *info, dsn_sink_fn sink, void *ctx)
{
    struct out o = {sink, ctx, 0};
    put(&o, "\r\n--%s--\r\n", info->boundary);
    return o.failed ? -1 : 0;
}
