/* cmd_config.c — domain, smarthost, allow, settings and audit commands.
 * Words in, one line out; every rule is in config.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clockfmt.h"
#include "commands.h"
#include "config.h"
#include "crypto.h"
#include "db.h"


/* --- domain --- */

static int cmd_domain_add(struct console *con, int argc, char **argv)
{
    char err[CFG_ERR_MAX];
    if (argc != 1)
        return console_usage(con);
    if (cfg_domain_add(argv[0], err, sizeof err) != 0)
        return console_error(con, "%s", err);
    char dom[DB_NAME_MAX + 1];
    cfg_check_domain(argv[0], dom, err, sizeof err);
    console_printf(con, "ok: domain %s allowed\n", dom);
    return 0;
}

/* --- listings ---
 * `domain list`, `smarthost list` and `allow list` count their rows first,
 * so a storage error almost always comes before any output (a plain error
 * line, or {"error": ...}); in JSON the rows then go into one array inside
 * the command's object, an empty list included. */

static int count_rows;

/* In JSON mode, open {"<name>": [ and return the writer; NULL in text mode. */
static struct jsonw *json_list_begin(struct console *con, const char *name)
{
    struct jsonw *j = console_json(con);
    if (j) {
        jsonw_object(j, NULL);
        jsonw_array(j, name);
    }
    return j;
}

/* The listing failed after it began: in JSON the error goes into the object
 * already on its way, which is then closed. */
static int list_failed(struct console *con)
{
    console_stream_error(con, "storage error: %s", db_errmsg(cfg_db()));
    if (console_json(con))
        console_json_end(con);
    return -1;
}

static void print_domain(void *ctx, const char *name, int64_t smarthosts)
{
    struct jsonw *j = console_json(ctx);
    if (j) {
        jsonw_object(j, NULL);
        jsonw_string(j, "name", name);
        jsonw_int(j, "smarthosts", smarthosts);
        jsonw_end(j);
        return;
    }
    console_printf(ctx, "%-40s %lld smart host%s\n", name, (long long)smarthosts,
                   smarthosts == 1 ? "" : "s");
}

static void count_domain(void *ctx, const char *name, int64_t smarthosts)
{
    (void)ctx;
    (void)name;
    (void)smarthosts;
    count_rows++;
}

static int cmd_domain_list(struct console *con, int argc, char **argv)
{
    (void)argv;
    if (argc != 0)
        return console_usage(con);
    if (!cfg_db())
        return console_error(con, "storage is unavailable (see 'log')");
    count_rows = 0;
    if (db_domain_list(cfg_db(), count_domain, NULL) != DB_OK)
        return console_error(con, "storage error: %s", db_errmsg(cfg_db()));
    struct jsonw *j = json_list_begin(con, "domains");
    if (!j && !count_rows) {
        console_printf(con, "no allowed domains (domain add <domain>)\n");
        return 0;
    }
    if (count_rows && db_domain_list(cfg_db(), print_domain, con) != DB_OK)
        return list_failed(con);
    if (j)
        console_json_end(con);
    return 0;
}

static int cmd_domain_del(struct console *con, int argc, char **argv)
{
    char err[CFG_ERR_MAX], note[CFG_ERR_MAX], warn[CFG_WARN_MAX];
    int force = argc == 2 && strcmp(argv[1], "force") == 0;
    if (argc != 1 && !force)
        return console_usage(con);
    if (cfg_domain_del(argv[0], force, note, sizeof note, warn, sizeof warn, err,
                       sizeof err) != 0)
        return console_error(con, "%s", err);
    char dom[DB_NAME_MAX + 1];
    cfg_check_domain(argv[0], dom, err, sizeof err);
    console_printf(con, "ok: domain %s deleted%s\n", dom, note);
    if (warn[0])
        console_printf(con, "warning: %s\n", warn);
    return 0;
}

/* --- smarthost --- */

