/* outbound.c — connections to smart hosts; see outbound.h.
 *
 * Layers, per connection: lwIP altcp_tcp carries bytes; once the server
 * says 220 to STARTTLS, a crypto_tls session (crypto.h) sits between TCP
 * and the engine (our own sans-I/O TLS: lwIP 2.1.3's altcp_tls cannot start
 * TLS on a connection that is already open); the smtpc engine speaks SMTP. */
#include "outbound.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "clocksync.h"
#include "config.h"
#include "crypto.h"
#include "db.h"
#include "db_queue.h"
#include "hal_clock.h"
#include "hoststats.h"
#include "log.h"
#include "lwip/altcp.h"
#include "lwip/altcp_tcp.h"
#include "lwip/dns.h"
#include "lwip/ip_addr.h"
#include "lwip/pbuf.h"
#include "tcputil.h"
#include "smtpc.h"
#include "spool.h"

#define CONNECT_TIMEOUT_MS 20000
#define POLL_INTERVAL 2       /* altcp poll ticks (500 ms): deadline checks */
#define TX_MAX 4096           /* plaintext composed by the engine, not yet sent */
/* A connection with no next job stays open this long for mail committed
 * meanwhile (the queue runner hands it over at once), then says QUIT:
 * reconnecting per message cost a handshake each, and under TLS far more.
 * A few seconds bridges the gaps of a burst without holding the smart
 * host's slot for long. */
#define IDLE_MS 5000
/* No new job on a connection older than this (as Postfix's
 * smtp_connection_reuse_time_limit): a changed DNS answer or host list
 * takes effect, and no session lives forever. */
#define REUSE_MS 300000u
/* Nor more messages than Exchange takes on one connection by default
 * (MaxMessagesPerConnection 20): past it, it answers 4xx and the mail
 * would wait a retry instead of going on a fresh connection. */
#define JOBS_PER_CONNECTION 20

struct conn {
    int used;
    int gen; /* changes whenever the slot is reused */
    struct altcp_pcb *pcb;
    struct smtpc smtpc;
    int smtpc_live; /* smtpc_init ran and done() was not called yet */
    struct crypto_tls *tls;
    int handshaking;
    struct outbound_route route;
    int route_idx;
    int no_starttls; /* plaintext retry after a failed handshake (policy may) */
    struct outbound_job *job;
    int job_sent;     /* smtpc_send accepted the job */
    int job_reported; /* ops->done called for the job */
    int messages;       /* jobs finished on this connection */
    int idle;           /* between jobs, waiting for one until `deadline` */
    uint32_t opened_ms; /* when the slot was taken: the reuse limit */
    const struct outbound_ops *ops;
    void *ctx;
    int dns_pending;
    int cancelled;
    uint32_t deadline;
    char last_error[OUTBOUND_REPLY_MAX];
    char password[CFG_PASSWORD_MAX + 1];
    char tls_desc[128];
    uint8_t tx[TX_MAX];
    size_t tx_len;
    struct pbuf *pending; /* ciphertext the TLS session could not take yet */
    int32_t body_seq;
    size_t chunk_len, chunk_off;
    int body_eof;
    uint8_t chunk[SPOOL_CHUNK];
};

/* Every connection must be able to get a TLS session, or a busy appliance
 * would mistake "no session free" for a failed handshake. */
_Static_assert(CRYPTO_TLS_MAX >= OUTBOUND_CONNECTIONS, "a TLS session per connection");

static struct conn conns[OUTBOUND_CONNECTIONS];
static uint64_t downgrades;
static uint64_t creds_unreadable;
static struct hoststats host_stats; /* per smart host, for `stats` */
static char helo_name[256];

/* lwIP frees a pcb inside altcp_abort(); a recv/sent/poll/connected
 * callback whose own pcb was aborted must return ERR_ABRT, or lwIP goes
 * on using the freed pcb. Callbacks note their pcb here, close_pcb()
 * notes an abort of it, and the callback returns cb_result(). */
static struct altcp_pcb *cb_pcb;
static int cb_aborted;

static void cb_enter(struct altcp_pcb *pcb)
{
    cb_pcb = pcb;
    cb_aborted = 0;
}

static err_t cb_result(void)
{
    err_t e = cb_aborted ? ERR_ABRT : ERR_OK;
    cb_pcb = NULL;
    cb_aborted = 0;
    return e;
}

static void conn_next_host(struct conn *c);
static void conn_finish(struct conn *c);
static void flush(struct conn *c);

