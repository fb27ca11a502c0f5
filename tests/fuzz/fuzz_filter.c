/*
 * fuzz_filter.c - libFuzzer target for filter_compile / filter_match and
 * the type patterns.
 *
 * Filters come from operators' config, events from publishers: both sides
 * are fuzzed. The first input byte picks the mode:
 *   0  the rest is a filter spec: compile it and match it against a fixed
 *      set of events;
 *   1  the rest is an event: match it against a fixed set of filters;
 *   2  the rest is "pattern\ntype": type_pattern_valid / _match against a
 *      reference written from the documented grammar.
 * Beyond memory safety it checks properties the router depends on:
 * matching is deterministic, {"$and": [F]} and {"$or": [F]} behave as F,
 * {"$or": [F, G]} is F || G and {"$and": [F, G]} is F && G, a failed
 * compile always says why, and a NULL filter matches everything.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "envelope.h"
#include "filter.h"

#include "fuzz.h"

/* Events of many shapes: the operators' type rules (numbers vs strings, absent vs null) differ. */
static const char *const event_texts[] = {
    "{\"event_id\":\"e1\",\"event_type\":\"job.completed\",\"org_id\":\"acme\","
    "\"data\":{\"status\":\"succeeded\",\"pages\":12,\"tags\":[\"a\",\"b\"],\"ok\":true}}",
    "{\"event_id\":\"e2\",\"event_type\":\"job.failed\",\"data\":{\"status\":\"failed\","
    "\"pages\":0,\"retries\":4,\"priority\":\"high\",\"n\":null}}",
    "{\"event_id\":\"e3\",\"event_type\":\"a.b.c\",\"data\":{\"x\":{\"y\":[1,{\"z\":\"deep\"}]},"
    "\"pages\":-1.5e300,\"s\":\"\\u00e9t\\u00e9\",\"e\":\"\"}}",
    "{\"event_id\":\"e4\",\"event_type\":\"job.completed\",\"data\":{\"status\":\"succeeded\","
    "\"status\":\"failed\",\"pages\":\"12\",\"a\":[[],{}],\"o\":{\"k\":1,\"k\":2}}}",
    "{\"event_id\":\"e5\",\"event_type\":\"x\",\"data\":{}}",
    "{\"event_id\":\"e6\",\"event_type\":\"job.completed\",\"version\":2,"
    "\"data\":{\"items\":[{\"id\":0},{\"id\":1},{\"id\":2}],\"pages\":1e-320,\"b\":false}}",
};
#define NEVENTS (sizeof event_texts / sizeof event_texts[0])

/* Filters covering every operator, nested logic and odd paths. */
static const char *const filter_texts[] = {
    "{\"data.status\":\"succeeded\"}",
    "{\"data.status\":{\"$in\":[\"succeeded\",\"failed\"]},\"data.pages\":{\"$gte\":10}}",
    "{\"$or\":[{\"data.priority\":\"high\"},{\"data.retries\":{\"$gt\":3}}]}",
    "{\"data.n\":{\"$exists\":true},\"data.missing\":{\"$exists\":false}}",
    "{\"data.status\":{\"$ne\":\"failed\"},\"data.tags\":{\"$nin\":[[\"a\"],null]}}",
    "{\"data.s\":{\"$prefix\":\"\\u00e9\"},\"data.pages\":{\"$lt\":0,\"$lte\":-1}}",
    "{\"data.x.y.1.z\":\"deep\",\"data.items.2.id\":{\"$eq\":2}}",
    "{\"data\":{\"status\":\"succeeded\"}}",
    ("{\"$and\":[{\"event_type\":{\"$prefix\":\"job.\"}},{\"$or\":[{\"data.ok\":true},"
     "{\"data.b\":false}]}]}"),
    "{\"data.a\":[[],{}],\"data.o\":{\"$eq\":{\"k\":1}}}",
};
#define NFILTERS (sizeof filter_texts / sizeof filter_texts[0])

static cJSON *events[NEVENTS];
static cJSON *filter_specs[NFILTERS];
static sy_filter *filters[NFILTERS];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char err[256];
    (void)argc;
    (void)argv;
    for (size_t i = 0; i < NEVENTS; i++) {
        events[i] = cJSON_Parse(event_texts[i]);
        CHECK(events[i]);
    }
    for (size_t i = 0; i < NFILTERS; i++) {
        filter_specs[i] = cJSON_Parse(filter_texts[i]);
        CHECK(filter_specs[i]);
        filters[i] = filter_compile(filter_specs[i], err, sizeof err);
        CHECK(filters[i]);
    }
    return 0;
}

/* Wraps a spec (not copied: the wrapper is detached before it is freed). */
static cJSON *wrap(const char *op, cJSON *a, cJSON *b)
{
    cJSON *root = cJSON_CreateObject(), *arr = cJSON_CreateArray();
    cJSON_AddItemToArray(arr, cJSON_CreateObjectReference(a->child));
    if (b)
        cJSON_AddItemToArray(arr, cJSON_CreateObjectReference(b->child));
    cJSON_AddItemToObject(root, op, arr);
    return root;
}

