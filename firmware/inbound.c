/* inbound.c — SMTP listener glue; see inbound.h. */
#include "inbound.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "clockfmt.h"
#include "config.h"
#include "crypto.h"
#include "db.h"
#include "db_config.h"
#include "hal_clock.h"
#include "log.h"
#include "lwip/altcp.h"
#include "lwip/altcp_tcp.h"
#include "lwip/altcp_tls.h"
#include "lwip/ip_addr.h"
#include "lwip/pbuf.h"
#include "tcputil.h"
#include "smtpd.h"
#include "spool.h"
#include "tlsid.h"

#define OUT_MAX 8192       /* queued reply bytes per session */
#define FEED_SLICE 1024    /* input bytes per engine call */
#define POLL_INTERVAL 2    /* altcp poll ticks (500 ms each): deadline checks */

struct session {
    /* small state first: cleared whole for every new connection */
    int used;
    struct altcp_pcb *pcb;
    const char *rcpts[SMTPD_RCPT_MAX]; /* of the message being stored (engine's arena) */
    int rcpt_count;
    uint8_t family;
    uint8_t addr[16];
    char client[64];   /* "[10.0.2.2]:54321" */
    char peer_ip[52];
    size_t out_len;
    struct pbuf *pending; /* received, not yet consumed by the engine */
    uint32_t deadline;
    int start_tls;
    int closing;
    int peer_closed; /* FIN received: finish what was sent, then close */
    int in_process; /* process() is on the stack: no re-entry */
    /* large parts, set up by their own init functions */
    struct smtpd smtpd;
    struct spool_msg msg;
    uint8_t out[OUT_MAX];
};

struct reject {
    int used;
    struct altcp_pcb *pcb;
    uint32_t deadline;
    struct smtpd_reject r;
};

#define REJECT_DEADLINE_MS 30000 /* a refused client gets this long to say QUIT */

static struct session sessions[INBOUND_SESSIONS_MAX];
static struct reject rejects[INBOUND_REJECTS_MAX];
static struct inbound_stats stats;
static int listening; /* port 25 bound (inbound_listening) */
static struct altcp_tls_config *tls_config;
static struct tlsid identity;
static char hostname[256];

static err_t process(struct session *s);

/* Deadlines are per command (and per message for DATA), never per read:
 * a client dripping a byte at a time cannot hold a session forever. */
static uint32_t command_deadline(void)
{
    return hal_clock_ms() + (uint32_t)cfg_setting_int("smtp-command-timeout") * 1000u;
}

static uint32_t data_deadline(void)
{
    return hal_clock_ms() + (uint32_t)cfg_setting_int("smtp-data-timeout") * 1000u;
}

/* --- output --- */

static size_t out_room(const struct session *s) { return sizeof s->out - s->out_len; }

static size_t op_reply_room(void *ctx) { return out_room(ctx); }

static void out_append(void *ctx, const char *text, size_t len)
{
    struct session *s = ctx;
    if (len > out_room(s)) {
        /* Cannot happen: the engine takes a command only with room for
         * its replies (op_reply_room). If it does, give up on the client. */
        log_warn("smtp", "%s: reply buffer full; closing", s->client);
        s->closing = 1;
        return;
    }
    memcpy(s->out + s->out_len, text, len);
    s->out_len += len;
}

static void flush(struct session *s)
{
    if (!s->pcb || !s->out_len)
        return;
    size_t room = altcp_sndbuf(s->pcb);
    size_t n = s->out_len < room ? s->out_len : room;
    if (n > 0xFFFF)
        n = 0xFFFF;
    if (n && altcp_write(s->pcb, s->out, (u16_t)n, TCP_WRITE_FLAG_COPY) == ERR_OK) {
        memmove(s->out, s->out + n, s->out_len - n);
        s->out_len -= n;
    }
    altcp_output(s->pcb);
}

/* --- session lifetime --- */

/* Received bytes may hold an AUTH line: none goes back to the pbuf pool
 * readable. */
static void wipe_chain(struct pbuf *p)
{
    for (struct pbuf *q = p; q; q = q->next)
        crypto_wipe(q->payload, q->len);
}

/* Called outside the engine (never from one of its callbacks), so its
 * memory, which may hold a partial AUTH line, can be wiped here. */
