/* hal_fakes.c — HAL stand-ins for unit tests: a clock the test moves by hand,
 * entropy from the kernel, and a device secret the test chooses. */
#include "hal_fakes.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <sys/types.h>

#include "hal_clock.h"
#include "hal_err.h"
#include "hal_rng.h"
#include "hal_secret.h"

uint32_t hal_fake_now_ms;

uint64_t hal_fake_now_us;
uint32_t hal_fake_us_step;

uint32_t hal_clock_ms(void) { return hal_fake_now_ms; }
uint64_t hal_clock_us(void)
{
    hal_fake_now_us += hal_fake_us_step;
    return hal_fake_now_us;
}
int64_t hal_clock_wall(void) { return 1700000000 + hal_fake_now_ms / 1000; }

/* A fixed test secret: 0x01, 0x02, ... 0x20. */
uint8_t hal_fake_secret[HAL_SECRET_LEN] = {
    1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
    17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32,
};
int hal_fake_rng_fail;
int hal_fake_secret_fail;

int hal_rng_fill(void *buf, size_t len)
{
    if (hal_fake_rng_fail)
        return HAL_EIO;
    unsigned char *p = buf;
    while (len) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return HAL_EIO;
        }
        p += n;
        len -= (size_t)n;
    }
    return HAL_OK;
}

int hal_secret_get(uint8_t out[HAL_SECRET_LEN])
{
    if (hal_fake_secret_fail)
        return HAL_EIO;
    memcpy(out, hal_fake_secret, HAL_SECRET_LEN);
    return HAL_OK;
}

/* --- wall clock steps and the saved last-known time (clock sync) --- */
int64_t hal_fake_wall_set;
int hal_fake_wall_sets;
int64_t hal_fake_saved_wall;
int hal_fake_saved_valid;
int hal_fake_saves;

void hal_clock_set_wall(int64_t t)
{
    hal_fake_wall_set = t;
    hal_fake_wall_sets++;
}

int hal_clock_save_wall(int64_t t)
{
    hal_fake_saved_wall = t;
    hal_fake_saved_valid = 1;
    hal_fake_saves++;
    return HAL_OK;
}

int hal_clock_saved_wall(int64_t *t)
{
    if (!hal_fake_saved_valid)
        return HAL_EIO;
    *t = hal_fake_saved_wall;
    return HAL_OK;
}

int hal_fake_wall_valid = 1;
int hal_clock_wall_valid(void) { return hal_fake_wall_valid; }

/* --- heap use (hal_heap.h): whatever the test sets --- */
#include "hal_heap.h"

size_t hal_fake_heap_in_use;
size_t hal_fake_heap_peak;
int hal_fake_heap_samples;

void hal_heap_sample(void)
{
    hal_fake_heap_samples++;
    if (hal_fake_heap_in_use > hal_fake_heap_peak)
        hal_fake_heap_peak = hal_fake_heap_in_use;
}

int hal_heap_stats(size_t *in_use, size_t *peak)
{
    if (hal_fake_heap_in_use > hal_fake_heap_peak)
        hal_fake_heap_peak = hal_fake_heap_in_use;
    *in_use = hal_fake_heap_in_use;
    *peak = hal_fake_heap_peak;
    return HAL_OK;
}

int hal_heap_peak_exact(void) { return 0; }
