/* db.c — open, check, migrate, transactions; see db.h. */
#include "db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_internal.h"

/* Config commands and tests may hold the database for a moment from
 * another connection (the sqlite3 shell in a test); wait that long. */
#define BUSY_TIMEOUT_MS 2000

int db_rc_from(int rc)
{
    switch (rc & 0xFF) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW: return DB_OK;
    case SQLITE_CONSTRAINT: return DB_EEXISTS;
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT: return DB_ENOTDB;
    case SQLITE_FULL: return DB_EFULL;
    default: return DB_EIO;
    }
}

int db_prepare(struct db *db, const char *sql, sqlite3_stmt **st)
{
    struct db_stmt_slot *free_slot = NULL;
    for (int i = 0; i < DB_STMT_CACHE; i++) {
        struct db_stmt_slot *s = &db->stmts[i];
        if (!s->st) {
            if (!free_slot)
                free_slot = s;
        } else if (s->sql == sql && !s->busy && strcmp(sqlite3_sql(s->st), sql) == 0) {
            s->busy = 1;
            *st = s->st;
            return DB_OK;
        }
    }
    /* Busy (a statement in use while its callback runs the same SQL) or
     * not kept yet: a new one, kept if there is room. */
    int rc = sqlite3_prepare_v3(db->h, sql, -1, free_slot ? SQLITE_PREPARE_PERSISTENT : 0, st,
                                NULL);
    if (rc != SQLITE_OK)
        return db_rc_from(rc);
    if (free_slot)
        *free_slot = (struct db_stmt_slot){sql, *st, 1};
    return DB_OK;
}

void db_release(struct db *db, sqlite3_stmt *st)
{
    for (int i = 0; i < DB_STMT_CACHE; i++)
        if (db->stmts[i].st == st) {
            sqlite3_reset(st);
            sqlite3_clear_bindings(st);
            db->stmts[i].busy = 0;
            return;
        }
    sqlite3_finalize(st);
}

/* Drop every kept statement (closing, or after a schema change). */
static void forget_statements(struct db *db)
{
    for (int i = 0; i < DB_STMT_CACHE; i++)
        if (db->stmts[i].st) {
            sqlite3_finalize(db->stmts[i].st);
            db->stmts[i] = (struct db_stmt_slot){NULL, NULL, 0};
        }
}

int db_step_done(struct db *db, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    db_release(db, st);
    return rc == SQLITE_DONE ? DB_OK : db_rc_from(rc);
}

/* One statement, through the kept ones (BEGIN, COMMIT and the PRAGMAs of
 * every transaction). */
