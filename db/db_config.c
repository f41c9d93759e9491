/* db_config.c — configuration rows; see db_config.h. */
#include "db_config.h"

#include <stdio.h>
#include <string.h>

#include "db_internal.h"

/* --- allowed domains --- */

int db_domain_add(struct db *db, const char *name, int64_t now)
{
    sqlite3_stmt *st;
    int rc = db_prepare(db, "INSERT INTO domain(name, created) VALUES (?1, ?2)", &st);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now);
    return db_step_done(db, st);
}

static int64_t count_where(struct db *db, const char *sql, const char *arg)
{
    sqlite3_stmt *st;
    if (db_prepare(db, sql, &st) != DB_OK)
        return -1;
    sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
    int64_t n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    db_release(db, st);
    return n;
}

int db_domain_exists(struct db *db, const char *name)
{
    return count_where(db, "SELECT count(*) FROM domain WHERE name = ?1", name) > 0;
}

int db_domain_usage(struct db *db, const char *name, int64_t *smarthosts, int64_t *queued)
{
    *smarthosts = count_where(db, "SELECT count(*) FROM smarthost WHERE domain = ?1", name);
    *queued = count_where(db,
                          "SELECT count(*) FROM recipient WHERE domain = ?1 "
                          "AND state NOT IN ('delivered','failed')",
                          name);
    return (*smarthosts < 0 || *queued < 0) ? DB_EIO : DB_OK;
}

int db_domain_del(struct db *db, const char *name)
{
    sqlite3_stmt *st;
    int rc = db_prepare(db, "DELETE FROM smarthost WHERE domain = ?1", &st);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if ((rc = db_step_done(db, st)) != DB_OK)
        return rc;
    if ((rc = db_prepare(db, "DELETE FROM domain WHERE name = ?1", &st)) != DB_OK)
        return rc;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if ((rc = db_step_done(db, st)) != DB_OK)
        return rc;
    return sqlite3_changes(db->h) ? DB_OK : DB_ENOTFOUND;
}

int db_domain_list(struct db *db, db_domain_fn fn, void *ctx)
{
    return db_domain_page(db, 0, -1, fn, ctx);
}

int db_domain_page(struct db *db, int offset, int limit, db_domain_fn fn, void *ctx)
{
    sqlite3_stmt *st;
    int rc = db_prepare(db,
                        "SELECT d.name, (SELECT count(*) FROM smarthost s WHERE s.domain = d.name) "
                        "FROM domain d ORDER BY d.name LIMIT ?1 OFFSET ?2",
                        &st);
    if (rc)
        return rc;
    sqlite3_bind_int(st, 1, limit);
    sqlite3_bind_int(st, 2, offset);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        fn(ctx, (const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1));
    db_release(db, st);
    return rc == SQLITE_DONE ? DB_OK : db_rc_from(rc);
}

/* --- smart hosts --- */

#define SMARTHOST_COLUMNS \
    "id, domain, host, port, priority, tls, username, password_sealed, auth_plaintext, " \
    "tls_downgrades, tls_failing"

static void read_smarthost(sqlite3_stmt *st, struct db_smarthost *sh)
{
    memset(sh, 0, sizeof *sh);
    sh->id = sqlite3_column_int64(st, 0);
    db_column_text(st, 1, sh->domain, sizeof sh->domain);
    db_column_text(st, 2, sh->host, sizeof sh->host);
    sh->port = sqlite3_column_int(st, 3);
    sh->priority = sqlite3_column_int64(st, 4);
    db_column_text(st, 5, sh->tls, sizeof sh->tls);
    db_column_text(st, 6, sh->username, sizeof sh->username);
    int n = sqlite3_column_bytes(st, 7);
    if (n > 0 && (size_t)n <= sizeof sh->sealed) {
        memcpy(sh->sealed, sqlite3_column_blob(st, 7), (size_t)n);
        sh->sealed_len = (size_t)n;
    }
    sh->auth_plaintext = sqlite3_column_int(st, 8);
    sh->tls_downgrades = sqlite3_column_int64(st, 9);
    sh->tls_failing = sqlite3_column_int(st, 10);
}

/* Bind the writable columns as ?1..?9 in the order of SMARTHOST_COLUMNS
 * after id; ?10 is the time. */
