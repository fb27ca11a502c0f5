/*
 * api_endpoints.c - /api/v1/endpoints: the list with live state, one
 * endpoint's config (secrets shown as a prefix), its health, and the
 * changes (create, PUT, PATCH, DELETE, rotate-secret), which the reloader
 * applies on the main thread; test events and enable; a filter checked
 * before it is saved.
 *
 * Reads work on the runtime of the request: what GET shows is exactly what
 * runs. A change's answer reads the runtime it installed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_routes.h"
#include "clock.h"
#include "epset.h"
#include "filter.h"

/* ---- views ---------------------------------------------------------------------- */

static int is_secret(const sy_config_table *t, const char *name)
{
    for (size_t i = 0; t && i < t->nkeys; i++) {
        sy_config_key k;
        cfgtable_key(t, i, &k);
        if (!strcmp(k.name, name))
            return (k.flags & SY_CFG_SECRET) != 0;
    }
    return 0;
}

static cJSON *prefix_of(const char *secret)
{
    char p[16];
    epset_secret_prefix(secret, p, sizeof p);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "prefix", p);
    return o;
}

/* A secret value as GET shows it: {"prefix"} for a string, one per element of a list. */
static cJSON *redacted(const cJSON *v)
{
    if (cJSON_IsString(v))
        return prefix_of(v->valuestring);
    cJSON *arr = cJSON_CreateArray();
    const cJSON *x;
    cJSON_ArrayForEach(x, v)
    {
        cJSON *p = prefix_of(cJSON_IsString(x) ? x->valuestring : "");
        cJSON_AddNullToObject(p, "expires_at");
        cJSON_AddItemToArray(arr, p);
    }
    return arr;
}

/*
 * An endpoint as GET shows it: "id", "source" ("config" or "api"), then
 * its object as written, secret keys as prefixes; the API's endpoints add
 * their secrets with expiry, "created_at" and "updated_at".
 */
static cJSON *view(const sy_runtime *rt, const sy_endpoint *ep)
{
    const sy_endpoint_conf *ec = ep->conf;
    const sy_config_table *t = ep->inst && ep->inst->sink ? ep->inst->sink->endpoint_config : NULL;
    const cJSON *meta = ec->from_api ? cJSON_GetObjectItemCaseSensitive(rt->api_meta, ec->id)
                                     : NULL;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", ec->id);
    cJSON_AddStringToObject(o, "source", ec->from_api ? "api" : "config");
    for (const cJSON *m = ec->json->child; m; m = m->next) {
        if (meta && !strcmp(m->string, "secrets"))
            continue; /* shown below, with when each stops signing */
        cJSON_AddItemToObject(o, m->string,
                              is_secret(t, m->string) ? redacted(m) : cJSON_Duplicate(m, 1));
    }
    for (const cJSON *m = meta ? meta->child : NULL; m; m = m->next)
        if (strcmp(m->string, "secrets") || cJSON_GetArraySize(m) > 0)
            cJSON_AddItemToObject(o, m->string, cJSON_Duplicate(m, 1));
    return o;
}

static const char *state_of(const sy_endpoint *ep, const ep_live *lv)
{
    return !ep->conf->enabled ? "off"
           : lv->disabled     ? "disabled"
           : lv->breaker_open ? "breaker_open"
                              : "active";
}

static const ep_live none_live;

enum MHD_Result api_endpoints_list(api_req *q)
{
    /* With a spool, pending and dead are what the spool holds (they survive restarts). */
    store_ep_count *counts = NULL;
    long ncounts = -1;
    if (q->store)
        ncounts = store_endpoint_counts(q->store, &counts);
    ep_live *live;
    size_t nlive = pipeline_endpoint_snapshot(q->pl, &live);
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < q->rt->neps; i++) {
        const sy_endpoint *ep = &q->rt->eps[i];
        if (!api_sees(q, ep->conf->org_id))
            continue;
        const ep_live *lv = pipeline_snapshot_find(live, nlive, ep->conf->id);
        if (!lv)
            lv = &none_live;
        cJSON *o = cJSON_CreateObject();
        uint64_t att = lv->st.attempts, ok = lv->st.delivered;
        uint64_t dead = lv->st.dead, routed = lv->st.routed;
        cJSON_AddStringToObject(o, "id", ep->conf->id);
        if (ep->conf->org_id)
            cJSON_AddStringToObject(o, "org_id", ep->conf->org_id);
        else
            cJSON_AddNullToObject(o, "org_id");
        cJSON_AddStringToObject(o, "source", ep->conf->from_api ? "api" : "config");
        cJSON_AddStringToObject(o, "sink", ep->inst->name);
        cJSON_AddStringToObject(o, "plugin", ep->inst->sink->name);
        cJSON_AddStringToObject(o, "state", state_of(ep, lv));
        if (att)
            cJSON_AddNumberToObject(o, "success_rate", (double)ok / (double)att);
        else
            cJSON_AddNullToObject(o, "success_rate");
        cJSON_AddNumberToObject(o, "routed", (double)routed);
        cJSON_AddNumberToObject(o, "attempts", (double)att);
        cJSON_AddNumberToObject(o, "ok", (double)ok);
        uint64_t done = ok + dead + lv->st.filtered;
        double pending = routed > done ? (double)(routed - done) : 0.0;
        double dead_n = (double)dead;
        if (ncounts >= 0) {
            pending = dead_n = 0;
            for (long k = 0; k < ncounts; k++)
                if (!strcmp(counts[k].endpoint, ep->conf->id)) {
                    pending = (double)counts[k].pending;
                    dead_n = (double)counts[k].dead;
                }
        }
        cJSON_AddNumberToObject(o, "dead", dead_n);
        cJSON_AddNumberToObject(o, "pending", pending);
        cJSON_AddNumberToObject(o, "last_status", (double)lv->st.last_status);
        cJSON_AddStringToObject(o, "last_error",
                                lv->st.last_status >= 200 && lv->st.last_status < 300
                                    ? ""
                                    : lv->last_detail);
        cJSON_AddItemToArray(arr, o);
    }
    free(counts);
    free(live);
    return api_send(q->c, 200, arr);
}

