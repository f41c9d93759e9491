/* cmd_sys.c — help, version, fw status, log, reboot. */

#include "clocksync.h"
#include "commands.h"
#include "fw.h"
#include "hal_board.h"
#include "hal_bootctl.h"
#include "hal_clock.h"
#include "hal_reset.h"
#include "bootstate.h"
#include "fwboot.h"
#include "fwupdate.h"
#include "imgverify.h"
#include "log.h"

#include <stdio.h>
#include <string.h>

static int cmd_help(struct console *con, int argc, char **argv)
{
    if (argc > 2)
        return console_usage(con);
    if (argc < 2)
        return console_help(con, argc == 1 ? argv[0] : NULL);
    return console_help_words(con, argc, argv); /* one form: `help net set` */
}

static int cmd_version(struct console *con, int argc, char **argv)
{
    (void)argv;
    if (argc != 0)
        return console_usage(con);
    struct hal_boot_state boot;
    const char *slot = "?";
    if (hal_bootctl_state(&boot) == 0)
        slot = boot.running == HAL_FLASH_SLOT_B ? "B" : "A";
    else
        boot.version[0] = '\0';
    /* The signed image's version (what was uploaded) next to the build's. */
    const char *image = boot.version[0] ? boot.version : "?";
    /* The time in `timezone-offset`, and whether it can be trusted. */
    char now[CLOCKSYNC_LOCAL_LEN], clock[CLOCKSYNC_SERVER_MAX + 128];
    clocksync_format_local(hal_clock_wall(), clock_tz_minutes(), now, sizeof now);
    clock_describe(clock, sizeof clock);
    struct jsonw *j = console_json(con);
    if (j) {
        const struct clocksync *cs = clock_state();
        jsonw_object(j, NULL);
        jsonw_string(j, "product", "Smart Host Relay");
        jsonw_string(j, "version", fw_version());
        jsonw_string(j, "build", fw_build_id());
        jsonw_string(j, "board", hal_board_name());
        jsonw_string(j, "slot", slot);
        jsonw_string(j, "image_version", image);
        jsonw_int(j, "time", hal_clock_wall());
        jsonw_string(j, "local_time", now);
        jsonw_bool(j, "clock_synchronized", cs->last_sync != 0);
        jsonw_bool(j, "clock_valid", clock_valid());
        if (cs->last_sync) {
            jsonw_int(j, "last_sync", cs->last_sync);
            jsonw_string(j, "ntp_server", cs->server);
        }
        jsonw_string(j, "clock", clock);
        console_json_end(con);
        return 0;
    }
    console_printf(con, "Smart Host Relay %s board %s slot %s image %s\n", fw_version_text(),
                   hal_board_name(), slot, image);
    console_printf(con, "time %s\nclock %s\n", now, clock);
    return 0;
}

/* `fw status`: what runs, whether it is confirmed, and what the boot
 * state says of each slot (a revert's reason included: the RAM log does
 * not survive the reset that caused it). The update commands come with
 * the upload work. */
static const char *run_state(const struct hal_boot_state *boot)
{
    if (fwboot_status() == FWBOOT_CONFIRMED)
        return "confirmed";
    if (fwboot_status() == FWBOOT_FAILED)
        return boot->trial ? "trial boot, could not confirm (the next reset reverts)"
                           : "could not confirm (see 'log')";
    return boot->trial ? "trial boot, self-test running (not confirmed: a reset reverts)"
                       : "self-test running";
}

/* What a slot holds, checked as the boot stage would (against the build's
 * key and board; the counter is shown, not judged). */
struct slot_view {
    int ok;                    /* the image verifies */
    struct mcuimg img;         /* parsed, when it got that far */
    char version[32];
    char sha[17];              /* first 8 bytes of the SHA256 TLV, hex */
    char why[FWUPDATE_ERR_MAX]; /* when not ok */
};

static int read_slot(void *ctx, uint32_t off, void *buf, size_t len)
{
    return hal_flash_read(*(const enum hal_flash_part *)ctx, off, buf, len) == 0 ? 0 : -1;
}

