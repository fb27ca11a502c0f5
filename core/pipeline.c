/*
 * pipeline.c - ingress -> spool -> shards -> acknowledgements, in one
 * place (see pipeline.h), and the order of start, reload and shutdown.
 */
#include "pipeline.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cjson/cJSON.h>

#include "clock.h"
#include "ingress.h"
#include "log.h"
#include "router.h"
#include "stats.h"
#include "sysevent.h"
#include "workers.h"

#define MAX_MATCH_STACK 64

/* The disabled flag of one endpoint id, shared by all its generations. */
typedef struct ep_flag {
    struct ep_flag *next;
    int disabled; /* atomic */
    char id[];
} ep_flag;

struct sy_pipeline {
    pipeline_opts o;
    /* Endpoint flags by id: added on the main thread before a runtime becomes
     * current, never removed, read lock-free through sy_endpoint.disabled. */
    ep_flag **flags;
    size_t nflags_buckets;
    shard **shards;
    int nshards;
    worker_pool *workers;
    struct sy_ingress *in;
    int started;
    int closed;              /* atomic: stopping, emit refuses */
    size_t paged_in_transit; /* atomic: rows the pager posted that no shard has taken yet */
    /* Runtimes whose last reference dropped, freed by the main thread. */
    pthread_mutex_t reap_mu;
    sy_runtime *to_free;
};

/* An accepted event and where it goes. */
typedef struct pl_event {
    sy_event *ev;
    size_t first, n;   /* its endpoints: eps[first .. first+n) */
    reply_to *reply;   /* owned; NULL without an acknowledgement */
} pl_event;

struct pl_batch {
    sy_runtime *rt;    /* a reference */
    pl_event *evs;
    size_t nev, capev;
    sy_endpoint **eps;
    size_t neps, capeps;
    /* With a spool: what the writer fills. */
    spool_put *puts;
    const char **ids;
    int64_t *rows;
    int64_t *leases;   /* the tenure each row is leased here under; 0: another node's */
    sy_pipeline *pl;
};

/* ---- runtimes ----------------------------------------------------------------- */

static void on_release(void *arg, sy_runtime *rt)
{
    sy_pipeline *pl = arg;
    pthread_mutex_lock(&pl->reap_mu);
    rt->next_free = pl->to_free;
    pl->to_free = rt;
    pthread_mutex_unlock(&pl->reap_mu);
}

void pipeline_reap(sy_pipeline *pl)
{
    pthread_mutex_lock(&pl->reap_mu);
    sy_runtime *rt = pl->to_free;
    pl->to_free = NULL;
    pthread_mutex_unlock(&pl->reap_mu);
    while (rt) {
        sy_runtime *next = rt->next_free;
        sy_conf *c = rt->owns_conf ? rt->conf : NULL;
        runtime_free(rt);
        config_free(c);
        log_debug("a replaced configuration was released");
        rt = next;
    }
}

/* ---- endpoint flags ------------------------------------------------------------ */

static ep_flag *flag_of(sy_pipeline *pl, const char *id)
{
    size_t b = runtime_id_hash(id) % pl->nflags_buckets;
    for (ep_flag *f = pl->flags[b]; f; f = f->next)
        if (!strcmp(f->id, id))
            return f;
    size_t l = strlen(id) + 1;
    ep_flag *f = calloc(1, sizeof *f + l);
    if (!f)
        return NULL;
    memcpy(f->id, id, l);
    f->next = pl->flags[b];
    pl->flags[b] = f;
    return f;
}

/* Points every endpoint of rt at its id's flag (before rt is current). */
static void attach_flags(sy_pipeline *pl, sy_runtime *rt)
{
    for (size_t i = 0; i < rt->neps; i++) {
        ep_flag *f = flag_of(pl, rt->eps[i].conf->id);
        rt->eps[i].disabled = f ? &f->disabled : NULL;
    }
}

static int is_disabled(const sy_endpoint *ep)
{
    return ep->disabled && __atomic_load_n(ep->disabled, __ATOMIC_ACQUIRE);
}

/* ---- batches ------------------------------------------------------------------ */

pl_batch *pipeline_batch_new(sy_runtime *rt)
{
    pl_batch *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->rt = rt;
    runtime_ref(rt);
    return b;
}

