/*
 * test_router.c - org isolation, type patterns, dedup, order and filters.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "router.h"

#define MAXOUT 64

/* Endpoint ids handed to the router as user pointers. */
static int ids[10000];
#define EP(i) ((void *)&ids[i])

static sy_event *mk_event(const char *type, const char *org, const char *data)
{
    char buf[1024];
    sy_event *ev = NULL;
    char why[128];
    int n;
    if (org)
        n = snprintf(buf, sizeof(buf),
                     "{\"event_id\":\"e\",\"event_type\":\"%s\",\"org_id\":\"%s\","
                     "\"data\":%s}",
                     type, org, data ? data : "{}");
    else
        n = snprintf(buf, sizeof(buf), "{\"event_id\":\"e\",\"event_type\":\"%s\",\"data\":%s}",
                     type, data ? data : "{}");
    if (envelope_parse(buf, (size_t)n, 1 << 20, 64, &ev, why, sizeof(why)) != ENV_OK)
        fail_msg("test event rejected: %s", why);
    return ev;
}

/* Routes and renders matches as endpoint numbers, e.g. "0,2,5". */
static const char *route(const sy_router *r, const char *type, const char *org, const char *data)
{
    static char text[512];
    void *out[MAXOUT];
    sy_event *ev = mk_event(type, org, data);
    size_t n = router_match(r, ev, out, MAXOUT), len = 0;
    event_unref(ev);
    text[0] = '\0';
    assert_true(n <= MAXOUT);
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(text + len, sizeof(text) - len, "%s%d", i ? "," : "",
                                (int)((int *)out[i] - ids));
    return text;
}

static void add(sy_router *r, const char *org, int id, const char *p1, const char *p2,
                const sy_filter *f)
{
    const char *pats[3] = {p1, p2, NULL};
    assert_int_equal(router_add(r, org, pats, f, EP(id)), 0);
}

static void test_org_isolation(void **state)
{
    sy_router *r = router_new();
    (void)state;
    add(r, "acme", 0, "*", NULL, NULL);
    add(r, NULL, 1, "*", NULL, NULL);
    add(r, "umbrella", 2, "job.completed", NULL, NULL);
    add(r, "", 3, "*", NULL, NULL); /* "" is an org of its own, not "no org" */
    assert_int_equal(router_count(r), 4);
    assert_string_equal(route(r, "job.completed", "acme", NULL), "0,1");
    assert_string_equal(route(r, "job.completed", "umbrella", NULL), "1,2");
    assert_string_equal(route(r, "job.completed", NULL, NULL), "1");
    assert_string_equal(route(r, "job.completed", "acme2", NULL), "1");
    assert_string_equal(route(r, "job.completed", "Acme", NULL), "1");
    router_free(r);
}

static void test_patterns(void **state)
{
    sy_router *r = router_new();
    (void)state;
    add(r, NULL, 0, "job.completed", NULL, NULL);
    add(r, NULL, 1, "job.*", NULL, NULL);
    add(r, NULL, 2, "*", NULL, NULL);
    add(r, NULL, 3, "job.a.*", NULL, NULL);
    add(r, NULL, 4, "jobs.x", NULL, NULL);
    add(r, NULL, 5, "job", NULL, NULL);
    add(r, NULL, 6, "job.a", NULL, NULL);
    assert_string_equal(route(r, "job.completed", NULL, NULL), "0,1,2");
    assert_string_equal(route(r, "job", NULL, NULL), "2,5");
    assert_string_equal(route(r, "job.a", NULL, NULL), "1,2,6");
    assert_string_equal(route(r, "job.a.b", NULL, NULL), "1,2,3");
    assert_string_equal(route(r, "job.a.b.c", NULL, NULL), "1,2,3");
    assert_string_equal(route(r, "jobs.x", NULL, NULL), "2,4");
    assert_string_equal(route(r, "jobs.y", NULL, NULL), "2");
    assert_string_equal(route(r, "other", NULL, NULL), "2");
    router_free(r);
}

