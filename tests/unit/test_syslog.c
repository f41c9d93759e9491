/* Remote log: the RFC 5424 formatter (rsyslog_fmt.c) byte for byte, the
 * target and queue-id parsers, and the log sink hook (log.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "hal_fakes.h"
#include "log.h"
#include "rsyslog_fmt.h"

#define T_2026 1796325649 /* 2026-12-03T19:20:49Z */

static void test_format_fields(void **state)
{
    (void)state;
    char out[RSYSLOG_MSG_MAX];
    struct rsyslog_msg m = {.severity = 6, .wall = T_2026, .hostname = "relay",
                            .msgid = "smtp", .queue_id = NULL, .text = "10.0.2.2: hello"};
    size_t n = rsyslog_format(out, sizeof out, &m);
    assert_string_equal(out, "<22>1 2026-12-03T19:20:49Z relay shr - smtp - 10.0.2.2: hello");
    assert_int_equal(n, strlen(out));
    /* PRI = mail (2) * 8 + severity, for each level. */
    m.severity = rsyslog_severity(LOG_ERR);
    rsyslog_format(out, sizeof out, &m);
    assert_memory_equal(out, "<19>1 ", 6);
    m.severity = rsyslog_severity(LOG_WARN);
    rsyslog_format(out, sizeof out, &m);
    assert_memory_equal(out, "<20>1 ", 6);
    m.severity = rsyslog_severity(LOG_DEBUG);
    rsyslog_format(out, sizeof out, &m);
    assert_memory_equal(out, "<23>1 ", 6);
    assert_int_equal(rsyslog_severity(LOG_INFO), 6);
}

static void test_format_nil_values(void **state)
{
    (void)state;
    char out[RSYSLOG_MSG_MAX];
    /* A clock nobody set (1970 + uptime), no hostname, no module, no text. */
    struct rsyslog_msg m = {.severity = 4, .wall = 1234, .hostname = "", .msgid = NULL,
                            .queue_id = "", .text = ""};
    rsyslog_format(out, sizeof out, &m);
    assert_string_equal(out, "<20>1 - - shr - - -");
    /* Years beyond 9999 do not fit FULL-DATE. */
    m.wall = 253402300800LL;
    rsyslog_format(out, sizeof out, &m);
    assert_string_equal(out, "<20>1 - - shr - - -");
    m.wall = 253402300799LL;
    rsyslog_format(out, sizeof out, &m);
    assert_string_equal(out, "<20>1 9999-12-31T23:59:59Z - shr - - -");
}

static void test_format_structured_data_escaped(void **state)
{
    (void)state;
    char out[RSYSLOG_MSG_MAX];
    struct rsyslog_msg m = {.severity = 6, .wall = T_2026, .hostname = "relay",
                            .msgid = "smtp", .queue_id = "123", .text = "queued 123"};
    rsyslog_format(out, sizeof out, &m);
    assert_string_equal(out, "<22>1 2026-12-03T19:20:49Z relay shr - smtp "
                             "[shr@32473 queue-id=\"123\"] queued 123");
    /* RFC 5424 6.3.3: '"', '\' and ']' are escaped inside PARAM-VALUE. */
    m.queue_id = "a\"b\\c]d";
    rsyslog_format(out, sizeof out, &m);
    assert_non_null(strstr(out, "[shr@32473 queue-id=\"a\\\"b\\\\c\\]d\"] queued 123"));
}

static void test_format_header_fields_sanitised(void **state)
{
    (void)state;
    char out[RSYSLOG_MSG_MAX];
    char longhost[300];
    memset(longhost, 'h', sizeof longhost - 1);
    longhost[sizeof longhost - 1] = '\0';
    /* A space or control byte in a header field would shift every field
     * after it; MSGID is at most 32 octets, HOSTNAME 255. */
    struct rsyslog_msg m = {.severity = 6, .wall = T_2026, .hostname = longhost,
                            .msgid = "a b\x01" "cdefghijklmnopqrstuvwxyz0123456789XYZ",
                            .text = "x\x1b[2Jy"};
    rsyslog_format(out, sizeof out, &m);
    char want[RSYSLOG_MSG_MAX];
    snprintf(want, sizeof want, "<22>1 2026-12-03T19:20:49Z %.255s shr - "
             "a_b_cdefghijklmnopqrstuvwxyz0123 - x?[2Jy", longhost);
    assert_string_equal(out, want);
}

