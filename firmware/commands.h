/* commands.h — the console command tables each module contributes. */
#ifndef COMMANDS_H
#define COMMANDS_H

#include <stddef.h>
#include <stdint.h>

#include "console.h"

/* A long listing is shown a page at a time as the console drains
 * (console_stream), keeping its place by row id; nothing stays open in
 * the database between pages. */
#define CMD_PAGE_ROWS 8
struct cmd_rows;
/* Show at most `limit` rows with ids above r->after (each row's printer
 * counts r->shown); set *last to the last id shown. Returns a DB_ code. */
typedef int (*cmd_page_fn)(struct cmd_rows *r, int limit, int64_t *last);
struct cmd_rows {
    struct console *con;
    cmd_page_fn page;
    int64_t after; /* id of the last row shown: the next page starts above it */
    int left;      /* rows still to show */
    int shown;     /* rows shown so far */
    const char *empty; /* text mode: the line printed when there were none, or NULL */
    int per_step;      /* rows per step when one row can be large; 0: CMD_PAGE_ROWS */
};
/* Start the listing of the `n` rows above `after` (in JSON mode inside
 * {"<json_key>": [...]}); the handler then returns CONSOLE_PENDING. */
void cmd_rows_start(struct console *con, struct cmd_rows *r, cmd_page_fn page, int64_t after,
                    int n, const char *json_key);

extern const struct console_cmd cmd_sys_table[]; /* help, version, log, reboot */
extern const struct console_cmd cmd_net_table[]; /* net show, net set */
extern const struct console_cmd cmd_queue_table[]; /* queue, stats, tls show, inbound-auth */
extern const struct console_cmd cmd_test_table[]; /* smarthost test, tls ca */
extern const struct console_cmd cmd_export_table[]; /* config export */
extern const struct console_cmd cmd_config_table[]; /* domain, smarthost, allow, settings, audit */
extern const struct console_cmd cmd_admin_table[]; /* logout, passwd, factory-reset */
extern const struct console_cmd cmd_recovery_table[]; /* recovery mode: factory-reset */
extern const struct console_cmd cmd_fw_table[]; /* fw update, confirm, revert */

/* `fw update` (cmd_fw.c): the raw UART write the YMODEM answers go out by
 * (no line-ending translation); while a transfer is active, typed bytes go
 * to cmd_fw_input() instead of the console; cmd_fw_poll() runs its timers
 * every loop turn and returns ms until it needs another. */
void cmd_fw_attach(void (*raw_write)(const void *data, size_t len));
int cmd_fw_transfer_active(void);
void cmd_fw_input(const uint8_t *data, size_t len);
uint32_t cmd_fw_poll(void);

#endif
