/* log.h — the firmware's log: a RAM ring, never the console.
 *
 * Log lines must not interleave with what an administrator types, so they
 * are kept in a fixed ring that the `log` command reads. The oldest entries
 * are overwritten; memory use never grows.
 *
 * Log lines quote what peers send (AUTH user names, HELO names, addresses,
 * smart-host replies). So that nothing a peer sends can move the operator's
 * cursor, clear the screen or forge a log line, every entry's text is
 * escaped as it is written, whatever the caller passed: control bytes
 * (0x00-0x1F, 0x7F) and bytes >= 0x80 become `\xNN` (two lower-case hex
 * digits) and a backslash becomes `\\`, so a peer that sends the four
 * characters `\x1b` shows as `\\x1b`, never as an escaped ESC. An entry
 * holds printable ASCII only. */
#ifndef LOG_H
#define LOG_H

#include <stddef.h>
#include <stdint.h>

enum log_level { LOG_ERR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Text of one entry, truncated beyond this (after escaping; an escape is
 * never cut in half); a log line is a sentence, not a dump. */
#define LOG_TEXT_MAX 160
/* Entries kept (`log 500` after a busy hour); about 90 KiB of RAM. A board
 * short of RAM may define fewer. */
#ifndef LOG_RING_ENTRIES
#define LOG_RING_ENTRIES 512
#endif

struct log_entry {
    uint32_t seq;     /* 1 for the first entry since boot, then +1 */
    uint32_t ms;      /* monotonic time it was written */
    uint8_t level;
    char text[LOG_TEXT_MAX]; /* "module: message", escaped, NUL-terminated */
};

void log_write(enum log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same, for a line about queued message `queue_id` (> 0): the sink
 * gets the id as data, not just as words in the text. */
void log_write_msg(enum log_level level, const char *module, int64_t queue_id, const char *fmt,
                   ...) __attribute__((format(printf, 4, 5)));

/* One function called with every entry right after it is stored: the
 * remote log (rsyslog.c), which needs lwIP and so cannot live here.
 * `module` is the caller's module name; `queue_id` is 0 unless the line
 * came from log_write_msg. A sink must not block; lines it logs itself
 * are stored but not handed to it again (no recursion). NULL removes it. */
typedef void (*log_sink_fn)(const struct log_entry *e, const char *module, int64_t queue_id);
void log_set_sink(log_sink_fn fn);
/* Number of entries currently held (at most LOG_RING_ENTRIES). */
size_t log_count(void);
/* Entry `i`, 0 = oldest still held; NULL when out of range. */
const struct log_entry *log_get(size_t i);
/* The entry numbered `seq`, or the oldest still held when that one was
 * overwritten; NULL when `seq` was not written yet. For a reader that
 * keeps its place across loop turns while new lines come in. */
const struct log_entry *log_get_seq(uint32_t seq);
/* Number of the newest entry (0 before the first). */
uint32_t log_last_seq(void);
const char *log_level_name(enum log_level level);
/* Escape `len` bytes of `in` as above into `out` (room for `cap` bytes, NUL
 * included); stops before an escape that would not fit. Returns the length
 * written. */
size_t log_escape(char *out, size_t cap, const char *in, size_t len);

#define log_err(mod, ...) log_write(LOG_ERR, mod, __VA_ARGS__)
#define log_warn(mod, ...) log_write(LOG_WARN, mod, __VA_ARGS__)
#define log_info(mod, ...) log_write(LOG_INFO, mod, __VA_ARGS__)

#endif
