/* outbound.h — connections to smart hosts: DNS, TCP, STARTTLS, AUTH and
 * the SMTP client engine (smtpc), for queued mail and for
 * `smarthost test`.
 *
 * A connection gets a route (the smart hosts of one domain, in the order
 * to try) and a job (one message, the recipients of that domain). It tries
 * the hosts in turn until one takes the message; connection failures
 * (refused, timeout, 4xx/5xx greeting, 4xx EHLO, TLS policy) move on to
 * the next host. When the job is done it reports per-recipient results and
 * asks for another job for the same host; with none, it waits idle a few
 * seconds for outbound_start() to hand it one, then says QUIT. */
#ifndef OUTBOUND_H
#define OUTBOUND_H

#include <stddef.h>
#include <stdint.h>

#include "db_config.h"
#include "hoststats.h"

#define OUTBOUND_ROUTE_MAX 8     /* smart hosts per domain tried in one attempt */
#define OUTBOUND_JOB_RCPTS 100
#define OUTBOUND_JOB_ARENA 8192  /* recipient addresses of one job */
#define OUTBOUND_REPLY_MAX 256
#define OUTBOUND_CONNECTIONS 16  /* outbound connections at once, all hosts */

struct outbound_route {
    int count;
    struct db_smarthost hosts[OUTBOUND_ROUTE_MAX];
};

struct outbound_result {
    int code;      /* SMTP reply code; 0 when no reply (connection failed) */
    int permanent; /* 5xx */
    char text[OUTBOUND_REPLY_MAX];
};

struct outbound_job {
    int64_t msg_id;  /* the queued message; 0 for a test message in `mem_body` */
    char sender[257];
    uint64_t size;
    int64_t received;
    const uint8_t *mem_body; /* test messages only */
    size_t mem_len;
    int rcpt_count;
    int64_t rcpt_ids[OUTBOUND_JOB_RCPTS];
    int32_t attempts[OUTBOUND_JOB_RCPTS]; /* before this one (queue runner's) */
    uint8_t recovered[OUTBOUND_JOB_RCPTS]; /* first try after a reset interrupted one */
    const char *rcpts[OUTBOUND_JOB_RCPTS];
    char arena[OUTBOUND_JOB_ARENA];
    size_t arena_used;
    struct outbound_result results[OUTBOUND_JOB_RCPTS];
    /* filled in by the connection when it reports the job */
    char smarthost[300]; /* "mail.example.com:25" that took it, or the last tried */
    char tls[128];       /* "TLSv1.2 ECDHE-ECDSA-AES256-GCM-SHA384" or "plaintext" */
    int in_use;
};

struct outbound_ops {
    /* The job is finished (delivered, refused, or not deliverable now). */
    void (*done)(void *ctx, struct outbound_job *job);
    /* One line of progress, for `smarthost test` and the log; no secrets. */
    void (*event)(void *ctx, const char *line);
    /* Another job for this host on the same connection, or NULL to QUIT. */
    struct outbound_job *(*next)(void *ctx, const struct db_smarthost *host);
    /* The connection is gone and its slot free (may be NULL): the queue
     * runner starts what waited for the host's limit. */
    void (*closed)(void *ctx);
};

void outbound_init(const char *hostname);
/* Start delivering `job` over `route`: on an idle connection of the same
 * ops and ctx to a first-choice host, or a new one. Returns 0, or -1 when
 * no connection is free (the job is untouched). */
int outbound_start(const struct outbound_route *route, struct outbound_job *job,
                   const struct outbound_ops *ops, void *ctx);
/* Connections open now to smart host `id` (idle ones included). */
int outbound_count(int64_t smarthost_id);
/* 1 when `h` (as a connection holds it) is one of `route`'s first-choice
 * hosts, unchanged: a connection to it may carry the route's next job. */
int outbound_route_first(const struct outbound_route *route, const struct db_smarthost *h);
/* 1 when outbound_start() would take a job for `route` now with at most
 * `per_host` connections to its first host: an idle connection waits, or
 * one more may open. */
int outbound_can_start(const struct outbound_route *route, const struct outbound_ops *ops,
                       void *ctx, int per_host);
/* Abort every connection started with `ctx` (Ctrl-C on `smarthost test`);
 * their jobs are reported done with a temporary failure. */
void outbound_cancel(void *ctx);
/* TLS handshakes that failed under policy `may`, so that mail went on in
 * plaintext, since boot. */
uint64_t outbound_downgrades(void);
/* Attempts that skipped a smart host because its stored credentials could
 * not be read (the mail is deferred, never sent without AUTH), since boot. */
uint64_t outbound_creds_unreadable(void);
/* Per-smart-host counters since boot, for `stats`: connections opened,
 * recipients delivered (2xx), deferred (4xx or no answer) and refused
 * (5xx) as the job's results stood when it was reported (on the host that
 * took it, or the last one tried when none did; `smarthost test` messages
 * included), TLS sessions established and downgrades. Fills out (lowest
 * ids first, up to max), returns how many; *dropped (may be NULL) is how
 * many hosts lost their counts to the table's bound (HOSTSTATS_MAX). */
int outbound_host_stats(struct hoststats_entry *out, int max, uint64_t *dropped);
/* Reload the trusted CAs after `tls ca` changed them. */
void outbound_reload_ca(void);

#endif
