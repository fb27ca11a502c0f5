/*
 * sqs_io.c - requests for the sqs sink.
 *
 * One thread per instance runs a libcurl multi handle. The core hands
 * over batches of up to ten deliveries of one endpoint (the core lingers
 * to fill them, so the plugin keeps no timer); each becomes one
 * SendMessageBatch, or several when its entries pass max_batch_bytes as
 * SQS counts them. Up to max_requests requests are in flight at once;
 * batches wait here, per queue and in order, for a free one. Each
 * SendMessageBatch is signed by libcurl itself (CURLOPT_AWS_SIGV4).
 *
 * Protocol: SQS's JSON protocol (AWS JSON 1.0: X-Amz-Target
 * AmazonSQS.SendMessageBatch, Content-Type application/x-amz-json-1.0).
 * Real SQS serves it next to the old query protocol, current AWS SDKs use
 * it, and emulators built for those SDKs (fauxqs among them) speak only
 * it.
 *
 * Outcomes: per-entry results map back to their deliveries, so one bad
 * entry retries alone while the rest of its batch is OK. Anything that
 * fails the whole request (network, timeout, HTTP error) retries every
 * entry of it: SQS may or may not have stored them, and a retry is the
 * at-least-once answer (FIFO queues drop the copy by deduplication id).
 */
#include "sqs_io.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../_queue/qbatch.h"

#define MAX_RESPONSE (1024 * 1024) /* a batch result is a few KiB */

typedef struct sqs_req {
    CURL *easy;
    sqs_target *target;
    struct curl_slist *headers;
    sqs_buf body, resp;
    sqs_entry *entries[SQS_MAX_BATCH];
    size_t n;
    struct sqs_req *prev, *next;
} sqs_req;

struct sqs_io {
    const sy_host *host;
    const sy_instance *inst;
    sqs_settings *s;
    sqs_creds creds;
    int64_t creds_checked_ms;
    struct {
        sy_counter *batches, *requests, *request_errors, *entries, *entries_ok, *entries_failed,
            *bytes, *expired;
    } c;
    pthread_t thread;
    CURLM *multi;

    pthread_mutex_t mu; /* guards the submission queue and stopping */
    sqs_batch *q_head, *q_tail;
    int stopping;

    sqs_req *active; /* requests in flight, the thread's own */
    int inflight;
    int64_t last_log_ms;
    sy_done done; /* the I/O thread's outcomes of a round; after the join, stop's */
    unsigned long suppressed;
};

#define LOG(io, lvl, ...) (io)->host->log((io)->inst, (lvl), __VA_ARGS__)

static void finish(sqs_io *io, sqs_entry *e, sy_result r, int status, const char *detail)
{
    sy_outcome o = SY_OUTCOME_INIT;
    sy_outcome_set(&o, r, status, detail);
    sy_done_add(&io->done, e->d, &o);
    sqs_batch_release(e);
}

/* Completes the entries of b not yet in a request. */
static void finish_rest(sqs_io *io, sqs_batch *b, const char *detail)
{
    for (size_t i = b->next, n = b->n; i < n; i++)
        finish(io, &b->entries[i], SY_RETRY, 0, detail); /* the last may free b */
}

/* Batch-level trouble is logged at most once a second: at 10k events/s it would flood. */
static void log_trouble(sqs_io *io, const char *what)
{
    int64_t now = io->host->monotonic_ms();
    if (now - io->last_log_ms < 1000) {
        io->suppressed++;
        return;
    }
    LOG(io, SY_LOG_WARN, "%s%s", what, io->suppressed ? " (and similar messages suppressed)" : "");
    io->last_log_ms = now;
    io->suppressed = 0;
}

/* ------------------------------------------------------------------ */
/* Requests                                                            */
/* ------------------------------------------------------------------ */

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
    sqs_req *r = arg;
    size_t len = size * n;
    if (r->resp.len + len > MAX_RESPONSE || sqs_buf_put(&r->resp, p, len) != 0)
        return 0; /* aborts the transfer: every entry retries */
    return len;
}

