/* firmware/config.c against a real SQLite database and real mbedTLS: every
 * validation rule refuses with a clear reason and changes nothing; every
 * change writes exactly one audit row; sealed passwords never reach the
 * database in clear and open only for their own row on their own device.
 *
 * The binary doubles as a helper process (--open-helper) so that a second
 * device secret can be tried: crypto_init() keeps its first key for the
 * life of a process. */
#define _GNU_SOURCE /* memmem */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "config.h"
#include "crypto.h"
#include "db.h"
#include "db_config.h"
#include "hal_fakes.h"
#include "log.h"
#include "addr.h"
#include "tmpdir.h"

/* --- fixture --- */

struct fx {
    char dir[64];
    char path[128];
    struct db *db;
};

static struct fx *F; /* the current test's fixture, for the helpers */
static char warn[CFG_WARN_MAX]; /* the last delete's warning */

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    if (tmpdir_make(f->dir, sizeof f->dir, "shr-test-config") != 0) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof f->path, "%s/relay.db", f->dir);
    char err[256];
    if (db_open(&f->db, f->path, err, sizeof err) != DB_OK) {
        fprintf(stderr, "db_open: %s\n", err);
        return -1;
    }
    if (crypto_init() != 0)
        return -1;
    cfg_init(f->db);
    F = f;
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    cfg_init(NULL);
    db_close(f->db);
    tmpdir_remove(f->dir);
    free(f);
    F = NULL;
    return 0;
}

/* --- raw reads through a second connection --- */

