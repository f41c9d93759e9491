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

#endif
