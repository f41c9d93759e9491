/* firmware/smtpd.c driven by scripted SMTP transcripts.
 *
 * The engine is sans-I/O: the tests feed client bytes through smtpd_feed()
 * and watch what comes out of a fake smtpd_ops table that records every
 * reply, every stored message byte and every transport action (STARTTLS,
 * close). When msg_end is called, the feed helper commits the message with
 * smtpd_msg_done() and feeds the input the engine had not consumed yet, the
 * way the transport does. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "smtpd.h"

/* --- the fake transport --- */

#define MAX_MSGS 8
#define HOST "mx.test"
#define MAX_SIZE 10000

struct msg {
    uint8_t *data;
    size_t len, cap;
    int ended, aborted;
    char helo[SMTPD_DOMAIN_MAX + 1];
    char sender[SMTPD_PATH_MAX + 1];
    int rcpt_count;
    char rcpts[SMTPD_RCPT_MAX][SMTPD_PATH_MAX + 1];
    int tls, authenticated;
    uint64_t declared_size;
};

struct fake {
    struct smtpd s;
    /* replies since the last check, NUL-terminated */
    char *r;
    size_t rlen, rcap;
    unsigned long code_count[1000]; /* reply lines per code, whole session */
    unsigned long reply_calls;
    /* messages */
    struct msg msgs[MAX_MSGS];
    int nmsgs;
    int cur; /* index of the open message, -1 when none */
    int begins, writes, ends, aborts, starttls_calls, close_calls;
    /* knobs */
    int queue_room;
    int begin_rc, write_rc;
    int commit_ok;
    int auto_commit;        /* feed() commits after msg_end */
    int commit_in_callback; /* msg_end itself calls smtpd_msg_done() */
    int pending_commit;
    /* what the engine asked */
    uint64_t last_room_size;
    /* reply buffer of the transport: replies counted in reply_used, room
     * reported as reply_cap - reply_used (reply_cap 0: unlimited) */
    size_t reply_cap, reply_used, reply_used_max;
    char last_domain[512];
    char last_user[512], last_pass[512];
    int auth_checks, domain_checks;
    int auth_store_broken; /* auth_check answers -1: the account cannot be read */
};

static struct fake F;

static void fake_reply(void *ctx, const char *text, size_t len)
{
    struct fake *f = ctx;
    assert_ptr_equal(f, &F);
    /* Each engine reply is one line: text, then CRLF, nothing else. */
    assert_true(len >= 5);
    assert_int_equal(text[len - 2], '\r');
    assert_int_equal(text[len - 1], '\n');
    for (size_t i = 0; i + 2 < len; i++) {
        assert_true(text[i] != '\r' && text[i] != '\n' && text[i] != '\0');
    }
    assert_true(text[0] >= '2' && text[0] <= '5');
    assert_true(text[3] == ' ' || text[3] == '-');
    int code = (text[0] - '0') * 100 + (text[1] - '0') * 10 + (text[2] - '0');
    assert_true(code >= 200 && code < 600);
    f->code_count[code]++;
    f->reply_calls++;
    if (f->reply_cap) {
        f->reply_used += len;
        assert_true(f->reply_used <= f->reply_cap); /* the engine never overfills it */
        if (f->reply_used > f->reply_used_max)
            f->reply_used_max = f->reply_used;
    }
    if (f->rlen + len + 1 > f->rcap) {
        size_t cap = f->rcap ? f->rcap : 4096;
        while (f->rlen + len + 1 > cap)
            cap *= 2;
        f->r = realloc(f->r, cap);
        assert_non_null(f->r);
        f->rcap = cap;
    }
    memcpy(f->r + f->rlen, text, len);
    f->rlen += len;
    f->r[f->rlen] = '\0';
}

static int fake_domain_allowed(void *ctx, const char *domain)
{
    struct fake *f = ctx;
    f->domain_checks++;
    snprintf(f->last_domain, sizeof f->last_domain, "%s", domain);
    return strcmp(domain, "example.com") == 0;
}

static int fake_queue_has_room(void *ctx, uint64_t size)
{
    struct fake *f = ctx;
    f->last_room_size = size;
    return f->queue_room;
}

static int fake_auth_check(void *ctx, const char *user, const char *password)
{
    struct fake *f = ctx;
    f->auth_checks++;
    snprintf(f->last_user, sizeof f->last_user, "%s", user);
    snprintf(f->last_pass, sizeof f->last_pass, "%s", password);
    if (f->auth_store_broken)
        return -1;
    return strcmp(user, "u") == 0 && strcmp(password, "p") == 0;
}

static int fake_msg_begin(void *ctx, const struct smtpd_envelope *env)
{
    struct fake *f = ctx;
    f->begins++;
    assert_int_equal(f->cur, -1); /* no message is open */
    if (f->begin_rc != 0)
        return f->begin_rc;
    assert_true(f->nmsgs < MAX_MSGS);
    struct msg *m = &f->msgs[f->nmsgs];
    memset(m, 0, sizeof *m);
    snprintf(m->helo, sizeof m->helo, "%s", env->helo);
    snprintf(m->sender, sizeof m->sender, "%s", env->sender);
    assert_true(env->rcpt_count >= 1 && env->rcpt_count <= SMTPD_RCPT_MAX);
    m->rcpt_count = env->rcpt_count;
    for (int i = 0; i < env->rcpt_count; i++)
        snprintf(m->rcpts[i], sizeof m->rcpts[i], "%s", env->rcpts[i]);
    m->tls = env->tls;
    m->authenticated = env->authenticated;
    m->declared_size = env->declared_size;
    f->cur = f->nmsgs++;
    return 0;
}

static int fake_msg_write(void *ctx, const uint8_t *data, size_t len)
{
    struct fake *f = ctx;
    f->writes++;
    assert_true(f->cur >= 0);
    assert_true(len > 0 && len <= SMTPD_OUT_CHUNK);
    struct msg *m = &f->msgs[f->cur];
    if (m->len + len > m->cap) {
        size_t cap = m->cap ? m->cap : 256;
        while (m->len + len > cap)
            cap *= 2;
        m->data = realloc(m->data, cap);
        assert_non_null(m->data);
        m->cap = cap;
    }
    memcpy(m->data + m->len, data, len);
    m->len += len;
    return f->write_rc;
}

static void fake_msg_end(void *ctx)
{
    struct fake *f = ctx;
    f->ends++;
    assert_true(f->cur >= 0);
    f->msgs[f->cur].ended = 1;
    f->cur = -1;
    assert_int_equal(F.s.state, SMTPD_S_WAIT_COMMIT);
    if (f->commit_in_callback)
        smtpd_msg_done(&f->s, f->commit_ok, "42");
    else
        f->pending_commit = 1;
}

static void fake_msg_abort(void *ctx)
{
    struct fake *f = ctx;
    f->aborts++;
    if (f->cur >= 0) {
        f->msgs[f->cur].aborted = 1;
        f->cur = -1;
    }
}

static void fake_starttls(void *ctx)
{
    struct fake *f = ctx;
    f->starttls_calls++;
}

static void fake_close(void *ctx)
{
    struct fake *f = ctx;
    f->close_calls++;
}

static size_t fake_reply_room(void *ctx)
{
    struct fake *f = ctx;
    return f->reply_cap ? f->reply_cap - f->reply_used : (size_t)-1;
}

static const struct smtpd_ops fake_ops = {
    .reply = fake_reply,
    .domain_allowed = fake_domain_allowed,
    .queue_has_room = fake_queue_has_room,
    .auth_check = fake_auth_check,
    .msg_begin = fake_msg_begin,
    .msg_write = fake_msg_write,
    .msg_end = fake_msg_end,
    .msg_abort = fake_msg_abort,
    .starttls = fake_starttls,
    .close = fake_close,
    .reply_room = fake_reply_room,
};

static void fake_free(void)
{
    for (int i = 0; i < MAX_MSGS; i++)
        free(F.msgs[i].data);
    free(F.r);
    memset(&F, 0, sizeof F);
}

static void start_cfg(int tls_available, int auth_required, uint64_t max_size)
{
    fake_free();
    F.cur = -1;
    F.queue_room = 1;
    F.commit_ok = 1;
    F.auto_commit = 1;
    struct smtpd_config cfg = {
        .hostname = HOST,
        .max_size = max_size,
        .tls_available = tls_available,
        .auth_required = auth_required,
    };
    smtpd_init(&F.s, &cfg, &fake_ops, &F);
}

static void start(void) { start_cfg(1, 0, MAX_SIZE); }

static int setup(void **state)
{
    (void)state;
    start();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fake_free();
    return 0;
}

/* The transport: feed, commit after msg_end, feed the rest; stop when the
 * engine consumed nothing or waits (TLS, closed). Returns bytes consumed. */
static size_t feed(const void *data, size_t len)
{
    const uint8_t *p = data;
    size_t off = 0;
    for (;;) {
        size_t n = smtpd_feed(&F.s, p + off, len - off);
        assert_true(n <= len - off);
        off += n;
        if (F.pending_commit && F.auto_commit) {
            F.pending_commit = 0;
            smtpd_msg_done(&F.s, F.commit_ok, "42");
        }
        if (off == len || n == 0 || smtpd_waiting(&F.s))
            break;
    }
    /* Command line assembly never holds more than one line. */
    assert_true(F.s.line_len <= SMTPD_LINE_MAX);
    return off;
}

static size_t feed_str(const char *str) { return feed(str, strlen(str)); }

/* A string literal, NULs included. */
#define FEED(lit) feed((lit), sizeof(lit) - 1)

/* Feed one byte at a time (every chunk boundary). Returns bytes consumed. */
static size_t feed_bytewise(const void *data, size_t len)
{
    const uint8_t *p = data;
    size_t off = 0;
    while (off < len) {
        size_t n = feed(p + off, 1);
        if (n == 0)
            break;
        off += n;
    }
    return off;
}

static void clear(void)
{
    F.rlen = 0;
    if (F.r)
        F.r[0] = '\0';
}

static const char *replies(void) { return F.r ? F.r : ""; }

/* The replies since the last check are exactly `want`. */
#define EXPECT(want)                                                                               \
    do {                                                                                           \
        assert_string_equal(replies(), (want));                                                    \
        clear();                                                                                   \
    } while (0)

#define GREETING "220 " HOST " ESMTP Smart Host Relay\r\n"
#define EHLO_HEAD                                                                                  \
    "250-" HOST "\r\n250-PIPELINING\r\n250-SIZE 10000\r\n250-8BITMIME\r\n"                      \
    "250-ENHANCEDSTATUSCODES\r\n"
#define EHLO_STARTTLS EHLO_HEAD "250-STARTTLS\r\n250 HELP\r\n"
#define EHLO_BARE EHLO_HEAD "250 HELP\r\n"
#define EHLO_AUTH EHLO_HEAD "250-AUTH PLAIN LOGIN\r\n250 HELP\r\n"

