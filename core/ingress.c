/*
 * ingress.c - receive in batches, validate, route, hand to the pipeline.
 */
#include "ingress.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "clock.h"
#include "envelope.h"
#include "log.h"
#include "stats.h"

struct sy_ingress {
    sy_pipeline *pl;
    sy_quarantine *q;
    void *ctx;
    void *reply_pull;  /* ingress thread: acknowledgements from the spool writer */
    void *reply_push;  /* spool writer thread only */
    void **socks;
    ingress_type *types; /* of each socket, copied: reloads free the config */
    void **monitors;   /* PAIR sockets receiving each socket's disconnect events */
    size_t nsocks;
    size_t max_pending;     /* restart settings, copied */
    uint64_t max_pending_bytes;
    pthread_t thread;
    int running;
    int stop; /* atomic */
    int paused;
};

static uint64_t g_disconnects;

uint64_t ingress_disconnects(void)
{
    return __atomic_load_n(&g_disconnects, __ATOMIC_RELAXED);
}

static void *open_monitor(sy_ingress *in, void *s, size_t i)
{
    char addr[80];
    snprintf(addr, sizeof addr, "inproc://sy-ingress-mon-%p-%zu", (void *)in, i);
    if (zmq_socket_monitor(s, addr, ZMQ_EVENT_DISCONNECTED) != 0)
        return NULL;
    void *m = zmq_socket(in->ctx, ZMQ_PAIR);
    int zero = 0;
    zmq_setsockopt(m, ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_connect(m, addr) != 0) {
        zmq_close(m);
        return NULL;
    }
    return m;
}

sy_ingress *ingress_new(const sy_conf *c, sy_pipeline *pl, sy_quarantine *q, char *err,
                        size_t errlen)
{
    sy_ingress *in = calloc(1, sizeof *in);
    if (!in) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    in->pl = pl;
    in->q = q;
    in->max_pending = (size_t)c->max_pending;
    in->max_pending_bytes = (uint64_t)c->max_pending_bytes;
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
    size_t n = c->ningress ? c->ningress : 1;
    in->socks = calloc(n, sizeof *in->socks);
    in->types = calloc(n, sizeof *in->types);
    in->monitors = calloc(n, sizeof *in->monitors);
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
        /* Slightly oversized messages are read and rejected as too_big; a
         * peer sending more is cut off by ZeroMQ before it buffers a byte. */
        int64_t maxmsg = c->max_event_bytes + INGRESS_MSG_MARGIN;
        zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
        for (char **t = ic->topics; ic->type == INGRESS_SUB && t && *t; t++)
            zmq_setsockopt(s, ZMQ_SUBSCRIBE, *t, strlen(*t));
        in->monitors[i] = open_monitor(in, s, i);
        int rc = ic->bind ? zmq_bind(s, ic->addr) : zmq_connect(s, ic->addr);
        if (rc != 0) {
            snprintf(err, errlen, "core.ingress[%zu]: cannot %s %s: %s", i,
                     ic->bind ? "bind" : "connect", ic->addr, zmq_strerror(zmq_errno()));
            /* Its monitor too: ingress_free closes those of the sockets kept, and a socket
             * left open holds zmq_ctx_term (the daemon hung at start, not exiting). */
            if (in->monitors[i]) {
                zmq_close(in->monitors[i]);
                in->monitors[i] = NULL;
            }
            zmq_socket_monitor(s, NULL, 0);
            zmq_close(s);
            ingress_free(in);
            return NULL;
        }
        in->socks[in->nsocks++] = s;
        log_fields(SY_LOG_INFO, "ingress listening",
                   LOG_S("type", ic->type == INGRESS_PULL  ? "pull"
                                 : ic->type == INGRESS_SUB ? "sub"
                                                           : "ack"),
                   LOG_S(ic->bind ? "bind" : "connect", ic->addr));
    }
    pipeline_set_ingress(pl, in);
    return in;
}

/* ---- rejections and replies ---------------------------------------------------- */

static void reject(sy_ingress *in, env_reason r, const char *why, const char *body, size_t len)
{
    STAT_INC(rejected, 1);
    STAT_INC(rejected_by[r], 1);
    if (in->q) {
        int rc = quarantine_write(in->q, mono_ms(), envelope_reason_name(r), why, body, len);
        if (rc == QUARANTINE_KEPT)
            STAT_INC(quarantined, 1);
        else if (rc == QUARANTINE_DROPPED)
            STAT_INC(quarantine_dropped, 1);
        else
            STAT_INC(quarantine_errors, 1);
    }
    log_fields_limited(SY_LOG_WARN, "event rejected", LOG_S("reason", envelope_reason_name(r)),
                       LOG_S("detail", why), LOG_I("size", len));
}

