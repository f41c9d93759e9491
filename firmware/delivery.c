/* delivery.c — the queue runner; see delivery.h. */
#include "delivery.h"

#include <stdio.h>
#include <string.h>

#include "config.h"
#include "db.h"
#include "db_config.h"
#include "db_queue.h"
#include "dsn.h"
#include "hal_clock.h"
#include "hal_rng.h"
#include "log.h"
#include "outbound.h"
#include "retry.h"
#include "spool.h"

#define JOBS_MAX OUTBOUND_CONNECTIONS
#define SCAN_LIMIT 200         /* due recipients looked at per scan */
#define SCAN_INTERVAL_MS 1000  /* look at the queue this often even unkicked */
/* A recipient whose attempt a reset interrupted is tried again at boot; if
 * that fails without a reply (the peer may still hold the old connection,
 * a local artefact), it is tried again this soon, once, uncounted. */
#define RESET_RETRY_S 3

static struct db *store;
static char hostname[256];
static struct outbound_job jobs[JOBS_MAX];
static char job_domain[JOBS_MAX][256]; /* the domain each job in use is for */
static struct dlv_stats stats;
static uint32_t last_scan_ms;
static int kicked;

/* --- jobs --- */

static struct outbound_job *job_new(void)
{
    for (int i = 0; i < JOBS_MAX; i++)
        if (!jobs[i].in_use) {
            struct outbound_job *j = &jobs[i];
            memset(j, 0, offsetof(struct outbound_job, arena));
            j->arena_used = 0;
            j->in_use = 1;
            return j;
        }
    return NULL;
}

static int job_add_rcpt(struct outbound_job *j, int64_t id, const char *address)
{
    size_t n = strlen(address) + 1;
    if (j->rcpt_count >= OUTBOUND_JOB_RCPTS || j->arena_used + n > sizeof j->arena)
        return -1;
    memcpy(j->arena + j->arena_used, address, n);
    j->rcpt_ids[j->rcpt_count] = id;
    j->rcpts[j->rcpt_count] = j->arena + j->arena_used;
    j->rcpt_count++;
    j->arena_used += n;
    return 0;
}

/* A new job for the message of `d`, or NULL when every slot is busy. */
static struct outbound_job *job_for(const struct db_due *d)
{
    struct outbound_job *job = job_new();
    if (job) {
        snprintf(job_domain[job - jobs], sizeof job_domain[0], "%s", d->domain);
        job->msg_id = d->msg_id;
        snprintf(job->sender, sizeof job->sender, "%s", d->sender);
        job->size = d->size;
        job->received = d->received;
    }
    return job;
}

static void job_take(struct outbound_job *job, const struct db_due *d)
{
    int i = job->rcpt_count;
    if (job_add_rcpt(job, d->rcpt_id, d->address) == 0) {
        job->attempts[i] = d->attempts;
        job->recovered[i] = d->recovered;
    }
}

static int job_busy_for(int64_t rcpt_id)
{
    for (int i = 0; i < JOBS_MAX; i++)
        if (jobs[i].in_use)
            for (int r = 0; r < jobs[i].rcpt_count; r++)
                if (jobs[i].rcpt_ids[r] == rcpt_id)
                    return 1;
    return 0;
}

/* --- routes --- */

struct route_ctx {
    struct outbound_route *route;
};

static void add_host(void *ctx, const struct db_smarthost *sh)
{
    struct route_ctx *r = ctx;
    if (r->route->count < OUTBOUND_ROUTE_MAX)
        r->route->hosts[r->route->count++] = *sh;
}

static uint32_t rand_below(uint32_t n)
{
    uint32_t v = 0;
    if (n == 0 || hal_rng_fill(&v, sizeof v) != 0)
        return 0; /* no entropy: the configured order, still correct */
    return v % n;
}

/* The domain's smart hosts, lowest priority first; hosts of equal
 * priority in random order, which shares the load between them. */
