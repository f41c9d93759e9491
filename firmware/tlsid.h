/* tlsid.h — the appliance's TLS identity for inbound STARTTLS: an EC P-256
 * key and a self-signed certificate, made at first boot and kept in the
 * database (the key sealed with the device secret). */
#ifndef TLSID_H
#define TLSID_H

#include <stddef.h>
#include <stdint.h>

struct tlsid {
    uint8_t key[256]; /* DER */
    size_t key_len;
    uint8_t cert[1024]; /* DER */
    size_t cert_len;
};

/* Load the identity, creating it for CN=`hostname` when there is none.
 * Returns 0, or -1 with a reason in err (STARTTLS is then not offered). */
int tlsid_load(const char *hostname, struct tlsid *id, char *err, size_t errlen);

/* Wipe the private key (DER) once the TLS layer has parsed it into its own
 * context: a plaintext key left in RAM is one memory disclosure away from
 * the network. The certificate stays (`tls show` prints it). */
void tlsid_forget_key(struct tlsid *id);

#endif
