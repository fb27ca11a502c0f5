/*
 * test_gate.c - token bucket, circuit breaker and disable clock, on
 * explicit times.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "gate.h"

static void test_parse_rate(void **state)
{
    (void)state;
    int64_t r, p;
    assert_int_equal(gate_parse_rate("1000/min", &r, &p), 0);
    assert_int_equal(r, 1000);
    assert_int_equal(p, 60000);
    assert_int_equal(gate_parse_rate("50/s", &r, &p), 0);
    assert_int_equal(p, 1000);
    assert_int_equal(gate_parse_rate("3600/hour", &r, &p), 0);
    assert_int_equal(p, 3600000);
    assert_int_equal(gate_parse_rate("20/10s", &r, &p), 0);
    assert_int_equal(r, 20);
    assert_int_equal(p, 10000);
    assert_int_equal(gate_parse_rate("0/s", &r, &p), -1);
    assert_int_equal(gate_parse_rate("-5/s", &r, &p), -1);
    assert_int_equal(gate_parse_rate("5/fortnight", &r, &p), -1);
    assert_int_equal(gate_parse_rate("5", &r, &p), -1);
    assert_int_equal(gate_parse_rate("/s", &r, &p), -1);
}

/* Admits at t and completes at once: the window then counts starts only. */
static int64_t admit_done(sy_gate *g, int64_t t)
{
    int probe;
    int64_t r = gate_admit(g, t, &probe);
    if (r == 0)
        gate_done(g, t);
    return r;
}

static void test_rate_window(void **state)
{
    (void)state;
    gate_conf c = {.rate = 10, .per = 1000};
    sy_gate g;
    gate_init(&g, &c, 0);
    int probe;
    /* A quiet endpoint may start 10 at once; the 11th waits until the first leaves the window. */
    for (int i = 0; i < 10; i++)
        assert_int_equal(admit_done(&g, i), 0);
    assert_int_equal(admit_done(&g, 10), 1000);
    assert_int_equal(admit_done(&g, 999), 1000);
    assert_int_equal(gate_admit(&g, 1000, &probe), 0);
    gate_done(&g, 1000);
    assert_int_equal(probe, 0);
    assert_int_equal(admit_done(&g, 1000), 1001);
    /* Asking every millisecond for 10 s: no window of 1 s ever holds more than 10 starts. */
    int64_t starts[200];
    int n = 0;
    for (int64_t t = 1001; t < 11000; t++)
        if (admit_done(&g, t) == 0)
            starts[n++] = t;
    assert_int_equal(n, 99);
    for (int i = 10; i < n; i++)
        assert_true(starts[i] - starts[i - 10] >= 1000);
    gate_free(&g);
}

/*
 * Attempts that take time: a slot is held from the start until a window
 * after the completion, so the k+rate-th start comes a window after the
 * k-th completion, and arrivals (anywhere between start and completion)
 * never exceed the rate in any window either.
 */
static void test_rate_counts_until_completion(void **state)
{
    (void)state;
    gate_conf c = {.rate = 3, .per = 1000};
    sy_gate g;
    gate_init(&g, &c, 0);
    int probe;
    for (int i = 0; i < 3; i++)
        assert_int_equal(gate_admit(&g, 0, &probe), 0);
    /* All three in flight, nothing completed: no time can be promised yet. */
    assert_int_equal(gate_admit(&g, 500, &probe), 1500);
    gate_done(&g, 700); /* the first took 700 ms */
    /* Its slot frees a full window after it completed, not after it started. */
    assert_int_equal(gate_admit(&g, 1000, &probe), 1700);
    assert_int_equal(gate_admit(&g, 1699, &probe), 1700);
    assert_int_equal(gate_admit(&g, 1700, &probe), 0);
    assert_int_equal(gate_admit(&g, 1700, &probe), 1700 + 1000);
    /* A steady stream of 200 ms attempts, asked every ms for 20 s. */
    gate_done(&g, 1700);
    gate_done(&g, 1700);
    gate_done(&g, 1900);
    int64_t start[400], end[400];
    int n = 0;
    for (int64_t t = 1901; t < 21900 && n < 400; t++) {
        for (int k = 0; k < n; k++)
            if (end[k] == t)
                gate_done(&g, t);
        if (gate_admit(&g, t, &probe) == 0) {
            start[n] = t;
            end[n] = t + 200;
            n++;
        }
    }
    assert_true(n > 3);
    for (int i = 3; i < n; i++)
        assert_true(start[i] >= end[i - 3] + 1000);
    gate_free(&g);
}

