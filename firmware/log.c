/* log.c — RAM log ring; see log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>

#include "hal_clock.h"

static struct log_entry ring[LOG_RING_ENTRIES];
static uint32_t written; /* total entries ever written since boot */

void log_write(enum log_level level, const char *module, const char *fmt, ...)
{
    struct log_entry *e = &ring[written % LOG_RING_ENTRIES];
    written++;
    e->seq = written;
    e->ms = hal_clock_ms();
    e->level = (uint8_t)level;
    int n = snprintf(e->text, sizeof e->text, "%s: ", module);
    if (n < 0 || (size_t)n >= sizeof e->text)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->text + n, sizeof e->text - (size_t)n, fmt, ap);
    va_end(ap);
}

size_t log_count(void)
{
    return written < LOG_RING_ENTRIES ? written : LOG_RING_ENTRIES;
}

const struct log_entry *log_get(size_t i)
{
    size_t count = log_count();
    if (i >= count)
        return NULL;
    size_t oldest = written - count;
    return &ring[(oldest + i) % LOG_RING_ENTRIES];
}

const char *log_level_name(enum log_level level)
{
    switch (level) {
    case LOG_ERR: return "error";
    case LOG_WARN: return "warn";
    case LOG_INFO: return "info";
    case LOG_DEBUG: return "debug";
    }
    return "?";
}