static void req_free(sqs_req *r)
{
    if (!r)
        return;
    if (r->easy)
        curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);
    sqs_buf_free(&r->body);
    sqs_buf_free(&r->resp);
    free(r);
}

static void fail_req(sqs_io *io, sqs_req *r, int status, const char *detail)
{
    for (size_t i = 0; i < r->n; i++)
        finish(io, r->entries[i], SY_RETRY, status, detail);
    r->n = 0;
}

static void refresh_creds(sqs_io *io)
{
    int64_t now = io->host->monotonic_ms();
    if (!io->creds.file || now - io->creds_checked_ms < 1000)
        return;
    io->creds_checked_ms = now;
    char err[256];
    int rc = sqs_creds_refresh(&io->creds, err, sizeof err);
    if (rc == 1)
        LOG(io, SY_LOG_INFO, "credentials re-read from %s", io->creds.source);
    else if (rc < 0)
        LOG(io, SY_LOG_WARN, "keeping the previous credentials: %s", err);
}

static struct curl_slist *add_header(struct curl_slist *l, const char *h, int *ok)
{
    struct curl_slist *n = curl_slist_append(l, h);
    if (!n) {
        *ok = 0;
        return l;
    }
    return n;
}

static int setup_easy(sqs_io *io, sqs_req *r)
{
    const sqs_settings *s = io->s;
    int ok = 1;
    r->headers = add_header(r->headers, "Content-Type: application/x-amz-json-1.0", &ok);
    r->headers = add_header(r->headers, "X-Amz-Target: AmazonSQS.SendMessageBatch", &ok);
    /*
     * No "Expect:" override here: curl 7.88 would sign the removed header
     * (SignedHeaders gains "expect" though none is sent) and SQS would
     * refuse the signature. curl only asks for 100-continue above 1 MiB,
     * past which SQS answers it anyway.
     */
    if (io->creds.token) {
        size_t n = strlen(io->creds.token) + 32;
        char *h = malloc(n);
        if (h) {
            snprintf(h, n, "X-Amz-Security-Token: %s", io->creds.token);
            r->headers = add_header(r->headers, h, &ok);
            memset(h, 0, n);
            free(h);
        } else {
            ok = 0;
        }
    }
    if (!ok || !(r->easy = curl_easy_init()))
        return -1;
    CURL *e = r->easy;
    curl_easy_setopt(e, CURLOPT_URL, s->endpoint_url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body.data);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body.len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt(e, CURLOPT_AWS_SIGV4, s->sigv4);
    curl_easy_setopt(e, CURLOPT_USERNAME, io->creds.key_id);
    curl_easy_setopt(e, CURLOPT_PASSWORD, io->creds.secret);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "switchyard-sqs/" SY_VERSION);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)s->request_timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)s->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    return 0;
}

/* Takes b off the head of its target's queue. */
static void pop_batch(sqs_target *t)
{
    sqs_batch *b = t->head;
    t->head = b->link;
    if (!t->head)
        t->tail = NULL;
    b->link = NULL;
}

/*
 * Puts the next entries of t's first batch into a request and starts it
 * (a batch the core waited on past its deadline is handed back instead:
 * the core has retried it already). Returns -1 only when not even the
 * request could be allocated; the entries then stay queued.
 */
static int start_request(sqs_io *io, sqs_target *t)
{
    sqs_batch *b = t->head;
    /* The core gives a batch's deliveries one deadline: the first tells for all. */
    if (qbatch_expired(b->entries[b->next].d, io->host->monotonic_ms())) {
        pop_batch(t);
        io->host->counter_add(io->c.expired, b->n - b->next);
        finish_rest(io, b, "waited in the plugin past its deadline; not sent");
        return 0;
    }
    sqs_req *r = calloc(1, sizeof *r);
    if (!r)
        return -1;
    size_t k = sqs_batch_take(b, io->s->max_batch_bytes);
    for (size_t i = 0; i < k; i++)
        r->entries[r->n++] = &b->entries[b->next + i];
    b->next += k;
    if (b->next == b->n)
        pop_batch(t);
    r->target = t;
    refresh_creds(io);
    if (sqs_batch_request(&r->body, t, r->entries, r->n) != 0 || setup_easy(io, r) != 0 ||
        curl_multi_add_handle(io->multi, r->easy) != CURLM_OK) {
        fail_req(io, r, 0, "out of memory building the request");
        req_free(r);
        return 0;
    }
    io->host->counter_add(io->c.requests, 1);
    io->host->counter_add(io->c.entries, r->n);
    io->host->counter_add(io->c.bytes, r->body.len);
    r->next = io->active;
    if (r->next)
        r->next->prev = r;
    io->active = r;
    io->inflight++;
    t->inflight++;
    return 0;
}

