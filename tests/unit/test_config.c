/*
 * test_config.c - config loading: every mistake reported as
 * `file: path.to.key: what is wrong`, all of them at once, and good
 * configs produce the expected structures.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfgtable.h"
#include "config.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    strcpy(dir, "/tmp/sy_conf_XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void put(const char *name, const char *text)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void clear(void)
{
    teardown(NULL);
    setup(NULL);
}

#define CORE "{\"core\": {\"ingress\": [{\"type\": \"pull\", \"bind\": \"tcp://127.0.0.1:5556\"}]}}"
#define SINKS "{\"sinks\": {\"files\": {\"plugin\": \"file\", \"path\": \"x\"}}}"

/* Loads dir and returns the error text ("" when it loaded). */
static char *load(sy_conf **out)
{
    static char text[8192];
    sy_errs e = {0};
    sy_conf *c = config_load(dir, &e);
    snprintf(text, sizeof text, "%s", e.buf ? e.buf : "");
    errs_free(&e);
    if (out)
        *out = c;
    else
        config_free(c);
    return text;
}

static char *f(const char *name)
{
    static char b[4][256];
    static int i;
    i = (i + 1) % 4;
    snprintf(b[i], sizeof b[i], "%s/%s", dir, name);
    return b[i];
}

static void test_good_config(void **state)
{
    (void)state;
    clear();
    put("10-core.json", CORE);
    put("20-sinks.json", SINKS);
    put("30-ep.json", "{\"endpoints\": {\"a\": {\"org_id\": \"acme\", \"sink\": \"files\", "
                      "\"enabled_events\": [\"job.*\", \"artifact.ready\"], \"concurrency\": 2, "
                      "\"filter\": {\"data.status\": \"ok\"}, \"retry\": \"legacy\"},"
                      "\"b\": {\"sink\": \"files\"}}}");
    sy_conf *c;
    assert_string_equal(load(&c), "");
    assert_non_null(c);
    assert_int_equal(c->ningress, 1);
    assert_int_equal(c->ingress[0].type, INGRESS_PULL);
    assert_int_equal(c->ingress[0].bind, 1);
    assert_int_equal(c->max_event_bytes, 1048576);
    assert_int_equal(c->nendpoints, 2);
    assert_string_equal(c->endpoints[0].id, "a");
    assert_string_equal(c->endpoints[0].org_id, "acme");
    assert_string_equal(c->endpoints[0].events[1], "artifact.ready");
    assert_null(c->endpoints[0].events[2]);
    assert_non_null(c->endpoints[0].filter);
    assert_int_equal(c->endpoints[0].concurrency, 2);
    assert_int_equal(c->endpoints[0].sink_index, 0);
    assert_null(c->endpoints[1].org_id);
    assert_string_equal(c->endpoints[1].events[0], "*");
    config_free(c);
}

static void test_later_file_overrides_core(void **state)
{
    (void)state;
    clear();
    put("10-core.json", CORE);
    put("20-sinks.json", SINKS);
    put("90-local.json", "{\"core\": {\"workers\": 9, \"max_event_bytes\": \"2MiB\"}}");
    sy_conf *c;
    assert_string_equal(load(&c), "");
    assert_int_equal(c->workers, 9);
    assert_int_equal(c->max_event_bytes, 2 * 1048576);
    config_free(c);
}

