/*
 * spool_int.h - the insides of the spool, shared by spool.c (queues, the
 * store's writer thread, the pager) and spool_hot.c (the hot log's front
 * thread and its chunks). Not for any other file.
 *
 * Without a hot log, the API's operations queue straight to the writer
 * (s->wq). With one (SQLite), they queue to the front (s->in): the front
 * writes events and outcomes to the log, acknowledges them once synced,
 * gathers them in a chunk and hands the chunk to the writer as one
 * OP_FOLD when the writer is free; every other operation follows the
 * chunks before it in the same order.
 */
#ifndef SY_SPOOL_INT_H
#define SY_SPOOL_INT_H

#include <pthread.h>

#include "spool.h"
#include "spool_log.h"

typedef enum {
    OP_EVENT,    /* one event and its deliveries (spool_put_event) */
    OP_BATCH,    /* many (spool_put_batch) */
    OP_RECORDS,  /* outcomes */
    OP_RELEASE,  /* give an endpoint's leased pending rows back to the pager */
    OP_KNOWN,    /* the endpoints the pager may load */
    OP_DISABLE,  /* an endpoint's disabled state */
    OP_ENABLE,
    OP_KILL,     /* an endpoint's pending deliveries become dead letters */
    OP_CATCHUP,  /* lease and load every pending row of an ordered endpoint */
    OP_FOLD      /* a chunk of the hot log into the store */
} op_kind;

typedef struct hot_chunk hot_chunk;

typedef struct spool_op {
    op_kind kind;
    struct spool_op *next;
    /* OP_EVENT */
    sy_event *ev;
    const char *const *endpoint_ids;
    size_t n;
    spool_event_cb cb;
    void *arg;
    /* OP_BATCH */
    spool_put *puts;
    spool_batch_cb bcb;
    /* OP_RECORDS: n records; OP_KNOWN: n ids; OP_RELEASE, OP_DISABLE, OP_ENABLE, OP_KILL: id */
    spool_record *recs;
    char **ids;
    char *id;
    int64_t at_ms;
    /* OP_KILL: told the count after COMMIT */
    spool_kill_cb kcb;
    long killed;
    /* OP_CATCHUP: told once the endpoint's rows are loaded */
    spool_caught_up_fn done;
    uint32_t gen;
    /* OP_FOLD */
    hot_chunk *chunk;
} spool_op;

/* A queue of operations and the thread that takes it. */
typedef struct op_queue {
    pthread_mutex_t mu;
    pthread_cond_t idle_cv;   /* signalled when the taker leaves nothing queued */
    int wake_fd;              /* eventfd: work was queued while the taker slept */
    int sleeping;             /* under mu: the taker is (about to be) in poll() */
    spool_op *head, *tail;
    size_t queued;            /* events of the queued operations */
    int busy;                 /* the taker holds a batch */
} op_queue;

struct sy_spool {
    sy_store *st;
    const char *name;
    spool_opts o;
    op_queue wq;              /* the writer's */
    int stop, started;
    int failures;             /* transactions failed in a row */
    pthread_t thread;
    spool_want_fn want;
    spool_load_fn load;
    void *pager_arg;
    int64_t page_ms, ahead_ms;
    int64_t next_page;        /* wall ms of the next pager pass */
    int64_t next_due;         /* earliest next_ms this writer sent back to disk; 0 none */
    int page_now;             /* under wq.mu: spool_wake_pager asked */
    int64_t last_prune;
    spool_op *deferred;       /* writer only: catch-ups to try again at the next pager pass */

    /* The hot log (hot != 0). */
    int hot;
    op_queue in;              /* the API's: the front takes it */
    pthread_t front;
    int front_stop;           /* under in.mu */
    int flush_req;            /* under in.mu: spool_flush waits: hand the chunk over now */
    spool_log *log;
    sy_store *rd;             /* the front's reader: event ids already stored */
    int64_t boot;             /* the lease of the rows this process holds */
    int64_t next_row, next_dlv;   /* front only: ids of the next event and delivery */
    hot_chunk *open;          /* front only: gathering */
    hot_chunk *old;           /* front only: gathered, handed over next (outcomes still land
                                 in its deliveries meanwhile) */
    size_t open_n;            /* under in.mu: entries in both (spool_flush waits for 0) */
    /* The syncer (spool_sync full): the front writes a frame and goes on to the next while
     * this thread syncs it and then calls its events back, in order. */
    int has_syncer;
    pthread_t syncer;
    pthread_mutex_t ymu;
    pthread_cond_t ycv;
    struct sync_job *jobs, *jobs_tail;   /* under ymu */
    int sync_stop;                       /* under ymu */
    size_t sync_pending;      /* under in.mu: frames written, their events not called back */
    struct id_set *ids;       /* front only: the ids of the chunks not freed (spool_hot.c) */
    struct blk_pool *pool;    /* front only: blocks of freed chunks (spool_chunk.h) */
    uint64_t chunk_seq;       /* atomic (the front writes it): the last chunk's number */
    uint64_t unsure_seq;      /* atomic: a sync failed while the chunks up to this number
                                 gathered; their events may not be on disk (spool_hot.c) */
    int64_t dropped_below;    /* writer only: the segments below this one are deleted */
    pthread_mutex_t smu;      /* the chunks handed over and not folded yet, and those folded
                                 for the front to free */
    hot_chunk *sealed, *sealed_tail, *done;
    size_t unfolded;          /* atomic: events in the open and handed-over chunks */
    size_t unfolded_bytes;    /* atomic: their bodies' bytes */
};

/* spool.c */
/* The writer: rows written back as pending and not held: the pager looks when they fall due. */
void spool_note_due(sy_spool *s, const spool_record *recs, size_t n);
void spool_enqueue(op_queue *q, spool_op *op);
void spool_free_op(spool_op *op);
/* Puts a list of operations that failed (head .. tail, linked) back at the head of q, ahead
 * of what was queued since, without waking its taker (it is the one requeueing). */
void spool_requeue(op_queue *q, spool_op *head, spool_op *tail);
/* Under q->mu: wakes the taker if it sleeps in poll(). */
void spool_wake_locked(op_queue *q);

/* spool_hot.c */
/* At open, before any thread: folds what the log holds past the store's mark and opens
 * the next segment. 0, or -1 with err. */
int hot_open(sy_spool *s, int enable, char *err, size_t errlen);
int hot_start(sy_spool *s);
/* Stops the front (its chunk handed over) before the writer stops. */
void hot_stop(sy_spool *s);
void hot_close(sy_spool *s);
/* The writer, inside its transaction: the chunk's events, outcomes and log position. */
int hot_fold(sy_spool *s, hot_chunk *c);
/* The writer, after the transaction: committed (ok), or given up at exit. */
void hot_folded(sy_spool *s, hot_chunk *c, int ok);
/* spool_flush's part: waits until the front has nothing queued or gathering. */
int hot_flush_front(sy_spool *s, const struct timespec *deadline);

#endif