static int load_route(const char *domain, struct outbound_route *route)
{
    route->count = 0;
    struct route_ctx ctx = {route};
    if (db_smarthost_list(store, domain, add_host, &ctx) != DB_OK)
        return -1;
    for (int i = 0; i < route->count;) {
        int j = i;
        while (j < route->count && route->hosts[j].priority == route->hosts[i].priority)
            j++;
        for (int k = j - 1; k > i; k--) { /* Fisher-Yates within [i, j) */
            int pick = i + (int)rand_below((uint32_t)(k - i + 1));
            struct db_smarthost tmp = route->hosts[k];
            route->hosts[k] = route->hosts[pick];
            route->hosts[pick] = tmp;
        }
        i = j;
    }
    return route->count;
}

/* --- outcomes --- */

static void enhanced_status(const struct outbound_result *r, char out[16])
{
    /* "550 5.1.1 ..." carries it; otherwise derive the class. */
    const char *t = r->text;
    if (t[0] >= '2' && t[0] <= '5' && t[1] == '.' && strchr(t, ' ')) {
        size_t n = (size_t)(strchr(t, ' ') - t);
        if (n < 16) {
            memcpy(out, t, n);
            out[n] = '\0';
            return;
        }
    }
    snprintf(out, 16, "%d.0.0", r->permanent ? 5 : 4);
}

/* The original headers for a DSN, read by on_done before the commit that
 * may delete the message: bounce() runs after it, and reading the chunks
 * there found nothing once every recipient was done (the DSN's headers
 * part came out empty). Headers longer than one chunk end at its last
 * whole line. */
static uint8_t dsn_headers[SPOOL_CHUNK];
static size_t dsn_headers_len;

static void keep_headers(int64_t msg_id)
{
    size_t len = 0;
    int last_lf = 0;
    dsn_headers_len = 0;
    if (db_msg_chunk_read(store, msg_id, 0, dsn_headers, sizeof dsn_headers, &len) != DB_OK)
        return;
    for (size_t i = 0; i < len; i++) {
        if (dsn_headers[i] == '\n') {
            dsn_headers_len = i + 1;
            if (last_lf)
                return; /* "\r\n\r\n": the blank line, kept */
            last_lf = 1;
        } else if (dsn_headers[i] != '\r') {
            last_lf = 0;
        }
    }
}

/* dsn_sink_fn into the spool. */
static int dsn_to_spool(void *ctx, const char *data, size_t len)
{
    return spool_write(ctx, (const uint8_t *)data, len) == 0 ? 0 : -1;
}

static void dsn_committed(void *ctx, int ok, int64_t id)
{
    (void)id;
    *(int *)ctx = ok;
}

/* Queue the report for the failed recipients (durably) and return 0; or
 * -1 when it cannot be queued, and then the caller must not record the
 * failures. Nothing to send (null sender, no bounce address) is 0. */
