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

#include "clock.h"
#include "envelope.h"
#include "log.h"
#include "router.h"
#include "stats.h"

#define MAX_MATCH_STACK 64

struct sy_ingress {
    sy_runtime *rt;
    sy_dispatch *dp;
    sy_quarantine *q;
    sy_spool *spool;
    void *ctx;
    void *reply_pull;  /* ingress thread: acknowledgements from the spool writer */
    void *reply_push;  /* spool writer thread only */
    void **socks;
    ingress_type *types; /* of each socket, copied: reloads free the config */
    size_t nsocks;
    pthread_t thread;
    int running;
    int stop; /* atomic */
    int paused;
};

sy_ingress *ingress_new(sy_runtime *rt, sy_dispatch *dp, sy_spool *spool, sy_quarantine *q,
                        char *err, size_t errlen)
{
    sy_ingress *in = calloc(1, sizeof *in);
    in->rt = rt;
    in->dp = dp;
    in->spool = spool;
    in->q = q;
    in->ctx = zmq_ctx_new();
    {
        char addr[64];
        snprintf(addr, sizeof addr, "inproc://sy-replies-%p", (void *)in);
        int zero = 0, hwm = 0;
        in->reply_pull = zmq_socket(in->ctx, ZMQ_PULL);
        in->reply_push = zmq_socket(in->ctx, ZMQ_PUSH);
        zmq_setsockopt(in->reply_pull, ZMQ_LINGER, &zero, sizeof zero);
        zmq_setsockopt(in->reply_push, ZMQ_LINGER, &zero, sizeof zero);
        zmq_setsockopt(in->reply_pull, ZMQ_RCVHWM, &hwm, sizeof hwm);
        zmq_setsockopt(in->reply_push, ZMQ_SNDHWM, &hwm, sizeof hwm);
        zmq_bind(in->reply_pull, addr);
        zmq_connect(in->reply_push, addr);
    }
    const sy_conf *c = rt->conf;
    in->socks = calloc(c->ningress ? c->ningress : 1, sizeof *in->socks);
    in->types = calloc(c->ningress ? c->ningress : 1, sizeof *in->types);
    for (size_t i = 0; i < c->ningress; i++)
        in->types[i] = c->ingress[i].type;
    for (size_t i = 0; i < c->ningress; i++) {
        const sy_ingress_conf *ic = &c->ingress[i];
        int type = ic->type == INGRESS_PULL ? ZMQ_PULL : ic->type == INGRESS_SUB ? ZMQ_SUB : ZMQ_ROUTER;
        void *s = zmq_socket(in->ctx, type);
        int linger = 0;
        zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
        zmq_setsockopt(s, ZMQ_RCVHWM, &ic->rcvhwm, sizeof ic->rcvhwm);
        if (type == ZMQ_ROUTER) {
            /* A ROUTER drops replies silently past its send limit: answers
             * are small and each one matters, so no limit. */
            int unlimited = 0;
            zmq_setsockopt(s, ZMQ_SNDHWM, &unlimited, sizeof unlimited);
        }
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
        log_kv(SY_LOG_INFO, "ingress listening", "type",
               ic->type == INGRESS_PULL ? "pull" : ic->type == INGRESS_SUB ? "sub" : "ack",
               ic->bind ? "bind" : "connect", ic->addr, NULL);
    }
    return in;
}

static void reject(sy_ingress *in, env_reason r, const char *why, const char *body, size_t len)
{
    STAT_ADD(g_stats.rejected, 1);
    STAT_ADD(g_stats.rejected_by[r], 1);
    if (in->q) {
        int rc = quarantine_write(in->q, mono_ms(), envelope_reason_name(r), why, body, len);
        if (rc == QUARANTINE_KEPT)
            STAT_ADD(g_stats.quarantined, 1);
        else if (rc == QUARANTINE_DROPPED)
            STAT_ADD(g_stats.quarantine_dropped, 1);
        else
            STAT_ADD(g_stats.quarantine_errors, 1);
    }
    log_fields_limited(SY_LOG_WARN, "event rejected", LOG_S("reason", envelope_reason_name(r)),
                       LOG_S("detail", why), LOG_I("size", len));
}

/* Where an acknowledgement goes: the ROUTER socket, peer identity, tag. */
typedef struct reply_to {
    unsigned char sock;        /* index into in->socks */
    unsigned char ident[256];
    size_t ident_len;
    unsigned char tag[256];
    size_t tag_len;
    int has_tag;
} reply_to;