static void test_every_error_reported(void **state)
{
    (void)state;
    clear();
    put("10-core.json", "{\"core\": {\"ingress\": [{\"type\": \"push\", \"bind\": \"x\"}], "
                        "\"workers\": 0, \"max_event_bytes\": \"1MB!\", \"colour\": 1}}");
    put("20-sinks.json", SINKS);
    put("30-ep.json", "{\"endpoints\": {\"a\": {\"sink\": \"nope\", \"enabled_events\": "
                      "[\"Job.Done\"], \"filter\": {\"data.x\": {\"$foo\": 1}}, "
                      "\"retry\": \"fast\"}}, \"extra\": 1}");
    char want[4096], core[256], ep[256];
    snprintf(core, sizeof core, "%s", f("10-core.json"));
    snprintf(ep, sizeof ep, "%s", f("30-ep.json"));
    snprintf(want, sizeof want,
             "%s: core.ingress[0].type: expected \"pull\", \"sub\" or \"ack\"\n"
             "%s: core.ingress[0].bind: \"x\" is not a ZeroMQ endpoint (e.g. tcp://127.0.0.1:5556, ipc:///run/sy.sock)\n"
             "%s: core.workers: expected an integer from 1 to 256, got a number out of range\n"
             "%s: core.max_event_bytes: bad size \"1MB!\" (a number of bytes, or a number with B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024), in any case)\n"
             "%s: core.colour: unknown key (expected plugin_dir, ingress, admin, spool, spool_sync, retention, dedup_window, spill_after, memory_deliveries, quarantine, max_event_bytes, max_depth, workers, max_pending, dead_letter_max, drain_timeout, log_level, log_format, stats_file, stats_interval)\n"
             "%s: endpoints.a.enabled_events[0]: \"Job.Done\" is not an event type pattern (job.completed, job.*, *)\n"
             "%s: endpoints.a.filter.data.x.$foo: unknown operator\n"
             "%s: endpoints.a.retry: unknown policy \"fast\" (expected standard, legacy or an object)\n"
             "%s: extra: unknown top-level key (expected core, sinks, endpoints)\n",
             core, core, core, core, core, ep, ep, ep, ep);
    assert_string_equal(load(NULL), want);
}

static void test_unknown_sink_and_no_ingress(void **state)
{
    (void)state;
    clear();
    put("20-sinks.json", SINKS);
    put("30-ep.json", "{\"endpoints\": {\"a\": {\"sink\": \"nope\"}}}");
    char want[1024];
    snprintf(want, sizeof want,
             "%s: endpoints.a.sink: no sink named \"nope\" (defined: files)\n"
             "%s: core.ingress: no ingress socket configured (e.g. [{\"type\": \"pull\", \"bind\": \"tcp://127.0.0.1:5556\"}])\n",
             f("30-ep.json"), dir);
    assert_string_equal(load(NULL), want);
}

static void test_invalid_json_position(void **state)
{
    (void)state;
    clear();
    put("10-core.json", "{\n  \"core\": {\n    \"workers\": 4,,\n  }\n}\n");
    char want[512];
    snprintf(want, sizeof want, "%s: not valid JSON near line 3 column 19\n", f("10-core.json"));
    assert_string_equal(load(NULL), want);
}

static void test_duplicates_across_files(void **state)
{
    (void)state;
    clear();
    put("10-core.json", CORE);
    put("20-sinks.json", SINKS);
    put("21-sinks.json", SINKS);
    put("30-ep.json", "{\"endpoints\": {\"a\": {\"sink\": \"files\"}}}");
    put("31-ep.json", "{\"endpoints\": {\"a\": {\"sink\": \"files\"}}}");
    char want[1024];
    snprintf(want, sizeof want,
             "%s: sinks.files: sink \"files\" is already defined in %s\n"
             "%s: endpoints.a: endpoint \"a\" is already defined in %s\n",
             f("21-sinks.json"), f("20-sinks.json"), f("31-ep.json"), f("30-ep.json"));
    assert_string_equal(load(NULL), want);
}

static void test_empty_folder(void **state)
{
    (void)state;
    clear();
    char want[256];
    snprintf(want, sizeof want, "%s: no *.json files in the config folder\n", dir);
    assert_string_equal(load(NULL), want);
}

/* ---- cfgtable -------------------------------------------------------- */

typedef struct {
    const char *path;
    int64_t n;
    int flag;
    double ratio;
    int64_t timeout;
    int64_t size;
    const char *const *list;
    const char *const *map;
    const char *secret;
} tconf;

static const sy_config_key tkeys[] = {
    {"path", SY_CFG_STRING, NULL, SY_CFG_REQUIRED, offsetof(tconf, path), "p"},
    {"n", SY_CFG_INT, "5", 0, offsetof(tconf, n), "n"},
    {"flag", SY_CFG_BOOL, "true", 0, offsetof(tconf, flag), "f"},
    {"ratio", SY_CFG_DOUBLE, "0.5", 0, offsetof(tconf, ratio), "r"},
    {"timeout", SY_CFG_DURATION, "10s", 0, offsetof(tconf, timeout), "t"},
    {"size", SY_CFG_SIZE, "64KiB", 0, offsetof(tconf, size), "s"},
    {"list", SY_CFG_STRINGS, "[\"a\", \"b\"]", 0, offsetof(tconf, list), "l"},
    {"map", SY_CFG_STRING_MAP, NULL, 0, offsetof(tconf, map), "m"},
    {"secret", SY_CFG_STRING, "hunter2", SY_CFG_SECRET, offsetof(tconf, secret), "s"},
    {NULL, SY_CFG_END, NULL, 0, 0, NULL},
};

