/* RFC 3464 delivery status notification text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "dsn.h"

/* A sink that collects the report, optionally refusing after `limit`
 * octets (a full or failing queue). */
struct sink {
    char *buf;
    size_t cap, len, limit;
    size_t pieces, biggest;
};

static int sink_put(void *ctx, const char *data, size_t len)
{
    struct sink *k = ctx;
    assert_true(len > 0 && len <= DSN_PIECE_MAX);
    if (k->limit && k->len + len > k->limit)
        return -1;
    assert_true(k->len + len < k->cap);
    memcpy(k->buf + k->len, data, len);
    k->len += len;
    k->buf[k->len] = '\0';
    k->pieces++;
    if (len > k->biggest)
        k->biggest = len;
    return 0;
}

/* The report for `i` into out (NUL-terminated); returns its length. */
static size_t compose(char *out, size_t cap, const struct dsn_info *i)
{
    struct sink k = {out, cap, 0, 0, 0, 0};
    assert_int_equal(dsn_write_report(i, sink_put, &k), 0);
    return k.len;
}

static struct dsn_info info(void)
{
    struct dsn_info i;
    memset(&i, 0, sizeof i);
    i.reporting_mta = "relay.example.com";
    i.to = "postmaster@example.com";
    i.orig_sender = "pst@vendor.test";
    i.orig_message_id = "<abc@vendor.test>";
    i.queue_id = 42;
    i.arrival = 1700000000;
    i.now = 1700003600;
    i.boundary = "42.1700003600/relay.example.com";
    i.rcpt_count = 2;
    i.rcpts[0] = (struct dsn_rcpt){"nobody@example.com", "5.1.1", "550 5.1.1 no such user",
                                   "mail.example.com:25"};
    i.rcpts[1] = (struct dsn_rcpt){"gone@example.com", "5.4.7",
                                   "5.4.7 queue lifetime expired; last error: 451 4.3.0 later", ""};
    return i;
}

static void test_structure(void **state)
{
    (void)state;
    struct dsn_info i = info();
    char out[8192];
    size_t n = compose(out, sizeof out, &i);
    assert_true(n > 0);
    const char *want[] = {
        "From: Mail Delivery System <MAILER-DAEMON@relay.example.com>\r\n",
        "To: <postmaster@example.com>\r\n",
        "Auto-Submitted: auto-replied\r\n",
        "Content-Type: multipart/report; report-type=delivery-status;\r\n"
        "\tboundary=\"42.1700003600/relay.example.com\"\r\n",
        "--42.1700003600/relay.example.com\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; relay.example.com\r\n",
        "Arrival-Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n",
        "\r\nFinal-Recipient: rfc822; nobody@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Remote-MTA: dns; mail.example.com:25\r\nDiagnostic-Code: smtp; 550 5.1.1 no such user\r\n",
        "\r\nFinal-Recipient: rfc822; gone@example.com\r\nAction: failed\r\nStatus: 5.4.7\r\n"
        "Diagnostic-Code: smtp; 5.4.7 queue lifetime expired",
        "<abc@vendor.test>",
        "--42.1700003600/relay.example.com\r\nContent-Type: text/rfc822-headers\r\n\r\n",
    };
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++)
        assert_non_null(strstr(out, want[k]));
    /* No Remote-MTA for a recipient no server answered for. */
    assert_null(strstr(strstr(out, "gone@example.com\r\nAction"), "Remote-MTA"));
    /* Every line ends in CRLF: no bare LF anywhere. */
    for (size_t k = 0; k < n; k++)
        if (out[k] == '\n')
            assert_int_equal(out[k - 1], '\r');
    char tail[128];
    struct sink k = {tail, sizeof tail, 0, 0, 0, 0};
    assert_int_equal(dsn_write_trailer(&i, sink_put, &k), 0);
    assert_string_equal(tail, "\r\n--42.1700003600/relay.example.com--\r\n");
}

static void test_hostile_reply_cannot_inject_headers(void **state)
{
    (void)state;
    struct dsn_info i = info();
    i.rcpt_count = 1;
    i.rcpts[0].diagnostic = "550 bad\r\nBcc: victim@example.com\r\n\r\nforged";
    char out[8192];
    size_t n = compose(out, sizeof out, &i);
    assert_true(n > 0);
    assert_null(strstr(out, "\r\nBcc:"));
    assert_non_null(strstr(out, "550 bad  Bcc: victim@example.com    forged"));
}

/* A sink that stops (queue full, storage error) stops the report, and
 * the caller is told: never a report silently cut short. */
