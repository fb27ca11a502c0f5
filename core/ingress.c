/*
 * ingress.c - receive, validate, route.
 */
#include "ingress.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "envelope.h"
#include "log.h"
#include "router.h"
#include "stats.h"

#define MAX_MATCH_STACK 64

struct sy_ingress {
    sy_runtime *rt;
    sy_dispatch *dp;
    sy_quarantine *q;
    void *ctx;
    void **socks;
    size_t nsocks;
    pthread_t thread;
    int running;
    int stop; /* atomic */
    /* Rate limit for rejection log lines: at most 20 per second. */
    pthread_mutex_t log_mu; /* system events may be rejected from other threads */
    int64_t log_window;
    int log_count;
    uint64_t log_suppressed;
    int paused;
};

static int64_t now_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

sy_ingress *ingress_new(sy_runtime *rt, sy_dispatch *dp, sy_quarantine *q, char *err,
                        size_t errlen)
{
    sy_ingress *in = calloc(1, sizeof *in);
    in->rt = rt;
    in->dp = dp;
    in->q = q;
    in->ctx = zmq_ctx_new();
    pthread_mutex_init(&in->log_mu, NULL);
    const sy_conf *c = rt->conf;
    in->socks = calloc(c->ningress ? c->ningress : 1, sizeof *in->socks);
    for (size_t i = 0; i < c->ningress; i++) {
        const sy_ingress_conf *ic = &c->ingress[i];
        void *s = zmq_socket(in->ctx, ic->type == INGRESS_PULL ? ZMQ_PULL : ZMQ_SUB);
        int linger = 0;
        zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
        zmq_setsockopt(s, ZMQ_RCVHWM, &ic->rcvhwm, sizeof ic->rcvhwm);
        /* Messages over the cap are still read (to be quarantined), but a
         * peer sending gigabytes is cut off by ZeroMQ itself. */
        int64_t maxmsg = c->max_event_bytes * 4 + 4096;
        zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
        for (char **t = ic->topics; ic->type == INGRESS_SUB && t && *t; t++)
            zmq_setsockopt(s, ZMQ_SUBSCRIBE, *t, strlen(*t));
        int rc = ic->bind ? zmq_bind(s, ic->addr) : zmq_connect(s, ic->addr);
        if (rc != 0) {
            snprintf(err, errlen, "core.ingress[%zu]: cannot %s %s: %s", i,
                     ic->bind ? "bind" : "connect", ic->addr, zmq_strerror(zmq_errno()));
            zmq_close(s);
            ingress_free(in);
            return NULL;
        }
        in->socks[in->nsocks++] = s;
        log_kv(SY_LOG_INFO, "ingress listening", "type", ic->type == INGRESS_PULL ? "pull" : "sub",
               ic->bind ? "bind" : "connect", ic->addr, NULL);
    }
    return in;
}

static void reject(sy_ingress *in, env_reason r, const char *why, const char *body, size_t len)
{
    STAT_ADD(g_stats.rejected, 1);
    STAT_ADD(g_stats.rejected_by[r], 1);
    if (in->q) {
        if (quarantine_write(in->q, envelope_reason_name(r), why, body, len) == 0)
            STAT_ADD(g_stats.quarantined, 1);
        else
            STAT_ADD(g_stats.quarantine_errors, 1);
    }
    int64_t now = now_ms(CLOCK_MONOTONIC);
    pthread_mutex_lock(&in->log_mu);
    if (now - in->log_window >= 1000) {
        if (in->log_suppressed)
            log_warn("%llu more rejected messages not logged in the last second",
                     (unsigned long long)in->log_suppressed);
        in->log_window = now;
        in->log_count = 0;
        in->log_suppressed = 0;
    }
    if (in->log_count++ < 20) {
        char size[24];
        snprintf(size, sizeof size, "%zu", len);
        log_kv(SY_LOG_WARN, "event rejected", "reason", envelope_reason_name(r), "detail", why,
               "size", size, NULL);
    } else {
        in->log_suppressed++;
    }
    pthread_mutex_unlock(&in->log_mu);
}

