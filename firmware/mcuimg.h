/* mcuimg.h — MCUboot's image format: parse and bound-check, no crypto.
 *
 * An image is a 32-byte header (padded to ih_hdr_size), the payload, an
 * optional protected TLV area and the unprotected TLV area; MCUboot's
 * docs/design.md and bootutil/image.h define it, and images made by its
 * `imgtool sign` parse here. Every size and offset is checked against the
 * bytes given before it is used (64-bit sums: no wrap-around), every TLV
 * walk is bounded, and bytes after the TLV areas (a slot's 0xFF padding,
 * an MCUboot trailer) are ignored. imgverify.h checks what this finds. */
#ifndef MCUIMG_H
#define MCUIMG_H

#include <stddef.h>
#include <stdint.h>

#define MCUIMG_MAGIC 0x96f3b83du
#define MCUIMG_HDR_LEN 32        /* the header proper; ih_hdr_size may pad it */
#define MCUIMG_TLV_MAGIC 0x6907  /* unprotected TLV area */
#define MCUIMG_PROT_MAGIC 0x6908 /* protected TLV area (covered by the hash) */
#define MCUIMG_TLV_HDR_LEN 4     /* type u16, length u16; also the area's info header */

/* TLV types (MCUboot's IMAGE_TLV_*), and ours in the vendor range. */
enum mcuimg_tlv {
    MCUIMG_TLV_KEYHASH = 0x01,   /* SHA-256 of the public key's DER (SubjectPublicKeyInfo) */
    MCUIMG_TLV_SHA256 = 0x10,    /* over header, payload and protected TLV area */
    MCUIMG_TLV_ECDSA_SIG = 0x22, /* DER ECDSA P-256 signature of that hash */
    MCUIMG_TLV_SEC_CNT = 0x50,   /* security counter, u32, protected */
    MCUIMG_TLV_BOARD = 0xa0,     /* board the image is built for (text), protected */
};

/* Longest DER ECDSA P-256 signature: SEQUENCE of two INTEGERs of up to 33
 * bytes. Shorter ones are common (70, 71 bytes; rarely less), and a signer
 * may pad the TLV with zeros up to this length: only the DER is checked. */
#define MCUIMG_SIG_MAX 72
#define MCUIMG_BOARD_MAX 31
/* TLVs walked per area at most: far more than any real image carries. */
#define MCUIMG_TLV_MAX 32

struct mcuimg_version {
    uint8_t major, minor;
    uint16_t revision;
    uint32_t build;
};

struct mcuimg {
    uint32_t load_addr, hdr_size, prot_size, img_size, flags;
    struct mcuimg_version version;
    uint32_t hashed_len; /* hdr_size + img_size + prot_size: what SHA256 covers */
    uint32_t total_len;  /* through the end of the unprotected TLV area */
    const uint8_t *sha256;  /* 32 bytes inside the image */
    const uint8_t *keyhash; /* 32 bytes */
    const uint8_t *sig;     /* the signature's DER, exactly sig_len bytes */
    size_t sig_len;
    int has_sec_cnt;
    uint32_t sec_cnt;
    char board[MCUIMG_BOARD_MAX + 1]; /* "" when the image names none */
};

/* Parse `len` bytes (an image, possibly followed by anything). Returns 0,
 * or -1 with the reason in `err`. `out` points into `data`. */
int mcuimg_parse(const uint8_t *data, size_t len, struct mcuimg *out, char *err, size_t errlen);

/* The same in two steps, for an image read in pieces (imgverify.h): the
 * 32-byte header, with `avail` bytes in the slot (sets hashed_len), then
 * the protected area (m->prot_size bytes; unused when 0) and the
 * unprotected area (`tlv_avail` bytes from its start are readable). The
 * TLV pointers then point into those buffers. */
int mcuimg_parse_header(const uint8_t *hdr, uint64_t avail, struct mcuimg *out, char *err,
                        size_t errlen);
int mcuimg_parse_tlvs(struct mcuimg *m, const uint8_t *prot, const uint8_t *tlv, size_t tlv_avail,
                      char *err, size_t errlen);

/* -1, 0 or 1 as a is older, the same as or newer than b (build included). */
int mcuimg_version_cmp(const struct mcuimg_version *a, const struct mcuimg_version *b);
/* "1.2.3+4" */
void mcuimg_version_format(const struct mcuimg_version *v, char *out, size_t cap);
/* Parse "1.2.3+4" (minor, revision and build optional); 0 or -1. */
int mcuimg_version_parse(const char *text, struct mcuimg_version *v);

#endif
