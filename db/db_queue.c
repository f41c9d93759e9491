/* db_queue.c — the mail queue; see db_queue.h. */
#include "db_queue.h"

#include <string.h>

#include "db_internal.h"

int db_msg_create(struct db *db, const struct db_msg_new *m, int64_t *id)
{
    sqlite3_stmt *st;
    int rc = db_prepare(db,
                        "INSERT INTO message(state, received, sender, size, client, helo) "
                        "VALUES ('incoming', ?1, ?2, 0, ?3, ?4)",
                        &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, m->received);
    sqlite3_bind_text(st, 2, m->sender, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, m->client, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, m->helo, -1, SQLITE_STATIC);
    if ((rc = db_step_done(db, st)) == DB_OK)
        *id = sqlite3_last_insert_rowid(db->h);
    return rc;
}

int db_msg_chunk(struct db *db, int64_t id, int32_t seq, const void *data, size_t len)
{
    sqlite3_stmt *st;
    int rc = db_prepare(db, "INSERT INTO message_chunk(message, seq, data) VALUES (?1, ?2, ?3)",
                        &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int(st, 2, seq);
    sqlite3_bind_blob(st, 3, data, (int)len, SQLITE_STATIC);
    return db_step_done(db, st);
}

int db_msg_commit(struct db *db, int64_t id, uint64_t size, const char *message_id,
                  const char *const *rcpts, int rcpt_count, int64_t now)
{
    sqlite3_stmt *st;
    int rc = db_prepare(db,
                        "UPDATE message SET state = 'queued', size = ?2, message_id = ?3 "
                        "WHERE id = ?1 AND state = 'incoming'",
                        &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)size);
    sqlite3_bind_text(st, 3, message_id, -1, SQLITE_STATIC);
    if ((rc = db_step_done(db, st)) != DB_OK)
        return rc;
    if (sqlite3_changes(db->h) != 1)
        return DB_ENOTFOUND;
    if ((rc = db_prepare(db,
                         "INSERT INTO recipient(message, address, domain, updated) "
                         "VALUES (?1, ?2, lower(?4), ?3)",
                         &st)) != DB_OK)
        return rc;
    for (int i = 0; i < rcpt_count && rc == DB_OK; i++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_text(st, 2, rcpts[i], -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, now);
        /* The domain follows the last '@' (a quoted local part may hold one). */
        const char *at = strrchr(rcpts[i], '@');
        sqlite3_bind_text(st, 4, at ? at + 1 : "", -1, SQLITE_STATIC);
        int step = sqlite3_step(st);
        rc = step == SQLITE_DONE ? DB_OK : db_rc_from(step);
    }
    db_release(db, st);
    return rc;
}

int db_msg_discard(struct db *db, int64_t id)
{
    sqlite3_stmt *st;
    int rc = db_prepare(db, "DELETE FROM message WHERE id = ?1 AND state = 'incoming'", &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    return db_step_done(db, st);
}

int64_t db_msg_discard_incoming(struct db *db)
{
    sqlite3_stmt *st;
    int rc = db_prepare(db, "DELETE FROM message WHERE state = 'incoming'", &st);
    if (rc)
        return rc;
    if ((rc = db_step_done(db, st)) != DB_OK)
        return rc;
    return sqlite3_changes(db->h);
}

int64_t db_queue_bytes(struct db *db)
{
    sqlite3_stmt *st;
    if (db_prepare(db, "SELECT coalesce(sum(size), 0) FROM message WHERE state = 'queued'", &st))
        return -1;
    int64_t n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    db_release(db, st);
    return n;
}

#define MSG_COLUMNS "id, received, sender, size, client, helo, message_id"

static void read_msg(sqlite3_stmt *st, struct db_msg *m)
{
    memset(m, 0, sizeof *m);
    m->id = sqlite3_column_int64(st, 0);
    m->received = sqlite3_column_int64(st, 1);
    db_column_text(st, 2, m->sender, sizeof m->sender);
    m->size = (uint64_t)sqlite3_column_int64(st, 3);
    db_column_text(st, 4, m->client, sizeof m->client);
    db_column_text(st, 5, m->helo, sizeof m->helo);
    db_column_text(st, 6, m->message_id, sizeof m->message_id);
}

int db_queue_list(struct db *db, db_msg_fn fn, void *ctx)
{
    return db_queue_page(db, 0, -1, fn, ctx);
}

int db_queue_page(struct db *db, int64_t after_id, int limit, db_msg_fn fn, void *ctx)
{
    sqlite3_stmt *st;
    int rc = db_prepare(db,
                        "SELECT " MSG_COLUMNS " FROM message WHERE state = 'queued' AND id > ?1 "
                        "ORDER BY id LIMIT ?2",
                        &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, after_id);
    sqlite3_bind_int(st, 2, limit);
    struct db_msg m;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        read_msg(st, &m);
        fn(ctx, &m);
    }
    db_release(db, st);
    return rc == SQLITE_DONE ? DB_OK : db_rc_from(rc);
}

