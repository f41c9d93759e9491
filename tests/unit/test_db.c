/* db/: open, check, migrate, transactions and the configuration rows,
 * against a real SQLite database in a temporary directory. The test reads
 * the files back with its own sqlite3 connection (and, for the connection's
 * pragmas, through db_internal.h) to check what really reached the disk. */
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

#include "db.h"
#include "db_config.h"
#include "db_internal.h"
#include "tmpdir.h"

/* --- fixture: a fresh temporary directory per test --- */

struct fx {
    char dir[64];
    char path[128];
    struct db *db;
};

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    if (tmpdir_make(f->dir, sizeof f->dir, "shr-test-db") != 0) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof f->path, "%s/relay.db", f->dir);
    *state = f;
    return 0;
}

static void vfs_restore(void);

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    db_close(f->db);
    vfs_restore(); /* a test that failed halfway may have left its shim */
    tmpdir_remove(f->dir);
    free(f);
    return 0;
}

/* Open f->path with the firmware's schema; the test fails unless it opens. */
static struct db *open_ok(struct fx *f)
{
    char err[256] = "";
    struct db *db = NULL;
    int rc = db_open(&db, f->path, err, sizeof err);
    if (rc != DB_OK)
        fprintf(stderr, "db_open: %d %s\n", rc, err);
    assert_int_equal(rc, DB_OK);
    assert_non_null(db);
    return db;
}

/* --- raw access with a separate connection --- */

static sqlite3 *raw_open(const char *path)
{
    sqlite3 *h = NULL;
    assert_int_equal(sqlite3_open_v2(path, &h, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(h, 2000);
    return h;
}

static void raw_exec(const char *path, const char *sql)
{
    sqlite3 *h = raw_open(path);
    char *msg = NULL;
    int rc = sqlite3_exec(h, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fprintf(stderr, "raw_exec(%s): %s\n", sql, msg ? msg : "?");
    sqlite3_free(msg);
    sqlite3_close(h);
    assert_int_equal(rc, SQLITE_OK);
}

/* First column of the first row as an integer; the statement must return a row. */
static int64_t h_int(sqlite3 *h, const char *sql)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void h_text(sqlite3 *h, const char *sql, char *out, size_t cap)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    const unsigned char *t = sqlite3_column_text(st, 0);
    snprintf(out, cap, "%s", t ? (const char *)t : "(null)");
    sqlite3_finalize(st);
}

static int64_t raw_int(const char *path, const char *sql)
{
    sqlite3 *h = raw_open(path);
    int64_t v = h_int(h, sql);
    sqlite3_close(h);
    return v;
}

static int raw_has_table(const char *path, const char *name)
{
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='%s'",
             name);
    return (int)raw_int(path, sql);
}

static int file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    assert_true(n >= 0);
    fseek(fp, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    *len = (size_t)n;
    return buf;
}

/* Deterministic garbage (an LCG), never a valid SQLite header. */
static void garbage(unsigned char *buf, size_t len, uint32_t seed)
{
    uint32_t x = seed;
    for (size_t i = 0; i < len; i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (unsigned char)(x >> 16);
    }
    if (len)
        buf[0] = 0xA5; /* "SQLite format 3" starts with 'S' */
}

/* --- open --- */

static const char *const schema_tables[] = {
    "domain", "smarthost", "allow_net", "setting", "admin",
    "message", "message_chunk", "recipient", "history", "audit",
};

static void test_open_fresh_on_disk(void **state)
{
    struct fx *f = *state;
    f->db = open_ok(f);
    assert_int_equal(db_version(f->db), DB_SCHEMA_VERSION);
    assert_int_equal(db_version(f->db), DB_VERSION(1, 0));
    assert_null(db_health(f->db));

    /* The connection's own settings (per-connection pragmas). */
    char mode[32];
    h_text(f->db->h, "PRAGMA journal_mode", mode, sizeof mode);
    assert_string_equal(mode, "wal");
    assert_int_equal(h_int(f->db->h, "PRAGMA foreign_keys"), 1);
    assert_int_equal(h_int(f->db->h, "PRAGMA synchronous"), 2); /* FULL */
    assert_int_equal(h_int(f->db->h, "PRAGMA user_version"), DB_SCHEMA_VERSION);

    /* What reached the file, seen by another connection. */
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), DB_SCHEMA_VERSION);
    sqlite3 *h = raw_open(f->path);
    h_text(h, "PRAGMA journal_mode", mode, sizeof mode);
    sqlite3_close(h);
    assert_string_equal(mode, "wal"); /* persistent in the file */
    for (size_t i = 0; i < sizeof schema_tables / sizeof schema_tables[0]; i++)
        assert_int_equal(raw_has_table(f->path, schema_tables[i]), 1);

    /* Reopening runs no migration and keeps the data. */
    assert_int_equal(db_domain_add(f->db, "example.com", 1), DB_OK);
    db_close(f->db);
    f->db = open_ok(f);
    assert_int_equal(db_version(f->db), DB_SCHEMA_VERSION);
    assert_null(db_health(f->db));
    assert_true(db_domain_exists(f->db, "example.com"));
}

static void test_open_in_memory(void **state)
{
    struct fx *f = *state;
    char err[256] = "";
    int rc = db_open(&f->db, ":memory:", err, sizeof err);
    if (rc != DB_OK)
        fprintf(stderr, "db_open(:memory:): %d %s\n", rc, err);
    assert_int_equal(rc, DB_OK);
    assert_non_null(f->db);
    assert_int_equal(db_version(f->db), DB_SCHEMA_VERSION);
    assert_null(db_health(f->db));
    char mode[32];
    h_text(f->db->h, "PRAGMA journal_mode", mode, sizeof mode);
    assert_string_equal(mode, "memory"); /* WAL is impossible in memory */
    assert_int_equal(h_int(f->db->h, "PRAGMA foreign_keys"), 1);
    assert_int_equal(db_domain_add(f->db, "example.com", 1), DB_OK);
    assert_true(db_domain_exists(f->db, "example.com"));
    /* Only ":memory:" may skip WAL: a temporary database ("") is on disk. */
}

static void test_open_unreachable_path(void **state)
{
    struct fx *f = *state;
    char path[256], err[256] = "";
    snprintf(path, sizeof path, "%s/no-such-dir/relay.db", f->dir);
    struct db *db = (struct db *)&err; /* must be reset to NULL */
    int rc = db_open(&db, path, err, sizeof err);
    assert_int_not_equal(rc, DB_OK);
    assert_null(db);
    assert_non_null(strstr(err, "no-such-dir"));
}

/* --- migrations --- */

