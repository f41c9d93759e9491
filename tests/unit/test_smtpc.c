/* firmware/smtpc.c (the SMTP client engine) driven by scripted server
 * transcripts.
 *
 * The engine is sans-I/O: the tests play the smart host, feeding its
 * replies through smtpc_feed(), and check exactly what the engine wrote
 * (through a fake smtpc_ops table that records every write, event, result
 * and transport action). After every call into the engine the harness
 * calls smtpc_pump() the way the transport does, with unlimited room
 * unless a test limits it. The fake checks the engine's promises on every
 * callback: writes only inside smtpc_pump() and never beyond its room, one
 * result per recipient, msg_done() after the last result, done() once and
 * nothing after it, events printable and free of secrets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "smtpc.h"

/* --- the fake transport --- */

#define HELO "relay.test"
#define USER "relayuser"
#define PASS "s3cret!"
#define PLAIN_B64 "AHJlbGF5dXNlcgBzM2NyZXQh" /* "\0relayuser\0s3cret!" */
#define USER_B64 "cmVsYXl1c2Vy"
#define PASS_B64 "czNjcmV0IQ=="
#define MAX_MSGS 4

struct buf {
    char *p;
    size_t len, cap;
};

static void buf_add(struct buf *b, const void *data, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (b->len + n + 1 > cap)
            cap *= 2;
        b->p = realloc(b->p, cap);
        assert_non_null(b->p);
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static const char *buf_str(const struct buf *b) { return b->p ? b->p : ""; }

struct fake {
    struct smtpc c;
    struct buf w, wall;   /* bytes written: since the last check, whole session */
    struct buf ev, evall; /* events as "K text\n" (K = S R T E) */
    int in_pump;
    size_t pump_room, pump_written;
    size_t room; /* room the harness gives each pump */
    /* results per message (index: messages finished before) */
    struct smtpc_result res[MAX_MSGS][SMTPC_RCPT_MAX];
    int res_n[MAX_MSGS][SMTPC_RCPT_MAX];
    int msg_rcpts[MAX_MSGS]; /* recipients of each message sent */
    int sent, msg_done, ready, done, starttls, reply_events;
    enum smtpc_error err;
    struct smtpc_result why;
    /* body source */
    const uint8_t *body;
    size_t body_len, body_pos;
    const size_t *chunks; /* sizes to hand out in turn, cycled; NULL: all cap */
    size_t nchunks, chunk_i;
    long body_fail_at; /* -1: never fail */
    size_t max_cap, body_reads;
    /* knobs */
    int tls_sync;                    /* starttls() completes the handshake itself */
    const struct smtpc_msg *next[2]; /* ready() sends these in turn */
};

static struct fake F;

static void fake_write(void *ctx, const uint8_t *data, size_t len)
{
    struct fake *f = ctx;
    assert_ptr_equal(f, &F);
    assert_int_equal(f->done, 0);
    assert_true(f->in_pump); /* only from inside smtpc_pump() */
    assert_true(len > 0);
    f->pump_written += len;
    assert_true(f->pump_written <= f->pump_room);
    buf_add(&f->w, data, len);
    buf_add(&f->wall, data, len);
}

static void fake_starttls(void *ctx)
{
    struct fake *f = ctx;
    assert_int_equal(f->done, 0);
    assert_int_equal(f->c.state, SMTPC_S_TLS);
    f->starttls++;
    if (f->tls_sync)
        smtpc_tls_done(&f->c, 1);
}

static int fake_body_read(void *ctx, uint8_t *buf, size_t cap)
{
    struct fake *f = ctx;
    assert_int_equal(f->done, 0);
    assert_int_equal(f->c.state, SMTPC_S_BODY);
    assert_true(cap >= 1 && cap <= SMTPC_BODY_CHUNK);
    if (cap > f->max_cap)
        f->max_cap = cap;
    f->body_reads++;
    if (f->body_fail_at >= 0 && f->body_pos >= (size_t)f->body_fail_at)
        return -1;
    size_t n = f->body_len - f->body_pos;
    if (n > cap)
        n = cap;
    if (f->chunks) {
        size_t want = f->chunks[f->chunk_i++ % f->nchunks];
        if (n > want)
            n = want;
    }
    memcpy(buf, f->body + f->body_pos, n);
    f->body_pos += n;
    return (int)n;
}

static void fake_rcpt_result(void *ctx, int index, const struct smtpc_result *r)
{
    struct fake *f = ctx;
    assert_int_equal(f->done, 0);
    int m = f->msg_done;
    assert_true(m < MAX_MSGS && m < f->sent);
    assert_true(index >= 0 && index < f->msg_rcpts[m]);
    assert_int_equal(f->res_n[m][index], 0); /* exactly one result each */
    f->res_n[m][index]++;
    f->res[m][index] = *r;
    /* the status follows the code; code 0 (local reason) is temporary */
    if (r->code == 0)
        assert_int_equal(r->status, SMTPC_TEMP);
    assert_true(strlen(r->text) <= SMTPC_TEXT_MAX);
    for (const char *t = r->text; *t; t++)
        assert_true(*t >= 0x20 && *t <= 0x7e);
}

static void fake_msg_done(void *ctx)
{
    struct fake *f = ctx;
    assert_int_equal(f->done, 0);
    int m = f->msg_done;
    assert_true(m < f->sent);
    for (int i = 0; i < f->msg_rcpts[m]; i++)
        assert_int_equal(f->res_n[m][i], 1);
    f->msg_done++;
}

static void fake_ready(void *ctx)
{
    struct fake *f = ctx;
    assert_int_equal(f->done, 0);
    assert_int_equal(f->c.state, SMTPC_S_READY);
    assert_int_equal(f->msg_done, f->sent); /* no message left open */
    f->ready++;
    if (f->next[0]) {
        const struct smtpc_msg *m = f->next[0];
        f->next[0] = f->next[1];
        f->next[1] = NULL;
        f->msg_rcpts[f->sent++] = m->rcpt_count;
        f->body_pos = 0;
        f->chunk_i = 0;
        assert_int_equal(smtpc_send(&f->c, m), 0);
    }
}

static void fake_done(void *ctx, enum smtpc_error err, const struct smtpc_result *why)
{
    struct fake *f = ctx;
    assert_int_equal(f->done, 0);
    assert_int_equal(f->msg_done, f->sent); /* every message was finished first */
    assert_int_equal(f->c.state, SMTPC_S_DONE);
    f->done++;
    f->err = err;
    f->why = *why;
}

static void fake_event(void *ctx, enum smtpc_event kind, const char *text)
{
    struct fake *f = ctx;
    assert_int_equal(f->done, 0);
    static const char kinds[] = "SRTE";
    assert_true((unsigned)kind < 4);
    for (const char *t = text; *t; t++)
        assert_true(*t >= 0x20 && *t <= 0x7e);
    /* no secret, in any form, ever */
    assert_null(strstr(text, PASS));
    assert_null(strstr(text, PLAIN_B64));
    assert_null(strstr(text, USER_B64));
    assert_null(strstr(text, PASS_B64));
    if (kind == SMTPC_EV_REPLY)
        f->reply_events++;
    char k[2] = {kinds[kind], ' '};
    buf_add(&f->ev, k, 2);
    buf_add(&f->ev, text, strlen(text));
    buf_add(&f->ev, "\n", 1);
    buf_add(&f->evall, k, 2);
    buf_add(&f->evall, text, strlen(text));
    buf_add(&f->evall, "\n", 1);
}

static const struct smtpc_ops fake_ops = {
    .write = fake_write,
    .starttls = fake_starttls,
    .body_read = fake_body_read,
    .rcpt_result = fake_rcpt_result,
    .msg_done = fake_msg_done,
    .ready = fake_ready,
    .done = fake_done,
    .event = fake_event,
};

static void fake_free(void)
{
    free(F.w.p);
    free(F.wall.p);
    free(F.ev.p);
    free(F.evall.p);
    memset(&F, 0, sizeof F);
}

static size_t pump_room(size_t room)
{
    F.in_pump = 1;
    F.pump_room = room;
    F.pump_written = 0;
    size_t n = smtpc_pump(&F.c, room);
    F.in_pump = 0;
    assert_int_equal(n, F.pump_written);
    return n;
}

static void pump(void) { pump_room(F.room); }

static struct smtpc_config cfg_plain(void)
{
    struct smtpc_config cfg = {.helo_name = HELO, .tls = SMTPC_TLS_NONE};
    return cfg;
}

static struct smtpc_config cfg_tls(enum smtpc_tls_policy tls)
{
    struct smtpc_config cfg = {.helo_name = HELO, .tls = tls};
    return cfg;
}

static struct smtpc_config cfg_creds(enum smtpc_tls_policy tls, int no_starttls,
                                     int auth_plaintext)
{
    struct smtpc_config cfg = {.helo_name = HELO,
                               .tls = tls,
                               .no_starttls = no_starttls,
                               .user = USER,
                               .password = PASS,
                               .auth_plaintext = auth_plaintext};
    return cfg;
}

static void start(const struct smtpc_config *cfg)
{
    fake_free();
    F.room = SIZE_MAX;
    F.body_fail_at = -1;
    assert_int_equal(smtpc_init(&F.c, cfg, &fake_ops, &F), 0);
    assert_int_equal(F.c.state, SMTPC_S_GREETING);
    pump();
    assert_int_equal(F.w.len, 0); /* the client speaks second */
}

static int setup(void **state)
{
    (void)state;
    struct smtpc_config cfg = cfg_plain();
    start(&cfg);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fake_free();
    return 0;
}

/* The server sends bytes (one segment); then the transport pumps. */
static void server(const void *data, size_t len)
{
    smtpc_feed(&F.c, data, len);
    pump();
}

static void server_str(const char *s) { server(s, strlen(s)); }

#define S(lit) server((lit), sizeof(lit) - 1)

/* What was written since the last check is exactly `want`. */
#define EXPECT_W(want)                                                                             \
    do {                                                                                           \
        assert_string_equal(buf_str(&F.w), (want));                                                \
        F.w.len = 0;                                                                               \
        if (F.w.p)                                                                                 \
            F.w.p[0] = '\0';                                                                       \
    } while (0)

/* The events since the last check are exactly `want`. */
#define EXPECT_EV(want)                                                                            \
    do {                                                                                           \
        assert_string_equal(buf_str(&F.ev), (want));                                               \
        F.ev.len = 0;                                                                              \
        if (F.ev.p)                                                                                \
            F.ev.p[0] = '\0';                                                                      \
    } while (0)

static void clear_ev(void)
{
    F.ev.len = 0;
    if (F.ev.p)
        F.ev.p[0] = '\0';
}

#define GREET "220 mx.test ESMTP\r\n"
#define W_EHLO "EHLO " HELO "\r\n"
#define W_HELO "HELO " HELO "\r\n"
#define EHLO_NONE "250 mx.test\r\n"
#define EHLO_PIPE "250-mx.test\r\n250 PIPELINING\r\n"
#define EHLO_TLS "250-mx.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n"
#define EHLO_TLS_AUTH "250-mx.test\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 AUTH PLAIN LOGIN\r\n"
#define EHLO_AUTH "250-mx.test\r\n250-PIPELINING\r\n250 AUTH PLAIN LOGIN\r\n"
#define EHLO_FULL                                                                                  \
    "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 10000\r\n250-8BITMIME\r\n250-STARTTLS\r\n"       \
    "250-AUTH PLAIN LOGIN\r\n250 ENHANCEDSTATUSCODES\r\n"

/* Greeting and EHLO, answered with `ehlo_reply`. */
static void greet_ehlo(const char *ehlo_reply)
{
    S(GREET);
    EXPECT_W(W_EHLO);
    server_str(ehlo_reply);
}

/* A session in SMTPC_S_READY on `ehlo_reply` (no TLS, no AUTH). */
static void to_ready(const char *ehlo_reply)
{
    greet_ehlo(ehlo_reply);
    assert_int_equal(F.c.state, SMTPC_S_READY);
    assert_int_equal(F.ready, 1);
    EXPECT_W("");
}

static const char *const RCPTS[] = {"a@example.com", "b@example.com", "c@example.com"};
#define W_MAIL "MAIL FROM:<s@x.org>\r\n"
#define W_RCPT_A "RCPT TO:<a@example.com>\r\n"
#define W_RCPT_B "RCPT TO:<b@example.com>\r\n"
#define W_RCPT_C "RCPT TO:<c@example.com>\r\n"
#define W_DATA "DATA\r\n"
#define W_BATCH2 W_MAIL W_RCPT_A W_RCPT_B W_DATA
#define W_BATCH3 W_MAIL W_RCPT_A W_RCPT_B W_RCPT_C W_DATA

static struct smtpc_msg msg_n(int n, const char *body)
{
    struct smtpc_msg m = {.sender = "s@x.org", .rcpts = RCPTS, .rcpt_count = n,
                          .size = strlen(body)};
    return m;
}

static void set_body(const void *body, size_t len)
{
    F.body = body;
    F.body_len = len;
    F.body_pos = 0;
    F.chunk_i = 0;
}

/* Send a message with the first n recipients of RCPTS. */
static void send_n(int n, const char *body)
{
    set_body(body, strlen(body));
    struct smtpc_msg m = msg_n(n, body);
    F.msg_rcpts[F.sent++] = n;
    assert_int_equal(smtpc_send(&F.c, &m), 0);
    pump();
}

static void assert_result(int m, int i, enum smtpc_status st, int code, const char *esc,
                          const char *text)
{
    assert_int_equal(F.res_n[m][i], 1);
    assert_int_equal(F.res[m][i].status, st);
    assert_int_equal(F.res[m][i].code, code);
    assert_string_equal(F.res[m][i].enhanced, esc);
    assert_string_equal(F.res[m][i].text, text);
}

static void assert_done(enum smtpc_error err)
{
    assert_int_equal(F.done, 1);
    assert_int_equal(F.err, err);
    assert_int_equal(F.c.state, SMTPC_S_DONE);
    assert_int_equal(smtpc_want_write(&F.c), 0);
}

static void quit_ok(void)
{
    assert_int_equal(smtpc_quit(&F.c), 0);
    pump();
    EXPECT_W("QUIT\r\n");
    S("221 2.0.0 bye\r\n");
    assert_done(SMTPC_E_NONE);
    assert_int_equal(F.why.code, 221);
}

/* --- a whole session --- */

static void test_basic_session(void **state)
{
    (void)state;
    to_ready(EHLO_PIPE);
    send_n(2, "hello\r\n");
    EXPECT_W(W_BATCH2); /* pipelined: one write */
    S("250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.1.5 ok\r\n354 go ahead\r\n");
    EXPECT_W("hello\r\n.\r\n");
    assert_int_equal(F.c.state, SMTPC_S_DOT);
    assert_int_equal(F.msg_done, 0);
    S("250 2.0.0 queued as X\r\n");
    assert_result(0, 0, SMTPC_OK, 250, "2.0.0", "2.0.0 queued as X");
    assert_result(0, 1, SMTPC_OK, 250, "2.0.0", "2.0.0 queued as X");
    assert_int_equal(F.msg_done, 1);
    assert_int_equal(F.ready, 2);
    assert_int_equal(F.c.messages, 1);
    quit_ok();
    assert_string_equal(smtpc_state_name(SMTPC_S_GREETING), "greeting");
    assert_string_equal(smtpc_state_name(SMTPC_S_DONE), "done");
    assert_string_equal(smtpc_state_name((enum smtpc_state)99), "?");
    assert_string_equal(smtpc_error_name(SMTPC_E_TLS_FAILED), "tls-failed");
    assert_string_equal(smtpc_error_name(SMTPC_E_AUTH_NEEDS_TLS), "auth-needs-tls");
    assert_string_equal(smtpc_error_name(SMTPC_E_ABORTED), "aborted");
    assert_string_equal(smtpc_error_name((enum smtpc_error)99), "?");
}

/* The events `smarthost test` prints, for a session with every step. */
static void test_event_transcript(void **state)
{
    (void)state;
    struct smtpc_config cfg = cfg_creds(SMTPC_TLS_MAY, 0, 0);
    start(&cfg);
    S(GREET);
    S(EHLO_TLS);
    S("220 2.0.0 go\r\n");
    smtpc_tls_done(&F.c, 1);
    pump();
    S(EHLO_AUTH);
    S("235 2.7.0 ok\r\n");
    send_n(1, "hi\r\n");
    S("250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go\r\n");
    S("250 2.0.0 queued\r\n");
    assert_int_equal(smtpc_quit(&F.c), 0);
    pump();
    S("221 bye\r\n");
    EXPECT_EV("R 220 mx.test ESMTP\n"
              "S EHLO relay.test\n"
              "R 250-mx.test\n"
              "R 250-PIPELINING\n"
              "R 250 STARTTLS\n"
              "T capabilities: PIPELINING STARTTLS\n"
              "S STARTTLS\n"
              "R 220 2.0.0 go\n"
              "T STARTTLS: accepted; starting the TLS handshake\n"
              "T TLS: established\n"
              "S EHLO relay.test\n"
              "R 250-mx.test\n"
              "R 250-PIPELINING\n"
              "R 250 AUTH PLAIN LOGIN\n"
              "T capabilities: PIPELINING AUTH PLAIN LOGIN\n"
              "S AUTH PLAIN (credentials hidden)\n"
              "R 235 2.7.0 ok\n"
              "T AUTH: succeeded\n"
              "S MAIL FROM:<s@x.org>\n"
              "S RCPT TO:<a@example.com>\n"
              "S DATA\n"
              "R 250 2.1.0 ok\n"
              "R 250 2.1.5 ok\n"
              "R 354 go\n"
              "T DATA: 4 bytes of message sent\n"
              "S .\n"
              "R 250 2.0.0 queued\n"
              "S QUIT\n"
              "R 221 bye\n");
    assert_done(SMTPC_E_NONE);
    assert_string_equal(buf_str(&F.wall), W_EHLO "STARTTLS\r\n" W_EHLO "AUTH PLAIN " PLAIN_B64
                                                 "\r\n" W_MAIL W_RCPT_A W_DATA "hi\r\n.\r\n"
                                                 "QUIT\r\n");
}

/* --- reply parsing --- */

static void test_multiline_reply(void **state)
{
    (void)state;
    /* A multi-line greeting, then a multi-line refusal whose enhanced code
     * repeats on every line: joined once, with single spaces. */
    S("220-mx.test ESMTP\r\n220-second line\r\n220 third\r\n");
    EXPECT_W(W_EHLO);
    S(EHLO_NONE);
    send_n(1, "x\r\n");
    EXPECT_W(W_MAIL);
    S("250 ok\r\n");
    EXPECT_W(W_RCPT_A);
    S("550-5.1.1 first line\r\n550-5.1.1 second\r\n550 5.1.1 third\r\n");
    assert_result(0, 0, SMTPC_PERM, 550, "5.1.1", "5.1.1 first line second third");
    EXPECT_W("RSET\r\n");
    /* A code of another class is not an enhanced code; nor is a malformed one. */
    S("250 2.0.0 ok\r\n");
    send_n(1, "x\r\n");
    S("250 ok\r\n");
    S("450 5.1.1 mismatch\r\n");
    assert_result(1, 0, SMTPC_TEMP, 450, "", "5.1.1 mismatch");
    S("250 ok\r\n");
    send_n(1, "x\r\n");
    S("250 ok\r\n");
    S("550 5.1234.1 odd\r\n");
    assert_result(2, 0, SMTPC_PERM, 550, "", "5.1234.1 odd");
    S("250 ok\r\n");
    send_n(1, "x\r\n");
    S("250 ok\r\n");
    S("550 5.7.1\r\n");
    assert_result(3, 0, SMTPC_PERM, 550, "5.7.1", "5.7.1");
}

static void test_reply_without_text(void **state)
{
    (void)state;
    /* "250\r\n" is a valid reply (RFC 5321 4.2: the text is optional). */
    S("220\r\n");
    EXPECT_W(W_EHLO);
    S("250\r\n");
    assert_int_equal(F.c.state, SMTPC_S_READY);
    assert_int_equal(F.c.caps.flags, 0);
    send_n(1, "x\r\n");
    EXPECT_W(W_MAIL);
    S("250\r\n");
    S("250-\r\n250\r\n"); /* empty continuation lines too */
    S("354\r\n");
    EXPECT_W(W_RCPT_A W_DATA "x\r\n.\r\n");
    S("250\r\n");
    assert_result(0, 0, SMTPC_OK, 250, "", "");
    assert_int_equal(F.done, 0);
}

static void test_endless_continuation(void **state)
{
    (void)state;
    /* 10000 continuation lines in one segment: refused at line 101, the
     * rest is never looked at, and nothing is written (no QUIT: the
     * stream is not trusted). */
    S(GREET);
    EXPECT_W(W_EHLO);
    struct buf b = {0};
    for (int i = 0; i < 10000; i++)
        buf_add(&b, "250-x\r\n", 7);
    server(b.p, b.len);
    assert_done(SMTPC_E_PROTOCOL);
    assert_int_equal(F.reply_events, 1 + 100);
    assert_string_equal(F.why.text, "protocol error in state ehlo: reply longer than 100 lines");
    assert_int_equal(F.why.code, 0);
    assert_int_equal(F.why.status, SMTPC_TEMP);
    EXPECT_W("");

    /* During a transaction: every recipient stays queued. */
    setup(NULL);
    to_ready(EHLO_PIPE);
    send_n(2, "x\r\n");
    EXPECT_W(W_BATCH2);
    S("250 ok\r\n");
    server(b.p, b.len);
    assert_done(SMTPC_E_PROTOCOL);
    assert_result(0, 0, SMTPC_TEMP, 0, "", "protocol error in state rcpt: reply longer than 100 lines");
    assert_result(0, 1, SMTPC_TEMP, 0, "", "protocol error in state rcpt: reply longer than 100 lines");
    assert_int_equal(F.msg_done, 1);
    EXPECT_W("");

    /* Exactly 100 lines is fine. */
    setup(NULL);
    S(GREET);
    b.len = 0;
    buf_add(&b, "250-mx.test\r\n", 13);
    for (int i = 0; i < 98; i++)
        buf_add(&b, "250-x\r\n", 7);
    buf_add(&b, "250 PIPELINING\r\n", 16);
    server(b.p, b.len);
    assert_int_equal(F.c.state, SMTPC_S_READY);
    assert_int_equal(F.c.caps.flags, SMTPC_CAP_PIPELINING);
    free(b.p);
}

static void test_code_change(void **state)
{
    (void)state;
    S(GREET);
    S("250-a\r\n550 b\r\n");
    assert_done(SMTPC_E_PROTOCOL);
    assert_string_equal(F.why.text,
                        "protocol error in state ehlo: reply code changed within a multi-line reply");
    EXPECT_W(W_EHLO);

    /* At RCPT: neither 250 nor 550 is believed; the message stays queued. */
    setup(NULL);
    to_ready(EHLO_PIPE);
    send_n(2, "x\r\n");
    EXPECT_W(W_BATCH2);
    S("250 ok\r\n250-a\r\n550 b\r\n");
    assert_done(SMTPC_E_PROTOCOL);
    assert_int_equal(F.res[0][0].status, SMTPC_TEMP);
    assert_int_equal(F.res[0][0].code, 0);
    assert_int_equal(F.res[0][1].status, SMTPC_TEMP);
    EXPECT_W("");
}

static void test_long_line(void **state)
{
    (void)state;
    /* 10 kB in one line: refused once it passes 512 octets, never buffered. */
    S(GREET);
    EXPECT_W(W_EHLO);
    char *big = malloc(10 * 1024 + 2);
    assert_non_null(big);
    memcpy(big, "250 ", 4);
    memset(big + 4, 'a', 10 * 1024 - 4);
    memcpy(big + 10 * 1024, "\r\n", 2);
    server(big, 10 * 1024 + 2);
    assert_done(SMTPC_E_PROTOCOL);
    assert_string_equal(F.why.text, "protocol error in state ehlo: reply line longer than 512 octets");
    assert_true(F.c.line_len < SMTPC_LINE_MAX);

    /* 510 octets and CRLF is the limit; one more is too long, with CRLF
     * or with a bare LF. */
    setup(NULL);
    memset(big, 'a', 600);
    memcpy(big, "220 ", 4);
    memcpy(big + 510, "\r\n", 2);
    server(big, 512);
    EXPECT_W(W_EHLO);
    assert_int_equal(F.done, 0);
    setup(NULL);
    memset(big, 'a', 600);
    memcpy(big, "220 ", 4);
    memcpy(big + 511, "\r\n", 2);
    server(big, 513);
    assert_done(SMTPC_E_PROTOCOL);
    EXPECT_W("");
    setup(NULL);
    memset(big, 'a', 600);
    memcpy(big, "220 ", 4);
    big[511] = '\n';
    server(big, 512);
    assert_done(SMTPC_E_PROTOCOL);
    free(big);
}

static void test_malformed_lines(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "2x0 ok\r\n", "25\r\n", "250x\r\n", "600 x\r\n", "199 x\r\n", "\r\n",
        "abc\r\n",    "250\tx\r\n", "-250 x\r\n", "2500 x\r\n", " 250 x\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setup(NULL);
        server_str(bad[i]);
        assert_done(SMTPC_E_PROTOCOL);
        assert_string_equal(F.why.text, "protocol error in state greeting: malformed reply line");
        EXPECT_W("");
    }
    /* Malformed within a transaction: temporary for everyone. */
    setup(NULL);
    to_ready(EHLO_PIPE);
    send_n(2, "x\r\n");
    S("250 ok\r\nOK\r\n");
    assert_done(SMTPC_E_PROTOCOL);
    assert_result(0, 0, SMTPC_TEMP, 0, "", "protocol error in state rcpt: malformed reply line");
    assert_result(0, 1, SMTPC_TEMP, 0, "", "protocol error in state rcpt: malformed reply line");
}