int db_msg_get(struct db *db, int64_t id, struct db_msg *m)
{
    sqlite3_stmt *st;
    int rc = db_prepare(db, "SELECT " MSG_COLUMNS " FROM message WHERE id = ?1 AND state = 'queued'",
                        &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        read_msg(st, m);
    db_release(db, st);
    return rc == SQLITE_ROW ? DB_OK : rc == SQLITE_DONE ? DB_ENOTFOUND : db_rc_from(rc);
}

int db_msg_recipients(struct db *db, int64_t id, db_rcpt_fn fn, void *ctx)
{
    sqlite3_stmt *st;
    int rc = db_prepare(db,
                        "SELECT id, address, state, attempts, next_attempt, last_reply "
                        "FROM recipient WHERE message = ?1 ORDER BY id",
                        &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    struct db_rcpt r;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        memset(&r, 0, sizeof r);
        r.id = sqlite3_column_int64(st, 0);
        db_column_text(st, 1, r.address, sizeof r.address);
        db_column_text(st, 2, r.state, sizeof r.state);
        r.attempts = sqlite3_column_int(st, 3);
        r.next_attempt = sqlite3_column_int64(st, 4);
        db_column_text(st, 5, r.last_reply, sizeof r.last_reply);
        fn(ctx, &r);
    }
    db_release(db, st);
    return rc == SQLITE_DONE ? DB_OK : db_rc_from(rc);
}

int db_msg_body(struct db *db, int64_t id, db_chunk_fn fn, void *ctx)
{
    sqlite3_stmt *st;
    int rc = db_prepare(db, "SELECT data FROM message_chunk WHERE message = ?1 ORDER BY seq", &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const void *p = sqlite3_column_blob(st, 0);
        int n = sqlite3_column_bytes(st, 0);
        if (fn(ctx, p, (size_t)n) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    db_release(db, st);
    return rc == SQLITE_DONE ? DB_OK : db_rc_from(rc);
}

/* --- delivery --- */

int db_due_list(struct db *db, int64_t now, const char *domain, const char *skip, int limit,
                db_due_fn fn, void *ctx)
{
    sqlite3_stmt *st;
    int rc = db_prepare(db,
                        "SELECT r.id, r.message, r.address, r.domain, r.attempts, m.received, "
                        "m.sender, m.size, r.last_reply = '" DB_RCPT_RESET_REPLY "' "
                        "FROM recipient r JOIN message m ON m.id = r.message "
                        "WHERE m.state = 'queued' AND r.state IN ('queued','deferred') "
                        "AND r.next_attempt <= ?1 AND (?3 IS NULL OR r.domain = ?3) "
                        "AND (?4 IS NULL OR instr(?4, char(10) || r.domain || char(10)) = 0) "
                        "ORDER BY r.message, r.domain, r.id LIMIT ?2",
                        &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int(st, 2, limit);
    if (domain)
        sqlite3_bind_text(st, 3, domain, -1, SQLITE_STATIC);
    if (skip)
        sqlite3_bind_text(st, 4, skip, -1, SQLITE_STATIC);
    struct db_due d;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        memset(&d, 0, sizeof d);
        d.rcpt_id = sqlite3_column_int64(st, 0);
        d.msg_id = sqlite3_column_int64(st, 1);
        db_column_text(st, 2, d.address, sizeof d.address);
        db_column_text(st, 3, d.domain, sizeof d.domain);
        d.attempts = sqlite3_column_int(st, 4);
        d.received = sqlite3_column_int64(st, 5);
        db_column_text(st, 6, d.sender, sizeof d.sender);
        d.size = (uint64_t)sqlite3_column_int64(st, 7);
        d.recovered = sqlite3_column_int(st, 8);
        fn(ctx, &d);
    }
    db_release(db, st);
    return rc == SQLITE_DONE ? DB_OK : db_rc_from(rc);
}

static int64_t single_int(struct db *db, const char *sql, int64_t arg, int64_t fallback)
{
    sqlite3_stmt *st;
    if (db_prepare(db, sql, &st) != DB_OK)
        return fallback;
    sqlite3_bind_int64(st, 1, arg);
    int64_t v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : fallback;
    db_release(db, st);
    return v;
}

int64_t db_next_due(struct db *db)
{
    return single_int(db,
                      "SELECT coalesce(min(r.next_attempt), 0) FROM recipient r JOIN message m "
                      "ON m.id = r.message WHERE m.state = 'queued' "
                      "AND r.state IN ('queued','deferred') AND ?1 = ?1",
                      0, 0);
}

static int64_t exec_changes(struct db *db, const char *sql, int64_t a, int64_t b)
{
    sqlite3_stmt *st;
    int rc = db_prepare(db, sql, &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, a);
    sqlite3_bind_int64(st, 2, b);
    if ((rc = db_step_done(db, st)) != DB_OK)
        return rc;
    return sqlite3_changes(db->h);
}

int64_t db_rcpt_reset_delivering(struct db *db)
{
    return exec_changes(db, "UPDATE recipient SET state = 'queued', next_attempt = 0, "
                            "attempts = attempts + 1, "
                            "last_reply = '" DB_RCPT_RESET_REPLY "' WHERE state = 'delivering' "
                            "AND ?1 = ?1 AND ?2 = ?2", 0, 0);
}

int db_rcpt_update(struct db *db, int64_t rcpt_id, const char *state, int32_t attempts,
                   int64_t next_attempt, const char *last_reply, int64_t now)
{
    sqlite3_stmt *st;
    int rc = db_prepare(db,
                        "UPDATE recipient SET state = ?2, attempts = ?3, next_attempt = ?4, "
                        "last_reply = ?5, updated = ?6 WHERE id = ?1",
                        &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, rcpt_id);
    sqlite3_bind_text(st, 2, state, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, attempts);
    sqlite3_bind_int64(st, 4, next_attempt);
    sqlite3_bind_text(st, 5, last_reply, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, now);
    return db_step_done(db, st);
}

int64_t db_msg_pending(struct db *db, int64_t msg_id)
{
    return single_int(db, "SELECT count(*) FROM recipient WHERE message = ?1 "
                          "AND state NOT IN ('delivered','failed')", msg_id, -1);
}

int64_t db_msg_delivering(struct db *db, int64_t msg_id)
{
    return single_int(db, "SELECT count(*) FROM recipient WHERE message = ?1 "
                          "AND state = 'delivering'", msg_id, -1);
}

int db_msg_delete(struct db *db, int64_t msg_id)
{
    int64_t n = exec_changes(db, "DELETE FROM message WHERE id = ?1 AND ?2 = ?2", msg_id, 0);
    return n < 0 ? (int)n : n == 0 ? DB_ENOTFOUND : DB_OK;
}

int64_t db_queue_retry(struct db *db, int64_t msg_id, int64_t now)
{
    return exec_changes(db, "UPDATE recipient SET next_attempt = ?2 WHERE state IN "
                            "('queued','deferred') AND (?1 = 0 OR message = ?1)", msg_id, now);
}

int64_t db_queue_rebase(struct db *db, int64_t delta)
{
    int64_t m = exec_changes(db, "UPDATE message SET received = received + ?1 WHERE ?2 = ?2",
                             delta, 0);
    if (m < 0)
        return m;
    int64_t r = exec_changes(db,
                             "UPDATE recipient SET updated = updated + ?1, next_attempt = "
                             "CASE WHEN next_attempt = 0 THEN 0 ELSE next_attempt + ?1 END "
                             "WHERE ?2 = ?2",
                             delta, 0);
    return r < 0 ? r : m + r;
}

int db_msg_chunk_read(struct db *db, int64_t msg_id, int32_t seq, uint8_t *buf, size_t cap,
                      size_t *len)
{
    sqlite3_stmt *st;
    int rc = db_prepare(db, "SELECT data FROM message_chunk WHERE message = ?1 AND seq = ?2", &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, msg_id);
    sqlite3_bind_int(st, 2, seq);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        int n = sqlite3_column_bytes(st, 0);
        if (n < 0 || (size_t)n > cap) {
            rc = DB_EIO;
        } else {
            memcpy(buf, sqlite3_column_blob(st, 0), (size_t)n);
            *len = (size_t)n;
            rc = DB_OK;
        }
    } else {
        rc = rc == SQLITE_DONE ? DB_ENOTFOUND : db_rc_from(rc);
    }
    db_release(db, st);
    return rc;
}

int db_history_add(struct db *db, const struct db_history *h)
{
    sqlite3_stmt *st;
    int rc = db_prepare(db,
                        "INSERT INTO history(queue_id, message_id, sender, recipient, outcome, "
                        "attempts, smarthost, tls, reply, received, finished) "
                        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                        &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, h->queue_id);
    sqlite3_bind_text(st, 2, h->message_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, h->sender, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, h->recipient, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, h->outcome, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 6, h->attempts);
    sqlite3_bind_text(st, 7, h->smarthost, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, h->tls, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 9, h->reply, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 10, h->received);
    sqlite3_bind_int64(st, 11, h->finished);
    return db_step_done(db, st);
}

#define HISTORY_COLUMNS                                                                         \
    "queue_id, message_id, sender, recipient, outcome, attempts, smarthost, tls, reply, "      \
    "received, finished, id"

/* Rows of HISTORY_COLUMNS to `fn`; the last id seen into *last_id. */
static int read_history(struct db *db, sqlite3_stmt *st, db_history_fn fn, void *ctx,
                        int64_t *last_id)
{
    int rc;
    struct db_history h;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        memset(&h, 0, sizeof h);
        h.queue_id = sqlite3_column_int64(st, 0);
        db_column_text(st, 1, h.message_id, sizeof h.message_id);
        db_column_text(st, 2, h.sender, sizeof h.sender);
        db_column_text(st, 3, h.recipient, sizeof h.recipient);
        db_column_text(st, 4, h.outcome, sizeof h.outcome);
        h.attempts = sqlite3_column_int(st, 5);
        db_column_text(st, 6, h.smarthost, sizeof h.smarthost);
        db_column_text(st, 7, h.tls, sizeof h.tls);
        db_column_text(st, 8, h.reply, sizeof h.reply);
        h.received = sqlite3_column_int64(st, 9);
        h.finished = sqlite3_column_int64(st, 10);
        if (last_id)
            *last_id = sqlite3_column_int64(st, 11);
        fn(ctx, &h);
    }
    db_release(db, st);
    return rc == SQLITE_DONE ? DB_OK : db_rc_from(rc);
}

int db_history_tail(struct db *db, int n, int64_t *after)
{
    return db_tail_after(db, "SELECT id FROM history ORDER BY id DESC LIMIT 1 OFFSET ?1", n,
                         after);
}

int db_history_page(struct db *db, int64_t after_id, int limit, db_history_fn fn, void *ctx,
                    int64_t *last_id)
{
    sqlite3_stmt *st;
    int rc = db_prepare(db,
                        "SELECT " HISTORY_COLUMNS " FROM history WHERE id > ?1 ORDER BY id "
                        "LIMIT ?2",
                        &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, after_id);
    sqlite3_bind_int(st, 2, limit);
    return read_history(db, st, fn, ctx, last_id);
}

int db_history_list(struct db *db, int n, db_history_fn fn, void *ctx)
{
    int64_t after, last;
    int rc = db_history_tail(db, n, &after);
    return rc ? rc : db_history_page(db, after, n, fn, ctx, &last);
}

/* --- trusted CAs --- */

int db_tls_ca_view(struct db *db, db_pem_fn fn, void *ctx)
{
    sqlite3_stmt *st;
    int rc = db_prepare(db, "SELECT pem FROM tls_ca WHERE id = 1", &st);
    if (rc)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        int n = sqlite3_column_bytes(st, 0);
        fn(ctx, sqlite3_column_blob(st, 0), n > 0 ? (size_t)n : 0);
        rc = DB_OK;
    } else {
        rc = rc == SQLITE_DONE ? DB_ENOTFOUND : db_rc_from(rc);
    }
    db_release(db, st);
    return rc;
}

