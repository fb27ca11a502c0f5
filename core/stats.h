/*
 * stats.h - the daemon's counters, declared once.
 *
 * Every counter is one line of an X-macro list below: its field, where it
 * appears in the stats file, its Prometheus name and its help text. The
 * struct, the JSON snapshot (stats.c), the /metrics families (metrics.c)
 * and the exit log line are all generated from these lists, so the four
 * cannot drift apart.
 *
 * Hot counters are not shared between threads: each pipeline thread
 * (ingress, spool writer, every shard) counts into its own block, found
 * through a thread-local pointer, and readers add the blocks up. Threads
 * without a block of their own (plugin threads, the admin server) count
 * into a shared one. Updates are relaxed atomic adds on a cache line only
 * one thread writes, so they cost next to nothing and read exactly after
 * the fact.
 */
#ifndef SY_STATS_H
#define SY_STATS_H

#include <stdint.h>
#include "envelope.h"

/* X(field, json section, json key, metric name, help) */
#define SY_GLOBAL_COUNTERS(X)                                                                  \
    X(received, "events", "received", "switchyard_events_received_total",                      \
      "Messages read from ingress sockets.")                                                   \
    X(system_events, "events", "system", "switchyard_system_events_total",                     \
      "Events the daemon raised itself (delivery_failed, endpoint.disabled, test).")          \
    X(accepted, "events", "accepted", "switchyard_events_accepted_total",                      \
      "Messages that were valid events.")                                                      \
    X(rejected, "events", "rejected", NULL, NULL)                                              \
    X(unrouted, "events", "unrouted", "switchyard_events_unrouted_total",                      \
      "Accepted events no endpoint wanted.")                                                   \
    X(duplicates, "events", "duplicates", "switchyard_events_duplicate_total",                 \
      "Events whose id was already stored.")                                                   \
    X(quarantined, "events", "quarantined", "switchyard_events_quarantined_total",             \
      "Rejected messages written to the quarantine file.")                                     \
    X(quarantine_errors, "events", "quarantine_errors",                                        \
      "switchyard_events_quarantine_errors_total",                                             \
      "Rejected messages the quarantine file failed to take.")                                 \
    X(quarantine_dropped, "events", "quarantine_dropped",                                      \
      "switchyard_events_quarantine_dropped_total",                                            \
      "Rejected messages not kept: over core.quarantine_rate.")                                \
    X(spool_errors, "events", "spool_errors", "switchyard_spool_errors_total",                 \
      "Events the spool failed to store.")                                                     \
    X(backpressure_pauses, "events", "backpressure_pauses", "switchyard_ingress_pauses_total", \
      "Times ingress paused on back-pressure.")                                                \
    X(ingress_batches, "events", "ingress_batches", "switchyard_ingress_batches_total",        \
      "Reads of the ingress sockets that found messages; received / batches is the batch size.") \
    X(deliveries, "deliveries", "created", "switchyard_deliveries_created_total",              \
      "Deliveries created (one per event and endpoint it routes to).")                         \
    X(attempts, "deliveries", "attempts", NULL, NULL)                                          \
    X(ok, "deliveries", "ok", NULL, NULL)                                                      \
    X(retries, "deliveries", "retries", NULL, NULL)                                            \
    X(failed, "deliveries", "failed", NULL, NULL)                                              \
    X(dead, "deliveries", "dead", NULL, NULL)                                                  \
    X(filtered, "deliveries", "filtered", "switchyard_deliveries_filtered_total",             \
      "Deliveries an endpoint's transform dropped (returned nil): finished, not failed.")      \
    X(transform_errors, "deliveries", "transform_errors", "switchyard_transform_errors_total", \
      "Transform calls that failed (script error, budget, memory, a result that cannot be "  \
      "delivered); each fails its delivery.")                                                  \
    X(plugin_calls, "deliveries", "plugin_calls", "switchyard_plugin_calls_total",             \
      "Calls into sink plugins (a batch is one call); attempts / calls is the batch size.")    \
    X(completions_ignored, "deliveries", "completions_ignored",                                \
      "switchyard_plugin_completions_ignored_total",                                           \
      "complete() calls ignored: repeated, or after the attempt's deadline.")                  \
    X(deadline_expired, "deliveries", "deadline_expired",                                      \
      "switchyard_plugin_deadline_expired_total",                                              \
      "Submitted attempts the plugin did not complete before their deadline (retried).")       \
    X(fenced, "deliveries", "fenced", "switchyard_fenced_writes_total",                        \
      "Outcomes the store refused: their partition had passed to another tenure.")             \
    X(not_owned, "deliveries", "not_owned", "switchyard_deliveries_not_owned_total",           \
      "Deliveries left to another tenure before their attempt: the partition's lease ended.")

