/* hal_uart.h — the console UART: bytes in and out, no line discipline.
 *
 * Received bytes are buffered by the board; hal_uart_read never blocks.
 * hal_uart_write never blocks either: when nobody drains the line the
 * board drops output, as a real UART with no cable attached does. */
#ifndef HAL_UART_H
#define HAL_UART_H

#include <stddef.h>

/* Copy up to `cap` received bytes into `buf`; returns the count (0 when none). */
int hal_uart_read(void *buf, size_t cap);
/* Queue `len` bytes for transmission; returns HAL_OK or a HAL error. */
int hal_uart_write(const void *buf, size_t len);

#endif
