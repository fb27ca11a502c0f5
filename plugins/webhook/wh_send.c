/*
 * wh_send.c - signing and sending deliveries, and what their outcomes do
 * to the endpoint (fallback URLs, "gone" reports).
 *
 * submit_batch() runs on the shard thread that owns the endpoint and only
 * prepares: it signs, builds headers (and a batch's body) and queues the
 * request. Everything after the network runs on the loop thread in on_done().
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_util.h"
#include "switchyard/webhook.h"
#include "wh_batch.h"
#include "wh_outcome.h"
#include "wh_state.h"

/*
 * One request: one delivery, or a batch of them (one POST, one outcome for
 * every member). The header nodes, and a batch's list of members, live in
 * the same allocation, after the job.
 */
typedef struct wh_job {
    http_req req;
    wh_ep *ep;
    size_t url_index;
    size_t n;                 /* deliveries the request carries */
    const sy_delivery **d;    /* &one, or the members */
    const sy_delivery *one;
    char *body;               /* a batch's array (owned); NULL for one delivery */
    char **tf_lines;          /* one delivery's transform headers as lines, or NULL */
    char *tf_ct;              /* and its "Content-Type: ..." line, or NULL */
    struct curl_slist *tf_node; /* list nodes for the lines above */
    wh_signed *sig;
} wh_job;