static int bounce(const struct outbound_job *job, const int *failed, int nfailed,
                  const char *message_id)
{
    if (!job->sender[0] || nfailed == 0)
        return 0; /* null senders never get a DSN (RFC 5321 4.5.5) */
    char to[DB_TEXT_MAX + 8], to_sender[DB_TEXT_MAX];
    if (cfg_setting_get("bounce-address", to, sizeof to) != 0 ||
        cfg_setting_get("bounce-to-sender", to_sender, sizeof to_sender) != 0) {
        /* Unreadable is not "no bounce address": recording the failures
         * now would lose their report. */
        stats.report_failures++;
        log_err("dlv", "cannot read where reports go; the failures of message %lld stay queued",
                (long long)job->msg_id);
        return -1;
    }
    if (strcmp(to_sender, "on") == 0)
        snprintf(to, sizeof to, "%s", job->sender); /* the explicit opt-in */
    if (!to[0])
        return 0; /* no bounce address: the failure is only recorded */
    /* RFC 3464 Remote-MTA names a host, not "host:port". */
    char remote_mta[300];
    snprintf(remote_mta, sizeof remote_mta, "%s", job->smarthost);
    char *colon = strrchr(remote_mta, ':');
    if (colon && !strchr(remote_mta, ']') && colon == strchr(remote_mta, ':'))
        *colon = '\0';
    static struct dsn_info info;
    static char status[DSN_RCPT_MAX][16];
    static char diag[DSN_RCPT_MAX][OUTBOUND_REPLY_MAX + 16];
    memset(&info, 0, sizeof info);
    /* RFC 2046: at most 70 characters. */
    char boundary[72];
    snprintf(boundary, sizeof boundary, "%lld.%lld/%.30s", (long long)job->msg_id,
             (long long)hal_clock_wall(), hostname);
    info.reporting_mta = hostname;
    info.to = to;
    info.orig_sender = job->sender;
    info.orig_message_id = message_id;
    info.queue_id = job->msg_id;
    info.arrival = job->received;
    info.now = hal_clock_wall();
    info.boundary = boundary;
    for (int i = 0; i < nfailed && i < DSN_RCPT_MAX; i++) {
        const struct outbound_result *r = &job->results[failed[i]];
        enhanced_status(r, status[i]);
        if (r->code)
            snprintf(diag[i], sizeof diag[i], "%d %s", r->code, r->text);
        else
            snprintf(diag[i], sizeof diag[i], "%s", r->text);
        info.rcpts[i] = (struct dsn_rcpt){job->rcpts[failed[i]], status[i], diag[i],
                                          r->code ? remote_mta : ""};
        info.rcpt_count++;
    }
    /* Streamed into the queue chunk by chunk: any number of recipients
     * with replies of any length make one complete report. */
    static struct spool_msg msg;
    struct db_msg_new m = {info.now, "", "[local]", hostname};
    static const char *rcpt[1];
    rcpt[0] = to;
    int ok = 0;
    if (spool_begin(&msg, &m) != 0 || spool_over_cap_ok(&msg) != 0 ||
        dsn_write_report(&info, dsn_to_spool, &msg) != 0 ||
        spool_write(&msg, dsn_headers, dsn_headers_len) != 0 || /* text/rfc822-headers */
        dsn_write_trailer(&info, dsn_to_spool, &msg) != 0) {
        spool_abort(&msg);
    } else {
        spool_finish(&msg, rcpt, 1, dsn_committed, &ok);
        spool_flush(); /* now, durably: the failures are recorded only after it */
    }
    if (!ok) {
        stats.report_failures++;
        log_err("dlv", "cannot queue a DSN for message %lld; its failed recipients stay queued",
                (long long)job->msg_id);
        return -1;
    }
    stats.bounces++;
    log_info("dlv", "DSN for message %lld queued to %s", (long long)job->msg_id, to);
    return 0;
}

static int record(struct outbound_job *job, int i, const char *state, const char *outcome,
                  int32_t attempts, int64_t next, const char *reply, int64_t now,
                  const char *message_id)
{
    int rc = db_rcpt_update(store, job->rcpt_ids[i], state, attempts, next, reply, now);
    if (rc != DB_OK || !outcome)
        return rc;
    struct db_history h;
    memset(&h, 0, sizeof h);
    h.queue_id = job->msg_id;
    snprintf(h.message_id, sizeof h.message_id, "%s", message_id);
    snprintf(h.sender, sizeof h.sender, "%s", job->sender);
    snprintf(h.recipient, sizeof h.recipient, "%s", job->rcpts[i]);
    snprintf(h.outcome, sizeof h.outcome, "%s", outcome);
    h.attempts = attempts;
    snprintf(h.smarthost, sizeof h.smarthost, "%s", job->smarthost);
    snprintf(h.tls, sizeof h.tls, "%s", job->tls);
    snprintf(h.reply, sizeof h.reply, "%s", reply);
    h.received = job->received;
    h.finished = now;
    return db_history_add(store, &h);
}

