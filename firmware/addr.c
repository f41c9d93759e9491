/* addr.c — address text forms; see addr.h. */
#include "addr.h"

#include <stdio.h>

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