typedef struct sy_stats {
#define SY_STATS_FIELD(f, sec, key, metric, help) uint64_t f;
    SY_GLOBAL_COUNTERS(SY_STATS_FIELD)
#undef SY_STATS_FIELD
    uint64_t rejected_by[ENV_REASON_COUNT];
    struct sy_stats *next; /* in the list of blocks */
    char pad[64];          /* keeps the next block off this one's last cache line */
} sy_stats;

/* Per-endpoint counters: X(field, json key, help). */
#define SY_EP_COUNTERS(X)                                                                      \
    X(routed, "routed", "deliveries created")                                                  \
    X(attempts, "attempts", "attempts started")                                                \
    X(attempts_ok, "attempts_ok", "attempts answered SY_OK")                                   \
    X(attempts_retry, "attempts_retry", "attempts answered SY_RETRY")                          \
    X(attempts_fail, "failed", "attempts answered SY_FAIL")                                    \
    X(delivered, "ok", "deliveries finished: delivered")                                       \
    X(dead, "dead", "deliveries finished: dead")                                               \
    X(filtered, "filtered", "deliveries finished: dropped by the transform")                   \
    X(retries, "retries", "retries scheduled")                                                 \
    X(breaker_opens, "breaker_opens", "times the breaker opened")                              \
    X(gate_waits, "gate_waits", "deliveries held back by the rate limit or breaker")

/* Upper bounds (ms) of the attempt latency histogram; the last is +Inf. */
#define LAT_BUCKETS 12
extern const int64_t g_lat_bounds_ms[LAT_BUCKETS - 1];

typedef struct ep_stats {
#define SY_EP_FIELD(f, key, help) uint64_t f;
    SY_EP_COUNTERS(SY_EP_FIELD)
#undef SY_EP_FIELD
    uint64_t lat_bucket[LAT_BUCKETS]; /* attempt latency histogram */
    uint64_t lat_sum_ms, lat_count;
    int64_t last_status;
    int64_t last_attempt_ms;
} ep_stats;

/* The calling thread's block (the shared one until stats_thread_block is called). */
extern __thread sy_stats *tls_stats;

#define STAT_ADD(field, n) __atomic_add_fetch(&(field), (n), __ATOMIC_RELAXED)
#define STAT_GET(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)
/* Adds to a global counter in the calling thread's block. */
#define STAT_INC(field, n) STAT_ADD(tls_stats->field, (n))

/*
 * Gives the calling thread a block of its own (a pipeline thread calls it
 * once at start). Blocks live until stats_reset, so totals survive the
 * thread.
 */
void stats_thread_block(void);

/* The sum of every block. */
void stats_total(sy_stats *out);

/* Frees every block but the shared one and zeroes it (tests, and a daemon's end). */
void stats_reset(void);

/* Counts one attempt of latency_ms into an endpoint's histogram. */
void stats_observe_latency(ep_stats *st, int64_t latency_ms);

/* Logs the counters on one line (at exit). */
void stats_log(void);

struct cJSON;
/* Adds the global counters to a JSON object, section by section. */
void stats_json_global(struct cJSON *root, const sy_stats *s);
/* Adds one endpoint's counters to a JSON object. */
void stats_json_endpoint(struct cJSON *o, const ep_stats *st);
/* Adds key: v to o as an integer, without cJSON's double round trip (cheap for big files). */
void stats_json_count(struct cJSON *o, const char *key, uint64_t v);

#endif