static void test_breaker(void **state)
{
    (void)state;
    gate_conf c = {.failures = 3, .probe = 1000, .probe_max = 3000};
    sy_gate g;
    gate_init(&g, &c, 0);
    int probe;
    assert_int_equal(gate_outcome(&g, 0, 0, 10, 10), GATE_NONE);
    assert_int_equal(gate_outcome(&g, 0, 0, 20, 20), GATE_NONE);
    assert_int_equal(gate_outcome(&g, 0, 0, 30, 30), GATE_OPENED);
    /* Open: nothing until the first probe time, 1 s after opening. */
    assert_int_equal(gate_admit(&g, 500, &probe), 1030);
    assert_int_equal(gate_admit(&g, 1030, &probe), 0);
    assert_int_equal(probe, 1);
    /* One probe at a time. */
    assert_true(gate_admit(&g, 1031, &probe) > 1031);
    /* The probe fails: the interval doubles (2 s), then caps at 3 s. */
    assert_int_equal(gate_outcome(&g, 0, 1, 1100, 1100), GATE_NONE);
    assert_int_equal(gate_admit(&g, 3099, &probe), 3100);
    assert_int_equal(gate_admit(&g, 3100, &probe), 0);
    assert_int_equal(gate_outcome(&g, 0, 1, 3200, 3200), GATE_NONE);
    assert_int_equal(g.next_probe, 6200);
    assert_int_equal(gate_admit(&g, 6200, &probe), 0);
    assert_int_equal(gate_outcome(&g, 0, 1, 6300, 6300), GATE_NONE);
    assert_int_equal(g.next_probe, 9300);
    /* A late non-probe failure does not push the probe out. */
    assert_int_equal(gate_outcome(&g, 0, 0, 6400, 6400), GATE_NONE);
    assert_int_equal(g.next_probe, 9300);
    /* The probe succeeds: closed, everything flows again. */
    assert_int_equal(gate_admit(&g, 9300, &probe), 0);
    assert_int_equal(gate_outcome(&g, 1, 1, 9400, 9400), GATE_CLOSED);
    assert_int_equal(gate_admit(&g, 9400, &probe), 0);
    assert_int_equal(probe, 0);
    assert_int_equal(g.consecutive, 0);
}

/* A start that never happened (a transform dropped it) gives back its slot and its probe. */
static void test_cancel(void **state)
{
    (void)state;
    gate_conf c = {.rate = 1, .per = 100, .failures = 1, .probe = 1000, .probe_max = 1000};
    sy_gate g;
    gate_init(&g, &c, 0);
    int probe;
    assert_int_equal(gate_admit(&g, 0, &probe), 0);
    gate_cancel(&g, probe);
    /* The slot is back: a second start now is within the rate. */
    assert_int_equal(gate_admit(&g, 0, &probe), 0);
    gate_done(&g, 10);
    assert_int_equal(gate_outcome(&g, 0, 0, 10, 10), GATE_OPENED);
    assert_int_equal(gate_admit(&g, 1010, &probe), 0);
    assert_int_equal(probe, 1);
    assert_true(gate_admit(&g, 1010, &probe) > 1010);
    gate_cancel(&g, 1);
    /* The probe did not go: the next delivery is the probe instead. */
    assert_int_equal(gate_admit(&g, 1010, &probe), 0);
    assert_int_equal(probe, 1);
    gate_free(&g);
}

static void test_no_breaker(void **state)
{
    (void)state;
    gate_conf c = {0};
    sy_gate g;
    gate_init(&g, &c, 0);
    int probe;
    for (int i = 0; i < 1000; i++)
        assert_int_equal(gate_outcome(&g, 0, 0, i, i), GATE_NONE);
    assert_int_equal(gate_admit(&g, 1000, &probe), 0);
    gate_free(&g);
}

static void test_disable_after(void **state)
{
    (void)state;
    gate_conf c = {.failures = 0, .disable_after_ms = 5000};
    sy_gate g;
    gate_init(&g, &c, 0);
    assert_int_equal(gate_outcome(&g, 0, 0, 0, 100000), GATE_NONE);
    assert_int_equal(gate_outcome(&g, 0, 0, 0, 104999), GATE_NONE);
    /* A success resets the clock. */
    assert_int_equal(gate_outcome(&g, 1, 0, 0, 104999), GATE_NONE);
    assert_int_equal(gate_outcome(&g, 0, 0, 0, 106000), GATE_NONE);
    assert_int_equal(gate_outcome(&g, 0, 0, 0, 110999), GATE_NONE);
    assert_int_equal(gate_outcome(&g, 0, 0, 0, 111000), GATE_DISABLE);
    assert_int_equal(g.disabled, 1);
    /* Announced once. */
    assert_int_equal(gate_outcome(&g, 0, 0, 0, 200000), GATE_NONE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_rate), cmocka_unit_test(test_rate_window),
        cmocka_unit_test(test_rate_counts_until_completion),
        cmocka_unit_test(test_breaker),    cmocka_unit_test(test_no_breaker),
        cmocka_unit_test(test_disable_after), cmocka_unit_test(test_cancel),
    };
    return cmocka_run_group_tests_name("gate", tests, NULL, NULL);
}
