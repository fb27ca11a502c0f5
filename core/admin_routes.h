/*
 * admin_routes.h - every route of the admin API, declared once (admin.c's
 * table), and the handlers the route files define. The table is also what
 * tests/unit/test_admin_routes.c holds against docs/openapi.json, both
 * ways, so the document and the server cannot drift apart.
 */
#ifndef SY_ADMIN_ROUTES_H
#define SY_ADMIN_ROUTES_H

#include <stddef.h>

#include "admin_http.h"

typedef enum MHD_Result (*api_handler)(api_req *q);

#define ROUTE_BODY 0x1u     /* takes a JSON body (400 without one) */
#define ROUTE_OPT_BODY 0x2u /* may take a JSON body */
#define ROUTE_ADMIN 0x4u    /* the admin token only: another token gets 404 */
#define ROUTE_PUBLIC 0x8u   /* no token needed */

typedef struct api_route {
    const char *method;
    const char *pattern;    /* "/api/v1/endpoints/{id}/stats": {id} is one path segment */
    api_handler fn;
    unsigned flags;
} api_route;

extern const api_route admin_routes[];
extern const size_t admin_nroutes;

/* api_endpoints.c */
enum MHD_Result api_endpoints_list(api_req *q);
enum MHD_Result api_endpoint_create(api_req *q);
enum MHD_Result api_endpoint_get(api_req *q);
enum MHD_Result api_endpoint_put(api_req *q);
enum MHD_Result api_endpoint_patch(api_req *q);
enum MHD_Result api_endpoint_delete(api_req *q);
enum MHD_Result api_endpoint_rotate(api_req *q);
enum MHD_Result api_endpoint_stats(api_req *q);
enum MHD_Result api_endpoint_test(api_req *q);
enum MHD_Result api_endpoint_enable(api_req *q);
enum MHD_Result api_filter_validate(api_req *q);

/* api_deliveries.c */
enum MHD_Result api_deliveries_list(api_req *q);
enum MHD_Result api_delivery_attempts(api_req *q);
enum MHD_Result api_delivery_replay(api_req *q);
enum MHD_Result api_events(api_req *q);
enum MHD_Result api_event_types(api_req *q);
enum MHD_Result api_endpoint_replay_dead(api_req *q);

/* api_tokens.c */
enum MHD_Result api_tokens_list(api_req *q);
enum MHD_Result api_token_create(api_req *q);
enum MHD_Result api_token_delete(api_req *q);
/*
 * The org of the org token `token` (hashed, looked up in the store) into
 * org: 1 when it is a live token, 0 when unknown or expired, -1 on a store
 * error (logged).
 */
int api_token_org(sy_epstore *store, const char *token, char *org, size_t orglen);
/*
 * Makes a token for t (org_id, name, created_ms, expires_ms set; t->id is
 * set to id) and stores its hash: 0 with the token in token (64 bytes
 * suffice), or -1 (logged).
 */
int api_token_issue(sy_epstore *store, epstore_token *t, char *token, size_t tlen, char *id,
                    size_t idlen);

/* api_portal.c */
enum MHD_Result api_portal_session(api_req *q);
enum MHD_Result api_portal_exchange(api_req *q);

/* api_openapi.c */
enum MHD_Result api_openapi(api_req *q);
/* The OpenAPI document embedded at build time (docs/openapi.json), NUL-terminated. */
const char *api_openapi_text(size_t *len);

#endif
