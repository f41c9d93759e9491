/* smtpc.h — the outbound SMTP client engine (RFC 5321), sans-I/O: one
 * connection to one smart host.
 *
 * The engine never touches a socket, lwIP, TLS or SQLite. The transport
 * (outbound.c) connects, resolves, runs the TLS handshake and reads the
 * queue; it feeds the server's bytes in with smtpc_feed() and lets the
 * engine write with smtpc_pump(); everything else comes out through the
 * callbacks in struct smtpc_ops. That is what lets cmocka drive it with
 * scripted server transcripts.
 *
 * Life of a connection, as the transport sees it:
 *
 *   TCP connected          smtpc_init(); smtpc_pump()
 *   bytes from the server  smtpc_feed(); smtpc_pump()
 *   send room available    smtpc_pump(c, room)   (lwIP's sent callback)
 *   ops->starttls()        start the TLS handshake on this connection; feed
 *                          nothing more until it ends; then
 *                          smtpc_tls_done(c, ok); smtpc_pump()
 *   ops->ready()           the session is idle: smtpc_send(msg) (may be
 *                          called from inside ready()) or smtpc_quit()
 *   ops->body_read()       hand over the next piece of the message body
 *   ops->rcpt_result()     one final result per recipient, then
 *   ops->msg_done()        every recipient of the message has its result
 *   peer closed / reset    smtpc_closed()
 *   timeout, cancel        smtpc_abort(c, "why")
 *   ops->done(err, why)    the engine is finished: close the connection
 *                          (after writing what smtpc_pump() produced)
 *
 * After every call into the engine, call smtpc_pump() with the send room
 * you have: the engine writes only from inside smtpc_pump(), never more
 * than the room it was given, so the transport needs no buffer of its own.
 * Callbacks must not call smtpc_init() on the same engine (start the next
 * connection after done() returned); ready() may call smtpc_send() or
 * smtpc_quit().
 *
 * Guarantees:
 * - every message accepted by smtpc_send() gets exactly one rcpt_result()
 *   per recipient and then one msg_done(), whatever happens (server replies,
 *   protocol errors, the connection dropping, smtpc_abort());
 * - done() is called exactly once, last; nothing is called after it;
 * - credentials are sent only after TLS is up, unless the smart host row
 *   sets auth_plaintext; they never appear in an event, and no copy of
 *   them stays in the engine's memory once they were written;
 * - when credentials are configured but the server does not offer AUTH,
 *   the mail is tried without it, and any refusal is reported as
 *   temporary (SMTPC_TEMP): it may be the missing AUTH, so never a bounce;
 * - after the 220 to STARTTLS, nothing the server sent in plaintext is
 *   believed: the rest of that read is discarded and every capability is
 *   forgotten until the EHLO over TLS;
 * - what goes out is dot-stuffed and CRLF-clean, and ends with CRLF.CRLF;
 * - memory is this struct: fixed, no malloc; a server cannot grow it.
 *
 * Reply parsing: lines end with CRLF; a bare LF is accepted as a line end
 * too (a reply cannot smuggle anything into the mail we send, and Postfix's
 * client is as lenient), and a CR elsewhere in a line is just text. A reply
 * line longer than 512 octets (CRLF included), a reply of more than 100
 * lines, continuation lines that change the code, a code that is not three
 * digits from 200 to 599, or anything but " ", "-" or the line end after the
 * code is a protocol error: the connection ends at once (no QUIT, the
 * stream cannot be trusted) and every recipient still open gets a
 * temporary failure, so the message stays queued. */
#ifndef SMTPC_H
#define SMTPC_H

#include <stddef.h>
#include <stdint.h>

#define SMTPC_LINE_MAX 512       /* reply line, CRLF included (RFC 5321 4.5.3.1.5) */
#define SMTPC_REPLY_LINES_MAX 100 /* lines in one reply; an EHLO has about 10 */
#define SMTPC_TEXT_MAX 255       /* reply text kept in a result (outbound's 256 with NUL) */
#define SMTPC_ESC_MAX 15         /* enhanced status "5.123.123" fits with room */
#define SMTPC_HOST_MAX 255       /* our EHLO name */
#define SMTPC_USER_MAX 255       /* AUTH user name */
#define SMTPC_PASS_MAX 255       /* AUTH password */
#define SMTPC_PATH_MAX 256       /* reverse- or forward-path, brackets included */
#define SMTPC_RCPT_MAX 100       /* recipients per message, as the inbound side */
/* The longest command: AUTH PLAIN with the longest credentials is
 * 11 + base64(1 + 255 + 1 + 255) + 2 = 697 octets. */