static void test_bare_lf_lenient(void **state)
{
    (void)state;
    /* Bare LF ends a reply line too; a CR elsewhere is text ('?'). */
    S("220 mx.test\n");
    EXPECT_W(W_EHLO);
    S("250-mx.test\n250-PIPELINING\r\n250 8BITMIME\n");
    assert_int_equal(F.c.state, SMTPC_S_READY);
    assert_int_equal(F.c.caps.flags, SMTPC_CAP_PIPELINING | SMTPC_CAP_8BITMIME);
    send_n(1, "x\r\n");
    S("250 ok\n250 a\rb\n354 go\n");
    S("250 done\r\r\n");
    assert_result(0, 0, SMTPC_OK, 250, "", "done?");
}

static void test_sanitized_text(void **state)
{
    (void)state;
    to_ready(EHLO_PIPE);
    send_n(1, "x\r\n");
    S("250 ok\r\n550 5.1.1 bad\x1b[31m\x80us\x7f" "er\x01\r\n354 go\r\n");
    assert_result(0, 0, SMTPC_PERM, 550, "5.1.1", "5.1.1 bad?[31m?us?er?");
    /* The text is bounded: 100 lines of 96 octets of text keep 255. */
    S("250 ok\r\n");
    send_n(1, "x\r\n");
    struct buf b = {0};
    buf_add(&b, "250 ok\r\n", 8);
    char line[512];
    memset(line, 'y', sizeof line);
    memcpy(line, "550-", 4);
    memcpy(line + 100, "\r\n", 2);
    for (int i = 0; i < 99; i++)
        buf_add(&b, line, 102);
    buf_add(&b, "550 end\r\n", 9);
    server(b.p, b.len);
    free(b.p);
    assert_int_equal(F.res[1][0].code, 550);
    assert_int_equal(strlen(F.res[1][0].text), SMTPC_TEXT_MAX);
    assert_int_equal(F.res[1][0].text[0], 'y');
    assert_int_equal(F.res[1][0].text[95], 'y');
    assert_int_equal(F.res[1][0].text[96], ' '); /* the join of lines one and two */
    assert_int_equal(F.res[1][0].text[97], 'y');
    assert_int_equal(F.done, 0);
}