size_t pipeline_batch_len(const pl_batch *b)
{
    return b ? b->nev : 0;
}

int pipeline_batch_add(pl_batch *b, sy_event *ev, sy_endpoint *const *eps, size_t n,
                       const reply_to *reply)
{
    if (b->nev == b->capev) {
        size_t ncap = b->capev ? b->capev * 2 : 64;
        pl_event *ne = realloc(b->evs, ncap * sizeof *ne);
        if (!ne)
            return -1;
        b->evs = ne;
        b->capev = ncap;
    }
    if (b->neps + n > b->capeps) {
        size_t ncap = b->capeps ? b->capeps * 2 : 64;
        while (ncap < b->neps + n)
            ncap *= 2;
        sy_endpoint **np = realloc(b->eps, ncap * sizeof *np);
        if (!np)
            return -1;
        b->eps = np;
        b->capeps = ncap;
    }
    reply_to *r = NULL;
    if (reply && !(r = malloc(sizeof *r)))
        return -1;
    if (r)
        *r = *reply;
    if (n) /* an event routed nowhere: b->eps may still be NULL */
        memcpy(b->eps + b->neps, eps, n * sizeof *eps);
    b->evs[b->nev++] = (pl_event){.ev = ev, .first = b->neps, .n = n, .reply = r};
    b->neps += n;
    event_ref(ev);
    return 0;
}

static void batch_free(pl_batch *b)
{
    for (size_t i = 0; i < b->nev; i++) {
        event_unref(b->evs[i].ev);
        free(b->evs[i].reply);
    }
    runtime_unref(b->rt);
    free(b->evs);
    free(b->eps);
    free(b->puts);
    free(b->ids);
    free(b->rows);
    free(b->leases);
    free(b);
}

/* ---- from batch to shards ----------------------------------------------------------- */

/*
 * Splits a batch's deliveries per owning shard and posts one message to
 * each shard that gets any. rows: their spool ids (NULL without a spool);
 * events with status other than SPOOL_OK are skipped.
 */
static void fan_out(sy_pipeline *pl, pl_batch *b)
{
    route_batch *stack[16], **per = pl->nshards <= 16 ? stack : calloc((size_t)pl->nshards,
                                                                          sizeof *per);
    if (!per) {
        log_error("out of memory dispatching %zu events; %s", b->nev,
                  pl->o.spool ? "they stay pending in the spool" : "they are lost");
        return;
    }
    memset(per, 0, (size_t)pl->nshards * sizeof *per);
    for (size_t e = 0; e < b->nev; e++) {
        pl_event *pe = &b->evs[e];
        if (b->puts && b->puts[e].status != SPOOL_OK)
            continue;
        for (size_t k = 0; k < pe->n; k++) {
            sy_endpoint *ep = b->eps[pe->first + k];
            int64_t epoch = b->leases ? b->leases[pe->first + k] : pl->o.solo_epoch;
            if (!epoch)
                continue; /* another node owns its partition: that node loads it */
            int s = (int)(ep->id_hash % (uint64_t)pl->nshards);
            if (!per[s] && !(per[s] = route_batch_new(b->rt, 64)))
                continue;
            route_item it = {.ev = pe->ev,
                             .ep = ep,
                             .spool_id = b->rows ? b->rows[pe->first + k] : 0,
                             .epoch = epoch,
                             .fresh = 1};
            if (route_batch_add(&per[s], &it) != 0)
                log_error("out of memory dispatching event %s; %s", pe->ev->event_id,
                          pl->o.spool ? "it stays pending in the spool" : "it is lost");
        }
        STAT_INC(deliveries, pe->n);
    }
    for (int s = 0; s < pl->nshards; s++)
        if (per[s]) {
            per[s]->in_transit = &pl->paged_in_transit;
            __atomic_add_fetch(&pl->paged_in_transit, per[s]->n, __ATOMIC_RELAXED);
            shard_post(pl->shards[s], &per[s]->m);
        }
    if (per != stack)
        free(per);
}

