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
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "config.h"
#include "db.h"
#include "db_config.h"
#include "db_queue.h"
#include "fw.h"

struct export_ctx {
    struct console *con;
    int index; /* smart hosts so far: their ids on a fresh appliance */
};

static void export_domain(void *ctx, const char *name, int64_t smarthosts)
{
    (void)smarthosts;
    console_printf(((struct export_ctx *)ctx)->con, "domain add %s\n", name);
}

static void export_smarthost(void *ctx, const struct db_smarthost *sh)
{
    struct export_ctx *e = ctx;
    e->index++;
    console_printf(e->con, "smarthost add %s %s port %d priority %lld tls %s\n", sh->domain,
                   sh->host, (int)sh->port, (long long)sh->priority, sh->tls);
    if (sh->username[0])
        console_printf(e->con,
                       "# credentials are not exported: smarthost set %d user %s%s "
                       "(%d is this row's id on a fresh appliance; see smarthost list)\n",
                       e->index, sh->username, sh->auth_plaintext ? " auth-plaintext on" : "",
                       e->index);
}

static void export_allow(void *ctx, const char *cidr, int family, const uint8_t addr[16],
                         int prefix)
{
    (void)family;
    (void)addr;
    if (prefix < 0)
        return; /* a damaged row: it matches nothing here either */
    console_printf(((struct export_ctx *)ctx)->con, "allow add %s\n", cidr);
}

/* The trusted CAs, as `tls ca set` takes them: PEM lines, then an empty
 * line. PEM never has an empty line inside. */
static void export_pem(void *ctx, const uint8_t *pem, size_t len)
{
    struct console *con = ctx;
    if (len == 0)
        return;
    console_printf(con, "tls ca set\n");
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || pem[i] == '\n') {
            size_t n = i - start;
            if (n && pem[start + n - 1] == '\r')
                n--;
            if (n)
                console_printf(con, "%.*s\n", (int)n, (const char *)pem + start);
            start = i + 1;
        }
    }
    console_printf(con, "\n");
}

static int cmd_config_export(struct console *con, int argc, char **argv)
{
    (void)argv;
    if (argc != 0)
        return console_usage(con);
    if (!cfg_db())
        return console_error(con, "storage is unavailable (see 'log')");
    struct export_ctx e = {con, 0};
    console_printf(con, "# Smart Host Relay %s configuration; paste into a fresh appliance\n",
                   fw_version_text());
    if (db_domain_list(cfg_db(), export_domain, &e) != DB_OK ||
        db_smarthost_list(cfg_db(), NULL, export_smarthost, &e) != DB_OK ||
        db_allow_list(cfg_db(), export_allow, &e) != DB_OK)
        return console_error(con, "storage error: %s", db_errmsg(cfg_db()));
    int rc = db_tls_ca_view(cfg_db(), export_pem, con);
    if (rc != DB_OK && rc != DB_ENOTFOUND)
        return console_error(con, "storage error: %s", db_errmsg(cfg_db()));
    /* Only what differs from the defaults, so a later firmware's better
     * defaults still apply to the new unit. */
    for (const struct cfg_setting *s = cfg_settings; s->key; s++) {
        char v[DB_TEXT_MAX];
        if (cfg_setting_get(s->key, v, sizeof v) != 0)
            return console_error(con, "storage error: cannot read setting %s", s->key);
        if (strcmp(v, s->def) != 0)
            console_printf(con, "settings set %s %s\n", s->key, v[0] ? v : "\"\"");
    }
    console_printf(con, "# end of configuration\n");
    return 0;
}

const struct console_cmd cmd_export_table[] = {
    {"config", "export", "",
     "the configuration as commands to paste into another appliance (no passwords)",
     cmd_config_export},
    {NULL, NULL, NULL, NULL, NULL},
};