static void session_free(struct session *s)
{
    if (s->msg.id)
        spool_abort(&s->msg);
    wipe_chain(s->pending);
    if (s->pending)
        pbuf_free(s->pending);
    s->pending = NULL;
    crypto_wipe(&s->smtpd, sizeof s->smtpd);
    s->pcb = NULL;
    s->used = 0;
    stats.active--;
}

/* Close after the queued replies: lwIP sends them, then FIN. Returns
 * ERR_ABRT when the pcb had to be aborted (see tcputil_close). */
static err_t session_close(struct session *s)
{
    err_t err = ERR_OK;
    if (s->pcb) {
        /* Input we will never read must still be acknowledged: lwIP answers
         * a close with unread data by RST, which would drop our last reply. */
        wipe_chain(s->pending);
        tcputil_drop(s->pcb, s->pending);
        s->pending = NULL;
        flush(s);
        struct altcp_pcb *pcb = s->pcb;
        tcputil_detach(pcb);
        err = tcputil_close(pcb);
    }
    session_free(s);
    return err;
}

/* --- engine callbacks --- */

static int op_domain_allowed(void *ctx, const char *domain)
{
    (void)ctx;
    return cfg_domain_allowed(domain);
}

static int op_queue_has_room(void *ctx, uint64_t size)
{
    (void)ctx;
    return spool_has_room(size);
}

static int op_auth_check(void *ctx, const char *user, const char *password)
{
    struct session *s = ctx;
    int ok = cfg_inbound_check(user, password);
    /* The name only once it proved right: clients put passwords in the
     * wrong field. */
    if (ok > 0)
        log_info("smtp", "%s: AUTH as %s accepted", s->client, user);
    else if (ok < 0)
        log_err("smtp", "%s: AUTH not checked: the inbound account cannot be read", s->client);
    else
        log_info("smtp", "%s: failed AUTH", s->client);
    return ok;
}

static int op_msg_begin(void *ctx, const struct smtpd_envelope *env)
{
    struct session *s = ctx;
    int64_t now = hal_clock_wall();
    struct db_msg_new info = {now, env->sender, s->client, env->helo};
    if (spool_begin(&s->msg, &info) != 0)
        return SMTPD_STORE_FAILED;
    s->rcpt_count = env->rcpt_count;
    memcpy(s->rcpts, env->rcpts, sizeof s->rcpts[0] * (size_t)env->rcpt_count);
    /* RFC 5321 4.4 trace header, RFC 3848 protocol names. */
    char date[CLOCKFMT_RFC5322_LEN], hdr[1024];
    const char *proto = env->tls ? (env->authenticated ? "ESMTPSA" : "ESMTPS")
                                 : (env->authenticated ? "ESMTPA" : "ESMTP");
    int n;
    if (env->rcpt_count == 1)
        n = snprintf(hdr, sizeof hdr,
                     "Received: from %s (%s)\r\n\tby %s (Smart Host Relay) with %s id %lld\r\n"
                     "\tfor <%s>; %s\r\n",
                     env->helo, s->peer_ip, hostname, proto, (long long)s->msg.id, env->rcpts[0],
                     clockfmt_rfc5322(now, date));
    else
        n = snprintf(hdr, sizeof hdr,
                     "Received: from %s (%s)\r\n\tby %s (Smart Host Relay) with %s id %lld;\r\n"
                     "\t%s\r\n",
                     env->helo, s->peer_ip, hostname, proto, (long long)s->msg.id,
                     clockfmt_rfc5322(now, date));
    int rc = SPOOL_ERR;
    if (n > 0 && (size_t)n < sizeof hdr)
        rc = spool_write(&s->msg, (const uint8_t *)hdr, (size_t)n);
    if (rc != 0) {
        spool_abort(&s->msg);
        return rc == SPOOL_NO_ROOM ? SMTPD_STORE_NO_ROOM : SMTPD_STORE_FAILED;
    }
    s->deadline = data_deadline();
    return 0;
}

