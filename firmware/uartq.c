/* uartq.c — console transmit queue; see uartq.h. */
#include "uartq.h"

#include <stdint.h>

#include "hal_uart.h"

static uint8_t ring[UARTQ_BYTES];
static size_t head, count; /* oldest byte; bytes waiting */
static size_t spilled;

/* Send up to `max` queued bytes, oldest first, in at most two pieces. */
static void send_queued(size_t max)
{
    while (count && max) {
        size_t n = UARTQ_BYTES - head; /* contiguous up to the ring's end */
        if (n > count)
            n = count;
        if (n > max)
            n = max;
        if (hal_uart_write(ring + head, n) != 0)
            return; /* the line is gone: keep the bytes for when it is back */
        head = (head + n) % UARTQ_BYTES;
        count -= n;
        max -= n;
    }
    if (!count)
        head = 0;
}

size_t uartq_flush(void)
{
    if (count)
        send_queued(hal_uart_tx_room());
    return count;
}

void uartq_write(const void *data, size_t len)
{
    const uint8_t *p = data;
    uartq_flush();
    if (!count) { /* nothing waits: what the line takes goes straight out */
        size_t room = hal_uart_tx_room();
        size_t n = len < room ? len : room;
        if (n && hal_uart_write(p, n) == 0) {
            p += n;
            len -= n;
        }
    }
    if (len > UARTQ_BYTES - count) {
        /* Too much for the queue: the order is kept and nothing is lost,
         * at the price of running ahead of the line this once. */
        size_t was = count;
        send_queued(count);
        spilled += was - count;
        if (count || len > UARTQ_BYTES) {
            hal_uart_write(p, len);
            spilled += len;
            return;
        }
    }
    for (size_t i = 0; i < len; i++)
        ring[(head + count + i) % UARTQ_BYTES] = p[i];
    count += len;
}

void uartq_drain(void)
{
    size_t was = count;
    send_queued(count);
    spilled += was - count;
}

size_t uartq_room(void) { return UARTQ_BYTES - count; }

size_t uartq_spilled(void) { return spilled; }