static void view_slot(int slot, struct slot_view *v)
{
    static uint8_t tlv[IMGVERIFY_TLV_BUF];
    enum hal_flash_part part = slot ? HAL_FLASH_SLOT_B : HAL_FLASH_SLOT_A;
    struct hal_flash_info info;
    struct imgverify_policy policy = {NULL, 0, hal_board_name(), 0};
    hal_bootctl_pubkey(&policy.pubkey_der, &policy.pubkey_len);
    memset(v, 0, sizeof *v);
    if (hal_flash_info(part, &info) != 0) {
        snprintf(v->why, sizeof v->why, "no such slot");
        return;
    }
    v->ok = imgverify_check_read(read_slot, &part, info.size, &policy, &v->img, tlv, v->why,
                                 sizeof v->why) == 0;
    if (v->img.sha256) {
        mcuimg_version_format(&v->img.version, v->version, sizeof v->version);
        for (int i = 0; i < 8; i++)
            snprintf(v->sha + 2 * i, 3, "%02x", v->img.sha256[i]);
    }
}

static int cmd_fw_status(struct console *con, int argc, char **argv)
{
    (void)argv;
    if (argc != 0)
        return console_usage(con);
    struct hal_boot_state boot;
    if (hal_bootctl_state(&boot) != 0)
        return console_error(con, "cannot read the boot state");
    struct bootstate st;
    int known = bootstate_load(&st) == BOOTSTATE_LOADED;
    char running = boot.running == HAL_FLASH_SLOT_B ? 'B' : 'A';
    const char *waiting = fwboot_waiting_for();
    struct jsonw *j = console_json(con);
    if (j) {
        jsonw_object(j, NULL);
        jsonw_string_len(j, "slot", &running, 1);
        jsonw_string(j, "version", fw_version());
        jsonw_string(j, "build", fw_build_id());
        jsonw_string(j, "image_version", boot.version);
        jsonw_uint(j, "security_counter", boot.sec_cnt);
        jsonw_bool(j, "confirmed", fwboot_status() == FWBOOT_CONFIRMED);
        jsonw_bool(j, "trial", boot.trial);
        if (waiting[0])
            jsonw_string(j, "waiting_for", waiting);
        jsonw_uint(j, "boots", boot.boot_count);
        if (known) {
            jsonw_array(j, "slots");
            for (int i = 0; i < BOOTSTATE_SLOTS; i++) {
                char letter = bootstate_slot_letter(i);
                jsonw_object(j, NULL);
                jsonw_string_len(j, "slot", &letter, 1);
                jsonw_string(j, "image", bootstate_image_name((enum bootstate_image)st.image[i]));
                jsonw_bool(j, "active", st.active == i);
                jsonw_bool(j, "trial", st.trial == i);
                struct slot_view v;
                view_slot(i, &v);
                jsonw_bool(j, "verified", v.ok);
                if (v.sha[0]) {
                    jsonw_string(j, "image_version", v.version);
                    jsonw_uint(j, "security_counter", v.img.has_sec_cnt ? v.img.sec_cnt : 0);
                    jsonw_string(j, "sha256_prefix", v.sha);
                }
                if (!v.ok)
                    jsonw_string(j, "problem", v.why);
                jsonw_end(j);
            }
            jsonw_end(j);
            jsonw_uint(j, "min_security_counter", st.min_sec_cnt);
            jsonw_uint(j, "reverts", st.reverts);
            jsonw_string(j, "note", st.note);
        }
        console_json_end(con);
        return 0;
    }
    console_printf(con, "running  slot %c, version %s, build %s, image %s (security counter %lu)\n",
                   running, fw_version(), fw_build_id(), boot.version[0] ? boot.version : "?",
                   (unsigned long)boot.sec_cnt);
    console_printf(con, "state    %s%s%s\n", run_state(&boot), waiting[0] ? ", waiting for " : "",
                   waiting);
    if (known) {
        for (int i = 0; i < BOOTSTATE_SLOTS; i++) {
            struct slot_view v;
            view_slot(i, &v);
            console_printf(con, "slot %c   %s%s%s\n", bootstate_slot_letter(i),
                           bootstate_image_name((enum bootstate_image)st.image[i]),
                           st.active == i ? ", active" : "", st.trial == i ? ", trial" : "");
            if (v.sha[0])
                console_printf(con, "         image %s, security counter %lu, sha256 %s..., %s%s\n",
                               v.version,
                               (unsigned long)(v.img.has_sec_cnt ? v.img.sec_cnt : 0), v.sha,
                               v.ok ? "verified" : "refused: ", v.ok ? "" : v.why);
            else if (st.image[i] != BOOTSTATE_EMPTY)
                console_printf(con, "         no image: %s\n", v.why);
        }
        console_printf(con, "minimum  security counter %lu\n", (unsigned long)st.min_sec_cnt);
        if (st.note[0])
            console_printf(con, "last     %s (%lu revert%s in all)\n", st.note,
                           (unsigned long)st.reverts, st.reverts == 1 ? "" : "s");
    } else {
        console_printf(con, "slots    no boot state record\n");
    }
    console_printf(con, "boots    %lu since power-on\n", (unsigned long)boot.boot_count);
    return 0;
}