static char report_buf[2048];

static void rep(void *ctx, const char *key, const char *msg)
{
    (void)ctx;
    size_t l = strlen(report_buf);
    snprintf(report_buf + l, sizeof report_buf - l, "%s: %s\n", key ? key : "-", msg);
}

static void test_cfgtable_defaults_and_values(void **state)
{
    (void)state;
    tconf c;
    cfg_arena a = {0};
    report_buf[0] = '\0';
    cJSON *o = cJSON_Parse("{\"path\": \"/x\", \"plugin\": \"file\", \"map\": {\"k\": \"v\"}}");
    static const char *const skip[] = {"plugin", NULL};
    assert_int_equal(cfgtable_fill(tkeys, o, skip, &c, sizeof c, &a, rep, NULL), 0);
    assert_string_equal(report_buf, "");
    assert_string_equal(c.path, "/x");
    assert_int_equal(c.n, 5);
    assert_int_equal(c.flag, 1);
    assert_true(c.ratio == 0.5);
    assert_int_equal(c.timeout, 10000);
    assert_int_equal(c.size, 65536);
    assert_string_equal(c.list[0], "a");
    assert_string_equal(c.list[1], "b");
    assert_null(c.list[2]);
    assert_string_equal(c.map[0], "k");
    assert_string_equal(c.map[1], "v");
    assert_null(c.map[2]);
    cfg_arena_free(&a);
    cJSON_Delete(o);
}

static void test_cfgtable_errors(void **state)
{
    (void)state;
    tconf c;
    cfg_arena a = {0};
    report_buf[0] = '\0';
    cJSON *o = cJSON_Parse("{\"n\": 1.5, \"flag\": \"yes\", \"timeout\": \"10 s\", \"size\": -1, "
                           "\"list\": [1], \"map\": {\"k\": 2}, \"typo\": 1}");
    assert_int_equal(cfgtable_fill(tkeys, o, NULL, &c, sizeof c, &a, rep, NULL), 8);
    assert_string_equal(report_buf,
                        "typo: unknown key\n"
                        "path: required key is missing\n"
                        "n: expected integer, got number\n"
                        "flag: expected boolean, got string\n"
                        "timeout: bad duration \"10 s\" (e.g. \"250ms\", \"10s\", \"5m\", \"2h\", \"3d\")\n"
                        "size: expected size, got number\n"
                        "list: element 0: expected a string, got number\n"
                        "map: k: expected a string, got number\n");
    cfg_arena_free(&a);
    cJSON_Delete(o);
}

static void test_cfgtable_check_and_describe(void **state)
{
    (void)state;
    char err[256];
    assert_int_equal(cfgtable_check(tkeys, sizeof(tconf), err, sizeof err), 0);
    assert_int_equal(cfgtable_check(tkeys, offsetof(tconf, secret), err, sizeof err), -1);
    assert_string_equal(err, "config key secret lies outside the 64-byte config struct");
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    cfgtable_describe(m, tkeys, "  ");
    fclose(m);
    assert_non_null(strstr(buf, "  path               string, required\n      p\n"));
    assert_non_null(strstr(buf, "  timeout            duration, default 10s\n"));
    /* A secret's default never appears in the docs. */
    assert_null(strstr(buf, "hunter2"));
    assert_non_null(strstr(buf, "  secret             string, default \"(hidden)\", secret\n"));
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_config),
        cmocka_unit_test(test_later_file_overrides_core),
        cmocka_unit_test(test_every_error_reported),
        cmocka_unit_test(test_unknown_sink_and_no_ingress),
        cmocka_unit_test(test_invalid_json_position),
        cmocka_unit_test(test_duplicates_across_files),
        cmocka_unit_test(test_empty_folder),
        cmocka_unit_test(test_cfgtable_defaults_and_values),
        cmocka_unit_test(test_cfgtable_errors),
        cmocka_unit_test(test_cfgtable_check_and_describe),
    };
    return cmocka_run_group_tests_name("config", tests, setup, teardown);
}