#define R_SENDER_OK "250 2.1.0 Sender ok\r\n"
#define R_RCPT_OK "250 2.1.5 Recipient ok\r\n"
#define R_RCPT_DUP "250 2.1.5 Recipient ok (duplicate)\r\n"
#define R_DATA "354 End data with <CR><LF>.<CR><LF>\r\n"
#define R_QUEUED "250 2.0.0 Ok: queued as 42\r\n"
#define R_OK "250 2.0.0 Ok\r\n"
#define R_BYE "221 2.0.0 Bye\r\n"
#define R_NEED_EHLO "503 5.5.1 Send EHLO or HELO first\r\n"
#define R_NESTED "503 5.5.1 Nested MAIL command\r\n"
#define R_NEED_MAIL "503 5.5.1 Need MAIL before RCPT\r\n"
#define R_NEED_RCPT "503 5.5.1 Need RCPT before DATA\r\n"
#define R_UNKNOWN "500 5.5.2 Command unrecognized\r\n"
#define R_TOO_LONG "500 5.5.2 Line too long\r\n"
#define R_BARE "500 5.5.2 Bare CR or LF is not allowed; closing\r\n"
#define R_NUL "500 5.5.2 NUL in command line\r\n"
#define R_SMUGGLE "554 5.6.0 Bare CR, bare LF or NUL in message data; message refused, closing\r\n"
#define R_RELAY "550 5.7.1 Relaying denied\r\n"
#define R_ROUTE "550 5.7.1 Relaying denied: source routes are not accepted\r\n"
#define R_BAD_RCPT "501 5.1.3 Bad recipient address syntax\r\n"
#define R_LONG_RCPT "501 5.1.3 Recipient address too long\r\n"
#define R_BAD_SENDER "501 5.1.7 Bad sender address syntax\r\n"
#define R_LONG_SENDER "501 5.1.7 Sender address too long\r\n"
#define R_TOO_MANY "452 4.5.3 Too many recipients\r\n"
#define R_NO_ROOM "452 4.3.1 Insufficient system storage\r\n"
#define R_TOO_BIG "552 5.3.4 Message size exceeds fixed limit of 10000 bytes\r\n"
#define R_TEMPFAIL "451 4.3.0 Cannot store the message now; try again later\r\n"
#define R_LINE_1000 "500 5.5.2 Message line longer than 1000 octets; message not stored\r\n"
#define R_AUTH_OK "235 2.7.0 Authentication successful\r\n"
#define R_AUTH_BAD "535 5.7.8 Authentication credentials invalid\r\n"
#define R_AUTH_NEEDED "530 5.7.0 Authentication required\r\n"
#define R_TLS_READY "220 2.0.0 Ready to start TLS\r\n"

#define TXN_START "EHLO client.test\r\nMAIL FROM:<s@x.org>\r\nRCPT TO:<a@example.com>\r\nDATA\r\n"
#define TXN_START_REPLIES EHLO_STARTTLS R_SENDER_OK R_RCPT_OK R_DATA

/* A session in SMTPD_S_DATA (replies cleared). */
static void to_data(void)
{
    EXPECT(GREETING);
    FEED(TXN_START);
    EXPECT(TXN_START_REPLIES);
    assert_int_equal(F.s.state, SMTPD_S_DATA);
}

static void assert_msg(int i, const void *want, size_t want_len, int ended, int aborted)
{
    assert_true(i < F.nmsgs);
    const struct msg *m = &F.msgs[i];
    assert_int_equal(m->len, want_len);
    if (want_len)
        assert_memory_equal(m->data, want, want_len);
    assert_int_equal(m->ended, ended);
    assert_int_equal(m->aborted, aborted);
}

/* --- greeting, EHLO, HELO --- */

static void test_greeting(void **state)
{
    (void)state;
    /* No enhanced status code in the greeting (RFC 2034). */
    EXPECT(GREETING);
    assert_int_equal(F.s.state, SMTPD_S_INIT);
    assert_int_equal(F.reply_calls, 1);
    assert_int_equal(F.close_calls, 0);
    assert_string_equal(smtpd_state_name(SMTPD_S_INIT), "init");
    assert_string_equal(smtpd_state_name(SMTPD_S_CLOSED), "closed");
    assert_string_equal(smtpd_state_name((enum smtpd_state)99), "?");
}

static void test_ehlo_lines(void **state)
{
    (void)state;
    /* TLS available, not active: STARTTLS offered, AUTH not (needs TLS). */
    start_cfg(1, 1, MAX_SIZE);
    EXPECT(GREETING);
    FEED("EHLO client.test\r\n");
    EXPECT(EHLO_STARTTLS);
    assert_int_equal(F.s.state, SMTPD_S_READY);

    /* No TLS: neither STARTTLS nor AUTH. */
    start_cfg(0, 0, MAX_SIZE);
    EXPECT(GREETING);
    FEED("EHLO client.test\r\n");
    EXPECT(EHLO_BARE);

    /* auth_required without TLS available: AUTH still not offered. */
    start_cfg(0, 1, MAX_SIZE);
    EXPECT(GREETING);
    FEED("EHLO client.test\r\n");
    EXPECT(EHLO_BARE);

    /* SIZE carries the configured limit. */
    start_cfg(0, 0, 123456789012ULL);
    EXPECT(GREETING);
    FEED("EHLO client.test\r\n");
    EXPECT("250-" HOST "\r\n250-PIPELINING\r\n250-SIZE 123456789012\r\n250-8BITMIME\r\n"
           "250-ENHANCEDSTATUSCODES\r\n250 HELP\r\n");
}

static void test_ehlo_after_tls(void **state)
{
    (void)state;
    /* TLS active + auth required: AUTH offered, STARTTLS no longer. */
    start_cfg(1, 1, MAX_SIZE);
    FEED("EHLO client.test\r\nSTARTTLS\r\n");
    smtpd_tls_started(&F.s);
    clear();
    FEED("EHLO client.test\r\n");
    EXPECT(EHLO_AUTH);

    /* TLS active, no account: neither. */
    start_cfg(1, 0, MAX_SIZE);
    FEED("EHLO client.test\r\nSTARTTLS\r\n");
    smtpd_tls_started(&F.s);
    clear();
    FEED("EHLO client.test\r\n");
    EXPECT(EHLO_BARE);
}

static void test_helo_and_bad_ehlo(void **state)
{
    (void)state;
    EXPECT(GREETING);
    FEED("EHLO\r\n");
    EXPECT("501 Syntax: EHLO hostname\r\n");
    assert_int_equal(F.s.state, SMTPD_S_INIT);
    FEED("EHLO \r\n");
    EXPECT("501 Syntax: EHLO hostname\r\n");
    FEED("HELO\r\n");
    EXPECT("501 Syntax: HELO hostname\r\n");
    FEED("EHLO two words\r\n");
    EXPECT("501 Syntax: EHLO hostname\r\n");
    FEED("HELO bad\x01name\r\n");
    EXPECT("501 Syntax: HELO hostname\r\n");
    assert_int_equal(F.s.state, SMTPD_S_INIT);
    FEED("HELO client.test\r\n");
    EXPECT("250 " HOST "\r\n");
    assert_int_equal(F.s.state, SMTPD_S_READY);
    /* A transaction after HELO records the HELO name. */
    FEED("MAIL FROM:<s@x.org>\r\nRCPT TO:<a@example.com>\r\nDATA\r\nhi\r\n.\r\n");
    EXPECT(R_SENDER_OK R_RCPT_OK R_DATA R_QUEUED);
    assert_string_equal(F.msgs[0].helo, "client.test");
    /* Lower-case verbs. */
    FEED("ehlo other.test\r\n");
    EXPECT(EHLO_STARTTLS);
    FEED("helo other.test\r\n");
    EXPECT("250 " HOST "\r\n");
}

/* --- every command in every command state --- */

enum { ST_INIT, ST_READY, ST_MAIL, ST_RCPT, ST_N };

static const char *const state_prefix[ST_N] = {
    "",
    "EHLO client.test\r\n",
    "EHLO client.test\r\nMAIL FROM:<s@x.org>\r\n",
    "EHLO client.test\r\nMAIL FROM:<s@x.org>\r\nRCPT TO:<a@example.com>\r\n",
};

static const enum smtpd_state state_enum[ST_N] = {SMTPD_S_INIT, SMTPD_S_READY, SMTPD_S_MAIL,
                                                   SMTPD_S_RCPT};

struct cmd_case {
    const char *line;
    const char *want[ST_N];
    int next[ST_N]; /* state afterwards, -1: unchanged */
};

#define SAME {-1, -1, -1, -1}

