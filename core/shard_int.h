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
#include "transform.h"

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
    int tf_done;           /* the transform ran (tf is its result, NULL: the event as it is) */
    tf_out *tf;
    struct okey *ok;       /* ordered endpoints: the key it waits in */
    struct dlv *onext;     /* the next of its key, in acceptance order */
    uint64_t seq;          /* its place in acceptance order (spool id, or arrival) */
    int64_t due_wall;      /* ordered, waiting: wall ms it is due, 0 = now */
    struct bgroup *grp;    /* the whole batch it belongs to, or NULL */
} dlv;

/* A key of an ordered endpoint: its deliveries in acceptance order, the head out alone. */
typedef struct okey {
    struct okey *hnext;
    uint64_t hash;
    dlv *head, *tail;
    int out;               /* the head is out: ready, in a plugin, or waiting for its retry */
    char key[];
} okey;

/*
 * A batch kept whole: the endpoint's plugin sends it as one message
 * (SY_BATCH_WHOLE), so one outcome covers it. Its members stay together,
 * in order, from their launch until each is settled for good, and a retry
 * launches them again as they are: the plugin sees the same batch. The
 * gate counts it as one attempt.
 */
typedef struct bgroup {
    struct bgroup *next;    /* in its endpoint's queue of due batches */
    struct sep *sep;
    size_t n;               /* members */
    size_t pending;         /* members still inside the plugin */
    int probe;              /* it is the breaker's probe */
    int retry;              /* a member asked to retry: the gate learns a failure */
    int64_t retry_after_ms; /* the largest a member's outcome asked for */
    int64_t latency_ms;
    sy_outcome last;        /* a retrying member's outcome, for the records */
    dlv *m[];               /* in launch order; NULL once settled for good */
} bgroup;

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
    bgroup *ghead, *gtail;   /* whole batches due again, in order; before rhead */
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
    /* The transform, compiled in the shard's Lua state; -1 = none. */
    int tf_ref;
    char *tf_error;          /* why the adopted script failed to compile here, or NULL */
    /* Ordering (shard_order.c): keys by hash, and whether memory holds every
     * pending delivery of the endpoint (a spool's catch-up load arrived). */
    okey **okeys;
    size_t nokey_buckets, nokeys;
    size_t nwaiting;         /* deliveries waiting behind their key's head */
    sy_ordering ordered_as;  /* how the keys above were formed */
    char *ordered_key;       /* and with which path */
    int caught_up;
    uint32_t catchup_gen;    /* the catch-up load being waited for */
} sep;

/* A system event to raise once the loop turn is over (no lock held, nothing half done). */
typedef struct notice {
    struct notice *next;
    char *type, *org_id, *data, *exclude;
} notice;

/* Control messages. */
typedef enum {
    CTRL_ADOPT, CTRL_ENABLE, CTRL_DISABLE, CTRL_QUIESCE, CTRL_SEED, CTRL_CAUGHT_UP,
    CTRL_DETACH
} ctrl_kind;

typedef struct shard_ctrl {
    inbox_msg m;
    ctrl_kind kind;
    sy_runtime *rt;   /* CTRL_ADOPT: a reference */
    int64_t *done;    /* CTRL_SEED: completion times (monotonic µs), owned */
    size_t ndone;
    uint32_t gen;     /* CTRL_CAUGHT_UP: the load it ends */
    struct sy_poller *poller; /* CTRL_DETACH: to let go of (the detacher frees it) */
    char id[];        /* CTRL_ENABLE, CTRL_DISABLE, CTRL_SEED, CTRL_CAUGHT_UP */
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
    tf_vm *vm;               /* the Lua state of the transforms, made on first use */
    uint64_t seq;            /* arrival order of deliveries without a spool id */
    uint32_t catchup_gen;
    int quiescing;           /* start nothing new */
    int stopping;            /* the thread ends once nothing is inside a plugin */
    /* Plugins' I/O this thread drives (shard_poll.c), and the poll set: waker, then theirs. */
    struct sy_poller *pollers;
    struct pollfd *pfd;
    size_t npfd, cap_pfd;
    /* Read by other threads (atomic). */
    size_t n_ready, n_held, n_inflight, n_scheduled, n_expired, n_memory, n_waiting;
};

/* Timer entries: a dlv* (a retry), a sep* tagged with bit 0 (a wake-up), a bgroup* with bit 1. */
#define SEP_TAG(s) ((void *)((uintptr_t)(s) | 1u))
#define IS_SEP_TAG(p) (((uintptr_t)(p)&1u) != 0)
#define TAG_SEP(p) ((sep *)((uintptr_t)(p) & ~(uintptr_t)1u))
#define GRP_TAG(g) ((void *)((uintptr_t)(g) | 2u))
#define IS_GRP_TAG(p) (((uintptr_t)(p)&2u) != 0)
#define TAG_GRP(p) ((bgroup *)((uintptr_t)(p) & ~(uintptr_t)2u))

/* Deliveries per endpoint queued in memory beyond which, with a spool, more wait on disk. */
#define HOLD_IN_MEMORY 1000