enum outcome { DELIVERED, FAILED, DEFERRED };

/* Record what happened to every recipient of a finished job: delivered,
 * failed (after its report is queued) or deferred (next attempt by the
 * backoff; failed with 5.4.7 once the queue lifetime is over); delete the
 * message when nobody is left. Frees the job. */
static void finish_job(struct outbound_job *job)
{
    static char replies[OUTBOUND_JOB_RCPTS][OUTBOUND_REPLY_MAX + 64];
    int outcome[OUTBOUND_JOB_RCPTS];
    int32_t attempts[OUTBOUND_JOB_RCPTS];
    int64_t next[OUTBOUND_JOB_RCPTS];
    int64_t now = hal_clock_wall();
    int64_t initial = cfg_setting_int("retry-initial"), max = cfg_setting_int("retry-max");
    int64_t lifetime = cfg_setting_int("queue-lifetime");
    struct db_msg m;
    char message_id[256] = "";
    if (db_msg_get(store, job->msg_id, &m) == DB_OK)
        snprintf(message_id, sizeof message_id, "%s", m.message_id);

    /* Decide every outcome first. */
    int failed[OUTBOUND_JOB_RCPTS], nfailed = 0;
    for (int i = 0; i < job->rcpt_count; i++) {
        struct outbound_result *r = &job->results[i];
        char *reply = replies[i];
        if (r->code)
            snprintf(reply, sizeof replies[i], "%d %s", r->code, r->text);
        else
            snprintf(reply, sizeof replies[i], "%s", r->text);
        attempts[i] = job->attempts[i] + 1;
        next[i] = now + retry_delay(initial, max, attempts[i]);
        if (r->code >= 200 && r->code < 300) {
            outcome[i] = DELIVERED;
        } else if (r->permanent) {
            outcome[i] = FAILED;
        } else if (retry_expired(job->received, lifetime, now)) {
            char expired[OUTBOUND_REPLY_MAX];
            snprintf(expired, sizeof expired, "5.4.7 queue lifetime expired; last error: %.180s",
                     reply);
            snprintf(r->text, sizeof r->text, "%s", expired);
            snprintf(reply, sizeof replies[i], "%s", expired);
            r->permanent = 1;
            r->code = 0;
            outcome[i] = FAILED;
        } else {
            outcome[i] = DEFERRED;
            if (job->recovered[i] && r->code == 0) {
                /* The first try after a reset found no answer: likely the
                 * old connection still open on the other side, our
                 * artefact. Soon again, and it does not count. */
                attempts[i] = job->attempts[i];
                next[i] = now + RESET_RETRY_S;
            }
        }
        if (outcome[i] == FAILED)
            failed[nfailed++] = i;
    }
    /* The report is queued before the failures are recorded: a reset in
     * between retries the recipients and may report twice, but a failure
     * is never recorded without its report. When it cannot be queued, the
     * failures are not recorded at all: they wait and are tried again. */
    if (nfailed) {
        keep_headers(job->msg_id);
        if (bounce(job, failed, nfailed, message_id) != 0) {
            for (int k = 0; k < nfailed; k++) {
                int i = failed[k];
                char was[OUTBOUND_REPLY_MAX + 64];
                snprintf(was, sizeof was, "%s", replies[i]);
                snprintf(replies[i], sizeof replies[i],
                         "4.3.0 failure report could not be queued; trying again: %.200s", was);
                outcome[i] = DEFERRED;
            }
        }
    }

    /* Without an fsync (as Postfix removes a delivered queue file): a power
     * cut may forget the newest outcomes, and that mail is then delivered
     * again — a duplicate, never a loss. The next durable commit (the next
     * 250 to DATA, any configuration change) covers these. Failures are
     * recorded only after their report was queued durably (bounce()). */
    int rc = db_begin_staging(store);
    for (int i = 0; i < job->rcpt_count && rc == DB_OK; i++) {
        if (outcome[i] == DELIVERED) {
            rc = record(job, i, "delivered", "delivered", attempts[i], 0, replies[i], now,
                        message_id);
            stats.delivered++;
        } else if (outcome[i] == FAILED) {
            rc = record(job, i, "failed", "failed", attempts[i], 0, replies[i], now, message_id);
            stats.failed++;
        } else {
            rc = record(job, i, "deferred", NULL, attempts[i], next[i], replies[i], now, NULL);
            stats.deferred++;
        }
    }
    int removed = 0;
    if (rc == DB_OK && db_msg_pending(store, job->msg_id) == 0) {
        rc = db_msg_delete(store, job->msg_id);
        removed = rc == DB_OK;
    }
    if (rc == DB_OK)
        rc = db_commit(store);
    if (rc == DB_OK && removed)
        spool_forget(job->size);
    if (rc != DB_OK) {
        log_err("dlv", "cannot record delivery of message %lld: %s", (long long)job->msg_id,
                db_errmsg(store));
        db_rollback(store);
        /* Do not leave them 'delivering' (invisible until a reboot): back
         * to the queue, so the next attempt, or an operator, sees them. */
        for (int i = 0; i < job->rcpt_count; i++)
            db_rcpt_update(store, job->rcpt_ids[i], "deferred", job->attempts[i],
                           now + retry_delay(initial, max, 1), replies[i], now);
    }
    job->in_use = 0;
}

