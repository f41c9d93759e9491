/* cmd_queue.c — queue list|show, stats, tls show, inbound-auth. */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "clockfmt.h"
#include "clocksync.h"
#include "commands.h"
#include "config.h"
#include "crypto.h"
#include "db.h"
#include "db_queue.h"
#include "delivery.h"
#include "fwnet.h"
#include "hal_clock.h"
#include "hal_heap.h"
#include "hal_reset.h"
#include "inbound.h"
#include "outbound.h"
#include "spool.h"


static void format_age(int64_t seconds, char *out, size_t cap)
{
    if (seconds < 0)
        seconds = 0;
    if (seconds < 120)
        snprintf(out, cap, "%llds", (long long)seconds);
    else if (seconds < 7200)
        snprintf(out, cap, "%lldm", (long long)(seconds / 60));
    else if (seconds < 172800)
        snprintf(out, cap, "%lldh", (long long)(seconds / 3600));
    else
        snprintf(out, cap, "%lldd", (long long)(seconds / 86400));
}

/* --- queue list --- */

struct list_ctx {
    struct cmd_rows rows; /* first: the page callbacks get &rows */
    int64_t last_id;
    int first_rcpt;
};

/* "in 5m", "now": when a waiting recipient is tried next. */
static void format_next(int64_t next_attempt, char *out, size_t cap)
{
    int64_t wait = next_attempt - hal_clock_wall();
    char age[24];
    format_age(wait, age, sizeof age);
    if (wait <= 0)
        snprintf(out, cap, "now");
    else
        snprintf(out, cap, "in %s", age);
}

static int waiting(const struct db_rcpt *r)
{
    return strcmp(r->state, "queued") == 0 || strcmp(r->state, "deferred") == 0;
}

/* A waiting recipient shows why it waits (its last reply, shortened) and
 * when it is tried next; the whole reply is in `queue show`. */
static void print_rcpt_inline(void *ctx, const struct db_rcpt *r)
{
    struct list_ctx *l = ctx;
    console_printf(l->rows.con, "%s%s (%s", l->first_rcpt ? "" : ", ", r->address, r->state);
    if (waiting(r) && r->last_reply[0]) {
        char next[32];
        format_next(r->next_attempt, next, sizeof next);
        console_printf(l->rows.con, ", next %s: %.60s%s", next, r->last_reply,
                       strlen(r->last_reply) > 60 ? "..." : "");
    }
    console_printf(l->rows.con, ")");
    l->first_rcpt = 0;
}

static void json_rcpt(void *ctx, const struct db_rcpt *r)
{
    struct jsonw *j = ctx;
    jsonw_object(j, NULL);
    jsonw_string(j, "address", r->address);
    jsonw_string(j, "state", r->state);
    jsonw_int(j, "attempts", r->attempts);
    if (waiting(r))
        jsonw_int(j, "next_attempt", r->next_attempt);
    jsonw_string(j, "last_reply", r->last_reply);
    jsonw_end(j);
}

static void print_msg(void *ctx, const struct db_msg *m)
{
    struct list_ctx *l = ctx;
    struct jsonw *j = console_json(l->rows.con);
    l->last_id = m->id;
    l->rows.shown++;
    if (j) {
        jsonw_object(j, NULL);
        jsonw_int(j, "id", m->id);
        jsonw_int(j, "received", m->received);
        jsonw_uint(j, "size", m->size);
        jsonw_string(j, "sender", m->sender);
        jsonw_string(j, "client", m->client);
        jsonw_array(j, "recipients");
        db_msg_recipients(cfg_db(), m->id, json_rcpt, j);
        jsonw_end(j);
        jsonw_end(j);
        return;
    }
    char age[24];
    format_age(hal_clock_wall() - m->received, age, sizeof age);
    if (l->rows.shown == 1)
        console_printf(l->rows.con, "%-6s %-5s %-9s %-30s %s\n", "id", "age", "size", "from",
                       "recipients");
    console_printf(l->rows.con, "%-6lld %-5s %-9llu %-30s ", (long long)m->id, age,
                   (unsigned long long)m->size, m->sender[0] ? m->sender : "<>");
    l->first_rcpt = 1;
    db_msg_recipients(cfg_db(), m->id, print_rcpt_inline, l);
    console_printf(l->rows.con, "\n");
}

