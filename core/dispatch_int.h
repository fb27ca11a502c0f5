/*
 * dispatch_int.h - the dispatcher's insides, shared by dispatch.c (queues,
 * workers, outcomes) and dispatch_reload.c (the spool pager and reloads).
 * Not for any other file.
 */
#ifndef SY_DISPATCH_INT_H
#define SY_DISPATCH_INT_H

#include <pthread.h>
#include <stdint.h>

#include "clock.h"
#include "dispatch.h"
#include "theap.h"

typedef struct delivery {
    sy_delivery pub;          /* what plugins see; host_ref points back here */
    sy_event *ev;
    sy_endpoint *ep;
    sy_dispatch *dp;
    struct delivery *next;    /* in the ready queue or an endpoint's wait list */
    int64_t started_mono;
    int64_t spool_id;         /* row in the spool, 0 without one */
    int probe;                /* the breaker's probe */
} delivery;

/* Held deliveries per endpoint beyond which, with a spool, more wait on disk. */
#define HOLD_IN_MEMORY 1000

/* Gate timers share the heap with deliveries: an endpoint pointer tagged with bit 0. */
#define GATE_TAG(ep) ((void *)((uintptr_t)(ep) | 1u))
#define IS_GATE_TAG(p) (((uintptr_t)(p)&1u) != 0)
#define GATE_EP(p) ((sy_endpoint *)((uintptr_t)(p) & ~(uintptr_t)1u))

/* What a disabled endpoint announces; copied under the lock, emitted after it. */
typedef struct disable_notice {
    int set;
    char endpoint[160], org_id[256];
    int has_org;
    int64_t failing_since;
    uint32_t failures;
} disable_notice;

/* What a death announces; copied under the lock, emitted after it. */
typedef struct death_notice {
    int set;
    char endpoint[160], event_id[256], event_type[256], org_id[256], detail[SY_DETAIL_MAX];
    int has_org;
    uint32_t attempts;
    int status;
} death_notice;

struct sy_dispatch {
    sy_runtime *rt;
    pthread_mutex_t mu;
    pthread_cond_t work_cv;   /* workers: ready queue not empty, or stopping */
    pthread_cond_t timer_cv;  /* timer thread: heap changed, or stopping */
    pthread_cond_t idle_cv;   /* drain: nothing ready/waiting/in flight */
    delivery *ready_head, *ready_tail;
    size_t nready, nwaiting, ninflight, nheld;
    theap timers;
    int nworkers;
    pthread_t *workers;
    pthread_t timer;
    int started, stopping;
    uint64_t rng;
    uint64_t abandoned;
    dead_letter *dead;        /* ring of dead_max */
    size_t dead_max, dead_len, dead_start;
    uint64_t dead_dropped;
    sy_spool *spool;
    int64_t spill_after_ms;
    size_t mem_max;
    uint64_t unknown_endpoint_rows;
    uint64_t orphaned;        /* deliveries whose endpoint a reload removed */
};

/* Sets up ep's gate in µs from its config in ms. 0, or -1 on ENOMEM. */
int dp_init_gate(sy_endpoint *ep);

/* A delivery of ev to ep, not queued anywhere; NULL on ENOMEM. Lock held. */
delivery *dp_new_delivery(sy_dispatch *dp, sy_event *ev, sy_endpoint *ep);

/* Through the gate and the concurrency cap to a worker. Lock held. */
void dp_make_ready(sy_dispatch *dp, delivery *d);

/* Points d at ep, keeping each runtime's count of live deliveries. */
void dp_set_ep(delivery *d, sy_endpoint *ep);
void dp_free_delivery(delivery *d);

/* Follows d's endpoint to the newest generation; 0 when it was removed. */
int dp_follow(delivery *d);

/* A delivery whose endpoint a reload removed: the spool keeps it pending. */
void dp_orphan(sy_dispatch *dp, delivery *d);

/* Wakes dispatch_drain when nothing is ready, waiting or in flight. Lock held. */
void dp_maybe_idle(sy_dispatch *dp);

#endif
