/* db_queue.h — the mail queue: messages, their body chunks, recipients.
 *
 * A message is written in two steps so that no message has to be in RAM
 * whole and none is ever half-visible: db_msg_create() and db_msg_chunk()
 * store an 'incoming' message as data streams in; db_msg_commit() makes it
 * 'queued' together with its recipients. Incoming rows are invisible to
 * everything else and are deleted at boot (db_msg_discard_incoming). */
#ifndef DB_QUEUE_H
#define DB_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "db.h"

struct db_msg_new {
    int64_t received;
    const char *sender;
    const char *client; /* "[10.0.2.2]:54321" */
    const char *helo;
};

int db_msg_create(struct db *db, const struct db_msg_new *m, int64_t *id);
int db_msg_chunk(struct db *db, int64_t id, int32_t seq, const void *data, size_t len);
/* Make the message visible: size, Message-ID and recipients (domains are
 * taken from the addresses). Run inside the caller's transaction. */
int db_msg_commit(struct db *db, int64_t id, uint64_t size, const char *message_id,
                  const char *const *rcpts, int rcpt_count, int64_t now);
/* Delete an incoming message and its chunks. */
int db_msg_discard(struct db *db, int64_t id);
/* Delete every incoming message (left by a reset mid-DATA); returns the
 * count or a negative DB_ error. */
int64_t db_msg_discard_incoming(struct db *db);
/* Bytes held by queued messages. */
int64_t db_queue_bytes(struct db *db);

struct db_msg {
    int64_t id;
    int64_t received;
    char sender[257];
    uint64_t size;
    char client[64];
    char helo[256];
    char message_id[256];
};

struct db_rcpt {
    int64_t id;
    char address[257];
    char state[12];
    int32_t attempts;
    int64_t next_attempt;
    char last_reply[256];
};

typedef void (*db_msg_fn)(void *ctx, const struct db_msg *m);
typedef void (*db_rcpt_fn)(void *ctx, const struct db_rcpt *r);
typedef int (*db_chunk_fn)(void *ctx, const uint8_t *data, size_t len);

/* Queued messages, oldest first. */
int db_queue_list(struct db *db, db_msg_fn fn, void *ctx);
/* At most `limit` of them with ids above `after_id`: a long list read a
 * page at a time, holding nothing open between pages. */
int db_queue_page(struct db *db, int64_t after_id, int limit, db_msg_fn fn, void *ctx);
/* DB_ENOTFOUND for a missing or still incoming message. */
int db_msg_get(struct db *db, int64_t id, struct db_msg *m);
int db_msg_recipients(struct db *db, int64_t id, db_rcpt_fn fn, void *ctx);
/* The body, chunk by chunk; stops early when fn returns non-zero. */
int db_msg_body(struct db *db, int64_t id, db_chunk_fn fn, void *ctx);

/* --- delivery --- */

/* A recipient due for an attempt, with what delivery needs of its message. */
struct db_due {
    int64_t rcpt_id;
    int64_t msg_id;
    char address[257];
    char domain[256];
    int32_t attempts;
    int64_t received;
    char sender[257];
    uint64_t size;
    int recovered; /* put back by db_rcpt_reset_delivering(), not tried since */
};
typedef void (*db_due_fn)(void *ctx, const struct db_due *d);
/* Recipients 'queued' or 'deferred' with next_attempt <= now, of `domain`
 * (NULL: any) and of none of the domains in `skip` (NULL: none skipped;
 * else each domain between newlines, "\na\nb\n"), oldest message first,
 * at most `limit`. */
int db_due_list(struct db *db, int64_t now, const char *domain, const char *skip, int limit,
                db_due_fn fn, void *ctx);
/* Earliest next_attempt among waiting recipients; 0 when none. */
int64_t db_next_due(struct db *db);
/* Recipients left 'delivering' by a reset go back to 'queued', due now,
 * with DB_RCPT_RESET_REPLY as their last reply and the interrupted attempt
 * counted (a message that crashes the relay must still age); a crash may
 * duplicate a delivery, never lose one. Returns the count. */
#define DB_RCPT_RESET_REPLY "4.3.0 the attempt was interrupted by a reset of the relay"
int64_t db_rcpt_reset_delivering(struct db *db);
int db_rcpt_update(struct db *db, int64_t rcpt_id, const char *state, int32_t attempts,
                   int64_t next_attempt, const char *last_reply, int64_t now);
/* Recipients of the message not yet delivered or failed. */
int64_t db_msg_pending(struct db *db, int64_t msg_id);
/* Recipients of the message being delivered right now. */
int64_t db_msg_delivering(struct db *db, int64_t msg_id);
/* Delete a message (any state) with its chunks and recipients. */
int db_msg_delete(struct db *db, int64_t msg_id);
/* Make waiting recipients of one message (or all, msg_id 0) due now. */
int64_t db_queue_retry(struct db *db, int64_t msg_id, int64_t now);
/* The wall clock stepped by `delta` seconds (the first NTP answer after a
 * boot without a valid clock): move every time the queue keeps — arrival
 * of messages, next attempt and last update of recipients — by the same
 * amount, so the step neither ages the queue into expiry nor postpones
 * retries by years. A next attempt of 0 ("due at once") stays 0. History
 * and audit rows are records of what the clock said then and are left
 * alone. Run inside the caller's transaction, so all of it moves or none.
 * Returns the number of rows moved or a negative DB_ error. */
int64_t db_queue_rebase(struct db *db, int64_t delta);
/* One chunk of a message body: DB_ENOTFOUND after the last. */
int db_msg_chunk_read(struct db *db, int64_t msg_id, int32_t seq, uint8_t *buf, size_t cap,
                      size_t *len);

struct db_history {
    int64_t queue_id;
    char message_id[256];
    char sender[257];
    char recipient[257];
    char outcome[12]; /* delivered | failed */
    int32_t attempts;
    char smarthost[300];
    char tls[128]; /* "TLSv1.2 ECDHE-..." or "plaintext" */
    char reply[300];
    int64_t received;
    int64_t finished;
};
int db_history_add(struct db *db, const struct db_history *h);
typedef void (*db_history_fn)(void *ctx, const struct db_history *h);
/* The last n outcomes, oldest first. */
int db_history_list(struct db *db, int n, db_history_fn fn, void *ctx);
/* The same a page at a time: *after is set to start the last n, then each
 * page holds at most `limit` rows with ids above `after_id`, and *last_id
 * (unchanged when the page is empty) where the next page starts. */
int db_history_tail(struct db *db, int n, int64_t *after);
int db_history_page(struct db *db, int64_t after_id, int limit, db_history_fn fn, void *ctx,
                    int64_t *last_id);

/* --- trusted CAs for outbound TLS verify --- */
int db_tls_ca_get(struct db *db, uint8_t *pem, size_t *len);
/* The stored PEM without a copy: `fn` sees it during the call only.
 * DB_ENOTFOUND when none is stored. */
typedef void (*db_pem_fn)(void *ctx, const uint8_t *pem, size_t len);
int db_tls_ca_view(struct db *db, db_pem_fn fn, void *ctx);
int db_tls_ca_set(struct db *db, const uint8_t *pem, size_t len, int64_t now);
int db_tls_ca_clear(struct db *db);

#endif