/* A change waiting for its password to be typed twice. */
static struct {
    int adding;
    int64_t id;
    struct cfg_smarthost_change change;
    char domain[DB_NAME_MAX + 1], host[DB_NAME_MAX + 1], tls[8], user[DB_USER_MAX + 1];
} pending;

static void pending_clear(void) { crypto_wipe(&pending, sizeof pending); }

/* Copy the change's strings out of the console line (see console_ask_secret). */
static void pending_keep(int adding, int64_t id, const struct cfg_smarthost_change *c)
{
    pending_clear();
    pending.adding = adding;
    pending.id = id;
    pending.change = *c;
#define KEEP(field)                                                                  \
    if (c->field) {                                                                  \
        snprintf(pending.field, sizeof pending.field, "%s", c->field);              \
        pending.change.field = pending.field;                                        \
    }
    KEEP(domain)
    KEEP(host)
    KEEP(tls)
    KEEP(user)
#undef KEEP
}

static void report_done(struct console *con, int adding, int64_t id,
                        const struct cfg_smarthost_change *c)
{
    if (adding)
        console_printf(con, "ok: smart host %lld added for %s\n", (long long)id, c->domain);
    else
        console_printf(con, "ok: smart host %lld changed\n", (long long)id);
}

static int apply(struct console *con, int adding, int64_t id, const struct cfg_smarthost_change *c,
                 const char *password)
{
    char err[CFG_ERR_MAX];
    int rc = adding ? cfg_smarthost_add(c, password, &id, err, sizeof err)
                    : cfg_smarthost_set(id, c, password, err, sizeof err);
    if (rc != 0)
        return console_error(con, "%s", err);
    report_done(con, adding, id, c);
    return 0;
}

static void got_password(struct console *con, const char *password, void *ctx)
{
    (void)ctx;
    if (password)
        apply(con, pending.adding, pending.id, &pending.change, password);
    pending_clear();
}

/* Parse "[host H] [port N] [priority N] [tls P] [user U] [nouser]
 * [auth-plaintext [on|off]]" into `c`; `adding` allows only add's forms. */
static int parse_options(struct console *con, int adding, int argc, char **argv,
                         struct cfg_smarthost_change *c)
{
    char err[CFG_ERR_MAX];
    for (int i = 0; i < argc; i++) {
        const char *k = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int *seen = NULL;
        if (strcmp(k, "host") == 0 && !adding) {
            seen = &c->has_host;
        } else if (strcmp(k, "port") == 0) {
            seen = &c->has_port;
            if (v && cfg_parse_port(v, &c->port, err, sizeof err) != 0)
                return console_error(con, "%s", err);
        } else if (strcmp(k, "priority") == 0) {
            seen = &c->has_priority;
            if (v && cfg_parse_priority(v, &c->priority, err, sizeof err) != 0)
                return console_error(con, "%s", err);
        } else if (strcmp(k, "tls") == 0) {
            seen = &c->has_tls;
        } else if (strcmp(k, "user") == 0) {
            if (c->user)
                return console_error(con, "'%s' given twice", k);
            if (!v)
                return console_usage(con);
            c->user = v;
            i++;
            continue;
        } else if (strcmp(k, "nouser") == 0 && !adding) {
            if (c->user)
                return console_error(con, "'user' and 'nouser' exclude each other");
            c->user = "";
            continue;
        } else if (strcmp(k, "auth-plaintext") == 0) {
            if (c->has_auth_plaintext)
                return console_error(con, "'%s' given twice", k);
            c->has_auth_plaintext = 1;
            c->auth_plaintext = 1;
            if (!adding) {
                if (!v || (strcmp(v, "on") != 0 && strcmp(v, "off") != 0))
                    return console_error(con, "auth-plaintext takes on or off");
                c->auth_plaintext = strcmp(v, "on") == 0;
                i++;
            }
            continue;
        } else {
            return console_error(con, "unexpected '%s'; usage: %s", k, con->current->usage);
        }
        if (*seen)
            return console_error(con, "'%s' given twice", k);
        if (!v)
            return console_error(con, "'%s' needs a value", k);
        *seen = 1;
        if (strcmp(k, "host") == 0)
            c->host = v;
        else if (strcmp(k, "tls") == 0)
            c->tls = v;
        i++;
    }
    return 0;
}

