/*
 * stats.c - counters and their JSON snapshot.
 */
#include "stats.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cjson/cJSON.h>

#include "dispatch.h"
#include "fsmode.h"
#include "log.h"
#include "quarantine.h"
#include "runtime.h"

sy_stats g_stats;

const int64_t g_lat_bounds_ms[LAT_BUCKETS - 1] = {5, 10, 25, 50, 100, 250, 500, 1000, 2500,
                                                  5000, 10000};

void stats_observe_latency(struct ep_stats *st, int64_t latency_ms)
{
    int b = 0;
    while (b < LAT_BUCKETS - 1 && latency_ms > g_lat_bounds_ms[b])
        b++;
    STAT_ADD(st->lat_bucket[b], 1);
    STAT_ADD(st->lat_sum_ms, (uint64_t)(latency_ms > 0 ? latency_ms : 0));
    STAT_ADD(st->lat_count, 1);
}

static void num(cJSON *o, const char *k, uint64_t v)
{
    cJSON_AddNumberToObject(o, k, (double)v);
}

static cJSON *snapshot(const sy_runtime *rt, sy_dispatch *dp)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *ev = cJSON_AddObjectToObject(root, "events");
    num(ev, "received", STAT_GET(g_stats.received));
    num(ev, "system", STAT_GET(g_stats.system_events));
    num(ev, "accepted", STAT_GET(g_stats.accepted));
    num(ev, "rejected", STAT_GET(g_stats.rejected));
    num(ev, "unrouted", STAT_GET(g_stats.unrouted));
    num(ev, "quarantined", STAT_GET(g_stats.quarantined));
    num(ev, "quarantine_errors", STAT_GET(g_stats.quarantine_errors));
    num(ev, "quarantine_dropped", STAT_GET(g_stats.quarantine_dropped));
    num(ev, "backpressure_pauses", STAT_GET(g_stats.backpressure_pauses));
    num(ev, "duplicates", STAT_GET(g_stats.duplicates));
    num(ev, "spool_errors", STAT_GET(g_stats.spool_errors));
    cJSON *rej = cJSON_AddObjectToObject(root, "rejected");
    for (int r = 1; r < ENV_REASON_COUNT; r++)
        num(rej, envelope_reason_name((env_reason)r), STAT_GET(g_stats.rejected_by[r]));
    cJSON *dl = cJSON_AddObjectToObject(root, "deliveries");
    num(dl, "created", STAT_GET(g_stats.deliveries));
    num(dl, "attempts", STAT_GET(g_stats.attempts));
    num(dl, "ok", STAT_GET(g_stats.ok));
    num(dl, "retries", STAT_GET(g_stats.retries));
    num(dl, "failed", STAT_GET(g_stats.failed));
    num(dl, "dead", STAT_GET(g_stats.dead));
    if (dp) {
        dispatch_counts dc;
        dispatch_get_counts(dp, &dc);
        num(dl, "ready", dc.ready);
        num(dl, "waiting", dc.waiting);
        num(dl, "inflight", dc.inflight);
        num(dl, "scheduled", dc.scheduled);
        num(dl, "held", dc.held);
        num(dl, "dead_kept", dc.dead_kept);
        num(dl, "dead_dropped", dc.dead_dropped);
    }
    cJSON *eps = cJSON_AddObjectToObject(root, "endpoints");
    for (size_t i = 0; rt && i < rt->neps; i++) {
        const sy_endpoint *ep = &rt->eps[i];
        cJSON *e = cJSON_AddObjectToObject(eps, ep->conf->id);
        num(e, "routed", STAT_GET(ep->st.routed));
        num(e, "attempts", STAT_GET(ep->st.attempts));
        num(e, "ok", STAT_GET(ep->st.ok));
        num(e, "retries", STAT_GET(ep->st.retries));
        num(e, "failed", STAT_GET(ep->st.failed));
        num(e, "dead", STAT_GET(ep->st.dead));
        num(e, "breaker_opens", STAT_GET(ep->st.breaker_opens));
        num(e, "gate_waits", STAT_GET(ep->st.gate_waits));
        cJSON_AddStringToObject(e, "state", __atomic_load_n(&ep->disabled, __ATOMIC_RELAXED)
                                                ? "disabled"
                                            : __atomic_load_n(&ep->gate.open, __ATOMIC_RELAXED)
                                                ? "breaker_open"
                                                : "active");
        cJSON_AddNumberToObject(e, "last_status", (double)STAT_GET(ep->st.last_status));
    }
    cJSON *pl = cJSON_AddObjectToObject(root, "sinks");
    for (size_t i = 0; rt && i < rt->ninsts; i++) {
        struct sy_instance *in = &rt->insts[i];
        cJSON *s = cJSON_AddObjectToObject(pl, in->name);
        cJSON_AddStringToObject(s, "plugin", in->sink ? in->sink->name : "?");
        pthread_mutex_lock(&in->counters_mu);
        for (sy_counter *c = in->counters; c; c = c->next)
            num(s, c->name, __atomic_load_n(&c->value, __ATOMIC_RELAXED));
        pthread_mutex_unlock(&in->counters_mu);
    }
    return root;
}

int stats_write(const char *path, const sy_runtime *rt, sy_dispatch *dp)
{
    cJSON *root = snapshot(rt, dp);
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text)
        return -1;
    size_t l = strlen(path) + 8;
    char *tmp = malloc(l);
    snprintf(tmp, l, "%s.tmp", path);
    mkdir_parents(path);
    FILE *f = fs_fopen(tmp, "w", FS_MODE_GROUP);
    int rc = -1;
    if (f) {
        int ok = fputs(text, f) >= 0 && fputc('\n', f) != EOF;
        ok = (fclose(f) == 0) && ok;
        rc = ok && rename(tmp, path) == 0 ? 0 : -1;
    }
    free(tmp);
    free(text);
    return rc;
}

void stats_log(void)
{
    log_fields(SY_LOG_INFO, "counters", LOG_I("received", STAT_GET(g_stats.received)),
               LOG_I("accepted", STAT_GET(g_stats.accepted)),
               LOG_I("rejected", STAT_GET(g_stats.rejected)),
               LOG_I("unrouted", STAT_GET(g_stats.unrouted)),
               LOG_I("deliveries", STAT_GET(g_stats.deliveries)),
               LOG_I("attempts", STAT_GET(g_stats.attempts)), LOG_I("ok", STAT_GET(g_stats.ok)),
               LOG_I("retries", STAT_GET(g_stats.retries)),
               LOG_I("failed", STAT_GET(g_stats.failed)), LOG_I("dead", STAT_GET(g_stats.dead)));
}