static sqlite3 *raw_open(void)
{
    sqlite3 *h = NULL;
    assert_int_equal(sqlite3_open_v2(F->path, &h, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(h, 2000);
    return h;
}

static int64_t raw_int(const char *sql)
{
    sqlite3 *h = raw_open();
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(h);
    return v;
}

/* Text of the first column of the first row; "(none)" without a row,
 * "(null)" for NULL. */
static void raw_text(const char *sql, char *out, size_t cap)
{
    sqlite3 *h = raw_open();
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        snprintf(out, cap, "%s", t ? (const char *)t : "(null)");
    } else {
        snprintf(out, cap, "(none)");
    }
    sqlite3_finalize(st);
    sqlite3_close(h);
}

static void raw_exec(const char *sql)
{
    sqlite3 *h = raw_open();
    char *msg = NULL;
    int rc = sqlite3_exec(h, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fprintf(stderr, "raw_exec(%s): %s\n", sql, msg ? msg : "?");
    sqlite3_free(msg);
    sqlite3_close(h);
    assert_int_equal(rc, SQLITE_OK);
}

/* The sealed password of a row, as stored. */
static size_t raw_sealed(int64_t id, uint8_t *out, size_t cap)
{
    sqlite3 *h = raw_open();
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(h, "SELECT password_sealed FROM smarthost WHERE id = ?1",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_int64(st, 1, id);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    size_t n = (size_t)sqlite3_column_bytes(st, 0);
    assert_true(n <= cap);
    if (n)
        memcpy(out, sqlite3_column_blob(st, 0), n);
    sqlite3_finalize(st);
    sqlite3_close(h);
    return n;
}

/* Everything configuration-related, as one string: tables in rowid order,
 * every column, blobs in hex. Equal snapshots mean nothing changed. */
struct buf {
    char *p;
    size_t len, cap;
};

static void put(struct buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static char *snapshot(void)
{
    static const char *const tables[] = {"domain", "smarthost", "allow_net", "setting",
                                         "admin", "audit", "message", "recipient"};
    struct buf b = {0};
    put(&b, "", 0);
    sqlite3 *h = raw_open();
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++) {
        char sql[96];
        snprintf(sql, sizeof sql, "SELECT * FROM %s ORDER BY rowid", tables[t]);
        sqlite3_stmt *st;
        assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
        put(&b, tables[t], strlen(tables[t]));
        put(&b, ":\n", 2);
        while (sqlite3_step(st) == SQLITE_ROW) {
            for (int c = 0; c < sqlite3_column_count(st); c++) {
                if (sqlite3_column_type(st, c) == SQLITE_BLOB) {
                    const uint8_t *p = sqlite3_column_blob(st, c);
                    char hex[3];
                    for (int i = 0; i < sqlite3_column_bytes(st, c); i++) {
                        snprintf(hex, sizeof hex, "%02x", p[i]);
                        put(&b, hex, 2);
                    }
                } else if (sqlite3_column_type(st, c) == SQLITE_NULL) {
                    put(&b, "NULL", 4);
                } else {
                    const char *s = (const char *)sqlite3_column_text(st, c);
                    put(&b, s, strlen(s));
                }
                put(&b, "|", 1);
            }
            put(&b, "\n", 1);
        }
        sqlite3_finalize(st);
    }
    sqlite3_close(h);
    return b.p;
}

static int64_t audit_count(void) { return raw_int("SELECT count(*) FROM audit"); }

static void last_audit(char *out, size_t cap)
{
    raw_text("SELECT actor || ': ' || action FROM audit ORDER BY id DESC LIMIT 1", out, cap);
}

/* A call that must be refused: returns -1, says `why` in err, and leaves
 * every table exactly as it was. */
#define REFUSED(why, call)                                                                     \
    do {                                                                                       \
        char *before_ = snapshot();                                                            \
        char err[CFG_ERR_MAX];                                                                 \
        memset(err, '#', sizeof err);                                                          \
        err[sizeof err - 1] = '\0';                                                            \
        int rc_ = (call);                                                                      \
        if (rc_ != -1 || !strstr(err, why))                                                    \
            print_message("%s:%d: %s -> %d, err '%s' (wanted '%s')\n", __FILE__, __LINE__,    \
                          #call, rc_, err, why);                                               \
        assert_int_equal(rc_, -1);                                                             \
        assert_non_null(strstr(err, why));                                                     \
        char *after_ = snapshot();                                                             \
        assert_string_equal(after_, before_);                                                  \
        free(before_);                                                                         \
        free(after_);                                                                          \
    } while (0)

/* A call that must succeed and add exactly one audit row, `audit`. */
#define CHANGED(audit, call)                                                                   \
    do {                                                                                       \
        int64_t n_ = audit_count();                                                            \
        char err[CFG_ERR_MAX] = "";                                                            \
        int rc_ = (call);                                                                      \
        if (rc_ != 0)                                                                          \
            print_message("%s:%d: %s -> %d: %s\n", __FILE__, __LINE__, #call, rc_, err);      \
        assert_int_equal(rc_, 0);                                                              \
        assert_int_equal(audit_count(), n_ + 1);                                               \
        char line_[2 * DB_TEXT_MAX];                                                           \
        last_audit(line_, sizeof line_);                                                       \
        assert_string_equal(line_, "console: " audit);                                         \
    } while (0)

/* --- smart host change builders --- */

static struct cfg_smarthost_change add_req(const char *domain, const char *host)
{
    struct cfg_smarthost_change c;
    memset(&c, 0, sizeof c);
    c.domain = domain;
    c.host = host;
    c.has_host = 1;
    return c;
}

static struct cfg_smarthost_change with_port(struct cfg_smarthost_change c, int32_t port)
{
    c.port = port;
    c.has_port = 1;
    return c;
}

static struct cfg_smarthost_change with_prio(struct cfg_smarthost_change c, int64_t prio)
{
    c.priority = prio;
    c.has_priority = 1;
    return c;
}

static struct cfg_smarthost_change with_tls(struct cfg_smarthost_change c, const char *tls)
{
    c.tls = tls;
    c.has_tls = 1;
    return c;
}

static struct cfg_smarthost_change with_user(struct cfg_smarthost_change c, const char *user)
{
    c.user = user;
    return c;
}

static struct cfg_smarthost_change with_plain(struct cfg_smarthost_change c, int on)
{
    c.auth_plaintext = on;
    c.has_auth_plaintext = 1;
    return c;
}

static struct cfg_smarthost_change set_req(void)
{
    struct cfg_smarthost_change c;
    memset(&c, 0, sizeof c);
    return c;
}

static struct cfg_smarthost_change set_host(const char *host)
{
    struct cfg_smarthost_change c = set_req();
    c.host = host;
    c.has_host = 1;
    return c;
}

static void allow_domain(const char *name)
{
    char err[CFG_ERR_MAX] = "";
    int rc = cfg_domain_add(name, err, sizeof err);
    if (rc)
        print_message("cfg_domain_add(%s): %s\n", name, err);
    assert_int_equal(rc, 0);
}

static int64_t add_ok(const struct cfg_smarthost_change *c, const char *password)
{
    char err[CFG_ERR_MAX] = "";
    int64_t id = 0;
    int64_t n = audit_count();
    int rc = cfg_smarthost_add(c, password, &id, err, sizeof err);
    if (rc)
        print_message("cfg_smarthost_add(%s): %s\n", c->host, err);
    assert_int_equal(rc, 0);
    assert_true(id > 0);
    assert_int_equal(audit_count(), n + 1);
    return id;
}

static struct db_smarthost get_row(int64_t id)
{
    struct db_smarthost sh;
    assert_int_equal(db_smarthost_get(F->db, id, &sh), DB_OK);
    return sh;
}

static int64_t add_rc_id;

/* cfg_smarthost_add as one expression for REFUSED. */
static int try_add(struct cfg_smarthost_change c, const char *password, char *err, size_t errlen)
{
    add_rc_id = -7;
    int rc = cfg_smarthost_add(&c, password, &add_rc_id, err, errlen);
    if (rc != 0)
        assert_int_equal(add_rc_id, -7); /* *id untouched on failure */
    return rc;
}

static int try_check_add(struct cfg_smarthost_change c, char *err, size_t errlen)
{
    int needs = -7;
    int rc = cfg_smarthost_check_add(&c, &needs, err, errlen);
    return rc;
}

/* Both the check and the add refuse, for the same reason. */
#define ADD_REFUSED(why, change, password)                                                     \
    do {                                                                                       \
        REFUSED(why, try_check_add(change, err, sizeof err));                                  \
        REFUSED(why, try_add(change, password, err, sizeof err));                              \
    } while (0)

static char *repeat(char *out, char ch, size_t n)
{
    memset(out, ch, n);
    out[n] = '\0';
    return out;
}

/* ======================================================================= */
/* --- validation: smart hosts --- */

static void test_smarthost_add_refusals(void **state)
{
    (void)state;
    allow_domain("example.com");
    (void)add_ok(&(struct cfg_smarthost_change){.domain = "example.com",
                                                .host = "mail.example.com", .has_host = 1},
                 NULL);

    ADD_REFUSED("domain other.example is not an allowed domain",
                add_req("other.example", "mail.other.example"), NULL);
    ADD_REFUSED("'bad domain' is not a valid domain name", add_req("bad domain", "mx.example.com"),
                NULL);

    /* Ports and priorities arriving as numbers (the API, not the parser). */
    ADD_REFUSED("out of range", with_port(add_req("example.com", "p0.example.com"), 0), NULL);
    ADD_REFUSED("out of range", with_port(add_req("example.com", "p1.example.com"), 65536), NULL);
    ADD_REFUSED("out of range", with_port(add_req("example.com", "p2.example.com"), -25), NULL);
    ADD_REFUSED("priority", with_prio(add_req("example.com", "p3.example.com"), -1), NULL);
    ADD_REFUSED("priority", with_prio(add_req("example.com", "p4.example.com"), 1000001), NULL);

    /* Hosts that are neither a DNS name nor an IP literal. */
    char label64[80], long254[300];
    repeat(label64, 'a', 64);
    strcat(label64, ".com");
    char l63[64];
    repeat(l63, 'a', 63);
    snprintf(long254, sizeof long254, "%s.%s.%s.", l63, l63, l63);
    repeat(long254 + strlen(long254), 'd', 62);
    assert_int_equal(strlen(long254), 254);
    const char *bad_hosts[] = {
        "bad_host", "-a.com", "a..b", "1.2.3.256", "010.0.0.1", "a.com.", "host-.com",
        "exa mple.com", "", "[2001:db8::1", "[mail.example.com]", "2001:db8::g", label64, long254,
    };
    for (size_t i = 0; i < sizeof bad_hosts / sizeof bad_hosts[0]; i++)
        ADD_REFUSED("is neither a valid DNS name nor an IP address",
                    add_req("example.com", bad_hosts[i]), NULL);

    /* Duplicates, host compared case-insensitively. */
    ADD_REFUSED("smart host mail.example.com port 25 already exists for example.com",
                add_req("example.com", "mail.example.com"), NULL);
    ADD_REFUSED("already exists", add_req("example.com", "MAIL.example.com"), NULL);
    ADD_REFUSED("already exists", add_req("EXAMPLE.COM", "Mail.Example.Com"), NULL);
    ADD_REFUSED("already exists", with_port(add_req("example.com", "mail.example.com"), 25),
                NULL);

    /* TLS. */
    ADD_REFUSED("tls verify needs a host name",
                with_tls(add_req("example.com", "192.0.2.1"), "verify"), NULL);
    /* IPv6 literals could never be reached (lwIP is IPv4 only): that is
     * the reason given, whatever else the row says. */
    ADD_REFUSED("IPv6 is not supported on this firmware yet",
                with_tls(add_req("example.com", "[2001:db8::1]"), "verify"), NULL);
    ADD_REFUSED("IPv6 is not supported on this firmware yet",
                with_tls(add_req("example.com", "2001:db8::2"), "verify"), NULL);
    ADD_REFUSED("tls must be may, encrypt, verify or none, not 'bogus'",
                with_tls(add_req("example.com", "mx.example.com"), "bogus"), NULL);
    ADD_REFUSED("not 'VERIFY'", with_tls(add_req("example.com", "mx.example.com"), "VERIFY"),
                NULL);

    /* Credentials. */
    ADD_REFUSED("auth-plaintext needs a user",
                with_plain(add_req("example.com", "mx.example.com"), 1), NULL);
    REFUSED("a user needs a password",
            try_add(with_user(add_req("example.com", "mx.example.com"), "relay"), NULL, err,
                    sizeof err));
    REFUSED("the password is empty",
            try_add(with_user(add_req("example.com", "mx.example.com"), "relay"), "", err,
                    sizeof err));
    char longpw[CFG_PASSWORD_MAX + 2];
    repeat(longpw, 'p', CFG_PASSWORD_MAX + 1);
    REFUSED("longer than",
            try_add(with_user(add_req("example.com", "mx.example.com"), "relay"), longpw, err,
                    sizeof err));
    REFUSED("printable ASCII",
            try_add(with_user(add_req("example.com", "mx.example.com"), "relay"), "tab\there",
                    err, sizeof err));
    ADD_REFUSED("user must be", with_user(add_req("example.com", "mx.example.com"), "re lay"),
                "pw");
    char longuser[DB_USER_MAX + 2];
    repeat(longuser, 'u', DB_USER_MAX + 1);
    ADD_REFUSED("user must be", with_user(add_req("example.com", "mx.example.com"), longuser),
                "pw");

    assert_int_equal(raw_int("SELECT count(*) FROM smarthost"), 1);
}

static void test_parse_port_and_priority(void **state)
{
    (void)state;
    char err[CFG_ERR_MAX];
    int32_t port = 4242;
    int64_t prio0 = 0;
    const char *bad_ports[] = {"0", "65536", "abc", "25x", "", "-1", "+25", " 25", "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad_ports / sizeof bad_ports[0]; i++) {
        err[0] = '\0';
        assert_int_equal(cfg_parse_port(bad_ports[i], &port, err, sizeof err), -1);
        assert_non_null(strstr(err, "out of range (1..65535)"));
        assert_int_equal(port, 4242); /* untouched */
    }
    char longnum[200];
    repeat(longnum, '7', sizeof longnum - 1);
    assert_int_equal(cfg_parse_port(longnum, &port, err, sizeof err), -1);
    assert_non_null(strstr(err, "...' is out of range (1..65535)"));
    assert_int_equal(cfg_parse_priority(longnum, &prio0, err, sizeof err), -1);
    assert_non_null(strstr(err, "...' is not a number from 0 to 1000000"));
    assert_int_equal(cfg_parse_port("1", &port, err, sizeof err), 0);
    assert_int_equal(port, 1);
    assert_int_equal(cfg_parse_port("65535", &port, err, sizeof err), 0);
    assert_int_equal(port, 65535);
    assert_int_equal(cfg_parse_port("0587", &port, err, sizeof err), 0);
    assert_int_equal(port, 587);

    int64_t prio = 77;
    err[0] = '\0';
    assert_int_equal(cfg_parse_priority("-1", &prio, err, sizeof err), -1);
    assert_non_null(strstr(err, "priority must be 0 or more"));
    const char *bad_prios[] = {"abc", "1x", "", "1000001", "1.5"};
    for (size_t i = 0; i < sizeof bad_prios / sizeof bad_prios[0]; i++) {
        err[0] = '\0';
        assert_int_equal(cfg_parse_priority(bad_prios[i], &prio, err, sizeof err), -1);
        assert_non_null(strstr(err, "is not a number from 0 to 1000000"));
    }
    assert_int_equal(prio, 77);
    assert_int_equal(cfg_parse_priority("0", &prio, err, sizeof err), 0);
    assert_int_equal(prio, 0);
    assert_int_equal(cfg_parse_priority("1000000", &prio, err, sizeof err), 0);
    assert_int_equal(prio, 1000000);
}

static void test_smarthost_add_valid_forms(void **state)
{
    (void)state;
    allow_domain("Example.COM");
    assert_int_equal(raw_int("SELECT count(*) FROM domain WHERE name = 'example.com'"), 1);

    int needs = -1;
    char err[CFG_ERR_MAX];
    struct cfg_smarthost_change c = add_req("EXAMPLE.com", "Mail.Example.COM");
    assert_int_equal(cfg_smarthost_check_add(&c, &needs, err, sizeof err), 0);
    assert_int_equal(needs, 0);
    c = with_user(c, "relay");
    assert_int_equal(cfg_smarthost_check_add(&c, &needs, err, sizeof err), 0);
    assert_int_equal(needs, 1);
    assert_int_equal(raw_int("SELECT count(*) FROM smarthost"), 0); /* checks write nothing */
    assert_int_equal(audit_count(), 1);

    c = add_req("EXAMPLE.com", "Mail.Example.COM");
    int64_t id = add_ok(&c, NULL);
    struct db_smarthost sh = get_row(id);
    assert_string_equal(sh.domain, "example.com");
    assert_string_equal(sh.host, "mail.example.com");
    assert_int_equal(sh.port, 25); /* defaults */
    assert_int_equal(sh.priority, 0);
    assert_string_equal(sh.tls, "may");
    assert_string_equal(sh.username, "");
    assert_int_equal(sh.sealed_len, 0);
    assert_int_equal(sh.auth_plaintext, 0);
    char line[2 * DB_TEXT_MAX];
    last_audit(line, sizeof line);
    char want[2 * DB_TEXT_MAX];
    snprintf(want, sizeof want,
             "console: smarthost add %lld example.com mail.example.com port 25 priority 0 tls may",
             (long long)id);
    assert_string_equal(line, want);

    struct cfg_smarthost_change v4 =
        with_tls(with_prio(with_port(add_req("example.com", "192.0.2.1"), 2525), 10), "encrypt");
    id = add_ok(&v4, NULL);
    sh = get_row(id);
    assert_string_equal(sh.host, "192.0.2.1");
    assert_int_equal(sh.port, 2525);
    assert_int_equal(sh.priority, 10);
    assert_string_equal(sh.tls, "encrypt");
    /* Same host on another port is another smart host. */
    c = with_port(add_req("example.com", "mail.example.com"), 587);
    (void)add_ok(&c, NULL);
    /* tls verify with a DNS name is fine. */
    c = with_tls(add_req("example.com", "mx2.example.com"), "verify");
    assert_string_equal(get_row(add_ok(&c, NULL)).tls, "verify");

    /* A 253-character name (the most DNS allows), labels of 63. */
    char l63[64], host253[260];
    repeat(l63, 'a', 63);
    snprintf(host253, sizeof host253, "%s.%s.%s.", l63, l63, l63);
    repeat(host253 + strlen(host253), 'd', 61);
    assert_int_equal(strlen(host253), 253);
    c = with_user(add_req("example.com", host253), "relay");
    id = add_ok(&c, "pw-253");
    sh = get_row(id);
    assert_string_equal(sh.host, host253);
    char pw[CFG_PASSWORD_MAX + 1];
    assert_int_equal(cfg_smarthost_password(&sh, pw, sizeof pw), 6);
    assert_string_equal(pw, "pw-253");
    /* tls none: without a user, or with one allowed in clear. */
    c = with_tls(add_req("example.com", "plain.example.com"), "none");
    assert_string_equal(get_row(add_ok(&c, NULL)).tls, "none");
    c = with_plain(with_user(with_tls(add_req("example.com", "plain2.example.com"), "none"), "u"),
                   1);
    sh = get_row(add_ok(&c, "pw-none"));
    assert_string_equal(sh.tls, "none");
    assert_int_equal(sh.auth_plaintext, 1);
    assert_int_equal(raw_int("SELECT count(*) FROM smarthost"), 7);
}

/* ======================================================================= */
/* --- validation: domains --- */

static void test_domain_rules(void **state)
{
    (void)state;
    const char *bad[] = {"localhost", "example.com.", "-x.com", "x-.com", "exa mple.com",
                         "1.2.3.4", "", "exa_mple.com", ".example.com", "example..com",
                         "example.123", "[example.com]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char want[CFG_ERR_MAX];
        snprintf(want, sizeof want, "'%s' is not a valid domain name", bad[i]);
        REFUSED(want, cfg_domain_add(bad[i], err, sizeof err));
    }
    char label64[80];
    repeat(label64, 'a', 64);
    strcat(label64, ".com");
    REFUSED("is not a valid domain name", cfg_domain_add(label64, err, sizeof err));
    /* However long the rejected text, the reason still fits in the message. */
    char l63[64], long254[300], junk[400];
    repeat(l63, 'a', 63);
    snprintf(long254, sizeof long254, "%s.%s.%s.", l63, l63, l63);
    repeat(long254 + strlen(long254), 'd', 62);
    REFUSED("...' is not a valid domain name", cfg_domain_add(long254, err, sizeof err));
    repeat(junk, '!', sizeof junk - 1);
    REFUSED("...' is not a valid domain name", cfg_domain_add(junk, err, sizeof err));

    CHANGED("domain add example.com", cfg_domain_add("ExAmple.Com", err, sizeof err));
    CHANGED("domain add xn--bcher-kva.example",
            cfg_domain_add("xn--bcher-kva.example", err, sizeof err));
    CHANGED("domain add 9.example", cfg_domain_add("9.example", err, sizeof err));
    REFUSED("domain example.com is already allowed",
            cfg_domain_add("EXAMPLE.COM", err, sizeof err));
    assert_int_equal(raw_int("SELECT count(*) FROM domain"), 3);

    char note[160];
    REFUSED("domain example.org is not an allowed domain",
            cfg_domain_del("example.org", 0, note, sizeof note, warn, sizeof warn, err,
                           sizeof err));
    REFUSED("is not a valid domain name",
            cfg_domain_del("localhost", 1, note, sizeof note, warn, sizeof warn, err,
                           sizeof err));
    memset(note, 'x', sizeof note);
    CHANGED("domain del example.com",
            cfg_domain_del("Example.com", 0, note, sizeof note, warn, sizeof warn, err,
                           sizeof err));
    assert_string_equal(note, "");
    assert_int_equal(raw_int("SELECT count(*) FROM domain WHERE name = 'example.com'"), 0);
}

static void test_domain_del_in_use(void **state)
{
    (void)state;
    allow_domain("example.com");
    allow_domain("example.org");
    struct cfg_smarthost_change c = add_req("example.com", "mx1.example.com");
    (void)add_ok(&c, NULL);
    c = with_user(add_req("example.com", "mx2.example.com"), "relay");
    (void)add_ok(&c, "pw");
    c = add_req("example.org", "mx.example.org");
    int64_t other = add_ok(&c, NULL);

    char note[160];
    REFUSED("domain example.com has 2 smart host(s) and 0 queued recipient(s); add 'force'",
            cfg_domain_del("example.com", 0, note, sizeof note, warn, sizeof warn, err,
                           sizeof err));

    /* Queued mail alone also holds the domain. */
    raw_exec("INSERT INTO message(id, received, sender, size, client) "
             "  VALUES (1, 1, 'pst@vendor.example', 10, '10.0.0.5');"
             "INSERT INTO recipient(message, address, domain, state, updated) VALUES"
             "  (1, 'a@example.com', 'example.com', 'queued', 1),"
             "  (1, 'b@example.com', 'example.com', 'delivered', 1),"
             "  (1, 'c@example.net', 'example.net', 'queued', 1);");
    REFUSED("has 2 smart host(s) and 1 queued recipient(s)",
            cfg_domain_del("example.com", 0, note, sizeof note, warn, sizeof warn, err,
                           sizeof err));

    CHANGED("domain del example.com force",
            cfg_domain_del("example.com", 1, note, sizeof note, warn, sizeof warn, err,
                           sizeof err));
    assert_string_equal(note, " with 2 smart host(s); 1 queued recipient(s) stay queued");
    assert_int_equal(raw_int("SELECT count(*) FROM domain WHERE name = 'example.com'"), 0);
    assert_int_equal(raw_int("SELECT count(*) FROM smarthost WHERE domain = 'example.com'"), 0);
    assert_int_equal(raw_int("SELECT count(*) FROM smarthost"), 1);
    assert_int_equal(get_row(other).id, other);
    assert_int_equal(raw_int("SELECT count(*) FROM recipient WHERE state = 'queued'"), 2);

    /* Mail queued for a domain holds it even without smart hosts. */
    CHANGED("domain add example.net", cfg_domain_add("example.net", err, sizeof err));
    REFUSED("domain example.net has 0 smart host(s) and 1 queued recipient(s)",
            cfg_domain_del("example.net", 0, note, sizeof note, warn, sizeof warn, err,
                           sizeof err));
    /* An unused domain goes without force, and without a note. */
    CHANGED("domain add example.info", cfg_domain_add("example.info", err, sizeof err));
    memset(note, 'x', sizeof note);
    CHANGED("domain del example.info",
            cfg_domain_del("example.info", 0, note, sizeof note, warn, sizeof warn, err,
                           sizeof err));
    assert_string_equal(note, "");
}

/* ======================================================================= */
/* --- allowlist --- */

static void test_allow_rules(void **state)
{
    (void)state;
    char canon[ADDR_NET_STRLEN];
    REFUSED("'10.0.0.1/8' has host bits set (did you mean 10.0.0.0/8?)",
            cfg_allow_add("10.0.0.1/8", canon, sizeof canon, err, sizeof err));
    const char *bad_prefix[] = {"10.0.0.0/33", "10.0.0.0/", "10.0.0.0/x",
                                "10.0.0.0/08", "10.0.0.0/8/8", "10.0.0.0/-8"};
    for (size_t i = 0; i < sizeof bad_prefix / sizeof bad_prefix[0]; i++) {
        char want[CFG_ERR_MAX];
        snprintf(want, sizeof want, "bad prefix in '%s'", bad_prefix[i]);
        REFUSED(want, cfg_allow_add(bad_prefix[i], canon, sizeof canon, err, sizeof err));
    }
    const char *bad_addr[] = {"10.0.0", "host.example.com/24", "", "/24", "10.0.0.256/32"};
    for (size_t i = 0; i < sizeof bad_addr / sizeof bad_addr[0]; i++)
        REFUSED("is not an IPv4 or IPv6 network",
                cfg_allow_add(bad_addr[i], canon, sizeof canon, err, sizeof err));
    char junk[300];
    repeat(junk, 'z', sizeof junk - 1);
    REFUSED("...' is not an IPv4 or IPv6 network",
            cfg_allow_add(junk, canon, sizeof canon, err, sizeof err));
    REFUSED("0.0.0.0/0 would accept mail from anywhere",
            cfg_allow_add("0.0.0.0/0", canon, sizeof canon, err, sizeof err));

    CHANGED("allow add 10.0.2.2/32", cfg_allow_add("10.0.2.2", canon, sizeof canon, err, sizeof err));
    assert_string_equal(canon, "10.0.2.2/32");
    CHANGED("allow add 192.0.2.0/24",
            cfg_allow_add("192.0.2.0/24", canon, sizeof canon, err, sizeof err));
    REFUSED("10.0.2.2/32 is already allowed",
            cfg_allow_add("10.0.2.2/32", canon, sizeof canon, err, sizeof err));
    assert_int_equal(raw_int("SELECT count(*) FROM allow_net"), 2);
    assert_int_equal(raw_int("SELECT prefix FROM allow_net WHERE cidr = '10.0.2.2/32'"), 32);
    assert_int_equal(raw_int("SELECT family FROM allow_net WHERE cidr = '10.0.2.2/32'"), 4);
    assert_int_equal(raw_int("SELECT hex(addr) = '0A000202' FROM allow_net "
                             "WHERE cidr = '10.0.2.2/32'"), 1);

    REFUSED("10.9.9.9/32 is not in the allowlist",
            cfg_allow_del("10.9.9.9", canon, sizeof canon, err, sizeof err));
    REFUSED("has host bits set",
            cfg_allow_del("192.0.2.1/24", canon, sizeof canon, err, sizeof err));
    CHANGED("allow del 10.0.2.2/32", cfg_allow_del("10.0.2.2", canon, sizeof canon, err, sizeof err));
    assert_int_equal(raw_int("SELECT count(*) FROM allow_net"), 1);
}

/* ======================================================================= */
/* --- sealed passwords --- */

static const char PASSWORD[] = "S3cret-Passw0rd!";

static const void *find_bytes(const void *hay, size_t hlen, const void *needle, size_t nlen)
{
    return memmem(hay, hlen, needle, nlen);
}

static void file_has_no(const char *path, const char *secret)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return; /* no such file: nothing leaked into it */
    static unsigned char buf[4 << 20];
    size_t n = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    assert_null(find_bytes(buf, n, secret, strlen(secret)));
}

static void test_password_sealed_at_rest(void **state)
{
    (void)state;
    allow_domain("example.com");
    struct cfg_smarthost_change c =
        with_plain(with_user(add_req("example.com", "mail.example.com"), "relay@example.com"), 1);
    int64_t id = add_ok(&c, PASSWORD);

    char line[2 * DB_TEXT_MAX], want[2 * DB_TEXT_MAX];
    last_audit(line, sizeof line);
    snprintf(want, sizeof want,
             "console: smarthost add %lld example.com mail.example.com port 25 priority 0 tls may "
             "user relay@example.com auth-plaintext",
             (long long)id);
    assert_string_equal(line, want);

    uint8_t sealed[DB_SEALED_MAX];
    size_t n = raw_sealed(id, sealed, sizeof sealed);
    assert_int_equal(n, strlen(PASSWORD) + CRYPTO_SEAL_OVERHEAD);
    assert_null(find_bytes(sealed, n, PASSWORD, strlen(PASSWORD)));
    assert_null(find_bytes(sealed, n, "S3cret", 6));
    char user[64];
    raw_text("SELECT username FROM smarthost", user, sizeof user);
    assert_string_equal(user, "relay@example.com");

    /* Nowhere on disk, in the log, or in the audit trail. */
    char p[200];
    file_has_no(F->path, PASSWORD);
    snprintf(p, sizeof p, "%s-wal", F->path);
    file_has_no(p, PASSWORD);
    for (size_t i = 0; i < log_count(); i++)
        assert_null(strstr(log_get(i)->text, PASSWORD));
    assert_int_equal(raw_int("SELECT count(*) FROM audit WHERE instr(action, 'S3cret') > 0"), 0);

    struct db_smarthost sh = get_row(id);
    char pw[CFG_PASSWORD_MAX + 1];
    assert_int_equal(cfg_smarthost_password(&sh, pw, sizeof pw), (int)strlen(PASSWORD));
    assert_string_equal(pw, PASSWORD);
    char tiny[8];
    assert_int_equal(cfg_smarthost_password(&sh, tiny, sizeof tiny), -1);

    /* Two seals of the same password differ (fresh nonce). */
    c = with_user(add_req("example.com", "mail2.example.com"), "relay");
    int64_t id2 = add_ok(&c, PASSWORD);
    uint8_t sealed2[DB_SEALED_MAX];
    size_t n2 = raw_sealed(id2, sealed2, sizeof sealed2);
    assert_int_equal(n2, n);
    assert_memory_not_equal(sealed2, sealed, n);

    /* The seal is bound to domain, host and port. */
    char sql[160];
    snprintf(sql, sizeof sql, "UPDATE smarthost SET host = 'evil.example.net' WHERE id = %lld",
             (long long)id);
    raw_exec(sql);
    sh = get_row(id);
    memset(pw, 'z', sizeof pw);
    assert_int_equal(cfg_smarthost_password(&sh, pw, sizeof pw), -1);
    assert_null(strstr(pw, PASSWORD));
    snprintf(sql, sizeof sql, "UPDATE smarthost SET host = 'mail.example.com', port = 26 "
                              "WHERE id = %lld", (long long)id);
    raw_exec(sql);
    assert_int_equal(cfg_smarthost_password((sh = get_row(id), &sh), pw, sizeof pw), -1);
    snprintf(sql, sizeof sql, "UPDATE smarthost SET port = 25 WHERE id = %lld", (long long)id);
    raw_exec(sql);
    sh = get_row(id);
    assert_int_equal(cfg_smarthost_password(&sh, pw, sizeof pw), (int)strlen(PASSWORD));
    /* A blob moved to another row does not open there. */
    snprintf(sql, sizeof sql,
             "UPDATE smarthost SET password_sealed = (SELECT password_sealed FROM smarthost "
             "WHERE id = %lld) WHERE id = %lld", (long long)id, (long long)id2);
    raw_exec(sql);
    sh = get_row(id2);
    assert_int_equal(cfg_smarthost_password(&sh, pw, sizeof pw), -1);
    /* Nor does a tampered one. */
    sh = get_row(id);
    sh.sealed[sh.sealed_len / 2] ^= 0x01;
    assert_int_equal(cfg_smarthost_password(&sh, pw, sizeof pw), -1);
    /* A row without credentials has no password. */
    c = add_req("example.com", "mail3.example.com");
    sh = get_row(add_ok(&c, NULL));
    assert_int_equal(cfg_smarthost_password(&sh, pw, sizeof pw), -1);
}

static void test_crypto_context_binding(void **state)
{
    (void)state;
    uint8_t sealed[CRYPTO_SEALED_MAX];
    char out[64];
    int n = crypto_seal("smarthost:a.example:h:25", "hunter2", 7, sealed, sizeof sealed);
    assert_int_equal(n, 7 + CRYPTO_SEAL_OVERHEAD);
    assert_int_equal(crypto_open("smarthost:a.example:h:25", sealed, (size_t)n, out, sizeof out), 7);
    assert_memory_equal(out, "hunter2", 7);
    assert_int_equal(crypto_open("smarthost:a.example:h:26", sealed, (size_t)n, out, sizeof out),
                     -1);
    assert_int_equal(crypto_open("", sealed, (size_t)n, out, sizeof out), -1);
    assert_int_equal(crypto_open("smarthost:a.example:h:25", sealed, (size_t)n - 1, out,
                                 sizeof out), -1);
    assert_int_equal(crypto_open("smarthost:a.example:h:25", sealed, (size_t)n, out, 6), -1);
    sealed[0] ^= 0xFF; /* unknown seal version */
    assert_int_equal(crypto_open("smarthost:a.example:h:25", sealed, (size_t)n, out, sizeof out),
                     -1);
    /* Too long a secret, too small an output. */
    static char big[CRYPTO_SECRET_MAX + 1];
    assert_int_equal(crypto_seal("x", big, sizeof big, sealed, sizeof sealed), -1);
    assert_int_equal(crypto_seal("x", "abc", 3, sealed, 3 + CRYPTO_SEAL_OVERHEAD - 1), -1);
}

/* Run this binary as --open-helper with another device secret; returns its
 * exit status and what it printed. */
static int run_helper(const char *secret, int64_t id, char *out, size_t cap)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char idtext[32];
        snprintf(idtext, sizeof idtext, "%lld", (long long)id);
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execl("/proc/self/exe", "test_config", "--open-helper", secret, F->path, idtext,
              (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    size_t len = 0;
    ssize_t r;
    while (len + 1 < cap && (r = read(fds[0], out + len, cap - 1 - len)) > 0)
        len += (size_t)r;
    out[len] = '\0';
    close(fds[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static int open_helper(const char *secret, const char *path, const char *idtext)
{
    if (strcmp(secret, "default") != 0)
        memset(hal_fake_secret, (int)strtol(secret, NULL, 0), sizeof hal_fake_secret);
    if (crypto_init() != 0)
        return 2;
    struct db *db;
    char err[256];
    if (db_open(&db, path, err, sizeof err) != DB_OK)
        return 2;
    cfg_init(db);
    struct db_smarthost sh;
    if (db_smarthost_get(db, strtoll(idtext, NULL, 10), &sh) != DB_OK)
        return 2;
    char pw[CFG_PASSWORD_MAX + 1];
    int n = cfg_smarthost_password(&sh, pw, sizeof pw);
    db_close(db);
    if (n < 0)
        return 3;
    printf("%s", pw);
    return 0;
}

static void test_other_device_cannot_open(void **state)
{
    (void)state;
    allow_domain("example.com");
    struct cfg_smarthost_change c = with_user(add_req("example.com", "mail.example.com"), "relay");
    int64_t id = add_ok(&c, PASSWORD);
    char out[256];
    /* Control: the same device secret in another process opens it. */
    assert_int_equal(run_helper("default", id, out, sizeof out), 0);
    assert_string_equal(out, PASSWORD);
    /* Another device's secret does not. */
    assert_int_equal(run_helper("0x5A", id, out, sizeof out), 3);
    assert_string_equal(out, "");
    assert_int_equal(run_helper("0x01", id, out, sizeof out), 3);
}

/* ======================================================================= */
/* --- smarthost set --- */

static int check_set(int64_t id, struct cfg_smarthost_change c)
{
    char *before = snapshot();
    int needs = -1;
    char err[CFG_ERR_MAX] = "";
    int rc = cfg_smarthost_check_set(id, &c, &needs, err, sizeof err);
    if (rc)
        print_message("cfg_smarthost_check_set: %s\n", err);
    assert_int_equal(rc, 0);
    char *after = snapshot();
    assert_string_equal(after, before); /* a check writes nothing */
    free(before);
    free(after);
    return needs;
}

static int try_set(int64_t id, struct cfg_smarthost_change c, const char *password, char *err,
                   size_t errlen)
{
    return cfg_smarthost_set(id, &c, password, err, errlen);
}

static void test_smarthost_set_needs_password(void **state)
{
    (void)state;
    allow_domain("example.com");
    struct cfg_smarthost_change c = with_user(add_req("example.com", "mail.example.com"), "relay");
    int64_t id = add_ok(&c, PASSWORD);
    c = add_req("example.com", "plain.example.com");
    int64_t bare = add_ok(&c, NULL);

    assert_int_equal(check_set(id, set_host("mail2.example.com")), 1);
    assert_int_equal(check_set(id, with_port(set_req(), 587)), 1);
    assert_int_equal(check_set(id, with_tls(set_req(), "encrypt")), 1);
    assert_int_equal(check_set(id, with_plain(with_tls(set_req(), "none"), 1)), 1);
    assert_int_equal(check_set(id, with_user(set_req(), "relay")), 1); /* user named again */
    assert_int_equal(check_set(id, with_user(set_req(), "other")), 1);
    assert_int_equal(check_set(id, with_prio(set_req(), 5)), 0);
    /* Allowing the password in clear is a new way to send it: asked again. */
    assert_int_equal(check_set(id, with_plain(set_req(), 1)), 1);
    assert_int_equal(check_set(id, with_plain(set_req(), 0)), 0); /* already off */
    assert_int_equal(check_set(id, set_req()), 0);
    /* The same values again move nothing. */
    assert_int_equal(check_set(id, set_host("MAIL.example.com")), 0);
    assert_int_equal(check_set(id, with_port(set_req(), 25)), 0);
    assert_int_equal(check_set(id, with_tls(set_req(), "may")), 0);
    /* Removing the credentials needs none. */
    assert_int_equal(check_set(id, with_user(set_host("mail2.example.com"), "")), 0);
    /* A row without credentials. */
    assert_int_equal(check_set(bare, set_host("plain2.example.com")), 0);
    assert_int_equal(check_set(bare, with_tls(set_req(), "encrypt")), 0);
    assert_int_equal(check_set(bare, with_user(set_req(), "relay")), 1);

    /* Refusals change nothing. */
    REFUSED("this change needs the password entered again",
            try_set(id, set_host("mail2.example.com"), NULL, err, sizeof err));
    REFUSED("this change needs the password entered again",
            try_set(bare, with_user(set_req(), "relay"), NULL, err, sizeof err));
    REFUSED("the password is empty",
            try_set(id, with_port(set_req(), 587), "", err, sizeof err));
    REFUSED("no smart host with id 999",
            try_set(999, with_prio(set_req(), 1), NULL, err, sizeof err));
    int needs;
    struct cfg_smarthost_change none = set_req();
    REFUSED("no smart host with id 999",
            cfg_smarthost_check_set(999, &none, &needs, err, sizeof err));
    REFUSED("already exists for example.com",
            try_set(bare, set_host("Mail.Example.com"), NULL, err, sizeof err));
    REFUSED("tls verify needs a host name",
            try_set(bare, with_tls(set_host("192.0.2.7"), "verify"), NULL, err, sizeof err));
    REFUSED("is neither a valid DNS name nor an IP address",
            try_set(bare, set_host("bad_host"), NULL, err, sizeof err));
    REFUSED("tls must be", try_set(bare, with_tls(set_req(), "bogus"), NULL, err, sizeof err));
    REFUSED("auth-plaintext needs a user",
            try_set(bare, with_plain(set_req(), 1), NULL, err, sizeof err));
    REFUSED("out of range", try_set(bare, with_port(set_req(), 0), NULL, err, sizeof err));
    REFUSED("priority", try_set(bare, with_prio(set_req(), -3), NULL, err, sizeof err));

    /* Priority alone: no password, the seal still opens. */
    char want[2 * DB_TEXT_MAX];
    snprintf(want, sizeof want, "smarthost set %lld mail.example.com port 25 priority 5 tls may "
             "user relay", (long long)id);
    int64_t n = audit_count();
    char err[CFG_ERR_MAX] = "", line[2 * DB_TEXT_MAX], pw[CFG_PASSWORD_MAX + 1];
    assert_int_equal(try_set(id, with_prio(set_req(), 5), NULL, err, sizeof err), 0);
    assert_int_equal(audit_count(), n + 1);
    last_audit(line, sizeof line);
    assert_string_equal(line + strlen("console: "), want);
    struct db_smarthost sh = get_row(id);
    assert_int_equal(sh.priority, 5);
    assert_int_equal(cfg_smarthost_password(&sh, pw, sizeof pw), (int)strlen(PASSWORD));
    assert_string_equal(pw, PASSWORD);

    /* Moving it with the password: resealed for the new place. */
    n = audit_count();
    assert_int_equal(try_set(id, with_port(set_host("Mail2.example.com"), 587), "N3w-pass", err,
                             sizeof err), 0);
    assert_int_equal(audit_count(), n + 1);
    snprintf(want, sizeof want, "smarthost set %lld mail2.example.com port 587 priority 5 tls may "
             "user relay (credentials entered)", (long long)id);
    last_audit(line, sizeof line);
    assert_string_equal(line + strlen("console: "), want);
    sh = get_row(id);
    assert_string_equal(sh.host, "mail2.example.com");
    assert_int_equal(sh.port, 587);
    assert_int_equal(cfg_smarthost_password(&sh, pw, sizeof pw), 8);
    assert_string_equal(pw, "N3w-pass");

    /* nouser: the user name and the sealed password go. */
    n = audit_count();
    struct cfg_smarthost_change nouser = with_user(set_req(), "");
    assert_int_equal(try_set(id, nouser, NULL, err, sizeof err), 0);
    assert_int_equal(audit_count(), n + 1);
    sh = get_row(id);
    assert_string_equal(sh.username, "");
    assert_int_equal(sh.sealed_len, 0);
    assert_int_equal(sh.auth_plaintext, 0);
    assert_int_equal(cfg_smarthost_password(&sh, pw, sizeof pw), -1);
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT username IS NULL AND password_sealed IS NULL FROM smarthost "
             "WHERE id = %lld", (long long)id);
    assert_int_equal(raw_int(sql), 1);

    /* Giving a user to a bare row takes its password. */
    n = audit_count();
    assert_int_equal(try_set(bare, with_plain(with_user(set_req(), "u2"), 1), "pw2", err,
                             sizeof err), 0);
    assert_int_equal(audit_count(), n + 1);
    sh = get_row(bare);
    assert_string_equal(sh.username, "u2");
    assert_int_equal(sh.auth_plaintext, 1);
    assert_int_equal(cfg_smarthost_password(&sh, pw, sizeof pw), 3);
    assert_string_equal(pw, "pw2");
    /* nouser also clears auth-plaintext. */
    assert_int_equal(try_set(bare, nouser, NULL, err, sizeof err), 0);
    assert_int_equal(get_row(bare).auth_plaintext, 0);
}

static void test_smarthost_set_tls_verify(void **state)
{
    (void)state;
    allow_domain("example.com");
    struct cfg_smarthost_change c = with_tls(add_req("example.com", "mx.example.com"), "verify");
    int64_t named = add_ok(&c, NULL);
    c = add_req("example.com", "192.0.2.5");
    int64_t v4 = add_ok(&c, NULL);
    REFUSED("tls verify needs a host name: a certificate cannot be checked against the IP "
            "address 192.0.2.9",
            try_set(named, set_host("192.0.2.9"), NULL, err, sizeof err));
    REFUSED("checked against the IP address 192.0.2.5",
            try_set(v4, with_tls(set_req(), "verify"), NULL, err, sizeof err));
    /* Leaving verify, the host may become an address. */
    char err[CFG_ERR_MAX] = "";
    assert_int_equal(try_set(named, with_tls(set_host("192.0.2.9"), "encrypt"), NULL, err,
                             sizeof err), 0);
    assert_string_equal(get_row(named).host, "192.0.2.9");
}

/* ======================================================================= */
/* --- rows that could never work (issue 8) --- */

/* A row stored by an older firmware, before today's rules. */
static int64_t legacy_row(const char *host, const char *tls, const char *user)
{
    char sql[320];
    snprintf(sql, sizeof sql,
             "INSERT INTO smarthost(domain, host, tls, username, password_sealed, created, "
             "updated) VALUES ('example.com', '%s', '%s', %s%s%s, %s, 1, 1)",
             host, tls, user ? "'" : "", user ? user : "NULL", user ? "'" : "",
             user ? "X'00'" : "NULL");
    raw_exec(sql);
    char q[300];
    snprintf(q, sizeof q, "SELECT id FROM smarthost WHERE host = '%s'", host);
    return raw_int(q);
}

static void test_tls_none_with_user_refused(void **state)
{
    (void)state;
    allow_domain("example.com");
    const char *why = "tls none with a user can never deliver: credentials are sent only over "
                      "TLS unless the row allows auth-plaintext";
    ADD_REFUSED(why, with_user(with_tls(add_req("example.com", "mx.example.com"), "none"), "relay"),
                PASSWORD);
    ADD_REFUSED(why, with_plain(with_user(with_tls(add_req("example.com", "mx.example.com"),
                                                   "none"), "relay"), 0),
                PASSWORD);

    struct cfg_smarthost_change c = with_user(add_req("example.com", "auth.example.com"), "relay");
    int64_t id = add_ok(&c, PASSWORD);
    c = add_req("example.com", "bare.example.com");
    int64_t bare = add_ok(&c, NULL);
    c = with_plain(with_user(with_tls(add_req("example.com", "clear.example.com"), "none"), "u"),
                   1);
    int64_t clear = add_ok(&c, PASSWORD);
    int needs;
    struct cfg_smarthost_change to_none = with_tls(set_req(), "none");
    /* Whichever way the row would get there: the policy, a user, or
     * auth-plaintext turned off; checked before any password is asked. */
    REFUSED(why, cfg_smarthost_check_set(id, &to_none, &needs, err, sizeof err));
    REFUSED(why, try_set(id, to_none, PASSWORD, err, sizeof err));
    REFUSED(why, try_set(id, with_plain(to_none, 0), PASSWORD, err, sizeof err));
    REFUSED(why, try_set(bare, with_user(to_none, "relay"), PASSWORD, err, sizeof err));
    REFUSED(why, try_set(bare, with_tls(with_user(set_req(), "r"), "none"), "pw", err,
                         sizeof err));
    REFUSED(why, try_set(clear, with_plain(set_req(), 0), NULL, err, sizeof err));
    /* A row stored before the rule must be mended by the change itself. */
    int64_t old = legacy_row("old.example.com", "none", "relay");
    REFUSED(why, try_set(old, with_prio(set_req(), 4), NULL, err, sizeof err));

    /* Allowed: none without a user, none with auth-plaintext, or no user. */
    char err[CFG_ERR_MAX] = "";
    assert_int_equal(try_set(bare, to_none, NULL, err, sizeof err), 0);
    assert_int_equal(try_set(id, with_plain(to_none, 1), "pw-new", err, sizeof err), 0);
    assert_string_equal(get_row(id).tls, "none");
    assert_int_equal(try_set(clear, with_user(with_plain(set_req(), 0), ""), NULL, err,
                             sizeof err), 0);
    assert_string_equal(get_row(clear).username, "");
    assert_int_equal(try_set(old, with_user(set_req(), ""), NULL, err, sizeof err), 0);
}

static void test_auth_plaintext_on_asks_password(void **state)
{
    (void)state;
    allow_domain("example.com");
    struct cfg_smarthost_change c = with_user(add_req("example.com", "mx.example.com"), "relay");
    int64_t id = add_ok(&c, PASSWORD);
    /* Turning it on lets the password go in clear: entered again. */
    assert_int_equal(check_set(id, with_plain(set_req(), 1)), 1);
    assert_int_equal(check_set(id, with_prio(with_plain(set_req(), 1), 3)), 1);
    REFUSED("this change needs the password entered again",
            try_set(id, with_plain(set_req(), 1), NULL, err, sizeof err));
    REFUSED("the password is empty", try_set(id, with_plain(set_req(), 1), "", err, sizeof err));
    int64_t n = audit_count();
    char e[CFG_ERR_MAX] = "", line[2 * DB_TEXT_MAX], want[2 * DB_TEXT_MAX];
    char pw[CFG_PASSWORD_MAX + 1];
    assert_int_equal(try_set(id, with_plain(set_req(), 1), "Cl3ar-pw", e, sizeof e), 0);
    assert_int_equal(audit_count(), n + 1);
    snprintf(want, sizeof want, "smarthost set %lld mx.example.com port 25 priority 0 tls may "
             "user relay auth-plaintext (credentials entered)", (long long)id);
    last_audit(line, sizeof line);
    assert_string_equal(line + strlen("console: "), want);
    struct db_smarthost sh = get_row(id);
    assert_int_equal(sh.auth_plaintext, 1);
    assert_int_equal(cfg_smarthost_password(&sh, pw, sizeof pw), 8);
    assert_string_equal(pw, "Cl3ar-pw");
    /* Already on, or turned off: nothing new can happen to the password. */
    assert_int_equal(check_set(id, with_plain(set_req(), 1)), 0);
    assert_int_equal(check_set(id, with_plain(set_req(), 0)), 0);
    /* A row without a user has no password to ask for (and is refused). */
    c = add_req("example.com", "bare.example.com");
    int64_t bare = add_ok(&c, NULL);
    REFUSED("auth-plaintext needs a user",
            try_set(bare, with_plain(set_req(), 1), NULL, err, sizeof err));
}

static void test_ipv6_refused(void **state)
{
    (void)state;
    allow_domain("example.com");
    const char *why = "IPv6 is not supported on this firmware yet";
    const char *v6[] = {"2001:db8::25", "[2001:DB8::25]", "::1", "[::1]", "fe80::1",
                        "::ffff:192.0.2.1", "2001:0db8:0:0:0:0:0:2"};
    for (size_t i = 0; i < sizeof v6 / sizeof v6[0]; i++) {
        ADD_REFUSED(why, add_req("example.com", v6[i]), NULL);
        ADD_REFUSED(why, with_user(with_port(add_req("example.com", v6[i]), 587), "relay"), "pw");
    }
    /* The parser still knows IPv6: only configuration refuses it. */
    char out[DB_NAME_MAX + 1], e[CFG_ERR_MAX];
    int is_ip = -1;
    assert_int_equal(cfg_check_host("[2001:DB8::1]", out, &is_ip, e, sizeof e), 0);
    assert_int_equal(is_ip, 6);
    assert_string_equal(out, "2001:db8::1");
    assert_int_equal(cfg_check_host("192.0.2.1", out, &is_ip, e, sizeof e), 0);
    assert_int_equal(is_ip, 4);
    assert_int_equal(cfg_check_host("mx.example.com", out, &is_ip, e, sizeof e), 0);
    assert_int_equal(is_ip, 0);

    struct cfg_smarthost_change c = add_req("example.com", "192.0.2.5");
    int64_t id = add_ok(&c, NULL);
    REFUSED(why, try_set(id, set_host("2001:db8::9"), NULL, err, sizeof err));
    REFUSED(why, try_set(id, set_host("[2001:db8::9]"), NULL, err, sizeof err));
    struct cfg_smarthost_change to6 = set_host("[::1]");
    int needs;
    REFUSED(why, cfg_smarthost_check_set(id, &to6, &needs, err, sizeof err));
    /* A row stored before the rule: any change must move it to IPv4 or a
     * name; deleting it is always possible. */
    int64_t old = legacy_row("2001:db8::5", "may", NULL);
    REFUSED(why, try_set(old, with_prio(set_req(), 3), NULL, err, sizeof err));
    assert_int_equal(try_set(old, set_host("mx6.example.com"), NULL, e, sizeof e), 0);
    assert_string_equal(get_row(old).host, "mx6.example.com");
    int64_t old2 = legacy_row("2001:db8::6", "may", NULL);
    assert_int_equal(cfg_smarthost_del(old2, warn, sizeof warn, e, sizeof e), 0);

    /* The allowlist: whatever the prefix says, the family is the reason. */
    char canon[ADDR_NET_STRLEN];
    const char *nets[] = {"2001:db8::/32", "2001:DB8::1", "2001:db8::1/128", "::/0", "::/129",
                          "2001:db8::1/32", "::ffff:10.0.0.0/104", "fe80::/10"};
    for (size_t i = 0; i < sizeof nets / sizeof nets[0]; i++)
        REFUSED(why, cfg_allow_add(nets[i], canon, sizeof canon, err, sizeof err));
    assert_int_equal(raw_int("SELECT count(*) FROM allow_net"), 0);
    /* An entry stored before the rule can still be removed. */
    struct addr_net net;
    assert_int_equal(addr_net_parse("2001:db8::/32", &net), ADDR_NET_OK);
    assert_int_equal(db_allow_add(F->db, "2001:db8::/32", 6, net.addr, 32, 1), DB_OK);
    CHANGED("allow del 2001:db8::/32",
            cfg_allow_del("2001:DB8::/32", canon, sizeof canon, err, sizeof err));
    assert_int_equal(raw_int("SELECT count(*) FROM allow_net"), 0);
}

static void test_bounce_address_needs_smarthost(void **state)
{
    (void)state;
    allow_domain("example.com");
    allow_domain("example.org");
    struct cfg_smarthost_change c = add_req("example.com", "mx.example.com");
    (void)add_ok(&c, NULL);
    REFUSED("example.org has no smart host, so reports to postmaster@example.org could never be "
            "delivered (smarthost add example.org <host> first)",
            cfg_setting_set("bounce-address", "postmaster@example.org", err, sizeof err));
    REFUSED("example.net has no smart host",
            cfg_setting_set("bounce-address", "postmaster@Example.NET", err, sizeof err));
    /* Syntax comes first. */
    REFUSED("bounce-address must be an address",
            cfg_setting_set("bounce-address", "nobody", err, sizeof err));
    CHANGED("settings set bounce-address postmaster@EXAMPLE.com",
            cfg_setting_set("bounce-address", "postmaster@EXAMPLE.com", err, sizeof err));
    c = add_req("example.org", "mx.example.org");
    (void)add_ok(&c, NULL);
    CHANGED("settings set bounce-address postmaster@example.org",
            cfg_setting_set("bounce-address", "postmaster@example.org", err, sizeof err));
    CHANGED("settings set bounce-address ", cfg_setting_set("bounce-address", "", err, sizeof err));
}

static void test_bounce_domain_delete_warns(void **state)
{
    (void)state;
    const char *want = "mail reports to postmaster@example.com cannot be delivered until a "
                       "smart host for example.com is added";
    allow_domain("example.com");
    allow_domain("example.org");
    struct cfg_smarthost_change c = add_req("example.com", "mx1.example.com");
    int64_t a = add_ok(&c, NULL);
    c = add_req("example.com", "mx2.example.com");
    int64_t b = add_ok(&c, NULL);
    c = add_req("example.org", "mx.example.org");
    int64_t other = add_ok(&c, NULL);
    char e[CFG_ERR_MAX] = "", note[160];

    /* Without a bounce address nothing is said. */
    c = add_req("example.org", "mx2.example.org");
    int64_t other2 = add_ok(&c, NULL);
    memset(warn, 'x', sizeof warn);
    assert_int_equal(cfg_smarthost_del(other2, warn, sizeof warn, e, sizeof e), 0);
    assert_string_equal(warn, "");

    assert_int_equal(cfg_setting_set("bounce-address", "postmaster@example.com", e, sizeof e),
                     0);
    /* Another domain's last host, or not the last one: no warning. */
    memset(warn, 'x', sizeof warn);
    assert_int_equal(cfg_smarthost_del(other, warn, sizeof warn, e, sizeof e), 0);
    assert_string_equal(warn, "");
    memset(warn, 'x', sizeof warn);
    assert_int_equal(cfg_smarthost_del(a, warn, sizeof warn, e, sizeof e), 0);
    assert_string_equal(warn, "");
    /* The last one: deleted all the same, with the warning. */
    int64_t n = audit_count();
    assert_int_equal(cfg_smarthost_del(b, warn, sizeof warn, e, sizeof e), 0);
    assert_string_equal(warn, want);
    assert_int_equal(audit_count(), n + 1);
    assert_int_equal(raw_int("SELECT count(*) FROM smarthost WHERE domain = 'example.com'"), 0);
    /* A refused delete warns of nothing. */
    memset(warn, 'x', sizeof warn);
    REFUSED("no smart host with id", cfg_smarthost_del(b, warn, sizeof warn, err, sizeof err));
    assert_string_equal(warn, "");

    /* The whole domain, forced: the same warning, and the delete stands. */
    c = add_req("example.com", "mx3.example.com");
    (void)add_ok(&c, NULL);
    memset(warn, 'x', sizeof warn);
    CHANGED("domain del example.com force",
            cfg_domain_del("example.com", 1, note, sizeof note, warn, sizeof warn, err,
                           sizeof err));
    assert_string_equal(warn, want);
    assert_string_equal(note, " with 1 smart host(s); 0 queued recipient(s) stay queued");
    assert_int_equal(raw_int("SELECT count(*) FROM domain WHERE name = 'example.com'"), 0);
    /* Another domain: no warning. */
    memset(warn, 'x', sizeof warn);
    CHANGED("domain del example.org",
            cfg_domain_del("example.org", 0, note, sizeof note, warn, sizeof warn, err,
                           sizeof err));
    assert_string_equal(warn, "");
}

static void test_needs_credentials(void **state)
{
    (void)state;
    allow_domain("example.com");
    struct cfg_smarthost_change c = add_req("example.com", "bare.example.com");
    int64_t bare = add_ok(&c, NULL);
    c = with_user(add_req("example.com", "mx.example.com"), "relay");
    int64_t id = add_ok(&c, PASSWORD);
    c = with_user(add_req("example.com", "mx2.example.com"), "relay");
    int64_t id2 = add_ok(&c, PASSWORD);
    struct db_smarthost sh = get_row(bare);
    assert_int_equal(cfg_smarthost_needs_credentials(&sh), 0);
    sh = get_row(id);
    assert_int_equal(cfg_smarthost_needs_credentials(&sh), 0);

    /* A damaged seal; a missing one. */
    char sql[160];
    snprintf(sql, sizeof sql, "UPDATE smarthost SET password_sealed = "
             "substr(password_sealed, 1, 8) || zeroblob(length(password_sealed) - 8) "
             "WHERE id = %lld", (long long)id);
    raw_exec(sql);
    sh = get_row(id);
    assert_int_equal(cfg_smarthost_needs_credentials(&sh), 1);
    snprintf(sql, sizeof sql, "UPDATE smarthost SET password_sealed = NULL WHERE id = %lld",
             (long long)id2);
    raw_exec(sql);
    sh = get_row(id2);
    assert_int_equal(cfg_smarthost_needs_credentials(&sh), 1);

    /* Typing the password again mends it. */
    char err[CFG_ERR_MAX] = "";
    assert_int_equal(try_set(id, with_user(set_req(), "relay"), "Fr3sh-pw", err, sizeof err), 0);
    sh = get_row(id);
    assert_int_equal(cfg_smarthost_needs_credentials(&sh), 0);
}

static void test_smarthost_del(void **state)
{
    (void)state;
    allow_domain("example.com");
    struct cfg_smarthost_change c = with_port(add_req("example.com", "mx.example.com"), 2525);
    int64_t id = add_ok(&c, NULL);
    char want[128];
    snprintf(want, sizeof want, "smarthost del %lld example.com mx.example.com port 2525",
             (long long)id);
    int64_t n = audit_count();
    char e[CFG_ERR_MAX] = "", line[256];
    assert_int_equal(cfg_smarthost_del(id, warn, sizeof warn, e, sizeof e), 0);
    assert_int_equal(audit_count(), n + 1);
    last_audit(line, sizeof line);
    assert_string_equal(line + strlen("console: "), want);
    assert_int_equal(raw_int("SELECT count(*) FROM smarthost"), 0);
    REFUSED("no smart host with id", cfg_smarthost_del(id, warn, sizeof warn, err, sizeof err));
}

/* ======================================================================= */
/* --- settings --- */

static void test_settings(void **state)
{
    (void)state;
    char v[DB_TEXT_MAX];
    REFUSED("no setting 'nosuch'", cfg_setting_set("nosuch", "1", err, sizeof err));
    REFUSED("no setting 'nosuch'", cfg_setting_reset("nosuch", err, sizeof err));
    REFUSED("no setting 'net.mode'", cfg_setting_set("net.mode", "static", err, sizeof err));
    assert_int_equal(cfg_setting_get("nosuch", v, sizeof v), -1);

    REFUSED("value must be a whole number from 1024 to 1073741824",
            cfg_setting_set("max-message-size", "12x", err, sizeof err));
    REFUSED("whole number from 1024", cfg_setting_set("max-message-size", "0", err, sizeof err));
    REFUSED("whole number from 1024", cfg_setting_set("max-message-size", "1023", err, sizeof err));
    REFUSED("whole number from 1024",
            cfg_setting_set("max-message-size", "1073741825", err, sizeof err));
    REFUSED("whole number from 1024", cfg_setting_set("max-message-size", "", err, sizeof err));
    REFUSED("whole number from 1024", cfg_setting_set("max-message-size", "-5", err, sizeof err));
    REFUSED("whole number from 1 to 64",
            cfg_setting_set("smarthost-connections", "65", err, sizeof err));
    REFUSED("whole number from 1 to 2592000", cfg_setting_set("retry-initial", "0", err, sizeof err));
    REFUSED("bounce-address must be an address like postmaster@example.com",
            cfg_setting_set("bounce-address", "not-an-address", err, sizeof err));
    const char *bad_bounce[] = {"@example.com", "a@localhost", "a b@example.com",
                                "<a@example.com>", "a@exa_mple.com", "a@"};
    for (size_t i = 0; i < sizeof bad_bounce / sizeof bad_bounce[0]; i++)
        REFUSED("bounce-address must be", cfg_setting_set("bounce-address", bad_bounce[i], err,
                                                          sizeof err));
    REFUSED("hostname must be a DNS name", cfg_setting_set("hostname", "192.0.2.1", err, sizeof err));
    REFUSED("hostname must be a DNS name", cfg_setting_set("hostname", "bad_name", err, sizeof err));
    /* Too long for storage: refused with a reason, not silently. */
    char huge[DB_TEXT_MAX + 40];
    snprintf(huge, sizeof huge, "postmaster@");
    repeat(huge + strlen(huge), 'a', DB_TEXT_MAX);
    REFUSED("long", cfg_setting_set("bounce-address", huge, err, sizeof err));

    /* Defaults before anything is set. */
    assert_int_equal(cfg_setting_get("max-message-size", v, sizeof v), 0);
    assert_string_equal(v, "10485760");
    assert_int_equal(cfg_setting_int("max-message-size"), 10485760);
    assert_int_equal(cfg_setting_get("bounce-address", v, sizeof v), 0);
    assert_string_equal(v, "");
    assert_int_equal(cfg_setting_get("hostname", v, sizeof v), 0);
    assert_string_equal(v, "relay");
    assert_int_equal(cfg_setting_int("nosuch"), 0);

    CHANGED("settings set max-message-size 2048",
            cfg_setting_set("max-message-size", "2048", err, sizeof err));
    assert_int_equal(cfg_setting_get("max-message-size", v, sizeof v), 0);
    assert_string_equal(v, "2048");
    assert_int_equal(cfg_setting_int("max-message-size"), 2048);
    /* Reports to the bounce address go through its domain's smart hosts. */
    allow_domain("example.com");
    struct cfg_smarthost_change c = add_req("example.com", "mx.example.com");
    (void)add_ok(&c, NULL);
    CHANGED("settings set bounce-address postmaster@example.com",
            cfg_setting_set("bounce-address", "postmaster@example.com", err, sizeof err));
    assert_int_equal(cfg_setting_get("bounce-address", v, sizeof v), 0);
    assert_string_equal(v, "postmaster@example.com");
    CHANGED("settings set bounce-address ", cfg_setting_set("bounce-address", "", err, sizeof err));
    CHANGED("settings set hostname relay1.example.com",
            cfg_setting_set("hostname", "relay1.example.com", err, sizeof err));
    CHANGED("settings set queue-max-size 1099511627776",
            cfg_setting_set("queue-max-size", "1099511627776", err, sizeof err));
    assert_int_equal(cfg_setting_int("queue-max-size"), 1099511627776LL);

    CHANGED("settings reset max-message-size",
            cfg_setting_reset("max-message-size", err, sizeof err));
    assert_int_equal(cfg_setting_get("max-message-size", v, sizeof v), 0);
    assert_string_equal(v, "10485760");
    assert_int_equal(raw_int("SELECT count(*) FROM setting WHERE key = 'max-message-size'"), 0);
    /* Resetting what is already the default is still one recorded change. */
    CHANGED("settings reset max-message-size",
            cfg_setting_reset("max-message-size", err, sizeof err));

    /* Every setting's default passes its own check. */
    for (const struct cfg_setting *s = cfg_settings; s->key; s++) {
        char err[CFG_ERR_MAX] = "";
        assert_int_equal(s->check(s->def, err, sizeof err), 0);
        assert_non_null(s->help);
    }
}

/* ======================================================================= */
/* --- network --- */

#define IP4(a, b, c, d) (((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) | (d))

static void test_net_round_trip(void **state)
{
    (void)state;
    struct cfg_net net;
    memset(&net, 0xAA, sizeof net);
    assert_int_equal(cfg_net_load(&net), 0);
    assert_int_equal(net.static_mode, 0);
    assert_int_equal(net.addr, 0);
    assert_int_equal(net.dns[0], 0);
    assert_int_equal(net.dns[1], 0);

    struct cfg_net s = {1, IP4(192, 168, 1, 10), IP4(255, 255, 255, 0), IP4(192, 168, 1, 1),
                        {IP4(1, 1, 1, 1), IP4(9, 9, 9, 9)}};
    CHANGED("net set static 192.168.1.10/24 gateway 192.168.1.1, dns 1.1.1.1 9.9.9.9",
            cfg_net_save(&s, err, sizeof err));
    memset(&net, 0, sizeof net);
    assert_int_equal(cfg_net_load(&net), 0);
    assert_int_equal(net.static_mode, 1);
    assert_int_equal(net.addr, IP4(192, 168, 1, 10));
    assert_int_equal(net.mask, IP4(255, 255, 255, 0));
    assert_int_equal(net.gateway, IP4(192, 168, 1, 1));
    assert_int_equal(net.dns[0], IP4(1, 1, 1, 1));
    assert_int_equal(net.dns[1], IP4(9, 9, 9, 9));
    char v[64];
    raw_text("SELECT value FROM setting WHERE key = 'net.address'", v, sizeof v);
    assert_string_equal(v, "192.168.1.10/24");

    /* Static with one DNS server, a /30. */
    struct cfg_net s1 = {1, IP4(10, 0, 2, 15), IP4(255, 255, 255, 252), IP4(10, 0, 2, 13),
                         {IP4(10, 0, 2, 3), 0}};
    CHANGED("net set static 10.0.2.15/30 gateway 10.0.2.13, dns 10.0.2.3",
            cfg_net_save(&s1, err, sizeof err));
    assert_int_equal(cfg_net_load(&net), 0);
    assert_int_equal(net.static_mode, 1);
    assert_int_equal(net.mask, IP4(255, 255, 255, 252));
    assert_int_equal(net.dns[0], IP4(10, 0, 2, 3));
    assert_int_equal(net.dns[1], 0);

    /* DHCP with a DNS override. */
    struct cfg_net d = {0, 0, 0, 0, {IP4(8, 8, 8, 8), IP4(8, 8, 4, 4)}};
    CHANGED("net set dhcp, dns 8.8.8.8 8.8.4.4", cfg_net_save(&d, err, sizeof err));
    memset(&net, 0x55, sizeof net);
    assert_int_equal(cfg_net_load(&net), 0);
    assert_int_equal(net.static_mode, 0);
    assert_int_equal(net.addr, 0);
    assert_int_equal(net.mask, 0);
    assert_int_equal(net.gateway, 0);
    assert_int_equal(net.dns[0], IP4(8, 8, 8, 8));
    assert_int_equal(net.dns[1], IP4(8, 8, 4, 4));

    /* DHCP with dns[0] == 0 clears the override. */
    struct cfg_net plain = {0, 0, 0, 0, {0, IP4(8, 8, 4, 4)}};
    CHANGED("net set dhcp", cfg_net_save(&plain, err, sizeof err));
    memset(&net, 0x55, sizeof net);
    assert_int_equal(cfg_net_load(&net), 0);
    assert_int_equal(net.static_mode, 0);
    assert_int_equal(net.dns[0], 0);
    assert_int_equal(net.dns[1], 0);
    assert_int_equal(raw_int("SELECT count(*) FROM setting WHERE key = 'net.dns'"), 0);
    raw_text("SELECT value FROM setting WHERE key = 'net.mode'", v, sizeof v);
    assert_string_equal(v, "dhcp");

    /* It survives a reboot (close and reopen). */
    CHANGED("net set static 192.168.1.10/24 gateway 192.168.1.1, dns 1.1.1.1 9.9.9.9",
            cfg_net_save(&s, err, sizeof err));
    db_close(F->db);
    char err[256];
    assert_int_equal(db_open(&F->db, F->path, err, sizeof err), DB_OK);
    cfg_init(F->db);
    memset(&net, 0, sizeof net);
    assert_int_equal(cfg_net_load(&net), 0);
    assert_int_equal(net.static_mode, 1);
    assert_int_equal(net.addr, IP4(192, 168, 1, 10));
    assert_int_equal(net.dns[1], IP4(9, 9, 9, 9));
}

/* ======================================================================= */
/* --- storage failures --- */

/* A write SQLite refuses is reported with SQLite's reason, and the change
 * and its audit row go (or not) together. */
static void test_storage_failure_reported_and_atomic(void **state)
{
    (void)state;
    allow_domain("example.com");
    struct cfg_smarthost_change c = add_req("example.com", "mx.example.com");
    int64_t id = add_ok(&c, NULL);
    char canon[ADDR_NET_STRLEN], note[128];

    raw_exec("CREATE TRIGGER no_domain BEFORE INSERT ON domain "
             "BEGIN SELECT RAISE(ABORT, 'flash says no'); END;"
             "CREATE TRIGGER no_update BEFORE UPDATE ON smarthost "
             "BEGIN SELECT RAISE(ABORT, 'row is frozen'); END;");
    REFUSED("storage error: flash says no", cfg_domain_add("example.org", err, sizeof err));
    REFUSED("storage error: row is frozen",
            try_set(id, with_prio(set_req(), 3), NULL, err, sizeof err));
    raw_exec("DROP TRIGGER no_domain; DROP TRIGGER no_update;"
             "CREATE TRIGGER no_audit BEFORE INSERT ON audit "
             "BEGIN SELECT RAISE(ABORT, 'audit log full'); END;");
    /* The change itself succeeds, its audit row does not: neither stays. */
    REFUSED("audit log full", cfg_domain_add("example.org", err, sizeof err));
    REFUSED("audit log full", try_add(add_req("example.com", "mx2.example.com"), NULL, err,
                                      sizeof err));
    REFUSED("audit log full", try_set(id, with_prio(set_req(), 3), NULL, err, sizeof err));
    REFUSED("audit log full", cfg_smarthost_del(id, warn, sizeof warn, err, sizeof err));
    REFUSED("audit log full",
            cfg_domain_del("example.com", 1, note, sizeof note, warn, sizeof warn, err,
                           sizeof err));
    REFUSED("audit log full", cfg_allow_add("10.0.0.0/8", canon, sizeof canon, err, sizeof err));
    REFUSED("audit log full", cfg_setting_set("hostname", "r.example.com", err, sizeof err));
    REFUSED("audit log full", cfg_setting_reset("hostname", err, sizeof err));
    struct cfg_net net = {0, 0, 0, 0, {0x01010101u, 0}};
    REFUSED("audit log full", cfg_net_save(&net, err, sizeof err));
    raw_exec("DROP TRIGGER no_audit");
    /* No transaction was left open: the next change goes through. */
    CHANGED("domain add example.org", cfg_domain_add("example.org", err, sizeof err));
}

/* Another writer holding the database: refused after the busy timeout,
 * nothing half-done, and fine once the lock is gone. */
static void test_storage_busy(void **state)
{
    (void)state;
    sqlite3 *h = raw_open();
    assert_int_equal(sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    char e[CFG_ERR_MAX] = "";
    assert_int_equal(cfg_domain_add("example.com", e, sizeof e), -1);
    assert_non_null(strstr(e, "storage error: database is locked"));
    assert_int_equal(sqlite3_exec(h, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);
    assert_int_equal(raw_int("SELECT count(*) FROM domain"), 0);
    assert_int_equal(audit_count(), 0);
    CHANGED("domain add example.com", cfg_domain_add("example.com", err, sizeof err));
}

/* ======================================================================= */
/* --- without storage --- */

static void test_no_store(void **state)
{
    (void)state;
    cfg_init(NULL);
    assert_null(cfg_db());
    char err[CFG_ERR_MAX] = "", canon[64], note[64], v[64];
    assert_int_equal(cfg_domain_add("example.com", err, sizeof err), -1);
    assert_non_null(strstr(err, "storage is unavailable"));
    err[0] = '\0';
    assert_int_equal(cfg_allow_add("10.0.0.0/8", canon, sizeof canon, err, sizeof err), -1);
    assert_non_null(strstr(err, "storage is unavailable"));
    err[0] = '\0';
    assert_int_equal(cfg_domain_del("example.com", 1, note, sizeof note, warn, sizeof warn, err,
                                    sizeof err), -1);
    assert_non_null(strstr(err, "storage is unavailable"));
    err[0] = '\0';
    assert_int_equal(cfg_setting_set("hostname", "r.example", err, sizeof err), -1);
    assert_non_null(strstr(err, "storage is unavailable"));
    assert_int_equal(cfg_setting_get("hostname", v, sizeof v), CFG_SETTING_UNREAD);
    assert_string_equal(v, "relay"); /* the default, flagged as not read */
    struct cfg_net net;
    assert_int_equal(cfg_net_load(&net), -1);
    assert_int_equal(net.static_mode, 0);
    /* Validation still answers first. */
    err[0] = '\0';
    assert_int_equal(cfg_domain_add("localhost", err, sizeof err), -1);
    assert_non_null(strstr(err, "not a valid domain name"));
    cfg_init(F->db);
    assert_int_equal(audit_count(), 0);
}

/* The allowlist fails closed: no storage, or a damaged row (prefix 0, a
 * prefix past the address, an address of the wrong size), lets nobody in
 * through that row. A damaged /0 used to match every source. */
static void test_allowlist_fails_closed(void **state)
{
    (void)state;
    char err[CFG_ERR_MAX], canon[64];
    const uint8_t outsider[16] = {203, 0, 113, 9};
    const uint8_t inside[16] = {10, 1, 2, 3};
    assert_int_equal(cfg_allow_add("10.0.0.0/8", canon, sizeof canon, err, sizeof err), 0);
    assert_true(cfg_source_allowed(4, inside));
    assert_false(cfg_source_allowed(4, outsider));
    raw_exec("INSERT INTO allow_net(cidr, family, addr, prefix, created) "
             "VALUES ('0.0.0.0/0', 4, x'00000000', 0, 1)");
    assert_false(cfg_source_allowed(4, outsider));
    raw_exec("DELETE FROM allow_net WHERE cidr = '0.0.0.0/0'");
    raw_exec("INSERT INTO allow_net(cidr, family, addr, prefix, created) "
             "VALUES ('203.0.0.0/300', 4, x'cb000000', 300, 1)");
    raw_exec("INSERT INTO allow_net(cidr, family, addr, prefix, created) "
             "VALUES ('short', 4, x'cb', 8, 1)");
    raw_exec("INSERT INTO allow_net(cidr, family, addr, prefix, created) "
             "VALUES ('neg', 4, x'cb000000', -5, 1)");
    assert_false(cfg_source_allowed(4, outsider));
    assert_true(cfg_source_allowed(4, inside)); /* good rows still work */
    /* unreadable storage: nobody */
    raw_exec("ALTER TABLE allow_net RENAME TO allow_net_gone");
    assert_false(cfg_source_allowed(4, inside));
    raw_exec("ALTER TABLE allow_net_gone RENAME TO allow_net");
    cfg_init(NULL);
    assert_false(cfg_source_allowed(4, inside));
    cfg_init(F->db);
}

/* A setting is read from storage once, then kept until it is set or
 * reset: a change made outside cfg_setting_set (here a raw UPDATE) shows
 * only after the next set or a new store; set and reset show at once. */
static void test_settings_kept_until_changed(void **state)
{
    (void)state;
    char err[CFG_ERR_MAX];
    assert_int_equal(cfg_setting_int("retry-initial"), 300);
    raw_exec("INSERT INTO setting (key, value) VALUES ('retry-initial', '77')");
    assert_int_equal(cfg_setting_int("retry-initial"), 300); /* kept */
    assert_int_equal(cfg_setting_set("retry-max", "7200", err, sizeof err), 0);
    assert_int_equal(cfg_setting_int("retry-initial"), 77); /* read again after a set */
    assert_int_equal(cfg_setting_int("retry-max"), 7200);
    assert_int_equal(cfg_setting_reset("retry-max", err, sizeof err), 0);
    assert_int_equal(cfg_setting_int("retry-max"), 3600);
    assert_int_equal(cfg_setting_set("retry-initial", "60", err, sizeof err), 0);
    assert_int_equal(cfg_setting_int("retry-initial"), 60);
}

/* Reads that fail are told apart from "not set": the inbound account
 * (AUTH then gets a temporary refusal) and settings (a caller deciding
 * something irreversible, like recording a failure without its report,
 * must not take the default for the truth). */
static void test_unreadable_is_not_unset(void **state)
{
    (void)state;
    char err[CFG_ERR_MAX], v[DB_TEXT_MAX];
    assert_int_equal(cfg_inbound_check("relayin", "0123456789abcdef"), 0); /* no account */
    assert_int_equal(cfg_inbound_set("relayin", "0123456789abcdef", err, sizeof err), 0);
    assert_int_equal(cfg_inbound_check("relayin", "0123456789abcdef"), 1);
    assert_int_equal(cfg_inbound_check("relayin", "wrong-password!!"), 0);
    assert_int_equal(cfg_setting_get("bounce-address", v, sizeof v), 0);
    raw_exec("ALTER TABLE inbound_account RENAME TO inbound_gone");
    raw_exec("ALTER TABLE setting RENAME TO setting_gone");
    assert_int_equal(cfg_inbound_check("relayin", "0123456789abcdef"), -1);
    /* A value read before is known (kept in memory); one never read is not. */
    assert_int_equal(cfg_setting_get("bounce-address", v, sizeof v), 0);
    assert_int_equal(cfg_setting_get("bounce-to-sender", v, sizeof v), CFG_SETTING_UNREAD);
    assert_string_equal(v, "off"); /* the default, for callers that can live with it */
    assert_int_equal(cfg_setting_int("retry-initial"), 300);
    assert_int_equal(cfg_setting_get("no-such-setting", v, sizeof v), -1);
    raw_exec("ALTER TABLE inbound_gone RENAME TO inbound_account");
    raw_exec("ALTER TABLE setting_gone RENAME TO setting");
    assert_int_equal(cfg_inbound_check("relayin", "0123456789abcdef"), 1);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "--open-helper") == 0)
        return open_helper(argv[2], argv[3], argv[4]);
    const struct CMUnitTest tests[] = {
        T(test_smarthost_add_refusals),
        T(test_parse_port_and_priority),
        T(test_smarthost_add_valid_forms),
        T(test_domain_rules),
        T(test_domain_del_in_use),
        T(test_allow_rules),
        T(test_allowlist_fails_closed),
        T(test_settings_kept_until_changed),
        T(test_unreadable_is_not_unset),
        T(test_password_sealed_at_rest),
        T(test_crypto_context_binding),
        T(test_other_device_cannot_open),
        T(test_smarthost_set_needs_password),
        T(test_smarthost_set_tls_verify),
        T(test_tls_none_with_user_refused),
        T(test_auth_plaintext_on_asks_password),
        T(test_ipv6_refused),
        T(test_bounce_address_needs_smarthost),
        T(test_bounce_domain_delete_warns),
        T(test_needs_credentials),
        T(test_smarthost_del),
        T(test_settings),
        T(test_net_round_trip),
        T(test_storage_failure_reported_and_atomic),
        T(test_storage_busy),
        T(test_no_store),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
