/* cmd_sys.c — help, version, fw status, log, reboot. */

#include "clocksync.h"
#include "commands.h"
#include "fw.h"
#include "hal_board.h"
#include "hal_bootctl.h"
#include "hal_clock.h"
#include "hal_reset.h"
#include "log.h"

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
    console_printf(con, "Smart Host Relay %s board %s slot %s\n", fw_version_text(),
                   hal_board_name(), slot);
    /* The time in `timezone-offset`, and whether it can be trusted. */
    char now[CLOCKSYNC_LOCAL_LEN], clock[CLOCKSYNC_SERVER_MAX + 128];
    clocksync_format_local(hal_clock_wall(), clock_tz_minutes(), now, sizeof now);
    clock_describe(clock, sizeof clock);
    console_printf(con, "time %s\nclock %s\n", now, clock);
    return 0;
}

/* `fw status`: what runs and whether it is confirmed. The update commands
 * (and the other slot's contents) come with signed updates. */
static int cmd_fw_status(struct console *con, int argc, char **argv)
{
    (void)argv;
    if (argc != 0)
        return console_usage(con);
    struct hal_boot_state boot;
    if (hal_bootctl_state(&boot) != 0)
        return console_error(con, "cannot read the boot state");
    console_printf(con, "running  slot %s, version %s, build %s\n",
                   boot.running == HAL_FLASH_SLOT_B ? "B" : "A", fw_version(), fw_build_id());
    console_printf(con, "state    %s\n",
                   boot.trial ? "trial boot, not confirmed (the next reset reverts)" : "confirmed");
    console_printf(con, "boots    %lu since power-on\n", (unsigned long)boot.boot_count);
    return 0;
}

/* `log [N]`: the last N entries of the RAM log (default 20). */
static int cmd_log(struct console *con, int argc, char **argv)
{
    int n;
    if (console_count_arg(con, argc, argv, 20, LOG_RING_ENTRIES, &n) != 0)
        return -1;
    size_t want = (size_t)n;
    size_t count = log_count();
    size_t first = count > want ? count - want : 0;
    for (size_t i = first; i < count; i++) {
        const struct log_entry *e = log_get(i);
        console_printf(con, "%6lu.%03lu %-5s %s\n", (unsigned long)(e->ms / 1000),
                       (unsigned long)(e->ms % 1000), log_level_name(e->level), e->text);
    }
    return 0;
}

static int cmd_reboot(struct console *con, int argc, char **argv)
{
    (void)argv;
    if (argc != 0)
        return console_usage(con);
    console_printf(con, "rebooting\n");
    log_info("sys", "reboot requested from the console");
    hal_reset();
}

const struct console_cmd cmd_sys_table[] = {
    {"help", NULL, "[command [sub-command]]", "list commands, or the forms of one command",
     cmd_help},
    {"version", NULL, "", "firmware version, build id, board, slot and clock", cmd_version},
    {"log", NULL, "[N]", "last N lines of the log (default 20)", cmd_log},
    {"reboot", NULL, "", "restart the appliance", cmd_reboot},
    {"fw", "status", "", "running firmware: slot, version, build id, confirmed or trial",
     cmd_fw_status},
    {NULL, NULL, NULL, NULL, NULL},
};
