/* log.h — the firmware's log: a RAM ring, never the console.
 *
 * Log lines must not interleave with what an administrator types, so they
 * are kept in a fixed ring that the `log` command reads. The oldest entries
 * are overwritten; memory use never grows. */
#ifndef LOG_H
#define LOG_H

#include <stddef.h>
#include <stdint.h>

enum log_level { LOG_ERR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Text of one entry, truncated beyond this; a log line is a sentence, not a dump. */
#define LOG_TEXT_MAX 160
/* Entries kept; about 20 KiB of RAM. */
#define LOG_RING_ENTRIES 128

struct log_entry {
    uint32_t seq;     /* 1 for the first entry since boot, then +1 */
    uint32_t ms;      /* monotonic time it was written */
    uint8_t level;
    char text[LOG_TEXT_MAX];
};

void log_write(enum log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Number of entries currently held (at most LOG_RING_ENTRIES). */
size_t log_count(void);
/* Entry `i`, 0 = oldest still held; NULL when out of range. */
const struct log_entry *log_get(size_t i);
const char *log_level_name(enum log_level level);

#define log_err(mod, ...) log_write(LOG_ERR, mod, __VA_ARGS__)
#define log_warn(mod, ...) log_write(LOG_WARN, mod, __VA_ARGS__)
#define log_info(mod, ...) log_write(LOG_INFO, mod, __VA_ARGS__)

#endif
