/* fwsign_args.c — fwsign's command-line parsing; see fwsign_args.h. */
#include "fwsign_args.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errlen,
                                                      const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static struct fwargs_opt *find(struct fwargs_opt *opts, size_t nopts, const char *name,
                               size_t name_len)
{
    for (size_t i = 0; i < nopts; i++)
        if (strlen(opts[i].name) == name_len && memcmp(opts[i].name, name, name_len) == 0)
            return &opts[i];
    return NULL;
}

int fwargs_parse(int argc, char *const *argv, struct fwargs_opt *opts, size_t nopts,
                 const char **pos, size_t maxpos, size_t *npos, char *err, size_t errlen)
{
    for (size_t i = 0; i < nopts; i++)
        opts[i].value = NULL;
    *npos = 0;
    int options_done = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!options_done && strcmp(a, "--") == 0) {
            options_done = 1;
            continue;
        }
        if (options_done || a[0] != '-' || a[1] == '\0') {
            /* A positional argument ("-" alone is one too). */
            if (*npos == maxpos)
                return fail(err, errlen, "unexpected argument '%s'", a);
            pos[(*npos)++] = a;
            continue;
        }
        if (a[1] != '-')
            return fail(err, errlen, "unknown option '%s' (options are --name)", a);
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
        struct fwargs_opt *o = find(opts, nopts, name, name_len);
        if (!o)
            return fail(err, errlen, "unknown option '%s'", a);
        if (o->value)
            return fail(err, errlen, "option '--%s' given twice", o->name);
        if (!o->takes_value) {
            if (eq)
                return fail(err, errlen, "option '--%s' takes no value", o->name);
            o->value = "";
        } else if (eq) {
            o->value = eq + 1;
        } else {
            if (i + 1 == argc)
                return fail(err, errlen, "option '--%s' needs a value", o->name);
            o->value = argv[++i];
        }
    }
    return 0;
}

const char *fwargs_get(const struct fwargs_opt *opts, size_t nopts, const char *name)
{
    for (size_t i = 0; i < nopts; i++)
        if (strcmp(opts[i].name, name) == 0)
            return opts[i].value;
    return NULL;
}

/* Digits of `base` from *p up to `max`; at least one. Advances *p. */
static int digits(const char **p, unsigned base, uint64_t max, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    for (;; s++) {
        unsigned d;
        if (*s >= '0' && *s <= '9')
            d = (unsigned)(*s - '0');
        else if (base == 16 && *s >= 'a' && *s <= 'f')
            d = (unsigned)(*s - 'a' + 10);
        else if (base == 16 && *s >= 'A' && *s <= 'F')
            d = (unsigned)(*s - 'A' + 10);
        else
            break;
        if (v > (max - d) / base)
            return -1; /* v * base + d > max, computed without overflow */
        v = v * base + d;
    }
    if (s == *p)
        return -1;
    *p = s;
    *out = v;
    return 0;
}

static int number(const char *text, uint64_t max, int suffix, uint64_t *out)
{
    const char *p = text;
    unsigned base = 10;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        base = 16;
        p += 2;
    }
    uint64_t v;
    if (digits(&p, base, UINT64_MAX, &v) != 0)
        return -1;
    if (suffix && (*p == 'K' || *p == 'k' || *p == 'M' || *p == 'm')) {
        uint64_t mul = (*p == 'K' || *p == 'k') ? 1024u : 1024u * 1024u;
        if (v > UINT64_MAX / mul)
            return -1;
        v *= mul;
        p++;
    }
    if (*p || v > max)
        return -1;
    *out = v;
    return 0;
}

int fwargs_number(const char *text, uint64_t max, uint64_t *out)
{
    return number(text, max, 0, out);
}

int fwargs_size(const char *text, uint64_t max, uint64_t *out)
{
    return number(text, max, 1, out);
}