#define SMTPC_CMD_MAX 1024
/* Bytes composed but not yet taken by smtpc_pump(). A pipelined batch is
 * composed only while SMTPC_CMD_MAX stays free, so the single commands
 * that follow a reply (RSET, ".", QUIT) always fit. */
#define SMTPC_OUT_MAX 2048
#define SMTPC_BODY_CHUNK 512 /* most body bytes asked of body_read at a time */

/* TLS policy of the smart host row. */
enum smtpc_tls_policy {
    SMTPC_TLS_MAY,     /* STARTTLS when offered; if the handshake fails the
                          engine ends with SMTPC_E_TLS_FAILED and the
                          transport reconnects with no_starttls set */
    SMTPC_TLS_ENCRYPT, /* STARTTLS required: not offered, refused or failed
                          -> SMTPC_E_TLS_POLICY; no mail goes in plaintext */
    SMTPC_TLS_VERIFY,  /* as ENCRYPT; the transport checks the certificate
                          and reports a bad one as a failed handshake */
    SMTPC_TLS_NONE,    /* never STARTTLS */
};

struct smtpc_config {
    const char *helo_name; /* our host name, for EHLO/HELO */
    enum smtpc_tls_policy tls;
    /* This connection is the plaintext retry after SMTPC_E_TLS_FAILED:
     * do not try STARTTLS. With ENCRYPT/VERIFY it means no TLS is
     * possible, so the engine ends with SMTPC_E_TLS_POLICY. */
    int no_starttls;
    const char *user;     /* NULL or "": no AUTH */
    const char *password; /* copied; wiped once AUTH is over */
    int auth_plaintext;   /* credentials may go over a connection without TLS */
};

/* Outcome class of a result. */
enum smtpc_status {
    SMTPC_OK,   /* 2xx: accepted (delivered, for a final result) */
    SMTPC_TEMP, /* 4xx, protocol error, connection lost: keep it queued */
    SMTPC_PERM, /* 5xx: bounce it */
};

/* One server reply (or a local reason when code is 0), as reported for a
 * recipient or for the end of the connection. */
struct smtpc_result {
    enum smtpc_status status;
    int code;                        /* 250, 450, 550...; 0: no reply (local reason) */
    char enhanced[SMTPC_ESC_MAX + 1]; /* "5.1.1" when the reply has one, else "" */
    /* The reply text after the code, as sent (enhanced code included),
     * continuation lines joined with a space; one line, at most
     * SMTPC_TEXT_MAX octets, every byte outside 0x20..0x7e replaced by
     * '?' so it is safe on the console and in a bounce. */
    char text[SMTPC_TEXT_MAX + 1];
};

/* Why the connection ended (ops->done). Recipients still open at that
 * moment were already given a SMTPC_TEMP result. */
enum smtpc_error {
    SMTPC_E_NONE,           /* "ok": QUIT answered (or closed after QUIT) */
    SMTPC_E_GREETING,       /* "greeting-failed": non-2xx greeting; try the next host */
    SMTPC_E_HELLO,          /* "ehlo-failed": 4xx to EHLO, or HELO refused; next host */
    SMTPC_E_TLS_FAILED,     /* "tls-failed": policy may, handshake failed; reconnect
                               to the same host at once with no_starttls */
    SMTPC_E_TLS_POLICY,     /* "tls-required": encrypt/verify and no TLS is possible */
    SMTPC_E_AUTH_NEEDS_TLS, /* "auth-needs-tls": credentials configured, no TLS, and
                               the row does not allow AUTH in plaintext; defer */
    SMTPC_E_AUTH_FAILED,    /* "auth-failed": the server refused the credentials;
                               defer, do not retry at once */
    SMTPC_E_AUTH_MECH,      /* "auth-no-mechanism": AUTH offered, but neither PLAIN
                               nor LOGIN; defer */
    SMTPC_E_PROTOCOL,       /* "protocol-error": malformed or unexpected reply */
    SMTPC_E_CLOSED,         /* "connection-lost": the server closed the connection */
    SMTPC_E_SHUTDOWN,       /* "server-shutdown": the server sent 421 */
    SMTPC_E_LOCAL,          /* "local-error": body_read failed */
    SMTPC_E_ABORTED,        /* "aborted": smtpc_abort() (timeout, cancel) */
};

