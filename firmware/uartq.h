/* uartq.h — the console's transmit queue in front of the UART.
 *
 * Console output goes out as the line takes it (hal_uart_tx_room), never
 * faster, and waits here meanwhile. Long outputs are produced row by row
 * only while the queue has room (console_stream), so the queue stays
 * small; a short output that does not fit is still never lost: the oldest
 * queued bytes and the new ones then go to the UART at once, beyond its
 * room (the board's own bounded queue takes them, as a blocking UART
 * driver would wait). */
#ifndef UARTQ_H
#define UARTQ_H

#include <stddef.h>

/* Bytes the queue holds: a page of a long output. With the line's own room
 * it bounds what still arrives after a Ctrl-C ends a long output. */
#define UARTQ_BYTES 4096

/* Queue `len` bytes behind what waits, sending what the line takes now. */
void uartq_write(const void *data, size_t len);
/* Send what the line takes now; returns the bytes still waiting. */
size_t uartq_flush(void);
/* Free bytes in the queue (console_stream produces more only with room). */
size_t uartq_room(void);
/* Send everything queued now, beyond the line's room (before a reset,
 * which would lose it; the board's own queue takes it). */
void uartq_drain(void);
/* Bytes written beyond the line's room because the queue was full. */
size_t uartq_spilled(void);

#endif
