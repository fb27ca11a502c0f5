/* test_retry.c - built-in and custom retry policies, delays, limits, errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "retry.h"

#define S 1000LL
#define M (60 * S)
#define H (60 * M)
#define D (24 * H)

/* A realistic wall clock, so nothing passes only because first_ms is 0. */
#define T0 1700000000000LL

static sy_retry_policy builtin(const char *name)
{
    sy_retry_policy p;
    assert_int_equal(retry_policy_builtin(name, &p), 0);
    return p;
}

static sy_retry_policy parse_ok(const char *json)
{
    cJSON *spec = cJSON_Parse(json);
    assert_non_null(spec);
    sy_retry_policy p;
    char err[256] = "";
    if (retry_policy_parse(spec, &p, err, sizeof err) != 0)
        fail_msg("%s: %s", json, err);
    cJSON_Delete(spec);
    return p;
}

/* Field by field: struct padding makes memcmp unreliable. */
static void assert_same_policy(const sy_retry_policy *a, const sy_retry_policy *b)
{
    assert_string_equal(a->name, b->name);
    assert_int_equal(a->nschedule, b->nschedule);
    for (int i = 0; i < a->nschedule; i++)
        assert_int_equal(a->schedule[i], b->schedule[i]);
    assert_int_equal(a->tail_ms, b->tail_ms);
    assert_true(a->tail_jitter == b->tail_jitter);
    assert_int_equal(a->base_ms, b->base_ms);
    assert_true(a->factor == b->factor);
    assert_int_equal(a->cap_ms, b->cap_ms);
    assert_true(a->jitter == b->jitter);
    assert_int_equal(a->max_attempts, b->max_attempts);
    assert_int_equal(a->max_age_ms, b->max_age_ms);
}

/* Delay with no time elapsed, so only the attempt count matters. */
static int64_t delay_at(const sy_retry_policy *p, uint32_t attempts)
{
    uint64_t rng = 88172645463325252ULL;
    return retry_next_delay(p, attempts, T0, T0, &rng);
}

static void test_standard_schedule(void **state)
{
    (void)state;
    sy_retry_policy p = builtin("standard");
    assert_string_equal(p.name, "standard");
    assert_int_equal(p.max_attempts, 0);
    assert_int_equal(p.max_age_ms, 3 * D);
    static const int64_t want[] = { 5000, 300000, 1800000, 7200000, 18000000, 36000000, 36000000 };
    for (uint32_t n = 1; n <= 7; n++) {
        uint64_t rng = 12345;
        assert_int_equal(retry_next_delay(&p, n, T0, T0, &rng), want[n - 1]);
        assert_int_equal(rng, 12345); /* the exact schedule draws no jitter */
    }
}

static void test_standard_tail_jitter(void **state)
{
    (void)state;
    sy_retry_policy p = builtin("standard");
    uint64_t rng = 42;
    int64_t lo = INT64_MAX, hi = 0;
    double sum = 0;
    for (int i = 0; i < 10000; i++) {
        int64_t d = retry_next_delay(&p, 8 + (uint32_t)(i % 5), T0, T0, &rng);
        assert_in_range(d, 9 * H, 11 * H);
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
        sum += (double)d;
    }
    /* It varies, uses most of the +/-10% band, and is centred on 10h. */
    assert_true(lo < 9 * H + 6 * M);
    assert_true(hi > 11 * H - 6 * M);
    assert_in_range((int64_t)(sum / 10000), 10 * H - 3 * M, 10 * H + 3 * M);
}

static void test_standard_age_boundary(void **state)
{
    (void)state;
    sy_retry_policy p = builtin("standard");
    uint64_t rng = 7;
    int64_t limit = T0 + 3 * D;
    /* Exact delays: starting exactly at the max age is allowed, 1 ms later is not. */
    assert_int_equal(retry_next_delay(&p, 1, T0, limit - 5000, &rng), 5000);
    assert_int_equal(retry_next_delay(&p, 1, T0, limit - 4999, &rng), -1);
    assert_int_equal(retry_next_delay(&p, 7, T0, limit - 10 * H, &rng), 10 * H);
    assert_int_equal(retry_next_delay(&p, 7, T0, limit - 10 * H + 1, &rng), -1);
    assert_int_equal(retry_next_delay(&p, 1, T0, limit + 1, &rng), -1);

    /* Jittered tail: always fits 11h before the limit, never fits 9h - 1ms before. */
    int gave_up = 0, kept = 0;
    for (int i = 0; i < 1000; i++) {
        assert_int_not_equal(retry_next_delay(&p, 9, T0, limit - 11 * H, &rng), -1);
        assert_int_equal(retry_next_delay(&p, 9, T0, limit - 9 * H + 1, &rng), -1);
        if (retry_next_delay(&p, 9, T0, limit - 10 * H, &rng) == -1)
            gave_up++;
        else
            kept++;
    }
    assert_true(gave_up > 100 && kept > 100);
}

