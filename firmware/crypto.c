/* crypto.c — mbedTLS behind a small API; see crypto.h. */
#include "crypto.h"

#include <string.h>

#include "hal_rng.h"
#include "hal_secret.h"
#include "mbedtls/ctr_drbg.h"
#include "mbedtls/entropy.h"
#include "mbedtls/gcm.h"
#include "mbedtls/hkdf.h"
#include "mbedtls/md.h"
#include "mbedtls/pk.h"
#include "mbedtls/ecp.h"
#include "mbedtls/pkcs5.h"
#include "mbedtls/platform_util.h"
#include "mbedtls/sha256.h"
#include "mbedtls/x509_crt.h"
#include "clockfmt.h"

#include <stdio.h>

#define SEAL_VERSION 1
#define NONCE_LEN 12
#define TAG_LEN 16
#define KEY_LEN 32
/* HKDF "info" labels: one key per purpose, so a key can never be misused
 * for another purpose even if one use leaks. */
#define LABEL_SECRETS "shr secrets-at-rest v1"

static mbedtls_entropy_context entropy;
static mbedtls_ctr_drbg_context drbg;
static uint8_t secrets_key[KEY_LEN];
static uint8_t key_epoch[CRYPTO_EPOCH_LEN]; /* all zero: no epoch (never reset) */
static int ready;

void crypto_set_epoch(const uint8_t epoch[CRYPTO_EPOCH_LEN])
{
    memcpy(key_epoch, epoch, sizeof key_epoch);
}

static int epoch_set(void)
{
    uint8_t any = 0;
    for (size_t i = 0; i < sizeof key_epoch; i++)
        any |= key_epoch[i];
    return any != 0;
}

/* mbedTLS entropy source backed by the HAL; a short read is a failure. */
static int hal_entropy(void *data, unsigned char *out, size_t len, size_t *olen)
{
    (void)data;
    if (hal_rng_fill(out, len) != 0)
        return MBEDTLS_ERR_ENTROPY_SOURCE_FAILED;
    *olen = len;
    return 0;
}

int crypto_init(void)
{
    if (ready)
        return 0;
    mbedtls_entropy_init(&entropy);
    mbedtls_ctr_drbg_init(&drbg);
    if (mbedtls_entropy_add_source(&entropy, hal_entropy, NULL, 32,
                                   MBEDTLS_ENTROPY_SOURCE_STRONG) != 0)
        return -1;
    static const char personal[] = "smart-host-relay";
    if (mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy,
                              (const unsigned char *)personal, sizeof personal - 1) != 0)
        return -1;
    uint8_t secret[HAL_SECRET_LEN];
    if (hal_secret_get(secret) != 0)
        return -1;
    /* The epoch is HKDF's salt; none keeps the keys of units sealed before
     * epochs existed. */
    int rc = mbedtls_hkdf(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256),
                          epoch_set() ? key_epoch : NULL, epoch_set() ? sizeof key_epoch : 0,
                          secret, sizeof secret, (const unsigned char *)LABEL_SECRETS,
                          sizeof LABEL_SECRETS - 1, secrets_key, sizeof secrets_key);
    crypto_wipe(secret, sizeof secret);
    if (rc != 0)
        return -1;
    ready = 1;
    return 0;
}

int crypto_random(void *buf, size_t len)
{
    if (!ready)
        return -1;
    return mbedtls_ctr_drbg_random(&drbg, buf, len) == 0 ? 0 : -1;
}

void crypto_wipe(void *buf, size_t len) { mbedtls_platform_zeroize(buf, len); }

int crypto_seal(const char *context, const void *secret, size_t len, uint8_t *out, size_t cap)
{
    if (!ready || len > CRYPTO_SECRET_MAX || cap < len + CRYPTO_SEAL_OVERHEAD)
        return -1;
    out[0] = SEAL_VERSION;
    uint8_t *nonce = out + 1, *ct = out + 1 + NONCE_LEN, *tag = ct + len;
    if (crypto_random(nonce, NONCE_LEN) != 0)
        return -1;
    mbedtls_gcm_context gcm;
    mbedtls_gcm_init(&gcm);
    int rc = mbedtls_gcm_setkey(&gcm, MBEDTLS_CIPHER_ID_AES, secrets_key, KEY_LEN * 8);
    if (rc == 0)
        rc = mbedtls_gcm_crypt_and_tag(&gcm, MBEDTLS_GCM_ENCRYPT, len, nonce, NONCE_LEN,
                                       (const unsigned char *)context, strlen(context),
                                       secret, ct, TAG_LEN, tag);
    mbedtls_gcm_free(&gcm);
    return rc == 0 ? (int)(len + CRYPTO_SEAL_OVERHEAD) : -1;
}

