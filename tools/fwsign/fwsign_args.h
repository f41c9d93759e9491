/* fwsign_args.h — fwsign's command-line parsing: options and numbers.
 *
 * Options are "--name VALUE", "--name=VALUE" or a bare "--flag"; they may
 * come before, between or after the positional arguments, and "--" ends
 * them. An unknown option, one given twice, or one missing its value is an
 * error with one line of reason. Numbers are decimal or 0x-prefixed hex,
 * nothing else (no sign, no spaces); sizes may end in K or M (x1024). */
#ifndef FWSIGN_ARGS_H
#define FWSIGN_ARGS_H

#include <stddef.h>
#include <stdint.h>

struct fwargs_opt {
    const char *name;  /* without the leading "--" */
    int takes_value;   /* 0: a flag */
    const char *value; /* set by fwargs_parse(): the value, or "" for a flag seen */
};

/* Parse argv[0..argc) (the command's arguments, not the program or command
 * name). Positional arguments go to pos[] (at most maxpos; *npos says how
 * many). Returns 0, or -1 with the reason in `err`. */
int fwargs_parse(int argc, char *const *argv, struct fwargs_opt *opts, size_t nopts,
                 const char **pos, size_t maxpos, size_t *npos, char *err, size_t errlen);

/* The value of option `name` after fwargs_parse(), or NULL when not given. */
const char *fwargs_get(const struct fwargs_opt *opts, size_t nopts, const char *name);

/* A number up to `max`: decimal or 0x hex. 0 or -1. */
int fwargs_number(const char *text, uint64_t max, uint64_t *out);
/* Like fwargs_number(), also with a K or M suffix (KiB, MiB). 0 or -1. */
int fwargs_size(const char *text, uint64_t max, uint64_t *out);

#endif