static struct list_ctx queue_listing;

/* A message taken off the queue between pages is simply not shown. */
static int queue_page(struct cmd_rows *r, int limit, int64_t *last)
{
    struct list_ctx *l = (struct list_ctx *)r;
    int rc = db_queue_page(cfg_db(), r->after, limit, print_msg, l);
    *last = l->last_id;
    return rc;
}

static int cmd_queue_list(struct console *con, int argc, char **argv)
{
    (void)argv;
    if (argc != 0)
        return console_usage(con);
    if (!cfg_db())
        return console_error(con, "storage is unavailable (see 'log')");
    cmd_rows_start(con, &queue_listing.rows, queue_page, 0, INT_MAX, "messages");
    queue_listing.last_id = 0;
    queue_listing.rows.empty = "queue is empty";
    /* A message lists all its recipients (up to ~10 KB): one per step. */
    queue_listing.rows.per_step = 1;
    return CONSOLE_PENDING;
}

/* --- queue show --- */

static void print_rcpt_detail(void *ctx, const struct db_rcpt *r)
{
    struct console *con = ctx;
    char next[48] = "";
    if (waiting(r)) {
        char when[32];
        format_next(r->next_attempt, when, sizeof when);
        snprintf(next, sizeof next, "; next attempt %s", when);
    }
    console_printf(con, "  to %s: %s, %d attempt%s%s%s%s\n", r->address, r->state,
                   (int)r->attempts, r->attempts == 1 ? "" : "s",
                   r->last_reply[0] ? ", last reply: " : "", r->last_reply, next);
}

struct header_ctx {
    struct console *con;
    struct jsonw *json; /* JSON mode: header lines go into an array */
    char line[1001];
    size_t len;
    int done;
    int cut;
};

/* Print the header section: each line as text, control bytes shown as '?'. */
static int print_headers(void *ctx, const uint8_t *data, size_t len)
{
    struct header_ctx *h = ctx;
    for (size_t i = 0; i < len && !h->done; i++) {
        char c = (char)data[i];
        if (c == '\n') {
            if (h->len && h->line[h->len - 1] == '\r')
                h->len--;
            if (h->len == 0) {
                h->done = 1;
                break;
            }
            h->line[h->len] = '\0';
            if (h->json)
                jsonw_string(h->json, NULL, h->line);
            else
                console_printf(h->con, "  %s%s\n", h->line, h->cut ? "..." : "");
            h->len = 0;
            h->cut = 0;
        } else if (h->len < sizeof h->line - 1) {
            h->line[h->len++] = (c == '\r' || (c >= 32 && c < 127) || c == '\t') ? c : '?';
        } else {
            h->cut = 1;
        }
    }
    return h->done;
}

static int cmd_queue_show(struct console *con, int argc, char **argv)
{
    if (argc != 1)
        return console_usage(con);
    int64_t id = console_parse_id(argv[0]);
    if (!id)
        return console_error(con, "'%s' is not a queue id (see 'queue list')", argv[0]);
    if (!cfg_db())
        return console_error(con, "storage is unavailable (see 'log')");
    struct db_msg m;
    int rc = db_msg_get(cfg_db(), id, &m);
    if (rc == DB_ENOTFOUND)
        return console_error(con, "no message %lld in the queue", (long long)id);
    if (rc != DB_OK)
        return console_error(con, "storage error: %s", db_errmsg(cfg_db()));
    struct header_ctx h;
    memset(&h, 0, sizeof h);
    h.con = con;
    struct jsonw *j = console_json(con);
    if (j) {
        h.json = j;
        jsonw_object(j, NULL);
        jsonw_int(j, "id", m.id);
        jsonw_uint(j, "size", m.size);
        jsonw_int(j, "received", m.received);
        jsonw_string(j, "client", m.client);
        jsonw_string(j, "helo", m.helo);
        jsonw_string(j, "sender", m.sender);
        jsonw_string(j, "message_id", m.message_id);
        jsonw_array(j, "recipients");
        db_msg_recipients(cfg_db(), id, json_rcpt, j);
        jsonw_end(j);
        jsonw_array(j, "headers");
        db_msg_body(cfg_db(), id, print_headers, &h);
        console_json_end(con);
        return 0;
    }
    char when[CLOCKFMT_UTC_LEN];
    console_printf(con, "message %lld, %llu bytes, received %s UTC from %s (helo %s)\n",
                   (long long)m.id, (unsigned long long)m.size, clockfmt_utc(m.received, when),
                   m.client, m.helo);
    console_printf(con, "  from <%s>\n", m.sender);
    db_msg_recipients(cfg_db(), id, print_rcpt_detail, con);
    console_printf(con, "headers:\n");
    db_msg_body(cfg_db(), id, print_headers, &h);
    return 0;
}

