/* spool.h — writing accepted mail into the queue.
 *
 * A message's data is buffered in chunks of SPOOL_CHUNK bytes; each full
 * chunk is stored at once as part of an 'incoming' message (no fsync: it
 * only matters once the final commit covers it). spool_finish() puts the
 * message on a list; spool_flush(), called once per loop turn, commits
 * every finished message in ONE transaction with a full fsync, then tells
 * each session. So durable-before-250 costs one fsync per loop turn, not one
 * per message, however many sessions finish at once. */
#ifndef SPOOL_H
#define SPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "db_queue.h"

#define SPOOL_CHUNK (32 * 1024)
#define SPOOL_MSGID_MAX 255

typedef void (*spool_done_fn)(void *ctx, int ok, int64_t id);

struct spool_msg {
    int64_t id; /* 0 when no message is open */
    int32_t seq;
    uint64_t size;
    int failed;
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
/* 1 when a message of `size` bytes (0: unknown) fits under queue-max-size. */
int spool_has_room(uint64_t size);
uint64_t spool_queue_bytes(void);

int spool_begin(struct spool_msg *m, const struct db_msg_new *info);
int spool_write(struct spool_msg *m, const uint8_t *data, size_t len);
/* Queue the message for the next spool_flush(); `rcpts` must stay valid
 * until then. `done` (may be NULL) is told the outcome. */
void spool_finish(struct spool_msg *m, const char *const *rcpts, int rcpt_count,
                  spool_done_fn done, void *ctx);
/* Forget the message (also when it waits for spool_flush). */
void spool_abort(struct spool_msg *m);
/* A queued message of `size` bytes left the queue (delivered or deleted). */
void spool_forget(uint64_t size);
/* Commit every finished message; returns how many were committed. */
int spool_flush(void);

#endif
