/*
 * test_regressions.c - inputs that once crashed or misbehaved, found by
 * fuzzing (tests/fuzz/, docs/HARDENING.md) or while triaging what it found.
 * Each test names where the input came from and what went wrong, so a
 * failure here says which fix regressed. The fuzz targets' seed corpora
 * get the same inputs, so the fuzzers start from them too.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "host.h"
#include "runtime.h"

/* ------------------------------------------------------------------ */
/* Helpers: a throwaway conf.d                                         */
/* ------------------------------------------------------------------ */

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/sy-regress-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    char p[128];
    (void)state;
    snprintf(p, sizeof p, "%s/10-test.json", dir);
    unlink(p);
    rmdir(dir);
    return 0;
}

static void write_conf(const char *text)
{
    char p[128];
    snprintf(p, sizeof p, "%s/10-test.json", dir);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

#define INGRESS "\"ingress\":[{\"type\":\"pull\",\"bind\":\"tcp://127.0.0.1:1\"}]"

/* Loads the conf.d; returns the error text ("" when it loaded) in a static buffer. */
static const char *load_errors(const char *text)
{
    static char out[4096];
    sy_errs errs = {0};
    write_conf(text);
    sy_conf *c = config_load(dir, &errs);
    snprintf(out, sizeof out, "%s", errs.buf ? errs.buf : "");
    if (c) {
        assert_int_equal(errs.count, 0);
        config_free(c);
    } else {
        assert_true(errs.count > 0);
    }
    errs_free(&errs);
    return out;
}

/* ------------------------------------------------------------------ */
/* config.c get_units: float-to-integer overflow                       */
/* ------------------------------------------------------------------ */

/*
 * fuzz_config, minimized: {"core":{"dedup_window":6e64}}.
 * UBSan: core/config.c get_units: "6e+64 is outside the range of
 * representable values of type 'long'". A duration or size given as a
 * JSON number was cast to int64_t with only ">= 0" and "integral"
 * checked; without sanitizers x86 turns it into INT64_MIN, i.e. a
 * negative dedup window, retention, drain timeout... Expected: refused
 * with an error naming the key, like any other bad duration.
 */
static void test_huge_number_duration_is_refused(void **state)
{
    (void)state;
    assert_non_null(strstr(load_errors("{\"core\":{\"dedup_window\":6e64," INGRESS "}}"),
                           "core.dedup_window"));
}

/* The same conversion serves every duration and size key of core. */
static void test_huge_number_every_units_key(void **state)
{
    static const char *const keys[] = {"retention", "dedup_window", "spill_after", "drain_timeout",
                                       "stats_interval", "max_event_bytes"};
    (void)state;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char text[256], want[64];
        snprintf(text, sizeof text, "{\"core\":{\"%s\":1e300," INGRESS "}}", keys[i]);
        snprintf(want, sizeof want, "core.%s", keys[i]);
        const char *errs = load_errors(text);
        if (!strstr(errs, want))
            fail_msg("%s: 1e300 was accepted (errors: \"%s\")", keys[i], errs);
    }
    /* Just below 2^63 ms is still a (silly but) representable duration. */
    assert_string_equal(load_errors("{\"core\":{\"retention\":9.0e18," INGRESS "}}"), "");
}

/* ------------------------------------------------------------------ */
/* host.c config_int: the same overflow, on the plugins' getter        */
/* ------------------------------------------------------------------ */

/*
 * Found while triaging the above (code review, not a fuzz crash):
 * sy_host.config_int casts any integral JSON number to int64_t, so a
 * plugin asking for {"n": 1e300} gets undefined behaviour. Expected: -1,
 * as for any value that is not an integer.
 */
static void test_host_config_int_out_of_range(void **state)
{
    (void)state;
    cJSON *cfg = cJSON_Parse("{\"big\":1e300,\"neg\":-1e300,\"ok\":-42}");
    int64_t v = 7;
    assert_non_null(cfg);
    assert_int_equal(g_host.config_int((const sy_config *)cfg, "ok", &v), 0);
    assert_int_equal(v, -42);
    assert_int_equal(g_host.config_int((const sy_config *)cfg, "big", &v), -1);
    assert_int_equal(g_host.config_int((const sy_config *)cfg, "neg", &v), -1);
    cJSON_Delete(cfg);
}

/* ------------------------------------------------------------------ */
/* runtime.c: endpoint_init called on a sink whose init failed         */
/* ------------------------------------------------------------------ */

/*
 * Found by tests/e2e/test_security.py (malformed AMQP URLs): a sink
 * instance whose config or init fails still had its endpoints'
 * endpoint_init called, with the NULL instance state. The amqp plugin
 * dereferences it:
 *   SIGSEGV amqp_endpoint_init (state=0x0) plugins/amqp/amqp.c:83
 *           setup_endpoint core/runtime.c:116
 *           runtime_build core/runtime.c:201
 *           daemon_check core/daemon.c:57
 * `switchyard check` and `run` crashed instead of reporting the error,
 * and a SIGHUP reload to such a config killed a running daemon.
 * Expected: runtime_build returns NULL with the instance's error.
 */
static void build_expect_error(const char *sink_json, const char *want)
{
    const char *b = getenv("SY_BUILD");
    char so[512], text[2048];
    struct stat st;
    snprintf(so, sizeof so, "%s/plugins/amqp.so", b ? b : "build");
    if (stat(so, &st) != 0) {
        print_message("skipped: %s is not built\n", so);
        skip();
    }
    char *real = realpath(so, NULL);
    assert_non_null(real);
    snprintf(text, sizeof text,
             "{\"core\":{" INGRESS "},\"sinks\":{\"mq\":%s},"
             "\"endpoints\":{\"e\":{\"sink\":\"mq\"}}}", sink_json);
    char *at = strstr(text, "@SO@");
    if (at) {
        char rest[2048];
        snprintf(rest, sizeof rest, "%s", at + 4);
        snprintf(at, sizeof text - (size_t)(at - text), "%s%s", real, rest);
    }
    free(real);
    write_conf(text);
    sy_errs errs = {0};
    sy_conf *c = config_load(dir, &errs);
    if (!c)
        fail_msg("config refused: %s", errs.buf);
    sy_runtime *rt = runtime_build(c, &g_host, NULL, 0, &errs);
    assert_null(rt);
    assert_non_null(errs.buf);
    if (!strstr(errs.buf, want))
        fail_msg("expected \"%s\" in: %s", want, errs.buf);
    errs_free(&errs);
    config_free(c);
}

static void test_failed_sink_init_skips_endpoint_init(void **state)
{
    (void)state;
    /* init() refuses the URL (port out of range). */
    build_expect_error("{\"plugin\":\"@SO@\",\"url\":\"amqp://u:p@127.0.0.1:99999/vh\"}",
                       "sinks.mq");
}

static void test_failed_sink_config_skips_endpoint_init(void **state)
{
    (void)state;
    /* The core's config table check fails, so init() never runs at all. */
    build_expect_error("{\"plugin\":\"@SO@\",\"url\":\"amqp://u@127.0.0.1:1/vh\","
                       "\"password\":[\"x\"]}",
                       "password");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_huge_number_duration_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_huge_number_every_units_key, setup, teardown),
        cmocka_unit_test(test_host_config_int_out_of_range),
        cmocka_unit_test_setup_teardown(test_failed_sink_init_skips_endpoint_init, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_sink_config_skips_endpoint_init, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
