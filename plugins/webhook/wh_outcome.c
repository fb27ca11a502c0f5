/*
 * wh_outcome.c - the webhook sink's outcome table.
 *
 * The default errs towards retrying: a receiver answering 404 or 401 is far
 * more often misconfigured for a while than gone for good, and the retry
 * policy bounds the cost. Only 410 Gone (and what an operator adds through
 * permanent_statuses) and an explicit abort from the receiver end a
 * delivery early.
 */
#include "wh_outcome.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http_redact.h"
#include "http_util.h"

static void set(sy_outcome *o, sy_result r, int status, const char *fmt, const char *a)
{
    char detail[SY_DETAIL_MAX];
    snprintf(detail, sizeof detail, fmt, a);
    sy_outcome_set(o, r, status, detail);
}

void wh_outcome(const http_result *r, const wh_status_set *permanent, sy_outcome *out, int *gone)
{
    char code[16];
    if (gone)
        *gone = 0;
    sy_outcome_retry_after(out, 0); /* only a retryable answer below may ask for more */
    if (r->kind != HTTP_RESPONSE) {
        /* Only the guard's refusal is permanent: the URL will resolve the same way. */
        sy_outcome_set(out, r->kind == HTTP_REFUSED ? SY_FAIL : SY_RETRY, 0, r->error);
        return;
    }
    int s = r->status;
    if (s >= 200 && s < 300) {
        /* "HTTP 204", once per delivery: joined by hand rather than by two snprintf calls. */
        char ok[5 + 3 + 1] = "HTTP ";
        ok[5 + http_put_uint(ok + 5, (uint64_t)s)] = '\0';
        sy_outcome_set(out, SY_OK, s, ok);
        return;
    }
    snprintf(code, sizeof code, "%d", s);
    if (wh_status_in(permanent, s)) {
        if (s == 410 && gone)
            *gone = 1;
        set(out, SY_FAIL, s, s == 410 ? "HTTP %s Gone: the endpoint is gone" : "HTTP %s: permanent "
            "by permanent_statuses", code);
        return;
    }
    if (!strcasecmp(r->captured[WH_CAP_DELIVERY], "abort-message")) {
        set(out, SY_FAIL, s, "HTTP %s with webhook-delivery: abort-message: the receiver "
            "stopped retries", code);
        return;
    }
    if (s >= 300 && s < 400) {
        /* A receiver may send our own URL back, token and all: never the query. */
        char d[SY_DETAIL_MAX], where[161];
        if (r->captured[WH_CAP_LOCATION][0])
            http_url_redact(r->captured[WH_CAP_LOCATION], where, sizeof where);
        else
            snprintf(where, sizeof where, "(no Location)");
        snprintf(d, sizeof d, "HTTP %d redirect to %s not followed", s, where);
        sy_outcome_set(out, SY_RETRY, s, d);
    } else {
        set(out, SY_RETRY, s, "HTTP %s", code);
    }
    sy_outcome_retry_after(out, r->retry_after_ms);
}