static void test_every_command_every_state(void **state)
{
    (void)state;
    static const int CLOSED = 100, DATA = 101, WAIT_TLS = 102;
    const struct cmd_case cases[] = {
        {"MAIL FROM:<t@x.org>",
         {R_NEED_EHLO, R_SENDER_OK, R_NESTED, R_NESTED},
         {-1, ST_MAIL, -1, -1},
         },
        {"RCPT TO:<b@example.com>",
         {R_NEED_MAIL, R_NEED_MAIL, R_RCPT_OK, R_RCPT_OK},
         {-1, -1, ST_RCPT, -1},
         },
        {"RCPT TO:<a@example.com>",
         {R_NEED_MAIL, R_NEED_MAIL, R_RCPT_OK, R_RCPT_DUP},
         {-1, -1, ST_RCPT, -1},
         },
        {"DATA", {R_NEED_RCPT, R_NEED_RCPT, R_NEED_RCPT, R_DATA}, {-1, -1, -1, DATA}},
        {"DATA x",
         {"501 5.5.4 DATA takes no arguments\r\n", "501 5.5.4 DATA takes no arguments\r\n",
          "501 5.5.4 DATA takes no arguments\r\n", "501 5.5.4 DATA takes no arguments\r\n"},
         SAME,
         },
        {"RSET", {R_OK, R_OK, R_OK, R_OK}, {-1, ST_READY, ST_READY, ST_READY}},
        {"RSET x",
         {"501 5.5.4 RSET takes no arguments\r\n", "501 5.5.4 RSET takes no arguments\r\n",
          "501 5.5.4 RSET takes no arguments\r\n", "501 5.5.4 RSET takes no arguments\r\n"},
         SAME,
         },
        {"NOOP", {R_OK, R_OK, R_OK, R_OK}, SAME},
        {"NOOP some argument", {R_OK, R_OK, R_OK, R_OK}, SAME},
#define R_VRFY "252 2.5.2 Cannot VRFY user; send mail and delivery will be attempted\r\n"
        {"VRFY a@example.com", {R_VRFY, R_VRFY, R_VRFY, R_VRFY}, SAME},
#define R_HELP "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP STARTTLS AUTH\r\n"
        {"HELP", {R_HELP, R_HELP, R_HELP, R_HELP}, SAME},
        {"EXPN list", {R_UNKNOWN, R_UNKNOWN, R_UNKNOWN, R_UNKNOWN}, SAME},
        {"XYZZY", {R_UNKNOWN, R_UNKNOWN, R_UNKNOWN, R_UNKNOWN}, SAME},
        {"", {R_UNKNOWN, R_UNKNOWN, R_UNKNOWN, R_UNKNOWN}, SAME},
        {"MAILFROM:<t@x.org>", {R_UNKNOWN, R_UNKNOWN, R_UNKNOWN, R_UNKNOWN}, SAME},
#define R_TXN_TLS "503 5.5.1 STARTTLS not allowed during a mail transaction\r\n"
        {"STARTTLS",
         {R_TLS_READY, R_TLS_READY, R_TXN_TLS, R_TXN_TLS},
         {WAIT_TLS, WAIT_TLS, -1, -1},
         },
#define R_NO_AUTH "503 5.5.1 AUTH not available\r\n"
        {"AUTH PLAIN AHUAcA==", {R_NO_AUTH, R_NO_AUTH, R_NO_AUTH, R_NO_AUTH}, SAME},
        {"EHLO again.test",
         {EHLO_STARTTLS, EHLO_STARTTLS, EHLO_STARTTLS, EHLO_STARTTLS},
         {ST_READY, ST_READY, ST_READY, ST_READY},
         },
        {"HELO again.test",
         {"250 " HOST "\r\n", "250 " HOST "\r\n", "250 " HOST "\r\n", "250 " HOST "\r\n"},
         {ST_READY, ST_READY, ST_READY, ST_READY},
         },
        {"QUIT", {R_BYE, R_BYE, R_BYE, R_BYE}, {CLOSED, CLOSED, CLOSED, CLOSED}},
        {"quit", {R_BYE, R_BYE, R_BYE, R_BYE}, {CLOSED, CLOSED, CLOSED, CLOSED}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (int st = 0; st < ST_N; st++) {
            start();
            feed_str(state_prefix[st]);
            assert_int_equal(F.s.state, state_enum[st]);
            clear();
            char line[600];
            snprintf(line, sizeof line, "%s\r\n", cases[c].line);
            size_t used = feed_str(line);
            assert_int_equal(used, strlen(line));
            if (strcmp(replies(), cases[c].want[st]) != 0)
                print_error("command '%s' in state %s\n", cases[c].line,
                            smtpd_state_name(state_enum[st]));
            EXPECT(cases[c].want[st]);
            int next = cases[c].next[st];
            enum smtpd_state want_state = next == -1        ? state_enum[st]
                                          : next == CLOSED   ? SMTPD_S_CLOSED
                                          : next == DATA     ? SMTPD_S_DATA
                                          : next == WAIT_TLS ? SMTPD_S_WAIT_TLS
                                                             : state_enum[next];
            assert_int_equal(F.s.state, want_state);
            assert_int_equal(F.close_calls, want_state == SMTPD_S_CLOSED);
            assert_int_equal(F.starttls_calls, want_state == SMTPD_S_WAIT_TLS);
            assert_int_equal(F.begins, want_state == SMTPD_S_DATA);
        }
    }
}

static void test_command_sequence_rules(void **state)
{
    (void)state;
    EXPECT(GREETING);
    FEED("MAIL FROM:<s@x.org>\r\n");
    EXPECT(R_NEED_EHLO);
    FEED("RCPT TO:<a@example.com>\r\n");
    EXPECT(R_NEED_MAIL);
    FEED("DATA\r\n");
    EXPECT(R_NEED_RCPT);
    /* RSET before EHLO keeps the need for EHLO. */
    FEED("RSET\r\nMAIL FROM:<s@x.org>\r\n");
    EXPECT(R_OK R_NEED_EHLO);
    FEED("EHLO client.test\r\nMAIL FROM:<s@x.org>\r\nMAIL FROM:<s@x.org>\r\n");
    EXPECT(EHLO_STARTTLS R_SENDER_OK R_NESTED);
    FEED("DATA\r\n");
    EXPECT(R_NEED_RCPT);
    FEED("RCPT TO:<a@example.com>\r\nRSET\r\nRCPT TO:<a@example.com>\r\nDATA\r\n");
    EXPECT(R_RCPT_OK R_OK R_NEED_MAIL R_NEED_RCPT);
    /* EHLO in the middle of a transaction resets it as well. */
    FEED("MAIL FROM:<s@x.org>\r\nRCPT TO:<a@example.com>\r\nEHLO client.test\r\nDATA\r\n");
    EXPECT(R_SENDER_OK R_RCPT_OK EHLO_STARTTLS R_NEED_RCPT);
    /* Mixed case verbs and keywords. */
    FEED("mAiL fRoM:<s@x.org>\r\nrcpt to:<a@example.com>\r\nData\r\nx\r\n.\r\n");
    EXPECT(R_SENDER_OK R_RCPT_OK R_DATA R_QUEUED);
    assert_int_equal(F.ends, 1);
    assert_int_equal(F.begins, 1);
    /* QUIT: 221, close, and nothing after it is read. */
    const char tail[] = "QUIT\r\nNOOP\r\n";
    assert_int_equal(feed(tail, sizeof tail - 1), 6);
    EXPECT(R_BYE);
    assert_int_equal(F.close_calls, 1);
    assert_int_equal(F.s.state, SMTPD_S_CLOSED);
    assert_int_equal(FEED("NOOP\r\n"), 0);
    EXPECT("");
    assert_true(smtpd_waiting(&F.s));
}

/* --- message data --- */

static void test_pipelined_transaction(void **state)
{
    (void)state;
    EXPECT(GREETING);
    const char script[] = "EHLO client.test\r\n"
                          "MAIL FROM:<s@x.org> SIZE=40\r\n"
                          "RCPT TO:<a@example.com>\r\n"
                          "RCPT TO:<b@example.com>\r\n"
                          "DATA\r\n"
                          "Subject: t\r\n"
                          "\r\n"
                          "..x\r\n"
                          "...\r\n"
                          "..\r\n"
                          "a.b .\r\n"
                          " .\r\n"
                          "last\r\n"
                          ".\r\n"
                          "QUIT\r\n";
    assert_int_equal(feed(script, sizeof script - 1), sizeof script - 1);
    EXPECT(EHLO_STARTTLS R_SENDER_OK R_RCPT_OK R_RCPT_OK R_DATA R_QUEUED R_BYE);
    const char body[] = "Subject: t\r\n\r\n.x\r\n..\r\n.\r\na.b .\r\n .\r\nlast\r\n";
    assert_int_equal(F.nmsgs, 1);
    assert_msg(0, body, sizeof body - 1, 1, 0);
    assert_string_equal(F.msgs[0].helo, "client.test");
    assert_string_equal(F.msgs[0].sender, "s@x.org");
    assert_int_equal(F.msgs[0].rcpt_count, 2);
    assert_string_equal(F.msgs[0].rcpts[0], "a@example.com");
    assert_string_equal(F.msgs[0].rcpts[1], "b@example.com");
    assert_int_equal(F.msgs[0].declared_size, 40);
    assert_int_equal(F.msgs[0].tls, 0);
    assert_int_equal(F.msgs[0].authenticated, 0);
    assert_int_equal(F.ends, 1);
    assert_int_equal(F.aborts, 0);
    assert_int_equal(F.close_calls, 1);
}

static void test_transaction_bytewise(void **state)
{
    (void)state;
    /* The same kind of transcript one byte at a time, with a body larger
     * than one msg_write chunk, so every boundary is crossed. */
    EXPECT(GREETING);
    size_t cap = 20000, n = 0;
    char *wire = malloc(cap);
    char *want = malloc(cap);
    size_t wn = 0;
    assert_non_null(wire);
    assert_non_null(want);
    n += (size_t)snprintf(wire + n, cap - n, "%s", TXN_START);
    for (int i = 0; i < 120; i++) {
        /* every third line dot-stuffed */
        int k = snprintf(wire + n, cap - n, "%sline %03d of the message body\r\n",
                         i % 3 == 0 ? ".." : "", i);
        n += (size_t)k;
        wn += (size_t)snprintf(want + wn, cap - wn, "%sline %03d of the message body\r\n",
                               i % 3 == 0 ? "." : "", i);
    }
    n += (size_t)snprintf(wire + n, cap - n, ".\r\nQUIT\r\n");
    assert_true(wn > SMTPD_OUT_CHUNK);
    assert_int_equal(feed_bytewise(wire, n), n);
    EXPECT(TXN_START_REPLIES R_QUEUED R_BYE);
    assert_int_equal(F.nmsgs, 1);
    assert_msg(0, want, wn, 1, 0);
    assert_true(F.writes >= 2);
    free(wire);
    free(want);
}

static void test_commit_inside_msg_end(void **state)
{
    (void)state;
    /* A transport that commits synchronously from msg_end. */
    F.commit_in_callback = 1;
    F.auto_commit = 0;
    EXPECT(GREETING);
    const char script[] = TXN_START "one\r\n.\r\n"
                                    "MAIL FROM:<s@x.org>\r\nRCPT TO:<a@example.com>\r\nDATA\r\n"
                                    "two\r\n.\r\nQUIT\r\n";
    assert_int_equal(feed(script, sizeof script - 1), sizeof script - 1);
    EXPECT(TXN_START_REPLIES R_QUEUED R_SENDER_OK R_RCPT_OK R_DATA R_QUEUED R_BYE);
    assert_msg(0, "one\r\n", 5, 1, 0);
    assert_msg(1, "two\r\n", 5, 1, 0);
}

static void test_wait_commit_consumes_nothing(void **state)
{
    (void)state;
    F.auto_commit = 0;
    to_data();
    const char rest[] = "body\r\n.\r\nNOOP\r\n";
    size_t used = FEED("body\r\n.\r\nNOOP\r\n");
    assert_int_equal(used, sizeof rest - 1 - 6); /* stops after the "." line */
    assert_int_equal(F.s.state, SMTPD_S_WAIT_COMMIT);
    assert_true(smtpd_waiting(&F.s));
    EXPECT("");
    assert_int_equal(FEED("NOOP\r\n"), 0);
    EXPECT("");
    smtpd_msg_done(&F.s, 1, "Q1");
    EXPECT("250 2.0.0 Ok: queued as Q1\r\n");
    assert_false(smtpd_waiting(&F.s));
    /* smtpd_msg_done outside WAIT_COMMIT is ignored */
    smtpd_msg_done(&F.s, 1, "Q2");
    EXPECT("");
    assert_int_equal(FEED("NOOP\r\n"), 6);
    EXPECT(R_OK);
    assert_msg(0, "body\r\n", 6, 1, 0);
}

static void test_empty_message(void **state)
{
    (void)state;
    to_data();
    FEED(".\r\n");
    EXPECT(R_QUEUED);
    assert_int_equal(F.nmsgs, 1);
    assert_msg(0, "", 0, 1, 0);
    assert_int_equal(F.writes, 0);
    /* A message of one empty line. */
    FEED("MAIL FROM:<>\r\nRCPT TO:<a@example.com>\r\nDATA\r\n\r\n.\r\n");
    EXPECT(R_SENDER_OK R_RCPT_OK R_DATA R_QUEUED);
    assert_msg(1, "\r\n", 2, 1, 0);
    assert_string_equal(F.msgs[1].sender, "");
}

static void test_text_line_limit(void **state)
{
    (void)state;
    /* 998 octets + CRLF = 1000: fine, also when the line is dot-stuffed. */
    to_data();
    char line[1100];
    memset(line, 'a', 998);
    memcpy(line + 998, "\r\n", 2);
    char stuffed[1100];
    stuffed[0] = '.';
    stuffed[1] = '.';
    memset(stuffed + 2, 'b', 996);
    memcpy(stuffed + 998, "\r\n", 2);
    assert_int_equal(feed(line, 1000), 1000);
    assert_int_equal(feed(stuffed, 1000), 1000);
    assert_int_equal(feed(line, 1000), 1000);
    FEED(".\r\n");
    EXPECT(R_QUEUED);
    char want[3000];
    memcpy(want, line, 1000);
    memcpy(want + 1000, stuffed + 1, 999);
    memcpy(want + 1999, line, 1000);
    assert_msg(0, want, 2999, 1, 0);

    /* 999 octets + CRLF = 1001: refused at the end of data, session goes on. */
    FEED("MAIL FROM:<s@x.org>\r\nRCPT TO:<a@example.com>\r\nDATA\r\nfirst\r\n");
    EXPECT(R_SENDER_OK R_RCPT_OK R_DATA);
    char longline[1100];
    memset(longline, 'c', 999);
    memcpy(longline + 999, "\r\n", 2);
    assert_int_equal(feed(longline, 1001), 1001);
    EXPECT(""); /* nothing until the end of data */
    FEED("after\r\n.\r\n");
    EXPECT(R_LINE_1000);
    assert_int_equal(F.nmsgs, 2);
    assert_int_equal(F.msgs[1].ended, 0);
    assert_int_equal(F.msgs[1].aborted, 1);
    assert_int_equal(F.ends, 1);
    assert_int_equal(F.aborts, 1);
    assert_int_equal(F.s.state, SMTPD_S_READY);
    FEED("RCPT TO:<a@example.com>\r\nNOOP\r\n");
    EXPECT(R_NEED_MAIL R_OK); /* transaction was reset */
    assert_int_equal(F.close_calls, 0);

    /* A very long line (100 kB) is not buffered and fails the same way. */
    FEED("MAIL FROM:<s@x.org>\r\nRCPT TO:<a@example.com>\r\nDATA\r\n");
    EXPECT(R_SENDER_OK R_RCPT_OK R_DATA);
    char chunk[1000];
    memset(chunk, 'd', sizeof chunk);
    for (int i = 0; i < 100; i++)
        assert_int_equal(feed(chunk, sizeof chunk), sizeof chunk);
    FEED("\r\n.\r\n");
    EXPECT(R_LINE_1000);
    assert_int_equal(F.msgs[2].ended, 0);
    assert_int_equal(F.msgs[2].aborted, 1);
    assert_true(F.msgs[2].len <= SMTPD_OUT_CHUNK);
}

static void test_proper_terminator_only(void **state)
{
    (void)state;
    /* ". " and ".x" lines are data, not the end; only CRLF "." CRLF ends. */
    to_data();
    FEED("a\r\n. \r\n.x\r\nQUIT\r\n");
    EXPECT("");
    assert_int_equal(F.s.state, SMTPD_S_DATA);
    FEED(".\r\n");
    EXPECT(R_QUEUED);
    assert_msg(0, "a\r\n \r\nx\r\nQUIT\r\n", 15, 1, 0);
    /* The terminator split over two feeds. */
    FEED("MAIL FROM:<s@x.org>\r\nRCPT TO:<a@example.com>\r\nDATA\r\nz\r");
    EXPECT(R_SENDER_OK R_RCPT_OK R_DATA);
    FEED("\n.");
    EXPECT("");
    FEED("\r");
    EXPECT("");
    FEED("\n");
    EXPECT(R_QUEUED);
    assert_msg(1, "z\r\n", 3, 1, 0);
}

/* --- SMTP smuggling --- */

static void test_smuggling_variants(void **state)
{
    (void)state;
    static const struct {
        const char *eod;
        size_t len;
    } variants[] = {
#define V(s) {s, sizeof(s) - 1}
        V("\n.\n"),       V("\r.\r"),        V("\r.\n"),         V("\n.\r\n"),
        V("\r\n.\n"),     V("\r.\r\n"),      V("\r\n\0.\r\n"),   V("\r\n.\r\r\n"),
        V("\r\n.\0\r\n"), V("\n\r\n.\r\n"),  V("\r\r\n.\r\n"),   V("\0\r\n.\r\n"),
#undef V
    };
    static const char second[] =
        "MAIL FROM:<x@y.z>\r\nRCPT TO:<a@example.com>\r\nDATA\r\nevil\r\n.\r\n";
    for (size_t v = 0; v < sizeof variants / sizeof variants[0]; v++) {
        for (int bytewise = 0; bytewise < 2; bytewise++) {
            start();
            EXPECT(GREETING);
            char wire[512];
            size_t n = 0;
            memcpy(wire + n, TXN_START "hello", sizeof(TXN_START "hello") - 1);
            n += sizeof(TXN_START "hello") - 1;
            memcpy(wire + n, variants[v].eod, variants[v].len);
            n += variants[v].len;
            memcpy(wire + n, second, sizeof second - 1);
            n += sizeof second - 1;
            size_t used = bytewise ? feed_bytewise(wire, n) : feed(wire, n);
            if (strcmp(replies(), TXN_START_REPLIES R_SMUGGLE) != 0)
                print_error("end-of-data variant %zu (bytewise %d)\n", v, bytewise);
            EXPECT(TXN_START_REPLIES R_SMUGGLE);
            assert_true(used < n);
            assert_int_equal(F.begins, 1); /* no second message */
            assert_int_equal(F.ends, 0);
            assert_int_equal(F.nmsgs, 1);
            assert_int_equal(F.msgs[0].ended, 0);
            assert_int_equal(F.msgs[0].aborted, 1);
            assert_int_equal(F.close_calls, 1);
            assert_int_equal(F.s.state, SMTPD_S_CLOSED);
            for (size_t i = 0; i + 4 <= F.msgs[0].len; i++)
                assert_false(memcmp(F.msgs[0].data + i, "evil", 4) == 0);
            /* Nothing more is read. */
            assert_int_equal(feed(second, sizeof second - 1), 0);
            EXPECT("");
        }
    }
}

/* --- STARTTLS --- */

static void test_starttls(void **state)
{
    (void)state;
    EXPECT(GREETING);
    FEED("EHLO client.test\r\nMAIL FROM:<s@x.org>\r\nSTARTTLS\r\nRSET\r\n");
    EXPECT(EHLO_STARTTLS R_SENDER_OK R_TXN_TLS R_OK);
    FEED("STARTTLS now\r\n");
    EXPECT("501 5.5.4 STARTTLS takes no arguments\r\n");
    /* Plaintext pipelined after STARTTLS is consumed and discarded. */
    const char inj[] = "STARTTLS\r\nRSET\r\n";
    /* one smtpd_feed call (not the looping helper) reports it all consumed */
    assert_int_equal(smtpd_feed(&F.s, (const uint8_t *)inj, sizeof inj - 1), sizeof inj - 1);
    EXPECT(R_TLS_READY);
    assert_int_equal(F.starttls_calls, 1);
    assert_int_equal(F.s.state, SMTPD_S_WAIT_TLS);
    assert_true(smtpd_waiting(&F.s));
    assert_int_equal(FEED("MAIL FROM:<s@x.org>\r\n"), 21);
    EXPECT("");
    smtpd_tls_started(&F.s);
    assert_int_equal(F.s.state, SMTPD_S_INIT);
    assert_int_equal(F.s.line_len, 0);
    EXPECT("");
    /* Everything from before the handshake is forgotten. */
    FEED("MAIL FROM:<s@x.org>\r\n");
    EXPECT(R_NEED_EHLO);
    FEED("EHLO client.test\r\n");
    EXPECT(EHLO_BARE);
    FEED("STARTTLS\r\n");
    EXPECT("503 5.5.1 TLS already active\r\n");
    assert_int_equal(F.starttls_calls, 1);
    /* smtpd_tls_started outside WAIT_TLS does nothing */
    smtpd_tls_started(&F.s);
    assert_int_equal(F.s.state, SMTPD_S_READY);
    FEED("MAIL FROM:<s@x.org>\r\nRCPT TO:<a@example.com>\r\nDATA\r\nx\r\n.\r\n");
    EXPECT(R_SENDER_OK R_RCPT_OK R_DATA R_QUEUED);
    assert_int_equal(F.msgs[0].tls, 1);
}

static void test_starttls_partial_line_dropped(void **state)
{
    (void)state;
    EXPECT(GREETING);
    /* Plaintext after STARTTLS, even an unterminated line, never reaches the
     * first line read after the handshake. */
    FEED("EHLO client.test\r\nSTARTTLS\r\nMAIL FROM:<evil@x.org>");
    EXPECT(EHLO_STARTTLS R_TLS_READY);
    smtpd_tls_started(&F.s);
    FEED("EHLO client.test\r\n");
    EXPECT(EHLO_BARE);
}

static void test_starttls_unavailable(void **state)
{
    (void)state;
    start_cfg(0, 0, MAX_SIZE);
    EXPECT(GREETING);
    FEED("EHLO client.test\r\nSTARTTLS\r\nNOOP\r\n");
    EXPECT(EHLO_BARE "454 4.7.0 TLS not available\r\n" R_OK);
    assert_int_equal(F.starttls_calls, 0);
}

/* --- command line limits and framing --- */

static void test_command_line_length(void **state)
{
    (void)state;
    EXPECT(GREETING);
    char line[1024];
    /* 510 octets + CRLF = 512: fine */
    memcpy(line, "NOOP ", 5);
    memset(line + 5, 'x', 505);
    memcpy(line + 510, "\r\n", 2);
    assert_int_equal(feed(line, 512), 512);
    EXPECT(R_OK);
    /* 511 + CRLF: too long; the session continues */
    memcpy(line, "NOOP ", 5);
    memset(line + 5, 'x', 506);
    memcpy(line + 511, "\r\n", 2);
    assert_int_equal(feed(line, 513), 513);
    EXPECT(R_TOO_LONG);
    FEED("EHLO client.test\r\n");
    EXPECT(EHLO_STARTTLS);
    /* A too-long line whose first 510 octets are a valid command is not run. */
    memcpy(line, "MAIL FROM:<s@x.org>", 19);
    memset(line + 19, ' ', 600);
    memcpy(line + 619, "\r\n", 2);
    assert_int_equal(feed(line, 621), 621);
    EXPECT(R_TOO_LONG);
    assert_int_equal(F.s.state, SMTPD_S_READY);
    /* Without CRLF, in pieces: bounded, one reply when CRLF arrives. */
    char chunk[700];
    memset(chunk, 'A', sizeof chunk);
    for (int i = 0; i < 200; i++) {
        assert_int_equal(feed(chunk, sizeof chunk), sizeof chunk);
        assert_true(F.s.line_len <= SMTPD_LINE_MAX);
        assert_true(F.s.line_len <= SMTPD_LINE_MAX - 2);
    }
    EXPECT("");
    FEED("\r");
    EXPECT("");
    FEED("\n");
    EXPECT(R_TOO_LONG);
    assert_int_equal(F.s.line_len, 0);
    FEED("NOOP\r\n");
    EXPECT(R_OK);
    assert_int_equal(F.close_calls, 0);
}

static void test_bare_lf_in_command(void **state)
{
    (void)state;
    EXPECT(GREETING);
    const char in[] = "EHLO client.test\nNOOP\r\n";
    size_t used = feed(in, sizeof in - 1);
    EXPECT(R_BARE);
    assert_int_equal(used, 17);
    assert_int_equal(F.close_calls, 1);
    assert_int_equal(F.s.state, SMTPD_S_CLOSED);
    assert_int_equal(FEED("NOOP\r\n"), 0);
    EXPECT("");
}

static void test_bare_cr_in_command(void **state)
{
    (void)state;
    EXPECT(GREETING);
    FEED("EHLO client.test\r\n");
    EXPECT(EHLO_STARTTLS);
    const char in[] = "NOOP\rNOOP\r\n";
    size_t used = feed(in, sizeof in - 1);
    EXPECT(R_BARE);
    assert_int_equal(used, 6);
    assert_int_equal(F.close_calls, 1);
    assert_int_equal(FEED("NOOP\r\n"), 0);
    EXPECT("");
}

static void test_cr_lf_nul_in_parameters(void **state)
{
    (void)state;
    EXPECT(GREETING);
    FEED("EHLO client.test\r\nMAIL FROM:<s@x.org>\r\n");
    EXPECT(EHLO_STARTTLS R_SENDER_OK);
    /* NUL: refused, session continues, nothing accepted */
    FEED("RCPT TO:<a\0b@example.com>\r\n");
    EXPECT(R_NUL);
    FEED("RCPT TO:<a@example.com>\0\r\n");
    EXPECT(R_NUL);
    FEED("RCPT TO:<a@example.com\0>\r\n");
    EXPECT(R_NUL);
    FEED("DATA\r\n");
    EXPECT(R_NEED_RCPT);
    FEED("MAIL FROM:<s@x.org>\r\n");
    EXPECT(R_NESTED);
    FEED("RSET\r\nMAIL FROM:<s\0@x.org>\r\nNOOP\r\n");
    EXPECT(R_OK R_NUL R_OK);
    assert_int_equal(F.s.state, SMTPD_S_READY);
    assert_int_equal(F.domain_checks, 0);
    /* CR inside a parameter: bare CR, closed */
    FEED("MAIL FROM:<s@x.org>\r\nRCPT TO:<a\r@example.com>\r\n");
    EXPECT(R_SENDER_OK R_BARE);
    assert_int_equal(F.close_calls, 1);

    /* LF inside a parameter: bare LF, closed */
    start();
    EXPECT(GREETING);
    FEED("EHLO client.test\r\nMAIL FROM:<s@x.org>\r\nRCPT TO:<a@exa\nmple.com>\r\n");
    EXPECT(EHLO_STARTTLS R_SENDER_OK R_BARE);
    assert_int_equal(F.close_calls, 1);
    assert_int_equal(F.domain_checks, 0);
}

/* --- recipients --- */

static void test_recipient_limit(void **state)
{
    (void)state;
    EXPECT(GREETING);
    FEED("EHLO client.test\r\nMAIL FROM:<s@x.org>\r\n");
    EXPECT(EHLO_STARTTLS R_SENDER_OK);
    char line[128];
    for (int i = 0; i < SMTPD_RCPT_MAX; i++) {
        snprintf(line, sizeof line, "RCPT TO:<r%d@example.com>\r\n", i);
        feed_str(line);
        EXPECT(R_RCPT_OK);
    }
    FEED("RCPT TO:<r100@example.com>\r\n");
    EXPECT(R_TOO_MANY);
    /* a duplicate of an accepted one still fine */
    FEED("RCPT TO:<r7@example.com>\r\n");
    EXPECT(R_RCPT_DUP);
    FEED("DATA\r\nx\r\n.\r\n");
    EXPECT(R_DATA R_QUEUED);
    assert_int_equal(F.msgs[0].rcpt_count, SMTPD_RCPT_MAX);
    for (int i = 0; i < SMTPD_RCPT_MAX; i++) {
        snprintf(line, sizeof line, "r%d@example.com", i);
        assert_string_equal(F.msgs[0].rcpts[i], line);
    }
    /* the next transaction starts from zero */
    FEED("MAIL FROM:<s@x.org>\r\nRCPT TO:<r100@example.com>\r\n");
    EXPECT(R_SENDER_OK R_RCPT_OK);
}

static void test_recipient_flood(void **state)
{
    (void)state;
    EXPECT(GREETING);
    FEED("EHLO client.test\r\nMAIL FROM:<s@x.org>\r\n");
    EXPECT(EHLO_STARTTLS R_SENDER_OK);
    unsigned long before250 = F.code_count[250], before452 = F.code_count[452];
    enum { TOTAL = 100000, PER_CHUNK = 1000 };
    char *chunk = malloc(PER_CHUNK * 40);
    assert_non_null(chunk);
    for (int c = 0; c < TOTAL / PER_CHUNK; c++) {
        size_t n = 0;
        for (int i = 0; i < PER_CHUNK; i++)
            n += (size_t)snprintf(chunk + n, 40, "RCPT TO:<r%d@example.com>\r\n",
                                  c * PER_CHUNK + i);
        assert_int_equal(feed(chunk, n), n);
        clear();
        assert_true(F.s.rcpt_count <= SMTPD_RCPT_MAX);
        assert_true(F.s.arena_used <= SMTPD_RCPT_ARENA);
        assert_true(F.s.line_len <= SMTPD_LINE_MAX);
    }
    free(chunk);
    assert_int_equal(F.code_count[250] - before250, SMTPD_RCPT_MAX);
    assert_int_equal(F.code_count[452] - before452, TOTAL - SMTPD_RCPT_MAX);
    assert_int_equal(F.s.rcpt_count, SMTPD_RCPT_MAX);
    /* The engine's memory is its fixed-size struct. */
    assert_true(sizeof(struct smtpd) < 16 * 1024);
    FEED("DATA\r\nx\r\n.\r\n");
    EXPECT(R_DATA R_QUEUED);
    assert_int_equal(F.msgs[0].rcpt_count, SMTPD_RCPT_MAX);
    assert_string_equal(F.msgs[0].rcpts[99], "r99@example.com");
}

static void test_recipient_arena_full(void **state)
{
    (void)state;
    /* Long recipients fill the arena before 100: 452 then, too. */
    EXPECT(GREETING);
    FEED("EHLO client.test\r\nMAIL FROM:<s@x.org>\r\n");
    EXPECT(EHLO_STARTTLS R_SENDER_OK);
    char line[400];
    int accepted = 0;
    for (int i = 0; i < 40; i++) {
        /* local part of 240 octets: path "<...@example.com>" is 254 */
        int k = snprintf(line, sizeof line, "RCPT TO:<%03d", i);
        memset(line + k, 'l', 237);
        snprintf(line + k + 237, sizeof line - (size_t)k - 237, "@example.com>\r\n");
        feed_str(line);
        if (strcmp(replies(), R_RCPT_OK) == 0)
            accepted++;
        else
            assert_string_equal(replies(), R_TOO_MANY);
        clear();
    }
    /* each takes 240 + 12 + 1 = 253 arena octets */
    assert_int_equal(accepted, SMTPD_RCPT_ARENA / 253);
    assert_true(F.s.arena_used <= SMTPD_RCPT_ARENA);
    FEED("DATA\r\nx\r\n.\r\n");
    EXPECT(R_DATA R_QUEUED);
    assert_int_equal(F.msgs[0].rcpt_count, accepted);
    assert_int_equal(strlen(F.msgs[0].rcpts[accepted - 1]), 252);
    assert_memory_equal(F.msgs[0].rcpts[accepted - 1], "031", 3);
}

static void test_duplicate_recipient(void **state)
{
    (void)state;
    EXPECT(GREETING);
    FEED("EHLO client.test\r\nMAIL FROM:<s@x.org>\r\n"
         "RCPT TO:<a@example.com>\r\nRCPT TO:<a@example.com>\r\nRCPT TO:<a@EXAMPLE.COM>\r\n"
         "RCPT TO:<b@example.com>\r\nDATA\r\nx\r\n.\r\n");
    EXPECT(EHLO_STARTTLS R_SENDER_OK R_RCPT_OK R_RCPT_DUP R_RCPT_DUP R_RCPT_OK R_DATA R_QUEUED);
    assert_int_equal(F.msgs[0].rcpt_count, 2);
    assert_string_equal(F.msgs[0].rcpts[0], "a@example.com");
    assert_string_equal(F.msgs[0].rcpts[1], "b@example.com");
}

/* --- paths --- */

static const char *const bad_paths[] = {
    "<;sleep 1;>",
    "<a@>",
    "<@a>",
    "<a@b@c>",
    "a@example.com",
    "<a@example.com",
    "<a@example.com.>",
    "<a..b@example.com>",
    "<.a@example.com>",
    "<a.@example.com>",
    "<@example.com>",
    "<a@example..com>",
    "<a@.example.com>",
    "<a@-example.com>",
    "<a@example-.com>",
    "<a@exa_mple.com>",
    "<a b@example.com>",
    "<\"a@example.com>",
    "<<a@example.com>",
    "<a@[10.0.0.1>",
    "<a@[]>",
    "<@relay.example.com,a@example.com>",
    "<@:a@example.com>",
    "<a(comment)@example.com>",
    "<a@exa(mple.com>",
    "",
    "<$(reboot)@example.com>",
};

static void test_malformed_rcpt_paths(void **state)
{
    (void)state;
    EXPECT(GREETING);
    FEED("EHLO client.test\r\nMAIL FROM:<s@x.org>\r\n");
    EXPECT(EHLO_STARTTLS R_SENDER_OK);
    char line[700];
    for (size_t i = 0; i < sizeof bad_paths / sizeof bad_paths[0]; i++) {
        snprintf(line, sizeof line, "RCPT TO:%s\r\n", bad_paths[i]);
        feed_str(line);
        if (strcmp(replies(), R_BAD_RCPT) != 0)
            print_error("RCPT path %s\n", bad_paths[i]);
        EXPECT(R_BAD_RCPT);
    }
    FEED("RCPT TO:<>\r\n");
    EXPECT(R_BAD_RCPT);
    FEED("RCPT <a@example.com>\r\n");
    EXPECT("501 5.5.4 Syntax: RCPT TO:<address>\r\n");
    FEED("RCPT\r\n");
    EXPECT("501 5.5.4 Syntax: RCPT TO:<address>\r\n");
    FEED("RCPT TO:<a@example.com> NOTIFY=NEVER\r\n");
    EXPECT("555 5.5.4 Unsupported RCPT parameter\r\n");
    FEED("RCPT TO:<a@example.com>>\r\n");
    EXPECT("555 5.5.4 Unsupported RCPT parameter\r\n");
    assert_int_equal(F.domain_checks, 0);
    assert_int_equal(F.s.state, SMTPD_S_MAIL);

    /* 256 octets including the brackets: accepted; 257: too long */
    char path[300];
    path[0] = '<';
    memset(path + 1, 'p', 242);
    snprintf(path + 243, sizeof path - 243, "@example.com>");
    assert_int_equal(strlen(path), 256);
    snprintf(line, sizeof line, "RCPT TO:%s\r\n", path);
    feed_str(line);
    EXPECT(R_RCPT_OK);
    path[0] = '<';
    memset(path + 1, 'q', 243);
    snprintf(path + 244, sizeof path - 244, "@example.com>");
    assert_int_equal(strlen(path), 257);
    snprintf(line, sizeof line, "RCPT TO:%s\r\n", path);
    feed_str(line);
    EXPECT(R_LONG_RCPT);
    path[0] = '<';
    memset(path + 1, 'q', 280);
    snprintf(path + 281, sizeof path - 281, "@example.com>");
    snprintf(line, sizeof line, "RCPT TO:%s\r\n", path);
    feed_str(line);
    EXPECT(R_LONG_RCPT);
    FEED("DATA\r\nx\r\n.\r\n");
    EXPECT(R_DATA R_QUEUED);
    assert_int_equal(F.msgs[0].rcpt_count, 1);
    assert_int_equal(strlen(F.msgs[0].rcpts[0]), 254);
}

static void test_malformed_mail_paths(void **state)
{
    (void)state;
    EXPECT(GREETING);
    FEED("EHLO client.test\r\n");
    EXPECT(EHLO_STARTTLS);
    char line[700];
    for (size_t i = 0; i < sizeof bad_paths / sizeof bad_paths[0]; i++) {
        snprintf(line, sizeof line, "MAIL FROM:%s\r\n", bad_paths[i]);
        feed_str(line);
        if (strcmp(replies(), R_BAD_SENDER) != 0)
            print_error("MAIL path %s\n", bad_paths[i]);
        EXPECT(R_BAD_SENDER);
        assert_int_equal(F.s.state, SMTPD_S_READY);
    }
    FEED("MAIL FROM:<s@x.org>>\r\n");
    EXPECT("501 5.5.4 Bad MAIL parameter syntax\r\n");
    FEED("MAIL <s@x.org>\r\n");
    EXPECT("501 5.5.4 Syntax: MAIL FROM:<address>\r\n");
    char path[300];
    path[0] = '<';
    memset(path + 1, 'q', 243);
    snprintf(path + 244, sizeof path - 244, "@example.com>");
    snprintf(line, sizeof line, "MAIL FROM:%s\r\n", path);
    feed_str(line);
    EXPECT(R_LONG_SENDER);
    /* the null reverse-path is fine for MAIL */
    FEED("MAIL FROM:<>\r\nRCPT TO:<a@example.com>\r\nDATA\r\nbounce\r\n.\r\n");
    EXPECT(R_SENDER_OK R_RCPT_OK R_DATA R_QUEUED);
    assert_string_equal(F.msgs[0].sender, "");
    /* a quoted local part is a valid sender; domain stored lower case */
    FEED("MAIL FROM:<\"john doe\"@X.Org>\r\nRCPT TO:<a@example.com>\r\nDATA\r\n.\r\n");
    EXPECT(R_SENDER_OK R_RCPT_OK R_DATA R_QUEUED);
    assert_string_equal(F.msgs[1].sender, "\"john doe\"@x.org");
}

/* --- relaying --- */

static void test_relay_attempts(void **state)
{
    (void)state;
    static const struct {
        const char *path;
        const char *want;
        int asks_domain; /* 0: refused before domain_allowed is consulted */
    } cases[] = {
        {"<a@other.com>", R_RELAY, 1},
        {"<a@evil-example.com>", R_RELAY, 1},
        {"<a@example.com.evil>", R_RELAY, 1},
        {"<a@sub.example.com>", R_RELAY, 1},
        {"<a@example.co>", R_RELAY, 1},
        {"<a@xexample.com>", R_RELAY, 1},
        {"<a%b@example.com>", R_RELAY, 0},
        {"<a%other.com@example.com>", R_RELAY, 0},
        {"<a!b@example.com>", R_RELAY, 0},
        {"<other.com!a@example.com>", R_RELAY, 0},
        {"<\"a@b\"@example.com>", R_RELAY, 0},
        {"<\"a@other.com\"@example.com>", R_RELAY, 0},
        {"<\"a%b\"@example.com>", R_RELAY, 0},
        {"<\"a!b\"@example.com>", R_RELAY, 0},
        {"<a@[10.0.0.1]>", R_RELAY, 0},
        {"<a@[127.0.0.1]>", R_RELAY, 0},
        {"<a@[IPv6:::1]>", R_RELAY, 0},
        {"<@relay.example.com:a@other.com>", R_ROUTE, 0},
        {"<@example.com:a@example.com>", R_ROUTE, 0},
        {"<@a.example.com,@b.example.com:a@example.com>", R_ROUTE, 0},
    };
    EXPECT(GREETING);
    FEED("EHLO client.test\r\nMAIL FROM:<s@x.org>\r\n");
    EXPECT(EHLO_STARTTLS R_SENDER_OK);
    char line[700];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(line, sizeof line, "RCPT TO:%s\r\n", cases[i].path);
        int checks = F.domain_checks;
        feed_str(line);
        assert_int_equal(F.domain_checks - checks, cases[i].asks_domain);
        if (strcmp(replies(), cases[i].want) != 0)
            print_error("RCPT path %s\n", cases[i].path);
        EXPECT(cases[i].want);
        assert_int_equal(F.s.state, SMTPD_S_MAIL);
    }
    /* Trailing dot: 501 or 550, never accepted. */
    FEED("RCPT TO:<a@example.com.>\r\n");
    assert_true(strcmp(replies(), R_BAD_RCPT) == 0 || strcmp(replies(), R_RELAY) == 0);
    clear();
    assert_int_equal(F.s.state, SMTPD_S_MAIL);
    /* Domain is case-insensitive; local part kept as sent. */
    FEED("RCPT TO:<Bob@EXAMPLE.com>\r\n");
    EXPECT(R_RCPT_OK);
    assert_string_equal(F.last_domain, "example.com");
    FEED("DATA\r\nx\r\n.\r\n");
    EXPECT(R_DATA R_QUEUED);
    assert_int_equal(F.msgs[0].rcpt_count, 1);
    assert_string_equal(F.msgs[0].rcpts[0], "Bob@example.com");
}