/* --- queue retry | delete | history --- */

static int cmd_queue_retry(struct console *con, int argc, char **argv)
{
    if (argc > 1)
        return console_usage(con);
    int64_t id = 0;
    if (argc == 1 && !(id = console_parse_id(argv[0])))
        return console_error(con, "'%s' is not a queue id (see 'queue list')", argv[0]);
    if (!cfg_db())
        return console_error(con, "storage is unavailable (see 'log')");
    struct db_msg m;
    if (id && db_msg_get(cfg_db(), id, &m) != DB_OK)
        return console_error(con, "no message %lld in the queue", (long long)id);
    int64_t n = db_queue_retry(cfg_db(), id, hal_clock_wall());
    if (n < 0)
        return console_error(con, "storage error: %s", db_errmsg(cfg_db()));
    dlv_kick();
    console_printf(con, "ok: %lld recipient(s) will be tried now\n", (long long)n);
    return 0;
}

static int cmd_queue_delete(struct console *con, int argc, char **argv)
{
    if (argc != 1)
        return console_usage(con);
    int64_t id = console_parse_id(argv[0]);
    if (!id)
        return console_error(con, "'%s' is not a queue id (see 'queue list')", argv[0]);
    if (!cfg_db())
        return console_error(con, "storage is unavailable (see 'log')");
    struct db_msg m;
    if (db_msg_get(cfg_db(), id, &m) != DB_OK)
        return console_error(con, "no message %lld in the queue", (long long)id);
    if (db_msg_pending(cfg_db(), id) > 0 &&
        db_msg_delivering(cfg_db(), id) > 0)
        return console_error(con, "message %lld is being delivered right now; try again when "
                             "the attempt ends", (long long)id);
    char action[64];
    snprintf(action, sizeof action, "queue delete %lld", (long long)id);
    int rc = db_begin(cfg_db());
    if (rc == DB_OK)
        rc = db_msg_delete(cfg_db(), id);
    if (rc == DB_OK)
        rc = db_audit_add(cfg_db(), hal_clock_wall(), "console", action);
    if (rc == DB_OK)
        rc = db_commit(cfg_db());
    if (rc != DB_OK) {
        db_rollback(cfg_db());
        return console_error(con, "storage error: %s", db_errmsg(cfg_db()));
    }
    spool_forget(m.size);
    console_printf(con, "ok: message %lld deleted\n", (long long)id);
    return 0;
}

static void print_history(void *ctx, const struct db_history *h)
{
    struct cmd_rows *r = ctx;
    struct console *con = r->con;
    struct jsonw *j = console_json(con);
    r->shown++;
    if (j) {
        jsonw_object(j, NULL);
        jsonw_int(j, "finished", h->finished);
        jsonw_string(j, "outcome", h->outcome);
        jsonw_int(j, "queue_id", h->queue_id);
        jsonw_string(j, "message_id", h->message_id);
        jsonw_string(j, "sender", h->sender);
        jsonw_string(j, "recipient", h->recipient);
        jsonw_string(j, "smarthost", h->smarthost);
        jsonw_string(j, "tls", h->tls);
        jsonw_int(j, "attempts", h->attempts);
        jsonw_string(j, "reply", h->reply);
        jsonw_int(j, "received", h->received);
        jsonw_end(j);
        return;
    }
    char when[CLOCKFMT_UTC_LEN];
    console_printf(con, "%s %-9s q%lld %s -> %s via %s (%s) after %d attempt%s: %s\n",
                   clockfmt_utc(h->finished, when), h->outcome, (long long)h->queue_id,
                   h->sender[0] ? h->sender : "<>", h->recipient,
                   h->smarthost[0] ? h->smarthost : "-", h->tls[0] ? h->tls : "-",
                   (int)h->attempts, h->attempts == 1 ? "" : "s", h->reply);
}

