/* link.c — board/device message framing; see link.h. */
#include "link.h"

#include <string.h>

static int type_known(uint8_t type)
{
    return type == LINK_ETH || type == LINK_UART || type == LINK_NIC_STATS ||
           type == LINK_UART_CREDIT || type == LINK_UART_RX_CREDIT;
}

size_t link_encode(uint8_t *out, size_t cap, uint8_t type, const void *payload, size_t len)
{
    if (len > LINK_PAYLOAD_MAX || cap < LINK_HDR_LEN + len || !type_known(type))
        return 0;
    out[0] = type;
    out[1] = 0;
    out[2] = (uint8_t)(len >> 8);
    out[3] = (uint8_t)len;
    if (len)
        memcpy(out + LINK_HDR_LEN, payload, len);
    return LINK_HDR_LEN + len;
}

void link_decoder_init(struct link_decoder *dec) { dec->have = 0; }

#define LINK_FAILED ((size_t)-1)

int link_decoder_feed(struct link_decoder *dec, const uint8_t *data, size_t n,
                      link_msg_fn fn, void *ctx)
{
    while (n > 0) {
        if (dec->have == LINK_FAILED)
            return -1;
        size_t want = LINK_HDR_LEN;
        if (dec->have >= LINK_HDR_LEN)
            want += ((size_t)dec->buf[2] << 8) | dec->buf[3];
        size_t take = want - dec->have;
        if (take > n)
            take = n;
        memcpy(dec->buf + dec->have, data, take);
        dec->have += take;
        data += take;
        n -= take;
        if (dec->have == LINK_HDR_LEN) {
            size_t len = ((size_t)dec->buf[2] << 8) | dec->buf[3];
            if (!type_known(dec->buf[0]) || dec->buf[1] != 0 || len > LINK_PAYLOAD_MAX) {
                dec->have = LINK_FAILED;
                return -1;
            }
            want = LINK_HDR_LEN + len;
        }
        if (dec->have >= LINK_HDR_LEN && dec->have == want) {
            fn(ctx, dec->buf[0], dec->buf + LINK_HDR_LEN, dec->have - LINK_HDR_LEN);
            dec->have = 0;
        }
    }
    return dec->have == LINK_FAILED ? -1 : 0;
}
