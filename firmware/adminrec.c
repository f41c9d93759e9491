/* adminrec.c — the admin record on its flash partition; see adminrec.h. */
#include "adminrec.h"

#include <string.h>

#include "hal_flash.h"

#define PART HAL_FLASH_ADMIN
#define MAGIC "SHRA"
#define FORMAT 1
/* Layout of a copy, little-endian, at the start of its sector. */
#define OFF_FORMAT 4
#define OFF_FLAGS 5
#define OFF_SEQ 8
#define OFF_ITER 12
#define OFF_SALT 16
#define OFF_HASH (OFF_SALT + CRYPTO_SALT_LEN)
#define OFF_EPOCH (OFF_HASH + CRYPTO_HASH_LEN)
#define OFF_RESET (OFF_EPOCH + CRYPTO_EPOCH_LEN)
#define OFF_DIGEST (OFF_RESET + 8)
#define REC_LEN (OFF_DIGEST + 32)
#define BUF_MAX 256 /* REC_LEN rounded up to any write block up to 128 bytes */

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

static uint64_t get64(const uint8_t *p) { return get32(p) | (uint64_t)get32(p + 4) << 32; }

/* One copy: 1 intact (record and sequence filled in), 0 erased, -1 other. */
static int read_copy(uint32_t sector, struct adminrec *rec, uint32_t *seq)
{
    uint8_t buf[REC_LEN], digest[32];
    if (hal_flash_read(PART, sector, buf, sizeof buf) != 0)
        return -1;
    size_t erased = 0;
    while (erased < sizeof buf && buf[erased] == 0xFF)
        erased++;
    if (erased == sizeof buf)
        return 0;
    if (memcmp(buf, MAGIC, 4) != 0 || buf[OFF_FORMAT] != FORMAT ||
        crypto_sha256(buf, OFF_DIGEST, digest) != 0 ||
        memcmp(digest, buf + OFF_DIGEST, sizeof digest) != 0)
        return -1;
    memset(rec, 0, sizeof *rec);
    rec->flags = buf[OFF_FLAGS];
    rec->iterations = get32(buf + OFF_ITER);
    memcpy(rec->salt, buf + OFF_SALT, sizeof rec->salt);
    memcpy(rec->hash, buf + OFF_HASH, sizeof rec->hash);
    memcpy(rec->epoch, buf + OFF_EPOCH, sizeof rec->epoch);
    rec->reset_at = (int64_t)get64(buf + OFF_RESET);
    *seq = get32(buf + OFF_SEQ);
    return 1;
}

/* The newest intact copy: its sector index (0 or 1), or -1 for none.
 * `any_written` tells an erased partition from a damaged one. */
static int newest(struct adminrec *rec, uint32_t *seq, int *any_written)
{
    struct hal_flash_info info;
    int best = -1;
    *any_written = 0;
    if (hal_flash_info(PART, &info) != 0 || info.size < 2 * info.sector_size) {
        *any_written = 1; /* no partition is not a first boot */
        return -1;
    }
    for (int i = 0; i < 2; i++) {
        struct adminrec r;
        uint32_t s;
        int got = read_copy((uint32_t)i * info.sector_size, &r, &s);
        if (got != 0)
            *any_written = 1;
        /* Sequence numbers compare modulo 2^32: one write per password
         * change never wraps in practice, but stay correct if it did. */
        if (got == 1 && (best < 0 || (int32_t)(s - *seq) > 0)) {
            best = i;
            *rec = r;
            *seq = s;
        }
    }
    return best;
}

enum adminrec_status adminrec_load(struct adminrec *rec)
{
    uint32_t seq = 0;
    int any_written;
    int at = newest(rec, &seq, &any_written);
    if (at >= 0)
        return ADMINREC_OK;
    memset(rec, 0, sizeof *rec);
    return any_written ? ADMINREC_DAMAGED : ADMINREC_EMPTY;
}

int adminrec_store(const struct adminrec *rec)
{
    struct hal_flash_info info;
    if (hal_flash_info(PART, &info) != 0 || info.size < 2 * info.sector_size ||
        info.write_block == 0 || info.write_block > BUF_MAX - REC_LEN + 1)
        return -1;
    struct adminrec cur;
    uint32_t seq = 0;
    int any_written;
    int at = newest(&cur, &seq, &any_written);
    uint32_t target = (at == 0 ? 1u : 0u) * info.sector_size;

    uint8_t buf[BUF_MAX];
    memset(buf, 0xFF, sizeof buf);
    memcpy(buf, MAGIC, 4);
    buf[OFF_FORMAT] = FORMAT;
    buf[OFF_FLAGS] = (uint8_t)rec->flags;
    buf[6] = buf[7] = 0;
    put32(buf + OFF_SEQ, at >= 0 ? seq + 1 : 1);
    put32(buf + OFF_ITER, rec->iterations);
    memcpy(buf + OFF_SALT, rec->salt, sizeof rec->salt);
    memcpy(buf + OFF_HASH, rec->hash, sizeof rec->hash);
    memcpy(buf + OFF_EPOCH, rec->epoch, sizeof rec->epoch);
    put64(buf + OFF_RESET, (uint64_t)rec->reset_at);
    if (crypto_sha256(buf, OFF_DIGEST, buf + OFF_DIGEST) != 0)
        return -1;
    size_t len = (REC_LEN + info.write_block - 1) / info.write_block * info.write_block;
    int rc = -1;
    if (hal_flash_erase(PART, target) == 0 && hal_flash_program(PART, target, buf, len) == 0) {
        /* Read back: a copy that does not verify must not count as written. */
        struct adminrec check;
        uint32_t s;
        rc = read_copy(target, &check, &s) == 1 ? 0 : -1;
        crypto_wipe(&check, sizeof check);
    }
    crypto_wipe(buf, sizeof buf);
    crypto_wipe(&cur, sizeof cur);
    return rc;
}
