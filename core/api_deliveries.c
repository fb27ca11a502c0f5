/*
 * api_deliveries.c - /api/v1/deliveries (by state, endpoint, event type
 * and time, either way of the row ids), one delivery's attempts, replay of
 * a dead one or of every dead one of an endpoint, the event feed
 * (/api/v1/events) and the event types an org has seen, each read from
 * the store (store.h) through the request's handle.
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
    const char *order = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "order");
    store_dlv_filter f = {
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
    enum MHD_Result rc;
    sy_store *st = api_store(q, "deliveries are listed from the spool", &rc);
    if (!st)
        return rc;
    cJSON *mine = q->org ? org_endpoints(q) : NULL;
    if (q->org && !mine)
        return api_error(c, 500, "cannot read the endpoint store");
    if (f.endpoint && !own_endpoint(q, mine, f.endpoint)) {
        cJSON_Delete(mine);
        return api_error(c, 404, "no endpoint with that id");
    }
    char *list = mine ? cJSON_PrintUnformatted(mine) : NULL;
    cJSON_Delete(mine);
    store_scope scope = {q->org, list};
    char *t = store_deliveries_json(st, &f, q->org ? &scope : NULL);
    free(list);
    return t ? api_send_text(c, 200, t) : api_error(c, 400, store_error(st));
}

/* How many of the latest events the list of event types looks at. */
#define EVENT_TYPES_SCAN 10000

enum MHD_Result api_event_types(api_req *q)
{
    enum MHD_Result rc;
    sy_store *st = api_store(q, "event types are read from the spool", &rc);
    if (!st)
        return rc;
    char *t = store_event_types_json(st, q->org, EVENT_TYPES_SCAN);
    if (!t)
        return api_error(q->c, 500, store_error(st));
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
    enum MHD_Result rc;
    sy_store *st = api_store(q, "replay needs a spool", &rc);
    if (!st)
        return rc;
    dead_filter all = {.endpoint = id};
    long n = store_replay(st, &all);
    if (n < 0)
        return api_error(q->c, 500, store_error(st));
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
    sy_store *st = api_store(q, no_spool, rc);
    if (!st)
        return -1;
    char endpoint[256], org[256];
    int found = store_delivery_owner(st, *id, endpoint, sizeof endpoint, org, sizeof org);
    if (found < 0) {
        *rc = api_error(q->c, 500, store_error(st));
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
                         "attempts are read from the spool", &rc) != 1)
        return rc;
    long limit = api_arg_long(q->c, "limit", 100, 1, 10000);
    long after = api_arg_long(q->c, "after", 0, 0, LONG_MAX);
    if (limit < 0 || after < 0)
        return api_error(q->c, 400, "limit must be 1-10000 and after an attempt id >= 0");
    char *t = store_attempts_json(q->store, id, after, limit);
    return t ? api_send_text(q->c, 200, t) : api_error(q->c, 500, store_error(q->store));
}

enum MHD_Result api_delivery_replay(api_req *q)
{
    long long id;
    enum MHD_Result rc;
    if (visible_delivery(q, &id, "no dead delivery with that id", "replay needs a spool",
                         &rc) != 1)
        return rc;
    int r = store_replay_delivery(q->store, id);
    if (r < 0)
        return api_error(q->c, 500, store_error(q->store));
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
    enum MHD_Result rc;
    sy_store *st = api_store(q, "the event feed reads the spool", &rc);
    if (!st)
        return rc;
    const char *org = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "org_id");
    if (q->org && org && strcmp(org, q->org))
        return api_error(c, 404, "no such org");
    int desc = order && !strcmp(order, "desc");
    char *t = store_events_json(st, desc ? before : after, desc, limit, q->org ? q->org : org);
    return t ? api_send_text(c, 200, t) : api_error(c, 500, store_error(st));
}
