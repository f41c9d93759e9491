/* hal_watchdog.h — a watchdog that resets a stuck firmware.
 *
 * Once started it cannot be stopped; the main loop kicks it every turn. */
#ifndef HAL_WATCHDOG_H
#define HAL_WATCHDOG_H

#include <stdint.h>

int hal_watchdog_start(uint32_t timeout_ms);
void hal_watchdog_kick(void);

#endif
