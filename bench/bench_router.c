/*
 * bench_router.c - router_match alone, with N endpoints (bench/bench_scale.py
 * builds and runs it; it prints figures and asserts nothing).
 *
 *   bench_router N EVENTS SECONDS
 *
 * The endpoint set is the one bench_scale.py gives the daemon, so the two
 * figures can be read side by side:
 *   - "platform": no org, ["job.completed"]   (matches every event)
 *   - "audit":    no org, ["audit.*"]         (looked up, never matches)
 *   - the rest in orgs of three: "org%05d" with ["job.completed"],
 *     ["job.*"] and ["*"]; every third org endpoint also has a payload
 *     filter that holds ({"data.status": "succeeded"}).
 * Events are job.completed of the fully populated orgs, round robin, so
 * each one matches exactly 4 endpoints whatever N is: the cost per event
 * should not depend on N. Prints one line:
 *   endpoints=N events=E matches_per_event=4 ns_per_match=X matches_per_s=Y
 * where a "match" is one router_match call (one event routed).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "envelope.h"
#include "filter.h"
#include "router.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s ENDPOINTS EVENTS SECONDS\n", argv[0]);
        return 2;
    }
    long n = atol(argv[1]), nev = atol(argv[2]);
    double secs = atof(argv[3]);
    if (n < 5 || nev < 1 || secs <= 0) {
        fprintf(stderr, "need ENDPOINTS >= 5, EVENTS >= 1, SECONDS > 0\n");
        return 2;
    }
    char err[256];
    cJSON *spec = cJSON_Parse("{\"data.status\":\"succeeded\"}");
    sy_filter *filter = filter_compile(spec, err, sizeof err);
    cJSON_Delete(spec);
    if (!filter) {
        fprintf(stderr, "filter: %s\n", err);
        return 1;
    }
    sy_router *r = router_new();
    static const char *const p_platform[] = {"job.completed", NULL};
    static const char *const p_audit[] = {"audit.*", NULL};
    static const char *const p_org[3][2] = {{"job.completed", NULL}, {"job.*", NULL}, {"*", NULL}};
    /* user pointers are only compared: small integers cast to pointers do. */
    if (router_add(r, NULL, p_platform, NULL, (void *)1) || router_add(r, NULL, p_audit, NULL, (void *)2))
        return 1;
    long org_eps = n - 2;
    for (long i = 0; i < org_eps; i++) {
        char org[32];
        snprintf(org, sizeof org, "org%05ld", i / 3);
        if (router_add(r, org, p_org[i % 3], i % 9 == 0 ? filter : NULL, (void *)(i + 3)))
            return 1;
    }
    long full_orgs = org_eps / 3;

    sy_event **evs = calloc((size_t)nev, sizeof *evs);
    for (long i = 0; i < nev; i++) {
        char body[256], why[128];
        int len = snprintf(body, sizeof body,
                           "{\"event_id\":\"e%ld\",\"event_type\":\"job.completed\","
                           "\"org_id\":\"org%05ld\",\"data\":{\"status\":\"succeeded\"}}",
                           i, i % full_orgs);
        if (envelope_parse(body, (size_t)len, 4096, 16, &evs[i], why, sizeof why) != ENV_OK) {
            fprintf(stderr, "event: %s\n", why);
            return 1;
        }
    }

    void *out[16];
    size_t expect = 4, checked = router_match(r, evs[0], out, 16);
    if (checked != expect) {
        fprintf(stderr, "expected %zu matches per event, got %zu\n", expect, checked);
        return 1;
    }
    /* Warm up, then run whole passes over the events until the time is up. */
    for (long i = 0; i < nev; i++)
        router_match(r, evs[i], out, 16);
    unsigned long long calls = 0, total = 0;
    double t0 = now_s(), t;
    do {
        for (long i = 0; i < nev; i++)
            total += router_match(r, evs[i], out, 16);
        calls += (unsigned long long)nev;
        t = now_s();
    } while (t - t0 < secs);
    if (total != calls * expect) {
        fprintf(stderr, "match count drifted: %llu for %llu calls\n", total, calls);
        return 1;
    }
    double el = t - t0;
    printf("endpoints=%ld events=%ld matches_per_event=%zu ns_per_match=%.1f matches_per_s=%.0f\n",
           n, nev, expect, el * 1e9 / (double)calls, (double)calls / el);
    for (long i = 0; i < nev; i++)
        event_unref(evs[i]);
    free(evs);
    router_free(r);
    filter_free(filter);
    return 0;
}
