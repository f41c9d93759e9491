/* firmware/spool.c against a real SQLite database (the db library) and the
 * real configuration (config.c for queue-max-size); only the HAL is faked.
 *
 * queue-max-size holds on the bytes actually stored: committed messages
 * plus every byte of messages still open. A write that would cross the cap
 * fails with SPOOL_NO_ROOM (told apart from SPOOL_ERR, a storage failure),
 * spool_abort() removes the partial rows and gives the bytes back, and
 * spool_flush() commits what finished whole. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "config.h"
#include "crypto.h"
#include "db.h"
#include "db_queue.h"
#include "hal_fakes.h"
#include "spool.h"
#include "tmpdir.h"

#define CAP (1024 * 1024) /* the smallest queue-max-size config.c allows */

struct fx {
    char dir[64];
    char path[128];
    struct db *db;
    struct spool_msg a, b, c; /* large: SPOOL_CHUNK buffers */
};

static struct fx *F;

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    if (tmpdir_make(f->dir, sizeof f->dir, "shr-test-spool") != 0)
        return -1;
    snprintf(f->path, sizeof f->path, "%s/relay.db", f->dir);
    char err[256];
    if (db_open(&f->db, f->path, err, sizeof err) != DB_OK) {
        fprintf(stderr, "db_open: %s\n", err);
        return -1;
    }
    if (crypto_init() != 0)
        return -1;
    cfg_init(f->db);
    char cap[32];
    snprintf(cap, sizeof cap, "%d", CAP);
    if (cfg_setting_set("queue-max-size", cap, err, sizeof err) != 0) {
        fprintf(stderr, "queue-max-size: %s\n", err);
        return -1;
    }
    if (spool_init(f->db) != 0)
        return -1;
    F = f;
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    spool_init(NULL);
    cfg_init(NULL);
    db_close(f->db);
    tmpdir_remove(f->dir);
    free(f);
    return 0;
}

/* --- helpers --- */

