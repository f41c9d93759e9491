/* fwsign.c — make and check MCUboot-format signed firmware images.
 *
 *   fwsign keygen OUT.pem
 *   fwsign getpub KEY.pem
 *   fwsign sign --key K.pem --version 1.2.3+4 [--security-counter N]
 *               [--header-size 0x200] [--board NAME] [--pad-to SIZE] IN OUT
 *   fwsign verify --key PUB.pem [--board NAME] [--min-security-counter N] IMG
 *   fwsign info IMG
 *
 * A host tool on mbedTLS. Keys are ECDSA P-256 (PEM); images are MCUboot's
 * (firmware/mcuimg.h) with SHA256, KEYHASH and ECDSA_SIG TLVs, plus our
 * protected SEC_CNT and BOARD. `verify` is the boot stage's own check
 * (imgverify_check, linked from firmware/), so fwsign accepts exactly what
 * a device would; `sign` runs the same check on what it made before
 * writing it. Exit status 0 on success; on failure one line "error: ..."
 * on stderr and 1 (2 for a usage error). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mbedtls/ctr_drbg.h"
#include "mbedtls/ecp.h"
#include "mbedtls/md.h"
#include "mbedtls/pk.h"
#include "mbedtls/platform_util.h"

#include "crypto.h"
#include "fwsign_args.h"
#include "fwsign_image.h"
#include "hal_rng.h"
#include "imgverify.h"
#include "mcuimg.h"

#define FILE_MAX (256u * 1024u * 1024u) /* largest payload or image read */
#define KEY_FILE_MAX (64u * 1024u)
#define PUB_DER_MAX 200                 /* a P-256 SubjectPublicKeyInfo is 91 bytes */

#define EXIT_USAGE 2

static const char usage_text[] =
    "usage: fwsign keygen OUT.pem\n"
    "       fwsign getpub KEY.pem\n"
    "       fwsign sign --key K.pem --version 1.2.3+4 [--security-counter N]\n"
    "                   [--header-size 0x200] [--board NAME] [--pad-to SIZE] IN OUT\n"
    "       fwsign verify --key PUB.pem [--board NAME] [--min-security-counter N] IMG\n"
    "       fwsign info IMG\n";

/* Print "error: ..." as exactly one line (control characters in file names
 * and the like become '?') and exit with `status`. */
__attribute__((format(printf, 2, 3), noreturn)) static void die_status(int status,
                                                                       const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *p = msg; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    fflush(stdout);
    fprintf(stderr, "error: %s\n", msg);
    exit(status);
}

#define die(...) die_status(EXIT_FAILURE, __VA_ARGS__)
#define usage_error(...) die_status(EXIT_USAGE, __VA_ARGS__)

/* --- files --- */

