/*
 * epset.c - the API's endpoints in memory and the changes made to them
 * (see epset.h). Every change works on the caller's copy of the set; the
 * reloader keeps the copy only when a runtime built from it is valid, so
 * nothing here needs to undo anything.
 */
#include "epset.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>

#include "mergepatch.h"
#include "units.h"

/*
 * Endpoint keys that reach the daemon's host rather than the receiver: its
 * files, its network interfaces, its private networks. An API caller (a
 * customer, through an org token) must not choose them; the operator sets
 * them on the sink instance in the config files. Any `x_file` variant of
 * a secret is refused too (it names a file on the host).
 */
const char *const epset_host_keys[] = {"allow_private_networks", "source_address", "ca_file",
                                       "ca_path", "client_cert", "client_key", NULL};

#define SECRETS_KEY "secrets"
#define SECRET_BYTES 32

void epset_out_clear(epset_out *o)
{
    if (o->secret) {
        explicit_bzero(o->secret, strlen(o->secret));
        free(o->secret);
    }
    memset(o, 0, sizeof *o);
}

static int fail(epset_out *o, int status, const char *id, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Sets out's status, message and path (endpoints.ID[.key], or key alone without id). -1. */
static int fail(epset_out *o, int status, const char *id, const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(o->error, sizeof o->error, fmt, ap);
    va_end(ap);
    o->status = status;
    if (id && key)
        snprintf(o->path, sizeof o->path, "endpoints.%s.%s", id, key);
    else if (id)
        snprintf(o->path, sizeof o->path, "endpoints.%s", id);
    else
        snprintf(o->path, sizeof o->path, "%s", key ? key : "");
    return -1;
}

static int oom(epset_out *o)
{
    return fail(o, 500, NULL, NULL, "out of memory");
}

int epset_id_valid(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 128)
        return 0;
    for (const char *p = id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '_' || *p == '-'))
            return 0;
    return 1;
}

/* ---- the set ------------------------------------------------------------------ */

static void secret_free(epstore_secret *s)
{
    if (s->value) {
        explicit_bzero(s->value, strlen(s->value));
        free(s->value);
    }
}

static void ep_clear(epset_ep *e)
{
    for (size_t i = 0; i < e->nsecrets; i++)
        secret_free(&e->secrets[i]);
    free(e->secrets);
    free(e->id);
    free(e->org_id);
    cJSON_Delete(e->config);
    memset(e, 0, sizeof *e);
}

void epset_free(epset *s)
{
    for (size_t i = 0; i < s->n; i++)
        ep_clear(&s->v[i]);
    free(s->v);
    memset(s, 0, sizeof *s);
}

/* Where id is, or would go, in the sorted array. */
static size_t slot(const epset *s, const char *id, int *found)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(id, s->v[mid].id);
        if (!c) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    *found = 0;
    return lo;
}

epset_ep *epset_find(const epset *s, const char *id)
{
    int found;
    size_t i = slot(s, id, &found);
    return found ? &s->v[i] : NULL;
}

/* Puts e (taken over) in s, replacing the endpoint of its id. 0, or -1 when out of memory. */
static int put(epset *s, epset_ep *e)
{
    int found;
    size_t i = slot(s, e->id, &found);
    if (found) {
        ep_clear(&s->v[i]);
        s->v[i] = *e;
        return 0;
    }
    if (s->n == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 16;
        epset_ep *nv = realloc(s->v, ncap * sizeof *nv);
        if (!nv)
            return -1;
        s->v = nv;
        s->cap = ncap;
    }
    memmove(&s->v[i + 1], &s->v[i], (s->n - i) * sizeof *s->v);
    s->v[i] = *e;
    s->n++;
    return 0;
}

static int copy_secrets(epstore_secret **out, const epstore_secret *v, size_t n)
{
    *out = NULL;
    if (!n)
        return 0;
    if (!(*out = calloc(n, sizeof **out)))
        return -1;
    for (size_t i = 0; i < n; i++) {
        (*out)[i] = v[i];
        if (!((*out)[i].value = strdup(v[i].value))) {
            while (i--)
                secret_free(&(*out)[i]);
            free(*out);
            *out = NULL;
            return -1;
        }
    }
    return 0;
}