static void test_closed_mid_reply(void **state)
{
    (void)state;
    /* FIN in the middle of a multi-line EHLO reply. */
    S(GREET);
    S("250-mx.test\r\n250-PIPE");
    assert_int_equal(F.done, 0);
    smtpc_closed(&F.c);
    assert_done(SMTPC_E_CLOSED);
    assert_string_equal(F.why.text,
                        "connection closed by the server in state ehlo, in the middle of a reply");
    smtpc_closed(&F.c); /* once is enough */
    assert_int_equal(F.done, 1);

    /* Mid-transaction, cut inside a reply: the message stays queued. */
    setup(NULL);
    to_ready(EHLO_PIPE);
    send_n(2, "x\r\n");
    S("250 ok\r\n250 ok\r\n25");
    smtpc_closed(&F.c);
    assert_done(SMTPC_E_CLOSED);
    assert_result(0, 0, SMTPC_TEMP, 0, "",
                  "connection closed by the server in state rcpt, in the middle of a reply");
    assert_result(0, 1, SMTPC_TEMP, 0, "",
                  "connection closed by the server in state rcpt, in the middle of a reply");

    /* An idle connection closed: no message involved. */
    setup(NULL);
    to_ready(EHLO_PIPE);
    smtpc_closed(&F.c);
    assert_done(SMTPC_E_CLOSED);
    assert_string_equal(F.why.text, "connection closed by the server in state ready");
    assert_int_equal(F.msg_done, 0);
}

static void test_closed_mid_data(void **state)
{
    (void)state;
    to_ready(EHLO_PIPE);
    static char body[20000];
    for (size_t i = 0; i < sizeof body; i++)
        body[i] = (i % 80 == 78) ? '\r' : (i % 80 == 79) ? '\n' : 'b';
    body[sizeof body - 1] = '\0';
    F.room = 1000;
    send_n(2, body);
    S("250 ok\r\n250 ok\r\n550 5.1.1 no\r\n354 go\r\n");
    assert_result(0, 1, SMTPC_PERM, 550, "5.1.1", "5.1.1 no");
    assert_int_equal(F.c.state, SMTPC_S_BODY);
    assert_true(smtpc_want_write(&F.c));
    smtpc_closed(&F.c);
    assert_done(SMTPC_E_CLOSED);
    assert_result(0, 0, SMTPC_TEMP, 0, "", "connection closed by the server in state body");
    assert_int_equal(F.msg_done, 1);
    /* the terminator never went out */
    assert_null(strstr(buf_str(&F.wall), "\r\n.\r\n"));
    assert_int_equal(pump_room(SIZE_MAX), 0);
}

/* --- capabilities --- */

static void test_capabilities(void **state)
{
    (void)state;
    greet_ehlo(EHLO_FULL);
    assert_int_equal(F.c.caps.flags, SMTPC_CAP_PIPELINING | SMTPC_CAP_SIZE | SMTPC_CAP_8BITMIME |
                                         SMTPC_CAP_STARTTLS | SMTPC_CAP_AUTH |
                                         SMTPC_CAP_ENHANCEDSTATUSCODES);
    assert_int_equal(F.c.caps.auth, SMTPC_AUTH_PLAIN | SMTPC_AUTH_LOGIN);
    assert_int_equal(F.c.caps.size_max, 10000);
    assert_non_null(strstr(buf_str(&F.ev), "T capabilities: PIPELINING SIZE 10000 8BITMIME "
                                           "STARTTLS AUTH PLAIN LOGIN ENHANCEDSTATUSCODES\n"));

    /* Legacy AUTH=, SIZE without a number, lower case. */
    setup(NULL);
    greet_ehlo("250-mx.test\r\n250-AUTH=PLAIN\r\n250-SIZE\r\n250 8bitmime\r\n");
    assert_int_equal(F.c.caps.flags, SMTPC_CAP_AUTH | SMTPC_CAP_SIZE | SMTPC_CAP_8BITMIME);
    assert_int_equal(F.c.caps.auth, SMTPC_AUTH_PLAIN);
    assert_int_equal(F.c.caps.size_max, 0);
    assert_non_null(strstr(buf_str(&F.ev), "T capabilities: SIZE 8BITMIME AUTH PLAIN\n"));

    /* Unknown mechanisms, look-alike keywords, an unreadable size. */
    setup(NULL);
    greet_ehlo("250-mx.test\r\n250-size 52428800\r\n250-AUTH LOGIN CRAM-MD5\r\n"
               "250-PIPELININGX\r\n250-XSTARTTLS\r\n250-AUTH=LOGIN\r\n250 ENHANCEDSTATUSCODES\r\n");
    assert_int_equal(F.c.caps.flags,
                     SMTPC_CAP_SIZE | SMTPC_CAP_AUTH | SMTPC_CAP_ENHANCEDSTATUSCODES);
    assert_int_equal(F.c.caps.auth, SMTPC_AUTH_LOGIN | SMTPC_AUTH_OTHER);
    assert_int_equal(F.c.caps.size_max, 52428800);
    setup(NULL);
    greet_ehlo("250-mx.test\r\n250-SIZE 99999999999999999999\r\n250 SIZE 12x\r\n");
    assert_int_equal(F.c.caps.flags, SMTPC_CAP_SIZE);
    assert_int_equal(F.c.caps.size_max, 0);

    /* The first line is the server's name, not a keyword; and a single
     * line reply has no extensions. */
    setup(NULL);
    greet_ehlo("250 PIPELINING\r\n");
    assert_int_equal(F.c.caps.flags, 0);
    assert_non_null(strstr(buf_str(&F.ev), "T capabilities: none\n"));

    /* SIZE= and BODY= go on MAIL only when offered. */
    setup(NULL);
    greet_ehlo("250-mx.test\r\n250-SIZE 10000\r\n250 8BITMIME\r\n");
    EXPECT_W("");
    send_n(1, "123456789\r\n");
    EXPECT_W("MAIL FROM:<s@x.org> SIZE=11 BODY=8BITMIME\r\n");
    setup(NULL);
    greet_ehlo("250-mx.test\r\n250 SIZE\r\n");
    send_n(1, "");
    EXPECT_W("MAIL FROM:<s@x.org> SIZE=0\r\n");
}

/* --- TLS policy --- */

static void test_tls_may_offered(void **state)
{
    (void)state;
    struct smtpc_config cfg = cfg_tls(SMTPC_TLS_MAY);
    start(&cfg);
    greet_ehlo(EHLO_FULL);
    EXPECT_W("STARTTLS\r\n");
    assert_int_equal(F.c.state, SMTPC_S_STARTTLS);
    assert_int_equal(F.ready, 0);
    S("220 2.0.0 Ready to start TLS\r\n");
    assert_int_equal(F.starttls, 1);
    assert_int_equal(F.c.state, SMTPC_S_TLS);
    assert_int_equal(F.c.caps.flags, 0); /* forgotten */
    assert_int_equal(smtpc_want_write(&F.c), 0);
    EXPECT_W("");
    smtpc_tls_done(&F.c, 1);
    pump();
    EXPECT_W(W_EHLO);
    assert_true(smtpc_tls_active(&F.c));
    S("250-mx.test\r\n250-PIPELINING\r\n250 SIZE 10000\r\n");
    assert_int_equal(F.ready, 1);
    assert_int_equal(F.c.caps.flags, SMTPC_CAP_PIPELINING | SMTPC_CAP_SIZE);
    send_n(1, "hi\r\n");
    EXPECT_W("MAIL FROM:<s@x.org> SIZE=4\r\n" W_RCPT_A W_DATA);
    S("250 ok\r\n250 ok\r\n354 go\r\n");
    EXPECT_W("hi\r\n.\r\n");
    S("250 ok\r\n");
    assert_result(0, 0, SMTPC_OK, 250, "", "ok");
    /* a second smtpc_tls_done() means nothing */
    smtpc_tls_done(&F.c, 0);
    assert_int_equal(F.done, 0);
    assert_int_equal(F.c.state, SMTPC_S_READY);
}

static void test_tls_may_not_offered(void **state)
{
    (void)state;
    struct smtpc_config cfg = cfg_tls(SMTPC_TLS_MAY);
    start(&cfg);
    greet_ehlo(EHLO_PIPE);
    EXPECT_W("");
    assert_int_equal(F.c.state, SMTPC_S_READY);
    assert_false(smtpc_tls_active(&F.c));
    assert_non_null(strstr(buf_str(&F.ev),
                           "T STARTTLS: not offered by the server; continuing without TLS\n"));
    send_n(1, "x\r\n");
    EXPECT_W(W_MAIL W_RCPT_A W_DATA);
}

