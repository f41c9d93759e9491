/* tcpisn.h — TCP initial sequence numbers as RFC 6528 says.
 *
 * lwIP's own choice is a counter (iss += tcp_ticks): whoever opens one
 * connection can predict the next ISN and complete a handshake blind from a
 * spoofed, allowlisted address. Here ISN = M + F(4-tuple, secret key):
 *   M  a clock that advances every 4 µs, so a reused 4-tuple still moves
 *      forward (old duplicates stay out of the new window);
 *   F  HMAC-SHA-256 of the 4-tuple under a key drawn at every boot,
 *      truncated to 32 bits: unrelated across 4-tuples and across boots.
 * lwIP calls tcpisn_next() through LWIP_HOOK_TCP_ISN (lwip_port/lwip_hooks.h).
 * Portable: no lwIP types, no mbedTLS headers (crypto.c computes the HMAC). */
#ifndef TCPISN_H
#define TCPISN_H

#include <stddef.h>
#include <stdint.h>

#define TCPISN_KEY_LEN 32 /* one SHA-256 block's worth of key is plenty for HMAC */
#define TCPISN_ADDR_MAX 16 /* an IPv6 address; IPv4 uses 4 bytes */

/* One connection's 4-tuple; addresses in network byte order, ports in host
 * order (as lwIP keeps them). */
struct tcpisn_tuple {
    const uint8_t *local_addr;
    const uint8_t *remote_addr;
    size_t addr_len; /* 4 or 16 */
    uint16_t local_port;
    uint16_t remote_port;
};

/* The pure function: the ISN for `t` at `now_us` under `key`. Returns 0,
 * or -1 when the tuple is malformed or the HMAC failed. */
int tcpisn_compute(const uint8_t key[TCPISN_KEY_LEN], const struct tcpisn_tuple *t,
                   uint64_t now_us, uint32_t *isn);

/* Draw this boot's key (crypto_random, or the HAL rng when crypto did not
 * start). Call before the first connection. Returns 0, or -1 when no
 * entropy was available (tcpisn_next() then uses a fresh random number
 * per connection). */
int tcpisn_init(void);

/* The ISN for a new connection now (hal_clock_us()); always succeeds. */
uint32_t tcpisn_next(const struct tcpisn_tuple *t);

#endif