int crypto_open(const char *context, const uint8_t *sealed, size_t len, void *out, size_t cap)
{
    if (!ready || len < CRYPTO_SEAL_OVERHEAD || sealed[0] != SEAL_VERSION)
        return -1;
    size_t plain = len - CRYPTO_SEAL_OVERHEAD;
    if (plain > cap)
        return -1;
    const uint8_t *nonce = sealed + 1, *ct = sealed + 1 + NONCE_LEN, *tag = ct + plain;
    mbedtls_gcm_context gcm;
    mbedtls_gcm_init(&gcm);
    int rc = mbedtls_gcm_setkey(&gcm, MBEDTLS_CIPHER_ID_AES, secrets_key, KEY_LEN * 8);
    if (rc == 0)
        rc = mbedtls_gcm_auth_decrypt(&gcm, plain, nonce, NONCE_LEN,
                                      (const unsigned char *)context, strlen(context), tag,
                                      TAG_LEN, ct, out);
    mbedtls_gcm_free(&gcm);
    if (rc != 0) {
        crypto_wipe(out, plain);
        return -1;
    }
    return (int)plain;
}

/* --- TLS identity --- */

/* mbedTLS wants "YYYYMMDDhhmmss". */
static void x509_time(int64_t t, char out[16])
{
    char utc[CLOCKFMT_UTC_LEN];
    clockfmt_utc(t, utc); /* "YYYY-MM-DD hh:mm:ss" */
    snprintf(out, 16, "%.4s%.2s%.2s%.2s%.2s%.2s", utc, utc + 5, utc + 8, utc + 11, utc + 14,
             utc + 17);
}

/* mbedTLS writes DER at the END of the buffer; move it to the start and
 * wipe the rest, which otherwise keeps a second copy of a private key. */
static int der_to_front(uint8_t *buf, size_t cap, int n, size_t *len)
{
    if (n <= 0 || (size_t)n > cap)
        return -1;
    memmove(buf, buf + cap - (size_t)n, (size_t)n);
    crypto_wipe(buf + n, cap - (size_t)n);
    *len = (size_t)n;
    return 0;
}

int crypto_tls_identity_create(const char *common_name, int64_t now, uint8_t *key_der,
                               size_t *key_len, uint8_t *cert_der, size_t *cert_len)
{
    if (!ready)
        return -1;
    mbedtls_pk_context key;
    mbedtls_x509write_cert crt;
    mbedtls_mpi serial;
    mbedtls_pk_init(&key);
    mbedtls_x509write_crt_init(&crt);
    mbedtls_mpi_init(&serial);
    int rc = -1;
    char subject[160], from[16], to[16];
    uint8_t serial_bytes[16];
    snprintf(subject, sizeof subject, "CN=%s", common_name);
    x509_time(now - 86400, from);
    x509_time(now + (int64_t)CRYPTO_TLS_VALID_DAYS * 86400, to);
    if (mbedtls_pk_setup(&key, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) != 0 ||
        mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(key),
                            mbedtls_ctr_drbg_random, &drbg) != 0)
        goto out;
    if (crypto_random(serial_bytes, sizeof serial_bytes) != 0)
        goto out;
    serial_bytes[0] &= 0x7F; /* a positive serial number */
    if (mbedtls_mpi_read_binary(&serial, serial_bytes, sizeof serial_bytes) != 0)
        goto out;
    mbedtls_x509write_crt_set_version(&crt, MBEDTLS_X509_CRT_VERSION_3);
    mbedtls_x509write_crt_set_md_alg(&crt, MBEDTLS_MD_SHA256);
    mbedtls_x509write_crt_set_subject_key(&crt, &key);
    mbedtls_x509write_crt_set_issuer_key(&crt, &key);
    if (mbedtls_x509write_crt_set_subject_name(&crt, subject) != 0 ||
        mbedtls_x509write_crt_set_issuer_name(&crt, subject) != 0 ||
        mbedtls_x509write_crt_set_serial(&crt, &serial) != 0 ||
        mbedtls_x509write_crt_set_validity(&crt, from, to) != 0 ||
        mbedtls_x509write_crt_set_basic_constraints(&crt, 0, -1) != 0)
        goto out;
    if (der_to_front(key_der, CRYPTO_KEY_DER_MAX,
                     mbedtls_pk_write_key_der(&key, key_der, CRYPTO_KEY_DER_MAX), key_len) != 0)
        goto out;
    if (der_to_front(cert_der, CRYPTO_CERT_DER_MAX,
                     mbedtls_x509write_crt_der(&crt, cert_der, CRYPTO_CERT_DER_MAX,
                                               mbedtls_ctr_drbg_random, &drbg),
                     cert_len) != 0)
        goto out;
    rc = 0;
out:
    if (rc != 0) /* no half-made identity, and no key left behind */
        crypto_wipe(key_der, CRYPTO_KEY_DER_MAX);
    mbedtls_mpi_free(&serial);
    mbedtls_x509write_crt_free(&crt);
    mbedtls_pk_free(&key);
    return rc;
}

static void x509_time_text(const mbedtls_x509_time *t, char *out, size_t cap)
{
    snprintf(out, cap, "%04d-%02d-%02d %02d:%02d:%02d", t->year, t->mon, t->day, t->hour,
             t->min, t->sec);
}