/* --- SIZE and MAIL parameters --- */

static void test_size_and_params(void **state)
{
    (void)state;
    EXPECT(GREETING);
    FEED("EHLO client.test\r\n");
    EXPECT(EHLO_STARTTLS);
    FEED("MAIL FROM:<s@x.org> SIZE=10001\r\n");
    EXPECT(R_TOO_BIG);
    FEED("MAIL FROM:<s@x.org> SIZE=99999999999999999999\r\n");
    EXPECT("501 5.5.4 Bad MAIL parameter syntax\r\n");
    FEED("MAIL FROM:<s@x.org> SIZE=9999999999999999999\r\n");
    EXPECT(R_TOO_BIG);
    FEED("MAIL FROM:<s@x.org> SIZE=12x\r\n");
    EXPECT("501 5.5.4 Bad MAIL parameter syntax\r\n");
    FEED("MAIL FROM:<s@x.org>SIZE=12\r\n");
    EXPECT("501 5.5.4 Bad MAIL parameter syntax\r\n");
    FEED("MAIL FROM:<s@x.org> FOO=bar\r\n");
    EXPECT("555 5.5.4 Unsupported MAIL parameter\r\n");
    FEED("MAIL FROM:<s@x.org> BODY=BINARYMIME\r\n");
    EXPECT("555 5.5.4 Unsupported MAIL parameter\r\n");
    FEED("MAIL FROM:<s@x.org> BODY=8BITMIMEX\r\n");
    EXPECT("555 5.5.4 Unsupported MAIL parameter\r\n");
    FEED("MAIL FROM:<s@x.org> BODY=7BITX\r\n");
    EXPECT("555 5.5.4 Unsupported MAIL parameter\r\n");
    assert_int_equal(F.s.state, SMTPD_S_READY);
    FEED("MAIL FROM:<s@x.org> BODY=8BITMIME\r\nRSET\r\n");
    EXPECT(R_SENDER_OK R_OK);
    FEED("MAIL FROM:<s@x.org> body=8bitmime\r\nRSET\r\n");
    EXPECT(R_SENDER_OK R_OK);
    FEED("MAIL FROM:<s@x.org> BODY=7BIT\r\nRSET\r\n");
    EXPECT(R_SENDER_OK R_OK);
    FEED("MAIL FROM:<s@x.org> AUTH=<>\r\nRSET\r\n");
    EXPECT(R_SENDER_OK R_OK);
    FEED("MAIL FROM:<s@x.org> BODY=8BITMIME SIZE=10000 \r\nRSET\r\n");
    EXPECT(R_SENDER_OK R_OK);
    assert_int_equal(F.last_room_size, 10000);
    /* exactly max_size bytes of data: fine */
    FEED("MAIL FROM:<s@x.org> SIZE=10000\r\nRCPT TO:<a@example.com>\r\nDATA\r\n");
    EXPECT(R_SENDER_OK R_RCPT_OK R_DATA);
    char *big = malloc(20000);
    assert_non_null(big);
    size_t n = 0;
    for (int i = 0; i < 100; i++) { /* 100 lines of 98 + CRLF = 10000 */
        memset(big + n, 'a' + i % 26, 98);
        memcpy(big + n + 98, "\r\n", 2);
        n += 100;
    }
    assert_int_equal(feed(big, n), n);
    FEED(".\r\n");
    EXPECT(R_QUEUED);
    assert_msg(0, big, n, 1, 0);
    assert_int_equal(F.msgs[0].declared_size, 10000);
    /* one more byte: 552 at the end of data, nothing ended */
    FEED("MAIL FROM:<s@x.org>\r\nRCPT TO:<a@example.com>\r\nDATA\r\n");
    EXPECT(R_SENDER_OK R_RCPT_OK R_DATA);
    assert_int_equal(feed(big, n), n);
    FEED("x\r\n");
    EXPECT("");
    FEED(".\r\n");
    EXPECT(R_TOO_BIG);
    assert_int_equal(F.nmsgs, 2);
    assert_int_equal(F.msgs[1].ended, 0);
    assert_int_equal(F.msgs[1].aborted, 1);
    assert_int_equal(F.ends, 1);
    assert_int_equal(F.s.state, SMTPD_S_READY);
    /* a lot more (dot-stuffed lines count unstuffed) */
    FEED("MAIL FROM:<s@x.org>\r\nRCPT TO:<a@example.com>\r\nDATA\r\n");
    EXPECT(R_SENDER_OK R_RCPT_OK R_DATA);
    for (int i = 0; i < 5; i++)
        assert_int_equal(feed(big, n), n);
    FEED(".\r\nNOOP\r\n");
    EXPECT(R_TOO_BIG R_OK);
    assert_int_equal(F.msgs[2].ended, 0);
    assert_int_equal(F.msgs[2].aborted, 1);
    assert_int_equal(F.ends, 1);
    assert_int_equal(F.close_calls, 0);
    free(big);
}

