/* log.c — RAM log ring; see log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>

#include "hal_clock.h"

static struct log_entry ring[LOG_RING_ENTRIES];
static uint32_t written; /* total entries ever written since boot */
static log_sink_fn sink;
static int in_sink; /* a line logged from inside the sink is not fed back */

void log_set_sink(log_sink_fn fn) { sink = fn; }

size_t log_escape(char *out, size_t cap, const char *in, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    if (!cap)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '\\') {
            if (o + 2 >= cap)
                break;
            out[o++] = '\\';
            out[o++] = '\\';
        } else if (c < 0x20 || c >= 0x7f) {
            if (o + 4 >= cap)
                break;
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        } else {
            if (o + 1 >= cap)
                break;
            out[o++] = (char)c;
        }
    }
    out[o] = '\0';
    return o;
}

static void log_vwrite(enum log_level level, const char *module, int64_t queue_id,
                       const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));
static void log_vwrite(enum log_level level, const char *module, int64_t queue_id,
                       const char *fmt, va_list ap)
{
    /* Formatted first, escaped into the entry second: the raw text is no
     * longer than the entry, since escaping only makes it longer. */
    char raw[LOG_TEXT_MAX];
    int n = snprintf(raw, sizeof raw, "%s: ", module);
    if (n < 0)
        return;
    if ((size_t)n < sizeof raw) {
        int m = vsnprintf(raw + n, sizeof raw - (size_t)n, fmt, ap);
        if (m > 0)
            n += m;
    }
    size_t len = (size_t)n < sizeof raw ? (size_t)n : sizeof raw - 1;
    struct log_entry *e = &ring[written % LOG_RING_ENTRIES];
    written++;
    e->seq = written;
    e->ms = hal_clock_ms();
    e->level = (uint8_t)level;
    log_escape(e->text, sizeof e->text, raw, len);
    if (sink && !in_sink) {
        in_sink = 1;
        sink(e, module, queue_id > 0 ? queue_id : 0);
        in_sink = 0;
    }
}

void log_write(enum log_level level, const char *module, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vwrite(level, module, 0, fmt, ap);
    va_end(ap);
}

void log_write_msg(enum log_level level, const char *module, int64_t queue_id, const char *fmt,
                   ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vwrite(level, module, queue_id, fmt, ap);
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

const struct log_entry *log_get_seq(uint32_t seq)
{
    size_t count = log_count();
    if (seq > written || count == 0)
        return NULL;
    uint32_t oldest = written - (uint32_t)count + 1;
    if (seq < oldest)
        seq = oldest;
    return &ring[(seq - 1) % LOG_RING_ENTRIES];
}

uint32_t log_last_seq(void) { return written; }

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
