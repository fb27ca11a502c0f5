/*
 * runtime.c - from config to live sink instances and endpoints.
 *
 * Plugin-specific keys can only be checked once the plugin is loaded, so
 * this is where `switchyard check` finds a typo in a sink's "path" and
 * reports it like every other config error.
 */
#include "runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attempt.h"
#include "config_keys.h"
#include "log.h"
#include "transform.h"
#include "units.h"

/*
 * A plugin's init error. One that opens with a path inside the plugin's
 * keys and ": " ("url: ...", "headers.X-A: ...", "fallback_urls[1]: ...")
 * is reported at that path (endpoints.x.headers.X-A: ...), so plugins
 * checking values by hand point at them the way the core does.
 */
static void report_plugin_error(config_report_at *rc, const sy_config_table *t, const char *plugin,
                                const char *err, const char *fallback)
{
    const char *colon = err ? strstr(err, ": ") : NULL;
    size_t plen = colon ? (size_t)(colon - err) : 0;
    if (plen && plen < 256 && !memchr(err, ' ', plen)) {
        char key[256];
        memcpy(key, err, plen);
        key[plen] = '\0';
        key[strcspn(key, ".[")] = '\0'; /* "headers.X-A", "fallback_urls[1]": their key */
        if (cfgtable_has_key(t, key)) {
            char path[600];
            snprintf(path, sizeof path, "%s.%.*s", rc->prefix, (int)plen, err);
            errs_add(rc->errs, rc->file, path, "%s", colon + 2);
            return;
        }
    }
    errs_add(rc->errs, rc->file, rc->prefix, "%s: %s", plugin,
             err && err[0] ? err : fallback);
}

static int setup_instance(sy_runtime *rt, struct sy_instance *in, const sy_sink_conf *sc,
                          const sy_host *host, int validate_only, sy_errs *errs)
{
    char path[4096], err[1024], prefix[300];
    snprintf(prefix, sizeof prefix, "sinks.%s", sc->name);
    in->name = sc->name;
    in->conf = sc;
    pthread_mutex_init(&in->counters_mu, NULL);
    pthread_mutex_init(&in->expired_mu, NULL);
    if (plugin_resolve(rt->conf->plugin_dir, sc->plugin, path, sizeof path)) {
        errs_add(errs, sc->file, prefix, "plugin path too long");
        return -1;
    }
    in->plugin = plugin_load(path, err, sizeof err);
    if (!in->plugin) {
        char p2[320];
        snprintf(p2, sizeof p2, "%s.plugin", prefix);
        errs_add(errs, sc->file, p2, "%s", err);
        return -1;
    }
    in->sink = in->plugin->sink; /* plugin_load checked its key tables */
    in->batch_max = (in->sink->deliver_batch || in->sink->submit_batch) && in->sink->batch_max
                        ? in->sink->batch_max
                        : 1;
    const sy_config_table *it = in->sink->instance_config;
    if (it && it->conf_size)
        in->plugin_conf = calloc(1, it->conf_size);
    config_report_at rc = {errs, sc->file, prefix};
    cfg_fill beside_core = {.skip_table = &config_sink_table};
    if (cfgtable_fill_with(it, sc->json, &beside_core, in->plugin_conf, &in->arena, config_report,
                           &rc))
        return -1;
    if (validate_only)
        return 0;
    err[0] = '\0';
    if (in->sink->init(host, in, (const sy_config *)sc->json, in->plugin_conf, &in->state, err,
                       sizeof err) != 0) {
        report_plugin_error(&rc, it, in->sink->name, err, "init failed (the plugin gave no reason)");
        return -1;
    }
    in->initialized = 1;
    return 0;
}

/*
 * Reads the endpoint's script and compiles it in a throwaway sandbox, so
 * `check` and a reload report a broken script (path:line: message) and a
 * running daemon never adopts one. The shards compile the text again in
 * their own Lua states.
 */
