/* hal_fakes.c — HAL stand-ins for unit tests: a clock the test moves by hand. */
#include "hal_fakes.h"

#include "hal_clock.h"

uint32_t hal_fake_now_ms;

uint32_t hal_clock_ms(void) { return hal_fake_now_ms; }
int64_t hal_clock_wall(void) { return 1700000000 + hal_fake_now_ms / 1000; }
