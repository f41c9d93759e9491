/* firmware/delivery.c (the queue runner) with its real collaborators — the
 * spool and the queue on a real SQLite database, config.c, dsn.c, retry.c —
 * and a fake transport in place of outbound.c: the test plays the smart
 * host by finishing each job it was given with the results it chooses.
 * That makes the glue that decides retries, lifetimes, reports and
 * durability testable without a network. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "config.h"
#include "crypto.h"
#include "db.h"
#include "db_queue.h"
#include "delivery.h"
#include "hal_clock.h"
#include "hal_fakes.h"
#include "outbound.h"
#include "spool.h"
#include "tmpdir.h"

/* --- the fake transport (outbound.h) --- */

#define STARTED_MAX 64

struct started {
    struct outbound_route route;
    struct outbound_job *job;
    const struct outbound_ops *ops;
    void *ctx;
};

static struct started started[STARTED_MAX];
static int started_n;

int outbound_start(const struct outbound_route *route, struct outbound_job *job,
                   const struct outbound_ops *ops, void *ctx)
{
    assert_true(started_n < STARTED_MAX);
    started[started_n++] = (struct started){*route, job, ops, ctx};
    return 0;
}

int outbound_count(int64_t smarthost_id)
{
    (void)smarthost_id;
    return 0;
}

int outbound_route_first(const struct outbound_route *route, const struct db_smarthost *h)
{
    for (int k = 0; k < route->count; k++)
        if (route->hosts[k].id == h->id && strcmp(route->hosts[k].host, h->host) == 0)
            return 1;
    return 0;
}

/* The domain whose smart host has no connection to spare ("" none). */
static char full_domain[64];

int outbound_can_start(const struct outbound_route *route, const struct outbound_ops *ops,
                       void *ctx, int per_host)
{
    (void)ops;
    (void)ctx;
    (void)per_host;
    return route->count == 0 || strcmp(route->hosts[0].domain, full_domain) != 0;
}

uint64_t outbound_downgrades(void) { return 0; }
uint64_t outbound_creds_unreadable(void) { return 0; }

/* Finish started job k: every recipient gets `code` and `text`. */
static void finish_all(int k, int code, const char *text)
{
    struct started *s = &started[k];
    struct outbound_job *j = s->job;
    assert_non_null(j);
    for (int i = 0; i < j->rcpt_count; i++) {
        j->results[i].code = code;
        j->results[i].permanent = code >= 500;
        snprintf(j->results[i].text, sizeof j->results[i].text, "%s", text);
    }
    snprintf(j->smarthost, sizeof j->smarthost, "mail.example.com:25");
    snprintf(j->tls, sizeof j->tls, "plaintext");
    s->job = NULL;
    s->ops->done(s->ctx, j);
}

/* --- fixture --- */

static char dir[64], path[128];
static struct db *db;

static void set(const char *key, const char *value)
{
    char err[CFG_ERR_MAX];
    if (cfg_setting_set(key, value, err, sizeof err) != 0)
        fail_msg("settings set %s %s: %s", key, value, err);
}

static void add_smarthost(const char *domain)
{
    char err[CFG_ERR_MAX];
    struct cfg_smarthost_change c = {.domain = domain, .host = "mail.example.com", .has_host = 1};
    int64_t id;
    if (cfg_smarthost_add(&c, NULL, &id, err, sizeof err) != 0)
        fail_msg("smarthost add %s: %s", domain, err);
}