static int start(struct console *con, int adding, int64_t id, const struct cfg_smarthost_change *c)
{
    char err[CFG_ERR_MAX];
    int needs_password;
    int rc = adding ? cfg_smarthost_check_add(c, &needs_password, err, sizeof err)
                    : cfg_smarthost_check_set(id, c, &needs_password, err, sizeof err);
    if (rc != 0)
        return console_error(con, "%s", err);
    if (!needs_password)
        return apply(con, adding, id, c, NULL);
    pending_keep(adding, id, c);
    console_ask_new_password(con, cfg_check_password, got_password, NULL);
    return CONSOLE_PENDING;
}

static int cmd_smarthost_add(struct console *con, int argc, char **argv)
{
    if (argc < 2)
        return console_usage(con);
    struct cfg_smarthost_change c = {0};
    c.domain = argv[0];
    c.host = argv[1];
    c.has_host = 1;
    if (parse_options(con, 1, argc - 2, argv + 2, &c) != 0)
        return -1;
    return start(con, 1, 0, &c);
}

static int cmd_smarthost_set(struct console *con, int argc, char **argv)
{
    if (argc < 2)
        return console_usage(con);
    int64_t id = console_parse_id(argv[0]);
    if (!id)
        return console_error(con, "'%s' is not a smart host id (see 'smarthost list')", argv[0]);
    struct cfg_smarthost_change c = {0};
    if (parse_options(con, 0, argc - 1, argv + 1, &c) != 0)
        return -1;
    return start(con, 0, id, &c);
}

static int cmd_smarthost_del(struct console *con, int argc, char **argv)
{
    if (argc != 1)
        return console_usage(con);
    int64_t id = console_parse_id(argv[0]);
    if (!id)
        return console_error(con, "'%s' is not a smart host id (see 'smarthost list')", argv[0]);
    char err[CFG_ERR_MAX], warn[CFG_WARN_MAX];
    if (cfg_smarthost_del(id, warn, sizeof warn, err, sizeof err) != 0)
        return console_error(con, "%s", err);
    console_printf(con, "ok: smart host %lld deleted\n", (long long)id);
    if (warn[0])
        console_printf(con, "warning: %s\n", warn);
    return 0;
}

/* Why a smart host cannot deliver, most telling first: the text listing
 * marks a row with the first that applies, JSON lists them all. */
enum {
    /* Rows stored before the rules that now refuse them (an older
     * firmware's database): they can never deliver. */
    SH_IPV6,
    SH_TLS_NONE_USER,
    /* A password that no longer opens (damaged, or the database came from
     * another unit) can never be sent: it must be typed again. */
    SH_NEEDS_CREDENTIALS,
    /* A `may` row with credentials whose TLS has failed withholds them
     * (they never go in clear without auth-plaintext), so its mail waits. */
    SH_WITHHELD,
    SH_PROBLEMS
};

static const char *const problem_code[SH_PROBLEMS] = {
    "ipv6_unsupported", "tls_none_with_user", "needs_credentials", "credentials_withheld"};

static unsigned smarthost_problems(const struct db_smarthost *sh)
{
    /* Credentials that may only travel inside TLS. */
    int guarded = sh->username[0] && !sh->auth_plaintext;
    unsigned p = 0;
    if (strchr(sh->host, ':'))
        p |= 1u << SH_IPV6;
    if (guarded && strcmp(sh->tls, "none") == 0)
        p |= 1u << SH_TLS_NONE_USER;
    if (cfg_smarthost_needs_credentials(sh))
        p |= 1u << SH_NEEDS_CREDENTIALS;
    if (guarded && strcmp(sh->tls, "may") == 0 && sh->tls_failing)
        p |= 1u << SH_WITHHELD;
    return p;
}