/* The whole file, with a NUL after its last byte (for PEM). */
static uint8_t *read_file(const char *path, size_t max, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        die("cannot open %s: %s", path, strerror(errno));
    size_t cap = 64 * 1024, n = 0;
    uint8_t *buf = malloc(cap + 1);
    if (!buf)
        die("out of memory");
    for (;;) {
        if (n == cap) {
            if (cap > max)
                die("%s is larger than %lu bytes", path, (unsigned long)max);
            cap *= 2;
            uint8_t *b = realloc(buf, cap + 1);
            if (!b)
                die("out of memory");
            buf = b;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            die("cannot read %s: %s", path, strerror(errno));
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    if (n > max)
        die("%s is larger than %lu bytes", path, (unsigned long)max);
    buf[n] = 0;
    *len = n;
    return buf;
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Write `path` as a whole or not at all: a temporary file next to it,
 * flushed to disk, then renamed over it. */
static void write_atomic(const char *path, const uint8_t *data, size_t len)
{
    size_t cap = strlen(path) + sizeof ".tmp.XXXXXX";
    char *tmp = malloc(cap);
    if (!tmp)
        die("out of memory");
    snprintf(tmp, cap, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0)
        die("cannot create a temporary file for %s: %s", path, strerror(errno));
    mode_t mask = umask(0);
    umask(mask);
    const char *step = "write";
    if (write_all(fd, data, len) != 0)
        goto fail;
    step = "chmod";
    if (fchmod(fd, 0666 & ~mask) != 0)
        goto fail;
    step = "fsync";
    if (fsync(fd) != 0)
        goto fail;
    step = "close";
    int rc = close(fd);
    fd = -1;
    if (rc != 0)
        goto fail;
    step = "rename";
    if (rename(tmp, path) != 0)
        goto fail;
    free(tmp);
    return;
fail: {
    int e = errno;
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    die("cannot write %s (%s): %s", path, step, strerror(e));
}
}

/* --- keys --- */

static mbedtls_ctr_drbg_context drbg;

static int rng_source(void *ctx, unsigned char *out, size_t len)
{
    (void)ctx;
    return hal_rng_fill(out, len) == 0 ? 0 : MBEDTLS_ERR_CTR_DRBG_ENTROPY_SOURCE_FAILED;
}

static void drbg_seed(void)
{
    static const char pers[] = "fwsign";
    mbedtls_ctr_drbg_init(&drbg);
    if (mbedtls_ctr_drbg_seed(&drbg, rng_source, NULL, (const unsigned char *)pers,
                              sizeof pers - 1) != 0)
        die("cannot seed the random generator from getrandom()");
}

struct key {
    mbedtls_pk_context pk;
    int is_private;
    uint8_t der_buf[PUB_DER_MAX];
    const uint8_t *der; /* SubjectPublicKeyInfo, inside der_buf */
    size_t der_len;
};

/* Load an ECDSA P-256 key, private or public, from PEM (or DER). */
static void load_key(const char *path, int need_private, struct key *k)
{
    size_t len;
    uint8_t *buf = read_file(path, KEY_FILE_MAX, &len);
    /* mbedTLS wants PEM with its NUL counted, DER without. */
    size_t plen = strstr((const char *)buf, "-----BEGIN") ? len + 1 : len;
    mbedtls_pk_init(&k->pk);
    int rc = mbedtls_pk_parse_key(&k->pk, buf, plen, NULL, 0);
    k->is_private = rc == 0;
    if (rc == MBEDTLS_ERR_PK_PASSWORD_REQUIRED || rc == MBEDTLS_ERR_PK_PASSWORD_MISMATCH)
        die("%s: encrypted keys are not supported", path);
    if (rc != 0) {
        mbedtls_pk_free(&k->pk);
        mbedtls_pk_init(&k->pk);
        rc = mbedtls_pk_parse_public_key(&k->pk, buf, plen);
    }
    mbedtls_platform_zeroize(buf, len);
    free(buf);
    if (rc != 0)
        die("%s: not a PEM private or public key (mbedTLS -0x%04x)", path, (unsigned)-rc);
    if (!mbedtls_pk_can_do(&k->pk, MBEDTLS_PK_ECDSA) ||
        mbedtls_pk_ec(k->pk)->grp.id != MBEDTLS_ECP_DP_SECP256R1)
        die("%s: not an ECDSA P-256 key", path);
    if (need_private && !k->is_private)
        die("%s: a public key; signing needs the private key", path);
    int n = mbedtls_pk_write_pubkey_der(&k->pk, k->der_buf, sizeof k->der_buf);
    if (n <= 0)
        die("%s: cannot encode the public key", path);
    k->der_len = (size_t)n;
    k->der = k->der_buf + sizeof k->der_buf - k->der_len; /* written at the end */
}

/* --- commands --- */

static int cmd_keygen(int argc, char **argv)
{
    char err[256];
    const char *pos[1];
    size_t npos;
    if (fwargs_parse(argc, argv, NULL, 0, pos, 1, &npos, err, sizeof err) != 0)
        usage_error("%s; usage: fwsign keygen OUT.pem", err);
    if (npos != 1)
        usage_error("usage: fwsign keygen OUT.pem");

    drbg_seed();
    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
    if (mbedtls_pk_setup(&pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) != 0 ||
        mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(pk), mbedtls_ctr_drbg_random,
                            &drbg) != 0)
        die("cannot generate a key");
    unsigned char pem[1024];
    if (mbedtls_pk_write_key_pem(&pk, pem, sizeof pem) != 0)
        die("cannot encode the key");
    mbedtls_pk_free(&pk);
    mbedtls_ctr_drbg_free(&drbg);

    /* Never over an existing file; readable by the owner only. */
    int fd = open(pos[0], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        mbedtls_platform_zeroize(pem, sizeof pem);
        die("cannot create %s: %s", pos[0], strerror(errno));
    }
    size_t len = strlen((const char *)pem);
    int ok = fchmod(fd, 0600) == 0 && write_all(fd, pem, len) == 0 && fsync(fd) == 0;
    int e = errno;
    mbedtls_platform_zeroize(pem, sizeof pem);
    if (close(fd) != 0 && ok) {
        ok = 0;
        e = errno;
    }
    if (!ok) {
        unlink(pos[0]);
        die("cannot write %s: %s", pos[0], strerror(e));
    }
    return 0;
}

static int cmd_getpub(int argc, char **argv)
{
    char err[256];
    const char *pos[1];
    size_t npos;
    if (fwargs_parse(argc, argv, NULL, 0, pos, 1, &npos, err, sizeof err) != 0)
        usage_error("%s; usage: fwsign getpub KEY.pem", err);
    if (npos != 1)
        usage_error("usage: fwsign getpub KEY.pem");
    struct key k;
    load_key(pos[0], 0, &k);
    uint8_t keyhash[32];
    if (crypto_sha256(k.der, k.der_len, keyhash) != 0)
        die("SHA-256 failed");
    printf("/* Firmware signing key, public half (fwsign getpub): SubjectPublicKeyInfo\n"
           " * DER of an ECDSA P-256 key. Its SHA-256 (an image's KEYHASH TLV):\n"
           " * ");
    for (size_t i = 0; i < sizeof keyhash; i++)
        printf("%02x", keyhash[i]);
    printf(" */\nstatic const unsigned char fwsign_pubkey[] = {");
    for (size_t i = 0; i < k.der_len; i++)
        printf("%s0x%02x,", i % 12 ? " " : "\n    ", k.der[i]);
    printf("\n};\nstatic const unsigned int fwsign_pubkey_len = %lu;\n", (unsigned long)k.der_len);
    mbedtls_pk_free(&k.pk);
    if (fflush(stdout) != 0 || ferror(stdout))
        die("cannot write the output: %s", strerror(errno));
    return 0;
}

static uint32_t u32_opt(const char *name, const char *text)
{
    uint64_t v;
    if (fwargs_number(text, UINT32_MAX, &v) != 0)
        usage_error("--%s '%s': not a number from 0 to 4294967295", name, text);
    return (uint32_t)v;
}

static int cmd_sign(int argc, char **argv)
{
    static const char use[] =
        "usage: fwsign sign --key K.pem --version 1.2.3+4 [--security-counter N] "
        "[--header-size 0x200] [--board NAME] [--pad-to SIZE] IN OUT";
    struct fwargs_opt opts[] = {
        {"key", 1, NULL},         {"version", 1, NULL}, {"security-counter", 1, NULL},
        {"header-size", 1, NULL}, {"board", 1, NULL},   {"pad-to", 1, NULL},
    };
    const size_t nopts = sizeof opts / sizeof opts[0];
    char err[256];
    const char *pos[2];
    size_t npos;
    if (fwargs_parse(argc, argv, opts, nopts, pos, 2, &npos, err, sizeof err) != 0)
        usage_error("%s; %s", err, use);
    const char *key_path = fwargs_get(opts, nopts, "key");
    const char *version = fwargs_get(opts, nopts, "version");
    const char *sec = fwargs_get(opts, nopts, "security-counter");
    const char *hdr = fwargs_get(opts, nopts, "header-size");
    const char *board = fwargs_get(opts, nopts, "board");
    const char *pad = fwargs_get(opts, nopts, "pad-to");
    if (npos != 2 || !key_path || !version)
        usage_error("%s", use);

    struct fwimg_params p = {.hdr_size = FWIMG_HDR_SIZE_DEFAULT, .board = board};
    if (mcuimg_version_parse(version, &p.version) != 0)
        usage_error("--version '%s': not MAJOR.MINOR.REVISION+BUILD (at most 255.255.65535+4294967295)",
                    version);
    if (sec) {
        p.has_sec_cnt = 1;
        p.sec_cnt = u32_opt("security-counter", sec);
    }
    if (hdr) {
        uint64_t v;
        if (fwargs_size(hdr, FWIMG_HDR_SIZE_MAX, &v) != 0 || v < MCUIMG_HDR_LEN)
            usage_error("--header-size '%s': not a number from 0x20 to 0xffff", hdr);
        p.hdr_size = (uint32_t)v;
    }
    if (board && fwimg_board_ok(board) != 0)
        usage_error("--board '%s': 1 to %d printable characters, no spaces", board,
                    MCUIMG_BOARD_MAX);
    uint64_t pad_to = 0;
    if (pad && (fwargs_size(pad, UINT32_MAX, &pad_to) != 0 || pad_to == 0))
        usage_error("--pad-to '%s': not a size from 1 to 4G-1 (decimal, 0x hex, K or M)", pad);

    struct key k;
    load_key(key_path, 1, &k);
    size_t len;
    uint8_t *payload = read_file(pos[0], FILE_MAX, &len);

    struct fwimg img;
    if (fwimg_begin(&img, &p, payload, len, err, sizeof err) != 0)
        die("%s", err);
    free(payload);
    uint8_t digest[32], keyhash[32];
    if (crypto_sha256(img.data, img.hashed_len, digest) != 0 ||
        crypto_sha256(k.der, k.der_len, keyhash) != 0)
        die("SHA-256 failed");
    drbg_seed();
    unsigned char sig[MBEDTLS_PK_SIGNATURE_MAX_SIZE];
    size_t sig_len = 0;
    int rc = mbedtls_pk_sign(&k.pk, MBEDTLS_MD_SHA256, digest, sizeof digest, sig, &sig_len,
                             mbedtls_ctr_drbg_random, &drbg);
    if (rc != 0)
        die("signing failed (mbedTLS -0x%04x)", (unsigned)-rc);
    if (fwimg_seal(&img, digest, keyhash, sig, sig_len, err, sizeof err) != 0)
        die("%s", err);
    if (pad && fwimg_pad(&img, pad_to, err, sizeof err) != 0)
        die("%s", err);

    /* What a device will ask of it, asked before anyone sees it. */
    struct imgverify_policy policy = {k.der, k.der_len, board, p.has_sec_cnt ? p.sec_cnt : 0};
    struct mcuimg m;
    if (imgverify_check(img.data, img.len, &policy, &m, err, sizeof err) != 0)
        die("the image made does not verify: %s", err);
    write_atomic(pos[1], img.data, img.len);

    fwimg_free(&img);
    mbedtls_pk_free(&k.pk);
    mbedtls_ctr_drbg_free(&drbg);
    return 0;
}

static int cmd_verify(int argc, char **argv)
{
    static const char use[] =
        "usage: fwsign verify --key PUB.pem [--board NAME] [--min-security-counter N] IMG";
    struct fwargs_opt opts[] = {
        {"key", 1, NULL}, {"board", 1, NULL}, {"min-security-counter", 1, NULL}};
    const size_t nopts = sizeof opts / sizeof opts[0];
    char err[256];
    const char *pos[1];
    size_t npos;
    if (fwargs_parse(argc, argv, opts, nopts, pos, 1, &npos, err, sizeof err) != 0)
        usage_error("%s; %s", err, use);
    const char *key_path = fwargs_get(opts, nopts, "key");
    const char *min = fwargs_get(opts, nopts, "min-security-counter");
    if (npos != 1 || !key_path)
        usage_error("%s", use);

    struct imgverify_policy policy = {.board = fwargs_get(opts, nopts, "board")};
    if (min)
        policy.min_sec_cnt = u32_opt("min-security-counter", min);
    struct key k;
    load_key(key_path, 0, &k);
    policy.pubkey_der = k.der;
    policy.pubkey_len = k.der_len;
    size_t len;
    uint8_t *data = read_file(pos[0], FILE_MAX, &len);
    struct mcuimg m;
    if (imgverify_check(data, len, &policy, &m, err, sizeof err) != 0)
        die("%s: %s", pos[0], err);
    char v[40];
    mcuimg_version_format(&m.version, v, sizeof v);
    printf("ok: %s %lu bytes\n", v, (unsigned long)m.img_size);
    free(data);
    mbedtls_pk_free(&k.pk);
    if (fflush(stdout) != 0 || ferror(stdout))
        die("cannot write the output: %s", strerror(errno));
    return 0;
}

static int cmd_info(int argc, char **argv)
{
    char err[256];
    const char *pos[1];
    size_t npos;
    if (fwargs_parse(argc, argv, NULL, 0, pos, 1, &npos, err, sizeof err) != 0)
        usage_error("%s; usage: fwsign info IMG", err);
    if (npos != 1)
        usage_error("usage: fwsign info IMG");
    size_t len;
    uint8_t *data = read_file(pos[0], FILE_MAX, &len);
    fwimg_info(data, len, stdout);
    /* The verdict is the parser's, the one the boot stage uses. */
    struct mcuimg m;
    int rc = mcuimg_parse(data, len, &m, err, sizeof err);
    free(data);
    if (fflush(stdout) != 0 || ferror(stdout))
        die("cannot write the output: %s", strerror(errno));
    if (rc != 0)
        die("%s: not a well-formed image: %s", pos[0], err);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        usage_error("usage: fwsign keygen|getpub|sign|verify|info ... (fwsign help)");
    const char *cmd = argv[1];
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        fputs(usage_text, stdout);
        return 0;
    }
    static const struct {
        const char *name;
        int (*run)(int, char **);
    } cmds[] = {{"keygen", cmd_keygen}, {"getpub", cmd_getpub}, {"sign", cmd_sign},
                {"verify", cmd_verify}, {"info", cmd_info}};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (!strcmp(cmd, cmds[i].name))
            return cmds[i].run(argc - 2, argv + 2);
    usage_error("unknown command '%s' (fwsign help)", cmd);
}