static void on_done(void *ctx, struct outbound_job *job)
{
    (void)ctx;
    finish_job(job);
    stats.in_flight--;
    dlv_kick();
}

/* --- scanning --- */

/* Recipients due now, grouped into jobs of one message and one domain;
 * collected first, started after the query (no writes inside a read).
 * Domains whose first smart host has no connection to spare are skipped
 * (their connections take the rows as they finish), so a backlog for one
 * domain costs a scan nothing but reading past it. */
struct scan {
    struct outbound_job *jobs[JOBS_MAX];
    char domains[JOBS_MAX][256];
    int count;
    int per_domain;
    int64_t now;
    char checked[JOBS_MAX][256]; /* domains whose capacity this scan looked up */
    uint8_t open[JOBS_MAX];      /* ... and whether a job could start */
    int nchecked;
};

static struct outbound_job *on_next(void *ctx, const struct db_smarthost *host);

static void on_closed(void *ctx)
{
    (void)ctx;
    dlv_kick(); /* a slot of the host's limit is free */
}

static const struct outbound_ops ops = {
    .done = on_done,
    .event = NULL,
    .next = on_next,
    .closed = on_closed,
};

/* The domain has no smart host (deleted meanwhile, or a bounce address
 * outside every domain): a temporary failure like any other, so the mail
 * ages, is retried with the backoff and fails with 5.4.7 at the queue
 * lifetime, instead of waiting forever. */
/* Finish a job that was never given to a connection: every recipient
 * gets the temporary failure `why` (no reply, no smart host, no TLS). */
static void finish_untried(struct outbound_job *job, const char *why)
{
    job->smarthost[0] = '\0';
    job->tls[0] = '\0';
    for (int i = 0; i < job->rcpt_count; i++) {
        memset(&job->results[i], 0, sizeof job->results[i]);
        snprintf(job->results[i].text, sizeof job->results[i].text, "%s", why);
    }
    finish_job(job);
}

static void no_route(struct outbound_job *job, const char *domain)
{
    char why[OUTBOUND_REPLY_MAX];
    snprintf(why, sizeof why, "4.4.0 no smart host for %.100s (smarthost add %.100s ...)", domain,
             domain);
    finish_untried(job, why);
}

/* The job's recipients are being delivered: a reset from here on puts them
 * back in the queue at boot. Frees the job when that cannot be recorded. */