static void test_dedup_and_order(void **state)
{
    sy_router *r = router_new();
    const char *pats[] = {"job.*", "*", "job.completed", "job.*", "*", NULL};
    (void)state;
    /* Insertion order wins over the order in which patterns are looked up. */
    add(r, NULL, 0, "*", NULL, NULL);
    assert_int_equal(router_add(r, NULL, pats, NULL, EP(1)), 0);
    add(r, "acme", 2, "job.completed", "job.*", NULL);
    add(r, NULL, 3, "job.completed", NULL, NULL);
    add(r, "acme", 4, "*", NULL, NULL);
    add(r, NULL, 5, "job.*", "job.completed", NULL);
    assert_string_equal(route(r, "job.completed", "acme", NULL), "0,1,2,3,4,5");
    assert_string_equal(route(r, "job.completed", NULL, NULL), "0,1,3,5");
    assert_string_equal(route(r, "job.other", "acme", NULL), "0,1,2,4,5");
    assert_string_equal(route(r, "mail.sent", "acme", NULL), "0,1,4");
    router_free(r);
}

static void test_filters(void **state)
{
    sy_router *r = router_new();
    cJSON *s1 = cJSON_Parse("{\"data.status\":\"failed\"}");
    cJSON *s2 = cJSON_Parse("{\"data.pages\":{\"$gte\":10}}");
    sy_filter *f1 = filter_compile(s1, NULL, 0), *f2 = filter_compile(s2, NULL, 0);
    (void)state;
    assert_non_null(f1);
    assert_non_null(f2);
    add(r, NULL, 0, "job.*", NULL, f1);
    add(r, NULL, 1, "job.*", NULL, f2);
    add(r, NULL, 2, "job.*", "*", NULL);
    assert_string_equal(route(r, "job.done", NULL, "{\"status\":\"failed\",\"pages\":3}"), "0,2");
    assert_string_equal(route(r, "job.done", NULL, "{\"status\":\"ok\",\"pages\":30}"), "1,2");
    assert_string_equal(route(r, "job.done", NULL, "{\"status\":\"failed\",\"pages\":30}"),
                        "0,1,2");
    assert_string_equal(route(r, "job.done", NULL, "{}"), "2");
    router_free(r);
    filter_free(f1);
    filter_free(f2);
    cJSON_Delete(s1);
    cJSON_Delete(s2);
}

static void test_count_over_max(void **state)
{
    sy_router *r = router_new();
    sy_event *ev = mk_event("a.b", NULL, NULL);
    void *out[3] = {NULL, NULL, NULL};
    (void)state;
    for (int i = 0; i < 5; i++)
        add(r, NULL, i, i % 2 ? "a.*" : "*", NULL, NULL);
    assert_int_equal(router_match(r, ev, out, 2), 5);
    assert_ptr_equal(out[0], EP(0));
    assert_ptr_equal(out[1], EP(1));
    assert_null(out[2]); /* nothing written past max */
    assert_int_equal(router_match(r, ev, NULL, 0), 5);
    event_unref(ev);
    router_free(r);
}

static void test_empty_router(void **state)
{
    sy_router *r = router_new();
    const char *none[] = {NULL};
    (void)state;
    assert_int_equal(router_count(r), 0);
    assert_string_equal(route(r, "a", NULL, NULL), "");
    assert_int_equal(router_add(r, NULL, none, NULL, EP(0)), 0); /* no patterns: never matches */
    assert_string_equal(route(r, "a", NULL, NULL), "");
    assert_int_equal(router_count(r), 1);
    router_free(r);
    router_free(NULL);
}

