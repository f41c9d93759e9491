/* conesc.c — Ctrl-A escape filter; see conesc.h. */
#include "conesc.h"

size_t conesc_filter(struct conesc *esc, const uint8_t *in, size_t n, uint8_t *out, int *quit)
{
    size_t o = 0;
    *quit = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t ch = in[i];
        if (esc->pending) {
            esc->pending = 0;
            if (ch == 'x' || ch == 'X') {
                *quit = 1;
                return o;
            }
            if (ch == CONESC_KEY)
                out[o++] = ch;
            /* Any other key after Ctrl-A is an unknown command: dropped. */
            continue;
        }
        if (ch == CONESC_KEY)
            esc->pending = 1;
        else
            out[o++] = ch;
    }
    return o;
}
