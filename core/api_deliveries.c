/*
 * api_deliveries.c - /api/v1/deliveries (by state and endpoint), one
 * delivery's attempts, replay of a dead one, and the event feed
 * (/api/v1/events), each read from the spool through its own connection.
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

enum MHD_Result api_deliveries_list(api_req *q)
{
    struct MHD_Connection *c = q->c;
    const char *state = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "state");
    const char *endpoint = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "endpoint");
    long limit = api_arg_long(c, "limit", 100, 1, 10000);
    long after = api_arg_long(c, "after", 0, 0, LONG_MAX);
    if (limit < 0 || after < 0)
        return api_error(c, 400, "limit must be 1-10000 and after a row id >= 0");
    enum MHD_Result rc;
    sy_store *st = api_store(q, "deliveries are listed from the spool", &rc);
    if (!st)
        return rc;
    cJSON *mine = q->org ? org_endpoints(q) : NULL;
    if (q->org && !mine)
        return api_error(c, 500, "cannot read the endpoint store");
    if (endpoint && !own_endpoint(q, mine, endpoint)) {
        cJSON_Delete(mine);
        return api_error(c, 404, "no endpoint with that id");
    }
    char *list = mine ? cJSON_PrintUnformatted(mine) : NULL;
    cJSON_Delete(mine);
    store_scope scope = {q->org, list};
    char *t = store_deliveries_json(st, state, endpoint, after, limit, q->org ? &scope : NULL);
    free(list);
    return t ? api_send_text(c, 200, t) : api_error(c, 400, store_error(st));
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
    if (limit < 0 || after < 0)
        return api_error(c, 400, "limit must be 1-1000 and after a cursor >= 0");
    enum MHD_Result rc;
    sy_store *st = api_store(q, "the event feed reads the spool", &rc);
    if (!st)
        return rc;
    const char *org = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "org_id");
    if (q->org && org && strcmp(org, q->org))
        return api_error(c, 404, "no such org");
    char *t = store_events_json(st, after, limit, q->org ? q->org : org);
    return t ? api_send_text(c, 200, t) : api_error(c, 500, store_error(st));
}
