/* mcuimg.c — MCUboot image parsing; see mcuimg.h. */
#include "mcuimg.h"

#include <stdio.h>
#include <string.h>

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static int fail(char *err, size_t errlen, const char *why)
{
    snprintf(err, errlen, "%s", why);
    return -1;
}

/* The DER of an ECDSA signature: SEQUENCE (short form length) of two
 * INTEGERs. Returns its exact length, which may be less than the TLV's
 * (zero padding up to MCUIMG_SIG_MAX), or 0 when it is not one. */
static size_t der_sig_len(const uint8_t *p, size_t tlv_len)
{
    if (tlv_len < 8 || tlv_len > MCUIMG_SIG_MAX || p[0] != 0x30 || p[1] >= 0x80)
        return 0;
    size_t len = 2 + (size_t)p[1];
    if (len > tlv_len)
        return 0;
    /* Two INTEGERs filling the SEQUENCE exactly. */
    size_t at = 2;
    for (int i = 0; i < 2; i++) {
        if (at + 2 > len || p[at] != 0x02 || p[at + 1] == 0 || p[at + 1] > 33)
            return 0;
        at += 2 + (size_t)p[at + 1];
    }
    if (at != len)
        return 0;
    for (size_t i = len; i < tlv_len; i++)
        if (p[i] != 0)
            return 0; /* padding is zeros, nothing else */
    return len;
}

/* One TLV of the protected area. */
static int take_protected(struct mcuimg *m, uint16_t type, const uint8_t *v, uint16_t len,
                          char *err, size_t errlen)
{
    switch (type) {
    case MCUIMG_TLV_SEC_CNT:
        if (m->has_sec_cnt)
            return fail(err, errlen, "two security counters");
        if (len != 4)
            return fail(err, errlen, "security counter is not 4 bytes");
        m->has_sec_cnt = 1;
        m->sec_cnt = le32(v);
        return 0;
    case MCUIMG_TLV_BOARD:
        if (m->board[0])
            return fail(err, errlen, "two board names");
        if (len == 0 || len > MCUIMG_BOARD_MAX)
            return fail(err, errlen, "board name length out of range");
        for (uint16_t i = 0; i < len; i++)
            if (v[i] <= 0x20 || v[i] >= 0x7f)
                return fail(err, errlen, "board name is not printable text");
        memcpy(m->board, v, len);
        m->board[len] = '\0';
        return 0;
    case MCUIMG_TLV_SHA256:
    case MCUIMG_TLV_KEYHASH:
    case MCUIMG_TLV_ECDSA_SIG:
        return fail(err, errlen, "hash, key hash or signature in the protected TLV area");
    default:
        return 0; /* other protected TLVs are covered by the hash and not ours */
    }
}

/* One TLV of the unprotected area. */
static int take_unprotected(struct mcuimg *m, uint16_t type, const uint8_t *v, uint16_t len,
                            char *err, size_t errlen)
{
    switch (type) {
    case MCUIMG_TLV_SHA256:
        if (m->sha256)
            return fail(err, errlen, "two SHA256 TLVs");
        if (len != 32)
            return fail(err, errlen, "SHA256 TLV is not 32 bytes");
        m->sha256 = v;
        return 0;
    case MCUIMG_TLV_KEYHASH:
        if (m->keyhash)
            return fail(err, errlen, "two KEYHASH TLVs");
        if (len != 32)
            return fail(err, errlen, "KEYHASH TLV is not 32 bytes");
        m->keyhash = v;
        return 0;
    case MCUIMG_TLV_ECDSA_SIG:
        if (m->sig)
            return fail(err, errlen, "two signatures");
        m->sig_len = der_sig_len(v, len);
        if (!m->sig_len)
            return fail(err, errlen, "signature is not a DER ECDSA signature");
        m->sig = v;
        return 0;
    case MCUIMG_TLV_SEC_CNT:
    case MCUIMG_TLV_BOARD:
        /* Outside the hash anyone could change them. */
        return fail(err, errlen, "security counter or board name outside the protected area");
    default:
        return 0; /* MCUboot ignores what it does not know; so do we */
    }
}

/* Walk the TLV area at `off` (its info header included, `tot` bytes in
 * all); every TLV must end inside it and the last one exactly at its end. */
static int walk(struct mcuimg *m, const uint8_t *data, size_t off, size_t tot, int protected_area,
                char *err, size_t errlen)
{
    size_t at = off + MCUIMG_TLV_HDR_LEN, end = off + tot;
    for (int n = 0; at < end; n++) {
        if (n == MCUIMG_TLV_MAX)
            return fail(err, errlen, "too many TLVs");
        if (end - at < MCUIMG_TLV_HDR_LEN)
            return fail(err, errlen, "TLV header past the end of its area");
        uint16_t type = le16(data + at), len = le16(data + at + 2);
        if (end - at - MCUIMG_TLV_HDR_LEN < len)
            return fail(err, errlen, "TLV length past the end of its area");
        const uint8_t *v = data + at + MCUIMG_TLV_HDR_LEN;
        int rc = protected_area ? take_protected(m, type, v, len, err, errlen)
                                : take_unprotected(m, type, v, len, err, errlen);
        if (rc)
            return rc;
        at += MCUIMG_TLV_HDR_LEN + (size_t)len;
    }
    return 0;
}