/* Sends [identity, tag?, text] on sock. Only the thread owning sock calls it. */
static void send_reply(void *sock, const reply_to *to, const char *text, int with_index)
{
    if (with_index)
        zmq_send(sock, &to->sock, 1, ZMQ_SNDMORE);
    zmq_send(sock, to->ident, to->ident_len, ZMQ_SNDMORE);
    if (to->has_tag)
        zmq_send(sock, to->tag, to->tag_len, ZMQ_SNDMORE);
    zmq_send(sock, text, strlen(text), 0);
}

/* An event waiting for its spool transaction. */
typedef struct put_ctx {
    sy_ingress *in;
    size_t n;
    int reply;
    reply_to to;
    sy_endpoint **eps;
    const char **ids;
} put_ctx;

/* Runs on the spool writer thread once the event is on disk (or not). */
static void on_stored(void *arg, spool_status st, sy_event *ev, const int64_t *ids)
{
    put_ctx *p = arg;
    sy_ingress *in = p->in;
    char text[320];
    if (st == SPOOL_OK) {
        if (p->n)
            dispatch_event(in->dp, ev, p->eps, p->n, ids);
        snprintf(text, sizeof text, "ok %s", ev->event_id);
    } else if (st == SPOOL_DUP) {
        STAT_ADD(g_stats.duplicates, 1);
        if (log_enabled(SY_LOG_DEBUG))
            log_debug("duplicate event %s ignored", ev->event_id);
        snprintf(text, sizeof text, "dup %s", ev->event_id);
    } else {
        STAT_ADD(g_stats.spool_errors, 1);
        log_fields_limited(SY_LOG_ERROR, "event not stored: spool write failed",
                           LOG_S("event_id", ev->event_id));
        snprintf(text, sizeof text, "error spool_failed: the event was not stored; send it again");
    }
    if (p->reply)
        send_reply(in->reply_push, &p->to, text, 1);
    free(p);
}

static void accept_with(sy_ingress *in, sy_runtime *rt, const char *body, size_t len,
                        int nframes, const reply_to *to, int system, const char *exclude,
                        sy_endpoint *only)
{
    if (system)
        STAT_ADD(g_stats.system_events, 1);
    else
        STAT_ADD(g_stats.received, 1);
    if (nframes < 1 || nframes > 2) {
        char why[96];
        snprintf(why, sizeof why, "expected 1 or 2 frames ([body] or [topic, body]), got %d",
                 nframes);
        reject(in, ENV_BAD_FRAMES, why, body, len);
        if (to)
            send_reply(in->socks[to->sock], to, "error bad_frames: expected [body] or [tag, body]", 0);
        return;
    }
    const sy_conf *c = rt->conf;
    sy_event *ev = NULL;
    char why[512];
    env_reason r = envelope_parse(body, len, (size_t)c->max_event_bytes, c->max_depth, &ev, why,
                                  sizeof why);
    if (r != ENV_OK) {
        reject(in, r, why, body, len);
        if (to) {
            char text[640];
            snprintf(text, sizeof text, "error %s: %s", envelope_reason_name(r), why);
            send_reply(in->socks[to->sock], to, text, 0);
        }
        return;
    }
    STAT_ADD(g_stats.accepted, 1);
    ev->received_ms = wall_ms();
    ev->system = system;
    void *stack[MAX_MATCH_STACK];
    void **match = stack;
    size_t n;
    if (only) {
        stack[0] = only;
        n = 1;
    } else if ((n = router_match(rt->router, ev, stack, MAX_MATCH_STACK)) > MAX_MATCH_STACK) {
        match = malloc(n * sizeof *match);
        n = router_match(rt->router, ev, match, n);
    }
    /* Disabled endpoints, and the endpoint a system event is about, get nothing. */
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        sy_endpoint *ep = match[i];
        if (__atomic_load_n(&ep->disabled, __ATOMIC_ACQUIRE) ||
            (exclude && !strcmp(ep->conf->id, exclude)))
            continue;
        match[w++] = match[i];
    }
    n = w;
    if (n == 0) {
        STAT_ADD(g_stats.unrouted, 1);
        if (log_enabled(SY_LOG_DEBUG))
            log_debug("event %s (%s) matched no endpoint", ev->event_id, ev->event_type);
    }
    if (in->spool) {
        /* Deliveries start, and the publisher hears "ok", only after COMMIT. */
        put_ctx *p = malloc(sizeof *p + n * (sizeof(sy_endpoint *) + sizeof(char *)));
        p->in = in;
        p->n = n;
        p->reply = to != NULL;
        if (to)
            p->to = *to;
        p->eps = (sy_endpoint **)(p + 1);
        p->ids = (const char **)(p->eps + n);
        for (size_t i = 0; i < n; i++) {
            p->eps[i] = match[i];
            p->ids[i] = p->eps[i]->conf->id;
        }
        spool_put_event(in->spool, ev, p->ids, n, on_stored, p);
    } else {
        if (n)
            dispatch_event(in->dp, ev, (sy_endpoint *const *)match, n, NULL);
        if (to) {
            char text[320];
            snprintf(text, sizeof text, "ok %s", ev->event_id);
            send_reply(in->socks[to->sock], to, text, 0);
        }
    }
    if (match != stack)
        free(match);
    event_unref(ev);
}

