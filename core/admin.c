/*
 * admin.c - the admin HTTP API on libmicrohttpd: the server, request
 * bodies, who is calling (the admin token, or an org token and its org),
 * and the one table of routes; the routes themselves are in api_*.c.
 *
 * libmicrohttpd runs its own polling thread; handlers read counters
 * (atomics), take a shard's endpoint-table lock briefly, or open their own
 * spool connection. An endpoint change waits for the main thread to apply
 * it (reloader.h); the main thread never waits for this one.
 */
#include "admin.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <cjson/cJSON.h>
#include <microhttpd.h>

#include "admin_routes.h"
#include "envelope.h"
#include "jsonscan.h"
#include "log.h"
#include "metrics.h"
#include "stats.h"
#include "portal.h"

struct sy_admin {
    struct MHD_Daemon *mhd;
    sy_runtime *rt;      /* the request's: a reference taken in handle() */
    sy_pipeline *pl;
    sy_reloader *rl;
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
/* The routes: the whole /api/v1, in the order the OpenAPI document lists them. */
const api_route admin_routes[] = {
    {"GET", "/api/v1/endpoints", api_endpoints_list, 0},
    {"POST", "/api/v1/endpoints", api_endpoint_create, ROUTE_BODY},
    {"GET", "/api/v1/endpoints/{id}", api_endpoint_get, 0},
    {"PUT", "/api/v1/endpoints/{id}", api_endpoint_put, ROUTE_BODY},
    {"PATCH", "/api/v1/endpoints/{id}", api_endpoint_patch, ROUTE_BODY},
    {"DELETE", "/api/v1/endpoints/{id}", api_endpoint_delete, 0},
    {"GET", "/api/v1/endpoints/{id}/stats", api_endpoint_stats, 0},
    {"POST", "/api/v1/endpoints/{id}/rotate-secret", api_endpoint_rotate, ROUTE_OPT_BODY},
    {"POST", "/api/v1/endpoints/{id}/test", api_endpoint_test, 0},
    {"POST", "/api/v1/endpoints/{id}/enable", api_endpoint_enable, 0},
    {"POST", "/api/v1/endpoints/{id}/replay-dead", api_endpoint_replay_dead, 0},
    {"POST", "/api/v1/filters/validate", api_filter_validate, ROUTE_BODY},
    {"GET", "/api/v1/deliveries", api_deliveries_list, 0},
    {"GET", "/api/v1/deliveries/{id}/attempts", api_delivery_attempts, 0},
    {"POST", "/api/v1/deliveries/{id}/replay", api_delivery_replay, 0},
    {"GET", "/api/v1/events", api_events, 0},
    {"GET", "/api/v1/event-types", api_event_types, 0},
    {"GET", "/api/v1/tokens", api_tokens_list, ROUTE_ADMIN},
    {"POST", "/api/v1/tokens", api_token_create, ROUTE_ADMIN | ROUTE_BODY},
    {"DELETE", "/api/v1/tokens/{id}", api_token_delete, ROUTE_ADMIN},
    {"POST", "/api/v1/portal-sessions", api_portal_session, ROUTE_ADMIN | ROUTE_BODY},
    {"POST", "/api/v1/portal-sessions/exchange", api_portal_exchange, ROUTE_PUBLIC | ROUTE_BODY},
    {"GET", "/api/v1/openapi.json", api_openapi, ROUTE_PUBLIC},
};
const size_t admin_nroutes = sizeof admin_routes / sizeof admin_routes[0];

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

/* ---- requests ------------------------------------------------------------------- */

/* What a connection collected of its request body. */
typedef struct conn {
    char *buf;
    size_t len, cap;
    int too_big;
} conn;

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    conn *k = *con_cls;
    if (k) {
        free(k->buf);
        free(k);
        *con_cls = NULL;
    }
}

/* Keeps up to API_BODY_MAX bytes; beyond that only remembers the body was too big. */
static void collect(conn *k, const char *data, size_t n)
{
    if (k->too_big || n > API_BODY_MAX - k->len) {
        k->too_big = 1;
        return;
    }
    if (k->len + n + 1 > k->cap) {
        size_t cap = k->cap ? k->cap : 4096;
        while (cap < k->len + n + 1)
            cap *= 2;
        char *nb = realloc(k->buf, cap);
        if (!nb) {
            k->too_big = 1;
            return;
        }
        k->buf = nb;
        k->cap = cap;
    }
    memcpy(k->buf + k->len, data, n);
    k->len += n;
    k->buf[k->len] = '\0';
}

