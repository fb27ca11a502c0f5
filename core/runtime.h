/*
 * runtime.h - sink instances and endpoints as the running daemon holds
 * them: config resolved, plugin loaded and initialised, counters.
 */
#ifndef SY_RUNTIME_H
#define SY_RUNTIME_H

#include <pthread.h>
#include <stdint.h>

#include "cfgtable.h"
#include "config.h"
#include "gate.h"
#include "plugin.h"
#include "retry.h"
#include "router.h"
#include "switchyard/sink.h"

/* What an attempt may take inside a plugin when it does not say (sy_endpoint_setup). */
#define DEFAULT_ATTEMPT_TIMEOUT_MS 30000

/* A counter a plugin registered through host->counter. */
typedef struct sy_counter {
    char *name;
    char *help;
    uint64_t value; /* atomic */
    struct sy_counter *next;
} sy_counter;

struct attempt;
struct sy_pipeline;

/* One sink instance; the opaque sy_instance of the ABI. */
struct sy_instance {
    char *name;
    const sy_sink_conf *conf;
    sy_plugin *plugin;
    const sy_sink *sink;
    void *state;          /* plugin state from init */
    void *plugin_conf;    /* struct filled from the plugin's instance_config */
    cfg_arena arena;
    int initialized;
    uint32_t batch_max;   /* the descriptor's, 1 for the one-at-a-time calls */
    struct sy_pipeline *pipeline; /* where host->emit goes; NULL in `check` */
    pthread_mutex_t counters_mu;
    sy_counter *counters;
    /*
     * Attempts that passed their deadline inside the plugin: kept (their
     * body may still be read) until the plugin completes them late or the
     * instance is destroyed. Guarded by expired_mu.
     */
    pthread_mutex_t expired_mu;
    struct attempt *expired;
};

struct sy_runtime;

typedef enum { ORDER_NONE = 0, ORDER_ENDPOINT, ORDER_KEY } sy_ordering;

/*
 * An endpoint as one config generation defines it. Everything that lives
 * across reloads (queues, gate, breaker, counters, the disabled state)
 * belongs to the shard that owns the endpoint id, not to this struct.
 */
typedef struct sy_endpoint {
    const sy_endpoint_conf *conf;
    struct sy_runtime *rt;      /* the runtime (config generation) it belongs to */
    uint32_t index;             /* in rt->eps */
    uint64_t id_hash;           /* of conf->id: picks the owning shard */
    struct sy_instance *inst;
    void *ep_state;       /* plugin state from endpoint_init */
    void *plugin_conf;    /* struct filled from the plugin's endpoint_config */
    sy_endpoint_setup setup; /* what endpoint_init was given; lives as long as ep_state */
    int64_t attempt_timeout_ms; /* the plugin's answer in setup, or the default */
    /*
     * How the shard batches this endpoint: the endpoint's batch key when the
     * plugin took it, else the descriptor's batch_max and batch_linger_ms.
     * batch_whole: one outcome covers a batch (SY_BATCH_WHOLE), so the
     * shard keeps batches together across retries.
     */
    uint32_t batch_max;
    int64_t batch_linger_ms;
    int batch_whole;
    /*
     * Atomic: the endpoint is disabled (it routes nothing). Owned by the
     * pipeline, one per endpoint id for the pipeline's life, so every
     * generation of the endpoint shares it; NULL outside a pipeline.
     */
    int *disabled;
    cfg_arena arena;
    int ep_initialized;
    sy_retry_policy retry;
    int concurrency;
    /* The transform's script text, read at build time (reloads read it again); NULL = none. */
    char *tf_src;
    size_t tf_len;
    sy_ordering ordering;
} sy_endpoint;

typedef struct sy_runtime {
    sy_conf *conf;
    struct sy_instance *insts;
    size_t ninsts;
    sy_endpoint *eps;
    size_t neps;
    sy_router *router;
    sy_endpoint **by_id;  /* endpoints sorted by id, for lookups from the spool */
    uint64_t refs;        /* atomic; see runtime_ref */
    int owns_conf;        /* freeing the runtime frees conf too (reloads; not the boot one) */
    struct sy_runtime *next_free; /* in the reaper's list once refs reached zero */
    /*
     * Ids the admin API deleted (and nothing defines again), sorted, owned:
     * a delivery to one of them that was routed just before the delete
     * becomes a dead letter, not a row pending for nobody.
     */
    char **deleted;
    size_t ndeleted;
    /* What GET shows of the admin API's endpoints besides their config (epset_meta_json); owned. */
    cJSON *api_meta;
} sy_runtime;

/* The hash that places endpoint ids on shards and partitions (FNV-1a, 64 bit). */
uint64_t runtime_id_hash(const char *id);

/*
 * Reference counting. A runtime is referenced by whoever may still touch
 * its endpoints or plugin instances: the pipeline while it is current,
 * each shard that adopted it, each batch of deliveries routed with it and
 * each attempt inside one of its plugins. runtime_unref of the last
 * reference does not free it (that may be a shard or plugin thread):
 * it hands it to the release function set with runtime_on_release, which
 * frees it on a thread that may block; without one, it is freed at once.
 */
void runtime_ref(sy_runtime *rt);
void runtime_unref(sy_runtime *rt);
void runtime_on_release(void (*fn)(void *arg, sy_runtime *rt), void *arg);

/*
 * The runtime new events are routed with. runtime_current returns it with
 * a reference the caller drops with runtime_unref (NULL when none is
 * installed). runtime_install makes rt current, taking over the caller's
 * reference, and drops the one it held on the previous runtime.
 */
sy_runtime *runtime_current(void);
void runtime_install(sy_runtime *rt);

/*
 * Builds the runtime from a loaded config: loads each plugin, validates
 * instance and endpoint keys against the plugins' tables (errors in the
 * config format, all of them), and, unless validate_only, calls init and
 * endpoint_init. pipeline (may be NULL) is where the instances' emitted
 * events go. Returns NULL with errs filled on any error; otherwise a
 * runtime holding one reference, the caller's.
 */
sy_runtime *runtime_build(sy_conf *conf, const sy_host *host, struct sy_pipeline *pipeline,
                          int validate_only, sy_errs *errs);

/* The endpoint with this id, or NULL. */
sy_endpoint *runtime_find_endpoint(const sy_runtime *rt, const char *id);

/* Copies ids (n of them, any order) as rt->deleted. 0, or -1 when out of memory. */
int runtime_set_deleted(sy_runtime *rt, const char *const *ids, size_t n);
/* 1 when id is in rt->deleted. */
int runtime_was_deleted(const sy_runtime *rt, const char *id);

/*
 * Calls endpoint_destroy and destroy, frees attempts that expired inside
 * the plugins, unloads plugins, frees. Not the conf. Only for a runtime
 * nobody references any more (or one that never ran).
 */
void runtime_free(sy_runtime *rt);

/* Prints the routing table (for `switchyard check`). */
void runtime_print_table(const sy_runtime *rt, FILE *out);

#endif
