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
    if ((rc = db_step_done(st)) == DB_OK)
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
    return db_step_done(st);
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
    if ((rc = db_step_done(st)) != DB_OK)
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
    sqlite3_finalize(st);
    return rc;
}

int db_msg_discard(struct db *db, int64_t id)
{
    sqlite3_stmt *st;
    int rc = db_prepare(db, "DELETE FROM message WHERE id = ?1 AND state = 'incoming'", &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    return db_step_done(st);
}

int64_t db_msg_discard_incoming(struct db *db)
{
    sqlite3_stmt *st;
    int rc = db_prepare(db, "DELETE FROM message WHERE state = 'incoming'", &st);
    if (rc)
        return rc;
    if ((rc = db_step_done(st)) != DB_OK)
        return rc;
    return sqlite3_changes(db->h);
}

int64_t db_queue_bytes(struct db *db)
{
    sqlite3_stmt *st;
    if (db_prepare(db, "SELECT coalesce(sum(size), 0) FROM message WHERE state = 'queued'", &st))
        return -1;
    int64_t n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
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
    sqlite3_stmt *st;
    int rc = db_prepare(db, "SELECT " MSG_COLUMNS " FROM message WHERE state = 'queued' ORDER BY id",
                        &st);
    if (rc)
        return rc;
    struct db_msg m;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        read_msg(st, &m);
        fn(ctx, &m);
    }
    sqlite3_finalize(st);
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
    sqlite3_finalize(st);
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
    sqlite3_finalize(st);
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
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? DB_OK : db_rc_from(rc);
}