static int run(struct db *db, const char *sql)
{
    sqlite3_stmt *st;
    int rc = db_prepare(db, sql, &st);
    if (rc != DB_OK)
        return rc;
    rc = sqlite3_step(st);
    db_release(db, st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? DB_OK : db_rc_from(rc);
}

void db_column_text(sqlite3_stmt *st, int col, char *buf, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    snprintf(buf, cap, "%s", t ? (const char *)t : "");
}

static int exec(struct db *db, const char *sql)
{
    return db_rc_from(sqlite3_exec(db->h, sql, NULL, NULL, NULL));
}

static int read_version(struct db *db, uint32_t *v)
{
    sqlite3_stmt *st;
    int rc = db_prepare(db, "PRAGMA user_version", &st);
    if (rc)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *v = (uint32_t)sqlite3_column_int64(st, 0);
    db_release(db, st);
    return rc == SQLITE_ROW ? DB_OK : db_rc_from(rc);
}

/* One integer from a PRAGMA that returns one row. */
static int pragma_u64(struct db *db, const char *sql, uint64_t *v)
{
    sqlite3_stmt *st;
    int rc = db_prepare(db, sql, &st);
    if (rc)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *v = (uint64_t)sqlite3_column_int64(st, 0);
    db_release(db, st);
    return rc == SQLITE_ROW ? DB_OK : db_rc_from(rc);
}

int db_size(struct db *db, struct db_size_info *out)
{
    memset(out, 0, sizeof *out);
    int rc = pragma_u64(db, "PRAGMA page_count", &out->pages);
    if (rc == DB_OK)
        rc = pragma_u64(db, "PRAGMA page_size", &out->page_size);
    if (rc == DB_OK)
        rc = pragma_u64(db, "PRAGMA freelist_count", &out->free_pages);
    if (rc != DB_OK)
        memset(out, 0, sizeof *out);
    return rc;
}

/* quick_check returns "ok" or up to N lines of problems. */
static void quick_check(struct db *db)
{
    sqlite3_stmt *st;
    db->health[0] = '\0';
    if (db_prepare(db, "PRAGMA quick_check(3)", &st) != DB_OK) {
        snprintf(db->health, sizeof db->health, "quick_check failed: %s", sqlite3_errmsg(db->h));
        return;
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *line = (const char *)sqlite3_column_text(st, 0);
        if (line && strcmp(line, "ok") != 0 && !db->health[0])
            snprintf(db->health, sizeof db->health, "%s", line);
    }
    if (rc != SQLITE_DONE && !db->health[0])
        snprintf(db->health, sizeof db->health, "quick_check failed: %s", sqlite3_errmsg(db->h));
    db_release(db, st);
}

static int migrate(struct db *db, const struct db_migration *m, size_t count, uint32_t target,
                   char *err, size_t errlen)
{
    uint32_t v;
    int rc = read_version(db, &v);
    if (rc) {
        snprintf(err, errlen, "cannot read schema version: %s", sqlite3_errmsg(db->h));
        return rc;
    }
    if (v >= target) {
        db->version = v; /* same major, same or newer minor: additive, usable */
        return DB_OK;
    }
    if ((rc = db_begin(db)) != DB_OK) {
        snprintf(err, errlen, "cannot start migration: %s", sqlite3_errmsg(db->h));
        return rc;
    }
    for (size_t i = 0; i < count; i++) {
        if (m[i].to <= v || m[i].to > target)
            continue;
        if ((rc = exec(db, m[i].sql)) != DB_OK) {
            snprintf(err, errlen, "migration to %u.%u failed: %s", DB_VERSION_MAJOR(m[i].to),
                     DB_VERSION_MINOR(m[i].to), sqlite3_errmsg(db->h));
            db_rollback(db);
            return rc;
        }
    }
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version = %lu", (unsigned long)target);
    if ((rc = exec(db, sql)) != DB_OK || (rc = db_commit(db)) != DB_OK) {
        snprintf(err, errlen, "cannot commit migration: %s", sqlite3_errmsg(db->h));
        db_rollback(db);
        return rc;
    }
    db->version = target;
    return DB_OK;
}

int db_open_with(struct db **out, const char *path, const struct db_migration *migrations,
                 size_t count, uint32_t target, char *err, size_t errlen)
{
    *out = NULL;
    struct db *db = calloc(1, sizeof *db);
    if (!db) {
        snprintf(err, errlen, "out of memory");
        return DB_EIO;
    }
    int rc = sqlite3_open_v2(path, &db->h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "cannot open %s: %s", path, db->h ? sqlite3_errmsg(db->h) : "?");
        db_close(db);
        return db_rc_from(rc);
    }
    sqlite3_extended_result_codes(db->h, 0);
    sqlite3_busy_timeout(db->h, BUSY_TIMEOUT_MS);
    /* The first statement reads the header: a file that is not a database
     * fails here, and a newer major is refused here, before anything —
     * even the journal mode — is written. */
    uint32_t v;
    if ((rc = read_version(db, &v)) != DB_OK) {
        snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(db->h));
        db_close(db);
        return rc;
    }
    if (DB_VERSION_MAJOR(v) > DB_VERSION_MAJOR(target)) {
        snprintf(err, errlen, "database schema %u.%u is newer than this firmware's %u.%u; "
                 "left untouched", DB_VERSION_MAJOR(v), DB_VERSION_MINOR(v),
                 DB_VERSION_MAJOR(target), DB_VERSION_MINOR(target));
        db_close(db);
        return DB_ETOONEW;
    }
    /* An in-memory database (tests) cannot use WAL: SQLite answers "memory". */
    const char *want = strcmp(path, ":memory:") == 0 ? "memory" : "wal";
    char got[16] = "";
    sqlite3_stmt *st;
    rc = sqlite3_prepare_v2(db->h, "PRAGMA journal_mode=WAL", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        const char *mode = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
        if (mode)
            snprintf(got, sizeof got, "%s", mode);
        rc = (mode && strcmp(mode, want) == 0) ? SQLITE_OK : (rc == SQLITE_ROW ? SQLITE_ERROR : rc);
        db_release(db, st);
    }
    if (rc != SQLITE_OK) {
        if (got[0])
            snprintf(err, errlen, "%s: journal mode is %s, not %s", path, got, want);
        else
            snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(db->h));
        int mapped = db_rc_from(rc);
        db_close(db);
        return mapped == DB_OK ? DB_EIO : mapped;
    }
    if ((rc = exec(db, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON")) != DB_OK) {
        snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(db->h));
        db_close(db);
        return rc;
    }
    quick_check(db);
    if ((rc = migrate(db, migrations, count, target, err, errlen)) != DB_OK) {
        db_close(db);
        return rc;
    }
    *out = db;
    return DB_OK;
}

