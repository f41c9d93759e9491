/* hal_heap.h — how much of the C heap (malloc: SQLite, mbedTLS) is in use.
 *
 * Heap accounting belongs to the board: a real part's allocator keeps the
 * bytes in use and its high-water mark exactly; the posix board asks glibc
 * for the bytes in use and keeps the peak of the values it samples. */
#ifndef HAL_HEAP_H
#define HAL_HEAP_H

#include <stddef.h>

/* Bytes allocated now and the most seen since reset (never below *in_use:
 * the value read now counts toward it). HAL_OK, or HAL_EIO when the board
 * cannot tell (both then 0). */
int hal_heap_stats(size_t *in_use, size_t *peak);
/* Note the use now toward the peak. The firmware calls it about once a
 * second; a board whose allocator tracks the peak itself does nothing.
 * Cheap enough for that rate, not for every allocation. */
void hal_heap_sample(void);
/* 1 when the peak is exact (kept by the allocator), 0 when it is the
 * highest of the samples, so a short burst between two may be missed. */
int hal_heap_peak_exact(void);

#endif