static int op_msg_write(void *ctx, const uint8_t *data, size_t len)
{
    struct session *s = ctx;
    int rc = spool_write(&s->msg, data, len);
    if (rc == 0)
        return 0;
    if (rc == SPOOL_NO_ROOM) {
        log_warn("smtp", "%s: queue full (%llu bytes queued, %llu arriving); message refused",
                 s->client, (unsigned long long)spool_queue_bytes(),
                 (unsigned long long)spool_inflight_bytes());
        /* Drop what was stored now, not at the final dot: the client may
         * take minutes to send the rest, and its bytes would hold room
         * other sessions can use. */
        spool_abort(&s->msg);
        return SMTPD_STORE_NO_ROOM;
    }
    return SMTPD_STORE_FAILED;
}

static void on_committed(void *ctx, int ok, int64_t id)
{
    struct session *s = ctx;
    char qid[24];
    snprintf(qid, sizeof qid, "%lld", (long long)id);
    if (ok) {
        stats.messages++;
        stats.bytes += s->msg.size;
        log_info("smtp", "%s: queued %s, %llu bytes, helo %s", s->client, qid,
                 (unsigned long long)s->msg.size, s->smtpd.helo);
    } else {
        stats.rejected_msgs++;
    }
    smtpd_msg_done(&s->smtpd, ok, qid);
    s->deadline = command_deadline();
    /* Commands pipelined after the data. Called from spool_flush(), not
     * from a callback of this pcb: an abort has nobody to be reported to. */
    (void)process(s);
}

static void op_msg_end(void *ctx)
{
    struct session *s = ctx;
    spool_finish(&s->msg, s->rcpts, s->rcpt_count, on_committed, s);
}

static void op_msg_abort(void *ctx)
{
    struct session *s = ctx;
    stats.rejected_msgs++;
    spool_abort(&s->msg);
}

static void op_starttls(void *ctx)
{
    struct session *s = ctx;
    s->start_tls = 1;
}

static void op_close(void *ctx)
{
    struct session *s = ctx;
    s->closing = 1;
}

static const struct smtpd_ops ops = {
    .reply = out_append,
    .domain_allowed = op_domain_allowed,
    .queue_has_room = op_queue_has_room,
    .auth_check = op_auth_check,
    .msg_begin = op_msg_begin,
    .msg_write = op_msg_write,
    .msg_end = op_msg_end,
    .msg_abort = op_msg_abort,
    .starttls = op_starttls,
    .close = op_close,
    .reply_room = op_reply_room,
};

/* --- TLS --- */

static err_t on_recv(void *arg, struct altcp_pcb *pcb, struct pbuf *p, err_t err);
static err_t on_sent(void *arg, struct altcp_pcb *pcb, u16_t len);
static void on_err(void *arg, err_t err);
static err_t on_poll(void *arg, struct altcp_pcb *pcb);

static void attach(struct session *s, struct altcp_pcb *pcb)
{
    s->pcb = pcb;
    altcp_arg(pcb, s);
    altcp_recv(pcb, on_recv);
    altcp_sent(pcb, on_sent);
    altcp_err(pcb, on_err);
    altcp_poll(pcb, on_poll, POLL_INTERVAL);
}

static err_t on_tls_ready(void *arg, struct altcp_pcb *pcb, err_t err)
{
    (void)pcb;
    struct session *s = arg;
    if (!s || err != ERR_OK)
        return ERR_OK;
    stats.tls_sessions++;
    smtpd_tls_started(&s->smtpd);
    s->deadline = command_deadline();
    return ERR_OK;
}

/* The 220 is queued on the plain connection; wrap it so every later byte
 * is TLS. The client speaks first (ClientHello). Returns ERR_ABRT when the
 * connection was aborted. */
static err_t start_tls(struct session *s)
{
    s->start_tls = 0;
    flush(s);
    if (s->out_len) {
        /* The 220 could not be handed to TCP (the client does not read):
         * it must not end up inside the TLS stream. */
        return session_close(s);
    }
    struct altcp_pcb *tls = altcp_tls_wrap(tls_config, s->pcb);
    if (!tls) {
        log_warn("smtp", "%s: cannot start TLS", s->client);
        return session_close(s);
    }
    attach(s, tls);
    /* altcp has no setter for the upper "connected" callback of a wrapped
     * passive connection; the TLS layer calls it when the handshake ends. */
    tls->connected = on_tls_ready;
    return ERR_OK;
}

