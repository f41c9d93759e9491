/* adminrec.c — the admin record on its flash partition; see adminrec.h. */
#include "adminrec.h"

#include <string.h>

#include "nvrec.h"

/* The payload after nvrec's header (flags ride in its flags byte). */
#define P_ITER 0
#define P_SALT 4
#define P_HASH (P_SALT + CRYPTO_SALT_LEN)
#define P_EPOCH (P_HASH + CRYPTO_HASH_LEN)
#define P_RESET (P_EPOCH + CRYPTO_EPOCH_LEN)
#define P_LEN (P_RESET + 8)

static const struct nvrec_spec spec = {HAL_FLASH_ADMIN, {'S', 'H', 'R', 'A'}, 1, P_LEN};

enum adminrec_status adminrec_load(struct adminrec *rec)
{
    uint8_t flags, p[P_LEN];
    enum nvrec_status st = nvrec_load(&spec, &flags, p);
    memset(rec, 0, sizeof *rec);
    if (st == NVREC_OK) {
        rec->flags = flags;
        rec->iterations = nvrec_get32(p + P_ITER);
        memcpy(rec->salt, p + P_SALT, sizeof rec->salt);
        memcpy(rec->hash, p + P_HASH, sizeof rec->hash);
        memcpy(rec->epoch, p + P_EPOCH, sizeof rec->epoch);
        rec->reset_at = (int64_t)nvrec_get64(p + P_RESET);
    }
    crypto_wipe(p, sizeof p);
    return st == NVREC_OK ? ADMINREC_OK : st == NVREC_EMPTY ? ADMINREC_EMPTY : ADMINREC_DAMAGED;
}

int adminrec_store(const struct adminrec *rec)
{
    uint8_t p[P_LEN];
    nvrec_put32(p + P_ITER, rec->iterations);
    memcpy(p + P_SALT, rec->salt, sizeof rec->salt);
    memcpy(p + P_HASH, rec->hash, sizeof rec->hash);
    memcpy(p + P_EPOCH, rec->epoch, sizeof rec->epoch);
    nvrec_put64(p + P_RESET, (uint64_t)rec->reset_at);
    int rc = nvrec_store(&spec, (uint8_t)rec->flags, p);
    crypto_wipe(p, sizeof p);
    return rc;
}