static const struct db_migration synth[] = {
    {DB_VERSION(1, 0), "CREATE TABLE a (x INTEGER NOT NULL);"},
    {DB_VERSION(1, 1), "CREATE TABLE b (y TEXT);"},
    {DB_VERSION(1, 2), "ALTER TABLE a ADD COLUMN z INTEGER NOT NULL DEFAULT 7;"},
};

static int open_synth(struct fx *f, size_t count, uint32_t target, char *err, size_t errlen)
{
    return db_open_with(&f->db, f->path, synth, count, target, err, errlen);
}

static void test_migrate_forward(void **state)
{
    struct fx *f = *state;
    char err[256] = "";
    assert_int_equal(open_synth(f, 3, DB_VERSION(1, 0), err, sizeof err), DB_OK);
    assert_int_equal(db_version(f->db), DB_VERSION(1, 0));
    db_close(f->db);
    f->db = NULL;
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), DB_VERSION(1, 0));
    assert_int_equal(raw_has_table(f->path, "a"), 1);
    assert_int_equal(raw_has_table(f->path, "b"), 0); /* 1.1 not applied */
    raw_exec(f->path, "INSERT INTO a(x) VALUES (41)");

    assert_int_equal(open_synth(f, 3, DB_VERSION(1, 2), err, sizeof err), DB_OK);
    assert_int_equal(db_version(f->db), DB_VERSION(1, 2));
    db_close(f->db);
    f->db = NULL;
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), DB_VERSION(1, 2));
    assert_int_equal(raw_has_table(f->path, "b"), 1);
    /* The old row got the new column's default; 1.0 was not re-run. */
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM a"), 1);
    assert_int_equal(raw_int(f->path, "SELECT x * 100 + z FROM a"), 4107);
}

static void test_older_minor_firmware_opens_newer_db(void **state)
{
    struct fx *f = *state;
    char err[256] = "";
    assert_int_equal(open_synth(f, 3, DB_VERSION(1, 2), err, sizeof err), DB_OK);
    db_close(f->db);
    f->db = NULL;
    raw_exec(f->path, "INSERT INTO a(x, z) VALUES (1, 2); INSERT INTO b(y) VALUES ('kept')");

    /* Firmware that knows only 1.0. */
    assert_int_equal(open_synth(f, 1, DB_VERSION(1, 0), err, sizeof err), DB_OK);
    assert_int_equal(db_version(f->db), DB_VERSION(1, 2));
    assert_null(db_health(f->db));
    db_close(f->db);
    f->db = NULL;
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), DB_VERSION(1, 2));
    assert_int_equal(raw_has_table(f->path, "b"), 1);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM b WHERE y = 'kept'"), 1);
    assert_int_equal(raw_int(f->path, "SELECT x * 10 + z FROM a"), 12);
}

/* A database of major 2 is refused and not written at all. */
static void check_newer_major_untouched(struct fx *f)
{
    size_t before_len, after_len;
    unsigned char *before = slurp(f->path, &before_len);
    char wal[160], shm[160], journal[160], err[256] = "";
    snprintf(wal, sizeof wal, "%s-wal", f->path);
    snprintf(shm, sizeof shm, "%s-shm", f->path);
    snprintf(journal, sizeof journal, "%s-journal", f->path);
    assert_false(file_exists(wal));
    assert_false(file_exists(journal));

    struct db *db = (struct db *)&err;
    int rc = db_open(&db, f->path, err, sizeof err);
    assert_int_equal(rc, DB_ETOONEW);
    assert_null(db);
    assert_non_null(strstr(err, "2.0"));
    assert_non_null(strstr(err, "newer"));
    rc = db_open_with(&db, f->path, synth, 3, DB_VERSION(1, 2), err, sizeof err);
    assert_int_equal(rc, DB_ETOONEW);
    assert_null(db);

    unsigned char *after = slurp(f->path, &after_len);
    assert_int_equal(after_len, before_len);
    assert_memory_equal(after, before, before_len);
    assert_false(file_exists(wal));
    assert_false(file_exists(shm));
    assert_false(file_exists(journal));
    free(before);
    free(after);
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), DB_VERSION(2, 0));
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM future"), 1);
}

static void test_newer_major_refused_rollback_journal(void **state)
{
    struct fx *f = *state;
    sqlite3 *h = NULL;
    assert_int_equal(sqlite3_open(f->path, &h), SQLITE_OK);
    assert_int_equal(sqlite3_exec(h, "CREATE TABLE future (v); INSERT INTO future VALUES (1);"
                                     "PRAGMA user_version = 131072", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(h);
    check_newer_major_untouched(f);
}

static void test_newer_major_refused_wal(void **state)
{
    struct fx *f = *state;
    static const struct db_migration v2[] = {
        {DB_VERSION(2, 0), "CREATE TABLE future (v); INSERT INTO future VALUES (1);"},
    };
    char err[256] = "";
    assert_int_equal(db_open_with(&f->db, f->path, v2, 1, DB_VERSION(2, 0), err, sizeof err),
                     DB_OK);
    db_close(f->db);
    f->db = NULL;
    check_newer_major_untouched(f);
}

static void test_failed_migration_rolls_back(void **state)
{
    struct fx *f = *state;
    static const struct db_migration bad[] = {
        {DB_VERSION(1, 0), "CREATE TABLE a (x INTEGER NOT NULL);"},
        {DB_VERSION(1, 1), "CREATE TABLE b (y TEXT);"},
        {DB_VERSION(1, 2), "CREATE TABLE c (z); INSERT INTO no_such_table VALUES (1);"},
    };
    char err[256] = "";
    /* From nothing: 1.0 and 1.1 succeed, 1.2 fails: none of it stays. */
    int rc = db_open_with(&f->db, f->path, bad, 3, DB_VERSION(1, 2), err, sizeof err);
    assert_int_equal(rc, DB_EIO);
    assert_null(f->db);
    assert_non_null(strstr(err, "migration to 1.2 failed"));
    assert_non_null(strstr(err, "no_such_table"));
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), 0);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM sqlite_master"), 0);

    /* From 1.0 with data: still 1.0, data intact, no b or c. */
    assert_int_equal(db_open_with(&f->db, f->path, bad, 1, DB_VERSION(1, 0), err, sizeof err),
                     DB_OK);
    db_close(f->db);
    f->db = NULL;
    raw_exec(f->path, "INSERT INTO a(x) VALUES (5)");
    err[0] = '\0';
    rc = db_open_with(&f->db, f->path, bad, 3, DB_VERSION(1, 2), err, sizeof err);
    assert_int_equal(rc, DB_EIO);
    assert_null(f->db);
    assert_non_null(strstr(err, "migration to 1.2 failed"));
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), DB_VERSION(1, 0));
    assert_int_equal(raw_has_table(f->path, "b"), 0);
    assert_int_equal(raw_has_table(f->path, "c"), 0);
    assert_int_equal(raw_int(f->path, "SELECT sum(x) FROM a"), 5);
    /* And the good part still applies later. */
    assert_int_equal(db_open_with(&f->db, f->path, bad, 2, DB_VERSION(1, 1), err, sizeof err),
                     DB_OK);
    assert_int_equal(db_version(f->db), DB_VERSION(1, 1));
}