/* Routing reads the current runtime; a reload waits until this message is routed. */
static void accept_message(sy_ingress *in, const char *body, size_t len, int nframes,
                           const reply_to *to, int system, const char *exclude,
                           sy_endpoint *only)
{
    sy_runtime *rt = runtime_acquire();
    if (!rt)
        rt = in->rt; /* tests and tools that never installed a current runtime */
    accept_with(in, rt, body, len, nframes, to, system, exclude, only);
    runtime_release();
}

void ingress_handle(sy_ingress *in, const char *body, size_t len, int nframes)
{
    accept_message(in, body, len, nframes, NULL, 0, NULL, NULL);
}

void ingress_inject_system(sy_ingress *in, const char *body, size_t len, const char *exclude)
{
    accept_message(in, body, len, 1, NULL, 1, exclude, NULL);
}

/*
 * A tag longer than reply_to keeps would come back cut short and match
 * nothing the publisher sent: the message is refused, the whole tag echoed.
 */
static void refuse_long_tag(sy_ingress *in, void *sock, zmq_msg_t *ident, zmq_msg_t *tag,
                            zmq_msg_t *body)
{
    static const char text[] = "error bad_frames: the tag is longer than 256 bytes";
    STAT_ADD(g_stats.received, 1);
    reject(in, ENV_BAD_FRAMES, "tag longer than 256 bytes", zmq_msg_data(body),
           zmq_msg_size(body));
    zmq_send(sock, zmq_msg_data(ident), zmq_msg_size(ident), ZMQ_SNDMORE);
    zmq_send(sock, zmq_msg_data(tag), zmq_msg_size(tag), ZMQ_SNDMORE);
    zmq_send(sock, text, sizeof text - 1, 0);
}

/*
 * Reads one whole multipart message from socket i. ROUTER messages open
 * with the peer's identity, which is kept for the reply; frames beyond
 * the last two are only counted.
 */
static void read_one(sy_ingress *in, size_t i)
{
    void *s = in->socks[i];
    int router = in->types[i] == INGRESS_ACK;
    zmq_msg_t frames[3];
    int nframes = 0, more = 1, total = 0;
    for (int k = 0; k < 3; k++)
        zmq_msg_init(&frames[k]);
    while (more) {
        zmq_msg_t tmp, *m = nframes < 3 ? &frames[nframes] : &tmp;
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
        total++;
    }
    if (router && total == 3 && zmq_msg_size(&frames[1]) > sizeof ((reply_to *)0)->tag) {
        refuse_long_tag(in, s, &frames[0], &frames[1], &frames[2]);
    } else if (router && total >= 1) {
        reply_to to = {.sock = (unsigned char)i};
        to.ident_len = zmq_msg_size(&frames[0]);
        if (to.ident_len > sizeof to.ident)
            to.ident_len = sizeof to.ident;
        memcpy(to.ident, zmq_msg_data(&frames[0]), to.ident_len);
        int payload = total - 1;
        if (payload == 2) {
            to.has_tag = 1;
            to.tag_len = zmq_msg_size(&frames[1]);
            if (to.tag_len > sizeof to.tag)
                to.tag_len = sizeof to.tag;
            memcpy(to.tag, zmq_msg_data(&frames[1]), to.tag_len);
        }
        zmq_msg_t *b = payload >= 2 ? &frames[2] : &frames[1];
        accept_message(in, zmq_msg_data(b), zmq_msg_size(b), payload, &to, 0, NULL, NULL);
    } else if (total > 0) {
        zmq_msg_t *b = total >= 2 ? &frames[1] : &frames[0];
        accept_message(in, zmq_msg_data(b), zmq_msg_size(b), total, NULL, 0, NULL, NULL);
    }
    for (int k = 0; k < 3; k++)
        zmq_msg_close(&frames[k]);
}

