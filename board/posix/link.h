/* link.h — the wire between the board process and the device process.
 *
 * One stream socketpair carries every signal between the two, as typed
 * messages: [type:1][reserved:1][length:2, big endian][payload]. A stream
 * (not datagrams) keeps UART bytes and frames in one ordered channel and
 * makes the framing explicit, so a corrupt stream is detected instead of
 * silently misread. Pure encode/decode here; the processes do the I/O. */
#ifndef LINK_H
#define LINK_H

#include <stddef.h>
#include <stdint.h>

enum link_type {
    LINK_ETH = 1,       /* one Ethernet frame, either direction */
    LINK_UART = 2,      /* console bytes, either direction */
    LINK_NIC_STATS = 3, /* board -> device: u64 BE count of egress frames dropped */
    LINK_UART_CREDIT = 4, /* board -> device: u32 BE count of console bytes that left the
                           * board (given to the terminal, or dropped with nobody reading) */
    LINK_UART_RX_CREDIT = 5, /* device -> board: u32 BE count of typed bytes the firmware
                              * took from its UART buffer: room for as many more */
};

#define LINK_HDR_LEN 4
/* Largest payload: an Ethernet frame (1514) with room to spare; UART data is
 * sent in chunks no larger than this. */
#define LINK_PAYLOAD_MAX 2048
#define LINK_MSG_MAX (LINK_HDR_LEN + LINK_PAYLOAD_MAX)

/* Write one message into `out`; returns its total length, or 0 when the
 * payload is too large or `cap` too small. */
size_t link_encode(uint8_t *out, size_t cap, uint8_t type, const void *payload, size_t len);

typedef void (*link_msg_fn)(void *ctx, uint8_t type, const uint8_t *payload, size_t len);

struct link_decoder {
    uint8_t buf[LINK_MSG_MAX];
    size_t have;
};

void link_decoder_init(struct link_decoder *dec);
/* Feed bytes as they arrive, in pieces of any size; `fn` is called once per
 * complete message. Returns 0, or -1 when the stream is corrupt (unknown
 * type, length over LINK_PAYLOAD_MAX); the decoder then stays failed. */
int link_decoder_feed(struct link_decoder *dec, const uint8_t *data, size_t n,
                      link_msg_fn fn, void *ctx);

#endif