static struct cmd_rows history_rows;

static int history_page(struct cmd_rows *r, int limit, int64_t *last)
{
    return db_history_page(cfg_db(), r->after, limit, print_history, r, last);
}

static int cmd_queue_history(struct console *con, int argc, char **argv)
{
    int n;
    if (console_count_arg(con, argc, argv, 20, 1000, &n) != 0)
        return -1;
    if (!cfg_db())
        return console_error(con, "storage is unavailable (see 'log')");
    int64_t after;
    if (db_history_tail(cfg_db(), n, &after) != DB_OK)
        return console_error(con, "storage error: %s", db_errmsg(cfg_db()));
    cmd_rows_start(con, &history_rows, history_page, after, n, "history");
    return CONSOLE_PENDING;
}

/* --- stats ---
 * Each part computes its figures once, then prints them as text lines or
 * as members of the JSON object. */

/* Since the last reset: hal_clock_us() is the tick counter started there. */
static void stats_uptime(struct console *con, struct jsonw *j)
{
    uint64_t s = hal_clock_us() / 1000000u;
    const char *cause = hal_reset_cause_name(hal_reset_cause());
    if (j) {
        jsonw_uint(j, "uptime_s", s);
        jsonw_string(j, "reset_cause", cause);
        return;
    }
    console_printf(con, "uptime    %llud %uh %um %us (reset: %s)\n",
                   (unsigned long long)(s / 86400), (unsigned)(s / 3600 % 24),
                   (unsigned)(s / 60 % 60), (unsigned)(s % 60), cause);
}

static void stats_heap(struct console *con, struct jsonw *j)
{
    size_t in_use, peak;
    int known = hal_heap_stats(&in_use, &peak) == 0;
    if (j) {
        if (!known) {
            jsonw_null(j, "heap");
            return;
        }
        jsonw_object(j, "heap");
        jsonw_uint(j, "in_use", in_use);
        jsonw_uint(j, "peak", peak);
        jsonw_bool(j, "peak_exact", hal_heap_peak_exact());
        jsonw_end(j);
        return;
    }
    if (!known) {
        console_printf(con, "heap      not known on this board\n");
        return;
    }
    /* Where the board only samples the heap, say so: a burst between two
     * samples does not show in the peak. */
    console_printf(con, "heap      in use %llu bytes, peak %llu%s\n", (unsigned long long)in_use,
                   (unsigned long long)peak,
                   hal_heap_peak_exact() ? "" : " (highest of samples once a second)");
}

static void json_mem(struct jsonw *j, const char *key, const struct fwnet_mem *m)
{
    jsonw_object(j, key);
    if (!key)
        jsonw_string(j, "name", m->name);
    jsonw_uint(j, "used", m->used);
    jsonw_uint(j, "max", m->max);
    jsonw_uint(j, "avail", m->avail);
    jsonw_uint(j, "failures", m->err);
    jsonw_end(j);
}

static void stats_lwip(struct console *con, struct jsonw *j)
{
    struct fwnet_mem heap, pools[FWNET_POOLS_MAX];
    int n = fwnet_mem_stats(&heap, pools, FWNET_POOLS_MAX);
    if (j) {
        jsonw_object(j, "lwip");
        json_mem(j, "heap", &heap);
        jsonw_array(j, "pools");
        for (int i = 0; i < n; i++)
            json_mem(j, NULL, &pools[i]);
        jsonw_end(j);
        jsonw_end(j);
        return;
    }
    console_printf(con, "lwip heap used %lu max %lu of %lu bytes, failures %lu\n",
                   (unsigned long)heap.used, (unsigned long)heap.max, (unsigned long)heap.avail,
                   (unsigned long)heap.err);
    for (int i = 0; i < n; i++)
        console_printf(con, "lwip pool %-14s used %lu max %lu of %lu, failures %lu\n",
                       pools[i].name, (unsigned long)pools[i].used, (unsigned long)pools[i].max,
                       (unsigned long)pools[i].avail, (unsigned long)pools[i].err);
}

