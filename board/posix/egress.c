/* egress.c — the simulated wire's egress filter; see egress.h. */
#include "egress.h"

#include <stdio.h>

#define ETH_HDR_LEN 14
#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_ARP 0x0806
#define IPPROTO_UDP_NUM 17
#define DHCP_SERVER_PORT 67
#define IPV4_BROADCAST 0xFFFFFFFFu

static uint16_t be16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static uint32_t be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* A unicast host of the policy's subnet (tap mode); never its network or
 * broadcast address, which would reach every host on the bridge. */
static int in_subnet(const struct egress_policy *policy, uint32_t addr)
{
    uint32_t mask = policy->subnet_mask;
    return mask != 0 && (addr & mask) == policy->subnet && (addr & ~mask) != 0 &&
           (addr & ~mask) != ~mask;
}

/* ARP for IPv4 over Ethernet: 28 bytes. Pass requests/replies about the host
 * alias or a host of the subnet, and gratuitous announcements of our own
 * address (sender == target), which reach no other host. */
static enum egress_verdict check_arp(const struct egress_policy *policy,
                                     const uint8_t *arp, size_t len)
{
    if (len < 28 || be16(arp) != 1 || be16(arp + 2) != ETHERTYPE_IPV4 ||
        arp[4] != 6 || arp[5] != 4)
        return EGRESS_DROP;
    uint32_t sender = be32(arp + 14), target = be32(arp + 24);
    if (target == policy->host_alias || in_subnet(policy, target) || sender == target)
        return EGRESS_PASS;
    return EGRESS_DROP;
}

static enum egress_verdict check_ipv4(const struct egress_policy *policy,
                                      const uint8_t *ip, size_t len)
{
    if (len < 20 || (ip[0] >> 4) != 4)
        return EGRESS_DROP;
    size_t ihl = (size_t)(ip[0] & 0x0F) * 4;
    if (ihl < 20 || ihl > len)
        return EGRESS_DROP;
    uint32_t dst = be32(ip + 16);
    if (dst == policy->host_alias || in_subnet(policy, dst))
        return EGRESS_PASS;
    /* DHCP DISCOVER/REQUEST go to the limited broadcast before we have an
     * address; that is the only broadcast the wire's DHCP server answers. Fragments (offset
     * or MF set) cannot be checked for the port and are refused. */
    int fragmented = (be16(ip + 6) & 0x3FFF) != 0;
    if (dst == IPV4_BROADCAST && ip[9] == IPPROTO_UDP_NUM && !fragmented &&
        len >= ihl + 8 && be16(ip + ihl + 2) == DHCP_SERVER_PORT)
        return EGRESS_PASS;
    return EGRESS_DROP;
}

enum egress_verdict egress_check(const struct egress_policy *policy,
                                 const uint8_t *frame, size_t len)
{
    if (len < ETH_HDR_LEN)
        return EGRESS_DROP;
    switch (be16(frame + 12)) {
    case ETHERTYPE_ARP:
        return check_arp(policy, frame + ETH_HDR_LEN, len - ETH_HDR_LEN);
    case ETHERTYPE_IPV4:
        return check_ipv4(policy, frame + ETH_HDR_LEN, len - ETH_HDR_LEN);
    default:
        return EGRESS_DROP; /* IPv6, VLAN tags, anything else */
    }
}

static void ip_text(uint32_t a, char *out, size_t cap)
{
    snprintf(out, cap, "%u.%u.%u.%u", (unsigned)(a >> 24), (unsigned)(a >> 16) & 255,
             (unsigned)(a >> 8) & 255, (unsigned)a & 255);
}

void egress_describe(const uint8_t *frame, size_t len, char *out, size_t cap)
{
    char src[16], dst[16];
    if (len < ETH_HDR_LEN) {
        snprintf(out, cap, "runt frame of %zu bytes", len);
        return;
    }
    uint16_t type = be16(frame + 12);
    const uint8_t *p = frame + ETH_HDR_LEN;
    size_t n = len - ETH_HDR_LEN;
    if (type == ETHERTYPE_ARP && n >= 28) {
        ip_text(be32(p + 24), dst, sizeof dst);
        snprintf(out, cap, "arp %s %s", be16(p + 6) == 1 ? "who-has" : "reply to", dst);
    } else if (type == ETHERTYPE_IPV4 && n >= 20) {
        ip_text(be32(p + 12), src, sizeof src);
        ip_text(be32(p + 16), dst, sizeof dst);
        size_t ihl = (size_t)(p[0] & 0x0F) * 4;
        const char *proto = p[9] == 6 ? "tcp" : p[9] == IPPROTO_UDP_NUM ? "udp" : p[9] == 1 ? "icmp" : NULL;
        if (proto && p[9] != 1 && n >= ihl + 4)
            snprintf(out, cap, "ipv4 %s -> %s %s port %u", src, dst, proto, be16(p + ihl + 2));
        else if (proto)
            snprintf(out, cap, "ipv4 %s -> %s %s", src, dst, proto);
        else
            snprintf(out, cap, "ipv4 %s -> %s protocol %u", src, dst, p[9]);
    } else {
        snprintf(out, cap, "ethertype 0x%04x, %zu bytes", type, len);
    }
}
