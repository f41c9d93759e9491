/* nvrec.c — two-sector power-cut-safe records; see nvrec.h. */
#include "nvrec.h"

#include <string.h>

#include "crypto.h"

#define OFF_FORMAT 4
#define OFF_FLAGS 5
#define OFF_SEQ 8
#define OFF_PAYLOAD 12
#define DIGEST_LEN 32
#define BUF_MAX 256 /* a whole copy rounded up to any write block up to 64 bytes */

void nvrec_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

uint32_t nvrec_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void nvrec_put64(uint8_t *p, uint64_t v)
{
    nvrec_put32(p, (uint32_t)v);
    nvrec_put32(p + 4, (uint32_t)(v >> 32));
}

uint64_t nvrec_get64(const uint8_t *p) { return nvrec_get32(p) | (uint64_t)nvrec_get32(p + 4) << 32; }

static size_t copy_len(const struct nvrec_spec *s) { return OFF_PAYLOAD + s->payload_len + DIGEST_LEN; }

/* One copy: 1 intact (flags, payload and sequence filled in), 0 erased,
 * -1 anything else. */
static int read_copy(const struct nvrec_spec *s, uint32_t sector, uint8_t *flags,
                     uint8_t *payload, uint32_t *seq)
{
    uint8_t buf[BUF_MAX], digest[DIGEST_LEN];
    size_t len = copy_len(s), body = OFF_PAYLOAD + s->payload_len;
    if (hal_flash_read(s->part, sector, buf, len) != 0)
        return -1;
    size_t erased = 0;
    while (erased < len && buf[erased] == 0xFF)
        erased++;
    if (erased == len)
        return 0;
    int ok = memcmp(buf, s->magic, 4) == 0 && buf[OFF_FORMAT] == s->format &&
             crypto_sha256(buf, body, digest) == 0 &&
             memcmp(digest, buf + body, sizeof digest) == 0;
    if (ok) {
        *flags = buf[OFF_FLAGS];
        memcpy(payload, buf + OFF_PAYLOAD, s->payload_len);
        *seq = nvrec_get32(buf + OFF_SEQ);
    }
    crypto_wipe(buf, sizeof buf); /* the admin record's hash passes through here */
    return ok ? 1 : -1;
}

static int usable(const struct nvrec_spec *s, struct hal_flash_info *info)
{
    return s->payload_len <= NVREC_PAYLOAD_MAX && hal_flash_info(s->part, info) == 0 &&
           info->size >= 2 * info->sector_size && info->write_block > 0 &&
           (copy_len(s) + info->write_block - 1) / info->write_block * info->write_block <=
               BUF_MAX;
}

/* The newest intact copy: its sector index (0 or 1), or -1 for none.
 * `any_written` tells an erased partition from a damaged one. */
static int newest(const struct nvrec_spec *s, const struct hal_flash_info *info, uint8_t *flags,
                  uint8_t *payload, uint32_t *seq, int *any_written)
{
    int best = -1;
    *any_written = 0;
    for (int i = 0; i < 2; i++) {
        uint8_t f, p[NVREC_PAYLOAD_MAX];
        uint32_t q;
        int got = read_copy(s, (uint32_t)i * info->sector_size, &f, p, &q);
        if (got != 0)
            *any_written = 1;
        /* Sequence numbers compare modulo 2^32, so a wrap stays correct. */
        if (got == 1 && (best < 0 || (int32_t)(q - *seq) > 0)) {
            best = i;
            *flags = f;
            memcpy(payload, p, s->payload_len);
            *seq = q;
        }
        crypto_wipe(p, sizeof p);
    }
    return best;
}

enum nvrec_status nvrec_load(const struct nvrec_spec *s, uint8_t *flags, uint8_t *payload)
{
    struct hal_flash_info info;
    uint32_t seq = 0;
    int any_written;
    if (!usable(s, &info))
        return NVREC_DAMAGED; /* no partition is not a first boot */
    if (newest(s, &info, flags, payload, &seq, &any_written) >= 0)
        return NVREC_OK;
    *flags = 0;
    memset(payload, 0, s->payload_len);
    return any_written ? NVREC_DAMAGED : NVREC_EMPTY;
}

int nvrec_store(const struct nvrec_spec *s, uint8_t flags, const uint8_t *payload)
{
    struct hal_flash_info info;
    if (!usable(s, &info))
        return -1;
    uint8_t cur_flags, cur[NVREC_PAYLOAD_MAX];
    uint32_t seq = 0;
    int any_written;
    int at = newest(s, &info, &cur_flags, cur, &seq, &any_written);
    crypto_wipe(cur, sizeof cur);
    uint32_t target = (at == 0 ? 1u : 0u) * info.sector_size;

    uint8_t buf[BUF_MAX];
    size_t body = OFF_PAYLOAD + s->payload_len;
    memset(buf, 0xFF, sizeof buf);
    memcpy(buf, s->magic, 4);
    buf[OFF_FORMAT] = s->format;
    buf[OFF_FLAGS] = flags;
    buf[6] = buf[7] = 0;
    nvrec_put32(buf + OFF_SEQ, at >= 0 ? seq + 1 : 1);
    memcpy(buf + OFF_PAYLOAD, payload, s->payload_len);
    int rc = -1;
    if (crypto_sha256(buf, body, buf + body) == 0) {
        size_t len = (copy_len(s) + info.write_block - 1) / info.write_block * info.write_block;
        if (hal_flash_erase(s->part, target) == 0 &&
            hal_flash_program(s->part, target, buf, len) == 0) {
            /* Read back: a copy that does not verify must not count as written. */
            uint8_t f, check[NVREC_PAYLOAD_MAX];
            uint32_t q;
            rc = read_copy(s, target, &f, check, &q) == 1 ? 0 : -1;
            crypto_wipe(check, sizeof check);
        }
    }
    crypto_wipe(buf, sizeof buf);
    return rc;
}