static void test_tls_may_failed_then_plaintext(void **state)
{
    (void)state;
    struct smtpc_config cfg = cfg_tls(SMTPC_TLS_MAY);
    start(&cfg);
    greet_ehlo(EHLO_TLS);
    EXPECT_W("STARTTLS\r\n");
    S("220 go\r\n");
    smtpc_tls_done(&F.c, 0);
    pump();
    assert_done(SMTPC_E_TLS_FAILED);
    assert_string_equal(F.why.text, "TLS handshake failed");
    assert_int_equal(F.ready, 0);
    EXPECT_W(""); /* no QUIT into a broken TLS layer */
    assert_non_null(strstr(buf_str(&F.ev), "T TLS: handshake failed\nE tls-failed: TLS handshake failed\n"));

    /* The transport reconnects with no_starttls: plaintext although the
     * server offers STARTTLS. */
    cfg.no_starttls = 1;
    start(&cfg);
    greet_ehlo(EHLO_TLS);
    EXPECT_W("");
    assert_int_equal(F.c.state, SMTPC_S_READY);
    assert_non_null(strstr(buf_str(&F.ev),
                           "T STARTTLS: disabled for this connection; continuing without TLS\n"));
    send_n(1, "x\r\n");
    S("250 ok\r\n250 ok\r\n354 go\r\n");
    S("250 ok\r\n");
    assert_result(0, 0, SMTPC_OK, 250, "", "ok");
    assert_null(strstr(buf_str(&F.wall), "STARTTLS"));
    assert_int_equal(F.starttls, 0);

    /* The handshake dies with the connection: the same as a failure. */
    cfg.no_starttls = 0;
    start(&cfg);
    greet_ehlo(EHLO_TLS);
    S("220 go\r\n");
    smtpc_closed(&F.c);
    assert_done(SMTPC_E_TLS_FAILED);
}

static void test_tls_may_refused(void **state)
{
    (void)state;
    /* 454 to STARTTLS under may: go on in plaintext on this connection. */
    struct smtpc_config cfg = cfg_tls(SMTPC_TLS_MAY);
    start(&cfg);
    greet_ehlo(EHLO_TLS);
    EXPECT_W("STARTTLS\r\n");
    S("454 4.7.0 TLS not available\r\n");
    assert_int_equal(F.c.state, SMTPC_S_READY);
    assert_int_equal(F.starttls, 0);
    assert_false(smtpc_tls_active(&F.c));
    assert_int_equal(F.c.caps.flags, SMTPC_CAP_PIPELINING | SMTPC_CAP_STARTTLS);
    EXPECT_W("");
}

static void test_tls_encrypt_not_offered(void **state)
{
    (void)state;
    struct smtpc_config cfg = cfg_tls(SMTPC_TLS_ENCRYPT);
    start(&cfg);
    greet_ehlo(EHLO_PIPE);
    EXPECT_W("QUIT\r\n");
    assert_int_equal(F.c.state, SMTPC_S_QUIT);
    assert_int_equal(F.ready, 0);
    assert_int_equal(smtpc_send(&F.c, &(struct smtpc_msg){"s@x.org", RCPTS, 1, 1}), -1);
    S("221 bye\r\n");
    assert_done(SMTPC_E_TLS_POLICY);
    assert_string_equal(F.why.text, "TLS is required but the server does not offer STARTTLS");
    assert_int_equal(F.why.code, 0);

    /* Refused STARTTLS: the same, with the server's reply. */
    start(&cfg);
    greet_ehlo(EHLO_TLS);
    EXPECT_W("STARTTLS\r\n");
    S("454 4.7.0 TLS not available\r\n");
    EXPECT_W("QUIT\r\n");
    smtpc_closed(&F.c); /* no 221: the close is as good */
    assert_done(SMTPC_E_TLS_POLICY);
    assert_int_equal(F.why.code, 454);
    assert_string_equal(F.why.enhanced, "4.7.0");

    /* Told not to try STARTTLS: TLS is impossible, so nothing is sent. */
    cfg.no_starttls = 1;
    start(&cfg);
    greet_ehlo(EHLO_TLS);
    EXPECT_W("QUIT\r\n");
    S("221 bye\r\n");
    assert_done(SMTPC_E_TLS_POLICY);
    assert_null(strstr(buf_str(&F.wall), "STARTTLS"));

    /* HELO fallback: no extensions, so no STARTTLS either. */
    cfg.no_starttls = 0;
    start(&cfg);
    greet_ehlo("502 5.5.2 unknown\r\n");
    EXPECT_W(W_HELO);
    S("250 mx.test\r\n");
    EXPECT_W("QUIT\r\n");
    S("221 bye\r\n");
    assert_done(SMTPC_E_TLS_POLICY);
}

static void test_tls_encrypt_handshake_failed(void **state)
{
    (void)state;
    struct smtpc_config cfg = cfg_tls(SMTPC_TLS_ENCRYPT);
    start(&cfg);
    greet_ehlo(EHLO_TLS);
    EXPECT_W("STARTTLS\r\n");
    S("220 go\r\n");
    smtpc_tls_done(&F.c, 0);
    pump();
    assert_done(SMTPC_E_TLS_POLICY); /* not tls-failed: no plaintext retry */
    assert_string_equal(F.why.text, "TLS handshake failed");
    EXPECT_W("");
}

static void test_tls_verify(void **state)
{
    (void)state;
    /* The transport reports a rejected certificate as a failed handshake. */
    struct smtpc_config cfg = cfg_tls(SMTPC_TLS_VERIFY);
    start(&cfg);
    greet_ehlo(EHLO_TLS);
    EXPECT_W("STARTTLS\r\n");
    S("220 go\r\n");
    smtpc_tls_done(&F.c, 0);
    assert_done(SMTPC_E_TLS_POLICY);
    EXPECT_W("");

    start(&cfg);
    greet_ehlo(EHLO_PIPE);
    EXPECT_W("QUIT\r\n");
    smtpc_closed(&F.c);
    assert_done(SMTPC_E_TLS_POLICY);

    start(&cfg);
    greet_ehlo(EHLO_TLS);
    S("220 go\r\n");
    smtpc_tls_done(&F.c, 1);
    pump();
    EXPECT_W("STARTTLS\r\n" W_EHLO);
    S(EHLO_PIPE);
    assert_int_equal(F.c.state, SMTPC_S_READY);
    assert_true(smtpc_tls_active(&F.c));
}

static void test_tls_none(void **state)
{
    (void)state;
    struct smtpc_config cfg = cfg_tls(SMTPC_TLS_NONE);
    start(&cfg);
    greet_ehlo(EHLO_FULL);
    EXPECT_W("");
    assert_int_equal(F.c.state, SMTPC_S_READY);
    assert_non_null(strstr(buf_str(&F.ev), "T STARTTLS: not used (TLS policy none)\n"));
    send_n(1, "x\r\n");
    S("250 ok\r\n250 ok\r\n354 go\r\n");
    S("250 ok\r\n");
    EXPECT_W("MAIL FROM:<s@x.org> SIZE=3 BODY=8BITMIME\r\n" W_RCPT_A W_DATA "x\r\n.\r\n");
    quit_ok();
    assert_null(strstr(buf_str(&F.wall), "STARTTLS"));
    assert_int_equal(F.starttls, 0);
}

/* "220 go" and a forged capability in one segment: the forged line is
 * dropped, and after TLS only the new EHLO counts. */
static void test_starttls_injection(void **state)
{
    (void)state;
    struct smtpc_config cfg = cfg_creds(SMTPC_TLS_MAY, 0, 0);
    start(&cfg);
    greet_ehlo(EHLO_TLS);
    EXPECT_W("STARTTLS\r\n");
    S("220 go\r\n250-AUTH PLAIN\r\n");
    assert_int_equal(F.starttls, 1);
    assert_int_equal(F.c.discarded, 16);
    assert_int_equal(F.c.line_len, 0);
    assert_non_null(strstr(buf_str(&F.ev), "T STARTTLS: discarded 16 bytes the server sent in "
                                           "plaintext after its 220\n"));
    /* more plaintext before the handshake ends: dropped too */
    S("250 AUTH LOGIN\r\n");
    assert_int_equal(F.c.discarded, 32);
    smtpc_tls_done(&F.c, 1);
    pump();
    EXPECT_W(W_EHLO);
    S(EHLO_PIPE);
    /* A merged reply would have shown AUTH PLAIN and made us send the
     * credentials; the server over TLS offers no AUTH, so none is sent. */
    assert_int_equal(F.c.caps.flags, SMTPC_CAP_PIPELINING);
    assert_int_equal(F.c.caps.auth, 0);
    assert_int_equal(F.c.state, SMTPC_S_READY);
    assert_non_null(
        strstr(buf_str(&F.ev), "T AUTH: not offered by the server; continuing without AUTH "
                               "(a refusal will be taken as temporary)\n"));
    EXPECT_W("");
    send_n(1, "x\r\n");
    EXPECT_W(W_MAIL W_RCPT_A W_DATA);
    assert_null(strstr(buf_str(&F.wall), "AUTH"));

    /* The same when the transport finishes the handshake inside starttls(). */
    start(&cfg);
    F.tls_sync = 1;
    greet_ehlo(EHLO_TLS);
    S("220 go\r\n250-AUTH PLAIN\r\n");
    assert_int_equal(F.c.discarded, 16);
    assert_true(smtpc_tls_active(&F.c));
    EXPECT_W("STARTTLS\r\n" W_EHLO);
    S(EHLO_PIPE);
    assert_int_equal(F.c.caps.auth, 0);
    assert_int_equal(F.c.state, SMTPC_S_READY);
    assert_null(strstr(buf_str(&F.wall), "AUTH"));
}

/* --- AUTH --- */

static void test_auth_needs_tls(void **state)
{
    (void)state;
    /* The downgraded `may` retry: credentials never go in plaintext. */
    struct smtpc_config cfg = cfg_creds(SMTPC_TLS_MAY, 1, 0);
    start(&cfg);
    greet_ehlo(EHLO_TLS_AUTH);
    EXPECT_W("QUIT\r\n");
    S("221 bye\r\n");
    assert_done(SMTPC_E_AUTH_NEEDS_TLS);
    assert_int_equal(F.why.status, SMTPC_TEMP);
    assert_int_equal(F.ready, 0);
    assert_null(strstr(buf_str(&F.wall), "AUTH"));
    assert_null(strstr(buf_str(&F.wall), PLAIN_B64));
    assert_null(strstr(buf_str(&F.wall), USER_B64));

    /* STARTTLS not offered, AUTH offered (only LOGIN): the same. */
    cfg = cfg_creds(SMTPC_TLS_MAY, 0, 0);
    start(&cfg);
    greet_ehlo("250-mx.test\r\n250 AUTH LOGIN\r\n");
    EXPECT_W("QUIT\r\n");
    assert_int_equal(F.c.state, SMTPC_S_QUIT);
    assert_null(strstr(buf_str(&F.wall), "AUTH"));
    /* the password is gone from memory already */
    static const char zero[SMTPC_PASS_MAX + 1];
    assert_memory_equal(F.c.pass, zero, sizeof zero);
    assert_memory_equal(F.c.user, zero, sizeof zero);

    /* Neither STARTTLS nor AUTH in plaintext: servers often hide AUTH
     * until TLS, so that proves nothing; still deferred. */
    start(&cfg);
    greet_ehlo(EHLO_PIPE);
    EXPECT_W("QUIT\r\n");
    S("221 bye\r\n");
    assert_done(SMTPC_E_AUTH_NEEDS_TLS);

    /* A refused STARTTLS under may: the same rule. */
    start(&cfg);
    greet_ehlo(EHLO_TLS_AUTH);
    EXPECT_W("STARTTLS\r\n");
    S("454 4.7.0 not now\r\n");
    EXPECT_W("QUIT\r\n");
    S("221 bye\r\n");
    assert_done(SMTPC_E_AUTH_NEEDS_TLS);
    assert_null(strstr(buf_str(&F.wall), "AUTH"));

    /* Policy none with credentials: same. */
    cfg = cfg_creds(SMTPC_TLS_NONE, 0, 0);
    start(&cfg);
    greet_ehlo(EHLO_TLS_AUTH);
    EXPECT_W("QUIT\r\n");
    S("221 bye\r\n");
    assert_done(SMTPC_E_AUTH_NEEDS_TLS);
}