static sy_filter *compile_wrapped(const char *op, cJSON *a, cJSON *b)
{
    char err[256];
    cJSON *w = wrap(op, a, b);
    sy_filter *f = filter_compile(w, err, sizeof err);
    cJSON_Delete(w); /* references: the children of a and b are not freed */
    return f;
}

/* mode 0: the input is a spec. */
static void fuzz_spec(const uint8_t *data, size_t size)
{
    char err[512];
    cJSON *spec = cJSON_ParseWithLength((const char *)data, size);
    if (!spec)
        return;
    memset(err, 'x', sizeof err);
    sy_filter *f = filter_compile(spec, err, sizeof err);
    CHECK(memchr(err, '\0', sizeof err) != NULL);
    if (!f) {
        CHECK(err[0] != '\0');
        cJSON_Delete(spec);
        return;
    }
    CHECK(err[0] == '\0');
    /* A spec with no keys compiles to "match all"; wrapping needs a child. */
    sy_filter *fand = spec->child ? compile_wrapped("$and", spec, NULL) : NULL;
    sy_filter *forr = spec->child ? compile_wrapped("$or", spec, NULL) : NULL;
    CHECK(!spec->child || (fand && forr));
    for (size_t i = 0; i < NEVENTS; i++) {
        int m = filter_match(f, events[i]);
        CHECK(m == 0 || m == 1);
        CHECK(filter_match(f, events[i]) == m);
        if (fand)
            CHECK(filter_match(fand, events[i]) == m);
        if (forr)
            CHECK(filter_match(forr, events[i]) == m);
    }
    filter_free(fand);
    filter_free(forr);
    filter_free(f);
    cJSON_Delete(spec);
}

/* mode 1: the input is an event (any JSON; the matcher must cope with every shape). */
static void fuzz_event(const uint8_t *data, size_t size)
{
    cJSON *ev = cJSON_ParseWithLength((const char *)data, size);
    int m[NFILTERS];
    if (!ev)
        return;
    CHECK(filter_match(NULL, ev) == 1);
    for (size_t i = 0; i < NFILTERS; i++) {
        m[i] = filter_match(filters[i], ev);
        CHECK(m[i] == 0 || m[i] == 1);
    }
    /* Logic over two of the fixed filters, picked by the input's length. */
    size_t a = size % NFILTERS, b = (size / NFILTERS) % NFILTERS;
    sy_filter *fo = compile_wrapped("$or", filter_specs[a], filter_specs[b]);
    sy_filter *fa = compile_wrapped("$and", filter_specs[a], filter_specs[b]);
    CHECK(fo && fa);
    CHECK(filter_match(fo, ev) == (m[a] || m[b]));
    CHECK(filter_match(fa, ev) == (m[a] && m[b]));
    filter_free(fo);
    filter_free(fa);

    /* Routing matches filters against accepted envelopes: try the strict path too. */
    sy_event *sev = NULL;
    char why[256];
    if (envelope_parse((const char *)data, size, 1 << 20, 64, &sev, why, sizeof why) == ENV_OK) {
        for (size_t i = 0; i < NFILTERS; i++)
            CHECK(filter_match(filters[i], event_json(sev)) == m[i]);
        event_unref(sev);
    }
    cJSON_Delete(ev);
}

/* The documented grammar, written independently of filter.c. */
static int ref_type_valid(const char *s, size_t n)
{
    int seg = 0;
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '.') {
            if (!seg)
                return 0;
            seg = 0;
        } else if (strchr("abcdefghijklmnopqrstuvwxyz0123456789_-", c) && c) {
            seg = 1;
        } else {
            return 0;
        }
    }
    return seg;
}

static int ref_pattern_valid(const char *p)
{
    size_t n = strlen(p);
    if (strcmp(p, "*") == 0)
        return 1;
    if (n >= 2 && p[n - 1] == '*' && p[n - 2] == '.')
        return ref_type_valid(p, n - 2);
    return ref_type_valid(p, n);
}

/* Only defined for valid patterns and types: what routing uses. */
static int ref_pattern_match(const char *p, const char *t)
{
    size_t n = strlen(p);
    if (strcmp(p, "*") == 0)
        return 1;
    if (n >= 2 && p[n - 1] == '*' && p[n - 2] == '.')
        return strlen(t) > n - 1 && memcmp(t, p, n - 1) == 0;
    return strcmp(p, t) == 0;
}

/* mode 2: "pattern\ntype". */
static void fuzz_pattern(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return;
    memcpy(s, data, size);
    s[size] = '\0';
    char *nl = strchr(s, '\n');
    const char *pattern = s, *type = "";
    if (nl) {
        *nl = '\0';
        type = nl + 1;
    }
    int pv = type_pattern_valid(pattern);
    CHECK(pv == ref_pattern_valid(pattern));
    CHECK(envelope_type_valid(type) == ref_type_valid(type, strlen(type)));
    int m = type_pattern_match(pattern, type);
    CHECK(m == 0 || m == 1);
    if (pv && envelope_type_valid(type))
        CHECK(m == ref_pattern_match(pattern, type));
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    switch (data[0] % 3) {
    case 0: fuzz_spec(data + 1, size - 1); break;
    case 1: fuzz_event(data + 1, size - 1); break;
    default: fuzz_pattern(data + 1, size - 1); break;
    }
    return 0;
}
