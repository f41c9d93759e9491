/* cmd_fw.c — `fw update`, `fw confirm`, `fw revert`: the console's side of
 * firmware updates. The image comes over the console by YMODEM
 * (ymodem.c) and goes into the inactive slot through fwupdate.c. While a
 * transfer runs the UART belongs to it: typed bytes go to the receiver,
 * not the command line, and nothing else is printed. */
#include <stdio.h>
#include <string.h>

#include "bootstate.h"
#include "commands.h"
#include "fwboot.h"
#include "fwupdate.h"
#include "hal_board.h"
#include "hal_bootctl.h"
#include "hal_clock.h"
#include "hal_reset.h"
#include "log.h"
#include "ymodem.h"

static struct {
    struct ymodem_rx rx;
    struct fwupdate up;
    struct console *con;
    void (*raw_write)(const void *data, size_t len);
    int active; /* the UART belongs to the transfer */
    int began;  /* fwupdate_begin() succeeded */
    char err[FWUPDATE_ERR_MAX]; /* why begin() or sink() refused */
} upd;

void cmd_fw_attach(void (*raw_write)(const void *data, size_t len)) { upd.raw_write = raw_write; }

int cmd_fw_transfer_active(void) { return upd.active; }

static void rx_send(void *ctx, const uint8_t *data, size_t len)
{
    (void)ctx;
    upd.raw_write(data, len);
}

static int rx_begin(void *ctx, const char *name, uint32_t size)
{
    (void)ctx;
    (void)name;
    if (fwupdate_begin(&upd.up, size, upd.err, sizeof upd.err) != 0)
        return -1;
    upd.began = 1;
    return 0;
}

static int rx_sink(void *ctx, uint32_t off, const uint8_t *data, size_t len)
{
    (void)ctx;
    return fwupdate_write(&upd.up, off, data, len, upd.err, sizeof upd.err);
}

static const struct ymodem_ops rx_ops = {rx_send, rx_begin, rx_sink};

void cmd_fw_input(const uint8_t *data, size_t len)
{
    ymodem_feed(&upd.rx, hal_clock_ms(), data, len);
}

/* The transfer ended and the line is quiet: check and mark the image, or
 * say why not, and give the UART back to the console. */
static void finish(void)
{
    struct console *con = upd.con;
    upd.active = 0;
    if (upd.rx.status != YMODEM_DONE) {
        if (upd.began)
            fwupdate_abort(&upd.up);
        console_error(con, "update not done: %s; the running firmware is unchanged",
                      upd.err[0] ? upd.err : upd.rx.reason);
        log_warn("fw", "update failed: %s", upd.err[0] ? upd.err : upd.rx.reason);
        console_done(con);
        return;
    }
    struct hal_boot_state boot;
    struct bootstate st;
    hal_bootctl_state(&boot);
    bootstate_load(&st);
    struct imgverify_policy policy;
    hal_bootctl_pubkey(&policy.pubkey_der, &policy.pubkey_len);
    policy.board = hal_board_name();
    /* Never older than what runs, nor than the stored minimum. */
    policy.min_sec_cnt = st.min_sec_cnt > boot.sec_cnt ? st.min_sec_cnt : boot.sec_cnt;
    struct mcuimg m;
    char err[FWUPDATE_ERR_MAX];
    if (fwupdate_finish(&upd.up, &policy, &m, err, sizeof err) != 0) {
        console_error(con, "%s; the running firmware is unchanged", err);
        log_warn("fw", "update refused: %s", err);
    } else {
        char version[32], text[200];
        mcuimg_version_format(&m.version, version, sizeof version);
        snprintf(text, sizeof text, "image %s (%lu bytes) is in slot %c, marked for one test "
                 "boot: type reboot to start it (it reverts unless it confirms itself)", version,
                 (unsigned long)m.img_size, bootstate_slot_letter(upd.up.slot));
        /* In JSON mode the result is the second object (after "ready"). */
        struct jsonw *j = console_json(con);
        if (j) {
            jsonw_object(j, NULL);
            jsonw_bool(j, "ok", 1);
            jsonw_string(j, "message", text);
            jsonw_string(j, "version", version);
            jsonw_uint(j, "size", m.img_size);
            console_json_end(con);
        } else {
            console_printf(con, "ok: %s\n", text);
        }
        log_info("fw", "image %s written to slot %c and marked for test", version,
                 bootstate_slot_letter(upd.up.slot));
    }
    console_done(con);
}

uint32_t cmd_fw_poll(void)
{
    if (!upd.active)
        return UINT32_MAX;
    uint32_t now = hal_clock_ms();
    if (ymodem_poll(&upd.rx, now) != YMODEM_RUNNING && ymodem_settled(&upd.rx, now))
        finish();
    return 50; /* retries, timeouts and the settle time need a turn now and then */
}

