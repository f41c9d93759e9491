/* db_config.h — configuration rows: allowed domains, smart hosts, the
 * inbound allowlist, settings and the audit log.
 *
 * Storage only: values arrive validated (firmware/config.c). Each call is
 * one statement; callers wrap a command's calls and its audit row in one
 * transaction (db_begin/db_commit). */
#ifndef DB_CONFIG_H
#define DB_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "db.h"

#define DB_NAME_MAX 253  /* a DNS name */
#define DB_USER_MAX 128  /* a smart-host user name */
#define DB_SEALED_MAX 320 /* a sealed password (crypto.h) */
#define DB_TEXT_MAX 256  /* a setting value or an audit line */

/* --- allowed domains --- */
int db_domain_add(struct db *db, const char *name, int64_t now);
int db_domain_exists(struct db *db, const char *name);
/* Rows that depend on the domain: smart hosts, and queued recipients not
 * yet delivered or failed. */
int db_domain_usage(struct db *db, const char *name, int64_t *smarthosts, int64_t *queued);
/* Delete the domain and its smart hosts (queued mail stays queued). */
int db_domain_del(struct db *db, const char *name);
typedef void (*db_domain_fn)(void *ctx, const char *name, int64_t smarthosts);
int db_domain_list(struct db *db, db_domain_fn fn, void *ctx);
/* Rows offset..offset+limit-1 of the same order (limit -1: all): a long
 * listing a page at a time, while nothing else changes the table (the
 * console, the only writer, is busy with it). */
int db_domain_page(struct db *db, int offset, int limit, db_domain_fn fn, void *ctx);

/* --- smart hosts --- */
struct db_smarthost {
    int64_t id;
    char domain[DB_NAME_MAX + 1];
    char host[DB_NAME_MAX + 1];
    int32_t port;
    int64_t priority;
    char tls[8]; /* may | encrypt | verify | none */
    char username[DB_USER_MAX + 1]; /* "" when no credentials */
    uint8_t sealed[DB_SEALED_MAX];  /* sealed password; sealed_len 0 when none */
    size_t sealed_len;
    int auth_plaintext;
    int64_t tls_downgrades;
    int tls_failing; /* the last TLS attempt failed (read only here) */
};

/* Insert; sets sh->id. DB_EEXISTS for a duplicate (domain, host, port). */
int db_smarthost_add(struct db *db, struct db_smarthost *sh, int64_t now);
int db_smarthost_get(struct db *db, int64_t id, struct db_smarthost *sh);
/* Replace every column of row sh->id. */
int db_smarthost_update(struct db *db, const struct db_smarthost *sh, int64_t now);
int db_smarthost_del(struct db *db, int64_t id);
/* Id of the row with this (domain, host, port), 0 when none. */
int64_t db_smarthost_find(struct db *db, const char *domain, const char *host, int32_t port);
/* Record a TLS outcome with the host: a failed handshake (counted as a
 * downgrade) or a working one (clears the failing mark). */
int db_smarthost_tls_result(struct db *db, int64_t id, int failed);
typedef void (*db_smarthost_fn)(void *ctx, const struct db_smarthost *sh);
/* Ordered by domain, then priority, then id; `domain` NULL for all. */
int db_smarthost_list(struct db *db, const char *domain, db_smarthost_fn fn, void *ctx);
int db_smarthost_page(struct db *db, const char *domain, int offset, int limit,
                      db_smarthost_fn fn, void *ctx);

/* --- inbound allowlist --- */
int db_allow_add(struct db *db, const char *cidr, int family, const uint8_t addr[16],
                 int prefix, int64_t now);
int db_allow_del(struct db *db, const char *cidr);
/* `prefix` is -1 for a row whose address has the wrong size for its family
 * (damaged): callers must match nothing with it. */
typedef void (*db_allow_fn)(void *ctx, const char *cidr, int family, const uint8_t addr[16],
                            int prefix);
int db_allow_list(struct db *db, db_allow_fn fn, void *ctx);
int db_allow_page(struct db *db, int offset, int limit, db_allow_fn fn, void *ctx);

/* --- settings --- */
/* DB_ENOTFOUND when the key was never set. */
int db_setting_get(struct db *db, const char *key, char *value, size_t cap);
int db_setting_set(struct db *db, const char *key, const char *value);
int db_setting_unset(struct db *db, const char *key);

/* --- TLS identity (one row) --- */
/* DB_ENOTFOUND when none was made yet. Lengths in/out: capacity/size. */
int db_tls_identity_get(struct db *db, uint8_t *key_sealed, size_t *key_len, uint8_t *cert,
                        size_t *cert_len);
int db_tls_identity_set(struct db *db, const uint8_t *key_sealed, size_t key_len,
                        const uint8_t *cert, size_t cert_len, int64_t now);

/* --- inbound SMTP AUTH account (one row) --- */
struct db_inbound_account {
    char username[DB_USER_MAX + 1];
    uint8_t hash[32];
    uint8_t salt[16];
    uint32_t iterations;
};
int db_inbound_get(struct db *db, struct db_inbound_account *acct);
int db_inbound_set(struct db *db, const struct db_inbound_account *acct, int64_t now);
int db_inbound_clear(struct db *db);

/* --- audit log --- */
int db_audit_add(struct db *db, int64_t now, const char *actor, const char *action);
typedef void (*db_audit_fn)(void *ctx, int64_t at, const char *actor, const char *action);
/* The last `n` entries, oldest first. */
int db_audit_list(struct db *db, int n, db_audit_fn fn, void *ctx);
/* The same a page at a time (see db_history_tail/page). */
int db_audit_tail(struct db *db, int n, int64_t *after);
int db_audit_page(struct db *db, int64_t after_id, int limit, db_audit_fn fn, void *ctx,
                  int64_t *last_id);

#endif
