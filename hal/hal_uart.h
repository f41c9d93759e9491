/* hal_uart.h — the console UART: bytes in and out, no line discipline.
 *
 * Received bytes are buffered by the board; hal_uart_read never blocks.
 * hal_uart_write never blocks either. Output is paced by the line: the
 * firmware writes what hal_uart_tx_room() allows and keeps the rest (a
 * write beyond it is still taken, into the board's own bounded queue, but
 * a long output must wait for room instead). */
#ifndef HAL_UART_H
#define HAL_UART_H

#include <stddef.h>

/* Copy up to `cap` received bytes into `buf`; returns the count (0 when none). */
int hal_uart_read(void *buf, size_t cap);
/* Queue `len` bytes for transmission; returns HAL_OK or a HAL error. */
int hal_uart_write(const void *buf, size_t len);
/* Bytes hal_uart_write can take now without piling up ahead of the line
 * (a FIFO's free space; on the posix board, the window the board credits
 * back as the terminal reads). New room is an event for hal_event_wait. */
size_t hal_uart_tx_room(void);

#endif
