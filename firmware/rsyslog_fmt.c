/* rsyslog_fmt.c — RFC 5424 formatting; see rsyslog_fmt.h. */
#include "rsyslog_fmt.h"

#include <stdio.h>
#include <string.h>

#include "clockfmt.h"

/* RFC 5424 6: field limits. */
#define HOSTNAME_MAX 255
#define MSGID_MAX 32
/* A queue id is a number; anything longer than this is not one of ours. */
#define SD_VALUE_MAX 64
/* 9999-12-31T23:59:59Z: FULL-DATE has a four-digit year. */
#define WALL_MAX 253402300799LL

struct out {
    char *buf;
    size_t cap, len;
    int full; /* something did not fit */
};

static void put_char(struct out *o, char c)
{
    if (o->len + 1 >= o->cap) {
        o->full = 1;
        return;
    }
    o->buf[o->len++] = c;
}

static void put_str(struct out *o, const char *s)
{
    for (; *s; s++)
        put_char(o, *s);
}

/* A header field: PRINTUSASCII (33..126) only, at most `max` octets;
 * NILVALUE when empty. Anything else a caller passed becomes '_', so the
 * field can never split into two. */
static void put_field(struct out *o, const char *s, size_t max)
{
    if (!s || !*s) {
        put_char(o, '-');
        return;
    }
    for (size_t i = 0; s[i] && i < max; i++) {
        unsigned char c = (unsigned char)s[i];
        put_char(o, c >= 33 && c <= 126 ? (char)c : '_');
    }
}

static void put_timestamp(struct out *o, int64_t wall)
{
    if (wall < RSYSLOG_WALL_MIN || wall > WALL_MAX) {
        put_char(o, '-');
        return;
    }
    char t[CLOCKFMT_UTC_LEN];
    clockfmt_utc(wall, t); /* "YYYY-MM-DD HH:MM:SS" */
    t[10] = 'T';
    put_str(o, t);
    put_char(o, 'Z');
}

/* RFC 5424 6.3.3: inside PARAM-VALUE, '"', '\' and ']' must be escaped
 * with a backslash. Control bytes cannot be escaped there at all. */
static void put_sd_value(struct out *o, const char *s)
{
    for (size_t i = 0; s[i] && i < SD_VALUE_MAX; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\' || c == ']')
            put_char(o, '\\');
        put_char(o, c >= 32 && c < 127 ? (char)c : '?');
    }
}

int rsyslog_severity(int log_level)
{
    static const int map[] = {3, 4, 6, 7}; /* LOG_ERR, LOG_WARN, LOG_INFO, LOG_DEBUG */
    if (log_level < 0 || log_level > 3)
        return 7;
    return map[log_level];
}

size_t rsyslog_format(char *out, size_t cap, const struct rsyslog_msg *m)
{
    struct out o = {out, cap, 0, 0};
    if (!cap)
        return 0;
    int sev = m->severity >= 0 && m->severity <= 7 ? m->severity : 7;
    char pri[16];
    snprintf(pri, sizeof pri, "<%d>1 ", RSYSLOG_FACILITY_MAIL * 8 + sev);
    put_str(&o, pri);
    put_timestamp(&o, m->wall);
    put_char(&o, ' ');
    put_field(&o, m->hostname, HOSTNAME_MAX);
    put_str(&o, " " RSYSLOG_APP_NAME " - "); /* PROCID: one process, nothing to say */
    put_field(&o, m->msgid, MSGID_MAX);
    put_char(&o, ' ');
    if (m->queue_id && *m->queue_id) {
        put_str(&o, "[" RSYSLOG_SD_ID " queue-id=\"");
        put_sd_value(&o, m->queue_id);
        put_str(&o, "\"]");
    } else {
        put_char(&o, '-');
    }
    /* The header is all or nothing: a cut header would be a different,
     * wrong message. */
    if (o.full) {
        out[0] = '\0';
        return 0;
    }
    if (m->text && *m->text) {
        put_char(&o, ' ');
        for (const char *p = m->text; *p && !o.full; p++) {
            unsigned char c = (unsigned char)*p;
            put_char(&o, c >= 32 && c < 127 ? (char)c : '?');
        }
    }
    out[o.len] = '\0';
    return o.len;
}

int rsyslog_parse_target(const char *text, char *host, size_t hostcap, uint16_t *port)
{
    const char *colon = strchr(text, ':');
    size_t n = colon ? (size_t)(colon - text) : strlen(text);
    if (n == 0 || n >= hostcap)
        return -1;
    unsigned long p = RSYSLOG_PORT_DEFAULT;
    if (colon) {
        const char *d = colon + 1;
        p = 0;
        if (!*d || strlen(d) > 5)
            return -1;
        for (; *d; d++) {
            if (*d < '0' || *d > '9')
                return -1;
            p = p * 10 + (unsigned long)(*d - '0');
        }
        if (p < 1 || p > 65535)
            return -1;
    }
    memcpy(host, text, n);
    host[n] = '\0';
    *port = (uint16_t)p;
    return 0;
}

/* "<word>N" at p, N digits up to a non-alphanumeric byte or the end. */
static int number_after(const char *p, const char *word, char out[RSYSLOG_QID_MAX])
{
    size_t w = strlen(word);
    if (strncmp(p, word, w) != 0)
        return 0;
    p += w;
    size_t n = 0;
    while (p[n] >= '0' && p[n] <= '9')
        n++;
    char after = p[n];
    int alnum = (after >= '0' && after <= '9') || (after >= 'a' && after <= 'z') ||
                (after >= 'A' && after <= 'Z');
    /* Ids are positive int64s: 19 digits at most, no leading zero. */
    if (n == 0 || n > 19 || alnum || p[0] == '0')
        return 0;
    memcpy(out, p, n);
    out[n] = '\0';
    return 1;
}

int rsyslog_queue_id(const char *module, const char *text, char out[RSYSLOG_QID_MAX])
{
    const char *word;
    if (!module || !text)
        return 0;
    if (strcmp(module, "smtp") == 0)
        word = "queued ";
    else if (strcmp(module, "dlv") == 0 || strcmp(module, "spool") == 0)
        word = "message ";
    else
        return 0;
    for (const char *p = text; *p; p++) {
        /* Whole words only: "unqueued 5" is not about message 5. */
        if (p != text && p[-1] != ' ' && p[-1] != '(')
            continue;
        if (number_after(p, word, out))
            return 1;
    }
    return 0;
}
