/* lwipopts.h — lwIP configuration for Smart Host Relay.
 *
 * Raw/altcp API only, one event loop, no OS (NO_SYS=1). Sizes are for a
 * relay that holds tens of SMTP sessions at once, each with a window large
 * enough to stream DATA at line rate; every figure says why. */
#ifndef LWIPOPTS_H
#define LWIPOPTS_H

/* --- system: one loop, no threads, no sockets/netconn layer --- */
#define NO_SYS 1
#define SYS_LIGHTWEIGHT_PROT 0
#define LWIP_SOCKET 0
#define LWIP_NETCONN 0
#define LWIP_NETIF_API 0

/* --- memory --- */
/* 8-byte alignment: the posix board is 64-bit, Cortex-M needs only 4. */
#define MEM_ALIGNMENT 8
/* lwIP's own heap: TX segments and TLS records for ~64 sessions. */
#define MEM_SIZE (512 * 1024)
/* RX pool: a 16-segment window for a few busy sessions at once. */
#define PBUF_POOL_SIZE 256
#define MEMP_NUM_PBUF 128
/* Inbound SMTP sessions plus outbound deliveries plus TIME_WAIT slack. */
#define MEMP_NUM_TCP_PCB 96
#define MEMP_NUM_TCP_PCB_LISTEN 4
#define MEMP_NUM_TCP_SEG 512
#define MEMP_NUM_UDP_PCB 6 /* DHCP, DNS, SNTP, and spare */
#define MEMP_NUM_SYS_TIMEOUT (LWIP_NUM_SYS_TIMEOUT_INTERNAL + 8)

/* --- protocols --- */
#define LWIP_ARP 1
/* Queue every packet waiting for an ARP answer, not just the last one:
 * several SYN-ACKs to the same peer in one burst must not cost all but one
 * a 3-second retransmission. */
#define ARP_QUEUEING 1
#define MEMP_NUM_ARP_QUEUE 64
#define LWIP_ETHERNET 1
#define LWIP_IPV4 1
/* IPv6 arrives with the TAP backend; slirp mode drops it at the egress filter. */
#define LWIP_IPV6 0
#define LWIP_ICMP 1
#define LWIP_RAW 0
#define LWIP_UDP 1
#define LWIP_TCP 1
#define LWIP_DHCP 1
/* The ARP probe after a lease costs a second at every boot and slirp is the
 * only host on its network. */
#define DHCP_DOES_ARP_CHECK 0
#define LWIP_DNS 1
#define DNS_MAX_SERVERS 2
#define LWIP_NETIF_HOSTNAME 1
#define LWIP_NETIF_STATUS_CALLBACK 1
#define LWIP_NETIF_LINK_CALLBACK 1
#define ETH_PAD_SIZE 0

/* --- TCP --- */
/* A full Ethernet frame per segment (1500 - 40): fewer frames, and so
 * fewer link messages and ACKs, per message relayed. */
#define TCP_MSS 1460
/* 16 segments (23 KiB) in flight each way: a typical PST message (5-50 KB)
 * goes out in one or two windows without waiting for ACKs, and the RX pool
 * (PBUF_POOL_SIZE) still covers a few sessions' full windows at once.
 * Measured: the one-connection drain is bounded by replies, not the window. */
#define TCP_WND (16 * TCP_MSS)
#define TCP_SND_BUF (16 * TCP_MSS)
/* Enough pbufs to queue a whole send buffer in small writes (SMTP
 * commands, TLS records). */
#define TCP_SND_QUEUELEN (4 * TCP_SND_BUF / TCP_MSS)
#define TCP_LISTEN_BACKLOG 1
#define LWIP_TCP_KEEPALIVE 1
#define LWIP_WND_SCALE 1
#define TCP_RCV_SCALE 2

/* Initial sequence numbers per RFC 6528 (keyed hash of the 4-tuple plus a
 * 4 µs clock, firmware/tcpisn.c): lwIP's default is a counter, and a
 * predictable ISN lets a blind attacker spoof an allowlisted source. */
#define LWIP_HOOK_FILENAME "lwip_hooks.h"
#define LWIP_HOOK_TCP_ISN(local_ip, local_port, remote_ip, remote_port) \
    tcpisn_lwip_hook((local_ip), (local_port), (remote_ip), (remote_port))
/* Outbound source ports must not repeat after every reset. lwIP 2.1.3 no
 * longer reads this option: its tcp_init()/udp_init() start the local port
 * at LWIP_RAND() (arch/cc.h, the HAL rng) whenever LWIP_RAND is defined.
 * Kept so the intent is stated and older lwIPs (2.0.x) do the same. */
#define LWIP_RANDOMIZE_INITIAL_LOCAL_PORTS 1

/* --- altcp: plain TCP and TLS behind one API (mbedTLS 2.28) --- */
#define LWIP_ALTCP 1
#define LWIP_ALTCP_TLS 1
#define LWIP_ALTCP_TLS_MBEDTLS 1

/* --- SNTP: wall time for Received: headers when no RTC is set ---
 * One server (`ntp-server`, or the one DHCP offers: option 42), by name or
 * address; every answer goes to clocksync.c through fwnet.c. */
#define SNTP_SERVER_DNS 1
#define LWIP_DHCP_GET_NTP_SRV 1
#define SNTP_SET_SYSTEM_TIME(sec) fwnet_sntp_set_time((sec))
/* Take only answers from the server asked, on port 123, that echo our
 * transmit timestamp (random microseconds: fwnet_sntp_get_time), so a
 * spoofed datagram cannot set the clock and move the queue's times. */
#define SNTP_CHECK_RESPONSE 2
#include <stdint.h>
void fwnet_sntp_get_time(uint32_t *sec, uint32_t *us);
#define SNTP_GET_SYSTEM_TIME(sec, us) fwnet_sntp_get_time(&(sec), &(us))
/* Hourly once synchronized (lwIP's default, RFC 4330 asks for >= 15 s);
 * the first request within 5 s of a (re)start (lwIP's random startup
 * delay, so a site powering up does not ask all at once); an unanswered
 * request is repeated after 15 s, doubling up to 150 s. */
#define SNTP_UPDATE_DELAY 3600000

/* --- statistics: `net show` and `stats` read them --- */
#define LWIP_STATS 1
#define LWIP_STATS_DISPLAY 0
#define LINK_STATS 1
#define ETHARP_STATS 1
/* Heap and pool use, peaks and allocation failures (`stats`). These are
 * lwIP's defaults under LWIP_STATS; stated because `stats` depends on
 * them. Cost: one 20-byte record per pool and one for the heap, and an
 * add/compare per allocation and free. */
#define MEM_STATS 1
#define MEMP_STATS 1
/* 32-bit counters: the appliance runs for months, and 16-bit packet and
 * failure counters would wrap within hours under load. A few hundred
 * bytes of RAM in lwip_stats. */
#define LWIP_STATS_LARGE 1

/* --- checksums in software: the simulated NIC offloads nothing --- */
#define LWIP_CHECKSUM_CTRL_PER_NETIF 0

#endif
