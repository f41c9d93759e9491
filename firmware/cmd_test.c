/* cmd_test.c — `smarthost test` (the vendor's "Send Me a Test Email") and
 * `tls ca` (the CAs that `tls verify` trusts). */
#include <stdio.h>
#include <string.h>

#include "clockfmt.h"
#include "commands.h"
#include "config.h"
#include "crypto.h"
#include "db.h"
#include "db_queue.h"
#include "delivery.h"
#include "hal_clock.h"
#include "outbound.h"

/* --- smarthost test --- */

static struct {
    struct console *con;
    struct outbound_job job;
    struct outbound_route route;
    char body[1024];
    int running;
} test;

static void test_event(void *ctx, const char *line)
{
    (void)ctx;
    /* The result line and the prompt come at msg_done, before the QUIT
     * exchange: progress after that would land behind the prompt, inside
     * whatever the operator types next. */
    if (!test.running)
        return;
    console_printf(test.con, "  %s\n", line);
}

static void test_done(void *ctx, struct outbound_job *job)
{
    (void)ctx;
    struct outbound_result *r = &job->results[0];
    if (r->code >= 200 && r->code < 300)
        console_printf(test.con, "ok: test message delivered via %s with %s: %d %s\n",
                       job->smarthost, job->tls, r->code, r->text);
    else if (r->code)
        console_error(test.con, "test message not delivered via %s: %d %s", job->smarthost,
                      r->code, r->text);
    else
        console_error(test.con, "test message not delivered: %s", r->text);
    test.running = 0;
    job->in_use = 0;
    console_done(test.con);
}

static void test_cancel(struct console *con, void *ctx)
{
    (void)con;
    (void)ctx;
    outbound_cancel(&test);
}

static const struct outbound_ops test_ops = {
    .done = test_done,
    .event = test_event,
    .next = NULL,
};

static void add_route_host(void *ctx, const struct db_smarthost *sh)
{
    struct outbound_route *r = ctx;
    if (r->count < OUTBOUND_ROUTE_MAX)
        r->hosts[r->count++] = *sh;
}

/* smarthost test <id|domain> <address> */
static int cmd_smarthost_test(struct console *con, int argc, char **argv)
{
    if (argc != 2)
        return console_usage(con);
    if (!cfg_db())
        return console_error(con, "storage is unavailable (see 'log')");
    if (test.running)
        return console_error(con, "a test is already running");
    const char *to = argv[1];
    const char *at = strrchr(to, '@');
    char dom[DB_NAME_MAX + 1], err[CFG_ERR_MAX];
    if (!at || at == to || strlen(to) > 254 || strchr(to, '<') || strchr(to, '>') ||
        strchr(to, ' ') || cfg_check_domain(at + 1, dom, err, sizeof err) != 0)
        return console_error(con, "'%s' is not an address like alice@example.com", to);
    memset(&test.route, 0, sizeof test.route);
    int64_t id = console_parse_id(argv[0]);
    if (id) {
        if (db_smarthost_get(cfg_db(), id, &test.route.hosts[0]) != DB_OK)
            return console_error(con, "no smart host with id %lld (see 'smarthost list')",
                                 (long long)id);
        test.route.count = 1;
    } else {
        char d[DB_NAME_MAX + 1];
        if (cfg_check_domain(argv[0], d, err, sizeof err) != 0)
            return console_error(con, "'%s' is neither a smart host id nor a domain", argv[0]);
        db_smarthost_list(cfg_db(), d, add_route_host, &test.route);
        if (!test.route.count)
            return console_error(con, "no smart host for %s", d);
    }
    char host[DB_NAME_MAX + 1], sender[DB_TEXT_MAX], date[CLOCKFMT_RFC5322_LEN];
    cfg_setting_get("hostname", host, sizeof host);
    cfg_setting_get("bounce-address", sender, sizeof sender);
    if (!sender[0])
        snprintf(sender, sizeof sender, "postmaster@%.200s", host);
    int64_t now = hal_clock_wall();
    int n = snprintf(test.body, sizeof test.body,
                     "From: Smart Host Relay <%s>\r\nTo: <%s>\r\n"
                     "Subject: Smart Host Relay test message\r\nDate: %s\r\n"
                     "Message-ID: <test.%lld@%s>\r\n\r\n"
                     "This is a test message from the smart host relay %s.\r\n"
                     "If you read it, mail reaches this mailbox through the smart host.\r\n",
                     sender, to, clockfmt_rfc5322(now, date), (long long)now, host, host);
    if (n <= 0 || (size_t)n >= sizeof test.body)
        return console_error(con, "address too long for a test message");
    memset(&test.job, 0, offsetof(struct outbound_job, arena));
    test.job.in_use = 1;
    snprintf(test.job.sender, sizeof test.job.sender, "%s", sender);
    test.job.mem_body = (const uint8_t *)test.body;
    test.job.mem_len = (size_t)n;
    test.job.size = (uint64_t)n;
    test.job.received = now;
    snprintf(test.job.arena, sizeof test.job.arena, "%s", to);
    test.job.rcpts[0] = test.job.arena;
    test.job.rcpt_count = 1;
    test.con = con;
    test.running = 1;
    console_printf(con, "sending a test message to %s (Ctrl-C cancels)\n", to);
    console_busy(con, test_cancel, NULL);
    if (outbound_start(&test.route, &test.job, &test_ops, &test) != 0) {
        test.running = 0;
        console_done(con);
        return console_error(con, "no free outbound connection; try again");
    }
    return test.running ? CONSOLE_PENDING : 0;
}

