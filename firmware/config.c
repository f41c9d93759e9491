/* config.c — validation and configuration changes; see config.h. */
#include "config.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "clocksync.h"
#include "crypto.h"
#include "db.h"
#include "hal_clock.h"
#include "log.h"

#define ACTOR "console" /* who makes changes: the one console account */

/* lwIP is built IPv4 only (lwipopts.h): an IPv6 allowlist entry could never
 * match a source and an IPv6 smart host could never be reached, so
 * configuration refuses both rather than store what cannot work. */
#define IPV6_REFUSED "IPv6 is not supported on this firmware yet"

static struct db *store;

/* Settings are read for every message (limits, timeouts, retry times),
 * and each read was an SQL statement with its locks: a value, once read,
 * is kept here until a setting is set or reset (the only ways one
 * changes) or the store changes. Unreadable values are not kept. */
#define SETTINGS_CACHED 24
static struct {
    uint8_t valid;
    char value[DB_TEXT_MAX];
} setting_cache[SETTINGS_CACHED];

static void settings_forget(void) { memset(setting_cache, 0, sizeof setting_cache); }

void cfg_init(struct db *db)
{
    store = db;
    settings_forget();
}
struct db *cfg_db(void) { return store; }

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* Rejected text echoed in a message is cut, so that the reason after it
 * still fits in CFG_ERR_MAX: use as "'%.*s%s'" with ECHO(text). */
#define ECHO_MAX 64
#define ECHO(s) ECHO_MAX, (s), strlen(s) > ECHO_MAX ? "..." : ""

static int no_store(char *err, size_t errlen)
{
    return fail(err, errlen, "storage is unavailable (see 'log')");
}

static int storage_error(char *err, size_t errlen, int rc)
{
    log_err("config", "storage error %d: %s", rc, db_errmsg(store));
    return fail(err, errlen, "storage error: %s", db_errmsg(store));
}

/* Finish the writes of one command: its audit line, then commit. The line
 * is cut at DB_TEXT_MAX; a long host name must not fail a change. */
static int commit_with_audit(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int commit_with_audit(char *err, size_t errlen, const char *fmt, ...)
{
    char action[DB_TEXT_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(action, sizeof action, fmt, ap);
    va_end(ap);
    int rc = db_audit_add(store, hal_clock_wall(), ACTOR, action);
    if (rc == DB_OK)
        rc = db_commit(store);
    if (rc != DB_OK) {
        storage_error(err, errlen, rc);
        db_rollback(store);
        return -1;
    }
    log_info("config", "%s", action);
    return 0;
}

int cfg_audit(const char *action)
{
    if (!store)
        return -1;
    /* Not commit_with_audit: the caller logs the event at its own level. */
    int rc = db_begin(store);
    if (rc == DB_OK)
        rc = db_audit_add(store, hal_clock_wall(), ACTOR, action);
    if (rc == DB_OK)
        rc = db_commit(store);
    if (rc != DB_OK) {
        log_err("config", "storage error %d: %s", rc, db_errmsg(store));
        db_rollback(store);
        return -1;
    }
    return 0;
}

/* --- validation --- */

/* One DNS label: 1..63 of [A-Za-z0-9-], not starting or ending with '-'. */
static int label_ok(const char *s, size_t n)
{
    if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-')
            return 0;
    return 1;
}

/* Checks a DNS name; returns its label count, or 0 when invalid. Also sets
 * *last_numeric when the last label is all digits (then it would be an IP). */
static int dns_name_labels(const char *text, int *last_numeric)
{
    size_t len = strlen(text);
    if (len == 0 || len > DB_NAME_MAX)
        return 0;
    int labels = 0;
    const char *p = text;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (!label_ok(p, n))
            return 0;
        labels++;
        if (!dot) {
            *last_numeric = 1;
            for (size_t i = 0; i < n; i++)
                if (!isdigit((unsigned char)p[i]))
                    *last_numeric = 0;
            return labels;
        }
        p = dot + 1;
    }
}

static void lower_copy(char *out, const char *in, size_t cap)
{
    size_t i = 0;
    for (; in[i] && i + 1 < cap; i++)
        out[i] = (char)tolower((unsigned char)in[i]);
    out[i] = '\0';
}

int cfg_check_domain(const char *text, char out[DB_NAME_MAX + 1], char *err, size_t errlen)
{
    int numeric = 0;
    int labels = dns_name_labels(text, &numeric);
    if (labels < 2 || numeric)
        return fail(err, errlen, "'%.*s%s' is not a valid domain name (like example.com)",
                    ECHO(text));
    lower_copy(out, text, DB_NAME_MAX + 1);
    return 0;
}

int cfg_check_host(const char *text, char out[DB_NAME_MAX + 1], int *is_ip, char *err,
                   size_t errlen)
{
    char inner[ADDR_IP6_STRLEN];
    size_t len = strlen(text);
    uint32_t v4;
    uint8_t v6[16];
    *is_ip = 4;
    if (addr_ip4_parse(text, &v4) == 0) {
        addr_ip4_format(v4, out);
        return 0;
    }
    const char *v6text = text;
    if (len > 2 && text[0] == '[' && text[len - 1] == ']' && len - 2 < sizeof inner) {
        memcpy(inner, text + 1, len - 2);
        inner[len - 2] = '\0';
        v6text = inner;
    }
    if (addr_ip6_parse(v6text, v6) == 0) {
        *is_ip = 6;
        addr_ip6_format(v6, out);
        return 0;
    }
    *is_ip = 0;
    int numeric = 0;
    if (dns_name_labels(text, &numeric) == 0 || numeric)
        return fail(err, errlen, "host '%.*s%s' is neither a valid DNS name nor an IP address",
                    ECHO(text));
    lower_copy(out, text, DB_NAME_MAX + 1);
    return 0;
}

static int parse_decimal(const char *text, int64_t max, int64_t *out)
{
    if (!*text || strlen(text) > 18)
        return -1;
    int64_t v = 0;
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (*p - '0');
    }
    if (v > max)
        return -1;
    *out = v;
    return 0;
}

