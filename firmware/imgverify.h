/* imgverify.h — is this firmware image one we may run?
 *
 * What the boot stage asks of a slot right before starting it, and what
 * an upload is checked against before it is accepted: the image parses
 * (mcuimg.h), its SHA-256 matches, it was signed by the one key built in
 * (key hash, then the ECDSA P-256 signature over that hash), it is built
 * for this board, and its security counter is not below the stored
 * minimum. */
#ifndef IMGVERIFY_H
#define IMGVERIFY_H

#include <stddef.h>
#include <stdint.h>

#include "mcuimg.h"

struct imgverify_policy {
    const uint8_t *pubkey_der; /* SubjectPublicKeyInfo of the signing key */
    size_t pubkey_len;
    const char *board;    /* board name the image must carry; NULL: not checked */
    uint32_t min_sec_cnt; /* an image without a counter counts as 0 */
};

/* Check `len` bytes (a slot may hold padding after the image). Returns 0
 * with the parsed image in `out`, or -1 with one line of reason. */
int imgverify_check(const uint8_t *data, size_t len, const struct imgverify_policy *policy,
                    struct mcuimg *out, char *err, size_t errlen);

/* The same for an image read in pieces, never held whole (a slot on flash
 * that is not memory-mapped, an upload just written): `read` copies `len`
 * bytes at `off` (0 or -1), `avail` bytes are readable. The TLV areas are
 * read into `tlv_buf` (IMGVERIFY_TLV_BUF bytes: far more than any real
 * image's), which `out`'s pointers then point into. The verdict and the
 * reasons are imgverify_check()'s. */
#define IMGVERIFY_TLV_BUF 1024
typedef int (*imgverify_read_fn)(void *ctx, uint32_t off, void *buf, size_t len);
int imgverify_check_read(imgverify_read_fn read, void *ctx, uint32_t avail,
                         const struct imgverify_policy *policy, struct mcuimg *out,
                         uint8_t tlv_buf[IMGVERIFY_TLV_BUF], char *err, size_t errlen);

#endif
