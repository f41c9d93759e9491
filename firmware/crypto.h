/* crypto.h — the firmware's only door to mbedTLS.
 *
 * Secrets at rest: smart-host passwords are sealed with AES-256-GCM under a
 * key derived (HKDF-SHA256) from the HAL device secret, so a copy of the
 * database alone reveals nothing. The sealed blob is bound to a context
 * string (for a smart host: its domain, host and port), so a blob moved to
 * another row does not open. The device secret itself never leaves here. */
#ifndef CRYPTO_H
#define CRYPTO_H

#include <stddef.h>
#include <stdint.h>

/* version(1) | nonce(12) | ciphertext | tag(16) */
#define CRYPTO_SEAL_OVERHEAD (1 + 12 + 16)
#define CRYPTO_SECRET_MAX 256 /* longest secret sealed (a password) */
#define CRYPTO_SEALED_MAX (CRYPTO_SECRET_MAX + CRYPTO_SEAL_OVERHEAD)

/* Seed the DRBG from the HAL rng and derive keys from the device secret.
 * Returns 0, or -1 (then every other call fails). */
int crypto_init(void);
/* The key epoch: a random salt mixed into every key derived from the device
 * secret. A factory reset draws a new one, so whatever was sealed before it
 * can never be opened again, though the secret itself (OTP) cannot change.
 * All zero (a unit never reset) derives the keys as before epochs existed.
 * Call before crypto_init(). */
#define CRYPTO_EPOCH_LEN 32
void crypto_set_epoch(const uint8_t epoch[CRYPTO_EPOCH_LEN]);

/* Seal `len` bytes; writes CRYPTO_SEAL_OVERHEAD + len bytes to `out`.
 * Returns that length, or -1. */
int crypto_seal(const char *context, const void *secret, size_t len,
                uint8_t *out, size_t cap);
/* Open a sealed blob into `out`; returns the secret's length, or -1 when it
 * was tampered with, sealed for another context, or on another device. */
int crypto_open(const char *context, const uint8_t *sealed, size_t len,
                void *out, size_t cap);

/* --- TLS identity: an EC P-256 key and a self-signed certificate --- */
#define CRYPTO_KEY_DER_MAX 256
#define CRYPTO_CERT_DER_MAX 1024
#define CRYPTO_TLS_VALID_DAYS 3650 /* self-signed: nobody renews it */

/* Make a key and a certificate for CN=`common_name`, valid from a day
 * before `now`. DER into the buffers; lengths returned through the pointers. */
int crypto_tls_identity_create(const char *common_name, int64_t now, uint8_t *key_der,
                               size_t *key_len, uint8_t *cert_der, size_t *cert_len);

struct crypto_cert_info {
    char subject[128];
    char issuer[128];
    char not_before[24]; /* "2026-11-28 07:58:01" UTC */
    char not_after[24];
    char sha256[96];     /* "AB:CD:..." */
};
int crypto_cert_info(const uint8_t *cert_der, size_t len, struct crypto_cert_info *info);

/* --- password hashes (PBKDF2-HMAC-SHA256) --- */
#define CRYPTO_HASH_LEN 32
#define CRYPTO_SALT_LEN 16
int crypto_pbkdf2(const char *password, const uint8_t *salt, size_t salt_len,
                  uint32_t iterations, uint8_t out[CRYPTO_HASH_LEN]);
/* The same hash computed a slice at a time, so a ~100 ms hash (the admin
 * password) never holds up the event loop: begin (iteration 1), run more
 * iterations as time allows, then end. PBKDF2 with one output block is a
 * running XOR of the iterations, so the result after N iterations is
 * exactly crypto_pbkdf2(..., N, ...), whatever the slices were. Jobs come
 * from a pool of CRYPTO_PBKDF2_JOBS; end or abort returns one and wipes it. */
#define CRYPTO_PBKDF2_JOBS 2
struct crypto_pbkdf2_job; /* opaque */
struct crypto_pbkdf2_job *crypto_pbkdf2_begin(const char *password, const uint8_t *salt,
                                              size_t salt_len);
