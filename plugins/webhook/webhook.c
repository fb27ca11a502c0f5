/*
 * webhook.c - the webhook sink: signed HTTP POSTs per the Standard
 * Webhooks spec (Svix-compatible headers by default).
 *
 * An asynchronous plugin: submit_batch() signs and queues (one request per
 * delivery, or one per batch for endpoints with a batch key), the shared HTTP loop
 * (plugins/_http) sends, and the outcome reaches the core through
 * host->complete from the loop thread. Config lives in wh_conf.c, sending
 * in wh_send.c, the status table in wh_outcome.c, the handshake in
 * wh_verify.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_guard.h"
#include "wh_conf.h"
#include "wh_state.h"

static void free_ep(wh_ep *ep)
{
    wh_verify_free(ep->verify);
    wh_settings_clear(&ep->set);
    pthread_mutex_destroy(&ep->mu);
    free(ep->id);
    free(ep->org_id);
    free(ep);
}

static int wh_init(const sy_host *host, const sy_instance *inst, const sy_config *cfg,
                   const void *conf, void **state, char *err, size_t errlen)
{
    (void)cfg;
    if (!SY_HOST_HAS(host, emit)) { /* the newest entry it calls */
        snprintf(err, errlen, "the host lacks services this plugin needs (complete, emit, "
                 "counters, config getters)");
        return -1;
    }
    wh_state *st = calloc(1, sizeof *st);
    if (!st) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    st->host = host;
    st->inst = inst;
    st->conf = conf;
    pthread_mutex_init(&st->mu, NULL);
    st->c = (wh_counters){
        .delivered = host->counter(inst, "delivered", "attempts answered 2xx"),
        .retried = host->counter(inst, "retried", "attempts that will be retried"),
        .failed = host->counter(inst, "failed", "attempts that failed for good"),
        .gone = host->counter(inst, "gone", "410 Gone answers"),
        .fallbacks = host->counter(inst, "fallbacks", "switches to the next fallback URL"),
        .not_verified = host->counter(inst, "not_verified",
                                      "attempts held back before the endpoint was verified"),
        .verified = host->counter(inst, "verified", "verification handshakes passed"),
        .verify_failed = host->counter(inst, "verify_failed", "verification attempts failed"),
        .batches = host->counter(inst, "batches", "batched POSTs sent (endpoints with a batch key)"),
    };
    /* Starts libcurl (curl_global_init) while the daemon is still single-threaded. */
    const wh_conf *wc = conf;
    int threads = http_pool_threads(wc ? wc->threads : 0);
    if (!(st->pool = http_pool_new(threads, wc ? wc->io_on_shards : 1, host, inst, err, errlen))) {
        pthread_mutex_destroy(&st->mu);
        free(st);
        return -1;
    }
    *state = st;
    return 0;
}

static void wh_destroy(void *state)
{
    wh_state *st = state;
    if (!st)
        return;
    /* Ends every request still in flight (SY_RETRY "shutting down") and joins. */
    http_pool_free(st->pool);
    for (wh_ep *ep = st->eps, *n; ep; ep = n) {
        n = ep->next;
        free_ep(ep);
    }
    pthread_mutex_destroy(&st->mu);
    free(st);
}

/* An endpoint from the admin API hears at once about a URL the SSRF guard always refuses. */
static int api_guard(const sy_endpoint_setup *setup, const wh_settings *set, char *err,
                     size_t errlen)
{
    if (!(SY_SETUP_FLAGS(setup) & SY_SETUP_FROM_API) || set->http.allow_private)
        return 0;
    char why[256];
    for (size_t i = 0; i < set->nurls; i++)
        if (http_url_guard(set->urls[i], why, sizeof why) != 0) {
            if (i == 0)
                snprintf(err, errlen, "url: %s", why);
            else
                snprintf(err, errlen, "fallback_urls[%zu]: %s", i - 1, why);
            return -1;
        }
    return 0;
}

static int wh_endpoint_init(void *state, sy_endpoint_setup *setup, void **ep_state, char *err,
                            size_t errlen)
{
    const char *endpoint_id = setup->id;
    const sy_config *cfg = setup->cfg;
    const void *conf = setup->conf;
    wh_state *st = state;
    int allow;
    int has_allow = st->host->config_bool(cfg, "allow_private_networks", &allow) == 0;
    const char *org = setup->org_id;
    wh_ep *ep = calloc(1, sizeof *ep);
    if (!ep || !(ep->id = strdup(endpoint_id)) || (org && !(ep->org_id = strdup(org)))) {
        snprintf(err, errlen, "out of memory");
        if (ep) {
            free(ep->id);
            free(ep);
        }
        return -1;
    }
    ep->st = st;
    pthread_mutex_init(&ep->mu, NULL);
    atomic_init(&ep->closed, 0);
    if (wh_settings_parse(endpoint_id, conf, st->conf, has_allow, &ep->set, err, errlen) != 0 ||
        api_guard(setup, &ep->set, err, errlen) != 0) {
        free_ep(ep);
        return -1;
    }
    /* CURLOPT_TIMEOUT_MS bounds the whole request, connecting included. */
    setup->attempt_timeout_ms = ep->set.http.timeout_ms;
    /* The batch key (sink.h 2.1): one POST per batch, one outcome for all, so the core
     * keeps batches whole and the batch id (derived from the members) stays. */
    if (SY_SETUP_HAS(setup, batch_flags) && setup->batch_max > 0) {
        ep->batch = 1;
        setup->batch_flags = SY_BATCH_TAKEN | SY_BATCH_WHOLE;
    }
    if (ep->set.verify && !(ep->verify = wh_verify_new(ep))) {
        snprintf(err, errlen, "out of memory");
        free_ep(ep);
        return -1;
    }
    /* Destroy frees every endpoint, after the loop that may touch them stopped. */
    pthread_mutex_lock(&st->mu);
    ep->next = st->eps;
    st->eps = ep;
    pthread_mutex_unlock(&st->mu);
    *ep_state = ep;
    return 0;
}

/*
 * The loop may still hold a request or timer of this endpoint (a
 * handshake, or deliveries the drain gave up on), so the memory stays until
 * destroy() has stopped the loop; here the endpoint only stops starting
 * new work.
 */
static void wh_endpoint_destroy(void *state, void *ep_state)
{
    (void)state;
    wh_ep *ep = ep_state;
    if (ep)
        atomic_store(&ep->closed, 1);
}

SY_EXPORT const sy_sink switchyard_sink = {
    .abi_version = SY_ABI_VERSION,
    .struct_size = sizeof(sy_sink),
    .name = "webhook",
    .version = "2.1.0",
    .description = "signed HTTP webhooks (Standard Webhooks / Svix): HMAC or ed25519, "
                   "libcurl multi, SSRF guard, fallback URLs, verification handshake",
    .instance_config = &wh_instance_table,
    .endpoint_config = &wh_endpoint_table,
    .init = wh_init,
    .destroy = wh_destroy,
    .endpoint_init = wh_endpoint_init,
    .endpoint_destroy = wh_endpoint_destroy,
    .deliver = NULL, /* asynchronous plugin */
    .submit_batch = wh_submit_batch,
    /* One delivery per call unless an endpoint's batch key says otherwise (endpoint_init). */
    .batch_max = 1,
    .batch_linger_ms = 0,
    .default_retry = NULL, /* "standard": the Svix schedule */
};
