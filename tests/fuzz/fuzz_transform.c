/*
 * fuzz_transform.c - libFuzzer target for the Lua transformations
 * (core/transform.c, core/transform_json.c).
 *
 * Scripts come from operators, events from publishers: both sides are
 * fuzzed. The first input byte picks the mode:
 *   0  the rest is a script: compile it (text only, top level under the
 *      budget) and run it on fixed events;
 *   1  the rest is an event: run fixed scripts on it (identity, a
 *      reshaping, one walking every value, one returning options).
 * Every call runs with small limits (20,000 instructions, 4 MiB), so loops
 * and allocations end in errors, not timeouts. Properties checked: a
 * failed call always says why; TF_OK results that are tables are valid
 * JSON; the same call twice gives the same bytes (sorted keys); the
 * identity of an accepted envelope's JSON gives back an equal document
 * when its objects have no duplicate keys; headers come in name/value
 * pairs; the state stays usable (a fixed script still works afterwards).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "envelope.h"
#include "transform.h"

#include "fuzz.h"

static const tf_limits LIM = {.instructions = 20000, .memory = 4 << 20};

static const char *const event_texts[] = {
    ("{\"event_id\":\"e1\",\"event_type\":\"job.completed\",\"org_id\":\"acme\","
    "\"data\":{\"job_id\":7,\"status\":\"failed\",\"tags\":[\"a\",null],\"x\":{\"y\":[]}}}"),
    "{\"event_id\":\"e2\",\"event_type\":\"a\",\"data\":{\"n\":1.5e300,\"s\":\"\\u00e9\\u0001\"}}",
};
#define NEVENTS (sizeof event_texts / sizeof event_texts[0])

static const char *const scripts[] = {
    "function transform(e) return e end",
    ("function transform(e) local d = e.data or {} "
     "if d.status == 'failed' then return nil end "
     "return {text = tostring(e.event_type) .. ' ' .. tostring(d.job_id), n = #e.event_id} end"),
    ("local function walk(v, n) if type(v) == 'table' then for k, x in pairs(v) do "
     "n = walk(x, n + 1) end end return n end "
     "function transform(e) return {count = walk(e, 0)} end"),
    ("function transform(e) return tostring(e.event_id), {content_type = 'text/plain', "
     "headers = {['X-Id'] = tostring(e.event_id)}, route = 'r.' .. tostring(e.event_type)} end"),
};
#define NSCRIPTS (sizeof scripts / sizeof scripts[0])

static tf_vm *vm;
static int refs[NSCRIPTS];
static cJSON *events[NEVENTS];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char err[512];
    (void)argc;
    (void)argv;
    vm = tf_vm_new(&LIM, err, sizeof err);
    CHECK(vm);
    for (size_t i = 0; i < NSCRIPTS; i++) {
        refs[i] = tf_compile(vm, "fixed.lua", scripts[i], strlen(scripts[i]), err, sizeof err);
        CHECK(refs[i] >= 0);
    }
    for (size_t i = 0; i < NEVENTS; i++)
        CHECK((events[i] = cJSON_Parse(event_texts[i])));
    return 0;
}

/* One call, checked; returns the status. */
static tf_status call(int ref, const cJSON *ev, tf_out **keep)
{
    char err[512], err2[512];
    tf_out *o = NULL, *o2 = NULL;
    memset(err, 'x', sizeof err);
    tf_status st = tf_run(vm, ref, ev, &o, err, sizeof err);
    CHECK(st == TF_OK || st == TF_DROP || st == TF_ERROR);
    if (st == TF_ERROR) {
        CHECK(memchr(err, '\0', sizeof err) && err[0]);
        CHECK(!o);
        return st;
    }
    if (st == TF_DROP) {
        CHECK(!o);
        return st;
    }
    CHECK(o && (o->body || o->body_len == 0));
    if (o->content_type && !strcmp(o->content_type, "application/json")) {
        cJSON *j = cJSON_ParseWithLength(o->body, o->body_len);
        CHECK(j);
        cJSON_Delete(j);
    }
    for (char **h = o->headers; h && *h; h += 2)
        CHECK(h[1] != NULL);
    /* Deterministic: scripts here keep no state between calls unless the
     * fuzzed one does, so compare only for the fixed scripts. */
    if (keep) {
        tf_status st2 = tf_run(vm, ref, ev, &o2, err2, sizeof err2);
        CHECK(st2 == TF_OK && o2->body_len == o->body_len &&
              !memcmp(o2->body, o->body, o->body_len));
        tf_out_free(o2);
        *keep = o;
        return st;
    }
    tf_out_free(o);
    return st;
}

/* 1 when no object in v repeats a key (Lua tables keep only the last). */
static int unique_keys(const cJSON *v)
{
    for (const cJSON *c = v ? v->child : NULL; c; c = c->next) {
        if (cJSON_IsObject(v))
            for (const cJSON *d = c->next; d; d = d->next)
                if (!strcmp(c->string, d->string))
                    return 0;
        if (!unique_keys(c))
            return 0;
    }
    return 1;
}

static void fuzz_script(const uint8_t *data, size_t size)
{
    char err[512];
    int ref = tf_compile(vm, "fuzz.lua", (const char *)data, size, err, sizeof err);
    if (ref < 0) {
        CHECK(err[0]);
    } else {
        for (size_t i = 0; i < NEVENTS; i++)
            call(ref, events[i], NULL);
        tf_release(vm, ref);
    }
    /* Whatever the script did, the state still works. */
    tf_out *o = NULL;
    CHECK(call(refs[0], events[0], &o) == TF_OK);
    tf_out_free(o);
}

static void fuzz_event(const uint8_t *data, size_t size)
{
    sy_event *ev = NULL;
    char why[256];
    if (envelope_parse((const char *)data, size, 1 << 20, 64, &ev, why, sizeof why) != ENV_OK)
        return;
    const cJSON *json = event_json(ev);
    CHECK(json);
    tf_out *o = NULL;
    if (call(refs[0], json, &o) == TF_OK && unique_keys(json)) {
        cJSON *back = cJSON_ParseWithLength(o->body, o->body_len);
        CHECK(back);
        /* Numbers go through doubles both ways; strings and structure must match. */
        CHECK(cJSON_Compare(back, json, 1));
        cJSON_Delete(back);
    }
    tf_out_free(o);
    for (size_t i = 1; i < NSCRIPTS; i++) {
        o = NULL;
        call(refs[i], json, &o);
        tf_out_free(o);
    }
    event_unref(ev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] % 2 == 0)
        fuzz_script(data + 1, size - 1);
    else
        fuzz_event(data + 1, size - 1);
    return 0;
}
