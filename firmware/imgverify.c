/* imgverify.c — firmware image verification; see imgverify.h. */
#include "imgverify.h"

#include <stdio.h>
#include <string.h>

#include "crypto.h"

int imgverify_check(const uint8_t *data, size_t len, const struct imgverify_policy *policy,
                    struct mcuimg *m, char *err, size_t errlen)
{
    if (mcuimg_parse(data, len, m, err, errlen) != 0)
        return -1;
    uint8_t digest[32];
    if (crypto_sha256(data, m->hashed_len, digest) != 0 ||
        memcmp(digest, m->sha256, sizeof digest) != 0) {
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