static int load_transform(sy_runtime *rt, sy_endpoint *ep, const char *prefix, sy_errs *errs)
{
    const sy_endpoint_conf *ec = ep->conf;
    char path[320], err[512];
    snprintf(path, sizeof path, "%s.transform", prefix);
    ep->tf_src = tf_read_file(ec->transform, &ep->tf_len, err, sizeof err);
    tf_limits lim = {rt->conf->transform_instructions, rt->conf->transform_memory};
    if (!ep->tf_src || tf_check(ec->transform, ep->tf_src, ep->tf_len, &lim, err, sizeof err)) {
        errs_add(errs, ec->file, path, "%s", err);
        return -1;
    }
    return 0;
}

static int batch_refused(config_report_at *rc, const sy_sink *s)
{
    char path[320];
    snprintf(path, sizeof path, "%s.batch", rc->prefix);
    errs_add(rc->errs, rc->file, path,
             "the %s plugin does not send batches; remove the key (only sinks that take it, "
             "such as webhook, batch per endpoint)",
             s->name);
    return -1;
}

/*
 * After endpoint_init: the plugin's answer to the endpoint's batch key
 * (sink.h, SY_BATCH_*). Plugins built for 2.0 have a setup without the
 * fields and never answer: the descriptor's batching stays.
 */
static int take_batch_answer(sy_endpoint *ep, config_report_at *rc)
{
    const sy_sink *s = ep->inst->sink;
    const sy_endpoint_setup *su = &ep->setup;
    uint32_t flags = su->batch_flags;
    if (!(flags & SY_BATCH_TAKEN))
        return ep->conf->batch_max ? batch_refused(rc, s) : 0;
    if (!s->deliver_batch && !s->submit_batch) {
        errs_add(rc->errs, rc->file, rc->prefix,
                 "plugin %s takes batches for this endpoint but has no batch call", s->name);
        return -1;
    }
    uint32_t max = su->batch_max;
    if (max < 1 || max > SY_BATCH_MAX_LIMIT) {
        errs_add(rc->errs, rc->file, rc->prefix,
                 "plugin %s asks for batches of %u for this endpoint, outside 1-%d", s->name,
                 max, SY_BATCH_MAX_LIMIT);
        return -1;
    }
    ep->batch_max = max;
    ep->batch_linger_ms = max > 1 ? su->batch_linger_ms : 0;
    ep->batch_whole = (flags & SY_BATCH_WHOLE) != 0;
    return 0;
}

