/*
 * admin_http.h - what the admin API's route files share: the request as a
 * route handler sees it (the caller's scope included) and the ways to
 * answer it. Only the admin files include this (it names libmicrohttpd).
 */
#ifndef SY_ADMIN_HTTP_H
#define SY_ADMIN_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include <microhttpd.h>

#include "pipeline.h"
#include "reloader.h"
#include "store.h"

/* Request bodies are JSON of at most this many bytes (413 beyond). */
#define API_BODY_MAX (1024 * 1024)

/* One API request, as its route handler sees it. */
typedef struct api_req {
    struct MHD_Connection *c;
    sy_runtime *rt;         /* the runtime current when the request arrived (a reference) */
    sy_pipeline *pl;
    sy_reloader *rl;
    /*
     * The caller's scope: NULL for the admin token (every org), else the org
     * of the org token. Another org's objects answer 404, never 403: a token
     * learns nothing about other orgs.
     */
    const char *org;
    char org_buf[160];
    char params[2][256];    /* the {id}s of the route's pattern, in order */
    /*
     * The store's read connection (the admin's one, used by its one thread):
     * NULL without a store (has_store 0: spool null) or when it cannot be
     * opened (has_store 1, store_err says why).
     */
    sy_store *store;
    int has_store;
    const char *store_err;
    cJSON *body;            /* the JSON body, parsed; NULL when the request has none */
} api_req;

/*
 * The store for a route that reads it, or NULL after answering: 501 "WHAT;
 * this daemon runs with spool: null" without one, 500 when it cannot be
 * opened.
 */
sy_store *api_store(api_req *q, const char *what, enum MHD_Result *rc);
/* 501 "<what>; <why this daemon has no endpoint store>" (spool: null, or PostgreSQL). */
enum MHD_Result api_no_epstore(api_req *q, const char *what);

/* 1 when the caller may see an object of org (NULL: of no org, only the admin token). */
int api_sees(const api_req *q, const char *org);

enum MHD_Result api_reply(struct MHD_Connection *c, unsigned status, const char *type,
                          const char *body);
/* {"error": msg} (and "path" when path is neither NULL nor ""). */
enum MHD_Result api_error(struct MHD_Connection *c, unsigned status, const char *msg);
enum MHD_Result api_error_at(struct MHD_Connection *c, unsigned status, const char *msg,
                             const char *path);
/* Answers the JSON o (taken over, deleted) or text (taken over, freed); NULL is out of memory. */
enum MHD_Result api_send(struct MHD_Connection *c, unsigned status, cJSON *o);
enum MHD_Result api_send_text(struct MHD_Connection *c, unsigned status, char *text);
/* 405 with the Allow header RFC 9110 asks for. */
enum MHD_Result api_not_allowed(struct MHD_Connection *c, const char *allow);

/* A query argument as an integer in [lo, hi]: def when absent, -1 when not a number in range. */
long api_arg_long(struct MHD_Connection *c, const char *name, long def, long lo, long hi);

/* 1 when s is 1-128 printable ASCII characters (an org id, a token name). */
int api_printable(const char *s);

/*
 * prefix + base64url (no padding) of nbytes random bytes into out (a
 * token, a portal code): 0, or -1 when there are no random bytes. nbytes
 * is at most 64; the bytes are wiped after use.
 */
int api_random_text(const char *prefix, size_t nbytes, char *out, size_t outlen);

/* The endpoint of the request's runtime with that id as the caller may see it, or NULL. */
sy_endpoint *api_endpoint(const api_req *q, const char *id);

#endif