static void test_queue_full(void **state)
{
    (void)state;
    EXPECT(GREETING);
    F.queue_room = 0;
    FEED("EHLO client.test\r\nMAIL FROM:<s@x.org> SIZE=500\r\nRCPT TO:<a@example.com>\r\n");
    EXPECT(EHLO_STARTTLS R_NO_ROOM R_NEED_MAIL);
    assert_int_equal(F.last_room_size, 500);
    assert_int_equal(F.s.state, SMTPD_S_READY);
    /* room at MAIL, gone by DATA */
    F.queue_room = 1;
    FEED("MAIL FROM:<s@x.org>\r\nRCPT TO:<a@example.com>\r\n");
    EXPECT(R_SENDER_OK R_RCPT_OK);
    F.queue_room = 0;
    FEED("DATA\r\n");
    EXPECT(R_NO_ROOM);
    assert_int_equal(F.begins, 0);
    assert_int_equal(F.s.state, SMTPD_S_RCPT);
    F.queue_room = 1;
    FEED("DATA\r\nok\r\n.\r\n");
    EXPECT(R_DATA R_QUEUED);
    assert_msg(0, "ok\r\n", 4, 1, 0);
}

static void test_failed_commit(void **state)
{
    (void)state;
    F.commit_ok = 0;
    EXPECT(GREETING);
    FEED(TXN_START "lost\r\n.\r\nNOOP\r\n");
    EXPECT(TXN_START_REPLIES R_TEMPFAIL R_OK);
    assert_int_equal(F.s.state, SMTPD_S_READY);
    assert_int_equal(F.close_calls, 0);
    /* the transaction was reset */
    FEED("RCPT TO:<a@example.com>\r\n");
    EXPECT(R_NEED_MAIL);
    F.commit_ok = 1;
    FEED("MAIL FROM:<s@x.org>\r\nRCPT TO:<a@example.com>\r\nDATA\r\nkept\r\n.\r\n");
    EXPECT(R_SENDER_OK R_RCPT_OK R_DATA R_QUEUED);
    assert_msg(1, "kept\r\n", 6, 1, 0);
}

