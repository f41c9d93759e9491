/* nettrace.c — the per-frame trace of the simulated wire; see nettrace.h. */
#include "nettrace.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "boardlog.h"
#include "egress.h"

int nettrace_enabled(void)
{
    static int enabled = -1;
    if (enabled < 0) {
        const char *v = getenv("SHR_BOARD_TRACE");
        enabled = v && *v == '1';
    }
    return enabled;
}

static uint32_t be32_at(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* For an IPv4 TCP frame: " sport S seq N ack N tcpflags 0xFF", so a trace
 * shows sequence numbers (tests check the appliance's ISNs with it);
 * "" for anything else. Honours the IP header length, unlike the fixed
 * offset of the flags byte in the line itself. */
static void trace_tcp(const uint8_t *f, size_t len, char *out, size_t cap)
{
    enum { ETH_HDR = 14, ETHERTYPE_IPV4 = 0x0800, IPPROTO_TCP_NUM = 6, TCP_MIN = 20 };
    out[0] = '\0';
    if (len < ETH_HDR + 20 || ((unsigned)f[12] << 8 | f[13]) != ETHERTYPE_IPV4 ||
        f[ETH_HDR + 9] != IPPROTO_TCP_NUM)
        return;
    size_t ihl = (size_t)(f[ETH_HDR] & 0x0F) * 4;
    if (ihl < 20 || len < ETH_HDR + ihl + TCP_MIN)
        return;
    const uint8_t *t = f + ETH_HDR + ihl;
    snprintf(out, cap, " sport %u seq %lu ack %lu tcpflags 0x%02x", (unsigned)t[0] << 8 | t[1],
             (unsigned long)be32_at(t + 4), (unsigned long)be32_at(t + 8), t[13]);
}

void nettrace_frame(const char *dir, const uint8_t *f, size_t len)
{
    if (!nettrace_enabled())
        return;
    char what[96], tcp[80];
    egress_describe(f, len, what, sizeof what);
    trace_tcp(f, len, tcp, sizeof tcp);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    boardlog("%ld.%06ld %s %s (%zu bytes, flags 0x%02x)%s", (long)ts.tv_sec % 1000,
             ts.tv_nsec / 1000, dir, what, len, len > 47 ? f[47] : 0, tcp);
}

void nettrace_dropped(uint64_t count, const uint8_t *frame, size_t len)
{
    if (count > 10 && count % 1000 != 0)
        return;
    char what[96];
    egress_describe(frame, len, what, sizeof what);
    boardlog("egress dropped #%llu: %s", (unsigned long long)count, what);
}
