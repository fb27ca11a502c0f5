/*
 * wh_send.c - signing and sending deliveries, and what their outcomes do
 * to the endpoint (fallback URLs, "gone" reports).
 *
 * submit() runs on the core's worker threads and only prepares: it signs,
 * builds headers and queues the request. Everything after the network runs
 * on the loop thread in on_done().
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_util.h"
#include "switchyard/webhook.h"
#include "wh_outcome.h"
#include "wh_state.h"

typedef struct wh_job {
    http_req req;
    wh_ep *ep;
    const sy_delivery *d;
    size_t url_index;
    char **tf_lines;            /* a transform's headers as lines, or NULL */
    char *tf_ct;                /* and its "Content-Type: ..." line, or NULL */
    struct curl_slist *tf_node; /* list nodes for the lines above */
    wh_signed *sig; /* in the same allocation, right after the job */
} wh_job;

static void job_free(wh_job *job)
{
    http_header_lines_free(job->tf_lines);
    free(job->tf_ct);
    free(job->tf_node);
    free(job);
}

/* 1 when the header line ("Name: value") is named name. */
static int line_named(const char *line, const char *name)
{
    size_t l = strlen(name);
    return !strncasecmp(line, name, l) && line[l] == ':';
}

/*
 * A transform's content type and headers go between the signature
 * headers and the endpoint's shared list; its content type takes the
 * place of the list's first line, "Content-Type: application/json".
 * Headers the sink or the endpoint's configuration set are refused: the
 * delivery fails with the reason in err.
 */
static int add_transform_headers(wh_job *job, const sy_delivery *d, char *err, size_t errlen)
{
    const wh_settings *set = &job->ep->set;
    const struct curl_slist *tail = set->fixed;
    for (const char *const *h = d->headers; h && h[0]; h += 2) {
        const char *clash = NULL;
        if (line_named(set->hdr_id, h[0]) || line_named(set->hdr_ts, h[0]) ||
            line_named(set->hdr_sig, h[0]))
            clash = "the signature";
        for (char **c = set->custom; !clash && c && *c; c++)
            if (line_named(*c, h[0]))
                clash = "the endpoint's headers";
        if (clash) {
            snprintf(err, errlen, "transform: header %.64s is set by %s", h[0], clash);
            return -1;
        }
    }
    char lerr[160];
    if (http_header_lines(d->headers, NULL, &job->tf_lines, lerr, sizeof lerr) != 0) {
        snprintf(err, errlen, "transform: %.140s", lerr);
        return -1;
    }
    size_t n = 0;
    while (job->tf_lines[n])
        n++;
    if (d->content_type) {
        size_t l = sizeof "Content-Type: " + strlen(d->content_type);
        if (!(job->tf_ct = malloc(l))) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        snprintf(job->tf_ct, l, "Content-Type: %s", d->content_type);
        tail = tail->next; /* past the default Content-Type (wh_conf.c puts it first) */
    }
    size_t nodes = n + (job->tf_ct != NULL);
    if (!nodes)
        return 0;
    if (!(job->tf_node = calloc(nodes, sizeof *job->tf_node))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < nodes; i++)
        job->tf_node[i] = (struct curl_slist){
            .data = i < n ? job->tf_lines[i] : job->tf_ct,
            .next = i + 1 < nodes ? &job->tf_node[i + 1] : (struct curl_slist *)tail};
    job->sig->node[2].next = &job->tf_node[0];
    return 0;
}