static void job_free(wh_job *job)
{
    http_header_lines_free(job->tf_lines);
    free(job->tf_ct);
    free(job->tf_node);
    free(job->body);
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
    size_t n = strlen(st->hdr_sig);
    memcpy(s->sig, st->hdr_sig, n + 1);
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
    /* Joined by hand (three snprintf calls per delivery showed in profiles); the
     * sizes hold: header names are at most WH_HEADER_NAME_MAX, ids WH_ID_MAX. */
    size_t hl = strlen(st->hdr_id), il = strlen(id);
    memcpy(s->id, st->hdr_id, hl);
    memcpy(s->id + hl, id, il + 1);
    hl = strlen(st->hdr_ts);
    memcpy(s->ts, st->hdr_ts, hl);
    if (ts < 0) /* a clock before 1970: never in practice, but exact all the same */
        snprintf(s->ts + hl, sizeof s->ts - hl, "%lld", (long long)ts);
    else
        s->ts[hl + http_put_uint(s->ts + hl, (uint64_t)ts)] = '\0';
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

static void complete_all(const wh_state *st, const sy_delivery *const *d, size_t n,
                         sy_result result, const char *detail)
{
    sy_outcome out = SY_OUTCOME_INIT;
    sy_outcome_set(&out, result, 0, detail);
    for (size_t i = 0; i < n; i++)
        st->host->complete(d[i], &out);
}

static void on_done(http_req *req, const http_result *res)
{
    wh_job *job = req->arg;
    wh_ep *ep = job->ep;
    wh_state *st = ep->st;
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
        st->host->log(st->inst, SY_LOG_WARN, "endpoint %s: %s %s: %s", ep->id,
                      job->body ? "batch" : "event",
                      job->body ? job->sig->id + strlen(ep->set.hdr_id) : job->one->event_id,
                      res->error);
    /* One answer covers every delivery the request carried. Handed over with the
     * rest of the loop's round: one wake-up of the shard for all of them. */
    for (size_t i = 0; i < job->n; i++)
        http_loop_complete(st->host, job->d[i], &out);
    job_free(job); /* the signature's header nodes live inside it; the shared tail stays */
}

/* The endpoint is not verified yet: nothing goes out, the core retries. */
static int held_unverified(wh_state *st, wh_ep *ep, const sy_delivery *const *d, size_t n)
{
    if (!ep->verify || wh_verify_passed(ep->verify))
        return 0;
    wh_verify_start(ep->verify);
    count(st, st->c.not_verified);
    complete_all(st, d, n, SY_RETRY,
                 "endpoint not verified yet: waiting for the receiver to echo the "
                 "verification challenge");
    return 1;
}

static wh_job *job_new(wh_ep *ep, size_t n)
{
    /* job, then a batch's members (pointers keep the signature aligned), then the signature */
    size_t members = n > 1 ? n : 0;
    wh_job *job = calloc(1, sizeof *job + members * sizeof(const sy_delivery *) +
                                wh_signed_size(ep));
    if (!job)
        return NULL;
    const sy_delivery **after = (const sy_delivery **)(void *)(job + 1);
    job->d = n > 1 ? after : &job->one;
    job->sig = (wh_signed *)(void *)(after + members);
    job->ep = ep;
    job->n = n;
    pthread_mutex_lock(&ep->mu);
    job->url_index = ep->cur;
    pthread_mutex_unlock(&ep->mu);
    return job;
}

/*
 * Signs job with id over body and queues it. Returns 0, or with the reason
 * in err (then job is still the caller's) -1 (worth a retry) or -2 (a
 * transform's headers the endpoint refuses: a permanent failure).
 */
static int send_job(wh_state *st, wh_job *job, const char *id, const char *body, size_t len,
                    char *err, size_t errlen)
{
    wh_ep *ep = job->ep;
    /* Signed at send time on every attempt: the id stays, the timestamp moves. */
    int64_t ts = st->host->now_ms() / 1000;
    if (wh_sign(ep, job->sig, id, ts, body, len, err, errlen) != 0)
        return -1;
    /* A transform's headers and content type: one delivery only (a batch's POST has its own). */
    const sy_delivery *one = job->n == 1 ? job->d[0] : NULL;
    if (one && (one->headers || one->content_type) &&
        add_transform_headers(job, one, err, errlen) != 0)
        return -2;
    http_req *r = &job->req;
    r->url = ep->set.urls[job->url_index];
    r->headers = &job->sig->node[0];
    r->body = body;
    r->body_len = len;
    r->opts = &ep->set.http;
    r->capture[WH_CAP_DELIVERY] = "webhook-delivery";
    r->capture[WH_CAP_LOCATION] = "location";
    r->done = on_done;
    r->arg = job;
    if (http_pool_submit(st->pool, r, 0) != 0) {
        snprintf(err, errlen, "the HTTP loop is stopping");
        return -1;
    }
    return 0;
}

static void submit_one(wh_state *st, wh_ep *ep, const sy_delivery *d)
{
    char err[160];
    if (held_unverified(st, ep, &d, 1))
        return;
    if (!header_safe(d->event_id) || strlen(d->event_id) > WH_ID_MAX) {
        count(st, st->c.failed);
        complete_all(st, &d, 1, SY_FAIL,
                     "event_id cannot travel in a header (control characters, or longer "
                     "than 255 bytes)");
        return;
    }
    wh_job *job = job_new(ep, 1);
    if (!job) {
        complete_all(st, &d, 1, SY_RETRY, "out of memory");
        return;
    }
    job->one = d;
    int rc = send_job(st, job, d->event_id, d->body, d->body_len, err, sizeof err);
    if (rc != 0) {
        job_free(job);
        count(st, rc == -2 ? st->c.failed : st->c.retried);
        complete_all(st, &d, 1, rc == -2 ? SY_FAIL : SY_RETRY, err);
    }
}

/* A batched endpoint's batch: one POST, a JSON array, one signature, one outcome for all. */
static void submit_batch(wh_state *st, wh_ep *ep, const sy_delivery *const *d, size_t n)
{
    char err[160];
    if (held_unverified(st, ep, d, n))
        return;
    wh_job *job = job_new(ep, n);
    if (!job) {
        complete_all(st, d, n, SY_RETRY, "out of memory");
        return;
    }
    /* A member whose body is not JSON (a transformation's text) cannot be an element. */
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (wh_batch_member_ok(d[i])) {
            job->d[k++] = d[i];
            continue;
        }
        count(st, st->c.failed);
        complete_all(st, &d[i], 1, SY_FAIL,
                     "a batch carries JSON bodies only; this delivery's content type is not "
                     "application/json");
    }
    job->n = k;
    if (!k) {
        free(job);
        return;
    }
    char id[WH_BATCH_ID_LEN + 1];
    size_t len = 0;
    if (wh_batch_id(ep->id, job->d, k, id) != 0) {
        snprintf(err, sizeof err, "hashing the batch id failed");
    } else if (!(job->body = wh_batch_body(job->d, k, &len))) {
        snprintf(err, sizeof err, "out of memory");
    } else if (send_job(st, job, id, job->body, len, err, sizeof err) == 0) {
        count(st, st->c.batches);
        return;
    }
    /* Not sent: the core retries the batch, whole. */
    count(st, st->c.retried);
    complete_all(st, job->d, k, SY_RETRY, err);
    job_free(job);
}

void wh_submit_batch(void *state, void *ep_state, const sy_delivery *const *d, size_t n)
{
    wh_state *st = state;
    wh_ep *ep = ep_state;
    if (!ep || atomic_load(&ep->closed)) {
        complete_all(st, d, n, SY_RETRY, "endpoint closed (reload or shutdown)");
        return;
    }
    if (ep->batch) {
        submit_batch(st, ep, d, n);
        return;
    }
    /* Unbatched endpoints get one delivery per call (the descriptor's batch_max is 1). */
    for (size_t i = 0; i < n; i++)
        submit_one(st, ep, d[i]);
}