/* --- tls ca --- */

#define CA_TEXT_MAX (64 * 1024)

static struct {
    char pem[CA_TEXT_MAX];
    size_t len;
    int overflow;
} ca;

static void ca_line(struct console *con, const char *line, void *ctx)
{
    (void)ctx;
    if (!line) {
        console_error(con, "cancelled; trusted CAs unchanged");
        return;
    }
    if (line[0]) {
        size_t n = strlen(line);
        if (ca.len + n + 2 > sizeof ca.pem)
            ca.overflow = 1;
        else {
            memcpy(ca.pem + ca.len, line, n);
            ca.pem[ca.len + n] = '\n';
            ca.len += n + 1;
        }
        console_ask_line(con, "", ca_line, NULL);
        return;
    }
    /* The empty line ends the paste. */
    char err[CFG_ERR_MAX];
    if (ca.overflow) {
        console_error(con, "more than %d bytes of PEM; trusted CAs unchanged", CA_TEXT_MAX);
        return;
    }
    ca.pem[ca.len] = '\0';
    int count = crypto_tls_ca_set((const uint8_t *)ca.pem, ca.len + 1, err, sizeof err);
    if (count <= 0) {
        console_error(con, "%s; trusted CAs unchanged", count == 0 ? "no certificate found" : err);
        outbound_reload_ca();
        return;
    }
    int rc = db_begin(cfg_db());
    if (rc == DB_OK)
        rc = db_tls_ca_set(cfg_db(), (const uint8_t *)ca.pem, ca.len + 1, hal_clock_wall());
    if (rc == DB_OK)
        rc = db_audit_add(cfg_db(), hal_clock_wall(), "console", "tls ca set");
    if (rc == DB_OK)
        rc = db_commit(cfg_db());
    if (rc != DB_OK) {
        db_rollback(cfg_db());
        outbound_reload_ca();
        console_error(con, "storage error: %s", db_errmsg(cfg_db()));
        return;
    }
    console_printf(con, "ok: %d trusted CA certificate%s\n", count, count == 1 ? "" : "s");
}

static int cmd_tls_ca_set(struct console *con, int argc, char **argv)
{
    (void)argv;
    if (argc != 0)
        return console_usage(con);
    if (!cfg_db())
        return console_error(con, "storage is unavailable (see 'log')");
    memset(&ca, 0, sizeof ca);
    console_printf(con, "paste the CA certificates (PEM), then an empty line:\n");
    console_ask_line(con, "", ca_line, NULL);
    return CONSOLE_PENDING;
}

static int cmd_tls_ca_show(struct console *con, int argc, char **argv)
{
    (void)argv;
    if (argc != 0)
        return console_usage(con);
    int n = crypto_tls_ca_count();
    struct jsonw *j = console_json(con);
    if (j) {
        jsonw_object(j, NULL);
        jsonw_int(j, "trusted_cas", n);
        console_json_end(con);
        return 0;
    }
    console_printf(con, "%d trusted CA certificate%s for tls verify\n", n, n == 1 ? "" : "s");
    return 0;
}

static int cmd_tls_ca_clear(struct console *con, int argc, char **argv)
{
    (void)argv;
    if (argc != 0)
        return console_usage(con);
    if (!cfg_db())
        return console_error(con, "storage is unavailable (see 'log')");
    int rc = db_begin(cfg_db());
    if (rc == DB_OK)
        rc = db_tls_ca_clear(cfg_db());
    if (rc == DB_OK)
        rc = db_audit_add(cfg_db(), hal_clock_wall(), "console", "tls ca clear");
    if (rc == DB_OK)
        rc = db_commit(cfg_db());
    if (rc != DB_OK) {
        db_rollback(cfg_db());
        return console_error(con, "storage error: %s", db_errmsg(cfg_db()));
    }
    outbound_reload_ca();
    console_printf(con, "ok: no trusted CAs; tls verify smart hosts will defer mail\n");
    return 0;
}

static int cmd_tls_ca(struct console *con, int argc, char **argv)
{
    if (argc >= 1 && strcmp(argv[0], "set") == 0)
        return cmd_tls_ca_set(con, argc - 1, argv + 1);
    if (argc >= 1 && strcmp(argv[0], "show") == 0)
        return cmd_tls_ca_show(con, argc - 1, argv + 1);
    if (argc >= 1 && strcmp(argv[0], "clear") == 0)
        return cmd_tls_ca_clear(con, argc - 1, argv + 1);
    return console_usage(con);
}

const struct console_cmd cmd_test_table[] = {
    {"smarthost", "test", "<id|domain> <address>",
     "send a test message through one smart host or a domain's, step by step",
     cmd_smarthost_test},
    {"tls", "ca", "set | show | clear", "CA certificates trusted by tls verify (set: paste PEM)",
     cmd_tls_ca},
    {NULL, NULL, NULL, NULL, NULL},
};