static void stats_smarthosts(struct console *con, struct jsonw *j)
{
    static struct hoststats_entry hosts[HOSTSTATS_MAX]; /* ~10 KiB: not on the stack */
    static const char *const names[HOSTSTATS_COUNTERS] = {
        [HOSTSTATS_CONNECTIONS] = "connections", [HOSTSTATS_DELIVERED] = "delivered",
        [HOSTSTATS_DEFERRED] = "deferred",       [HOSTSTATS_REFUSED] = "refused",
        [HOSTSTATS_TLS] = "tls",                 [HOSTSTATS_DOWNGRADES] = "downgrades",
    };
    uint64_t dropped;
    int n = outbound_host_stats(hosts, HOSTSTATS_MAX, &dropped);
    if (j) {
        jsonw_array(j, "smarthosts");
        for (int i = 0; i < n; i++) {
            jsonw_object(j, NULL);
            jsonw_int(j, "id", hosts[i].id);
            jsonw_string(j, "host", hosts[i].name);
            for (int c = 0; c < HOSTSTATS_COUNTERS; c++)
                jsonw_uint(j, names[c], hosts[i].count[c]);
            jsonw_end(j);
        }
        jsonw_end(j);
        jsonw_uint(j, "smarthosts_dropped", dropped);
        return;
    }
    if (!n)
        console_printf(con, "smarthost none contacted since reset\n");
    for (int i = 0; i < n; i++) {
        console_printf(con, "smarthost %lld %s", (long long)hosts[i].id, hosts[i].name);
        for (int c = 0; c < HOSTSTATS_COUNTERS; c++)
            console_printf(con, " %s %llu", names[c], (unsigned long long)hosts[i].count[c]);
        console_printf(con, "\n");
    }
    if (dropped)
        console_printf(con, "smarthost counts of %llu less recently used host(s) dropped "
                            "(%d are kept)\n", (unsigned long long)dropped, HOSTSTATS_MAX);
}

static void stats_database(struct console *con, struct jsonw *j)
{
    struct db *db = cfg_db();
    struct db_size_info sz;
    int sized = db && db_size(db, &sz) == DB_OK;
    const char *health = db ? db_health(db) : NULL;
    if (j) {
        if (!db) {
            jsonw_null(j, "database");
            return;
        }
        jsonw_object(j, "database");
        if (sized) {
            jsonw_uint(j, "bytes", sz.pages * sz.page_size);
            jsonw_uint(j, "pages", sz.pages);
            jsonw_uint(j, "page_size", sz.page_size);
            jsonw_uint(j, "free_pages", sz.free_pages);
        }
        jsonw_bool(j, "integrity_ok", !health);
        if (health)
            jsonw_string(j, "integrity_error", health);
        jsonw_end(j);
        return;
    }
    if (!db) {
        console_printf(con, "database  unavailable (see 'log')\n");
        return;
    }
    if (sized)
        console_printf(con, "database  %llu bytes (%llu pages of %llu, %llu free)\n",
                       (unsigned long long)(sz.pages * sz.page_size), (unsigned long long)sz.pages,
                       (unsigned long long)sz.page_size, (unsigned long long)sz.free_pages);
    else
        console_printf(con, "database  size not known: %s\n", db_errmsg(db));
    if (health)
        console_printf(con, "integrity check at boot failed: %s\n", health);
    else
        console_printf(con, "integrity ok (quick_check at boot)\n");
}