/* --- input --- */

/* Feed pending input to the engine while it can take it; acknowledge what
 * it consumed, so TCP flow control holds back the rest. The engine takes a
 * command line only when the reply buffer has room for its replies; when
 * it stops for room, replies are flushed and feeding goes on if that made
 * room, else it resumes from on_sent once the client has read some.
 * Returns ERR_ABRT when the session's pcb was aborted: the lwIP callback
 * that called us must return it. */
static err_t process(struct session *s)
{
    if (s->in_process || !s->pcb)
        return ERR_OK;
    s->in_process = 1;
    while (s->pending && !smtpd_waiting(&s->smtpd) && !s->closing) {
        if (out_room(s) < SMTPD_REPLY_MAX) {
            flush(s);
            if (out_room(s) < SMTPD_REPLY_MAX)
                break; /* the client is not reading yet */
        }
        struct pbuf *p = s->pending;
        size_t n = p->len < FEED_SLICE ? p->len : FEED_SLICE;
        uint32_t lines = s->smtpd.lines;
        size_t used = smtpd_feed(&s->smtpd, p->payload, n);
        if (s->smtpd.lines != lines && s->smtpd.state != SMTPD_S_DATA)
            s->deadline = command_deadline();
        if (used == 0)
            break;
        /* Input may hold an AUTH line (also right after a refused message
         * in the same slice): do not hand it back to the pbuf pool
         * readable. Cheap next to storing the bytes. */
        crypto_wipe(p->payload, used);
        altcp_recved(s->pcb, (u16_t)used);
        if (used == p->len) {
            s->pending = tcputil_pop(p);
        } else {
            pbuf_remove_header(p, used);
        }
    }
    s->in_process = 0;
    if (s->start_tls) {
        /* Discard whatever plaintext followed STARTTLS in the same read. */
        tcputil_drop(s->pcb, s->pending);
        s->pending = NULL;
        return start_tls(s);
    }
    if (s->peer_closed && !s->pending && !smtpd_waiting(&s->smtpd))
        s->closing = 1; /* nothing more can come; a half-done message is dropped */
    if (s->closing)
        return session_close(s);
    flush(s);
    return ERR_OK;
}

static err_t on_recv(void *arg, struct altcp_pcb *pcb, struct pbuf *p, err_t err)
{
    struct session *s = arg;
    if (!s) {
        tcputil_drop(pcb, p);
        return ERR_OK;
    }
    if (!p || err != ERR_OK) {
        /* The client closed its side. What it sent before (a message and a
         * pipelined QUIT, say) is still answered; then the session ends. */
        if (p)
            pbuf_free(p);
        s->peer_closed = 1;
        return process(s);
    }
    if (s->smtpd.state == SMTPD_S_WAIT_TLS || s->closing) {
        tcputil_drop(pcb, p);
        return ERR_OK;
    }
    if (s->pending)
        pbuf_cat(s->pending, p);
    else
        s->pending = p;
    return process(s);
}

static err_t on_sent(void *arg, struct altcp_pcb *pcb, u16_t len)
{
    (void)pcb;
    (void)len;
    struct session *s = arg;
    if (!s)
        return ERR_OK;
    flush(s);
    return process(s); /* replies drained: input held back can go on */
}

static void on_err(void *arg, err_t err)
{
    struct session *s = arg;
    (void)err;
    if (!s)
        return;
    s->pcb = NULL; /* already freed by lwIP */
    session_free(s);
}

static err_t on_poll(void *arg, struct altcp_pcb *pcb)
{
    (void)pcb;
    struct session *s = arg;
    if (!s)
        return ERR_OK;
    /* Only a commit in progress stops the clock: a TLS handshake that never
     * comes, or a client that never talks, loses its session. */
    if ((int32_t)(hal_clock_ms() - s->deadline) > 0 && s->smtpd.state != SMTPD_S_WAIT_COMMIT) {
        stats.timeouts++;
        log_info("smtp", "%s: command deadline passed in state %s", s->client,
                 smtpd_state_name(s->smtpd.state));
        if (s->smtpd.state != SMTPD_S_WAIT_TLS) /* no plaintext reply inside TLS */
            smtpd_shutdown(&s->smtpd, "4.4.2 Timeout waiting for the client;");
        return session_close(s);
    }
    flush(s);
    return process(s);
}