static void test_auth_plaintext_allowed(void **state)
{
    (void)state;
    struct smtpc_config cfg = cfg_creds(SMTPC_TLS_MAY, 1, 1);
    start(&cfg);
    greet_ehlo(EHLO_TLS_AUTH);
    EXPECT_W("AUTH PLAIN " PLAIN_B64 "\r\n");
    S("235 2.7.0 ok\r\n");
    assert_int_equal(F.c.state, SMTPC_S_READY);
    assert_true(F.c.authenticated);
    assert_false(smtpc_tls_active(&F.c));

    /* Allowed in plaintext, but the server does not ask: go on without. */
    start(&cfg);
    greet_ehlo(EHLO_PIPE);
    EXPECT_W("");
    assert_int_equal(F.c.state, SMTPC_S_READY);
    assert_false(F.c.authenticated);
}

static void test_auth_plain_preferred(void **state)
{
    (void)state;
    struct smtpc_config cfg = cfg_creds(SMTPC_TLS_ENCRYPT, 0, 0);
    start(&cfg);
    greet_ehlo(EHLO_TLS);
    S("220 go\r\n");
    smtpc_tls_done(&F.c, 1);
    pump();
    EXPECT_W("STARTTLS\r\n" W_EHLO);
    clear_ev();
    S("250-mx.test\r\n250-AUTH LOGIN PLAIN\r\n250 PIPELINING\r\n");
    EXPECT_W("AUTH PLAIN " PLAIN_B64 "\r\n");
    assert_int_equal(F.c.state, SMTPC_S_AUTH_PLAIN);
    assert_non_null(strstr(buf_str(&F.ev), "S AUTH PLAIN (credentials hidden)\n"));
    S("235 2.7.0 Authentication successful\r\n");
    assert_int_equal(F.c.state, SMTPC_S_READY);
    assert_true(F.c.authenticated);
    static const char zero[SMTPC_PASS_MAX + 1];
    assert_memory_equal(F.c.pass, zero, sizeof zero);
    send_n(1, "x\r\n");
    EXPECT_W(W_MAIL W_RCPT_A W_DATA);
}

static void test_auth_login(void **state)
{
    (void)state;
    struct smtpc_config cfg = cfg_creds(SMTPC_TLS_MAY, 0, 0);
    start(&cfg);
    greet_ehlo(EHLO_TLS);
    S("220 go\r\n");
    smtpc_tls_done(&F.c, 1);
    pump();
    EXPECT_W("STARTTLS\r\n" W_EHLO);
    clear_ev();
    S("250-mx.test\r\n250 AUTH=LOGIN\r\n");
    EXPECT_W("AUTH LOGIN\r\n");
    assert_int_equal(F.c.state, SMTPC_S_AUTH_LOGIN);
    S("334 VXNlcm5hbWU6\r\n");
    EXPECT_W(USER_B64 "\r\n");
    assert_int_equal(F.c.state, SMTPC_S_AUTH_USER);
    S("334 UGFzc3dvcmQ6\r\n");
    EXPECT_W(PASS_B64 "\r\n");
    assert_int_equal(F.c.state, SMTPC_S_AUTH_PASS);
    S("235 2.7.0 ok\r\n");
    assert_int_equal(F.c.state, SMTPC_S_READY);
    EXPECT_EV("R 250-mx.test\n"
              "R 250 AUTH=LOGIN\n"
              "T capabilities: AUTH LOGIN\n"
              "S AUTH LOGIN\n"
              "R 334 VXNlcm5hbWU6\n"
              "S (credentials hidden)\n"
              "R 334 UGFzc3dvcmQ6\n"
              "S (credentials hidden)\n"
              "R 235 2.7.0 ok\n"
              "T AUTH: succeeded\n");
    EXPECT_W("");
    /* a password refused after LOGIN's prompts */
    start(&cfg);
    F.tls_sync = 1;
    greet_ehlo(EHLO_TLS);
    S("220 go\r\n");
    S("250-mx.test\r\n250 AUTH LOGIN\r\n");
    S("334 x\r\n334 y\r\n535 5.7.8 no\r\n");
    EXPECT_W("STARTTLS\r\n" W_EHLO "AUTH LOGIN\r\n" USER_B64 "\r\n" PASS_B64 "\r\nQUIT\r\n");
    S("221 bye\r\n");
    assert_done(SMTPC_E_AUTH_FAILED);
}

static void test_auth_failed(void **state)
{
    (void)state;
    struct smtpc_config cfg = cfg_creds(SMTPC_TLS_MAY, 0, 0);
    start(&cfg);
    F.tls_sync = 1;
    greet_ehlo(EHLO_TLS);
    S("220 go\r\n");
    S(EHLO_AUTH);
    EXPECT_W("STARTTLS\r\n" W_EHLO "AUTH PLAIN " PLAIN_B64 "\r\n");
    S("535 5.7.8 Authentication credentials invalid\r\n");
    EXPECT_W("QUIT\r\n"); /* no second try */
    assert_int_equal(F.ready, 0);
    S("221 2.0.0 bye\r\n");
    assert_done(SMTPC_E_AUTH_FAILED);
    assert_int_equal(F.why.code, 535); /* the AUTH reply, not the 221 */
    assert_int_equal(F.why.status, SMTPC_PERM);
    assert_string_equal(F.why.enhanced, "5.7.8");
    assert_non_null(strstr(buf_str(&F.evall),
                           "T AUTH: failed\nE auth-failed: 535 5.7.8 Authentication credentials "
                           "invalid\nS QUIT\n"));
    static const char zero[SMTPC_PASS_MAX + 1];
    assert_memory_equal(F.c.pass, zero, sizeof zero);

    /* 334 to PLAIN with an initial response: cancel, then QUIT. */
    start(&cfg);
    F.tls_sync = 1;
    greet_ehlo(EHLO_TLS);
    S("220 go\r\n");
    S(EHLO_AUTH);
    EXPECT_W("STARTTLS\r\n" W_EHLO "AUTH PLAIN " PLAIN_B64 "\r\n");
    S("334 \r\n");
    EXPECT_W("*\r\nQUIT\r\n");
    S("501 cancelled\r\n221 bye\r\n");
    assert_done(SMTPC_E_AUTH_FAILED);
    assert_int_equal(F.why.code, 334);

    /* 454 (temporary) is a failure too, and 421 gets no QUIT. */
    start(&cfg);
    F.tls_sync = 1;
    greet_ehlo(EHLO_TLS);
    S("220 go\r\n");
    S(EHLO_AUTH);
    EXPECT_W("STARTTLS\r\n" W_EHLO "AUTH PLAIN " PLAIN_B64 "\r\n");
    S("421 4.7.0 go away\r\n");
    assert_done(SMTPC_E_AUTH_FAILED);
    assert_int_equal(F.why.status, SMTPC_TEMP);
    EXPECT_W("");

    /* Only mechanisms we do not speak. */
    start(&cfg);
    F.tls_sync = 1;
    greet_ehlo(EHLO_TLS);
    S("220 go\r\n");
    S("250-mx.test\r\n250 AUTH CRAM-MD5 GSSAPI\r\n");
    EXPECT_W("STARTTLS\r\n" W_EHLO "QUIT\r\n");
    S("221 bye\r\n");
    assert_done(SMTPC_E_AUTH_MECH);
}

/* Credentials configured, TLS up, but the server offers no AUTH: the mail
 * is tried without, and a refusal (at MAIL, RCPT or after the data) may be
 * the missing AUTH: temporary, never a bounce. Issue 8. */
static void test_auth_skipped_refusal_is_temporary(void **state)
{
    (void)state;
    struct smtpc_config cfg = cfg_creds(SMTPC_TLS_ENCRYPT, 0, 0);
    start(&cfg);
    F.tls_sync = 1;
    greet_ehlo(EHLO_TLS);
    S("220 go\r\n");
    S(EHLO_PIPE); /* over TLS: no AUTH keyword */
    assert_int_equal(F.c.state, SMTPC_S_READY);
    assert_false(F.c.authenticated);
    EXPECT_W("STARTTLS\r\n" W_EHLO);
    send_n(2, "x\r\n");
    EXPECT_W(W_BATCH2);
    S("250 ok\r\n550 5.7.1 relaying denied\r\n250 ok\r\n354 go\r\n");
    EXPECT_W("x\r\n.\r\n");
    S("554 5.7.1 authentication required\r\n");
    assert_int_equal(F.res[0][0].status, SMTPC_TEMP);
    assert_int_equal(F.res[0][0].code, 550);
    assert_non_null(strstr(F.res[0][0].text, "relaying denied"));
    assert_non_null(strstr(F.res[0][0].text, "AUTH was not offered"));
    assert_int_equal(F.res[0][1].status, SMTPC_TEMP);
    assert_int_equal(F.res[0][1].code, 554);
    /* MAIL refused: the same */
    send_n(1, "y\r\n");
    EXPECT_W(W_MAIL W_RCPT_A W_DATA);
    S("250 ok\r\n530 5.7.0 must authenticate\r\n554 no valid recipients\r\n554 no\r\n");
    assert_int_equal(F.res[1][0].status, SMTPC_TEMP);
    assert_int_equal(F.res[1][0].code, 530);

    /* Without credentials the same refusal is permanent (no change). */
    struct smtpc_config plain = cfg_tls(SMTPC_TLS_ENCRYPT);
    start(&plain);
    F.tls_sync = 1;
    greet_ehlo(EHLO_TLS);
    S("220 go\r\n");
    S(EHLO_PIPE);
    send_n(1, "x\r\n");
    S("250 ok\r\n550 5.7.1 relaying denied\r\n554 no\r\n");
    assert_result(0, 0, SMTPC_PERM, 550, "5.7.1", "5.7.1 relaying denied");

    /* AUTH offered and accepted: a later refusal is the server's verdict. */
    start(&cfg);
    F.tls_sync = 1;
    greet_ehlo(EHLO_TLS);
    S("220 go\r\n");
    S(EHLO_AUTH);
    S("235 ok\r\n");
    send_n(1, "x\r\n");
    S("250 ok\r\n550 5.1.1 no such user\r\n554 no\r\n");
    assert_result(0, 0, SMTPC_PERM, 550, "5.1.1", "5.1.1 no such user");
}

/* Scan the engine's whole memory for a secret. */
static int engine_holds(const void *needle, size_t n)
{
    const uint8_t *p = (const uint8_t *)&F.c;
    for (size_t i = 0; i + n <= sizeof F.c; i++)
        if (memcmp(p + i, needle, n) == 0)
            return 1;
    return 0;
}

/* Once the AUTH line is written, no copy of it stays in the engine: not
 * in the credentials, not in the output queue, not where a move of the
 * queue left one. Issue 8. */
static void test_auth_line_not_kept(void **state)
{
    (void)state;
    struct smtpc_config cfg = cfg_creds(SMTPC_TLS_ENCRYPT, 0, 0);
    start(&cfg);
    F.tls_sync = 1;
    greet_ehlo(EHLO_TLS);
    S("220 go\r\n");
    /* little room: the line goes out in pieces, the queue is moved */
    F.room = 7;
    S(EHLO_AUTH);
    for (int i = 0; i < 200 && smtpc_want_write(&F.c); i++)
        pump();
    assert_non_null(strstr(buf_str(&F.wall), "AUTH PLAIN " PLAIN_B64 "\r\n"));
    assert_false(engine_holds(PLAIN_B64, strlen(PLAIN_B64)));
    assert_false(engine_holds(PLAIN_B64 + 8, 8));
    S("235 2.7.0 ok\r\n");
    assert_false(engine_holds(PASS, strlen(PASS)));

    /* AUTH LOGIN: the user and password lines */
    start(&cfg);
    F.tls_sync = 1;
    greet_ehlo(EHLO_TLS);
    S("220 go\r\n");
    S("250-mx.test\r\n250 AUTH LOGIN\r\n");
    S("334 VXNlcm5hbWU6\r\n");
    S("334 UGFzc3dvcmQ6\r\n");
    assert_non_null(strstr(buf_str(&F.wall), PASS_B64 "\r\n"));
    assert_false(engine_holds(PASS_B64, strlen(PASS_B64)));
    S("235 2.7.0 ok\r\n");
    assert_false(engine_holds(PASS, strlen(PASS)));

    /* The session ends in the same read that made the AUTH line: it is
     * never written, and must not stay behind either. */
    start(&cfg);
    F.tls_sync = 1;
    greet_ehlo(EHLO_TLS);
    S("220 go\r\n");
    F.room = 0; /* the transport takes nothing */
    S("250-mx.test\r\n250 AUTH PLAIN\r\n421 4.3.2 shutting down\r\n");
    assert_done(SMTPC_E_AUTH_FAILED); /* the 421 answered the AUTH */
    assert_null(strstr(buf_str(&F.wall), "AUTH")); /* never written... */
    assert_false(engine_holds(PLAIN_B64 + 8, 8));  /* ...nor kept */
    assert_false(engine_holds(PASS, strlen(PASS)));
}