/* The spool writer committed the batch (or failed to): dispatch, then acknowledge. */
static void on_stored(void *arg)
{
    pl_batch *b = arg;
    sy_pipeline *pl = b->pl;
    fan_out(pl, b);
    for (size_t e = 0; e < b->nev; e++) {
        pl_event *pe = &b->evs[e];
        char text[320];
        switch (b->puts[e].status) {
        case SPOOL_OK:
            snprintf(text, sizeof text, "ok %s", pe->ev->event_id);
            break;
        case SPOOL_DUP:
            STAT_INC(duplicates, 1);
            if (log_enabled(SY_LOG_DEBUG))
                log_debug("duplicate event %s ignored", pe->ev->event_id);
            snprintf(text, sizeof text, "dup %s", pe->ev->event_id);
            break;
        default:
            STAT_INC(spool_errors, 1);
            log_fields_limited(SY_LOG_ERROR, "event not stored: spool write failed",
                               LOG_S("event_id", pe->ev->event_id));
            snprintf(text, sizeof text,
                     "error spool_failed: the event was not stored; send it again");
            break;
        }
        if (pe->reply && pl->in)
            ingress_reply_from_spool(pl->in, pe->reply, text);
    }
    batch_free(b);
}

void pipeline_submit(sy_pipeline *pl, pl_batch *b)
{
    if (!b->nev) {
        batch_free(b);
        return;
    }
    if (!pl->o.spool) {
        fan_out(pl, b);
        for (size_t e = 0; e < b->nev; e++)
            if (b->evs[e].reply && pl->in) {
                char text[320];
                snprintf(text, sizeof text, "ok %s", b->evs[e].ev->event_id);
                ingress_reply_now(pl->in, b->evs[e].reply, text);
            }
        batch_free(b);
        return;
    }
    /* One spool operation for the whole batch: ids of every delivery come back filled. */
    b->pl = pl;
    b->puts = calloc(b->nev, sizeof *b->puts);
    b->ids = calloc(b->neps ? b->neps : 1, sizeof *b->ids);
    b->rows = calloc(b->neps ? b->neps : 1, sizeof *b->rows);
    b->leases = calloc(b->neps ? b->neps : 1, sizeof *b->leases);
    if (!b->puts || !b->ids || !b->rows || !b->leases) {
        log_error("out of memory storing %zu events; the publishers get an error", b->nev);
        for (size_t e = 0; e < b->nev; e++)
            if (b->evs[e].reply && pl->in)
                ingress_reply_now(pl->in, b->evs[e].reply,
                                  "error spool_failed: out of memory; send it again");
        batch_free(b);
        return;
    }
    for (size_t k = 0; k < b->neps; k++)
        b->ids[k] = b->eps[k]->conf->id;
    for (size_t e = 0; e < b->nev; e++)
        b->puts[e] = (spool_put){.ev = b->evs[e].ev,
                                 .endpoint_ids = b->ids + b->evs[e].first,
                                 .n = b->evs[e].n,
                                 .ids = b->rows + b->evs[e].first,
                                 .leases = b->leases + b->evs[e].first};
    spool_put_batch(pl->o.spool, b->puts, b->nev, on_stored, b);
}

/* ---- routing ---------------------------------------------------------------------- */

env_reason pipeline_route(sy_pipeline *pl, pl_batch *b, sy_runtime *rt, const char *body,
                          size_t len, const reply_to *reply, int system, const char *exclude,
                          const sy_endpoint *only, char *why, size_t whylen)
{
    (void)pl;
    const sy_conf *c = rt->conf;
    sy_event *ev = NULL;
    env_reason r = envelope_parse(body, len, (size_t)c->max_event_bytes, c->max_depth, &ev, why,
                                  whylen);
    if (r != ENV_OK)
        return r;
    STAT_INC(accepted, 1);
    ev->received_ms = wall_ms();
    ev->system = system;
    void *stack[MAX_MATCH_STACK];
    void **match = stack;
    size_t n;
    if (only) {
        stack[0] = (void *)only;
        n = 1;
    } else if ((n = router_match(rt->router, ev, stack, MAX_MATCH_STACK)) > MAX_MATCH_STACK) {
        match = malloc(n * sizeof *match);
        n = match ? router_match(rt->router, ev, match, n) : 0;
    }
    /* Disabled endpoints, and the endpoint a system event is about, get nothing. */
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        const sy_endpoint *ep = match[i];
        if (is_disabled(ep) || (exclude && !strcmp(ep->conf->id, exclude)))
            continue;
        match[w++] = match[i];
    }
    n = w;
    if (n == 0) {
        STAT_INC(unrouted, 1);
        if (log_enabled(SY_LOG_DEBUG))
            log_debug("event %s (%s) matched no endpoint", ev->event_id, ev->event_type);
    }
    if (pipeline_batch_add(b, ev, (sy_endpoint *const *)match, n, reply) != 0) {
        snprintf(why, whylen, "out of memory");
        r = ENV_TOO_BIG; /* never reached in practice; the caller reports why */
    }
    if (match != stack)
        free(match);
    event_unref(ev);
    return r;
}

