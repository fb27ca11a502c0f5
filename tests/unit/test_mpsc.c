/*
 * test_mpsc.c - the shard queues: every node pushed by several producers
 * comes out exactly once, in each producer's order; the waker sleeps only
 * when nothing is queued and wakes on the first push, and never loses a
 * wake between the consumer's last check and its sleep.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mpsc.h"

typedef struct item {
    mpsc_node node; /* first: a node pointer is an item pointer */
    int producer;
    int seq;
} item;

static void test_single_thread_order(void **state)
{
    (void)state;
    mpsc q;
    mpsc_init(&q);
    assert_true(mpsc_empty(&q));
    assert_null(mpsc_pop(&q));
    item it[5];
    for (int i = 0; i < 5; i++) {
        it[i].seq = i;
        mpsc_push(&q, &it[i].node);
    }
    assert_false(mpsc_empty(&q));
    for (int i = 0; i < 5; i++) {
        item *got = (item *)mpsc_pop(&q);
        assert_non_null(got);
        assert_int_equal(got->seq, i);
    }
    assert_null(mpsc_pop(&q));
    assert_true(mpsc_empty(&q));
    /* A popped node may be pushed again (nodes are recycled this way). */
    mpsc_push(&q, &it[2].node);
    assert_ptr_equal(mpsc_pop(&q), &it[2].node);
    assert_null(mpsc_pop(&q));
}

#define PRODUCERS 4
#define PER_PRODUCER 200000

typedef struct shared {
    mpsc q;
    waker w;
    item *items;
} shared;

typedef struct prod_arg {
    shared *sh;
    int id;
} prod_arg;

static void *producer(void *arg)
{
    prod_arg *a = arg;
    for (int i = 0; i < PER_PRODUCER; i++) {
        item *it = &a->sh->items[a->id * PER_PRODUCER + i];
        it->producer = a->id;
        it->seq = i;
        mpsc_push(&a->sh->q, &it->node);
        waker_wake(&a->sh->w);
    }
    return NULL;
}

static void test_producers_and_sleeping_consumer(void **state)
{
    (void)state;
    shared sh;
    mpsc_init(&sh.q);
    assert_int_equal(waker_init(&sh.w), 0);
    sh.items = calloc(PRODUCERS * PER_PRODUCER, sizeof *sh.items);
    pthread_t t[PRODUCERS];
    prod_arg args[PRODUCERS];
    for (int i = 0; i < PRODUCERS; i++) {
        args[i] = (prod_arg){&sh, i};
        pthread_create(&t[i], NULL, producer, &args[i]);
    }
    int next[PRODUCERS] = {0};
    long got = 0;
    int timeouts = 0;
    while (got < (long)PRODUCERS * PER_PRODUCER) {
        mpsc_node *n = mpsc_pop(&sh.q);
        if (n) {
            item *it = (item *)n;
            assert_int_equal(it->seq, next[it->producer]);
            next[it->producer]++;
            got++;
            continue;
        }
        /* The consumer's sleep protocol: announce, re-check, then sleep. */
        waker_prepare(&sh.w);
        if (!mpsc_empty(&sh.q)) {
            waker_cancel(&sh.w);
            continue;
        }
        /* A lost wake would show up as a timeout while items are still to come. */
        if (!waker_sleep(&sh.w, 5000))
            timeouts++;
    }
    for (int i = 0; i < PRODUCERS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(next[i], PER_PRODUCER);
    }
    assert_int_equal(timeouts, 0);
    assert_null(mpsc_pop(&sh.q));
    /* Far fewer wakes than pushes: producers write the eventfd only for a sleeper. */
    assert_true(__atomic_load_n(&sh.w.wakes, __ATOMIC_RELAXED) <
                (uint64_t)PRODUCERS * PER_PRODUCER);
    free(sh.items);
    waker_free(&sh.w);
}

static void test_waker_timeout_and_wake(void **state)
{
    (void)state;
    waker w;
    assert_int_equal(waker_init(&w), 0);
    /* Nobody wakes it: a timeout. */
    waker_prepare(&w);
    assert_int_equal(waker_sleep(&w, 10), 0);
    /* Not asleep: a wake writes nothing. */
    waker_wake(&w);
    assert_int_equal(__atomic_load_n(&w.wakes, __ATOMIC_RELAXED), 0);
    /* Announced: a wake between prepare and sleep is not lost. */
    waker_prepare(&w);
    waker_wake(&w);
    assert_int_equal(__atomic_load_n(&w.wakes, __ATOMIC_RELAXED), 1);
    assert_int_equal(waker_sleep(&w, 5000), 1);
    /* Cancelled: later wakes do nothing. */
    waker_prepare(&w);
    waker_cancel(&w);
    waker_wake(&w);
    assert_int_equal(__atomic_load_n(&w.wakes, __ATOMIC_RELAXED), 1);
    waker_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_thread_order),
        cmocka_unit_test(test_producers_and_sleeping_consumer),
        cmocka_unit_test(test_waker_timeout_and_wake),
    };
    return cmocka_run_group_tests_name("mpsc", tests, NULL, NULL);
}
