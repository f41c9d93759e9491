/* dev_link.c — the device side of the board link: the UART, the Ethernet
 * MAC and the event wait of the HAL, all carried by one socket. */
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <string.h>
#include <unistd.h>

#include "dev_link.h"
#include "devproto.h"
#include "hal_err.h"
#include "hal_eth.h"
#include "hal_event.h"
#include "hal_uart.h"
#include "link.h"

/* RX ring of whole frames; a full ring drops, as a MAC with no free
 * descriptors does. 256 frames hold a full TCP window for several sessions. */
#define RX_FRAMES 256
#define UART_RX_BYTES DEV_UART_RX_WINDOW /* the board sends no more than this ahead */
/* Console bytes sent and not yet credited back by the board (LINK_UART_CREDIT)
 * that hal_uart_tx_room() allows: what a UART's FIFO and line would hold.
 * About a screenful; the terminal's pace sets the rest. */
#define UART_TX_WINDOW 4096

static struct {
    uint16_t len;
    uint8_t data[HAL_ETH_FRAME_MAX];
} rx_ring[RX_FRAMES];
static unsigned rx_head, rx_tail; /* head: next to read; tail: next free */

static uint8_t uart_rx[UART_RX_BYTES];
static size_t uart_head, uart_count;
static int uart_fresh; /* bytes arrived since the firmware last read: an event */
static uint64_t uart_overrun; /* bytes past the window (a board bug): dropped */
static uint64_t uart_sent, uart_credited; /* console bytes out; credited back */

static struct link_decoder decoder;
static struct hal_eth_stats stats;
static int link_failed;

void dev_link_init(void) { link_decoder_init(&decoder); }

static void on_message(void *ctx, uint8_t type, const uint8_t *payload, size_t len)
{
    (void)ctx;
    if (type == LINK_ETH) {
        if (len > HAL_ETH_FRAME_MAX || rx_tail - rx_head == RX_FRAMES) {
            stats.rx_dropped++;
            return;
        }
        rx_ring[rx_tail % RX_FRAMES].len = (uint16_t)len;
        memcpy(rx_ring[rx_tail % RX_FRAMES].data, payload, len);
        rx_tail++;
    } else if (type == LINK_UART) {
        size_t i = 0;
        for (; i < len && uart_count < UART_RX_BYTES; i++, uart_count++)
            uart_rx[(uart_head + uart_count) % UART_RX_BYTES] = payload[i];
        uart_overrun += len - i;
        uart_fresh = 1;
    } else if (type == LINK_UART_CREDIT && len == 4) {
        uart_credited += ((uint32_t)payload[0] << 24) | ((uint32_t)payload[1] << 16) |
                         ((uint32_t)payload[2] << 8) | payload[3];
        if (uart_credited > uart_sent)
            uart_credited = uart_sent; /* never more room than the window */
    } else if (type == LINK_NIC_STATS && len == 8) {
        uint64_t v = 0;
        for (int i = 0; i < 8; i++)
            v = (v << 8) | payload[i];
        stats.egress_dropped = v;
    }
}

/* Read what the socket holds without blocking; stop early when the frame
 * ring is full so the socket buffer (and the board's queue behind it), not
 * our memory, absorbs a burst. Typed bytes always fit: the board sends no
 * more than the UART ring has room for (DEV_UART_RX_WINDOW, credited back
 * as the firmware reads), so unread input never holds up a frame. */
static int flush_tx(void);

static int pump(void)
{
    uint8_t buf[16384];
    /* A credit or frame the board waits for before it answers may still
     * be in our buffer. */
    if (flush_tx() != HAL_OK)
        return link_failed = HAL_EIO;
    for (;;) {
        if (rx_tail - rx_head == RX_FRAMES)
            return 0;
        ssize_t n = recv(DEV_LINK_FD, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) {
            if (link_decoder_feed(&decoder, buf, (size_t)n, on_message, NULL) != 0)
                return link_failed = HAL_EIO;
            continue;
        }
        if (n == 0)
            return link_failed = HAL_EIO; /* the board went away */
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        return link_failed = HAL_EIO;
    }
}

