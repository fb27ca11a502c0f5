/*
 * admin.c - the admin HTTP API on libmicrohttpd.
 *
 * libmicrohttpd runs its own polling thread; every handler here only reads
 * counters (atomics), takes a shard's endpoint-table lock briefly, or opens
 * its own spool connection, so the API never stalls the pipeline.
 */
#include "admin.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <cjson/cJSON.h>
#include <microhttpd.h>

#include "log.h"
#include "metrics.h"
#include "stats.h"

struct sy_admin {
    struct MHD_Daemon *mhd;
    sy_runtime *rt;      /* the request's: a reference taken in handle() */
    sy_pipeline *pl;
    int ready; /* atomic */
    /* The store's read connection (libmicrohttpd's one thread uses it), opened on first use. */
    store_conf sc;
    int has_store;
    sy_store *rd;
    char rd_err[512];
};

/* The read connection, or NULL with the reason in a->rd_err. */
static sy_store *reader(sy_admin *a)
{
    if (!a->rd && a->has_store)
        a->rd = store_open(&a->sc, STORE_READER, a->rd_err, sizeof a->rd_err);
    return a->rd;
}

static const char *reader_error(sy_admin *a)
{
    return a->rd ? store_error(a->rd) : a->rd_err;
}

int admin_token_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    /* Walk the longer length every time so timing tells nothing. */
    size_t n = la > lb ? la : lb;
    unsigned char diff = (unsigned char)(la != lb);
    for (size_t i = 0; i < n; i++) {
        unsigned char x = i < la ? (unsigned char)a[i] : 0;
        unsigned char y = i < lb ? (unsigned char)b[i] : 0;
        diff |= (unsigned char)(x ^ y);
    }
    return diff == 0;
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type,
                             const char *body)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    if (status == 401)
        MHD_add_response_header(r, "WWW-Authenticate", "Bearer realm=\"switchyard\"");
    enum MHD_Result rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result json_error(struct MHD_Connection *c, unsigned status, const char *msg)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", msg);
    char *t = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    enum MHD_Result rc = reply(c, status, "application/json", t ? t : "{}");
    free(t);
    return rc;
}

/* 405 with the Allow header RFC 9110 asks for. */
static enum MHD_Result not_allowed(struct MHD_Connection *c, const char *allow)
{
    char msg[64];
    snprintf(msg, sizeof msg, "{\"error\":\"use %s\"}", allow);
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(msg), msg, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "application/json");
    MHD_add_response_header(r, "Allow", allow);
    enum MHD_Result rc = MHD_queue_response(c, 405, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result json_owned(struct MHD_Connection *c, unsigned status, char *text)
{
    if (!text)
        return json_error(c, 500, "out of memory");
    enum MHD_Result rc = reply(c, status, "application/json", text);
    free(text);
    return rc;
}

static int authorized(sy_admin *a, struct MHD_Connection *c)
{
    const char *token = a->rt->conf->admin_token;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (!token || !h || strncasecmp(h, "Bearer ", 7) != 0)
        return 0;
    return admin_token_equal(h + 7, token);
}

static long arg_long(struct MHD_Connection *c, const char *name, long def, long lo, long hi)
{
    const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
    if (!v || !*v)
        return def;
    char *end;
    long n = strtol(v, &end, 10);
    if (*end || n < lo || n > hi)
        return -1;
    return n;
}

static char *endpoints_json(sy_admin *a)
{
    /* With a spool, pending and dead are what the spool holds (they survive restarts). */
    store_ep_count *counts = NULL;
    long ncounts = -1;
    if (reader(a))
        ncounts = store_endpoint_counts(a->rd, &counts);
    ep_live *live;
    size_t nlive = pipeline_endpoint_snapshot(a->pl, &live);
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < a->rt->neps; i++) {
        const sy_endpoint *ep = &a->rt->eps[i];
        static const ep_live none;
        const ep_live *lv = pipeline_snapshot_find(live, nlive, ep->conf->id);
        if (!lv)
            lv = &none;
        cJSON *o = cJSON_CreateObject();
        uint64_t att = lv->st.attempts, ok = lv->st.delivered;
        uint64_t dead = lv->st.dead, routed = lv->st.routed;
        cJSON_AddStringToObject(o, "id", ep->conf->id);
        if (ep->conf->org_id)
            cJSON_AddStringToObject(o, "org_id", ep->conf->org_id);
        else
            cJSON_AddNullToObject(o, "org_id");
        cJSON_AddStringToObject(o, "sink", ep->inst->name);
        cJSON_AddStringToObject(o, "plugin", ep->inst->sink->name);
        cJSON_AddStringToObject(o, "state", !ep->conf->enabled ? "off"
                                            : lv->disabled       ? "disabled"
                                            : lv->breaker_open   ? "breaker_open"
                                                                 : "active");
        if (att)
            cJSON_AddNumberToObject(o, "success_rate", (double)ok / (double)att);
        else
            cJSON_AddNullToObject(o, "success_rate");
        cJSON_AddNumberToObject(o, "routed", (double)routed);
        cJSON_AddNumberToObject(o, "attempts", (double)att);
        cJSON_AddNumberToObject(o, "ok", (double)ok);
        double pending = routed > ok + dead ? (double)(routed - ok - dead) : 0.0;
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
    char *t = cJSON_PrintUnformatted(arr);
    cJSON_Delete(arr);
    return t;
}

static enum MHD_Result deliveries(sy_admin *a, struct MHD_Connection *c)
{
    const char *state = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "state");
    const char *endpoint = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "endpoint");
    long limit = arg_long(c, "limit", 100, 1, 10000), after = arg_long(c, "after", 0, 0, LONG_MAX);
    if (limit < 0 || after < 0)
        return json_error(c, 400, "limit must be 1-10000 and after a row id >= 0");
    if (!a->has_store)
        return json_error(c, 501, "deliveries are listed from the spool; this daemon runs with spool: null");
    if (!reader(a))
        return json_error(c, 503, reader_error(a));
    char *t = store_deliveries_json(a->rd, state, endpoint, after, limit);
    return t ? json_owned(c, 200, t) : json_error(c, 400, reader_error(a));
}