/* A system event built by sysevent.c, through the same path as a published one. */
static int inject(sy_pipeline *pl, const char *body, const char *exclude,
                  const sy_endpoint *only)
{
    if (__atomic_load_n(&pl->closed, __ATOMIC_ACQUIRE))
        return -1;
    sy_runtime *rt = runtime_current();
    if (!rt)
        return -1;
    pl_batch *b = pipeline_batch_new(rt);
    char why[512];
    STAT_INC(system_events, 1);
    env_reason r = b ? pipeline_route(pl, b, rt, body, strlen(body), NULL, 1, exclude, only, why,
                                      sizeof why)
                     : ENV_TOO_BIG;
    runtime_unref(rt);
    if (r != ENV_OK) {
        log_fields(SY_LOG_ERROR, "system event refused", LOG_S("reason", envelope_reason_name(r)),
                   LOG_S("detail", b ? why : "out of memory"));
        if (b)
            batch_free(b);
        return -1;
    }
    pipeline_submit(pl, b);
    return 0;
}

int pipeline_emit(sy_pipeline *pl, const char *type, const char *org_id, const char *data_json,
                  const char *exclude)
{
    if (!pl)
        return -1;
    char id[64];
    char *body = sysevent_build(type, org_id, data_json, id, sizeof id);
    if (!body)
        return -1;
    int rc = inject(pl, body, exclude, NULL);
    free(body);
    return rc;
}

int pipeline_test_event(sy_pipeline *pl, const char *endpoint_id, char *evid, size_t evid_len)
{
    sy_runtime *rt = runtime_current();
    if (!rt)
        return -2;
    sy_endpoint *ep = runtime_find_endpoint(rt, endpoint_id);
    if (!ep || is_disabled(ep)) { /* routing would skip a disabled one: say so, not 202 */
        runtime_unref(rt);
        return ep ? -3 : -1;
    }
    cJSON *data = cJSON_CreateObject();
    cJSON_AddStringToObject(data, "endpoint_id", endpoint_id);
    cJSON_AddStringToObject(data, "message", "test event sent from the Switchyard admin API");
    char *dt = cJSON_PrintUnformatted(data);
    cJSON_Delete(data);
    char *body = dt ? sysevent_build("webhook.test", ep->conf->org_id, dt, evid, evid_len) : NULL;
    free(dt);
    /* Routed straight to the endpoint of the runtime looked up here. */
    int rc = -2;
    if (body && !__atomic_load_n(&pl->closed, __ATOMIC_ACQUIRE)) {
        pl_batch *b = pipeline_batch_new(rt);
        char why[512];
        STAT_INC(system_events, 1);
        if (b && pipeline_route(pl, b, rt, body, strlen(body), NULL, 1, NULL, ep, why,
                                sizeof why) == ENV_OK) {
            pipeline_submit(pl, b);
            rc = 0;
        } else if (b) {
            batch_free(b);
        }
    }
    free(body);
    runtime_unref(rt);
    return rc;
}

int pipeline_enable(sy_pipeline *pl, const char *endpoint_id)
{
    sy_runtime *rt = runtime_current();
    sy_endpoint *ep = rt ? runtime_find_endpoint(rt, endpoint_id) : NULL;
    if (ep) {
        if (pl->o.spool)
            spool_clear_disabled(pl->o.spool, endpoint_id);
        shard_enable(pl->shards[ep->id_hash % (uint64_t)pl->nshards], endpoint_id);
    }
    runtime_unref(rt);
    return ep ? 0 : -1;
}

/* ---- the spool pager ------------------------------------------------------------------ */

