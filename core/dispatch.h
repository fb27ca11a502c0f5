/*
 * dispatch.h - turning routed events into delivery attempts.
 *
 * Each (event, endpoint) pair is one delivery. A delivery is ready, waiting
 * for its endpoint's concurrency cap, in flight in a plugin, or scheduled
 * on the timer heap for a retry. Worker threads run blocking plugins'
 * deliver() and asynchronous plugins' submit(); outcomes come back through
 * dispatch_complete() from any thread, and the endpoint's retry policy
 * decides what happens next. Exhausted deliveries become dead letters.
 */
#ifndef SY_DISPATCH_H
#define SY_DISPATCH_H

#include <stddef.h>
#include <stdint.h>

#include "envelope.h"
#include "runtime.h"
#include "spool.h"

typedef struct sy_dispatch sy_dispatch;

typedef struct dispatch_counts {
    size_t ready;      /* waiting for a worker */
    size_t waiting;    /* held back by endpoint concurrency caps */
    size_t inflight;   /* in a plugin now */
    size_t scheduled;  /* on the timer heap (retries, and gate timers) */
    size_t held;       /* held back by endpoints' rate limits or open breakers */
    size_t dead_kept;  /* dead letters held in memory */
    uint64_t dead_dropped; /* dead letters dropped from memory (dead_letter_max) */
} dispatch_counts;

/* A dead letter, kept in memory (newest last). */
typedef struct dead_letter {
    sy_event *event;
    const sy_endpoint *ep;
    uint32_t attempts;
    int status;
    int64_t died_ms;
    char detail[SY_DETAIL_MAX];
} dead_letter;

/*
 * spool may be NULL (in-memory mode). With a spool, every outcome is
 * recorded there, and retries due later than spill_after_ms leave memory
 * (the pager brings them back when due), so memory stays bounded by
 * mem_max deliveries however many retries wait.
 */
sy_dispatch *dispatch_new(sy_runtime *rt, int workers, int dead_letter_max, sy_spool *spool,
                          int64_t spill_after_ms, size_t mem_max);
int dispatch_start(sy_dispatch *dp);

/*
 * Creates one delivery per endpoint for ev and makes them ready. Takes one
 * reference on ev per delivery; the caller keeps its own. ids are the
 * deliveries' spool rows (NULL without a spool).
 */
void dispatch_event(sy_dispatch *dp, sy_event *ev, sy_endpoint *const *eps, size_t n,
                    const int64_t *ids);

/*
 * Reload: new deliveries go to nrt's endpoints from now on. Deliveries not
 * in a plugin move to the endpoint of the same id in nrt (those of removed
 * endpoints are dropped from memory; with a spool they stay pending on
 * disk); attempts in flight finish with the old plugin instances, then
 * move too. Endpoint counters carry over.
 */
void dispatch_adopt(sy_dispatch *dp, sy_runtime *nrt);

/* 1 when no delivery uses rt's endpoints any more (it may then be freed). */
int dispatch_runtime_idle(sy_dispatch *dp, sy_runtime *rt);

/* The spool pager's callbacks (see spool_set_pager); arg is the dispatcher. */
size_t dispatch_pager_want(void *arg);
void dispatch_pager_load(void *arg, const spool_row *row);

/*
 * The backlog ingress back-pressure looks at: ready + waiting + in flight,
 * and without a spool also held and scheduled ones.
 */
size_t dispatch_backlog(sy_dispatch *dp);
void dispatch_get_counts(sy_dispatch *dp, dispatch_counts *out);

/*
 * Waits until nothing is ready, waiting or in flight (scheduled retries do
 * not count), at most timeout_ms. Returns 0 when drained, -1 on timeout.
 */
int dispatch_drain(sy_dispatch *dp, int64_t timeout_ms);

/* Stops workers and the timer thread. Outcomes reported later are counted as abandoned. */
void dispatch_stop(sy_dispatch *dp);

/*
 * Frees every delivery not in a plugin (logging how many). Call after
 * dispatch_stop and before the runtimes go: deliveries point at endpoints.
 */
void dispatch_drop_queued(sy_dispatch *dp);

/* Frees the dispatcher (and whatever dispatch_drop_queued did not). */
void dispatch_free(sy_dispatch *dp);

/* Copies up to max dead letters (newest last) under the lock; event refs are taken. */
size_t dispatch_dead_letters(sy_dispatch *dp, dead_letter *out, size_t max);

/* sy_host.complete. */
void dispatch_complete(const sy_delivery *d, const sy_outcome *o);

/* The event behind a delivery, for sy_host.field. */
const sy_event *dispatch_event_of(const sy_delivery *d);

#endif