static int setup_endpoint(sy_runtime *rt, sy_endpoint *ep, const sy_endpoint_conf *ec,
                          const sy_host *host, int validate_only, sy_errs *errs)
{
    char prefix[300], err[1024];
    snprintf(prefix, sizeof prefix, "endpoints.%s", ec->id);
    ep->conf = ec;
    ep->inst = &rt->insts[ec->sink_index];
    struct sy_instance *in = ep->inst;
    /* The instance already failed and said why; its endpoints would see no state. */
    if (!in->sink || (!validate_only && !in->initialized))
        return -1;
    const sy_sink *s = in->sink;

    /* Retry: endpoint, then sink instance, then the plugin's default. */
    const cJSON *spec = ec->retry ? ec->retry : in->conf->retry;
    if (spec) {
        if (retry_policy_parse(spec, &ep->retry, err, sizeof err)) {
            errs_add(errs, ec->file, prefix, "retry: %s", err);
            return -1;
        }
    } else if (retry_policy_builtin(s->default_retry ? s->default_retry : "standard",
                                    &ep->retry)) {
        errs_add(errs, ec->file, prefix, "plugin %s names an unknown default retry policy \"%s\"",
                 s->name, s->default_retry);
        return -1;
    }
    ep->concurrency = ec->concurrency ? ec->concurrency
                      : in->conf->concurrency ? in->conf->concurrency : 4;
    ep->ordering = !ec->ordering ? ORDER_NONE
                   : !strcmp(ec->ordering, "key") ? ORDER_KEY : ORDER_ENDPOINT;
    if (ec->transform && load_transform(rt, ep, prefix, errs) != 0)
        return -1;

    const sy_config_table *et = s->endpoint_config;
    if (et && et->conf_size)
        ep->plugin_conf = calloc(1, et->conf_size);
    config_report_at rc = {errs, ec->file, prefix};
    cfg_fill beside_core = {.skip_table = &config_endpoint_table};
    if (cfgtable_fill_with(et, ec->json, &beside_core, ep->plugin_conf, &ep->arena, config_report,
                           &rc))
        return -1;
    ep->attempt_timeout_ms = DEFAULT_ATTEMPT_TIMEOUT_MS;
    ep->batch_max = in->batch_max;
    ep->batch_linger_ms = in->batch_max > 1 ? s->batch_linger_ms : 0;
    if (ec->batch_max && !s->endpoint_init)
        return batch_refused(&rc, s);
    if (validate_only || !s->endpoint_init)
        return 0;
    ep->setup = (sy_endpoint_setup){
        .struct_size = sizeof(sy_endpoint_setup),
        .host = host,
        .inst = in,
        .id = ec->id,
        .org_id = ec->org_id,
        .retry_policy = ep->retry.name,
        .cfg = (const sy_config *)ec->json,
        .conf = ep->plugin_conf,
        .attempt_timeout_ms = DEFAULT_ATTEMPT_TIMEOUT_MS,
        .flags = ec->from_api ? SY_SETUP_FROM_API : 0,
        .batch_max = (uint32_t)ec->batch_max,
        .batch_linger_ms = (uint32_t)ec->batch_linger_ms,
    };
    err[0] = '\0';
    if (s->endpoint_init(in->state, &ep->setup, &ep->ep_state, err, sizeof err) != 0) {
        report_plugin_error(&rc, et, s->name, err, "endpoint_init failed (the plugin gave no reason)");
        return -1;
    }
    ep->ep_initialized = 1; /* endpoint_destroy runs whatever follows */
    if (ep->setup.attempt_timeout_ms > 0)
        ep->attempt_timeout_ms = ep->setup.attempt_timeout_ms;
    return take_batch_answer(ep, &rc);
}

uint64_t runtime_id_hash(const char *id)
{
    uint64_t h = 1469598103934665603ull;
    for (const unsigned char *p = (const unsigned char *)id; *p; p++) {
        h ^= *p;
        h *= 1099511628211ull;
    }
    return h;
}

static void (*g_release_fn)(void *arg, sy_runtime *rt);
static void *g_release_arg;

void runtime_on_release(void (*fn)(void *arg, sy_runtime *rt), void *arg)
{
    g_release_fn = fn;
    g_release_arg = arg;
}

void runtime_ref(sy_runtime *rt)
{
    __atomic_add_fetch(&rt->refs, 1, __ATOMIC_RELAXED);
}