/* --- greeting and EHLO --- */

static void test_greeting_refused(void **state)
{
    (void)state;
    S("421 4.3.2 busy, try later\r\n");
    assert_done(SMTPC_E_GREETING);
    assert_int_equal(F.why.code, 421);
    assert_int_equal(F.why.status, SMTPC_TEMP);
    assert_string_equal(F.why.text, "4.3.2 busy, try later");
    EXPECT_W(""); /* 421: the server is closing; nothing to say */
    S("250 late\r\n"); /* ignored after the end */
    assert_int_equal(F.done, 1);

    setup(NULL);
    S("554 5.7.1 go away\r\n");
    EXPECT_W("QUIT\r\n"); /* RFC 5321 3.1 */
    assert_int_equal(F.done, 0);
    S("221 bye\r\n");
    assert_done(SMTPC_E_GREETING);
    assert_int_equal(F.why.code, 554);
    assert_int_equal(F.why.status, SMTPC_PERM);
}

static void test_ehlo_fallback(void **state)
{
    (void)state;
    greet_ehlo("502 5.5.2 Command not implemented\r\n");
    EXPECT_W(W_HELO);
    assert_int_equal(F.c.state, SMTPC_S_HELO);
    S("250 mx.test\r\n");
    assert_int_equal(F.c.state, SMTPC_S_READY);
    assert_int_equal(F.c.caps.flags, 0);
    send_n(2, "x\r\n");
    EXPECT_W(W_MAIL); /* no PIPELINING without EHLO */

    setup(NULL);
    greet_ehlo("500-what\r\n500 no\r\n");
    EXPECT_W(W_HELO);
    S("501 5.5.4 bad\r\n");
    EXPECT_W("QUIT\r\n");
    S("221 bye\r\n");
    assert_done(SMTPC_E_HELLO);
    assert_int_equal(F.why.code, 501);

    /* A 5xx EHLO reply lists no capabilities. */
    setup(NULL);
    greet_ehlo("502-mx.test\r\n502 PIPELINING\r\n");
    S("250 mx.test\r\n");
    assert_int_equal(F.c.caps.flags, 0);
}

static void test_ehlo_4xx(void **state)
{
    (void)state;
    greet_ehlo("451 4.3.0 try later\r\n");
    EXPECT_W("QUIT\r\n");
    S("221 bye\r\n");
    assert_done(SMTPC_E_HELLO);
    assert_int_equal(F.why.code, 451);

    setup(NULL);
    greet_ehlo("421 4.3.2 closing\r\n");
    EXPECT_W("");
    assert_done(SMTPC_E_HELLO);
}

/* --- the transaction --- */

static void test_pipelining_off(void **state)
{
    (void)state;
    to_ready("250-mx.test\r\n250-SIZE 10000\r\n250 8BITMIME\r\n");
    send_n(3, "body\r\n");
    EXPECT_W("MAIL FROM:<s@x.org> SIZE=6 BODY=8BITMIME\r\n");
    assert_int_equal(F.c.state, SMTPC_S_MAIL);
    S("250 2.1.0 ok\r\n");
    EXPECT_W(W_RCPT_A);
    assert_int_equal(F.c.state, SMTPC_S_RCPT);
    S("250 2.1.5 ok\r\n");
    EXPECT_W(W_RCPT_B);
    S("250 2.1.5 ok\r\n");
    EXPECT_W(W_RCPT_C);
    S("250 2.1.5 ok\r\n");
    EXPECT_W(W_DATA);
    assert_int_equal(F.c.state, SMTPC_S_DATA);
    S("354 go\r\n");
    EXPECT_W("body\r\n.\r\n");
    S("250 2.0.0 ok\r\n");
    for (int i = 0; i < 3; i++)
        assert_result(0, i, SMTPC_OK, 250, "2.0.0", "2.0.0 ok");
}

static void test_pipelining_on(void **state)
{
    (void)state;
    to_ready("250-mx.test\r\n250-PIPELINING\r\n250-SIZE 10000\r\n250 8BITMIME\r\n");
    send_n(3, "body\r\n");
    assert_int_equal(F.w.len, strlen("MAIL FROM:<s@x.org> SIZE=6 BODY=8BITMIME\r\n" W_RCPT_A
                                     W_RCPT_B W_RCPT_C W_DATA));
    EXPECT_W("MAIL FROM:<s@x.org> SIZE=6 BODY=8BITMIME\r\n" W_RCPT_A W_RCPT_B W_RCPT_C W_DATA);
    /* replies one by one: nothing more is written until 354 */
    S("250 2.1.0 ok\r\n");
    S("250 2.1.5 ok\r\n");
    S("250 2.1.5 ok\r\n");
    S("250 2.1.5 ok\r\n");
    EXPECT_W("");
    assert_int_equal(F.c.state, SMTPC_S_DATA);
    S("354 go\r\n");
    EXPECT_W("body\r\n.\r\n");
}

/* "rrr...r0042@example.com": 254 octets, the longest address, unique per i. */
static void long_address(char *dst, int i)
{
    memset(dst, 'r', 254 - 16);
    dst[238] = (char)('0' + i / 1000 % 10);
    dst[239] = (char)('0' + i / 100 % 10);
    dst[240] = (char)('0' + i / 10 % 10);
    dst[241] = (char)('0' + i % 10);
    memcpy(dst + 242, "@example.com", 13);
}

/* A batch bigger than the output buffer is composed as it drains; replies
 * to commands not yet sent are a protocol error. */
static void test_pipelining_big_batch(void **state)
{
    (void)state;
    static char addrs[SMTPC_RCPT_MAX][SMTPC_PATH_MAX];
    static const char *ptrs[SMTPC_RCPT_MAX];
    struct buf want = {0};
    buf_add(&want, W_MAIL, strlen(W_MAIL));
    for (int i = 0; i < SMTPC_RCPT_MAX; i++) {
        long_address(addrs[i], i);
        assert_int_equal(strlen(addrs[i]), 254);
        ptrs[i] = addrs[i];
        buf_add(&want, "RCPT TO:<", 9);
        buf_add(&want, addrs[i], 254);
        buf_add(&want, ">\r\n", 3);
    }
    buf_add(&want, W_DATA, strlen(W_DATA));
    struct smtpc_msg m = {"s@x.org", ptrs, SMTPC_RCPT_MAX, 3};
    set_body("x\r\n", 3);

    to_ready(EHLO_PIPE);
    F.room = 100;
    F.msg_rcpts[F.sent++] = SMTPC_RCPT_MAX;
    assert_int_equal(smtpc_send(&F.c, &m), 0);
    pump();
    assert_int_equal(F.w.len, 100);
    while (smtpc_want_write(&F.c))
        assert_true(pump_room(100) > 0);
    assert_string_equal(buf_str(&F.w), want.p);
    F.w.len = 0;
    struct buf replies = {0};
    for (int i = 0; i < SMTPC_RCPT_MAX + 1; i++)
        buf_add(&replies, "250 ok\r\n", 8);
    buf_add(&replies, "354 go\r\n", 8);
    server(replies.p, replies.len);
    S("250 done\r\n");
    EXPECT_W("x\r\n.\r\n");
    for (int i = 0; i < SMTPC_RCPT_MAX; i++)
        assert_result(0, i, SMTPC_OK, 250, "", "done");

    /* Replies racing ahead of what was sent. */
    start(&(struct smtpc_config){.helo_name = HELO, .tls = SMTPC_TLS_NONE});
    to_ready(EHLO_PIPE);
    F.room = 100;
    F.msg_rcpts[F.sent++] = SMTPC_RCPT_MAX;
    assert_int_equal(smtpc_send(&F.c, &m), 0);
    pump();
    server(replies.p, replies.len);
    assert_done(SMTPC_E_PROTOCOL);
    assert_string_equal(F.why.text, "protocol error in state rcpt: reply to a command not sent");
    for (int i = 0; i < SMTPC_RCPT_MAX; i++)
        assert_int_equal(F.res[0][i].status, SMTPC_TEMP);
    free(replies.p);
    free(want.p);
}

/* A server answering a whole pipelined batch before it has drained (all
 * refused): the RSET that follows must still fit behind what is queued,
 * whatever the send room did to the queue. */
static void test_pipelining_early_replies(void **state)
{
    (void)state;
    static char addrs[SMTPC_RCPT_MAX][SMTPC_PATH_MAX];
    static const char *ptrs[SMTPC_RCPT_MAX];
    for (int i = 0; i < SMTPC_RCPT_MAX; i++) {
        long_address(addrs[i], i);
        ptrs[i] = addrs[i];
    }
    struct smtpc_msg m = {"s@x.org", ptrs, SMTPC_RCPT_MAX, 3};
    struct buf replies = {0};
    buf_add(&replies, "250 ok\r\n", 8);
    for (int i = 0; i < SMTPC_RCPT_MAX; i++)
        buf_add(&replies, "550 no\r\n", 8);
    buf_add(&replies, "554 none\r\n", 10);
    for (size_t room = 1; room <= 300; room++) {
        start(&(struct smtpc_config){.helo_name = HELO, .tls = SMTPC_TLS_NONE});
        to_ready(EHLO_PIPE);
        set_body("x\r\n", 3);
        F.room = room;
        F.msg_rcpts[F.sent++] = SMTPC_RCPT_MAX;
        assert_int_equal(smtpc_send(&F.c, &m), 0);
        while (F.c.gen_next < F.c.gen_end)
            pump();
        assert_true(smtpc_want_write(&F.c));
        smtpc_feed(&F.c, (const uint8_t *)replies.p, replies.len);
        assert_int_equal(F.done, 0);
        assert_int_equal(F.c.state, SMTPC_S_RSET);
        assert_int_equal(F.msg_done, 1);
        while (smtpc_want_write(&F.c))
            pump();
        assert_int_equal(F.w.len, 21 + SMTPC_RCPT_MAX * (9 + 254 + 3) + 6 + 6);
        assert_string_equal(F.w.p + F.w.len - 12, "DATA\r\nRSET\r\n");
        S("250 ok\r\n");
        assert_int_equal(F.c.state, SMTPC_S_READY);
    }
    free(replies.p);
}

/* MAIL refused while a big pipelined batch is still being composed: the
 * results are final at once, and after msg_done() the engine never reads
 * the envelope again (the transport hands the job back right there). */
static void test_pipelining_mail_refused_early(void **state)
{
    (void)state;
    static char addrs[SMTPC_RCPT_MAX][SMTPC_PATH_MAX];
    static const char *ptrs[SMTPC_RCPT_MAX];
    for (int i = 0; i < SMTPC_RCPT_MAX; i++) {
        long_address(addrs[i], i);
        ptrs[i] = addrs[i];
    }
    struct smtpc_msg m = {"s@x.org", ptrs, SMTPC_RCPT_MAX, 3};
    to_ready(EHLO_PIPE);
    F.room = 100;
    F.msg_rcpts[F.sent++] = SMTPC_RCPT_MAX;
    assert_int_equal(smtpc_send(&F.c, &m), 0);
    pump();
    int composed = F.c.gen_next; /* MAIL and the RCPTs that fit so far */
    assert_true(composed > 1 && composed < SMTPC_RCPT_MAX + 1);
    S("550 5.7.1 sender refused\r\n");
    assert_int_equal(F.msg_done, 1);
    for (int i = 0; i < SMTPC_RCPT_MAX; i++)
        assert_result(0, i, SMTPC_PERM, 550, "5.7.1", "5.7.1 sender refused");
    for (int i = 0; i < SMTPC_RCPT_MAX; i++)
        ptrs[i] = "POISON@example.com";
    while (smtpc_want_write(&F.c))
        pump();
    assert_null(strstr(buf_str(&F.wall), "POISON"));
    assert_null(strstr(buf_str(&F.wall), "DATA"));
    /* RCPT lines written: exactly those composed before the refusal */
    int lines = 0;
    for (const char *p = buf_str(&F.wall); (p = strstr(p, "RCPT TO:<")) != NULL; p++)
        lines++;
    assert_int_equal(lines, composed - 1);
    /* their replies come back; then the session is idle (nothing to RSET) */
    for (int i = 0; i < composed - 2; i++)
        S("503 5.5.1 need MAIL\r\n");
    assert_int_equal(F.c.state, SMTPC_S_RCPT);
    assert_int_equal(F.ready, 1);
    S("503 5.5.1 need MAIL\r\n");
    assert_int_equal(F.c.state, SMTPC_S_READY);
    assert_int_equal(F.ready, 2);
    assert_null(strstr(buf_str(&F.wall), "RSET"));
    /* one reply too many is noticed */
    S("503 5.5.1 need MAIL\r\n");
    assert_done(SMTPC_E_PROTOCOL);
}

