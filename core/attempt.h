/*
 * attempt.h - one delivery attempt inside a plugin: what the plugin sees
 * (the sy_delivery), where its outcome goes, and the guard that makes a
 * late or repeated complete() harmless.
 *
 * Life of an attempt (state is atomic):
 *
 *   IN_PLUGIN --complete()--> COMPLETED --> back to its shard, which settles
 *       |                                   the delivery and recycles it
 *       +--deadline passed (shard)--> EXPIRED --complete()--> freed at once
 *                                        |
 *                                        +--instance destroyed--> freed
 *
 * A complete() that finds anything but IN_PLUGIN or EXPIRED (a repeat) is
 * counted and ignored. A recycled attempt first waits in its shard's
 * quarantine ring of ATTEMPT_QUARANTINE attempts before it is handed to a
 * plugin again, so a repeated complete() that comes late finds it
 * COMPLETED or FREE, not a new delivery: the guard holds for repeats that
 * arrive before that many later attempts of the same shard finished.
 */
#ifndef SY_ATTEMPT_H
#define SY_ATTEMPT_H

#include <stdint.h>

#include "envelope.h"
#include "mpsc.h"
#include "switchyard/sink.h"

#define ATTEMPT_QUARANTINE 4096

typedef enum attempt_state {
    AT_FREE = 0,
    AT_IN_PLUGIN,
    AT_COMPLETED,
    AT_EXPIRED
} attempt_state;

/* What arrives in a shard's inbox; every message opens with one. */
typedef enum inbox_kind {
    INBOX_BATCH = 1, /* new or paged-in deliveries (route_batch) */
    INBOX_DONE,      /* one attempt completed by an asynchronous plugin */
    INBOX_JOB,       /* a worker finished a blocking call (job) */
    INBOX_CTRL       /* reload, enable, stop (shard_ctrl) */
} inbox_kind;

typedef struct inbox_msg {
    mpsc_node node; /* first: a node pointer is a message pointer */
    inbox_kind kind;
} inbox_msg;

struct shard;
struct dlv;
struct sy_runtime;
struct sy_endpoint;
struct sy_instance;

typedef struct attempt {
    inbox_msg m;                  /* INBOX_DONE once completed */
    sy_delivery pub;        /* what the plugin sees; pub.host_ref points here */
    sy_outcome out;         /* the result, written before the state changes */
    int state;              /* atomic attempt_state */
    struct shard *sh;       /* the shard that made it and settles it */
    struct dlv *d;          /* the delivery; NULL once the attempt expired */
    sy_event *ev;           /* a reference: pub's strings point into it */
    struct sy_runtime *rt;  /* a reference while the attempt is inside the plugin */
    struct sy_endpoint *ep; /* in rt: the plugin instance and endpoint state it runs with */
    int64_t started_us;     /* monotonic */
    int64_t deadline_ms;    /* monotonic; 0 for blocking calls */
    int probe;              /* the breaker's probe */
    int linked;             /* in its endpoint's in-flight list */
    void *call;             /* the shard's record of a submit_batch call, or NULL */
    struct attempt *lprev, *lnext; /* in its endpoint's list of asynchronous attempts in flight */
    struct attempt *prev, *next;   /* in its instance's expired list, or a shard's free lists */
} attempt;

/* The attempt behind a delivery the host handed out, or NULL. */
static inline attempt *attempt_of(const sy_delivery *d)
{
    return d ? (attempt *)d->host_ref : NULL;
}

/* sy_host.complete. */
void attempt_complete(const sy_delivery *d, const sy_outcome *o);

/* sy_host.complete_batch: the owning shards are woken once each, after the last push. */
void attempt_complete_batch(const sy_delivery *const *d, const sy_outcome *const *o, size_t n);

/*
 * Copies a plugin's outcome into out, refusing what a plugin must not
 * send: no struct_size, an unknown result. Never reads past the
 * outcome's own struct_size.
 */
void attempt_take_outcome(sy_outcome *out, const sy_outcome *o);

/*
 * Shard, at the deadline: marks a still in the plugin as expired and parks
 * it on its instance until a late complete or destroy. Returns 1, or 0
 * when the plugin completed it first (its INBOX_DONE is on the way).
 */
int attempt_expire(attempt *a, struct sy_instance *inst);

/* Runtime: frees the attempts still parked on inst (after its destroy returned). */
void attempt_free_expired(struct sy_instance *inst);

#endif