/* Run `n` more iterations; returns the iterations done so far. */
uint32_t crypto_pbkdf2_run(struct crypto_pbkdf2_job *job, uint32_t n);
void crypto_pbkdf2_end(struct crypto_pbkdf2_job *job, uint8_t out[CRYPTO_HASH_LEN]);
void crypto_pbkdf2_abort(struct crypto_pbkdf2_job *job);
/* Constant-time comparison; 1 when equal. */
int crypto_equal(const void *a, const void *b, size_t len);

/* --- keyed hashes --- */
#define CRYPTO_HMAC_LEN 32
/* HMAC-SHA-256 of `data` under `key` into `out`; 0 or -1. Needs no
 * crypto_init(): it uses neither the DRBG nor the device secret. */
int crypto_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                       uint8_t out[CRYPTO_HMAC_LEN]);

/* SHA-256 of `data`; 0 or -1. Needs no crypto_init(). */
int crypto_sha256(const void *data, size_t len, uint8_t out[32]);
/* The same over data that comes in pieces (an image read from flash). The
 * state is opaque here: only crypto.c knows mbedTLS. */
struct crypto_sha256_ctx {
    uint64_t opaque[32];
};
void crypto_sha256_begin(struct crypto_sha256_ctx *c);
int crypto_sha256_update(struct crypto_sha256_ctx *c, const void *data, size_t len);
/* Writes the digest and releases the state; 0 or -1. */
int crypto_sha256_end(struct crypto_sha256_ctx *c, uint8_t out[32]);
/* 0 when `sig` (exactly sig_len bytes of DER) is a valid ECDSA signature
 * of `hash` by the P-256 public key `pub_der` (SubjectPublicKeyInfo DER);
 * -1 otherwise, also for a key that is not P-256. Needs no crypto_init():
 * the boot stage checks firmware images with it. */
int crypto_ecdsa_p256_verify(const uint8_t *pub_der, size_t pub_len, const uint8_t hash[32],
                             const uint8_t *sig, size_t sig_len);

/* Fill `buf` from the DRBG; 0 or -1. */
int crypto_random(void *buf, size_t len);
/* Overwrite memory holding a secret, in a way the compiler cannot drop. */
void crypto_wipe(void *buf, size_t len);

/* ======================================================================
 * crypto_tls_*: sans-I/O TLS client for outbound SMTP STARTTLS
 * ======================================================================
 * The transport owns the TCP connection. After the server's "220 Ready to
 * start TLS" it creates one of these and from then on:
 *   - every TCP byte received goes to crypto_tls_feed();
 *   - every byte crypto_tls_output() shows is sent, then acknowledged with
 *     crypto_tls_output_consumed();
 *   - crypto_tls_handshake() is called after each feed and each
 *     output_consumed until it returns 0 (done) or -1 (failed); then
 *     crypto_tls_read()/crypto_tls_write() carry the SMTP dialogue.
 * Nothing here touches a socket, a timer or lwIP; the transport enforces
 * the handshake deadline (a silent server just leaves handshake() at 1).
 * Objects come from a static pool of CRYPTO_TLS_MAX; mbedTLS allocates its
 * own record buffers (~2 x 16.7 KiB) per live object with calloc.
 * Protocol: TLS 1.2 only (mbedTLS 2.28 has no TLS 1.3 client); no session
 * resumption, no renegotiation, no client certificate. Certificate dates
 * are checked against the system clock (time()). */
#define CRYPTO_TLS_MAX 16             /* concurrent outbound TLS sessions: one per
                                       * outbound connection (OUTBOUND_CONNECTIONS) */
#define CRYPTO_TLS_IN_MAX (18 * 1024) /* ciphertext fed but not yet consumed:
                                       * about one full record (16 KiB + MAC,
                                       * padding, header); mbedTLS keeps a
                                       * partial record in its own buffer, so
                                       * this only sets how much the transport
                                       * can hand over at once */
#define CRYPTO_TLS_OUT_MAX (17 * 1024) /* ciphertext waiting for the transport:
                                        * one full 16 KiB record + expansion */
#define CRYPTO_TLS_CA_MAX_LEN (512 * 1024) /* largest trust store input */
#define CRYPTO_TLS_ERR_MAX 256