int cfg_parse_port(const char *text, int32_t *port, char *err, size_t errlen)
{
    int64_t v;
    if (parse_decimal(text, 65535, &v) != 0 || v < 1)
        return fail(err, errlen, "port '%.*s%s' is out of range (1..65535)", ECHO(text));
    *port = (int32_t)v;
    return 0;
}

int cfg_parse_priority(const char *text, int64_t *prio, char *err, size_t errlen)
{
    if (text[0] == '-')
        return fail(err, errlen, "priority must be 0 or more (lower is tried first)");
    int64_t v;
    if (parse_decimal(text, 1000000, &v) != 0)
        return fail(err, errlen, "priority '%.*s%s' is not a number from 0 to 1000000",
                    ECHO(text));
    *prio = v;
    return 0;
}

int cfg_check_tls(const char *text, char *err, size_t errlen)
{
    static const char *const policies[] = {"may", "encrypt", "verify", "none"};
    for (size_t i = 0; i < sizeof policies / sizeof policies[0]; i++)
        if (strcmp(text, policies[i]) == 0)
            return 0;
    return fail(err, errlen, "tls must be may, encrypt, verify or none, not '%s'", text);
}

static int printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7E)
            return 0;
    return 1;
}

int cfg_check_user(const char *text, char *err, size_t errlen)
{
    size_t n = strlen(text);
    if (n == 0 || n > DB_USER_MAX || !printable(text))
        return fail(err, errlen, "user must be 1 to %d visible characters without spaces",
                    DB_USER_MAX);
    return 0;
}

int cfg_check_password(const char *text, char *err, size_t errlen)
{
    size_t n = strlen(text);
    if (n == 0)
        return fail(err, errlen, "the password is empty");
    if (n > CFG_PASSWORD_MAX)
        return fail(err, errlen, "the password is longer than %d characters", CFG_PASSWORD_MAX);
    for (const char *p = text; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7E)
            return fail(err, errlen, "the password may hold only printable ASCII");
    return 0;
}

/* --- smart hosts of a domain, and the bounce address --- */

static void count_host(void *ctx, const struct db_smarthost *sh)
{
    (void)sh;
    ++*(int64_t *)ctx;
}

static int smarthost_count(const char *domain, int64_t *n)
{
    *n = 0;
    return db_smarthost_list(store, domain, count_host, n) == DB_OK ? 0 : -1;
}

/* The domain of an address (lower case) into `dom`; -1 when it has none. */
static int address_domain(const char *address, char dom[DB_NAME_MAX + 1])
{
    char e[CFG_ERR_MAX];
    const char *at = strrchr(address, '@');
    return at ? cfg_check_domain(at + 1, dom, e, sizeof e) : -1;
}

/* After a delete that touched `domain`: when reports go to an address in it
 * and no smart host for it is left, say that they cannot be delivered. The
 * delete itself stands; the administrator may be about to add another. */
static void bounce_warning(const char *domain, char *warn, size_t warnlen)
{
    char addr[DB_TEXT_MAX], dom[DB_NAME_MAX + 1];
    int64_t n;
    if (cfg_setting_get("bounce-address", addr, sizeof addr) != 0 || !addr[0] ||
        address_domain(addr, dom) != 0 || strcmp(dom, domain) != 0 ||
        smarthost_count(dom, &n) != 0 || n > 0)
        return;
    snprintf(warn, warnlen, "mail reports to %s cannot be delivered until a smart host for %s "
             "is added", addr, dom);
}

/* --- allowed domains --- */

int cfg_domain_add(const char *name, char *err, size_t errlen)
{
    char dom[DB_NAME_MAX + 1];
    if (cfg_check_domain(name, dom, err, errlen) != 0)
        return -1;
    if (!store)
        return no_store(err, errlen);
    if (db_domain_exists(store, dom))
        return fail(err, errlen, "domain %s is already allowed", dom);
    int rc = db_begin(store);
    if (rc == DB_OK)
        rc = db_domain_add(store, dom, hal_clock_wall());
    if (rc != DB_OK) {
        db_rollback(store);
        return storage_error(err, errlen, rc);
    }
    return commit_with_audit(err, errlen, "domain add %s", dom);
}

int cfg_domain_del(const char *name, int force, char *note, size_t notelen, char *warn,
                   size_t warnlen, char *err, size_t errlen)
{
    char dom[DB_NAME_MAX + 1];
    note[0] = '\0';
    warn[0] = '\0';
    if (cfg_check_domain(name, dom, err, errlen) != 0)
        return -1;
    if (!store)
        return no_store(err, errlen);
    if (!db_domain_exists(store, dom))
        return fail(err, errlen, "domain %s is not an allowed domain", dom);
    int64_t hosts, queued;
    if (db_domain_usage(store, dom, &hosts, &queued) != DB_OK)
        return storage_error(err, errlen, DB_EIO);
    if ((hosts || queued) && !force)
        return fail(err, errlen, "domain %s has %lld smart host(s) and %lld queued recipient(s); "
                    "add 'force' to delete it anyway", dom, (long long)hosts, (long long)queued);
    int rc = db_begin(store);
    if (rc == DB_OK)
        rc = db_domain_del(store, dom);
    if (rc != DB_OK) {
        db_rollback(store);
        return storage_error(err, errlen, rc);
    }
    if (commit_with_audit(err, errlen, "domain del %s%s", dom, force ? " force" : "") != 0)
        return -1;
    if (hosts || queued)
        snprintf(note, notelen, " with %lld smart host(s); %lld queued recipient(s) stay queued",
                 (long long)hosts, (long long)queued);
    bounce_warning(dom, warn, warnlen);
    return 0;
}

