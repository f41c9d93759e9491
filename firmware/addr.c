/* addr.c — address text forms; see addr.h. */
#include "addr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int addr_ip4_parse(const char *text, uint32_t *out)
{
    uint32_t addr = 0;
    const char *p = text;
    for (int part = 0; part < 4; part++) {
        if (part > 0 && *p++ != '.')
            return -1;
        if (*p < '0' || *p > '9')
            return -1;
        if (*p == '0' && p[1] >= '0' && p[1] <= '9')
            return -1; /* leading zero */
        unsigned v = 0;
        int digits = 0;
        while (*p >= '0' && *p <= '9' && digits < 4) {
            v = v * 10 + (unsigned)(*p++ - '0');
            digits++;
        }
        if (v > 255 || digits > 3)
            return -1;
        addr = (addr << 8) | v;
    }
    if (*p != '\0')
        return -1;
    *out = addr;
    return 0;
}

char *addr_ip4_format(uint32_t addr, char buf[ADDR_IP4_STRLEN])
{
    snprintf(buf, ADDR_IP4_STRLEN, "%u.%u.%u.%u", (unsigned)(addr >> 24) & 255,
             (unsigned)(addr >> 16) & 255, (unsigned)(addr >> 8) & 255, (unsigned)addr & 255);
    return buf;
}

uint32_t addr_ip4_mask(unsigned prefix)
{
    if (prefix == 0)
        return 0;
    if (prefix >= 32)
        return 0xFFFFFFFFu;
    return 0xFFFFFFFFu << (32 - prefix);
}

