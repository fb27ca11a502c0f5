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
    pthread_mutex_t counters_mu;
    sy_counter *counters;
};

struct delivery;

/* Per-endpoint counters; updated with atomics. */
typedef struct ep_stats {
    uint64_t routed, attempts, ok, retries, failed, dead;
    uint64_t breaker_opens, gate_waits;
    uint64_t lat_bucket[12];  /* attempt latency histogram, see stats.h */
    uint64_t lat_sum_ms, lat_count;
    int64_t last_status;
    int64_t last_attempt_ms;
} ep_stats;

struct sy_runtime;

typedef struct sy_endpoint {
    const sy_endpoint_conf *conf;
    struct sy_runtime *rt;      /* the runtime (config generation) it belongs to */
    int retired;                /* a reload replaced its runtime (dispatcher lock) */
    struct sy_endpoint *successor; /* same id in the new runtime, or NULL if removed */
    struct sy_instance *inst;
    void *ep_state;       /* plugin state from endpoint_init */
    void *plugin_conf;    /* struct filled from the plugin's endpoint_config */
    sy_endpoint_setup setup; /* what endpoint_init was given; lives as long as ep_state */
    int64_t attempt_timeout_ms; /* the plugin's answer in setup, or the default */
    cfg_arena arena;
    int ep_initialized;
    sy_retry_policy retry;
    int concurrency;
    /* Dispatcher state, guarded by the dispatcher's lock. */
    int inflight;
    struct delivery *wait_head, *wait_tail;
    size_t nwaiting;
    sy_gate gate;               /* rate limit and breaker */
    struct delivery *held_head, *held_tail; /* waiting for the gate */
    size_t nheld;
    int64_t gate_timer_at;      /* monotonic ms of the armed gate timer, 0 = none */
    int disabled;               /* atomic: failing for too long; routes nothing */
    char last_detail[SY_DETAIL_MAX];
    ep_stats st;
} sy_endpoint;

typedef struct sy_runtime {
    sy_conf *conf;
    struct sy_instance *insts;
    size_t ninsts;
    sy_endpoint *eps;
    size_t neps;
    sy_router *router;
    sy_endpoint **by_id;  /* endpoints sorted by id, for lookups from the spool */
    uint64_t live;        /* atomic: deliveries pointing at its endpoints */
    struct sy_runtime *next_retired;
} sy_runtime;

/*
 * The runtime that new events are routed with. Readers (ingress, admin)
 * hold the read lock while they use it; a reload swaps it under the write
 * lock, so once runtime_swap returns nobody reads the old one any more.
 */
void runtime_set_current(sy_runtime *rt);
sy_runtime *runtime_acquire(void);
void runtime_release(void);
/* Installs rt as current and returns the previous one. */
sy_runtime *runtime_swap(sy_runtime *rt);

/*
 * Builds the runtime from a loaded config: loads each plugin, validates
 * instance and endpoint keys against the plugins' tables (errors in the
 * config format, all of them), and, unless validate_only, calls init and
 * endpoint_init. Returns NULL with errs filled on any error.
 */
sy_runtime *runtime_build(sy_conf *conf, const sy_host *host, int validate_only, sy_errs *errs);

/* The endpoint with this id, or NULL. */
sy_endpoint *runtime_find_endpoint(const sy_runtime *rt, const char *id);

/* Calls endpoint_destroy and destroy, unloads plugins, frees. Not the conf. */
void runtime_free(sy_runtime *rt);

/* Prints the routing table (for `switchyard check`). */
void runtime_print_table(const sy_runtime *rt, FILE *out);

#endif