int hal_event_wait(uint32_t timeout_ms)
{
    if (link_failed)
        return link_failed;
    if (rx_tail != rx_head || uart_fresh)
        return 1; /* input the firmware left unread is not news */
    if (flush_tx() != HAL_OK)
        return link_failed = HAL_EIO;
    struct pollfd pfd = {.fd = DEV_LINK_FD, .events = POLLIN};
    int rc = poll(&pfd, 1, timeout_ms > 60000 ? 60000 : (int)timeout_ms);
    if (rc < 0 && errno != EINTR)
        return HAL_EIO;
    if (rc <= 0)
        return 0;
    int err = pump();
    return err ? err : 1;
}

/* Link messages out, gathered over a loop turn and written with one send
 * when the loop waits or reads, or when the buffer is full: a send per
 * frame was a system call each, about 15 per relayed message. (A real
 * NIC's DMA ring batches the same way.) */
static uint8_t tx_buf[64 * 1024];
static size_t tx_len;

static int flush_tx(void)
{
    /* Blocking write: the board always drains the link (it queues or drops
     * on its own side), so this waits at most for a context switch. */
    size_t off = 0;
    while (off < tx_len) {
        ssize_t w = send(DEV_LINK_FD, tx_buf + off, tx_len - off, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            tx_len = 0;
            return HAL_EIO;
        }
        off += (size_t)w;
    }
    tx_len = 0;
    return HAL_OK;
}

void dev_link_flush(void) { (void)flush_tx(); }

static int send_msg(uint8_t type, const void *data, size_t len)
{
    if (sizeof tx_buf - tx_len < LINK_MSG_MAX && flush_tx() != HAL_OK)
        return HAL_EIO;
    size_t n = link_encode(tx_buf + tx_len, sizeof tx_buf - tx_len, type, data, len);
    if (n == 0)
        return HAL_EINVAL;
    tx_len += n;
    return HAL_OK;
}

int hal_uart_read(void *buf, size_t cap)
{
    if (!uart_count && pump() != 0)
        return 0;
    uint8_t *out = buf;
    size_t n = 0;
    while (n < cap && uart_count) {
        out[n++] = uart_rx[uart_head];
        uart_head = (uart_head + 1) % UART_RX_BYTES;
        uart_count--;
    }
    uart_fresh = 0;
    if (n) { /* room for as many more typed bytes */
        uint8_t be[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
        send_msg(LINK_UART_RX_CREDIT, be, sizeof be);
    }
    return (int)n;
}

int hal_uart_write(const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len) {
        size_t chunk = len > LINK_PAYLOAD_MAX ? LINK_PAYLOAD_MAX : len;
        int rc = send_msg(LINK_UART, p, chunk);
        if (rc)
            return rc;
        uart_sent += chunk;
        p += chunk;
        len -= chunk;
    }
    return HAL_OK;
}

size_t hal_uart_tx_room(void)
{
    pump(); /* credits arrive with the other board messages */
    uint64_t out = uart_sent - uart_credited;
    return out >= UART_TX_WINDOW ? 0 : (size_t)(UART_TX_WINDOW - out);
}

void hal_eth_mac(uint8_t mac[6])
{
    /* A locally administered address, the one slirp's DHCP expects first. */
    static const uint8_t fixed[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
    memcpy(mac, fixed, 6);
}

int hal_eth_link_up(void) { return !link_failed; }

int hal_eth_recv(void *buf, size_t cap)
{
    if (rx_tail == rx_head && pump() != 0)
        return 0;
    if (rx_tail == rx_head)
        return 0;
    unsigned i = rx_head % RX_FRAMES;
    size_t len = rx_ring[i].len;
    if (len > cap) {
        rx_head++;
        stats.rx_dropped++;
        return 0;
    }
    memcpy(buf, rx_ring[i].data, len);
    rx_head++;
    stats.rx_frames++;
    return (int)len;
}

int hal_eth_send(const void *frame, size_t len)
{
    if (len > HAL_ETH_FRAME_MAX)
        return HAL_EINVAL;
    int rc = send_msg(LINK_ETH, frame, len);
    if (rc == HAL_OK)
        stats.tx_frames++;
    return rc;
}

void hal_eth_stats(struct hal_eth_stats *out) { *out = stats; }
