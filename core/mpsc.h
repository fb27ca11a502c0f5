/*
 * mpsc.h - the hand-off between threads: an intrusive multi-producer,
 * single-consumer queue, and a waker that lets the consumer sleep.
 *
 * Producers push nodes they own (a node is embedded in the message: a
 * batch, a finished attempt); the one consumer pops them in push order
 * per producer. A push is one atomic exchange and one store; no lock is
 * taken and no thread is woken unless the consumer announced it is going
 * to sleep. The algorithm is Dmitry Vyukov's intrusive MPSC queue with a
 * stub node: a pop can briefly see "not ready" while a push is halfway
 * (between its exchange and its link store); mpsc_pop then returns NULL
 * and the consumer tries again after the producer's wake.
 *
 * The waker is an eventfd. The consumer calls waker_prepare() before its
 * last check of the queues, then waker_sleep(); producers call
 * waker_wake() after pushing, which writes the eventfd only when the
 * consumer is (about to be) asleep, so a busy consumer costs producers
 * nothing but an atomic load.
 */
#ifndef SY_MPSC_H
#define SY_MPSC_H

#include <stddef.h>
#include <stdint.h>

typedef struct mpsc_node {
    struct mpsc_node *next; /* atomic */
} mpsc_node;

typedef struct mpsc {
    mpsc_node *head; /* atomic; producers exchange it */
    mpsc_node *tail; /* the consumer's */
    mpsc_node stub;
} mpsc;

void mpsc_init(mpsc *q);
/* Any thread. n stays the caller's memory; it must not be pushed twice before its pop. */
void mpsc_push(mpsc *q, mpsc_node *n);
/* The consumer only. The oldest node, or NULL when empty (or a push is halfway). */
mpsc_node *mpsc_pop(mpsc *q);
/* The consumer only: 1 when nothing is queued (a push halfway counts as queued). */
int mpsc_empty(const mpsc *q);

typedef struct waker {
    int fd;       /* eventfd */
    int sleeping; /* atomic: the consumer may be blocked in waker_sleep */
    uint64_t wakes; /* atomic: eventfd writes, for the context-switch counters */
} waker;

/* 0, or -1 with errno when no eventfd could be made. */
int waker_init(waker *w);
void waker_free(waker *w);
/* Consumer: announce the sleep; re-check every queue after this, then sleep or cancel. */
void waker_prepare(waker *w);
void waker_cancel(waker *w);
/*
 * Consumer: blocks until a producer wakes it or timeout_ms passes (-1:
 * no timeout). Returns 1 when woken, 0 on timeout.
 */
int waker_sleep(waker *w, int timeout_ms);
/*
 * waker_sleep that also wakes for other fds: pfd[0] is the waker's own
 * ({w->fd, POLLIN}), pfd[1..n) the caller's. Returns 1 when any is ready.
 */
struct pollfd;
int waker_sleep_with(waker *w, struct pollfd *pfd, size_t n, int timeout_ms);
/* Producers, after a push. */
void waker_wake(waker *w);

#endif
