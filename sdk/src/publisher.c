/*
 * publisher.c - acknowledged publishing (switchyard/publisher.h).
 *
 * Each message goes out as [tag, body] with an 8-byte tag: the event's
 * index in the batch, never reused, so a late answer to an old copy can
 * not be taken for another event. Event i lives in slot i % window.
 */
#include "switchyard/publisher.h"

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
    int linger = 0, hwm = 0;
    zmq_setsockopt(p->sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(p->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(p->sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
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
    size_t index;     /* which event */
    int64_t sent_at;
    int tries;
    int busy;
} slot;

static int send_one(sy_publisher *p, uint64_t tag, const void *body, size_t len)
{
    if (zmq_send(p->sock, &tag, sizeof tag, ZMQ_SNDMORE) < 0)
        return -1;
    return zmq_send(p->sock, body, len, 0) < 0 ? -1 : 0;
}

static sy_pub_result classify(const char *a)
{
    if (!strncmp(a, "ok ", 3))
        return SY_PUB_OK;
    if (!strncmp(a, "dup ", 4))
        return SY_PUB_DUP;
    return SY_PUB_REJECTED;
}

long sy_publish_many(sy_publisher *p, size_t n, const void *const *bodies, const size_t *lens,
                     size_t window, sy_pub_cb cb, void *arg)
{
    if (!window)
        window = 1000;
    if (window > n && n)
        window = n;
    slot *slots = calloc(window ? window : 1, sizeof *slots);
    size_t next = 0, done = 0, inflight = 0;
    long failed = 0;
    char answer[1024];
    while (done < n) {
        /* Send while the next event's slot is free. */
        while (next < n && !slots[next % window].busy) {
            if (send_one(p, next, bodies[next], lens[next]) != 0) {
                free(slots);
                return -1;
            }
            slots[next % window] = (slot){.index = next, .sent_at = mono_ms(), .tries = 0, .busy = 1};
            next++;
            inflight++;
        }
        /* Wait for answers, at most until the oldest slot times out. */
        int64_t now = mono_ms(), wait = p->timeout_ms;
        for (size_t s = 0; s < window; s++)
            if (slots[s].busy && slots[s].sent_at + p->timeout_ms - now < wait)
                wait = slots[s].sent_at + p->timeout_ms - now;
        zmq_pollitem_t it = {.socket = p->sock, .events = ZMQ_POLLIN};
        int rc = zmq_poll(&it, 1, wait > 0 ? (long)wait : 0);
        if (rc < 0) {
            free(slots);
            return -1;
        }
        while (it.revents & ZMQ_POLLIN) {
            uint64_t tag = UINT64_MAX;
            int got = zmq_recv(p->sock, &tag, sizeof tag, ZMQ_DONTWAIT);
            if (got < 0)
                break;
            int more = 0;
            size_t sz = sizeof more;
            zmq_getsockopt(p->sock, ZMQ_RCVMORE, &more, &sz);
            int alen = more ? zmq_recv(p->sock, answer, sizeof answer - 1, 0) : 0;
            if (alen < 0)
                alen = 0;
            if ((size_t)alen > sizeof answer - 1)
                alen = sizeof answer - 1;
            answer[alen] = '\0';
            /* An answer to a resent message may come twice: the first wins,
             * and an answer for an event no longer in its slot is ignored. */
            slot *sl = got == (int)sizeof tag && tag < n ? &slots[tag % window] : NULL;
            if (sl && sl->busy && sl->index == tag) {
                sy_pub_result r = classify(answer);
                if (r == SY_PUB_REJECTED)
                    failed++;
                if (cb)
                    cb(arg, sl->index, r, answer);
                sl->busy = 0;
                inflight--;
                done++;
            }
            int ev = 0;
            sz = sizeof ev;
            zmq_getsockopt(p->sock, ZMQ_EVENTS, &ev, &sz);
            if (!(ev & ZMQ_POLLIN))
                break;
        }
        /* Resend what timed out; give up after the last retry. */
        now = mono_ms();
        for (size_t s = 0; s < window; s++) {
            if (!slots[s].busy || now - slots[s].sent_at < p->timeout_ms)
                continue;
            if (slots[s].tries >= p->retries) {
                failed++;
                if (cb)
                    cb(arg, slots[s].index, SY_PUB_TIMEOUT, "");
                slots[s].busy = 0;
                inflight--;
                done++;
                continue;
            }
            slots[s].tries++;
            slots[s].sent_at = now;
            if (send_one(p, slots[s].index, bodies[slots[s].index], lens[slots[s].index]) != 0) {
                free(slots);
                return -1;
            }
        }
    }
    (void)inflight;
    free(slots);
    return failed;
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