static int mark_delivering(struct outbound_job *job, int64_t now)
{
    int rc = db_begin_staging(store); /* a reset requeues them anyway */
    for (int i = 0; i < job->rcpt_count && rc == DB_OK; i++)
        rc = db_rcpt_update(store, job->rcpt_ids[i], "delivering", job->attempts[i], 0, "", now);
    if (rc == DB_OK)
        rc = db_commit(store);
    if (rc != DB_OK) {
        db_rollback(store);
        job->in_use = 0;
        return -1;
    }
    return 0;
}

/* A job whose attempt a reset interrupted, for a message past the queue
 * lifetime: not tried again (if the attempt itself crashed the relay, it
 * would at every boot), failed with 5.4.7 by finish_job. */
static int expired_after_reset(struct outbound_job *job, int64_t now)
{
    int recovered = 0;
    for (int i = 0; i < job->rcpt_count; i++)
        recovered |= job->recovered[i];
    if (!recovered || !retry_expired(job->received, cfg_setting_int("queue-lifetime"), now))
        return 0;
    finish_untried(job, DB_RCPT_RESET_REPLY);
    return 1;
}

static void launch(struct outbound_job *job, const char *domain, int64_t now)
{
    static struct outbound_route route;
    if (expired_after_reset(job, now))
        return;
    if (load_route(domain, &route) <= 0) {
        no_route(job, domain);
        return;
    }
    /* Lower priority is tried first; a busy first choice waits rather than
     * sending mail to a host the administrator ranked lower. The rows stay
     * due, untouched: a connection to that host takes them when it
     * finishes its message (on_next). */
    if (!outbound_can_start(&route, &ops, NULL, (int)cfg_setting_int("smarthost-connections"))) {
        job->in_use = 0;
        return;
    }
    if (mark_delivering(job, now) != 0)
        return;
    if (outbound_start(&route, job, &ops, NULL) != 0) {
        /* No free connection: back to the queue for the next scan. */
        for (int i = 0; i < job->rcpt_count; i++)
            db_rcpt_update(store, job->rcpt_ids[i], "queued", job->attempts[i], 0, "", now);
        job->in_use = 0;
        return;
    }
    stats.in_flight++;
}

/* Whether a job for `domain` could start now (no route counts as yes:
 * launch reports it). Looked up once per domain per scan. */
static int domain_open(struct scan *sc, const char *domain)
{
    for (int i = 0; i < sc->nchecked; i++)
        if (strcmp(sc->checked[i], domain) == 0)
            return sc->open[i];
    static struct outbound_route route;
    int open = load_route(domain, &route) <= 0 ||
               outbound_can_start(&route, &ops, NULL, sc->per_domain);
    if (sc->nchecked < JOBS_MAX) {
        snprintf(sc->checked[sc->nchecked], sizeof sc->checked[0], "%s", domain);
        sc->open[sc->nchecked++] = (uint8_t)open;
    }
    return open;
}

static void on_due(void *ctx, const struct db_due *d)
{
    struct scan *sc = ctx;
    if (job_busy_for(d->rcpt_id) || !domain_open(sc, d->domain))
        return;
    struct outbound_job *job = sc->count ? sc->jobs[sc->count - 1] : NULL;
    if (!job || job->msg_id != d->msg_id || strcmp(sc->domains[sc->count - 1], d->domain) != 0) {
        /* At most smarthost-connections new jobs per domain per scan: one
         * domain whose hosts are busy cannot take every slot from the rest. */
        int same = 0;
        for (int k = 0; k < sc->count; k++)
            same += strcmp(sc->domains[k], d->domain) == 0;
        if (same >= sc->per_domain)
            return;
        if (sc->count == JOBS_MAX || !(job = job_for(d)))
            return; /* every job slot busy: the rest waits for the next scan */
        snprintf(sc->domains[sc->count], sizeof sc->domains[0], "%s", d->domain);
        sc->jobs[sc->count++] = job;
    }
    job_take(job, d);
}

