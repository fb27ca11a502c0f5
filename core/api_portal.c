/*
 * api_portal.c - links into the customer portal (docs/PORTAL.md).
 *
 * POST /api/v1/portal-sessions (the admin token only) makes a one-time
 * code for one org and answers the portal's URL carrying it in the
 * fragment (browsers never send a fragment to a server, so the code stays
 * out of access logs and Referer headers). The page trades the code at
 * POST /api/v1/portal-sessions/exchange (no token) for an org token that
 * expires with the link: from then on the page is an org token's caller
 * like any other, so the portal's isolation is exactly the API's.
 *
 * Codes live in this process only (a restart voids the links not yet
 * opened, which a platform simply makes again) and only as their SHA-256.
 * A used or expired code is remembered until an hour after it expired, so
 * the page can say which of the two it was.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/sha.h>

#include "admin_routes.h"
#include "clock.h"
#include "epset.h"
#include "log.h"
#include "units.h"

#define CODE_PREFIX "syp_"
#define CODE_BYTES 32
#define TTL_DEFAULT_MS (3600 * 1000LL)
#define TTL_MAX_MS (7 * 24 * 3600 * 1000LL)
#define KEEP_AFTER_MS (3600 * 1000LL) /* a dead code still explains itself this long */
#define CODES_MAX 10000               /* links not yet opened, at most */

typedef struct portal_code {
    unsigned char hash[SHA256_DIGEST_LENGTH];
    char org[160];
    int64_t created_ms, expires_ms;
    int used;
} portal_code;

static pthread_mutex_t codes_mu = PTHREAD_MUTEX_INITIALIZER;
static portal_code *codes;
static size_t ncodes, capcodes;

/* Drops codes dead for longer than KEEP_AFTER_MS. Under codes_mu. */
static void prune(int64_t now)
{
    size_t w = 0;
    for (size_t i = 0; i < ncodes; i++)
        if (codes[i].expires_ms + KEEP_AFTER_MS > now)
            codes[w++] = codes[i];
    ncodes = w;
}

/* Remembers a code: 0, or -1 when too many are open or memory is short. */
static int remember(const portal_code *pc)
{
    int rc = -1;
    pthread_mutex_lock(&codes_mu);
    prune(pc->created_ms);
    if (ncodes < CODES_MAX) {
        if (ncodes == capcodes) {
            size_t cap = capcodes ? capcodes * 2 : 64;
            portal_code *m = realloc(codes, cap * sizeof *m);
            if (m) {
                codes = m;
                capcodes = cap;
            }
        }
        if (ncodes < capcodes) {
            codes[ncodes++] = *pc;
            rc = 0;
        }
    }
    pthread_mutex_unlock(&codes_mu);
    return rc;
}

typedef enum { CODE_UNKNOWN, CODE_USED, CODE_EXPIRED, CODE_OK } code_state;

/* Looks a code up and, when it is good, uses it up: *out is its copy. */
static code_state take(const char *code, int64_t now, portal_code *out)
{
    unsigned char h[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)code, strlen(code), h);
    code_state st = CODE_UNKNOWN;
    pthread_mutex_lock(&codes_mu);
    for (size_t i = 0; i < ncodes; i++) {
        if (memcmp(codes[i].hash, h, sizeof h))
            continue;
        if (codes[i].used)
            st = CODE_USED;
        else if (codes[i].expires_ms <= now)
            st = CODE_EXPIRED;
        else {
            codes[i].used = 1;
            *out = codes[i];
            st = CODE_OK;
        }
        break;
    }
    pthread_mutex_unlock(&codes_mu);
    return st;
}

/* Gives a code back when the token for it could not be made: the link works again. */
static void untake(const portal_code *pc)
{
    pthread_mutex_lock(&codes_mu);
    for (size_t i = 0; i < ncodes; i++)
        if (!memcmp(codes[i].hash, pc->hash, sizeof pc->hash))
            codes[i].used = 0;
    pthread_mutex_unlock(&codes_mu);
}

/* Reads {"org_id", "ttl"}: 0, or -1 after answering 400. */
static int session_body(api_req *q, const char **org, int64_t *ttl, enum MHD_Result *rc)
{
    const char *bad = NULL, *why = NULL;
    *org = NULL;
    *ttl = TTL_DEFAULT_MS;
    if (!cJSON_IsObject(q->body)) {
        *rc = api_error(q->c, 400, "the body must be a JSON object: {\"org_id\": \"acme\"}");
        return -1;
    }
    for (const cJSON *m = q->body->child; m && !bad; m = m->next) {
        if (!strcmp(m->string, "org_id")) {
            if (!cJSON_IsString(m) || !api_printable(m->valuestring))
                bad = "org_id", why = "expected the org's id: 1-128 printable characters";
            else
                *org = m->valuestring;
        } else if (!strcmp(m->string, "ttl")) {
            if (!cJSON_IsString(m) || units_parse_duration(m->valuestring, ttl) != 0 ||
                *ttl < 1000 || *ttl > TTL_MAX_MS)
                bad = "ttl", why = "expected a duration from \"1s\" to \"7d\", like \"1h\"";
        } else {
            bad = m->string, why = "unknown key (expected org_id, ttl)";
        }
    }
    if (!bad && !*org)
        bad = "org_id", why = "a portal session shows one org: give org_id";
    if (bad) {
        *rc = api_error_at(q->c, 400, why, bad);
        return -1;
    }
    return 0;
}