/* --- refused connections --- */

static void reject_reply(void *ctx, const char *text, size_t len)
{
    struct reject *r = ctx;
    altcp_write(r->pcb, text, (u16_t)len, TCP_WRITE_FLAG_COPY);
    altcp_output(r->pcb);
}

/* Returns ERR_ABRT when the pcb had to be aborted (see tcputil_close). */
static err_t reject_end(struct reject *r)
{
    tcputil_detach(r->pcb);
    r->used = 0;
    return tcputil_close(r->pcb);
}

static err_t reject_recv(void *arg, struct altcp_pcb *pcb, struct pbuf *p, err_t err)
{
    struct reject *r = arg;
    if (!p || err != ERR_OK) {
        if (p)
            pbuf_free(p);
        return reject_end(r);
    }
    int done = 0;
    for (struct pbuf *q = p; q && !done; q = q->next)
        done = smtpd_reject_feed(&r->r, q->payload, q->len, reject_reply, r);
    altcp_recved(pcb, p->tot_len);
    pbuf_free(p);
    return done ? reject_end(r) : ERR_OK;
}

static err_t reject_poll(void *arg, struct altcp_pcb *pcb)
{
    (void)pcb;
    struct reject *r = arg;
    if (r && (int32_t)(hal_clock_ms() - r->deadline) > 0)
        return reject_end(r);
    return ERR_OK;
}

static void reject_err(void *arg, err_t err)
{
    (void)err;
    struct reject *r = arg;
    r->used = 0;
}

/* Say `text` and hang up, without keeping any state. Returns ERR_ABRT when
 * the pcb had to be aborted (the accept callback must then return it). */
static err_t refuse(struct altcp_pcb *pcb, const char *text)
{
    altcp_write(pcb, text, (u16_t)strlen(text), TCP_WRITE_FLAG_COPY);
    altcp_output(pcb);
    return tcputil_close(pcb);
}

static err_t deny(struct altcp_pcb *pcb, const char *peer)
{
    char greeting[400];
    snprintf(greeting, sizeof greeting,
             "554 5.7.1 %s Access denied: %s is not allowed to send mail here\r\n", hostname, peer);
    stats.denied++;
    for (int i = 0; i < INBOUND_REJECTS_MAX; i++) {
        struct reject *r = &rejects[i];
        if (r->used)
            continue;
        r->used = 1;
        r->pcb = pcb;
        altcp_arg(pcb, r);
        altcp_recv(pcb, reject_recv);
        altcp_err(pcb, reject_err);
        r->deadline = hal_clock_ms() + REJECT_DEADLINE_MS;
        altcp_poll(pcb, reject_poll, POLL_INTERVAL);
        smtpd_reject_init(&r->r, greeting, reject_reply, r);
        return ERR_OK;
    }
    return refuse(pcb, greeting);
}

/* --- accepting --- */

/* Whether mail needs AUTH, failing closed: read here rather than through
 * cfg_inbound_enabled(), which answers "no" for an unreadable setting as
 * well (a busy or damaged database, a malformed row), and that would let
 * mail in without AUTH. */
static int auth_gate(const struct session *s)
{
    struct db *db = cfg_db();
    if (!db) {
        log_warn("smtp", "%s: no storage to read inbound-auth; mail without AUTH gets 454",
                 s->client);
        return SMTPD_AUTH_UNKNOWN;
    }
    struct db_inbound_account acct;
    int rc = db_inbound_get(db, &acct);
    crypto_wipe(&acct, sizeof acct); /* only whether it is there matters here */
    if (rc == DB_OK)
        return SMTPD_AUTH_ON;
    if (rc == DB_ENOTFOUND)
        return SMTPD_AUTH_OFF;
    log_warn("smtp", "%s: cannot read inbound-auth; mail without AUTH gets 454: %s", s->client,
             db_errmsg(db));
    return SMTPD_AUTH_UNKNOWN;
}

static int same_source(const struct session *s, uint8_t family, const uint8_t *addr)
{
    return s->used && s->family == family && memcmp(s->addr, addr, family == 4 ? 4 : 16) == 0;
}

