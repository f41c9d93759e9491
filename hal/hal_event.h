/* hal_event.h — sleep until something happens.
 *
 * The firmware runs one loop: wait for a frame or UART byte, or for the next
 * timer, then handle what arrived. On hardware this is WFI with a timer
 * interrupt; on the posix board it is poll() on the link to the board. */
#ifndef HAL_EVENT_H
#define HAL_EVENT_H

#include <stdint.h>

/* Block until input may be available or `timeout_ms` passed. Returns 1 when
 * input may be available, 0 on timeout, a HAL error when the link is gone. */
int hal_event_wait(uint32_t timeout_ms);

#endif
