/* commands.h — the console command tables each module contributes. */
#ifndef COMMANDS_H
#define COMMANDS_H

#include "console.h"

extern const struct console_cmd cmd_sys_table[]; /* help, version, log, reboot */
extern const struct console_cmd cmd_net_table[]; /* net show, net set */
extern const struct console_cmd cmd_queue_table[]; /* queue, stats, tls show, inbound-auth */
extern const struct console_cmd cmd_test_table[]; /* smarthost test, tls ca */
extern const struct console_cmd cmd_export_table[]; /* config export */
extern const struct console_cmd cmd_config_table[]; /* domain, smarthost, allow, settings, audit */
extern const struct console_cmd cmd_admin_table[]; /* logout, passwd, factory-reset */
extern const struct console_cmd cmd_recovery_table[]; /* recovery mode: factory-reset */

#endif
