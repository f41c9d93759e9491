/* RFC 3464 delivery status notification text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "dsn.h"

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
    size_t n = dsn_compose(out, sizeof out, &i);
    assert_true(n > 0);
    out[n] = '\0';
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
    size_t t = dsn_trailer(tail, sizeof tail, &i);
    tail[t] = '\0';
    assert_string_equal(tail, "\r\n--42.1700003600/relay.example.com--\r\n");
}

static void test_hostile_reply_cannot_inject_headers(void **state)
{
    (void)state;
    struct dsn_info i = info();
    i.rcpt_count = 1;
    i.rcpts[0].diagnostic = "550 bad\r\nBcc: victim@example.com\r\n\r\nforged";
    char out[8192];
    size_t n = dsn_compose(out, sizeof out, &i);
    assert_true(n > 0);
    out[n] = '\0';
    assert_null(strstr(out, "\r\nBcc:"));
    assert_non_null(strstr(out, "550 bad  Bcc: victim@example.com    forged"));
}

static void test_too_small_buffer(void **state)
{
    (void)state;
    struct dsn_info i = info();
    char out[200];
    assert_int_equal(dsn_compose(out, sizeof out, &i), 0);
    char tail[8];
    assert_int_equal(dsn_trailer(tail, sizeof tail, &i), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_structure),
        cmocka_unit_test(test_hostile_reply_cannot_inject_headers),
        cmocka_unit_test(test_too_small_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
