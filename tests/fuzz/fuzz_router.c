/*
 * fuzz_router.c - libFuzzer target: router_match against a brute-force
 * reference.
 *
 * The router's hash index is the code that enforces tenant isolation, so a
 * wrong bucket is a cross-org leak. The input is read as a small program:
 * endpoints (org, one to three patterns, an optional filter) followed by
 * events (org, type, system flag, payload choice). Names come from tiny
 * alphabets so that orgs, segments and patterns collide often. Every event
 * is routed by router_match and by the documented rule applied to each
 * endpoint in turn:
 *   org:     the endpoint has no org, or the event has the same org
 *   type:    one pattern matches; "*" never matches a system event
 *   filter:  none, or it matches
 * and the two lists (in order of addition, each endpoint once) must agree,
 * including when the output array is smaller than the match count.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "filter.h"
#include "router.h"

#include "fuzz.h"

#define MAX_EPS 48
#define MAX_PATS 3

/* "" is an org the router must keep apart from "no org" even though configs can't name it. */
static const char *const orgs[] = {NULL, "acme", "beta", "ACME", "acme ", ""};
#define NORGS (sizeof orgs / sizeof orgs[0])
static const char *const segs[] = {"a", "b", "job", "a-b", "0", "_"};
#define NSEGS (sizeof segs / sizeof segs[0])
static const char *const filter_texts[] = {
    "{\"data.k\":1}",
    "{\"data.k\":{\"$ne\":1}}",
    "{\"$or\":[{\"data.s\":{\"$prefix\":\"x\"}},{\"org_id\":\"beta\"}]}",
};
#define NFILTERS (sizeof filter_texts / sizeof filter_texts[0])
static const char *const payloads[] = {"{}", "{\"k\":1}", "{\"k\":2,\"s\":\"xy\"}"};
#define NPAYLOADS (sizeof payloads / sizeof payloads[0])

static sy_filter *filters[NFILTERS];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char err[128];
    (void)argc;
    (void)argv;
    for (size_t i = 0; i < NFILTERS; i++) {
        cJSON *spec = cJSON_Parse(filter_texts[i]);
        filters[i] = filter_compile(spec, err, sizeof err);
        cJSON_Delete(spec);
        CHECK(filters[i]);
    }
    return 0;
}

/* Reads input bytes; returns 0 once they are used up. */
typedef struct rd {
    const uint8_t *p;
    size_t n;
} rd;

static unsigned take(rd *r)
{
    if (!r->n)
        return 0;
    r->n--;
    return *r->p++;
}

/* A type of 1-4 segments into buf: "a.job.0". */
static void make_type(rd *r, char *buf, size_t len)
{
    unsigned nseg = take(r) % 4 + 1;
    size_t off = 0;
    buf[0] = '\0';
    for (unsigned i = 0; i < nseg; i++)
        off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? "." : "",
                                segs[take(r) % NSEGS]);
}

typedef struct ep {
    const char *org;
    char pats[MAX_PATS][64];
    const char *patv[MAX_PATS + 1];
    const sy_filter *filter;
    int id;
} ep;

static int ref_match(const ep *e, const sy_event *ev)
{
    if (e->org && (!ev->org_id || strcmp(e->org, ev->org_id) != 0))
        return 0;
    int type_ok = 0;
    for (int i = 0; e->patv[i]; i++) {
        if (ev->system && strcmp(e->patv[i], "*") == 0)
            continue;
        if (type_pattern_match(e->patv[i], ev->event_type))
            type_ok = 1;
    }
    return type_ok && filter_match(e->filter, event_json(ev));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ep eps[MAX_EPS];
    rd r = {data, size};
    sy_router *router = router_new();
    CHECK(router);
    size_t neps = take(&r) % (MAX_EPS + 1);
    for (size_t i = 0; i < neps; i++) {
        ep *e = &eps[i];
        unsigned b = take(&r);
        e->org = orgs[b % NORGS];
        e->filter = (b / NORGS) % 4 ? NULL : filters[(b / NORGS / 4) % NFILTERS];
        e->id = (int)i;
        unsigned npat = take(&r) % MAX_PATS + 1;
        for (unsigned k = 0; k < npat; k++) {
            unsigned kind = take(&r) % 4;
            if (kind == 0) {
                strcpy(e->pats[k], "*");
            } else {
                make_type(&r, e->pats[k], sizeof e->pats[k] - 2);
                if (kind == 1)
                    strcat(e->pats[k], ".*");
            }
            CHECK(type_pattern_valid(e->pats[k]));
            e->patv[k] = e->pats[k];
        }
        e->patv[npat] = NULL;
        CHECK(router_add(router, e->org, e->patv, e->filter, e) == 0);
    }
    CHECK(router_count(router) == neps);

    while (r.n > 0) {
        char type[64], body[512];
        unsigned b = take(&r);
        const char *org = orgs[b % NORGS];
        int system = (b / NORGS) % 5 == 0;
        const char *payload = payloads[(b / NORGS / 5) % NPAYLOADS];
        make_type(&r, type, sizeof type);
        if (org && !*org)
            org = NULL; /* an envelope cannot carry an empty org_id */
        if (org)
            snprintf(body, sizeof body,
                     "{\"event_id\":\"e\",\"event_type\":\"%s\",\"org_id\":\"%s\",\"data\":%s}",
                     type, org, payload);
        else
            snprintf(body, sizeof body, "{\"event_id\":\"e\",\"event_type\":\"%s\",\"data\":%s}",
                     type, payload);
        sy_event *ev = NULL;
        char why[128];
        CHECK(envelope_parse(body, strlen(body), 4096, 8, &ev, why, sizeof why) == ENV_OK);
        ev->system = system;

        void *want[MAX_EPS], *got[MAX_EPS];
        size_t nwant = 0;
        for (size_t i = 0; i < neps; i++)
            if (ref_match(&eps[i], ev))
                want[nwant++] = &eps[i];
        size_t ngot = router_match(router, ev, got, MAX_EPS);
        CHECK(ngot == nwant);
        CHECK(memcmp(got, want, nwant * sizeof *got) == 0);
        /* A short output array: the full count, the first entries only. */
        if (nwant > 1) {
            void *few[1] = {NULL};
            CHECK(router_match(router, ev, few, 1) == nwant);
            CHECK(few[0] == want[0]);
        }
        event_unref(ev);
    }
    router_free(router);
    return 0;
}
