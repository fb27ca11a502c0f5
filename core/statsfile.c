/*
 * statsfile.c - the counters as one JSON file (core.stats_file), rewritten
 * atomically every core.stats_interval and at exit: what tests and scripts
 * read without an HTTP client.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "fsmode.h"
#include "pipeline.h"
#include "quarantine.h"
#include "stats.h"

static cJSON *snapshot(sy_pipeline *pl, const sy_runtime *rt)
{
    cJSON *root = cJSON_CreateObject();
    sy_stats st;
    stats_total(&st);
    stats_json_global(root, &st);
    cJSON *dl = cJSON_GetObjectItemCaseSensitive(root, "deliveries");
    pipeline_counts c;
    pipeline_get_counts(pl, &c);
    stats_json_count(dl, "ready", c.ready);
    stats_json_count(dl, "held", c.held);
    stats_json_count(dl, "inflight", c.inflight);
    stats_json_count(dl, "scheduled", c.scheduled);
    stats_json_count(dl, "expired", c.expired);
    stats_json_count(dl, "waiting", c.waiting);
    stats_json_count(dl, "spool_queued", c.spool_queued);
    stats_json_count(dl, "spool_unfolded", c.spool_unfolded);
    ep_live *live;
    size_t nlive = pipeline_endpoint_snapshot(pl, &live);
    cJSON *eps = cJSON_AddObjectToObject(root, "endpoints");
    for (size_t i = 0; rt && i < rt->neps; i++) {
        const sy_endpoint *ep = &rt->eps[i];
        const ep_live *lv = pipeline_snapshot_find(live, nlive, ep->conf->id);
        cJSON *e = cJSON_AddObjectToObject(eps, ep->conf->id);
        static const ep_live none;
        if (!lv)
            lv = &none;
        stats_json_endpoint(e, &lv->st);
        cJSON_AddStringToObject(e, "state", lv->disabled       ? "disabled"
                                            : lv->breaker_open ? "breaker_open"
                                                               : "active");
        stats_json_count(e, "ready", lv->ready);
        stats_json_count(e, "inflight", lv->inflight);
    }
    free(live);
    cJSON *pls = cJSON_AddObjectToObject(root, "sinks");
    for (size_t i = 0; rt && i < rt->ninsts; i++) {
        struct sy_instance *in = &rt->insts[i];
        cJSON *s = cJSON_AddObjectToObject(pls, in->name);
        cJSON_AddStringToObject(s, "plugin", in->sink ? in->sink->name : "?");
        pthread_mutex_lock(&in->counters_mu);
        for (sy_counter *k = in->counters; k; k = k->next)
            stats_json_count(s, k->name, (uint64_t)__atomic_load_n(&k->value, __ATOMIC_RELAXED));
        pthread_mutex_unlock(&in->counters_mu);
    }
    return root;
}

int pipeline_write_stats(sy_pipeline *pl, const char *path)
{
    sy_runtime *rt = runtime_current();
    cJSON *root = snapshot(pl, rt);
    runtime_unref(rt);
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text)
        return -1;
    size_t l = strlen(path) + 8;
    char *tmp = malloc(l);
    if (!tmp) {
        free(text);
        return -1;
    }
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
