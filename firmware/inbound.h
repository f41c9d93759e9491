/* inbound.h — the SMTP listener on port 25: lwIP/altcp transport for the
 * smtpd engine, the allowlist gate, connection caps, command deadlines,
 * STARTTLS, and durable acceptance through the spool. */
#ifndef INBOUND_H
#define INBOUND_H

#include <stddef.h>
#include <stdint.h>

#define INBOUND_PORT 25
/* Sessions at once; each holds about 50 KiB (engine, one data chunk,
 * replies), all from a static pool. */
#define INBOUND_SESSIONS_MAX 64
/* Refused connections being told so; a few bytes each. */
#define INBOUND_REJECTS_MAX 16
/* Per-source cap and deadlines are settings (config.c): in slirp mode
 * every client arrives from 10.0.2.2, so the per-source default (50)
 * leaves room for load tests; deadlines default to RFC 5321 4.5.3.2's
 * 5 minutes per command and 10 for a whole message. */

struct inbound_stats {
    uint64_t connections;   /* accepted into a session */
    uint64_t denied;        /* refused by the allowlist */
    uint64_t refused_busy;  /* refused by a connection cap */
    uint64_t messages;      /* accepted with 250 */
    uint64_t bytes;         /* of accepted messages */
    uint64_t rejected_msgs; /* failed DATA (size, smuggling, storage) */
    uint64_t tls_sessions;  /* completed STARTTLS handshakes */
    uint64_t timeouts;      /* sessions ended by a deadline */
    uint32_t active;        /* sessions now */
};

/* Start listening; returns 0 or -1 (logged). */
int inbound_init(const char *hostname);
/* 1 once port 25 is bound and listening. */
int inbound_listening(void);
/* Once per loop turn: commit finished messages and answer their sessions.
 * Returns how many messages were committed. */
int inbound_poll(void);
void inbound_stats(struct inbound_stats *st);
/* DER of the TLS certificate offered, for `tls show`; NULL when none. */
const uint8_t *inbound_cert(size_t *len);

#endif