static void stats_json(struct jsonw *j, const struct inbound_stats *st, const struct dlv_stats *d,
                       const char *clock)
{
    jsonw_object(j, "smtp_in");
    jsonw_uint(j, "connections", st->connections);
    jsonw_uint(j, "active", st->active);
    jsonw_uint(j, "denied", st->denied);
    jsonw_uint(j, "refused_busy", st->refused_busy);
    jsonw_uint(j, "timeouts", st->timeouts);
    jsonw_uint(j, "tls", st->tls_sessions);
    jsonw_end(j);
    jsonw_object(j, "messages");
    jsonw_uint(j, "accepted", st->messages);
    jsonw_uint(j, "bytes", st->bytes);
    jsonw_uint(j, "rejected", st->rejected_msgs);
    jsonw_end(j);
    jsonw_object(j, "queue");
    jsonw_uint(j, "bytes", spool_queue_bytes());
    jsonw_int(j, "max", cfg_setting_int("queue-max-size"));
    jsonw_end(j);
    jsonw_object(j, "delivery");
    jsonw_uint(j, "delivered", d->delivered);
    jsonw_uint(j, "deferred", d->deferred);
    jsonw_uint(j, "failed", d->failed);
    jsonw_uint(j, "bounces", d->bounces);
    jsonw_uint(j, "tls_downgrades", d->downgrades);
    jsonw_uint(j, "in_flight", d->in_flight);
    jsonw_end(j);
    jsonw_object(j, "problems");
    jsonw_uint(j, "credentials_unreadable", d->creds_unreadable);
    jsonw_uint(j, "reports_not_queued", d->report_failures);
    jsonw_end(j);
    const struct clocksync *cs = clock_state();
    jsonw_object(j, "clock");
    jsonw_bool(j, "synchronized", cs->last_sync != 0);
    jsonw_bool(j, "valid", clock_valid());
    if (cs->last_sync) {
        jsonw_int(j, "last_sync", cs->last_sync);
        jsonw_string(j, "server", cs->server);
    }
    jsonw_string(j, "text", clock);
    jsonw_end(j);
}

static int cmd_stats(struct console *con, int argc, char **argv)
{
    (void)argv;
    if (argc != 0)
        return console_usage(con);
    struct inbound_stats st;
    inbound_stats(&st);
    struct dlv_stats d;
    dlv_stats(&d);
    char clock[CLOCKSYNC_SERVER_MAX + 128];
    clock_describe(clock, sizeof clock);
    struct jsonw *j = console_json(con);
    if (j) {
        jsonw_object(j, NULL);
        stats_json(j, &st, &d, clock);
    } else {
        console_printf(con, "smtp in   connections %llu active %lu denied %llu refused-busy %llu "
                            "timeouts %llu tls %llu\n",
                       (unsigned long long)st.connections, (unsigned long)st.active,
                       (unsigned long long)st.denied, (unsigned long long)st.refused_busy,
                       (unsigned long long)st.timeouts, (unsigned long long)st.tls_sessions);
        console_printf(con, "messages  accepted %llu bytes %llu rejected %llu\n",
                       (unsigned long long)st.messages, (unsigned long long)st.bytes,
                       (unsigned long long)st.rejected_msgs);
        console_printf(con, "queue     %llu bytes of %lld\n",
                       (unsigned long long)spool_queue_bytes(),
                       (long long)cfg_setting_int("queue-max-size"));
        console_printf(con, "delivery  delivered %llu deferred %llu failed %llu bounces %llu "
                            "tls-downgrades %llu in-flight %lu\n",
                       (unsigned long long)d.delivered, (unsigned long long)d.deferred,
                       (unsigned long long)d.failed, (unsigned long long)d.bounces,
                       (unsigned long long)d.downgrades, (unsigned long)d.in_flight);
        console_printf(con, "problems  credentials-unreadable %llu reports-not-queued %llu\n",
                       (unsigned long long)d.creds_unreadable,
                       (unsigned long long)d.report_failures);
        console_printf(con, "clock     %s\n", clock);
    }
    stats_uptime(con, j);
    stats_heap(con, j);
    stats_lwip(con, j);
    stats_smarthosts(con, j);
    stats_database(con, j);
    if (j)
        console_json_end(con);
    return 0;
}

/* --- tls show --- */