/* Moves acknowledgements from the spool writer to their ROUTER sockets. */
static void forward_replies(sy_ingress *in)
{
    for (int k = 0; k < 1024; k++) {
        zmq_msg_t parts[4];
        int n = 0, more = 1;
        while (more && n < 4) {
            zmq_msg_init(&parts[n]);
            if (zmq_msg_recv(&parts[n], in->reply_pull, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(&parts[n]);
                break;
            }
            more = zmq_msg_more(&parts[n]);
            n++;
        }
        if (n == 0)
            return;
        if (n >= 3) {
            unsigned char idx = *(unsigned char *)zmq_msg_data(&parts[0]);
            void *sock = idx < in->nsocks ? in->socks[idx] : NULL;
            for (int j = 1; j < n && sock; j++)
                zmq_msg_send(&parts[j], sock, j + 1 < n ? ZMQ_SNDMORE : 0);
        }
        for (int j = 0; j < n; j++)
            zmq_msg_close(&parts[j]);
    }
}

static void *ingress_main(void *arg)
{
    sy_ingress *in = arg;
    size_t nitems = in->nsocks + 1;
    zmq_pollitem_t *items = calloc(nitems, sizeof *items);
    for (size_t i = 0; i < in->nsocks; i++) {
        items[i].socket = in->socks[i];
        items[i].events = ZMQ_POLLIN;
    }
    items[in->nsocks].socket = in->reply_pull;
    items[in->nsocks].events = ZMQ_POLLIN;
    size_t max_pending = (size_t)in->rt->conf->max_pending; /* a restart setting */
    while (!__atomic_load_n(&in->stop, __ATOMIC_ACQUIRE)) {
        size_t backlog = dispatch_backlog(in->dp) + (in->spool ? spool_queued(in->spool) : 0);
        int paused = backlog >= max_pending;
        if (paused && !in->paused) {
            in->paused = 1;
            STAT_ADD(g_stats.backpressure_pauses, 1);
            log_warn("backlog reached core.max_pending (%zu); pausing ingress", max_pending);
        } else if (!paused && in->paused) {
            in->paused = 0;
            log_info("backlog below core.max_pending; resuming ingress");
        }
        /* While paused only acknowledgements move; events wait in ZeroMQ. */
        zmq_pollitem_t *poll_from = paused ? &items[in->nsocks] : items;
        int count = paused ? 1 : (int)nitems;
        int rc = zmq_poll(poll_from, count, paused ? 5 : 100);
        if (rc < 0) {
            if (zmq_errno() == EINTR)
                continue;
            log_error("zmq_poll: %s", zmq_strerror(zmq_errno()));
            break;
        }
        if (items[in->nsocks].revents & ZMQ_POLLIN)
            forward_replies(in);
        if (paused)
            continue;
        /* Take a bounded batch per socket so one busy socket can't starve another. */
        for (size_t i = 0; i < in->nsocks; i++)
            if (items[i].revents & ZMQ_POLLIN)
                for (int k = 0; k < 256; k++) {
                    int ev = 0;
                    size_t sz = sizeof ev;
                    read_one(in, i);
                    if (zmq_getsockopt(in->socks[i], ZMQ_EVENTS, &ev, &sz) != 0 ||
                        !(ev & ZMQ_POLLIN))
                        break;
                }
    }
    /* Replies of events committed while stopping still go out. */
    forward_replies(in);
    free(items);
    return NULL;
}

void ingress_inject_to(sy_ingress *in, const char *body, size_t len, sy_endpoint *ep)
{
    accept_message(in, body, len, 1, NULL, 1, NULL, ep);
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
    free(in->types);
    if (in->reply_pull)
        zmq_close(in->reply_pull);
    if (in->reply_push)
        zmq_close(in->reply_push);
    if (in->ctx)
        zmq_ctx_term(in->ctx);
    free(in);
}
