/* smtpc.c — outbound SMTP client engine; see smtpc.h. */
#include "smtpc.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "b64.h"

/* --- names --- */

const char *smtpc_state_name(enum smtpc_state state)
{
    static const char *const names[] = {
        "greeting", "ehlo", "helo", "starttls", "tls",  "auth-plain", "auth-login", "auth-user",
        "auth-pass", "ready", "mail", "rcpt", "data", "body", "dot",   "rset",       "quit",
        "done",
    };
    return (unsigned)state < sizeof names / sizeof names[0] ? names[state] : "?";
}

const char *smtpc_error_name(enum smtpc_error err)
{
    static const char *const names[] = {
        "ok",           "greeting-failed", "ehlo-failed",     "tls-failed",    "tls-required",
        "auth-needs-tls", "auth-failed",   "auth-no-mechanism", "protocol-error", "connection-lost",
        "server-shutdown", "local-error",  "aborted",
    };
    return (unsigned)err < sizeof names / sizeof names[0] ? names[err] : "?";
}

/* --- small helpers --- */

/* Copy n bytes of server text, each byte outside printable ASCII replaced
 * with '?': the text ends up on the console (where ESC and the C1 range
 * drive the terminal) and in bounces. dst gets n + 1 bytes. */
static void clean(char *dst, const char *src, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char b = (unsigned char)src[i];
        dst[i] = b >= 0x20 && b <= 0x7e ? (char)b : '?';
    }
    dst[n] = '\0';
}

static void event(struct smtpc *c, enum smtpc_event kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void event(struct smtpc *c, enum smtpc_event kind, const char *fmt, ...)
{
    char buf[SMTPC_LINE_MAX + 64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    c->ops->event(c->ctx, kind, buf);
}

static enum smtpc_status status_of(int code)
{
    return code / 100 == 2 ? SMTPC_OK : code / 100 == 5 ? SMTPC_PERM : SMTPC_TEMP;
}

/* A result that is not a server reply (connection lost, protocol error). */
static void local_result(struct smtpc_result *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void local_result(struct smtpc_result *r, const char *fmt, ...)
{
    memset(r, 0, sizeof *r);
    r->status = SMTPC_TEMP;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->text, sizeof r->text, fmt, ap);
    va_end(ap);
}

static int printable_no_space(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return 0;
    return 1;
}

/* An address we may put between brackets: printable ASCII (spaces occur in
 * quoted local parts), so no CR or LF can split the command. */
static int valid_address(const char *a, int empty_ok)
{
    if (a == NULL)
        return 0;
    size_t n = strlen(a);
    if (n == 0)
        return empty_ok;
    if (n > SMTPC_PATH_MAX - 2)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)a[i] < 0x20 || (unsigned char)a[i] > 0x7e)
            return 0;
    return 1;
}

/* --- state --- */

/* memset() on a buffer that is about to go out of scope may be dropped
 * by the compiler as a dead store; a write through a volatile pointer
 * cannot be. For anything that held a secret. */
static void wipe(void *p, size_t n)
{
    volatile uint8_t *v = p;
    while (n--)
        *v++ = 0;
}

static void wipe_credentials(struct smtpc *c)
{
    wipe(c->user, sizeof c->user);
    wipe(c->pass, sizeof c->pass);
}

/* Every state change goes through here. */
static void set_state(struct smtpc *c, enum smtpc_state next)
{
    /* The password is needed only by the AUTH exchange: once the session
     * is past it, whatever the outcome, it should not linger in RAM. */
    if (next >= SMTPC_S_READY)
        wipe_credentials(c);
    c->state = next;
}

/* --- output --- */

/* The output may hold an AUTH line: no copy of a byte outlives its
 * sending, neither where it was taken from nor where a move left it. */
static size_t out_free(struct smtpc *c)
{
    if (c->out_head > 0) {
        size_t old_tail = c->out_tail;
        memmove(c->out, c->out + c->out_head, c->out_tail - c->out_head);
        c->out_tail -= c->out_head;
        c->out_head = 0;
        memset(c->out + c->out_tail, 0, old_tail - c->out_tail);
    }
    return sizeof c->out - c->out_tail;
}

/* Queue one line and its CRLF, with `reserve` octets left free after it.
 * `shown` is what the event says (secrets hidden). Returns -1 when it does
 * not fit. */
static int put_line(struct smtpc *c, const char *shown, const char *line, size_t n,
                    size_t reserve)
{
    if (out_free(c) < n + 2 + reserve)
        return -1;
    event(c, SMTPC_EV_SENT, "%s", shown ? shown : line);
    memcpy(c->out + c->out_tail, line, n);
    c->out_tail += n;
    c->out[c->out_tail++] = '\r';
    c->out[c->out_tail++] = '\n';
    return 0;
}

/* Queue a single command (the ones that wait for their reply). The
 * pipelining reserve guarantees the room, so -1 means a bug. */