static void test_format_length_bounded(void **state)
{
    (void)state;
    char text[1000];
    memset(text, 'm', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    char out[RSYSLOG_MSG_MAX + 8];
    memset(out, 'X', sizeof out);
    struct rsyslog_msg m = {.severity = 6, .wall = T_2026, .hostname = "relay",
                            .msgid = "smtp", .queue_id = "9", .text = text};
    size_t n = rsyslog_format(out, RSYSLOG_MSG_MAX, &m);
    assert_int_equal(n, RSYSLOG_MSG_MAX - 1);
    assert_int_equal(strlen(out), n);
    assert_int_equal(out[RSYSLOG_MSG_MAX], 'X'); /* nothing past cap */
    assert_memory_equal(out + n - 3, "mmm", 3);
    /* Too small for the header: nothing, rather than a cut header. */
    n = rsyslog_format(out, 20, &m);
    assert_int_equal(n, 0);
    assert_string_equal(out, "");
    assert_int_equal(rsyslog_format(out, 0, &m), 0);
}

static void test_parse_target(void **state)
{
    (void)state;
    char host[64];
    uint16_t port = 0;
    assert_int_equal(rsyslog_parse_target("10.0.2.2", host, sizeof host, &port), 0);
    assert_string_equal(host, "10.0.2.2");
    assert_int_equal(port, 514);
    assert_int_equal(rsyslog_parse_target("log.example.com:6514", host, sizeof host, &port), 0);
    assert_string_equal(host, "log.example.com");
    assert_int_equal(port, 6514);
    assert_int_equal(rsyslog_parse_target("h:65535", host, sizeof host, &port), 0);
    assert_int_equal(port, 65535);
    assert_int_equal(rsyslog_parse_target("", host, sizeof host, &port), -1);
    assert_int_equal(rsyslog_parse_target(":514", host, sizeof host, &port), -1);
    assert_int_equal(rsyslog_parse_target("h:", host, sizeof host, &port), -1);
    assert_int_equal(rsyslog_parse_target("h:0", host, sizeof host, &port), -1);
    assert_int_equal(rsyslog_parse_target("h:65536", host, sizeof host, &port), -1);
    assert_int_equal(rsyslog_parse_target("h:5x", host, sizeof host, &port), -1);
    assert_int_equal(rsyslog_parse_target("h:-1", host, sizeof host, &port), -1);
    assert_int_equal(rsyslog_parse_target("hhhh", host, 4, &port), -1);
}

static void test_queue_id(void **state)
{
    (void)state;
    char id[RSYSLOG_QID_MAX];
    assert_int_equal(rsyslog_queue_id("smtp", "10.0.2.2: queued 123, 45 bytes, helo x", id), 1);
    assert_string_equal(id, "123");
    assert_int_equal(rsyslog_queue_id("dlv", "DSN for message 7 queued to a@b.c", id), 1);
    assert_string_equal(id, "7");
    assert_int_equal(rsyslog_queue_id("spool", "cannot store message 42: disk I/O error", id), 1);
    assert_string_equal(id, "42");
    /* Not ids: other modules (they quote peers), counts, words around. */
    assert_int_equal(rsyslog_queue_id("out", "mx: 250 message 42 accepted", id), 0);
    assert_int_equal(rsyslog_queue_id("spool", "dropped 3 incomplete message(s)", id), 0);
    assert_int_equal(rsyslog_queue_id("smtp", "queue full (10 bytes queued, 0 arriving)", id), 0);
    assert_int_equal(rsyslog_queue_id("smtp", "x: unqueued 5", id), 0);
    assert_int_equal(rsyslog_queue_id("smtp", "x: queued 5abc", id), 0);
    assert_int_equal(rsyslog_queue_id("smtp", "x: queued 0", id), 0);
    assert_int_equal(rsyslog_queue_id("smtp", "x: queued 12345678901234567890123", id), 0);
    assert_int_equal(rsyslog_queue_id(NULL, "queued 5", id), 0);
}

/* --- the sink hook in log.c --- */

static int sink_calls;
static char sink_module[32], sink_text[LOG_TEXT_MAX];
static int64_t sink_qid;
static uint8_t sink_level;

static void sink(const struct log_entry *e, const char *module, int64_t queue_id)
{
    sink_calls++;
    snprintf(sink_module, sizeof sink_module, "%s", module);
    snprintf(sink_text, sizeof sink_text, "%s", e->text);
    sink_qid = queue_id;
    sink_level = e->level;
    /* What a sink logs is stored, but not fed back to it. */
    log_warn("sinkself", "inside");
}

static void test_log_sink(void **state)
{
    (void)state;
    size_t before = log_count();
    log_set_sink(sink);
    log_info("smtp", "hello \x1b%s", "x");
    assert_int_equal(sink_calls, 1);
    assert_string_equal(sink_module, "smtp");
    assert_string_equal(sink_text, "smtp: hello \\x1bx"); /* already escaped */
    assert_int_equal(sink_qid, 0);
    assert_int_equal(sink_level, LOG_INFO);
    assert_string_equal(log_get(log_count() - 1)->text, "sinkself: inside");
    log_write_msg(LOG_ERR, "dlv", 77, "failed %d", 5);
    assert_int_equal(sink_calls, 2);
    assert_int_equal(sink_qid, 77);
    assert_string_equal(sink_text, "dlv: failed 5");
    log_write_msg(LOG_ERR, "dlv", -3, "none");
    assert_int_equal(sink_qid, 0);
    log_set_sink(NULL);
    log_info("smtp", "unseen");
    assert_int_equal(sink_calls, 3);
    assert_true(log_count() > before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_fields),
        cmocka_unit_test(test_format_nil_values),
        cmocka_unit_test(test_format_structured_data_escaped),
        cmocka_unit_test(test_format_header_fields_sanitised),
        cmocka_unit_test(test_format_length_bounded),
        cmocka_unit_test(test_parse_target),
        cmocka_unit_test(test_queue_id),
        cmocka_unit_test(test_log_sink),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