int db_open(struct db **out, const char *path, char *err, size_t errlen)
{
    return db_open_with(out, path, db_schema_migrations, db_schema_migration_count,
                        DB_SCHEMA_VERSION, err, errlen);
}

void db_close(struct db *db)
{
    if (!db)
        return;
    forget_statements(db);
    sqlite3_close_v2(db->h);
    free(db);
}

const char *db_health(const struct db *db) { return db->health[0] ? db->health : NULL; }
uint32_t db_version(const struct db *db) { return db->version; }
/* A successful ROLLBACK resets SQLite's message to "not an error", and
 * callers roll back before reporting: keep the reason across it. */
const char *db_errmsg(const struct db *db)
{
    if (sqlite3_errcode(db->h) == SQLITE_OK && db->failed[0])
        return db->failed;
    return sqlite3_errmsg(db->h);
}

/* Back to the default after a staging transaction ended either way. If
 * that fails, `staging` stays set and the next db_begin() tries again
 * before it starts (and fails rather than commit without an fsync). */
static int end_staging(struct db *db)
{
    if (db->staging && run(db, "PRAGMA synchronous=FULL") == DB_OK)
        db->staging = 0;
    return db->staging ? DB_EIO : DB_OK;
}

static int begin(struct db *db, int staging)
{
    db->failed[0] = '\0';
    if (!staging) {
        int rc = end_staging(db);
        if (rc != DB_OK)
            return rc;
    } else {
        int rc = run(db, "PRAGMA synchronous=NORMAL");
        if (rc != DB_OK)
            return rc;
        db->staging = 1;
    }
    int rc = run(db, "BEGIN IMMEDIATE");
    if (rc != DB_OK)
        end_staging(db);
    return rc;
}

int db_begin(struct db *db) { return begin(db, 0); }
int db_begin_staging(struct db *db) { return begin(db, 1); }

int db_commit(struct db *db)
{
    int rc = run(db, "COMMIT");
    /* A failed COMMIT leaves the transaction open: the caller rolls back,
     * and that ends the staging mode. */
    if (rc == DB_OK)
        end_staging(db);
    return rc;
}

void db_rollback(struct db *db)
{
    if (!sqlite3_get_autocommit(db->h)) {
        if (sqlite3_errcode(db->h) != SQLITE_OK)
            snprintf(db->failed, sizeof db->failed, "%s", sqlite3_errmsg(db->h));
        sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
    }
    end_staging(db);
}

int db_durable(struct db *db)
{
    sqlite3_stmt *st;
    if (db_prepare(db, "PRAGMA synchronous", &st) != DB_OK)
        return 0;
    int full = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) >= 2;
    db_release(db, st);
    return full;
}

int db_tail_after(struct db *db, const char *sql, int n, int64_t *after)
{
    sqlite3_stmt *st;
    int rc = db_prepare(db, sql, &st);
    if (rc)
        return rc;
    sqlite3_bind_int(st, 1, n);
    rc = sqlite3_step(st);
    *after = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    db_release(db, st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? DB_OK : db_rc_from(rc);
}
