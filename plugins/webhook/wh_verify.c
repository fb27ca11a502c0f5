/*
 * wh_verify.c - the optional verification handshake of an endpoint.
 *
 * Before an endpoint with `verify` receives anything, it gets a signed
 * webhook.verification event carrying a random challenge and must answer
 * 2xx echoing it, either as the whole body or as {"challenge": "..."}.
 * The handshake starts with the first delivery, not in endpoint_init:
 * `switchyard check` runs endpoint_init too and must not contact anyone.
 * That proves the URL is a receiver that wants these events (not a victim
 * of a typo) and that it checks signatures with the right secret. Until
 * then deliveries are answered SY_RETRY by wh_submit; once it passes, a
 * webhook.verified system event is emitted.
 *
 * Only one step of a handshake is ever outstanding: a timer or a request,
 * each scheduling the next from the loop thread, so no lock is needed
 * beyond the `passed` flag other threads read.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "wh_state.h"

#define BODY_MAX 4096       /* response bytes read to find the echo */
#define EMIT_RETRY_MS 200   /* the pipeline may not be running yet at start-up */
#define EMIT_TRIES 150      /* 30 s of that */

typedef struct wh_verify {
    wh_ep *ep;
    http_req req;
    http_timer timer;
    atomic_int started;
    atomic_int passed;
    int emitting;   /* the handshake passed; the timer now retries the emit */
    int attempts;
    int emit_tries;
    wh_signed *sig; /* the request's headers */
    char challenge[33];
    char id[48];
    char body[512];
} wh_verify;