/*
 * 1 when the request says its body is JSON: application/json, or
 * application/merge-patch+json (RFC 7396's own type), parameters allowed.
 */
static int json_type(struct MHD_Connection *c)
{
    static const char *const types[] = {"application/json", "application/merge-patch+json"};
    const char *t = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    for (size_t i = 0; t && i < sizeof types / sizeof types[0]; i++) {
        size_t n = strlen(types[i]);
        if (!strncasecmp(t, types[i], n) && (t[n] == '\0' || t[n] == ';' || t[n] == ' '))
            return 1;
    }
    return 0;
}

/*
 * The body as the route takes it: parsed into q->body, or an answer (415,
 * 400) in *rc. 0 to go on, -1 answered. The JSON must be strict (RFC 8259,
 * UTF-8, no NUL), as config files and events are.
 */
static int read_body(const api_route *r, conn *k, api_req *q, enum MHD_Result *rc)
{
    struct MHD_Connection *c = q->c;
    if (!(r->flags & (ROUTE_BODY | ROUTE_OPT_BODY)))
        return 0; /* a route without a body ignores one (`Content-Length: 0` posts) */
    if (!k->len) {
        if (!(r->flags & ROUTE_BODY))
            return 0;
        *rc = api_error(c, 400, "this request takes a JSON body");
        return -1;
    }
    if (!json_type(c)) {
        *rc = api_error(c, 415, "send the body as Content-Type: application/json");
        return -1;
    }
    int nul = 0;
    js_result *scan = malloc(sizeof *scan);
    int bad = !scan || envelope_utf8_bad(k->buf, k->len, &nul) != (size_t)-1 ||
              js_scan(k->buf, k->len, 64, scan) != 0 || config_find_nul(k->buf, k->len);
    free(scan);
    if (!bad && !(q->body = cJSON_ParseWithLength(k->buf, k->len)))
        bad = 1;
    if (bad) {
        *rc = api_error(c, 400, "the body is not valid JSON (UTF-8, at most 64 levels deep, no "
                                "NUL in strings)");
        return -1;
    }
    return 0;
}

/* 1 when path matches the route's pattern; its {id}s go to params. */
static int match(const char *pattern, const char *path, char params[2][256])
{
    int np = 0;
    while (*pattern && *path) {
        if (!strncmp(pattern, "{id}", 4)) {
            size_t n = strcspn(path, "/");
            if (n == 0 || n >= sizeof params[0] || np == 2)
                return 0;
            memcpy(params[np], path, n);
            params[np++][n] = '\0';
            path += n;
            pattern += 4;
            continue;
        }
        if (*pattern++ != *path++)
            return 0;
    }
    return !*pattern && !*path;
}

/* The caller's scope from the Authorization header: 0 (q->org set or NULL), -1 refused. */
static int authenticate(sy_admin *a, api_req *q)
{
    const char *token = a->rt->conf->admin_token;
    const char *h = MHD_lookup_connection_value(q->c, MHD_HEADER_KIND, "Authorization");
    if (!token || !h || strncasecmp(h, "Bearer ", 7) != 0)
        return -1;
    if (admin_token_equal(h + 7, token)) {
        q->org = NULL;
        return 0;
    }
    sy_epstore *store = reloader_store(a->rl);
    if (store && api_token_org(store, h + 7, q->org_buf, sizeof q->org_buf) == 1) {
        q->org = q->org_buf;
        return 0;
    }
    return -1;
}