struct ca_copy {
    uint8_t *pem;
    size_t cap, len;
    int too_big;
};

static void copy_ca(void *ctx, const uint8_t *pem, size_t len)
{
    struct ca_copy *c = ctx;
    c->too_big = len > c->cap;
    if (!c->too_big) {
        memcpy(c->pem, pem, len);
        c->len = len;
    }
}

int db_tls_ca_get(struct db *db, uint8_t *pem, size_t *len)
{
    struct ca_copy c = {pem, *len, 0, 0};
    int rc = db_tls_ca_view(db, copy_ca, &c);
    if (rc == DB_OK && c.too_big)
        return DB_EIO;
    if (rc == DB_OK)
        *len = c.len;
    return rc;
}

int db_tls_ca_set(struct db *db, const uint8_t *pem, size_t len, int64_t now)
{
    sqlite3_stmt *st;
    int rc = db_prepare(db, "INSERT OR REPLACE INTO tls_ca(id, pem, updated) VALUES (1, ?1, ?2)",
                        &st);
    if (rc)
        return rc;
    sqlite3_bind_blob(st, 1, pem, (int)len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now);
    return db_step_done(db, st);
}

int db_tls_ca_clear(struct db *db)
{
    sqlite3_stmt *st;
    int rc = db_prepare(db, "DELETE FROM tls_ca", &st);
    return rc ? rc : db_step_done(db, st);
}
