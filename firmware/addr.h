/* addr.h — text forms of network addresses, without lwIP or OS headers.
 *
 * IPv4 addresses are uint32_t in host byte order. Parsing is strict: four
 * decimal parts 0..255, no leading zeros (they mean octal elsewhere), no
 * spaces, nothing after. */
#ifndef ADDR_H
#define ADDR_H

#include <stdint.h>

#define ADDR_IP4_STRLEN 16 /* "255.255.255.255" and its NUL */

/* Returns 0 and sets *out, or -1 when `text` is not a dotted quad. */
int addr_ip4_parse(const char *text, uint32_t *out);
/* Writes the dotted quad into buf; returns buf. */
char *addr_ip4_format(uint32_t addr, char buf[ADDR_IP4_STRLEN]);
/* Netmask for a prefix length 0..32. */
uint32_t addr_ip4_mask(unsigned prefix);
/* Prefix length of a contiguous mask, or -1 when the mask has holes. */
int addr_ip4_prefix(uint32_t mask);

#define ADDR_IP6_STRLEN 46 /* longest text form, with an embedded IPv4 tail */

/* IPv6 text (RFC 4291 2.2: hex groups, one "::", optional dotted IPv4 tail)
 * into 16 bytes, network order. No zone ids, no brackets. 0 or -1. */
int addr_ip6_parse(const char *text, uint8_t out[16]);
/* Canonical text (RFC 5952: lower case, longest zero run as "::"). */
char *addr_ip6_format(const uint8_t addr[16], char buf[ADDR_IP6_STRLEN]);

/* A network in either family; IPv4 uses the first 4 bytes of addr. */
struct addr_net {
    uint8_t family; /* 4 or 6 */
    uint8_t prefix; /* 0..32 or 0..128 */
    uint8_t addr[16];
};

#define ADDR_NET_STRLEN (ADDR_IP6_STRLEN + 4)

enum addr_net_err {
    ADDR_NET_OK = 0,
    ADDR_NET_BAD_ADDR = -1,   /* neither an IPv4 nor an IPv6 address */
    ADDR_NET_BAD_PREFIX = -2, /* prefix not a number in range */
    ADDR_NET_HOST_BITS = -3,  /* bits set beyond the prefix */
};

/* "addr/prefix", or a bare address meaning a single host (/32, /128). */
enum addr_net_err addr_net_parse(const char *text, struct addr_net *net);
/* Canonical "addr/prefix". */
char *addr_net_format(const struct addr_net *net, char buf[ADDR_NET_STRLEN]);
/* 1 when `net` has no bits set beyond its prefix. */
int addr_net_is_network(const struct addr_net *net);
/* Clear the bits beyond the prefix (for "did you mean" hints). */
void addr_net_mask_host(struct addr_net *net);

#endif