static enum MHD_Result api(sy_admin *a, struct MHD_Connection *c, const char *url,
                           const char *method, conn *k)
{
    api_req q = {.c = c, .rt = a->rt, .pl = a->pl, .rl = a->rl, .has_store = a->has_store};
    q.store = reader(a);
    q.store_err = reader_error(a);
    const api_route *r = NULL;
    char allow[64] = "";
    for (size_t i = 0; i < admin_nroutes; i++) {
        char params[2][256];
        if (!match(admin_routes[i].pattern, url, params))
            continue;
        if (!strcmp(admin_routes[i].method, method)) {
            r = &admin_routes[i];
            memcpy(q.params, params, sizeof params);
        }
        size_t l = strlen(allow);
        snprintf(allow + l, sizeof allow - l, "%s%s", l ? ", " : "", admin_routes[i].method);
    }
    if (!(r && (r->flags & ROUTE_PUBLIC))) {
        if (!a->rt->conf->admin_token)
            return api_error(c, 401, "the API is off: set core.admin.token or token_file");
        if (authenticate(a, &q) != 0)
            return api_error(c, 401, "missing or wrong bearer token");
    }
    /* Admin-only routes do not exist for an org token. */
    if (!allow[0] || (r && (r->flags & ROUTE_ADMIN) && q.org))
        return api_error(c, 404, "no such API path");
    if (!r)
        return api_not_allowed(c, allow);
    if (k->too_big)
        return api_error(c, 413, "the body is larger than 1 MiB");
    enum MHD_Result rc;
    if (read_body(r, k, &q, &rc) != 0)
        return rc;
    rc = r->fn(&q);
    cJSON_Delete(q.body);
    return rc;
}

static enum MHD_Result route(sy_admin *a, struct MHD_Connection *c, const char *url,
                             const char *method, conn *k);

/*
 * libmicrohttpd calls this on its one polling thread: once with the
 * headers, once per piece of body, once at the end. Each request works on
 * the runtime current when it ended, referenced for the request (a reload
 * never waits for it, nor it for a reload).
 */
static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls)
{
    sy_admin *a = cls;
    (void)version;
    if (!*con_cls) {
        conn *k = calloc(1, sizeof *k);
        if (!k)
            return MHD_NO;
        *con_cls = k;
        /* A body announced too big is refused before it is read. */
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > API_BODY_MAX)
            k->too_big = 1;
        return MHD_YES;
    }
    conn *k = *con_cls;
    if (*upload_size) {
        collect(k, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    a->rt = runtime_current();
    if (!a->rt)
        return api_reply(c, 503, "text/plain", "stopping\n");
    enum MHD_Result rc = route(a, c, url, method, k);
    runtime_unref(a->rt);
    a->rt = NULL;
    return rc;
}

static enum MHD_Result route(sy_admin *a, struct MHD_Connection *c, const char *url,
                             const char *method, conn *k)
{
    int get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    if ((!strcmp(url, "/metrics") || !strcmp(url, "/healthz") || !strcmp(url, "/readyz")) && !get)
        return api_not_allowed(c, "GET");
    if (!strcmp(url, "/metrics")) {
        char *t = metrics_text(a->pl, a->rt, reader(a));
        if (!t)
            return api_error(c, 500, "out of memory");
        enum MHD_Result rc = api_reply(c, 200, "text/plain; version=0.0.4; charset=utf-8", t);
        free(t);
        return rc;
    }
    if (!strcmp(url, "/healthz"))
        return api_reply(c, 200, "text/plain", "ok\n");
    if (!strcmp(url, "/readyz"))
        return __atomic_load_n(&a->ready, __ATOMIC_ACQUIRE)
                   ? api_reply(c, 200, "text/plain", "ready\n")
                   : api_reply(c, 503, "text/plain", "not ready\n");
    if (!strncmp(url, "/api/v1/", 8))
        return api(a, c, url, method, k);
    if (!strncmp(url, "/portal", 7) && (!url[7] || url[7] == '/'))
        return portal_serve(c, a->rt->conf, url, method);
    return api_error(c, 404, "no such path (try /metrics, /healthz, /readyz, /api/v1/...)");
}

sy_admin *admin_start(const sy_conf *conf, sy_pipeline *pl, sy_reloader *rl, char *err,
                      size_t errlen)
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
    a->rl = rl;
    a->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, (uint16_t)port,
                              NULL, NULL, handle, a, MHD_OPTION_SOCK_ADDR, &sa,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
                              MHD_OPTION_CONNECTION_LIMIT, (unsigned)64,
                              MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_END);
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
