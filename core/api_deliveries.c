/*
 * api_deliveries.c - /api/v1/deliveries (by state, endpoint, event type
 * and time, either way of the row ids), one delivery's attempts, replay of
 * a dead one or of every dead one of an endpoint, the event feed
 * (/api/v1/events) and the event types an org has seen, each read from
 * the spool through its own connection.
 *
 * An org token sees the deliveries of its org's events to its org's
 * endpoints: those running now, and those the API deleted (their dead
 * letters stay the org's to list and replay).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_routes.h"
#include "spool_query.h"

#define NO_SPOOL "; this daemon runs with spool: null"

/* The ids of the caller's org's endpoints, running or deleted, as a JSON array. NULL: error. */
static cJSON *org_endpoints(const api_req *q)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; arr && i < q->rt->neps; i++)
        if (api_sees(q, q->rt->eps[i].conf->org_id))
            cJSON_AddItemToArray(arr, cJSON_CreateString(q->rt->eps[i].conf->id));
    sy_epstore *store = reloader_store(q->rl);
    char **ids = NULL, err[512];
    long n = store ? epstore_deleted_ids(store, q->org, &ids, err, sizeof err) : 0;
    for (long i = 0; i < n; i++) {
        if (arr)
            cJSON_AddItemToArray(arr, cJSON_CreateString(ids[i]));
        free(ids[i]);
    }
    free(ids);
    if (n < 0) {
        cJSON_Delete(arr);
        return NULL;
    }
    return arr;
}

/* 1 when endpoint is one of the caller's (always for the admin token). */
static int own_endpoint(const api_req *q, const cJSON *mine, const char *endpoint)
{
    if (!q->org)
        return 1;
    const cJSON *x;
    cJSON_ArrayForEach(x, mine)
    {
        if (!strcmp(x->valuestring, endpoint))
            return 1;
    }
    return 0;
}

/* A query argument that is a non-negative integer (0 when absent); -1 when it is not one. */
static long long arg_id(struct MHD_Connection *c, const char *name)
{
    return api_arg_long(c, name, 0, 0, LONG_MAX);
}

enum MHD_Result api_deliveries_list(api_req *q)
{
    struct MHD_Connection *c = q->c;
    const char *spool = q->rt->conf->spool;
    const char *order = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "order");
    spoolq_filter f = {
        .state = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "state"),
        .endpoint = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "endpoint"),
        .event_type = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "event_type"),
        .since_ms = arg_id(c, "since"),
        .until_ms = arg_id(c, "until"),
        .after_id = arg_id(c, "after"),
        .before_id = arg_id(c, "before"),
        .limit = api_arg_long(c, "limit", 100, 1, 10000),
    };
    if (f.event_type && !*f.event_type)
        f.event_type = NULL;
    if (f.limit < 0 || f.after_id < 0)
        return api_error(c, 400, "limit must be 1-10000 and after a row id >= 0");
    if (f.before_id < 0)
        return api_error(c, 400, "before must be a row id >= 0");
    if (f.since_ms < 0 || f.until_ms < 0)
        return api_error(c, 400, "since and until are milliseconds since 1970 (>= 0)");
    if (order && strcmp(order, "asc") && strcmp(order, "desc"))
        return api_error(c, 400, "order must be asc (after the cursor) or desc (before it)");
    f.desc = order && !strcmp(order, "desc");
    if (!spool)
        return api_error(c, 501, "deliveries are listed from the spool" NO_SPOOL);
    cJSON *mine = q->org ? org_endpoints(q) : NULL;
    if (q->org && !mine)
        return api_error(c, 500, "cannot read the endpoint store");
    if (f.endpoint && !own_endpoint(q, mine, f.endpoint)) {
        cJSON_Delete(mine);
        return api_error(c, 404, "no endpoint with that id");
    }
    char *list = mine ? cJSON_PrintUnformatted(mine) : NULL;
    cJSON_Delete(mine);
    spoolq_scope scope = {q->org, list};
    char err[512];
    char *t = spoolq_deliveries_page(spool, &f, q->org ? &scope : NULL, err, sizeof err);
    free(list);
    return t ? api_send_text(c, 200, t) : api_error(c, 400, err);
}

/* How many of the latest events the list of event types looks at. */
#define EVENT_TYPES_SCAN 10000

enum MHD_Result api_event_types(api_req *q)
{
    if (!q->rt->conf->spool)
        return api_error(q->c, 501, "event types are read from the spool" NO_SPOOL);
    char err[512];
    char *t = spoolq_event_types(q->rt->conf->spool, q->org, EVENT_TYPES_SCAN, err, sizeof err);
    if (!t)
        return api_error(q->c, 500, err);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "event_types", cJSON_Parse(t));
    free(t);
    return api_send(q->c, 200, o);
}