static int ep_copy(epset_ep *dst, const epset_ep *src)
{
    memset(dst, 0, sizeof *dst);
    dst->created_ms = src->created_ms;
    dst->updated_ms = src->updated_ms;
    if (!(dst->id = strdup(src->id)) || (src->org_id && !(dst->org_id = strdup(src->org_id))) ||
        !(dst->config = cJSON_Duplicate(src->config, 1)) ||
        copy_secrets(&dst->secrets, src->secrets, src->nsecrets) != 0) {
        ep_clear(dst);
        return -1;
    }
    dst->nsecrets = src->nsecrets;
    return 0;
}

int epset_clone(const epset *s, epset *out)
{
    memset(out, 0, sizeof *out);
    if (!s->n)
        return 0;
    if (!(out->v = calloc(s->n, sizeof *out->v)))
        return -1;
    out->cap = s->n;
    for (size_t i = 0; i < s->n; i++, out->n++)
        if (ep_copy(&out->v[i], &s->v[i]) != 0) {
            epset_free(out);
            return -1;
        }
    return 0;
}

int epset_load(epset *s, const epstore_endpoint *v, size_t n, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    for (size_t i = 0; i < n; i++) {
        epset_ep e = {.created_ms = v[i].created_ms, .updated_ms = v[i].updated_ms};
        e.config = cJSON_Parse(v[i].config);
        if (!cJSON_IsObject(e.config)) {
            snprintf(err, errlen, "endpoint %s in the store is not a JSON object", v[i].id);
            ep_clear(&e);
            epset_free(s);
            return -1;
        }
        int ok = (e.id = strdup(v[i].id)) && (!v[i].org_id || (e.org_id = strdup(v[i].org_id)))
                 && copy_secrets(&e.secrets, v[i].secrets, v[i].nsecrets) == 0;
        if (ok)
            e.nsecrets = v[i].nsecrets;
        if (!ok || put(s, &e) != 0) {
            snprintf(err, errlen, "out of memory loading the endpoint store");
            ep_clear(&e);
            epset_free(s);
            return -1;
        }
    }
    return 0;
}