/* --- smart hosts --- */

/* Apply and validate a change onto `sh` (a copy of the row, or a fresh row
 * for add). Everything but the password and duplicates is checked here. */
static int apply_change(struct db_smarthost *sh, const struct cfg_smarthost_change *c, int adding,
                        char *err, size_t errlen)
{
    if (adding) {
        char dom[DB_NAME_MAX + 1];
        if (cfg_check_domain(c->domain, dom, err, errlen) != 0)
            return -1;
        if (!db_domain_exists(store, dom))
            return fail(err, errlen, "domain %s is not an allowed domain (domain add %s first)",
                        dom, dom);
        snprintf(sh->domain, sizeof sh->domain, "%s", dom);
    }
    int is_ip = 0;
    if (c->has_host || adding) {
        if (cfg_check_host(c->host, sh->host, &is_ip, err, errlen) != 0)
            return -1;
    } else {
        char canon[DB_NAME_MAX + 1];
        cfg_check_host(sh->host, canon, &is_ip, err, errlen);
    }
    /* Also for a row stored before this rule: any change to it must leave
     * a row that can work. */
    if (is_ip == 6)
        return fail(err, errlen, IPV6_REFUSED);
    /* The console parses these with cfg_parse_port/priority; callers that
     * fill the struct directly get the same rules here. */
    if (c->has_port) {
        if (c->port < 1 || c->port > 65535)
            return fail(err, errlen, "port %ld is out of range (1..65535)", (long)c->port);
        sh->port = c->port;
    }
    if (c->has_priority) {
        if (c->priority < 0 || c->priority > 1000000)
            return fail(err, errlen, "priority %lld is not a number from 0 to 1000000",
                        (long long)c->priority);
        sh->priority = c->priority;
    }
    if (c->has_tls) {
        if (cfg_check_tls(c->tls, err, errlen) != 0)
            return -1;
        snprintf(sh->tls, sizeof sh->tls, "%s", c->tls);
    }
    if (strcmp(sh->tls, "verify") == 0 && is_ip)
        return fail(err, errlen, "tls verify needs a host name: a certificate cannot be "
                    "checked against the IP address %s", sh->host);
    if (c->user) {
        if (c->user[0] && cfg_check_user(c->user, err, errlen) != 0)
            return -1;
        snprintf(sh->username, sizeof sh->username, "%s", c->user);
        if (!c->user[0]) {
            sh->sealed_len = 0;
            sh->auth_plaintext = 0;
        }
    }
    if (c->has_auth_plaintext)
        sh->auth_plaintext = c->auth_plaintext;
    if (sh->auth_plaintext && !sh->username[0])
        return fail(err, errlen, "auth-plaintext needs a user: it allows sending credentials "
                    "without TLS");
    /* Delivery never sends credentials without TLS unless the row allows it,
     * and `none` never has TLS: such a row would defer every message. */
    if (strcmp(sh->tls, "none") == 0 && sh->username[0] && !sh->auth_plaintext)
        return fail(err, errlen, "tls none with a user can never deliver: credentials are sent "
                    "only over TLS unless the row allows auth-plaintext");
    return 0;
}

/* Sealed passwords are bound to where they may be sent. */
static void seal_context(const struct db_smarthost *sh, char *out, size_t cap)
{
    snprintf(out, cap, "smarthost:%s:%s:%d", sh->domain, sh->host, (int)sh->port);
}

static int seal_password(struct db_smarthost *sh, const char *password, char *err, size_t errlen)
{
    char ctx[2 * DB_NAME_MAX + 32];
    seal_context(sh, ctx, sizeof ctx);
    int n = crypto_seal(ctx, password, strlen(password), sh->sealed, sizeof sh->sealed);
    if (n < 0)
        return fail(err, errlen, "cannot encrypt the password (crypto unavailable)");
    sh->sealed_len = (size_t)n;
    return 0;
}

int cfg_smarthost_password(const struct db_smarthost *sh, char *out, size_t cap)
{
    if (!sh->sealed_len || cap == 0)
        return -1;
    char ctx[2 * DB_NAME_MAX + 32];
    seal_context(sh, ctx, sizeof ctx);
    int n = crypto_open(ctx, sh->sealed, sh->sealed_len, out, cap - 1);
    if (n < 0)
        return -1;
    out[n] = '\0';
    return n;
}

int cfg_smarthost_needs_credentials(const struct db_smarthost *sh)
{
    if (!sh->username[0])
        return 0;
    char pw[CFG_PASSWORD_MAX + 1];
    int n = cfg_smarthost_password(sh, pw, sizeof pw);
    crypto_wipe(pw, sizeof pw);
    return n < 0;
}

static int check_duplicate(const struct db_smarthost *sh, char *err, size_t errlen)
{
    int64_t other = db_smarthost_find(store, sh->domain, sh->host, sh->port);
    if (other && other != sh->id)
        return fail(err, errlen, "smart host %s port %d already exists for %s (id %lld)",
                    sh->host, (int)sh->port, sh->domain, (long long)other);
    return 0;
}