static void mixed_results(int pipelining)
{
    to_ready(pipelining ? "250-mx.test\r\n250-PIPELINING\r\n250 ENHANCEDSTATUSCODES\r\n"
                        : "250-mx.test\r\n250 ENHANCEDSTATUSCODES\r\n");
    send_n(3, "x\r\n");
    if (pipelining) {
        EXPECT_W(W_BATCH3);
        S("250 2.1.0 ok\r\n250 2.1.5 ok\r\n550 5.1.1 no such user\r\n"
          "450 4.2.1 mailbox busy\r\n354 go\r\n");
    } else {
        EXPECT_W(W_MAIL);
        S("250 2.1.0 ok\r\n");
        EXPECT_W(W_RCPT_A);
        S("250 2.1.5 ok\r\n");
        EXPECT_W(W_RCPT_B);
        S("550 5.1.1 no such user\r\n");
        EXPECT_W(W_RCPT_C);
        S("450 4.2.1 mailbox busy\r\n");
        EXPECT_W(W_DATA);
        S("354 go\r\n");
    }
    EXPECT_W("x\r\n.\r\n");
    /* the refused ones are known before the end; the accepted one is not */
    assert_int_equal(F.res_n[0][0], 0);
    assert_result(0, 1, SMTPC_PERM, 550, "5.1.1", "5.1.1 no such user");
    assert_result(0, 2, SMTPC_TEMP, 450, "4.2.1", "4.2.1 mailbox busy");
    assert_int_equal(F.msg_done, 0);
    S("250 2.0.0 queued\r\n");
    assert_result(0, 0, SMTPC_OK, 250, "2.0.0", "2.0.0 queued");
    assert_int_equal(F.msg_done, 1);
    assert_int_equal(F.c.state, SMTPC_S_READY);
    EXPECT_W("");
}

static void test_mixed_results(void **state)
{
    (void)state;
    mixed_results(1);
    setup(NULL);
    mixed_results(0);
}

static void test_all_rcpts_refused(void **state)
{
    (void)state;
    /* Without pipelining: no DATA, RSET. */
    to_ready(EHLO_NONE);
    send_n(2, "x\r\n");
    S("250 ok\r\n");
    S("550 5.1.1 unknown\r\n");
    S("450 4.1.1 later\r\n");
    EXPECT_W(W_MAIL W_RCPT_A W_RCPT_B "RSET\r\n");
    assert_int_equal(F.msg_done, 1); /* results are final before the RSET reply */
    assert_result(0, 0, SMTPC_PERM, 550, "5.1.1", "5.1.1 unknown");
    assert_result(0, 1, SMTPC_TEMP, 450, "4.1.1", "4.1.1 later");
    assert_int_equal(F.c.state, SMTPC_S_RSET);
    assert_int_equal(F.ready, 1);
    S("250 2.0.0 ok\r\n");
    assert_int_equal(F.ready, 2);
    assert_null(strstr(buf_str(&F.wall), "DATA"));

    /* With pipelining, DATA refused too: RSET. */
    setup(NULL);
    to_ready(EHLO_PIPE);
    send_n(2, "x\r\n");
    EXPECT_W(W_BATCH2);
    S("250 ok\r\n550 no\r\n550 no\r\n554 5.5.1 no valid recipients\r\n");
    EXPECT_W("RSET\r\n");
    S("250 ok\r\n");
    assert_int_equal(F.c.state, SMTPC_S_READY);
    assert_int_equal(F.body_reads, 0);

    /* With pipelining, DATA accepted anyway: an empty message, no body. */
    setup(NULL);
    to_ready(EHLO_PIPE);
    send_n(2, "x\r\n");
    EXPECT_W(W_BATCH2);
    S("250 ok\r\n550 no\r\n550 no\r\n354 go\r\n");
    EXPECT_W(".\r\n");
    assert_int_equal(F.c.state, SMTPC_S_DOT);
    S("554 5.5.1 no valid recipients\r\n");
    assert_int_equal(F.c.state, SMTPC_S_READY);
    assert_int_equal(F.body_reads, 0);
    assert_int_equal(F.res[0][0].code, 550);
    EXPECT_W("");

    /* A refused RSET: something is wrong; QUIT. */
    setup(NULL);
    to_ready(EHLO_NONE);
    send_n(1, "x\r\n");
    S("250 ok\r\n550 no\r\n");
    EXPECT_W(W_MAIL W_RCPT_A "RSET\r\n");
    S("500 what\r\n");
    EXPECT_W("QUIT\r\n");
    S("221 bye\r\n");
    assert_done(SMTPC_E_PROTOCOL);
}

static void test_mail_refused(void **state)
{
    (void)state;
    to_ready(EHLO_NONE);
    send_n(2, "x\r\n");
    EXPECT_W(W_MAIL);
    S("553 5.1.8 sender refused\r\n");
    assert_result(0, 0, SMTPC_PERM, 553, "5.1.8", "5.1.8 sender refused");
    assert_result(0, 1, SMTPC_PERM, 553, "5.1.8", "5.1.8 sender refused");
    assert_int_equal(F.c.state, SMTPC_S_READY);
    EXPECT_W(""); /* no RCPT, no RSET */

    setup(NULL);
    to_ready(EHLO_PIPE);
    send_n(2, "x\r\n");
    EXPECT_W(W_BATCH2);
    S("451 4.3.0 try later\r\n");
    assert_result(0, 0, SMTPC_TEMP, 451, "4.3.0", "4.3.0 try later");
    assert_result(0, 1, SMTPC_TEMP, 451, "4.3.0", "4.3.0 try later");
    assert_int_equal(F.msg_done, 1);
    /* the RCPT and DATA replies still come and are used up */
    S("503 need MAIL\r\n250 odd\r\n503 need RCPT\r\n");
    assert_int_equal(F.c.state, SMTPC_S_READY);
    EXPECT_W(""); /* nothing to reset */
    assert_int_equal(F.res[0][1].code, 451);
    send_n(1, "x\r\n");
    EXPECT_W(W_MAIL W_RCPT_A W_DATA);
}

static void test_data_and_final_refused(void **state)
{
    (void)state;
    to_ready(EHLO_PIPE);
    send_n(2, "x\r\n");
    S("250 ok\r\n250 ok\r\n250 ok\r\n451 4.3.0 no DATA now\r\n");
    assert_result(0, 0, SMTPC_TEMP, 451, "4.3.0", "4.3.0 no DATA now");
    assert_result(0, 1, SMTPC_TEMP, 451, "4.3.0", "4.3.0 no DATA now");
    EXPECT_W(W_BATCH2 "RSET\r\n");
    S("250 ok\r\n");

    send_n(2, "x\r\n");
    S("250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n");
    S("452 4.3.1 full\r\n");
    assert_result(1, 0, SMTPC_TEMP, 452, "4.3.1", "4.3.1 full");
    assert_result(1, 1, SMTPC_TEMP, 452, "4.3.1", "4.3.1 full");
    assert_int_equal(F.c.state, SMTPC_S_READY);

    send_n(1, "x\r\n");
    S("250 ok\r\n250 ok\r\n354 go\r\n");
    S("554 5.7.1 spam\r\n");
    assert_result(2, 0, SMTPC_PERM, 554, "5.7.1", "5.7.1 spam");
    EXPECT_W(W_BATCH2 "x\r\n.\r\n" W_MAIL W_RCPT_A W_DATA "x\r\n.\r\n");

    /* 2xx to DATA is not a thing. */
    send_n(1, "x\r\n");
    S("250 ok\r\n250 ok\r\n250 ok\r\n");
    assert_done(SMTPC_E_PROTOCOL);
    assert_int_equal(F.res[3][0].status, SMTPC_TEMP);
}

static void test_two_messages(void **state)
{
    (void)state;
    static const char *const r2[] = {"z@example.org"};
    struct smtpc_msg m2 = {"", r2, 1, 5};
    to_ready(EHLO_PIPE);
    F.next[0] = &m2; /* ready() sends it as soon as the first is done */
    send_n(1, "one\r\n");
    S("250 ok\r\n250 ok\r\n354 go\r\n");
    S("250 first\r\n");
    EXPECT_W(W_MAIL W_RCPT_A W_DATA "one\r\n.\r\n"
             "MAIL FROM:<>\r\nRCPT TO:<z@example.org>\r\nDATA\r\n");
    S("250 ok\r\n250 ok\r\n354 go\r\n");
    EXPECT_W("one\r\n.\r\n"); /* the body source was rewound */
    S("250 second\r\n");
    assert_result(0, 0, SMTPC_OK, 250, "", "first");
    assert_result(1, 0, SMTPC_OK, 250, "", "second");
    assert_int_equal(F.msg_done, 2);
    assert_int_equal(F.c.messages, 2);
    quit_ok();
}

static void test_shutdown_421(void **state)
{
    (void)state;
    to_ready(EHLO_PIPE);
    send_n(2, "x\r\n");
    S("250 ok\r\n250 ok\r\n421 4.4.2 idle timeout\r\n");
    assert_done(SMTPC_E_SHUTDOWN);
    assert_result(0, 0, SMTPC_TEMP, 421, "4.4.2", "4.4.2 idle timeout");
    assert_result(0, 1, SMTPC_TEMP, 421, "4.4.2", "4.4.2 idle timeout");
    EXPECT_W(W_BATCH2);

    /* While idle. */
    setup(NULL);
    to_ready(EHLO_PIPE);
    S("421 4.4.2 bye\r\n");
    assert_done(SMTPC_E_SHUTDOWN);

    /* After the body: a 421 to "." is not a 4xx for the message only. */
    setup(NULL);
    to_ready(EHLO_PIPE);
    send_n(1, "x\r\n");
    S("250 ok\r\n250 ok\r\n354 go\r\n");
    EXPECT_W(W_MAIL W_RCPT_A W_DATA "x\r\n.\r\n");
    S("421 closing\r\n");
    assert_done(SMTPC_E_SHUTDOWN);
    assert_result(0, 0, SMTPC_TEMP, 421, "", "closing");
}

static void test_unsolicited_reply(void **state)
{
    (void)state;
    to_ready(EHLO_PIPE);
    S("250 surprise\r\n");
    assert_done(SMTPC_E_PROTOCOL);
    assert_string_equal(F.why.text, "protocol error in state ready: reply while no command was pending");
    EXPECT_W("");
}

/* --- the body --- */

/* Send `body` with every read cut to `chunk` bytes; return the wire bytes
 * between the 354 and the final reply (a malloc'ed string). */
static char *send_body(const char *body, size_t len, const size_t *chunks, size_t nchunks)
{
    start(&(struct smtpc_config){.helo_name = HELO, .tls = SMTPC_TLS_NONE});
    to_ready(EHLO_PIPE);
    F.chunks = chunks;
    F.nchunks = nchunks;
    struct smtpc_msg m = {"s@x.org", RCPTS, 1, len};
    set_body(body, len);
    F.msg_rcpts[F.sent++] = 1;
    assert_int_equal(smtpc_send(&F.c, &m), 0);
    pump();
    EXPECT_W(W_MAIL W_RCPT_A W_DATA);
    S("250 ok\r\n250 ok\r\n354 go\r\n");
    assert_int_equal(F.c.state, SMTPC_S_DOT);
    assert_int_equal(F.body_pos, len);
    char *out = strdup(buf_str(&F.w));
    S("250 ok\r\n");
    assert_result(0, 0, SMTPC_OK, 250, "", "ok");
    return out;
}