static void event(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void event(struct conn *c, const char *fmt, ...)
{
    if (!c->ops->event)
        return;
    char line[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    c->ops->event(c->ctx, line);
}

static const struct db_smarthost *host(const struct conn *c) { return &c->route.hosts[c->route_idx]; }

static void count(const struct db_smarthost *h, enum hoststats_counter which, uint64_t n)
{
    hoststats_add(&host_stats, h->id, h->host, (int)h->port, which, n);
}

void outbound_init(const char *hostname)
{
    snprintf(helo_name, sizeof helo_name, "%s", hostname);
    memset(conns, 0, sizeof conns);
    hoststats_init(&host_stats);
    outbound_reload_ca();
}

void outbound_reload_ca(void)
{
    static uint8_t pem[CRYPTO_TLS_CA_MAX_LEN];
    size_t len = sizeof pem;
    char err[160];
    if (!cfg_db() || db_tls_ca_get(cfg_db(), pem, &len) != DB_OK)
        len = 0;
    if (crypto_tls_ca_set(pem, len, err, sizeof err) < 0)
        log_err("out", "trusted CAs not loaded: %s", err);
}

uint64_t outbound_downgrades(void) { return downgrades; }
uint64_t outbound_creds_unreadable(void) { return creds_unreadable; }

int outbound_host_stats(struct hoststats_entry *out, int max, uint64_t *dropped)
{
    if (dropped)
        *dropped = host_stats.dropped;
    return hoststats_list(&host_stats, out, max);
}

int outbound_count(int64_t smarthost_id)
{
    int n = 0;
    for (int i = 0; i < OUTBOUND_CONNECTIONS; i++)
        if (conns[i].used && (conns[i].pcb || conns[i].dns_pending) &&
            host(&conns[i])->id == smarthost_id)
            n++;
    return n;
}

/* --- job results --- */

/* Give every recipient that has no result yet a temporary failure. */
static void fail_open_rcpts(struct conn *c, const char *why)
{
    struct outbound_job *j = c->job;
    for (int i = 0; i < j->rcpt_count; i++)
        if (j->results[i].code == 0 && !j->results[i].text[0]) {
            j->results[i].permanent = 0;
            snprintf(j->results[i].text, sizeof j->results[i].text, "%s", why);
        }
}

static void report_job(struct conn *c)
{
    if (!c->job || c->job_reported)
        return;
    struct outbound_job *j = c->job;
    /* When every host failed, route_idx is one past the last: name the
     * last one tried (hosts[count] is an empty row, or past the array). */
    const struct db_smarthost *h =
        c->route_idx < c->route.count ? host(c) : &c->route.hosts[c->route.count - 1];
    snprintf(j->smarthost, sizeof j->smarthost, "%s:%d", h->host, (int)h->port);
    snprintf(j->tls, sizeof j->tls, "%s", c->tls_desc[0] ? c->tls_desc : "plaintext");
    /* Per recipient, on the host the job is reported on (when every host
     * failed, the last one tried): what that host answered. */
    uint64_t n[HOSTSTATS_COUNTERS] = {0};
    for (int i = 0; i < j->rcpt_count; i++) {
        const struct outbound_result *r = &j->results[i];
        n[r->code >= 200 && r->code < 300 ? HOSTSTATS_DELIVERED
          : r->permanent                  ? HOSTSTATS_REFUSED
                                          : HOSTSTATS_DEFERRED]++;
    }
    for (int k = HOSTSTATS_DELIVERED; k <= HOSTSTATS_REFUSED; k++)
        if (n[k])
            count(h, (enum hoststats_counter)k, n[k]);
    c->job_reported = 1;
    c->job = NULL;
    c->ops->done(c->ctx, j);
}

/* --- TCP --- */

static void close_pcb(struct conn *c)
{
    tcputil_drop(c->pcb, c->pending);
    c->pending = NULL;
    if (c->pcb) {
        struct altcp_pcb *pcb = c->pcb;
        c->pcb = NULL;
        tcputil_detach(pcb);
        if (altcp_close(pcb) != ERR_OK) {
            altcp_abort(pcb);
            if (pcb == cb_pcb)
                cb_aborted = 1;
        }
    }
    if (c->tls) {
        crypto_tls_free(c->tls);
        c->tls = NULL;
    }
    c->handshaking = 0;
    crypto_wipe(c->tx, c->tx_len);
    c->tx_len = 0;
}

/* The first n bytes of tx went out (to TCP, which copied them, or into
 * the TLS session). tx may hold an AUTH line: wipe what is no longer
 * needed, including the copy a move leaves behind. */
static void tx_consumed(struct conn *c, size_t n)
{
    memmove(c->tx, c->tx + n, c->tx_len - n);
    c->tx_len -= n;
    crypto_wipe(c->tx + c->tx_len, n);
}

/* Move composed plaintext through TLS (when on) into TCP. */
static void flush(struct conn *c)
{
    if (!c->pcb)
        return;
    if (c->tls && !c->handshaking && c->tx_len) {
        int n = crypto_tls_write(c->tls, c->tx, c->tx_len);
        if (n > 0)
            tx_consumed(c, (size_t)n);
    }
    const uint8_t *out;
    size_t len;
    if (c->tls)
        len = crypto_tls_output(c->tls, &out);
    else {
        out = c->tx;
        len = c->tx_len;
    }
    size_t room = altcp_sndbuf(c->pcb);
    if (len > room)
        len = room;
    if (len > 0xFFFF)
        len = 0xFFFF;
    if (len && altcp_write(c->pcb, out, (u16_t)len, TCP_WRITE_FLAG_COPY) == ERR_OK) {
        if (c->tls)
            crypto_tls_output_consumed(c->tls, len);
        else
            tx_consumed(c, len);
    }
    altcp_output(c->pcb);
}

/* Let the engine write what it has, as far as our buffer allows. */
static void pump(struct conn *c)
{
    if (c->smtpc_live && !c->handshaking)
        smtpc_pump(&c->smtpc, sizeof c->tx - c->tx_len);
    flush(c);
}

/* --- engine callbacks --- */

static void op_write(void *ctx, const uint8_t *data, size_t len)
{
    struct conn *c = ctx;
    memcpy(c->tx + c->tx_len, data, len); /* pump() gave no more room than this */
    c->tx_len += len;
}

static void op_starttls(void *ctx)
{
    struct conn *c = ctx;
    char err[160];
    int verify = strcmp(host(c)->tls, "verify") == 0;
    flush(c);
    c->tls = crypto_tls_client(host(c)->host, verify, err, sizeof err);
    if (!c->tls) {
        /* A local shortage, not the server's fault: no downgrade, no
         * failing mark; the mail waits for the next attempt. */
        event(c, "!! TLS: cannot start here: %s", err);
        smtpc_abort(&c->smtpc, "4.3.0 no TLS session available on the relay now");
        return;
    }
    c->handshaking = 1;
    crypto_tls_handshake(c->tls); /* produces the ClientHello */
    flush(c);
}

static int op_body_read(void *ctx, uint8_t *buf, size_t cap)
{
    struct conn *c = ctx;
    struct outbound_job *j = c->job;
    if (j->mem_body) {
        size_t left = j->mem_len - c->chunk_off;
        size_t n = left < cap ? left : cap;
        memcpy(buf, j->mem_body + c->chunk_off, n);
        c->chunk_off += n;
        return (int)n;
    }
    if (c->chunk_off == c->chunk_len && !c->body_eof) {
        int rc = db_msg_chunk_read(cfg_db(), j->msg_id, c->body_seq, c->chunk, sizeof c->chunk,
                                   &c->chunk_len);
        if (rc == DB_ENOTFOUND) {
            c->body_eof = 1;
            c->chunk_len = 0;
        } else if (rc != DB_OK) {
            return -1;
        }
        c->body_seq++;
        c->chunk_off = 0;
    }
    size_t left = c->chunk_len - c->chunk_off;
    size_t n = left < cap ? left : cap;
    memcpy(buf, c->chunk + c->chunk_off, n);
    c->chunk_off += n;
    return (int)n;
}

static void op_rcpt_result(void *ctx, int index, const struct smtpc_result *r)
{
    struct conn *c = ctx;
    if (!c->job || index < 0 || index >= c->job->rcpt_count)
        return;
    struct outbound_result *o = &c->job->results[index];
    o->code = r->code;
    o->permanent = r->status == SMTPC_PERM;
    snprintf(o->text, sizeof o->text, "%s", r->text[0] ? r->text : "(no reply text)");
    if (r->status == SMTPC_OK && !r->code)
        o->code = 250;
}

static void op_msg_done(void *ctx)
{
    struct conn *c = ctx;
    c->messages++;
    report_job(c);
}

static void start_job(struct conn *c)
{
    struct outbound_job *j = c->job;
    struct smtpc_msg m = {j->sender, j->rcpts, j->rcpt_count, j->size};
    c->body_seq = 0;
    c->chunk_len = c->chunk_off = 0;
    c->body_eof = 0;
    for (int i = 0; i < j->rcpt_count; i++)
        memset(&j->results[i], 0, sizeof j->results[i]);
    if (smtpc_send(&c->smtpc, &m) != 0) {
        fail_open_rcpts(c, "4.3.0 message could not be sent (bad envelope)");
        report_job(c);
        smtpc_quit(&c->smtpc); /* do not sit on the host's connection slot */
        return;
    }
    c->job_sent = 1;
}

static void op_ready(void *ctx)
{
    struct conn *c = ctx;
    if (c->job && !c->job_sent) {
        start_job(c);
        return;
    }
    /* The last job is done: another for the same host, or wait idle for
     * one (outbound_start hands it over), or goodbye. */
    int reusable = !c->cancelled && c->ops->next && c->messages < JOBS_PER_CONNECTION &&
                   hal_clock_ms() - c->opened_ms < REUSE_MS;
    struct outbound_job *next = reusable ? c->ops->next(c->ctx, host(c)) : NULL;
    if (next) {
        c->job = next;
        c->job_sent = c->job_reported = 0;
        start_job(c);
    } else if (reusable) {
        c->idle = 1;
        c->deadline = hal_clock_ms() + IDLE_MS;
    } else {
        smtpc_quit(&c->smtpc);
    }
}

static void op_event(void *ctx, enum smtpc_event kind, const char *text)
{
    struct conn *c = ctx;
    /* Deadlines run per command, not per read: a server dripping a byte at
     * a time cannot hold the connection (and its job) forever. */
    if (kind == SMTPC_EV_SENT)
        c->deadline = hal_clock_ms() + (uint32_t)cfg_setting_int("smtp-command-timeout") * 1000u;
    static const char *const arrows[] = {"->", "<-", "==", "!!"};
    event(c, "%s %s", arrows[kind <= SMTPC_EV_ERROR ? kind : SMTPC_EV_STEP], text);
}


static void op_done(void *ctx, enum smtpc_error err, const struct smtpc_result *why)
{
    struct conn *c = ctx;
    c->smtpc_live = 0;
    if (why->code)
        snprintf(c->last_error, sizeof c->last_error, "%d %.240s", why->code, why->text);
    else
        snprintf(c->last_error, sizeof c->last_error, "%.250s",
                 why->text[0] ? why->text : smtpc_error_name(err));
    flush(c);
    close_pcb(c);
    if (!c->job || c->cancelled) {
        conn_finish(c);
        return;
    }
    switch (err) {
    case SMTPC_E_TLS_FAILED:
        /* Policy may: the vendor's behaviour is plaintext when TLS fails.
         * Reconnect at once to the same host without STARTTLS. */
        log_warn("out", "%s: TLS failed; delivering without TLS (downgrade)", host(c)->host);
        if (cfg_db()) {
            db_smarthost_tls_result(cfg_db(), host(c)->id, 1);
        }
        downgrades++;
        count(host(c), HOSTSTATS_DOWNGRADES, 1);
        c->no_starttls = 1;
        if (!c->job_sent) {
            conn_next_host(c); /* route_idx unchanged: same host again */
            return;
        }
        break;
    case SMTPC_E_GREETING:
    case SMTPC_E_HELLO:
    case SMTPC_E_TLS_POLICY:
    case SMTPC_E_CLOSED:
    case SMTPC_E_PROTOCOL:
    case SMTPC_E_SHUTDOWN:
        if (!c->job_sent) {
            c->route_idx++;
            c->no_starttls = 0;
            conn_next_host(c);
            return;
        }
        break;
    default:
        break;
    }
    fail_open_rcpts(c, c->last_error);
    report_job(c);
    conn_finish(c);
}

static const struct smtpc_ops smtpc_ops = {
    .write = op_write,
    .starttls = op_starttls,
    .body_read = op_body_read,
    .rcpt_result = op_rcpt_result,
    .msg_done = op_msg_done,
    .ready = op_ready,
    .done = op_done,
    .event = op_event,
};

/* --- receiving --- */

static void tls_progress(struct conn *c)
{
    if (c->handshaking) {
        int r = crypto_tls_handshake(c->tls);
        flush(c);
        if (r == 1)
            return;
        c->handshaking = 0;
        struct crypto_tls_info info;
        crypto_tls_info(c->tls, &info);
        if (r == 0) {
            snprintf(c->tls_desc, sizeof c->tls_desc, "%s %s", info.version, info.cipher);
            count(host(c), HOSTSTATS_TLS, 1);
            if (host(c)->tls_failing && cfg_db()) {
                db_smarthost_tls_result(cfg_db(), host(c)->id, 0); /* TLS works again */
            }
            event(c, "== TLS %s, cipher %s, certificate %s, verify: %s", info.version,
                  info.cipher, info.peer_subject[0] ? info.peer_subject : "(none)", info.verify);
            smtpc_tls_done(&c->smtpc, 1);
        } else {
            event(c, "!! TLS handshake failed: %s", crypto_tls_error(c->tls));
            smtpc_tls_done(&c->smtpc, 0);
            return;
        }
    }
    uint8_t buf[1024];
    int n = 0;
    while (c->smtpc_live && c->tls && (n = crypto_tls_read(c->tls, buf, sizeof buf)) > 0)
        smtpc_feed(&c->smtpc, buf, (size_t)n);
    if (n < 0 && c->smtpc_live) {
        /* close_notify or a broken record: the session is over. */
        event(c, "!! TLS: %s", crypto_tls_error(c->tls));
        smtpc_closed(&c->smtpc);
    }
}

/* Hand queued ciphertext to the TLS session as far as it has room. */
static void feed_tls(struct conn *c)
{
    while (c->pending && c->tls) {
        struct pbuf *p = c->pending;
        if (crypto_tls_input_space(c->tls) < p->len)
            break;
        crypto_tls_feed(c->tls, p->payload, p->len);
        if (c->pcb)
            altcp_recved(c->pcb, p->len);
        c->pending = tcputil_pop(p);
        tls_progress(c);
    }
}

static void on_recv_do(void *arg, struct altcp_pcb *pcb, struct pbuf *p, err_t err)
{
    struct conn *c = arg;
    if (!c) {
        tcputil_drop(pcb, p);
        return;
    }
    if (!p || err != ERR_OK) {
        if (p)
            pbuf_free(p);
        if (c->smtpc_live)
            smtpc_closed(&c->smtpc);
        return;
    }
    if (c->tls) {
        if (c->pending)
            pbuf_cat(c->pending, p);
        else
            c->pending = p;
        feed_tls(c);
    } else {
        /* Acknowledge first: the engine may end the connection while it
         * reads, and closing with unacknowledged data would send RST. */
        altcp_recved(pcb, p->tot_len);
        for (struct pbuf *q = p; q && c->smtpc_live; q = q->next) {
            smtpc_feed(&c->smtpc, q->payload, q->len);
            if (c->tls)
                break; /* STARTTLS began: the engine dropped the rest */
        }
        pbuf_free(p);
    }
    if (c->used && c->pcb == pcb)
        pump(c);
}

static err_t on_recv(void *arg, struct altcp_pcb *pcb, struct pbuf *p, err_t err)
{
    cb_enter(pcb);
    on_recv_do(arg, pcb, p, err);
    return cb_result();
}

static void on_sent_do(void *arg, struct altcp_pcb *pcb, u16_t len)
{
    (void)pcb;
    (void)len;
    struct conn *c = arg;
    if (c) {
        /* The peer is taking our data (a long body): that is progress. */
        c->deadline = hal_clock_ms() + (uint32_t)cfg_setting_int("smtp-command-timeout") * 1000u;
        pump(c);
    }
}

static err_t on_sent(void *arg, struct altcp_pcb *pcb, u16_t len)
{
    cb_enter(pcb);
    on_sent_do(arg, pcb, len);
    return cb_result();
}

static void on_err(void *arg, err_t err)
{
    struct conn *c = arg;
    if (!c)
        return;
    c->pcb = NULL; /* freed by lwIP */
    if (c->smtpc_live) {
        smtpc_closed(&c->smtpc);
        return;
    }
    /* The connection never opened: refused, reset or unreachable. */
    snprintf(c->last_error, sizeof c->last_error, "4.4.1 connection to %.200s:%d failed (%s)",
             host(c)->host, (int)host(c)->port,
             err == ERR_RST ? "reset" : err == ERR_ABRT ? "aborted" : "refused or unreachable");
    event(c, "!! %s", c->last_error);
    close_pcb(c);
    c->route_idx++;
    c->no_starttls = 0;
    conn_next_host(c);
}

static void on_poll_do(void *arg, struct altcp_pcb *pcb)
{
    (void)pcb;
    struct conn *c = arg;
    if (!c)
        return;
    if ((int32_t)(hal_clock_ms() - c->deadline) > 0) {
        if (c->idle) { /* nothing came for it: goodbye */
            c->idle = 0;
            smtpc_quit(&c->smtpc);
            pump(c); /* the QUIT now, not at the next poll */
        } else if (c->smtpc_live) {
            smtpc_abort(&c->smtpc, "4.4.2 timeout waiting for the smart host");
        } else {
            snprintf(c->last_error, sizeof c->last_error, "4.4.1 connection to %s:%d timed out",
                     host(c)->host, (int)host(c)->port);
            event(c, "!! %s", c->last_error);
            close_pcb(c);
            c->route_idx++;
            conn_next_host(c);
        }
        return;
    }
    pump(c);
}

static err_t on_poll(void *arg, struct altcp_pcb *pcb)
{
    cb_enter(pcb);
    on_poll_do(arg, pcb);
    return cb_result();
}

/* Why the mail waits when a row's credentials do not open. */
static void creds_unreadable_note(struct conn *c)
{
    const struct db_smarthost *h = host(c);
    creds_unreadable++;
    snprintf(c->last_error, sizeof c->last_error,
             "4.7.0 stored credentials for smart host %lld cannot be read; set them again with "
             "smarthost set %lld user ...", (long long)h->id, (long long)h->id);
    event(c, "!! %s", c->last_error);
    log_warn("out", "%s", c->last_error);
}

/* A row with a user whose stored password does not open (database from
 * another unit, crypto not started, a damaged value) must not be tried
 * without AUTH: the server would refuse the mail and it would bounce for
 * a fault of ours. Skip it (and defer, when no other host takes it). */
static int credentials_usable(struct conn *c)
{
    const struct db_smarthost *h = host(c);
    if (!h->username[0])
        return 1;
    int n = cfg_smarthost_password(h, c->password, sizeof c->password);
    crypto_wipe(c->password, sizeof c->password);
    if (n >= 0)
        return 1;
    creds_unreadable_note(c);
    return 0;
}

/* `tls verify` checks the certificate's dates, which a clock not yet
 * synchronized cannot: skip the row like one whose credentials do not
 * open (its mail waits, or another host of the route takes it). */
static int clock_usable(struct conn *c)
{
    if (strcmp(host(c)->tls, "verify") != 0 || clock_valid())
        return 1;
    snprintf(c->last_error, sizeof c->last_error,
             "4.7.0 the clock is not synchronized (NTP); certificates cannot be checked");
    event(c, "!! %s", c->last_error);
    return 0;
}

static void on_connected_do(void *arg, struct altcp_pcb *pcb, err_t err)
{
    (void)pcb;
    struct conn *c = arg;
    if (!c || err != ERR_OK)
        return;
    const struct db_smarthost *h = host(c);
    count(h, HOSTSTATS_CONNECTIONS, 1);
    event(c, "== connected to %s port %d", h->host, (int)h->port);
    static const struct {
        const char *name;
        enum smtpc_tls_policy policy;
    } policies[] = {{"may", SMTPC_TLS_MAY}, {"encrypt", SMTPC_TLS_ENCRYPT},
                    {"verify", SMTPC_TLS_VERIFY}, {"none", SMTPC_TLS_NONE}};
    struct smtpc_config cfg = {helo_name, SMTPC_TLS_MAY, c->no_starttls, NULL, NULL,
                               h->auth_plaintext};
    for (size_t i = 0; i < sizeof policies / sizeof policies[0]; i++)
        if (strcmp(h->tls, policies[i].name) == 0)
            cfg.tls = policies[i].policy;
    c->password[0] = '\0';
    if (h->username[0] && cfg_smarthost_password(h, c->password, sizeof c->password) < 0) {
        /* It opened before connecting (credentials_usable), from this same
         * copy of the row; only the crypto module failing in between gets
         * here. Never go on without the AUTH the row asks for. */
        creds_unreadable_note(c);
        close_pcb(c);
        c->route_idx++;
        conn_next_host(c);
        return;
    }
    if (h->username[0]) {
        cfg.user = h->username;
        cfg.password = c->password;
    }
    c->deadline = hal_clock_ms() + (uint32_t)cfg_setting_int("smtp-command-timeout") * 1000u;
    c->tls_desc[0] = '\0';
    if (smtpc_init(&c->smtpc, &cfg, &smtpc_ops, c) != 0) {
        crypto_wipe(c->password, sizeof c->password);
        snprintf(c->last_error, sizeof c->last_error, "4.3.5 smart host configuration unusable");
        close_pcb(c);
        fail_open_rcpts(c, c->last_error);
        report_job(c);
        conn_finish(c);
        return;
    }
    crypto_wipe(c->password, sizeof c->password);
    c->smtpc_live = 1;
    pump(c);
}

static err_t on_connected(void *arg, struct altcp_pcb *pcb, err_t err)
{
    cb_enter(pcb);
    on_connected_do(arg, pcb, err);
    return cb_result();
}

static void connect_addr(struct conn *c, const ip_addr_t *addr)
{
    const struct db_smarthost *h = host(c);
    char text[48];
    ipaddr_ntoa_r(addr, text, sizeof text);
    event(c, "== %s is %s; connecting to port %d", h->host, text, (int)h->port);
    c->pcb = altcp_tcp_new_ip_type(IPADDR_TYPE_ANY);
    if (!c->pcb) {
        snprintf(c->last_error, sizeof c->last_error, "4.3.0 out of connections");
        c->route_idx = c->route.count; /* nothing else will work either */
        conn_next_host(c);
        return;
    }
    /* Nagle held the last, partial segment of every message until the
     * peer's ACK, which a Linux peer delays up to 40 ms: 50 ms per message
     * on a reused connection. Every write here is a whole command or a
     * body chunk, so nothing is gained by holding small segments back. */
    altcp_nagle_disable(c->pcb);
    altcp_arg(c->pcb, c);
    altcp_recv(c->pcb, on_recv);
    altcp_sent(c->pcb, on_sent);
    altcp_err(c->pcb, on_err);
    altcp_poll(c->pcb, on_poll, POLL_INTERVAL);
    c->deadline = hal_clock_ms() + CONNECT_TIMEOUT_MS;
    if (altcp_connect(c->pcb, addr, (u16_t)h->port, on_connected) != ERR_OK) {
        snprintf(c->last_error, sizeof c->last_error, "4.4.1 cannot connect to %s", h->host);
        close_pcb(c);
        c->route_idx++;
        conn_next_host(c);
    }
}

struct dns_req {
    struct conn *c;
    int gen;
};
static struct dns_req dns_reqs[OUTBOUND_CONNECTIONS];

static void on_dns(const char *name, const ip_addr_t *addr, void *arg)
{
    struct dns_req *req = arg;
    struct conn *c = req->c;
    if (!c || !c->used || c->gen != req->gen || !c->dns_pending)
        return; /* the connection went away meanwhile */
    c->dns_pending = 0;
    if (c->cancelled) {
        conn_finish(c);
        return;
    }
    if (!addr) {
        snprintf(c->last_error, sizeof c->last_error, "4.4.3 cannot resolve %s", name);
        event(c, "!! DNS: no address for %s", name);
        c->route_idx++;
        conn_next_host(c);
        return;
    }
    connect_addr(c, addr);
}

/* Try route_idx (the same host again after a TLS downgrade); when every
 * host failed, the job is deferred with the last error. */
static void conn_next_host(struct conn *c)
{
    if (c->cancelled || !c->job) {
        conn_finish(c);
        return;
    }
    if (c->route_idx >= c->route.count) {
        char why[OUTBOUND_REPLY_MAX];
        snprintf(why, sizeof why, "%s", c->last_error[0] ? c->last_error
                                                         : "4.4.1 no smart host answered");
        fail_open_rcpts(c, why);
        report_job(c);
        conn_finish(c);
        return;
    }
    c->job_sent = 0;
    const struct db_smarthost *h = host(c);
    if (!credentials_usable(c) || !clock_usable(c)) {
        c->route_idx++;
        conn_next_host(c);
        return;
    }
    ip_addr_t addr;
    if (ipaddr_aton(h->host, &addr)) {
        connect_addr(c, &addr);
        return;
    }
    if (strchr(h->host, ':')) {
        snprintf(c->last_error, sizeof c->last_error,
                 "4.4.1 IPv6 smart hosts are not reachable on this network yet");
        c->route_idx++;
        conn_next_host(c);
        return;
    }
    event(c, "== resolving %s", h->host);
    struct dns_req *req = &dns_reqs[c - conns];
    req->c = c;
    req->gen = c->gen;
    c->dns_pending = 1;
    err_t e = dns_gethostbyname(h->host, &addr, on_dns, req);
    if (e == ERR_OK) {
        c->dns_pending = 0;
        connect_addr(c, &addr);
    } else if (e != ERR_INPROGRESS) {
        c->dns_pending = 0;
        snprintf(c->last_error, sizeof c->last_error, "4.4.3 cannot resolve %s", h->host);
        c->route_idx++;
        conn_next_host(c);
    }
}

static void conn_finish(struct conn *c)
{
    if (c->dns_pending) {
        c->cancelled = 1; /* the slot is freed when the DNS answer comes */
        return;
    }
    close_pcb(c);
    if (c->job && !c->job_reported) {
        fail_open_rcpts(c, c->last_error[0] ? c->last_error : "4.3.0 delivery cancelled");
        report_job(c);
    }
    c->used = 0;
    if (c->ops->closed)
        c->ops->closed(c->ctx);
}

/* The same destination under the same policy and credentials: a row
 * deleted and added again may get the same id, and an edited row keeps
 * it, so the id alone does not say the session still fits. */
static int same_host(const struct db_smarthost *a, const struct db_smarthost *b)
{
    return a->id == b->id && a->port == b->port && a->auth_plaintext == b->auth_plaintext &&
           a->sealed_len == b->sealed_len && strcmp(a->host, b->host) == 0 &&
           strcmp(a->tls, b->tls) == 0 && strcmp(a->username, b->username) == 0 &&
           memcmp(a->sealed, b->sealed, a->sealed_len) == 0;
}

int outbound_route_first(const struct outbound_route *route, const struct db_smarthost *h)
{
    for (int k = 0; k < route->count && route->hosts[k].priority == route->hosts[0].priority; k++)
        if (same_host(&route->hosts[k], h))
            return 1;
    return 0;
}

/* An idle connection of the same user to one of the route's first-choice
 * hosts (the lowest priority; equal ones share the load anyway). */
static struct conn *idle_conn(const struct outbound_route *route, const struct outbound_ops *ops,
                              void *ctx)
{
    for (int i = 0; i < OUTBOUND_CONNECTIONS; i++) {
        struct conn *c = &conns[i];
        if (c->used && c->idle && !c->cancelled && c->ops == ops && c->ctx == ctx &&
            outbound_route_first(route, host(c)))
            return c;
    }
    return NULL;
}

static int free_slot(void)
{
    for (int i = 0; i < OUTBOUND_CONNECTIONS; i++)
        if (!conns[i].used)
            return 1;
    return 0;
}

int outbound_can_start(const struct outbound_route *route, const struct outbound_ops *ops,
                       void *ctx, int per_host)
{
    if (route->count == 0)
        return 1; /* the caller reports it has no host */
    return idle_conn(route, ops, ctx) ||
           (outbound_count(route->hosts[0].id) < per_host && free_slot());
}

int outbound_start(const struct outbound_route *route, struct outbound_job *job,
                   const struct outbound_ops *ops, void *ctx)
{
    struct conn *idle = idle_conn(route, ops, ctx);
    if (idle) {
        idle->idle = 0;
        idle->job = job;
        idle->job_sent = idle->job_reported = 0;
        idle->deadline =
            hal_clock_ms() + (uint32_t)cfg_setting_int("smtp-command-timeout") * 1000u;
        start_job(idle);
        pump(idle);
        return 0;
    }
    for (int i = 0; i < OUTBOUND_CONNECTIONS; i++) {
        struct conn *c = &conns[i];
        if (c->used)
            continue;
        int gen = c->gen + 1;
        memset(c, 0, offsetof(struct conn, tx));
        c->gen = gen;
        c->used = 1;
        c->opened_ms = hal_clock_ms();
        c->route = *route;
        c->job = job;
        c->ops = ops;
        c->ctx = ctx;
        for (int r = 0; r < job->rcpt_count; r++)
            memset(&job->results[r], 0, sizeof job->results[r]);
        conn_next_host(c);
        return 0;
    }
    return -1;
}

void outbound_cancel(void *ctx)
{
    for (int i = 0; i < OUTBOUND_CONNECTIONS; i++) {
        struct conn *c = &conns[i];
        if (!c->used || c->ctx != ctx || c->cancelled)
            continue;
        c->cancelled = 1;
        snprintf(c->last_error, sizeof c->last_error, "4.3.0 cancelled");
        if (c->smtpc_live)
            smtpc_abort(&c->smtpc, "4.3.0 cancelled");
        else
            conn_finish(c);
    }
}