static void bind_smarthost(sqlite3_stmt *st, const struct db_smarthost *sh, int64_t now)
{
    sqlite3_bind_text(st, 1, sh->domain, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, sh->host, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, sh->port);
    sqlite3_bind_int64(st, 4, sh->priority);
    sqlite3_bind_text(st, 5, sh->tls, -1, SQLITE_STATIC);
    if (sh->username[0])
        sqlite3_bind_text(st, 6, sh->username, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 6);
    if (sh->sealed_len)
        sqlite3_bind_blob(st, 7, sh->sealed, (int)sh->sealed_len, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 7);
    sqlite3_bind_int(st, 8, sh->auth_plaintext ? 1 : 0);
    sqlite3_bind_int64(st, 9, sh->tls_downgrades);
    sqlite3_bind_int64(st, 10, now);
}

int db_smarthost_add(struct db *db, struct db_smarthost *sh, int64_t now)
{
    sqlite3_stmt *st;
    int rc = db_prepare(db,
                        "INSERT INTO smarthost(domain, host, port, priority, tls, username, "
                        "password_sealed, auth_plaintext, tls_downgrades, created, updated) "
                        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
                        &st);
    if (rc)
        return rc;
    bind_smarthost(st, sh, now);
    if ((rc = db_step_done(db, st)) == DB_OK)
        sh->id = sqlite3_last_insert_rowid(db->h);
    return rc;
}

int db_smarthost_get(struct db *db, int64_t id, struct db_smarthost *sh)
{
    sqlite3_stmt *st;
    int rc = db_prepare(db, "SELECT " SMARTHOST_COLUMNS " FROM smarthost WHERE id = ?1", &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        read_smarthost(st, sh);
    db_release(db, st);
    return rc == SQLITE_ROW ? DB_OK : rc == SQLITE_DONE ? DB_ENOTFOUND : db_rc_from(rc);
}

int db_smarthost_update(struct db *db, const struct db_smarthost *sh, int64_t now)
{
    sqlite3_stmt *st;
    int rc = db_prepare(db,
                        "UPDATE smarthost SET domain = ?1, host = ?2, port = ?3, priority = ?4, "
                        "tls = ?5, username = ?6, password_sealed = ?7, auth_plaintext = ?8, "
                        "tls_downgrades = ?9, updated = ?10 WHERE id = ?11",
                        &st);
    if (rc)
        return rc;
    bind_smarthost(st, sh, now);
    sqlite3_bind_int64(st, 11, sh->id);
    if ((rc = db_step_done(db, st)) != DB_OK)
        return rc;
    return sqlite3_changes(db->h) ? DB_OK : DB_ENOTFOUND;
}

int db_smarthost_tls_result(struct db *db, int64_t id, int failed)
{
    sqlite3_stmt *st;
    int rc = db_prepare(db,
                        "UPDATE smarthost SET tls_downgrades = tls_downgrades + ?2, "
                        "tls_failing = ?2 WHERE id = ?1",
                        &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int(st, 2, failed ? 1 : 0);
    return db_step_done(db, st);
}

int db_smarthost_del(struct db *db, int64_t id)
{
    sqlite3_stmt *st;
    int rc = db_prepare(db, "DELETE FROM smarthost WHERE id = ?1", &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    if ((rc = db_step_done(db, st)) != DB_OK)
        return rc;
    return sqlite3_changes(db->h) ? DB_OK : DB_ENOTFOUND;
}

int64_t db_smarthost_find(struct db *db, const char *domain, const char *host, int32_t port)
{
    sqlite3_stmt *st;
    if (db_prepare(db, "SELECT id FROM smarthost WHERE domain = ?1 AND host = ?2 AND port = ?3",
                   &st) != DB_OK)
        return 0;
    sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, host, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, port);
    int64_t id = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    db_release(db, st);
    return id;
}

int db_smarthost_list(struct db *db, const char *domain, db_smarthost_fn fn, void *ctx)
{
    return db_smarthost_page(db, domain, 0, -1, fn, ctx);
}

int db_smarthost_page(struct db *db, const char *domain, int offset, int limit,
                      db_smarthost_fn fn, void *ctx)
{
    sqlite3_stmt *st;
    int rc = db_prepare(db,
                        "SELECT " SMARTHOST_COLUMNS " FROM smarthost "
                        "WHERE ?1 IS NULL OR domain = ?1 ORDER BY domain, priority, id "
                        "LIMIT ?2 OFFSET ?3",
                        &st);
    if (rc)
        return rc;
    sqlite3_bind_int(st, 2, limit);
    sqlite3_bind_int(st, 3, offset);
    if (domain)
        sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
    struct db_smarthost sh;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        read_smarthost(st, &sh);
        fn(ctx, &sh);
    }
    db_release(db, st);
    return rc == SQLITE_DONE ? DB_OK : db_rc_from(rc);
}

/* --- inbound allowlist --- */

int db_allow_add(struct db *db, const char *cidr, int family, const uint8_t addr[16],
                 int prefix, int64_t now)
{
    sqlite3_stmt *st;
    int rc = db_prepare(db,
                        "INSERT INTO allow_net(cidr, family, addr, prefix, created) "
                        "VALUES (?1, ?2, ?3, ?4, ?5)",
                        &st);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, cidr, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, family);
    sqlite3_bind_blob(st, 3, addr, family == 4 ? 4 : 16, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, prefix);
    sqlite3_bind_int64(st, 5, now);
    return db_step_done(db, st);
}

