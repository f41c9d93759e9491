/* hoststats.h — per-smart-host counters since boot, for `stats`.
 *
 * A bounded table in RAM keyed by the smart host's row id: when it is full,
 * the host counted least recently gives its entry to the new one (its
 * counts are lost; `stats` says how many hosts were dropped). Pure logic,
 * no I/O: outbound.c owns one table and counts into it; tests drive it
 * directly. Nothing survives a reset. */
#ifndef HOSTSTATS_H
#define HOSTSTATS_H

#include <stdint.h>

/* Smart hosts remembered at once. A domain routes to at most 8
 * (OUTBOUND_ROUTE_MAX) and a site has a handful of domains: 32 covers the
 * hosts in use, and a typo'd host tried for a day does not push them out
 * unless 32 others were counted after it. */
#define HOSTSTATS_MAX 32
/* "host:port": a DNS name (253) plus ":65535" and the terminator. */
#define HOSTSTATS_NAME_MAX 262

enum hoststats_counter {
    HOSTSTATS_CONNECTIONS, /* TCP connections that opened */
    HOSTSTATS_DELIVERED,   /* recipients the host accepted (2xx) */
    HOSTSTATS_DEFERRED,    /* recipients left for a retry: 4xx, or no answer */
    HOSTSTATS_REFUSED,     /* recipients the host refused for good (5xx) */
    HOSTSTATS_TLS,         /* TLS sessions established */
    HOSTSTATS_DOWNGRADES,  /* failed handshakes under `may`: went on in plaintext */
    HOSTSTATS_COUNTERS
};

struct hoststats_entry {
    int64_t id;                    /* smart host row id; 0 = free slot */
    char name[HOSTSTATS_NAME_MAX]; /* host:port as last counted */
    uint64_t count[HOSTSTATS_COUNTERS];
    uint64_t used; /* table clock at the last count: the LRU order */
};

struct hoststats {
    struct hoststats_entry e[HOSTSTATS_MAX];
    uint64_t clock;   /* bumped on every count */
    uint64_t dropped; /* hosts whose entry went to another */
};

void hoststats_init(struct hoststats *t);
/* Add n to one counter of smart host `id` (a row id, > 0), reached as
 * host:port. The name is refreshed at every count (`smarthost set` may
 * change it). Ignored when id <= 0. */
void hoststats_add(struct hoststats *t, int64_t id, const char *host, int port,
                   enum hoststats_counter which, uint64_t n);
/* Copy the entries in use into out by ascending id, the lowest `max` ids
 * when there are more; returns how many. */
int hoststats_list(const struct hoststats *t, struct hoststats_entry *out, int max);

#endif
