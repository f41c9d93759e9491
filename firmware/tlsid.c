/* tlsid.c — load or create the TLS identity; see tlsid.h. */
#include "tlsid.h"

#include <stdio.h>
#include <string.h>

#include "config.h"
#include "crypto.h"
#include "db.h"
#include "db_config.h"
#include "hal_clock.h"
#include "log.h"

#define KEY_CONTEXT "tls-identity-key"

int tlsid_load(const char *hostname, struct tlsid *id, char *err, size_t errlen)
{
    struct db *db = cfg_db();
    uint8_t sealed[CRYPTO_KEY_DER_MAX + CRYPTO_SEAL_OVERHEAD];
    size_t sealed_len = sizeof sealed;
    memset(id, 0, sizeof *id);
    if (!db) {
        snprintf(err, errlen, "storage is unavailable");
        return -1;
    }
    id->cert_len = sizeof id->cert;
    int rc = db_tls_identity_get(db, sealed, &sealed_len, id->cert, &id->cert_len);
    if (rc == DB_OK) {
        int n = crypto_open(KEY_CONTEXT, sealed, sealed_len, id->key, sizeof id->key);
        if (n > 0) {
            id->key_len = (size_t)n;
            return 0;
        }
        /* Another device's database, or a damaged row: make a new identity. */
        log_warn("tls", "stored TLS key does not open on this device; making a new one");
    } else if (rc != DB_ENOTFOUND) {
        snprintf(err, errlen, "storage error: %s", db_errmsg(db));
        return -1;
    }
    if (crypto_tls_identity_create(hostname, hal_clock_wall(), id->key, &id->key_len, id->cert,
                                   &id->cert_len) != 0) {
        snprintf(err, errlen, "cannot create a TLS key and certificate");
        return -1;
    }
    int n = crypto_seal(KEY_CONTEXT, id->key, id->key_len, sealed, sizeof sealed);
    if (n < 0 || db_begin(db) != DB_OK) {
        tlsid_forget_key(id); /* the caller gets no identity, so no key either */
        snprintf(err, errlen, "cannot store the TLS identity");
        return -1;
    }
    rc = db_tls_identity_set(db, sealed, (size_t)n, id->cert, id->cert_len, hal_clock_wall());
    if (rc == DB_OK)
        rc = db_commit(db);
    if (rc != DB_OK) {
        db_rollback(db);
        tlsid_forget_key(id);
        snprintf(err, errlen, "cannot store the TLS identity: %s", db_errmsg(db));
        return -1;
    }
    log_info("tls", "created a TLS key and self-signed certificate for CN=%s", hostname);
    return 0;
}

void tlsid_forget_key(struct tlsid *id)
{
    crypto_wipe(id->key, sizeof id->key);
    id->key_len = 0;
}
