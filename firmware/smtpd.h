/* smtpd.h — the inbound SMTP session engine (RFC 5321), sans-I/O.
 *
 * Bytes from the client go in through smtpd_feed(); replies, and the
 * actions the transport must take (store message data, start TLS, close),
 * come out through the callbacks in struct smtpd_ops. No socket, lwIP or
 * SQLite call happens in here, which is what lets cmocka drive it with
 * scripted transcripts and a fuzzer with random bytes.
 *
 * Shape (after OpenSMTPD's smtp_session.c): one state enum, a command table
 * {verb, handler}, and every state change through smtpd_set_state().
 *
 * Limits (RFC 5321 4.5.3.1) are enforced without buffering what exceeds
 * them: command lines 512 octets, text lines 1000, paths 256, 100
 * recipients. Only CRLF.CRLF ends DATA; a bare CR or LF (or a NUL) anywhere
 * fails the message and ends the session, so no end-of-data variant a
 * downstream server might honour can smuggle a second message through. */
#ifndef SMTPD_H
#define SMTPD_H

#include <stddef.h>
#include <stdint.h>

#define SMTPD_LINE_MAX 512       /* command line, CRLF included */
#define SMTPD_TEXT_LINE_MAX 1000 /* DATA line, CRLF included */
#define SMTPD_PATH_MAX 256       /* reverse- or forward-path, brackets included */
#define SMTPD_RCPT_MAX 100
#define SMTPD_DOMAIN_MAX 255
#define SMTPD_AUTH_FAILURES_MAX 3
/* Recipients of one transaction are kept in one arena: a path can be 256
 * octets, but 100 such paths are not needed for PST mail; a transaction
 * whose paths outgrow this gets 452 4.5.3 like one with too many. */
#define SMTPD_RCPT_ARENA 8192
#define SMTPD_OUT_CHUNK 2048 /* message data handed to msg_write at a time */
/* Most reply text one command line (or the end of the data) produces: EHLO's
 * lines with a 255-octet host name come to about 400. The engine takes no
 * new line while the transport has less room than this for replies (see
 * smtpd_ops.reply_room), so a pipelined burst of short commands is held
 * back by TCP flow control instead of overflowing the reply buffer. */
#define SMTPD_REPLY_MAX 1024

/* Whether MAIL needs AUTH first (smtpd_config.auth_required). */
enum smtpd_auth_gate {
    SMTPD_AUTH_OFF = 0,     /* no inbound account */
    SMTPD_AUTH_ON = 1,      /* an inbound account is set */
    SMTPD_AUTH_UNKNOWN = 2, /* the setting could not be read: fail closed,
                               MAIL without AUTH gets 454 4.7.0 */
};

/* What msg_begin/msg_write return besides 0. */
#define SMTPD_STORE_FAILED (-1) /* temporary storage failure: 451 4.3.0 */
#define SMTPD_STORE_NO_ROOM (-2) /* the queue is full: 452 4.3.1 */

enum smtpd_state {
    SMTPD_S_INIT,        /* greeted; waiting for EHLO/HELO */
    SMTPD_S_READY,       /* EHLO/HELO done, no transaction */
    SMTPD_S_MAIL,        /* MAIL accepted */
    SMTPD_S_RCPT,        /* one or more RCPT accepted */
    SMTPD_S_DATA,        /* receiving message data */
    SMTPD_S_WAIT_COMMIT, /* data complete; waiting for smtpd_msg_done() */
    SMTPD_S_AUTH,        /* AUTH exchange: waiting for a response line */
    SMTPD_S_WAIT_TLS,    /* 220 to STARTTLS sent; waiting for smtpd_tls_started() */
    SMTPD_S_CLOSED,      /* final reply sent; nothing more is read */
};

struct smtpd_envelope {
    const char *helo;
    const char *sender;   /* "" for the null reverse-path */
    int rcpt_count;
    const char *rcpts[SMTPD_RCPT_MAX]; /* lower-cased domains, as accepted */
    int tls;              /* the session is encrypted */
    int authenticated;
    uint64_t declared_size; /* SIZE= from MAIL, 0 when none */
};

