/*
 * test_done.c - sy_done (sdk/include/switchyard/sink.h): the completions an
 * I/O thread collects in a round reach the core in one complete_batch call
 * on a 2.3 host, and one complete() each on an older one; a full buffer
 * goes over before it takes more; outcomes are copies.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "switchyard/sink.h"

#define MAX_SEEN 200

static struct {
    int batch_calls, single_calls;
    size_t batch_sizes[MAX_SEEN];
    size_t n;
    const sy_delivery *d[MAX_SEEN];
    sy_result result[MAX_SEEN];
    char detail[MAX_SEEN][SY_DETAIL_MAX];
} seen;

static void record(const sy_delivery *d, const sy_outcome *o)
{
    assert_true(seen.n < MAX_SEEN);
    seen.d[seen.n] = d;
    seen.result[seen.n] = o->result;
    memcpy(seen.detail[seen.n], o->detail, SY_DETAIL_MAX);
    seen.n++;
}

static void fake_complete(const sy_delivery *d, const sy_outcome *o)
{
    seen.single_calls++;
    record(d, o);
}

static void fake_complete_batch(const sy_delivery *const *d, const sy_outcome *const *o, size_t n)
{
    seen.batch_sizes[seen.batch_calls++] = n;
    for (size_t i = 0; i < n; i++)
        record(d[i], o[i]);
}

static sy_host host_23(void)
{
    sy_host h;
    memset(&h, 0, sizeof h);
    h.abi_version = SY_ABI_VERSION;
    h.struct_size = (uint32_t)sizeof h;
    h.complete = fake_complete;
    h.complete_batch = fake_complete_batch;
    return h;
}

static sy_delivery dlv[MAX_SEEN];

static int setup(void **state)
{
    (void)state;
    memset(&seen, 0, sizeof seen);
    return 0;
}

/* Adds n outcomes for dlv[first..]: OK for even indexes, RETRY with "n<i>" for odd. */
static void add_range(sy_done *b, size_t first, size_t n)
{
    for (size_t i = first; i < first + n; i++) {
        sy_outcome o = SY_OUTCOME_INIT;
        char why[32];
        snprintf(why, sizeof why, "n%zu", i);
        sy_outcome_set(&o, i % 2 ? SY_RETRY : SY_OK, 0, i % 2 ? why : NULL);
        sy_done_add(b, &dlv[i], &o);
        /* The buffer holds a copy: what the plugin reuses after add is not read. */
        memset(&o, 0x5a, sizeof o);
    }
}

static void assert_seen_in_order(size_t n)
{
    assert_int_equal(seen.n, n);
    for (size_t i = 0; i < n; i++) {
        assert_ptr_equal(seen.d[i], &dlv[i]);
        assert_int_equal(seen.result[i], i % 2 ? SY_RETRY : SY_OK);
        char why[32];
        snprintf(why, sizeof why, "n%zu", i);
        assert_string_equal(seen.detail[i], i % 2 ? why : "");
    }
}

static void test_round_goes_over_in_one_call(void **state)
{
    (void)state;
    sy_host h = host_23();
    sy_done b = {.host = &h};
    add_range(&b, 0, 5);
    assert_int_equal(seen.n, 0); /* nothing before the flush */
    sy_done_flush(&b);
    assert_int_equal(seen.batch_calls, 1);
    assert_int_equal(seen.batch_sizes[0], 5);
    assert_int_equal(seen.single_calls, 0);
    assert_seen_in_order(5);
    /* An empty buffer calls nothing; a second round starts afresh. */
    sy_done_flush(&b);
    assert_int_equal(seen.batch_calls, 1);
    assert_int_equal(b.n, 0);
}

static void test_full_buffer_goes_over_first(void **state)
{
    (void)state;
    sy_host h = host_23();
    sy_done b = {.host = &h};
    add_range(&b, 0, SY_DONE_MAX + 3);
    assert_int_equal(seen.batch_calls, 1);
    assert_int_equal(seen.batch_sizes[0], SY_DONE_MAX);
    sy_done_flush(&b);
    assert_int_equal(seen.batch_calls, 2);
    assert_int_equal(seen.batch_sizes[1], 3);
    assert_seen_in_order(SY_DONE_MAX + 3);
}

/* A 2.2 host: its table ends before complete_batch, whatever lies beyond it. */
static void test_older_host_gets_one_call_each(void **state)
{
    (void)state;
    sy_host h = host_23();
    h.struct_size = (uint32_t)offsetof(sy_host, complete_batch);
    sy_done b = {.host = &h};
    add_range(&b, 0, 4);
    sy_done_flush(&b);
    assert_int_equal(seen.batch_calls, 0);
    assert_int_equal(seen.single_calls, 4);
    assert_seen_in_order(4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_round_goes_over_in_one_call, setup),
        cmocka_unit_test_setup(test_full_buffer_goes_over_first, setup),
        cmocka_unit_test_setup(test_older_host_gets_one_call_each, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