static int cmd_tls_show(struct console *con, int argc, char **argv)
{
    (void)argv;
    if (argc != 0)
        return console_usage(con);
    size_t len;
    const uint8_t *cert = inbound_cert(&len);
    struct crypto_cert_info info;
    if (!cert || crypto_cert_info(cert, len, &info) != 0)
        return console_error(con, "no TLS certificate: STARTTLS is not offered (see 'log')");
    struct jsonw *j = console_json(con);
    if (j) {
        jsonw_object(j, NULL);
        jsonw_string(j, "subject", info.subject);
        jsonw_string(j, "issuer", info.issuer);
        jsonw_string(j, "not_before", info.not_before);
        jsonw_string(j, "not_after", info.not_after);
        jsonw_string(j, "sha256", info.sha256);
        console_json_end(con);
        return 0;
    }
    console_printf(con, "subject  %s\n", info.subject);
    console_printf(con, "issuer   %s\n", info.issuer);
    console_printf(con, "valid    %s to %s UTC\n", info.not_before, info.not_after);
    console_printf(con, "sha256   %s\n", info.sha256);
    return 0;
}

/* --- inbound-auth --- */

static char pending_user[DB_USER_MAX + 1];

static void got_password(struct console *con, const char *password, void *ctx)
{
    (void)ctx;
    char err[CFG_ERR_MAX];
    if (!password)
        return;
    if (cfg_inbound_set(pending_user, password, err, sizeof err) != 0)
        console_error(con, "%s", err);
    else
        console_printf(con, "ok: inbound mail needs AUTH as %s (over TLS) from now on\n",
                       pending_user);
}

static int cmd_inbound_set(struct console *con, int argc, char **argv)
{
    char err[CFG_ERR_MAX];
    if (argc != 1)
        return console_usage(con);
    if (cfg_check_user(argv[0], err, sizeof err) != 0)
        return console_error(con, "%s", err);
    if (!cfg_db())
        return console_error(con, "storage is unavailable (see 'log')");
    snprintf(pending_user, sizeof pending_user, "%s", argv[0]);
    console_ask_new_password(con, cfg_check_password, got_password, NULL);
    return CONSOLE_PENDING;
}

static int cmd_inbound_clear(struct console *con, int argc, char **argv)
{
    (void)argv;
    char err[CFG_ERR_MAX];
    if (argc != 0)
        return console_usage(con);
    if (cfg_inbound_clear(err, sizeof err) != 0)
        return console_error(con, "%s", err);
    console_printf(con, "ok: inbound mail no longer needs AUTH (the allowlist still applies)\n");
    return 0;
}

static int cmd_inbound_show(struct console *con, int argc, char **argv)
{
    (void)argv;
    char user[DB_USER_MAX + 1];
    if (argc != 0)
        return console_usage(con);
    int required = cfg_inbound_enabled(user, sizeof user);
    struct jsonw *j = console_json(con);
    if (j) {
        jsonw_object(j, NULL);
        jsonw_bool(j, "required", required);
        if (required)
            jsonw_string(j, "user", user);
        console_json_end(con);
        return 0;
    }
    if (required)
        console_printf(con, "inbound AUTH required as %s (after STARTTLS)\n", user);
    else
        console_printf(con, "inbound AUTH not required (allowlist only)\n");
    return 0;
}

const struct console_cmd cmd_queue_table[] = {
    {"queue", "list", "", "queued messages: id, age, size, sender, recipients and states",
     cmd_queue_list},
    {"queue", "show", "<id>", "one message: envelope, headers, per-recipient state",
     cmd_queue_show},
    {"queue", "retry", "[<id>]", "try waiting recipients now (one message or all)",
     cmd_queue_retry},
    {"queue", "delete", "<id>", "remove a message from the queue, undelivered", cmd_queue_delete},
    {"queue", "history", "[N]", "last N delivery outcomes (default 20)", cmd_queue_history},
    {"stats", NULL, "", "counters, uptime, memory, smart hosts and database", cmd_stats},
    {"tls", "show", "", "the certificate offered to STARTTLS clients", cmd_tls_show},
    {"inbound-auth", "set", "<user>", "require SMTP AUTH as <user> (asks for the password)",
     cmd_inbound_set},
    {"inbound-auth", "clear", "", "stop requiring SMTP AUTH", cmd_inbound_clear},
    {"inbound-auth", "show", "", "whether SMTP AUTH is required", cmd_inbound_show},
    {NULL, NULL, NULL, NULL, NULL},
};
