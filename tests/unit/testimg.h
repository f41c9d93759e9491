/* testimg.h — signed MCUboot images made in unit tests with mbedTLS: a
 * header, the protected and unprotected TLV areas and a real signature,
 * with switches to break one thing at a time. Two test keys: `key` signs
 * by default, `other` is a foreign one. */
#ifndef TESTIMG_H
#define TESTIMG_H

#include <stddef.h>
#include <stdint.h>

#include "mbedtls/pk.h"

#define TESTIMG_MAX 16384

struct testimg_key {
    mbedtls_pk_context pk;
    uint8_t pub[200]; /* SubjectPublicKeyInfo DER */
    size_t pub_len;
};
extern struct testimg_key testimg_key, testimg_other;

struct testimg {
    const uint8_t *payload;
    size_t payload_len;
    uint16_t hdr_size;
    uint8_t version[3]; /* major, minor, revision; build = version[2] + 1 */
    long sec_cnt;       /* -1: none */
    const char *board;  /* NULL: none */
    int omit_sha, omit_keyhash, omit_sig, two_sigs;
    int sig_in_protected, sec_cnt_unprotected;
    int sig_pad_to;                 /* pad the DER signature with zeros to this length */
    const struct testimg_key *signer; /* default: testimg_key */
    const struct testimg_key *keyhash_of; /* default: the signer's */
};

/* Make the two keys (deterministic); 0 or -1. */
int testimg_init(void);
void testimg_free(void);
/* Little-endian stores, for tests that edit an image's fields. */
void testimg_put16(uint8_t *p, uint16_t v);
void testimg_put32(uint8_t *p, uint32_t v);
/* Build into img (TESTIMG_MAX bytes); returns the image length. */
size_t testimg_build(uint8_t *img, const struct testimg *t);

#endif
