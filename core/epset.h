/*
 * epset.h - the endpoints the admin API created, in memory, and the
 * changes the API makes to them: create, replace (PUT), merge patch,
 * delete, secret rotation and the expiry of rotated-out secrets.
 *
 * Pure: times, the caller's org, what a sink takes and the random bytes
 * come in as arguments, so every rule is unit-tested without a daemon
 * (tests/unit/test_epset.c). Whether a changed set is valid is not decided
 * here: the reloader builds a runtime from it through the same config and
 * plugin code as the files, and only then keeps it.
 *
 * Secrets: the plugin's "secrets" key (the webhook sink's signing keys) is
 * kept apart from the rest of the endpoint object, each with the time it
 * stops signing, so a rotation can keep the old one beside the new one.
 */
#ifndef SY_EPSET_H
#define SY_EPSET_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "epstore.h"

typedef struct epset_ep {
    char *id;
    char *org_id;              /* NULL: every org */
    cJSON *config;             /* the endpoint object without "id" and "secrets"; owned */
    epstore_secret *secrets;   /* newest first; values owned */
    size_t nsecrets;
    int64_t created_ms, updated_ms;
} epset_ep;

/* Sorted by id. */
typedef struct epset {
    epset_ep *v;
    size_t n, cap;
} epset;

/* Loads what the store holds. 0, or -1 with err (a stored config that is not a JSON object). */
int epset_load(epset *s, const epstore_endpoint *v, size_t n, char *err, size_t errlen);
void epset_free(epset *s);
/* A deep copy of s into out. 0, or -1 when out of memory. */
int epset_clone(const epset *s, epset *out);
epset_ep *epset_find(const epset *s, const char *id);

/*
 * The set as the config's "endpoints" object: {id: config plus "secrets":
 * the values of those not expired at now_ms (0: all)}. NULL when out of memory.
 */
cJSON *epset_json(const epset *s, int64_t now_ms);

/* ep as the store keeps it; pointers borrowed from ep, config printed (free out->config). */
int epset_to_store(const epset_ep *ep, epstore_endpoint *out);

/*
 * What GET shows of each endpoint besides its config, as an object by id:
 * {"secrets": [{"prefix", "expires_at"}], "created_at", "updated_at"}
 * (times RFC 3339, expires_at null for none). NULL when out of memory.
 */
cJSON *epset_meta_json(const epset *s);

/* ms as an RFC 3339 string, or null when 0 (never). */
cJSON *epset_time_json(int64_t ms);

/* The part of a secret GET may show: its first 10 characters, or 4 of a short one. */
void epset_secret_prefix(const char *secret, char *out, size_t len);

/* Drops secrets whose expiry is at or before now_ms. Returns how many went. */
size_t epset_expire(epset *s, int64_t now_ms);
/* The earliest expiry of any secret, 0 when none expires. */
int64_t epset_next_expiry(const epset *s);

/* 1 when id matches [A-Za-z0-9._-]{1,128}. */
int epset_id_valid(const char *id);

/* What a change is given. */
typedef struct epset_ctx {
    const char *org;     /* the caller's org; NULL: the admin token (every org) */
    int64_t now_ms;
    /* 1 when the sink instance of that name signs with "secrets" (a fresh one is made). */
    int (*takes_secrets)(void *arg, const char *sink);
    void *arg;
    /* n random bytes into buf; 0, or -1. */
    int (*random)(unsigned char *buf, size_t n);
} epset_ctx;

/* What a change answers. status 0: done; otherwise the HTTP status, error and path. */
typedef struct epset_out {
    int status;
    char error[512];
    char path[320];       /* "endpoints.ID.key", or "" */
    char id[160];         /* the endpoint changed */
    char *secret;         /* a secret made by the change, shown once; malloc'd, wipe and free */
    int64_t old_expires_ms; /* rotate: when the secrets it replaced stop signing */
} epset_out;

void epset_out_clear(epset_out *o);

#define EPSET_DEFAULT_GRACE_MS (24LL * 3600 * 1000)

/*
 * Each applies one change to s (a copy the caller keeps only when the
 * result builds) and returns 0, or -1 with out->status set (400 bad body,
 * 404 no such endpoint for the caller, 409 conflict, 500 out of memory).
 *   create  body: the endpoint object plus "id"
 *   replace body: the whole endpoint object ("id" optional, the same);
 *           secrets not given keep their values and rotation
 *   patch   body: a merge patch (RFC 7396) of the endpoint object
 *   rotate  body: NULL or {"grace": "24h"}; a fresh secret signs first,
 *           the others until now + grace
 *   remove  deletes id
 */
int epset_create(epset *s, const cJSON *body, const epset_ctx *c, epset_out *out);
int epset_replace(epset *s, const char *id, const cJSON *body, const epset_ctx *c,
                  epset_out *out);
int epset_patch(epset *s, const char *id, const cJSON *patch, const epset_ctx *c,
                epset_out *out);
int epset_rotate(epset *s, const char *id, const cJSON *body, const epset_ctx *c,
                 epset_out *out);
int epset_remove(epset *s, const char *id, const epset_ctx *c, epset_out *out);

/* Keys an API body may not set (a host file, interface or network): NULL-terminated. */
extern const char *const epset_host_keys[];

#endif
