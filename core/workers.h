/*
 * workers.h - the threads that run blocking plugins.
 *
 * A shard never blocks on a plugin: it hands a blocking plugin's batch to
 * this pool as one job and carries on with its other endpoints. A worker
 * calls deliver (once per attempt) or deliver_batch (once for all), fills
 * every attempt's outcome and posts the job back to its shard. One lock
 * and at most one wake-up per job, not per delivery.
 */
#ifndef SY_WORKERS_H
#define SY_WORKERS_H

#include <stddef.h>

#include "attempt.h"

struct shard;
struct sy_endpoint;

typedef struct job {
    inbox_msg m;                   /* INBOX_JOB when it goes back to its shard */
    struct job *qnext;       /* in the pool's queue */
    struct shard *sh;
    void *owner;             /* the shard's endpoint record */
    struct sy_endpoint *ep;  /* the plugin instance and endpoint state to call */
    size_t n;
    attempt *at[];           /* the batch, in order */
} job;

typedef struct worker_pool worker_pool;

/* Starts n threads; NULL when none could start. */
worker_pool *workers_new(int n);
/* Queues j; its shard gets it back as INBOX_JOB once every outcome is filled. */
void workers_submit(worker_pool *p, job *j);
/* Lets the queued jobs finish, then joins the threads and frees the pool. */
void workers_free(worker_pool *p);

#endif