static void test_sink_refuses(void **state)
{
    (void)state;
    struct dsn_info i = info();
    static char out[8192];
    size_t whole = compose(out, sizeof out, &i);
    for (size_t limit = 1; limit < whole; limit += 97) {
        struct sink k = {out, sizeof out, 0, limit, 0, 0};
        assert_int_equal(dsn_write_report(&i, sink_put, &k), -1);
        assert_true(k.len <= limit);
    }
    struct sink k = {out, sizeof out, 0, 3, 0, 0};
    assert_int_equal(dsn_write_trailer(&i, sink_put, &k), -1);
}

/* Issue 8: 100 recipients, each refused with a 500-octet reply, make one
 * complete RFC 3464 report (a fixed 16 KiB buffer lost it). Checked as a
 * reader would: MIME structure, one per-recipient block per address,
 * every line CRLF-terminated and under 998 octets, 8-bit bytes gone. */
static void test_hundred_long_failures(void **state)
{
    (void)state;
    static struct dsn_info i;
    static char addr[DSN_RCPT_MAX][64];
    static char diag[DSN_RCPT_MAX][520];
    i = info();
    i.rcpt_count = DSN_RCPT_MAX;
    for (int r = 0; r < DSN_RCPT_MAX; r++) {
        snprintf(addr[r], sizeof addr[r], "user%03d@example.com", r);
        int n = snprintf(diag[r], sizeof diag[r], "550 5.1.1 <user%03d> ", r);
        for (; n < 500; n++) /* letters, with LFs and 8-bit bytes among them */
            diag[r][n] = (char)(n % 7 ? 'a' + n % 26 : (n % 2 ? '\n' : 0xe9));
        diag[r][n] = '\0';
        i.rcpts[r] = (struct dsn_rcpt){addr[r], "5.1.1", diag[r], "mail.example.com"};
    }
    static char out[256 * 1024];
    struct sink k = {out, sizeof out, 0, 0, 0, 0};
    assert_int_equal(dsn_write_report(&i, sink_put, &k), 0);
    assert_int_equal(dsn_write_trailer(&i, sink_put, &k), 0);
    assert_true(k.len > 16384); /* more than the old buffer held */
    /* lines */
    size_t line_start = 0;
    for (size_t p = 0; p < k.len; p++) {
        unsigned char ch = (unsigned char)out[p];
        assert_true(ch < 128);
        if (ch == '\n') {
            assert_true(p > 0 && out[p - 1] == '\r');
            assert_true(p - line_start < 998);
            line_start = p + 1;
        } else if (ch == '\r') {
            assert_int_equal(out[p + 1], '\n');
        }
    }
    assert_true(k.len >= 2 && out[k.len - 1] == '\n');
    /* structure: the three parts in order, closed */
    const char *b = "--42.1700003600/relay.example.com\r\n";
    const char *text = strstr(out, b);
    assert_non_null(text);
    const char *status = strstr(text + 1, "--42.1700003600/relay.example.com\r\n"
                                          "Content-Type: message/delivery-status\r\n\r\n");
    assert_non_null(status);
    const char *hdrs = strstr(status + 1, "--42.1700003600/relay.example.com\r\n"
                                          "Content-Type: text/rfc822-headers\r\n");
    assert_non_null(hdrs);
    assert_non_null(strstr(hdrs, "\r\n--42.1700003600/relay.example.com--\r\n"));
    /* every recipient: once in the human part, one block in the status part */
    for (int r = 0; r < DSN_RCPT_MAX; r++) {
        char want[256];
        snprintf(want, sizeof want, "\r\n<user%03d@example.com>: 550 5.1.1 <user%03d> ", r, r);
        const char *h = strstr(text, want);
        assert_non_null(h);
        assert_true(h < status);
        snprintf(want, sizeof want, "\r\nFinal-Recipient: rfc822; user%03d@example.com\r\n"
                 "Action: failed\r\nStatus: 5.1.1\r\nRemote-MTA: dns; mail.example.com\r\n"
                 "Diagnostic-Code: smtp; 550 5.1.1 <user%03d> ", r, r);
        const char *blk = strstr(status, want);
        assert_non_null(blk);
        assert_true(blk < hdrs);
    }
    size_t blocks = 0;
    for (const char *q = status; (q = strstr(q, "Final-Recipient:")) != NULL; q++)
        blocks++;
    assert_int_equal(blocks, DSN_RCPT_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_structure),
        cmocka_unit_test(test_hostile_reply_cannot_inject_headers),
        cmocka_unit_test(test_sink_refuses),
        cmocka_unit_test(test_hundred_long_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