/* What the administrator reads about problem `k`, with the command that
 * mends it where there is one. */
static const char *problem_text(int k, const struct db_smarthost *sh, char *buf, size_t cap)
{
    switch (k) {
    case SH_IPV6:
        return "IPv6 is not supported on this firmware yet: mail deferred";
    case SH_TLS_NONE_USER:
        return "tls none with a user can never deliver: mail deferred";
    case SH_NEEDS_CREDENTIALS:
        snprintf(buf, cap, "needs credentials (smarthost set %lld user %s)", (long long)sh->id,
                 sh->username);
        return buf;
    default:
        return "TLS failed: credentials withheld, mail deferred";
    }
}

static void json_smarthost(struct jsonw *j, const struct db_smarthost *sh, unsigned problems)
{
    char buf[DB_USER_MAX + 64];
    jsonw_object(j, NULL);
    jsonw_int(j, "id", sh->id);
    jsonw_string(j, "domain", sh->domain);
    jsonw_string(j, "host", sh->host);
    jsonw_int(j, "port", sh->port);
    jsonw_int(j, "priority", sh->priority);
    jsonw_string(j, "tls", sh->tls);
    if (sh->username[0])
        jsonw_string(j, "user", sh->username);
    else
        jsonw_null(j, "user");
    jsonw_bool(j, "auth_plaintext", sh->auth_plaintext);
    jsonw_array(j, "problems");
    for (int k = 0; k < SH_PROBLEMS; k++) {
        if (!(problems & (1u << k)))
            continue;
        jsonw_object(j, NULL);
        jsonw_string(j, "code", problem_code[k]);
        jsonw_string(j, "message", problem_text(k, sh, buf, sizeof buf));
        jsonw_end(j);
    }
    jsonw_end(j);
    jsonw_end(j);
}

static void print_smarthost(void *ctx, const struct db_smarthost *sh)
{
    unsigned problems = smarthost_problems(sh);
    struct jsonw *j = console_json(ctx);
    if (j) {
        json_smarthost(j, sh, problems);
        return;
    }
    char auth[DB_USER_MAX + 32] = "-";
    if (sh->username[0])
        snprintf(auth, sizeof auth, "user %s%s", sh->username,
                 sh->auth_plaintext ? " auth-plaintext" : "");
    char buf[DB_USER_MAX + 64];
    const char *attention = NULL;
    for (int k = 0; k < SH_PROBLEMS && !attention; k++)
        if (problems & (1u << k))
            attention = problem_text(k, sh, buf, sizeof buf);
    console_printf(ctx, "%-4lld %-24s %-28s %-5d %-8lld %-8s %s%s%s\n", (long long)sh->id,
                   sh->domain, sh->host, (int)sh->port, (long long)sh->priority, sh->tls, auth,
                   attention ? "  ! " : "", attention ? attention : "");
}

static void count_smarthost(void *ctx, const struct db_smarthost *sh)
{
    (void)ctx;
    (void)sh;
    count_rows++;
}

static int cmd_smarthost_list(struct console *con, int argc, char **argv)
{
    if (argc > 1)
        return console_usage(con);
    char dom[DB_NAME_MAX + 1], err[CFG_ERR_MAX];
    if (argc == 1 && cfg_check_domain(argv[0], dom, err, sizeof err) != 0)
        return console_error(con, "%s", err);
    if (!cfg_db())
        return console_error(con, "storage is unavailable (see 'log')");
    const char *filter = argc == 1 ? dom : NULL;
    count_rows = 0;
    if (db_smarthost_list(cfg_db(), filter, count_smarthost, NULL) != DB_OK)
        return console_error(con, "storage error: %s", db_errmsg(cfg_db()));
    struct jsonw *j = json_list_begin(con, "smarthosts");
    if (!j && !count_rows) {
        console_printf(con, "no smart hosts%s%s\n", filter ? " for " : "", filter ? filter : "");
        return 0;
    }
    if (!j)
        console_printf(con, "%-4s %-24s %-28s %-5s %-8s %-8s %s\n", "id", "domain", "host",
                       "port", "priority", "tls", "auth");
    if (count_rows && db_smarthost_list(cfg_db(), filter, print_smarthost, con) != DB_OK)
        return list_failed(con);
    if (j)
        console_json_end(con);
    return 0;
}