static int command(struct smtpc *c, const char *shown, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int command(struct smtpc *c, const char *shown, const char *fmt, ...)
{
    char buf[SMTPC_CMD_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    int rc = n < 0 || (size_t)n >= sizeof buf - 2 ? -1 : put_line(c, shown, buf, (size_t)n, 0);
    wipe(buf, sizeof buf); /* AUTH lines carry secrets */
    return rc;
}

int smtpc_want_write(const struct smtpc *c)
{
    if (c->state == SMTPC_S_DONE)
        return 0;
    return c->out_tail > c->out_head || c->gen_next < c->gen_end || c->state == SMTPC_S_BODY;
}

/* --- ending --- */

static void finish(struct smtpc *c)
{
    set_state(c, SMTPC_S_DONE);
    /* Nothing more is written; what was composed and never taken (an AUTH
     * line, when the session ended in the same read) must not linger. */
    memset(c->out, 0, sizeof c->out);
    c->out_head = c->out_tail = 0;
    c->ops->done(c->ctx, c->err, &c->why);
}

/* A server that did not offer AUTH, to a row that has credentials, may
 * refuse mail only because it never asked for them (AUTH offered on
 * another port, after a configuration change on its side...): that is
 * our side's problem to fix, not a reason to bounce. */
static void auth_skipped_temp(struct smtpc_result *t, const struct smtpc_result *r)
{
    *t = *r;
    t->status = SMTPC_TEMP;
    snprintf(t->text, sizeof t->text, "%.180s (AUTH was not offered, so the credentials were not "
             "sent; kept queued)", r->text);
}

static void rcpt_final(struct smtpc *c, int i, const struct smtpc_result *r)
{
    if (c->rstate[i] == SMTPC_R_FINAL)
        return;
    c->rstate[i] = SMTPC_R_FINAL;
    struct smtpc_result t;
    if (c->auth_skipped && r->status == SMTPC_PERM) {
        auth_skipped_temp(&t, r);
        r = &t;
    }
    c->ops->rcpt_result(c->ctx, i, r);
    if (--c->results_left == 0) {
        c->messages++;
        c->ops->msg_done(c->ctx);
    }
}

/* Final results for the recipients in progress state `which`. */
static void rcpt_final_all(struct smtpc *c, int which, const struct smtpc_result *r)
{
    for (int i = 0; i < c->msg.rcpt_count && c->in_txn; i++)
        if (c->rstate[i] == which)
            rcpt_final(c, i, r);
}

/* The connection ends: open recipients get a temporary failure, then QUIT
 * (when the stream is still sane and the server is not closing anyway) or
 * done() at once. */
static void fail(struct smtpc *c, enum smtpc_error err, const struct smtpc_result *why, int quit)
{
    c->err = err;
    c->why = *why;
    if (why->code)
        event(c, SMTPC_EV_ERROR, "%s: %d %s", smtpc_error_name(err), why->code, why->text);
    else
        event(c, SMTPC_EV_ERROR, "%s: %s", smtpc_error_name(err), why->text);
    if (c->in_txn) {
        struct smtpc_result t = *why;
        t.status = SMTPC_TEMP; /* the message was not refused: keep it queued */
        rcpt_final_all(c, SMTPC_R_OPEN, &t);
        rcpt_final_all(c, SMTPC_R_ACCEPTED, &t);
        c->in_txn = 0;
    }
    c->gen_end = c->gen_next; /* compose no more of a pipelined batch */
    if (quit && why->code != 421 && command(c, NULL, "QUIT") == 0) {
        set_state(c, SMTPC_S_QUIT);
        return;
    }
    finish(c);
}

static void fail_local(struct smtpc *c, enum smtpc_error err, int quit, const char *text)
{
    struct smtpc_result r;
    local_result(&r, "%s", text);
    fail(c, err, &r, quit);
}

static void protocol_error(struct smtpc *c, const char *what)
{
    struct smtpc_result r;
    local_result(&r, "protocol error in state %s: %s", smtpc_state_name(c->state), what);
    c->line_len = 0;
    c->reply_lines = 0;
    fail(c, SMTPC_E_PROTOCOL, &r, 0);
}

static void overflow(struct smtpc *c)
{
    fail_local(c, SMTPC_E_LOCAL, 0, "output buffer full");
}

/* --- greeting, EHLO, TLS, AUTH --- */

static void go_ready(struct smtpc *c)
{
    c->in_txn = 0;
    set_state(c, SMTPC_S_READY);
    c->ops->ready(c->ctx);
}

static void hello(struct smtpc *c)
{
    memset(&c->caps, 0, sizeof c->caps);
    if (command(c, NULL, "EHLO %s", c->helo_name) != 0) {
        overflow(c);
        return;
    }
    set_state(c, SMTPC_S_EHLO);
}

static void caps_event(struct smtpc *c)
{
    char buf[200];
    size_t n = 0;
    const struct smtpc_caps *k = &c->caps;
#define ADD(...) n += (size_t)snprintf(buf + n, sizeof buf - n, __VA_ARGS__)
    ADD("capabilities:");
    if (k->flags & SMTPC_CAP_PIPELINING)
        ADD(" PIPELINING");
    if (k->flags & SMTPC_CAP_SIZE) {
        if (k->size_max)
            ADD(" SIZE %llu", (unsigned long long)k->size_max);
        else
            ADD(" SIZE");
    }
    if (k->flags & SMTPC_CAP_8BITMIME)
        ADD(" 8BITMIME");
    if (k->flags & SMTPC_CAP_STARTTLS)
        ADD(" STARTTLS");
    if (k->flags & SMTPC_CAP_AUTH) {
        ADD(" AUTH");
        if (k->auth & SMTPC_AUTH_PLAIN)
            ADD(" PLAIN");
        if (k->auth & SMTPC_AUTH_LOGIN)
            ADD(" LOGIN");
        if (k->auth & SMTPC_AUTH_OTHER)
            ADD(" (others)");
    }
    if (k->flags & SMTPC_CAP_ENHANCEDSTATUSCODES)
        ADD(" ENHANCEDSTATUSCODES");
    if (k->flags == 0)
        ADD(" none");
#undef ADD
    event(c, SMTPC_EV_STEP, "%s", buf);
}

/* One EHLO keyword line ("SIZE 10000", "AUTH=PLAIN LOGIN"); unknown
 * keywords are ignored. */
static void parse_capability(struct smtpc *c, const char *t, size_t n)
{
    size_t k = 0;
    while (k < n && t[k] != ' ' && t[k] != '=')
        k++;
#define IS(word) (k == sizeof(word) - 1 && strncasecmp(t, word, k) == 0)
    if (IS("PIPELINING")) {
        c->caps.flags |= SMTPC_CAP_PIPELINING;
    } else if (IS("8BITMIME")) {
        c->caps.flags |= SMTPC_CAP_8BITMIME;
    } else if (IS("STARTTLS")) {
        c->caps.flags |= SMTPC_CAP_STARTTLS;
    } else if (IS("ENHANCEDSTATUSCODES")) {
        c->caps.flags |= SMTPC_CAP_ENHANCEDSTATUSCODES;
    } else if (IS("SIZE")) {
        /* "SIZE" alone or "SIZE n"; a number we cannot read means no
         * announced limit rather than a wrong one. */
        c->caps.flags |= SMTPC_CAP_SIZE;
        c->caps.size_max = 0;
        size_t i = k;
        while (i < n && t[i] == ' ')
            i++;
        uint64_t v = 0;
        size_t digits = 0;
        for (; i < n && t[i] >= '0' && t[i] <= '9' && digits < 19; i++, digits++)
            v = v * 10 + (uint64_t)(t[i] - '0');
        if (digits && (i == n || t[i] == ' '))
            c->caps.size_max = v;
    } else if (IS("AUTH")) {
        /* "AUTH PLAIN LOGIN", or the pre-RFC 4954 "AUTH=PLAIN LOGIN" */
        c->caps.flags |= SMTPC_CAP_AUTH;
        size_t i = k;
        while (i < n) {
            while (i < n && (t[i] == ' ' || t[i] == '='))
                i++;
            size_t s = i;
            while (i < n && t[i] != ' ')
                i++;
            size_t m = i - s;
            if (m == 0)
                break;
            if (m == 5 && strncasecmp(t + s, "PLAIN", 5) == 0)
                c->caps.auth |= SMTPC_AUTH_PLAIN;
            else if (m == 5 && strncasecmp(t + s, "LOGIN", 5) == 0)
                c->caps.auth |= SMTPC_AUTH_LOGIN;
            else
                c->caps.auth |= SMTPC_AUTH_OTHER;
        }
    }
#undef IS
}

static void start_auth(struct smtpc *c)
{
    if (!c->has_creds) {
        go_ready(c);
        return;
    }
    /* Checked before looking at the AUTH keyword: servers commonly offer
     * AUTH only after STARTTLS (Postfix's smtpd_tls_auth_only), so its
     * absence in plaintext says nothing about whether the server needs
     * the credentials; delivering without them could turn a "530 must
     * authenticate" into a bounce. Defer instead. */
    if (!c->tls_active && !c->auth_plaintext) {
        fail_local(c, SMTPC_E_AUTH_NEEDS_TLS, 1,
                   "credentials are configured but the connection is not encrypted "
                   "and AUTH in plaintext is not allowed for this smart host");
        return;
    }
    if (!(c->caps.flags & SMTPC_CAP_AUTH)) {
        /* The connection is as protected as the row demands and the server
         * does not ask for AUTH: it accepts our mail without it. */
        event(c, SMTPC_EV_STEP, "AUTH: not offered by the server; continuing without AUTH "
                                "(a refusal will be taken as temporary)");
        c->auth_skipped = 1;
        go_ready(c);
        return;
    }
    if (c->caps.auth & SMTPC_AUTH_PLAIN) {
        /* RFC 4616: authzid (empty) NUL authcid NUL passwd, as the initial
         * response (RFC 4954) so the secret is on one line. */
        uint8_t raw[1 + SMTPC_USER_MAX + 1 + SMTPC_PASS_MAX];
        char enc[B64_ENCODED_LEN(sizeof raw) + 1];
        size_t ul = strlen(c->user), pl = strlen(c->pass), n = 0;
        raw[n++] = 0;
        memcpy(raw + n, c->user, ul);
        n += ul;
        raw[n++] = 0;
        memcpy(raw + n, c->pass, pl);
        n += pl;
        b64_encode(raw, n, enc);
        int rc = command(c, "AUTH PLAIN (credentials hidden)", "AUTH PLAIN %s", enc);
        wipe(raw, sizeof raw);
        wipe(enc, sizeof enc);
        if (rc != 0) {
            overflow(c);
            return;
        }
        set_state(c, SMTPC_S_AUTH_PLAIN);
    } else if (c->caps.auth & SMTPC_AUTH_LOGIN) {
        if (command(c, NULL, "AUTH LOGIN") != 0) {
            overflow(c);
            return;
        }
        set_state(c, SMTPC_S_AUTH_LOGIN);
    } else {
        fail_local(c, SMTPC_E_AUTH_MECH, 1,
                   "the server offers no AUTH mechanism we speak (PLAIN, LOGIN)");
    }
}

/* After EHLO/HELO (in plaintext, or again over TLS). */
static void after_hello(struct smtpc *c)
{
    if (c->tls_active) {
        start_auth(c);
        return;
    }
    int required = c->tls_policy == SMTPC_TLS_ENCRYPT || c->tls_policy == SMTPC_TLS_VERIFY;
    if (c->tls_policy == SMTPC_TLS_NONE) {
        event(c, SMTPC_EV_STEP, "STARTTLS: not used (TLS policy none)");
    } else if (c->no_starttls) {
        if (required) {
            fail_local(c, SMTPC_E_TLS_POLICY, 1,
                       "TLS is required but STARTTLS is disabled for this connection");
            return;
        }
        event(c, SMTPC_EV_STEP, "STARTTLS: disabled for this connection; continuing without TLS");
    } else if (c->caps.flags & SMTPC_CAP_STARTTLS) {
        if (command(c, NULL, "STARTTLS") != 0) {
            overflow(c);
            return;
        }
        set_state(c, SMTPC_S_STARTTLS);
        return;
    } else if (required) {
        fail_local(c, SMTPC_E_TLS_POLICY, 1, "TLS is required but the server does not offer STARTTLS");
        return;
    } else {
        event(c, SMTPC_EV_STEP, "STARTTLS: not offered by the server; continuing without TLS");
    }
    start_auth(c);
}

static void greeting_reply(struct smtpc *c)
{
    if (c->reply.code / 100 != 2) {
        fail(c, SMTPC_E_GREETING, &c->reply, 1);
        return;
    }
    hello(c);
}

static void hello_reply(struct smtpc *c)
{
    int cls = c->reply.code / 100;
    if (cls == 2) {
        if (c->state == SMTPC_S_EHLO)
            caps_event(c);
        after_hello(c);
    } else if (cls == 5 && c->state == SMTPC_S_EHLO) {
        /* An old server without ESMTP: no extensions, so no STARTTLS,
         * PIPELINING or AUTH either. */
        memset(&c->caps, 0, sizeof c->caps);
        event(c, SMTPC_EV_STEP, "EHLO refused; falling back to HELO");
        if (command(c, NULL, "HELO %s", c->helo_name) != 0) {
            overflow(c);
            return;
        }
        set_state(c, SMTPC_S_HELO);
    } else {
        memset(&c->caps, 0, sizeof c->caps);
        fail(c, SMTPC_E_HELLO, &c->reply, 1);
    }
}

static void starttls_reply(struct smtpc *c)
{
    if (c->reply.code == 220) {
        /* RFC 3207 4.2: nothing learned before the handshake holds. */
        memset(&c->caps, 0, sizeof c->caps);
        c->tls_starts++;
        set_state(c, SMTPC_S_TLS);
        event(c, SMTPC_EV_STEP, "STARTTLS: accepted; starting the TLS handshake");
        c->ops->starttls(c->ctx);
        return;
    }
    if (c->tls_policy != SMTPC_TLS_MAY) {
        fail(c, SMTPC_E_TLS_POLICY, &c->reply, 1);
        return;
    }
    /* Still a plaintext SMTP session in a known state (RFC 3207 4): go on
     * in it rather than reconnect. */
    event(c, SMTPC_EV_STEP, "STARTTLS: refused by the server; continuing without TLS");
    start_auth(c);
}

void smtpc_tls_done(struct smtpc *c, int ok)
{
    if (c->state != SMTPC_S_TLS)
        return;
    c->line_len = 0;
    c->reply_lines = 0;
    if (ok) {
        c->tls_active = 1;
        event(c, SMTPC_EV_STEP, "TLS: established");
        hello(c);
        return;
    }
    event(c, SMTPC_EV_STEP, "TLS: handshake failed");
    /* No QUIT: the TLS layer is in an unknown state. Under `may` the
     * transport reconnects at once with no_starttls. */
    fail_local(c, c->tls_policy == SMTPC_TLS_MAY ? SMTPC_E_TLS_FAILED : SMTPC_E_TLS_POLICY, 0,
               "TLS handshake failed");
}

static void auth_ok(struct smtpc *c)
{
    c->authenticated = 1;
    event(c, SMTPC_EV_STEP, "AUTH: succeeded");
    go_ready(c);
}

/* A refused AUTH ends the connection: trying again with the same
 * credentials would only lock the account. */
static void auth_refused(struct smtpc *c)
{
    event(c, SMTPC_EV_STEP, "AUTH: failed");
    fail(c, SMTPC_E_AUTH_FAILED, &c->reply, 1);
}

/* One base64 line of the LOGIN exchange. */
static int login_line(struct smtpc *c, const char *secret)
{
    char enc[B64_ENCODED_LEN(SMTPC_PASS_MAX > SMTPC_USER_MAX ? SMTPC_PASS_MAX : SMTPC_USER_MAX) + 1];
    b64_encode((const uint8_t *)secret, strlen(secret), enc);
    int rc = command(c, "(credentials hidden)", "%s", enc);
    wipe(enc, sizeof enc);
    return rc;
}

static void auth_reply(struct smtpc *c)
{
    int code = c->reply.code;
    switch (c->state) {
    case SMTPC_S_AUTH_PLAIN:
    case SMTPC_S_AUTH_PASS:
        if (code / 100 == 2) {
            auth_ok(c);
            return;
        }
        if (code == 334 && command(c, NULL, "*") != 0) { /* cancel (RFC 4954 4) */
            overflow(c);
            return;
        }
        auth_refused(c);
        return;
    case SMTPC_S_AUTH_LOGIN:
    case SMTPC_S_AUTH_USER:
        /* The prompts ("Username:", "Password:") vary between servers; the
         * order is what counts. */
        if (code != 334) {
            auth_refused(c);
            return;
        }
        if (login_line(c, c->state == SMTPC_S_AUTH_LOGIN ? c->user : c->pass) != 0) {
            overflow(c);
            return;
        }
        set_state(c, c->state == SMTPC_S_AUTH_LOGIN ? SMTPC_S_AUTH_USER : SMTPC_S_AUTH_PASS);
        return;
    default:
        return;
    }
}

/* --- the mail transaction --- */

/* Command `idx` of the transaction, without CRLF; returns its length. */
static size_t txn_line(struct smtpc *c, int idx, char *buf, size_t cap)
{
    int n;
    if (idx == 0) {
        char size[32] = "";
        if (c->caps.flags & SMTPC_CAP_SIZE)
            snprintf(size, sizeof size, " SIZE=%llu", (unsigned long long)c->msg.size);
        n = snprintf(buf, cap, "MAIL FROM:<%s>%s%s", c->msg.sender, size,
                     c->caps.flags & SMTPC_CAP_8BITMIME ? " BODY=8BITMIME" : "");
    } else if (idx <= c->msg.rcpt_count) {
        n = snprintf(buf, cap, "RCPT TO:<%s>", c->msg.rcpts[idx - 1]);
    } else {
        n = snprintf(buf, cap, "DATA");
    }
    return n < 0 ? 0 : (size_t)n; /* addresses are bounded: always fits */
}

/* Compose the transaction's commands up to gen_end. A pipelined batch
 * (RFC 2920) is composed as the output drains, keeping SMTPC_CMD_MAX free
 * for the single commands that may follow a reply. */
static void gen_fill(struct smtpc *c)
{
    while (c->gen_next < c->gen_end && c->state != SMTPC_S_DONE) {
        char line[SMTPC_CMD_MAX];
        size_t n = txn_line(c, c->gen_next, line, sizeof line);
        if (put_line(c, NULL, line, n, c->pipelined ? SMTPC_CMD_MAX : 0) != 0)
            return;
        c->gen_next++;
    }
}

int smtpc_send(struct smtpc *c, const struct smtpc_msg *m)
{
    if (c->state != SMTPC_S_READY || m == NULL || m->rcpt_count < 1 ||
        m->rcpt_count > SMTPC_RCPT_MAX || m->rcpts == NULL || !valid_address(m->sender, 1))
        return -1;
    for (int i = 0; i < m->rcpt_count; i++)
        if (!valid_address(m->rcpts[i], 0))
            return -1;
    c->msg = *m;
    c->in_txn = 1;
    c->pipelined = (c->caps.flags & SMTPC_CAP_PIPELINING) != 0;
    c->gen_next = 0;
    c->gen_end = c->pipelined ? m->rcpt_count + 2 : 1;
    c->rep_next = 0;
    c->mail_ok = 0;
    c->accepted = 0;
    c->results_left = m->rcpt_count;
    memset(c->rstate, SMTPC_R_OPEN, sizeof c->rstate);
    set_state(c, SMTPC_S_MAIL);
    gen_fill(c);
    return 0;
}

/* The transaction is over on both sides. */
static void end_txn(struct smtpc *c)
{
    go_ready(c);
}

static void rset(struct smtpc *c)
{
    if (command(c, NULL, "RSET") != 0) {
        overflow(c);
        return;
    }
    set_state(c, SMTPC_S_RSET);
}

static void start_body(struct smtpc *c)
{
    c->bol = 1;
    c->pending_cr = 0;
    c->body_bytes = 0;
    set_state(c, SMTPC_S_BODY);
}

static void txn_reply(struct smtpc *c)
{
    const struct smtpc_result *r = &c->reply;
    int n = c->msg.rcpt_count;
    int idx = c->rep_next;
    int cls = r->code / 100;
    if (idx >= c->gen_next) {
        protocol_error(c, "reply to a command not sent");
        return;
    }
    c->rep_next++;
    if (idx == 0) { /* MAIL */
        if (cls == 2) {
            c->mail_ok = 1;
        } else {
            /* The sender was refused: that answers for every recipient.
             * Compose nothing more of the batch: after msg_done() the
             * transport may reuse the envelope strings. */
            c->gen_end = c->gen_next;
            rcpt_final_all(c, SMTPC_R_OPEN, r);
            if (c->rep_next == c->gen_next) {
                end_txn(c); /* no transaction is open: nothing to RSET */
                return;
            }
        }
        set_state(c, SMTPC_S_RCPT);
        if (!c->pipelined)
            c->gen_end = 2;
        gen_fill(c);
        return;
    }
    if (idx <= n) { /* RCPT */
        int i = idx - 1;
        if (!c->mail_ok) {
            /* the answer to a RCPT sent before MAIL's refusal came back */
            if (c->rep_next == c->gen_next)
                end_txn(c);
            return;
        }
        if (cls == 2) {
            c->rstate[i] = SMTPC_R_ACCEPTED;
            c->accepted++;
        } else {
            rcpt_final(c, i, r);
        }
        if (idx < n) {
            if (!c->pipelined)
                c->gen_end = idx + 2;
        } else if (!c->pipelined) {
            if (c->accepted == 0) {
                rset(c); /* nobody to send DATA for */
                return;
            }
            c->gen_end = n + 2;
            set_state(c, SMTPC_S_DATA);
        } else {
            set_state(c, SMTPC_S_DATA);
        }
        gen_fill(c);
        return;
    }
    /* DATA */
    if (r->code == 354) {
        if (c->accepted == 0) {
            /* A pipelined DATA the server took although no recipient was
             * accepted: end the empty message (RFC 2920 3.1). */
            if (command(c, NULL, ".") != 0) {
                overflow(c);
                return;
            }
            set_state(c, SMTPC_S_DOT);
            return;
        }
        start_body(c);
        return;
    }
    if (cls == 2 || cls == 3) {
        protocol_error(c, "unexpected reply to DATA");
        return;
    }
    rcpt_final_all(c, SMTPC_R_ACCEPTED, r);
    if (c->mail_ok)
        rset(c); /* the server may still hold MAIL and RCPT */
    else
        end_txn(c);
}

static void dot_reply(struct smtpc *c)
{
    /* The reply to "." is the result for every recipient accepted at
     * RCPT; after the empty "." of an all-refused transaction there are
     * none left and the reply means nothing. */
    rcpt_final_all(c, SMTPC_R_ACCEPTED, &c->reply);
    end_txn(c);
}

/* A reply while we are still sending the body: RFC 5321 has none, but a
 * server may refuse early (552) and stop reading. Take a refusal as the
 * answer for the recipients; the stream cannot go on either way. */
static void body_reply(struct smtpc *c)
{
    if (c->reply.code / 100 != 2)
        rcpt_final_all(c, SMTPC_R_ACCEPTED, &c->reply);
    protocol_error(c, "reply before the end of the message data");
}

/* --- body: dot-stuffing, CRLF --- */

static void body_put(struct smtpc *c, const char *s, size_t n)
{
    memcpy(c->out + c->out_tail, s, n);
    c->out_tail += n;
}

/* Stuff n raw body bytes into the output, which has 2 * n + 2 free (each
 * byte makes at most two, plus the CRLF of a CR held from the last chunk).
 * A line starting with '.' gets another; a bare CR or bare LF becomes
 * CRLF: stored bodies are CRLF already (the inbound side refuses anything
 * else), so that only guards the rule that what we send is CRLF-clean. */
static void body_stuff(struct smtpc *c, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t b = p[i];
        if (c->pending_cr) {
            c->pending_cr = 0;
            body_put(c, "\r\n", 2);
            c->bol = 1;
            if (b == '\n')
                continue;
        }
        if (b == '\r') {
            c->pending_cr = 1; /* its LF may be in the next chunk */
            continue;
        }
        if (b == '\n') {
            body_put(c, "\r\n", 2);
            c->bol = 1;
            continue;
        }
        if (c->bol && b == '.')
            body_put(c, ".", 1);
        c->bol = 0;
        c->out[c->out_tail++] = b;
    }
}

static void body_end(struct smtpc *c)
{
    if (c->pending_cr) {
        c->pending_cr = 0;
        body_put(c, "\r\n", 2);
        c->bol = 1;
    }
    if (!c->bol)
        body_put(c, "\r\n", 2); /* the terminator needs a line of its own */
    body_put(c, ".\r\n", 3);
    event(c, SMTPC_EV_STEP, "DATA: %llu bytes of message sent", (unsigned long long)c->body_bytes);
    event(c, SMTPC_EV_SENT, ".");
    set_state(c, SMTPC_S_DOT);
}

/* Pull the body while there is room for its worst-case expansion. */
static void body_fill(struct smtpc *c)
{
    while (c->state == SMTPC_S_BODY) {
        size_t room = out_free(c);
        /* 2 per byte, 2 for a held CR, 5 for the end ("\r\n.\r\n") */
        if (room < 2 + 5 + 2 * 1)
            return;
        size_t cap = (room - 2 - 5) / 2;
        if (cap > SMTPC_BODY_CHUNK)
            cap = SMTPC_BODY_CHUNK;
        uint8_t raw[SMTPC_BODY_CHUNK];
        int n = c->ops->body_read(c->ctx, raw, cap);
        if (n < 0 || (size_t)n > cap) {
            /* Close without the final "." so the server drops what it got. */
            fail_local(c, SMTPC_E_LOCAL, 0, "cannot read the message body");
            return;
        }
        if (n == 0) {
            body_end(c);
            return;
        }
        body_stuff(c, raw, (size_t)n);
        c->body_bytes += (uint64_t)n;
    }
}

size_t smtpc_pump(struct smtpc *c, size_t room)
{
    size_t total = 0;
    while (c->state != SMTPC_S_DONE) {
        gen_fill(c);
        body_fill(c);
        size_t avail = c->out_tail - c->out_head;
        size_t n = avail < room - total ? avail : room - total;
        if (n == 0)
            break;
        c->ops->write(c->ctx, c->out + c->out_head, n);
        /* see out_free; memset, not wipe(): the engine outlives this call,
         * so the store cannot be dropped, and every body byte passes here */
        memset(c->out + c->out_head, 0, n);
        c->out_head += n;
        total += n;
        if (c->out_head == c->out_tail)
            c->out_head = c->out_tail = 0;
    }
    return total;
}

/* --- replies --- */

/* Length of an enhanced status code "c.sss.ddd" (RFC 3463) at the start of
 * t, whose class matches the reply's; 0 when there is none. */
static size_t enhanced_len(const char *t, size_t n, int cls)
{
    if (n < 5 || t[0] != '0' + cls || t[1] != '.')
        return 0;
    size_t i = 2, d = 0;
    while (i < n && t[i] >= '0' && t[i] <= '9' && d < 3)
        i++, d++;
    if (d == 0 || i >= n || t[i] != '.')
        return 0;
    i++;
    d = 0;
    while (i < n && t[i] >= '0' && t[i] <= '9' && d < 3)
        i++, d++;
    if (d == 0 || (i < n && t[i] != ' '))
        return 0;
    return i;
}

static void append_text(struct smtpc *c, const char *t, size_t n)
{
    char *dst = c->reply.text;
    size_t have = strlen(dst);
    if (n == 0)
        return;
    if (have && have < SMTPC_TEXT_MAX)
        dst[have++] = ' ';
    size_t take = SMTPC_TEXT_MAX - have < n ? SMTPC_TEXT_MAX - have : n;
    clean(dst + have, t, take);
}

static void on_reply(struct smtpc *c)
{
    /* 421 (RFC 5321 3.8): the server is closing, whatever we asked. */
    if (c->reply.code == 421 && c->state >= SMTPC_S_READY && c->state < SMTPC_S_QUIT) {
        fail(c, SMTPC_E_SHUTDOWN, &c->reply, 0);
        return;
    }
    switch (c->state) {
    case SMTPC_S_GREETING:
        greeting_reply(c);
        break;
    case SMTPC_S_EHLO:
    case SMTPC_S_HELO:
        hello_reply(c);
        break;
    case SMTPC_S_STARTTLS:
        starttls_reply(c);
        break;
    case SMTPC_S_AUTH_PLAIN:
    case SMTPC_S_AUTH_LOGIN:
    case SMTPC_S_AUTH_USER:
    case SMTPC_S_AUTH_PASS:
        auth_reply(c);
        break;
    case SMTPC_S_READY:
        protocol_error(c, "reply while no command was pending");
        break;
    case SMTPC_S_MAIL:
    case SMTPC_S_RCPT:
    case SMTPC_S_DATA:
        txn_reply(c);
        break;
    case SMTPC_S_BODY:
        body_reply(c);
        break;
    case SMTPC_S_DOT:
        dot_reply(c);
        break;
    case SMTPC_S_RSET:
        if (c->reply.code / 100 == 2)
            end_txn(c);
        else
            fail(c, SMTPC_E_PROTOCOL, &c->reply, 1);
        break;
    case SMTPC_S_QUIT:
        if (c->err == SMTPC_E_NONE)
            c->why = c->reply;
        finish(c);
        break;
    case SMTPC_S_TLS:
    case SMTPC_S_DONE:
        break;
    }
}

/* One complete line (the LF removed). */
static void line_done(struct smtpc *c)
{
    size_t n = c->line_len;
    c->line_len = 0;
    if (n && c->line[n - 1] == '\r')
        n--;
    const char *l = c->line;
    if (n > SMTPC_LINE_MAX - 2) {
        protocol_error(c, "reply line longer than 512 octets");
        return;
    }
    if (n < 3 || l[0] < '2' || l[0] > '5' || l[1] < '0' || l[1] > '9' || l[2] < '0' ||
        l[2] > '9' || (n > 3 && l[3] != ' ' && l[3] != '-')) {
        protocol_error(c, "malformed reply line");
        return;
    }
    int code = (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
    int last = n == 3 || l[3] == ' ';
    if (c->reply_lines == 0) {
        memset(&c->reply, 0, sizeof c->reply);
        c->reply.code = code;
        c->reply.status = status_of(code);
    } else if (code != c->reply.code) {
        protocol_error(c, "reply code changed within a multi-line reply");
        return;
    }
    if (++c->reply_lines > SMTPC_REPLY_LINES_MAX) {
        protocol_error(c, "reply longer than 100 lines");
        return;
    }
    char shown[SMTPC_LINE_MAX];
    clean(shown, l, n);
    event(c, SMTPC_EV_REPLY, "%s", shown);

    const char *t = n > 4 ? l + 4 : "";
    size_t tn = n > 4 ? n - 4 : 0;
    size_t esc = enhanced_len(t, tn, code / 100);
    if (c->reply_lines == 1) {
        if (esc)
            memcpy(c->reply.enhanced, t, esc); /* esc <= 9 */
    } else if (esc && strlen(c->reply.enhanced) == esc && memcmp(t, c->reply.enhanced, esc) == 0) {
        /* the same code repeated on each line: keep it once */
        t += esc;
        tn -= esc;
        while (tn && *t == ' ')
            t++, tn--;
    }
    append_text(c, t, tn);
    if (c->state == SMTPC_S_EHLO && code / 100 == 2 && c->reply_lines > 1)
        parse_capability(c, t, tn); /* the first line is the server's name */
    if (!last)
        return;
    c->reply_lines = 0;
    on_reply(c);
}

static void drop(struct smtpc *c, size_t n)
{
    if (n == 0)
        return;
    c->discarded += n;
    event(c, SMTPC_EV_STEP,
          "STARTTLS: discarded %zu bytes the server sent in plaintext after its 220", n);
}

void smtpc_feed(struct smtpc *c, const uint8_t *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (c->state == SMTPC_S_DONE)
            return;
        if (c->state == SMTPC_S_TLS) {
            drop(c, len - i);
            return;
        }
        uint8_t b = data[i];
        if (b != '\n') {
            /* 510 octets of text and the CR; a longer line is refused as
             * soon as it is too long, never buffered */
            if (c->line_len >= SMTPC_LINE_MAX - 1) {
                protocol_error(c, "reply line longer than 512 octets");
                return;
            }
            c->line[c->line_len++] = (char)b;
            continue;
        }
        unsigned starts = c->tls_starts;
        line_done(c);
        if (c->tls_starts != starts) {
            /* Whatever followed the 220 in this read was sent before the
             * handshake: a man in the middle's injection, not the server's
             * word. Dropped even if the handshake already finished. */
            drop(c, len - i - 1);
            return;
        }
    }
}

/* --- set-up and the end --- */

int smtpc_init(struct smtpc *c, const struct smtpc_config *cfg, const struct smtpc_ops *ops,
               void *ctx)
{
    memset(c, 0, sizeof *c);
    c->ops = ops;
    c->ctx = ctx;
    set_state(c, SMTPC_S_DONE); /* until the configuration is known good */
    size_t hn = cfg->helo_name ? strlen(cfg->helo_name) : 0;
    if (hn == 0 || hn > SMTPC_HOST_MAX || !printable_no_space(cfg->helo_name, hn))
        return -1;
    if ((unsigned)cfg->tls > SMTPC_TLS_NONE)
        return -1;
    memcpy(c->helo_name, cfg->helo_name, hn + 1);
    c->tls_policy = cfg->tls;
    c->no_starttls = cfg->no_starttls != 0;
    c->auth_plaintext = cfg->auth_plaintext != 0;
    if (cfg->user && cfg->user[0]) {
        size_t ul = strlen(cfg->user);
        size_t pl = cfg->password ? strlen(cfg->password) : 0;
        if (cfg->password == NULL || ul > SMTPC_USER_MAX || pl > SMTPC_PASS_MAX)
            return -1;
        memcpy(c->user, cfg->user, ul + 1);
        memcpy(c->pass, cfg->password, pl + 1);
        c->has_creds = 1;
    }
    set_state(c, SMTPC_S_GREETING);
    return 0;
}

int smtpc_quit(struct smtpc *c)
{
    if (c->state != SMTPC_S_READY)
        return -1;
    if (command(c, NULL, "QUIT") != 0)
        return -1;
    c->err = SMTPC_E_NONE;
    set_state(c, SMTPC_S_QUIT);
    return 0;
}

void smtpc_closed(struct smtpc *c)
{
    switch (c->state) {
    case SMTPC_S_DONE:
        return;
    case SMTPC_S_QUIT:
        finish(c); /* what we were ending for stays the reason */
        return;
    case SMTPC_S_TLS:
        smtpc_tls_done(c, 0); /* closed during the handshake: it failed */
        return;
    default: {
        struct smtpc_result r;
        local_result(&r, "connection closed by the server in state %s%s",
                     smtpc_state_name(c->state),
                     c->line_len || c->reply_lines ? ", in the middle of a reply" : "");
        fail(c, SMTPC_E_CLOSED, &r, 0);
        return;
    }
    }
}

void smtpc_abort(struct smtpc *c, const char *reason)
{
    if (c->state == SMTPC_S_DONE)
        return;
    if (c->state == SMTPC_S_QUIT) {
        finish(c);
        return;
    }
    char text[SMTPC_TEXT_MAX + 1];
    size_t n = reason ? strlen(reason) : 0;
    clean(text, reason ? reason : "", n < SMTPC_TEXT_MAX ? n : SMTPC_TEXT_MAX);
    fail_local(c, SMTPC_E_ABORTED, 0, text);
}

int smtpc_tls_active(const struct smtpc *c)
{
    return c->tls_active;
}