int crypto_cert_info(const uint8_t *cert_der, size_t len, struct crypto_cert_info *info)
{
    mbedtls_x509_crt crt;
    mbedtls_x509_crt_init(&crt);
    int rc = mbedtls_x509_crt_parse_der(&crt, cert_der, len);
    if (rc == 0) {
        mbedtls_x509_dn_gets(info->subject, sizeof info->subject, &crt.subject);
        mbedtls_x509_dn_gets(info->issuer, sizeof info->issuer, &crt.issuer);
        x509_time_text(&crt.valid_from, info->not_before, sizeof info->not_before);
        x509_time_text(&crt.valid_to, info->not_after, sizeof info->not_after);
        uint8_t digest[32];
        mbedtls_sha256_ret(cert_der, len, digest, 0);
        for (int i = 0; i < 32; i++)
            snprintf(info->sha256 + 3 * i, sizeof info->sha256 - 3 * (size_t)i, "%02X%s",
                     digest[i], i < 31 ? ":" : "");
    }
    mbedtls_x509_crt_free(&crt);
    return rc == 0 ? 0 : -1;
}

/* --- password hashes --- */

int crypto_pbkdf2(const char *password, const uint8_t *salt, size_t salt_len,
                  uint32_t iterations, uint8_t out[CRYPTO_HASH_LEN])
{
    mbedtls_md_context_t md;
    mbedtls_md_init(&md);
    int rc = mbedtls_md_setup(&md, mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), 1);
    if (rc == 0)
        rc = mbedtls_pkcs5_pbkdf2_hmac(&md, (const unsigned char *)password, strlen(password),
                                       salt, salt_len, iterations, CRYPTO_HASH_LEN, out);
    mbedtls_md_free(&md);
    return rc == 0 ? 0 : -1;
}

struct crypto_pbkdf2_job {
    int live;
    mbedtls_md_context_t md; /* keyed with the password: HMAC's inner and outer pads */
    uint8_t u[CRYPTO_HASH_LEN]; /* the last iteration's HMAC */
    uint8_t t[CRYPTO_HASH_LEN]; /* XOR of all of them: the result so far */
    uint32_t done;
};

static struct crypto_pbkdf2_job pbkdf2_jobs[CRYPTO_PBKDF2_JOBS];

void crypto_pbkdf2_abort(struct crypto_pbkdf2_job *job)
{
    if (!job || !job->live)
        return;
    mbedtls_md_free(&job->md); /* zeroizes the keyed pads */
    crypto_wipe(job, sizeof *job);
}

struct crypto_pbkdf2_job *crypto_pbkdf2_begin(const char *password, const uint8_t *salt,
                                              size_t salt_len)
{
    struct crypto_pbkdf2_job *job = NULL;
    for (size_t i = 0; i < CRYPTO_PBKDF2_JOBS && !job; i++)
        if (!pbkdf2_jobs[i].live)
            job = &pbkdf2_jobs[i];
    if (!job)
        return NULL;
    memset(job, 0, sizeof *job);
    job->live = 1;
    mbedtls_md_init(&job->md);
    /* U1 = HMAC(P, S || INT(1)): the only block, as the hash is 32 bytes. */
    static const uint8_t block1[4] = {0, 0, 0, 1};
    int rc = mbedtls_md_setup(&job->md, mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), 1);
    if (rc == 0)
        rc = mbedtls_md_hmac_starts(&job->md, (const unsigned char *)password, strlen(password));
    if (rc == 0)
        rc = mbedtls_md_hmac_update(&job->md, salt, salt_len);
    if (rc == 0)
        rc = mbedtls_md_hmac_update(&job->md, block1, sizeof block1);
    if (rc == 0)
        rc = mbedtls_md_hmac_finish(&job->md, job->u);
    if (rc != 0) {
        crypto_pbkdf2_abort(job);
        return NULL;
    }
    memcpy(job->t, job->u, sizeof job->t);
    job->done = 1;
    return job;
}

uint32_t crypto_pbkdf2_run(struct crypto_pbkdf2_job *job, uint32_t n)
{
    for (uint32_t k = 0; k < n; k++) {
        /* U(i) = HMAC(P, U(i-1)); reset keeps the key, so no per-iteration
         * key schedule. An error cannot happen with a set-up SHA-256
         * context; if it did, the count would stop and the hash not match. */
        if (mbedtls_md_hmac_reset(&job->md) != 0 ||
            mbedtls_md_hmac_update(&job->md, job->u, sizeof job->u) != 0 ||
            mbedtls_md_hmac_finish(&job->md, job->u) != 0)
            break;
        for (size_t i = 0; i < sizeof job->t; i++)
            job->t[i] ^= job->u[i];
        job->done++;
    }
    return job->done;
}

void crypto_pbkdf2_end(struct crypto_pbkdf2_job *job, uint8_t out[CRYPTO_HASH_LEN])
{
    memcpy(out, job->t, CRYPTO_HASH_LEN);
    crypto_pbkdf2_abort(job);
}

int crypto_sha256(const void *data, size_t len, uint8_t out[32])
{
    return mbedtls_sha256_ret(data, len, out, 0) == 0 ? 0 : -1;
}

_Static_assert(sizeof(mbedtls_sha256_context) <= sizeof(((struct crypto_sha256_ctx *)0)->opaque),
               "crypto_sha256_ctx is too small for mbedtls_sha256_context");