static err_t on_accept(void *arg, struct altcp_pcb *pcb, err_t err)
{
    (void)arg;
    if (err != ERR_OK || !pcb)
        return ERR_VAL;
    ip_addr_t ip;
    u16_t port;
    if (altcp_get_tcp_addrinfo(pcb, 0, &ip, &port) != ERR_OK) {
        altcp_abort(pcb);
        return ERR_ABRT;
    }
    uint8_t family = 4, addr[16] = {0};
    char peer[48];
    ipaddr_ntoa_r(&ip, peer, sizeof peer);
    memcpy(addr, &ip_2_ip4(&ip)->addr, 4); /* network order: a.b.c.d */
    if (!cfg_source_allowed(family, addr)) {
        log_info("smtp", "connection from %s:%u denied by the allowlist", peer, port);
        return deny(pcb, peer);
    }
    int from_source = 0;
    struct session *s = NULL;
    for (int i = 0; i < INBOUND_SESSIONS_MAX; i++) {
        if (same_source(&sessions[i], family, addr))
            from_source++;
        if (!sessions[i].used && !s)
            s = &sessions[i];
    }
    if (!s || from_source >= cfg_setting_int("smtp-connections-per-source")) {
        stats.refused_busy++;
        char text[400];
        snprintf(text, sizeof text, "421 4.7.0 %s Too many connections%s; try again later\r\n",
                 hostname, s ? " from your address" : "");
        return refuse(pcb, text);
    }
    memset(s, 0, offsetof(struct session, smtpd));
    s->msg.id = 0;
    s->used = 1;
    s->family = family;
    memcpy(s->addr, addr, sizeof addr);
    snprintf(s->peer_ip, sizeof s->peer_ip, "[%s]", peer);
    snprintf(s->client, sizeof s->client, "[%s]:%u", peer, port);
    s->deadline = command_deadline();
    /* Replies are written whole: sent at once, not held by Nagle for the
     * ACK of the one before (which the client may delay). */
    altcp_nagle_disable(pcb);
    stats.connections++;
    stats.active++;
    attach(s, pcb);
    struct smtpd_config cfg = {
        .hostname = hostname,
        .max_size = (uint64_t)cfg_setting_int("max-message-size"),
        .tls_available = tls_config != NULL,
        .auth_required = auth_gate(s),
    };
    smtpd_init(&s->smtpd, &cfg, &ops, s);
    flush(s);
    return ERR_OK;
}

int inbound_init(const char *name)
{
    snprintf(hostname, sizeof hostname, "%s", name);
    char err[160];
    if (tlsid_load(hostname, &identity, err, sizeof err) == 0) {
        tls_config = altcp_tls_create_config_server_privkey_cert(
            identity.key, identity.key_len, NULL, 0, identity.cert, identity.cert_len);
        /* mbedTLS holds its own parsed copy now: no plaintext key in RAM. */
        tlsid_forget_key(&identity);
        if (!tls_config)
            log_err("smtp", "TLS configuration failed; STARTTLS is not offered");
    } else {
        log_err("smtp", "no TLS identity (%s); STARTTLS is not offered", err);
    }
    struct altcp_pcb *pcb = altcp_tcp_new_ip_type(IPADDR_TYPE_ANY);
    if (!pcb || altcp_bind(pcb, IP_ANY_TYPE, INBOUND_PORT) != ERR_OK) {
        log_err("smtp", "cannot bind port %d", INBOUND_PORT);
        return -1;
    }
    struct altcp_pcb *listener = altcp_listen_with_backlog(pcb, 16);
    if (!listener) {
        log_err("smtp", "cannot listen on port %d", INBOUND_PORT);
        return -1;
    }
    altcp_accept(listener, on_accept);
    log_info("smtp", "listening on port %d", INBOUND_PORT);
    listening = 1;
    return 0;
}

int inbound_listening(void) { return listening; }

int inbound_poll(void) { return spool_flush(); }

void inbound_stats(struct inbound_stats *st) { *st = stats; }

const uint8_t *inbound_cert(size_t *len)
{
    *len = identity.cert_len;
    return identity.cert_len ? identity.cert : NULL;
}