/* --- connection reuse --- */

struct reuse {
    const char *domain;
    struct outbound_job *job;
};

static void on_due_for_domain(void *ctx, const struct db_due *d)
{
    struct reuse *r = ctx;
    if (strcmp(d->domain, r->domain) != 0 || job_busy_for(d->rcpt_id))
        return;
    if (r->job && r->job->msg_id != d->msg_id)
        return; /* one message per job */
    if (!r->job && !(r->job = job_for(d)))
        return;
    job_take(r->job, d);
}

/* A connection to `host` finished a message: give it the next one due for
 * the host's domain, so one TCP/TLS session carries several messages. */
static struct outbound_job *on_next(void *ctx, const struct db_smarthost *host)
{
    (void)ctx;
    /* Only while the host is still a first choice for its domain, as the
     * administrator left it: after `smarthost del` or a change, the next
     * message goes by the new route on a new connection. */
    static struct outbound_route route;
    if (load_route(host->domain, &route) <= 0 || !outbound_route_first(&route, host))
        return NULL;
    static struct reuse r;
    r.domain = host->domain;
    r.job = NULL;
    int64_t now = hal_clock_wall();
    db_due_list(store, now, host->domain, NULL, OUTBOUND_JOB_RCPTS, on_due_for_domain, &r);
    struct outbound_job *job = r.job;
    if (!job)
        return NULL;
    if (mark_delivering(job, now) != 0)
        return NULL;
    stats.in_flight++;
    return job;
}

int dlv_init(struct db *db, const char *name)
{
    store = db;
    snprintf(hostname, sizeof hostname, "%s", name);
    memset(jobs, 0, sizeof jobs);
    memset(&stats, 0, sizeof stats); /* counters are since boot */
    kicked = 1;
    if (!db)
        return -1;
    int64_t n = db_rcpt_reset_delivering(db);
    if (n > 0)
        log_warn("dlv", "%lld recipient(s) were being delivered at the reset; trying again",
                 (long long)n);
    return n < 0 ? -1 : 0;
}

void dlv_kick(void) { kicked = 1; }

void dlv_clock_stepped(int64_t delta)
{
    for (int i = 0; i < JOBS_MAX; i++)
        if (jobs[i].in_use)
            jobs[i].received += delta;
}

void dlv_poll(void)
{
    if (!store)
        return;
    uint32_t now_ms = hal_clock_ms();
    if (!kicked && now_ms - last_scan_ms < SCAN_INTERVAL_MS)
        return;
    kicked = 0;
    last_scan_ms = now_ms;
    static struct scan sc;
    memset(&sc, 0, sizeof sc);
    sc.now = hal_clock_wall();
    sc.per_domain = (int)cfg_setting_int("smarthost-connections");
    /* A domain is full only while jobs of it hold its host's connections:
     * those domains are left out in the query itself, so a backlog of
     * theirs cannot fill the scan's LIMIT and hide every other domain. */
    static char full[JOBS_MAX * 257 + 1];
    size_t used = 0;
    full[0] = '\0';
    for (int i = 0; i < JOBS_MAX; i++) {
        const char *dom = job_domain[i];
        char framed[260];
        snprintf(framed, sizeof framed, "\n%.255s\n", dom);
        if (!jobs[i].in_use || strstr(full, framed) || domain_open(&sc, dom))
            continue;
        used += (size_t)snprintf(full + used, sizeof full - used, "%s", used ? framed + 1 : framed);
    }
    db_due_list(store, sc.now, NULL, used ? full : NULL, SCAN_LIMIT, on_due, &sc);
    for (int i = 0; i < sc.count; i++)
        launch(sc.jobs[i], sc.domains[i], sc.now);
}

void dlv_stats(struct dlv_stats *st)
{
    *st = stats;
    st->downgrades = outbound_downgrades();
    st->creds_unreadable = outbound_creds_unreadable();
}
