/*
 * form.c - the legacy form sink: application/x-www-form-urlencoded POSTs
 * in the Web Scraper Cloud shape, with the receiver's token in the URL.
 *
 * Asynchronous like the webhook sink and on the same transport
 * (plugins/_http); config in form_conf.c, the body in form_body.c, the
 * status table in form_outcome.c.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "form_body.h"
#include "form_conf.h"
#include "http_guard.h"
#include "form_outcome.h"
#include "http_pool.h"

typedef struct form_ep {
    struct form_state *st;
    char *id;
    form_settings set;
    atomic_int closed;
    struct form_ep *next;
} form_ep;

typedef struct form_state {
    const sy_host *host;
    const sy_instance *inst;
    const form_conf *conf;
    http_pool *pool;
    sy_counter *delivered, *retried, *failed;
    pthread_mutex_t mu; /* guards eps */
    form_ep *eps;       /* freed in destroy, after the loop stopped */
} form_state;

typedef struct form_job {
    http_req req;
    form_ep *ep;
    const sy_delivery *d;
    char *body;
} form_job;

static void free_ep(form_ep *ep)
{
    form_settings_clear(&ep->set);
    free(ep->id);
    free(ep);
}

static int form_init(const sy_host *host, const sy_instance *inst, const sy_config *cfg,
                     const void *conf, void **state, char *err, size_t errlen)
{
    (void)cfg;
    if (!SY_HOST_HAS(host, complete)) { /* the newest entry it calls */
        snprintf(err, errlen, "the host lacks services this plugin needs (complete, field, "
                 "counters, config getters)");
        return -1;
    }
    form_state *st = calloc(1, sizeof *st);
    if (!st) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    st->host = host;
    st->inst = inst;
    st->conf = conf;
    pthread_mutex_init(&st->mu, NULL);
    st->delivered = host->counter(inst, "delivered", "attempts answered 2xx");
    st->retried = host->counter(inst, "retried", "attempts that will be retried");
    st->failed = host->counter(inst, "failed", "attempts that failed for good");
    /* Starts libcurl (curl_global_init) while the daemon is still single-threaded. */
    const form_conf *fc = conf;
    int threads = http_pool_threads(fc ? fc->threads : 0);
    if (!(st->pool = http_pool_new(threads, fc ? fc->io_on_shards : 1, host, inst, err, errlen))) {
        pthread_mutex_destroy(&st->mu);
        free(st);
        return -1;
    }
    *state = st;
    return 0;
}

static void form_destroy(void *state)
{
    form_state *st = state;
    if (!st)
        return;
    http_pool_free(st->pool); /* in-flight requests end as SY_RETRY "shutting down" */
    for (form_ep *ep = st->eps, *n; ep; ep = n) {
        n = ep->next;
        free_ep(ep);
    }
    pthread_mutex_destroy(&st->mu);
    free(st);
}

static int form_endpoint_init(void *state, sy_endpoint_setup *setup, void **ep_state, char *err,
                              size_t errlen)
{
    const char *endpoint_id = setup->id;
    const sy_config *cfg = setup->cfg;
    const void *conf = setup->conf;
    form_state *st = state;
    int allow;
    int has_allow = st->host->config_bool(cfg, "allow_private_networks", &allow) == 0;
    int map_given = st->host->config_object(cfg, "value_map") != NULL;
    form_ep *ep = calloc(1, sizeof *ep);
    if (!ep || !(ep->id = strdup(endpoint_id))) {
        free(ep);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    ep->st = st;
    atomic_init(&ep->closed, 0);
    char why[256];
    if (form_settings_parse(conf, st->conf, has_allow, map_given, &ep->set, err, errlen) != 0) {
        free_ep(ep);
        return -1;
    }
    /* An endpoint from the admin API hears at once about a URL the SSRF guard always refuses. */
    if ((SY_SETUP_FLAGS(setup) & SY_SETUP_FROM_API) && !ep->set.http.allow_private &&
        http_url_guard(((const form_ep_conf *)conf)->url, why, sizeof why) != 0) {
        snprintf(err, errlen, "url: %s", why);
        free_ep(ep);
        return -1;
    }
    /* CURLOPT_TIMEOUT_MS bounds the whole request, connecting included. */
    setup->attempt_timeout_ms = ep->set.http.timeout_ms;
    pthread_mutex_lock(&st->mu);
    ep->next = st->eps;
    st->eps = ep;
    pthread_mutex_unlock(&st->mu);
    *ep_state = ep;
    return 0;
}

/* Freed in destroy: the loop may still finish a request of this endpoint. */
static void form_endpoint_destroy(void *state, void *ep_state)
{
    (void)state;
    form_ep *ep = ep_state;
    if (ep)
        atomic_store(&ep->closed, 1);
}

static void on_done(http_req *req, const http_result *res)
{
    form_job *job = req->arg;
    form_state *st = job->ep->st;
    const sy_delivery *d = job->d;
    sy_outcome out = SY_OUTCOME_INIT;
    form_outcome(res, &out);
    sy_counter *c = out.result == SY_OK ? st->delivered
                    : out.result == SY_RETRY ? st->retried : st->failed;
    if (c)
        st->host->counter_add(c, 1);
    if (res->kind == HTTP_REFUSED)
        st->host->log(st->inst, SY_LOG_WARN, "endpoint %s: event %s: %s", job->ep->id,
                      d->event_id, res->error);
    free(job->body);
    free(job);
    http_loop_complete(st->host, d, &out); /* with the rest of the loop's round */
}

static int form_submit(void *state, void *ep_state, const sy_delivery *d)
{
    form_state *st = state;
    form_ep *ep = ep_state;
    if (!ep || atomic_load(&ep->closed))
        return -1;
    form_job *job = calloc(1, sizeof *job);
    size_t len = 0;
    if (!job || !(job->body = form_body_build(&ep->set, d, st->host->field, &len))) {
        if (job)
            free(job->body);
        free(job);
        return -1; /* out of memory: the core retries */
    }
    job->ep = ep;
    job->d = d;
    http_req *r = &job->req;
    r->url = ep->set.url;
    r->headers = ep->set.header_list; /* shared by every request, read-only */
    r->body = job->body;
    r->body_len = len;
    r->opts = &ep->set.http;
    r->done = on_done;
    r->arg = job;
    if (http_pool_submit(st->pool, r, 0) != 0) {
        free(job->body);
        free(job);
        return -1;
    }
    return 0;
}

SY_EXPORT const sy_sink switchyard_sink = {
    .abi_version = SY_ABI_VERSION,
    .struct_size = sizeof(sy_sink),
    .name = "form",
    .version = "2.0.0",
    .description = "legacy form-POST webhooks (Web Scraper Cloud shape): field map, value "
                   "map, token in the URL",
    .instance_config = &form_instance_table,
    .endpoint_config = &form_endpoint_table,
    .init = form_init,
    .destroy = form_destroy,
    .endpoint_init = form_endpoint_init,
    .endpoint_destroy = form_endpoint_destroy,
    .deliver = NULL, /* asynchronous plugin */
    .submit = form_submit,
    .default_retry = "legacy", /* 5 s, 10 s, then dead: what receivers were built for */
};