/* What an event reports; the text is one printable line, no secrets. */
enum smtpc_event {
    SMTPC_EV_SENT,  /* a command we sent ("AUTH PLAIN (credentials hidden)") */
    SMTPC_EV_REPLY, /* one reply line from the server ("250-PIPELINING") */
    SMTPC_EV_STEP,  /* a decision or milestone ("TLS: established") */
    SMTPC_EV_ERROR, /* why the connection ends ("tls-failed: TLS handshake failed") */
};

/* Capabilities from the last EHLO (cleared on STARTTLS). */
#define SMTPC_CAP_PIPELINING 0x01u
#define SMTPC_CAP_SIZE 0x02u
#define SMTPC_CAP_8BITMIME 0x04u
#define SMTPC_CAP_STARTTLS 0x08u
#define SMTPC_CAP_AUTH 0x10u
#define SMTPC_CAP_ENHANCEDSTATUSCODES 0x20u

#define SMTPC_AUTH_PLAIN 0x01u
#define SMTPC_AUTH_LOGIN 0x02u
#define SMTPC_AUTH_OTHER 0x04u /* some mechanism we do not speak */

struct smtpc_caps {
    unsigned flags;    /* SMTPC_CAP_* */
    unsigned auth;     /* SMTPC_AUTH_*, from "AUTH mechs" and "AUTH=mechs" */
    uint64_t size_max; /* "SIZE n"; 0 when SIZE came without a number */
};

/* One message to send. The strings must stay valid until msg_done() (or
 * done()); the engine does not look at them after that, even when a refused
 * MAIL ends a pipelined batch before all of it was composed. */
struct smtpc_msg {
    const char *sender;       /* address without brackets; "" for <> */
    const char *const *rcpts; /* addresses without brackets */
    int rcpt_count;           /* 1..SMTPC_RCPT_MAX */
    uint64_t size;            /* body size, for SIZE= */
};

struct smtpc_ops {
    /* Send these bytes (only ever called from smtpc_pump(), never more in
     * total than its `room`). */
    void (*write)(void *ctx, const uint8_t *data, size_t len);
    /* The server said 220 to STARTTLS: start the handshake, feed nothing
     * until it ends, then call smtpc_tls_done(). Plaintext the server sent
     * after its 220 must be dropped, not fed. */
    void (*starttls)(void *ctx);
    /* Copy the next 1..cap bytes of the message body (as stored: CRLF
     * lines, not dot-stuffed) into buf. Return the count, 0 at the end, or
     * -1 when it cannot be read (the message is deferred). */
    int (*body_read)(void *ctx, uint8_t *buf, size_t cap);
    /* Final result for recipient rcpts[index]. */
    void (*rcpt_result)(void *ctx, int index, const struct smtpc_result *r);
    /* Every recipient of the message has its result. */
    void (*msg_done)(void *ctx);
    /* Idle: greeting, EHLO, TLS and AUTH done, or a message finished. */
    void (*ready)(void *ctx);
    /* The engine is finished with this connection: close it. */
    void (*done)(void *ctx, enum smtpc_error err, const struct smtpc_result *why);
    /* Progress for the log and `smarthost test`. */
    void (*event)(void *ctx, enum smtpc_event kind, const char *text);
};

enum smtpc_state {
    SMTPC_S_GREETING,   /* waiting for the greeting */
    SMTPC_S_EHLO,       /* EHLO sent */
    SMTPC_S_HELO,       /* EHLO refused with 5xx; HELO sent */
    SMTPC_S_STARTTLS,   /* STARTTLS sent */
    SMTPC_S_TLS,        /* 220 to STARTTLS; handshake running in the transport */
    SMTPC_S_AUTH_PLAIN, /* AUTH PLAIN <initial response> sent */
    SMTPC_S_AUTH_LOGIN, /* AUTH LOGIN sent; waiting for the user name prompt */
    SMTPC_S_AUTH_USER,  /* user name sent; waiting for the password prompt */
    SMTPC_S_AUTH_PASS,  /* password sent */
    /* Credentials are wiped on entering any state from here on. */
    SMTPC_S_READY,      /* idle, no transaction */
    SMTPC_S_MAIL,       /* waiting for the reply to MAIL */
    SMTPC_S_RCPT,       /* waiting for replies to RCPT */
    SMTPC_S_DATA,       /* waiting for the reply to DATA */
    SMTPC_S_BODY,       /* sending the body (354 received) */
    SMTPC_S_DOT,        /* "." sent; waiting for the final reply */
    SMTPC_S_RSET,       /* RSET sent after a transaction with no delivery */
    SMTPC_S_QUIT,       /* QUIT sent; waiting for 221 or the close */
    SMTPC_S_DONE,       /* ops->done() called; the engine ignores everything */
};

