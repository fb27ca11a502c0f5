/*
 * admin.h - the admin HTTP API (libmicrohttpd), loopback by default.
 *
 *   GET  /metrics                          Prometheus text format (no token)
 *   GET  /healthz                          200 while the process serves
 *   GET  /readyz                           200 once ready, 503 while draining
 *   GET  /api/v1/endpoints                 endpoints, state, success rate
 *   GET  /api/v1/deliveries?state=&endpoint=&after=&limit=
 *   POST /api/v1/deliveries/{id}/replay    a dead delivery back to pending
 *   POST /api/v1/endpoints/{id}/test       a webhook.test event to one endpoint
 *   GET  /api/v1/events?after=CURSOR&limit=N[&org_id=]   polling fallback
 *
 * /api/v1 needs `Authorization: Bearer <core.admin.token>` (compared in
 * constant time); without a configured token it is refused. Errors are
 * JSON: {"error": "what is wrong"}.
 */
#ifndef SY_ADMIN_H
#define SY_ADMIN_H

#include <stddef.h>

#include "pipeline.h"

typedef struct sy_admin sy_admin;

/* Starts serving on conf->admin_listen. NULL with err on failure. */
sy_admin *admin_start(const sy_conf *conf, sy_pipeline *pl, char *err, size_t errlen);
/* Readiness as /readyz reports it. */
void admin_set_ready(sy_admin *a, int ready);
void admin_stop(sy_admin *a);

/* 1 when a and b are equal; the time taken does not depend on where they differ. */
int admin_token_equal(const char *a, const char *b);

#endif
