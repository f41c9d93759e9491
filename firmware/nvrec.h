/* nvrec.h — one small record kept safe across power cuts in two flash
 * sectors (the admin record, the boot state).
 *
 * The two sectors hold alternating copies, each with a sequence number and
 * a SHA-256 over its bytes; the newest intact copy wins, and a write goes
 * to the sector that does not hold it and is read back, so a power cut at
 * any moment leaves the previous record readable. Layout of a copy,
 * little-endian, at the start of its sector: magic (4), format (1), a flags
 * byte the owner keeps (1), zero (2), sequence (4), payload, SHA-256 (32). */
#ifndef NVREC_H
#define NVREC_H

#include <stddef.h>
#include <stdint.h>

#include "hal_flash.h"

#define NVREC_PAYLOAD_MAX 160

struct nvrec_spec {
    enum hal_flash_part part; /* at least two sectors */
    char magic[4];
    uint8_t format;     /* a copy of another format is not intact */
    size_t payload_len; /* fixed for the format; at most NVREC_PAYLOAD_MAX */
};

enum nvrec_status {
    NVREC_OK = 0,      /* the newest intact copy was read */
    NVREC_EMPTY = 1,   /* never written (both sectors erased) */
    NVREC_DAMAGED = -1 /* written, but no copy is intact (or no partition) */
};

/* Read the newest intact copy into *flags and `payload`. */
enum nvrec_status nvrec_load(const struct nvrec_spec *spec, uint8_t *flags, uint8_t *payload);
/* Write a new copy; 0, or -1 (the previous copy stays the newest). */
int nvrec_store(const struct nvrec_spec *spec, uint8_t flags, const uint8_t *payload);

/* Little-endian helpers for payloads. */
void nvrec_put32(uint8_t *p, uint32_t v);
uint32_t nvrec_get32(const uint8_t *p);
void nvrec_put64(uint8_t *p, uint64_t v);
uint64_t nvrec_get64(const uint8_t *p);

#endif
