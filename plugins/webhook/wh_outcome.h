/*
 * wh_outcome.h - the webhook sink's outcome table: what an HTTP result
 * means for the delivery.
 */
#ifndef SY_WH_OUTCOME_H
#define SY_WH_OUTCOME_H

#include "http_loop.h"
#include "switchyard/sink.h"
#include "wh_conf.h"

/* Index of the response headers the sink captures (http_req.capture order). */
enum { WH_CAP_DELIVERY = 0, WH_CAP_LOCATION = 1 };

/*
 * Classifies one attempt:
 *   2xx                                   OK
 *   a status in `permanent` (410 default) FAIL; *gone set for 410
 *   webhook-delivery: abort-message       FAIL (the receiver stops retries)
 *   3xx                                   RETRY (redirects are not followed)
 *   408, 429, 5xx, other 4xx              RETRY with Retry-After as retry_after_ms
 *   timeout, DNS, connect, TLS, other     RETRY
 *   SSRF guard refusal                    FAIL
 *   loop shutting down                    RETRY
 * gone may be NULL.
 */
void wh_outcome(const http_result *r, const wh_status_set *permanent, sy_outcome *out, int *gone);

#endif
