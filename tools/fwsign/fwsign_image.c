/* fwsign_image.c — lay out and describe MCUboot images; see fwsign_image.h. */
#include "fwsign_image.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"

/* Bytes of the unprotected TLV area at most: info header, SHA256, KEYHASH
 * and the longest signature. */
#define UNPROT_MAX (MCUIMG_TLV_HDR_LEN + (MCUIMG_TLV_HDR_LEN + 32) * 2 + MCUIMG_TLV_HDR_LEN + \
                    MCUIMG_SIG_MAX)

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errlen,
                                                      const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static void put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, v);
    put16(p + 2, v >> 16);
}

/* Append a TLV header and its value; the room was reserved before. */
static void put_tlv(struct fwimg *img, uint16_t type, const void *v, size_t len)
{
    put16(img->data + img->len, type);
    put16(img->data + img->len + 2, (uint32_t)len);
    memcpy(img->data + img->len + MCUIMG_TLV_HDR_LEN, v, len);
    img->len += MCUIMG_TLV_HDR_LEN + len;
}

int fwimg_board_ok(const char *board)
{
    size_t n = strlen(board);
    if (n == 0 || n > MCUIMG_BOARD_MAX)
        return -1;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)board[i] <= 0x20 || (unsigned char)board[i] >= 0x7f)
            return -1;
    return 0;
}

int fwimg_begin(struct fwimg *img, const struct fwimg_params *p, const uint8_t *payload,
                size_t len, char *err, size_t errlen)
{
    memset(img, 0, sizeof *img);
    if (p->hdr_size < MCUIMG_HDR_LEN || p->hdr_size > FWIMG_HDR_SIZE_MAX)
        return fail(err, errlen, "header size %#lx out of range (0x20..0xffff)",
                    (unsigned long)p->hdr_size);
    if (p->board && fwimg_board_ok(p->board) != 0)
        return fail(err, errlen, "board name must be 1 to %d printable characters, no spaces",
                    MCUIMG_BOARD_MAX);
    size_t board_len = p->board ? strlen(p->board) : 0;
    size_t prot = 0;
    if (p->has_sec_cnt)
        prot += MCUIMG_TLV_HDR_LEN + 4;
    if (p->board)
        prot += MCUIMG_TLV_HDR_LEN + board_len;
    if (prot)
        prot += MCUIMG_TLV_HDR_LEN; /* the area's info header */
    /* The whole image's offsets are u32 in mcuimg (and img_size in the header). */
    uint64_t total = (uint64_t)p->hdr_size + len + prot + UNPROT_MAX;
    if (total > UINT32_MAX)
        return fail(err, errlen, "payload too large for an image (%llu bytes)",
                    (unsigned long long)len);
    img->cap = (size_t)total;
    img->data = calloc(1, img->cap); /* zeros: the header padding */
    if (!img->data)
        return fail(err, errlen, "out of memory");

    uint8_t *h = img->data;
    put32(h + 0, MCUIMG_MAGIC);
    put32(h + 4, 0);                         /* ih_load_addr */
    put16(h + 8, p->hdr_size);               /* ih_hdr_size */
    put16(h + 10, (uint32_t)prot);           /* ih_protect_tlv_size */
    put32(h + 12, (uint32_t)len);            /* ih_img_size */
    put32(h + 16, 0);                        /* ih_flags */
    h[20] = p->version.major;
    h[21] = p->version.minor;
    put16(h + 22, p->version.revision);
    put32(h + 24, p->version.build);
    put32(h + 28, 0);                        /* _pad1 */
    img->len = p->hdr_size;
    if (len)
        memcpy(img->data + img->len, payload, len);
    img->len += len;
    if (prot) {
        put16(img->data + img->len, MCUIMG_PROT_MAGIC);
        put16(img->data + img->len + 2, (uint32_t)prot);
        img->len += MCUIMG_TLV_HDR_LEN;
        if (p->has_sec_cnt) {
            uint8_t v[4];
            put32(v, p->sec_cnt);
            put_tlv(img, MCUIMG_TLV_SEC_CNT, v, sizeof v);
        }
        if (p->board)
            put_tlv(img, MCUIMG_TLV_BOARD, p->board, board_len);
    }
    img->hashed_len = img->len;
    return 0;
}