/* Failing instantly every time, standard makes 12 attempts within 3 days. */
static void test_standard_full_run(void **state)
{
    (void)state;
    sy_retry_policy p = builtin("standard");
    p.tail_jitter = 0;
    uint64_t rng = 1;
    int64_t now = T0;
    uint32_t attempts = 1;
    for (;;) {
        int64_t d = retry_next_delay(&p, attempts, T0, now, &rng);
        if (d < 0)
            break;
        now += d;
        attempts++;
    }
    assert_int_equal(attempts, 12);
    assert_int_equal(now - T0, 243305000); /* 67h35m05s: the next would be at 77h35m05s */
}

static void test_legacy(void **state)
{
    (void)state;
    sy_retry_policy p = builtin("legacy");
    assert_int_equal(p.max_attempts, 3);
    uint64_t rng = 3;
    /* No age limit: only the attempt count matters, however late it is. */
    assert_int_equal(retry_next_delay(&p, 1, T0, T0 + 30 * D, &rng), 5000);
    assert_int_equal(retry_next_delay(&p, 2, T0, T0 + 30 * D, &rng), 10000);
    assert_int_equal(retry_next_delay(&p, 3, T0, T0, &rng), -1);
    assert_int_equal(retry_next_delay(&p, 4, T0, T0, &rng), -1);
    sy_retry_policy q;
    assert_int_equal(retry_policy_builtin("fast", &q), -1);
    assert_int_equal(retry_policy_builtin(NULL, &q), -1);
}

static void test_names_parse_as_builtins(void **state)
{
    (void)state;
    sy_retry_policy a = parse_ok("\"standard\""), b = builtin("standard");
    assert_same_policy(&a, &b);
    a = parse_ok("\"legacy\"");
    b = builtin("legacy");
    assert_same_policy(&a, &b);
}

static void test_attempts_zero_and_clock_back(void **state)
{
    (void)state;
    sy_retry_policy p = builtin("standard");
    uint64_t rng = 5;
    assert_int_equal(retry_next_delay(&p, 0, T0, T0, &rng), 0);
    /* A clock that stepped back counts as no time elapsed. */
    assert_int_equal(retry_next_delay(&p, 2, T0, T0 - 5 * D, &rng), 300000);
    p = parse_ok("{\"schedule\": [\"2h\"], \"max_age\": \"1h\"}");
    assert_int_equal(retry_next_delay(&p, 1, T0, T0 - 5 * H, &rng), -1);
}

static void test_custom_schedule_exact(void **state)
{
    (void)state;
    sy_retry_policy p = parse_ok("{\"schedule\": [\"1s\", 30000, \"5m\"]}");
    assert_string_equal(p.name, "custom");
    assert_int_equal(p.max_attempts, 4);
    assert_int_equal(p.max_age_ms, 0);
    assert_int_equal(delay_at(&p, 1), 1000);
    assert_int_equal(delay_at(&p, 2), 30000);
    assert_int_equal(delay_at(&p, 3), 300000);
    assert_int_equal(delay_at(&p, 4), -1);
}

static void test_custom_schedule_tail(void **state)
{
    (void)state;
    sy_retry_policy p = parse_ok("{\"schedule\": [\"1s\", \"30s\", \"5m\"], \"max_attempts\": 6}");
    static const int64_t want[] = { 1000, 30000, 300000, 300000, 300000, -1, -1 };
    for (uint32_t n = 1; n <= 7; n++)
        assert_int_equal(delay_at(&p, n), want[n - 1]);

    /* max_attempts below the schedule cuts it short. */
    p = parse_ok("{\"schedule\": [\"1s\", \"30s\", \"5m\"], \"max_attempts\": 2}");
    assert_int_equal(delay_at(&p, 1), 1000);
    assert_int_equal(delay_at(&p, 2), -1);
    p = parse_ok("{\"schedule\": [\"1s\"], \"max_attempts\": 1}");
    assert_int_equal(delay_at(&p, 1), -1);
}