struct smtpd_ops {
    /* Queue `len` bytes of reply text for the client. */
    void (*reply)(void *ctx, const char *text, size_t len);
    /* 1 when mail for this (lower-case) domain is accepted. */
    int (*domain_allowed)(void *ctx, const char *domain);
    /* 1 when the queue can take a message of `size` bytes (0: unknown). */
    int (*queue_has_room)(void *ctx, uint64_t size);
    /* 1 when user/password match the inbound account, 0 when not, -1 when
     * the account cannot be read (454 4.7.0, temporary). */
    int (*auth_check)(void *ctx, const char *user, const char *password);
    /* A message begins; 0, SMTPD_STORE_FAILED (451) or SMTPD_STORE_NO_ROOM
     * (452), answered at once. */
    int (*msg_begin)(void *ctx, const struct smtpd_envelope *env);
    /* Message data, dot-unstuffed, CRLF line ends; 0, SMTPD_STORE_FAILED or
     * SMTPD_STORE_NO_ROOM. After a failure nothing more is written; the data
     * is read through to the final dot, then the message is aborted
     * (msg_abort) and refused with 451 4.3.0 or 452 4.3.1. */
    int (*msg_write)(void *ctx, const uint8_t *data, size_t len);
    /* All data arrived; make it durable, then call smtpd_msg_done(). */
    void (*msg_end)(void *ctx);
    /* The message failed; forget whatever msg_begin/msg_write stored. */
    void (*msg_abort)(void *ctx);
    /* The 220 to STARTTLS is queued: flush it, then start TLS. */
    void (*starttls)(void *ctx);
    /* The final reply is queued: flush it, then close. */
    void (*close)(void *ctx);
    /* Bytes the transport can still queue as replies; while this is below
     * SMTPD_REPLY_MAX, smtpd_feed() stops at the next line boundary and
     * returns what it consumed (feed the rest once replies have drained).
     * NULL: unlimited. */
    size_t (*reply_room)(void *ctx);
};

struct smtpd_config {
    const char *hostname;
    uint64_t max_size;  /* largest message, bytes */
    int tls_available;  /* STARTTLS can be offered */
    int auth_required;  /* enum smtpd_auth_gate: AUTH before MAIL? */
};

struct smtpd {
    enum smtpd_state state;
    const struct smtpd_ops *ops;
    void *ctx;
    struct smtpd_config cfg;
    int tls_active;
    int authenticated;
    int auth_failures;
    int auth_mech; /* during SMTPD_S_AUTH: which step of which mechanism */
    char auth_user[128];
    /* command line assembly */
    char line[SMTPD_LINE_MAX + 1];
    size_t line_len;
    int line_too_long;
    int line_cr; /* previous byte was CR */
    uint32_t lines; /* command lines completed: the transport restarts the
                       command deadline whenever this moves */
    /* transaction */
    char helo[SMTPD_DOMAIN_MAX + 1];
    char sender[SMTPD_PATH_MAX + 1];
    uint64_t declared_size;
    int rcpt_count;
    uint16_t rcpt_off[SMTPD_RCPT_MAX];
    char rcpt_arena[SMTPD_RCPT_ARENA];
    size_t arena_used;
    /* DATA parsing */
    int d_line_start;
    int d_cr;
    int d_dot;          /* the line began with a dot (removed) */
    size_t d_line_len;  /* octets of the current line on the wire */
    uint64_t d_size;    /* unstuffed octets so far */
    int d_too_long, d_too_big, d_store_failed, d_no_room;
    uint8_t d_out[SMTPD_OUT_CHUNK];
    size_t d_out_len;
};

/* Set up a session and send the greeting. */
void smtpd_init(struct smtpd *s, const struct smtpd_config *cfg, const struct smtpd_ops *ops,
                void *ctx);
/* Feed bytes from the client. Returns how many were consumed: fewer than
 * `len` when the session waits (for a commit or TLS), has closed, or the
 * transport has no room for more replies (reply_room); the transport holds
 * the rest and feeds it again after smtpd_msg_done() or once replies have
 * drained.
 *
 * Command lines (AUTH responses among them) are wiped from the engine's
 * memory once handled, and so are decoded credentials. */
size_t smtpd_feed(struct smtpd *s, const uint8_t *data, size_t len);
/* The message from msg_end is durable (ok=1, `queue_id` names it) or not. */
void smtpd_msg_done(struct smtpd *s, int ok, const char *queue_id);
/* The TLS handshake after STARTTLS finished: forget everything said in
 * plaintext and wait for a new EHLO. */
void smtpd_tls_started(struct smtpd *s);
/* End the session with "421 4.4.2 ... timeout" (the command deadline passed)
 * or another 421 reason. */
void smtpd_shutdown(struct smtpd *s, const char *reason);
int smtpd_waiting(const struct smtpd *s);
const char *smtpd_state_name(enum smtpd_state state);

/* A refused connection: the greeting says why, and every command gets 503
 * until QUIT. Needs no session memory: a few bytes of state. */
struct smtpd_reject {
    uint8_t matched; /* how much of "QUIT" the current line matched so far */
    uint8_t in_line; /* the line has other content: not QUIT */
    uint8_t closed;
};
void smtpd_reject_init(struct smtpd_reject *r, const char *greeting,
                       void (*reply)(void *ctx, const char *text, size_t len), void *ctx);
/* Returns 1 once QUIT was answered (close the connection). */
int smtpd_reject_feed(struct smtpd_reject *r, const uint8_t *data, size_t len,
                      void (*reply)(void *ctx, const char *text, size_t len), void *ctx);

#endif
