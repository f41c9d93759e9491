/* tcpisn.c — RFC 6528 initial sequence numbers; see tcpisn.h. */
#include "tcpisn.h"

#include <string.h>

#include "crypto.h"
#include "hal_clock.h"
#include "hal_rng.h"
#include "log.h"

/* M advances once per 4 µs, RFC 793's ISN clock that RFC 6528 keeps: it
 * wraps 2^32 in about 4.8 hours, far longer than a segment can live. */
#define TICK_US 4

static uint8_t key[TCPISN_KEY_LEN];
static int keyed;

int tcpisn_compute(const uint8_t k[TCPISN_KEY_LEN], const struct tcpisn_tuple *t,
                   uint64_t now_us, uint32_t *isn)
{
    if ((t->addr_len != 4 && t->addr_len != 16) || !t->local_addr || !t->remote_addr)
        return -1;
    /* length | local addr | local port | remote addr | remote port: fixed
     * layout per family, and the length byte keeps an IPv4 tuple from ever
     * hashing like an IPv6 one. */
    uint8_t msg[1 + 2 * (TCPISN_ADDR_MAX + 2)];
    size_t n = 0;
    msg[n++] = (uint8_t)t->addr_len;
    memcpy(msg + n, t->local_addr, t->addr_len);
    n += t->addr_len;
    msg[n++] = (uint8_t)(t->local_port >> 8);
    msg[n++] = (uint8_t)t->local_port;
    memcpy(msg + n, t->remote_addr, t->addr_len);
    n += t->addr_len;
    msg[n++] = (uint8_t)(t->remote_port >> 8);
    msg[n++] = (uint8_t)t->remote_port;
    uint8_t mac[CRYPTO_HMAC_LEN];
    if (crypto_hmac_sha256(k, TCPISN_KEY_LEN, msg, n, mac) != 0)
        return -1;
    uint32_t f = (uint32_t)mac[0] << 24 | (uint32_t)mac[1] << 16 | (uint32_t)mac[2] << 8 | mac[3];
    /* Truncating the 64-bit tick count is the 32-bit wrap RFC 6528 intends. */
    *isn = (uint32_t)(now_us / TICK_US) + f;
    return 0;
}

int tcpisn_init(void)
{
    keyed = 0; /* a new boot's key, or none: never the last one's */
    /* crypto_random() is the DRBG; when crypto_init() failed, take the
     * HAL's entropy directly rather than run with a known key. */
    if (crypto_random(key, sizeof key) == 0 || hal_rng_fill(key, sizeof key) == 0) {
        keyed = 1;
        return 0;
    }
    log_err("net", "no entropy for the TCP ISN key; using a random ISN per connection");
    return -1;
}

uint32_t tcpisn_next(const struct tcpisn_tuple *t)
{
    uint32_t isn;
    if (keyed && tcpisn_compute(key, t, hal_clock_us(), &isn) == 0)
        return isn;
    /* Without a key or an HMAC a fresh random number is still unguessable;
     * it only loses the per-tuple monotony, which TIME_WAIT reuse wants. */
    if (crypto_random(&isn, sizeof isn) == 0 || hal_rng_fill(&isn, sizeof isn) == 0)
        return isn;
    return (uint32_t)(hal_clock_us() / TICK_US); /* no entropy at all: nothing better left */
}
