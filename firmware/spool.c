/* spool.c — accepted mail into the queue; see spool.h. */
#include "spool.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "db.h"
#include "hal_clock.h"
#include "log.h"

static struct db *store;
static uint64_t queue_bytes;
static uint64_t inflight; /* sum of `size` over every open message */
static struct spool_msg *finished; /* waiting for spool_flush, in order */

int spool_init(struct db *db)
{
    store = db;
    finished = NULL;
    inflight = 0;
    if (!db)
        return -1;
    int64_t dropped = db_msg_discard_incoming(db);
    if (dropped > 0)
        log_warn("spool", "dropped %lld incomplete message(s) left by a reset", (long long)dropped);
    int64_t bytes = db_queue_bytes(db);
    queue_bytes = bytes > 0 ? (uint64_t)bytes : 0;
    return dropped < 0 || bytes < 0 ? -1 : 0;
}

uint64_t spool_queue_bytes(void) { return queue_bytes; }

uint64_t spool_inflight_bytes(void) { return inflight; }

/* The bytes of an open message stop counting as in flight. */
static void release(struct spool_msg *m)
{
    if (!m->id)
        return;
    inflight = m->size < inflight ? inflight - m->size : 0;
}

void spool_forget(uint64_t size) { queue_bytes = size < queue_bytes ? queue_bytes - size : 0; }

int spool_has_room(uint64_t size)
{
    if (!store)
        return 0;
    uint64_t cap = (uint64_t)cfg_setting_int("queue-max-size");
    uint64_t used = queue_bytes + inflight;
    return used < cap && size <= cap - used;
}

int spool_begin(struct spool_msg *m, const struct db_msg_new *info)
{
    m->id = 0;
    m->seq = 0;
    m->size = 0;
    m->len = 0;
    m->failed = 0;
    /* Read once per message: a settings lookup per write would cost a
     * query for every 2 KiB the engine hands over. */
    int64_t cap = cfg_setting_int("queue-max-size");
    m->cap = cap > 0 ? (uint64_t)cap : 0;
    m->in_headers = 1;
    m->hdr_len = 0;
    m->message_id[0] = '\0';
    m->next = NULL;
    if (!store)
        return SPOOL_ERR;
    /* Staging: an incoming message only matters once spool_flush()'s
     * durable commit covers it. */
    int rc = db_begin_staging(store);
    if (rc == DB_OK)
        rc = db_msg_create(store, info, &m->id);
    if (rc == DB_OK)
        rc = db_commit(store);
    if (rc != DB_OK) {
        db_rollback(store);
        log_err("spool", "cannot create a message: %s", db_errmsg(store));
        m->id = 0;
        return SPOOL_ERR;
    }
    return 0;
}

/* Note the Message-ID header as header lines stream past (folded
 * continuation lines are not followed: the id is on the first line in
 * practice, and this is only for the delivery history). */
static void scan_headers(struct spool_msg *m, const uint8_t *p, size_t n)
{
    static const char key[] = "message-id:";
    for (size_t i = 0; i < n && m->in_headers; i++) {
        char c = (char)p[i];
        if (c == '\n') {
            if (m->hdr_len == 1 && m->hdr_line[0] == '\r') {
                m->in_headers = 0; /* the blank line ends the headers */
                break;
            }
            if (!m->message_id[0] && m->hdr_len > sizeof key &&
                strncasecmp(m->hdr_line, key, sizeof key - 1) == 0) {
                const char *v = m->hdr_line + sizeof key - 1;
                size_t vl = m->hdr_len - (sizeof key - 1);
                while (vl && (*v == ' ' || *v == '\t'))
                    v++, vl--;
                while (vl && isspace((unsigned char)v[vl - 1]))
                    vl--;
                if (vl > SPOOL_MSGID_MAX)
                    vl = SPOOL_MSGID_MAX;
                memcpy(m->message_id, v, vl);
                m->message_id[vl] = '\0';
            }
            m->hdr_len = 0;
        } else if (m->hdr_len < sizeof m->hdr_line) {
            m->hdr_line[m->hdr_len++] = c;
        }
    }
}

/* Store the buffered chunk, inside the caller's transaction. */
static int store_chunk(struct spool_msg *m)
{
    if (!m->len)
        return 0;
    if (db_msg_chunk(store, m->id, m->seq, m->buf, m->len) != DB_OK) {
        log_err("spool", "cannot store message %lld: %s", (long long)m->id, db_errmsg(store));
        return -1;
    }
    m->seq++;
    m->len = 0;
    return 0;
}