void crypto_sha256_begin(struct crypto_sha256_ctx *c)
{
    mbedtls_sha256_context *s = (mbedtls_sha256_context *)c->opaque;
    mbedtls_sha256_init(s);
    mbedtls_sha256_starts_ret(s, 0);
}

int crypto_sha256_update(struct crypto_sha256_ctx *c, const void *data, size_t len)
{
    return mbedtls_sha256_update_ret((mbedtls_sha256_context *)c->opaque, data, len) == 0 ? 0 : -1;
}

int crypto_sha256_end(struct crypto_sha256_ctx *c, uint8_t out[32])
{
    mbedtls_sha256_context *s = (mbedtls_sha256_context *)c->opaque;
    int rc = mbedtls_sha256_finish_ret(s, out) == 0 ? 0 : -1;
    mbedtls_sha256_free(s);
    return rc;
}

int crypto_ecdsa_p256_verify(const uint8_t *pub_der, size_t pub_len, const uint8_t hash[32],
                             const uint8_t *sig, size_t sig_len)
{
    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
    int ok = mbedtls_pk_parse_public_key(&pk, pub_der, pub_len) == 0 &&
             mbedtls_pk_can_do(&pk, MBEDTLS_PK_ECDSA) &&
             mbedtls_pk_ec(pk)->grp.id == MBEDTLS_ECP_DP_SECP256R1 &&
             mbedtls_pk_verify(&pk, MBEDTLS_MD_SHA256, hash, 32, sig, sig_len) == 0;
    mbedtls_pk_free(&pk);
    return ok ? 0 : -1;
}

/* --- keyed hashes --- */

int crypto_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                       uint8_t out[CRYPTO_HMAC_LEN])
{
    int rc = mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), key, key_len, data,
                             len, out);
    return rc == 0 ? 0 : -1;
}

int crypto_equal(const void *a, const void *b, size_t len)
{
    const volatile uint8_t *x = a, *y = b;
    uint8_t diff = 0;
    for (size_t i = 0; i < len; i++)
        diff |= (uint8_t)(x[i] ^ y[i]);
    return diff == 0;
}

/* ======================================================================
 * crypto_tls_*: sans-I/O TLS client for outbound STARTTLS (see crypto.h)
 * ======================================================================
 * mbedTLS's BIO callbacks read from `in` and write to `out` inside the
 * object; the transport moves bytes between those and TCP. Like lwIP's
 * altcp_tls_mbedtls (same mbedTLS 2.28), we use the exported-but-internal
 * mbedtls_ssl_flush_output() and ssl.out_left to push a record mbedTLS
 * could only partly hand over once the transport made room. */
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>

#include "mbedtls/error.h"
#include "mbedtls/ssl.h"
#include "mbedtls/ssl_internal.h" /* mbedtls_ssl_flush_output */

enum tls_state { TLS_FREE = 0, TLS_HANDSHAKE, TLS_OPEN, TLS_CLOSED, TLS_FAILED };

/* A trust store generation. Sessions hold a reference to the one they
 * started with, so crypto_tls_ca_set() never frees a chain in use. At most
 * CRYPTO_TLS_MAX sessions + the current store + the one being parsed. */
struct tls_ca {
    mbedtls_x509_crt chain;
    int count;
    int refs;
};
static struct tls_ca tls_cas[CRYPTO_TLS_MAX + 2];
static struct tls_ca *tls_ca_current; /* NULL: empty store */

struct crypto_tls {
    enum tls_state state;
    int verify;
    int close_pending; /* close_notify asked for while a record was still queued */
    struct tls_ca *ca;
    uint32_t verify_flags;
    mbedtls_ssl_context ssl;
    mbedtls_ssl_config conf;
    size_t in_off, in_len; /* unread ciphertext is in[in_off .. in_len) */
    size_t out_len;        /* ciphertext for the transport is out[0 .. out_len) */
    char name[MBEDTLS_SSL_MAX_HOST_NAME_LEN + 1];
    char error[CRYPTO_TLS_ERR_MAX];
    char verify_text[CRYPTO_TLS_ERR_MAX];
    uint8_t in[CRYPTO_TLS_IN_MAX];
    uint8_t out[CRYPTO_TLS_OUT_MAX];
};
static struct crypto_tls tls_pool[CRYPTO_TLS_MAX];