static void test_store_failures(void **state)
{
    (void)state;
    EXPECT(GREETING);
    /* msg_begin fails: 451 at DATA, still in the transaction */
    F.begin_rc = -1;
    FEED("EHLO client.test\r\nMAIL FROM:<s@x.org>\r\nRCPT TO:<a@example.com>\r\nDATA\r\n");
    EXPECT(EHLO_STARTTLS R_SENDER_OK R_RCPT_OK R_TEMPFAIL);
    assert_int_equal(F.s.state, SMTPD_S_RCPT);
    F.begin_rc = 0;
    /* msg_write fails: 451 at the end of data, aborted */
    F.write_rc = -1;
    FEED("DATA\r\nsome data\r\n.\r\nNOOP\r\n");
    EXPECT(R_DATA R_TEMPFAIL R_OK);
    assert_int_equal(F.msgs[0].ended, 0);
    assert_int_equal(F.msgs[0].aborted, 1);
    assert_int_equal(F.ends, 0);
}

/* The queue is full while data arrives (no SIZE= declared, or other
 * sessions filled it): the data is read through to the final dot, nothing
 * more is stored, the message is aborted (its partial data removed by the
 * transport) and the answer is 452 4.3.1, not a storage error. */
static void test_no_room_during_data(void **state)
{
    (void)state;
    to_data();
    F.write_rc = SMTPD_STORE_NO_ROOM;
    char *big = malloc(3 * SMTPD_OUT_CHUNK + 100);
    assert_non_null(big);
    size_t n = 0;
    while (n + 80 < 3 * SMTPD_OUT_CHUNK) {
        memset(big + n, 'q', 78);
        memcpy(big + n + 78, "\r\n", 2);
        n += 80;
    }
    assert_int_equal(feed(big, n), n); /* all read */
    EXPECT("");
    assert_int_equal(F.writes, 1);      /* nothing more offered after the refusal */
    assert_int_equal(F.s.state, SMTPD_S_DATA);
    FEED(".\r\nNOOP\r\n");
    EXPECT(R_NO_ROOM R_OK);
    assert_int_equal(F.msgs[0].aborted, 1);
    assert_int_equal(F.msgs[0].ended, 0);
    assert_int_equal(F.aborts, 1);
    assert_int_equal(F.ends, 0);
    assert_int_equal(F.close_calls, 0);
    /* the transaction is over; the session goes on */
    FEED("RCPT TO:<a@example.com>\r\n");
    EXPECT(R_NEED_MAIL);
    /* room again: the next message goes through */
    F.write_rc = 0;
    FEED("MAIL FROM:<s@x.org>\r\nRCPT TO:<a@example.com>\r\nDATA\r\nfits\r\n.\r\n");
    EXPECT(R_SENDER_OK R_RCPT_OK R_DATA R_QUEUED);
    assert_msg(1, "fits\r\n", 6, 1, 0);
    /* a size limit still wins over the full queue (552 is final) */
    F.write_rc = SMTPD_STORE_NO_ROOM;
    memset(big, 'z', 3 * SMTPD_OUT_CHUNK + 100);
    FEED("MAIL FROM:<s@x.org>\r\nRCPT TO:<a@example.com>\r\nDATA\r\n");
    clear();
    memcpy(big + 990, "\r\n", 2);
    for (int i = 0; i < 12; i++) /* past MAX_SIZE */
        feed(big, 992);
    FEED(".\r\n");
    EXPECT(R_TOO_BIG);
    free(big);
}