/* --- corruption --- */

static void test_garbage_file_is_not_a_database(void **state)
{
    struct fx *f = *state;
    unsigned char junk[16384];
    garbage(junk, sizeof junk, 12345);
    FILE *fp = fopen(f->path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(junk, 1, sizeof junk, fp), sizeof junk);
    fclose(fp);

    char err[256] = "";
    struct db *db = (struct db *)&err;
    int rc = db_open(&db, f->path, err, sizeof err);
    assert_int_equal(rc, DB_ENOTDB);
    assert_null(db);
    assert_true(err[0] != '\0');
    /* Nothing was written over it. */
    size_t len;
    unsigned char *now = slurp(f->path, &len);
    assert_int_equal(len, sizeof junk);
    assert_memory_equal(now, junk, sizeof junk);
    free(now);
}

/* Build a database with many pages, then overwrite page `pageno` (1-based)
 * with garbage; returns the page count. */
static int64_t corrupt_page(struct fx *f, int64_t pageno, int64_t *page_size)
{
    f->db = open_ok(f);
    assert_int_equal(db_begin(f->db), DB_OK);
    char line[200];
    for (int i = 0; i < 3000; i++) {
        snprintf(line, sizeof line, "audit line %05d padded to make the table span many pages",
                 i);
        assert_int_equal(db_audit_add(f->db, i, "test", line), DB_OK);
    }
    assert_int_equal(db_commit(f->db), DB_OK);
    db_close(f->db);
    f->db = NULL;
    *page_size = raw_int(f->path, "PRAGMA page_size");
    int64_t pages = raw_int(f->path, "PRAGMA page_count");
    assert_true(pages > 20);
    if (pageno <= 0)
        pageno = pages / 2;
    unsigned char junk[65536];
    assert_true(*page_size <= (int64_t)sizeof junk);
    garbage(junk, (size_t)*page_size, (uint32_t)pageno);
    FILE *fp = fopen(f->path, "r+b");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, (long)((pageno - 1) * *page_size), SEEK_SET), 0);
    assert_int_equal(fwrite(junk, 1, (size_t)*page_size, fp), (size_t)*page_size);
    fclose(fp);
    return pages;
}

static void audit_sink(void *ctx, int64_t at, const char *actor, const char *action)
{
    (void)at;
    (void)actor;
    (void)action;
    (*(int *)ctx)++;
}

static void test_corrupt_page_3(void **state)
{
    struct fx *f = *state;
    int64_t ps;
    corrupt_page(f, 3, &ps);
    char err[256] = "";
    int rc = db_open(&f->db, f->path, err, sizeof err);
    if (rc == DB_OK) {
        assert_non_null(f->db);
        assert_non_null(db_health(f->db)); /* quick_check saw it */
        print_message("page 3: opened, health: %s\n", db_health(f->db));
        int n = 0;
        db_audit_list(f->db, 10, audit_sink, &n); /* any result but a crash */
        db_domain_exists(f->db, "example.com");
    } else {
        assert_null(f->db);
        assert_true(err[0] != '\0');
        print_message("page 3: refused (%d): %s\n", rc, err);
    }
}

static void test_corrupt_middle_page_reported(void **state)
{
    struct fx *f = *state;
    int64_t ps;
    corrupt_page(f, 0, &ps);
    char err[256] = "";
    /* Page 1 (the header) is intact, so the database opens, and says it is unwell. */
    assert_int_equal(db_open(&f->db, f->path, err, sizeof err), DB_OK);
    assert_non_null(db_health(f->db));
    print_message("middle page: health: %s\n", db_health(f->db));
    assert_int_equal(db_version(f->db), DB_SCHEMA_VERSION);
    int n = 0;
    int rc = db_audit_list(f->db, 5000, audit_sink, &n);
    assert_true(rc == DB_OK || rc == DB_ENOTDB);
    assert_true(n < 3000); /* the garbage page's rows cannot all be read back */
    /* Other tables keep working. */
    assert_int_equal(db_domain_add(f->db, "example.com", 1), DB_OK);
    assert_true(db_domain_exists(f->db, "example.com"));
}

/* --- domains --- */

struct names {
    int n;
    char name[8][64];
    int64_t hosts[8];
};

static void collect_domain(void *ctx, const char *name, int64_t smarthosts)
{
    struct names *c = ctx;
    if (c->n < 8) {
        snprintf(c->name[c->n], sizeof c->name[0], "%s", name);
        c->hosts[c->n] = smarthosts;
    }
    c->n++;
}

static void fill_sh(struct db_smarthost *sh, const char *domain, const char *host, int32_t port,
                    int64_t prio)
{
    memset(sh, 0, sizeof *sh);
    snprintf(sh->domain, sizeof sh->domain, "%s", domain);
    snprintf(sh->host, sizeof sh->host, "%s", host);
    sh->port = port;
    sh->priority = prio;
    snprintf(sh->tls, sizeof sh->tls, "may");
}

static void test_domains(void **state)
{
    struct fx *f = *state;
    f->db = open_ok(f);
    assert_false(db_domain_exists(f->db, "b.example"));
    assert_int_equal(db_domain_add(f->db, "b.example", 10), DB_OK);
    assert_int_equal(db_domain_add(f->db, "a.example", 11), DB_OK);
    assert_int_equal(db_domain_add(f->db, "a.example", 12), DB_EEXISTS);
    assert_true(db_domain_exists(f->db, "a.example"));
    assert_true(db_domain_exists(f->db, "b.example"));
    assert_false(db_domain_exists(f->db, "c.example"));

    struct db_smarthost sh;
    fill_sh(&sh, "b.example", "mx1.b.example", 25, 0);
    assert_int_equal(db_smarthost_add(f->db, &sh, 1), DB_OK);
    fill_sh(&sh, "b.example", "mx2.b.example", 25, 1);
    assert_int_equal(db_smarthost_add(f->db, &sh, 1), DB_OK);

    struct names c = {0};
    assert_int_equal(db_domain_list(f->db, collect_domain, &c), DB_OK);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.name[0], "a.example");
    assert_int_equal(c.hosts[0], 0);
    assert_string_equal(c.name[1], "b.example");
    assert_int_equal(c.hosts[1], 2);

    /* Deleting a domain takes its smart hosts with it. */
    assert_int_equal(db_domain_del(f->db, "b.example"), DB_OK);
    assert_false(db_domain_exists(f->db, "b.example"));
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM smarthost"), 0);
    assert_int_equal(db_domain_del(f->db, "b.example"), DB_ENOTFOUND);
    memset(&c, 0, sizeof c);
    assert_int_equal(db_domain_list(f->db, collect_domain, &c), DB_OK);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.name[0], "a.example");
    assert_int_equal(raw_int(f->path, "SELECT created FROM domain"), 11);
}