static void new_row(struct db_smarthost *sh)
{
    memset(sh, 0, sizeof *sh);
    sh->port = 25;
    snprintf(sh->tls, sizeof sh->tls, "may");
}

int cfg_smarthost_check_add(const struct cfg_smarthost_change *c, int *needs_password,
                            char *err, size_t errlen)
{
    if (!store)
        return no_store(err, errlen);
    struct db_smarthost sh;
    new_row(&sh);
    if (apply_change(&sh, c, 1, err, errlen) != 0 || check_duplicate(&sh, err, errlen) != 0)
        return -1;
    *needs_password = sh.username[0] != '\0';
    return 0;
}

static void describe(const struct db_smarthost *sh, char *out, size_t cap)
{
    snprintf(out, cap, "%s port %d priority %lld tls %s%s%s%s", sh->host, (int)sh->port,
             (long long)sh->priority, sh->tls, sh->username[0] ? " user " : "", sh->username,
             sh->auth_plaintext ? " auth-plaintext" : "");
}

int cfg_smarthost_add(const struct cfg_smarthost_change *c, const char *password, int64_t *id,
                      char *err, size_t errlen)
{
    int needs_password;
    if (cfg_smarthost_check_add(c, &needs_password, err, errlen) != 0)
        return -1;
    struct db_smarthost sh;
    new_row(&sh);
    apply_change(&sh, c, 1, err, errlen);
    if (needs_password) {
        if (!password || cfg_check_password(password, err, errlen) != 0)
            return password ? -1 : fail(err, errlen, "a user needs a password");
        if (seal_password(&sh, password, err, errlen) != 0)
            return -1;
    }
    int rc = db_begin(store);
    if (rc == DB_OK)
        rc = db_smarthost_add(store, &sh, hal_clock_wall());
    if (rc != DB_OK) {
        db_rollback(store);
        return storage_error(err, errlen, rc);
    }
    char what[2 * DB_TEXT_MAX];
    describe(&sh, what, sizeof what);
    if (commit_with_audit(err, errlen, "smarthost add %lld %s %s", (long long)sh.id, sh.domain,
                          what) != 0)
        return -1;
    *id = sh.id;
    return 0;
}

static int load_for_set(int64_t id, const struct cfg_smarthost_change *c,
                        struct db_smarthost *before, struct db_smarthost *after,
                        int *needs_password, char *err, size_t errlen)
{
    if (!store)
        return no_store(err, errlen);
    int rc = db_smarthost_get(store, id, before);
    if (rc == DB_ENOTFOUND)
        return fail(err, errlen, "no smart host with id %lld (see 'smarthost list')", (long long)id);
    if (rc != DB_OK)
        return storage_error(err, errlen, rc);
    *after = *before;
    if (apply_change(after, c, 0, err, errlen) != 0 || check_duplicate(after, err, errlen) != 0)
        return -1;
    /* As in the vendor's UI: credentials are entered again whenever the
     * change could send them to another place or over another policy;
     * allowing them in clear is such a change of policy. */
    int moved = strcmp(before->host, after->host) != 0 || before->port != after->port ||
                strcmp(before->tls, after->tls) != 0 ||
                (!before->auth_plaintext && after->auth_plaintext);
    int new_user = c->user && c->user[0];
    *needs_password = after->username[0] && (moved || new_user);
    return 0;
}

int cfg_smarthost_check_set(int64_t id, const struct cfg_smarthost_change *c,
                            int *needs_password, char *err, size_t errlen)
{
    struct db_smarthost before, after;
    return load_for_set(id, c, &before, &after, needs_password, err, errlen);
}

int cfg_smarthost_set(int64_t id, const struct cfg_smarthost_change *c, const char *password,
                      char *err, size_t errlen)
{
    struct db_smarthost before, after;
    int needs_password;
    if (load_for_set(id, c, &before, &after, &needs_password, err, errlen) != 0)
        return -1;
    if (needs_password) {
        if (!password)
            return fail(err, errlen, "this change needs the password entered again");
        if (cfg_check_password(password, err, errlen) != 0 ||
            seal_password(&after, password, err, errlen) != 0)
            return -1;
    }
    int rc = db_begin(store);
    if (rc == DB_OK)
        rc = db_smarthost_update(store, &after, hal_clock_wall());
    if (rc != DB_OK) {
        db_rollback(store);
        return storage_error(err, errlen, rc);
    }
    char what[2 * DB_TEXT_MAX];
    describe(&after, what, sizeof what);
    return commit_with_audit(err, errlen, "smarthost set %lld %s%s", (long long)id, what,
                             needs_password ? " (credentials entered)" : "");
}

int cfg_smarthost_del(int64_t id, char *warn, size_t warnlen, char *err, size_t errlen)
{
    warn[0] = '\0';
    if (!store)
        return no_store(err, errlen);
    struct db_smarthost sh;
    int rc = db_smarthost_get(store, id, &sh);
    if (rc == DB_ENOTFOUND)
        return fail(err, errlen, "no smart host with id %lld (see 'smarthost list')", (long long)id);
    if (rc == DB_OK)
        rc = db_begin(store);
    if (rc == DB_OK)
        rc = db_smarthost_del(store, id);
    if (rc != DB_OK) {
        db_rollback(store);
        return storage_error(err, errlen, rc);
    }
    if (commit_with_audit(err, errlen, "smarthost del %lld %s %s port %d", (long long)id,
                          sh.domain, sh.host, (int)sh.port) != 0)
        return -1;
    bounce_warning(sh.domain, warn, warnlen);
    return 0;
}