__attribute__((format(printf, 3, 4))) static void tls_msg(char *buf, size_t cap,
                                                          const char *fmt, ...)
{
    if (!buf || cap == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
}

static void tls_ca_release(struct tls_ca *ca)
{
    if (ca && --ca->refs == 0) {
        mbedtls_x509_crt_free(&ca->chain);
        ca->count = 0;
    }
}

int crypto_tls_ca_count(void) { return tls_ca_current ? tls_ca_current->count : 0; }

int crypto_tls_ca_set(const uint8_t *data, size_t len, char *err, size_t errlen)
{
    tls_msg(err, errlen, "%s", "");
    if (len == 0) {
        tls_ca_release(tls_ca_current);
        tls_ca_current = NULL;
        return 0;
    }
    if (!data) {
        tls_msg(err, errlen, "%s", "CA certificates: no data");
        return -1;
    }
    if (len > CRYPTO_TLS_CA_MAX_LEN) {
        tls_msg(err, errlen, "CA certificates: input too large (max %d bytes)",
                CRYPTO_TLS_CA_MAX_LEN);
        return -1;
    }
    struct tls_ca *ca = NULL;
    for (size_t i = 0; i < sizeof tls_cas / sizeof tls_cas[0] && !ca; i++)
        if (tls_cas[i].refs == 0)
            ca = &tls_cas[i];
    if (!ca) { /* cannot happen: see the array's size */
        tls_msg(err, errlen, "%s", "CA certificates: no free store");
        return -1;
    }
    mbedtls_x509_crt_init(&ca->chain);

    /* mbedtls_x509_crt_parse() takes PEM only when the NUL is part of len. */
    static const char pem_marker[] = "-----BEGIN ";
    int is_pem = 0;
    for (size_t i = 0; i + sizeof pem_marker - 1 <= len && !is_pem; i++)
        is_pem = memcmp(data + i, pem_marker, sizeof pem_marker - 1) == 0;
    int rc;
    if (is_pem && data[len - 1] != '\0') {
        uint8_t *copy = malloc(len + 1);
        if (!copy) {
            tls_msg(err, errlen, "%s", "CA certificates: out of memory");
            return -1;
        }
        memcpy(copy, data, len);
        copy[len] = '\0';
        rc = mbedtls_x509_crt_parse(&ca->chain, copy, len + 1);
        free(copy);
    } else {
        rc = mbedtls_x509_crt_parse(&ca->chain, data, len);
    }
    int count = 0;
    for (const mbedtls_x509_crt *c = &ca->chain; c && c->raw.p; c = c->next)
        count++;
    if (rc != 0 || count == 0) {
        if (rc > 0) {
            tls_msg(err, errlen, "CA certificates: %d certificate(s) could not be parsed", rc);
        } else {
            char why[96] = "no certificate found";
            if (rc < 0)
                mbedtls_strerror(rc, why, sizeof why);
            tls_msg(err, errlen, "CA certificates rejected: %s", why);
        }
        mbedtls_x509_crt_free(&ca->chain);
        return -1;
    }
    ca->count = count;
    ca->refs = 1; /* the "current" reference */
    tls_ca_release(tls_ca_current);
    tls_ca_current = ca;
    return count;
}

/* --- BIO callbacks: only ever touch the object's buffers --- */

static int tls_bio_send(void *ctx, const unsigned char *buf, size_t len)
{
    struct crypto_tls *t = ctx;
    size_t room = sizeof t->out - t->out_len;
    if (room == 0)
        return MBEDTLS_ERR_SSL_WANT_WRITE;
    size_t n = len < room ? len : room;
    memcpy(t->out + t->out_len, buf, n);
    t->out_len += n;
    return (int)n;
}

static int tls_bio_recv(void *ctx, unsigned char *buf, size_t len)
{
    struct crypto_tls *t = ctx;
    size_t avail = t->in_len - t->in_off;
    if (avail == 0)
        return MBEDTLS_ERR_SSL_WANT_READ;
    size_t n = len < avail ? len : avail;
    memcpy(buf, t->in + t->in_off, n);
    t->in_off += n;
    if (t->in_off == t->in_len)
        t->in_off = t->in_len = 0;
    return (int)n;
}

static int tls_valid(const struct crypto_tls *t)
{
    return t && t >= tls_pool && t < tls_pool + CRYPTO_TLS_MAX &&
           t == &tls_pool[t - tls_pool] && t->state != TLS_FREE;
}

struct crypto_tls *crypto_tls_client(const char *server_name, int verify, char *err,
                                     size_t errlen)
{
    tls_msg(err, errlen, "%s", "");
    if (!ready) {
        tls_msg(err, errlen, "%s", "TLS: crypto not initialised");
        return NULL;
    }
    size_t name_len = server_name ? strlen(server_name) : 0;
    if (verify && name_len == 0) {
        tls_msg(err, errlen, "%s", "TLS: certificate verification needs a server name");
        return NULL;
    }
    if (name_len > MBEDTLS_SSL_MAX_HOST_NAME_LEN) {
        tls_msg(err, errlen, "%s", "TLS: server name too long");
        return NULL;
    }
    struct crypto_tls *t = NULL;
    for (int i = 0; i < CRYPTO_TLS_MAX && !t; i++)
        if (tls_pool[i].state == TLS_FREE)
            t = &tls_pool[i];
    if (!t) {
        tls_msg(err, errlen, "TLS: too many sessions (max %d)", CRYPTO_TLS_MAX);
        return NULL;
    }
    /* The slot was wiped by crypto_tls_free() (or is still zero from BSS). */
    t->state = TLS_HANDSHAKE;
    t->verify = verify ? 1 : 0;
    t->verify_flags = (uint32_t)-1;
    memcpy(t->name, server_name ? server_name : "", name_len + 1);
    mbedtls_ssl_init(&t->ssl);
    mbedtls_ssl_config_init(&t->conf);
    int rc = mbedtls_ssl_config_defaults(&t->conf, MBEDTLS_SSL_IS_CLIENT,
                                         MBEDTLS_SSL_TRANSPORT_STREAM,
                                         MBEDTLS_SSL_PRESET_DEFAULT);
    if (rc == 0) {
        mbedtls_ssl_conf_min_version(&t->conf, MBEDTLS_SSL_MAJOR_VERSION_3,
                                     MBEDTLS_SSL_MINOR_VERSION_3); /* TLS 1.2 */
        /* verify=1: mbedTLS aborts the handshake (bad_certificate) before
         * anything is sent under a key the wrong server could read; we
         * check the result again afterwards anyway. */
        mbedtls_ssl_conf_authmode(&t->conf, t->verify ? MBEDTLS_SSL_VERIFY_REQUIRED
                                                       : MBEDTLS_SSL_VERIFY_OPTIONAL);
        mbedtls_ssl_conf_rng(&t->conf, mbedtls_ctr_drbg_random, &drbg);
        mbedtls_ssl_conf_session_tickets(&t->conf, MBEDTLS_SSL_SESSION_TICKETS_DISABLED);
        mbedtls_ssl_conf_renegotiation(&t->conf, MBEDTLS_SSL_RENEGOTIATION_DISABLED);
        t->ca = tls_ca_current;
        if (t->ca) {
            t->ca->refs++;
            mbedtls_ssl_conf_ca_chain(&t->conf, &t->ca->chain, NULL);
        }
        rc = mbedtls_ssl_setup(&t->ssl, &t->conf);
    }
    if (rc == 0 && name_len > 0)
        rc = mbedtls_ssl_set_hostname(&t->ssl, t->name);
    if (rc != 0) {
        char why[96];
        mbedtls_strerror(rc, why, sizeof why);
        tls_msg(err, errlen, "TLS: setup failed: %s", why);
        crypto_tls_free(t);
        return NULL;
    }
    mbedtls_ssl_set_bio(&t->ssl, t, tls_bio_send, tls_bio_recv, NULL);
    return t;
}

size_t crypto_tls_input_space(const struct crypto_tls *t)
{
    if (!tls_valid(t) || t->state == TLS_FAILED || t->state == TLS_CLOSED)
        return 0;
    return sizeof t->in - (t->in_len - t->in_off);
}

int crypto_tls_feed(struct crypto_tls *t, const uint8_t *data, size_t len)
{
    if (len > crypto_tls_input_space(t))
        return -1;
    if (len == 0)
        return 0;
    if (sizeof t->in - t->in_len < len) { /* compact */
        memmove(t->in, t->in + t->in_off, t->in_len - t->in_off);
        t->in_len -= t->in_off;
        t->in_off = 0;
    }
    memcpy(t->in + t->in_len, data, len);
    t->in_len += len;
    return 0;
}

size_t crypto_tls_output(struct crypto_tls *t, const uint8_t **data)
{
    if (!tls_valid(t)) {
        *data = NULL;
        return 0;
    }
    *data = t->out;
    return t->out_len;
}

static void tls_fail(struct crypto_tls *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void tls_fail(struct crypto_tls *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->error, sizeof t->error, fmt, ap);
    va_end(ap);
    t->state = TLS_FAILED;
}

void crypto_tls_output_consumed(struct crypto_tls *t, size_t n)
{
    if (!tls_valid(t))
        return;
    if (n > t->out_len)
        n = t->out_len;
    memmove(t->out, t->out + n, t->out_len - n);
    t->out_len -= n;
    /* Hand over the rest of a record mbedTLS could not fully pass us. */
    if (t->ssl.out_left > 0) {
        int rc = mbedtls_ssl_flush_output(&t->ssl);
        if (rc != 0 && rc != MBEDTLS_ERR_SSL_WANT_WRITE && t->state != TLS_FAILED)
            tls_fail(t, "TLS: send failed (-0x%04x)", (unsigned)-rc);
    }
    if (t->close_pending && t->ssl.out_left == 0) {
        t->close_pending = 0;
        (void)mbedtls_ssl_close_notify(&t->ssl);
    }
}

const char *crypto_tls_error(const struct crypto_tls *t)
{
    return tls_valid(t) ? t->error : "TLS: no session";
}

/* "certificate not trusted: The certificate is not correctly signed ..." */
static void tls_verify_text(const struct crypto_tls *t, uint32_t flags, char *out, size_t cap)
{
    if (flags == 0) {
        tls_msg(out, cap, "%s", "ok");
        return;
    }
    if (flags == (uint32_t)-1) {
        tls_msg(out, cap, "%s", "certificate not checked");
        return;
    }
    char detail[CRYPTO_TLS_ERR_MAX];
    if (mbedtls_x509_crt_verify_info(detail, sizeof detail, "", flags) < 0)
        detail[0] = '\0';
    size_t dl = strlen(detail);
    while (dl > 0 && detail[dl - 1] == '\n')
        detail[--dl] = '\0';
    for (char *p = detail; *p; p++)
        if (*p == '\n')
            *p = ';';
    int untrusted = (flags & MBEDTLS_X509_BADCERT_NOT_TRUSTED) != 0;
    int mismatch = (flags & MBEDTLS_X509_BADCERT_CN_MISMATCH) != 0;
    const char *no_ca = t->ca ? "" : " (no CA certificates configured)";
    char lead[CRYPTO_TLS_ERR_MAX];
    if (untrusted && mismatch)
        tls_msg(lead, sizeof lead, "certificate not trusted%s and name mismatch for \"%s\"",
                no_ca, t->name);
    else if (untrusted)
        tls_msg(lead, sizeof lead, "certificate not trusted%s", no_ca);
    else if (mismatch)
        tls_msg(lead, sizeof lead, "certificate name mismatch: not valid for \"%s\"", t->name);
    else if (flags & MBEDTLS_X509_BADCERT_EXPIRED)
        tls_msg(lead, sizeof lead, "%s", "certificate expired");
    else if (flags & MBEDTLS_X509_BADCERT_FUTURE)
        tls_msg(lead, sizeof lead, "%s", "certificate not yet valid");
    else if (flags & MBEDTLS_X509_BADCERT_MISSING)
        tls_msg(lead, sizeof lead, "%s", "no certificate presented");
    else
        tls_msg(lead, sizeof lead, "%s", "certificate rejected");
    tls_msg(out, cap, "%s%s%s", lead, dl ? ": " : "", detail);
}

static const char *tls_alert_name(int alert)
{
    switch (alert) {
    case MBEDTLS_SSL_ALERT_MSG_HANDSHAKE_FAILURE: return "handshake_failure";
    case MBEDTLS_SSL_ALERT_MSG_BAD_CERT: return "bad_certificate";
    case MBEDTLS_SSL_ALERT_MSG_ILLEGAL_PARAMETER: return "illegal_parameter";
    case MBEDTLS_SSL_ALERT_MSG_DECODE_ERROR: return "decode_error";
    case MBEDTLS_SSL_ALERT_MSG_PROTOCOL_VERSION: return "protocol_version";
    case MBEDTLS_SSL_ALERT_MSG_INSUFFICIENT_SECURITY: return "insufficient_security";
    case MBEDTLS_SSL_ALERT_MSG_INTERNAL_ERROR: return "internal_error";
    case MBEDTLS_SSL_ALERT_MSG_UNRECOGNIZED_NAME: return "unrecognized_name";
    default: return "alert";
    }
}

/* Turn an mbedTLS error from the handshake into the session's error. */
static void tls_handshake_failed(struct crypto_tls *t, int rc)
{
    char why[128];
    mbedtls_strerror(rc, why, sizeof why);
    uint32_t flags = mbedtls_ssl_get_verify_result(&t->ssl);
    if (t->verify && flags != 0 && flags != (uint32_t)-1) {
        t->verify_flags = flags;
        tls_verify_text(t, flags, t->verify_text, sizeof t->verify_text);
        tls_fail(t, "%s", t->verify_text);
    } else if (rc == MBEDTLS_ERR_SSL_BAD_HS_PROTOCOL_VERSION) {
        tls_fail(t, "handshake failed: the server does not offer TLS 1.2 or later (%s)", why);
    } else if (rc == MBEDTLS_ERR_SSL_INVALID_RECORD || rc == MBEDTLS_ERR_SSL_BAD_HS_SERVER_HELLO) {
        tls_fail(t, "handshake failed: the server is not speaking TLS (%s)", why);
    } else if (rc == MBEDTLS_ERR_SSL_BAD_INPUT_DATA) { /* a record longer than TLS allows */
        tls_fail(t, "handshake failed: the server sent a malformed TLS record (%s)", why);
    } else if (rc == MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE && t->ssl.in_msg) {
        int alert = t->ssl.in_msg[1];
        tls_fail(t, "handshake failed: the server sent alert %d (%s)", alert,
                 tls_alert_name(alert));
    } else if (rc == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) {
        tls_fail(t, "%s", "handshake failed: the server closed the session");
    } else {
        tls_fail(t, "handshake failed: %s (-0x%04x)", why, (unsigned)-rc);
    }
}

int crypto_tls_handshake(struct crypto_tls *t)
{
    if (!tls_valid(t))
        return -1;
    if (t->state == TLS_OPEN)
        return 0;
    if (t->state != TLS_HANDSHAKE)
        return -1;
    int rc = mbedtls_ssl_handshake(&t->ssl);
    if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE)
        return 1;
    if (rc != 0) {
        tls_handshake_failed(t, rc);
        return -1;
    }
    t->verify_flags = mbedtls_ssl_get_verify_result(&t->ssl);
    tls_verify_text(t, t->verify_flags, t->verify_text, sizeof t->verify_text);
    if (t->verify && t->verify_flags != 0) {
        /* Belt and braces: VERIFY_REQUIRED should have stopped this. */
        mbedtls_ssl_send_alert_message(&t->ssl, MBEDTLS_SSL_ALERT_LEVEL_FATAL,
                                       MBEDTLS_SSL_ALERT_MSG_BAD_CERT);
        tls_fail(t, "%s", t->verify_text);
        return -1;
    }
    t->state = TLS_OPEN;
    return 0;
}

