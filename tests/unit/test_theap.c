/* test_theap.c - timer heap: order, FIFO ties, growth, empty behaviour. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "theap.h"

#define N 10000

static void test_empty(void **state)
{
    (void)state;
    theap h;
    theap_init(&h);
    assert_int_equal(theap_len(&h), 0);
    assert_null(theap_peek(&h));
    theap_item it = { .due_ms = 77 };
    assert_int_equal(theap_pop(&h, &it), -1);
    assert_int_equal(it.due_ms, 77);
    theap_free(&h);
    theap_free(&h); /* safe twice: free leaves an empty heap */
}

/* Own tiny rng so the test sequence never depends on libc's rand(). */
static uint64_t next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/*
 * 10,000 items with due times drawn from a small range, so many collide:
 * pops must come out sorted by due time, and equal due times in push order.
 */
static void test_random_order_and_fifo(void **state)
{
    (void)state;
    static int64_t due[N];
    theap h;
    theap_init(&h);
    uint64_t rng = 0x9E3779B97F4A7C15ULL;
    for (size_t i = 0; i < N; i++) {
        due[i] = (int64_t)(next(&rng) % 500) - 100; /* negatives too */
        assert_int_equal(theap_push(&h, due[i], &due[i]), 0);
    }
    assert_int_equal(theap_len(&h), N);
    assert_true(h.cap >= N && (h.cap & (h.cap - 1)) == 0); /* grew by doubling */

    theap_item prev = { .due_ms = INT64_MIN }, it;
    for (size_t k = 0; k < N; k++) {
        const theap_item *top = theap_peek(&h);
        assert_non_null(top);
        int64_t peeked = top->due_ms;
        assert_int_equal(theap_pop(&h, &it), 0);
        assert_int_equal(it.due_ms, peeked);
        /* data points at the slot it was pushed with, and seq is its index. */
        size_t idx = (size_t)((int64_t *)it.data - due);
        assert_int_equal(idx, it.seq);
        assert_true(due[idx] == it.due_ms);
        if (k > 0) {
            assert_true(it.due_ms >= prev.due_ms);
            if (it.due_ms == prev.due_ms)
                assert_true(it.seq > prev.seq);
        }
        prev = it;
    }
    assert_int_equal(theap_len(&h), 0);
    assert_int_equal(theap_pop(&h, &it), -1);
    theap_free(&h);
}

static void test_all_equal_is_fifo(void **state)
{
    (void)state;
    static int vals[1000];
    theap h;
    theap_init(&h);
    for (int i = 0; i < 1000; i++) {
        vals[i] = i;
        assert_int_equal(theap_push(&h, 5, &vals[i]), 0);
    }
    theap_item it;
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(theap_pop(&h, &it), 0);
        assert_int_equal(*(int *)it.data, i);
    }
    theap_free(&h);
}

/* Pushes and pops interleaved, as the dispatcher does: seq keeps counting. */
static void test_interleaved(void **state)
{
    (void)state;
    theap h;
    theap_init(&h);
    theap_item it;
    assert_int_equal(theap_push(&h, 30, NULL), 0);
    assert_int_equal(theap_push(&h, 10, NULL), 0);
    assert_int_equal(theap_push(&h, 20, NULL), 0);
    assert_int_equal(theap_pop(&h, &it), 0);
    assert_int_equal(it.due_ms, 10);
    assert_int_equal(it.seq, 1);
    assert_int_equal(theap_push(&h, 20, NULL), 0);
    assert_int_equal(theap_push(&h, 5, NULL), 0);
    static const int64_t want_due[] = { 5, 20, 20, 30 };
    static const uint64_t want_seq[] = { 4, 2, 3, 0 };
    for (int i = 0; i < 4; i++) {
        assert_int_equal(theap_pop(&h, &it), 0);
        assert_int_equal(it.due_ms, want_due[i]);
        assert_int_equal(it.seq, want_seq[i]);
    }
    assert_null(theap_peek(&h));
    /* Popping into NULL just discards. */
    assert_int_equal(theap_push(&h, INT64_MAX, NULL), 0);
    assert_int_equal(theap_push(&h, INT64_MIN, NULL), 0);
    assert_int_equal(theap_peek(&h)->due_ms, INT64_MIN);
    assert_int_equal(theap_pop(&h, NULL), 0);
    assert_int_equal(theap_peek(&h)->due_ms, INT64_MAX);
    theap_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_random_order_and_fifo),
        cmocka_unit_test(test_all_equal_is_fifo),
        cmocka_unit_test(test_interleaved),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