static int setup(void **state)
{
    (void)state;
    if (tmpdir_make(dir, sizeof dir, "shr-test-delivery") != 0)
        return -1;
    snprintf(path, sizeof path, "%s/relay.db", dir);
    char err[256];
    if (db_open(&db, path, err, sizeof err) != DB_OK) {
        fprintf(stderr, "db_open: %s\n", err);
        return -1;
    }
    if (crypto_init() != 0)
        return -1;
    hal_fake_now_ms = 0;
    cfg_init(db);
    assert_int_equal(cfg_domain_add("example.com", err, sizeof err), 0);
    assert_int_equal(cfg_domain_add("ops.example.net", err, sizeof err), 0);
    add_smarthost("example.com");
    add_smarthost("ops.example.net");
    set("bounce-address", "postmaster@ops.example.net");
    set("retry-initial", "60");
    set("retry-max", "3600");
    set("queue-lifetime", "86400");
    assert_int_equal(spool_init(db), 0);
    memset(started, 0, sizeof started);
    started_n = 0;
    full_domain[0] = '\0';
    assert_int_equal(dlv_init(db, "relay.test"), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    dlv_init(NULL, "relay.test");
    spool_init(NULL);
    cfg_init(NULL);
    db_close(db);
    db = NULL;
    tmpdir_remove(dir);
    return 0;
}

/* --- helpers --- */

static void committed(void *ctx, int ok, int64_t id)
{
    *(int64_t *)ctx = ok ? id : -1;
}

/* Queue a message from `sender` to `n` recipients user<k>@<domain>, its
 * body padded with `pad` more octets of text lines. */
static int64_t queue_msg_padded(const char *sender, const char *domain, int n, size_t pad)
{
    static struct spool_msg m;
    static char addrs[OUTBOUND_JOB_RCPTS][64];
    static const char *rcpts[OUTBOUND_JOB_RCPTS];
    for (int k = 0; k < n; k++) {
        snprintf(addrs[k], sizeof addrs[k], "user%03d@%s", k, domain);
        rcpts[k] = addrs[k];
    }
    struct db_msg_new info = {hal_clock_wall(), sender, "[10.0.2.2]:1000", "vendor.test"};
    assert_int_equal(spool_begin(&m, &info), 0);
    static const char body[] = "Message-ID: <t1@vendor.test>\r\nSubject: test\r\n\r\nhello\r\n";
    assert_int_equal(spool_write(&m, (const uint8_t *)body, sizeof body - 1), 0);
    static const char line[] = "padding padding padding padding padding padding padding pad\r\n";
    for (size_t done = 0; done < pad; done += sizeof line - 1)
        assert_int_equal(spool_write(&m, (const uint8_t *)line, sizeof line - 1), 0);
    int64_t id = 0;
    spool_finish(&m, rcpts, n, committed, &id);
    assert_int_equal(spool_flush(), 1);
    assert_true(id > 0);
    return id;
}

static int64_t queue_msg(const char *sender, const char *domain, int n)
{
    return queue_msg_padded(sender, domain, n, 0);
}

/* Advance the clock by `s` seconds and run the queue. */
static void run_after(int64_t s)
{
    hal_fake_now_ms += (uint32_t)(s * 1000);
    dlv_kick();
    dlv_poll();
}

struct rcpt_seen {
    int n;
    struct db_rcpt r[OUTBOUND_JOB_RCPTS];
};

static void collect_rcpt(void *ctx, const struct db_rcpt *r)
{
    struct rcpt_seen *s = ctx;
    if (s->n < OUTBOUND_JOB_RCPTS)
        s->r[s->n++] = *r;
}

static struct rcpt_seen rcpts_of(int64_t id)
{
    struct rcpt_seen s;
    memset(&s, 0, sizeof s);
    assert_int_equal(db_msg_recipients(db, id, collect_rcpt, &s), DB_OK);
    return s;
}

struct queue_seen {
    int n;
    struct db_msg m[16];
};

static void collect_msg(void *ctx, const struct db_msg *m)
{
    struct queue_seen *q = ctx;
    if (q->n < 16)
        q->m[q->n++] = *m;
}

static struct queue_seen queue(void)
{
    struct queue_seen q;
    memset(&q, 0, sizeof q);
    assert_int_equal(db_queue_list(db, collect_msg, &q), DB_OK);
    return q;
}

struct body {
    char *p;
    size_t len;
};

static int collect_body(void *ctx, const uint8_t *data, size_t len)
{
    struct body *b = ctx;
    b->p = realloc(b->p, b->len + len + 1);
    assert_non_null(b->p);
    memcpy(b->p + b->len, data, len);
    b->len += len;
    b->p[b->len] = '\0';
    return 0;
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

static int history_failed;
static void count_failed(void *ctx, const struct db_history *h)
{
    (void)ctx;
    history_failed += strcmp(h->outcome, "failed") == 0;
}

static int failed_in_history(void)
{
    history_failed = 0;
    assert_int_equal(db_history_list(db, 1000, count_failed, NULL), DB_OK);
    return history_failed;
}

/* Run SQL on a second connection to the same file (what a test uses to
 * make storage misbehave without touching the code under test). */
static void side_sql(const char *sql)
{
    sqlite3 *h;
    assert_int_equal(sqlite3_open(path, &h), SQLITE_OK);
    char *msg = NULL;
    if (sqlite3_exec(h, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg ? msg : "?");
    sqlite3_close(h);
}

/* --- tests --- */

static void test_delivered_message_removed(void **state)
{
    (void)state;
    int64_t id = queue_msg("pst@vendor.test", "example.com", 2);
    dlv_poll();
    assert_int_equal(started_n, 1);
    assert_int_equal(started[0].job->rcpt_count, 2);
    assert_string_equal(started[0].route.hosts[0].host, "mail.example.com");
    assert_string_equal(rcpts_of(id).r[0].state, "delivering");
    finish_all(0, 250, "2.0.0 ok");
    assert_int_equal(queue().n, 0);
    struct dlv_stats st;
    dlv_stats(&st);
    assert_int_equal(st.delivered, 2);
    assert_int_equal(st.in_flight, 0);
}

/* A connection that finished its message, asking for the next (outbound's
 * ops->next); returns the job, or NULL. */
static struct outbound_job *next_on(int k)
{
    struct started *s = &started[k];
    return s->ops->next(s->ctx, &s->route.hosts[0]);
}

/* The smart host is at its connection limit: the scan starts nothing for
 * its domain and leaves the rows as they were (due, untouched), while
 * another domain's mail still starts; a connection of the busy domain
 * that finishes a message takes the next one of that domain, in order,
 * and never another domain's. This was the measured stall: the rows were
 * postponed 2 s, so the finishing connection found nothing and quit. */
static void test_busy_host_rows_follow_its_connection(void **state)
{
    (void)state;
    set("smarthost-connections", "1");
    int64_t a1 = queue_msg("pst@vendor.test", "example.com", 1);
    dlv_poll(); /* a1 starts: the host's one connection */
    assert_int_equal(started_n, 1);
    assert_int_equal(started[0].job->msg_id, a1);
    snprintf(full_domain, sizeof full_domain, "example.com");
    int64_t a2 = queue_msg("pst@vendor.test", "example.com", 1);
    int64_t a3 = queue_msg("pst@vendor.test", "example.com", 2);
    int64_t b1 = queue_msg("pst@vendor.test", "ops.example.net", 1);
    run_after(0);
    assert_int_equal(started_n, 2); /* only b1 */
    assert_int_equal(started[1].job->msg_id, b1);
    assert_string_equal(rcpts_of(a2).r[0].state, "queued");
    assert_int_equal(rcpts_of(a2).r[0].next_attempt, 0);
    run_after(5); /* later scans: still nothing started, nothing moved */
    assert_int_equal(started_n, 2);
    assert_int_equal(rcpts_of(a3).r[1].next_attempt, 0);
    /* a1's connection finishes and asks for more. */
    finish_all(0, 250, "2.0.0 ok");
    struct outbound_job *j = next_on(0);
    assert_non_null(j);
    assert_int_equal(j->msg_id, a2);
    assert_string_equal(rcpts_of(a2).r[0].state, "delivering");
    started[0].job = j;
    finish_all(0, 250, "2.0.0 ok");
    j = next_on(0);
    assert_non_null(j);
    assert_int_equal(j->msg_id, a3);
    assert_int_equal(j->rcpt_count, 2);
    started[0].job = j;
    finish_all(0, 250, "2.0.0 ok");
    assert_null(next_on(0)); /* b1 is not example.com's */
    finish_all(1, 250, "2.0.0 ok");
    assert_int_equal(queue().n, 0);
}

/* A busy domain's backlog beyond the scan's LIMIT (200 due rows) must not
 * hide another domain's mail: the scan leaves full domains out in its
 * query. (Found in review: the rows stayed due, filled every scan, and
 * ops.example.net's message never started.) */
static void test_busy_backlog_does_not_hide_other_domains(void **state)
{
    (void)state;
    set("smarthost-connections", "1");
    queue_msg("pst@vendor.test", "example.com", 1);
    dlv_poll(); /* the host's one connection */
    assert_int_equal(started_n, 1);
    snprintf(full_domain, sizeof full_domain, "example.com");
    queue_msg("pst@vendor.test", "example.com", 100);
    queue_msg("pst@vendor.test", "example.com", 100);
    queue_msg("pst@vendor.test", "example.com", 100);
    int64_t b1 = queue_msg("pst@vendor.test", "ops.example.net", 1);
    run_after(0);
    run_after(5);
    assert_int_equal(started_n, 2);
    assert_int_equal(started[1].job->msg_id, b1);
}

/* A connection that closes frees a slot of its host's limit: the mail
 * that waited for it starts at once, not at the next timed scan (the
 * one-connection drain paid up to a second per connection for that). */
static void test_closed_connection_starts_the_next_at_once(void **state)
{
    (void)state;
    set("smarthost-connections", "1");
    queue_msg("pst@vendor.test", "example.com", 1);
    dlv_poll();
    assert_int_equal(started_n, 1);
    snprintf(full_domain, sizeof full_domain, "example.com");
    int64_t next = queue_msg("pst@vendor.test", "example.com", 1);
    const struct outbound_ops *ops = started[0].ops;
    void *ctx = started[0].ctx;
    finish_all(0, 250, "2.0.0 ok"); /* the connection says QUIT ... */
    dlv_poll();                     /* ... and still counts: nothing starts */
    assert_int_equal(started_n, 1);
    full_domain[0] = '\0';
    ops->closed(ctx);               /* ... now it is gone */
    dlv_poll();                     /* no time has passed */
    assert_int_equal(started_n, 2);
    assert_int_equal(started[1].job->msg_id, next);
}

/* After `smarthost del` (and a new host for the domain), a connection to
 * the old host finishing its message gets nothing more: the next one
 * goes by the new route. */
static void test_no_next_job_for_a_removed_host(void **state)
{
    (void)state;
    queue_msg("pst@vendor.test", "example.com", 1);
    dlv_poll();
    assert_int_equal(started_n, 1);
    int64_t second = queue_msg("pst@vendor.test", "example.com", 1);
    char warn[CFG_ERR_MAX], err[CFG_ERR_MAX];
    assert_int_equal(cfg_smarthost_del(started[0].route.hosts[0].id, warn, sizeof warn, err,
                                       sizeof err), 0);
    struct cfg_smarthost_change c = {.domain = "example.com", .host = "mx2.example.com",
                                     .has_host = 1};
    int64_t id;
    assert_int_equal(cfg_smarthost_add(&c, NULL, &id, err, sizeof err), 0);
    finish_all(0, 250, "2.0.0 ok");
    assert_null(next_on(0));
    run_after(0);
    assert_int_equal(started_n, 2);
    assert_int_equal(started[1].job->msg_id, second);
    assert_string_equal(started[1].route.hosts[0].host, "mx2.example.com");
}

/* Temporary failures: backoff doubling from retry-initial, capped; at the
 * queue lifetime, 5.4.7 and a report. */
static void test_backoff_then_lifetime(void **state)
{
    (void)state;
    set("queue-lifetime", "1000");
    set("retry-max", "200");
    int64_t id = queue_msg("pst@vendor.test", "example.com", 1);
    int64_t t0 = hal_clock_wall();
    dlv_poll();
    finish_all(0, 451, "4.3.0 try later");
    struct rcpt_seen r = rcpts_of(id);
    assert_string_equal(r.r[0].state, "deferred");
    assert_int_equal(r.r[0].attempts, 1);
    assert_int_equal(r.r[0].next_attempt, t0 + 60);
    assert_string_equal(r.r[0].last_reply, "451 4.3.0 try later");
    run_after(59); /* not due yet */
    assert_int_equal(started_n, 1);
    run_after(1);
    assert_int_equal(started_n, 2);
    finish_all(1, 451, "4.3.0 try later");
    r = rcpts_of(id);
    assert_int_equal(r.r[0].attempts, 2);
    assert_int_equal(r.r[0].next_attempt, hal_clock_wall() + 120);
    run_after(120);
    finish_all(2, 0, "4.4.1 connection refused");
    r = rcpts_of(id);
    assert_int_equal(r.r[0].attempts, 3);
    assert_int_equal(r.r[0].next_attempt, hal_clock_wall() + 200); /* capped */
    run_after(1000);
    assert_int_equal(started_n, 4);
    finish_all(3, 451, "4.3.0 still later");
    /* expired: the message is gone, its failure recorded, a report queued */
    struct queue_seen q = queue();
    assert_int_equal(q.n, 1);
    assert_int_not_equal(q.m[0].id, id);
    assert_string_equal(q.m[0].sender, "");
    assert_int_equal(failed_in_history(), 1);
    struct body b = {NULL, 0};
    assert_int_equal(db_msg_body(db, q.m[0].id, collect_body, &b), DB_OK);
    assert_non_null(strstr(b.p, "Status: 5.4.7"));
    assert_non_null(strstr(b.p, "5.4.7 queue lifetime expired; last error: 451 4.3.0 still later"));
    free(b.p);
}

/* Issue 8: 100 recipients refused with long replies make one complete
 * report (a 16 KiB buffer lost it, yet the failures were recorded). */
static void test_report_for_hundred_recipients(void **state)
{
    (void)state;
    int64_t id = queue_msg("pst@vendor.test", "example.com", 100);
    dlv_poll();
    assert_int_equal(started_n, 1);
    assert_int_equal(started[0].job->rcpt_count, 100);
    char text[OUTBOUND_REPLY_MAX];
    memset(text, 'x', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    memcpy(text, "5.1.1 ", 6);
    finish_all(0, 550, text);
    struct queue_seen q = queue();
    assert_int_equal(q.n, 1);
    assert_int_not_equal(q.m[0].id, id);
    struct rcpt_seen r = rcpts_of(q.m[0].id);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.r[0].address, "postmaster@ops.example.net");
    struct body b = {NULL, 0};
    assert_int_equal(db_msg_body(db, q.m[0].id, collect_body, &b), DB_OK);
    assert_true(b.len > 16384);
    assert_int_equal(count(b.p, "\r\nFinal-Recipient: rfc822; user"), 100);
    assert_int_equal(count(b.p, "Diagnostic-Code: smtp; 550 5.1.1 xxxx"), 100);
    assert_non_null(strstr(b.p, "Content-Type: text/rfc822-headers\r\n\r\nMessage-ID: "
                                "<t1@vendor.test>\r\nSubject: test\r\n\r\n"));
    assert_int_equal(q.m[0].size, b.len);
    free(b.p);
    assert_int_equal(failed_in_history(), 100);
}

/* Issue 8: when the report cannot be queued, the failures are not
 * recorded: the recipients stay queued and are tried again. */
static void test_report_not_queued_keeps_recipients(void **state)
{
    (void)state;
    int64_t id = queue_msg("pst@vendor.test", "example.com", 2);
    /* storage refuses the report (and only the report: its null sender) */
    side_sql("CREATE TRIGGER refuse_dsn BEFORE INSERT ON message WHEN NEW.sender = '' "
             "BEGIN SELECT RAISE(ABORT, 'test: no room for reports'); END");
    dlv_poll();
    finish_all(0, 550, "5.1.1 no such user");
    struct rcpt_seen r = rcpts_of(id);
    assert_int_equal(r.n, 2);
    for (int i = 0; i < 2; i++) {
        assert_string_equal(r.r[i].state, "deferred");
        assert_non_null(strstr(r.r[i].last_reply, "could not be queued"));
        assert_non_null(strstr(r.r[i].last_reply, "550 5.1.1 no such user"));
    }
    assert_int_equal(failed_in_history(), 0);
    assert_int_equal(queue().n, 1);
    struct dlv_stats st;
    dlv_stats(&st);
    assert_int_equal(st.report_failures, 1);
    assert_int_equal(st.failed, 0);
    /* storage recovers: the next attempt reports and records */
    side_sql("DROP TRIGGER refuse_dsn");
    run_after(60);
    assert_int_equal(started_n, 2);
    finish_all(1, 550, "5.1.1 no such user");
    struct queue_seen q = queue();
    assert_int_equal(q.n, 1);
    assert_string_equal(q.m[0].sender, "");
    assert_int_equal(failed_in_history(), 2);
}

/* Issue 8: mail with no route ages like any deferred mail and fails with
 * 5.4.7 at the lifetime (it used to wait forever, attempts unchanged). */
static void test_no_route_ages(void **state)
{
    (void)state;
    char err[CFG_ERR_MAX];
    assert_int_equal(cfg_domain_add("noroute.example.org", err, sizeof err), 0);
    set("queue-lifetime", "500");
    int64_t id = queue_msg("pst@vendor.test", "noroute.example.org", 1);
    dlv_poll();
    assert_int_equal(started_n, 0); /* nothing to connect to */
    struct rcpt_seen r = rcpts_of(id);
    assert_string_equal(r.r[0].state, "deferred");
    assert_int_equal(r.r[0].attempts, 1);
    assert_int_equal(r.r[0].next_attempt, hal_clock_wall() + 60);
    assert_non_null(strstr(r.r[0].last_reply, "4.4.0 no smart host for noroute.example.org"));
    run_after(60);
    r = rcpts_of(id);
    assert_int_equal(r.r[0].attempts, 2);
    assert_int_equal(r.r[0].next_attempt, hal_clock_wall() + 120);
    run_after(500);
    struct queue_seen q = queue();
    assert_int_equal(q.n, 1);
    assert_string_equal(q.m[0].sender, ""); /* only the report is left */
    struct body b = {NULL, 0};
    assert_int_equal(db_msg_body(db, q.m[0].id, collect_body, &b), DB_OK);
    assert_non_null(strstr(b.p, "Status: 5.4.7"));
    assert_non_null(strstr(b.p, "no smart host for noroute.example.org"));
    free(b.p);
}

/* A report to a bounce address with no route does not bounce in turn
 * (null sender) but still leaves the queue at the lifetime. */
static void test_report_without_route_expires(void **state)
{
    (void)state;
    set("queue-lifetime", "500");
    int64_t id = queue_msg("", "example.com", 1); /* a null-sender message, like a DSN */
    dlv_poll();
    finish_all(0, 451, "4.3.0 later");
    run_after(600);
    finish_all(1, 451, "4.3.0 later");
    assert_int_equal(queue().n, 0);
    assert_int_equal(failed_in_history(), 1);
    (void)id;
}

/* Issue 8: an attempt a reset interrupted is tried at boot; when that try
 * fails without a reply (the peer may still hold the old connection),
 * once more within seconds and uncounted, then the normal backoff. */
static void test_reset_recovered_retried_soon(void **state)
{
    (void)state;
    int64_t id = queue_msg("pst@vendor.test", "example.com", 1);
    dlv_poll();
    assert_int_equal(started_n, 1);
    assert_string_equal(rcpts_of(id).r[0].state, "delivering");
    /* reset: the job is lost with the RAM; boot puts it back */
    started_n = 0;
    assert_int_equal(dlv_init(db, "relay.test"), 0);
    struct rcpt_seen r = rcpts_of(id);
    assert_string_equal(r.r[0].state, "queued");
    assert_string_equal(r.r[0].last_reply, DB_RCPT_RESET_REPLY);
    dlv_poll();
    assert_int_equal(started_n, 1);
    assert_true(started[0].job->recovered[0]);
    finish_all(0, 0, "4.4.1 connection to mail.example.com:25 failed (reset)");
    r = rcpts_of(id);
    assert_string_equal(r.r[0].state, "deferred");
    assert_int_equal(r.r[0].attempts, 1); /* the interrupted one; this one not */
    assert_true(r.r[0].next_attempt <= hal_clock_wall() + 5);
    run_after(5);
    assert_int_equal(started_n, 2);
    assert_false(started[1].job->recovered[0]);
    finish_all(1, 0, "4.4.1 connection to mail.example.com:25 failed (reset)");
    r = rcpts_of(id);
    assert_int_equal(r.r[0].attempts, 2);
    assert_int_equal(r.r[0].next_attempt, hal_clock_wall() + 120);
}

/* A reply (even a temporary one) after a reset is the server's answer:
 * the normal backoff. */
static void test_reset_recovered_reply_counts(void **state)
{
    (void)state;
    int64_t id = queue_msg("pst@vendor.test", "example.com", 1);
    dlv_poll();
    started_n = 0;
    assert_int_equal(dlv_init(db, "relay.test"), 0);
    dlv_poll();
    finish_all(0, 451, "4.3.0 later");
    struct rcpt_seen r = rcpts_of(id);
    assert_int_equal(r.r[0].attempts, 2);
    assert_int_equal(r.r[0].next_attempt, hal_clock_wall() + 120);
}

/* A message whose delivery crashes the relay is put back at every boot;
 * its interrupted attempts count, and past the queue lifetime it is not
 * tried again but fails with 5.4.7 and a report (no endless crash loop). */
static void test_crash_loop_ages_out(void **state)
{
    (void)state;
    set("queue-lifetime", "300");
    int64_t id = queue_msg("pst@vendor.test", "example.com", 1);
    for (int boot = 0; boot < 3; boot++) {
        dlv_poll();
        assert_int_equal(started_n, 1);
        started_n = 0; /* the crash: the job dies with the RAM */
        hal_fake_now_ms += 10000;
        assert_int_equal(dlv_init(db, "relay.test"), 0);
    }
    assert_int_equal(rcpts_of(id).r[0].attempts, 3);
    hal_fake_now_ms += 300000;
    dlv_poll();
    assert_int_equal(started_n, 0); /* not tried again */
    struct queue_seen q = queue();
    assert_int_equal(q.n, 1);
    assert_string_equal(q.m[0].sender, "");
    struct body b = {NULL, 0};
    assert_int_equal(db_msg_body(db, q.m[0].id, collect_body, &b), DB_OK);
    assert_non_null(strstr(b.p, "5.4.7 queue lifetime expired; last error: " DB_RCPT_RESET_REPLY));
    free(b.p);
    assert_int_equal(failed_in_history(), 1);
}

/* Issue 8 (review): a full queue must still take the reports of its
 * failing mail, or it never shrinks (every report refused for want of
 * room, every failure kept). */
static void test_report_exempt_from_queue_cap(void **state)
{
    (void)state;
    int64_t id = queue_msg_padded("pst@vendor.test", "example.com", 50, 1100000);
    char cap[32];
    snprintf(cap, sizeof cap, "%llu", (unsigned long long)spool_queue_bytes());
    set("queue-max-size", cap); /* exactly full: no room for inbound mail */
    assert_false(spool_has_room(1));
    dlv_poll();
    finish_all(0, 550, "5.1.1 no such user");
    struct queue_seen q = queue();
    assert_int_equal(q.n, 1);
    assert_int_not_equal(q.m[0].id, id);
    assert_string_equal(q.m[0].sender, "");
    assert_int_equal(failed_in_history(), 50);
    assert_true(spool_has_room(1)); /* the failed message made room */
}

/* Issue 8 (review): a bounce-address that cannot be read is not "no
 * bounce address": the failures stay queued rather than go unreported. */
static void test_unreadable_bounce_address_keeps_recipients(void **state)
{
    (void)state;
    int64_t id = queue_msg("pst@vendor.test", "example.com", 1);
    dlv_poll();
    side_sql("ALTER TABLE setting RENAME TO setting_gone");
    finish_all(0, 550, "5.1.1 no such user");
    side_sql("ALTER TABLE setting_gone RENAME TO setting");
    struct rcpt_seen r = rcpts_of(id);
    assert_string_equal(r.r[0].state, "deferred");
    assert_int_equal(failed_in_history(), 0);
    struct dlv_stats st;
    dlv_stats(&st);
    assert_int_equal(st.report_failures, 1);
}

/* The clock is stepped (first NTP answer) while a job is in flight: the
 * queue's rows are moved by db_queue_rebase, the job by dlv_clock_stepped;
 * its message is as young as before, not expired by the jump. */
static void test_clock_step_during_delivery(void **state)
{
    (void)state;
    set("queue-lifetime", "500");
    int64_t id = queue_msg("pst@vendor.test", "example.com", 1);
    dlv_poll();
    assert_int_equal(started_n, 1);
    int64_t delta = 10 * 365 * 86400LL; /* years forward */
    hal_fake_now_ms += (uint32_t)(delta * 1000 % 4294967296LL);
    delta = hal_clock_wall() - 1700000000; /* what the fake clock really moved */
    assert_int_equal(db_begin(db), DB_OK);
    assert_true(db_queue_rebase(db, delta) >= 0);
    assert_int_equal(db_commit(db), DB_OK);
    dlv_clock_stepped(delta);
    finish_all(0, 451, "4.3.0 later");
    struct rcpt_seen r = rcpts_of(id);
    assert_string_equal(r.r[0].state, "deferred");
    assert_int_equal(failed_in_history(), 0);
}

/* Outcomes are committed durably even though the 'delivering' marks
 * before them were staging commits. */
static void test_outcomes_commit_durably(void **state)
{
    (void)state;
    queue_msg("pst@vendor.test", "example.com", 1);
    dlv_poll();
    assert_true(db_durable(db)); /* the staging mark left nothing behind */
    finish_all(0, 250, "ok");
    assert_true(db_durable(db));
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_delivered_message_removed),
        T(test_busy_host_rows_follow_its_connection),
        T(test_no_next_job_for_a_removed_host),
        T(test_busy_backlog_does_not_hide_other_domains),
        T(test_closed_connection_starts_the_next_at_once),
        T(test_backoff_then_lifetime),
        T(test_report_for_hundred_recipients),
        T(test_report_not_queued_keeps_recipients),
        T(test_no_route_ages),
        T(test_report_without_route_expires),
        T(test_reset_recovered_retried_soon),
        T(test_reset_recovered_reply_counts),
        T(test_crash_loop_ages_out),
        T(test_clock_step_during_delivery),
        T(test_report_exempt_from_queue_cap),
        T(test_unreadable_bounce_address_keeps_recipients),
        T(test_outcomes_commit_durably),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
