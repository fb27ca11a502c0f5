/*
 * metrics.c - Prometheus text format (version 0.0.4) of every counter.
 *
 * Names follow Prometheus conventions: counters end in _total, the
 * latency histogram is in seconds, label values are escaped.
 */
#include "metrics.h"

#include "cluster.h"
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stats.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include "ingress.h"
#include "version.h"

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

static void global_counters(out_t *o, const sy_stats *st)
{
#define SY_METRIC(f, sec, key, metric, help)                                                 \
    if (metric) {                                                                            \
        head(o, metric, "counter", help);                                                    \
        emit(o, "%s %llu\n", (const char *)metric, (unsigned long long)st->f);               \
    }
    SY_GLOBAL_COUNTERS(SY_METRIC)
#undef SY_METRIC
    head(o, "switchyard_events_rejected_total", "counter", "Rejected messages by reason.");
    for (int r = 1; r < ENV_REASON_COUNT; r++)
        emit(o, "switchyard_events_rejected_total{reason=\"%s\"} %llu\n",
             envelope_reason_name((env_reason)r), (unsigned long long)st->rejected_by[r]);
    head(o, "switchyard_ingress_disconnects_total", "counter",
         "Publisher connections ZeroMQ dropped: messages over max_event_bytes plus 64 KiB, or "
         "peers gone.");
    emit(o, "switchyard_ingress_disconnects_total %llu\n",
         (unsigned long long)ingress_disconnects());
}

/* The endpoints of the current runtime with what the shards hold of them. */
typedef struct ep_row {
    const sy_endpoint *ep;
    const ep_live *lv;
    char id[512], sink[512];
} ep_row;

static void endpoint_series(out_t *o, const ep_row *rows, size_t n)
{
    head(o, "switchyard_attempts_total", "counter",
         "Delivery attempts by endpoint, sink and outcome (ok, retry, fail).");
    for (size_t i = 0; i < n; i++) {
        const ep_stats *st = &rows[i].lv->st;
        const char *outcome[3] = {"ok", "retry", "fail"};
        uint64_t v[3] = {st->attempts_ok, st->attempts_retry, st->attempts_fail};
        for (int j = 0; j < 3; j++)
            emit(o, "switchyard_attempts_total{endpoint=\"%s\",sink=\"%s\",outcome=\"%s\"} %llu\n",
                 rows[i].id, rows[i].sink, outcome[j], (unsigned long long)v[j]);
    }
    head(o, "switchyard_deliveries_finished_total", "counter",
         "Deliveries that reached an end state, by endpoint, sink and state (delivered, dead, "
         "filtered).");
    for (size_t i = 0; i < n; i++) {
        const ep_stats *st = &rows[i].lv->st;
        emit(o, "switchyard_deliveries_finished_total{endpoint=\"%s\",sink=\"%s\",state=\"delivered\"} %llu\n",
             rows[i].id, rows[i].sink, (unsigned long long)st->delivered);
        emit(o, "switchyard_deliveries_finished_total{endpoint=\"%s\",sink=\"%s\",state=\"dead\"} %llu\n",
             rows[i].id, rows[i].sink, (unsigned long long)st->dead);
        emit(o, "switchyard_deliveries_finished_total{endpoint=\"%s\",sink=\"%s\",state=\"filtered\"} %llu\n",
             rows[i].id, rows[i].sink, (unsigned long long)st->filtered);
    }
    head(o, "switchyard_attempt_duration_seconds", "histogram",
         "Time from handing a delivery to its sink until the outcome.");
    for (size_t i = 0; i < n; i++) {
        const ep_stats *st = &rows[i].lv->st;
        uint64_t cum = 0;
        for (int b = 0; b < LAT_BUCKETS; b++) {
            cum += st->lat_bucket[b];
            if (b < LAT_BUCKETS - 1)
                emit(o, "switchyard_attempt_duration_seconds_bucket{endpoint=\"%s\",le=\"%g\"} %llu\n",
                     rows[i].id, (double)g_lat_bounds_ms[b] / 1000.0, (unsigned long long)cum);
            else
                emit(o, "switchyard_attempt_duration_seconds_bucket{endpoint=\"%s\",le=\"+Inf\"} %llu\n",
                     rows[i].id, (unsigned long long)cum);
        }
        emit(o, "switchyard_attempt_duration_seconds_sum{endpoint=\"%s\"} %.3f\n", rows[i].id,
             (double)st->lat_sum_ms / 1000.0);
        emit(o, "switchyard_attempt_duration_seconds_count{endpoint=\"%s\"} %llu\n", rows[i].id,
             (unsigned long long)st->lat_count);
    }
    head(o, "switchyard_endpoint_state", "gauge",
         "1 for the endpoint's current state (active, breaker_open, disabled).");
    for (size_t i = 0; i < n; i++) {
        int dis = rows[i].lv->disabled, open = rows[i].lv->breaker_open;
        emit(o, "switchyard_endpoint_state{endpoint=\"%s\",state=\"active\"} %d\n", rows[i].id,
             !dis && !open);
        emit(o, "switchyard_endpoint_state{endpoint=\"%s\",state=\"breaker_open\"} %d\n",
             rows[i].id, !dis && open);
        emit(o, "switchyard_endpoint_state{endpoint=\"%s\",state=\"disabled\"} %d\n",
             rows[i].id, dis);
    }
    head(o, "switchyard_breaker_opens_total", "counter", "Times an endpoint's breaker opened.");
    for (size_t i = 0; i < n; i++)
        emit(o, "switchyard_breaker_opens_total{endpoint=\"%s\"} %llu\n", rows[i].id,
             (unsigned long long)rows[i].lv->st.breaker_opens);
}