static size_t pager_want(void *arg)
{
    sy_pipeline *pl = arg;
    if (__atomic_load_n(&pl->closed, __ATOMIC_ACQUIRE))
        return 0;
    size_t held = 0;
    for (int i = 0; i < pl->nshards; i++) {
        shard_counts c;
        shard_get_counts(pl->shards[i], &c);
        held += c.ready + c.inflight + c.scheduled + c.waiting;
    }
    /* Rows paged in that no shard has taken yet: a slow shard must not let the pager
     * load the same room twice. */
    held += __atomic_load_n(&pl->paged_in_transit, __ATOMIC_RELAXED);
    size_t max = pl->o.memory_deliveries;
    size_t want = held >= max ? 0 : max - held;
    return want > 1000 ? 1000 : want;
}

/* Rows the pager leased: parsed again, then to their shards like new deliveries. */
static void pager_load(void *arg, const spool_row *rows, size_t n)
{
    sy_pipeline *pl = arg;
    sy_runtime *rt = runtime_current();
    if (!rt)
        return;
    route_batch *stack[16], **per = pl->nshards <= 16 ? stack : calloc((size_t)pl->nshards,
                                                                          sizeof *per);
    if (!per) {
        runtime_unref(rt);
        return;
    }
    memset(per, 0, (size_t)pl->nshards * sizeof *per);
    for (size_t i = 0; i < n; i++) {
        const spool_row *row = &rows[i];
        sy_endpoint *ep = runtime_find_endpoint(rt, row->endpoint_id);
        sy_event *ev = NULL;
        char why[256];
        if (!ep) {
            /* A reload removed it after the pager's query: give the row back. */
            spool_release_endpoint(pl->o.spool, row->endpoint_id);
            continue;
        }
        /* Accepted once, so only limits that could have changed may refuse it now. */
        if (envelope_parse(row->body, row->body_len, row->body_len + 1, 1000, &ev, why,
                           sizeof why) != ENV_OK) {
            log_error("spool row %lld is not a valid event any more (%s); left pending",
                      (long long)row->id, why);
            continue;
        }
        ev->received_ms = row->received_ms;
        int s = (int)(ep->id_hash % (uint64_t)pl->nshards);
        if (!per[s])
            per[s] = route_batch_new(rt, 64);
        route_item it = {.ev = ev,
                         .ep = ep,
                         .spool_id = row->id,
                         .attempts = row->attempt,
                         .first_ms = row->first_ms,
                         .due_ms = row->next_ms,
                         .epoch = row->epoch};
        if (!per[s] || route_batch_add(&per[s], &it) != 0)
            log_error("out of memory paging in delivery %lld; it stays pending",
                      (long long)row->id);
        event_unref(ev);
    }
    for (int s = 0; s < pl->nshards; s++)
        if (per[s]) {
            per[s]->in_transit = &pl->paged_in_transit;
            __atomic_add_fetch(&pl->paged_in_transit, per[s]->n, __ATOMIC_RELAXED);
            shard_post(pl->shards[s], &per[s]->m);
        }
    if (per != stack)
        free(per);
    runtime_unref(rt);
}

/* ---- the cluster's lease thread ----------------------------------------------------- */

/* Recent attempts per endpoint index of a runtime, for the rate limits of taken partitions. */
typedef struct seeds {
    sy_runtime *rt;
    int64_t **at;   /* per endpoint index: completion wall times */
    size_t *n, *cap;
} seeds;

static void add_seed(void *arg, const char *endpoint, int64_t at_ms)
{
    seeds *sd = arg;
    sy_endpoint *ep = runtime_find_endpoint(sd->rt, endpoint);
    if (!ep || !ep->conf->gate.rate)
        return;
    size_t i = ep->index;
    if (sd->n[i] == sd->cap[i]) {
        size_t ncap = sd->cap[i] ? sd->cap[i] * 2 : 64;
        int64_t *na = realloc(sd->at[i], ncap * sizeof *na);
        if (!na)
            return;
        sd->at[i] = na;
        sd->cap[i] = ncap;
    }
    sd->at[i][sd->n[i]++] = at_ms;
}

/*
 * Taken partitions: load their rows now, and give each rate-limited
 * endpoint in them the attempts its previous owner made within its
 * window, plus (when that owner did not give the partition back) as many
 * completions now as it could have had in flight, so the limit holds
 * across the handover.
 */
