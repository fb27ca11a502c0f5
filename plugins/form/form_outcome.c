/*
 * form_outcome.c - the legacy form sink's outcome table.
 *
 * Web Scraper Cloud retried on any status of 300 or more and on silence;
 * receivers written against it never learned to send 410 or Retry-After,
 * so nothing here is permanent except what can never work (a refused
 * destination).
 */
#include "form_outcome.h"

#include <stdio.h>

void form_outcome(const http_result *r, sy_outcome *out)
{
    if (r->kind != HTTP_RESPONSE) {
        sy_outcome_set(out, r->kind == HTTP_REFUSED ? SY_FAIL : SY_RETRY, 0, r->error);
        return;
    }
    char detail[32];
    snprintf(detail, sizeof detail, "HTTP %d", r->status);
    sy_outcome_set(out, r->status >= 200 && r->status < 300 ? SY_OK : SY_RETRY, r->status,
                   detail);
}