void ingress_handle(sy_ingress *in, const char *body, size_t len, int nframes)
{
    STAT_ADD(g_stats.received, 1);
    if (nframes < 1 || nframes > 2) {
        char why[96];
        snprintf(why, sizeof why, "expected 1 or 2 frames ([body] or [topic, body]), got %d",
                 nframes);
        reject(in, ENV_BAD_FRAMES, why, body, len);
        return;
    }
    const sy_conf *c = in->rt->conf;
    sy_event *ev = NULL;
    char why[512];
    env_reason r = envelope_parse(body, len, (size_t)c->max_event_bytes, c->max_depth, &ev, why,
                                  sizeof why);
    if (r != ENV_OK) {
        reject(in, r, why, body, len);
        return;
    }
    STAT_ADD(g_stats.accepted, 1);
    ev->received_ms = now_ms(CLOCK_REALTIME);
    void *stack[MAX_MATCH_STACK];
    void **match = stack;
    size_t n = router_match(in->rt->router, ev, stack, MAX_MATCH_STACK);
    if (n > MAX_MATCH_STACK) {
        match = malloc(n * sizeof *match);
        n = router_match(in->rt->router, ev, match, n);
    }
    if (n == 0) {
        STAT_ADD(g_stats.unrouted, 1);
        if (log_enabled(SY_LOG_DEBUG))
            log_debug("event %s (%s) matched no endpoint", ev->event_id, ev->event_type);
    } else {
        dispatch_event(in->dp, ev, (sy_endpoint *const *)match, n);
    }
    if (match != stack)
        free(match);
    event_unref(ev);
}

/* Reads one whole multipart message from s; frames beyond two are counted. */
static void read_one(sy_ingress *in, void *s)
{
    zmq_msg_t frames[2];
    int nframes = 0, more = 1;
    zmq_msg_init(&frames[0]);
    zmq_msg_init(&frames[1]);
    while (more) {
        zmq_msg_t tmp, *m = nframes < 2 ? &frames[nframes] : &tmp;
        if (m == &tmp)
            zmq_msg_init(&tmp);
        if (zmq_msg_recv(m, s, ZMQ_DONTWAIT) < 0) {
            if (m == &tmp)
                zmq_msg_close(&tmp);
            break;
        }
        more = zmq_msg_more(m);
        if (m == &tmp)
            zmq_msg_close(&tmp);
        nframes++;
    }
    if (nframes > 0) {
        zmq_msg_t *b = nframes >= 2 ? &frames[1] : &frames[0];
        ingress_handle(in, zmq_msg_data(b), zmq_msg_size(b), nframes);
    }
    zmq_msg_close(&frames[0]);
    zmq_msg_close(&frames[1]);
}

static void *ingress_main(void *arg)
{
    sy_ingress *in = arg;
    zmq_pollitem_t *items = calloc(in->nsocks, sizeof *items);
    for (size_t i = 0; i < in->nsocks; i++) {
        items[i].socket = in->socks[i];
        items[i].events = ZMQ_POLLIN;
    }
    size_t max_pending = (size_t)in->rt->conf->max_pending;
    while (!__atomic_load_n(&in->stop, __ATOMIC_ACQUIRE)) {
        if (dispatch_backlog(in->dp) >= max_pending) {
            if (!in->paused) {
                in->paused = 1;
                STAT_ADD(g_stats.backpressure_pauses, 1);
                log_warn("backlog reached core.max_pending (%zu); pausing ingress", max_pending);
            }
            struct timespec ts = {0, 5 * 1000000L};
            nanosleep(&ts, NULL);
            continue;
        }
        if (in->paused) {
            in->paused = 0;
            log_info("backlog below core.max_pending; resuming ingress");
        }
        int rc = zmq_poll(items, (int)in->nsocks, 100);
        if (rc < 0) {
            if (zmq_errno() == EINTR)
                continue;
            log_error("zmq_poll: %s", zmq_strerror(zmq_errno()));
            break;
        }
        /* Take a bounded batch per socket so one busy socket can't starve another. */
        for (size_t i = 0; i < in->nsocks; i++)
            if (items[i].revents & ZMQ_POLLIN)
                for (int k = 0; k < 256; k++) {
                    int ev = 0;
                    size_t sz = sizeof ev;
                    read_one(in, in->socks[i]);
                    if (zmq_getsockopt(in->socks[i], ZMQ_EVENTS, &ev, &sz) != 0 ||
                        !(ev & ZMQ_POLLIN))
                        break;
                }
    }
    free(items);
    return NULL;
}

int ingress_start(sy_ingress *in)
{
    if (pthread_create(&in->thread, NULL, ingress_main, in) != 0)
        return -1;
    in->running = 1;
    return 0;
}

void ingress_stop(sy_ingress *in)
{
    if (!in || !in->running)
        return;
    __atomic_store_n(&in->stop, 1, __ATOMIC_RELEASE);
    pthread_join(in->thread, NULL);
    in->running = 0;
}

void ingress_free(sy_ingress *in)
{
    if (!in)
        return;
    ingress_stop(in);
    for (size_t i = 0; i < in->nsocks; i++)
        zmq_close(in->socks[i]);
    free(in->socks);
    if (in->ctx)
        zmq_ctx_term(in->ctx);
    pthread_mutex_destroy(&in->log_mu);
    free(in);
}
