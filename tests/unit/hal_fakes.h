/* hal_fakes.h — controls for the fake HAL used by unit tests. */
#ifndef HAL_FAKES_H
#define HAL_FAKES_H

#include <stddef.h>
#include <stdint.h>

#include "hal_secret.h"

extern uint32_t hal_fake_now_ms; /* what hal_clock_ms() returns */
extern uint64_t hal_fake_now_us; /* what hal_clock_us() returns */
/* Added to hal_fake_now_us at every hal_clock_us() call (0: the clock only
 * moves by hand), for code that runs until a time budget is spent. */
extern uint32_t hal_fake_us_step;

/* What hal_secret_get() returns; tests may overwrite it before crypto_init(). */
extern uint8_t hal_fake_secret[HAL_SECRET_LEN];
/* When non-zero, hal_rng_fill() and hal_secret_get() fail (HAL_EIO). */
extern int hal_fake_rng_fail;
extern int hal_fake_secret_fail;

/* Clock sync: hal_clock_set_wall() records its argument and counts the
 * calls (hal_clock_wall() itself does not move); the saved last-known time
 * is hal_fake_saved_wall when hal_fake_saved_valid. */
extern int64_t hal_fake_wall_set;
extern int hal_fake_wall_sets;
extern int64_t hal_fake_saved_wall;
extern int hal_fake_saved_valid;
extern int hal_fake_saves;
extern int hal_fake_wall_valid; /* what hal_clock_wall_valid() returns; 1 at start */

/* Heap use (hal_heap.h): hal_heap_stats() reports hal_fake_heap_in_use and
 * raises hal_fake_heap_peak to it, as hal_heap_sample() does (counted). */
extern size_t hal_fake_heap_in_use;
extern size_t hal_fake_heap_peak;
extern int hal_fake_heap_samples;

#endif