/* --- smart hosts --- */

static void test_smarthost_crud(void **state)
{
    struct fx *f = *state;
    f->db = open_ok(f);
    assert_int_equal(db_domain_add(f->db, "example.com", 1), DB_OK);
    assert_int_equal(db_domain_add(f->db, "example.org", 1), DB_OK);

    struct db_smarthost sh, got;
    fill_sh(&sh, "example.com", "mail.example.com", 587, 5);
    snprintf(sh.tls, sizeof sh.tls, "verify");
    snprintf(sh.username, sizeof sh.username, "relay-user");
    for (size_t i = 0; i < 45; i++)
        sh.sealed[i] = (uint8_t)(0xF0 ^ i);
    sh.sealed[3] = 0; /* a blob, not a string */
    sh.sealed_len = 45;
    sh.auth_plaintext = 1;
    sh.tls_downgrades = 3;
    sh.id = 999; /* ignored: the database picks the id */
    assert_int_equal(db_smarthost_add(f->db, &sh, 100), DB_OK);
    assert_true(sh.id > 0);
    assert_true(sh.id != 999);
    int64_t id = sh.id;

    memset(&got, 0x55, sizeof got);
    assert_int_equal(db_smarthost_get(f->db, id, &got), DB_OK);
    assert_int_equal(got.id, id);
    assert_string_equal(got.domain, "example.com");
    assert_string_equal(got.host, "mail.example.com");
    assert_int_equal(got.port, 587);
    assert_int_equal(got.priority, 5);
    assert_string_equal(got.tls, "verify");
    assert_string_equal(got.username, "relay-user");
    assert_int_equal(got.sealed_len, 45);
    assert_memory_equal(got.sealed, sh.sealed, 45);
    assert_int_equal(got.auth_plaintext, 1);
    assert_int_equal(got.tls_downgrades, 3);
    assert_int_equal(raw_int(f->path, "SELECT created * 1000 + updated FROM smarthost"), 100100);

    assert_int_equal(db_smarthost_find(f->db, "example.com", "mail.example.com", 587), id);
    assert_int_equal(db_smarthost_find(f->db, "example.com", "mail.example.com", 25), 0);
    assert_int_equal(db_smarthost_find(f->db, "example.org", "mail.example.com", 587), 0);
    assert_int_equal(db_smarthost_get(f->db, id + 1, &got), DB_ENOTFOUND);

    /* Update replaces every column; "" and length 0 are stored as NULL. */
    got.port = 2525;
    got.priority = 0;
    snprintf(got.tls, sizeof got.tls, "none");
    got.username[0] = '\0';
    got.sealed_len = 0;
    got.auth_plaintext = 0;
    got.tls_downgrades = 7;
    snprintf(got.domain, sizeof got.domain, "example.org");
    assert_int_equal(db_smarthost_update(f->db, &got, 200), DB_OK);
    struct db_smarthost again;
    assert_int_equal(db_smarthost_get(f->db, id, &again), DB_OK);
    assert_string_equal(again.domain, "example.org");
    assert_int_equal(again.port, 2525);
    assert_int_equal(again.priority, 0);
    assert_string_equal(again.tls, "none");
    assert_string_equal(again.username, "");
    assert_int_equal(again.sealed_len, 0);
    assert_int_equal(again.auth_plaintext, 0);
    assert_int_equal(again.tls_downgrades, 7);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM smarthost WHERE username IS NULL "
                                      "AND password_sealed IS NULL"), 1);
    assert_int_equal(raw_int(f->path, "SELECT created * 1000 + updated FROM smarthost"), 100200);

    got.id = id + 100;
    assert_int_equal(db_smarthost_update(f->db, &got, 300), DB_ENOTFOUND);

    assert_int_equal(db_smarthost_del(f->db, id), DB_OK);
    assert_int_equal(db_smarthost_get(f->db, id, &got), DB_ENOTFOUND);
    assert_int_equal(db_smarthost_del(f->db, id), DB_ENOTFOUND);
    assert_int_equal(db_smarthost_find(f->db, "example.org", "mail.example.com", 2525), 0);
}

struct sh_list {
    int n;
    int64_t id[16];
    char domain[16][DB_NAME_MAX + 1];
    int64_t prio[16];
};

static void collect_sh(void *ctx, const struct db_smarthost *sh)
{
    struct sh_list *l = ctx;
    if (l->n < 16) {
        l->id[l->n] = sh->id;
        snprintf(l->domain[l->n], sizeof l->domain[0], "%s", sh->domain);
        l->prio[l->n] = sh->priority;
    }
    l->n++;
}

static void test_smarthost_list_order(void **state)
{
    struct fx *f = *state;
    f->db = open_ok(f);
    assert_int_equal(db_domain_add(f->db, "b.example", 1), DB_OK);
    assert_int_equal(db_domain_add(f->db, "a.example", 1), DB_OK);
    struct {
        const char *dom, *host;
        int64_t prio;
    } rows[] = {
        {"b.example", "h1.b.example", 5},  {"a.example", "h2.a.example", 10},
        {"a.example", "h3.a.example", 0},  {"a.example", "h4.a.example", 10},
        {"b.example", "h5.b.example", 1},
    };
    int64_t ids[5];
    for (int i = 0; i < 5; i++) {
        struct db_smarthost sh;
        fill_sh(&sh, rows[i].dom, rows[i].host, 25, rows[i].prio);
        assert_int_equal(db_smarthost_add(f->db, &sh, 1), DB_OK);
        ids[i] = sh.id;
    }
    struct sh_list l = {0};
    assert_int_equal(db_smarthost_list(f->db, NULL, collect_sh, &l), DB_OK);
    assert_int_equal(l.n, 5);
    const int want[5] = {2, 1, 3, 4, 0}; /* a/0, a/10 (older), a/10, b/1, b/5 */
    for (int i = 0; i < 5; i++)
        assert_int_equal(l.id[i], ids[want[i]]);
    assert_string_equal(l.domain[0], "a.example");
    assert_string_equal(l.domain[4], "b.example");

    memset(&l, 0, sizeof l);
    assert_int_equal(db_smarthost_list(f->db, "b.example", collect_sh, &l), DB_OK);
    assert_int_equal(l.n, 2);
    assert_int_equal(l.id[0], ids[4]);
    assert_int_equal(l.id[1], ids[0]);
    assert_int_equal(l.prio[0], 1);

    memset(&l, 0, sizeof l);
    assert_int_equal(db_smarthost_list(f->db, "c.example", collect_sh, &l), DB_OK);
    assert_int_equal(l.n, 0);
}