/* Sends [index?, identity, tag?, text] on sock. Only the thread owning sock calls it. */
static void send_reply(void *sock, const reply_to *to, const char *text, int with_index)
{
    if (with_index)
        zmq_send(sock, &to->sock, 1, ZMQ_SNDMORE);
    zmq_send(sock, to->ident, to->ident_len, ZMQ_SNDMORE);
    if (to->has_tag)
        zmq_send(sock, to->tag, to->tag_len, ZMQ_SNDMORE);
    zmq_send(sock, text, strlen(text), 0);
}

void ingress_reply_now(sy_ingress *in, const reply_to *to, const char *text)
{
    if (to->sock < in->nsocks)
        send_reply(in->socks[to->sock], to, text, 0);
}

void ingress_reply_from_spool(sy_ingress *in, const reply_to *to, const char *text)
{
    send_reply(in->reply_push, to, text, 1);
}

/* Moves acknowledgements from the spool writer to their ROUTER sockets. */
static void forward_replies(sy_ingress *in)
{
    for (int k = 0; k < 4096; k++) {
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

/* ---- reading ----------------------------------------------------------------------- */

/* Validates and routes one message into the batch, or rejects it (and answers). */
static void accept_one(sy_ingress *in, pl_batch *b, sy_runtime *rt, const char *body,
                       size_t len, int nframes, const reply_to *to)
{
    STAT_INC(received, 1);
    char why[512];
    env_reason r;
    if (nframes < 1 || nframes > 2) {
        snprintf(why, sizeof why, "expected 1 or 2 frames ([body] or [topic, body]), got %d",
                 nframes);
        r = ENV_BAD_FRAMES;
    } else {
        r = pipeline_route(in->pl, b, rt, body, len, to, 0, NULL, NULL, why, sizeof why);
        if (r == ENV_OK)
            return;
    }
    reject(in, r, why, body, len);
    if (to) {
        char text[640];
        snprintf(text, sizeof text, "error %s: %s", envelope_reason_name(r), why);
        ingress_reply_now(in, to, text);
    }
}

/*
 * Reads one whole multipart message from socket i without waiting.
 * ROUTER messages open with the peer's identity, kept for the reply;
 * frames beyond the last two are only counted. Returns the bytes read,
 * or -1 when nothing was waiting.
 */
static long read_one(sy_ingress *in, pl_batch *b, sy_runtime *rt, size_t i)
{
    void *s = in->socks[i];
    int router = in->types[i] == INGRESS_ACK;
    zmq_msg_t frames[3];
    int nframes = 0, more = 1, total = 0;
    long bytes = 0;
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
        bytes += (long)zmq_msg_size(m);
        if (m == &tmp)
            zmq_msg_close(&tmp);
        nframes++;
        total++;
    }
    if (router && total >= 1) {
        reply_to to = {.sock = (unsigned char)i};
        to.ident_len = zmq_msg_size(&frames[0]);
        if (to.ident_len > sizeof to.ident)
            to.ident_len = sizeof to.ident;
        memcpy(to.ident, zmq_msg_data(&frames[0]), to.ident_len);
        int payload = total - 1;
        if (payload == 2) {
            size_t tl = zmq_msg_size(&frames[1]);
            if (tl > sizeof to.tag) {
                /* Cut short, the tag could not be matched by its publisher: refuse the
                 * message, answering with the whole tag as it came. */
                static const char text[] = "error bad_frames: the tag is longer than 256 bytes";
                STAT_INC(received, 1);
                reject(in, ENV_BAD_FRAMES, "tag longer than 256 bytes", zmq_msg_data(&frames[2]),
                       zmq_msg_size(&frames[2]));
                zmq_send(s, zmq_msg_data(&frames[0]), zmq_msg_size(&frames[0]), ZMQ_SNDMORE);
                zmq_send(s, zmq_msg_data(&frames[1]), tl, ZMQ_SNDMORE);
                zmq_send(s, text, sizeof text - 1, 0);
                goto out;
            }
            to.has_tag = 1;
            to.tag_len = tl;
            memcpy(to.tag, zmq_msg_data(&frames[1]), tl);
        }
        zmq_msg_t *body = payload >= 2 ? &frames[2] : &frames[1];
        accept_one(in, b, rt, zmq_msg_data(body), zmq_msg_size(body), payload, &to);
    } else if (total > 0) {
        zmq_msg_t *body = total >= 2 ? &frames[1] : &frames[0];
        accept_one(in, b, rt, zmq_msg_data(body), zmq_msg_size(body), total, NULL);
    }
out:
    for (int k = 0; k < 3; k++)
        zmq_msg_close(&frames[k]);
    return total ? bytes : -1;
}

/* Round robin over the sockets with input, until the batch is full or nothing waits. */
static void read_batch(sy_ingress *in, const zmq_pollitem_t *items)
{
    sy_runtime *rt = runtime_current();
    if (!rt)
        return;
    pl_batch *b = pipeline_batch_new(rt);
    if (!b) {
        runtime_unref(rt);
        return;
    }
    unsigned char live[256];
    size_t nlive = 0;
    for (size_t i = 0; i < in->nsocks && i < sizeof live; i++)
        if (items[i].revents & ZMQ_POLLIN)
            live[nlive++] = (unsigned char)i;
    size_t msgs = 0, bytes = 0;
    while (nlive && msgs < INGRESS_BATCH && bytes < INGRESS_BATCH_BYTES) {
        for (size_t k = 0; k < nlive;) {
            long n = read_one(in, b, rt, live[k]);
            if (n < 0) {
                live[k] = live[--nlive]; /* drained */
                continue;
            }
            msgs++;
            bytes += (size_t)n;
            k++;
        }
    }
    if (msgs)
        STAT_INC(ingress_batches, 1);
    pipeline_submit(in->pl, b);
    runtime_unref(rt);
}

static void count_disconnects(sy_ingress *in, const zmq_pollitem_t *items, size_t first)
{
    for (size_t i = 0; i < in->nsocks; i++) {
        if (!in->monitors[i] || !(items[first + i].revents & ZMQ_POLLIN))
            continue;
        for (;;) {
            zmq_msg_t m;
            zmq_msg_init(&m);
            if (zmq_msg_recv(&m, in->monitors[i], ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(&m);
                break;
            }
            /* An event is two frames: 6 bytes (event number, value), then the address. */
            if (zmq_msg_size(&m) == 6) {
                uint16_t ev;
                memcpy(&ev, zmq_msg_data(&m), sizeof ev);
                if (ev == ZMQ_EVENT_DISCONNECTED)
                    __atomic_add_fetch(&g_disconnects, 1, __ATOMIC_RELAXED);
            }
            zmq_msg_close(&m);
        }
    }
}

static void *ingress_main(void *arg)
{
    sy_ingress *in = arg;
    stats_thread_block();
    pthread_setname_np(pthread_self(), "sy-ingress");
    /* The sockets, the replies from the spool writer, then the monitors. */
    size_t nitems = 2 * in->nsocks + 1;
    zmq_pollitem_t *items = calloc(nitems, sizeof *items);
    for (size_t i = 0; i < in->nsocks; i++) {
        items[i].socket = in->socks[i];
        items[i].events = ZMQ_POLLIN;
        items[in->nsocks + 1 + i].socket = in->monitors[i];
        items[in->nsocks + 1 + i].events = in->monitors[i] ? ZMQ_POLLIN : 0;
    }
    items[in->nsocks].socket = in->reply_pull;
    items[in->nsocks].events = ZMQ_POLLIN;
    while (!__atomic_load_n(&in->stop, __ATOMIC_ACQUIRE)) {
        size_t backlog = pipeline_backlog(in->pl);
        uint64_t live = pipeline_bytes();
        int paused = backlog >= in->max_pending || live >= in->max_pending_bytes;
        if (paused && !in->paused) {
            in->paused = 1;
            STAT_INC(backpressure_pauses, 1);
            log_fields(SY_LOG_WARN, "back-pressure: pausing ingress",
                       LOG_S("reason", backlog >= in->max_pending ? "core.max_pending"
                                                                   : "core.max_pending_bytes"),
                       LOG_I("backlog", backlog), LOG_I("bytes", live));
        } else if (!paused && in->paused) {
            in->paused = 0;
            log_info("backlog below core.max_pending and core.max_pending_bytes; resuming ingress");
        }
        /* While paused only acknowledgements and monitors move; events wait in ZeroMQ. */
        for (size_t i = 0; i < in->nsocks; i++)
            items[i].events = paused ? 0 : ZMQ_POLLIN;
        int rc = zmq_poll(items, (int)nitems, paused ? 5 : 100);
        if (rc < 0) {
            if (zmq_errno() == EINTR)
                continue;
            log_error("zmq_poll: %s", zmq_strerror(zmq_errno()));
            break;
        }
        if (items[in->nsocks].revents & ZMQ_POLLIN)
            forward_replies(in);
        count_disconnects(in, items, in->nsocks + 1);
        if (!paused && rc > 0)
            read_batch(in, items);
    }
    /* Replies of events committed while stopping still go out. */
    forward_replies(in);
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
    if (in->pl)
        pipeline_set_ingress(in->pl, NULL);
    for (size_t i = 0; i < in->nsocks; i++) {
        zmq_socket_monitor(in->socks[i], NULL, 0);
        zmq_close(in->socks[i]);
    }
    for (size_t i = 0; in->monitors && i < (in->nsocks ? in->nsocks : 1); i++)
        if (in->monitors[i])
            zmq_close(in->monitors[i]);
    free(in->socks);
    free(in->types);
    free(in->monitors);
    if (in->reply_pull)
        zmq_close(in->reply_pull);
    if (in->reply_push)
        zmq_close(in->reply_push);
    if (in->ctx)
        zmq_ctx_term(in->ctx);
    free(in);
}