/* ---- one endpoint ------------------------------------------------------------------ */

/* The endpoint named by the path as the caller may see it, or NULL after answering. */
static sy_endpoint *path_endpoint(api_req *q, enum MHD_Result *rc)
{
    sy_endpoint *ep = api_endpoint(q, q->params[0]);
    if (!ep)
        *rc = api_error(q->c, 404, "no endpoint with that id");
    return ep;
}

enum MHD_Result api_endpoint_get(api_req *q)
{
    enum MHD_Result rc;
    sy_endpoint *ep = path_endpoint(q, &rc);
    return ep ? api_send(q->c, 200, view(q->rt, ep)) : rc;
}

static void add_rate(cJSON *o, const char *key, uint64_t ok, uint64_t n)
{
    if (n)
        cJSON_AddNumberToObject(o, key, (double)ok / (double)n);
    else
        cJSON_AddNullToObject(o, key);
}

enum MHD_Result api_endpoint_stats(api_req *q)
{
    enum MHD_Result rc;
    sy_endpoint *ep = path_endpoint(q, &rc);
    if (!ep)
        return rc;
    sy_store *sto = api_store(q, "endpoint stats read the spool's attempts log", &rc);
    if (!sto)
        return rc;
    store_ep_stats st;
    int64_t now = wall_ms();
    if (store_endpoint_stats(sto, ep->conf->id, now, &st) != 0)
        return api_error(q->c, 500, store_error(sto));
    ep_live *live;
    size_t nlive = pipeline_endpoint_snapshot(q->pl, &live);
    const ep_live *lv = pipeline_snapshot_find(live, nlive, ep->conf->id);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", ep->conf->id);
    cJSON_AddStringToObject(o, "state", state_of(ep, lv ? lv : &none_live));
    free(live);
    add_rate(o, "success_rate_1h", st.ok_1h, st.attempts_1h);
    add_rate(o, "success_rate_24h", st.ok_24h, st.attempts_24h);
    cJSON_AddNumberToObject(o, "attempts_1h", (double)st.attempts_1h);
    cJSON_AddNumberToObject(o, "attempts_24h", (double)st.attempts_24h);
    if (st.has_error) {
        cJSON *e = cJSON_AddObjectToObject(o, "last_error");
        cJSON_AddItemToObject(e, "at", epset_time_json(st.error_ms));
        cJSON_AddNumberToObject(e, "status", st.error_status);
        cJSON_AddStringToObject(e, "outcome", st.error_result == SY_FAIL ? "fail" : "retry");
        cJSON_AddStringToObject(e, "detail", st.error_detail);
    } else {
        cJSON_AddNullToObject(o, "last_error");
    }
    cJSON_AddNumberToObject(o, "pending", (double)st.pending);
    cJSON_AddNumberToObject(o, "dead", (double)st.dead);
    return api_send(q->c, 200, o);
}

/* ---- changes -------------------------------------------------------------------------- */

