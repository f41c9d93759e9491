/* cmd_export.c — `config export`: the whole configuration as console
 * commands that, pasted into another appliance, rebuild it (how a failed
 * unit is replaced).
 *
 * Order matters when the lines are applied: domains before their smart
 * hosts, smart hosts before the settings that need them (bounce-address),
 * the trusted CAs before nothing in particular. Passwords are never
 * exported: a row with credentials comes out without them (so pasting
 * never stops at a password prompt) and a comment line says what to type
 * to set them. Lines starting with '#' are comments to the console. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "config.h"
#include "db.h"
#include "db_config.h"
#include "db_queue.h"
#include "fw.h"

/* Lines per step for the table phases: about 2 KB of output. */
#define EXPORT_PAGE_ROWS (CMD_PAGE_ROWS * 4)

enum export_phase { EX_HEAD, EX_DOMAINS, EX_HOSTS, EX_ALLOW, EX_CA, EX_SETTINGS, EX_END };

/* One export in progress: a phase per table, a page of rows per step.
 * Nothing else writes these tables meanwhile (the console, which does,
 * is busy with the export), so paging by offset neither skips nor
 * repeats a row. */
static struct export_ctx {
    int phase;
    int offset; /* rows of this phase's table already shown */
    int got;    /* rows the current page had */
    int index;  /* smart hosts so far: their ids on a fresh appliance */
    size_t pem_at; /* CA phase: bytes of the PEM already shown */
    struct console *con;
} export;

/* One line of the export: a text line, or a string of the JSON array. */
static void export_line(struct export_ctx *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void export_line(struct export_ctx *e, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    struct jsonw *j = console_json(e->con);
    if (j)
        jsonw_string(j, NULL, line);
    else
        console_printf(e->con, "%s\n", line);
}

static void export_domain(void *ctx, const char *name, int64_t smarthosts)
{
    (void)smarthosts;
    struct export_ctx *e = ctx;
    e->got++;
    export_line(e, "domain add %s", name);
}

static void export_smarthost(void *ctx, const struct db_smarthost *sh)
{
    struct export_ctx *e = ctx;
    e->got++;
    e->index++;
    export_line(e, "smarthost add %s %s port %d priority %lld tls %s", sh->domain, sh->host,
                (int)sh->port, (long long)sh->priority, sh->tls);
    if (sh->username[0])
        export_line(e,
                    "# credentials are not exported: smarthost set %d user %s%s "
                    "(%d is this row's id on a fresh appliance; see smarthost list)",
                    e->index, sh->username, sh->auth_plaintext ? " auth-plaintext on" : "",
                    e->index);
}

static void export_allow(void *ctx, const char *cidr, int family, const uint8_t addr[16],
                         int prefix)
{
    (void)family;
    (void)addr;
    struct export_ctx *e = ctx;
    e->got++;
    if (prefix < 0)
        return; /* a damaged row: it matches nothing here either */
    export_line(e, "allow add %s", cidr);
}

/* The trusted CAs, as `tls ca set` takes them: PEM lines, then an empty
 * line (PEM never has one inside). A bundle can be long: EXPORT_PAGE_ROWS
 * lines per step, resumed at pem_at; the phase ends after the empty line. */
static void export_pem(void *ctx, const uint8_t *pem, size_t len)
{
    struct export_ctx *e = ctx;
    if (len == 0) {
        e->phase++;
        return;
    }
    if (e->pem_at == 0)
        export_line(e, "tls ca set");
    size_t start = e->pem_at;
    int lines = 0;
    for (size_t i = start; i <= len && lines < EXPORT_PAGE_ROWS; i++) {
        if (i == len || pem[i] == '\n') {
            size_t n = i - start;
            if (n && pem[start + n - 1] == '\r')
                n--;
            if (n) {
                export_line(e, "%.*s", (int)n, (const char *)pem + start);
                lines++;
            }
            start = i + 1;
        }
    }
    e->pem_at = start;
    if (start > len) {
        export_line(e, "%s", "");
        e->phase++;
    }
}

/* Only what differs from the defaults, so a later firmware's better
 * defaults still apply to the new unit. */
static int export_settings(struct export_ctx *e)
{
    for (const struct cfg_setting *s = cfg_settings; s->key; s++) {
        char v[DB_TEXT_MAX];
        if (cfg_setting_get(s->key, v, sizeof v) != 0)
            return -1;
        if (strcmp(v, s->def) != 0)
            export_line(e, "settings set %s %s", s->key, v[0] ? v : "\"\"");
    }
    return 0;
}

/* A page of the current phase's table; the next phase after a short page. */
static int export_page(struct export_ctx *e)
{
    struct db *db = cfg_db();
    int rc = DB_OK;
    e->got = 0;
    if (e->phase == EX_DOMAINS)
        rc = db_domain_page(db, e->offset, EXPORT_PAGE_ROWS, export_domain, e);
    else if (e->phase == EX_HOSTS)
        rc = db_smarthost_page(db, NULL, e->offset, EXPORT_PAGE_ROWS, export_smarthost, e);
    else
        rc = db_allow_page(db, e->offset, EXPORT_PAGE_ROWS, export_allow, e);
    e->offset += e->got;
    if (e->got < EXPORT_PAGE_ROWS) {
        e->phase++;
        e->offset = 0;
    }
    return rc;
}

static int export_step(struct console *con, void *ctx, int cancel)
{
    struct export_ctx *e = ctx;
    int rc = DB_OK;
    if (cancel) {
        e->phase = EX_END + 1;
    } else if (!cfg_db()) {
        console_stream_error(con, "storage is unavailable (see 'log')");
        e->phase = EX_END + 1;
    } else if (e->phase == EX_HEAD) {
        export_line(e, "# Smart Host Relay %s configuration; paste into a fresh appliance",
                    fw_version_text());
        e->phase++;
    } else if (e->phase <= EX_ALLOW) {
        rc = export_page(e);
    } else if (e->phase == EX_CA) {
        rc = db_tls_ca_view(cfg_db(), export_pem, e); /* moves on after the last line */
        if (rc == DB_ENOTFOUND) {
            rc = DB_OK;
            e->phase++;
        }
    } else if (e->phase == EX_SETTINGS) {
        if (export_settings(e) != 0) {
            console_stream_error(con, "storage error: cannot read the settings");
            e->phase = EX_END + 1;
        } else {
            e->phase++;
        }
    } else if (e->phase == EX_END) {
        export_line(e, "# end of configuration");
        e->phase++;
    }
    if (rc != DB_OK) {
        /* No end line: an export cut short must not look complete. */
        console_stream_error(con, "storage error: %s", db_errmsg(cfg_db()));
        e->phase = EX_END + 1;
    }
    if (e->phase <= EX_END)
        return 1;
    if (console_json(con))
        console_json_end(con);
    return 0;
}

static int cmd_config_export(struct console *con, int argc, char **argv)
{
    (void)argv;
    if (argc != 0)
        return console_usage(con);
    if (!cfg_db())
        return console_error(con, "storage is unavailable (see 'log')");
    memset(&export, 0, sizeof export);
    export.con = con;
    struct jsonw *j = console_json(con);
    if (j) {
        jsonw_object(j, NULL);
        jsonw_array(j, "config");
    }
    console_stream(con, export_step, &export);
    return CONSOLE_PENDING;
}

const struct console_cmd cmd_export_table[] = {
    {"config", "export", "",
     "the configuration as commands to paste into another appliance (no passwords)",
     cmd_config_export},
    {NULL, NULL, NULL, NULL, NULL},
};
