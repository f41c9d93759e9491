/* spool.h — writing accepted mail into the queue.
 *
 * A message's data is buffered in chunks of SPOOL_CHUNK bytes; each full
 * chunk is stored at once as part of an 'incoming' message (no fsync: it
 * only matters once the final commit covers it). spool_finish() puts the
 * message on a list; spool_flush(), called once per loop turn, commits
 * every finished message in ONE transaction with a full fsync, then tells
 * each session. So durable-before-250 costs one fsync per loop turn, not one
 * per message, however many sessions finish at once.
 *
 * queue-max-size holds on the bytes actually stored: the committed queue
 * plus every byte written to a message that is still open (being received,
 * or finished but not yet committed). A write that would take that sum past
 * the cap fails with SPOOL_NO_ROOM, whether or not the client declared a
 * SIZE; the caller answers 452 4.3.1 and calls spool_abort(), which removes
 * the partial rows and gives the bytes back. */
#ifndef SPOOL_H
#define SPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "db_queue.h"

/* Results of spool_begin()/spool_write(): 0 on success, else one of these. */
#define SPOOL_ERR (-1)     /* storage failed (or no message is open) */
#define SPOOL_NO_ROOM (-2) /* the write would take the queue past queue-max-size */

#define SPOOL_CHUNK (32 * 1024)
#define SPOOL_MSGID_MAX 255

typedef void (*spool_done_fn)(void *ctx, int ok, int64_t id);

struct spool_msg {
    int64_t id; /* 0 when no message is open */
    int32_t seq;
    uint64_t size; /* bytes written; counted as in flight while id != 0 */
    int failed;    /* 0, or the SPOOL_ error every later write returns */
    uint64_t cap;  /* queue-max-size when the message began */
    size_t len;
    uint8_t buf[SPOOL_CHUNK];
    /* Message-ID: header, found while the headers stream past */
    int in_headers;
    char hdr_line[80];
    size_t hdr_len;
    char message_id[SPOOL_MSGID_MAX + 1];
    /* set by spool_finish */
    const char *const *rcpts;
    int rcpt_count;
    spool_done_fn done;
    void *done_ctx;
    struct spool_msg *next; /* on the list of finished, uncommitted messages */
};

/* Drop incoming leftovers of a reset and count the queue; call at boot. */
int spool_init(struct db *db);
/* 1 when a message of `size` bytes (0: unknown) fits under queue-max-size
 * beside the queue and the bytes in flight. */
int spool_has_room(uint64_t size);
/* Bytes of committed (queued) messages. */
uint64_t spool_queue_bytes(void);
/* Bytes written to messages not committed yet. */
uint64_t spool_inflight_bytes(void);

/* Open a message: 0, or SPOOL_ERR. */
int spool_begin(struct spool_msg *m, const struct db_msg_new *info);
/* Append data: 0, SPOOL_NO_ROOM (nothing of `data` was taken) or SPOOL_ERR.
 * After a failure the message is spoiled: every later write returns the
 * same error and spool_flush() does not commit it; spool_abort() it. */
int spool_write(struct spool_msg *m, const uint8_t *data, size_t len);
/* The open message is a failure report: it may take the queue past
 * queue-max-size (it is bounded, and the failed message it reports on
 * leaves the queue with it). Without this, a full queue of failing mail
 * could never report, so never shrink. Returns 0, or SPOOL_ERR when no
 * message is open. */
int spool_over_cap_ok(struct spool_msg *m);
/* Queue the message for the next spool_flush(); `rcpts` must stay valid
 * until then. `done` (may be NULL) is told the outcome. */
void spool_finish(struct spool_msg *m, const char *const *rcpts, int rcpt_count,
                  spool_done_fn done, void *ctx);
/* Forget the message (also when it waits for spool_flush): its rows are
 * deleted and its bytes no longer count as in flight. A no-op when no
 * message is open. */
void spool_abort(struct spool_msg *m);
/* A queued message of `size` bytes left the queue (delivered or deleted). */
void spool_forget(uint64_t size);
/* Commit every finished message; returns how many were committed. Either
 * way their bytes leave the in-flight count (into the queue's when
 * committed). */
int spool_flush(void);

#endif
