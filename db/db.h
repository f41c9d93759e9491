/* db.h — the appliance's store: one SQLite database, the only code that
 * includes sqlite3.h.
 *
 * Opened at boot with WAL, synchronous=FULL and foreign keys on; checked with
 * PRAGMA quick_check (a failure is reported through db_health() and the
 * appliance keeps serving what it can); migrated forward inside one
 * transaction. The schema version is PRAGMA user_version = major << 16 |
 * minor. Changes within a major version are additive only (new tables, new
 * columns with defaults, new indexes), so an older firmware of the same
 * major opens a newer database unchanged — what lets a failed update revert
 * without losing data. A newer *major* is refused and left untouched. */
#ifndef DB_H
#define DB_H

#include <stddef.h>
#include <stdint.h>

struct db;

enum db_rc {
    DB_OK = 0,
    DB_ENOTFOUND = -1, /* no such row */
    DB_EEXISTS = -2,   /* a row with that key exists */
    DB_EINUSE = -3,    /* other rows depend on it */
    DB_EIO = -4,       /* SQLite failed; db_errmsg() says how */
    DB_ETOONEW = -5,   /* the database's major version is newer than ours */
    DB_ENOTDB = -6,    /* the file is not a database, or is corrupt */
    DB_EFULL = -7,     /* a size limit was reached */
};

#define DB_VERSION(major, minor) (((uint32_t)(major) << 16) | (uint32_t)(minor))
#define DB_VERSION_MAJOR(v) ((uint32_t)(v) >> 16)
#define DB_VERSION_MINOR(v) ((uint32_t)(v)&0xFFFFu)

/* The schema this firmware writes. */
#define DB_SCHEMA_VERSION DB_VERSION(1, 0)

/* One forward step: applied when the database is older than `to`. */
struct db_migration {
    uint32_t to;
    const char *sql;
};

/* This firmware's migrations, oldest first (db_schema.c). */
extern const struct db_migration db_schema_migrations[];
extern const size_t db_schema_migration_count;

/* Open (creating if missing) and migrate to DB_SCHEMA_VERSION. On failure
 * *out is NULL and `err` says why. */
int db_open(struct db **out, const char *path, char *err, size_t errlen);
/* The same with an explicit migration list and target (for tests). */
int db_open_with(struct db **out, const char *path, const struct db_migration *migrations,
                 size_t count, uint32_t target, char *err, size_t errlen);
void db_close(struct db *db);

/* NULL when quick_check passed at open, else what it reported. */
const char *db_health(const struct db *db);
/* user_version of the open database (may be a newer minor than ours). */
uint32_t db_version(const struct db *db);
/* The message of the last SQLite failure on this connection. */
const char *db_errmsg(const struct db *db);

/* The main database file's size (`stats`): pages * page_size bytes, of
 * which free_pages sit on the freelist (reusable, kept by the file: SQLite
 * gives space back only with VACUUM). The WAL file is not counted. */
struct db_size_info {
    uint64_t pages, page_size, free_pages;
};
int db_size(struct db *db, struct db_size_info *out);

/* Transactions: everything a command changes commits together or not at
 * all. BEGIN IMMEDIATE takes the write lock up front.
 *
 * Durability is chosen per transaction, never left behind as a connection
 * setting: db_begin() commits with an fsync (synchronous=FULL), for what
 * must survive a power cut the moment it is acknowledged (configuration,
 * the 250 to DATA, delivery outcomes). db_begin_staging() commits without
 * one (synchronous=NORMAL), for data that only matters once a later durable
 * commit covers it (message chunks, 'delivering' marks); in WAL mode a
 * durable commit makes every earlier commit durable too. db_commit() and
 * db_rollback() put the connection back to FULL, so statements outside a
 * transaction, and the next db_begin(), are always durable. */
int db_begin(struct db *db);
int db_begin_staging(struct db *db);
int db_commit(struct db *db);
void db_rollback(struct db *db);
/* 1 when the next commit will fsync (synchronous=FULL). */
int db_durable(struct db *db);

#endif
