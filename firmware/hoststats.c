/* hoststats.c — per-smart-host counters; see hoststats.h. */
#include "hoststats.h"

#include <stdio.h>
#include <string.h>

void hoststats_init(struct hoststats *t) { memset(t, 0, sizeof *t); }

/* The entry for `id`, or a free one, or the least recently counted one
 * (emptied; its loss is counted in t->dropped). */
static struct hoststats_entry *slot(struct hoststats *t, int64_t id)
{
    struct hoststats_entry *free_e = NULL, *oldest = NULL;
    for (int i = 0; i < HOSTSTATS_MAX; i++) {
        struct hoststats_entry *e = &t->e[i];
        if (e->id == id)
            return e;
        if (!e->id) {
            if (!free_e)
                free_e = e;
        } else if (!oldest || e->used < oldest->used) {
            oldest = e;
        }
    }
    struct hoststats_entry *e = free_e ? free_e : oldest;
    if (!free_e)
        t->dropped++;
    memset(e, 0, sizeof *e);
    e->id = id;
    return e;
}

void hoststats_add(struct hoststats *t, int64_t id, const char *host, int port,
                   enum hoststats_counter which, uint64_t n)
{
    if (id <= 0 || which < 0 || which >= HOSTSTATS_COUNTERS)
        return;
    struct hoststats_entry *e = slot(t, id);
    snprintf(e->name, sizeof e->name, "%s:%d", host ? host : "", port);
    e->count[which] += n;
    e->used = ++t->clock;
}

int hoststats_list(const struct hoststats *t, struct hoststats_entry *out, int max)
{
    int n = 0;
    for (int i = 0; i < HOSTSTATS_MAX && max > 0; i++) {
        const struct hoststats_entry *e = &t->e[i];
        if (!e->id)
            continue;
        /* Insertion by id (at most HOSTSTATS_MAX entries); when out is
         * full, a lower id pushes the highest out: the lowest ids are kept. */
        int k;
        if (n < max)
            k = n++;
        else if (e->id < out[max - 1].id)
            k = max - 1;
        else
            continue;
        while (k > 0 && out[k - 1].id > e->id) {
            out[k] = out[k - 1];
            k--;
        }
        out[k] = *e;
    }
    return n;
}