int addr_ip4_prefix(uint32_t mask)
{
    uint32_t inverted = ~mask;
    /* A contiguous mask's complement is 2^k - 1. */
    if ((inverted & (inverted + 1)) != 0)
        return -1;
    int prefix = 0;
    while (mask & 0x80000000u) {
        prefix++;
        mask <<= 1;
    }
    return prefix;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int addr_ip6_parse(const char *text, uint8_t out[16])
{
    uint16_t groups[8];
    int n = 0, gap = -1; /* gap: group index where "::" stands */
    const char *p = text;
    if (p[0] == ':') {
        if (p[1] != ':')
            return -1;
        gap = 0;
        p += 2;
    }
    while (*p) {
        if (n == 8)
            return -1;
        /* A dotted IPv4 tail takes the last two groups. */
        const char *end = p;
        while (*end && *end != ':')
            end++;
        if (!*end && memchr(p, '.', (size_t)(end - p))) {
            uint32_t v4;
            if (n > 6 || addr_ip4_parse(p, &v4) != 0)
                return -1;
            groups[n++] = (uint16_t)(v4 >> 16);
            groups[n++] = (uint16_t)v4;
            p = end;
            break;
        }
        int digits = 0;
        unsigned v = 0;
        int h;
        while ((h = hexval(*p)) >= 0) {
            if (++digits > 4)
                return -1;
            v = (v << 4) | (unsigned)h;
            p++;
        }
        if (digits == 0)
            return -1;
        groups[n++] = (uint16_t)v;
        if (*p == ':') {
            p++;
            if (*p == ':') {
                if (gap >= 0)
                    return -1; /* only one "::" */
                gap = n;
                p++;
            } else if (!*p) {
                return -1; /* trailing single colon */
            }
        } else if (*p) {
            return -1;
        }
    }
    if (gap < 0 ? n != 8 : n > 7)
        return -1;
    int zeros = 8 - n;
    int o = 0;
    for (int i = 0; i < n; i++) {
        if (i == gap)
            for (int z = 0; z < zeros; z++, o++)
                out[2 * o] = out[2 * o + 1] = 0;
        out[2 * o] = (uint8_t)(groups[i] >> 8);
        out[2 * o + 1] = (uint8_t)groups[i];
        o++;
    }
    if (gap == n)
        for (int z = 0; z < zeros; z++, o++)
            out[2 * o] = out[2 * o + 1] = 0;
    return 0;
}

char *addr_ip6_format(const uint8_t addr[16], char buf[ADDR_IP6_STRLEN])
{
    uint16_t g[8];
    for (int i = 0; i < 8; i++)
        g[i] = (uint16_t)((addr[2 * i] << 8) | addr[2 * i + 1]);
    int best = -1, best_len = 1; /* RFC 5952: a single zero group stays "0" */
    for (int i = 0; i < 8;) {
        if (g[i]) {
            i++;
            continue;
        }
        int j = i;
        while (j < 8 && !g[j])
            j++;
        if (j - i > best_len) {
            best = i;
            best_len = j - i;
        }
        i = j;
    }
    size_t o = 0;
    for (int i = 0; i < 8; i++) {
        if (i == best) {
            o += (size_t)snprintf(buf + o, ADDR_IP6_STRLEN - o, "::");
            i += best_len - 1;
            continue;
        }
        int sep = i > 0 && !(best >= 0 && i == best + best_len);
        o += (size_t)snprintf(buf + o, ADDR_IP6_STRLEN - o, "%s%x", sep ? ":" : "", g[i]);
    }
    return buf;
}

enum addr_net_err addr_net_parse(const char *text, struct addr_net *net)
{
    char host[ADDR_IP6_STRLEN];
    const char *slash = strchr(text, '/');
    size_t hlen = slash ? (size_t)(slash - text) : strlen(text);
    if (hlen == 0 || hlen >= sizeof host)
        return ADDR_NET_BAD_ADDR;
    memcpy(host, text, hlen);
    host[hlen] = '\0';
    struct addr_net n;
    memset(&n, 0, sizeof n);
    uint32_t v4;
    if (addr_ip4_parse(host, &v4) == 0) {
        n.family = 4;
        n.addr[0] = (uint8_t)(v4 >> 24);
        n.addr[1] = (uint8_t)(v4 >> 16);
        n.addr[2] = (uint8_t)(v4 >> 8);
        n.addr[3] = (uint8_t)v4;
    } else if (addr_ip6_parse(host, n.addr) == 0) {
        n.family = 6;
    } else {
        return ADDR_NET_BAD_ADDR;
    }
    unsigned max = n.family == 4 ? 32 : 128;
    n.prefix = (uint8_t)max;
    if (slash) {
        const char *d = slash + 1;
        unsigned v = 0;
        int digits = 0;
        while (*d >= '0' && *d <= '9' && digits < 4) {
            v = v * 10 + (unsigned)(*d++ - '0');
            digits++;
        }
        if (digits == 0 || *d || v > max || (digits > 1 && slash[1] == '0'))
            return ADDR_NET_BAD_PREFIX;
        n.prefix = (uint8_t)v;
    }
    *net = n;
    return addr_net_is_network(&n) ? ADDR_NET_OK : ADDR_NET_HOST_BITS;
}

static int bit_set(const uint8_t *addr, unsigned bit) { return (addr[bit / 8] >> (7 - bit % 8)) & 1; }

int addr_net_is_network(const struct addr_net *net)
{
    unsigned bits = net->family == 4 ? 32 : 128;
    for (unsigned b = net->prefix; b < bits; b++)
        if (bit_set(net->addr, b))
            return 0;
    return 1;
}

void addr_net_mask_host(struct addr_net *net)
{
    unsigned bits = net->family == 4 ? 32 : 128;
    for (unsigned b = net->prefix; b < bits; b++)
        net->addr[b / 8] &= (uint8_t)~(1u << (7 - b % 8));
}

char *addr_net_format(const struct addr_net *net, char buf[ADDR_NET_STRLEN])
{
    char a[ADDR_IP6_STRLEN];
    if (net->family == 4) {
        uint32_t v4 = ((uint32_t)net->addr[0] << 24) | ((uint32_t)net->addr[1] << 16) |
                      ((uint32_t)net->addr[2] << 8) | net->addr[3];
        addr_ip4_format(v4, a);
    } else {
        addr_ip6_format(net->addr, a);
    }
    snprintf(buf, ADDR_NET_STRLEN, "%s/%u", a, (unsigned)net->prefix);
    return buf;
}
