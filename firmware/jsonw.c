/* jsonw.c — streaming JSON writer; see jsonw.h. */
#include "jsonw.h"

#include <stdio.h>
#include <string.h>

void jsonw_init(struct jsonw *w, jsonw_sink_fn sink, void *ctx)
{
    memset(w, 0, sizeof *w);
    w->sink = sink;
    w->ctx = ctx;
}

static void put(struct jsonw *w, const char *s, size_t n)
{
    if (n)
        w->sink(w->ctx, s, n);
}

/* Length of the valid UTF-8 sequence starting at s (1..4), or 0. */
static size_t utf8_len(const unsigned char *s, size_t left)
{
    size_t n;
    uint32_t cp;
    if (s[0] < 0xC2)
        return 0; /* continuation byte or overlong lead */
    if (s[0] < 0xE0) {
        n = 2;
        cp = s[0] & 0x1F;
    } else if (s[0] < 0xF0) {
        n = 3;
        cp = s[0] & 0x0F;
    } else if (s[0] < 0xF5) {
        n = 4;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }
    if (left < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0; /* overlong, out of range, or a surrogate */
    return n;
}

static void put_quoted(struct jsonw *w, const char *value, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)value;
    size_t run = 0; /* bytes before s + i that need no escaping, not yet written */
    put(w, "\"", 1);
    for (size_t i = 0; i < len;) {
        unsigned char c = s[i];
        char esc[8];
        size_t esc_len = 0, take = 1;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            esc_len = 2;
        } else if (c < 0x20 || c == 0x7F) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            esc_len = 6;
        } else if (c >= 0x80) {
            take = utf8_len(s + i, len - i);
            if (!take) {
                memcpy(esc, "\\ufffd", 6);
                esc_len = 6;
                take = 1;
            }
        }
        if (esc_len) {
            put(w, (const char *)s + i - run, run);
            run = 0;
            put(w, esc, esc_len);
        } else {
            run += take;
        }
        i += take;
    }
    put(w, (const char *)s + len - run, run);
    put(w, "\"", 1);
}

/* The comma and member name before a value; 0 when output has stopped. */
static int begin_value(struct jsonw *w, const char *key)
{
    if (w->failed)
        return 0;
    if (w->depth > 0) {
        if (w->has_items[w->depth - 1])
            put(w, ",", 1);
        w->has_items[w->depth - 1] = 1;
    }
    if (key) {
        put_quoted(w, key, strlen(key));
        put(w, ":", 1);
    }
    return 1;
}

static void open_level(struct jsonw *w, const char *key, const char *brace)
{
    if (w->depth == JSONW_DEPTH_MAX) {
        w->failed = 1;
        return;
    }
    if (!begin_value(w, key))
        return;
    put(w, brace, 1);
    w->is_array[w->depth] = brace[0] == '[';
    w->has_items[w->depth++] = 0;
}

void jsonw_object(struct jsonw *w, const char *key) { open_level(w, key, "{"); }

void jsonw_array(struct jsonw *w, const char *key) { open_level(w, key, "["); }

void jsonw_end(struct jsonw *w)
{
    if (w->failed || w->depth == 0)
        return;
    w->depth--;
    put(w, w->is_array[w->depth] ? "]" : "}", 1);
}

void jsonw_string_len(struct jsonw *w, const char *key, const char *value, size_t len)
{
    if (begin_value(w, key))
        put_quoted(w, value, len);
}

void jsonw_string(struct jsonw *w, const char *key, const char *value)
{
    jsonw_string_len(w, key, value ? value : "", value ? strlen(value) : 0);
}

void jsonw_int(struct jsonw *w, const char *key, int64_t value)
{
    char buf[24];
    int n = snprintf(buf, sizeof buf, "%lld", (long long)value);
    if (begin_value(w, key))
        put(w, buf, (size_t)n);
}

void jsonw_uint(struct jsonw *w, const char *key, uint64_t value)
{
    char buf[24];
    int n = snprintf(buf, sizeof buf, "%llu", (unsigned long long)value);
    if (begin_value(w, key))
        put(w, buf, (size_t)n);
}

void jsonw_bool(struct jsonw *w, const char *key, int value)
{
    if (begin_value(w, key))
        put(w, value ? "true" : "false", value ? 4 : 5);
}

void jsonw_null(struct jsonw *w, const char *key)
{
    if (begin_value(w, key))
        put(w, "null", 4);
}

void jsonw_finish(struct jsonw *w)
{
    while (!w->failed && w->depth > 0)
        jsonw_end(w);
}