static void done(sqs_io *io, sqs_req *r, CURLcode res)
{
    char detail[SY_DETAIL_MAX];
    long http = 0;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &http);
    if (res != CURLE_OK) {
        io->host->counter_add(io->c.request_errors, 1);
        snprintf(detail, sizeof detail, "SendMessageBatch failed: %s", curl_easy_strerror(res));
        log_trouble(io, detail);
        fail_req(io, r, 0, detail);
        return;
    }
    sy_outcome out[SQS_MAX_BATCH];
    for (size_t i = 0; i < r->n; i++)
        sy_outcome_init(&out[i]);
    size_t ok = sqs_response_outcomes(http, r->resp.data, r->resp.len, r->n, out);
    if (http != 200) {
        io->host->counter_add(io->c.request_errors, 1);
        log_trouble(io, out[0].detail);
    } else {
        io->host->counter_add(io->c.entries_ok, ok);
        io->host->counter_add(io->c.entries_failed, r->n - ok);
    }
    for (size_t i = 0; i < r->n; i++) {
        sy_done_add(&io->done, r->entries[i]->d, &out[i]);
        sqs_batch_release(r->entries[i]);
    }
    r->n = 0;
}

static void reap(sqs_io *io)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(io->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        sqs_req *r = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        CURLcode res = m->data.result;
        curl_multi_remove_handle(io->multi, m->easy_handle);
        done(io, r, res);
        if (r->prev)
            r->prev->next = r->next;
        else
            io->active = r->next;
        if (r->next)
            r->next->prev = r->prev;
        io->inflight--;
        r->target->inflight--;
        req_free(r);
    }
}

/* ------------------------------------------------------------------ */
/* Queues                                                              */
/* ------------------------------------------------------------------ */

/*
 * Starts requests while there are free ones. A FIFO queue gets one request
 * at a time: two racing could land in either order, and the order of a
 * message group is what FIFO is for. 0, or -1 when out of memory (try
 * again shortly).
 */
static int flush(sqs_io *io)
{
    for (sqs_target *t = io->s->targets; t; t = t->next)
        while (t->head && io->inflight < io->s->max_requests && !(t->fifo && t->inflight))
            if (start_request(io, t) != 0)
                return -1;
    return 0;
}

static void take_queue(sqs_io *io, int *stopping)
{
    pthread_mutex_lock(&io->mu);
    sqs_batch *b = io->q_head;
    io->q_head = io->q_tail = NULL;
    *stopping = io->stopping;
    pthread_mutex_unlock(&io->mu);
    for (sqs_batch *n; b; b = n) {
        n = b->link;
        b->link = NULL;
        for (size_t i = 0; i < b->n; i++)
            sqs_entry_prepare(&b->entries[i], io->host);
        sqs_target *t = b->target;
        if (t->tail)
            t->tail->link = b;
        else
            t->head = b;
        t->tail = b;
    }
}

