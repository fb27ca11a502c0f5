/*
 * workers.h - the threads that run blocking plugins.
 *
 * A shard never blocks on a plugin: it hands a blocking plugin's batch to
 * this pool as one job and carries on with its other endpoints. A worker
 * calls deliver (once per attempt) or deliver_batch (once for all), fills
 * every attempt's outcome and posts the job back to its shard. One lock
 * per turn's jobs, at most one wake-up per job, and a worker takes several
 * jobs per lock when the queue is long.
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
    /* Jobs of other endpoints joined into this one's call (SY_SINK_BATCH_ACROSS); each
     * still goes back to its shard on its own. gsize: attempts of the whole call. */
    struct job *gnext;
    size_t gsize;
    size_t n;
    attempt *at[];           /* the batch, in order */
} job;

typedef struct worker_pool worker_pool;

/* Starts n threads; NULL when none could start. */
worker_pool *workers_new(int n);
/*
 * Queues the n jobs from head to tail (linked by qnext) with one lock; each
 * goes back to its shard as INBOX_JOB, with the members joined to it
 * (gnext), once every outcome is filled. One lock, waking at most one idle
 * worker per job: a shard hands over all of a turn's calls at once (with
 * 10,000 endpoints a turn has many endpoints with one or two deliveries
 * each; a plugin with SY_SINK_BATCH_ACROSS gets them joined).
 */
void workers_submit_list(worker_pool *p, job *head, job *tail, size_t n);
/* Lets the queued jobs finish, then joins the threads and frees the pool. */
void workers_free(worker_pool *p);

#endif