static enum MHD_Result replay(sy_admin *a, struct MHD_Connection *c, const char *id_text)
{
    char *end;
    long long id = strtoll(id_text, &end, 10);
    if (*end || id <= 0)
        return json_error(c, 400, "the delivery id must be a positive integer");
    if (!a->has_store)
        return json_error(c, 501, "replay needs a spool; this daemon runs with spool: null");
    int rc = reader(a) ? store_replay_delivery(a->rd, id) : -1;
    if (rc < 0)
        return json_error(c, 500, reader_error(a));
    if (rc == 0)
        return json_error(c, 404, "no dead delivery with that id");
    char body[96];
    snprintf(body, sizeof body, "{\"replayed\":%lld}", id);
    return reply(c, 200, "application/json", body);
}

static enum MHD_Result test_event(sy_admin *a, struct MHD_Connection *c, const char *id)
{
    char evid[64];
    int rc = pipeline_test_event(a->pl, id, evid, sizeof evid);
    if (rc == -1)
        return json_error(c, 404, "no endpoint with that id");
    if (rc == -3) {
        char msg[1024];
        snprintf(msg, sizeof msg, "endpoint %s is disabled: enable it first (POST "
                 "/api/v1/endpoints/%s/enable, or switchyard endpoint enable %s)", id, id, id);
        return json_error(c, 409, msg);
    }
    if (rc != 0)
        return json_error(c, 503, "cannot send a test event now (stopping, or out of memory)");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "event_id", evid);
    cJSON_AddStringToObject(o, "endpoint", id);
    char *t = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return json_owned(c, 202, t);
}

static enum MHD_Result enable(sy_admin *a, struct MHD_Connection *c, const char *id)
{
    if (pipeline_enable(a->pl, id) != 0)
        return json_error(c, 404, "no endpoint with that id");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "endpoint", id);
    cJSON_AddStringToObject(o, "state", "enabled");
    char *t = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return json_owned(c, 200, t);
}

static enum MHD_Result events(sy_admin *a, struct MHD_Connection *c)
{
    long limit = arg_long(c, "limit", 100, 1, 1000), after = arg_long(c, "after", 0, 0, LONG_MAX);
    if (limit < 0 || after < 0)
        return json_error(c, 400, "limit must be 1-1000 and after a cursor >= 0");
    if (!a->has_store)
        return json_error(c, 501, "the event feed reads the spool; this daemon runs with spool: null");
    const char *org = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "org_id");
    char *t = reader(a) ? store_events_json(a->rd, after, limit, org) : NULL;
    return t ? json_owned(c, 200, t) : json_error(c, 500, reader_error(a));
}

/* "<prefix><id><suffix>" with an id of 1-255 bytes and no '/': 1 and the id in out. */
static int sub_path(const char *p, const char *prefix, const char *suffix, char *out,
                    size_t outlen)
{
    size_t lp = strlen(prefix), ls = strlen(suffix), l = strlen(p);
    if (l <= lp + ls || strncmp(p, prefix, lp) || strcmp(p + l - ls, suffix))
        return 0;
    size_t n = l - lp - ls;
    if (n >= outlen || memchr(p + lp, '/', n))
        return 0;
    memcpy(out, p + lp, n);
    out[n] = '\0';
    return 1;
}