int spool_write(struct spool_msg *m, const uint8_t *data, size_t len)
{
    if (!m->id)
        return SPOOL_ERR;
    if (m->failed)
        return m->failed;
    /* Every stored byte counts, declared SIZE or not: 64 sessions without
     * SIZE= must not each add max-message-size past the cap. */
    if (queue_bytes + inflight + len > m->cap) {
        m->failed = SPOOL_NO_ROOM;
        return SPOOL_NO_ROOM;
    }
    scan_headers(m, data, len);
    m->size += len;
    inflight += len;
    while (len) {
        size_t take = sizeof m->buf - m->len;
        if (take > len)
            take = len;
        memcpy(m->buf + m->len, data, take);
        m->len += take;
        data += take;
        len -= take;
        if (m->len == sizeof m->buf) {
            int rc = db_begin_staging(store);
            if (rc == DB_OK && (rc = store_chunk(m)) == 0)
                rc = db_commit(store);
            if (rc != DB_OK) {
                db_rollback(store);
                m->failed = SPOOL_ERR;
                return SPOOL_ERR;
            }
        }
    }
    return 0;
}

int spool_over_cap_ok(struct spool_msg *m)
{
    if (!m->id)
        return SPOOL_ERR;
    m->cap = UINT64_MAX;
    return 0;
}

void spool_finish(struct spool_msg *m, const char *const *rcpts, int rcpt_count,
                  spool_done_fn done, void *ctx)
{
    m->rcpts = rcpts;
    m->rcpt_count = rcpt_count;
    m->done = done;
    m->done_ctx = ctx;
    m->next = NULL;
    struct spool_msg **tail = &finished;
    while (*tail)
        tail = &(*tail)->next;
    *tail = m;
}

static void unlink_finished(struct spool_msg *m)
{
    for (struct spool_msg **p = &finished; *p; p = &(*p)->next)
        if (*p == m) {
            *p = m->next;
            break;
        }
    m->next = NULL;
}

void spool_abort(struct spool_msg *m)
{
    unlink_finished(m);
    release(m);
    if (m->id && store) {
        int rc = db_begin_staging(store);
        if (rc == DB_OK)
            rc = db_msg_discard(store, m->id);
        if (rc == DB_OK)
            rc = db_commit(store);
        if (rc != DB_OK)
            db_rollback(store);
        if (rc != DB_OK)
            log_warn("spool", "cannot drop message %lld now; it goes at the next boot",
                     (long long)m->id);
    }
    m->id = 0;
    m->len = 0;
}

int spool_flush(void)
{
    if (!finished)
        return 0;
    struct spool_msg *batch = finished;
    finished = NULL;
    /* A spoiled message (a failed write: no room, or a hole) is refused on
     * its own; it must not take the others of the batch down with it. */
    struct spool_msg *spoiled = NULL, **keep = &batch;
    while (*keep) {
        struct spool_msg *m = *keep;
        if (m->failed) {
            *keep = m->next;
            m->next = spoiled;
            spoiled = m;
        } else {
            keep = &m->next;
        }
    }
    while (spoiled) {
        struct spool_msg *m = spoiled;
        spoiled = m->next;
        m->next = NULL;
        int64_t id = m->id;
        spool_abort(m);
        if (m->done)
            m->done(m->done_ctx, 0, id);
    }
    if (!batch)
        return 0;
    int64_t now = hal_clock_wall();
    int rc = db_begin(store); /* durable: the 250s wait for this fsync */
    uint64_t added = 0;
    for (struct spool_msg *m = batch; m && rc == DB_OK; m = m->next) {
        if (store_chunk(m) != 0) /* never commit a message with a hole */
            rc = DB_EIO;
        else
            rc = db_msg_commit(store, m->id, m->size, m->message_id, m->rcpts, m->rcpt_count, now);
        added += m->size;
    }
    if (rc == DB_OK)
        rc = db_commit(store);
    int ok = rc == DB_OK;
    if (!ok) {
        log_err("spool", "queue commit failed: %s", db_errmsg(store));
        db_rollback(store);
    } else {
        queue_bytes += added;
    }
    int count = 0;
    while (batch) {
        struct spool_msg *m = batch;
        batch = m->next;
        m->next = NULL;
        int64_t id = m->id;
        if (ok)
            release(m); /* now counted in queue_bytes */
        else
            spool_abort(m);
        m->id = 0;
        count++;
        if (m->done)
            m->done(m->done_ctx, ok, id);
    }
    return ok ? count : 0;
}