int db_allow_del(struct db *db, const char *cidr)
{
    sqlite3_stmt *st;
    int rc = db_prepare(db, "DELETE FROM allow_net WHERE cidr = ?1", &st);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, cidr, -1, SQLITE_STATIC);
    if ((rc = db_step_done(db, st)) != DB_OK)
        return rc;
    return sqlite3_changes(db->h) ? DB_OK : DB_ENOTFOUND;
}

int db_allow_list(struct db *db, db_allow_fn fn, void *ctx)
{
    return db_allow_page(db, 0, -1, fn, ctx);
}

int db_allow_page(struct db *db, int offset, int limit, db_allow_fn fn, void *ctx)
{
    sqlite3_stmt *st;
    int rc = db_prepare(db, "SELECT cidr, family, addr, prefix FROM allow_net "
                            "ORDER BY family, addr, prefix LIMIT ?1 OFFSET ?2", &st);
    if (rc)
        return rc;
    sqlite3_bind_int(st, 1, limit);
    sqlite3_bind_int(st, 2, offset);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        uint8_t addr[16] = {0};
        int n = sqlite3_column_bytes(st, 2);
        int family = sqlite3_column_int(st, 1);
        int prefix = sqlite3_column_int(st, 3);
        if (n == (family == 4 ? 4 : 16))
            memcpy(addr, sqlite3_column_blob(st, 2), (size_t)n);
        else
            prefix = -1; /* an address of the wrong size: a damaged row */
        fn(ctx, (const char *)sqlite3_column_text(st, 0), family, addr, prefix);
    }
    db_release(db, st);
    return rc == SQLITE_DONE ? DB_OK : db_rc_from(rc);
}

/* --- settings --- */

int db_setting_get(struct db *db, const char *key, char *value, size_t cap)
{
    sqlite3_stmt *st;
    int rc = db_prepare(db, "SELECT value FROM setting WHERE key = ?1", &st);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        db_column_text(st, 0, value, cap);
    db_release(db, st);
    return rc == SQLITE_ROW ? DB_OK : rc == SQLITE_DONE ? DB_ENOTFOUND : db_rc_from(rc);
}

int db_setting_set(struct db *db, const char *key, const char *value)
{
    sqlite3_stmt *st;
    int rc = db_prepare(db, "INSERT INTO setting(key, value) VALUES (?1, ?2) "
                            "ON CONFLICT(key) DO UPDATE SET value = excluded.value", &st);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
    return db_step_done(db, st);
}

int db_setting_unset(struct db *db, const char *key)
{
    sqlite3_stmt *st;
    int rc = db_prepare(db, "DELETE FROM setting WHERE key = ?1", &st);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    return db_step_done(db, st);
}

/* --- TLS identity --- */

static int copy_blob(sqlite3_stmt *st, int col, uint8_t *out, size_t *len)
{
    int n = sqlite3_column_bytes(st, col);
    if (n < 0 || (size_t)n > *len)
        return DB_EIO;
    memcpy(out, sqlite3_column_blob(st, col), (size_t)n);
    *len = (size_t)n;
    return DB_OK;
}