static void *io_main(void *arg)
{
    sqs_io *io = arg;
    int stopping = 0;
    for (;;) {
        take_queue(io, &stopping);
        if (stopping)
            break;
        flush(io);
        int running = 0;
        curl_multi_perform(io->multi, &running);
        reap(io);
        /* A request that finished frees a slot for a batch that waits. */
        int wait = flush(io) != 0 ? 100 : 1000;
        /* The round's outcomes (reap, and batches flush found expired) go over together. */
        sy_done_flush(&io->done);
        curl_multi_poll(io->multi, NULL, 0, wait, NULL);
    }
    /* Stopping: the core has drained what it could; the rest is retried later. */
    for (sqs_req *r = io->active, *n; r; r = n) {
        n = r->next;
        curl_multi_remove_handle(io->multi, r->easy);
        fail_req(io, r, 0, "switchyard is stopping");
        req_free(r);
    }
    io->active = NULL;
    for (sqs_target *t = io->s->targets; t; t = t->next) {
        while (t->head) {
            sqs_batch *b = t->head;
            pop_batch(t);
            finish_rest(io, b, "switchyard is stopping");
        }
    }
    sy_done_flush(&io->done);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Public                                                              */
/* ------------------------------------------------------------------ */

sqs_io *sqs_io_start(const sy_host *host, const sy_instance *inst, sqs_settings *s,
                     sqs_creds *creds, char *err, size_t errlen)
{
    sqs_io *io = calloc(1, sizeof *io);
    if (!io) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    io->host = host;
    io->done.host = host;
    io->inst = inst;
    io->s = s;
    io->creds = *creds;
    memset(creds, 0, sizeof *creds);
    io->c.batches = host->counter(inst, "batches", "batches of deliveries taken from the core");
    io->c.requests = host->counter(inst, "requests", "SendMessageBatch requests sent");
    io->c.request_errors = host->counter(inst, "request_errors",
                                         "requests that failed whole (network, HTTP error): "
                                         "every entry retried");
    io->c.entries = host->counter(inst, "entries", "entries sent in requests");
    io->c.entries_ok = host->counter(inst, "entries_ok", "entries SQS stored (deliveries OK)");
    io->c.entries_failed = host->counter(inst, "entries_failed",
                                         "entries SQS refused in a batch that went through");
    io->c.bytes = host->counter(inst, "bytes", "request body bytes sent");
    io->c.expired = host->counter(inst, "expired",
                                  "entries handed back unsent because they waited in the plugin "
                                  "past the core's deadline (retried)");
    pthread_mutex_init(&io->mu, NULL);
    if (!(io->multi = curl_multi_init())) {
        snprintf(err, errlen, "cannot create a curl multi handle");
        goto fail;
    }
    /* One connection per request in flight, kept alive between batches. */
    curl_multi_setopt(io->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)s->max_requests);
    curl_multi_setopt(io->multi, CURLMOPT_MAXCONNECTS, (long)s->max_requests);
    if (pthread_create(&io->thread, NULL, io_main, io) != 0) {
        snprintf(err, errlen, "cannot start the I/O thread");
        goto fail;
    }
    return io;
fail:
    if (io->multi)
        curl_multi_cleanup(io->multi);
    sqs_creds_free(&io->creds);
    pthread_mutex_destroy(&io->mu);
    free(io);
    return NULL;
}

void sqs_io_submit(sqs_io *io, sqs_batch *b)
{
    b->link = NULL;
    io->host->counter_add(io->c.batches, 1);
    pthread_mutex_lock(&io->mu);
    int was_empty = io->q_head == NULL;
    if (io->q_tail)
        io->q_tail->link = b;
    else
        io->q_head = b;
    io->q_tail = b;
    pthread_mutex_unlock(&io->mu);
    if (was_empty)
        curl_multi_wakeup(io->multi); /* the one multi call that is safe from any thread */
}

void sqs_io_stop(sqs_io *io)
{
    if (!io)
        return;
    pthread_mutex_lock(&io->mu);
    io->stopping = 1;
    pthread_mutex_unlock(&io->mu);
    curl_multi_wakeup(io->multi);
    pthread_join(io->thread, NULL);
    for (sqs_batch *b = io->q_head, *n; b; b = n) {
        n = b->link;
        finish_rest(io, b, "switchyard is stopping");
    }
    sy_done_flush(&io->done);
    curl_multi_cleanup(io->multi);
    sqs_creds_free(&io->creds);
    pthread_mutex_destroy(&io->mu);
    free(io);
}