/* --- inbound allowlist --- */

static int parse_net(const char *cidr, struct addr_net *net, char *canon, size_t canonlen,
                     char *err, size_t errlen)
{
    switch (addr_net_parse(cidr, net)) {
    case ADDR_NET_OK:
        break;
    case ADDR_NET_BAD_ADDR:
        return fail(err, errlen, "'%.*s%s' is not an IPv4 or IPv6 network (like 192.0.2.0/24)",
                    ECHO(cidr));
    case ADDR_NET_BAD_PREFIX:
        return fail(err, errlen, "bad prefix in '%s' (0..32 for IPv4, 0..128 for IPv6)", cidr);
    case ADDR_NET_HOST_BITS: {
        char hint[ADDR_NET_STRLEN];
        addr_net_mask_host(net);
        return fail(err, errlen, "'%s' has host bits set (did you mean %s?)", cidr,
                    addr_net_format(net, hint));
    }
    }
    char text[ADDR_NET_STRLEN];
    snprintf(canon, canonlen, "%s", addr_net_format(net, text));
    return 0;
}

/* 1 when the address part (before any '/') is an IPv6 address, whatever
 * the prefix: refused before prefix details that would not help. */
static int ip6_network_text(const char *cidr)
{
    char text[ADDR_IP6_STRLEN];
    uint8_t v6[16];
    size_t n = strcspn(cidr, "/");
    if (n >= sizeof text)
        return 0;
    memcpy(text, cidr, n);
    text[n] = '\0';
    return addr_ip6_parse(text, v6) == 0;
}

int cfg_allow_add(const char *cidr, char *canon, size_t canonlen, char *err, size_t errlen)
{
    struct addr_net net;
    if (ip6_network_text(cidr))
        return fail(err, errlen, IPV6_REFUSED);
    if (parse_net(cidr, &net, canon, canonlen, err, errlen) != 0)
        return -1;
    if (net.prefix == 0)
        return fail(err, errlen, "%s would accept mail from anywhere; list the sending networks",
                    canon);
    if (!store)
        return no_store(err, errlen);
    int rc = db_begin(store);
    if (rc == DB_OK)
        rc = db_allow_add(store, canon, net.family, net.addr, net.prefix, hal_clock_wall());
    if (rc != DB_OK) {
        db_rollback(store);
        if (rc == DB_EEXISTS)
            return fail(err, errlen, "%s is already allowed", canon);
        return storage_error(err, errlen, rc);
    }
    return commit_with_audit(err, errlen, "allow add %s", canon);
}

int cfg_allow_del(const char *cidr, char *canon, size_t canonlen, char *err, size_t errlen)
{
    struct addr_net net;
    if (parse_net(cidr, &net, canon, canonlen, err, errlen) != 0)
        return -1;
    if (!store)
        return no_store(err, errlen);
    int rc = db_begin(store);
    if (rc == DB_OK)
        rc = db_allow_del(store, canon);
    if (rc != DB_OK) {
        db_rollback(store);
        if (rc == DB_ENOTFOUND)
            return fail(err, errlen, "%s is not in the allowlist", canon);
        return storage_error(err, errlen, rc);
    }
    return commit_with_audit(err, errlen, "allow del %s", canon);
}

/* --- settings --- */

static int check_hostname(const char *v, char *err, size_t errlen)
{
    char out[DB_NAME_MAX + 1];
    int is_ip;
    if (cfg_check_host(v, out, &is_ip, err, errlen) != 0 || is_ip)
        return fail(err, errlen, "hostname must be a DNS name (used in EHLO and banners)");
    return 0;
}

static int check_range(const char *v, int64_t lo, int64_t hi, char *err, size_t errlen)
{
    int64_t n;
    if (parse_decimal(v, hi, &n) != 0 || n < lo)
        return fail(err, errlen, "value must be a whole number from %lld to %lld",
                    (long long)lo, (long long)hi);
    return 0;
}

static int check_size(const char *v, char *e, size_t n) { return check_range(v, 1024, 1LL << 30, e, n); }
static int check_queue(const char *v, char *e, size_t n) { return check_range(v, 1 << 20, 1LL << 40, e, n); }
static int check_seconds(const char *v, char *e, size_t n) { return check_range(v, 1, 30 * 86400, e, n); }
static int check_conns(const char *v, char *e, size_t n) { return check_range(v, 1, 64, e, n); }
static int check_timeout(const char *v, char *e, size_t n) { return check_range(v, 1, 3600, e, n); }

static int check_bounce(const char *v, char *err, size_t errlen)
{
    const char *at = strrchr(v, '@');
    char dom[DB_NAME_MAX + 1];
    if (!v[0])
        return 0; /* empty: failures are only recorded */
    if (!at || at == v || strlen(v) > 254 || !printable(v) || strchr(v, '<') || strchr(v, '>') ||
        cfg_check_domain(at + 1, dom, err, errlen) != 0)
        return fail(err, errlen, "bounce-address must be an address like postmaster@example.com, "
                    "or \"\" for none");
    /* Reports are delivered like any mail, through the smart hosts of the
     * address's domain: without one they would only pile up in the queue.
     * (Without storage the change is refused anyway.) */
    int64_t n = 0;
    if (store && smarthost_count(dom, &n) != 0)
        return storage_error(err, errlen, DB_EIO);
    if (store && n == 0)
        return fail(err, errlen, "%s has no smart host, so reports to %.*s%s could never be "
                    "delivered (smarthost add %s <host> first)", dom, ECHO(v), dom);
    return 0;
}

