/*
 * zmq_fwd.c - forwards deliveries to a ZeroMQ PUSH or PUB socket.
 *
 * ZeroMQ sockets are not thread-safe, so each instance has one sender
 * thread, and submit_batch only queues the core's batch for it: one
 * allocation, one lock and at most one wake-up per batch, never a wait on
 * the network. The thread takes every batch queued since it last looked
 * and sends their messages back to back. The socket is opened by that
 * thread on the first delivery, never in init (zmq_sock.h says why, and
 * how a bound socket is shared with the instance a reload puts next to
 * this one); while it cannot be opened, deliveries retry with the reason,
 * and the next batch tries again. A delivery that waited in the queue past
 * the core's deadline is not sent: the core has retried it already.
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

#include "../_queue/qbatch.h"

/* One submit_batch call, sent and completed whole by the sender thread, then freed. */
typedef struct zbatch {
    struct zbatch *next;
    size_t n;
    const sy_delivery *d[];
} zbatch;

struct zfwd {
    const sy_host *host;
    const sy_instance *inst;
    zsock_settings s;
    zsock *sock;     /* NULL until the first delivery opens it; the thread's own */
    int open_failing; /* failed opens in a row, to log the first and the recovery */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    zbatch *head, *tail;
    int waiting; /* the thread sleeps on cv: a new batch must signal it */
    int stopping;
    sy_counter *batches, *sent, *timeouts, *errors, *expired;
};

static void finish(zfwd *f, const sy_delivery *d, sy_result r, const char *detail)
{
    sy_outcome o = SY_OUTCOME_INIT;
    sy_outcome_set(&o, r, 0, detail);
    f->host->complete(d, &o);
}

/* Completes every delivery of the batches from b on, and frees them. */
static void finish_all(zfwd *f, zbatch *b, sy_counter *c, const char *detail)
{
    for (zbatch *n; b; b = n) {
        n = b->next;
        for (size_t i = 0; i < b->n; i++) {
            if (c)
                f->host->counter_add(c, 1);
            finish(f, b->d[i], SY_RETRY, detail);
        }
        free(b);
    }
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

/*
 * Sends one delivery. 0 when ZeroMQ took it; -1 when it timed out, with
 * the reason in detail: what is queued behind it would wait as long.
 */
static int send_one(zfwd *f, const sy_delivery *d, char *detail, size_t len)
{
    if (qbatch_expired(d, f->host->monotonic_ms())) {
        f->host->counter_add(f->expired, 1);
        finish(f, d, SY_RETRY, "waited in the plugin past its deadline; not sent");
        return 0;
    }
    /* The topic frame: the transform's route, else the event type. */
    int e = zsock_send(f->sock, d->route ? d->route : d->event_type, d->body, d->body_len,
                       f->s.send_timeout_ms);
    if (e == 0) {
        f->host->counter_add(f->sent, 1);
        finish(f, d, SY_OK, NULL);
    } else if (e == EAGAIN) {
        f->host->counter_add(f->timeouts, 1);
        snprintf(detail, len, "no ZeroMQ peer took the message within %dms (%s %s)",
                 f->s.send_timeout_ms, f->s.bind ? "bind" : "connect", f->s.addr);
        finish(f, d, SY_RETRY, detail);
        return -1;
    } else {
        char why[SY_DETAIL_MAX];
        f->host->counter_add(f->errors, 1);
        snprintf(why, sizeof why, "zmq_send: %s", zmq_strerror(e));
        finish(f, d, SY_RETRY, why);
    }
    return 0;
}

/* Sends the batches taken from the queue, back to back, completing each delivery. */
static void send_batches(zfwd *f, zbatch *b)
{
    char detail[SY_DETAIL_MAX];
    if (!f->sock && open_socket(f, detail, sizeof detail) != 0) {
        finish_all(f, b, f->errors, detail);
        return;
    }
    for (zbatch *n; b; b = n) {
        n = b->next;
        for (size_t i = 0; i < b->n; i++) {
            if (send_one(f, b->d[i], detail, sizeof detail) == 0)
                continue;
            /* A timeout: the rest of this batch and every batch taken with it retry at once. */
            for (size_t j = i + 1; j < b->n; j++) {
                f->host->counter_add(f->timeouts, 1);
                finish(f, b->d[j], SY_RETRY, detail);
            }
            free(b);
            finish_all(f, n, f->timeouts, detail);
            return;
        }
        free(b);
    }
}

static void *fwd_main(void *arg)
{
    zfwd *f = arg;
    pthread_mutex_lock(&f->mu);
    for (;;) {
        while (!f->head && !f->stopping) {
            f->waiting = 1;
            pthread_cond_wait(&f->cv, &f->mu);
            f->waiting = 0;
        }
        if (f->stopping)
            break;
        zbatch *b = f->head;
        f->head = f->tail = NULL;
        pthread_mutex_unlock(&f->mu);
        send_batches(f, b);
        pthread_mutex_lock(&f->mu);
    }
    zbatch *rest = f->head;
    f->head = f->tail = NULL;
    pthread_mutex_unlock(&f->mu);
    finish_all(f, rest, NULL, "switchyard is stopping");
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
    f->batches = host->counter(inst, "batches", "batches of deliveries taken from the core");
    f->sent = host->counter(inst, "sent", "messages ZeroMQ accepted (deliveries OK)");
    f->timeouts = host->counter(inst, "timeouts",
                                "deliveries retried because no peer took them in time");
    f->errors = host->counter(inst, "errors",
                              "deliveries retried because of other send errors or a socket that "
                              "could not be opened");
    f->expired = host->counter(inst, "expired",
                               "deliveries not sent because they waited in the plugin past the "
                               "core's deadline (retried)");
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

void zfwd_submit(zfwd *f, const sy_delivery *const *d, size_t n)
{
    zbatch *b = malloc(sizeof *b + n * sizeof b->d[0]);
    if (!b) {
        qbatch_refuse(f->host, d, n, "out of memory taking the batch");
        return;
    }
    b->next = NULL;
    b->n = n;
    memcpy(b->d, d, n * sizeof b->d[0]);
    f->host->counter_add(f->batches, 1);
    pthread_mutex_lock(&f->mu);
    if (f->tail)
        f->tail->next = b;
    else
        f->head = b;
    f->tail = b;
    /* Only a sleeping thread needs the signal; a busy one takes the batch on its next look. */
    if (f->waiting)
        pthread_cond_signal(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

int zfwd_send_timeout_ms(const zfwd *f)
{
    return f->s.send_timeout_ms;
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