/* Where links point: core.admin.portal_url, else http:// + the request's Host + /portal/. */
static int portal_base(api_req *q, char *out, size_t outlen)
{
    const char *url = q->rt->conf->portal_url;
    if (url) {
        snprintf(out, outlen, "%s", url);
        return 0;
    }
    const char *host = MHD_lookup_connection_value(q->c, MHD_HEADER_KIND, "Host");
    /* A Host goes into the answer: letters, digits and what a host:port holds only. */
    if (!host || !*host || strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                        "0123456789.-:[]") != strlen(host))
        return -1;
    snprintf(out, outlen, "http://%s/portal/", host);
    return 0;
}

enum MHD_Result api_portal_session(api_req *q)
{
    if (!reloader_store(q->rl))
        return api_no_epstore(q, "portal sessions are org tokens, stored in the spool");
    const char *org;
    int64_t ttl;
    enum MHD_Result rc;
    if (session_body(q, &org, &ttl, &rc) != 0)
        return rc;
    char base[512];
    if (portal_base(q, base, sizeof base) != 0)
        return api_error(q->c, 400, "no usable Host header to build the link from: set "
                                    "core.admin.portal_url");
    portal_code pc = {.created_ms = wall_ms()};
    pc.expires_ms = pc.created_ms + ttl;
    snprintf(pc.org, sizeof pc.org, "%s", org);
    char code[64];
    if (api_random_text(CODE_PREFIX, CODE_BYTES, code, sizeof code) != 0)
        return api_error(q->c, 500, "no random bytes for a portal link");
    SHA256((const unsigned char *)code, strlen(code), pc.hash);
    if (remember(&pc) != 0) {
        explicit_bzero(code, sizeof code);
        return api_error(q->c, 503, "too many portal links not yet opened: try again later");
    }
    size_t n = strlen(base) + strlen(code) + 16;
    char *url = malloc(n);
    if (!url) {
        explicit_bzero(code, sizeof code);
        return api_error(q->c, 500, "out of memory");
    }
    snprintf(url, n, "%s#code=%s", base, code);
    explicit_bzero(code, sizeof code);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "org_id", org);
    cJSON_AddStringToObject(o, "url", url);
    cJSON_AddItemToObject(o, "expires_at", epset_time_json(pc.expires_ms));
    explicit_bzero(url, n);
    free(url);
    log_fields(SY_LOG_INFO, "portal link made", LOG_S("org", org));
    return api_send(q->c, 201, o);
}

enum MHD_Result api_portal_exchange(api_req *q)
{
    sy_epstore *store = reloader_store(q->rl);
    if (!store)
        return api_no_epstore(q, "portal sessions are org tokens, stored in the spool");
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(q->body, "code");
    if (!cJSON_IsObject(q->body) || !cJSON_IsString(code) || cJSON_GetArraySize(q->body) != 1)
        return api_error_at(q->c, 400, "expected {\"code\": \"syp_...\"}", "code");
    portal_code pc;
    int64_t now = wall_ms();
    switch (take(code->valuestring, now, &pc)) {
    case CODE_UNKNOWN:
        return api_error(q->c, 404, "this portal link is not valid: ask for a new one");
    case CODE_USED:
        return api_error(q->c, 410, "this portal link was already used: ask for a new one");
    case CODE_EXPIRED:
        return api_error(q->c, 410, "this portal link has expired: ask for a new one");
    case CODE_OK:
        break;
    }
    epstore_token t = {.org_id = pc.org, .name = "portal session", .created_ms = now,
                       .expires_ms = pc.expires_ms};
    char token[64], id[40];
    if (api_token_issue(store, &t, token, sizeof token, id, sizeof id) != 0) {
        untake(&pc);
        return api_error(q->c, 500, "the token store failed (the daemon's log says why)");
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "org_id", pc.org);
    cJSON_AddStringToObject(o, "token", token);
    cJSON_AddStringToObject(o, "token_id", id);
    cJSON_AddItemToObject(o, "expires_at", epset_time_json(pc.expires_ms));
    explicit_bzero(token, sizeof token);
    /* The sinks a customer's endpoint can use: the webhook instances. */
    cJSON *sinks = cJSON_AddArrayToObject(o, "sinks");
    for (size_t i = 0; i < q->rt->ninsts; i++)
        if (q->rt->insts[i].sink && !strcmp(q->rt->insts[i].sink->name, "webhook"))
            cJSON_AddItemToArray(sinks, cJSON_CreateString(q->rt->insts[i].name));
    return api_send(q->c, 200, o);
}