/* --- allow --- */

static int cmd_allow_add(struct console *con, int argc, char **argv)
{
    char err[CFG_ERR_MAX], canon[64];
    if (argc != 1)
        return console_usage(con);
    if (cfg_allow_add(argv[0], canon, sizeof canon, err, sizeof err) != 0)
        return console_error(con, "%s", err);
    console_printf(con, "ok: %s allowed\n", canon);
    return 0;
}

static int cmd_allow_del(struct console *con, int argc, char **argv)
{
    char err[CFG_ERR_MAX], canon[64];
    if (argc != 1)
        return console_usage(con);
    if (cfg_allow_del(argv[0], canon, sizeof canon, err, sizeof err) != 0)
        return console_error(con, "%s", err);
    console_printf(con, "ok: %s removed\n", canon);
    return 0;
}

static void print_allow(void *ctx, const char *cidr, int family, const uint8_t addr[16], int prefix)
{
    (void)family;
    (void)addr;
    (void)prefix;
    struct jsonw *j = console_json(ctx);
    if (j) {
        jsonw_object(j, NULL);
        jsonw_string(j, "cidr", cidr);
        jsonw_end(j);
        return;
    }
    console_printf(ctx, "%s\n", cidr);
}

static void count_allow(void *ctx, const char *cidr, int family, const uint8_t addr[16], int prefix)
{
    (void)ctx;
    (void)cidr;
    (void)family;
    (void)addr;
    (void)prefix;
    count_rows++;
}

static int cmd_allow_list(struct console *con, int argc, char **argv)
{
    (void)argv;
    if (argc != 0)
        return console_usage(con);
    if (!cfg_db())
        return console_error(con, "storage is unavailable (see 'log')");
    count_rows = 0;
    if (db_allow_list(cfg_db(), count_allow, NULL) != DB_OK)
        return console_error(con, "storage error: %s", db_errmsg(cfg_db()));
    struct jsonw *j = json_list_begin(con, "networks");
    if (!j && !count_rows) {
        console_printf(con, "no allowed networks: all inbound mail is refused (allow add <cidr>)\n");
        return 0;
    }
    if (count_rows && db_allow_list(cfg_db(), print_allow, con) != DB_OK)
        return list_failed(con);
    if (j)
        console_json_end(con);
    return 0;
}

/* --- settings --- */

static int cmd_settings_list(struct console *con, int argc, char **argv)
{
    (void)argv;
    if (argc != 0)
        return console_usage(con);
    /* Values stay strings in JSON: a setting's value is text (hostname,
     * addresses) or a number by key, and its type must not change with it. */
    struct jsonw *j = json_list_begin(con, "settings");
    for (const struct cfg_setting *s = cfg_settings; s->key; s++) {
        char v[DB_TEXT_MAX];
        cfg_setting_get(s->key, v, sizeof v);
        int is_default = strcmp(v, s->def) == 0;
        if (j) {
            jsonw_object(j, NULL);
            jsonw_string(j, "key", s->key);
            jsonw_string(j, "value", v);
            jsonw_string(j, "default", s->def);
            jsonw_bool(j, "is_default", is_default);
            jsonw_string(j, "help", s->help);
            jsonw_end(j);
        } else {
            console_printf(con, "%-22s %-20s %s%s\n", s->key, v[0] ? v : "\"\"",
                           is_default ? "(default) " : "", s->help);
        }
    }
    if (j)
        console_json_end(con);
    return 0;
}

static int cmd_settings_set(struct console *con, int argc, char **argv)
{
    char err[CFG_ERR_MAX];
    if (argc != 2)
        return console_usage(con);
    if (cfg_setting_set(argv[0], argv[1], err, sizeof err) != 0)
        return console_error(con, "%s", err);
    console_printf(con, "ok: %s = %s\n", argv[0], argv[1][0] ? argv[1] : "\"\"");
    return 0;
}