/* The config with the values of its secrets: those live at now_ms, or all when now_ms is 0. */
static cJSON *with_secrets(const epset_ep *e, int64_t now_ms)
{
    cJSON *o = cJSON_Duplicate(e->config, 1);
    if (!o || !e->nsecrets)
        return o;
    cJSON *arr = cJSON_AddArrayToObject(o, SECRETS_KEY);
    for (size_t i = 0; arr && i < e->nsecrets; i++) {
        if (now_ms && e->secrets[i].expires_ms && e->secrets[i].expires_ms <= now_ms)
            continue;
        cJSON *str = cJSON_CreateString(e->secrets[i].value);
        if (!str || !cJSON_AddItemToArray(arr, str)) {
            cJSON_Delete(str);
            arr = NULL;
        }
    }
    if (!arr) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

cJSON *epset_json(const epset *s, int64_t now_ms)
{
    cJSON *all = cJSON_CreateObject();
    for (size_t i = 0; all && i < s->n; i++) {
        cJSON *o = with_secrets(&s->v[i], now_ms);
        if (!o || !cJSON_AddItemToObject(all, s->v[i].id, o)) {
            cJSON_Delete(o);
            cJSON_Delete(all);
            return NULL;
        }
    }
    return all;
}

int epset_to_store(const epset_ep *ep, epstore_endpoint *out)
{
    *out = (epstore_endpoint){.id = ep->id,
                              .org_id = ep->org_id,
                              .secrets = ep->secrets,
                              .nsecrets = ep->nsecrets,
                              .created_ms = ep->created_ms,
                              .updated_ms = ep->updated_ms};
    out->config = cJSON_PrintUnformatted(ep->config);
    return out->config ? 0 : -1;
}

void epset_secret_prefix(const char *secret, char *out, size_t len)
{
    /* "whsec_" and 4 characters of key material (24 of 256 bits) tell keys apart. */
    size_t n = strlen(secret) >= 30 ? 10 : 4;
    snprintf(out, len, "%.*s", (int)n, secret);
}

cJSON *epset_time_json(int64_t ms)
{
    char t[40];
    if (!ms)
        return cJSON_CreateNull();
    units_format_time(ms, t, sizeof t);
    return cJSON_CreateString(t);
}

cJSON *epset_meta_json(const epset *s)
{
    cJSON *all = cJSON_CreateObject();
    for (size_t i = 0; all && i < s->n; i++) {
        const epset_ep *e = &s->v[i];
        cJSON *o = cJSON_CreateObject(), *secs = cJSON_AddArrayToObject(o, SECRETS_KEY);
        for (size_t k = 0; secs && k < e->nsecrets; k++) {
            char prefix[16];
            epset_secret_prefix(e->secrets[k].value, prefix, sizeof prefix);
            cJSON *x = cJSON_CreateObject();
            cJSON_AddStringToObject(x, "prefix", prefix);
            cJSON_AddItemToObject(x, "expires_at", epset_time_json(e->secrets[k].expires_ms));
            cJSON_AddItemToArray(secs, x);
        }
        cJSON_AddItemToObject(o, "created_at", epset_time_json(e->created_ms));
        cJSON_AddItemToObject(o, "updated_at", epset_time_json(e->updated_ms));
        cJSON_AddItemToObject(all, e->id, o);
    }
    return all;
}

size_t epset_expire(epset *s, int64_t now_ms)
{
    size_t gone = 0;
    for (size_t i = 0; i < s->n; i++) {
        epset_ep *e = &s->v[i];
        size_t w = 0;
        for (size_t k = 0; k < e->nsecrets; k++) {
            if (e->secrets[k].expires_ms && e->secrets[k].expires_ms <= now_ms) {
                secret_free(&e->secrets[k]);
                gone++;
                continue;
            }
            e->secrets[w++] = e->secrets[k];
        }
        e->nsecrets = w;
    }
    return gone;
}

int64_t epset_next_expiry(const epset *s)
{
    int64_t next = 0;
    for (size_t i = 0; i < s->n; i++)
        for (size_t k = 0; k < s->v[i].nsecrets; k++) {
            int64_t x = s->v[i].secrets[k].expires_ms;
            if (x && (!next || x < next))
                next = x;
        }
    return next;
}

/* ---- changes ------------------------------------------------------------------ */

static int visible(const epset_ep *e, const epset_ctx *c)
{
    return e && (!c->org || (e->org_id && !strcmp(e->org_id, c->org)));
}

/* "whsec_" + base64 of SECRET_BYTES random bytes, malloc'd; NULL when no randomness. */
static char *new_secret(const epset_ctx *c)
{
    unsigned char raw[SECRET_BYTES];
    char *out = malloc(6 + 4 * ((SECRET_BYTES + 2) / 3) + 1);
    if (!out || c->random(raw, sizeof raw) != 0) {
        free(out);
        return NULL;
    }
    memcpy(out, "whsec_", 6);
    EVP_EncodeBlock((unsigned char *)out + 6, raw, sizeof raw);
    explicit_bzero(raw, sizeof raw);
    return out;
}

/* 1 when v is a non-empty array of strings (the only shape taken as secrets). */
static int secret_list(const cJSON *v)
{
    if (!cJSON_IsArray(v) || !v->child)
        return 0;
    for (const cJSON *x = v->child; x; x = x->next)
        if (!cJSON_IsString(x))
            return 0;
    return 1;
}

/*
 * The "id" and "source" a body may carry besides the endpoint's keys: id
 * the same as the path's (want; NULL for create), source "api" (what GET
 * shows). Both are removed from obj. 0, or -1 with out set.
 */
static int read_only_members(cJSON *obj, const char *want, epset_out *out)
{
    cJSON *id = cJSON_GetObjectItemCaseSensitive(obj, "id");
    if (id && want && (!cJSON_IsString(id) || strcmp(id->valuestring, want)))
        return fail(out, 400, NULL, "id", "the id of an endpoint cannot change (it is %s)", want);
    cJSON *src = cJSON_GetObjectItemCaseSensitive(obj, "source");
    if (src && (!cJSON_IsString(src) || strcmp(src->valuestring, "api")))
        return fail(out, 400, NULL, "source",
                    "an endpoint created through the API has source \"api\"");
    cJSON_DeleteItemFromObjectCaseSensitive(obj, "id");
    cJSON_DeleteItemFromObjectCaseSensitive(obj, "source");
    return 0;
}

/* org_id as given by the caller: an org token may only name its own org. */
static int check_org(const cJSON *given, const char *id, const epset_ctx *c, epset_out *out)
{
    const cJSON *org = cJSON_GetObjectItemCaseSensitive(given, "org_id");
    if (!c->org || !org)
        return 0;
    if (cJSON_IsString(org) && !strcmp(org->valuestring, c->org))
        return 0;
    return fail(out, 400, id, "org_id", "this token manages the endpoints of org \"%s\" only",
                c->org);
}

static int host_keys(const cJSON *cfg, const char *id, epset_out *out)
{
    for (const cJSON *m = cfg->child; m; m = m->next) {
        size_t l = strlen(m->string);
        if (l > 5 && !strcmp(m->string + l - 5, "_file"))
            return fail(out, 400, id, m->string,
                        "files on the daemon's host are for the config files; give the value "
                        "itself");
        for (const char *const *k = epset_host_keys; *k; k++)
            if (!strcmp(m->string, *k))
                return fail(out, 400, id, m->string,
                            "set on the sink instance in the config files, not through the API");
    }
    return 0;
}

/*
 * The secrets of the new version of an endpoint: those listed in values
 * (newest first), each keeping the creation and expiry it had in old when
 * it was there already (a PUT of the same secrets keeps a rotation going).
 */
static int merge_secrets(epset_ep *e, const cJSON *values, const epset_ep *old, int64_t now)
{
    size_t n = (size_t)cJSON_GetArraySize(values), k = 0;
    if (!(e->secrets = calloc(n, sizeof *e->secrets)))
        return -1;
    for (const cJSON *v = values->child; v; v = v->next, k++) {
        epstore_secret sec = {.created_ms = now};
        for (size_t j = 0; old && j < old->nsecrets; j++)
            if (!strcmp(old->secrets[j].value, v->valuestring))
                sec = old->secrets[j];
        if (!(e->secrets[k].value = strdup(v->valuestring)))
            return -1;
        e->secrets[k].created_ms = sec.created_ms;
        e->secrets[k].expires_ms = sec.expires_ms;
        e->nsecrets = k + 1;
    }
    return 0;
}

/*
 * The new version of endpoint id from cfg (taken over: the endpoint object
 * without id and source). given: the body or patch as the caller wrote it
 * (what it names is checked); secrets_given: cfg's "secrets" is the
 * caller's (not kept from old); old: the current version or NULL.
 */
static int build(epset *s, const char *id, cJSON *cfg, const cJSON *given, int secrets_given,
                 const epset_ep *old, const epset_ctx *c, epset_out *out)
{
    epset_ep e = {.config = cfg, .created_ms = old ? old->created_ms : c->now_ms,
                  .updated_ms = c->now_ms};
    snprintf(out->id, sizeof out->id, "%s", id);
    if (check_org(given, id, c, out) != 0 || host_keys(cfg, id, out) != 0) {
        ep_clear(&e);
        return -1;
    }
    /* An org token's endpoint is its org's (check_org let only that org through). */
    if (c->org && !cJSON_GetObjectItemCaseSensitive(cfg, "org_id") &&
        !cJSON_AddStringToObject(cfg, "org_id", c->org)) {
        ep_clear(&e);
        return oom(out);
    }
    const cJSON *sink = cJSON_GetObjectItemCaseSensitive(cfg, "sink");
    int takes = cJSON_IsString(sink) && c->takes_secrets(c->arg, sink->valuestring);
    cJSON *sec = cJSON_DetachItemFromObjectCaseSensitive(cfg, SECRETS_KEY);
    int ok = 1;
    if (secret_list(sec) && (secrets_given || takes)) {
        ok = merge_secrets(&e, sec, old, c->now_ms) == 0;
    } else if (sec && secrets_given) {
        /* Not a list of strings: the key table says what is wrong with it. */
        ok = cJSON_AddItemToObject(cfg, SECRETS_KEY, sec) != 0;
        sec = ok ? NULL : sec;
    }
    cJSON_Delete(sec);
    if (ok && !e.nsecrets && takes && !cJSON_GetObjectItemCaseSensitive(cfg, SECRETS_KEY)) {
        /* Created (or moved to a signing sink) without secrets: a fresh one, shown once. */
        char *fresh = new_secret(c);
        ok = fresh && (e.secrets = calloc(1, sizeof *e.secrets)) != NULL;
        if (ok) {
            e.secrets[0] = (epstore_secret){fresh, c->now_ms, 0};
            e.nsecrets = 1;
            ok = (out->secret = strdup(fresh)) != NULL;
        } else {
            free(fresh);
        }
    }
    const cJSON *org = cJSON_GetObjectItemCaseSensitive(cfg, "org_id");
    if (!ok || !(e.id = strdup(id)) ||
        (cJSON_IsString(org) && !(e.org_id = strdup(org->valuestring))) || put(s, &e) != 0) {
        ep_clear(&e);
        return oom(out);
    }
    return 0;
}

int epset_create(epset *s, const cJSON *body, const epset_ctx *c, epset_out *out)
{
    if (!cJSON_IsObject(body))
        return fail(out, 400, NULL, NULL, "the body must be a JSON object: an endpoint with "
                                          "its \"id\"");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(body, "id");
    if (!cJSON_IsString(id) || !epset_id_valid(id->valuestring))
        return fail(out, 400, NULL, "id", "give the endpoint's id: 1-128 letters, digits, "
                                          "'.', '_' or '-'");
    if (epset_find(s, id->valuestring))
        return fail(out, 409, NULL, "id", "an endpoint with id %s exists", id->valuestring);
    cJSON *cfg = cJSON_Duplicate(body, 1);
    if (!cfg)
        return oom(out);
    if (read_only_members(cfg, NULL, out) != 0) {
        cJSON_Delete(cfg);
        return -1;
    }
    return build(s, id->valuestring, cfg, body, 1, NULL, c, out);
}

/* The endpoint id as the caller may see it, or NULL with a 404 in out. */
static epset_ep *target(epset *s, const char *id, const epset_ctx *c, epset_out *out)
{
    epset_ep *e = epset_find(s, id);
    if (visible(e, c))
        return e;
    fail(out, 404, NULL, NULL, "no endpoint with that id");
    return NULL;
}

int epset_replace(epset *s, const char *id, const cJSON *body, const epset_ctx *c,
                  epset_out *out)
{
    epset_ep *old = target(s, id, c, out);
    if (!old)
        return -1;
    if (!cJSON_IsObject(body))
        return fail(out, 400, NULL, NULL, "the body must be a JSON object: the endpoint");
    cJSON *cfg = cJSON_Duplicate(body, 1);
    if (!cfg)
        return oom(out);
    if (read_only_members(cfg, id, out) != 0) {
        cJSON_Delete(cfg);
        return -1;
    }
    /* Secrets left out of a PUT keep their values and rotation (GET never shows them). */
    int given = cJSON_GetObjectItemCaseSensitive(cfg, SECRETS_KEY) != NULL;
    cJSON *kept = given ? NULL : cJSON_CreateArray();
    for (size_t k = 0; kept && k < old->nsecrets; k++)
        cJSON_AddItemToArray(kept, cJSON_CreateString(old->secrets[k].value));
    if (!given && (!kept || !cJSON_AddItemToObject(cfg, SECRETS_KEY, kept))) {
        cJSON_Delete(kept);
        cJSON_Delete(cfg);
        return oom(out);
    }
    /* old stays valid until build replaces it, after its last use. */
    return build(s, id, cfg, body, given, old, c, out);
}

int epset_patch(epset *s, const char *id, const cJSON *patch, const epset_ctx *c,
                epset_out *out)
{
    epset_ep *old = target(s, id, c, out);
    if (!old)
        return -1;
    if (!cJSON_IsObject(patch))
        return fail(out, 400, NULL, NULL, "a merge patch of an endpoint is a JSON object");
    cJSON *p = cJSON_Duplicate(patch, 1), *doc = p ? with_secrets(old, 0) : NULL;
    int no_mem = 0;
    cJSON *cfg = doc ? mergepatch_apply(doc, p, &no_mem) : NULL;
    cJSON_Delete(doc);
    if (!cfg) {
        cJSON_Delete(p);
        return oom(out);
    }
    int given = cJSON_GetObjectItemCaseSensitive(p, SECRETS_KEY) != NULL;
    int rc = read_only_members(p, id, out);
    if (rc == 0) {
        cJSON_DeleteItemFromObjectCaseSensitive(cfg, "id");
        cJSON_DeleteItemFromObjectCaseSensitive(cfg, "source");
        rc = build(s, id, cfg, p, given, old, c, out);
    } else {
        cJSON_Delete(cfg);
    }
    cJSON_Delete(p);
    return rc;
}

int epset_rotate(epset *s, const char *id, const cJSON *body, const epset_ctx *c,
                 epset_out *out)
{
    epset_ep *e = target(s, id, c, out);
    if (!e)
        return -1;
    snprintf(out->id, sizeof out->id, "%s", id);
    int64_t grace = EPSET_DEFAULT_GRACE_MS;
    if (body && !cJSON_IsObject(body))
        return fail(out, 400, NULL, NULL, "the body is optional: {\"grace\": \"24h\"}");
    for (const cJSON *m = body ? body->child : NULL; m; m = m->next) {
        if (strcmp(m->string, "grace"))
            return fail(out, 400, NULL, m->string, "unknown key (expected grace)");
        if (!cJSON_IsString(m) || units_parse_duration(m->valuestring, &grace) != 0)
            return fail(out, 400, NULL, "grace",
                        "expected a duration like \"24h\", \"30m\" or \"0s\"");
    }
    const cJSON *sink = cJSON_GetObjectItemCaseSensitive(e->config, "sink");
    if (!cJSON_IsString(sink) || !c->takes_secrets(c->arg, sink->valuestring))
        return fail(out, 409, id, NULL, "endpoint %s has no secrets to rotate (its sink takes "
                    "none)", id);
    char *fresh = new_secret(c);
    epstore_secret *v = fresh ? calloc(e->nsecrets + 1, sizeof *v) : NULL;
    if (!v || !(out->secret = strdup(fresh))) {
        free(v);
        free(fresh);
        return oom(out);
    }
    v[0] = (epstore_secret){fresh, c->now_ms, 0};
    size_t n = 1;
    int64_t until = grace > INT64_MAX - c->now_ms ? INT64_MAX : c->now_ms + grace;
    for (size_t k = 0; k < e->nsecrets; k++) {
        epstore_secret sec = e->secrets[k];
        if (!sec.expires_ms || sec.expires_ms > until)
            sec.expires_ms = until;
        if (sec.expires_ms <= c->now_ms) { /* a grace of 0: gone now */
            secret_free(&e->secrets[k]);
            continue;
        }
        out->old_expires_ms = sec.expires_ms > out->old_expires_ms ? sec.expires_ms
                                                                   : out->old_expires_ms;
        v[n++] = sec;
    }
    free(e->secrets);
    e->secrets = v;
    e->nsecrets = n;
    e->updated_ms = c->now_ms;
    return 0;
}

int epset_remove(epset *s, const char *id, const epset_ctx *c, epset_out *out)
{
    epset_ep *e = target(s, id, c, out);
    if (!e)
        return -1;
    snprintf(out->id, sizeof out->id, "%s", id);
    size_t i = (size_t)(e - s->v);
    ep_clear(e);
    memmove(&s->v[i], &s->v[i + 1], (s->n - i - 1) * sizeof *s->v);
    s->n--;
    return 0;
}