static void test_smarthost_constraints(void **state)
{
    struct fx *f = *state;
    f->db = open_ok(f);
    assert_int_equal(db_domain_add(f->db, "example.com", 1), DB_OK);
    struct db_smarthost sh;
    fill_sh(&sh, "example.com", "mail.example.com", 25, 0);
    assert_int_equal(db_smarthost_add(f->db, &sh, 1), DB_OK);
    int64_t first = sh.id;

    /* UNIQUE (domain, host, port). */
    fill_sh(&sh, "example.com", "mail.example.com", 25, 9);
    assert_int_equal(db_smarthost_add(f->db, &sh, 1), DB_EEXISTS);
    /* Same host on another port is another row. */
    fill_sh(&sh, "example.com", "mail.example.com", 587, 0);
    assert_int_equal(db_smarthost_add(f->db, &sh, 1), DB_OK);
    /* ...which cannot be updated onto the first. */
    sh.port = 25;
    assert_int_equal(db_smarthost_update(f->db, &sh, 2), DB_EEXISTS);
    assert_int_equal(db_smarthost_find(f->db, "example.com", "mail.example.com", 25), first);

    /* Foreign key: no smart host for a domain that is not allowed. */
    fill_sh(&sh, "other.example", "mail.other.example", 25, 0);
    assert_int_not_equal(db_smarthost_add(f->db, &sh, 1), DB_OK);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM smarthost "
                                      "WHERE domain = 'other.example'"), 0);
    /* Nor can an existing row be moved to one. */
    fill_sh(&sh, "other.example", "mail.example.com", 25, 0);
    sh.id = first;
    assert_int_not_equal(db_smarthost_update(f->db, &sh, 2), DB_OK);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM smarthost "
                                      "WHERE domain = 'example.com'"), 2);

    /* CHECK constraints back the validation in config.c. */
    fill_sh(&sh, "example.com", "x.example.com", 0, 0);
    assert_int_not_equal(db_smarthost_add(f->db, &sh, 1), DB_OK);
    fill_sh(&sh, "example.com", "x.example.com", 65536, 0);
    assert_int_not_equal(db_smarthost_add(f->db, &sh, 1), DB_OK);
    fill_sh(&sh, "example.com", "x.example.com", 25, -1);
    assert_int_not_equal(db_smarthost_add(f->db, &sh, 1), DB_OK);
    fill_sh(&sh, "example.com", "x.example.com", 25, 0);
    snprintf(sh.tls, sizeof sh.tls, "bogus");
    assert_int_not_equal(db_smarthost_add(f->db, &sh, 1), DB_OK);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM smarthost"), 2);
}

/* --- allowlist --- */

struct allow_list {
    int n;
    char cidr[8][64];
    int family[8];
    uint8_t addr[8][16];
    int prefix[8];
};

static void collect_allow(void *ctx, const char *cidr, int family, const uint8_t addr[16],
                          int prefix)
{
    struct allow_list *l = ctx;
    if (l->n < 8) {
        snprintf(l->cidr[l->n], sizeof l->cidr[0], "%s", cidr);
        l->family[l->n] = family;
        memcpy(l->addr[l->n], addr, 16);
        l->prefix[l->n] = prefix;
    }
    l->n++;
}

static void test_allow(void **state)
{
    struct fx *f = *state;
    f->db = open_ok(f);
    const uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8};
    const uint8_t net10[16] = {10, 0, 0, 0, 0xEE, 0xEE}; /* bytes past 4 are not stored */
    const uint8_t net192[16] = {192, 0, 2, 0};
    assert_int_equal(db_allow_add(f->db, "2001:db8::/32", 6, v6, 32, 1), DB_OK);
    assert_int_equal(db_allow_add(f->db, "192.0.2.0/24", 4, net192, 24, 1), DB_OK);
    assert_int_equal(db_allow_add(f->db, "10.0.0.0/8", 4, net10, 8, 1), DB_OK);
    assert_int_equal(db_allow_add(f->db, "10.0.0.0/8", 4, net10, 8, 2), DB_EEXISTS);
    assert_int_equal(raw_int(f->path, "SELECT length(addr) FROM allow_net WHERE family = 4 "
                                      "AND prefix = 8"), 4);
    assert_int_equal(raw_int(f->path, "SELECT length(addr) FROM allow_net WHERE family = 6"), 16);

    struct allow_list l = {0};
    assert_int_equal(db_allow_list(f->db, collect_allow, &l), DB_OK);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.cidr[0], "10.0.0.0/8"); /* by family, then address */
    assert_int_equal(l.family[0], 4);
    assert_int_equal(l.prefix[0], 8);
    const uint8_t want10[16] = {10};
    assert_memory_equal(l.addr[0], want10, 16);
    assert_string_equal(l.cidr[1], "192.0.2.0/24");
    assert_memory_equal(l.addr[1], net192, 16);
    assert_string_equal(l.cidr[2], "2001:db8::/32");
    assert_int_equal(l.family[2], 6);
    assert_int_equal(l.prefix[2], 32);
    assert_memory_equal(l.addr[2], v6, 16);

    assert_int_equal(db_allow_del(f->db, "192.0.2.0/24"), DB_OK);
    assert_int_equal(db_allow_del(f->db, "192.0.2.0/24"), DB_ENOTFOUND);
    memset(&l, 0, sizeof l);
    assert_int_equal(db_allow_list(f->db, collect_allow, &l), DB_OK);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.cidr[1], "2001:db8::/32");
}

/* --- settings --- */

