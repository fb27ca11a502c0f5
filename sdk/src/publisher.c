/*
 * publisher.c - acknowledged publishing (switchyard/publisher.h).
 *
 * Each message goes out as [tag, body] with an 8-byte tag: the event's
 * index in the batch, never reused, so a late answer to an old copy can
 * not be taken for another event. Event i lives in slot i % window.
 *
 * No call blocks without a deadline. The socket sets ZMQ_IMMEDIATE, so a
 * message is queued only on a connection whose handshake succeeded: with
 * nothing listening, or a peer that is not a ROUTER (a PULL port refuses
 * the DEALER's handshake and libzmq does not reconnect), a send would wait
 * forever. Sends are therefore non-blocking; a copy that cannot go out
 * waits in its slot for the socket to become writable, inside the same
 * deadline as an answer.
 */
#include "switchyard/publisher.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

struct sy_publisher {
    void *ctx, *sock;
    int timeout_ms, retries;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

sy_publisher *sy_publisher_open(const char *endpoint, int timeout_ms, int retries, char *err,
                                size_t errlen)
{
    sy_publisher *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->timeout_ms = timeout_ms > 0 ? timeout_ms : 5000;
    p->retries = retries >= 0 ? retries : 5;
    p->ctx = zmq_ctx_new();
    p->sock = zmq_socket(p->ctx, ZMQ_DEALER);
    int linger = 0, hwm = 0, immediate = 1;
    zmq_setsockopt(p->sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(p->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(p->sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(p->sock, ZMQ_IMMEDIATE, &immediate, sizeof immediate);
    /* A TCP connect to a host that drops packets ends within one try. */
    zmq_setsockopt(p->sock, ZMQ_CONNECT_TIMEOUT, &p->timeout_ms, sizeof p->timeout_ms);
    if (zmq_connect(p->sock, endpoint) != 0) {
        snprintf(err, errlen, "cannot connect %s: %s", endpoint, zmq_strerror(zmq_errno()));
        sy_publisher_close(p);
        return NULL;
    }
    return p;
}

void sy_publisher_close(sy_publisher *p)
{
    if (!p)
        return;
    if (p->sock)
        zmq_close(p->sock);
    if (p->ctx)
        zmq_ctx_term(p->ctx);
    free(p);
}

typedef struct slot {
    size_t index;    /* which event */
    int64_t try_at;  /* start of the current try */
    int tries;       /* resends so far */
    int busy;
    int queued;      /* this try's copy went out */
    int ever_queued; /* some copy went out */
} slot;

/* 1: queued, 0: no connected peer to take it now, -1: socket error. */
static int send_one(sy_publisher *p, slot *s, const void *const *bodies, const size_t *lens)
{
    uint64_t tag = s->index;
    if (zmq_send(p->sock, &tag, sizeof tag, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(p->sock, bodies[s->index], lens[s->index], ZMQ_DONTWAIT) < 0)
        /* libzmq drops a message whose later frame fails: no half copy stays. */
        return zmq_errno() == EAGAIN ? 0 : -1;
    s->queued = s->ever_queued = 1;
    return 1;
}

static sy_pub_result classify(const char *a)
{
    if (!strncmp(a, "ok ", 3))
        return SY_PUB_OK;
    if (!strncmp(a, "dup ", 4))
        return SY_PUB_DUP;
    return SY_PUB_REJECTED;
}

typedef struct run {
    sy_publisher *p;
    const void *const *bodies;
    const size_t *lens;
    size_t n, window, done;
    slot *slots;
    long failed;
    sy_pub_cb cb;
    void *arg;
} run;

static void finish(run *r, slot *s, sy_pub_result res, const char *answer)
{
    if (res != SY_PUB_OK && res != SY_PUB_DUP)
        r->failed++;
    if (r->cb)
        r->cb(r->arg, s->index, res, answer);
    s->busy = 0;
    r->done++;
}

/* Reads every answer waiting on the socket. */
static void read_answers(run *r)
{
    char answer[1024];
    for (;;) {
        uint64_t tag = UINT64_MAX;
        int got = zmq_recv(r->p->sock, &tag, sizeof tag, ZMQ_DONTWAIT);
        if (got < 0)
            return;
        int more = 0;
        size_t sz = sizeof more;
        zmq_getsockopt(r->p->sock, ZMQ_RCVMORE, &more, &sz);
        /* The rest of a message is already here once its first frame is. */
        int alen = more ? zmq_recv(r->p->sock, answer, sizeof answer - 1, ZMQ_DONTWAIT) : 0;
        if (alen < 0)
            alen = 0;
        if ((size_t)alen > sizeof answer - 1)
            alen = sizeof answer - 1;
        answer[alen] = '\0';
        /* An answer to a resent message may come twice: the first wins,
         * and an answer for an event no longer in its slot is ignored. */
        slot *sl = got == (int)sizeof tag && tag < r->n ? &r->slots[tag % r->window] : NULL;
        if (sl && sl->busy && sl->index == tag)
            finish(r, sl, classify(answer), answer);
    }
}

long sy_publish_many(sy_publisher *p, size_t n, const void *const *bodies, const size_t *lens,
                     size_t window, sy_pub_cb cb, void *arg)
{
    if (!window)
        window = 1000;
    if (window > n && n)
        window = n;
    run r = {.p = p, .bodies = bodies, .lens = lens, .n = n, .window = window ? window : 1,
             .cb = cb, .arg = arg};
    r.slots = calloc(r.window, sizeof *r.slots);
    if (!r.slots)
        return -1;
    size_t next = 0;
    int no_peer = 0;
    long rc = -1;
    while (r.done < n) {
        int64_t now = mono_ms();
        /* Start the next events while their slots are free. */
        while (next < n && !r.slots[next % r.window].busy) {
            slot *s = &r.slots[next % r.window];
            *s = (slot){.index = next, .try_at = now, .busy = 1};
            if (no_peer) {
                finish(&r, s, SY_PUB_UNSENT, "");
            } else if (send_one(p, s, bodies, lens) < 0) {
                goto out;
            }
            next++;
        }
        if (r.done == n)
            break;
        /* Wait for answers (and, while a copy waits for a peer, for room to
         * send), at most until the oldest try ends. */
        int64_t wait = p->timeout_ms;
        int unsent = 0;
        for (size_t i = 0; i < r.window; i++) {
            if (!r.slots[i].busy)
                continue;
            if (r.slots[i].try_at + p->timeout_ms - now < wait)
                wait = r.slots[i].try_at + p->timeout_ms - now;
            unsent |= !r.slots[i].queued;
        }
        zmq_pollitem_t it = {.socket = p->sock,
                             .events = (short)(ZMQ_POLLIN | (unsent ? ZMQ_POLLOUT : 0))};
        if (zmq_poll(&it, 1, wait > 0 ? (long)wait : 0) < 0)
            goto out;
        if (it.revents & ZMQ_POLLIN)
            read_answers(&r);
        if (it.revents & ZMQ_POLLOUT) {
            for (size_t i = 0; i < r.window; i++) {
                slot *s = &r.slots[i];
                if (!s->busy || s->queued)
                    continue;
                int sent = send_one(p, s, bodies, lens);
                if (sent < 0)
                    goto out;
                if (!sent)
                    break;
            }
        }
        /* Resend what timed out; give up after the last retry. */
        now = mono_ms();
        for (size_t i = 0; i < r.window; i++) {
            slot *s = &r.slots[i];
            if (!s->busy || now - s->try_at < p->timeout_ms)
                continue;
            if (s->tries >= p->retries || no_peer) {
                /* A copy that never went out for a whole deadline means no
                 * peer the whole time: the events not yet sent end now. */
                no_peer |= !s->ever_queued;
                finish(&r, s, s->ever_queued ? SY_PUB_TIMEOUT : SY_PUB_UNSENT, "");
                continue;
            }
            s->tries++;
            s->try_at = now;
            s->queued = 0;
            if (send_one(p, s, bodies, lens) < 0)
                goto out;
        }
        if (no_peer)
            for (size_t i = 0; i < r.window; i++)
                if (r.slots[i].busy && !r.slots[i].queued)
                    finish(&r, &r.slots[i], r.slots[i].ever_queued ? SY_PUB_TIMEOUT
                                                                   : SY_PUB_UNSENT, "");
    }
    rc = r.failed;
out:
    free(r.slots);
    return rc;
}

typedef struct {
    sy_pub_result r;
    char *answer;
    size_t len;
} one_ctx;

static void one_cb(void *arg, size_t index, sy_pub_result r, const char *answer)
{
    one_ctx *c = arg;
    (void)index;
    c->r = r;
    if (c->answer && c->len)
        snprintf(c->answer, c->len, "%s", answer);
}

sy_pub_result sy_publish(sy_publisher *p, const void *body, size_t len, char *answer,
                         size_t answer_len)
{
    one_ctx c = {SY_PUB_TIMEOUT, answer, answer_len};
    const void *b[1] = {body};
    size_t l[1] = {len};
    if (sy_publish_many(p, 1, b, l, 1, one_cb, &c) < 0)
        return SY_PUB_TIMEOUT;
    return c.r;
}
