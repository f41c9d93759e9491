/* fw_main.c — boot banner, then the one event loop. */
#include "fw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clocksync.h"
#include "commands.h"
#include "config.h"
#include "crypto.h"
#include "db.h"
#include "db_config.h"
#include "console.h"
#include "fwboot.h"
#include "fwnet.h"
#include "hal_board.h"
#include "hal_bootctl.h"
#include "hal_clock.h"
#include "hal_event.h"
#include "hal_heap.h"
#include "hal_reset.h"
#include "hal_storage.h"
#include "hal_uart.h"
#include "hal_watchdog.h"
#include "delivery.h"
#include "inbound.h"
#include "outbound.h"
#include "log.h"
#include "login.h"
#include "rsyslog.h"
#include "shr_buildinfo.h"
#include "spool.h"
#include "uartq.h"

#define CONSOLE_PROMPT "relay> "
#define RECOVERY_PROMPT "recovery> "
#define UART_CHUNK 256 /* bytes taken from the UART per read */
/* The heap's peak for `stats`, where the board can only sample it: often
 * enough to catch a busy minute, rare enough to cost nothing. */
#define HEAP_SAMPLE_MS 1000

static const struct console_cmd *const console_tables[] = {
    cmd_sys_table,
    cmd_net_table,
    cmd_config_table,
    cmd_queue_table,
    cmd_test_table,
    cmd_export_table,
    cmd_admin_table,
    cmd_fw_table,
    NULL,
};

static const struct console_cmd *const recovery_tables[] = {
    cmd_recovery_table,
    NULL,
};

static struct console console;

const char *fw_version_text(void) { return SHR_VERSION " (build " SHR_BUILD_ID ")"; }
const char *fw_version(void) { return SHR_VERSION; }
const char *fw_build_id(void) { return SHR_BUILD_ID; }

static void uart_write(void *ctx, const char *data, size_t len)
{
    (void)ctx;
    uartq_write(data, len);
}

/* Room for a long output's next rows: none while the line is behind (a
 * big row spilled past its window), else what the queue has free. */
static size_t uart_room(void *ctx)
{
    (void)ctx;
    uartq_flush();
    return hal_uart_tx_room() ? uartq_room() : 0;
}

static void uart_raw(const void *data, size_t len) { uartq_write(data, len); }

static void uart_drain(void *ctx)
{
    (void)ctx;
    uartq_drain();
}

static void print_banner(void)
{
    struct hal_boot_state boot = {.running = HAL_FLASH_SLOT_A};
    hal_bootctl_state(&boot);
    char banner[256];
    int n = snprintf(banner, sizeof banner,
                     "\r\nSmart Host Relay %s on %s, slot %s%s, reset: %s\r\n",
                     fw_version_text(), hal_board_name(),
                     boot.running == HAL_FLASH_SLOT_B ? "B" : "A", boot.trial ? " (trial)" : "",
                     hal_reset_cause_name(hal_reset_cause()));
    if (n > 0)
        uartq_write(banner, (size_t)n < sizeof banner ? (size_t)n : sizeof banner - 1);
    log_info("boot", "Smart Host Relay %s, reset cause %s, boot %lu", fw_version_text(),
             hal_reset_cause_name(hal_reset_cause()), (unsigned long)boot.boot_count);
}

static void boot_say(const char *text)
{
    uartq_write(text, strlen(text));
}

/* Open the database; without it the appliance still boots, answers on the
 * console and says why configuration is unavailable. */
static void start_storage(void)
{
    char err[256], line[320];
    if (crypto_init() != 0) {
        log_err("boot", "crypto init failed: secrets cannot be sealed or opened");
        boot_say("storage: crypto unavailable (see 'log')\r\n");
    }
    struct db *db = NULL;
    int rc = db_open(&db, hal_storage_db_path(), err, sizeof err);
    if (rc != DB_OK) {
        log_err("db", "%s", err);
        snprintf(line, sizeof line, "storage: unavailable: %s\r\n", err);
        boot_say(line);
        cfg_init(NULL);
        return;
    }
    if (db_health(db)) {
        log_err("db", "quick_check: %s", db_health(db));
        snprintf(line, sizeof line, "storage: database check failed: %s\r\n", db_health(db));
        boot_say(line);
    }
    log_info("db", "schema %lu.%lu", (unsigned long)DB_VERSION_MAJOR(db_version(db)),
             (unsigned long)DB_VERSION_MINOR(db_version(db)));
    cfg_init(db);
    if (spool_init(db) != 0)
        log_err("db", "queue check failed: %s", db_errmsg(db));
}

/* A revert since the last boot is logged once, by the firmware that runs
 * after it (the database remembers which count was reported). */
#define REVERTS_SEEN_KEY "fw.reverts-seen"

