/*
 * admin.h - the admin HTTP API (libmicrohttpd), loopback by default.
 *
 *   GET  /metrics                          Prometheus text format (no token)
 *   GET  /healthz                          200 while the process serves
 *   GET  /readyz                           200 once ready, 503 while draining
 *   GET  /portal/...                       the customer portal's files (portal.h)
 *   /api/v1/...                            the routes of admin.c's table, described by
 *                                          docs/openapi.json (served at
 *                                          GET /api/v1/openapi.json): endpoints (CRUD,
 *                                          stats, rotate-secret, test, enable),
 *                                          deliveries and their attempts, replay, the
 *                                          event feed, org tokens, portal links
 *
 * /api/v1 needs `Authorization: Bearer <token>`: core.admin.token (compared
 * in constant time) sees every org; an org token (POST /api/v1/tokens)
 * sees only its org, and another org's objects answer 404. Without a
 * configured core.admin.token the API is refused. Errors are JSON:
 * {"error": "what is wrong"}, with "path" when a key of the body is at fault.
 */
#ifndef SY_ADMIN_H
#define SY_ADMIN_H

#include <stddef.h>

#include "pipeline.h"
#include "reloader.h"

typedef struct sy_admin sy_admin;

/*
 * Starts serving on conf->admin_listen. rl: where endpoint changes go (and
 * the token store). NULL with err on failure.
 */
sy_admin *admin_start(const sy_conf *conf, sy_pipeline *pl, sy_reloader *rl, char *err,
                      size_t errlen);
/* Readiness as /readyz reports it. */
void admin_set_ready(sy_admin *a, int ready);
void admin_stop(sy_admin *a);

/* 1 when a and b are equal; the time taken does not depend on where they differ. */
int admin_token_equal(const char *a, const char *b);

#endif