int fwimg_seal(struct fwimg *img, const uint8_t digest[32], const uint8_t keyhash[32],
               const uint8_t *sig, size_t sig_len, char *err, size_t errlen)
{
    if (sig_len == 0 || sig_len > MCUIMG_SIG_MAX)
        return fail(err, errlen, "signature length %lu out of range", (unsigned long)sig_len);
    if (img->len != img->hashed_len || img->cap - img->len < UNPROT_MAX)
        return fail(err, errlen, "image already sealed");
    size_t start = img->len;
    size_t tot = MCUIMG_TLV_HDR_LEN + (MCUIMG_TLV_HDR_LEN + 32) * 2 + MCUIMG_TLV_HDR_LEN + sig_len;
    put16(img->data + start, MCUIMG_TLV_MAGIC);
    put16(img->data + start + 2, (uint32_t)tot);
    img->len += MCUIMG_TLV_HDR_LEN;
    put_tlv(img, MCUIMG_TLV_SHA256, digest, 32);
    put_tlv(img, MCUIMG_TLV_KEYHASH, keyhash, 32);
    put_tlv(img, MCUIMG_TLV_ECDSA_SIG, sig, sig_len);
    return 0;
}

int fwimg_pad(struct fwimg *img, uint64_t size, char *err, size_t errlen)
{
    if (size < img->len)
        return fail(err, errlen, "image is %lu bytes, larger than --pad-to %llu",
                    (unsigned long)img->len, (unsigned long long)size);
    if (size > SIZE_MAX / 2)
        return fail(err, errlen, "--pad-to %llu is too large", (unsigned long long)size);
    if (size > img->cap) {
        uint8_t *d = realloc(img->data, (size_t)size);
        if (!d)
            return fail(err, errlen, "out of memory");
        img->data = d;
        img->cap = (size_t)size;
    }
    memset(img->data + img->len, 0xff, (size_t)size - img->len);
    img->len = (size_t)size;
    return 0;
}

void fwimg_free(struct fwimg *img)
{
    free(img->data);
    memset(img, 0, sizeof *img);
}

/* --- fwsign info --- */

static const char *tlv_name(uint16_t type)
{
    switch (type) {
    case MCUIMG_TLV_KEYHASH: return "KEYHASH";
    case 0x02: return "PUBKEY";
    case MCUIMG_TLV_SHA256: return "SHA256";
    case 0x11: return "SHA384";
    case 0x12: return "SHA512";
    case 0x20: return "RSA2048_PSS";
    case 0x21: return "ECDSA224";
    case MCUIMG_TLV_ECDSA_SIG: return "ECDSA_SIG";
    case 0x23: return "RSA3072_PSS";
    case 0x24: return "ED25519";
    case 0x25: return "SIG_PURE";
    case 0x30: return "ENC_RSA2048";
    case 0x31: return "ENC_KW";
    case 0x32: return "ENC_EC256";
    case 0x33: return "ENC_X25519";
    case 0x40: return "DEPENDENCY";
    case MCUIMG_TLV_SEC_CNT: return "SEC_CNT";
    case 0x60: return "BOOT_RECORD";
    case MCUIMG_TLV_BOARD: return "BOARD";
    default: return NULL;
    }
}

static void hex(FILE *out, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(out, "%02x", p[i]);
}

/* A TLV's value: decoded where we know how, else in hex. */
static void tlv_value(FILE *out, uint16_t type, const uint8_t *v, uint16_t len)
{
    if (type == MCUIMG_TLV_SEC_CNT && len == 4) {
        fprintf(out, "%lu", (unsigned long)le32(v));
    } else if (type == MCUIMG_TLV_BOARD) {
        fputc('"', out);
        for (uint16_t i = 0; i < len; i++) {
            if (v[i] >= 0x20 && v[i] < 0x7f && v[i] != '"' && v[i] != '\\')
                fputc(v[i], out);
            else
                fprintf(out, "\\x%02x", v[i]);
        }
        fputc('"', out);
    } else {
        hex(out, v, len);
    }
}

/* One TLV area at `off`: its info header, then each TLV as far as the
 * bytes go. Sets *sha256 to the first 32-byte SHA256 TLV seen (when not
 * NULL). Returns the offset after the area, or 0 when it cannot be found. */