static int check_on_off(const char *v, char *err, size_t errlen)
{
    if (strcmp(v, "on") == 0 || strcmp(v, "off") == 0)
        return 0;
    return fail(err, errlen, "value must be on or off");
}

/* The remote log's collector (rsyslog.c): host[:port], an IPv4 literal or
 * a DNS name, port 1..65535; empty for none. */
static int check_syslog_target(const char *v, char *err, size_t errlen)
{
    char host[DB_NAME_MAX + 3], canon[DB_NAME_MAX + 1];
    int is_ip = 0;
    int32_t port;
    if (!v[0])
        return 0; /* empty: no remote log */
    const char *colon = strchr(v, ':');
    size_t n = colon ? (size_t)(colon - v) : strlen(v);
    /* An IPv6 literal has several colons, bare or bracketed ("[::1]:514"). */
    if (v[0] == '[' || (colon && strchr(colon + 1, ':'))) {
        const char *close = strchr(v, ']');
        n = v[0] == '[' && close ? (size_t)(close - v) + 1 : strlen(v);
        if (n < sizeof host) {
            memcpy(host, v, n);
            host[n] = '\0';
            if (cfg_check_host(host, canon, &is_ip, err, errlen) == 0 && is_ip == 6)
                return fail(err, errlen, IPV6_REFUSED);
        }
        return fail(err, errlen, "syslog-target must be host[:port] (like 192.0.2.7:514), "
                    "or \"\" for none");
    }
    if (n == 0 || n >= sizeof host)
        return fail(err, errlen, "syslog-target must be host[:port] (like 192.0.2.7:514), "
                    "or \"\" for none");
    memcpy(host, v, n);
    host[n] = '\0';
    if (cfg_check_host(host, canon, &is_ip, err, errlen) != 0)
        return -1;
    if (colon && cfg_parse_port(colon + 1, &port, err, errlen) != 0)
        return -1;
    return 0;
}

/* SNTP server (clocksync.h): a DNS name or an IPv4 address; "" for the
 * one DHCP offers, "none" for no NTP at all. */
static int check_ntp_server(const char *v, char *err, size_t errlen)
{
    char canon[DB_NAME_MAX + 1];
    int is_ip = 0;
    if (!v[0] || strcmp(v, "none") == 0)
        return 0;
    if (cfg_check_host(v, canon, &is_ip, err, errlen) != 0)
        return fail(err, errlen, "ntp-server must be a host name or IPv4 address, \"none\", "
                    "or \"\" for the one DHCP offers");
    if (is_ip == 6)
        return fail(err, errlen, IPV6_REFUSED);
    return 0;
}

static int check_tz(const char *v, char *err, size_t errlen)
{
    int m;
    if (clocksync_tz_parse(v, &m) != 0)
        return fail(err, errlen, "timezone-offset must be minutes or [+-]HH:MM east of UTC, "
                    "from -12:00 to +14:00 (like +01:00 or -300)");
    return 0;
}

/* 0 (never) or 5 s to a day: shorter would log out an operator between two
 * lines; longer is "never" in practice, and 0 says so honestly. */
static int check_idle_timeout(const char *v, char *err, size_t errlen)
{
    int64_t n;
    if (strcmp(v, "0") == 0 || (parse_decimal(v, 86400, &n) == 0 && n >= 5))
        return 0;
    return fail(err, errlen, "console-idle-timeout must be 0 (never) or 5..86400 seconds");
}

const struct cfg_setting cfg_settings[] = {
    {"hostname", "relay", "name in EHLO and banners", check_hostname},
    {"max-message-size", "10485760", "largest message accepted, bytes", check_size},
    {"queue-max-size", "268435456", "storage the queue may use, bytes", check_queue},
    {"retry-initial", "300", "first retry after a temporary failure, seconds", check_seconds},
    {"retry-max", "3600", "longest wait between retries (doubling), seconds", check_seconds},
    {"queue-lifetime", "432000", "give up and bounce after, seconds", check_seconds},
    /* 4: with connections kept open and handed the next message as the
     * last one's 250 arrives, one connection drains ~400 msg/s of 5 KB
     * (docs/performance.md); four keep up with 20 inbound sessions, and an
     * internal Exchange or Postfix sees no more than a small MTA would
     * open (Postfix's default per destination is 20). */
    {"smarthost-connections", "4", "connections at once per smart host", check_conns},
    {"smtp-connections-per-source", "50", "inbound sessions at once from one address",
     check_conns},
    {"smtp-command-timeout", "300", "deadline for each inbound SMTP command, seconds",
     check_timeout},
    {"smtp-data-timeout", "600", "deadline for a whole inbound message, seconds", check_timeout},
    {"bounce-address", "", "where delivery failures are reported; empty for none", check_bounce},
    {"bounce-to-sender", "off",
     "also report failures to the envelope sender (PST senders are often spoofed)", check_on_off},
    {"syslog-target", "", "remote log collector, host[:port] (UDP, RFC 5424); empty for none",
     check_syslog_target},
    {"ntp-server", "", "SNTP server for the clock; empty: the one DHCP offers; none: no NTP",
     check_ntp_server},
    {"timezone-offset", "0", "local time for the console, minutes or [+-]HH:MM east of UTC",
     check_tz},
    {"console-idle-timeout", "600",
     "log the console out after this many idle seconds; 0: never", check_idle_timeout},
    {NULL, NULL, NULL, NULL},
};

static const struct cfg_setting *find_setting(const char *key)
{
    for (const struct cfg_setting *s = cfg_settings; s->key; s++)
        if (strcmp(s->key, key) == 0)
            return s;
    return NULL;
}