int mcuimg_parse_header(const uint8_t *hdr, uint64_t avail, struct mcuimg *m, char *err,
                        size_t errlen)
{
    memset(m, 0, sizeof *m);
    if (avail < MCUIMG_HDR_LEN)
        return fail(err, errlen, "shorter than an image header");
    if (le32(hdr) != MCUIMG_MAGIC)
        return fail(err, errlen, "no image header (bad magic)");
    m->load_addr = le32(hdr + 4);
    m->hdr_size = le16(hdr + 8);
    m->prot_size = le16(hdr + 10);
    m->img_size = le32(hdr + 12);
    m->flags = le32(hdr + 16);
    m->version.major = hdr[20];
    m->version.minor = hdr[21];
    m->version.revision = le16(hdr + 22);
    m->version.build = le32(hdr + 24);
    if (m->hdr_size < MCUIMG_HDR_LEN)
        return fail(err, errlen, "header size smaller than the header");
    if (m->flags != 0)
        return fail(err, errlen, "image flags not supported (encrypted, RAM-load, ...)");
    /* 64-bit sums: a 32-bit image size cannot wrap them. */
    uint64_t hashed = (uint64_t)m->hdr_size + m->img_size + m->prot_size;
    if (hashed + MCUIMG_TLV_HDR_LEN > avail)
        return fail(err, errlen, "image size past the end of the slot");
    m->hashed_len = (uint32_t)hashed;
    return 0;
}

int mcuimg_parse_tlvs(struct mcuimg *m, const uint8_t *prot, const uint8_t *tlv, size_t tlv_avail,
                      char *err, size_t errlen)
{
    if (m->prot_size) {
        if (m->prot_size < MCUIMG_TLV_HDR_LEN || le16(prot) != MCUIMG_PROT_MAGIC ||
            le16(prot + 2) != m->prot_size)
            return fail(err, errlen, "protected TLV area does not match its header");
        if (walk(m, prot, 0, m->prot_size, 1, err, errlen) != 0)
            return -1;
    }
    if (le16(tlv) != MCUIMG_TLV_MAGIC)
        return fail(err, errlen, "no TLV area after the image (bad magic)");
    size_t tot = le16(tlv + 2);
    if (tot < MCUIMG_TLV_HDR_LEN || tot > tlv_avail)
        return fail(err, errlen, "TLV area past the end of the slot");
    if (walk(m, tlv, 0, tot, 0, err, errlen) != 0)
        return -1;
    if (!m->sha256)
        return fail(err, errlen, "no SHA256 TLV");
    if (!m->keyhash)
        return fail(err, errlen, "no KEYHASH TLV");
    if (!m->sig)
        return fail(err, errlen, "no signature");
    m->total_len = m->hashed_len + (uint32_t)tot;
    return 0;
}

int mcuimg_parse(const uint8_t *data, size_t len, struct mcuimg *m, char *err, size_t errlen)
{
    if (mcuimg_parse_header(data, len, m, err, errlen) != 0)
        return -1;
    const uint8_t *prot = data + (size_t)m->hdr_size + m->img_size;
    return mcuimg_parse_tlvs(m, prot, data + m->hashed_len, len - m->hashed_len, err, errlen);
}

int mcuimg_version_cmp(const struct mcuimg_version *a, const struct mcuimg_version *b)
{
    uint64_t x[4] = {a->major, a->minor, a->revision, a->build};
    uint64_t y[4] = {b->major, b->minor, b->revision, b->build};
    for (int i = 0; i < 4; i++)
        if (x[i] != y[i])
            return x[i] < y[i] ? -1 : 1;
    return 0;
}

void mcuimg_version_format(const struct mcuimg_version *v, char *out, size_t cap)
{
    snprintf(out, cap, "%u.%u.%u+%lu", v->major, v->minor, v->revision, (unsigned long)v->build);
}

/* A decimal number up to `max`, ending at one of `stops`; advances *p. */
static int number(const char **p, uint64_t max, const char *stops, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    if (*s < '0' || *s > '9')
        return -1;
    for (; *s >= '0' && *s <= '9'; s++) {
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > max)
            return -1;
    }
    if (!strchr(stops, *s))
        return -1;
    *p = s;
    *out = v;
    return 0;
}

int mcuimg_version_parse(const char *text, struct mcuimg_version *v)
{
    uint64_t major = 0, minor = 0, rev = 0, build = 0;
    const char *p = text;
    if (number(&p, 255, ".+", &major) != 0)
        return -1;
    if (*p == '.' && (p++, number(&p, 255, ".+", &minor) != 0))
        return -1;
    if (*p == '.' && (p++, number(&p, 65535, "+", &rev) != 0))
        return -1;
    if (*p == '+' && (p++, number(&p, 0xffffffffu, "", &build) != 0))
        return -1;
    if (*p)
        return -1;
    v->major = (uint8_t)major;
    v->minor = (uint8_t)minor;
    v->revision = (uint16_t)rev;
    v->build = (uint32_t)build;
    return 0;
}