/* What a successful change answers: the endpoint as it now runs, and a new secret once. */
static enum MHD_Result changed(api_req *q, const epchange *ch, unsigned status)
{
    if (ch->kind == EPCHANGE_DELETE) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", ch->out.id);
        cJSON_AddBoolToObject(o, "deleted", 1);
        return api_send(q->c, status, o);
    }
    sy_runtime *rt = runtime_current();
    sy_endpoint *ep = rt ? runtime_find_endpoint(rt, ch->out.id) : NULL;
    cJSON *o;
    if (ch->kind == EPCHANGE_ROTATE) {
        const cJSON *meta = ep ? cJSON_GetObjectItemCaseSensitive(rt->api_meta, ch->out.id)
                               : NULL;
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", ch->out.id);
        cJSON_AddStringToObject(o, "secret", ch->out.secret);
        cJSON_AddItemToObject(o, "previous_expires_at", epset_time_json(ch->out.old_expires_ms));
        cJSON_AddItemToObject(o, "secrets", meta ? cJSON_Duplicate(cJSON_GetObjectItem(meta,
                                                                                      "secrets"), 1)
                                                 : cJSON_CreateArray());
    } else {
        o = ep ? view(rt, ep) : cJSON_CreateObject();
        if (ch->out.secret) /* made by this change: shown this once */
            cJSON_AddStringToObject(o, "secret", ch->out.secret);
    }
    runtime_unref(rt);
    return api_send(q->c, status, o);
}

static enum MHD_Result change(api_req *q, epchange_kind kind, unsigned status)
{
    const char *id = kind == EPCHANGE_CREATE ? NULL : q->params[0];
    if (id && !epset_id_valid(id))
        return api_error_at(q->c, 400, "endpoint ids are 1-128 letters, digits, '.', '_' or '-'",
                            "id");
    if (!reloader_has_store(q->rl))
        return api_no_epstore(q, "endpoints are stored in the spool");
    epchange ch = {.kind = kind, .id = id, .org = q->org, .body = q->body};
    reloader_change(q->rl, &ch);
    enum MHD_Result rc = ch.out.status ? api_error_at(q->c, (unsigned)ch.out.status,
                                                      ch.out.error, ch.out.path)
                                       : changed(q, &ch, status);
    epset_out_clear(&ch.out);
    return rc;
}

enum MHD_Result api_endpoint_create(api_req *q)
{
    return change(q, EPCHANGE_CREATE, 201);
}

enum MHD_Result api_endpoint_put(api_req *q)
{
    return change(q, EPCHANGE_REPLACE, 200);
}

enum MHD_Result api_endpoint_patch(api_req *q)
{
    return change(q, EPCHANGE_PATCH, 200);
}

enum MHD_Result api_endpoint_delete(api_req *q)
{
    return change(q, EPCHANGE_DELETE, 200);
}

enum MHD_Result api_endpoint_rotate(api_req *q)
{
    return change(q, EPCHANGE_ROTATE, 200);
}

/* ---- test events and enable --------------------------------------------------------------- */

enum MHD_Result api_endpoint_test(api_req *q)
{
    enum MHD_Result rc;
    const char *id = q->params[0];
    if (!path_endpoint(q, &rc))
        return rc;
    char evid[64];
    int r = pipeline_test_event(q->pl, id, evid, sizeof evid);
    if (r == -1)
        return api_error(q->c, 404, "no endpoint with that id");
    if (r == -3) {
        char msg[1024];
        snprintf(msg, sizeof msg, "endpoint %s is disabled: enable it first (POST "
                 "/api/v1/endpoints/%s/enable, or switchyard endpoint enable %s)", id, id, id);
        return api_error(q->c, 409, msg);
    }
    if (r != 0)
        return api_error(q->c, 503, "cannot send a test event now (stopping, or out of memory)");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "event_id", evid);
    cJSON_AddStringToObject(o, "endpoint", id);
    return api_send(q->c, 202, o);
}

enum MHD_Result api_endpoint_enable(api_req *q)
{
    enum MHD_Result rc;
    const char *id = q->params[0];
    if (!path_endpoint(q, &rc))
        return rc;
    if (pipeline_enable(q->pl, id) != 0)
        return api_error(q->c, 404, "no endpoint with that id");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "endpoint", id);
    cJSON_AddStringToObject(o, "state", "enabled");
    return api_send(q->c, 200, o);
}

/* ---- filters ------------------------------------------------------------------------ */

/*
 * The check an endpoint's "filter" goes through when it is saved, alone:
 * the portal's filter editor asks before it saves. The error's path is the
 * key inside the filter, as a change's answer would give it after
 * "endpoints.<id>.".
 */
enum MHD_Result api_filter_validate(api_req *q)
{
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(q->body, "filter");
    if (!cJSON_IsObject(q->body) || !spec || cJSON_GetArraySize(q->body) != 1)
        return api_error_at(q->c, 400, "expected {\"filter\": {...}}", "filter");
    char err[512];
    sy_filter *f = filter_compile(spec, err, sizeof err);
    if (f) {
        filter_free(f);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddBoolToObject(o, "valid", 1);
        return api_send(q->c, 200, o);
    }
    /* Filter errors start with the path inside the filter, or "filter". */
    char path[600] = "filter";
    const char *msg = err;
    char *colon = strstr(err, ": ");
    if (colon) {
        *colon = '\0';
        if (strcmp(err, "filter"))
            snprintf(path, sizeof path, "filter.%s", err);
        msg = colon + 2;
    }
    return api_error_at(q->c, 400, msg, path);
}