/* `log [N]`: the last N entries of the RAM log (default 20), a page per
 * step; the lines written meanwhile are not part of it. */
static struct {
    uint32_t next, last; /* entry numbers: next to show, last to show */
} log_listing;

static int log_step(struct console *con, void *ctx, int cancel)
{
    (void)ctx;
    struct jsonw *j = console_json(con);
    for (int i = 0; i < CMD_PAGE_ROWS * 2 && !cancel && log_listing.next <= log_listing.last;
         i++) {
        const struct log_entry *e = log_get_seq(log_listing.next);
        if (!e || e->seq > log_listing.last)
            break; /* past the snapshot: the ring wrapped while a slow reader read */
        /* Overwritten while the reader was slow: go on from the oldest held. */
        log_listing.next = e->seq + 1;
        if (j) {
            jsonw_object(j, NULL);
            jsonw_uint(j, "seq", e->seq);
            jsonw_uint(j, "ms", e->ms);
            jsonw_string(j, "level", log_level_name(e->level));
            jsonw_string(j, "text", e->text);
            jsonw_end(j);
        } else {
            console_printf(con, "%6lu.%03lu %-5s %s\n", (unsigned long)(e->ms / 1000),
                           (unsigned long)(e->ms % 1000), log_level_name(e->level), e->text);
        }
    }
    if (!cancel && log_listing.next <= log_listing.last)
        return 1;
    if (j)
        console_json_end(con);
    return 0;
}

static int cmd_log(struct console *con, int argc, char **argv)
{
    int n;
    if (console_count_arg(con, argc, argv, 20, LOG_RING_ENTRIES, &n) != 0)
        return -1;
    uint32_t count = (uint32_t)log_count();
    log_listing.last = log_last_seq();
    log_listing.next = log_listing.last - (count < (uint32_t)n ? count : (uint32_t)n) + 1;
    struct jsonw *j = console_json(con);
    if (j) {
        jsonw_object(j, NULL);
        jsonw_array(j, "log");
    }
    console_stream(con, log_step, NULL);
    return CONSOLE_PENDING;
}

/* `output json|text`: the session's output mode. The answer comes in the
 * mode the command was typed in. */
static int cmd_output(struct console *con, int argc, char **argv)
{
    if (argc != 1 || (strcmp(argv[0], "json") != 0 && strcmp(argv[0], "text") != 0))
        return console_usage(con);
    int json = strcmp(argv[0], "json") == 0;
    console_printf(con, "ok: output is %s%s\n", argv[0],
                   json ? ": one JSON object per command" : "");
    console_set_json(con, json);
    return 0;
}

static int cmd_reboot(struct console *con, int argc, char **argv)
{
    (void)argv;
    if (argc != 0)
        return console_usage(con);
    console_printf(con, "ok: rebooting\n");
    log_info("sys", "reboot requested from the console");
    console_finish(con); /* the answer reaches the line before the reset */
    hal_reset();
}

const struct console_cmd cmd_sys_table[] = {
    {"help", NULL, "[command [sub-command]]", "list commands, or the forms of one command",
     cmd_help},
    {"version", NULL, "", "firmware version, build id, board, slot and clock", cmd_version},
    {"log", NULL, "[N]", "last N lines of the log (default 20)", cmd_log},
    {"output", NULL, "json|text", "machine-readable output: one JSON object per command", cmd_output},
    {"reboot", NULL, "", "restart the appliance", cmd_reboot},
    {"fw", "status", "", "running firmware: slot, version, build id, confirmed or trial",
     cmd_fw_status},
    {NULL, NULL, NULL, NULL, NULL},
};
