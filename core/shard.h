/*
 * shard.h - endpoints owned by one thread each.
 *
 * Every endpoint id hashes to one shard; the shard's thread is the only
 * one that touches the endpoint's deliveries, queue, timers, rate limit,
 * breaker, disabled state and counters, so all of that is exact without a
 * lock. Other threads talk to a shard through its inbox (mpsc.h): batches
 * of new deliveries from the pipeline, finished attempts from plugin and
 * worker threads, and control messages. A push costs an atomic exchange;
 * the shard's thread is woken only when it was about to sleep.
 *
 * What a shard does with a ready delivery: through the endpoint's gate
 * (rate limit, breaker), under its concurrency cap (plugin calls in
 * flight), into a batch of up to the plugin's batch_max (lingering up to
 * batch_linger_ms for a fuller one), then either straight into an
 * asynchronous plugin's submit/submit_batch on this thread, or to the
 * worker pool for a blocking plugin's deliver/deliver_batch. Outcomes come
 * back to the inbox and are settled here: classify, feed the gate, decide
 * (retry.c), persist (one spool call per loop turn).
 *
 * Endpoint state outlives reloads: a shard adopts a new runtime by id, in
 * the same inbox as the deliveries, so a batch routed with the new
 * configuration can never reach the shard before the configuration does.
 */
#ifndef SY_SHARD_H
#define SY_SHARD_H

#include <stddef.h>
#include <stdint.h>

#include "attempt.h"
#include "cluster.h"
#include "runtime.h"
#include "spool.h"
#include "stats.h"

struct sy_pipeline;
struct worker_pool;

/* One delivery handed to a shard. */
typedef struct route_item {
    sy_event *ev;       /* a reference, the item's */
    sy_endpoint *ep;    /* in the batch's runtime */
    int64_t spool_id;   /* 0 without a spool */
    uint32_t attempts;  /* made before (a delivery paged in from the spool) */
    int64_t first_ms;   /* wall time of attempt 1, 0 when none yet */
    int64_t due_ms;     /* wall time it is due, 0 = now */
    int64_t epoch;      /* the tenure of its partition it is held under (cluster.h) */
    int fresh;          /* routed just now (counted as routed), not paged in */
} route_item;

/* Deliveries for one shard, routed with one runtime. */
typedef struct route_batch {
    inbox_msg m;              /* INBOX_BATCH */
    sy_runtime *rt;     /* a reference, the batch's */
    size_t *in_transit; /* NULL, or a count (atomic, the poster's) that freeing lowers by n */
    size_t n, cap;
    route_item items[];
} route_batch;

/* A new batch with room for cap items; NULL when out of memory. Takes a reference on rt. */
route_batch *route_batch_new(sy_runtime *rt, size_t cap);
/* Appends (growing *b) ; -1 when out of memory. */
int route_batch_add(route_batch **b, const route_item *it);
/* Drops the items' event references and the runtime's, lowers *in_transit, and frees. */
void route_batch_free(route_batch *b);

typedef struct shard_opts {
    int index, nshards;
    struct sy_pipeline *pipeline; /* where system events go */
    struct worker_pool *workers;  /* runs blocking plugins */
    sy_spool *spool;              /* NULL: in memory */
    int64_t spill_after_ms;       /* retries due later than this wait on disk */
    size_t mem_max;               /* deliveries this shard keeps in memory at most (spool) */
    int64_t complete_grace_ms;    /* added to an attempt's timeout for its deadline */
    own_table *own;               /* the partitions this node owns; attempts start only there */
} shard_opts;

typedef struct shard shard;

shard *shard_new(const shard_opts *o);
int shard_start(shard *sh);

/* Any thread: hand a message to the shard (it owns it from now on). */
void shard_post(shard *sh, inbox_msg *m);
/*
 * shard_post in two halves, for a thread handing over several messages:
 * push each, then wake once (the shard may sleep through the pushes).
 */
void shard_push(shard *sh, inbox_msg *m);
void shard_wake(shard *sh);

/* Adopts rt (reload). The shard takes a reference. */
void shard_adopt(shard *sh, sy_runtime *rt);

/*
 * Another owner's recent attempts on an endpoint whose partition this node
 * just took, so its rate limit counts them: completion times (wall ms,
 * oldest first, copied), plus `phantom` completions now for attempts the
 * previous owner may have had in flight when it died.
 */
void shard_seed(shard *sh, const char *endpoint_id, const int64_t *done_wall_ms, size_t n,
                int phantom);

/* Re-enables a disabled endpoint (admin API), or disables one (the state loaded at start). */
void shard_enable(shard *sh, const char *endpoint_id);
void shard_disable(shard *sh, const char *endpoint_id);

/*
 * Deliveries that count against ingress back-pressure: ready and in
 * flight, and without a spool also those waiting for a retry. Lock-free.
 */
size_t shard_backlog(const shard *sh);

typedef struct shard_counts {
    size_t ready;      /* due, waiting for the gate, a slot or a batch */
    size_t held;       /* of those, held back by the rate limit or the breaker */
    size_t inflight;   /* inside plugins */
    size_t scheduled;  /* waiting for a retry time */
    size_t expired;    /* attempts left inside plugins past their deadline */
    size_t waiting;    /* ordered endpoints: behind the head of their key */
} shard_counts;
void shard_get_counts(const shard *sh, shard_counts *out);

/* What readers (stats, metrics, admin) see of one endpoint. */
typedef struct shard_ep_view {
    const char *id;
    const sy_endpoint *ep;   /* the adopted generation; NULL once removed */
    const ep_stats *st;
    int disabled, breaker_open;
    const char *last_detail;
    size_t ready, inflight;
} shard_ep_view;

/*
 * Calls fn for every endpoint the shard owns, under its table lock (the
 * shard's thread takes it only to add or remove endpoints). The view's
 * pointers are valid during the call only.
 */
void shard_foreach(shard *sh, void (*fn)(void *arg, const shard_ep_view *v), void *arg);

/* 1 when nothing is ready or inside a plugin (retries may wait). */
int shard_idle(const shard *sh);

/*
 * Shutdown, in this order: shard_quiesce stops starting attempts (what is
 * ready stays in the spool, or is dropped without one) and settles what
 * comes back; shard_stop waits until no attempt is inside a plugin (or
 * every one passed its deadline), then ends the thread; shard_free frees
 * the rest.
 */
void shard_quiesce(shard *sh);
void shard_stop(shard *sh);
void shard_free(shard *sh);

/*
 * host->poller_attach and poller_detach (sink ABI 2.4, shard_poll.c):
 * attach works on a shard's thread only (NULL elsewhere); detach from any
 * thread, and returns once the shard no longer runs the poller.
 */
sy_poller *shard_poller_attach(int fd, int64_t (*run)(void *arg), void *arg);
void shard_poller_detach(sy_poller *p);

#endif
