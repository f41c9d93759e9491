/* b64.h — base64 (RFC 4648) for SMTP AUTH; strict: no whitespace, correct
 * padding, no bits left over. */
#ifndef B64_H
#define B64_H

#include <stddef.h>
#include <stdint.h>

/* Length of the encoding of n bytes, without the NUL. */
#define B64_ENCODED_LEN(n) ((((n) + 2) / 3) * 4)

/* Encode into out (room for B64_ENCODED_LEN(n) + 1); returns the length. */
size_t b64_encode(const uint8_t *in, size_t n, char *out);
/* Decode `in` (NUL-terminated); returns the byte count, or -1 when it is not
 * strict base64 or does not fit in `cap`. */
int b64_decode(const char *in, uint8_t *out, size_t cap);

#endif
