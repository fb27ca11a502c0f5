/*
 * shard_int.h - the insides of a shard, shared by shard.c (the thread,
 * the inbox, endpoints and reloads), shard_run.c (from ready to inside a
 * plugin) and shard_settle.c (from outcome to the next state).
 * Not for any other file.
 */
#ifndef SY_SHARD_INT_H
#define SY_SHARD_INT_H

#include <pthread.h>

#include "gate.h"
#include "shard.h"
#include "theap.h"

/* A delivery: one event for one endpoint, from routing until delivered or dead. */
typedef struct dlv {
    struct dlv *next;      /* in its endpoint's ready queue, or the free list */
    sy_event *ev;          /* a reference */
    struct sep *sep;
    int64_t spool_id;
    uint32_t attempts;     /* made so far */
    int64_t first_ms;      /* wall time of attempt 1 */
    int64_t ready_ms;      /* monotonic: when it became ready (linger) */
    int64_t epoch;         /* the tenure of its partition it is held under */
    int held;              /* counted once as a gate wait */
} dlv;

/* One plugin call that covers several asynchronous attempts (submit_batch). */
typedef struct call {
    size_t pending;
} call;

/* An endpoint as its shard keeps it, across reloads. */
typedef struct sep {
    char *id;
    uint64_t hash;
    int part;                /* its partition (cluster.h) */
    struct sep *hnext;       /* hash chain */
    struct sep *all_next;    /* every endpoint of the shard */
    sy_endpoint *ep;         /* the adopted generation; NULL once removed */
    dlv *rhead, *rtail;      /* ready, in order */
    size_t nready;
    int calls;               /* plugin calls in flight: the concurrency cap counts these */
    size_t inflight;         /* deliveries inside the plugin */
    attempt *ahead, *atail;  /* asynchronous attempts in flight, oldest deadline first */
    sy_gate gate;
    int64_t timer_at;        /* monotonic ms of its armed wake-up, 0 = none */
    int active;              /* in the shard's list of endpoints to look at */
    struct sep *anext;
    int disabled;            /* atomic for readers */
    int forgetting;          /* removed: in the shard's list to free at the end of the turn */
    struct sep *fnext;
    char last_detail[SY_DETAIL_MAX];
    ep_stats st;
} sep;

/* A system event to raise once the loop turn is over (no lock held, nothing half done). */
typedef struct notice {
    struct notice *next;
    char *type, *org_id, *data, *exclude;
} notice;

/* Control messages. */
typedef enum { CTRL_ADOPT, CTRL_ENABLE, CTRL_DISABLE, CTRL_QUIESCE, CTRL_SEED } ctrl_kind;

typedef struct shard_ctrl {
    inbox_msg m;
    ctrl_kind kind;
    sy_runtime *rt;   /* CTRL_ADOPT: a reference */
    int64_t *done;    /* CTRL_SEED: completion times (monotonic µs), owned */
    size_t ndone;
    char id[];        /* CTRL_ENABLE, CTRL_DISABLE, CTRL_SEED */
} shard_ctrl;

struct shard {
    shard_opts o;
    int nshards;
    pthread_t thread;
    int started;
    mpsc inbox;
    waker w;
    /* Endpoints: the table lock is taken by this thread only to add or remove. */
    pthread_mutex_t table_mu;
    sep **buckets;
    size_t nbuckets, nseps;
    sep *all;
    sy_runtime *rt;          /* adopted; a reference */
    sep **by_index;          /* rt->eps[i] -> its sep, NULL when another shard owns it */
    theap timers;            /* dlv* retries; sep* wake-ups tagged with bit 0 */
    sep *ahead, *atail;      /* endpoints to look at this turn */
    dlv *free_dlv;
    size_t nfree_dlv;
    attempt *free_at;        /* ready for reuse */
    size_t nfree_at;
    attempt **quarantine;    /* ring: completed attempts wait here before reuse */
    size_t qhead, qlen;
    spool_record *recs;      /* outcomes to persist at the end of the turn */
    size_t nrecs, caprecs;
    notice *notices, **notices_tail;
    struct job *jobs, *jobs_tail; /* blocking calls of this turn, handed to the workers together */
    size_t njobs;
    sep *forget;             /* records of removed endpoints to free at the end of the turn */
    uint64_t rng;
    int settled[CLUSTER_PARTS]; /* attempts of each partition settled this turn */
    int any_settled;
    int quiescing;           /* start nothing new */
    int stopping;            /* the thread ends once nothing is inside a plugin */
    /* Read by other threads (atomic). */
    size_t n_ready, n_held, n_inflight, n_scheduled, n_expired, n_memory;
};

#define SEP_TAG(s) ((void *)((uintptr_t)(s) | 1u))
#define IS_SEP_TAG(p) (((uintptr_t)(p)&1u) != 0)
#define TAG_SEP(p) ((sep *)((uintptr_t)(p) & ~(uintptr_t)1u))

/* Deliveries per endpoint queued in memory beyond which, with a spool, more wait on disk. */
#define HOLD_IN_MEMORY 1000

#define AT_ADD(field, n) __atomic_add_fetch(&(field), (n), __ATOMIC_RELAXED)
#define AT_SUB(field, n) __atomic_sub_fetch(&(field), (n), __ATOMIC_RELAXED)

/* shard.c */
void sh_activate(shard *sh, sep *s);
void sh_arm(shard *sh, sep *s, int64_t at_ms);
void sh_push_ready(shard *sh, sep *s, dlv *d);
void sh_free_dlv(shard *sh, dlv *d);
void sh_record(shard *sh, const dlv *d, dlv_state state, int64_t next_ms, const sy_outcome *o,
               int leased, int64_t latency_ms);
void sh_notice(shard *sh, const char *type, const char *org_id, char *data_json,
               const char *exclude);
/* A removed endpoint's record, to free at the end of the turn if nothing of it is left by then. */
void sh_forget(shard *sh, sep *s);

/* shard_run.c */
void sh_run_endpoint(shard *sh, sep *s, int64_t now_ms);
void sh_expire(shard *sh, sep *s, int64_t now_ms);
void sh_unlink(sep *s, attempt *a);
attempt *sh_attempt_get(shard *sh);
void sh_attempt_recycle(shard *sh, attempt *a);

/* shard_settle.c */
void sh_settle(shard *sh, attempt *a);
void sh_settle_expired(shard *sh, attempt *a, const sy_outcome *o);
void sh_retry_later(shard *sh, dlv *d, int64_t delay_ms, const sy_outcome *o, int64_t latency_ms);
void sh_kill(shard *sh, dlv *d, const char *detail);
void sh_gate_event(shard *sh, sep *s, int evs);

#endif