static void test_settings(void **state)
{
    struct fx *f = *state;
    f->db = open_ok(f);
    char v[DB_TEXT_MAX];
    snprintf(v, sizeof v, "untouched");
    assert_int_equal(db_setting_get(f->db, "hostname", v, sizeof v), DB_ENOTFOUND);
    assert_string_equal(v, "untouched");
    assert_int_equal(db_setting_set(f->db, "hostname", "relay1"), DB_OK);
    assert_int_equal(db_setting_get(f->db, "hostname", v, sizeof v), DB_OK);
    assert_string_equal(v, "relay1");
    assert_int_equal(db_setting_set(f->db, "hostname", "relay2"), DB_OK);
    assert_int_equal(db_setting_get(f->db, "hostname", v, sizeof v), DB_OK);
    assert_string_equal(v, "relay2");
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM setting"), 1);
    assert_int_equal(db_setting_set(f->db, "empty", ""), DB_OK);
    snprintf(v, sizeof v, "x");
    assert_int_equal(db_setting_get(f->db, "empty", v, sizeof v), DB_OK);
    assert_string_equal(v, "");
    /* A small buffer gets a terminated prefix. */
    char small[4];
    assert_int_equal(db_setting_get(f->db, "hostname", small, sizeof small), DB_OK);
    assert_string_equal(small, "rel");

    assert_int_equal(db_setting_unset(f->db, "hostname"), DB_OK);
    assert_int_equal(db_setting_get(f->db, "hostname", v, sizeof v), DB_ENOTFOUND);
    assert_int_equal(db_setting_unset(f->db, "hostname"), DB_OK); /* idempotent */
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM setting"), 1);
}

/* --- audit --- */

struct audit_list {
    int n;
    int64_t at[16];
    char actor[16][16];
    char action[16][32];
};

static void collect_audit(void *ctx, int64_t at, const char *actor, const char *action)
{
    struct audit_list *l = ctx;
    if (l->n < 16) {
        l->at[l->n] = at;
        snprintf(l->actor[l->n], sizeof l->actor[0], "%s", actor);
        snprintf(l->action[l->n], sizeof l->action[0], "%s", action);
    }
    l->n++;
}

static void test_audit(void **state)
{
    struct fx *f = *state;
    f->db = open_ok(f);
    struct audit_list l = {0};
    assert_int_equal(db_audit_list(f->db, 10, collect_audit, &l), DB_OK);
    assert_int_equal(l.n, 0);
    char action[32];
    /* Times deliberately out of order: the order is the order of writing. */
    const int64_t at[5] = {50, 10, 40, 20, 30};
    for (int i = 0; i < 5; i++) {
        snprintf(action, sizeof action, "change %d", i + 1);
        assert_int_equal(db_audit_add(f->db, at[i], i % 2 ? "console" : "boot", action), DB_OK);
    }
    assert_int_equal(db_audit_list(f->db, 3, collect_audit, &l), DB_OK);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.action[0], "change 3");
    assert_string_equal(l.action[1], "change 4");
    assert_string_equal(l.action[2], "change 5");
    assert_int_equal(l.at[0], 40);
    assert_int_equal(l.at[2], 30);
    assert_string_equal(l.actor[0], "boot");
    assert_string_equal(l.actor[1], "console");

    memset(&l, 0, sizeof l);
    assert_int_equal(db_audit_list(f->db, 100, collect_audit, &l), DB_OK);
    assert_int_equal(l.n, 5);
    assert_string_equal(l.action[0], "change 1");
    assert_string_equal(l.action[4], "change 5");

    memset(&l, 0, sizeof l);
    assert_int_equal(db_audit_list(f->db, 1, collect_audit, &l), DB_OK);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.action[0], "change 5");
}

/* --- domain usage --- */

static void test_domain_usage(void **state)
{
    struct fx *f = *state;
    f->db = open_ok(f);
    assert_int_equal(db_domain_add(f->db, "example.com", 1), DB_OK);
    assert_int_equal(db_domain_add(f->db, "example.org", 1), DB_OK);
    int64_t hosts = -9, queued = -9;
    assert_int_equal(db_domain_usage(f->db, "example.com", &hosts, &queued), DB_OK);
    assert_int_equal(hosts, 0);
    assert_int_equal(queued, 0);

    struct db_smarthost sh;
    fill_sh(&sh, "example.com", "mx1.example.com", 25, 0);
    assert_int_equal(db_smarthost_add(f->db, &sh, 1), DB_OK);
    fill_sh(&sh, "example.com", "mx2.example.com", 25, 0);
    assert_int_equal(db_smarthost_add(f->db, &sh, 1), DB_OK);
    fill_sh(&sh, "example.org", "mx.example.org", 25, 0);
    assert_int_equal(db_smarthost_add(f->db, &sh, 1), DB_OK);

    /* Queue rows written by another connection on the same file. */
    raw_exec(f->path,
             "INSERT INTO message(id, received, sender, size, client) "
             "  VALUES (1, 1, 'pst@vendor.example', 100, '10.0.0.5');"
             "INSERT INTO recipient(message, address, domain, state, updated) VALUES"
             "  (1, 'a@example.com', 'example.com', 'queued', 1),"
             "  (1, 'b@example.com', 'example.com', 'queued', 1),"
             "  (1, 'c@example.com', 'example.com', 'deferred', 1),"
             "  (1, 'd@example.com', 'example.com', 'delivered', 1),"
             "  (1, 'e@example.com', 'example.com', 'failed', 1),"
             "  (1, 'f@example.org', 'example.org', 'delivered', 1);");

    assert_int_equal(db_domain_usage(f->db, "example.com", &hosts, &queued), DB_OK);
    assert_int_equal(hosts, 2);
    assert_int_equal(queued, 3); /* queued, queued, deferred */
    assert_int_equal(db_domain_usage(f->db, "example.org", &hosts, &queued), DB_OK);
    assert_int_equal(hosts, 1);
    assert_int_equal(queued, 0);
    assert_int_equal(db_domain_usage(f->db, "example.net", &hosts, &queued), DB_OK);
    assert_int_equal(hosts, 0);
    assert_int_equal(queued, 0);

    /* Deleting the domain keeps its queued mail queued. */
    assert_int_equal(db_domain_del(f->db, "example.com"), DB_OK);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM recipient WHERE domain = "
                                      "'example.com' AND state = 'queued'"), 2);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM smarthost"), 1);
}

/* --- transactions and durability --- */

