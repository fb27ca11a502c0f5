/*
 * zmq_fwd.c - forwards deliveries to a ZeroMQ PUSH or PUB socket.
 *
 * ZeroMQ sockets are not thread-safe, so one thread owns the socket and
 * the core's workers only queue deliveries (submit never blocks them).
 *
 * PUSH: the socket is created with ZMQ_IMMEDIATE, so messages queue only
 * to peers that are connected. When no peer takes a message within
 * send_timeout, the delivery and everything queued behind it retry at
 * once: they would wait just as long, and the core's retry policy is the
 * right place to wait for a peer. SY_OK means ZeroMQ accepted the message
 * for a connected peer; it is not an acknowledgement from the consumer.
 *
 * PUB: sends never block; a subscriber that is absent or too slow (past
 * its high-water mark) misses messages, as with any ZeroMQ publisher.
 * Every send is OK.
 */
#include "zmq_fwd.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

typedef struct zitem {
    const sy_delivery *d;
    struct zitem *next;
} zitem;

struct zfwd {
    const sy_host *host;
    const sy_instance *inst;
    zfwd_settings s;
    void *ctx, *sock;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    zitem *head, *tail;
    int stopping;
    sy_counter *sent, *timeouts, *errors;
};

static void finish(zfwd *f, zitem *it, sy_result r, const char *detail)
{
    sy_outcome o = SY_OUTCOME_INIT;
    sy_outcome_set(&o, r, 0, detail);
    f->host->complete(it->d, &o);
    free(it);
}

/* Sends [event_type, body]. 0, or the errno of the failure. */
static int send_one(zfwd *f, const sy_delivery *d)
{
    const char *t = d->event_type;
    /* A multipart message is queued whole or not at all: only the first frame can block. */
    if (zmq_send(f->sock, t, strlen(t), ZMQ_SNDMORE) < 0)
        return errno;
    if (zmq_send(f->sock, d->body, d->body_len, 0) < 0)
        return errno;
    return 0;
}

static void *fwd_main(void *arg)
{
    zfwd *f = arg;
    char detail[SY_DETAIL_MAX];
    pthread_mutex_lock(&f->mu);
    for (;;) {
        while (!f->head && !f->stopping)
            pthread_cond_wait(&f->cv, &f->mu);
        if (f->stopping)
            break;
        zitem *batch = f->head;
        f->head = f->tail = NULL;
        pthread_mutex_unlock(&f->mu);
        int failed = 0;
        for (zitem *it = batch, *n; it; it = n) {
            n = it->next;
            if (failed) {
                f->host->counter_add(f->timeouts, 1);
                finish(f, it, SY_RETRY, detail);
                continue;
            }
            int e = send_one(f, it->d);
            if (e == 0) {
                f->host->counter_add(f->sent, 1);
                finish(f, it, SY_OK, NULL);
            } else if (e == EAGAIN) {
                f->host->counter_add(f->timeouts, 1);
                snprintf(detail, sizeof detail,
                         "no ZeroMQ peer took the message within %dms (%s %s)",
                         f->s.send_timeout_ms, f->s.bind ? "bind" : "connect", f->s.addr);
                finish(f, it, SY_RETRY, detail);
                failed = 1;
            } else {
                f->host->counter_add(f->errors, 1);
                snprintf(detail, sizeof detail, "zmq_send: %s", zmq_strerror(e));
                finish(f, it, SY_RETRY, detail);
            }
        }
        pthread_mutex_lock(&f->mu);
    }
    zitem *rest = f->head;
    f->head = f->tail = NULL;
    pthread_mutex_unlock(&f->mu);
    for (zitem *n; rest; rest = n) {
        n = rest->next;
        finish(f, rest, SY_RETRY, "switchyard is stopping");
    }
    return NULL;
}

zfwd *zfwd_start(const sy_host *host, const sy_instance *inst, const zfwd_settings *s,
                 char *err, size_t errlen)
{
    zfwd *f = calloc(1, sizeof *f);
    if (!f) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    f->host = host;
    f->inst = inst;
    f->s = *s;
    f->sent = host->counter(inst, "sent", "messages ZeroMQ accepted (deliveries OK)");
    f->timeouts = host->counter(inst, "timeouts",
                                "deliveries retried because no peer took them in time");
    f->errors = host->counter(inst, "errors", "other send errors (retried)");
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    int one = 1, io_threads = 1;
    if (!(f->ctx = zmq_ctx_new()) || zmq_ctx_set(f->ctx, ZMQ_IO_THREADS, io_threads) != 0 ||
        !(f->sock = zmq_socket(f->ctx, s->type))) {
        snprintf(err, errlen, "cannot create the ZeroMQ socket: %s", zmq_strerror(errno));
        goto fail;
    }
    zmq_setsockopt(f->sock, ZMQ_SNDHWM, &s->sndhwm, sizeof s->sndhwm);
    zmq_setsockopt(f->sock, ZMQ_SNDTIMEO, &s->send_timeout_ms, sizeof s->send_timeout_ms);
    zmq_setsockopt(f->sock, ZMQ_LINGER, &s->linger_ms, sizeof s->linger_ms);
    if (s->type == ZMQ_PUSH)
        zmq_setsockopt(f->sock, ZMQ_IMMEDIATE, &one, sizeof one);
    if ((s->bind ? zmq_bind(f->sock, s->addr) : zmq_connect(f->sock, s->addr)) != 0) {
        snprintf(err, errlen, "%s: cannot %s %s: %s", s->bind ? "bind" : "connect",
                 s->bind ? "bind" : "connect to", s->addr, zmq_strerror(errno));
        goto fail;
    }
    if (pthread_create(&f->thread, NULL, fwd_main, f) != 0) {
        snprintf(err, errlen, "cannot start the sender thread");
        goto fail;
    }
    return f;
fail:
    if (f->sock) {
        int zero = 0;
        zmq_setsockopt(f->sock, ZMQ_LINGER, &zero, sizeof zero);
        zmq_close(f->sock);
    }
    if (f->ctx)
        zmq_ctx_term(f->ctx);
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
    free(f);
    return NULL;
}

int zfwd_submit(zfwd *f, const sy_delivery *d)
{
    zitem *it = calloc(1, sizeof *it);
    if (!it)
        return -1;
    it->d = d;
    pthread_mutex_lock(&f->mu);
    if (f->tail)
        f->tail->next = it;
    else
        f->head = it;
    f->tail = it;
    pthread_cond_signal(&f->cv);
    pthread_mutex_unlock(&f->mu);
    return 0;
}

void zfwd_stop(zfwd *f)
{
    if (!f)
        return;
    pthread_mutex_lock(&f->mu);
    f->stopping = 1;
    pthread_cond_signal(&f->cv);
    pthread_mutex_unlock(&f->mu);
    pthread_join(f->thread, NULL);
    /* Messages ZeroMQ accepted get `linger` to leave before the context goes. */
    zmq_close(f->sock);
    zmq_ctx_term(f->ctx);
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
    free(f);
}
