/* conesc.h — the stdio console's escape key, as in QEMU: Ctrl-A x quits the
 * simulator, Ctrl-A Ctrl-A sends one Ctrl-A; every other key (Ctrl-C
 * included) goes to the device untouched. Pure byte filter. */
#ifndef CONESC_H
#define CONESC_H

#include <stddef.h>
#include <stdint.h>

#define CONESC_KEY 0x01 /* Ctrl-A */

struct conesc {
    int pending; /* the previous byte was the escape key */
};

/* Filter `n` bytes from the terminal into `out` (room for n bytes). Returns
 * how many bytes to send to the device; sets *quit when Ctrl-A x was typed
 * (bytes after it are discarded). */
size_t conesc_filter(struct conesc *esc, const uint8_t *in, size_t n, uint8_t *out, int *quit);

#endif
