/*
 * stats.c - counter blocks, their sum, and their JSON and log forms.
 */
#include "stats.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "log.h"

static sy_stats g_shared;
static pthread_mutex_t g_blocks_mu = PTHREAD_MUTEX_INITIALIZER;
static sy_stats *g_blocks = &g_shared;

__thread sy_stats *tls_stats = &g_shared;

const int64_t g_lat_bounds_ms[LAT_BUCKETS - 1] = {5, 10, 25, 50, 100, 250, 500, 1000, 2500,
                                                  5000, 10000};

void stats_thread_block(void)
{
    sy_stats *b = calloc(1, sizeof *b);
    if (!b)
        return; /* the shared block keeps counting */
    pthread_mutex_lock(&g_blocks_mu);
    b->next = g_blocks;
    g_blocks = b;
    pthread_mutex_unlock(&g_blocks_mu);
    tls_stats = b;
}

void stats_total(sy_stats *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&g_blocks_mu);
    for (sy_stats *b = g_blocks; b; b = b->next) {
#define SY_SUM(f, sec, key, metric, help) out->f += STAT_GET(b->f);
        SY_GLOBAL_COUNTERS(SY_SUM)
#undef SY_SUM
        for (int r = 0; r < ENV_REASON_COUNT; r++)
            out->rejected_by[r] += STAT_GET(b->rejected_by[r]);
    }
    pthread_mutex_unlock(&g_blocks_mu);
}

void stats_reset(void)
{
    pthread_mutex_lock(&g_blocks_mu);
    for (sy_stats *b = g_blocks, *n; b; b = n) {
        n = b->next;
        if (b != &g_shared)
            free(b);
    }
    memset(&g_shared, 0, sizeof g_shared);
    g_blocks = &g_shared;
    pthread_mutex_unlock(&g_blocks_mu);
    tls_stats = &g_shared;
}

void stats_observe_latency(ep_stats *st, int64_t latency_ms)
{
    int b = 0;
    while (b < LAT_BUCKETS - 1 && latency_ms > g_lat_bounds_ms[b])
        b++;
    STAT_ADD(st->lat_bucket[b], 1);
    STAT_ADD(st->lat_sum_ms, (uint64_t)(latency_ms > 0 ? latency_ms : 0));
    STAT_ADD(st->lat_count, 1);
}

/*
 * A counter as a JSON number. cJSON prints a double by formatting it and
 * reading it back with sscanf to check the round trip: with 10,000
 * endpoints that was most of the stats file's cost. Integers need neither.
 */
void stats_json_count(cJSON *o, const char *key, uint64_t v)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
    cJSON_AddRawToObject(o, key, buf);
}

static cJSON *section(cJSON *root, const char *name)
{
    cJSON *o = cJSON_GetObjectItemCaseSensitive(root, name);
    return o ? o : cJSON_AddObjectToObject(root, name);
}

void stats_json_global(cJSON *root, const sy_stats *s)
{
#define SY_JSON(f, sec, key, metric, help)                                                    \
    stats_json_count(section(root, sec), key, s->f);
    SY_GLOBAL_COUNTERS(SY_JSON)
#undef SY_JSON
    cJSON *rej = section(root, "rejected");
    for (int r = 1; r < ENV_REASON_COUNT; r++)
        stats_json_count(rej, envelope_reason_name((env_reason)r), s->rejected_by[r]);
}

void stats_json_endpoint(cJSON *o, const ep_stats *st)
{
#define SY_EP_JSON(f, key, help) stats_json_count(o, key, (uint64_t)STAT_GET(st->f));
    SY_EP_COUNTERS(SY_EP_JSON)
#undef SY_EP_JSON
    stats_json_count(o, "last_status", (uint64_t)STAT_GET(st->last_status));
}

void stats_log(void)
{
    sy_stats s;
    stats_total(&s);
    /* One field per counter, named as in the struct, numbers as numbers. */
    log_field f[] = {
#define SY_LOG(fld, sec, key, metric, help) LOG_I(#fld, s.fld),
        SY_GLOBAL_COUNTERS(SY_LOG)
#undef SY_LOG
        LOG_END};
    log_fieldv(SY_LOG_INFO, "counters", f);
}
