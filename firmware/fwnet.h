/* fwnet.h — the firmware's network: lwIP over the HAL Ethernet MAC.
 *
 * The only firmware module (with the later TCP transports) that includes
 * lwIP headers. Addresses cross this interface as IPv4 in host byte order so
 * callers never need lwIP types. */
#ifndef FWNET_H
#define FWNET_H

#include <stdint.h>

enum fwnet_mode { FWNET_DHCP = 0, FWNET_STATIC };

struct fwnet_status {
    enum fwnet_mode mode;
    int link_up;
    int bound;            /* has an address (DHCP lease or static) */
    uint8_t mac[6];
    uint32_t addr, mask, gateway;
    uint32_t dns[2];      /* 0 when unset */
    uint32_t lease_s;     /* DHCP lease time; 0 for static */
    uint32_t lease_left_s;
    uint64_t rx_frames, tx_frames, rx_dropped, egress_dropped;
    uint32_t ip_rx, ip_tx, ip_drop, tcp_rx, tcp_tx; /* lwIP's protocol counters */
    uint32_t tcp_drop, tcp_memerr;
};

/* lwIP's own memory since boot, for `stats`: its heap (MEM_SIZE: TX
 * segments, TLS records) and each fixed-size pool (PCBs, segments,
 * pbufs, timers). `err` counts allocations refused because it was full. */
struct fwnet_mem {
    const char *name; /* pool name as lwIP spells it ("TCP_PCB"); "heap" */
    uint32_t used, max, avail, err;
};
/* Pools in this lwIP configuration (memp_std.h); more than there are. */
#define FWNET_POOLS_MAX 24
/* Fills *heap and pools[0..max); returns how many pools were filled. */
int fwnet_mem_stats(struct fwnet_mem *heap, struct fwnet_mem *pools, int max);

int fwnet_init(const char *hostname);
/* Hand every received frame to lwIP; call when hal_event_wait says so. */
void fwnet_input(void);
/* At the end of a loop turn: send the ACKs lwIP still delays (see fwnet.c). */
void fwnet_flush_acks(void);
/* Run due lwIP timers; returns ms until the next one is due. */
uint32_t fwnet_timers(void);
void fwnet_status(struct fwnet_status *st);
/* 1 when the link is up and the interface has an address: connections
 * can be opened. Cheap, for every loop turn. */
int fwnet_ready(void);
/* 1 when the network interface is configured up (cable and address not
 * needed: a self-test on the bench, or at a site without DHCP, passes). */
int fwnet_netif_up(void);

int fwnet_use_dhcp(void);
/* Static address; mask must be contiguous. Returns 0 or -1. */
int fwnet_use_static(uint32_t addr, uint32_t mask, uint32_t gateway);
/* Override DNS server `index` (0 or 1); 0 goes back to the one from DHCP. */
int fwnet_set_dns(int index, uint32_t addr);
/* SNTP from `server`: a host name or IPv4 address, "" for the one DHCP
 * offers, "none" to stop. Restarts the client (clocksync's ntp-server). */
void fwnet_sntp_config(const char *server);

#endif
