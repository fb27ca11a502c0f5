/*
 * sqs_io.c - batching and HTTP for the sqs sink.
 *
 * One thread per instance runs a libcurl multi handle. Entries wait per
 * queue until a batch is full (max_batch entries, or max_batch_bytes as
 * SQS counts them) or the oldest has waited `linger`; up to max_requests
 * batches are in flight at once. Each SendMessageBatch is signed by
 * libcurl itself (CURLOPT_AWS_SIGV4).
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
        sy_counter *requests, *request_errors, *entries, *entries_ok, *entries_failed, *bytes;
    } c;
    pthread_t thread;
    CURLM *multi;

    pthread_mutex_t mu; /* guards the submission queue and stopping */
    sqs_entry *q_head, *q_tail;
    int stopping;

    sqs_req *active; /* requests in flight, the thread's own */
    int inflight;
    int64_t last_log_ms;
    unsigned long suppressed;
};

#define LOG(io, lvl, ...) (io)->host->log((io)->inst, (lvl), __VA_ARGS__)

static void finish(sqs_io *io, sqs_entry *e, sy_result r, int status, const char *detail)
{
    sy_outcome o = SY_OUTCOME_INIT;
    sy_outcome_set(&o, r, status, detail);
    io->host->complete(e->d, &o);
    free(e);
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

/*
 * Takes the next n entries of t into a new request and starts it. Returns
 * -1 only when not even the request could be allocated; the entries then
 * stay queued for the next round.
 */
static int start_batch(sqs_io *io, sqs_target *t, size_t n)
{
    sqs_req *r = calloc(1, sizeof *r);
    if (!r)
        return -1;
    for (size_t i = 0; i < n; i++) {
        sqs_entry *e = t->head;
        t->head = e->next;
        e->next = NULL;
        r->entries[r->n++] = e;
    }
    if (!t->head)
        t->tail = NULL;
    t->npending -= n;
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
    char detail[SY_DETAIL_MAX], code[64], msg[160];
    long http = 0;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &http);
    if (res != CURLE_OK) {
        io->host->counter_add(io->c.request_errors, 1);
        snprintf(detail, sizeof detail, "SendMessageBatch failed: %s", curl_easy_strerror(res));
        log_trouble(io, detail);
        fail_req(io, r, 0, detail);
        return;
    }
    if (http != 200) {
        io->host->counter_add(io->c.request_errors, 1);
        sqs_parse_error(r->resp.data, r->resp.len, code, sizeof code, msg, sizeof msg);
        snprintf(detail, sizeof detail, "SendMessageBatch: HTTP %ld %s%s%.150s", http,
                 code[0] ? code : "(no error type)", msg[0] ? ": " : "", msg);
        log_trouble(io, detail);
        fail_req(io, r, (int)http, detail);
        return;
    }
    sqs_result res_[SQS_MAX_BATCH];
    sqs_parse_batch_response(r->resp.data, r->resp.len, r->n, res_);
    for (size_t i = 0; i < r->n; i++) {
        if (res_[i].ok) {
            io->host->counter_add(io->c.entries_ok, 1);
            finish(io, r->entries[i], SY_OK, 200, NULL);
            continue;
        }
        io->host->counter_add(io->c.entries_failed, 1);
        snprintf(detail, sizeof detail, "SQS refused the entry: %s: %.150s", res_[i].code,
                 res_[i].message);
        finish(io, r->entries[i], sqs_entry_failure_result(&res_[i]),
               res_[i].sender_fault ? 400 : 500, detail);
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
/* Batching                                                            */
/* ------------------------------------------------------------------ */

/*
 * How many head entries of t make the next batch, and whether it is full
 * (no more could join it), in which case it goes now.
 */
static size_t next_batch(const sqs_settings *s, const sqs_target *t, int *full)
{
    size_t n = 0, bytes = 0;
    *full = 0;
    for (const sqs_entry *e = t->head; e; e = e->next) {
        if (n == s->max_batch || (n > 0 && bytes + e->size > s->max_batch_bytes)) {
            *full = 1;
            return n;
        }
        bytes += e->size;
        n++;
    }
    /* An entry over the limit on its own goes alone, and SQS has the last word on it. */
    *full = n == s->max_batch || bytes >= s->max_batch_bytes;
    return n;
}

/*
 * Starts every batch that is due. Returns ms until the next one is, or -1.
 * A FIFO queue gets one request at a time: two batches racing could land
 * in either order, and the order of a message group is what FIFO is for.
 */
static int64_t flush(sqs_io *io, int64_t now)
{
    int64_t wait = -1;
    for (sqs_target *t = io->s->targets; t; t = t->next) {
        while (t->head && io->inflight < io->s->max_requests && !(t->fifo && t->inflight)) {
            int full;
            size_t n = next_batch(io->s, t, &full);
            int64_t due = t->head->queued_ms + io->s->linger_ms;
            if (!full && due > now) {
                if (wait < 0 || due - now < wait)
                    wait = due - now;
                break;
            }
            if (start_batch(io, t, n) != 0) {
                wait = 100; /* out of memory: try again shortly */
                break;
            }
        }
    }
    return wait;
}

static void take_queue(sqs_io *io, int *stopping)
{
    pthread_mutex_lock(&io->mu);
    sqs_entry *e = io->q_head;
    io->q_head = io->q_tail = NULL;
    *stopping = io->stopping;
    pthread_mutex_unlock(&io->mu);
    int64_t now = io->host->monotonic_ms();
    for (sqs_entry *n; e; e = n) {
        n = e->next;
        e->next = NULL;
        e->queued_ms = now;
        sqs_entry_prepare(e, io->host);
        sqs_target *t = e->ep->target;
        if (t->tail)
            t->tail->next = e;
        else
            t->head = e;
        t->tail = e;
        t->npending++;
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
        int64_t wait = flush(io, io->host->monotonic_ms());
        int running = 0;
        curl_multi_perform(io->multi, &running);
        reap(io);
        /* A request that finished frees a slot: batches may be due right away. */
        wait = flush(io, io->host->monotonic_ms());
        if (wait < 0 || wait > 1000)
            wait = 1000;
        curl_multi_poll(io->multi, NULL, 0, (int)wait, NULL);
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
        for (sqs_entry *e = t->head, *n; e; e = n) {
            n = e->next;
            finish(io, e, SY_RETRY, 0, "switchyard is stopping");
        }
        t->head = t->tail = NULL;
        t->npending = 0;
    }
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
    io->inst = inst;
    io->s = s;
    io->creds = *creds;
    memset(creds, 0, sizeof *creds);
    io->c.requests = host->counter(inst, "requests", "SendMessageBatch requests sent");
    io->c.request_errors = host->counter(inst, "request_errors",
                                         "requests that failed whole (network, HTTP error): "
                                         "every entry retried");
    io->c.entries = host->counter(inst, "entries", "entries sent in requests");
    io->c.entries_ok = host->counter(inst, "entries_ok", "entries SQS stored (deliveries OK)");
    io->c.entries_failed = host->counter(inst, "entries_failed",
                                         "entries SQS refused in a batch that went through");
    io->c.bytes = host->counter(inst, "bytes", "request body bytes sent");
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

void sqs_io_submit(sqs_io *io, sqs_entry *e)
{
    e->next = NULL;
    pthread_mutex_lock(&io->mu);
    int was_empty = io->q_head == NULL;
    if (io->q_tail)
        io->q_tail->next = e;
    else
        io->q_head = e;
    io->q_tail = e;
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
    for (sqs_entry *e = io->q_head, *n; e; e = n) {
        n = e->next;
        finish(io, e, SY_RETRY, 0, "switchyard is stopping");
    }
    curl_multi_cleanup(io->multi);
    sqs_creds_free(&io->creds);
    pthread_mutex_destroy(&io->mu);
    free(io);
}