static int cmd_settings_reset(struct console *con, int argc, char **argv)
{
    char err[CFG_ERR_MAX], v[DB_TEXT_MAX];
    if (argc != 1)
        return console_usage(con);
    if (cfg_setting_reset(argv[0], err, sizeof err) != 0)
        return console_error(con, "%s", err);
    cfg_setting_get(argv[0], v, sizeof v);
    console_printf(con, "ok: %s = %s (default)\n", argv[0], v[0] ? v : "\"\"");
    return 0;
}

/* --- audit --- */

static void print_audit(void *ctx, int64_t at, const char *actor, const char *action)
{
    struct cmd_rows *r = ctx;
    struct console *con = r->con;
    struct jsonw *j = console_json(con);
    r->shown++;
    if (j) {
        jsonw_object(j, NULL);
        jsonw_int(j, "at", at);
        jsonw_string(j, "actor", actor);
        jsonw_string(j, "action", action);
        jsonw_end(j);
        return;
    }
    char when[CLOCKFMT_UTC_LEN];
    console_printf(con, "%s %-8s %s\n", clockfmt_utc(at, when), actor, action);
}

/* `audit [N]`: a page of rows per step as the console drains, so a long
 * log never piles up in the UART (rows added meanwhile are not part of it). */
static struct cmd_rows audit_rows;

static int audit_page(struct cmd_rows *r, int limit, int64_t *last)
{
    return db_audit_page(cfg_db(), r->after, limit, print_audit, r, last);
}

static int cmd_audit(struct console *con, int argc, char **argv)
{
    int n;
    if (console_count_arg(con, argc, argv, 20, 1000, &n) != 0)
        return -1;
    if (!cfg_db())
        return console_error(con, "storage is unavailable (see 'log')");
    int64_t after;
    if (db_audit_tail(cfg_db(), n, &after) != DB_OK)
        return console_error(con, "storage error: %s", db_errmsg(cfg_db()));
    cmd_rows_start(con, &audit_rows, audit_page, after, n, "audit");
    return CONSOLE_PENDING;
}

const struct console_cmd cmd_config_table[] = {
    {"domain", "add", "<domain>", "allow mail for a domain", cmd_domain_add},
    {"domain", "list", "", "allowed domains", cmd_domain_list},
    {"domain", "del", "<domain> [force]", "stop allowing a domain (force: also its smart hosts)",
     cmd_domain_del},
    {"smarthost", "add",
     "<domain> <host> [port N] [priority N] [tls may|encrypt|verify|none] [user NAME] "
     "[auth-plaintext]",
     "add a smart host for an allowed domain (user: asks for the password)", cmd_smarthost_add},
    {"smarthost", "list", "[<domain>]", "smart hosts by domain, lowest priority first",
     cmd_smarthost_list},
    {"smarthost", "set",
     "<id> [host H] [port N] [priority N] [tls ...] [user NAME | nouser] [auth-plaintext on|off]",
     "change a smart host (credentials asked again when they could go elsewhere or in clear)",
     cmd_smarthost_set},
    {"smarthost", "del", "<id>", "delete a smart host", cmd_smarthost_del},
    {"allow", "add", "<cidr>", "accept mail from a source network", cmd_allow_add},
    {"allow", "list", "", "source networks mail is accepted from", cmd_allow_list},
    {"allow", "del", "<cidr>", "stop accepting mail from a network", cmd_allow_del},
    {"settings", "list", "", "settings, their values and defaults", cmd_settings_list},
    {"settings", "set", "<key> <value>", "change a setting", cmd_settings_set},
    {"settings", "reset", "<key>", "put a setting back to its default", cmd_settings_reset},
    {"audit", NULL, "[N]", "last N configuration changes (default 20)", cmd_audit},
    {NULL, NULL, NULL, NULL, NULL},
};