static enum MHD_Result api(sy_admin *a, struct MHD_Connection *c, const char *url,
                           const char *method)
{
    if (!a->rt->conf->admin_token)
        return json_error(c, 401, "the API is off: set core.admin.token or token_file");
    if (!authorized(a, c))
        return json_error(c, 401, "missing or wrong bearer token");
    int get = !strcmp(method, "GET"), post = !strcmp(method, "POST");
    const char *p = url + strlen("/api/v1/");
    char id[256];
    if (!strcmp(p, "endpoints"))
        return get ? json_owned(c, 200, endpoints_json(a)) : not_allowed(c, "GET");
    if (!strcmp(p, "deliveries"))
        return get ? deliveries(a, c) : not_allowed(c, "GET");
    if (!strcmp(p, "events"))
        return get ? events(a, c) : not_allowed(c, "GET");
    if (sub_path(p, "deliveries/", "/replay", id, sizeof id))
        return post ? replay(a, c, id) : not_allowed(c, "POST");
    if (sub_path(p, "endpoints/", "/test", id, sizeof id))
        return post ? test_event(a, c, id) : not_allowed(c, "POST");
    if (sub_path(p, "endpoints/", "/enable", id, sizeof id))
        return post ? enable(a, c, id) : not_allowed(c, "POST");
    return json_error(c, 404, "no such API path");
}

static enum MHD_Result route(sy_admin *a, struct MHD_Connection *c, const char *url,
                             const char *method);

/*
 * libmicrohttpd calls this on its one polling thread. Each request works on
 * the runtime current when it arrived, referenced for the request (a reload
 * never waits for it, nor it for a reload).
 */
static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls)
{
    sy_admin *a = cls;
    (void)version;
    (void)upload;
    /* First call per request: headers only. Bodies are ignored (no endpoint takes one). */
    if (!*con_cls) {
        static int marker;
        *con_cls = &marker;
        return MHD_YES;
    }
    if (*upload_size) {
        *upload_size = 0;
        return MHD_YES;
    }
    a->rt = runtime_current();
    if (!a->rt)
        return reply(c, 503, "text/plain", "stopping\n");
    enum MHD_Result rc = route(a, c, url, method);
    runtime_unref(a->rt);
    a->rt = NULL;
    return rc;
}

static enum MHD_Result route(sy_admin *a, struct MHD_Connection *c, const char *url,
                             const char *method)
{
    int get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    if ((!strcmp(url, "/metrics") || !strcmp(url, "/healthz") || !strcmp(url, "/readyz")) && !get)
        return not_allowed(c, "GET");
    if (!strcmp(url, "/metrics")) {
        char *t = metrics_text(a->pl, a->rt, reader(a));
        if (!t)
            return json_error(c, 500, "out of memory");
        enum MHD_Result rc = reply(c, 200, "text/plain; version=0.0.4; charset=utf-8", t);
        free(t);
        return rc;
    }
    if (!strcmp(url, "/healthz"))
        return reply(c, 200, "text/plain", "ok\n");
    if (!strcmp(url, "/readyz"))
        return __atomic_load_n(&a->ready, __ATOMIC_ACQUIRE)
                   ? reply(c, 200, "text/plain", "ready\n")
                   : reply(c, 503, "text/plain", "not ready\n");
    if (!strncmp(url, "/api/v1/", 8))
        return api(a, c, url, method);
    return json_error(c, 404, "no such path (try /metrics, /healthz, /readyz, /api/v1/...)");
}

sy_admin *admin_start(const sy_conf *conf, sy_pipeline *pl, char *err, size_t errlen)
{
    const char *listen = conf->admin_listen;
    const char *colon = strrchr(listen, ':');
    char host[128];
    size_t hl = (size_t)(colon - listen);
    if (hl >= sizeof host) {
        snprintf(err, errlen, "core.admin.listen: host too long");
        return NULL;
    }
    memcpy(host, listen, hl);
    host[hl] = '\0';
    long port = strtol(colon + 1, NULL, 10);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (port < 0 || port > 65535 || inet_pton(AF_INET, hl ? host : "127.0.0.1", &sa.sin_addr) != 1) {
        snprintf(err, errlen, "core.admin.listen: \"%s\" is not IPv4-ADDRESS:PORT", listen);
        return NULL;
    }
    sy_admin *a = calloc(1, sizeof *a);
    a->pl = pl;
    a->has_store = config_store(conf, &a->sc);
    a->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, (uint16_t)port,
                              NULL, NULL, handle, a, MHD_OPTION_SOCK_ADDR, &sa,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
                              MHD_OPTION_CONNECTION_LIMIT, (unsigned)64, MHD_OPTION_END);
    if (!a->mhd) {
        snprintf(err, errlen, "core.admin.listen: cannot listen on %s: %s", listen,
                 strerror(errno));
        free(a);
        return NULL;
    }
    if (!conf->admin_token)
        log_warn("admin API on %s without a token: /metrics and health only", listen);
    log_fields(SY_LOG_INFO, "admin listening", LOG_S("address", listen));
    return a;
}

void admin_set_ready(sy_admin *a, int ready)
{
    if (a)
        __atomic_store_n(&a->ready, ready, __ATOMIC_RELEASE);
}

void admin_stop(sy_admin *a)
{
    if (!a)
        return;
    MHD_stop_daemon(a->mhd);
    store_close(a->rd);
    free(a);
}