enum MHD_Result api_endpoint_replay_dead(api_req *q)
{
    const char *id = q->params[0];
    if (!api_endpoint(q, id))
        return api_error(q->c, 404, "no endpoint with that id");
    if (!q->rt->conf->spool)
        return api_error(q->c, 501, "replay needs a spool" NO_SPOOL);
    char err[512];
    long n = spoolq_replay_endpoint(q->rt->conf->spool, id, err, sizeof err);
    if (n < 0)
        return api_error(q->c, 500, err);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "endpoint", id);
    cJSON_AddNumberToObject(o, "replayed", (double)n);
    return api_send(q->c, 200, o);
}

/*
 * The delivery of the path (a positive row id) if the caller may see it:
 * 1, 0 after a 404 with not_found, -1 after another answer.
 */
static int visible_delivery(api_req *q, long long *id, const char *not_found,
                            const char *no_spool, enum MHD_Result *rc)
{
    char *end;
    *id = strtoll(q->params[0], &end, 10);
    if (*end || *id <= 0) {
        *rc = api_error(q->c, 400, "the delivery id must be a positive integer");
        return -1;
    }
    const char *spool = q->rt->conf->spool;
    if (!spool) {
        *rc = api_error(q->c, 501, no_spool);
        return -1;
    }
    char endpoint[256], org[256], err[512];
    int found = spoolq_delivery_owner(spool, *id, endpoint, sizeof endpoint, org, sizeof org, err,
                                      sizeof err);
    if (found < 0) {
        *rc = api_error(q->c, 500, err);
        return -1;
    }
    if (found && q->org) {
        cJSON *mine = org_endpoints(q);
        found = !strcmp(org, q->org) && mine && own_endpoint(q, mine, endpoint);
        cJSON_Delete(mine);
    }
    if (!found)
        *rc = api_error(q->c, 404, not_found);
    return found;
}

enum MHD_Result api_delivery_attempts(api_req *q)
{
    long long id;
    enum MHD_Result rc;
    if (visible_delivery(q, &id, "no delivery with that id",
                         "attempts are read from the spool" NO_SPOOL, &rc) != 1)
        return rc;
    long limit = api_arg_long(q->c, "limit", 100, 1, 10000);
    long after = api_arg_long(q->c, "after", 0, 0, LONG_MAX);
    if (limit < 0 || after < 0)
        return api_error(q->c, 400, "limit must be 1-10000 and after an attempt id >= 0");
    char err[512];
    char *t = spoolq_attempts(q->rt->conf->spool, id, after, limit, err, sizeof err);
    return t ? api_send_text(q->c, 200, t) : api_error(q->c, 500, err);
}

enum MHD_Result api_delivery_replay(api_req *q)
{
    long long id;
    enum MHD_Result rc;
    if (visible_delivery(q, &id, "no dead delivery with that id", "replay needs a spool" NO_SPOOL,
                         &rc) != 1)
        return rc;
    char err[512];
    int r = spoolq_replay_delivery(q->rt->conf->spool, id, err, sizeof err);
    if (r < 0)
        return api_error(q->c, 500, err);
    if (r == 0)
        return api_error(q->c, 404, "no dead delivery with that id");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "replayed", (double)id);
    return api_send(q->c, 200, o);
}

enum MHD_Result api_events(api_req *q)
{
    struct MHD_Connection *c = q->c;
    long limit = api_arg_long(c, "limit", 100, 1, 1000);
    long after = api_arg_long(c, "after", 0, 0, LONG_MAX);
    long before = api_arg_long(c, "before", 0, 0, LONG_MAX);
    const char *order = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "order");
    if (limit < 0 || after < 0)
        return api_error(c, 400, "limit must be 1-1000 and after a cursor >= 0");
    if (before < 0)
        return api_error(c, 400, "before must be a cursor >= 0");
    if (order && strcmp(order, "asc") && strcmp(order, "desc"))
        return api_error(c, 400, "order must be asc (after the cursor) or desc (before it)");
    if (!q->rt->conf->spool)
        return api_error(c, 501, "the event feed reads the spool" NO_SPOOL);
    const char *org = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "org_id");
    if (q->org && org && strcmp(org, q->org))
        return api_error(c, 404, "no such org");
    char err[512];
    const char *scope = q->org ? q->org : org;
    char *t = order && !strcmp(order, "desc")
                  ? spoolq_events_before(q->rt->conf->spool, before, limit, scope, err, sizeof err)
                  : spoolq_events_after(q->rt->conf->spool, after, limit, scope, err, sizeof err);
    return t ? api_send_text(c, 200, t) : api_error(c, 500, err);
}
