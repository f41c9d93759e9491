/* hal_fakes.h — controls for the fake HAL used by unit tests. */
#ifndef HAL_FAKES_H
#define HAL_FAKES_H

#include <stdint.h>

extern uint32_t hal_fake_now_ms; /* what hal_clock_ms() returns */

#endif
