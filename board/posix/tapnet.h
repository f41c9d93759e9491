/* tapnet.h — the tap network backend (--net tap, root only): the
 * appliance's frames on a Linux TAP device, so the host side of every
 * connection is the kernel's own TCP/IP, not libslirp's.
 *
 * Layout (N from the board's pid; see tapnet.c for the choices):
 *
 *   host namespace                 | the board's anonymous namespace
 *   shrtap<pid> 10.213.N.1/24 ----veth---- veth0 --+
 *     (+ extra client addresses)   |               br0 10.213.N.3/24 (dnsmasq: DHCP)
 *                                  |    tap0 ------+
 *                                  |     ^ frames (the board relays them)
 *                                  |    device (lwIP) 10.213.N.2 by DHCP, gateway .1
 *
 * - The board unshare()s CLONE_NEWNET at setup: the namespace has no name
 *   and lives only as long as the board and its children (the device and
 *   dnsmasq die with the board through PR_SET_PDEATHSIG). When it goes,
 *   the kernel deletes veth0, which takes shrtap<pid> with it, and with
 *   that every address and route on the host side. The TAP device is not
 *   persistent: it goes when the board's descriptor closes.
 * - Host clients reach the appliance at <device>:25 directly (there is no
 *   forward from 127.0.0.1, so --smtp-port has no meaning in tap mode);
 *   the appliance reaches host peers at <host> (they listen on that
 *   address or 0.0.0.0). Tests add more host addresses of the subnet to
 *   shrtap<pid> (`ip addr add`) to connect from distinct sources; they
 *   vanish with the link. Or run a client inside the namespace with
 *   `nsenter --net=/proc/<board pid>/ns/net`.
 * - dnsmasq serves DHCP only: the device's address, mask and gateway (the
 *   host end). No DNS server and no NTP server are offered, as in slirp
 *   mode: `net set dns <host>` with a resolver listening on <host>:53.
 * - Every frame from the appliance passes the egress filter (egress.h):
 *   only hosts of the subnet and the DHCP broadcast, so nothing leaves the
 *   machine even when the host forwards IP. */
#ifndef TAPNET_H
#define TAPNET_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>

struct tapnet;

/* What the board chose, for the "tap: ..." line and the README's names. */
struct tapnet_info {
    char device[16];  /* the address DHCP gives the appliance, e.g. "10.213.7.2" */
    char host[16];    /* the host end of the veth: the appliance's gateway */
    char server[16];  /* the namespace's own address on the bridge (DHCP server) */
    unsigned prefix;  /* of all three: 24 */
    char hostif[16];  /* the host end's interface name, "shrtap<pid>" */
    char netns[64];   /* "/proc/<board pid>/ns/net", for nsenter --net= */
};

/* Called from the board loop for each frame the host sends the appliance. */
typedef void (*tapnet_rx_fn)(void *ctx, const uint8_t *frame, size_t len);

/* Build the namespace, TAP device, bridge, veth pair and DHCP server. Moves
 * the calling process into the new namespace. NULL with the reason in err
 * (not root, no /dev/net/tun, a failing ip command); the board then exits,
 * and whatever was built goes with it. */
struct tapnet *tapnet_new(tapnet_rx_fn rx, void *ctx, char *err, size_t errlen);
/* Stop the DHCP server, delete the veth pair (at once, rather than when
 * the namespace is reaped) and close the TAP device. */
void tapnet_free(struct tapnet *tn);
const struct tapnet_info *tapnet_info(const struct tapnet *tn);

/* Add the TAP descriptor to `pfds` (at index *n, if below cap). */
void tapnet_fill(struct tapnet *tn, struct pollfd *pfds, size_t *n, size_t cap);
/* After poll(): pass the frames waiting on the TAP device to the rx callback. */
void tapnet_poll(struct tapnet *tn, const struct pollfd *pfds);
/* A frame from the appliance: filtered, then written to the TAP device.
 * Returns 0 when sent, -1 when dropped (egress filter, or the kernel's
 * queue was full). */
int tapnet_send(struct tapnet *tn, const uint8_t *frame, size_t len);
/* Frames the egress filter dropped so far. */
uint64_t tapnet_egress_dropped(const struct tapnet *tn);
/* The board reaped `pid`: 1 when it was the DHCP server (logged), else 0. */
int tapnet_reaped(struct tapnet *tn, int pid, int status);

#endif