static uint64_t area_info(FILE *out, const char *name, const uint8_t *d, size_t len,
                          uint64_t off, uint16_t want, const uint8_t **sha256)
{
    if (off > len || len - off < MCUIMG_TLV_HDR_LEN) {
        fprintf(out, "%s: missing: offset 0x%llx is past the end of the file\n", name,
                (unsigned long long)off);
        return 0;
    }
    uint16_t magic = le16(d + off), tot = le16(d + off + 2);
    fprintf(out, "%s: offset 0x%llx, magic 0x%04x%s, total %u\n", name, (unsigned long long)off,
            magic, magic == want ? "" : " (wrong)", tot);
    if (magic != want)
        return 0;
    if (tot < MCUIMG_TLV_HDR_LEN) {
        fprintf(out, "  (total is smaller than the area's own header)\n");
        return 0;
    }
    uint64_t at = off + MCUIMG_TLV_HDR_LEN, end = off + tot;
    if (end > len) {
        fprintf(out, "  (the area runs %llu bytes past the end of the file)\n",
                (unsigned long long)(end - len));
        end = len;
    }
    while (at < end) {
        if (end - at < MCUIMG_TLV_HDR_LEN) {
            fprintf(out, "  (%llu bytes left: too few for a TLV header)\n",
                    (unsigned long long)(end - at));
            return 0;
        }
        uint16_t type = le16(d + at), tlen = le16(d + at + 2);
        const char *tn = tlv_name(type);
        if (tn)
            fprintf(out, "  tlv %s (0x%02x) len %u: ", tn, type, tlen);
        else
            fprintf(out, "  tlv 0x%02x len %u: ", type, tlen);
        if (end - at - MCUIMG_TLV_HDR_LEN < tlen) {
            fprintf(out, "(runs past the end of its area)\n");
            return 0;
        }
        const uint8_t *v = d + at + MCUIMG_TLV_HDR_LEN;
        tlv_value(out, type, v, tlen);
        fputc('\n', out);
        if (sha256 && !*sha256 && type == MCUIMG_TLV_SHA256 && tlen == 32)
            *sha256 = v;
        at += MCUIMG_TLV_HDR_LEN + (uint64_t)tlen;
    }
    return off + tot;
}

void fwimg_info(const uint8_t *d, size_t len, FILE *out)
{
    fprintf(out, "file_size: %lu\n", (unsigned long)len);
    if (len < MCUIMG_HDR_LEN) {
        fprintf(out, "header: truncated (%lu of %d bytes)\n", (unsigned long)len,
                MCUIMG_HDR_LEN);
        return;
    }
    uint32_t magic = le32(d), hdr_size = le16(d + 8), prot = le16(d + 10);
    uint32_t img_size = le32(d + 12), flags = le32(d + 16), pad1 = le32(d + 28);
    struct mcuimg_version v = {d[20], d[21], le16(d + 22), le32(d + 24)};
    char vs[40];
    mcuimg_version_format(&v, vs, sizeof vs);
    fprintf(out, "magic: 0x%08lx%s\n", (unsigned long)magic,
            magic == MCUIMG_MAGIC ? "" : " (wrong: not an MCUboot image)");
    fprintf(out, "load_addr: 0x%08lx\n", (unsigned long)le32(d + 4));
    fprintf(out, "hdr_size: 0x%lx\n", (unsigned long)hdr_size);
    fprintf(out, "protected_tlv_size: 0x%lx\n", (unsigned long)prot);
    fprintf(out, "img_size: 0x%lx (%lu)\n", (unsigned long)img_size, (unsigned long)img_size);
    fprintf(out, "flags: 0x%08lx\n", (unsigned long)flags);
    fprintf(out, "version: %s\n", vs);
    if (pad1)
        fprintf(out, "pad1: 0x%08lx\n", (unsigned long)pad1);
    if (magic != MCUIMG_MAGIC)
        return;

    uint64_t off = (uint64_t)hdr_size + img_size;
    if (off > len)
        fprintf(out, "payload: runs %llu bytes past the end of the file\n",
                (unsigned long long)(off - len));
    if (prot) {
        uint64_t end = area_info(out, "protected_tlv_area", d, len, off, MCUIMG_PROT_MAGIC, NULL);
        if (end && end != off + prot)
            fprintf(out, "  (total %llu differs from the header's protected_tlv_size %lu)\n",
                    (unsigned long long)(end - off), (unsigned long)prot);
    }
    uint64_t hashed = off + prot;
    const uint8_t *sha256 = NULL;
    uint64_t end = area_info(out, "tlv_area", d, len, hashed, MCUIMG_TLV_MAGIC, &sha256);
    if (hashed <= len) {
        uint8_t digest[32];
        if (crypto_sha256(d, (size_t)hashed, digest) == 0) {
            fprintf(out, "digest: ");
            hex(out, digest, sizeof digest);
            fprintf(out, " (%s)\n", !sha256                             ? "no SHA256 TLV"
                                    : memcmp(digest, sha256, 32) == 0 ? "matches the SHA256 TLV"
                                                                      : "differs from the SHA256 TLV");
        }
    }
    if (end && end <= len)
        fprintf(out, "image_end: 0x%llx (%llu bytes after it)\n", (unsigned long long)end,
                (unsigned long long)(len - end));
}
