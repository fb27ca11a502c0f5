/*
 * pipeline.h - the whole path of an event, wired in one place:
 *
 *   ingress --batch--> [spool: one transaction] --per-shard batches--> shards --> plugins
 *      ^                     |                                           |
 *      +---- ok/dup/error ---+                 system events <-----------+
 *
 * Ingress reads many messages per wake, validates and routes them against
 * the current runtime and hands the pipeline one batch. With a spool the
 * batch is committed first (group commit with whatever else is queued)
 * and only then split per shard and acknowledged; without one it is split
 * at once. System events (webhook.delivery_failed, endpoint.disabled,
 * plugins' host->emit, admin test events) enter through pipeline_emit and
 * take exactly the same path.
 *
 * The pipeline also owns reloads (one step: every shard adopts the new
 * runtime in its inbox before it becomes current), the release of old
 * runtimes, and the order of shutdown.
 */
#ifndef SY_PIPELINE_H
#define SY_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include "cluster.h"
#include "quarantine.h"
#include "runtime.h"
#include "shard.h"
#include "spool.h"

typedef struct sy_pipeline sy_pipeline;

/* Where an acknowledgement goes: an ack (ROUTER) socket, the peer, its tag. */
typedef struct reply_to {
    unsigned char sock;        /* index of the ingress socket */
    unsigned char ident[256];
    size_t ident_len;
    unsigned char tag[256];
    size_t tag_len;
    int has_tag;
} reply_to;

typedef struct pipeline_opts {
    int shards;               /* threads owning endpoints */
    int workers;              /* threads running blocking plugins */
    sy_spool *spool;          /* NULL: in memory */
    sy_quarantine *quarantine;
    int64_t spill_after_ms;
    size_t memory_deliveries; /* in memory at most, over all shards (spool mode) */
    int64_t complete_grace_ms;
    own_table *own;           /* the partitions this node owns (set up by the caller) */
    int64_t solo_epoch;       /* without a cluster: the epoch deliveries routed here carry */
} pipeline_opts;

/*
 * Creates the shards and workers (not started) for the first runtime rt,
 * which it installs as current (taking a reference).
 */
sy_pipeline *pipeline_new(const pipeline_opts *o, sy_runtime *rt);

/* Starts workers, shards, the spool writer and its pager. 0 or -1. */
int pipeline_start(sy_pipeline *pl);

/* Ingress attaches itself (for acknowledgements after commit). */
struct sy_ingress;
void pipeline_set_ingress(sy_pipeline *pl, struct sy_ingress *in);

/*
 * A batch of accepted events on its way in. Ingress opens one per read,
 * adds each event with its endpoints, and submits it; the batch holds a
 * reference on the runtime it was routed with.
 */
typedef struct pl_batch pl_batch;
pl_batch *pipeline_batch_new(sy_runtime *rt);
/*
 * Adds ev (a reference is taken) going to eps[0..n), n may be 0. reply:
 * where its acknowledgement goes, or NULL. Returns 0, or -1 when out of
 * memory (the caller answers the publisher).
 */
int pipeline_batch_add(pl_batch *b, sy_event *ev, sy_endpoint *const *eps, size_t n,
                       const reply_to *reply);
size_t pipeline_batch_len(const pl_batch *b);
/* Stores (with a spool) and dispatches the batch; the pipeline owns it from here. */
void pipeline_submit(sy_pipeline *pl, pl_batch *b);

/*
 * Validates and routes one message against rt into b: the common path of
 * published and system events. Returns ENV_OK, or the reason with a human
 * sentence in why (the event is then not added). system: raised by the
 * daemon (the "*" pattern does not match it); exclude: an endpoint id it
 * must not reach; only: the one endpoint it goes to (skips routing).
 */
env_reason pipeline_route(sy_pipeline *pl, pl_batch *b, sy_runtime *rt, const char *body,
                          size_t len, const reply_to *reply, int system, const char *exclude,
                          const sy_endpoint *only, char *why, size_t whylen);

/*
 * Raises a system event (see sysevent.h for the envelope). Any thread.
 * data_json: a JSON object or NULL. Returns 0, or -1 (bad type or data,
 * or the pipeline is stopping).
 */
int pipeline_emit(sy_pipeline *pl, const char *type, const char *org_id, const char *data_json,
                  const char *exclude);

/*
 * Sends a webhook.test event to one endpoint; its id into evid. 0, -1 (no
 * such endpoint), -3 (the endpoint is disabled), -2 (stopping, or out of memory).
 */
int pipeline_test_event(sy_pipeline *pl, const char *endpoint_id, char *evid, size_t evid_len);

/*
 * What the cluster's lease thread calls (cluster.h): partitions taken (the
 * pager looks at once; rate limits learn the previous owner's recent
 * attempts), and "commit what is queued" before a partition goes back.
 */
void pipeline_cluster_hooks(sy_pipeline *pl, cluster_hooks *out);

/* Re-enables an endpoint the disable clock stopped (state kept in the spool). 0, or -1. */
int pipeline_enable(sy_pipeline *pl, const char *endpoint_id);

/*
 * Reload: every shard adopts nrt (in its inbox, ahead of anything routed
 * with it), then nrt becomes current. Takes the caller's reference.
 */
void pipeline_reload(sy_pipeline *pl, sy_runtime *nrt);

/* Frees runtimes whose last reference dropped (main thread; plugin destroy may block). */
void pipeline_reap(sy_pipeline *pl);

/* What ingress back-pressure counts (deliveries), and the bytes of events in memory. */
size_t pipeline_backlog(sy_pipeline *pl);
uint64_t pipeline_bytes(void);

typedef struct pipeline_counts {
    size_t ready, held, inflight, scheduled, expired, spool_queued;
    size_t spool_unfolded; /* events and outcomes in the spool's hot log, not in its database yet */
    size_t waiting; /* ordered endpoints: behind the head of their key */
} pipeline_counts;
void pipeline_get_counts(sy_pipeline *pl, pipeline_counts *out);

/* A copy of what the shards hold of one endpoint, for readers. */
typedef struct ep_live {
    char id[160];
    ep_stats st;
    int disabled, breaker_open;
    size_t ready, inflight;
    char last_detail[SY_DETAIL_MAX];
} ep_live;

/*
 * Every endpoint the shards hold (also ones a reload removed that still
 * have attempts in flight), copied and sorted by id. Caller frees *out.
 * Returns the count (0 when out of memory).
 */
size_t pipeline_endpoint_snapshot(sy_pipeline *pl, ep_live **out);
/* The one with this id in a snapshot, or NULL. */
const ep_live *pipeline_snapshot_find(const ep_live *v, size_t n, const char *id);

/* Every endpoint of every shard (see shard_foreach). */
void pipeline_foreach_endpoint(sy_pipeline *pl,
                               void (*fn)(void *arg, const shard_ep_view *v), void *arg);

/* The stats file: counters, endpoints, sinks, as JSON, written atomically. 0 or -1. */
int pipeline_write_stats(sy_pipeline *pl, const char *path);

/*
 * Shutdown: ingress has stopped. Waits for the spool to take everything
 * accepted, lets ready and in-flight deliveries finish up to drain_ms,
 * then stops starting attempts, waits for every attempt to leave its
 * plugin (or pass its deadline), and stops the threads. Deliveries not
 * finished stay pending in the spool.
 */
void pipeline_stop(sy_pipeline *pl, int64_t drain_ms);

/* Frees everything, the current runtime included. After pipeline_stop. */
void pipeline_free(sy_pipeline *pl);

#endif