static void test_commit_is_durable(void **state)
{
    struct fx *f = *state;
    f->db = open_ok(f);
    assert_int_equal(db_begin(f->db), DB_OK);
    assert_int_equal(db_domain_add(f->db, "example.com", 1), DB_OK);
    assert_int_equal(db_setting_set(f->db, "hostname", "relay9"), DB_OK);
    assert_int_equal(db_audit_add(f->db, 1, "console", "domain add example.com"), DB_OK);
    /* Not visible to another connection before the commit. */
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM domain"), 0);
    assert_int_equal(db_commit(f->db), DB_OK);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM domain"), 1);
    db_close(f->db);
    f->db = open_ok(f);
    assert_true(db_domain_exists(f->db, "example.com"));
    char v[32];
    assert_int_equal(db_setting_get(f->db, "hostname", v, sizeof v), DB_OK);
    assert_string_equal(v, "relay9");
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM audit"), 1);
}

static void test_rollback_discards(void **state)
{
    struct fx *f = *state;
    f->db = open_ok(f);
    assert_int_equal(db_domain_add(f->db, "kept.example", 1), DB_OK); /* autocommit */
    assert_int_equal(db_begin(f->db), DB_OK);
    assert_int_equal(db_domain_add(f->db, "example.com", 1), DB_OK);
    assert_int_equal(db_audit_add(f->db, 1, "console", "domain add example.com"), DB_OK);
    assert_true(db_domain_exists(f->db, "example.com")); /* visible inside */
    db_rollback(f->db);
    assert_false(db_domain_exists(f->db, "example.com"));
    db_rollback(f->db); /* no transaction: harmless */
    db_close(f->db);
    f->db = open_ok(f);
    assert_false(db_domain_exists(f->db, "example.com"));
    assert_true(db_domain_exists(f->db, "kept.example"));
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM audit"), 0);
    /* A second BEGIN inside a transaction fails; the first still commits. */
    assert_int_equal(db_begin(f->db), DB_OK);
    assert_int_not_equal(db_begin(f->db), DB_OK);
    assert_int_equal(db_domain_add(f->db, "example.net", 1), DB_OK);
    assert_int_equal(db_commit(f->db), DB_OK);
    assert_int_not_equal(db_commit(f->db), DB_OK); /* nothing to commit */
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM domain"), 2);
}

/* The reason a transaction failed is still there after the rollback. */
static void test_errmsg_survives_rollback(void **state)
{
    struct fx *f = *state;
    f->db = open_ok(f);
    assert_int_equal(db_domain_add(f->db, "example.com", 1), DB_OK);
    assert_int_equal(db_begin(f->db), DB_OK);
    assert_int_equal(db_domain_add(f->db, "example.org", 1), DB_OK);
    assert_int_equal(db_domain_add(f->db, "example.com", 1), DB_EEXISTS);
    db_rollback(f->db);
    assert_non_null(strstr(db_errmsg(f->db), "UNIQUE constraint failed: domain.name"));
    assert_false(db_domain_exists(f->db, "example.org"));
    /* A failure outside a transaction reports its own reason. */
    struct db_smarthost sh;
    fill_sh(&sh, "example.com", "mx.example.com", 25, 0);
    snprintf(sh.tls, sizeof sh.tls, "bogus");
    assert_int_not_equal(db_smarthost_add(f->db, &sh, 1), DB_OK);
    assert_non_null(strstr(db_errmsg(f->db), "CHECK constraint failed"));
    /* A new transaction forgets the old reason once it succeeds. */
    assert_int_equal(db_begin(f->db), DB_OK);
    assert_int_equal(db_commit(f->db), DB_OK);
    assert_null(strstr(db_errmsg(f->db), "UNIQUE"));
}

/* --- durability per transaction, observed as fsyncs ---
 * A VFS shim over the default one counts xSync calls, which is what
 * "durable" means to SQLite: a commit that syncs nothing can be lost to a
 * power cut after it was acknowledged. */

struct cfile {
    sqlite3_file base;
    sqlite3_file *real; /* the default VFS's file, right after this struct */
};

static sqlite3_vfs *real_vfs;
static int syncs;

#define REAL(f) (((struct cfile *)(f))->real)
static int c_close(sqlite3_file *f) { return REAL(f)->pMethods->xClose(REAL(f)); }
static int c_read(sqlite3_file *f, void *b, int n, sqlite3_int64 o)
{
    return REAL(f)->pMethods->xRead(REAL(f), b, n, o);
}
static int c_write(sqlite3_file *f, const void *b, int n, sqlite3_int64 o)
{
    return REAL(f)->pMethods->xWrite(REAL(f), b, n, o);
}
static int c_truncate(sqlite3_file *f, sqlite3_int64 n)
{
    return REAL(f)->pMethods->xTruncate(REAL(f), n);
}
static int c_sync(sqlite3_file *f, int flags)
{
    syncs++;
    return REAL(f)->pMethods->xSync(REAL(f), flags);
}
static int c_size(sqlite3_file *f, sqlite3_int64 *n) { return REAL(f)->pMethods->xFileSize(REAL(f), n); }
static int c_lock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xLock(REAL(f), l); }
static int c_unlock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xUnlock(REAL(f), l); }
static int c_check(sqlite3_file *f, int *r)
{
    return REAL(f)->pMethods->xCheckReservedLock(REAL(f), r);
}
static int c_fcntl(sqlite3_file *f, int op, void *a)
{
    return REAL(f)->pMethods->xFileControl(REAL(f), op, a);
}
static int c_sector(sqlite3_file *f) { return REAL(f)->pMethods->xSectorSize(REAL(f)); }
static int c_devchar(sqlite3_file *f) { return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f)); }
static int c_shmmap(sqlite3_file *f, int pg, int sz, int ext, void volatile **pp)
{
    return REAL(f)->pMethods->xShmMap(REAL(f), pg, sz, ext, pp);
}
static int c_shmlock(sqlite3_file *f, int off, int n, int flags)
{
    return REAL(f)->pMethods->xShmLock(REAL(f), off, n, flags);
}
static void c_shmbarrier(sqlite3_file *f) { REAL(f)->pMethods->xShmBarrier(REAL(f)); }
static int c_shmunmap(sqlite3_file *f, int del) { return REAL(f)->pMethods->xShmUnmap(REAL(f), del); }

static const sqlite3_io_methods c_methods = {
    2, c_close, c_read, c_write, c_truncate, c_sync, c_size, c_lock, c_unlock, c_check,
    c_fcntl, c_sector, c_devchar, c_shmmap, c_shmlock, c_shmbarrier, c_shmunmap, NULL, NULL,
};