static void hex(const unsigned char *b, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

/* The body is the challenge, or a JSON object with "challenge": "<it>". */
static int echoed(const char *body, size_t len, const char *challenge)
{
    size_t cl = strlen(challenge);
    const char *b = body, *e = body + len;
    while (b < e && (*b == ' ' || *b == '\n' || *b == '\r' || *b == '\t'))
        b++;
    while (e > b && (e[-1] == ' ' || e[-1] == '\n' || e[-1] == '\r' || e[-1] == '\t'))
        e--;
    if ((size_t)(e - b) == cl && memcmp(b, challenge, cl) == 0)
        return 1;
    const char *key = body ? strstr(body, "\"challenge\"") : NULL;
    if (!key)
        return 0;
    const char *p = key + 11;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    if (*p++ != ':')
        return 0;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return *p == '"' && strncmp(p + 1, challenge, cl) == 0 && p[1 + cl] == '"';
}

static void schedule(wh_verify *v, int64_t delay_ms)
{
    if (!atomic_load(&v->ep->closed))
        http_pool_defer(v->ep->st->pool, &v->timer, delay_ms);
}

static void try_emit(wh_verify *v)
{
    wh_state *st = v->ep->st;
    char data[300];
    snprintf(data, sizeof data, "{\"endpoint_id\":\"%s\",\"attempts\":%d}", v->ep->id,
             v->attempts);
    if (st->host->emit(st->inst, "webhook.verified", v->ep->org_id, data) == 0)
        return;
    if (++v->emit_tries < EMIT_TRIES) {
        schedule(v, EMIT_RETRY_MS);
        return;
    }
    st->host->log(st->inst, SY_LOG_WARN,
                  "endpoint %s: verified, but the webhook.verified event could not be emitted",
                  v->ep->id);
}

static void on_answer(http_req *req, const http_result *res)
{
    wh_verify *v = req->arg;
    wh_ep *ep = v->ep;
    wh_state *st = ep->st;
    if (res->kind == HTTP_SHUTDOWN)
        return;
    char why[HTTP_ERROR_LEN + 40];
    if (res->kind != HTTP_RESPONSE)
        snprintf(why, sizeof why, "%s", res->error);
    else if (res->status < 200 || res->status >= 300)
        snprintf(why, sizeof why, "HTTP %d", res->status);
    else if (!echoed(res->body ? res->body : "", res->body_len, v->challenge))
        snprintf(why, sizeof why, "HTTP %d without the challenge in the body", res->status);
    else
        why[0] = '\0';
    if (why[0]) {
        if (st->c.verify_failed)
            st->host->counter_add(st->c.verify_failed, 1);
        st->host->log(st->inst, SY_LOG_WARN,
                      "endpoint %s: verification attempt %d failed: %s; next in %lldms", ep->id,
                      v->attempts, why, (long long)ep->set.verify_retry_ms);
        schedule(v, ep->set.verify_retry_ms);
        return;
    }
    atomic_store(&v->passed, 1);
    if (st->c.verified)
        st->host->counter_add(st->c.verified, 1);
    st->host->log(st->inst, SY_LOG_INFO, "endpoint %s: verified after %d attempt(s)", ep->id,
                  v->attempts);
    v->emitting = 1;
    try_emit(v);
}

static void attempt(wh_verify *v)
{
    wh_ep *ep = v->ep;
    wh_state *st = ep->st;
    unsigned char rnd[24];
    char err[160];
    if (RAND_bytes(rnd, sizeof rnd) != 1) {
        st->host->log(st->inst, SY_LOG_ERROR, "endpoint %s: no randomness for a challenge",
                      ep->id);
        schedule(v, ep->set.verify_retry_ms);
        return;
    }
    hex(rnd, 16, v->challenge);
    char idhex[17];
    hex(rnd + 16, 8, idhex);
    snprintf(v->id, sizeof v->id, "msg_verify_%s", idhex);
    int64_t now = st->host->now_ms();
    time_t secs = (time_t)(now / 1000);
    struct tm tm;
    char when[32];
    gmtime_r(&secs, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    int n = snprintf(v->body, sizeof v->body,
                     "{\"event_id\":\"%s\",\"event_type\":\"webhook.verification\","
                     "\"occurred_at\":\"%s\",\"version\":\"1\",\"data\":{\"challenge\":\"%s\","
                     "\"endpoint_id\":\"%s\"}}",
                     v->id, when, v->challenge, ep->id);
    v->attempts++;
    http_req *r = &v->req;
    memset(r, 0, sizeof *r);
    if (wh_sign(ep, v->sig, v->id, now / 1000, v->body, (size_t)n, err, sizeof err) != 0) {
        st->host->log(st->inst, SY_LOG_ERROR, "endpoint %s: verification: %s", ep->id, err);
        schedule(v, ep->set.verify_retry_ms);
        return;
    }
    /* The primary URL is the one an operator registered and expects verified. */
    r->headers = &v->sig->node[0];
    r->url = ep->set.urls[0];
    r->body = v->body;
    r->body_len = (size_t)n;
    r->opts = &ep->set.http;
    r->body_max = BODY_MAX;
    r->done = on_answer;
    r->arg = v;
    http_pool_submit(st->pool, r, 0); /* fails only when stopping: nothing to redo then */
}

static void on_timer(void *arg, int cancelled)
{
    wh_verify *v = arg;
    if (cancelled || atomic_load(&v->ep->closed))
        return;
    if (v->emitting)
        try_emit(v);
    else
        attempt(v);
}

wh_verify *wh_verify_new(wh_ep *ep)
{
    wh_verify *v = calloc(1, sizeof *v);
    if (!v || !(v->sig = malloc(wh_signed_size(ep)))) {
        free(v);
        return NULL;
    }
    v->ep = ep;
    v->timer.fn = on_timer;
    v->timer.arg = v;
    atomic_init(&v->started, 0);
    atomic_init(&v->passed, 0);
    return v;
}

int wh_verify_start(wh_verify *v)
{
    if (atomic_exchange(&v->started, 1))
        return 0;
    return http_pool_defer(v->ep->st->pool, &v->timer, 0);
}

int wh_verify_passed(const wh_verify *v)
{
    return atomic_load(&((wh_verify *)v)->passed);
}

void wh_verify_free(wh_verify *v)
{
    if (v)
        free(v->sig);
    free(v);
}