/* msg_begin can say the queue is full too: 452 at DATA. */
static void test_no_room_at_begin(void **state)
{
    (void)state;
    EXPECT(GREETING);
    F.begin_rc = SMTPD_STORE_NO_ROOM;
    FEED("EHLO client.test\r\nMAIL FROM:<s@x.org>\r\nRCPT TO:<a@example.com>\r\nDATA\r\n");
    EXPECT(EHLO_STARTTLS R_SENDER_OK R_RCPT_OK R_NO_ROOM);
    assert_int_equal(F.s.state, SMTPD_S_RCPT);
    F.begin_rc = SMTPD_STORE_FAILED;
    FEED("DATA\r\n");
    EXPECT(R_TEMPFAIL);
}

/* A pipelined burst of short commands: the engine takes a new command line
 * only while the transport has room for its replies, so a reply buffer of a
 * few KiB takes 1 KiB of NOOPs (2.3 KiB of replies), or of EHLOs (far more),
 * without overflowing; it goes on once the replies drained. */
static void burst(const char *cmd, size_t cap, unsigned long code, unsigned long want_replies)
{
    size_t cl = strlen(cmd);
    char in[1024];
    size_t n = 0;
    while (n + cl <= sizeof in) {
        memcpy(in + n, cmd, cl);
        n += cl;
    }
    unsigned long before = F.code_count[code];
    F.reply_cap = cap;
    F.reply_used = F.reply_used_max = 0;
    size_t off = 0;
    int rounds = 0;
    while (off < n) {
        size_t used = feed(in + off, n - off);
        off += used;
        assert_true(F.reply_used_max <= cap);
        if (off < n) {
            /* held back: no room for another command's replies */
            assert_true(cap - F.reply_used < SMTPD_REPLY_MAX);
            assert_int_equal(smtpd_feed(&F.s, (const uint8_t *)in + off, n - off), 0);
        }
        F.reply_used = 0; /* the client read the replies */
        clear();
        assert_true(++rounds < 1000);
    }
    assert_int_equal(F.code_count[code] - before, want_replies);
    assert_true(rounds > 1);
    assert_int_equal(F.close_calls, 0);
    F.reply_cap = 0;
}

static void test_pipelined_burst_backpressure(void **state)
{
    (void)state;
    F.reply_cap = 4096;
    FEED("EHLO client.test\r\n");
    clear();
    burst("NOOP\r\n", 2048, 250, 1024 / 6);
    assert_int_equal(F.s.state, SMTPD_S_READY);
    /* EHLO: six reply lines per 8 input bytes */
    burst("EHLO x\r\n", 2048, 250, (1024 / 8) * 7);
    /* HELP: 94 bytes per 6 */
    burst("HELP\r\n", SMTPD_REPLY_MAX, 214, 1024 / 6);
    /* the same holds for AUTH exchanges and transactions */
    F.reply_cap = SMTPD_REPLY_MAX + 10;
    F.reply_used = 0;
    FEED("MAIL FROM:<s@x.org>\r\nRCPT TO:<a@example.com>\r\n");
    assert_int_equal(F.s.state, SMTPD_S_MAIL); /* RCPT waits for room */
    F.reply_used = 0;
    FEED("RCPT TO:<a@example.com>\r\n");
    assert_int_equal(F.s.state, SMTPD_S_RCPT);
}

/* --- AUTH --- */

/* auth_required, TLS active, EHLO done; replies cleared. */
static void start_auth_session(void)
{
    start_cfg(1, 1, MAX_SIZE);
    FEED("EHLO client.test\r\nSTARTTLS\r\n");
    smtpd_tls_started(&F.s);
    FEED("EHLO client.test\r\n");
    clear();
}

static void test_auth_needs_tls(void **state)
{
    (void)state;
    start_cfg(1, 1, MAX_SIZE);
    EXPECT(GREETING);
    FEED("EHLO client.test\r\nAUTH PLAIN AHUAcA==\r\nMAIL FROM:<s@x.org>\r\n");
    EXPECT(EHLO_STARTTLS
           "538 5.7.11 Encryption required for requested authentication mechanism\r\n" R_AUTH_NEEDED);
    assert_int_equal(F.auth_checks, 0);
}

static void test_auth_not_required(void **state)
{
    (void)state;
    start_cfg(1, 0, MAX_SIZE);
    FEED("EHLO client.test\r\nSTARTTLS\r\n");
    smtpd_tls_started(&F.s);
    clear();
    FEED("EHLO client.test\r\nAUTH PLAIN AHUAcA==\r\nMAIL FROM:<s@x.org>\r\n");
    EXPECT(EHLO_BARE R_NO_AUTH R_SENDER_OK);
    assert_int_equal(F.auth_checks, 0);
}

static void test_auth_plain(void **state)
{
    (void)state;
    start_auth_session();
    FEED("MAIL FROM:<s@x.org>\r\n");
    EXPECT(R_AUTH_NEEDED);
    FEED("AUTH PLAIN AHUAcA==\r\n");
    EXPECT(R_AUTH_OK);
    assert_string_equal(F.last_user, "u");
    assert_string_equal(F.last_pass, "p");
    FEED("AUTH PLAIN AHUAcA==\r\n");
    EXPECT("503 5.5.1 Already authenticated\r\n");
    FEED("MAIL FROM:<s@x.org>\r\nRCPT TO:<a@example.com>\r\nDATA\r\nx\r\n.\r\n");
    EXPECT(R_SENDER_OK R_RCPT_OK R_DATA R_QUEUED);
    assert_int_equal(F.msgs[0].authenticated, 1);
    assert_int_equal(F.msgs[0].tls, 1);
}

static void test_auth_plain_no_initial_response(void **state)
{
    (void)state;
    start_auth_session();
    FEED("AUTH PLAIN\r\n");
    EXPECT("334 \r\n");
    assert_int_equal(F.s.state, SMTPD_S_AUTH);
    FEED("AHUAcA==\r\n");
    EXPECT(R_AUTH_OK);
    assert_int_equal(F.s.state, SMTPD_S_READY);
    FEED("MAIL FROM:<s@x.org>\r\n");
    EXPECT(R_SENDER_OK);
}

static void test_auth_plain_authzid(void **state)
{
    (void)state;
    start_auth_session();
    FEED("AUTH PLAIN YWRtaW4AdQBw\r\n"); /* "admin\0u\0p" */
    EXPECT("535 5.7.8 Authorization identity differs from user\r\n");
    FEED("AUTH plain dQB1AHA=\r\n"); /* "u\0u\0p" */
    EXPECT(R_AUTH_OK);
}

static void test_auth_login(void **state)
{
    (void)state;
    start_auth_session();
    FEED("AUTH LOGIN\r\n");
    EXPECT("334 VXNlcm5hbWU6\r\n");
    FEED("dQ==\r\n");
    EXPECT("334 UGFzc3dvcmQ6\r\n");
    FEED("cA==\r\n");
    EXPECT(R_AUTH_OK);
    assert_string_equal(F.last_user, "u");
    assert_string_equal(F.last_pass, "p");
    FEED("MAIL FROM:<s@x.org>\r\n");
    EXPECT(R_SENDER_OK);

    /* with the user name as initial response, pipelined */
    start_auth_session();
    FEED("AUTH LOGIN dQ==\r\ncA==\r\nMAIL FROM:<s@x.org>\r\n");
    EXPECT("334 UGFzc3dvcmQ6\r\n" R_AUTH_OK R_SENDER_OK);
}

static void test_auth_wrong_password_and_lockout(void **state)
{
    (void)state;
    start_auth_session();
    FEED("AUTH PLAIN AHUAeA==\r\n"); /* "\0u\0x" */
    EXPECT(R_AUTH_BAD);
    assert_int_equal(F.s.state, SMTPD_S_READY);
    FEED("MAIL FROM:<s@x.org>\r\n");
    EXPECT(R_AUTH_NEEDED);
    FEED("AUTH LOGIN\r\ndQ==\r\neA==\r\n");
    EXPECT("334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n" R_AUTH_BAD);
    assert_int_equal(F.close_calls, 0);
    /* third failure: 421 and close, even with the right one pipelined after */
    const char in[] = "AUTH PLAIN AHUAd3Jvbmc=\r\nAUTH PLAIN AHUAcA==\r\n";
    size_t used = feed(in, sizeof in - 1);
    EXPECT("421 4.7.0 Too many failed authentications; closing\r\n");
    assert_int_equal(used, strlen("AUTH PLAIN AHUAd3Jvbmc=\r\n"));
    assert_int_equal(F.close_calls, 1);
    assert_int_equal(F.s.state, SMTPD_S_CLOSED);
    assert_int_equal(F.auth_checks, 3);
}

/* The account cannot be read when AUTH is checked: a temporary refusal,
 * not "credentials invalid", and not counted towards the lockout. */
static void test_auth_store_unreadable_is_temporary(void **state)
{
    (void)state;
    start_auth_session();
    F.auth_store_broken = 1;
    for (int i = 0; i < 4; i++) {
        FEED("AUTH PLAIN AHUAcA==\r\n");
        EXPECT("454 4.7.0 Temporary authentication failure\r\n");
    }
    assert_int_equal(F.close_calls, 0);
    FEED("MAIL FROM:<s@x.org>\r\n");
    EXPECT(R_AUTH_NEEDED);
    F.auth_store_broken = 0;
    FEED("AUTH PLAIN AHUAcA==\r\n");
    EXPECT(R_AUTH_OK);
}

static void test_auth_cancel_and_bad_input(void **state)
{
    (void)state;
    start_auth_session();
    FEED("AUTH PLAIN\r\n*\r\nNOOP\r\n");
    EXPECT("334 \r\n501 5.0.0 Authentication cancelled\r\n" R_OK);
    FEED("AUTH LOGIN\r\ndQ==\r\n*\r\n");
    EXPECT("334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n501 5.0.0 Authentication cancelled\r\n");
    FEED("AUTH PLAIN !!!!\r\n");
    EXPECT("501 5.5.2 Bad base64 in AUTH response\r\n");
    FEED("AUTH PLAIN AHUAcA=\r\n");
    EXPECT("501 5.5.2 Bad base64 in AUTH response\r\n");
    FEED("AUTH LOGIN\r\nd Q==\r\n");
    EXPECT("334 VXNlcm5hbWU6\r\n501 5.5.2 Bad base64 in AUTH response\r\n");
    FEED("AUTH PLAIN dQ==\r\n"); /* "u": no NULs */
    EXPECT("501 5.5.2 Bad AUTH PLAIN response\r\n");
    FEED("AUTH CRAM-MD5\r\n");
    EXPECT("504 5.5.4 Unrecognized authentication mechanism\r\n");
    FEED("AUTH\r\n");
    EXPECT("504 5.5.4 Unrecognized authentication mechanism\r\n");
    /* none of this counted as a failed password, nor authenticated */
    assert_int_equal(F.auth_checks, 0);
    FEED("MAIL FROM:<s@x.org>\r\n");
    EXPECT(R_AUTH_NEEDED);
    /* A too-long response line ends the exchange. */
    FEED("AUTH PLAIN\r\n");
    EXPECT("334 \r\n");
    char line[700];
    memset(line, 'A', 600);
    memcpy(line + 600, "\r\n", 2);
    feed(line, 602);
    EXPECT(R_TOO_LONG);
    assert_int_equal(F.s.state, SMTPD_S_READY);
    FEED("AUTH PLAIN AHUAcA==\r\n");
    EXPECT(R_AUTH_OK);
    assert_int_equal(F.close_calls, 0);
}