static void on_acquired(void *arg, sy_store *rd, const store_tenure *t, size_t n)
{
    sy_pipeline *pl = arg;
    if (pl->o.spool)
        spool_wake_pager(pl->o.spool);
    sy_runtime *rt = runtime_current();
    if (!rt)
        return;
    int taken[CLUSTER_PARTS] = {0}, fresh[CLUSTER_PARTS] = {0}, parts[CLUSTER_PARTS];
    for (size_t i = 0; i < n; i++) {
        taken[t[i].part] = 1;
        fresh[t[i].part] = t[i].fresh;
        parts[i] = t[i].part;
    }
    int64_t window = 0;
    for (size_t i = 0; i < rt->neps; i++) {
        const sy_endpoint *ep = &rt->eps[i];
        if (ep->conf->gate.rate && taken[ep->id_hash % CLUSTER_PARTS] &&
            ep->conf->gate.per > window)
            window = ep->conf->gate.per;
    }
    seeds sd = {.rt = rt, .at = calloc(rt->neps + 1, sizeof *sd.at),
                .n = calloc(rt->neps + 1, sizeof *sd.n), .cap = calloc(rt->neps + 1, sizeof *sd.cap)};
    if (window && sd.at && sd.n && sd.cap &&
        store_recent_attempts(rd, parts, n, wall_ms() - window, add_seed, &sd) < 0)
        log_fields(SY_LOG_WARN, "cannot read the recent attempts of taken partitions; their "
                                "rate limits start from this node's own count",
                   LOG_S("error", store_error(rd)));
    for (size_t i = 0; window && sd.at && sd.n && i < rt->neps; i++) {
        const sy_endpoint *ep = &rt->eps[i];
        int p = (int)(ep->id_hash % CLUSTER_PARTS);
        if (!ep->conf->gate.rate || !taken[p])
            continue;
        int64_t inflight = ep->concurrency * (int64_t)(ep->inst->batch_max ? ep->inst->batch_max : 1);
        int phantom = fresh[p] ? (int)(inflight < ep->conf->gate.rate ? inflight : ep->conf->gate.rate) : 0;
        if (sd.n[i] || phantom)
            shard_seed(pl->shards[ep->id_hash % (uint64_t)pl->nshards], ep->conf->id, sd.at[i],
                       sd.n[i], phantom);
    }
    for (size_t i = 0; sd.at && i < rt->neps; i++)
        free(sd.at[i]);
    free(sd.at);
    free(sd.n);
    free(sd.cap);
    runtime_unref(rt);
}

static void on_flush(void *arg)
{
    sy_pipeline *pl = arg;
    if (pl->o.spool && spool_flush(pl->o.spool, 5000) != 0)
        log_warn("spool flush timed out before a partition went back");
}

void pipeline_cluster_hooks(sy_pipeline *pl, cluster_hooks *out)
{
    *out = (cluster_hooks){.acquired = on_acquired, .flush = on_flush, .arg = pl};
}

/* The endpoints the pager may page in: those of the current runtime. */
static void tell_spool_known(sy_pipeline *pl, const sy_runtime *rt)
{
    if (!pl->o.spool)
        return;
    const char **ids = malloc((rt->neps ? rt->neps : 1) * sizeof *ids);
    if (!ids)
        return;
    for (size_t i = 0; i < rt->neps; i++)
        ids[i] = rt->eps[i].conf->id;
    spool_set_known(pl->o.spool, ids, rt->neps);
    free(ids);
}

/* ---- life --------------------------------------------------------------------------- */

