/* fwsign_image.h — lay out an MCUboot image, and describe one.
 *
 * The writing half of firmware/mcuimg.h: a 32-byte header (padded with
 * zeros to hdr_size), the payload, the protected TLV area (SEC_CNT, BOARD;
 * left out when empty), then the unprotected one (SHA256, KEYHASH,
 * ECDSA_SIG at its natural DER length), all little-endian. No crypto
 * here: the caller hashes what fwimg_begin() laid out, signs, and hands the
 * results to fwimg_seal(). fwimg_info() is `fwsign info`: it reads any
 * bytes, however malformed, without ever reading outside them. */
#ifndef FWSIGN_IMAGE_H
#define FWSIGN_IMAGE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "mcuimg.h"

#define FWIMG_HDR_SIZE_DEFAULT 0x200u
#define FWIMG_HDR_SIZE_MAX 0xffffu /* ih_hdr_size is a u16 */

struct fwimg_params {
    struct mcuimg_version version;
    uint32_t hdr_size;   /* MCUIMG_HDR_LEN .. FWIMG_HDR_SIZE_MAX */
    int has_sec_cnt;     /* 0: no SEC_CNT TLV */
    uint32_t sec_cnt;
    const char *board;   /* NULL: no BOARD TLV */
};

struct fwimg {
    uint8_t *data; /* malloc'd; fwimg_free() */
    size_t len;
    size_t cap;
    size_t hashed_len; /* what the SHA256 TLV covers: data[0..hashed_len) */
};

/* 0 when `board` is a name an image may carry (1..MCUIMG_BOARD_MAX
 * printable characters, no spaces), else -1. */
int fwimg_board_ok(const char *board);

/* Header, padding, payload and protected TLV area into `img` (the bytes
 * to hash: img->data[0..img->hashed_len)). 0, or -1 with `err` set. */
int fwimg_begin(struct fwimg *img, const struct fwimg_params *p, const uint8_t *payload,
                size_t len, char *err, size_t errlen);
/* Append the unprotected TLV area. `sig` is the DER signature of `digest`,
 * exactly sig_len (<= MCUIMG_SIG_MAX) bytes, stored as it is. 0 or -1. */
int fwimg_seal(struct fwimg *img, const uint8_t digest[32], const uint8_t keyhash[32],
               const uint8_t *sig, size_t sig_len, char *err, size_t errlen);
/* Pad with 0xFF up to `size` bytes; -1 when the image is larger. */
int fwimg_pad(struct fwimg *img, uint64_t size, char *err, size_t errlen);
void fwimg_free(struct fwimg *img);

/* Describe `len` bytes as an image, one fact per line, as far as they make
 * sense: header fields, each TLV area and TLV (name, length, value decoded
 * or in hex), the digest recomputed. Never reads outside data[0..len). */
void fwimg_info(const uint8_t *data, size_t len, FILE *out);

#endif