/* The console cannot type into a transfer (the UART is the receiver's);
 * this is for whoever ends the session under it (an idle logout). */
static void cancel_transfer(struct console *con, void *ctx)
{
    (void)con;
    (void)ctx;
    ymodem_abort(&upd.rx, hal_clock_ms(), "cancelled on the appliance");
}

static int cmd_fw_update(struct console *con, int argc, char **argv)
{
    (void)argv;
    if (argc != 0)
        return console_usage(con);
    if (!upd.raw_write)
        return console_error(con, "updates are not available on this console");
    struct bootstate st;
    if (bootstate_load(&st) != BOOTSTATE_LOADED)
        return console_error(con, "the boot state cannot be read; no update");
    if (st.trial != BOOTSTATE_NONE && st.trial_started)
        return console_error(con, "confirm or revert the running trial first");
    struct hal_flash_info info;
    if (hal_flash_info(st.active ? HAL_FLASH_SLOT_A : HAL_FLASH_SLOT_B, &info) != 0)
        return console_error(con, "the inactive slot cannot be written");
    static const char ready[] = "start the YMODEM send now (e.g. sz --ymodem image.bin); "
                                "Ctrl-X Ctrl-X cancels";
    /* In JSON mode this is an object of its own, which says the receiver
     * waits (not ok: nothing was done yet); the result follows as a second. */
    struct jsonw *j = console_json(con);
    if (j) {
        jsonw_object(j, NULL);
        jsonw_string(j, "ready", "ymodem");
        jsonw_string(j, "message", ready);
        console_json_end(con);
    } else {
        console_printf(con, "%s\n", ready);
    }
    console_finish(con); /* the line is out before the receiver talks */
    memset(&upd.up, 0, sizeof upd.up);
    upd.err[0] = '\0';
    upd.began = 0;
    upd.con = con;
    upd.active = 1;
    struct ymodem_config cfg = {.max_size = info.size};
    console_busy(con, cancel_transfer, NULL);
    ymodem_init(&upd.rx, &cfg, &rx_ops, NULL, hal_clock_ms());
    return CONSOLE_PENDING;
}

/* What runs (its slot in *slot) and the boot state; 0, or -1 when the
 * state cannot be read. */
static int running(struct hal_boot_state *boot, struct bootstate *st, int *slot)
{
    hal_bootctl_state(boot);
    *slot = boot->running == HAL_FLASH_SLOT_B ? 1 : 0;
    return bootstate_load(st) == BOOTSTATE_LOADED ? 0 : -1;
}

static int cmd_fw_confirm(struct console *con, int argc, char **argv)
{
    (void)argv;
    if (argc != 0)
        return console_usage(con);
    struct hal_boot_state boot;
    struct bootstate st;
    int slot;
    if (running(&boot, &st, &slot) != 0)
        return console_error(con, "the boot state cannot be read");
    if (st.active == slot && st.image[slot] == BOOTSTATE_CONFIRMED) {
        console_printf(con, "ok: slot %c is confirmed\n", bootstate_slot_letter(slot));
        return 0;
    }
    /* Through fwboot, so the trial's deadline no longer applies. */
    if (fwboot_confirm_by_hand() != 0)
        return console_error(con, "slot %c could not be confirmed (see 'log')",
                             bootstate_slot_letter(slot));
    console_printf(con, "ok: slot %c confirmed\n", bootstate_slot_letter(slot));
    return 0;
}

static int cmd_fw_revert(struct console *con, int argc, char **argv)
{
    (void)argv;
    if (argc != 0)
        return console_usage(con);
    struct hal_boot_state boot;
    struct bootstate st;
    int slot;
    if (running(&boot, &st, &slot) != 0 || st.trial != slot || !st.trial_started)
        return console_error(con, "not running a trial: nothing to revert to");
    if (bootstate_revert(&st, "reverted from the console") != 0 || bootstate_store(&st) != 0)
        return console_error(con, "the boot state could not be written; nothing changed");
    console_printf(con, "ok: slot %c marked bad; restarting into slot %c\n",
                   bootstate_slot_letter(slot), bootstate_slot_letter(st.active));
    log_info("fw", "trial of slot %c reverted from the console", bootstate_slot_letter(slot));
    console_finish(con);
    hal_reset();
    return 0;
}

const struct console_cmd cmd_fw_table[] = {
    {"fw", "update", "", "receive a signed image by YMODEM into the other slot, for a test boot",
     cmd_fw_update},
    {"fw", "confirm", "", "confirm the running image (it also confirms itself)", cmd_fw_confirm},
    {"fw", "revert", "", "during a trial: mark it bad and restart into the confirmed slot",
     cmd_fw_revert},
    {NULL, NULL, NULL, NULL, NULL},
};
