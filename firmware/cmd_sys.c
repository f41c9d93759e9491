/* cmd_sys.c — help, version, log, reboot. */

#include "commands.h"
#include "fw.h"
#include "hal_board.h"
#include "hal_bootctl.h"
#include "hal_reset.h"
#include "log.h"

static int cmd_help(struct console *con, int argc, char **argv)
{
    if (argc > 1)
        return console_usage(con);
    return console_help(con, argc == 1 ? argv[0] : NULL);
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
    {"help", NULL, "[command]", "list commands, or the forms of one command", cmd_help},
    {"version", NULL, "", "firmware version, build id, board and slot", cmd_version},
    {"log", NULL, "[N]", "last N lines of the log (default 20)", cmd_log},
    {"reboot", NULL, "", "restart the appliance", cmd_reboot},
    {NULL, NULL, NULL, NULL, NULL},
};