static void test_many_endpoints(void **state)
{
    sy_router *r = router_new();
    char exact[64], prefix[64], org[32];
    void *out[16];
    sy_event *ev;
    size_t n;
    (void)state;
    /* 10,000 endpoints over 100 orgs and 1,000 types, so the table grows many times. */
    for (int i = 0; i < 10000; i++) {
        snprintf(org, sizeof(org), "org%d", i % 100);
        snprintf(exact, sizeof(exact), "svc%d.evt%d", i % 1000, i);
        snprintf(prefix, sizeof(prefix), "svc%d.*", i % 1000);
        add(r, i % 10 == 0 ? NULL : org, i, exact, prefix, NULL);
    }
    assert_int_equal(router_count(r), 10000);
    /* svc7.* is registered by i = 7, 1007, ..., 9007; only those of org7 or without org see it */
    ev = mk_event("svc7.anything", "org7", NULL);
    n = router_match(r, ev, out, 16);
    event_unref(ev);
    assert_int_equal(n, 10);
    for (size_t i = 0; i < n; i++)
        assert_ptr_equal(out[i], EP(7 + 1000 * (int)i));
    /* exact hit of endpoint 4242 (org42) plus the svc242.* family in org42 */
    assert_string_equal(route(r, "svc242.evt4242", "org42", NULL),
                        "242,1242,2242,3242,4242,5242,6242,7242,8242,9242");
    assert_string_equal(route(r, "svc242.evt4242", "org43", NULL), "");
    /* endpoint 4240 has no org */
    assert_string_equal(route(r, "svc240.evt4240", NULL, NULL), "240,1240,2240,3240,4240,5240,6240,"
                                                                 "7240,8240,9240");
    router_free(r);
}

static void test_many_segments(void **state)
{
    /* 70 segments: 69 "prefix.*" lists per org key exceed the on-stack cursor array. */
    sy_router *r = router_new();
    char type[256], pat[256], expect[512], got[512];
    size_t len = 0, elen = 0, glen = 0, n;
    void *out[128];
    sy_event *ev;
    (void)state;
    for (int i = 0; i < 70; i++)
        len += (size_t)snprintf(type + len, sizeof(type) - len, "%sa", i ? "." : "");
    for (int i = 1; i < 70; i++) {
        memcpy(pat, type, 2 * (size_t)i - 1);
        strcpy(pat + 2 * i - 1, ".*");
        /* odd endpoints without org, even ones in acme: both org keys contribute lists */
        add(r, i % 2 ? NULL : "acme", i, pat, NULL, NULL);
        elen += (size_t)snprintf(expect + elen, sizeof(expect) - elen, "%s%d", i > 1 ? "," : "", i);
    }
    add(r, "acme", 70, type, NULL, NULL);
    add(r, NULL, 71, "*", NULL, NULL);
    snprintf(expect + elen, sizeof(expect) - elen, ",70,71");

    ev = mk_event(type, "acme", NULL);
    n = router_match(r, ev, out, 128);
    event_unref(ev);
    assert_int_equal(n, 71);
    for (size_t i = 0; i < n; i++)
        glen += (size_t)snprintf(got + glen, sizeof(got) - glen, "%s%d", i ? "," : "",
                                 (int)((int *)out[i] - ids));
    assert_string_equal(got, expect);
    router_free(r);
}

static sy_router *shared;

static void *match_worker(void *arg)
{
    sy_event *ev = arg;
    void *out[8];
    for (int i = 0; i < 20000; i++)
        if (router_match(shared, ev, out, 8) != 3 || out[0] != EP(0) || out[2] != EP(2))
            return (void *)1;
    return NULL;
}

static void test_concurrent_match(void **state)
{
    pthread_t t[4];
    sy_event *ev = mk_event("a.b.c", "acme", NULL);
    void *res;
    int bad = 0;
    (void)state;
    shared = router_new();
    add(shared, "acme", 0, "a.*", "a.b.*", NULL);
    add(shared, NULL, 1, "a.b.c", "*", NULL);
    add(shared, "acme", 2, "*", "a.b.c", NULL);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, match_worker, ev), 0);
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], &res);
        bad |= res != NULL;
    }
    assert_false(bad);
    event_unref(ev);
    router_free(shared);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_org_isolation),   cmocka_unit_test(test_patterns),
        cmocka_unit_test(test_dedup_and_order), cmocka_unit_test(test_filters),
        cmocka_unit_test(test_count_over_max),  cmocka_unit_test(test_empty_router),
        cmocka_unit_test(test_many_endpoints),  cmocka_unit_test(test_concurrent_match),
        cmocka_unit_test(test_many_segments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
