/*
 * metrics.c - Prometheus text format (version 0.0.4) of every counter.
 *
 * Names follow Prometheus conventions: counters end in _total, the
 * latency histogram is in seconds, label values are escaped.
 */
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stats.h"

typedef struct {
    char *buf;
    size_t len, cap;
} out_t;

static void emit(out_t *o, const char *fmt, ...) SY_PRINTF(2, 3);
static void emit(out_t *o, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if (o->len + (size_t)n < o->cap) {
            o->len += (size_t)n;
            return;
        }
        size_t ncap = (o->cap + (size_t)n) * 2;
        char *nb = realloc(o->buf, ncap);
        if (!nb)
            return;
        o->buf = nb;
        o->cap = ncap;
    }
}

/* Label values: backslash, quote and newline escaped. */
static const char *esc(const char *s, char *buf, size_t len)
{
    size_t o = 0;
    for (; *s && o + 3 < len; s++) {
        if (*s == '\\' || *s == '"') {
            buf[o++] = '\\';
            buf[o++] = *s;
        } else if (*s == '\n') {
            buf[o++] = '\\';
            buf[o++] = 'n';
        } else {
            buf[o++] = *s;
        }
    }
    buf[o] = '\0';
    return buf;
}

static void head(out_t *o, const char *name, const char *type, const char *help)
{
    emit(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void global_counters(out_t *o)
{
    struct {
        const char *name, *help;
        uint64_t *v;
    } c[] = {
        {"switchyard_events_received_total", "Messages read from ingress sockets.", &g_stats.received},
        {"switchyard_system_events_total", "Events the daemon raised itself (delivery_failed, endpoint.disabled, test).", &g_stats.system_events},
        {"switchyard_events_accepted_total", "Messages that were valid events.", &g_stats.accepted},
        {"switchyard_events_unrouted_total", "Accepted events no endpoint wanted.", &g_stats.unrouted},
        {"switchyard_events_duplicate_total", "Events whose id was already stored.", &g_stats.duplicates},
        {"switchyard_events_quarantined_total", "Rejected messages written to the quarantine file.", &g_stats.quarantined},
        {"switchyard_events_quarantine_dropped_total", "Rejected messages not written to the quarantine file (over core.quarantine_rate).", &g_stats.quarantine_dropped},
        {"switchyard_spool_errors_total", "Events the spool failed to store.", &g_stats.spool_errors},
        {"switchyard_ingress_pauses_total", "Times ingress paused on back-pressure.", &g_stats.backpressure_pauses},
        {"switchyard_attempts_total", "Delivery attempts made.", &g_stats.attempts},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        head(o, c[i].name, "counter", c[i].help);
        emit(o, "%s %llu\n", c[i].name, (unsigned long long)STAT_GET(*c[i].v));
    }
    head(o, "switchyard_events_rejected_total", "counter", "Rejected messages by reason.");
    for (int r = 1; r < ENV_REASON_COUNT; r++)
        emit(o, "switchyard_events_rejected_total{reason=\"%s\"} %llu\n",
             envelope_reason_name((env_reason)r),
             (unsigned long long)STAT_GET(g_stats.rejected_by[r]));
}

static void endpoint_series(out_t *o, const sy_runtime *rt)
{
    char e1[512], e2[512];
    head(o, "switchyard_deliveries_total", "counter",
         "Delivery attempt outcomes by endpoint and sink (ok, retry, failed, dead).");
    for (size_t i = 0; i < rt->neps; i++) {
        const sy_endpoint *ep = &rt->eps[i];
        const char *id = esc(ep->conf->id, e1, sizeof e1), *sink = esc(ep->inst->name, e2, sizeof e2);
        struct {
            const char *outcome;
            uint64_t v;
        } k[] = {{"ok", STAT_GET(ep->st.ok)}, {"retry", STAT_GET(ep->st.retries)},
                 {"failed", STAT_GET(ep->st.failed)}, {"dead", STAT_GET(ep->st.dead)}};
        for (size_t j = 0; j < 4; j++)
            emit(o, "switchyard_deliveries_total{endpoint=\"%s\",sink=\"%s\",outcome=\"%s\"} %llu\n",
                 id, sink, k[j].outcome, (unsigned long long)k[j].v);
    }
    head(o, "switchyard_attempt_duration_seconds", "histogram",
         "Time from handing a delivery to its sink until the outcome.");
    for (size_t i = 0; i < rt->neps; i++) {
        const sy_endpoint *ep = &rt->eps[i];
        const char *id = esc(ep->conf->id, e1, sizeof e1);
        uint64_t cum = 0;
        for (int b = 0; b < LAT_BUCKETS; b++) {
            cum += STAT_GET(ep->st.lat_bucket[b]);
            if (b < LAT_BUCKETS - 1)
                emit(o, "switchyard_attempt_duration_seconds_bucket{endpoint=\"%s\",le=\"%g\"} %llu\n",
                     id, (double)g_lat_bounds_ms[b] / 1000.0, (unsigned long long)cum);
            else
                emit(o, "switchyard_attempt_duration_seconds_bucket{endpoint=\"%s\",le=\"+Inf\"} %llu\n",
                     id, (unsigned long long)cum);
        }
        emit(o, "switchyard_attempt_duration_seconds_sum{endpoint=\"%s\"} %.3f\n", id,
             (double)STAT_GET(ep->st.lat_sum_ms) / 1000.0);
        emit(o, "switchyard_attempt_duration_seconds_count{endpoint=\"%s\"} %llu\n", id,
             (unsigned long long)STAT_GET(ep->st.lat_count));
    }
    head(o, "switchyard_endpoint_state", "gauge",
         "1 for the endpoint's current state (active, breaker_open, disabled).");
    for (size_t i = 0; i < rt->neps; i++) {
        const sy_endpoint *ep = &rt->eps[i];
        int dis = __atomic_load_n(&ep->disabled, __ATOMIC_RELAXED);
        int open = __atomic_load_n(&ep->gate.open, __ATOMIC_RELAXED);
        const char *id = esc(ep->conf->id, e1, sizeof e1);
        emit(o, "switchyard_endpoint_state{endpoint=\"%s\",state=\"active\"} %d\n", id, !dis && !open);
        emit(o, "switchyard_endpoint_state{endpoint=\"%s\",state=\"breaker_open\"} %d\n", id, !dis && open);
        emit(o, "switchyard_endpoint_state{endpoint=\"%s\",state=\"disabled\"} %d\n", id, dis);
    }
    head(o, "switchyard_breaker_opens_total", "counter", "Times an endpoint's breaker opened.");
    for (size_t i = 0; i < rt->neps; i++)
        emit(o, "switchyard_breaker_opens_total{endpoint=\"%s\"} %llu\n",
             esc(rt->eps[i].conf->id, e1, sizeof e1),
             (unsigned long long)STAT_GET(rt->eps[i].st.breaker_opens));
}

static void metric_name(char *name, size_t len, const char *plugin, const char *counter)
{
    size_t n = (size_t)snprintf(name, len, "switchyard_plugin_%s_%s_total", plugin, counter);
    /* Metric names allow [a-zA-Z0-9_:] only. */
    for (size_t k = 0; k < n && k < len; k++)
        if (!((name[k] >= 'a' && name[k] <= 'z') || (name[k] >= 'A' && name[k] <= 'Z') ||
              (name[k] >= '0' && name[k] <= '9') || name[k] == '_' || name[k] == ':'))
            name[k] = '_';
}

/*
 * One family per plugin counter: HELP and TYPE once, then a sample per
 * instance. Several instances of one plugin share the family, as
 * Prometheus requires.
 */
static void plugin_counters(out_t *o, const sy_runtime *rt)
{
    char e1[512], name[256], other[256];
    for (size_t i = 0; i < rt->ninsts; i++) {
        struct sy_instance *in = &rt->insts[i];
        if (!in->sink)
            continue;
        pthread_mutex_lock(&in->counters_mu);
        for (sy_counter *c = in->counters; c; c = c->next) {
            metric_name(name, sizeof name, in->sink->name, c->name);
            /* Emitted already with an earlier instance of the same plugin? */
            int seen = 0;
            for (size_t j = 0; j < i && !seen; j++) {
                struct sy_instance *pj = &rt->insts[j];
                if (!pj->sink || strcmp(pj->sink->name, in->sink->name))
                    continue;
                pthread_mutex_lock(&pj->counters_mu);
                for (sy_counter *cj = pj->counters; cj && !seen; cj = cj->next) {
                    metric_name(other, sizeof other, pj->sink->name, cj->name);
                    seen = !strcmp(other, name);
                }
                pthread_mutex_unlock(&pj->counters_mu);
            }
            if (seen)
                continue;
            emit(o, "# HELP %s %s\n# TYPE %s counter\n", name, c->help[0] ? c->help : c->name, name);
            for (size_t j = i; j < rt->ninsts; j++) {
                struct sy_instance *pj = &rt->insts[j];
                if (!pj->sink || strcmp(pj->sink->name, in->sink->name))
                    continue;
                if (j != i)
                    pthread_mutex_lock(&pj->counters_mu);
                for (sy_counter *cj = pj->counters; cj; cj = cj->next) {
                    metric_name(other, sizeof other, pj->sink->name, cj->name);
                    if (!strcmp(other, name))
                        emit(o, "%s{instance=\"%s\"} %llu\n", name, esc(pj->name, e1, sizeof e1),
                             (unsigned long long)__atomic_load_n(&cj->value, __ATOMIC_RELAXED));
                }
                if (j != i)
                    pthread_mutex_unlock(&pj->counters_mu);
            }
        }
        pthread_mutex_unlock(&in->counters_mu);
    }
}

char *metrics_text(const sy_runtime *rt, sy_dispatch *dp)
{
    out_t o = {malloc(16384), 0, 16384};
    if (!o.buf)
        return NULL;
    o.buf[0] = '\0';
    global_counters(&o);
    if (dp) {
        dispatch_counts c;
        dispatch_get_counts(dp, &c);
        head(&o, "switchyard_queue_depth", "gauge", "Deliveries by where they wait.");
        emit(&o, "switchyard_queue_depth{state=\"ready\"} %zu\n", c.ready);
        emit(&o, "switchyard_queue_depth{state=\"waiting\"} %zu\n", c.waiting);
        emit(&o, "switchyard_queue_depth{state=\"inflight\"} %zu\n", c.inflight);
        emit(&o, "switchyard_queue_depth{state=\"scheduled\"} %zu\n", c.scheduled);
        emit(&o, "switchyard_queue_depth{state=\"held\"} %zu\n", c.held);
        head(&o, "switchyard_dead_letters", "gauge", "Dead letters held in memory.");
        emit(&o, "switchyard_dead_letters %zu\n", c.dead_kept);
    }
    if (rt) {
        endpoint_series(&o, rt);
        plugin_counters(&o, rt);
    }
    return o.buf;
}