/* Every 10 minutes for an hour: attempts at 0, 10, ... 60 min, then give up. */
static void test_custom_schedule_max_age(void **state)
{
    (void)state;
    sy_retry_policy p = parse_ok("{\"schedule\": [\"10m\"], \"max_age\": \"1h\"}");
    assert_int_equal(p.max_attempts, 0);
    uint64_t rng = 9;
    int64_t now = T0;
    uint32_t attempts = 1;
    int64_t d;
    while ((d = retry_next_delay(&p, attempts, T0, now, &rng)) >= 0) {
        assert_int_equal(d, 10 * M);
        now += d;
        attempts++;
    }
    assert_int_equal(attempts, 7);
    assert_int_equal(now - T0, H);
}

static void test_exponential(void **state)
{
    (void)state;
    sy_retry_policy p = parse_ok("{\"base\": \"1s\", \"factor\": 2, \"cap\": \"1h\", \"max_attempts\": 20}");
    for (uint32_t n = 1; n <= 12; n++)
        assert_int_equal(delay_at(&p, n), 1000LL << (n - 1)); /* 1s .. 2048s */
    for (uint32_t n = 13; n <= 19; n++)
        assert_int_equal(delay_at(&p, n), H);
    assert_int_equal(delay_at(&p, 20), -1);

    p = parse_ok("{\"base\": 1000, \"factor\": 1.5, \"max_attempts\": 9}");
    static const int64_t want[] = { 1000, 1500, 2250, 3375, 5063 };
    for (uint32_t n = 1; n <= 5; n++)
        assert_int_equal(delay_at(&p, n), want[n - 1]);

    p = parse_ok("{\"base\": \"1s\", \"factor\": 1}");
    assert_int_equal(delay_at(&p, 9), 1000);
}

static void test_exponential_defaults(void **state)
{
    (void)state;
    /* factor 2, cap 1 day, 10 attempts. */
    sy_retry_policy p = parse_ok("{\"base\": \"1s\"}");
    assert_true(p.factor == 2.0);
    assert_int_equal(p.cap_ms, D);
    assert_int_equal(p.max_attempts, 10);
    assert_int_equal(p.max_age_ms, 0);
    assert_int_equal(delay_at(&p, 9), 256000);
    assert_int_equal(delay_at(&p, 10), -1);

    /* With only max_age there is no attempt limit, and the cap holds forever. */
    p = parse_ok("{\"base\": \"1s\", \"max_age\": \"30d\"}");
    assert_int_equal(p.max_attempts, 0);
    assert_int_equal(delay_at(&p, 17), 65536000);
    assert_int_equal(delay_at(&p, 18), D);
    assert_int_equal(delay_at(&p, 4000000000u), D);

    /* A base beyond the default cap is not shortened. */
    p = parse_ok("{\"base\": \"2d\"}");
    assert_int_equal(delay_at(&p, 1), 2 * D);
    assert_int_equal(delay_at(&p, 5), 2 * D);
}

static void test_exponential_max_age(void **state)
{
    (void)state;
    sy_retry_policy p = parse_ok("{\"base\": \"1m\", \"max_age\": \"10m\"}");
    uint64_t rng = 1;
    /* After 3 failures the delay is 4m: fits at 6m elapsed, not 1 ms later. */
    assert_int_equal(retry_next_delay(&p, 3, T0, T0 + 6 * M, &rng), 4 * M);
    assert_int_equal(retry_next_delay(&p, 3, T0, T0 + 6 * M + 1, &rng), -1);
}

static void check_jitter(const char *json, uint32_t attempts, int64_t lo, int64_t hi)
{
    sy_retry_policy p = parse_ok(json);
    uint64_t rng = 0x243F6A8885A308D3ULL;
    int64_t min = INT64_MAX, max = INT64_MIN;
    for (int i = 0; i < 10000; i++) {
        int64_t d = retry_next_delay(&p, attempts, T0, T0, &rng);
        assert_in_range(d, lo, hi);
        min = d < min ? d : min;
        max = d > max ? d : max;
    }
    /* Spread over (nearly) the whole band, not stuck at one value. */
    int64_t slack = (hi - lo) / 50;
    assert_true(min < lo + slack);
    assert_true(max > hi - slack);
}

