/*
 * router.h - which endpoints get an event.
 *
 * An endpoint receives an event when
 *   - the endpoint has no org_id, or its org_id equals the event's
 *     (an event without org_id reaches only endpoints without org_id);
 *   - the event type matches one of its patterns (see filter.h);
 *   - its payload filter, if any, matches.
 * System events (ev->system) do not match "*": an endpoint receives them
 * only by naming them ("webhook.delivery_failed", "webhook.*").
 * Endpoints are indexed by (org, pattern) so the cost of routing grows with
 * the number of type segments and matching endpoints, not with the number
 * of endpoints configured.
 */
#ifndef SY_ROUTER_H
#define SY_ROUTER_H

#include <stddef.h>
#include "envelope.h"
#include "filter.h"

typedef struct sy_router sy_router;

sy_router *router_new(void);

/*
 * Adds an endpoint. org_id may be NULL. patterns is a NULL-terminated array
 * of valid type patterns (copied). filter may be NULL; it is borrowed and
 * must outlive the router. user is returned by router_match. Returns 0, or
 * -1 on allocation failure.
 */
int router_add(sy_router *r, const char *org_id, const char *const *patterns,
               const sy_filter *filter, void *user);

/*
 * Writes the user pointers of matching endpoints, each once, in the order
 * they were added, into out (capacity max). Returns the number of matches
 * (may exceed max: then only max were written). Thread-safe for concurrent
 * callers once no more router_add calls happen.
 */
size_t router_match(const sy_router *r, const sy_event *ev, void **out, size_t max);

/* Number of endpoints added. */
size_t router_count(const sy_router *r);

void router_free(sy_router *r);

#endif