#define AT_ADD(field, n) __atomic_add_fetch(&(field), (n), __ATOMIC_RELAXED)
#define AT_SUB(field, n) __atomic_sub_fetch(&(field), (n), __ATOMIC_RELAXED)

/* shard.c */
/* The turn's outcomes to the spool now (they otherwise go at the end of the turn). */
void sh_flush_records(shard *sh);
void sh_activate(shard *sh, sep *s);
void sh_arm(shard *sh, sep *s, int64_t at_ms);
void sh_push_ready(shard *sh, sep *s, dlv *d);
/* d is due: into s's ready queue, or into its key when s is ordered and d not placed yet. */
void sh_make_ready(shard *sh, sep *s, dlv *d);
/* The spool's writer thread: a catch-up load (shard_order.c) is complete. */
void shard_post_caught_up(shard *sh, const char *endpoint_id, uint32_t gen);
void sh_free_dlv(shard *sh, dlv *d);
/* Queues the delivery's new state for the spool; the record, or NULL (no spool, no memory). */
spool_record *sh_record(shard *sh, const dlv *d, dlv_state state, int64_t next_ms,
                        const sy_outcome *o, int leased, int64_t latency_ms);
void sh_notice(shard *sh, const char *type, const char *org_id, char *data_json,
               const char *exclude);
/* A removed endpoint's record, to free at the end of the turn if nothing of it is left by then. */
void sh_forget(shard *sh, sep *s);
/* A whole batch due again: queued on its endpoint to launch as it is. */
void sh_group_due(shard *sh, bgroup *g);
/* Frees g and its members (they stay pending in the spool). */
void sh_group_free(shard *sh, bgroup *g);

/* shard_eps.c */
sep *sh_find_sep(const shard *sh, const char *id, uint64_t hash);
int sh_grow_buckets(shard *sh);
void sh_free_sep(sep *s);
/* The endpoints sh_forget gave up this turn, once nothing of them is left. */
void sh_free_forgotten(shard *sh);
/* Reload (see shard_adopt): takes rt's reference. */
void sh_adopt(shard *sh, sy_runtime *rt);
void sh_set_disabled(shard *sh, const char *id, int disabled);

/* shard_run.c */
void sh_run_endpoint(shard *sh, sep *s, int64_t now_ms);
void sh_expire(shard *sh, sep *s, int64_t now_ms);
void sh_unlink(sep *s, attempt *a);
attempt *sh_attempt_get(shard *sh);
void sh_attempt_recycle(shard *sh, attempt *a);

/* shard_poll.c */
/* The shard's thread, at its start and its end (the end lets go of every poller). */
void sh_poll_enter(shard *sh);
void sh_poll_leave(shard *sh);
/* Runs every poller; the earliest monotonic ms one asked to run again by, or -1. */
int64_t sh_run_pollers(shard *sh);
/* waker_sleep on the waker and the pollers' fds; 1 when something is ready. */
int sh_poll_sleep(shard *sh, int timeout_ms);
/* CTRL_DETACH: p leaves the shard's list; its detacher goes on. */
void sh_poll_let_go(shard *sh, struct sy_poller *p);

/* shard_tf.c */
/* Compiles (or forgets) the transform of s's new generation in the shard's Lua state. */
void sh_tf_adopt(shard *sh, sep *s, const sy_runtime *rt);
/*
 * Runs s's transform on d once (before its first attempt; retries reuse
 * the result). 0: go on (d->tf holds the result); 1: dropped; -1: failed,
 * with detail.
 */
int sh_tf_apply(shard *sh, sep *s, dlv *d, char *detail, size_t detail_len);
void sh_tf_forget(shard *sh, sep *s);

/* shard_order.c */
/* A delivery of an ordered endpoint enters its key; it goes out when it is the head. */
void sh_order_take(shard *sh, sep *s, dlv *d, int64_t due_wall);
/* d is finished or leaves memory: unlinks it, and lets its key's next go when it was the head. */
void sh_order_leave(shard *sh, dlv *d);
/* The endpoint was removed or is no longer ordered: its waiting deliveries leave memory. */
void sh_order_drop(shard *sh, sep *s);
/* A new generation of s: starts or stops ordering, asks the spool for a catch-up load. */
void sh_order_adopt(shard *sh, sep *s);
/* The catch-up load of gen arrived: every key's head may go. */
void sh_order_caught_up(shard *sh, sep *s, uint32_t gen);
/* The key d belongs to, as text (for delivery_failed); "" for ordering by endpoint. */
const char *sh_order_key(const dlv *d);

/* shard_settle.c */
/* A delivery that ended before any plugin saw it: failed (the transform), or dropped. */
void sh_settle_local(shard *sh, dlv *d, const sy_outcome *o, int probe);
void sh_filtered(shard *sh, dlv *d);
void sh_settle(shard *sh, attempt *a);
void sh_settle_expired(shard *sh, attempt *a, const sy_outcome *o);
void sh_retry_later(shard *sh, dlv *d, int64_t delay_ms, const sy_outcome *o, int64_t latency_ms);
void sh_kill(shard *sh, dlv *d, const char *detail);
void sh_gate_event(shard *sh, sep *s, int evs);

#endif