static void check_body_all_chunkings(const char *body, const char *want)
{
    size_t len = strlen(body);
    /* every constant chunk size, so every split point is crossed */
    for (size_t k = 1; k <= len + 1; k++) {
        size_t chunk[1] = {k};
        char *got = send_body(body, len, chunk, 1);
        assert_string_equal(got, want);
        free(got);
    }
    /* an uneven script */
    static const size_t odd[] = {2, 1, 3, 1, 1, 5, 7};
    char *got = send_body(body, len, odd, sizeof odd / sizeof odd[0]);
    assert_string_equal(got, want);
    free(got);
    got = send_body(body, len, NULL, 0);
    assert_string_equal(got, want);
    free(got);
}

static void test_dot_stuffing(void **state)
{
    (void)state;
    check_body_all_chunkings(".a\r\n..b\r\nc\r\n.\r\nd.e\r\n. \r\nend",
                             "..a\r\n...b\r\nc\r\n..\r\nd.e\r\n.. \r\nend\r\n.\r\n");
    /* a body that already ends with CRLF gets no extra line */
    check_body_all_chunkings("x\r\n.\r\n", "x\r\n..\r\n.\r\n");
    check_body_all_chunkings(".", "..\r\n.\r\n");
    check_body_all_chunkings("\r\n", "\r\n.\r\n");
    check_body_all_chunkings("\r\n.\r\n", "\r\n..\r\n.\r\n");
    /* the empty body */
    char *got = send_body("", 0, NULL, 0);
    assert_string_equal(got, ".\r\n");
    free(got);
}

static void test_crlf_normalised(void **state)
{
    (void)state;
    /* Bare LF and bare CR (never in a stored body, which the inbound side
     * keeps CRLF) still leave as CRLF. */
    check_body_all_chunkings("a\nb\rc\r\r\n.d\n.\r", "a\r\nb\r\nc\r\n\r\n..d\r\n..\r\n.\r\n");
    check_body_all_chunkings("a\r", "a\r\n.\r\n");
    check_body_all_chunkings("\r.x", "\r\n..x\r\n.\r\n");
}

static void test_flow_control(void **state)
{
    (void)state;
    /* A 100 kB body with a stuffed line every so often, pumped 7 bytes at
     * a time: every pump writes exactly 7 until the end, and the whole is
     * the stuffed body. */
    size_t len = 100 * 1024;
    char *body = malloc(len + 1);
    char *want = malloc(2 * len + 8);
    assert_non_null(body);
    assert_non_null(want);
    size_t w = 0;
    for (size_t i = 0; i < len; i++) {
        size_t col = i % 64;
        char b = col == 62 ? '\r' : col == 63 ? '\n' : (col == 0 && (i / 64) % 3 == 0) ? '.' : 'm';
        body[i] = b;
        if (b == '.')
            want[w++] = '.';
        want[w++] = b;
    }
    body[len] = '\0';
    memcpy(want + w, ".\r\n", 4);

    to_ready(EHLO_PIPE);
    F.room = 7;
    send_n(1, body);
    assert_int_equal(F.w.len, 7);
    while (smtpc_want_write(&F.c))
        pump();
    EXPECT_W(W_MAIL W_RCPT_A W_DATA);
    S("250 ok\r\n250 ok\r\n354 go\r\n");
    assert_int_equal(F.w.len, 7);
    assert_int_equal(F.c.state, SMTPC_S_BODY);
    size_t calls = 1;
    while (smtpc_want_write(&F.c)) {
        size_t n = pump_room(7);
        calls++;
        assert_true(n == 7 || !smtpc_want_write(&F.c));
        assert_true(n > 0);
    }
    assert_int_equal(F.w.len, strlen(want));
    assert_string_equal(buf_str(&F.w), want);
    assert_int_equal(calls, (strlen(want) + 6) / 7);
    assert_true(F.max_cap <= SMTPC_BODY_CHUNK);
    assert_int_equal(pump_room(7), 0);
    /* nothing is written with no room */
    assert_int_equal(pump_room(0), 0);
    S("250 ok\r\n");
    assert_result(0, 0, SMTPC_OK, 250, "", "ok");
    free(body);
    free(want);
}

static void test_body_read_error(void **state)
{
    (void)state;
    to_ready(EHLO_PIPE);
    F.body_fail_at = 3000;
    static char body[8000];
    memset(body, 'q', sizeof body - 1);
    send_n(1, body);
    S("250 ok\r\n250 ok\r\n354 go\r\n");
    assert_done(SMTPC_E_LOCAL);
    assert_result(0, 0, SMTPC_TEMP, 0, "", "cannot read the message body");
    assert_null(strstr(buf_str(&F.wall), ".\r\n")); /* never terminated */
}

static void test_reply_during_body(void **state)
{
    (void)state;
    to_ready(EHLO_PIPE);
    static char body[20000];
    memset(body, 'q', sizeof body - 1);
    F.room = 100;
    send_n(1, body);
    while (smtpc_want_write(&F.c))
        pump();
    S("250 ok\r\n250 ok\r\n354 go\r\n");
    assert_int_equal(F.c.state, SMTPC_S_BODY);
    S("552 5.3.4 too big\r\n");
    assert_done(SMTPC_E_PROTOCOL);
    assert_result(0, 0, SMTPC_PERM, 552, "5.3.4", "5.3.4 too big");
}

/* --- the API's edges --- */

static void test_send_validation(void **state)
{
    (void)state;
    static const char *const crlf[] = {"a@example.com\r\nDATA"};
    static const char *const empty[] = {""};
    static const char *const high[] = {"\xc3\xa9@example.com"};
    static char longaddr[300];
    memset(longaddr, 'l', 255);
    static const char *const lng[] = {longaddr};
    struct smtpc_msg m = {"s@x.org", RCPTS, 1, 1};
    /* not ready yet */
    assert_int_equal(smtpc_send(&F.c, &m), -1);
    to_ready(EHLO_PIPE);
    m.rcpts = crlf;
    assert_int_equal(smtpc_send(&F.c, &m), -1);
    m.rcpts = empty;
    assert_int_equal(smtpc_send(&F.c, &m), -1);
    m.rcpts = high;
    assert_int_equal(smtpc_send(&F.c, &m), -1);
    m.rcpts = lng;
    assert_int_equal(smtpc_send(&F.c, &m), -1);
    m.rcpts = RCPTS;
    m.sender = "s@x.org\r\nRSET";
    assert_int_equal(smtpc_send(&F.c, &m), -1);
    m.sender = NULL;
    assert_int_equal(smtpc_send(&F.c, &m), -1);
    m.sender = "s@x.org";
    m.rcpt_count = 0;
    assert_int_equal(smtpc_send(&F.c, &m), -1);
    m.rcpt_count = SMTPC_RCPT_MAX + 1;
    assert_int_equal(smtpc_send(&F.c, &m), -1);
    assert_int_equal(smtpc_send(&F.c, NULL), -1);
    pump();
    EXPECT_W("");
    assert_int_equal(F.c.state, SMTPC_S_READY);
    /* 254 octets is the longest address */
    longaddr[254] = '\0';
    m.rcpts = lng;
    m.rcpt_count = 1;
    F.msg_rcpts[F.sent++] = 1;
    assert_int_equal(smtpc_send(&F.c, &m), 0);
    /* busy now: neither another message nor QUIT */
    assert_int_equal(smtpc_send(&F.c, &m), -1);
    assert_int_equal(smtpc_quit(&F.c), -1);
}

static void test_init_validation(void **state)
{
    (void)state;
    struct smtpc c;
    struct smtpc_config cfg = cfg_plain();
    cfg.helo_name = "bad name";
    assert_int_equal(smtpc_init(&c, &cfg, &fake_ops, &F), -1);
    assert_int_equal(c.state, SMTPC_S_DONE);
    cfg.helo_name = "";
    assert_int_equal(smtpc_init(&c, &cfg, &fake_ops, &F), -1);
    cfg.helo_name = NULL;
    assert_int_equal(smtpc_init(&c, &cfg, &fake_ops, &F), -1);
    cfg.helo_name = "relay\r\n.test";
    assert_int_equal(smtpc_init(&c, &cfg, &fake_ops, &F), -1);
    cfg = cfg_creds(SMTPC_TLS_MAY, 0, 0);
    cfg.password = NULL;
    assert_int_equal(smtpc_init(&c, &cfg, &fake_ops, &F), -1);
    char lng[SMTPC_PASS_MAX + 2];
    memset(lng, 'p', sizeof lng - 1);
    lng[sizeof lng - 1] = '\0';
    cfg.password = lng;
    assert_int_equal(smtpc_init(&c, &cfg, &fake_ops, &F), -1);
    lng[SMTPC_PASS_MAX] = '\0';
    assert_int_equal(smtpc_init(&c, &cfg, &fake_ops, &F), 0); /* 255 fits */
    cfg.tls = (enum smtpc_tls_policy)7;
    assert_int_equal(smtpc_init(&c, &cfg, &fake_ops, &F), -1);
    /* an empty user means no credentials */
    cfg = cfg_creds(SMTPC_TLS_NONE, 0, 0);
    cfg.user = "";
    cfg.password = NULL;
    assert_int_equal(smtpc_init(&c, &cfg, &fake_ops, &F), 0);
    assert_int_equal(c.has_creds, 0);
}

static void test_abort(void **state)
{
    (void)state;
    to_ready(EHLO_PIPE);
    send_n(2, "x\r\n");
    S("250 ok\r\n250 ok\r\n");
    smtpc_abort(&F.c, "timeout waiting for a reply\x1b");
    assert_done(SMTPC_E_ABORTED);
    assert_result(0, 0, SMTPC_TEMP, 0, "", "timeout waiting for a reply?");
    assert_result(0, 1, SMTPC_TEMP, 0, "", "timeout waiting for a reply?");
    pump();
    EXPECT_W(W_BATCH2);
    smtpc_abort(&F.c, "again");
    smtpc_feed(&F.c, (const uint8_t *)"250 ok\r\n", 8);
    assert_int_equal(F.done, 1);

    /* Waiting for the 221: the earlier reason stands. */
    setup(NULL);
    to_ready(EHLO_PIPE);
    assert_int_equal(smtpc_quit(&F.c), 0);
    smtpc_abort(&F.c, "timeout");
    assert_done(SMTPC_E_NONE);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_basic_session),
        T(test_event_transcript),
        T(test_multiline_reply),
        T(test_reply_without_text),
        T(test_endless_continuation),
        T(test_code_change),
        T(test_long_line),
        T(test_malformed_lines),
        T(test_bare_lf_lenient),
        T(test_sanitized_text),
        T(test_closed_mid_reply),
        T(test_closed_mid_data),
        T(test_capabilities),
        T(test_tls_may_offered),
        T(test_tls_may_not_offered),
        T(test_tls_may_failed_then_plaintext),
        T(test_tls_may_refused),
        T(test_tls_encrypt_not_offered),
        T(test_tls_encrypt_handshake_failed),
        T(test_tls_verify),
        T(test_tls_none),
        T(test_starttls_injection),
        T(test_auth_needs_tls),
        T(test_auth_plaintext_allowed),
        T(test_auth_plain_preferred),
        T(test_auth_login),
        T(test_auth_failed),
        T(test_auth_skipped_refusal_is_temporary),
        T(test_auth_line_not_kept),
        T(test_greeting_refused),
        T(test_ehlo_fallback),
        T(test_ehlo_4xx),
        T(test_pipelining_off),
        T(test_pipelining_on),
        T(test_pipelining_big_batch),
        T(test_pipelining_early_replies),
        T(test_pipelining_mail_refused_early),
        T(test_mixed_results),
        T(test_all_rcpts_refused),
        T(test_mail_refused),
        T(test_data_and_final_refused),
        T(test_two_messages),
        T(test_shutdown_421),
        T(test_unsolicited_reply),
        T(test_dot_stuffing),
        T(test_crlf_normalised),
        T(test_flow_control),
        T(test_body_read_error),
        T(test_reply_during_body),
        T(test_send_validation),
        T(test_init_validation),
        T(test_abort),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
