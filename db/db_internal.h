/* db_internal.h — shared by the db/ sources only. */
#ifndef DB_INTERNAL_H
#define DB_INTERNAL_H

#include <sqlite3.h>

#include "db.h"

/* Statements kept prepared across calls (db_prepare/db_release): every
 * message ran dozens, and parsing them again each time cost more than
 * running them. Keyed by the SQL text's address (callers pass literals),
 * checked against the text itself. */
#ifndef DB_STMT_CACHE
#define DB_STMT_CACHE 64 /* a board short of heap may keep fewer */
#endif

struct db_stmt_slot {
    const char *sql;
    sqlite3_stmt *st;
    int busy; /* handed out and not released yet */
};

struct db {
    sqlite3 *h;
    struct db_stmt_slot stmts[DB_STMT_CACHE];
    uint32_t version;
    char health[160]; /* empty when quick_check said ok */
    char failed[160]; /* why the last transaction was rolled back (db_errmsg) */
    int staging;      /* inside a db_begin_staging() transaction */
};

/* Prepare `sql` (one statement), or hand out the one kept from before;
 * DB_OK or DB_EIO. Every statement goes back with db_release(). */
int db_prepare(struct db *db, const char *sql, sqlite3_stmt **st);
/* Done with `st`: reset and kept for the next db_prepare() of its SQL, or
 * finalized when it was not kept. */
void db_release(struct db *db, sqlite3_stmt *st);
/* Map a SQLite result code to enum db_rc. */
int db_rc_from(int sqlite_rc);
/* Run a statement that returns no rows, then release it. */
int db_step_done(struct db *db, sqlite3_stmt *st);
/* For "the last n rows" read a page at a time: `sql` selects ids newest
 * first with "LIMIT 1 OFFSET ?1"; *after becomes the id just before the
 * last n (0 when there are no more than n). */
int db_tail_after(struct db *db, const char *sql, int n, int64_t *after);
/* Copy a text column into buf (always terminated); "" for NULL. */
void db_column_text(sqlite3_stmt *st, int col, char *buf, size_t cap);

#endif
