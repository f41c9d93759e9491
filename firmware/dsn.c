/* dsn.c — RFC 3464 delivery status notifications; see dsn.h. */
#include "dsn.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "clockfmt.h"

struct buf {
    char *p;
    size_t cap, len;
    int overflow;
};

static void put(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct buf *b, const char *fmt, ...)
{
    if (b->overflow)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= b->cap - b->len)
        b->overflow = 1;
    else
        b->len += (size_t)n;
}

/* A reply as one header-safe line: no CR/LF, at most 200 characters. */
static void put_clean(struct buf *b, const char *text)
{
    char line[201];
    size_t n = 0;
    for (; *text && n < sizeof line - 1; text++)
        line[n++] = (*text == '\r' || *text == '\n' || (unsigned char)*text < 32) ? ' ' : *text;
    line[n] = '\0';
    put(b, "%s", line);
}

size_t dsn_compose(char *out, size_t cap, const struct dsn_info *info)
{
    struct buf b = {out, cap, 0, 0};
    char date[CLOCKFMT_RFC5322_LEN], arrival[CLOCKFMT_RFC5322_LEN];
    clockfmt_rfc5322(info->now, date);
    clockfmt_rfc5322(info->arrival, arrival);
    put(&b, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n", info->reporting_mta);
    put(&b, "To: <%s>\r\n", info->to);
    put(&b, "Subject: Undelivered Mail Returned to Sender\r\n");
    put(&b, "Date: %s\r\n", date);
    put(&b, "Message-ID: <dsn.%lld.%lld@%s>\r\n", (long long)info->queue_id, (long long)info->now,
        info->reporting_mta);
    put(&b, "Auto-Submitted: auto-replied\r\n");
    put(&b, "MIME-Version: 1.0\r\n");
    put(&b, "Content-Type: multipart/report; report-type=delivery-status;\r\n"
            "\tboundary=\"%s\"\r\n\r\n", info->boundary);
    put(&b, "This is a MIME-encapsulated message.\r\n\r\n");
    put(&b, "--%s\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n", info->boundary);
    put(&b, "The relay %s could not deliver message %lld (Message-ID ", info->reporting_mta,
        (long long)info->queue_id);
    put_clean(&b, info->orig_message_id[0] ? info->orig_message_id : "none");
    put(&b, ")\r\nfrom <");
    put_clean(&b, info->orig_sender);
    put(&b, "> to these recipients:\r\n\r\n");
    for (int i = 0; i < info->rcpt_count; i++) {
        put(&b, "<");
        put_clean(&b, info->rcpts[i].address);
        put(&b, ">: ");
        put_clean(&b, info->rcpts[i].diagnostic);
        put(&b, "\r\n");
    }
    put(&b, "\r\n--%s\r\nContent-Type: message/delivery-status\r\n\r\n", info->boundary);
    put(&b, "Reporting-MTA: dns; %s\r\n", info->reporting_mta);
    put(&b, "X-Queue-ID: %lld\r\n", (long long)info->queue_id);
    put(&b, "Arrival-Date: %s\r\n", arrival);
    for (int i = 0; i < info->rcpt_count; i++) {
        const struct dsn_rcpt *r = &info->rcpts[i];
        put(&b, "\r\nFinal-Recipient: rfc822; ");
        put_clean(&b, r->address);
        put(&b, "\r\nAction: failed\r\nStatus: %s\r\n", r->status);
        if (r->remote_mta[0]) {
            put(&b, "Remote-MTA: dns; ");
            put_clean(&b, r->remote_mta);
            put(&b, "\r\n");
        }
        put(&b, "Diagnostic-Code: smtp; ");
        put_clean(&b, r->diagnostic);
        put(&b, "\r\nLast-Attempt-Date: %s\r\n", date);
    }
    put(&b, "\r\n--%s\r\nContent-Type: text/rfc822-headers\r\n\r\n", info->boundary);
    return b.overflow ? 0 : b.len;
}

size_t dsn_trailer(char *out, size_t cap, const struct dsn_info *info)
{
    int n = snprintf(out, cap, "\r\n--%s--\r\n", info->boundary);
    return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}