int crypto_tls_read(struct crypto_tls *t, uint8_t *buf, size_t cap)
{
    if (!tls_valid(t) || t->state != TLS_OPEN)
        return -1;
    if (cap == 0)
        return 0;
    if (cap > INT_MAX)
        cap = INT_MAX;
    int rc = mbedtls_ssl_read(&t->ssl, buf, cap);
    if (rc > 0)
        return rc;
    if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE)
        return 0;
    if (rc == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY || rc == 0) {
        t->state = TLS_CLOSED;
        snprintf(t->error, sizeof t->error, "%s", "TLS: closed by the server (close_notify)");
        return -1;
    }
    if (rc == MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE && t->ssl.in_msg) {
        int alert = t->ssl.in_msg[1];
        tls_fail(t, "TLS: the server sent alert %d (%s)", alert, tls_alert_name(alert));
        return -1;
    }
    char why[128];
    mbedtls_strerror(rc, why, sizeof why);
    tls_fail(t, "TLS: read failed: %s (-0x%04x)", why, (unsigned)-rc);
    return -1;
}

int crypto_tls_write(struct crypto_tls *t, const uint8_t *data, size_t len)
{
    if (!tls_valid(t) || t->state != TLS_OPEN)
        return -1;
    if (t->ssl.out_left > 0) {
        int rc = mbedtls_ssl_flush_output(&t->ssl);
        if (rc == MBEDTLS_ERR_SSL_WANT_WRITE)
            return 0;
        if (rc != 0) {
            tls_fail(t, "TLS: send failed (-0x%04x)", (unsigned)-rc);
            return -1;
        }
    }
    if (len == 0)
        return 0;
    /* Take only what fits in `out` as one whole record, so mbedTLS never
     * holds a half-sent record of ours (its "call again with the same
     * arguments" contract does not fit a byte-accepting API). */
    int expansion = mbedtls_ssl_get_record_expansion(&t->ssl);
    int max_payload = mbedtls_ssl_get_max_out_record_payload(&t->ssl);
    if (expansion < 0 || max_payload <= 0) {
        tls_fail(t, "%s", "TLS: cannot size a record");
        return -1;
    }
    size_t room = sizeof t->out - t->out_len;
    if (room <= (size_t)expansion)
        return 0;
    size_t n = room - (size_t)expansion;
    if (n > (size_t)max_payload)
        n = (size_t)max_payload;
    if (n > len)
        n = len;
    int rc = mbedtls_ssl_write(&t->ssl, data, n);
    if (rc > 0)
        return rc;
    if (rc == MBEDTLS_ERR_SSL_WANT_WRITE && t->ssl.out_left > 0)
        return (int)n; /* the record is built; output_consumed() pushes the rest */
    if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE)
        return 0;
    char why[128];
    mbedtls_strerror(rc, why, sizeof why);
    tls_fail(t, "TLS: write failed: %s (-0x%04x)", why, (unsigned)-rc);
    return -1;
}

