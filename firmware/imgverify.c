/* imgverify.c — firmware image verification; see imgverify.h. */
#include "imgverify.h"

#include <stdio.h>
#include <string.h>

#include "crypto.h"

/* Everything after the parse and the hash: key, board, counter, signature. */
static int check_parsed(const struct mcuimg *m, const uint8_t digest[32],
                        const struct imgverify_policy *policy, char *err, size_t errlen)
{
    if (memcmp(digest, m->sha256, 32) != 0) {
        snprintf(err, errlen, "SHA-256 does not match: the image is damaged or was changed");
        return -1;
    }
    uint8_t keyhash[32];
    if (crypto_sha256(policy->pubkey_der, policy->pubkey_len, keyhash) != 0 ||
        memcmp(keyhash, m->keyhash, sizeof keyhash) != 0) {
        snprintf(err, errlen, "signed with another key than this device trusts");
        return -1;
    }
    /* The board and counter are inside the hashed bytes, so they are
     * checked before the (costlier) signature but trusted only after it. */
    if (policy->board && strcmp(m->board, policy->board) != 0) {
        snprintf(err, errlen, "built for board '%s', not '%s'", m->board[0] ? m->board : "(none)",
                 policy->board);
        return -1;
    }
    uint32_t counter = m->has_sec_cnt ? m->sec_cnt : 0;
    if (counter < policy->min_sec_cnt) {
        snprintf(err, errlen, "security counter %lu is below the minimum %lu (a downgrade)",
                 (unsigned long)counter, (unsigned long)policy->min_sec_cnt);
        return -1;
    }
    if (crypto_ecdsa_p256_verify(policy->pubkey_der, policy->pubkey_len, m->sha256, m->sig,
                                 m->sig_len) != 0) {
        snprintf(err, errlen, "signature does not verify");
        return -1;
    }
    return 0;
}

int imgverify_check(const uint8_t *data, size_t len, const struct imgverify_policy *policy,
                    struct mcuimg *m, char *err, size_t errlen)
{
    if (mcuimg_parse(data, len, m, err, errlen) != 0)
        return -1;
    uint8_t digest[32];
    if (crypto_sha256(data, m->hashed_len, digest) != 0) {
        snprintf(err, errlen, "cannot compute SHA-256");
        return -1;
    }
    return check_parsed(m, digest, policy, err, errlen);
}

static int read_fail(char *err, size_t errlen)
{
    snprintf(err, errlen, "cannot read the image");
    return -1;
}

int imgverify_check_read(imgverify_read_fn read, void *ctx, uint32_t avail,
                         const struct imgverify_policy *policy, struct mcuimg *m,
                         uint8_t tlv_buf[IMGVERIFY_TLV_BUF], char *err, size_t errlen)
{
    uint8_t hdr[MCUIMG_HDR_LEN];
    memset(m, 0, sizeof *m);
    if (avail >= MCUIMG_HDR_LEN && read(ctx, 0, hdr, sizeof hdr) != 0)
        return read_fail(err, errlen);
    if (mcuimg_parse_header(hdr, avail, m, err, errlen) != 0)
        return -1;
    /* Both TLV areas into the buffer: the protected one, then the info
     * header of the other and as much of it as fits and exists. */
    uint32_t prot_at = m->hdr_size + m->img_size;
    size_t prot = m->prot_size;
    size_t tlv_avail = avail - m->hashed_len;
    if (tlv_avail > IMGVERIFY_TLV_BUF - prot)
        tlv_avail = IMGVERIFY_TLV_BUF - prot;
    if (prot + MCUIMG_TLV_HDR_LEN > IMGVERIFY_TLV_BUF) {
        snprintf(err, errlen, "TLV area larger than %d bytes", IMGVERIFY_TLV_BUF);
        return -1;
    }
    if ((prot && read(ctx, prot_at, tlv_buf, prot) != 0) ||
        read(ctx, m->hashed_len, tlv_buf + prot, tlv_avail) != 0)
        return read_fail(err, errlen);
    size_t tot = (size_t)tlv_buf[prot + 2] | (size_t)tlv_buf[prot + 3] << 8;
    if (tot > tlv_avail && tlv_avail == IMGVERIFY_TLV_BUF - prot &&
        (uint64_t)m->hashed_len + tot <= avail) {
        snprintf(err, errlen, "TLV area larger than %d bytes", IMGVERIFY_TLV_BUF);
        return -1;
    }
    if (mcuimg_parse_tlvs(m, tlv_buf, tlv_buf + prot, tlv_avail, err, errlen) != 0)
        return -1;
    /* The hash over header, payload and protected area, a piece at a time. */
    struct crypto_sha256_ctx sha;
    uint8_t chunk[512], digest[32];
    crypto_sha256_begin(&sha);
    for (uint32_t off = 0; off < m->hashed_len;) {
        size_t n = m->hashed_len - off < sizeof chunk ? m->hashed_len - off : sizeof chunk;
        if (read(ctx, off, chunk, n) != 0 || crypto_sha256_update(&sha, chunk, n) != 0) {
            crypto_sha256_end(&sha, digest);
            return read_fail(err, errlen);
        }
        off += (uint32_t)n;
    }
    if (crypto_sha256_end(&sha, digest) != 0)
        return read_fail(err, errlen);
    return check_parsed(m, digest, policy, err, errlen);
}