static int c_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out)
{
    (void)vfs;
    struct cfile *cf = (struct cfile *)f;
    cf->real = (sqlite3_file *)(cf + 1);
    int rc = real_vfs->xOpen(real_vfs, name, cf->real, flags, out);
    cf->base.pMethods = rc == SQLITE_OK && cf->real->pMethods ? &c_methods : NULL;
    return rc;
}
static int c_delete(sqlite3_vfs *v, const char *n, int d) { (void)v; return real_vfs->xDelete(real_vfs, n, d); }
static int c_access(sqlite3_vfs *v, const char *n, int fl, int *r)
{
    (void)v;
    return real_vfs->xAccess(real_vfs, n, fl, r);
}
static int c_fullpath(sqlite3_vfs *v, const char *n, int sz, char *out)
{
    (void)v;
    return real_vfs->xFullPathname(real_vfs, n, sz, out);
}
static int c_random(sqlite3_vfs *v, int n, char *out) { (void)v; return real_vfs->xRandomness(real_vfs, n, out); }
static int c_sleep(sqlite3_vfs *v, int us) { (void)v; return real_vfs->xSleep(real_vfs, us); }
static int c_time(sqlite3_vfs *v, double *t) { (void)v; return real_vfs->xCurrentTime(real_vfs, t); }
static int c_lasterr(sqlite3_vfs *v, int n, char *b) { (void)v; return real_vfs->xGetLastError(real_vfs, n, b); }

static sqlite3_vfs count_vfs = {
    1, 0, 1024, NULL, "shr-count-syncs", NULL, c_open, c_delete, c_access, c_fullpath,
    NULL, NULL, NULL, NULL, c_random, c_sleep, c_time, c_lasterr, NULL, NULL, NULL, NULL,
};

/* Put the default VFS back if the sync-counting shim is installed. */
static void vfs_restore(void)
{
    if (real_vfs && sqlite3_vfs_find(count_vfs.zName) == &count_vfs) {
        sqlite3_vfs_unregister(&count_vfs);
        sqlite3_vfs_register(real_vfs, 1);
    }
}

/* A commit's fsyncs. */
static int commit_syncs(struct db *db)
{
    int before = syncs;
    assert_int_equal(db_commit(db), DB_OK);
    return syncs - before;
}

/* Issue 8: the queue switched the connection to synchronous=NORMAL and
 * left it there, so a configuration change made while a delivery or DATA
 * was in flight was acknowledged without an fsync. Durability is now per
 * transaction: staging commits do not sync, and nothing they do leaks
 * into the next commit. */
static void test_durability_per_transaction(void **state)
{
    struct fx *f = *state;
    real_vfs = sqlite3_vfs_find(NULL);
    count_vfs.szOsFile = (int)sizeof(struct cfile) + real_vfs->szOsFile;
    count_vfs.mxPathname = real_vfs->mxPathname;
    assert_int_equal(sqlite3_vfs_register(&count_vfs, 1), SQLITE_OK);
    f->db = open_ok(f);
    assert_true(db_durable(f->db));

    /* staging: no fsync */
    assert_int_equal(db_begin_staging(f->db), DB_OK);
    assert_false(db_durable(f->db));
    assert_int_equal(db_domain_add(f->db, "staged.example", 1), DB_OK);
    assert_int_equal(commit_syncs(f->db), 0);
    /* the configuration change right after it: synced */
    assert_true(db_durable(f->db));
    assert_int_equal(db_begin(f->db), DB_OK);
    assert_int_equal(db_domain_add(f->db, "example.com", 1), DB_OK);
    assert_int_equal(db_audit_add(f->db, 1, "console", "domain add example.com"), DB_OK);
    assert_true(commit_syncs(f->db) >= 1);

    /* a staging transaction that fails and rolls back leaves FULL too */
    assert_int_equal(db_begin_staging(f->db), DB_OK);
    assert_int_equal(db_domain_add(f->db, "example.com", 1), DB_EEXISTS);
    db_rollback(f->db);
    assert_true(db_durable(f->db));
    assert_int_equal(db_begin(f->db), DB_OK);
    assert_int_equal(db_domain_add(f->db, "example.org", 1), DB_OK);
    assert_true(commit_syncs(f->db) >= 1);

    /* a statement outside any transaction after staging is durable */
    assert_int_equal(db_begin_staging(f->db), DB_OK);
    assert_int_equal(commit_syncs(f->db), 0);
    int before = syncs;
    assert_int_equal(db_domain_add(f->db, "example.net", 1), DB_OK);
    assert_true(syncs - before >= 1);

    db_close(f->db);
    f->db = NULL;
    vfs_restore();
}

/* db_size: the file's pages, grown by data, and pages freed by a delete
 * kept on the freelist; pages * page_size is the file once checkpointed. */
static void test_db_size(void **state)
{
    struct fx *f = *state;
    f->db = open_ok(f);
    struct db_size_info a, b, c;
    assert_int_equal(db_size(f->db, &a), DB_OK);
    assert_true(a.pages > 0);
    assert_int_equal(a.page_size, (uint64_t)h_int(f->db->h, "PRAGMA page_size"));
    assert_true(a.page_size >= 512 && a.page_size <= 65536);
    assert_int_equal(a.free_pages, 0);

    assert_int_equal(sqlite3_exec(f->db->h, "CREATE TABLE big(b); "
                                  "INSERT INTO big VALUES (zeroblob(200000))", NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(db_size(f->db, &b), DB_OK);
    assert_true(b.pages * b.page_size >= a.pages * a.page_size + 200000);
    assert_int_equal(sqlite3_exec(f->db->h, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL),
                     SQLITE_OK);
    struct stat sb;
    assert_int_equal(stat(f->path, &sb), 0);
    assert_int_equal((uint64_t)sb.st_size, b.pages * b.page_size);

    assert_int_equal(sqlite3_exec(f->db->h, "DELETE FROM big", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(db_size(f->db, &c), DB_OK);
    assert_int_equal(c.pages, b.pages);
    assert_true(c.free_pages * c.page_size >= 200000 - c.page_size);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_open_fresh_on_disk),
        T(test_open_in_memory),
        T(test_open_unreachable_path),
        T(test_migrate_forward),
        T(test_older_minor_firmware_opens_newer_db),
        T(test_newer_major_refused_rollback_journal),
        T(test_newer_major_refused_wal),
        T(test_failed_migration_rolls_back),
        T(test_garbage_file_is_not_a_database),
        T(test_corrupt_page_3),
        T(test_corrupt_middle_page_reported),
        T(test_domains),
        T(test_smarthost_crud),
        T(test_smarthost_list_order),
        T(test_smarthost_constraints),
        T(test_allow),
        T(test_settings),
        T(test_audit),
        T(test_domain_usage),
        T(test_commit_is_durable),
        T(test_rollback_discards),
        T(test_errmsg_survives_rollback),
        T(test_durability_per_transaction),
        T(test_db_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