void crypto_tls_info(const struct crypto_tls *t, struct crypto_tls_info *info)
{
    memset(info, 0, sizeof *info);
    if (!tls_valid(t)) {
        tls_msg(info->verify, sizeof info->verify, "%s", "no session");
        info->verify_flags = (uint32_t)-1;
        return;
    }
    info->verify_flags = t->verify_flags;
    tls_msg(info->verify, sizeof info->verify, "%s",
            t->verify_text[0] ? t->verify_text : "handshake not complete");
    info->verified = t->verify_flags == 0;
    if (t->state != TLS_OPEN && t->state != TLS_CLOSED)
        return;
    tls_msg(info->version, sizeof info->version, "%s", mbedtls_ssl_get_version(&t->ssl));
    const char *cs = mbedtls_ssl_get_ciphersuite(&t->ssl);
    tls_msg(info->cipher, sizeof info->cipher, "%s", cs ? cs : "");
    const mbedtls_x509_crt *peer = mbedtls_ssl_get_peer_cert(&t->ssl);
    if (peer && mbedtls_x509_dn_gets(info->peer_subject, sizeof info->peer_subject,
                                     &peer->subject) < 0)
        info->peer_subject[0] = '\0';
}

void crypto_tls_close_notify(struct crypto_tls *t)
{
    if (!tls_valid(t) || t->state != TLS_OPEN)
        return;
    t->state = TLS_CLOSED;
    snprintf(t->error, sizeof t->error, "%s", "TLS: closed by us (close_notify)");
    /* mbedTLS holds one outgoing record at a time: while an earlier one is
     * still queued, the alert waits for output_consumed() to make room. */
    if (t->ssl.out_left > 0 && mbedtls_ssl_flush_output(&t->ssl) != 0) {
        t->close_pending = 1;
        return;
    }
    /* A WANT_WRITE leaves the alert in mbedTLS; output_consumed() pushes it. */
    (void)mbedtls_ssl_close_notify(&t->ssl);
}

void crypto_tls_free(struct crypto_tls *t)
{
    if (!tls_valid(t))
        return;
    mbedtls_ssl_free(&t->ssl);         /* zeroizes keys and record buffers */
    mbedtls_ssl_config_free(&t->conf);
    tls_ca_release(t->ca);
    crypto_wipe(t, sizeof *t);         /* state = TLS_FREE */
}
/* ======================= end of crypto_tls_* ======================== */