sy_pipeline *pipeline_new(const pipeline_opts *o, sy_runtime *rt)
{
    sy_pipeline *pl = calloc(1, sizeof *pl);
    if (!pl)
        return NULL;
    pl->o = *o;
    if (!pl->o.memory_deliveries)
        pl->o.memory_deliveries = 100000;
    pl->nshards = o->shards > 0 ? o->shards : 1;
    pthread_mutex_init(&pl->reap_mu, NULL);
    pl->nflags_buckets = 1024;
    if (!(pl->flags = calloc(pl->nflags_buckets, sizeof *pl->flags))) {
        free(pl);
        return NULL;
    }
    attach_flags(pl, rt);
    runtime_on_release(on_release, pl);
    pl->shards = calloc((size_t)pl->nshards, sizeof *pl->shards);
    if (!pl->shards || !(pl->workers = workers_new(o->workers > 0 ? o->workers : 1))) {
        pipeline_free(pl);
        return NULL;
    }
    for (size_t i = 0; i < rt->ninsts; i++)
        rt->insts[i].pipeline = pl;
    for (int i = 0; i < pl->nshards; i++) {
        shard_opts so = {.index = i,
                         .nshards = pl->nshards,
                         .pipeline = pl,
                         .workers = pl->workers,
                         .spool = o->spool,
                         .spill_after_ms = o->spill_after_ms,
                         .mem_max = pl->o.memory_deliveries / (size_t)pl->nshards + 1,
                         .complete_grace_ms = o->complete_grace_ms,
                         .own = o->own};
        if (!(pl->shards[i] = shard_new(&so))) {
            pipeline_free(pl);
            return NULL;
        }
        shard_adopt(pl->shards[i], rt);
    }
    runtime_ref(rt);
    runtime_install(rt);
    return pl;
}

void pipeline_set_ingress(sy_pipeline *pl, struct sy_ingress *in)
{
    pl->in = in;
}

int pipeline_start(sy_pipeline *pl)
{
    for (int i = 0; i < pl->nshards; i++)
        if (shard_start(pl->shards[i]) != 0) {
            log_error("cannot start shard thread %d", i);
            return -1;
        }
    if (pl->o.spool) {
        sy_runtime *rt = runtime_current();
        if (rt) {
            tell_spool_known(pl, rt);
            runtime_unref(rt);
        }
        /* Endpoints the disable clock stopped stay stopped across restarts. */
        char **ids = NULL;
        size_t n = 0;
        if (spool_load_disabled(pl->o.spool, &ids, &n) == 0) {
            for (size_t i = 0; i < n; i++) {
                /* Before ingress starts: not one event reaches it. */
                ep_flag *f = flag_of(pl, ids[i]);
                if (f)
                    __atomic_store_n(&f->disabled, 1, __ATOMIC_RELEASE);
                shard_disable(pl->shards[runtime_id_hash(ids[i]) % (uint64_t)pl->nshards],
                              ids[i]);
                log_fields(SY_LOG_WARN,
                           "endpoint stays disabled (switchyard endpoint enable ID re-enables it)",
                           LOG_S("endpoint", ids[i]));
                free(ids[i]);
            }
            free(ids);
        }
        spool_set_pager(pl->o.spool, pager_want, pager_load, pl, 200,
                        /* load a little early so timers, not the pager, set the pace */ 1000);
        if (spool_start(pl->o.spool) != 0)
            return -1;
    }
    pl->started = 1;
    return 0;
}

void pipeline_reload(sy_pipeline *pl, sy_runtime *nrt)
{
    attach_flags(pl, nrt);
    /* Shards first: whatever is routed with nrt queues behind its adoption. */
    for (int i = 0; i < pl->nshards; i++)
        shard_adopt(pl->shards[i], nrt);
    tell_spool_known(pl, nrt);
    runtime_install(nrt);
}

size_t pipeline_backlog(sy_pipeline *pl)
{
    size_t n = pl->o.spool ? spool_queued(pl->o.spool) : 0;
    for (int i = 0; i < pl->nshards; i++)
        n += shard_backlog(pl->shards[i]);
    return n;
}

uint64_t pipeline_bytes(void)
{
    return event_bytes_live();
}

void pipeline_get_counts(sy_pipeline *pl, pipeline_counts *out)
{
    memset(out, 0, sizeof *out);
    for (int i = 0; i < pl->nshards; i++) {
        shard_counts c;
        shard_get_counts(pl->shards[i], &c);
        out->ready += c.ready;
        out->held += c.held;
        out->inflight += c.inflight;
        out->scheduled += c.scheduled;
        out->expired += c.expired;
        out->waiting += c.waiting;
    }
    out->spool_queued = pl->o.spool ? spool_queued(pl->o.spool) : 0;
    out->spool_unfolded = pl->o.spool ? spool_unfolded(pl->o.spool) : 0;
}

void pipeline_foreach_endpoint(sy_pipeline *pl,
                               void (*fn)(void *arg, const shard_ep_view *v), void *arg)
{
    for (int i = 0; i < pl->nshards; i++)
        shard_foreach(pl->shards[i], fn, arg);
}