static void test_jitter_bounds(void **state)
{
    (void)state;
    check_jitter("{\"base\": \"10s\", \"jitter\": 0.2}", 1, 8000, 12000);
    /* Jitter applies after the cap. */
    check_jitter("{\"base\": \"1s\", \"cap\": \"1m\", \"jitter\": 0.5, \"max_attempts\": 50}", 30,
                 30000, 90000);
    check_jitter("{\"base\": \"1s\", \"jitter\": 1}", 2, 0, 4000);
    /* A custom schedule's jitter covers its entries and its tail. */
    check_jitter("{\"schedule\": [\"10s\", \"1m\"], \"jitter\": 0.1}", 1, 9000, 11000);
    check_jitter("{\"schedule\": [\"10s\", \"1m\"], \"jitter\": 0.1, \"max_attempts\": 9}", 5,
                 54000, 66000);

    /* A zero rng state must not get stuck producing the same value. */
    sy_retry_policy p = parse_ok("{\"base\": \"10s\", \"jitter\": 0.2}");
    uint64_t rng = 0;
    int64_t a = retry_next_delay(&p, 1, T0, T0, &rng);
    int64_t b = retry_next_delay(&p, 1, T0, T0, &rng);
    assert_int_not_equal(rng, 0);
    assert_int_not_equal(a, b);
}

static void check_error(const char *json, const char *want)
{
    cJSON *spec = cJSON_Parse(json);
    if (!spec)
        fail_msg("bad test JSON: %s", json);
    /* A failed parse leaves the policy untouched. */
    sy_retry_policy p = builtin("legacy"), before = p;
    char err[256] = "";
    assert_int_equal(retry_policy_parse(spec, &p, err, sizeof err), -1);
    if (strcmp(err, want) != 0)
        fail_msg("%s\n  got:  %s\n  want: %s", json, err, want);
    assert_same_policy(&p, &before);
    assert_int_equal(retry_policy_parse(spec, &p, NULL, 0), -1);
    cJSON_Delete(spec);
}

static void test_parse_errors(void **state)
{
    (void)state;
    const char *keys = "unknown key (expected schedule, base, factor, cap, jitter, max_attempts, max_age)";
    const char *sched = "schedule: expected a non-empty array of durations (at most 32)";
    const char *notname = "expected a policy name (standard, legacy) or an object";
    char msg[200];

    check_error("\"fast\"", "unknown policy \"fast\" (expected standard, legacy or an object)");
    check_error("\"\"", "unknown policy \"\" (expected standard, legacy or an object)");
    check_error("42", notname);
    check_error("null", notname);
    check_error("[\"5s\"]", notname);
    snprintf(msg, sizeof msg, "retries: %s", keys);
    check_error("{\"schedule\": [\"1s\"], \"retries\": 3}", msg);
    snprintf(msg, sizeof msg, "Base: %s", keys);
    check_error("{\"Base\": \"1s\"}", msg);
    check_error("{\"base\": \"1s\", \"base\": \"2s\"}", "base: duplicate key");
    check_error("{}", "expected \"schedule\" or \"base\"");
    check_error("{\"max_attempts\": 3}", "expected \"schedule\" or \"base\"");
    check_error("{\"schedule\": [\"1s\"], \"base\": \"1s\"}", "schedule and base exclude each other");

    check_error("{\"schedule\": [\"1s\", \"5x\"]}", "schedule[1]: bad duration \"5x\"");
    check_error("{\"schedule\": [\"1s\", \"-5s\"]}", "schedule[1]: bad duration \"-5s\"");
    check_error("{\"schedule\": [\"1s\", -5]}",
                "schedule[1]: expected a duration (\"5s\") or a non-negative integer of ms");
    check_error("{\"schedule\": [1.5]}",
                "schedule[0]: expected a duration (\"5s\") or a non-negative integer of ms");
    check_error("{\"schedule\": [true]}",
                "schedule[0]: expected a duration (\"5s\") or a non-negative integer of ms");
    check_error("{\"schedule\": []}", sched);
    check_error("{\"schedule\": \"5s\"}", sched);
    check_error("{\"schedule\": [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,"
                "25,26,27,28,29,30,31,32,33]}", sched);
    check_error("{\"schedule\": [\"1s\"], \"factor\": 2}", "factor: only with base");
    check_error("{\"schedule\": [\"1s\"], \"cap\": \"1h\"}", "cap: only with base");

    check_error("{\"base\": \"1x\"}", "base: bad duration \"1x\"");
    check_error("{\"base\": \"0s\"}", "base: must be longer than 0ms");
    check_error("{\"base\": \"1s\", \"factor\": 0.5}", "factor: must be a number >= 1");
    check_error("{\"base\": \"1s\", \"factor\": \"2\"}", "factor: must be a number >= 1");
    check_error("{\"base\": \"1s\", \"cap\": \"forever\"}", "cap: bad duration \"forever\"");
    check_error("{\"base\": \"1m\", \"cap\": \"1s\"}", "cap: must not be shorter than base");

    check_error("{\"base\": \"1s\", \"jitter\": 1.5}", "jitter: must be between 0 and 1");
    check_error("{\"base\": \"1s\", \"jitter\": -0.1}", "jitter: must be between 0 and 1");
    check_error("{\"base\": \"1s\", \"jitter\": \"0.1\"}", "jitter: must be between 0 and 1");
    check_error("{\"base\": \"1s\", \"max_attempts\": 0}", "max_attempts: must be an integer >= 1");
    check_error("{\"base\": \"1s\", \"max_attempts\": 2.5}", "max_attempts: must be an integer >= 1");
    check_error("{\"base\": \"1s\", \"max_attempts\": \"3\"}", "max_attempts: must be an integer >= 1");
    check_error("{\"base\": \"1s\", \"max_attempts\": 3e9}", "max_attempts: must be an integer >= 1");
    check_error("{\"base\": \"1s\", \"max_age\": \"0s\"}", "max_age: must be longer than 0ms");
    check_error("{\"base\": \"1s\", \"max_age\": \"3 days\"}", "max_age: bad duration \"3 days\"");
}

