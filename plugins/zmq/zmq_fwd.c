/*
 * zmq_fwd.c - forwards deliveries to a ZeroMQ PUSH or PUB socket.
 *
 * ZeroMQ sockets are not thread-safe, so each instance has one sender
 * thread and the core's workers only queue deliveries (submit never blocks
 * them). The socket is opened by that thread on the first delivery, never
 * in init (zmq_sock.h says why, and how a bound socket is shared with the
 * instance a reload puts next to this one); while it cannot be opened,
 * deliveries retry with the reason, and the next batch tries again.
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
    zsock_settings s;
    zsock *sock;     /* NULL until the first delivery opens it; the thread's own */
    int open_failing; /* failed opens in a row, to log the first and the recovery */
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

/* Binds or connects, on the first delivery and after a failure. 0, or -1 with detail. */
static int open_socket(zfwd *f, char *detail, size_t len)
{
    f->sock = zsock_open(&f->s, detail, len);
    if (!f->sock) {
        if (!f->open_failing++)
            f->host->log(f->inst, SY_LOG_ERROR, "cannot open the socket, deliveries are retried: %s",
                         detail);
        return -1;
    }
    if (f->open_failing)
        f->host->log(f->inst, SY_LOG_INFO, "%s %s after %d failed attempt%s",
                     f->s.bind ? "bound to" : "connecting to", f->s.addr, f->open_failing,
                     f->open_failing == 1 ? "" : "s");
    else
        f->host->log(f->inst, SY_LOG_INFO, "%s %s", f->s.bind ? "bound to" : "connecting to",
                     f->s.addr);
    f->open_failing = 0;
    return 0;
}

/* Sends a batch taken from the queue, completing each delivery. */
static void send_batch(zfwd *f, zitem *batch)
{
    char detail[SY_DETAIL_MAX];
    if (!f->sock && open_socket(f, detail, sizeof detail) != 0) {
        for (zitem *it = batch, *n; it; it = n) {
            n = it->next;
            f->host->counter_add(f->errors, 1);
            finish(f, it, SY_RETRY, detail);
        }
        return;
    }
    int failed = 0;
    for (zitem *it = batch, *n; it; it = n) {
        n = it->next;
        if (failed) {
            f->host->counter_add(f->timeouts, 1);
            finish(f, it, SY_RETRY, detail);
            continue;
        }
        const sy_delivery *d = it->d;
        /* The topic frame: the transform's route, else the event type. */
        int e = zsock_send(f->sock, d->route ? d->route : d->event_type, d->body, d->body_len,
                           f->s.send_timeout_ms);
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
}

static void *fwd_main(void *arg)
{
    zfwd *f = arg;
    pthread_mutex_lock(&f->mu);
    for (;;) {
        while (!f->head && !f->stopping)
            pthread_cond_wait(&f->cv, &f->mu);
        if (f->stopping)
            break;
        zitem *batch = f->head;
        f->head = f->tail = NULL;
        pthread_mutex_unlock(&f->mu);
        send_batch(f, batch);
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

zfwd *zfwd_start(const sy_host *host, const sy_instance *inst, const zsock_settings *s,
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
    f->errors = host->counter(inst, "errors",
                              "deliveries retried because of other send errors or a socket that "
                              "could not be opened");
    /* A socket this process has bound to the address is taken now; nothing else opens here. */
    char note[SY_DETAIL_MAX];
    f->sock = zsock_adopt(s, note, sizeof note);
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    if (pthread_create(&f->thread, NULL, fwd_main, f) != 0) {
        snprintf(err, errlen, "cannot start the sender thread");
        zsock_release(f->sock, 0);
        pthread_cond_destroy(&f->cv);
        pthread_mutex_destroy(&f->mu);
        free(f);
        return NULL;
    }
    const char *type = s->type == ZMQ_PUSH ? "push" : "pub";
    if (f->sock)
        host->log(inst, SY_LOG_INFO, "forwarding over %s, through the socket already bound to %s "
                  "(taken over)%s%s", type, s->addr, note[0] ? "; " : "", note);
    else
        host->log(inst, SY_LOG_INFO, "forwarding over %s; %s %s on the first delivery", type,
                  s->bind ? "binds" : "connects to", s->addr);
    return f;
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
    zsock_release(f->sock, f->s.linger_ms);
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
    free(f);
}
