/* smtpd.c — inbound SMTP session engine; see smtpd.h. */
#include "smtpd.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "b64.h"

/* Zero memory that held a secret so that the compiler cannot drop it (a
 * memset of a buffer about to die may be). A local copy of crypto_wipe():
 * this engine is built and unit-tested without crypto.c. */
static void wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;
    while (n--)
        *v++ = 0;
}

/* --- replies and state --- */

/* 1 when the transport can take the replies of one more command line. */
static int reply_room_ok(struct smtpd *s)
{
    return !s->ops->reply_room || s->ops->reply_room(s->ctx) >= SMTPD_REPLY_MAX;
}

static void reply(struct smtpd *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reply(struct smtpd *s, const char *fmt, ...)
{
    char buf[SMTPD_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 2, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof buf - 3)
        n = (int)(sizeof buf - 3);
    buf[n++] = '\r';
    buf[n++] = '\n';
    s->ops->reply(s->ctx, buf, (size_t)n);
}

const char *smtpd_state_name(enum smtpd_state state)
{
    static const char *const names[] = {"init", "ready", "mail", "rcpt", "data",
                                        "wait-commit", "auth", "wait-tls", "closed"};
    return (unsigned)state < sizeof names / sizeof names[0] ? names[state] : "?";
}

/* Every state change goes through here. */
static void smtpd_set_state(struct smtpd *s, enum smtpd_state next)
{
    s->state = next;
}

static void reset_transaction(struct smtpd *s)
{
    s->sender[0] = '\0';
    s->declared_size = 0;
    s->rcpt_count = 0;
    s->arena_used = 0;
}

static void close_session(struct smtpd *s)
{
    /* Nothing more is read: a half-received line may be an AUTH response. */
    wipe(s->line, s->line_len);
    wipe(s->auth_user, sizeof s->auth_user);
    smtpd_set_state(s, SMTPD_S_CLOSED);
    s->ops->close(s->ctx);
}

int smtpd_waiting(const struct smtpd *s)
{
    return s->state == SMTPD_S_WAIT_COMMIT || s->state == SMTPD_S_WAIT_TLS ||
           s->state == SMTPD_S_CLOSED;
}

void smtpd_init(struct smtpd *s, const struct smtpd_config *cfg, const struct smtpd_ops *ops,
                void *ctx)
{
    memset(s, 0, sizeof *s);
    s->cfg = *cfg;
    s->ops = ops;
    s->ctx = ctx;
    smtpd_set_state(s, SMTPD_S_INIT);
    reply(s, "220 %s ESMTP Smart Host Relay", s->cfg.hostname);
}

void smtpd_shutdown(struct smtpd *s, const char *reason)
{
    if (s->state == SMTPD_S_CLOSED)
        return;
    if (s->state == SMTPD_S_DATA || s->state == SMTPD_S_WAIT_COMMIT)
        s->ops->msg_abort(s->ctx);
    reply(s, "421 %s %s", reason, s->cfg.hostname);
    close_session(s);
}

/* --- addresses --- */

static int is_atext(int c)
{
    return isalnum(c) || (c && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* A DNS domain: labels of letters, digits and hyphens, no trailing dot. */
static int valid_domain(const char *d, size_t n)
{
    if (n == 0 || n > SMTPD_DOMAIN_MAX)
        return 0;
    size_t label = 0;
    for (size_t i = 0; i < n; i++) {
        char c = d[i];
        if (c == '.') {
            if (label == 0 || d[i - 1] == '-')
                return 0;
            label = 0;
        } else if (isalnum((unsigned char)c) || c == '-') {
            if (label == 0 && c == '-')
                return 0;
            if (++label > 63)
                return 0;
        } else {
            return 0;
        }
    }
    return label > 0 && d[n - 1] != '-';
}

/* "[...]" address literal: printable, no brackets or backslashes inside. */
static int valid_literal(const char *d, size_t n)
{
    if (n < 3 || d[0] != '[' || d[n - 1] != ']')
        return 0;
    for (size_t i = 1; i + 1 < n; i++)
        if (d[i] < 33 || d[i] > 126 || d[i] == '[' || d[i] == ']' || d[i] == '\\')
            return 0;
    return 1;
}

enum mailbox_flags {
    MB_QUOTED_AT = 1,  /* quoted local part holds '@' */
    MB_ROUTING = 2,    /* local part holds '%' or '!' (relay tricks) */
    MB_LITERAL = 4,    /* domain is an address literal */
};

/* Check "local@domain"; returns 0 and sets *domain_at and flags, or -1. */
static int parse_mailbox(const char *m, size_t n, size_t *domain_at, int *flags)
{
    size_t i = 0;
    *flags = 0;
    if (n == 0)
        return -1;
    if (m[0] == '"') {
        for (i = 1; i < n && m[i] != '"'; i++) {
            if (m[i] == '\\') {
                if (++i >= n)
                    return -1;
            }
            if ((unsigned char)m[i] < 32 || (unsigned char)m[i] > 126)
                return -1;
            if (m[i] == '@')
                *flags |= MB_QUOTED_AT;
            if (m[i] == '%' || m[i] == '!')
                *flags |= MB_ROUTING;
        }
        if (i >= n)
            return -1; /* unterminated */
        i++;
    } else {
        int prev_dot = 1;
        for (; i < n && m[i] != '@'; i++) {
            if (m[i] == '.') {
                if (prev_dot)
                    return -1;
                prev_dot = 1;
                continue;
            }
            if (!is_atext((unsigned char)m[i]))
                return -1;
            if (m[i] == '%' || m[i] == '!')
                *flags |= MB_ROUTING;
            prev_dot = 0;
        }
        if (i == 0 || prev_dot)
            return -1;
    }
    if (i >= n || m[i] != '@')
        return -1;
    const char *d = m + i + 1;
    size_t dn = n - i - 1;
    if (valid_literal(d, dn))
        *flags |= MB_LITERAL;
    else if (!valid_domain(d, dn))
        return -1;
    *domain_at = i + 1;
    return 0;
}

/* Source route "@a,@b:" before the mailbox; returns its length or -1. */
static long source_route(const char *p, size_t n)
{
    if (n == 0 || p[0] != '@')
        return 0;
    size_t i = 0;
    for (;;) {
        if (i >= n || p[i] != '@')
            return -1;
        size_t start = ++i;
        while (i < n && p[i] != ',' && p[i] != ':')
            i++;
        if (i >= n || !valid_domain(p + start, i - start))
            return -1;
        if (p[i++] == ':')
            return (long)i;
    }
}

enum path_result { PATH_OK, PATH_SYNTAX, PATH_TOO_LONG, PATH_ROUTED };

/* Parse "<path>" at `arg` (spaces allowed before it); the mailbox goes to
 * `out`, *params points after '>'. Null path allowed when `null_ok`. */
static enum path_result parse_path(const char *arg, int null_ok, char *out, size_t cap,
                                   const char **params, int *flags)
{
    while (*arg == ' ')
        arg++;
    if (*arg != '<')
        return PATH_SYNTAX;
    const char *p = arg + 1;
    int quoted = 0;
    while (*p && (quoted || *p != '>')) {
        if (quoted && *p == '\\' && p[1])
            p++;
        else if (*p == '"')
            quoted = !quoted;
        p++;
    }
    if (*p != '>')
        return PATH_SYNTAX;
    size_t n = (size_t)(p - arg - 1);
    if (n + 2 > SMTPD_PATH_MAX)
        return PATH_TOO_LONG;
    *params = p + 1;
    *flags = 0;
    const char *m = arg + 1;
    if (n == 0) {
        if (!null_ok)
            return PATH_SYNTAX;
        out[0] = '\0';
        return PATH_OK;
    }
    long route = source_route(m, n);
    if (route < 0)
        return PATH_SYNTAX;
    size_t domain_at;
    if (parse_mailbox(m + route, n - (size_t)route, &domain_at, flags) != 0)
        return PATH_SYNTAX;
    if (n - (size_t)route >= cap)
        return PATH_TOO_LONG;
    memcpy(out, m + route, n - (size_t)route);
    out[n - (size_t)route] = '\0';
    /* Domains are case-insensitive: store them lower case. */
    for (char *c = out + domain_at; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    return route ? PATH_ROUTED : PATH_OK;
}

/* MAIL parameters: SIZE=n, BODY=7BIT|8BITMIME, AUTH=... (ignored). */
static int parse_mail_params(struct smtpd *s, const char *p)
{
    while (*p) {
        if (*p != ' ')
            return -1;
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        const char *end = strchr(p, ' ');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n > 5 && strncasecmp(p, "SIZE=", 5) == 0) {
            uint64_t v = 0;
            for (size_t i = 5; i < n; i++) {
                if (!isdigit((unsigned char)p[i]) || i > 5 + 18)
                    return -1;
                v = v * 10 + (uint64_t)(p[i] - '0');
            }
            s->declared_size = v;
        } else if ((n == 9 && strncasecmp(p, "BODY=7BIT", 9) == 0) ||
                   /* fix: "BODY=8BITMIME" is 13 octets; this said n == 14, which
                    * refused BODY=8BITMIME (555) and accepted "BODY=8BITMIMEx" */
                   (n == 13 && strncasecmp(p, "BODY=8BITMIME", 13) == 0)) {
            /* both fine: we pass 8-bit data through unchanged */
        } else if (n > 5 && strncasecmp(p, "AUTH=", 5) == 0) {
            /* RFC 4954 AUTH=<mailbox>: informational, ignored */
        } else {
            return -2;
        }
        p += n;
    }
    return 0;
}

/* --- commands --- */

static int arg_is(const char *arg, const char *word)
{
    size_t n = strlen(word);
    return strncasecmp(arg, word, n) == 0;
}

static void cmd_helo(struct smtpd *s, const char *arg, int extended)
{
    size_t n = strlen(arg);
    if (n == 0 || n > SMTPD_DOMAIN_MAX || strchr(arg, ' ')) {
        reply(s, "501 Syntax: %s hostname", extended ? "EHLO" : "HELO");
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (arg[i] < 33 || arg[i] > 126) {
            reply(s, "501 Syntax: %s hostname", extended ? "EHLO" : "HELO");
            return;
        }
    memcpy(s->helo, arg, n + 1);
    reset_transaction(s);
    smtpd_set_state(s, SMTPD_S_READY);
    if (!extended) {
        reply(s, "250 %s", s->cfg.hostname);
        return;
    }
    reply(s, "250-%s", s->cfg.hostname);
    reply(s, "250-PIPELINING");
    reply(s, "250-SIZE %llu", (unsigned long long)s->cfg.max_size);
    reply(s, "250-8BITMIME");
    reply(s, "250-ENHANCEDSTATUSCODES");
    if (s->cfg.tls_available && !s->tls_active)
        reply(s, "250-STARTTLS");
    if (s->cfg.auth_required != SMTPD_AUTH_OFF && s->tls_active)
        reply(s, "250-AUTH PLAIN LOGIN");
    reply(s, "250 HELP");
}

static void cmd_mail(struct smtpd *s, const char *arg)
{
    if (s->state == SMTPD_S_INIT) {
        reply(s, "503 5.5.1 Send EHLO or HELO first");
        return;
    }
    if (s->state != SMTPD_S_READY) {
        reply(s, "503 5.5.1 Nested MAIL command");
        return;
    }
    if (s->cfg.auth_required == SMTPD_AUTH_UNKNOWN && !s->authenticated) {
        /* Whether AUTH is required could not be read: fail closed, and say
         * it is temporary (RFC 4954 454). */
        reply(s, "454 4.7.0 Temporary authentication failure; try again later");
        return;
    }
    if (s->cfg.auth_required != SMTPD_AUTH_OFF && !s->authenticated) {
        reply(s, "530 5.7.0 Authentication required");
        return;
    }
    if (!arg_is(arg, "FROM:")) {
        reply(s, "501 5.5.4 Syntax: MAIL FROM:<address>");
        return;
    }
    const char *params;
    int flags;
    switch (parse_path(arg + 5, 1, s->sender, sizeof s->sender, &params, &flags)) {
    case PATH_OK:
    case PATH_ROUTED: /* a source route on MAIL is accepted and ignored (RFC 5321 C) */
        break;
    case PATH_TOO_LONG:
        reply(s, "501 5.1.7 Sender address too long");
        return;
    case PATH_SYNTAX:
        reply(s, "501 5.1.7 Bad sender address syntax");
        return;
    }
    s->declared_size = 0;
    int rc = parse_mail_params(s, params);
    if (rc == -2) {
        reply(s, "555 5.5.4 Unsupported MAIL parameter");
        return;
    }
    if (rc != 0) {
        reply(s, "501 5.5.4 Bad MAIL parameter syntax");
        return;
    }
    if (s->declared_size > s->cfg.max_size) {
        reply(s, "552 5.3.4 Message size exceeds fixed limit of %llu bytes",
              (unsigned long long)s->cfg.max_size);
        return;
    }
    if (!s->ops->queue_has_room(s->ctx, s->declared_size)) {
        reply(s, "452 4.3.1 Insufficient system storage");
        return;
    }
    smtpd_set_state(s, SMTPD_S_MAIL);
    reply(s, "250 2.1.0 Sender ok");
}

static const char *rcpt_at(const struct smtpd *s, int i) { return s->rcpt_arena + s->rcpt_off[i]; }

static void cmd_rcpt(struct smtpd *s, const char *arg)
{
    if (s->state != SMTPD_S_MAIL && s->state != SMTPD_S_RCPT) {
        reply(s, "503 5.5.1 Need MAIL before RCPT");
        return;
    }
    if (!arg_is(arg, "TO:")) {
        reply(s, "501 5.5.4 Syntax: RCPT TO:<address>");
        return;
    }
    char rcpt[SMTPD_PATH_MAX + 1];
    const char *params;
    int flags;
    switch (parse_path(arg + 3, 0, rcpt, sizeof rcpt, &params, &flags)) {
    case PATH_OK:
        break;
    case PATH_ROUTED:
        reply(s, "550 5.7.1 Relaying denied: source routes are not accepted");
        return;
    case PATH_TOO_LONG:
        reply(s, "501 5.1.3 Recipient address too long");
        return;
    case PATH_SYNTAX:
        reply(s, "501 5.1.3 Bad recipient address syntax");
        return;
    }
    if (*params) {
        reply(s, "555 5.5.4 Unsupported RCPT parameter");
        return;
    }
    if (flags & (MB_QUOTED_AT | MB_ROUTING | MB_LITERAL)) {
        reply(s, "550 5.7.1 Relaying denied");
        return;
    }
    const char *domain = strrchr(rcpt, '@') + 1;
    if (!s->ops->domain_allowed(s->ctx, domain)) {
        reply(s, "550 5.7.1 Relaying denied");
        return;
    }
    for (int i = 0; i < s->rcpt_count; i++)
        if (strcmp(rcpt_at(s, i), rcpt) == 0) {
            reply(s, "250 2.1.5 Recipient ok (duplicate)");
            return;
        }
    size_t need = strlen(rcpt) + 1;
    if (s->rcpt_count >= SMTPD_RCPT_MAX || s->arena_used + need > sizeof s->rcpt_arena) {
        reply(s, "452 4.5.3 Too many recipients");
        return;
    }
    s->rcpt_off[s->rcpt_count++] = (uint16_t)s->arena_used;
    memcpy(s->rcpt_arena + s->arena_used, rcpt, need);
    s->arena_used += need;
    smtpd_set_state(s, SMTPD_S_RCPT);
    reply(s, "250 2.1.5 Recipient ok");
}

static void cmd_data(struct smtpd *s, const char *arg)
{
    if (*arg) {
        reply(s, "501 5.5.4 DATA takes no arguments");
        return;
    }
    if (s->state != SMTPD_S_RCPT) {
        reply(s, "503 5.5.1 Need RCPT before DATA");
        return;
    }
    if (!s->ops->queue_has_room(s->ctx, s->declared_size)) {
        reply(s, "452 4.3.1 Insufficient system storage");
        return;
    }
    struct smtpd_envelope env;
    memset(&env, 0, sizeof env);
    env.helo = s->helo;
    env.sender = s->sender;
    env.rcpt_count = s->rcpt_count;
    for (int i = 0; i < s->rcpt_count; i++)
        env.rcpts[i] = rcpt_at(s, i);
    env.tls = s->tls_active;
    env.authenticated = s->authenticated;
    env.declared_size = s->declared_size;
    int rc = s->ops->msg_begin(s->ctx, &env);
    if (rc != 0) {
        if (rc == SMTPD_STORE_NO_ROOM)
            reply(s, "452 4.3.1 Insufficient system storage");
        else
            reply(s, "451 4.3.0 Cannot store the message now; try again later");
        return;
    }
    s->d_line_start = 1;
    s->d_cr = s->d_dot = 0;
    s->d_line_len = 0;
    s->d_size = 0;
    s->d_too_long = s->d_too_big = s->d_store_failed = s->d_no_room = 0;
    s->d_out_len = 0;
    smtpd_set_state(s, SMTPD_S_DATA);
    reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

static void cmd_rset(struct smtpd *s, const char *arg)
{
    if (*arg) {
        reply(s, "501 5.5.4 RSET takes no arguments");
        return;
    }
    reset_transaction(s);
    if (s->state != SMTPD_S_INIT)
        smtpd_set_state(s, SMTPD_S_READY);
    reply(s, "250 2.0.0 Ok");
}

static void cmd_noop(struct smtpd *s, const char *arg)
{
    (void)arg;
    reply(s, "250 2.0.0 Ok");
}

static void cmd_quit(struct smtpd *s, const char *arg)
{
    (void)arg;
    reply(s, "221 2.0.0 Bye");
    close_session(s);
}

static void cmd_vrfy(struct smtpd *s, const char *arg)
{
    (void)arg;
    reply(s, "252 2.5.2 Cannot VRFY user; send mail and delivery will be attempted");
}

static void cmd_help(struct smtpd *s, const char *arg)
{
    (void)arg;
    reply(s, "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP STARTTLS AUTH");
}

static void cmd_starttls(struct smtpd *s, const char *arg)
{
    if (*arg) {
        reply(s, "501 5.5.4 STARTTLS takes no arguments");
        return;
    }
    if (!s->cfg.tls_available || s->tls_active) {
        reply(s, s->tls_active ? "503 5.5.1 TLS already active" : "454 4.7.0 TLS not available");
        return;
    }
    if (s->state != SMTPD_S_READY && s->state != SMTPD_S_INIT) {
        reply(s, "503 5.5.1 STARTTLS not allowed during a mail transaction");
        return;
    }
    reply(s, "220 2.0.0 Ready to start TLS");
    smtpd_set_state(s, SMTPD_S_WAIT_TLS);
    s->ops->starttls(s->ctx);
}

void smtpd_tls_started(struct smtpd *s)
{
    if (s->state != SMTPD_S_WAIT_TLS)
        return;
    /* RFC 3207 4.2: forget everything learned before the handshake. */
    s->tls_active = 1;
    s->helo[0] = '\0';
    s->authenticated = 0;
    reset_transaction(s);
    wipe(s->line, s->line_len);
    wipe(s->auth_user, sizeof s->auth_user);
    s->auth_mech = 0;
    s->line_len = 0;
    s->line_too_long = 0;
    s->line_cr = 0;
    smtpd_set_state(s, SMTPD_S_INIT);
}

/* --- AUTH --- */

enum { AUTH_PLAIN = 1, AUTH_LOGIN_USER, AUTH_LOGIN_PASS };

static void auth_finish(struct smtpd *s, const char *user, const char *password)
{
    int ok = s->ops->auth_check(s->ctx, user, password);
    if (ok > 0) {
        s->authenticated = 1;
        reply(s, "235 2.7.0 Authentication successful");
        return;
    }
    if (ok < 0) {
        /* Our storage failed, not the client's credentials: temporary, and
         * not counted against the client. */
        reply(s, "454 4.7.0 Temporary authentication failure");
        return;
    }
    if (++s->auth_failures >= SMTPD_AUTH_FAILURES_MAX) {
        reply(s, "421 4.7.0 Too many failed authentications; closing");
        close_session(s);
        return;
    }
    reply(s, "535 5.7.8 Authentication credentials invalid");
}

/* A decoded response (NUL-terminated at buf[n]) for AUTH step `step`. */
static void auth_decoded(struct smtpd *s, int step, const uint8_t *buf, size_t n)
{
    if (step == AUTH_PLAIN) {
        /* authzid NUL authcid NUL password */
        const char *authz = (const char *)buf;
        size_t a = strlen(authz);
        if (n < a + 2 || memchr(buf + a + 1, 0, n - a - 1) == NULL) {
            reply(s, "501 5.5.2 Bad AUTH PLAIN response");
            return;
        }
        const char *user = authz + a + 1;
        const char *pass = user + strlen(user) + 1;
        if (a && strcmp(authz, user) != 0)
            reply(s, "535 5.7.8 Authorization identity differs from user");
        else
            auth_finish(s, user, pass);
    } else if (step == AUTH_LOGIN_USER) {
        if (n >= sizeof s->auth_user || memchr(buf, 0, n)) {
            reply(s, "501 5.5.2 Bad user name");
            return;
        }
        memcpy(s->auth_user, buf, n + 1);
        s->auth_mech = AUTH_LOGIN_PASS;
        smtpd_set_state(s, SMTPD_S_AUTH);
        reply(s, "334 UGFzc3dvcmQ6"); /* "Password:" */
    } else {
        if (memchr(buf, 0, n))
            reply(s, "501 5.5.2 Bad password");
        else
            auth_finish(s, s->auth_user, (const char *)buf);
    }
}

/* One base64 response line for the current AUTH step. */
static void auth_response(struct smtpd *s, const char *b64)
{
    int step = s->auth_mech;
    s->auth_mech = 0;
    smtpd_set_state(s, SMTPD_S_READY);
    uint8_t buf[512];
    if (strcmp(b64, "*") == 0) {
        reply(s, "501 5.0.0 Authentication cancelled");
    } else {
        int n = b64_decode(b64, buf, sizeof buf - 1);
        if (n < 0) {
            reply(s, "501 5.5.2 Bad base64 in AUTH response");
        } else {
            buf[n] = '\0';
            auth_decoded(s, step, buf, (size_t)n);
        }
    }
    /* Decoded credentials go at once, on every path (b64_decode may have
     * written part of a response it then refused). The user name of LOGIN
     * is kept only while its password is awaited: clients put passwords in
     * the wrong field. */
    wipe(buf, sizeof buf);
    if (s->auth_mech != AUTH_LOGIN_PASS)
        wipe(s->auth_user, sizeof s->auth_user);
}

static void cmd_auth(struct smtpd *s, const char *arg)
{
    if (s->cfg.auth_required == SMTPD_AUTH_OFF) {
        reply(s, "503 5.5.1 AUTH not available");
        return;
    }
    if (!s->tls_active) {
        reply(s, "538 5.7.11 Encryption required for requested authentication mechanism");
        return;
    }
    if (s->state != SMTPD_S_READY) {
        reply(s, s->state == SMTPD_S_INIT ? "503 5.5.1 Send EHLO first"
                                          : "503 5.5.1 AUTH not allowed during a mail transaction");
        return;
    }
    if (s->authenticated) {
        reply(s, "503 5.5.1 Already authenticated");
        return;
    }
    const char *initial = strchr(arg, ' ');
    size_t mech_len = initial ? (size_t)(initial - arg) : strlen(arg);
    if (initial)
        initial++;
    if (mech_len == 5 && strncasecmp(arg, "PLAIN", 5) == 0) {
        s->auth_mech = AUTH_PLAIN;
    } else if (mech_len == 5 && strncasecmp(arg, "LOGIN", 5) == 0) {
        s->auth_mech = AUTH_LOGIN_USER;
    } else {
        reply(s, "504 5.5.4 Unrecognized authentication mechanism");
        return;
    }
    smtpd_set_state(s, SMTPD_S_AUTH);
    if (initial && strcmp(initial, "=") != 0) {
        auth_response(s, initial);
        return;
    }
    reply(s, s->auth_mech == AUTH_PLAIN ? "334 " : "334 VXNlcm5hbWU6"); /* "Username:" */
}

/* --- dispatch --- */

static const struct {
    const char *verb;
    void (*run)(struct smtpd *s, const char *arg);
} commands[] = {
    {"MAIL", cmd_mail}, {"RCPT", cmd_rcpt}, {"DATA", cmd_data}, {"RSET", cmd_rset},
    {"NOOP", cmd_noop}, {"QUIT", cmd_quit}, {"VRFY", cmd_vrfy}, {"HELP", cmd_help},
    {"STARTTLS", cmd_starttls}, {"AUTH", cmd_auth},
};

static void run_line(struct smtpd *s, char *line)
{
    if (s->state == SMTPD_S_AUTH) {
        auth_response(s, line);
        return;
    }
    char *sp = strchr(line, ' ');
    const char *arg = "";
    if (sp) {
        *sp = '\0';
        arg = sp + 1;
    }
    if (strcasecmp(line, "EHLO") == 0 || strcasecmp(line, "HELO") == 0) {
        cmd_helo(s, arg, toupper((unsigned char)line[0]) == 'E');
        return;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcasecmp(line, commands[i].verb) == 0) {
            commands[i].run(s, arg);
            return;
        }
    reply(s, "500 5.5.2 Command unrecognized");
}

static void end_command_line(struct smtpd *s)
{
    s->lines++;
    s->line[s->line_len] = '\0';
    /* fix: a NUL line used to leave SMTPD_S_AUTH in place, so after its 500
     * (which ends the exchange for the client) the next command was taken
     * as an AUTH response; both refusals now end the exchange. */
    int nul = !s->line_too_long && memchr(s->line, '\0', s->line_len) != NULL;
    if ((s->line_too_long || nul) && s->state == SMTPD_S_AUTH) {
        s->auth_mech = 0;
        wipe(s->auth_user, sizeof s->auth_user);
        smtpd_set_state(s, SMTPD_S_READY);
    }
    if (s->line_too_long) {
        reply(s, "500 5.5.2 Line too long");
    } else if (nul) {
        reply(s, "500 5.5.2 NUL in command line");
    } else {
        run_line(s, s->line);
    }
    wipe(s->line, s->line_len); /* AUTH responses carry secrets */
    s->line_len = 0;
    s->line_too_long = 0;
}

static void bare_line_end(struct smtpd *s)
{
    reply(s, "500 5.5.2 Bare CR or LF is not allowed; closing");
    close_session(s);
}

/* --- DATA --- */

static void flush_data(struct smtpd *s)
{
    if (s->d_out_len && !s->d_too_big && !s->d_too_long && !s->d_store_failed) {
        int rc = s->ops->msg_write(s->ctx, s->d_out, s->d_out_len);
        if (rc != 0) {
            s->d_store_failed = 1; /* read on to the end, store nothing more */
            s->d_no_room = rc == SMTPD_STORE_NO_ROOM;
        }
    }
    s->d_out_len = 0;
}

static void put_data(struct smtpd *s, const uint8_t *p, size_t n)
{
    s->d_size += n;
    if (s->d_size > s->cfg.max_size)
        s->d_too_big = 1;
    if (s->d_too_big || s->d_too_long || s->d_store_failed)
        return; /* keep reading to the end, store nothing */
    while (n) {
        size_t room = sizeof s->d_out - s->d_out_len;
        size_t take = n < room ? n : room;
        memcpy(s->d_out + s->d_out_len, p, take);
        s->d_out_len += take;
        p += take;
        n -= take;
        if (s->d_out_len == sizeof s->d_out)
            flush_data(s);
    }
}

static void end_of_data(struct smtpd *s)
{
    flush_data(s);
    if (s->d_too_long || s->d_too_big || s->d_store_failed) {
        s->ops->msg_abort(s->ctx);
        reset_transaction(s);
        smtpd_set_state(s, SMTPD_S_READY);
        if (s->d_too_long)
            reply(s, "500 5.5.2 Message line longer than %d octets; message not stored",
                  SMTPD_TEXT_LINE_MAX);
        else if (s->d_too_big)
            reply(s, "552 5.3.4 Message size exceeds fixed limit of %llu bytes",
                  (unsigned long long)s->cfg.max_size);
        else if (s->d_no_room)
            reply(s, "452 4.3.1 Insufficient system storage");
        else
            reply(s, "451 4.3.0 Cannot store the message now; try again later");
        return;
    }
    smtpd_set_state(s, SMTPD_S_WAIT_COMMIT);
    s->ops->msg_end(s->ctx);
}

void smtpd_msg_done(struct smtpd *s, int ok, const char *queue_id)
{
    if (s->state != SMTPD_S_WAIT_COMMIT)
        return;
    reset_transaction(s);
    smtpd_set_state(s, SMTPD_S_READY);
    if (ok)
        reply(s, "250 2.0.0 Ok: queued as %s", queue_id);
    else
        reply(s, "451 4.3.0 Cannot store the message now; try again later");
}

static void smuggling(struct smtpd *s)
{
    s->ops->msg_abort(s->ctx);
    reply(s, "554 5.6.0 Bare CR, bare LF or NUL in message data; message refused, closing");
    close_session(s);
}

/* Consume message data; returns bytes used (stops at the end of data). */
static size_t feed_data(struct smtpd *s, const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        /* Fast path: a run of ordinary bytes in the middle of a line. */
        if (!s->d_cr && !s->d_line_start) {
            size_t j = i;
            while (j < n && p[j] != '\r' && p[j] != '\n' && p[j] != 0)
                j++;
            if (j > i) {
                s->d_line_len += j - i;
                if (s->d_line_len > SMTPD_TEXT_LINE_MAX - 2)
                    s->d_too_long = 1;
                put_data(s, p + i, j - i);
                i = j;
                continue;
            }
        }
        uint8_t b = p[i++];
        if (s->d_cr) {
            s->d_cr = 0;
            if (b != '\n') {
                smuggling(s);
                return i;
            }
            if (s->d_dot && s->d_line_len == 1) { /* the line was "." alone */
                end_of_data(s);
                return i;
            }
            put_data(s, (const uint8_t *)"\r\n", 2);
            s->d_line_start = 1;
            s->d_dot = 0;
            s->d_line_len = 0;
            continue;
        }
        if (b == '\r') {
            s->d_cr = 1;
            continue;
        }
        if (b == '\n' || b == 0) {
            smuggling(s);
            return i;
        }
        s->d_line_len++;
        if (s->d_line_len > SMTPD_TEXT_LINE_MAX - 2)
            s->d_too_long = 1;
        if (s->d_line_start) {
            s->d_line_start = 0;
            if (b == '.') {
                s->d_dot = 1; /* stuffing dot or terminator: not data */
                continue;
            }
        }
        put_data(s, &b, 1);
    }
    return n;
}

size_t smtpd_feed(struct smtpd *s, const uint8_t *data, size_t len)
{
    size_t i = 0;
    while (i < len) {
        switch (s->state) {
        case SMTPD_S_WAIT_TLS:
            return len; /* plaintext after STARTTLS is discarded unread */
        case SMTPD_S_WAIT_COMMIT:
        case SMTPD_S_CLOSED:
            return i;
        case SMTPD_S_DATA:
            i += feed_data(s, data + i, len - i);
            continue;
        default:
            break;
        }
        /* A new command line is taken only when its replies will fit; the
         * reply at the end of the data that DATA opens fits too (one line,
         * and nothing else is answered in between). */
        if (s->line_len == 0 && !s->line_cr && !s->line_too_long && !reply_room_ok(s))
            return i;
        uint8_t b = data[i++];
        if (s->line_cr) {
            s->line_cr = 0;
            if (b != '\n') {
                bare_line_end(s);
                return i;
            }
            end_command_line(s);
            continue;
        }
        if (b == '\r') {
            s->line_cr = 1;
        } else if (b == '\n') {
            bare_line_end(s);
            return i;
        } else if (s->line_len < SMTPD_LINE_MAX - 2) {
            s->line[s->line_len++] = (char)b;
        } else {
            s->line_too_long = 1; /* the rest of the line is dropped, not kept */
        }
    }
    return i;
}

/* --- refused connections --- */

void smtpd_reject_init(struct smtpd_reject *r, const char *greeting,
                       void (*reply_fn)(void *ctx, const char *text, size_t len), void *ctx)
{
    memset(r, 0, sizeof *r);
    reply_fn(ctx, greeting, strlen(greeting));
}

int smtpd_reject_feed(struct smtpd_reject *r, const uint8_t *data, size_t len,
                      void (*reply_fn)(void *ctx, const char *text, size_t len), void *ctx)
{
    static const char quit[] = "QUIT";
    static const char no[] = "503 5.7.1 Access denied; only QUIT is accepted\r\n";
    static const char bye[] = "221 2.0.0 Bye\r\n";
    for (size_t i = 0; i < len && !r->closed; i++) {
        uint8_t b = data[i];
        if (b == '\n') {
            int is_quit = !r->in_line && r->matched == 4;
            reply_fn(ctx, is_quit ? bye : no, is_quit ? sizeof bye - 1 : sizeof no - 1);
            r->closed = (uint8_t)is_quit;
            r->matched = r->in_line = 0;
        } else if (b == '\r') {
            continue;
        } else if (!r->in_line && r->matched < 4 && toupper(b) == quit[r->matched]) {
            r->matched++;
        } else {
            r->in_line = 1;
        }
    }
    return r->closed;
}