static void check_describe(const sy_retry_policy *p, const char *want)
{
    char buf[256];
    retry_policy_describe(p, buf, sizeof buf);
    assert_string_equal(buf, want);
}

static void test_describe(void **state)
{
    (void)state;
    sy_retry_policy p = builtin("standard");
    check_describe(&p, "5s, 5m, 30m, 2h, 5h, 10h, 10h, then every 10h +/-10% until 3d");
    p = builtin("legacy");
    check_describe(&p, "5s, 10s, then give up (3 attempts)");
    p = parse_ok("{\"base\": \"1s\", \"cap\": \"1h\", \"jitter\": 0.2}");
    check_describe(&p, "1s x2 up to 1h +/-20%, 10 attempts");
    p = parse_ok("{\"base\": \"1s\", \"factor\": 1.5, \"max_age\": \"3d\"}");
    check_describe(&p, "1s x1.5 up to 1d, until 3d");
    p = parse_ok("{\"schedule\": [\"1s\", \"30s\", \"5m\"]}");
    check_describe(&p, "1s, 30s, 5m, then give up (4 attempts)");
    p = parse_ok("{\"schedule\": [\"1s\", \"30s\", \"5m\"], \"max_attempts\": 6}");
    check_describe(&p, "1s, 30s, 5m, then every 5m, 6 attempts");
    p = parse_ok("{\"schedule\": [\"1s\", \"30s\", \"5m\"], \"max_attempts\": 2}");
    check_describe(&p, "1s, then give up (2 attempts)");
    p = parse_ok("{\"schedule\": [\"10m\"], \"max_age\": \"1h\", \"jitter\": 0.25}");
    check_describe(&p, "10m +/-25%, then every 10m +/-25% until 1h");
    p = parse_ok("{\"schedule\": [\"1s\"], \"max_attempts\": 1}");
    check_describe(&p, "no retries (1 attempt)");

    /* A short buffer truncates and stays terminated. */
    char small[8];
    p = builtin("standard");
    retry_policy_describe(&p, small, sizeof small);
    assert_string_equal(small, "5s, 5m,");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_standard_schedule),
        cmocka_unit_test(test_standard_tail_jitter),
        cmocka_unit_test(test_standard_age_boundary),
        cmocka_unit_test(test_standard_full_run),
        cmocka_unit_test(test_legacy),
        cmocka_unit_test(test_names_parse_as_builtins),
        cmocka_unit_test(test_attempts_zero_and_clock_back),
        cmocka_unit_test(test_custom_schedule_exact),
        cmocka_unit_test(test_custom_schedule_tail),
        cmocka_unit_test(test_custom_schedule_max_age),
        cmocka_unit_test(test_exponential),
        cmocka_unit_test(test_exponential_defaults),
        cmocka_unit_test(test_exponential_max_age),
        cmocka_unit_test(test_jitter_bounds),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_describe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
