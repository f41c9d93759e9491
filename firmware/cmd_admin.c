/* cmd_admin.c — logout, passwd, factory-reset; the work is in login.c. */
#include "commands.h"
#include "login.h"

static int cmd_logout(struct console *con, int argc, char **argv)
{
    (void)argv;
    if (argc != 0)
        return console_usage(con);
    return login_logout(con);
}

static int cmd_passwd(struct console *con, int argc, char **argv)
{
    (void)argv;
    if (argc != 0)
        return console_usage(con);
    return login_passwd(con);
}

static int cmd_factory_reset(struct console *con, int argc, char **argv)
{
    (void)argv;
    if (argc != 0)
        return console_usage(con);
    return login_factory_reset(con);
}

const struct console_cmd cmd_admin_table[] = {
    {"logout", NULL, "", "end this console session", cmd_logout},
    {"passwd", NULL, "", "change the admin password (asks the current one first)", cmd_passwd},
    {"factory-reset", NULL, "",
     "erase configuration, queue, TLS identity and admin password; restart as new",
     cmd_factory_reset},
    {NULL, NULL, NULL, NULL, NULL},
};

static int cmd_recovery_help(struct console *con, int argc, char **argv)
{
    (void)argv;
    if (argc != 0)
        return console_usage(con);
    return console_help(con, NULL);
}

/* Recovery mode (power-on with the recovery button held): the way back
 * from a forgotten password, and nothing else. */
const struct console_cmd cmd_recovery_table[] = {
    {"help", NULL, "", "list commands", cmd_recovery_help},
    {"factory-reset", NULL, "",
     "erase configuration, queue, TLS identity and admin password; restart as new",
     cmd_factory_reset},
    {NULL, NULL, NULL, NULL, NULL},
};
