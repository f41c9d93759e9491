/* adminrec.h — the admin password record, in its own flash partition.
 *
 * One small record (the PBKDF2 hash of the admin password, its salt and
 * iteration count, the key epoch) kept apart from relay.db: a damaged or
 * unreadable database must neither lock the operator out nor look like a
 * first boot. Two sectors hold alternating copies, each with a sequence
 * number and a SHA-256 over its bytes; the newest intact copy wins, and a
 * write goes to the sector that does not hold it, so a power cut at any
 * moment leaves the previous record readable. */
#ifndef ADMINREC_H
#define ADMINREC_H

#include <stdint.h>

#include "crypto.h"

#define ADMINREC_HAS_PASSWORD 0x01u /* an admin password is set */
#define ADMINREC_RESET_NOTED 0x02u  /* a factory reset is not yet in the audit log */

struct adminrec {
    uint32_t flags;
    uint32_t iterations; /* PBKDF2-HMAC-SHA256 count of `hash` */
    uint8_t salt[CRYPTO_SALT_LEN];
    uint8_t hash[CRYPTO_HASH_LEN];
    uint8_t epoch[CRYPTO_EPOCH_LEN]; /* crypto_set_epoch(); zero until a factory reset */
    int64_t reset_at;                /* wall time of the last factory reset, 0 if none */
};

enum adminrec_status {
    ADMINREC_OK = 0,      /* *rec holds the newest record */
    ADMINREC_EMPTY = 1,   /* never written (both sectors erased): first boot */
    ADMINREC_DAMAGED = -1 /* written, but no copy is intact: only recovery helps */
};

/* Read the newest intact record. */
enum adminrec_status adminrec_load(struct adminrec *rec);
/* Write `rec` as the newest record; 0, or -1 (the previous one stays). */
int adminrec_store(const struct adminrec *rec);

#endif