_Static_assert(sizeof cfg_settings / sizeof cfg_settings[0] - 1 <= SETTINGS_CACHED,
               "a cache entry per setting");

int cfg_setting_get(const char *key, char *out, size_t cap)
{
    const struct cfg_setting *s = find_setting(key);
    if (!s)
        return -1;
    size_t i = (size_t)(s - cfg_settings);
    if (setting_cache[i].valid) {
        snprintf(out, cap, "%s", setting_cache[i].value);
        return 0;
    }
    char v[DB_TEXT_MAX];
    int rc = store ? db_setting_get(store, key, v, sizeof v) : DB_EIO;
    if (rc != DB_OK && rc != DB_ENOTFOUND) {
        snprintf(out, cap, "%s", s->def);
        return CFG_SETTING_UNREAD;
    }
    snprintf(setting_cache[i].value, sizeof setting_cache[i].value, "%s",
             rc == DB_OK ? v : s->def);
    setting_cache[i].valid = 1;
    snprintf(out, cap, "%s", setting_cache[i].value);
    return 0;
}

int64_t cfg_setting_int(const char *key)
{
    char v[DB_TEXT_MAX];
    if (cfg_setting_get(key, v, sizeof v) == -1)
        return 0; /* unknown key; an unreadable value falls back to the default */
    return strtoll(v, NULL, 10);
}

int cfg_setting_set(const char *key, const char *value, char *err, size_t errlen)
{
    const struct cfg_setting *s = find_setting(key);
    if (!s)
        return fail(err, errlen, "no setting '%s' (see 'settings list')", key);
    if (strlen(value) >= DB_TEXT_MAX)
        return fail(err, errlen, "value is too long (at most %d characters)", DB_TEXT_MAX - 1);
    if (s->check(value, err, errlen) != 0)
        return -1;
    if (!store)
        return no_store(err, errlen);
    settings_forget(); /* whatever the outcome, read it again */
    int rc = db_begin(store);
    if (rc == DB_OK)
        rc = db_setting_set(store, key, value);
    if (rc != DB_OK) {
        db_rollback(store);
        return storage_error(err, errlen, rc);
    }
    rc = commit_with_audit(err, errlen, "settings set %s %s", key, value);
    settings_forget(); /* nothing read meanwhile stays either */
    return rc;
}

int cfg_setting_reset(const char *key, char *err, size_t errlen)
{
    if (!find_setting(key))
        return fail(err, errlen, "no setting '%s' (see 'settings list')", key);
    if (!store)
        return no_store(err, errlen);
    settings_forget();
    int rc = db_begin(store);
    if (rc == DB_OK)
        rc = db_setting_unset(store, key);
    if (rc != DB_OK) {
        db_rollback(store);
        return storage_error(err, errlen, rc);
    }
    rc = commit_with_audit(err, errlen, "settings reset %s", key);
    settings_forget();
    return rc;
}

/* --- network --- */

#define NET_MODE_KEY "net.mode"
#define NET_ADDRESS_KEY "net.address"
#define NET_GATEWAY_KEY "net.gateway"
#define NET_DNS_KEY "net.dns"

static uint32_t stored_ip4(const char *key)
{
    char v[DB_TEXT_MAX];
    uint32_t a = 0;
    if (db_setting_get(store, key, v, sizeof v) == DB_OK)
        addr_ip4_parse(v, &a);
    return a;
}

int cfg_net_load(struct cfg_net *net)
{
    memset(net, 0, sizeof *net);
    if (!store)
        return -1;
    char v[DB_TEXT_MAX];
    if (db_setting_get(store, NET_MODE_KEY, v, sizeof v) == DB_OK && strcmp(v, "static") == 0) {
        struct addr_net n;
        char a[DB_TEXT_MAX];
        enum addr_net_err r = ADDR_NET_BAD_ADDR;
        if (db_setting_get(store, NET_ADDRESS_KEY, a, sizeof a) == DB_OK)
            r = addr_net_parse(a, &n); /* an interface address has host bits */
        if ((r == ADDR_NET_OK || r == ADDR_NET_HOST_BITS) && n.family == 4) {
            net->static_mode = 1;
            net->addr = ((uint32_t)n.addr[0] << 24) | ((uint32_t)n.addr[1] << 16) |
                        ((uint32_t)n.addr[2] << 8) | n.addr[3];
            net->mask = addr_ip4_mask(n.prefix);
            net->gateway = stored_ip4(NET_GATEWAY_KEY);
        }
    }
    if (db_setting_get(store, NET_DNS_KEY, v, sizeof v) == DB_OK) {
        char *space = strchr(v, ' ');
        if (space)
            *space = '\0';
        addr_ip4_parse(v, &net->dns[0]);
        if (space)
            addr_ip4_parse(space + 1, &net->dns[1]);
    }
    return 0;
}