/* Header values may not carry control characters (header injection). */
static int header_safe(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

size_t wh_signed_size(const wh_ep *ep)
{
    /* Every key signs (rotation): "v1,a v1,b", each under SY_WEBHOOK_SIGNATURE_MAX. */
    return sizeof(wh_signed) + strlen(ep->set.hdr_sig) +
           ep->set.nkeys * SY_WEBHOOK_SIGNATURE_MAX + 1;
}

int wh_sign(const wh_ep *ep, wh_signed *s, const char *id, int64_t ts, const char *body,
            size_t len, char *err, size_t errlen)
{
    const wh_settings *st = &ep->set;
    if (strlen(id) > WH_ID_MAX) {
        snprintf(err, errlen, "event_id longer than %d bytes", WH_ID_MAX);
        return -1;
    }
    size_t cap = strlen(st->hdr_sig) + st->nkeys * SY_WEBHOOK_SIGNATURE_MAX + 1;
    size_t n = (size_t)snprintf(s->sig, cap, "%s", st->hdr_sig);
    for (size_t i = 0; i < st->nkeys; i++) {
        if (i)
            s->sig[n++] = ' ';
        int rc = sy_webhook_sign_key(st->keys[i], id, ts, body, len, s->sig + n, cap - n);
        if (rc != SY_WEBHOOK_OK) {
            snprintf(err, errlen, "signing failed: %s", sy_webhook_strerror(rc));
            return -1;
        }
        n += strlen(s->sig + n);
    }
    snprintf(s->id, sizeof s->id, "%s%s", st->hdr_id, id);
    snprintf(s->ts, sizeof s->ts, "%s%lld", st->hdr_ts, (long long)ts);
    s->node[0] = (struct curl_slist){.data = s->id, .next = &s->node[1]};
    s->node[1] = (struct curl_slist){.data = s->ts, .next = &s->node[2]};
    s->node[2] = (struct curl_slist){.data = s->sig, .next = st->fixed};
    return 0;
}

static void count(const wh_state *st, sy_counter *c)
{
    if (c)
        st->host->counter_add(c, 1);
}

/* Tracks consecutive failures of the URL a job used; moves on when due. */
static void track(wh_ep *ep, size_t used, int ok)
{
    size_t from = 0, to = 0;
    int64_t fails = 0;
    int switched = 0;
    pthread_mutex_lock(&ep->mu);
    /* Answers from a URL already left behind say nothing about the current one. */
    if (used == ep->cur) {
        if (ok) {
            ep->fails = 0;
        } else if (++ep->fails >= ep->set.fallback_after && ep->set.nurls > 1) {
            from = ep->cur;
            to = ep->cur = (ep->cur + 1) % ep->set.nurls;
            fails = ep->fails;
            ep->fails = 0;
            switched = 1;
        }
    }
    pthread_mutex_unlock(&ep->mu);
    if (switched) {
        wh_state *st = ep->st;
        count(st, st->c.fallbacks);
        st->host->log(st->inst, SY_LOG_WARN,
                      "endpoint %s: %lld consecutive failures on %s (url #%zu); deliveries go "
                      "to %s (url #%zu) now",
                      ep->id, (long long)fails, ep->set.hosts[from], from, ep->set.hosts[to], to);
    }
}

/* 410: report once per transition, so an endpoint subscribed to its own
 * system events cannot loop on the report. */
static void mark_gone(wh_ep *ep, int gone)
{
    wh_state *st = ep->st;
    pthread_mutex_lock(&ep->mu);
    int report = gone && !ep->gone;
    ep->gone = gone;
    pthread_mutex_unlock(&ep->mu);
    if (!report)
        return;
    st->host->log(st->inst, SY_LOG_WARN,
                  "endpoint %s: the receiver answered 410 Gone; deliveries to it fail until it "
                  "answers 2xx again",
                  ep->id);
    char data[300];
    snprintf(data, sizeof data, "{\"endpoint_id\":\"%s\",\"status\":410}", ep->id);
    st->host->emit(st->inst, "webhook.endpoint_gone", ep->org_id, data);
}

static void on_done(http_req *req, const http_result *res)
{
    wh_job *job = req->arg;
    wh_ep *ep = job->ep;
    wh_state *st = ep->st;
    const sy_delivery *d = job->d;
    sy_outcome out = SY_OUTCOME_INIT;
    int gone = 0;
    wh_outcome(res, &ep->set.permanent, &out, &gone);
    if (res->kind != HTTP_SHUTDOWN)
        track(ep, job->url_index, out.result == SY_OK);
    if (res->kind == HTTP_RESPONSE && (out.result == SY_OK || gone))
        mark_gone(ep, gone);
    if (gone)
        count(st, st->c.gone);
    count(st, out.result == SY_OK ? st->c.delivered
              : out.result == SY_RETRY ? st->c.retried : st->c.failed);
    if (res->kind == HTTP_REFUSED)
        st->host->log(st->inst, SY_LOG_WARN, "endpoint %s: event %s: %s", ep->id, d->event_id,
                      res->error);
    job_free(job); /* the signature's header nodes live inside it; the shared tail stays */
    st->host->complete(d, &out);
}

int wh_submit(void *state, void *ep_state, const sy_delivery *d)
{
    wh_state *st = state;
    wh_ep *ep = ep_state;
    sy_outcome out = SY_OUTCOME_INIT;
    char err[160];
    if (!ep || atomic_load(&ep->closed))
        return -1;
    if (ep->verify && !wh_verify_passed(ep->verify)) {
        wh_verify_start(ep->verify);
        count(st, st->c.not_verified);
        sy_outcome_set(&out, SY_RETRY, 0,
                       "endpoint not verified yet: waiting for the receiver to echo the "
                       "verification challenge");
        st->host->complete(d, &out);
        return 0;
    }
    if (!header_safe(d->event_id) || strlen(d->event_id) > WH_ID_MAX) {
        count(st, st->c.failed);
        sy_outcome_set(&out, SY_FAIL, 0,
                       "event_id cannot travel in a header (control characters, or longer "
                       "than 255 bytes)");
        st->host->complete(d, &out);
        return 0;
    }
    wh_job *job = calloc(1, sizeof *job + wh_signed_size(ep));
    if (!job)
        return -1;
    job->sig = (wh_signed *)(void *)(job + 1);
    job->ep = ep;
    job->d = d;
    pthread_mutex_lock(&ep->mu);
    job->url_index = ep->cur;
    pthread_mutex_unlock(&ep->mu);
    /* Signed at send time on every attempt: the id stays, the timestamp moves. */
    int64_t ts = st->host->now_ms() / 1000;
    if (wh_sign(ep, job->sig, d->event_id, ts, d->body, d->body_len, err, sizeof err) != 0) {
        free(job);
        count(st, st->c.retried);
        sy_outcome_set(&out, SY_RETRY, 0, err);
        st->host->complete(d, &out);
        return 0;
    }
    if ((d->headers || d->content_type) && add_transform_headers(job, d, err, sizeof err) != 0) {
        job_free(job);
        count(st, st->c.failed);
        sy_outcome_set(&out, SY_FAIL, 0, err);
        st->host->complete(d, &out);
        return 0;
    }
    http_req *r = &job->req;
    r->url = ep->set.urls[job->url_index];
    r->headers = &job->sig->node[0];
    r->body = d->body;
    r->body_len = d->body_len;
    r->opts = &ep->set.http;
    r->capture[WH_CAP_DELIVERY] = "webhook-delivery";
    r->capture[WH_CAP_LOCATION] = "location";
    r->done = on_done;
    r->arg = job;
    if (http_pool_submit(st->pool, r, 0) != 0) {
        job_free(job);
        return -1;
    }
    return 0;
}
