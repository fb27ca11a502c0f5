/*
 * mpsc.c - Vyukov's intrusive MPSC queue and an eventfd waker.
 */
#include "mpsc.h"

#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <sys/eventfd.h>
#include <unistd.h>

void mpsc_init(mpsc *q)
{
    q->stub.next = NULL;
    q->head = &q->stub;
    q->tail = &q->stub;
}

void mpsc_push(mpsc *q, mpsc_node *n)
{
    __atomic_store_n(&n->next, NULL, __ATOMIC_RELAXED);
    /* Release: the node's contents are visible before it is linked. */
    mpsc_node *prev = __atomic_exchange_n(&q->head, n, __ATOMIC_ACQ_REL);
    __atomic_store_n(&prev->next, n, __ATOMIC_RELEASE);
}

mpsc_node *mpsc_pop(mpsc *q)
{
    mpsc_node *tail = q->tail;
    mpsc_node *next = __atomic_load_n(&tail->next, __ATOMIC_ACQUIRE);
    if (tail == &q->stub) {
        if (!next)
            return NULL;
        q->tail = next;
        tail = next;
        next = __atomic_load_n(&next->next, __ATOMIC_ACQUIRE);
    }
    if (next) {
        q->tail = next;
        return tail;
    }
    mpsc_node *head = __atomic_load_n(&q->head, __ATOMIC_ACQUIRE);
    if (tail != head)
        return NULL; /* a push is between its exchange and its link */
    /* tail is the last node: put the stub behind it so tail can be handed out. */
    mpsc_push(q, &q->stub);
    next = __atomic_load_n(&tail->next, __ATOMIC_ACQUIRE);
    if (next) {
        q->tail = next;
        return tail;
    }
    return NULL;
}

int mpsc_empty(const mpsc *q)
{
    const mpsc_node *tail = q->tail;
    return tail == &q->stub && __atomic_load_n(&q->head, __ATOMIC_ACQUIRE) == &q->stub;
}

int waker_init(waker *w)
{
    w->sleeping = 0;
    w->wakes = 0;
    w->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    return w->fd < 0 ? -1 : 0;
}

void waker_free(waker *w)
{
    if (w->fd >= 0)
        close(w->fd);
    w->fd = -1;
}

void waker_prepare(waker *w)
{
    /* Sequentially consistent, paired with waker_wake: either the consumer's
     * re-check sees the push, or the producer sees sleeping == 1. */
    __atomic_store_n(&w->sleeping, 1, __ATOMIC_SEQ_CST);
}

void waker_cancel(waker *w)
{
    __atomic_store_n(&w->sleeping, 0, __ATOMIC_RELAXED);
}

int waker_sleep(waker *w, int timeout_ms)
{
    struct pollfd p = {.fd = w->fd, .events = POLLIN};
    return waker_sleep_with(w, &p, 1, timeout_ms);
}

int waker_sleep_with(waker *w, struct pollfd *pfd, size_t n, int timeout_ms)
{
    int rc;
    do
        rc = poll(pfd, n, timeout_ms);
    while (rc < 0 && errno == EINTR);
    __atomic_store_n(&w->sleeping, 0, __ATOMIC_RELAXED);
    if (rc > 0 && (pfd[0].revents & POLLIN)) {
        uint64_t v;
        while (read(w->fd, &v, sizeof v) < 0 && errno == EINTR)
            ;
    }
    return rc > 0;
}

void waker_wake(waker *w)
{
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (__atomic_load_n(&w->sleeping, __ATOMIC_RELAXED) &&
        __atomic_exchange_n(&w->sleeping, 0, __ATOMIC_ACQ_REL)) {
        uint64_t one = 1;
        __atomic_add_fetch(&w->wakes, 1, __ATOMIC_RELAXED);
        while (write(w->fd, &one, sizeof one) < 0 && errno == EINTR)
            ;
    }
}