struct crypto_tls; /* opaque */

/* Replace the appliance's trust store with the certificate(s) in `data`:
 * PEM (one or more "BEGIN CERTIFICATE" blocks, with or without a
 * terminating NUL) or a single DER certificate. len == 0 empties the store.
 * All or nothing: one bad certificate rejects the input and the old store
 * stays. Sessions already open keep the store they started with.
 * Returns the number of certificates now trusted, or -1 with `err` set. */
int crypto_tls_ca_set(const uint8_t *data, size_t len, char *err, size_t errlen);
/* Number of certificates in the trust store. */
int crypto_tls_ca_count(void);

/* A new client session for `server_name` (sent as SNI; with verify=1 also
 * the name the certificate must carry). verify=1: the handshake fails
 * unless the chain leads to the trust store and the name matches.
 * verify=0: any certificate is accepted, the verdict is still recorded for
 * crypto_tls_info(). Returns NULL with `err` set when the pool is
 * exhausted, crypto_init() did not run, or verify=1 without a name.
 * An IP address as server_name goes out as SNI too, and mbedTLS 2.28
 * matches it only against DNS names and the CN, never iPAddress SANs. */
struct crypto_tls *crypto_tls_client(const char *server_name, int verify, char *err,
                                     size_t errlen);

/* Ciphertext from the network. All or nothing: returns 0, or -1 when it
 * does not fit (see crypto_tls_input_space; hold it back and retry after
 * handshake()/read() consumed input) or the session is dead. */
int crypto_tls_feed(struct crypto_tls *t, const uint8_t *data, size_t len);
/* How many bytes crypto_tls_feed() accepts right now. */
size_t crypto_tls_input_space(const struct crypto_tls *t);

/* Drive the handshake: 1 while it waits for I/O (send the output, feed
 * input, call again), 0 when done (with verify=1: the certificate verified
 * for server_name), -1 on failure (see crypto_tls_error; output may still
 * hold an alert worth sending before closing). */
int crypto_tls_handshake(struct crypto_tls *t);

/* Decrypted application data into `buf`: the byte count, 0 when nothing is
 * available yet, -1 on error or when the peer closed the session
 * (close_notify; crypto_tls_error says which). Call until it returns 0:
 * one feed may carry several records. */
int crypto_tls_read(struct crypto_tls *t, uint8_t *buf, size_t cap);
/* Encrypt plaintext for sending: returns the number of bytes taken (may be
 * less than len, 0 when the output buffer is full: drain it and retry), or
 * -1 on error or before the handshake completed. */
int crypto_tls_write(struct crypto_tls *t, const uint8_t *data, size_t len);

/* Ciphertext waiting for the transport: sets *data, returns its length. */
size_t crypto_tls_output(struct crypto_tls *t, const uint8_t **data);
/* The transport sent the first `n` bytes of crypto_tls_output(). */
void crypto_tls_output_consumed(struct crypto_tls *t, size_t n);

/* Why the session failed or ended ("" when it did not). */
const char *crypto_tls_error(const struct crypto_tls *t);

struct crypto_tls_info {
    char version[16];       /* "TLSv1.2" as mbedTLS names it; "" before done */
    char cipher[64];        /* e.g. "TLS-ECDHE-ECDSA-WITH-AES-256-GCM-SHA384" */
    char peer_subject[128]; /* "CN=mail.example" */
    char verify[CRYPTO_TLS_ERR_MAX]; /* "ok", or why the certificate fails */
    uint32_t verify_flags;  /* MBEDTLS_X509_BADCERT_* bits, 0 when ok */
    int verified;           /* 1: chain trusted and name matched */
};
void crypto_tls_info(const struct crypto_tls *t, struct crypto_tls_info *info);

/* Queue a close_notify alert (send the output before closing TCP); read
 * and write fail afterwards. */
void crypto_tls_close_notify(struct crypto_tls *t);
/* Return the object to the pool, wiping keys and buffers. NULL is ignored. */
void crypto_tls_free(struct crypto_tls *t);
/* ======================= end of crypto_tls_* ======================== */

#endif