void runtime_unref(sy_runtime *rt)
{
    if (!rt || __atomic_sub_fetch(&rt->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    if (g_release_fn)
        g_release_fn(g_release_arg, rt);
    else
        runtime_free(rt);
}

/*
 * The current runtime behind a small mutex: taking it is a pointer read
 * and a reference, so nobody holds a lock while routing, and a reload
 * never waits for readers (nor readers for a reload).
 */
static pthread_mutex_t g_current_mu = PTHREAD_MUTEX_INITIALIZER;
static sy_runtime *g_current;

sy_runtime *runtime_current(void)
{
    pthread_mutex_lock(&g_current_mu);
    sy_runtime *rt = g_current;
    if (rt)
        runtime_ref(rt);
    pthread_mutex_unlock(&g_current_mu);
    return rt;
}

void runtime_install(sy_runtime *rt)
{
    pthread_mutex_lock(&g_current_mu);
    sy_runtime *old = g_current;
    g_current = rt;
    pthread_mutex_unlock(&g_current_mu);
    runtime_unref(old);
}

static int cmp_ep(const void *a, const void *b)
{
    return strcmp((*(sy_endpoint *const *)a)->conf->id, (*(sy_endpoint *const *)b)->conf->id);
}

sy_endpoint *runtime_find_endpoint(const sy_runtime *rt, const char *id)
{
    size_t lo = 0, hi = rt->neps;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(id, rt->by_id[mid]->conf->id);
        if (!c)
            return rt->by_id[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int runtime_set_deleted(sy_runtime *rt, const char *const *ids, size_t n)
{
    char **v = calloc(n ? n : 1, sizeof *v);
    for (size_t i = 0; v && i < n; i++)
        if (!(v[i] = strdup(ids[i]))) {
            while (i--)
                free(v[i]);
            free(v);
            v = NULL;
        }
    if (!v)
        return -1;
    qsort(v, n, sizeof *v, cmp_str);
    rt->deleted = v;
    rt->ndeleted = n;
    return 0;
}

int runtime_was_deleted(const sy_runtime *rt, const char *id)
{
    return rt->ndeleted && bsearch(&id, rt->deleted, rt->ndeleted, sizeof *rt->deleted, cmp_str);
}

sy_runtime *runtime_build(sy_conf *conf, const sy_host *host, struct sy_pipeline *pipeline,
                          int validate_only, sy_errs *errs)
{
    sy_runtime *rt = calloc(1, sizeof *rt);
    rt->conf = conf;
    rt->refs = 1;
    rt->insts = calloc(conf->nsinks ? conf->nsinks : 1, sizeof *rt->insts);
    rt->ninsts = conf->nsinks;
    rt->eps = calloc(conf->nendpoints ? conf->nendpoints : 1, sizeof *rt->eps);
    rt->neps = conf->nendpoints;
    int before = errs->count;
    for (size_t i = 0; i < conf->nsinks; i++) {
        rt->insts[i].pipeline = pipeline;
        setup_instance(rt, &rt->insts[i], &conf->sinks[i], host, validate_only, errs);
    }
    for (size_t i = 0; i < conf->nendpoints; i++) {
        rt->eps[i].rt = rt;
        rt->eps[i].index = (uint32_t)i;
        rt->eps[i].id_hash = runtime_id_hash(conf->endpoints[i].id);
        setup_endpoint(rt, &rt->eps[i], &conf->endpoints[i], host, validate_only, errs);
    }
    if (errs->count != before) {
        runtime_free(rt);
        return NULL;
    }
    rt->by_id = calloc(rt->neps ? rt->neps : 1, sizeof *rt->by_id);
    for (size_t i = 0; i < rt->neps; i++)
        rt->by_id[i] = &rt->eps[i];
    qsort(rt->by_id, rt->neps, sizeof *rt->by_id, cmp_ep);
    rt->router = router_new();
    for (size_t i = 0; i < rt->neps; i++) {
        const sy_endpoint_conf *ec = rt->eps[i].conf;
        if (!ec->enabled)
            continue;
        if (router_add(rt->router, ec->org_id, ec->events, ec->filter,
                       &rt->eps[i])) {
            errs_add(errs, ec->file, NULL, "out of memory building the routing table");
            runtime_free(rt);
            return NULL;
        }
    }
    return rt;
}

void runtime_free(sy_runtime *rt)
{
    if (!rt)
        return;
    for (size_t i = 0; i < rt->neps; i++) {
        sy_endpoint *ep = &rt->eps[i];
        if (ep->ep_initialized && ep->inst->sink->endpoint_destroy)
            ep->inst->sink->endpoint_destroy(ep->inst->state, ep->ep_state);
        free(ep->plugin_conf);
        free(ep->tf_src);
        cfg_arena_free(&ep->arena);
    }
    for (size_t i = 0; i < rt->ninsts; i++) {
        struct sy_instance *in = &rt->insts[i];
        if (in->initialized && in->sink->destroy)
            in->sink->destroy(in->state);
        /* After destroy nothing completes them any more: the plugin let them go. */
        if (in->name)
            attempt_free_expired(in);
        free(in->plugin_conf);
        cfg_arena_free(&in->arena);
        for (sy_counter *c = in->counters, *n; c; c = n) {
            n = c->next;
            free(c->name);
            free(c->help);
            free(c);
        }
        plugin_unload(in->plugin);
        if (in->name) {
            pthread_mutex_destroy(&in->counters_mu);
            pthread_mutex_destroy(&in->expired_mu);
        }
    }
    router_free(rt->router);
    for (size_t i = 0; i < rt->ndeleted; i++)
        free(rt->deleted[i]);
    free(rt->deleted);
    cJSON_Delete(rt->api_meta);
    free(rt->by_id);
    free(rt->insts);
    free(rt->eps);
    free(rt);
}

void runtime_print_table(const sy_runtime *rt, FILE *out)
{
    const sy_conf *c = rt->conf;
    fprintf(out, "ingress:\n");
    for (size_t i = 0; i < c->ningress; i++) {
        const sy_ingress_conf *ic = &c->ingress[i];
        fprintf(out, "  %-4s %-7s %s",
                ic->type == INGRESS_PULL ? "pull" : ic->type == INGRESS_SUB ? "sub" : "ack",
                ic->bind ? "bind" : "connect", ic->addr);
        if (ic->type == INGRESS_SUB) {
            fprintf(out, "  topics:");
            for (char **t = ic->topics; t && *t; t++)
                fprintf(out, " \"%s\"", *t);
        }
        fprintf(out, "\n");
    }
    fprintf(out, "sinks:\n");
    for (size_t i = 0; i < rt->ninsts; i++)
        fprintf(out, "  %-16s plugin %s %s (%s)\n", rt->insts[i].name, rt->insts[i].sink->name,
                rt->insts[i].sink->version ? rt->insts[i].sink->version : "?",
                rt->insts[i].plugin->path);
    fprintf(out, "endpoints:\n");
    for (size_t i = 0; i < rt->neps; i++) {
        const sy_endpoint *ep = &rt->eps[i];
        const sy_endpoint_conf *ec = ep->conf;
        char pol[256];
        retry_policy_describe(&ep->retry, pol, sizeof pol);
        fprintf(out, "  %s%s%s\n", ec->id, ec->enabled ? "" : "  (disabled)",
                ec->from_api ? "  (admin API)" : "");
        fprintf(out, "    org:         %s\n", ec->org_id ? ec->org_id : "(any org)");
        fprintf(out, "    events:     ");
        for (const char *const *e = ec->events; e && *e; e++)
            fprintf(out, " %s", *e);
        fprintf(out, "\n    filter:      %s\n", ec->filter ? "yes" : "none");
        if (ec->filter) {
            char *txt = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(ec->json, "filter"));
            if (txt)
                fprintf(out, "                 %s\n", txt);
            free(txt);
        }
        fprintf(out, "    sink:        %s (%s)\n", ep->inst->name, ep->inst->sink->name);
        fprintf(out, "    retry:       %s\n", pol);
        fprintf(out, "    concurrency: %d\n", ep->concurrency);
        if (ec->transform)
            fprintf(out, "    transform:   %s\n", ec->transform);
        if (ep->ordering)
            fprintf(out, "    ordering:    %s%s\n",
                    ep->ordering == ORDER_KEY ? "by key " : "endpoint",
                    ep->ordering == ORDER_KEY ? ec->ordering_key : "");
    }
    fprintf(out, "%zu ingress socket(s), %zu sink(s), %zu endpoint(s)\n", c->ningress,
            rt->ninsts, rt->neps);
}