/* Per-recipient progress within a message. */
enum { SMTPC_R_OPEN, SMTPC_R_ACCEPTED, SMTPC_R_FINAL };

struct smtpc {
    enum smtpc_state state;
    const struct smtpc_ops *ops;
    void *ctx;
    /* configuration (copied) */
    char helo_name[SMTPC_HOST_MAX + 1];
    enum smtpc_tls_policy tls_policy;
    int no_starttls;
    int auth_plaintext;
    int has_creds;
    char user[SMTPC_USER_MAX + 1];
    char pass[SMTPC_PASS_MAX + 1];
    /* session */
    struct smtpc_caps caps;
    int tls_active;
    int authenticated;
    int auth_skipped; /* credentials configured, AUTH not offered: 5xx count as 4xx */
    unsigned tls_starts; /* 220s to STARTTLS seen: tells smtpc_feed to drop the rest */
    size_t discarded;    /* plaintext octets dropped after the 220 to STARTTLS */
    unsigned messages;   /* messages finished on this connection */
    /* reply assembly */
    char line[SMTPC_LINE_MAX];
    size_t line_len;
    int reply_lines; /* lines of the reply being read */
    struct smtpc_result reply;
    /* output not yet taken by smtpc_pump(): out[out_head..out_tail) */
    uint8_t out[SMTPC_OUT_MAX];
    size_t out_head, out_tail;
    /* the transaction: commands are numbered 0 = MAIL, 1..n = RCPT,
     * n + 1 = DATA; gen_next is the next to compose, gen_end the first not
     * to compose yet, rep_next the one the next reply answers */
    struct smtpc_msg msg;
    int in_txn;
    int pipelined;
    int gen_next, gen_end, rep_next;
    int mail_ok;
    int accepted;
    int results_left;
    uint8_t rstate[SMTPC_RCPT_MAX];
    /* body transfer */
    int bol;        /* the next body byte starts a line */
    int pending_cr; /* a CR was read; its LF may come in the next chunk */
    uint64_t body_bytes;
    /* the end */
    enum smtpc_error err;
    struct smtpc_result why;
};

/* Set up the engine for a connection that just opened; it waits for the
 * greeting. Returns 0, or -1 (nothing called, state DONE) when the config
 * is unusable: helo_name missing, too long or not printable ASCII without
 * spaces; a user without a password; user or password too long. */
int smtpc_init(struct smtpc *c, const struct smtpc_config *cfg, const struct smtpc_ops *ops,
               void *ctx);
/* Bytes from the server. All are consumed: parsed, or dropped (after the
 * 220 to STARTTLS, or once the engine is done). */
void smtpc_feed(struct smtpc *c, const uint8_t *data, size_t len);
/* Write at most `room` bytes through ops->write; returns how many. */
size_t smtpc_pump(struct smtpc *c, size_t room);
/* 1 when smtpc_pump() has something to write. */
int smtpc_want_write(const struct smtpc *c);
/* Start a message; only in SMTPC_S_READY. Returns 0, or -1 (nothing
 * changed) when not ready or the message is unusable (no or too many
 * recipients, an address too long or with bytes outside 0x20..0x7e). */
int smtpc_send(struct smtpc *c, const struct smtpc_msg *msg);
/* The TLS handshake after ops->starttls() ended: ok 1, or 0 when it
 * failed (certificate rejected under verify included). */
void smtpc_tls_done(struct smtpc *c, int ok);
/* End an idle session politely: QUIT, then done(SMTPC_E_NONE). Returns 0,
 * or -1 when not in SMTPC_S_READY (use smtpc_abort()). */
int smtpc_quit(struct smtpc *c);
/* The server closed the connection (FIN or reset). */
void smtpc_closed(struct smtpc *c);
/* Give up now (timeout, cancel): open recipients get a temporary failure
 * with `reason`, then done(SMTPC_E_ABORTED). Nothing more is written. */
void smtpc_abort(struct smtpc *c, const char *reason);
int smtpc_tls_active(const struct smtpc *c);
const char *smtpc_state_name(enum smtpc_state state);
const char *smtpc_error_name(enum smtpc_error err);

#endif
