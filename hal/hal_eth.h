/* hal_eth.h — the Ethernet MAC: whole frames in and out.
 *
 * Frames are Ethernet II without FCS, at most HAL_ETH_FRAME_MAX bytes. */
#ifndef HAL_ETH_H
#define HAL_ETH_H

#include <stddef.h>
#include <stdint.h>

#define HAL_ETH_FRAME_MAX 1514 /* 1500 MTU + 14 byte header; no VLAN tags */

struct hal_eth_stats {
    uint64_t rx_frames;      /* frames delivered to the firmware */
    uint64_t tx_frames;      /* frames the firmware sent */
    uint64_t rx_dropped;     /* received frames lost because the RX ring was full */
    uint64_t egress_dropped; /* sent frames the network refused (posix: egress filter) */
};

/* The MAC address burned into the device. */
void hal_eth_mac(uint8_t mac[6]);
/* Link state: 1 up, 0 down. */
int hal_eth_link_up(void);
/* Copy the next received frame into `buf`; returns its length, 0 when none. */
int hal_eth_recv(void *buf, size_t cap);
/* Send one frame; returns HAL_OK or a HAL error. */
int hal_eth_send(const void *frame, size_t len);
void hal_eth_stats(struct hal_eth_stats *stats);

#endif
