/* db_internal.h — shared by the db/ sources only. */
#ifndef DB_INTERNAL_H
#define DB_INTERNAL_H

#include <sqlite3.h>

#include "db.h"

struct db {
    sqlite3 *h;
    uint32_t version;
    char health[160]; /* empty when quick_check said ok */
    char failed[160]; /* why the last transaction was rolled back (db_errmsg) */
    int staging;      /* inside a db_begin_staging() transaction */
};

/* Prepare `sql`; DB_OK or DB_EIO. */
int db_prepare(struct db *db, const char *sql, sqlite3_stmt **st);
/* Map a SQLite result code to enum db_rc. */
int db_rc_from(int sqlite_rc);
/* Run a statement that returns no rows, then finalize it. */
int db_step_done(sqlite3_stmt *st);
/* For "the last n rows" read a page at a time: `sql` selects ids newest
 * first with "LIMIT 1 OFFSET ?1"; *after becomes the id just before the
 * last n (0 when there are no more than n). */
int db_tail_after(struct db *db, const char *sql, int n, int64_t *after);
/* Copy a text column into buf (always terminated); "" for NULL. */
void db_column_text(sqlite3_stmt *st, int col, char *buf, size_t cap);

#endif
