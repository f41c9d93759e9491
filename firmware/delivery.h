/* delivery.h — the queue runner: picks recipients that are due, routes them
 * to their domain's smart hosts, records every outcome, retries with
 * backoff, gives up after the queue lifetime, bounces permanent failures
 * to the bounce address, and removes a message once every recipient is
 * delivered or failed (after the remote 250, so a crash may duplicate a
 * delivery but never lose one). */
#ifndef DELIVERY_H
#define DELIVERY_H

#include <stdint.h>

struct db;

/* Recipients left 'delivering' by a reset go back to the queue. */
int dlv_init(struct db *db, const char *hostname);
/* Once per loop turn: start what is due. Cheap when nothing is. */
void dlv_poll(void);
/* Look at the queue at the next poll (new mail, `queue retry`). */
void dlv_kick(void);
/* The wall clock was stepped by `delta` seconds and the queue's stored
 * times with it (db_queue_rebase): move the jobs in flight too, so a job
 * that started before the step is not judged by the old clock. */
void dlv_clock_stepped(int64_t delta);

struct dlv_stats {
    uint64_t delivered, deferred, failed, bounces, downgrades;
    uint64_t report_failures;  /* DSNs that could not be queued (failures kept queued) */
    uint64_t creds_unreadable; /* attempts deferred: a smart host's credentials did not open */
    uint32_t in_flight;
};
void dlv_stats(struct dlv_stats *st);

#endif
