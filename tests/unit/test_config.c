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
#include <sys/stat.h>

#include "cfgtable.h"
#include "config.h"
#include "config_keys.h"
#include "secretfile.h"

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
#define SINKS_AND_EP "{\"sinks\": {\"files\": {\"plugin\": \"file\"}}, " \
                     "\"endpoints\": {\"a\": {\"sink\": \"files\"}}}"

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
    put("90-local.json", "{\"core\": {\"workers\": 9, \"max_event_bytes\": \"2MiB\", "
                         "\"quarantine_rate\": 0}}");
    sy_conf *c;
    assert_string_equal(load(&c), "");
    assert_int_equal(c->workers, 9);
    assert_int_equal(c->max_event_bytes, 2 * 1048576);
    assert_int_equal(c->quarantine_max, 64 * 1048576);
    assert_int_equal(c->quarantine_rate, 0);
    config_free(c);
}

static void test_every_error_reported(void **state)
{
    (void)state;
    clear();
    put("10-core.json", "{\"core\": {\"ingress\": [{\"type\": \"push\", \"bind\": \"x\"}], "
                        "\"workers\": 0, \"max_event_bytes\": \"1MB!\", \"quarantine_max\": \"1KiB\", "
                        "\"colour\": 1}}");
    put("20-sinks.json", SINKS);
    put("30-ep.json", "{\"endpoints\": {\"a\": {\"sink\": \"nope\", \"enabled_events\": "
                      "[\"Job.Done\"], \"filter\": {\"data.x\": {\"$foo\": 1}}, "
                      "\"retry\": \"fast\"}}, \"extra\": 1}");
    char want[4096], core[256], ep[256];
    snprintf(core, sizeof core, "%s", f("10-core.json"));
    snprintf(ep, sizeof ep, "%s", f("30-ep.json"));
    snprintf(want, sizeof want,
             "%s: core.colour: unknown key (expected plugin_dir, ingress, admin, spool, spool_sync, spool_log, store, cluster, retention, dedup_window, spill_after, memory_deliveries, quarantine, quarantine_max, quarantine_rate, max_event_bytes, max_depth, workers, shards, max_pending, max_pending_bytes, complete_grace, drain_timeout, log_level, log_format, stats_file, stats_interval, transform_instructions, transform_memory)\n"
             "%s: core.quarantine_max: must be at least 64KiB\n"
             "%s: core.max_event_bytes: bad size \"1MB!\" (a number of bytes, or a number with B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024), in any case)\n"
             "%s: core.workers: must be between 1 and 256\n"
             "%s: core.ingress[0].type: \"push\" is not one of \"pull\", \"sub\", \"ack\"\n"
             "%s: core.ingress[0].bind: \"x\" is not a ZeroMQ endpoint (e.g. tcp://127.0.0.1:5556, ipc:///run/sy.sock)\n"
             "%s: endpoints.a.enabled_events[0]: \"Job.Done\" is not an event type pattern (job.completed, job.*, *)\n"
             "%s: endpoints.a.filter.data.x.$foo: unknown operator\n"
             "%s: endpoints.a.retry: unknown policy \"fast\" (expected standard, legacy or an object)\n"
             "%s: extra: unknown top-level key (expected core, sinks, endpoints)\n",
             core, core, core, core, core, core, ep, ep, ep, ep);
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

/* cJSON would read "beta\u0000acme" as "beta": a NUL anywhere is refused, with its place. */
static void test_nul_in_strings_refused(void **state)
{
    (void)state;
    char want[512];
    clear();
    put("20-sinks.json", SINKS);
    put("30-ep.json", "{\"endpoints\": {\"a\": {\"sink\": \"files\",\n"
                      "  \"org_id\": \"beta\\u0000acme\"}}}");
    snprintf(want, sizeof want,
             "%s: \\u0000 in a string near line 2 column 18: config strings must not contain NUL "
             "(it would cut them short)\n", f("30-ep.json"));
    assert_string_equal(load(NULL), want);

    /* In a key, in an array, in a plugin's key: the same. */
    static const char *const docs[] = {
        "{\"endpoints\": {\"a\\u0000b\": {\"sink\": \"files\"}}}",
        "{\"endpoints\": {\"a\": {\"sink\": \"files\", \"enabled_events\": [\"job.*\", \"x\\u0000\"]}}}",
        "{\"sinks\": {\"f2\": {\"plugin\": \"file\", \"path\": \"/tmp/\\\"\\u0000\"}}}",
    };
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        clear();
        put("10-core.json", CORE);
        put("20-sinks.json", SINKS);
        put("30-ep.json", docs[i]);
        assert_non_null(strstr(load(NULL), ": \\u0000 in a string near line 1 column "));
    }

    /* A NUL byte: cJSON would stop reading there and take what came before. */
    clear();
    put("10-core.json", CORE);
    put("20-sinks.json", SINKS);
    char p[256];
    snprintf(p, sizeof p, "%s/30-ep.json", dir);
    FILE *fp = fopen(p, "w");
    assert_non_null(fp);
    fwrite("{\"endpoints\": {}}\n\0{\"x\": 1}", 1, 28, fp);
    fclose(fp);
    snprintf(want, sizeof want,
             "%s: a NUL byte near line 2 column 1: config strings must not contain NUL (it "
             "would cut them short)\n", f("30-ep.json"));
    assert_string_equal(load(NULL), want);

    /* An escaped backslash before "u0000" is text, not a NUL. */
    clear();
    put("10-core.json", CORE);
    put("20-sinks.json", SINKS);
    put("30-ep.json", "{\"endpoints\": {\"a\": {\"sink\": \"files\", "
                      "\"org_id\": \"beta\\\\u0000acme\"}}}");
    sy_conf *c;
    assert_string_equal(load(&c), "");
    assert_string_equal(c->endpoints[0].org_id, "beta\\u0000acme");
    config_free(c);
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

/* ---- secrets in files (core/secretfile.c) ------------------------------ */

static char report_buf[2048];

static void rep(void *ctx, const char *key, const char *msg)
{
    (void)ctx;
    size_t l = strlen(report_buf);
    snprintf(report_buf + l, sizeof report_buf - l, "%s: %s\n", key ? key : "-", msg);
}

typedef struct {
    const char *password;
    const char *const *secrets;
    const char *plain;
} sconf;

static const sy_config_key skeys[] = {
    {SY_KEY("password", SY_CFG_STRING, NULL, SY_CFG_SECRET, sconf, password, "p")},
    {SY_KEY("secrets", SY_CFG_STRINGS, NULL, SY_CFG_REQUIRED | SY_CFG_SECRET, sconf, secrets,
            "s")},
    {SY_KEY("plain", SY_CFG_STRING, NULL, 0, sconf, plain, "x")},
};
static const sy_config_table stable = SY_CONFIG_TABLE(skeys, sconf);

/* Writes n bytes into dir/name; returns the path. */
static const char *put_bytes(const char *name, const char *bytes, size_t n)
{
    const char *p = f(name);
    FILE *fp = fopen(p, "w");
    assert_non_null(fp);
    assert_int_equal(fwrite(bytes, 1, n, fp), n);
    fclose(fp);
    assert_int_equal(chmod(p, 0600), 0);
    return p;
}
#define PUT_LIT(name, lit) put_bytes(name, lit, sizeof lit - 1)

/* cfgtable_fill of {key: path, ...} given as JSON text; returns the reports. */
static const char *fill_secret(const char *json, sconf *c, cfg_arena *a)
{
    report_buf[0] = '\0';
    cJSON *o = cJSON_Parse(json);
    assert_non_null(o);
    cfgtable_fill(&stable, o, NULL, c, a, rep, NULL);
    cJSON_Delete(o);
    return report_buf;
}

static void test_secret_files(void **state)
{
    (void)state;
    char json[1024], want[1024];
    sconf c;
    cfg_arena a = {0};
    clear();
    const char *pw = PUT_LIT("pw", "Pw-First-Line\r\nnot the secret\n");
    const char *keys = PUT_LIT("keys", "\nwhsec_one\n\nwhsec_two\r\n\n");
    snprintf(json, sizeof json, "{\"password_file\": \"%s\", \"secrets_file\": \"%s\"}", pw, keys);
    assert_string_equal(fill_secret(json, &c, &a), "");
    assert_string_equal(c.password, "Pw-First-Line");
    assert_string_equal(c.secrets[0], "whsec_one");
    assert_string_equal(c.secrets[1], "whsec_two");
    assert_null(c.secrets[2]);
    cfg_arena_free(&a);

    /* Both spellings, an unknown _file key, a path that is not a string. */
    snprintf(json, sizeof json, "{\"password\": \"x\", \"password_file\": \"%s\", "
             "\"plain_file\": \"%s\", \"secrets_file\": 5}", pw, pw);
    assert_string_equal(fill_secret(json, &c, &a),
                        "plain_file: unknown key\n"
                        "password_file: give either password or password_file, not both\n"
                        "secrets_file: expected the path of a file holding the secret\n");
    cfg_arena_free(&a);
    /* null is absent: the required key is then missing. */
    assert_string_equal(fill_secret("{\"secrets_file\": null}", &c, &a),
                        "secrets: required key is missing\n");
    cfg_arena_free(&a);

    /* Files that hold no secret, or are not files: named, never quoted. */
    const char *blank = PUT_LIT("blank", "\r\nTopSecretValue\n");
    const char *blanks = PUT_LIT("blanks", "\n\r\n\n");
    const char *nul = PUT_LIT("nul", "TopSecret\0Value\n");
    char *big = malloc(SECRETFILE_MAX + 1);
    memset(big, 'T', SECRETFILE_MAX + 1);
    const char *bigp = put_bytes("big", big, SECRETFILE_MAX + 1);
    free(big);
    struct {
        const char *key, *path, *text;
    } bad[] = {
        {"password_file", blank, "%s: %s holds no secret (its first line is empty)"},
        {"secrets_file", blanks, "%s: %s holds no secret (every line is empty)"},
        {"password_file", nul, "%s: %s holds a NUL byte"},
        {"password_file", bigp, "%s: %s is larger than 65536 bytes: not a secret file"},
        {"password_file", dir, "%s: %s is not a regular file"},
        {"password_file", "/nonexistent/sy-secret", "%s: cannot read %s: No such file or "
                                                    "directory"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(json, sizeof json, "{\"%s\": \"%s\"%s}", bad[i].key, bad[i].path,
                 strcmp(bad[i].key, "secrets_file") ? ", \"secrets\": [\"k\"]" : "");
        snprintf(want, sizeof want, bad[i].text, bad[i].key, bad[i].path);
        strcat(want, "\n");
        assert_string_equal(fill_secret(json, &c, &a), want);
        assert_null(strstr(report_buf, "TopSecret"));
        cfg_arena_free(&a);
    }

    /* The docs name the variant of secret keys only. */
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    cfgtable_describe(m, &stable, "");
    fclose(m);
    assert_non_null(strstr(buf, "password           string, secret; or password_file: a file "
                                "holding it\n"));
    assert_non_null(strstr(buf, "secrets            array of strings, required, secret; or "
                                "secrets_file: a file holding it\n"));
    assert_non_null(strstr(buf, "plain              string\n"));
    free(buf);
}

/* core.admin.token_file reads like every x_file key; giving both is refused. */
static void test_admin_token_file(void **state)
{
    (void)state;
    char doc[1024], want[1024];
    clear();
    const char *tok = PUT_LIT("admin.token", "0123456789abcdef-token\r\nsecond line\n");
    put("20-sinks.json", SINKS);
    snprintf(doc, sizeof doc, "{\"core\": {\"ingress\": [{\"type\": \"pull\", \"bind\": "
             "\"tcp://127.0.0.1:5556\"}], \"admin\": {\"listen\": \"127.0.0.1:5580\", "
             "\"token_file\": \"%s\"}}}", tok);
    put("10-core.json", doc);
    sy_conf *c;
    assert_string_equal(load(&c), "");
    assert_string_equal(c->admin_token, "0123456789abcdef-token");
    config_free(c);

    snprintf(doc, sizeof doc, "{\"core\": {\"ingress\": [{\"type\": \"pull\", \"bind\": "
             "\"tcp://127.0.0.1:5556\"}], \"admin\": {\"listen\": \"127.0.0.1:5580\", "
             "\"token\": \"0123456789abcdef-inline\", \"token_file\": \"%s\"}}}", tok);
    put("10-core.json", doc);
    snprintf(want, sizeof want,
             "%s: core.admin.token_file: give either token or token_file, not both\n",
             f("10-core.json"));
    assert_string_equal(load(NULL), want);

    /* A missing file is not an error: `run` creates it. */
    snprintf(doc, sizeof doc, "{\"core\": {\"ingress\": [{\"type\": \"pull\", \"bind\": "
             "\"tcp://127.0.0.1:5556\"}], \"admin\": {\"listen\": \"127.0.0.1:5580\", "
             "\"token_file\": \"%s/new.token\"}}}", dir);
    put("10-core.json", doc);
    assert_string_equal(load(&c), "");
    assert_null(c->admin_token);
    assert_non_null(strstr(c->admin_token_file, "/new.token"));
    config_free(c);

    /* A later file that gives the token: nothing left to create. */
    put("90-local.json", "{\"core\": {\"admin\": {\"token\": \"0123456789abcdef-later\"}}}");
    assert_string_equal(load(&c), "");
    assert_string_equal(c->admin_token, "0123456789abcdef-later");
    assert_string_equal(c->admin_listen, "127.0.0.1:5580");
    assert_null(c->admin_token_file);
    config_free(c);

    /* A short token in a file: the file is named, the token is not. */
    const char *shortf = PUT_LIT("short.token", "TooShort\n");
    snprintf(doc, sizeof doc, "{\"core\": {\"admin\": {\"token_file\": \"%s\"}}}", shortf);
    put("90-local.json", doc);
    snprintf(want, sizeof want, "%s: core.admin.token_file: the token in %s is shorter than 16 "
             "characters\n", f("90-local.json"), shortf);
    assert_string_equal(load(NULL), want);
}

/* ---- the core's key tables (config_keys.c) --------------------------- */

/* The tables pass the checks plugins' tables pass, and their defaults are what a config gets. */
static void test_core_tables_are_sound(void **state)
{
    (void)state;
    char err[256];
    for (size_t i = 0; i < config_nsections; i++)
        if (cfgtable_check(config_sections[i].table, err, sizeof err) != 0)
            fail_msg("%s: %s", config_sections[i].path, err);
    assert_ptr_equal(config_section_find("core.admin")->table, &config_admin_table);
    assert_null(config_section_find("core.nope"));
    clear();
    put("10-core.json", CORE);
    put("30-ep.json", SINKS_AND_EP);
    sy_conf *c;
    assert_string_equal(load(&c), "");
    assert_string_equal(c->quarantine, "var/quarantine.jsonl");
    assert_string_equal(c->spool_sync, "full");
    assert_string_equal(c->log_level, "info");
    assert_null(c->spool);
    assert_null(c->stats_file);
    assert_int_equal(c->retention_ms, 86400000);
    assert_int_equal(c->max_pending_bytes, 256 << 20);
    assert_int_equal(c->stats_interval_ms, 1000);
    assert_true(c->shards >= 1 && c->shards <= 64);
    assert_int_equal(c->ingress[0].rcvhwm, 10000);
    assert_null(c->ingress[0].topics);
    const sy_endpoint_conf *e = &c->endpoints[0];
    assert_int_equal(e->enabled, 1);
    assert_string_equal(e->events[0], "*");
    assert_int_equal(e->gate.failures, 10);
    assert_int_equal(e->gate.probe, 5000);
    assert_int_equal(e->gate.probe_max, 300000);
    assert_int_equal(e->gate.disable_after_ms, 5LL * 86400 * 1000);
    config_free(c);
}

/*
 * "or null" keys: null in a later file turns the feature off, where
 * leaving the key out keeps the earlier file's value; for other keys null
 * is the same as leaving them out.
 */
static void test_null_turns_off_across_files(void **state)
{
    (void)state;
    clear();
    put("10-core.json", "{\"core\": {\"ingress\": [{\"type\": \"sub\", \"connect\": "
                        "\"tcp://127.0.0.1:5556\"}], \"spool\": \"var/s.db\", \"stats_file\": "
                        "\"var/stats.json\", \"workers\": 8, \"admin\": {\"listen\": "
                        "\"127.0.0.1:5580\", \"token\": \"0123456789abcdef\"}}}");
    put("30-ep.json", SINKS_AND_EP);
    put("90-local.json", "{\"core\": {\"quarantine\": null, \"spool\": null, \"admin\": null, "
                         "\"workers\": null}}");
    put("95-local.json", "{\"core\": {\"admin\": {\"listen\": null, \"token\": null}}}");
    sy_conf *c;
    assert_string_equal(load(&c), "");
    assert_null(c->quarantine);
    assert_null(c->spool);
    assert_null(c->admin_listen);
    assert_string_equal(c->stats_file, "var/stats.json");
    assert_int_equal(c->workers, 8);
    assert_int_equal(c->ingress[0].type, INGRESS_SUB);
    assert_int_equal(c->ingress[0].bind, 0);
    assert_string_equal(c->ingress[0].topics[0], "");
    assert_null(c->ingress[0].topics[1]);
    config_free(c);

    /* Endpoints: null, false and absent. */
    clear();
    put("10-core.json", CORE);
    put("30-ep.json", "{\"sinks\": {\"files\": {\"plugin\": \"file\"}}, \"endpoints\": {"
                      "\"a\": {\"sink\": \"files\", \"breaker\": false, \"disable_after\": false, "
                      "\"org_id\": null, \"filter\": null, \"rate_limit\": \"5/s\"},"
                      "\"b\": {\"sink\": \"files\", \"breaker\": {\"failures\": 3}, "
                      "\"disable_after\": null, \"enabled\": false}}}");
    assert_string_equal(load(&c), "");
    assert_int_equal(c->endpoints[0].gate.failures, 0);
    assert_int_equal(c->endpoints[0].gate.disable_after_ms, 0);
    assert_int_equal(c->endpoints[0].gate.rate, 5);
    assert_int_equal(c->endpoints[0].gate.per, 1000);
    assert_null(c->endpoints[0].org_id);
    assert_null(c->endpoints[0].filter);
    assert_int_equal(c->endpoints[1].gate.failures, 3);
    assert_int_equal(c->endpoints[1].gate.probe, 5000);
    assert_int_equal(c->endpoints[1].gate.disable_after_ms, 0);
    assert_int_equal(c->endpoints[1].enabled, 0);
    config_free(c);
}

/* Nested objects list their own keys, from their tables, and say what a table cannot. */
static void test_nested_objects(void **state)
{
    (void)state;
    clear();
    put("10-core.json",
        "{\"core\": {\"ingress\": [{\"type\": \"pull\", \"bind\": \"tcp://127.0.0.1:5556\", "
        "\"hwm\": 1}, {\"type\": \"pull\", \"bind\": \"tcp://127.0.0.1:1\", \"connect\": "
        "\"tcp://127.0.0.1:2\"}, {\"type\": \"pull\", \"connect\": \"tcp://127.0.0.1:3\", "
        "\"topics\": [\"a\"]}, {\"bind\": \"\"}, 7], \"admin\": {\"listn\": \"x\", \"listen\": "
        "\"localhost\", \"token\": \"short\"}, \"spool\": \"\", \"log_level\": \"loud\"}}");
    put("30-ep.json", "{\"sinks\": {\"files\": {\"plugin\": \"\", \"concurrency\": 0}}, "
                      "\"endpoints\": {\"a\": {\"sink\": \"files\", \"breaker\": {\"probes\": 1, "
                      "\"probe\": \"1m\", \"probe_max\": \"1s\"}, \"rate_limit\": \"fast\", "
                      "\"enabled_events\": [], \"enabled\": \"yes\"}, \"b\": {\"breaker\": "
                      "{\"probe\": \"1m\", \"probe_max\": \"1s\"}, \"sink\": \"files\"}}}");
    char want[4096];
    const char *core = f("10-core.json"), *ep = f("30-ep.json");
    snprintf(want, sizeof want,
             "%s: core.spool: must not be empty\n"
             "%s: core.log_level: \"loud\" is not one of \"error\", \"warn\", \"info\", \"debug\"\n"
             "%s: core.ingress[0].hwm: unknown key (expected type, bind, connect, topics, rcvhwm)\n"
             "%s: core.ingress[1]: give either bind or connect, not both\n"
             "%s: core.ingress[2]: topics only apply to sub sockets\n"
             "%s: core.ingress[3].type: required key is missing\n"
             "%s: core.ingress[3].bind: must not be empty\n"
             "%s: core.ingress[4]: expected an object like {\"type\": \"pull\", \"bind\": "
             "\"tcp://127.0.0.1:5556\"}, got number\n"
             "%s: core.admin.listn: unknown key (expected listen, token, token_file, portal_dir, "
             "portal_url, frame_ancestors)\n"
             "%s: sinks.files.plugin: must not be empty\n"
             "%s: sinks.files.concurrency: must be between 1 and 10000\n"
             "%s: endpoints.a.enabled_events: must not be empty\n"
             "%s: endpoints.a.enabled: expected boolean, got string\n"
             "%s: endpoints.a.rate_limit: expected a rate like \"1000/min\", \"50/s\" or \"20/10s\"\n"
             "%s: endpoints.a.breaker.probes: unknown key (expected failures, probe, probe_max)\n"
             "%s: endpoints.b.breaker.probe_max: must be at least probe\n",
             core, core, core, core, core, core, core, core, core, ep, ep, ep, ep, ep, ep, ep);
    assert_string_equal(load(NULL), want);

    /* What the admin object says itself, once its keys are known. */
    clear();
    put("10-core.json", "{\"core\": {\"ingress\": [{\"type\": \"pull\", \"bind\": "
                        "\"tcp://127.0.0.1:5556\"}], \"admin\": {\"listen\": \"localhost\", "
                        "\"token\": \"short-token\"}}}");
    put("30-ep.json", SINKS_AND_EP);
    snprintf(want, sizeof want,
             "%s: core.admin.listen: expected HOST:PORT, e.g. \"127.0.0.1:5580\"\n"
             "%s: core.admin.token: expected a string of at least 16 characters\n",
             f("10-core.json"), f("10-core.json"));
    assert_string_equal(load(NULL), want);
}

/* endpoints.ID.batch: defaults, null, and every bound with its message. */
static void test_batch_key(void **state)
{
    (void)state;
    clear();
    put("10-core.json", CORE);
    put("30-ep.json", "{\"sinks\": {\"files\": {\"plugin\": \"file\"}}, \"endpoints\": {"
                      "\"a\": {\"sink\": \"files\", \"batch\": {}},"
                      "\"b\": {\"sink\": \"files\", \"batch\": {\"max\": 1000, \"linger\": \"1m\"}},"
                      "\"c\": {\"sink\": \"files\", \"batch\": null},"
                      "\"d\": {\"sink\": \"files\", \"batch\": {\"max\": 1, \"linger\": 0}}}}");
    sy_conf *c;
    assert_string_equal(load(&c), "");
    assert_int_equal(c->endpoints[0].batch_max, 100);
    assert_int_equal(c->endpoints[0].batch_linger_ms, 200);
    assert_int_equal(c->endpoints[1].batch_max, 1000);
    assert_int_equal(c->endpoints[1].batch_linger_ms, 60000);
    assert_int_equal(c->endpoints[2].batch_max, 0);
    assert_int_equal(c->endpoints[3].batch_max, 1);
    assert_int_equal(c->endpoints[3].batch_linger_ms, 0);
    config_free(c);

    clear();
    put("10-core.json", CORE);
    put("30-ep.json", "{\"sinks\": {\"files\": {\"plugin\": \"file\"}}, \"endpoints\": {"
                      "\"a\": {\"sink\": \"files\", \"batch\": {\"max\": 0}},"
                      "\"b\": {\"sink\": \"files\", \"batch\": {\"max\": 1001, \"linger\": \"61s\"}},"
                      "\"c\": {\"sink\": \"files\", \"batch\": {\"linger\": \"soon\", \"size\": 3}},"
                      "\"d\": {\"sink\": \"files\", \"batch\": 100}}}");
    char want[2048];
    const char *ep = f("30-ep.json");
    snprintf(want, sizeof want,
             "%s: endpoints.a.batch.max: must be between 1 and 1000\n"
             "%s: endpoints.b.batch.max: must be between 1 and 1000\n"
             "%s: endpoints.b.batch.linger: must be between 0ms and 1m\n"
             "%s: endpoints.c.batch.size: unknown key (expected max, linger)\n"
             "%s: endpoints.c.batch.linger: bad duration \"soon\" (e.g. \"250ms\", \"10s\", "
             "\"5m\", \"2h\", \"3d\")\n"
             "%s: endpoints.d.batch: expected object or null, got number\n",
             ep, ep, ep, ep, ep, ep);
    assert_string_equal(load(NULL), want);

    /* An ordered endpoint sends one delivery per key at a time: no batch to form. */
    clear();
    put("10-core.json", CORE);
    put("30-ep.json", "{\"sinks\": {\"files\": {\"plugin\": \"file\"}}, \"endpoints\": {"
                      "\"o\": {\"sink\": \"files\", \"ordering\": \"endpoint\", \"batch\": {}},"
                      "\"t\": {\"sink\": \"files\", \"transform\": \"x.lua\", \"batch\": {}}}}");
    ep = f("30-ep.json");
    snprintf(want, sizeof want,
             "%s: endpoints.o.batch: not with \"ordering\": an ordered endpoint sends one "
             "delivery per key at a time; remove one of the two\n"
             "%s: endpoints.t.batch: not with \"transform\" yet: batched endpoints send the "
             "events as they are; remove one of the two\n", ep, ep);
    assert_string_equal(load(NULL), want);
}

static void record_key(void *ctx, const char *key)
{
    size_t l = strlen(ctx);
    snprintf((char *)ctx + l, 512 - l, "%s\n", key);
}

/* A reload names the restart-only keys that changed (daemon.c warns about each). */
static void test_restart_changes(void **state)
{
    (void)state;
    sy_conf *a, *b;
    char names[512] = "";
    clear();
    put("10-core.json", "{\"core\": {\"ingress\": [{\"type\": \"pull\", \"bind\": "
                        "\"tcp://127.0.0.1:5556\"}], \"admin\": {\"listen\": \"127.0.0.1:5580\"}}}");
    put("30-ep.json", SINKS_AND_EP);
    assert_string_equal(load(&a), "");
    assert_string_equal(load(&b), "");
    config_restart_changes(a, b, record_key, names);
    assert_string_equal(names, "");
    config_free(b);
    /* Not restart-only: log_level, drain_timeout, stats_interval, max_event_bytes. */
    put("90-local.json", "{\"core\": {\"ingress\": [{\"type\": \"pull\", \"bind\": "
                         "\"tcp://127.0.0.1:5556\", \"rcvhwm\": 5}], \"spool\": \"var/s.db\", "
                         "\"workers\": 2, \"log_level\": \"debug\", \"drain_timeout\": \"1s\", "
                         "\"stats_interval\": \"2s\", \"max_event_bytes\": 4096, "
                         "\"admin\": {\"listen\": \"127.0.0.1:5581\"}}}");
    assert_string_equal(load(&b), "");
    config_restart_changes(a, b, record_key, names);
    assert_string_equal(names, "core.ingress\ncore.spool\ncore.workers\ncore.admin.listen\n");
    config_free(a);
    config_free(b);
}

/* The API's endpoints go through the same checks, after the files, marked and labelled. */
static void test_api_endpoints(void **state)
{
    (void)state;
    clear();
    put("10-core.json", CORE);
    put("20-sinks.json", SINKS_AND_EP);
    sy_errs e = {0};
    config_source *src = config_read(dir, &e);
    assert_non_null(src);
    assert_int_equal(src->n, 2);
    sy_conf *c = config_build(src, &e);
    assert_non_null(c);
    cJSON *eps = cJSON_Parse("{\"x.1\": {\"sink\": \"files\", \"org_id\": \"acme\"}}");
    assert_int_equal(config_add_api_endpoints(c, eps, &e), 0);
    assert_int_equal(c->nendpoints, 2);
    assert_int_equal(c->endpoints[0].from_api, 0);
    assert_string_equal(c->endpoints[1].id, "x.1");
    assert_int_equal(c->endpoints[1].from_api, 1);
    assert_int_equal(c->endpoints[1].sink_index, 0);
    assert_string_equal(c->endpoints[1].file, CONFIG_API_FILE);
    cJSON_Delete(eps); /* the conf keeps its own copy */
    assert_string_equal(c->endpoints[1].org_id, "acme");
    config_free(c);

    /* An id the files define, an unknown sink, a wrong type: each an item with its path. */
    c = config_build(src, &e);
    eps = cJSON_Parse("{\"a\": {\"sink\": \"files\"}, \"b\": {\"sink\": \"nope\"},"
                      " \"c\": {\"sink\": \"files\", \"concurrency\": \"x\"}}");
    assert_int_equal(config_add_api_endpoints(c, eps, &e), 3);
    cJSON_Delete(eps);
    config_free(c);
    assert_int_equal(e.nitems, 3);
    const char *want[3][3] = {
        {CONFIG_API_FILE, "endpoints.a", NULL},
        {CONFIG_API_FILE, "endpoints.c.concurrency", NULL},
        {CONFIG_API_FILE, "endpoints.b.sink", "no sink named \"nope\" (defined: files)"},
    };
    for (int i = 0; i < 3; i++) {
        assert_string_equal(e.items[i].file, want[i][0]);
        assert_string_equal(e.items[i].path, want[i][1]);
        if (want[i][2])
            assert_string_equal(e.items[i].message, want[i][2]);
    }
    char msg[512];
    snprintf(msg, sizeof msg, "endpoint \"a\" is already defined in %s", f("20-sinks.json"));
    assert_string_equal(e.items[0].message, msg);
    errs_free(&e);
    config_source_free(src);
}

/* A file that cannot be read does not hide the mistakes of the others. */
static void test_unreadable_file_and_others(void **state)
{
    (void)state;
    clear();
    put("10-core.json", CORE);
    put("20-bad.json", "{\"sinks\": 5}");
    put("30-locked.json", "{}");
    char p[256];
    snprintf(p, sizeof p, "%s/30-locked.json", dir);
    assert_int_equal(chmod(p, 0), 0);
    if (access(p, R_OK) == 0) /* root reads anyway: nothing to test */
        return;
    char *text = load(NULL);
    assert_non_null(strstr(text, "30-locked.json: cannot read: Permission denied\n"));
    assert_non_null(strstr(text, "20-bad.json: sinks: "));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_config),
        cmocka_unit_test(test_later_file_overrides_core),
        cmocka_unit_test(test_every_error_reported),
        cmocka_unit_test(test_unknown_sink_and_no_ingress),
        cmocka_unit_test(test_invalid_json_position),
        cmocka_unit_test(test_nul_in_strings_refused),
        cmocka_unit_test(test_duplicates_across_files),
        cmocka_unit_test(test_empty_folder),
        cmocka_unit_test(test_secret_files),
        cmocka_unit_test(test_admin_token_file),
        cmocka_unit_test(test_core_tables_are_sound),
        cmocka_unit_test(test_null_turns_off_across_files),
        cmocka_unit_test(test_nested_objects),
        cmocka_unit_test(test_batch_key),
        cmocka_unit_test(test_restart_changes),
        cmocka_unit_test(test_api_endpoints),
        cmocka_unit_test(test_unreadable_file_and_others),
    };
    return cmocka_run_group_tests_name("config", tests, setup, teardown);
}
