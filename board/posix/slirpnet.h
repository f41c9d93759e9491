/* slirpnet.h — the slirp network backend: a user-mode network with the
 * appliance at 10.0.2.15 and the host at 10.0.2.2, no root needed.
 *
 * Host 127.0.0.1:<smtp-port> is forwarded to the appliance's port 25; the
 * appliance reaches host loopback services as 10.0.2.2. slirp's DNS is off,
 * and every frame the appliance sends passes the egress filter (egress.h)
 * first. Frames never cross from one stack into the other inside a
 * callback: the board queues them both ways and feeds them from its loop. */
#ifndef SLIRPNET_H
#define SLIRPNET_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>

#define SLIRPNET_GUEST_ADDR "10.0.2.15"
#define SLIRPNET_HOST_ALIAS "10.0.2.2"

struct slirpnet;

/* Called from the board loop (never from inside slirp) for each frame
 * slirp sends towards the appliance. */
typedef void (*slirpnet_rx_fn)(void *ctx, const uint8_t *frame, size_t len);

struct slirpnet *slirpnet_new(uint16_t smtp_port, slirpnet_rx_fn rx, void *ctx,
                              char *err, size_t errlen);
void slirpnet_free(struct slirpnet *sn);

/* Add slirp's descriptors to `pfds` (from index *n, up to cap) and lower
 * *timeout_ms to its next timer. */
void slirpnet_fill(struct slirpnet *sn, struct pollfd *pfds, size_t *n, size_t cap,
                   int *timeout_ms);
/* After poll(): let slirp handle its descriptors and timers, then pass the
 * frames it produced to the rx callback. */
void slirpnet_poll(struct slirpnet *sn, const struct pollfd *pfds, int poll_failed);
/* A frame from the appliance: filtered, then queued for slirp. Returns 0
 * when accepted, -1 when the egress filter dropped it. */
int slirpnet_send(struct slirpnet *sn, const uint8_t *frame, size_t len);
/* Frames the egress filter dropped so far. */
uint64_t slirpnet_egress_dropped(const struct slirpnet *sn);

#endif