/* The standard process_* metrics, from /proc/self. */
static void process_metrics(out_t *o)
{
    long ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    FILE *f = fopen("/proc/self/stat", "re");
    unsigned long utime = 0, stime = 0, vsize = 0;
    long rss = 0;
    unsigned long long start = 0;
    if (f) {
        char buf[1024];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        /* Fields after the command name, which may hold spaces: start after its ')'. */
        char *p = strrchr(buf, ')');
        if (p && sscanf(p + 2,
                        "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d %*d "
                        "%*d %*d %llu %lu %ld",
                        &utime, &stime, &start, &vsize, &rss) != 5)
            utime = stime = vsize = 0, rss = 0, start = 0;
    }
    double boot = 0;
    FILE *st = fopen("/proc/stat", "re");
    if (st) {
        char line[256];
        while (fgets(line, sizeof line, st))
            if (sscanf(line, "btime %lf", &boot) == 1)
                break;
        fclose(st);
    }
    size_t fds = 0;
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        for (struct dirent *e; (e = readdir(d));)
            if (e->d_name[0] != '.')
                fds++;
        closedir(d);
        fds--; /* the one opendir holds */
    }
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    head(o, "process_cpu_seconds_total", "counter", "User and system CPU time spent in seconds.");
    emit(o, "process_cpu_seconds_total %.2f\n", (double)(utime + stime) / (double)ticks);
    head(o, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    emit(o, "process_resident_memory_bytes %lld\n", (long long)rss * page);
    head(o, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
    emit(o, "process_virtual_memory_bytes %lu\n", vsize);
    head(o, "process_open_fds", "gauge", "Number of open file descriptors.");
    emit(o, "process_open_fds %zu\n", fds);
    head(o, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
    emit(o, "process_max_fds %llu\n", (unsigned long long)rl.rlim_cur);
    head(o, "process_start_time_seconds", "gauge",
         "Start time of the process since unix epoch in seconds.");
    emit(o, "process_start_time_seconds %.2f\n", boot + (double)start / (double)ticks);
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

static int cmp_row(const void *a, const void *b)
{
    return strcmp(((const ep_row *)a)->ep->conf->id, ((const ep_row *)b)->ep->conf->id);
}

/* What the database says of the cluster: any node answers for all of them. */
static void cluster_gauges(out_t *o, sy_store *rd, const sy_conf *c, uint64_t pending)
{
    store_conf sc;
    config_store(c, &sc);
    store_node_view *v = NULL;
    long n = store_cluster_view(rd, sc.lease_timeout_ms, &v);
    if (n < 0)
        return;
    int live = 0, owned = 0, mine = 0;
    for (long i = 0; i < n; i++) {
        live += v[i].live;
        owned += v[i].parts;
        if (!strcmp(v[i].id, sc.node_id))
            mine = v[i].parts;
    }
    head(o, "switchyard_cluster_nodes", "gauge",
         "Nodes whose heartbeat is within cluster.lease_timeout.");
    emit(o, "switchyard_cluster_nodes %d\n", live);
    head(o, "switchyard_cluster_partitions", "gauge",
         "Partitions each node holds under a valid lease.");
    for (long i = 0; i < n; i++) {
        char id[300];
        esc(v[i].id, id, sizeof id);
        emit(o, "switchyard_cluster_partitions{node=\"%s\"} %d\n", id, v[i].parts);
    }
    head(o, "switchyard_cluster_partitions_unowned", "gauge",
         "Partitions no live node holds (their deliveries wait for a taker).");
    emit(o, "switchyard_cluster_partitions_unowned %d\n", CLUSTER_PARTS - owned);
    head(o, "switchyard_cluster_partitions_owned", "gauge", "Partitions this node holds.");
    emit(o, "switchyard_cluster_partitions_owned %d\n", mine);
    head(o, "switchyard_cluster_pending", "gauge",
         "Pending deliveries in the shared store, every node's.");
    emit(o, "switchyard_cluster_pending %llu\n", (unsigned long long)pending);
    free(v);
}

char *metrics_text(sy_pipeline *pl, const sy_runtime *rt, sy_store *rd)
{
    out_t o = {malloc(16384), 0, 16384};
    if (!o.buf)
        return NULL;
    o.buf[0] = '\0';
    /* The same three values as `switchyard version`. */
    head(&o, "switchyard_build_info", "gauge", "Version, git commit and sink ABI of this switchyard.");
    emit(&o, "switchyard_build_info{version=\"%s\",commit=\"%s\",abi=\"%u.%u\"} 1\n", SY_VERSION,
         sy_build_commit, SY_ABI_VERSION_MAJOR, SY_ABI_VERSION_MINOR);
    sy_stats st;
    stats_total(&st);
    global_counters(&o, &st);
    if (pl) {
        pipeline_counts c;
        pipeline_get_counts(pl, &c);
        head(&o, "switchyard_queue_depth", "gauge", "Deliveries in memory by where they wait.");
        emit(&o, "switchyard_queue_depth{state=\"ready\"} %zu\n", c.ready - c.held);
        emit(&o, "switchyard_queue_depth{state=\"held\"} %zu\n", c.held);
        emit(&o, "switchyard_queue_depth{state=\"inflight\"} %zu\n", c.inflight);
        emit(&o, "switchyard_queue_depth{state=\"scheduled\"} %zu\n", c.scheduled);
        emit(&o, "switchyard_queue_depth{state=\"expired\"} %zu\n", c.expired);
        emit(&o, "switchyard_queue_depth{state=\"waiting\"} %zu\n", c.waiting);
        emit(&o, "switchyard_queue_depth{state=\"spool_queued\"} %zu\n", c.spool_queued);
        emit(&o, "switchyard_queue_depth{state=\"spool_unfolded\"} %zu\n", c.spool_unfolded);
        /* Dead letters live in the spool (they survive restarts); without one, none are kept. */
        uint64_t dead = 0;
        spool_counts sc = {0};
        if (rd && store_count(rd, &sc) == 0)
            dead = sc.dead;
        head(&o, "switchyard_dead_letters", "gauge",
             "Dead deliveries kept in the spool, replayable.");
        emit(&o, "switchyard_dead_letters %llu\n", (unsigned long long)dead);
        if (rd && rt && store_has_leases(rd))
            cluster_gauges(&o, rd, rt->conf, sc.pending);
    }
    if (pl && rt) {
        ep_live *live;
        size_t nlive = pipeline_endpoint_snapshot(pl, &live);
        ep_row *rows = calloc(rt->neps ? rt->neps : 1, sizeof *rows);
        size_t n = 0;
        static const ep_live none;
        for (size_t i = 0; rows && i < rt->neps; i++) {
            const sy_endpoint *ep = &rt->eps[i];
            const ep_live *lv = pipeline_snapshot_find(live, nlive, ep->conf->id);
            rows[n].ep = ep;
            rows[n].lv = lv ? lv : &none;
            esc(ep->conf->id, rows[n].id, sizeof rows[n].id);
            esc(ep->inst->name, rows[n].sink, sizeof rows[n].sink);
            n++;
        }
        if (n)
            qsort(rows, n, sizeof *rows, cmp_row);
        endpoint_series(&o, rows, n);
        free(rows);
        free(live);
    }
    if (rt)
        plugin_counters(&o, rt);
    process_metrics(&o);
    return o.buf;
}