int db_tls_identity_get(struct db *db, uint8_t *key_sealed, size_t *key_len, uint8_t *cert,
                        size_t *cert_len)
{
    sqlite3_stmt *st;
    int rc = db_prepare(db, "SELECT key_sealed, cert FROM tls_identity WHERE id = 1", &st);
    if (rc)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        rc = copy_blob(st, 0, key_sealed, key_len);
        if (rc == DB_OK)
            rc = copy_blob(st, 1, cert, cert_len);
    } else {
        rc = rc == SQLITE_DONE ? DB_ENOTFOUND : db_rc_from(rc);
    }
    db_release(db, st);
    return rc;
}

int db_tls_identity_set(struct db *db, const uint8_t *key_sealed, size_t key_len,
                        const uint8_t *cert, size_t cert_len, int64_t now)
{
    sqlite3_stmt *st;
    int rc = db_prepare(db, "INSERT OR REPLACE INTO tls_identity(id, key_sealed, cert, created) "
                            "VALUES (1, ?1, ?2, ?3)", &st);
    if (rc)
        return rc;
    sqlite3_bind_blob(st, 1, key_sealed, (int)key_len, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, cert, (int)cert_len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now);
    return db_step_done(db, st);
}

/* --- inbound account --- */

int db_inbound_get(struct db *db, struct db_inbound_account *acct)
{
    sqlite3_stmt *st;
    int rc = db_prepare(db, "SELECT username, hash, salt, iterations FROM inbound_account "
                            "WHERE id = 1", &st);
    if (rc)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        memset(acct, 0, sizeof *acct);
        db_column_text(st, 0, acct->username, sizeof acct->username);
        size_t hl = sizeof acct->hash, sl = sizeof acct->salt;
        rc = copy_blob(st, 1, acct->hash, &hl);
        if (rc == DB_OK)
            rc = copy_blob(st, 2, acct->salt, &sl);
        acct->iterations = (uint32_t)sqlite3_column_int64(st, 3);
        if (rc == DB_OK && (hl != sizeof acct->hash || sl != sizeof acct->salt))
            rc = DB_EIO;
    } else {
        rc = rc == SQLITE_DONE ? DB_ENOTFOUND : db_rc_from(rc);
    }
    db_release(db, st);
    return rc;
}

int db_inbound_set(struct db *db, const struct db_inbound_account *acct, int64_t now)
{
    sqlite3_stmt *st;
    int rc = db_prepare(db, "INSERT OR REPLACE INTO inbound_account(id, username, hash, salt, "
                            "iterations, updated) VALUES (1, ?1, ?2, ?3, ?4, ?5)", &st);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, acct->username, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, acct->hash, sizeof acct->hash, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, acct->salt, sizeof acct->salt, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, acct->iterations);
    sqlite3_bind_int64(st, 5, now);
    return db_step_done(db, st);
}

int db_inbound_clear(struct db *db)
{
    sqlite3_stmt *st;
    int rc = db_prepare(db, "DELETE FROM inbound_account", &st);
    return rc ? rc : db_step_done(db, st);
}

/* --- audit log --- */

int db_audit_add(struct db *db, int64_t now, const char *actor, const char *action)
{
    sqlite3_stmt *st;
    int rc = db_prepare(db, "INSERT INTO audit(at, actor, action) VALUES (?1, ?2, ?3)", &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_text(st, 2, actor, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, action, -1, SQLITE_STATIC);
    return db_step_done(db, st);
}

int db_audit_tail(struct db *db, int n, int64_t *after)
{
    return db_tail_after(db, "SELECT id FROM audit ORDER BY id DESC LIMIT 1 OFFSET ?1", n, after);
}

int db_audit_page(struct db *db, int64_t after_id, int limit, db_audit_fn fn, void *ctx,
                  int64_t *last_id)
{
    sqlite3_stmt *st;
    int rc = db_prepare(db, "SELECT at, actor, action, id FROM audit WHERE id > ?1 ORDER BY id "
                            "LIMIT ?2",
                        &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, after_id);
    sqlite3_bind_int(st, 2, limit);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        *last_id = sqlite3_column_int64(st, 3);
        fn(ctx, sqlite3_column_int64(st, 0), (const char *)sqlite3_column_text(st, 1),
           (const char *)sqlite3_column_text(st, 2));
    }
    db_release(db, st);
    return rc == SQLITE_DONE ? DB_OK : db_rc_from(rc);
}

int db_audit_list(struct db *db, int n, db_audit_fn fn, void *ctx)
{
    int64_t after, last;
    int rc = db_audit_tail(db, n, &after);
    return rc ? rc : db_audit_page(db, after, n, fn, ctx, &last);
}