int cfg_net_save(const struct cfg_net *net, char *err, size_t errlen)
{
    if (!store)
        return no_store(err, errlen);
    char a[ADDR_IP4_STRLEN], b[ADDR_IP4_STRLEN], v[64], what[DB_TEXT_MAX], dns[DB_TEXT_MAX] = "";
    int rc = db_begin(store);
    if (rc == DB_OK)
        rc = db_setting_set(store, NET_MODE_KEY, net->static_mode ? "static" : "dhcp");
    if (net->static_mode) {
        snprintf(v, sizeof v, "%s/%d", addr_ip4_format(net->addr, a), addr_ip4_prefix(net->mask));
        if (rc == DB_OK)
            rc = db_setting_set(store, NET_ADDRESS_KEY, v);
        if (rc == DB_OK)
            rc = db_setting_set(store, NET_GATEWAY_KEY, addr_ip4_format(net->gateway, b));
        snprintf(what, sizeof what, "static %s gateway %s", v, b);
    } else {
        snprintf(what, sizeof what, "dhcp");
    }
    if (net->dns[0]) {
        snprintf(v, sizeof v, "%s%s%s", addr_ip4_format(net->dns[0], a), net->dns[1] ? " " : "",
                 net->dns[1] ? addr_ip4_format(net->dns[1], b) : "");
        if (rc == DB_OK)
            rc = db_setting_set(store, NET_DNS_KEY, v);
        snprintf(dns, sizeof dns, ", dns %s", v);
    } else if (rc == DB_OK) {
        rc = db_setting_unset(store, NET_DNS_KEY);
    }
    if (rc != DB_OK) {
        db_rollback(store);
        return storage_error(err, errlen, rc);
    }
    return commit_with_audit(err, errlen, "net set %s%s", what, dns);
}

/* --- inbound SMTP --- */

struct allow_match {
    int family;
    const uint8_t *addr;
    int found;
    int malformed;
};

static void match_net(void *ctx, const char *cidr, int family, const uint8_t addr[16], int prefix)
{
    struct allow_match *m = ctx;
    /* A damaged row must not widen the gate: prefix 0 (never stored by
     * `allow add`) would let everyone in, and a prefix past the address
     * would read beyond it. Such a row matches nothing. */
    int max = family == 4 ? 32 : 128;
    if (prefix < 1 || prefix > max) {
        m->malformed++;
        if (m->malformed == 1)
            log_warn("cfg", "allowlist entry '%s' is damaged (prefix %d); it matches nothing",
                     cidr ? cidr : "?", prefix);
        return;
    }
    if (m->found || family != m->family)
        return;
    for (int bit = 0; bit < prefix; bit++) {
        uint8_t mask = (uint8_t)(0x80u >> (bit % 8));
        if ((addr[bit / 8] & mask) != (m->addr[bit / 8] & mask))
            return;
    }
    m->found = 1;
}

int cfg_source_allowed(int family, const uint8_t addr[16])
{
    struct allow_match m = {family, addr, 0, 0};
    if (!store || db_allow_list(store, match_net, &m) != DB_OK)
        return 0; /* no storage: nobody is allowed */
    return m.found;
}

int cfg_domain_allowed(const char *domain)
{
    return store && db_domain_exists(store, domain);
}

/* PBKDF2 work for the inbound account: it is checked on every AUTH and the
 * loop must not stall (about 10 ms here); the password is a machine
 * credential, long and random, so a moderate count is enough. */
#define INBOUND_PBKDF2_ITERATIONS 10000

int cfg_inbound_set(const char *user, const char *password, char *err, size_t errlen)
{
    if (cfg_check_user(user, err, errlen) != 0 || cfg_check_password(password, err, errlen) != 0)
        return -1;
    if (!store)
        return no_store(err, errlen);
    struct db_inbound_account acct;
    memset(&acct, 0, sizeof acct);
    snprintf(acct.username, sizeof acct.username, "%s", user);
    acct.iterations = INBOUND_PBKDF2_ITERATIONS;
    if (crypto_random(acct.salt, sizeof acct.salt) != 0 ||
        crypto_pbkdf2(password, acct.salt, sizeof acct.salt, acct.iterations, acct.hash) != 0)
        return fail(err, errlen, "cannot hash the password (crypto unavailable)");
    int rc = db_begin(store);
    if (rc == DB_OK)
        rc = db_inbound_set(store, &acct, hal_clock_wall());
    crypto_wipe(&acct, sizeof acct);
    if (rc != DB_OK) {
        db_rollback(store);
        return storage_error(err, errlen, rc);
    }
    return commit_with_audit(err, errlen, "inbound-auth set %s", user);
}

int cfg_inbound_clear(char *err, size_t errlen)
{
    if (!store)
        return no_store(err, errlen);
    if (!cfg_inbound_enabled(NULL, 0))
        return fail(err, errlen, "no inbound account is set");
    int rc = db_begin(store);
    if (rc == DB_OK)
        rc = db_inbound_clear(store);
    if (rc != DB_OK) {
        db_rollback(store);
        return storage_error(err, errlen, rc);
    }
    return commit_with_audit(err, errlen, "inbound-auth clear");
}

int cfg_inbound_enabled(char *user, size_t cap)
{
    struct db_inbound_account acct;
    if (!store || db_inbound_get(store, &acct) != DB_OK)
        return 0;
    if (user)
        snprintf(user, cap, "%s", acct.username);
    crypto_wipe(&acct, sizeof acct);
    return 1;
}

int cfg_inbound_check(const char *user, const char *password)
{
    struct db_inbound_account acct;
    uint8_t hash[CRYPTO_HASH_LEN];
    int rc = store ? db_inbound_get(store, &acct) : DB_EIO;
    if (rc == DB_ENOTFOUND)
        return 0; /* no account: nothing matches */
    if (rc != DB_OK)
        return -1;
    int ok = crypto_pbkdf2(password, acct.salt, sizeof acct.salt, acct.iterations, hash) == 0 &&
             crypto_equal(hash, acct.hash, sizeof hash);
    /* Both checks always run: the answer takes as long for a wrong user. */
    ok = ok && strcmp(user, acct.username) == 0;
    crypto_wipe(&acct, sizeof acct);
    crypto_wipe(hash, sizeof hash);
    return ok;
}
