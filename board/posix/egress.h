/* egress.h — what the simulated network lets the appliance send.
 *
 * In slirp mode the appliance may only talk to the host alias (10.0.2.2,
 * which slirp maps to host loopback), plus the DHCP broadcast it needs to
 * learn its address. In tap mode it may also talk to any host of the
 * board's own subnet (the host's end of the veth pair and its extra
 * addresses, the DHCP server in the board's namespace): those addresses
 * exist only while the board runs. Everything else — slirp's DNS address,
 * the real Internet (which a host with IP forwarding on would otherwise
 * route the tap's traffic to), IPv6 — is dropped and counted, so a test can
 * never leak traffic off the machine. Pure frame inspection, no network
 * calls. */
#ifndef EGRESS_H
#define EGRESS_H

#include <stddef.h>
#include <stdint.h>

struct egress_policy {
    uint32_t host_alias; /* IPv4 address in host byte order, e.g. 10.0.2.2 */
    /* tap mode: the board's subnet (host byte order); mask 0 for none. Its
     * network and broadcast addresses never pass. */
    uint32_t subnet, subnet_mask;
};

enum egress_verdict { EGRESS_PASS = 0, EGRESS_DROP = 1 };

/* Judge one Ethernet frame sent by the appliance. Malformed or truncated
 * frames are dropped. */
enum egress_verdict egress_check(const struct egress_policy *policy,
                                 const uint8_t *frame, size_t len);

/* One line saying what a frame is, for the board's drop log: e.g.
 * "ipv4 10.0.2.15 -> 10.0.2.3 udp port 53", "arp who-has 10.0.2.1",
 * "ethertype 0x86dd". */
void egress_describe(const uint8_t *frame, size_t len, char *out, size_t cap);

#endif