/* One integer from a query on a second connection (what a reader sees). */
static long long q(const char *sql)
{
    sqlite3 *h;
    assert_int_equal(sqlite3_open(F->path, &h), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    long long v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(h);
    return v;
}

/* Run SQL on a second connection (to break the database under the spool). */
static void exec2(const char *sql)
{
    sqlite3 *h;
    assert_int_equal(sqlite3_open(F->path, &h), SQLITE_OK);
    char *msg = NULL;
    int rc = sqlite3_exec(h, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fprintf(stderr, "%s: %s\n", sql, msg ? msg : "?");
    sqlite3_free(msg);
    sqlite3_close(h);
    assert_int_equal(rc, SQLITE_OK);
}

static void begin(struct spool_msg *m)
{
    struct db_msg_new info = {1700000000, "s@vendor.test", "[10.0.2.2]:1", "vendor.test"};
    assert_int_equal(spool_begin(m, &info), 0);
    assert_true(m->id > 0);
}

/* Write `n` bytes in the engine's 2 KiB pieces; returns the first failure
 * (0 when all went in) and how many bytes were taken in *taken. */
static int write_n(struct spool_msg *m, size_t n, size_t *taken)
{
    static uint8_t piece[2048];
    memset(piece, 'x', sizeof piece);
    size_t done = 0;
    int rc = 0;
    while (done < n) {
        size_t k = n - done < sizeof piece ? n - done : sizeof piece;
        rc = spool_write(m, piece, k);
        if (rc != 0)
            break;
        done += k;
    }
    if (taken)
        *taken = done;
    return rc;
}

struct done_log {
    int calls, ok;
    int64_t id;
};

static void on_done(void *ctx, int ok, int64_t id)
{
    struct done_log *d = ctx;
    d->calls++;
    d->ok = ok;
    d->id = id;
}

static const char *const RCPTS[] = {"a@example.com"};

/* --- tests --- */

/* Bytes of open messages count against the cap: sessions without SIZE=
 * cannot each store up to max-message-size past it. */
static void test_inflight_counted(void **state)
{
    (void)state;
    assert_int_equal(spool_inflight_bytes(), 0);
    assert_true(spool_has_room(0));
    begin(&F->a);
    begin(&F->b);
    assert_int_equal(write_n(&F->a, 600 * 1024, NULL), 0);
    assert_int_equal(spool_inflight_bytes(), 600 * 1024);
    assert_int_equal(spool_queue_bytes(), 0);
    /* a declared size is checked against queue + in flight */
    assert_true(spool_has_room(400 * 1024));
    assert_false(spool_has_room(500 * 1024));
    /* the second message runs into the cap although nothing is committed */
    size_t taken;
    assert_int_equal(write_n(&F->b, 600 * 1024, &taken), SPOOL_NO_ROOM);
    assert_true(taken <= CAP - 600 * 1024);
    assert_true(taken > CAP - 600 * 1024 - 2048);
    assert_int_equal(spool_inflight_bytes(), 600 * 1024 + taken);
    /* spoiled: even a byte that would fit is refused now, with the same reason */
    assert_int_equal(spool_write(&F->b, (const uint8_t *)"x", 1), SPOOL_NO_ROOM);
    /* a third message cannot begin storing either once the cap is reached */
    begin(&F->c);
    assert_int_equal(write_n(&F->c, 4096, NULL), SPOOL_NO_ROOM);
    /* aborting the refused ones gives their bytes back */
    spool_abort(&F->b);
    spool_abort(&F->c);
    assert_int_equal(spool_inflight_bytes(), 600 * 1024);
    assert_true(spool_has_room(400 * 1024));
    spool_abort(&F->a);
    assert_int_equal(spool_inflight_bytes(), 0);
    assert_int_equal(q("SELECT count(*) FROM message"), 0);
}

/* Exactly reaching the cap is fine; one byte more is not. */
static void test_cap_boundary(void **state)
{
    (void)state;
    begin(&F->a);
    assert_int_equal(write_n(&F->a, CAP - 1, NULL), 0);
    assert_int_equal(spool_write(&F->a, (const uint8_t *)"y", 1), 0);
    assert_int_equal(spool_inflight_bytes(), CAP);
    assert_false(spool_has_room(0));
    begin(&F->b);
    assert_int_equal(spool_write(&F->b, (const uint8_t *)"z", 1), SPOOL_NO_ROOM);
    spool_abort(&F->b);
    spool_finish(&F->a, RCPTS, 1, NULL, NULL);
    assert_int_equal(spool_flush(), 1);
    assert_int_equal(spool_queue_bytes(), CAP);
    assert_int_equal(spool_inflight_bytes(), 0);
    assert_false(spool_has_room(0));
    /* committed bytes keep counting: a new message gets nothing in */
    begin(&F->b);
    assert_int_equal(spool_write(&F->b, (const uint8_t *)"z", 1), SPOOL_NO_ROOM);
    spool_abort(&F->b);
    /* until the queue shrinks */
    spool_forget(CAP);
    begin(&F->b);
    assert_int_equal(spool_write(&F->b, (const uint8_t *)"z", 1), 0);
    spool_abort(&F->b);
}

/* A refused message leaves nothing behind: its stored chunks and its
 * message row go with spool_abort(). */
static void test_abort_removes_partial_rows(void **state)
{
    (void)state;
    begin(&F->a);
    assert_int_equal(write_n(&F->a, 3 * SPOOL_CHUNK + 100, NULL), 0);
    assert_int_equal(q("SELECT count(*) FROM message_chunk"), 3); /* full chunks stored */
    assert_int_equal(q("SELECT count(*) FROM message WHERE state = 'incoming'"), 1);
    spool_abort(&F->a);
    assert_int_equal(F->a.id, 0);
    assert_int_equal(q("SELECT count(*) FROM message_chunk"), 0);
    assert_int_equal(q("SELECT count(*) FROM message"), 0);
    assert_int_equal(spool_inflight_bytes(), 0);
    /* twice is harmless, and so is a message that never began */
    spool_abort(&F->a);
    assert_int_equal(spool_inflight_bytes(), 0);

    /* the 452 case: crossing the cap, then abort */
    begin(&F->b);
    assert_int_equal(write_n(&F->b, CAP + 4096, NULL), SPOOL_NO_ROOM);
    assert_true(q("SELECT count(*) FROM message_chunk") > 0);
    spool_abort(&F->b);
    assert_int_equal(q("SELECT count(*) FROM message_chunk"), 0);
    assert_int_equal(q("SELECT count(*) FROM message"), 0);
    assert_int_equal(spool_inflight_bytes(), 0);

    /* abort also takes a finished message off the commit list */
    begin(&F->c);
    assert_int_equal(write_n(&F->c, 10, NULL), 0);
    struct done_log d = {0};
    spool_finish(&F->c, RCPTS, 1, on_done, &d);
    spool_abort(&F->c);
    assert_int_equal(spool_flush(), 0);
    assert_int_equal(d.calls, 0);
    assert_int_equal(q("SELECT count(*) FROM message"), 0);
    assert_int_equal(spool_inflight_bytes(), 0);
}

/* spool_flush() commits every finished message in one go, with its
 * recipients; their bytes move from in flight to the queue. */
static void test_flush_commits(void **state)
{
    (void)state;
    const char *body = "Message-ID: <m1@vendor.test>\r\nSubject: x\r\n\r\nbody\r\n";
    begin(&F->a);
    assert_int_equal(spool_write(&F->a, (const uint8_t *)body, strlen(body)), 0);
    begin(&F->b);
    assert_int_equal(write_n(&F->b, 2 * SPOOL_CHUNK + 7, NULL), 0);
    int64_t ida = F->a.id, idb = F->b.id;
    struct done_log da = {0}, db = {0};
    spool_finish(&F->a, RCPTS, 1, on_done, &da);
    spool_finish(&F->b, RCPTS, 1, on_done, &db);
    assert_int_equal(q("SELECT count(*) FROM message WHERE state = 'queued'"), 0);
    assert_int_equal(spool_inflight_bytes(), strlen(body) + 2 * SPOOL_CHUNK + 7);
    assert_int_equal(spool_flush(), 2);
    assert_int_equal(da.calls, 1);
    assert_int_equal(da.ok, 1);
    assert_int_equal(da.id, ida);
    assert_int_equal(db.ok, 1);
    assert_int_equal(db.id, idb);
    assert_int_equal(F->a.id, 0);
    assert_int_equal(spool_inflight_bytes(), 0);
    assert_int_equal(spool_queue_bytes(), strlen(body) + 2 * SPOOL_CHUNK + 7);
    assert_int_equal(q("SELECT count(*) FROM message WHERE state = 'queued'"), 2);
    assert_int_equal(q("SELECT count(*) FROM recipient"), 2);
    assert_int_equal(q("SELECT sum(length(data)) FROM message_chunk"),
                     strlen(body) + 2 * SPOOL_CHUNK + 7);
    char sql[128];
    snprintf(sql, sizeof sql,
             "SELECT message_id = '<m1@vendor.test>' AND size = %zu FROM message WHERE id = %lld",
             strlen(body), (long long)ida);
    assert_int_equal(q(sql), 1);
    /* nothing left to do */
    assert_int_equal(spool_flush(), 0);
    /* the queue's size survives a reboot: counted again from the database,
     * and what was still incoming is dropped */
    begin(&F->c);
    assert_int_equal(write_n(&F->c, SPOOL_CHUNK, NULL), 0);
    assert_int_equal(spool_init(F->db), 0);
    assert_int_equal(spool_queue_bytes(), strlen(body) + 2 * SPOOL_CHUNK + 7);
    assert_int_equal(spool_inflight_bytes(), 0);
    assert_int_equal(q("SELECT count(*) FROM message WHERE state = 'incoming'"), 0);
}

/* A DSN goes through the same calls with no callback. */
static void test_dsn_style_use(void **state)
{
    (void)state;
    begin(&F->a);
    assert_int_equal(spool_write(&F->a, (const uint8_t *)"report\r\n", 8), 0);
    spool_finish(&F->a, RCPTS, 1, NULL, NULL);
    assert_int_equal(spool_flush(), 1);
    assert_int_equal(spool_queue_bytes(), 8);
    /* and tells "no room" from a storage error */
    begin(&F->a);
    assert_int_equal(write_n(&F->a, CAP, NULL), SPOOL_NO_ROOM);
    spool_abort(&F->a);
    assert_int_equal(spool_write(&F->a, (const uint8_t *)"x", 1), SPOOL_ERR); /* none open */
}

/* A spoiled message that is finished anyway is refused on its own; the
 * others of the same batch still commit. */
static void test_spoiled_message_refused_alone(void **state)
{
    (void)state;
    begin(&F->a);
    assert_int_equal(write_n(&F->a, 1000, NULL), 0);
    begin(&F->b);
    assert_int_equal(write_n(&F->b, CAP, NULL), SPOOL_NO_ROOM);
    struct done_log da = {0}, db = {0};
    spool_finish(&F->b, RCPTS, 1, on_done, &db);
    spool_finish(&F->a, RCPTS, 1, on_done, &da);
    assert_int_equal(spool_flush(), 1);
    assert_int_equal(da.ok, 1);
    assert_int_equal(db.calls, 1);
    assert_int_equal(db.ok, 0);
    assert_int_equal(q("SELECT count(*) FROM message"), 1);
    assert_int_equal(q("SELECT count(*) FROM message_chunk"), 1);
    assert_int_equal(spool_queue_bytes(), 1000);
    assert_int_equal(spool_inflight_bytes(), 0);
}

/* Storage failures are SPOOL_ERR, not SPOOL_NO_ROOM, and release the bytes
 * when the message is aborted; a failed commit refuses the whole batch and
 * counts nothing. */
static void test_storage_failures(void **state)
{
    (void)state;
    begin(&F->a);
    assert_int_equal(write_n(&F->a, 100, NULL), 0);
    begin(&F->b);
    assert_int_equal(write_n(&F->b, 100, NULL), 0);
    /* the commit fails: recipients cannot be written */
    exec2("DROP TABLE recipient");
    struct done_log da = {0}, db = {0};
    spool_finish(&F->a, RCPTS, 1, on_done, &da);
    spool_finish(&F->b, RCPTS, 1, on_done, &db);
    assert_int_equal(spool_flush(), 0);
    assert_int_equal(da.calls, 1);
    assert_int_equal(da.ok, 0);
    assert_int_equal(db.ok, 0);
    assert_int_equal(spool_queue_bytes(), 0);
    assert_int_equal(spool_inflight_bytes(), 0);
    assert_int_equal(q("SELECT count(*) FROM message"), 0);

    /* a chunk cannot be stored */
    begin(&F->c);
    exec2("DROP TABLE message_chunk");
    size_t taken;
    assert_int_equal(write_n(&F->c, SPOOL_CHUNK + 10, &taken), SPOOL_ERR);
    assert_int_equal(spool_write(&F->c, (const uint8_t *)"x", 1), SPOOL_ERR);
    assert_true(spool_inflight_bytes() > 0);
    spool_abort(&F->c);
    assert_int_equal(spool_inflight_bytes(), 0);
    /* no message can begin without its table */
    exec2("DROP TABLE message");
    struct db_msg_new info = {1, "", "[local]", "relay"};
    assert_int_equal(spool_begin(&F->a, &info), SPOOL_ERR);
    assert_int_equal(F->a.id, 0);
    assert_int_equal(spool_write(&F->a, (const uint8_t *)"x", 1), SPOOL_ERR);
}

/* No storage at all: no room, nothing begins. */
static void test_no_storage(void **state)
{
    (void)state;
    spool_init(NULL);
    assert_false(spool_has_room(0));
    struct db_msg_new info = {1, "", "[local]", "relay"};
    assert_int_equal(spool_begin(&F->a, &info), SPOOL_ERR);
    assert_int_equal(spool_write(&F->a, (const uint8_t *)"x", 1), SPOOL_ERR);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, fx_setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        T(test_inflight_counted),       T(test_cap_boundary),
        T(test_abort_removes_partial_rows), T(test_flush_commits),
        T(test_dsn_style_use),          T(test_spoiled_message_refused_alone),
        T(test_storage_failures),       T(test_no_storage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