typedef struct live_list {
    ep_live *v;
    size_t n, cap;
    int oom;
} live_list;

static void collect(void *arg, const shard_ep_view *view)
{
    live_list *l = arg;
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 64;
        ep_live *nv = realloc(l->v, ncap * sizeof *nv);
        if (!nv) {
            l->oom = 1;
            return;
        }
        l->v = nv;
        l->cap = ncap;
    }
    ep_live *e = &l->v[l->n++];
    snprintf(e->id, sizeof e->id, "%s", view->id);
    /* Single writer (the shard): relaxed loads give each counter exactly. */
    const uint64_t *src = (const uint64_t *)view->st;
    uint64_t *dst = (uint64_t *)&e->st;
    for (size_t k = 0; k < sizeof e->st / sizeof *dst; k++)
        dst[k] = __atomic_load_n(&src[k], __ATOMIC_RELAXED);
    e->disabled = view->disabled;
    e->breaker_open = view->breaker_open;
    e->ready = view->ready;
    e->inflight = view->inflight;
    snprintf(e->last_detail, sizeof e->last_detail, "%s", view->last_detail);
}

static int cmp_live(const void *a, const void *b)
{
    return strcmp(((const ep_live *)a)->id, ((const ep_live *)b)->id);
}

size_t pipeline_endpoint_snapshot(sy_pipeline *pl, ep_live **out)
{
    live_list l = {0};
    pipeline_foreach_endpoint(pl, collect, &l);
    if (l.oom) {
        free(l.v);
        *out = NULL;
        return 0;
    }
    if (l.n)
        qsort(l.v, l.n, sizeof *l.v, cmp_live);
    *out = l.v;
    return l.n;
}

const ep_live *pipeline_snapshot_find(const ep_live *v, size_t n, const char *id)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(id, v[mid].id);
        if (!c)
            return &v[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

static int all_idle(sy_pipeline *pl)
{
    for (int i = 0; i < pl->nshards; i++)
        if (!shard_idle(pl->shards[i]))
            return 0;
    return 1;
}

void pipeline_stop(sy_pipeline *pl, int64_t drain_ms)
{
    int64_t deadline = mono_ms() + drain_ms;
    /* Everything accepted reaches the disk, then the shards. */
    if (pl->o.spool && spool_flush(pl->o.spool, drain_ms) != 0)
        log_warn("spool flush timed out");
    while (!all_idle(pl) && mono_ms() < deadline)
        usleep(5000);
    if (!all_idle(pl))
        log_warn("drain timeout reached with deliveries still in flight");
    __atomic_store_n(&pl->closed, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < pl->nshards; i++)
        shard_quiesce(pl->shards[i]);
    /* Blocking plugins return by themselves; their jobs come back to the shards. */
    for (int i = 0; i < pl->nshards; i++)
        shard_stop(pl->shards[i]);
    workers_free(pl->workers);
    pl->workers = NULL;
    pipeline_counts c;
    pipeline_get_counts(pl, &c);
    if (c.ready + c.scheduled + c.waiting || c.expired)
        log_warn("%zu unfinished deliveries left memory at exit (%zu still in plugins); %s",
                 c.ready + c.scheduled + c.waiting, c.expired,
                 pl->o.spool ? "the spool keeps them pending for the next start"
                             : "without a spool they are lost");
    /* The outcomes of the last turns are queued: let the writer commit them. */
    if (pl->o.spool)
        spool_flush(pl->o.spool, drain_ms > 5000 ? drain_ms : 5000);
}

void pipeline_free(sy_pipeline *pl)
{
    if (!pl)
        return;
    __atomic_store_n(&pl->closed, 1, __ATOMIC_RELEASE);
    workers_free(pl->workers);
    for (int i = 0; pl->shards && i < pl->nshards; i++)
        shard_free(pl->shards[i]);
    free(pl->shards);
    runtime_install(NULL);
    pipeline_reap(pl);
    runtime_on_release(NULL, NULL);
    pthread_mutex_destroy(&pl->reap_mu);
    for (size_t b = 0; pl->flags && b < pl->nflags_buckets; b++)
        for (ep_flag *f = pl->flags[b], *n; f; f = n) {
            n = f->next;
            free(f);
        }
    free(pl->flags);
    free(pl);
}