static void report_reverts(void)
{
    char v[16];
    uint32_t seen = 0;
    if (!cfg_db())
        return;
    if (db_setting_get(cfg_db(), REVERTS_SEEN_KEY, v, sizeof v) == DB_OK)
        seen = (uint32_t)strtoul(v, NULL, 10);
    if (fwboot_report_reverts(&seen)) {
        snprintf(v, sizeof v, "%lu", (unsigned long)seen);
        if (db_setting_set(cfg_db(), REVERTS_SEEN_KEY, v) != DB_OK)
            log_err("fw", "could not record the revert as reported");
    }
}

/* Typed input, no more than the console can take: while a command runs
 * its typeahead is bounded, and a paste beyond it waits in the UART (whose
 * flow control holds the sender back) instead of being dropped. */
static void drain_uart(void)
{
    uint8_t buf[UART_CHUNK];
    int n;
    if (cmd_fw_transfer_active()) { /* an upload owns the UART, to its end */
        while ((n = hal_uart_read(buf, sizeof buf)) > 0)
            cmd_fw_input(buf, (size_t)n);
        return;
    }
    for (;;) {
        size_t room = console_input_room(&console);
        n = hal_uart_read(buf, room < sizeof buf ? room : sizeof buf);
        if (n <= 0)
            break;
        login_input(buf, (size_t)n);
    }
}

void fw_main(void)
{
    print_banner();
    fwboot_init();
    if (hal_watchdog_start(FW_WATCHDOG_MS) != 0)
        log_err("boot", "watchdog did not start");
    /* Before storage: whatever boot stamps (a first-boot certificate, the
     * queue check) gets the best time known, not 1970. */
    clock_boot(fwnet_sntp_config);
    clock_on_step(dlv_clock_stepped);
    /* The admin record before storage: it holds the key epoch every key
     * derived from the device secret depends on. */
    int recovery = hal_board_recovery_requested();
    if (recovery)
        console_init(&console, recovery_tables, RECOVERY_PROMPT, uart_write, NULL);
    else
        console_init(&console, console_tables, CONSOLE_PROMPT, uart_write, NULL);
    console_set_tx_room(&console, uart_room);
    console_set_drain(&console, uart_drain);
    cmd_fw_attach(uart_raw);
    login_init(&console, recovery);
    start_storage();
    report_reverts();
    login_storage_ready();
    /* lwIP keeps a pointer to the hostname, not a copy. */
    static char hostname[DB_NAME_MAX + 1];
    cfg_setting_get("hostname", hostname, sizeof hostname);
    if (fwnet_init(hostname) != 0)
        log_err("boot", "network did not start");
    struct cfg_net net;
    if (cfg_net_load(&net) == 0) {
        if (net.static_mode && fwnet_use_static(net.addr, net.mask, net.gateway) != 0)
            log_err("boot", "stored static address is invalid; staying on DHCP");
        fwnet_set_dns(0, net.dns[0]);
        fwnet_set_dns(1, net.dns[1]);
    }
    rsyslog_init(); /* lines from here on also go to syslog-target */
    outbound_init(hostname);
    if (cfg_db()) {
        inbound_init(hostname);
        dlv_init(cfg_db(), hostname);
    }
    login_start();
    uint32_t heap_sampled_ms = hal_clock_ms();
    for (;;) {
        hal_watchdog_kick();
        if (hal_clock_ms() - heap_sampled_ms >= HEAP_SAMPLE_MS) {
            heap_sampled_ms = hal_clock_ms();
            hal_heap_sample();
        }
        uint32_t sleep_ms = fwnet_timers();
        uint32_t login_ms = login_poll(); /* a password hash runs a slice per turn */
        if (login_ms < sleep_ms)
            sleep_ms = login_ms;
        struct fwboot_check check = {cfg_db() != NULL, fwnet_netif_up(), inbound_listening()};
        uint32_t boot_ms = fwboot_poll(&check); /* confirm this image once it works */
        if (boot_ms < sleep_ms)
            sleep_ms = boot_ms;
        uint32_t update_ms = cmd_fw_poll();
        if (update_ms < sleep_ms)
            sleep_ms = update_ms;
        /* A long output with room for its next rows goes on at once. */
        uartq_flush();
        if (console_poll(&console))
            sleep_ms = 0;
        drain_uart(); /* input left waiting may fit now that an output ended */
        /* Wake at least twice per watchdog period even with no timer due. */
        if (sleep_ms > FW_WATCHDOG_MS / 2)
            sleep_ms = FW_WATCHDOG_MS / 2;
        if (hal_event_wait(sleep_ms) < 0) {
            /* The link to the board is gone: nothing left to serve. */
            log_err("boot", "board link lost");
            hal_reset();
        }
        fwnet_input();
        clock_poll();
        drain_uart();
        rsyslog_poll();
        /* Messages finished during this turn share one commit. */
        if (inbound_poll() > 0)
            dlv_kick();
        /* No delivery before the network can carry it (the DHCP lease
         * after a reset, a link down): an attempt then fails at once for
         * a reason of ours, and would count and wait out a backoff. */
        if (fwnet_ready())
            dlv_poll();
        fwnet_flush_acks();
    }
}