static void test_auth_nul_in_response(void **state)
{
    (void)state;
    /* A 500 to the response line ends the exchange (the client reads any
     * non-334 reply that way): the next line is a command again. */
    start_auth_session();
    FEED("AUTH PLAIN\r\nAHUA\0cA==\r\nNOOP\r\n");
    EXPECT("334 \r\n" R_NUL R_OK);
    assert_int_equal(F.s.state, SMTPD_S_READY);
    FEED("AUTH LOGIN\r\ndQ==\r\nc\0A==\r\nMAIL FROM:<s@x.org>\r\n");
    EXPECT("334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n" R_NUL R_AUTH_NEEDED);
    assert_int_equal(F.auth_checks, 0);
    assert_int_equal(F.s.auth_user[0], '\0'); /* the half-done LOGIN is forgotten */
}

static void test_auth_before_ehlo(void **state)
{
    (void)state;
    start_cfg(1, 1, MAX_SIZE);
    FEED("EHLO client.test\r\nSTARTTLS\r\n");
    smtpd_tls_started(&F.s);
    clear();
    FEED("AUTH PLAIN AHUAcA==\r\n");
    EXPECT("503 5.5.1 Send EHLO first\r\n");
    assert_int_equal(F.auth_checks, 0);
}

/* Whether AUTH is required could not be read (busy or damaged database):
 * the session fails closed with a temporary 454 at MAIL, and AUTH still
 * works for a client that has the credentials. */
static void test_auth_gate_unknown(void **state)
{
    (void)state;
    start_cfg(1, SMTPD_AUTH_UNKNOWN, MAX_SIZE);
    EXPECT(GREETING);
    FEED("EHLO client.test\r\nMAIL FROM:<s@x.org>\r\nRCPT TO:<a@example.com>\r\nDATA\r\n");
    EXPECT(EHLO_STARTTLS "454 4.7.0 Temporary authentication failure; try again later\r\n"
           R_NEED_MAIL R_NEED_RCPT);
    assert_int_equal(F.begins, 0);
    /* without TLS too (no AUTH offered there) */
    start_cfg(0, SMTPD_AUTH_UNKNOWN, MAX_SIZE);
    FEED("HELO client.test\r\nMAIL FROM:<>\r\n");
    EXPECT(GREETING "250 " HOST "\r\n"
                    "454 4.7.0 Temporary authentication failure; try again later\r\n");
    /* after STARTTLS, AUTH is offered and, once it succeeded, mail is taken */
    start_cfg(1, SMTPD_AUTH_UNKNOWN, MAX_SIZE);
    FEED("EHLO client.test\r\nSTARTTLS\r\n");
    smtpd_tls_started(&F.s);
    clear();
    FEED("EHLO client.test\r\nMAIL FROM:<s@x.org>\r\nAUTH PLAIN AHUAcA==\r\n"
         "MAIL FROM:<s@x.org>\r\n");
    EXPECT(EHLO_AUTH "454 4.7.0 Temporary authentication failure; try again later\r\n" R_AUTH_OK
           R_SENDER_OK);
}

/* AUTH lines and decoded credentials do not linger in the session. */
static void test_auth_secrets_wiped(void **state)
{
    (void)state;
    static const char zero[SMTPD_LINE_MAX + 1];
    start_auth_session();
    FEED("AUTH PLAIN AHUAcA==\r\n");
    EXPECT(R_AUTH_OK);
    assert_memory_equal(F.s.line, zero, sizeof F.s.line);
    /* a LOGIN user name (which may be a password typed in the wrong field)
     * goes when the exchange ends, however it ends */
    start_auth_session();
    FEED("AUTH LOGIN\r\nc2VjcmV0\r\n"); /* "secret" */
    EXPECT("334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n");
    assert_string_equal(F.s.auth_user, "secret"); /* needed until the password */
    FEED("*\r\n");
    EXPECT("501 5.0.0 Authentication cancelled\r\n");
    assert_memory_equal(F.s.auth_user, zero, sizeof F.s.auth_user);
    assert_memory_equal(F.s.line, zero, sizeof F.s.line);
    FEED("AUTH LOGIN c2VjcmV0\r\n!!\r\n");
    EXPECT("334 UGFzc3dvcmQ6\r\n501 5.5.2 Bad base64 in AUTH response\r\n");
    assert_memory_equal(F.s.auth_user, zero, sizeof F.s.auth_user);
    FEED("AUTH LOGIN c2VjcmV0\r\ncA==\r\n");
    EXPECT("334 UGFzc3dvcmQ6\r\n" R_AUTH_BAD);
    assert_memory_equal(F.s.auth_user, zero, sizeof F.s.auth_user);
    assert_memory_equal(F.s.line, zero, sizeof F.s.line);
    /* a session that ends in the middle of a response line */
    FEED("AUTH PLAIN\r\nAHUAcA");
    EXPECT("334 \r\n");
    assert_int_equal(F.s.line_len, 6);
    smtpd_shutdown(&F.s, "4.4.2 Timeout waiting for the client;");
    assert_memory_equal(F.s.line, zero, sizeof F.s.line);
}

/* --- shutdown --- */

static void test_shutdown(void **state)
{
    (void)state;
    EXPECT(GREETING);
    FEED("EHLO client.test\r\n");
    clear();
    smtpd_shutdown(&F.s, "4.4.2 Idle timeout");
    EXPECT("421 4.4.2 Idle timeout " HOST "\r\n");
    assert_int_equal(F.close_calls, 1);
    assert_int_equal(F.s.state, SMTPD_S_CLOSED);
    smtpd_shutdown(&F.s, "4.4.2 Idle timeout");
    EXPECT("");
    assert_int_equal(F.close_calls, 1);
    assert_int_equal(FEED("NOOP\r\n"), 0);
    EXPECT("");
}

static void test_shutdown_during_data(void **state)
{
    (void)state;
    to_data();
    FEED("partial\r\n");
    smtpd_shutdown(&F.s, "4.4.2 Timeout");
    EXPECT("421 4.4.2 Timeout " HOST "\r\n");
    assert_int_equal(F.aborts, 1);
    assert_int_equal(F.ends, 0);
    assert_int_equal(F.msgs[0].aborted, 1);
    assert_int_equal(F.close_calls, 1);
    assert_int_equal(FEED(".\r\n"), 0);
    assert_int_equal(F.ends, 0);
}

/* --- refused connections --- */

struct rlog {
    char buf[4096];
    size_t len;
    int calls;
};

static void reject_reply(void *ctx, const char *text, size_t len)
{
    struct rlog *l = ctx;
    assert_true(l->len + len < sizeof l->buf);
    memcpy(l->buf + l->len, text, len);
    l->len += len;
    l->buf[l->len] = '\0';
    l->calls++;
}

#define R_DENIED "503 5.7.1 Access denied; only QUIT is accepted\r\n"

static void test_reject(void **state)
{
    (void)state;
    struct rlog l;
    memset(&l, 0, sizeof l);
    struct smtpd_reject r;
    assert_true(sizeof r <= 4);
    smtpd_reject_init(&r, "554 5.7.1 " HOST " Access denied for 192.0.2.1\r\n", reject_reply, &l);
    assert_string_equal(l.buf, "554 5.7.1 " HOST " Access denied for 192.0.2.1\r\n");
    l.len = 0;
    l.buf[0] = '\0';
    const char in[] = "EHLO x\r\nMAIL FROM:<a@b.c>\r\n\r\nQUITX\r\nQUIT now\r\nXQUIT\r\nQUI\r\n";
    assert_int_equal(smtpd_reject_feed(&r, (const uint8_t *)in, sizeof in - 1, reject_reply, &l),
                     0);
    assert_string_equal(l.buf, R_DENIED R_DENIED R_DENIED R_DENIED R_DENIED R_DENIED R_DENIED);
    l.len = 0;
    l.buf[0] = '\0';
    /* A long garbage line: nothing until its end, then one 503. */
    uint8_t junk[1000];
    memset(junk, 'Q', sizeof junk);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(smtpd_reject_feed(&r, junk, sizeof junk, reject_reply, &l), 0);
    assert_int_equal(l.len, 0);
    assert_int_equal(smtpd_reject_feed(&r, (const uint8_t *)"\r\n", 2, reject_reply, &l), 0);
    assert_string_equal(l.buf, R_DENIED);
    l.len = 0;
    l.buf[0] = '\0';
    /* QUIT in any case, split over feeds */
    assert_int_equal(smtpd_reject_feed(&r, (const uint8_t *)"qU", 2, reject_reply, &l), 0);
    assert_int_equal(smtpd_reject_feed(&r, (const uint8_t *)"iT\r", 3, reject_reply, &l), 0);
    assert_int_equal(l.len, 0);
    assert_int_equal(
        smtpd_reject_feed(&r, (const uint8_t *)"\nNOOP\r\n", 7, reject_reply, &l), 1);
    assert_string_equal(l.buf, "221 2.0.0 Bye\r\n");
    /* closed: nothing more */
    int calls = l.calls;
    assert_int_equal(smtpd_reject_feed(&r, (const uint8_t *)"QUIT\r\n", 6, reject_reply, &l), 1);
    assert_int_equal(l.calls, calls);

    /* plain QUIT as the first line */
    memset(&l, 0, sizeof l);
    smtpd_reject_init(&r, "554 no\r\n", reject_reply, &l);
    assert_int_equal(smtpd_reject_feed(&r, (const uint8_t *)"QUIT\r\n", 6, reject_reply, &l), 1);
    assert_string_equal(l.buf, "554 no\r\n221 2.0.0 Bye\r\n");
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_greeting),
        T(test_ehlo_lines),
        T(test_ehlo_after_tls),
        T(test_helo_and_bad_ehlo),
        T(test_every_command_every_state),
        T(test_command_sequence_rules),
        T(test_pipelined_transaction),
        T(test_transaction_bytewise),
        T(test_commit_inside_msg_end),
        T(test_wait_commit_consumes_nothing),
        T(test_empty_message),
        T(test_text_line_limit),
        T(test_proper_terminator_only),
        T(test_smuggling_variants),
        T(test_starttls),
        T(test_starttls_partial_line_dropped),
        T(test_starttls_unavailable),
        T(test_command_line_length),
        T(test_bare_lf_in_command),
        T(test_bare_cr_in_command),
        T(test_cr_lf_nul_in_parameters),
        T(test_recipient_limit),
        T(test_recipient_flood),
        T(test_recipient_arena_full),
        T(test_duplicate_recipient),
        T(test_malformed_rcpt_paths),
        T(test_malformed_mail_paths),
        T(test_relay_attempts),
        T(test_size_and_params),
        T(test_queue_full),
        T(test_failed_commit),
        T(test_store_failures),
        T(test_no_room_during_data),
        T(test_no_room_at_begin),
        T(test_pipelined_burst_backpressure),
        T(test_auth_needs_tls),
        T(test_auth_not_required),
        T(test_auth_plain),
        T(test_auth_plain_no_initial_response),
        T(test_auth_plain_authzid),
        T(test_auth_login),
        T(test_auth_wrong_password_and_lockout),
        T(test_auth_store_unreadable_is_temporary),
        T(test_auth_cancel_and_bad_input),
        T(test_auth_nul_in_response),
        T(test_auth_before_ehlo),
        T(test_auth_gate_unknown),
        T(test_auth_secrets_wiped),
        T(test_shutdown),
        T(test_shutdown_during_data),
        T(test_reject),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
