/* jsonw.h — a JSON writer that emits as it goes (no tree, no buffer).
 *
 * The console's machine-readable mode prints one object per command, and a
 * long list is produced a few rows at a time as the UART drains, so the
 * writer's state (nesting, "is a comma due") lives in a small struct the
 * caller keeps between steps. Strings are escaped for JSON: quote,
 * backslash and control bytes; bytes that are not valid UTF-8 become
 * U+FFFD, so the output is always valid JSON whatever a peer sent. */
#ifndef JSONW_H
#define JSONW_H

#include <stddef.h>
#include <stdint.h>

#define JSONW_DEPTH_MAX 8

typedef void (*jsonw_sink_fn)(void *ctx, const char *data, size_t len);

struct jsonw {
    jsonw_sink_fn sink;
    void *ctx;
    uint8_t depth;
    uint8_t has_items[JSONW_DEPTH_MAX]; /* a member was written at this level */
    uint8_t is_array[JSONW_DEPTH_MAX];  /* the level is an array, not an object */
    uint8_t failed;                     /* nested too deep: output stopped */
};

void jsonw_init(struct jsonw *w, jsonw_sink_fn sink, void *ctx);

/* Every value takes a `key`: the member name inside an object, NULL inside
 * an array or for the outermost value. */
void jsonw_object(struct jsonw *w, const char *key);
void jsonw_array(struct jsonw *w, const char *key);
/* Close the innermost object or array. */
void jsonw_end(struct jsonw *w);
void jsonw_string(struct jsonw *w, const char *key, const char *value);
void jsonw_string_len(struct jsonw *w, const char *key, const char *value, size_t len);
void jsonw_int(struct jsonw *w, const char *key, int64_t value);
void jsonw_uint(struct jsonw *w, const char *key, uint64_t value);
void jsonw_bool(struct jsonw *w, const char *key, int value);
void jsonw_null(struct jsonw *w, const char *key);
/* Close everything still open (an output cut short ends as valid JSON). */
void jsonw_finish(struct jsonw *w);

#endif
