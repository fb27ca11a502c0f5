/*
 * stats.h - the daemon's counters and their JSON snapshot.
 *
 * Counters are plain uint64_t updated with relaxed atomics: cheap on the hot
 * path, exact when read after the fact. The snapshot goes to the file named
 * by core.stats_file (written atomically: tmp file + rename), every
 * core.stats_interval and at exit, so operators and tests can read them
 * before the admin API exists.
 */
#ifndef SY_STATS_H
#define SY_STATS_H

#include <stdint.h>
#include "envelope.h"

typedef struct sy_stats {
    uint64_t received;               /* messages read from ingress sockets */
    uint64_t system_events;          /* events the daemon raised itself */
    uint64_t accepted;               /* valid envelopes */
    uint64_t rejected;               /* all rejections */
    uint64_t rejected_by[ENV_REASON_COUNT];
    uint64_t unrouted;               /* accepted, matched no endpoint */
    uint64_t quarantined;            /* written to the quarantine file */
    uint64_t quarantine_errors;      /* quarantine writes that failed */
    uint64_t quarantine_dropped;     /* not written: over core.quarantine_rate */
    uint64_t deliveries;             /* deliveries created */
    uint64_t attempts, ok, retries, failed, dead;
    uint64_t backpressure_pauses;    /* times ingress paused reading */
    uint64_t duplicates;             /* event ids already in the spool */
    uint64_t spool_errors;           /* events the spool failed to store */
} sy_stats;

extern sy_stats g_stats;

/* Upper bounds (ms) of the attempt latency histogram; the last is +Inf. */
#define LAT_BUCKETS 12
extern const int64_t g_lat_bounds_ms[LAT_BUCKETS - 1];

struct ep_stats;
/* Counts one attempt of latency_ms into an endpoint's histogram. */
void stats_observe_latency(struct ep_stats *st, int64_t latency_ms);

#define STAT_ADD(field, n) __atomic_add_fetch(&(field), (n), __ATOMIC_RELAXED)
#define STAT_GET(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)

struct sy_runtime;
struct sy_dispatch;

/* Writes the snapshot as JSON to path atomically. Returns 0, or -1 (errno). */
int stats_write(const char *path, const struct sy_runtime *rt, struct sy_dispatch *dp);

/* Logs the counters on one line (at exit). */
void stats_log(void);

#endif
