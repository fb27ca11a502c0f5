/*
 * api_tokens.c - per-org API tokens: POST/GET/DELETE /api/v1/tokens (the
 * admin token only), and the lookup that turns a bearer token into its org.
 *
 * A token is "syt_" and 32 random bytes (base64url); the store keeps only
 * its SHA-256, so a copy of the spool file opens nothing. The lookup is by
 * hash: how long it takes tells nothing about the token's bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "admin_routes.h"
#include "clock.h"
#include "epset.h"
#include "log.h"
#include "units.h"

#define TOKEN_PREFIX "syt_"
#define TOKEN_BYTES 32
#define NO_STORE "tokens are stored in the spool"

static void hash_of(const char *token, unsigned char out[EPSTORE_HASH_LEN])
{
    SHA256((const unsigned char *)token, strlen(token), out);
}

int api_token_org(sy_epstore *store, const char *token, char *org, size_t orglen)
{
    if (strncmp(token, TOKEN_PREFIX, strlen(TOKEN_PREFIX)))
        return 0;
    unsigned char h[EPSTORE_HASH_LEN];
    hash_of(token, h);
    epstore_token t;
    char err[512];
    int rc = epstore_token_find(store, h, &t, err, sizeof err);
    if (rc < 0) {
        log_fields_limited(SY_LOG_ERROR, "org token lookup failed", LOG_S("error", err));
        return -1;
    }
    if (rc == 0)
        return 0;
    int live = !t.expires_ms || t.expires_ms > wall_ms();
    if (live)
        snprintf(org, orglen, "%s", t.org_id);
    epstore_token_clear(&t);
    return live;
}

/* "syt_" + base64url of random bytes (no padding), and "tok_" + 16 hex digits. */
static int new_token(char *token, size_t tlen, char *id, size_t idlen)
{
    unsigned char rid[8];
    if (api_random_text(TOKEN_PREFIX, TOKEN_BYTES, token, tlen) != 0 ||
        RAND_bytes(rid, sizeof rid) != 1)
        return -1;
    int n = snprintf(id, idlen, "tok_");
    for (size_t i = 0; i < sizeof rid; i++)
        n += snprintf(id + n, idlen - (size_t)n, "%02x", rid[i]);
    return 0;
}

static cJSON *token_json(const epstore_token *t)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", t->id);
    cJSON_AddStringToObject(o, "org_id", t->org_id);
    cJSON_AddStringToObject(o, "name", t->name);
    cJSON_AddItemToObject(o, "created_at", epset_time_json(t->created_ms));
    cJSON_AddItemToObject(o, "expires_at", epset_time_json(t->expires_ms));
    return o;
}

/* Reads {"org_id", "name", "expires"} into t; 0, or -1 after answering 400. */
static int token_body(api_req *q, epstore_token *t, enum MHD_Result *rc)
{
    const char *bad = NULL, *why = NULL;
    int64_t now = wall_ms(), ttl = 0;
    t->name = "";
    if (!cJSON_IsObject(q->body)) {
        *rc = api_error(q->c, 400, "the body must be a JSON object: {\"org_id\": \"acme\"}");
        return -1;
    }
    for (const cJSON *m = q->body->child; m && !bad; m = m->next) {
        if (!strcmp(m->string, "org_id")) {
            if (!cJSON_IsString(m) || !api_printable(m->valuestring))
                bad = "org_id", why = "expected the org's id: 1-128 printable characters";
            else
                t->org_id = m->valuestring;
        } else if (!strcmp(m->string, "name")) {
            if (!cJSON_IsString(m) || (*m->valuestring && !api_printable(m->valuestring)))
                bad = "name", why = "expected a name of at most 128 printable characters";
            else
                t->name = m->valuestring;
        } else if (!strcmp(m->string, "expires")) {
            if (!cJSON_IsNull(m) && (!cJSON_IsString(m) ||
                                     units_parse_duration(m->valuestring, &ttl) != 0 || ttl <= 0))
                bad = "expires", why = "expected a duration like \"90d\" or \"12h\", or null "
                                       "for never";
        } else {
            bad = m->string, why = "unknown key (expected org_id, name, expires)";
        }
    }
    if (!bad && !t->org_id)
        bad = "org_id", why = "a token belongs to one org: give org_id";
    if (bad) {
        *rc = api_error_at(q->c, 400, why, bad);
        return -1;
    }
    t->created_ms = now;
    t->expires_ms = ttl ? (ttl > INT64_MAX - now ? INT64_MAX : now + ttl) : 0;
    return 0;
}

int api_token_issue(sy_epstore *store, epstore_token *t, char *token, size_t tlen, char *id,
                    size_t idlen)
{
    unsigned char h[EPSTORE_HASH_LEN];
    char err[512];
    if (new_token(token, tlen, id, idlen) != 0) {
        log_fields(SY_LOG_ERROR, "org token not made", LOG_S("error", "no random bytes"));
        return -1;
    }
    t->id = id;
    hash_of(token, h);
    if (epstore_token_put(store, t, h, err, sizeof err) != 0) {
        explicit_bzero(token, tlen);
        log_fields(SY_LOG_ERROR, "org token not stored", LOG_S("error", err));
        return -1;
    }
    log_fields(SY_LOG_INFO, "org token created", LOG_S("token", id), LOG_S("org", t->org_id));
    return 0;
}

enum MHD_Result api_token_create(api_req *q)
{
    sy_epstore *store = reloader_store(q->rl);
    if (!store)
        return api_no_epstore(q, NO_STORE);
    epstore_token t = {0};
    enum MHD_Result rc;
    if (token_body(q, &t, &rc) != 0)
        return rc;
    char token[64], id[40];
    if (api_token_issue(store, &t, token, sizeof token, id, sizeof id) != 0)
        return api_error(q->c, 500, "the token store failed (the daemon's log says why)");
    cJSON *o = token_json(&t);
    cJSON_AddStringToObject(o, "token", token); /* shown this once; only its hash is kept */
    explicit_bzero(token, sizeof token);
    return api_send(q->c, 201, o);
}

enum MHD_Result api_tokens_list(api_req *q)
{
    sy_epstore *store = reloader_store(q->rl);
    if (!store)
        return api_no_epstore(q, NO_STORE);
    epstore_token *v;
    char err[512];
    long n = epstore_token_list(store, &v, err, sizeof err);
    if (n < 0)
        return api_error(q->c, 500, err);
    cJSON *arr = cJSON_CreateArray();
    int64_t now = wall_ms();
    for (long i = 0; i < n; i++) {
        cJSON *o = token_json(&v[i]);
        cJSON_AddBoolToObject(o, "expired", v[i].expires_ms && v[i].expires_ms <= now);
        cJSON_AddItemToArray(arr, o);
        epstore_token_clear(&v[i]);
    }
    free(v);
    return api_send(q->c, 200, arr);
}

enum MHD_Result api_token_delete(api_req *q)
{
    sy_epstore *store = reloader_store(q->rl);
    if (!store)
        return api_no_epstore(q, NO_STORE);
    char err[512];
    int rc = epstore_token_delete(store, q->params[0], err, sizeof err);
    if (rc < 0)
        return api_error(q->c, 500, err);
    if (rc == 0)
        return api_error(q->c, 404, "no token with that id");
    log_fields(SY_LOG_INFO, "org token revoked", LOG_S("token", q->params[0]));
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", q->params[0]);
    cJSON_AddBoolToObject(o, "deleted", 1);
    return api_send(q->c, 200, o);
}
