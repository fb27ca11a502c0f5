/*
 * test_cfgtable.c - declarative key tables (sink ABI 2.0): filling,
 * every error text, choices, ranges, "given" flags, the table checks the
 * loader relies on (field sizes, offsets, duplicates), entries of an older
 * or newer key_size, and the describe output; then what only the core's own
 * tables may use (flags and types reserved for the host, fill modes, the
 * restart-only comparison, the Markdown docs) and its refusal in plugins.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfgtable.h"

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
    const char *mode;
    int64_t workers;
    int workers_given;
} tconf;

static const char *const modes[] = {"fast", "safe", NULL};

static const sy_config_key tkeys[] = {
    {SY_KEY("path", SY_CFG_STRING, NULL, SY_CFG_REQUIRED, tconf, path, "p")},
    {SY_KEY("n", SY_CFG_INT, "5", 0, tconf, n, "n")},
    {SY_KEY("flag", SY_CFG_BOOL, "true", 0, tconf, flag, "f")},
    {SY_KEY("ratio", SY_CFG_DOUBLE, "0.5", SY_CFG_RANGE, tconf, ratio, "r"), .min = 0, .max = 1},
    {SY_KEY("timeout", SY_CFG_DURATION, "10s", SY_CFG_RANGE, tconf, timeout, "t"), .min = 100,
     .max = 60000},
    {SY_KEY("size", SY_CFG_SIZE, "64KiB", SY_CFG_RANGE, tconf, size, "s"), .min = 1024,
     .max = 1 << 20},
    {SY_KEY("list", SY_CFG_STRINGS, "[\"a\", \"b\"]", 0, tconf, list, "l")},
    {SY_KEY("map", SY_CFG_STRING_MAP, NULL, 0, tconf, map, "m")},
    {SY_KEY("secret", SY_CFG_STRING, "hunter2", SY_CFG_SECRET, tconf, secret, "s")},
    {SY_KEY("mode", SY_CFG_STRING, "fast", 0, tconf, mode, "how"), .choices = modes},
    {SY_KEY("workers", SY_CFG_INT, NULL, SY_CFG_GIVEN | SY_CFG_RANGE, tconf, workers, "w"),
     .min = 0, .max = 64, .given_offset = offsetof(tconf, workers_given)},
};
static const sy_config_table ttable = SY_CONFIG_TABLE(tkeys, tconf);

static char report_buf[4096];

static void rep(void *ctx, const char *key, const char *msg)
{
    (void)ctx;
    size_t l = strlen(report_buf);
    snprintf(report_buf + l, sizeof report_buf - l, "%s: %s\n", key ? key : "-", msg);
}

static int fill(const sy_config_table *t, const char *json, tconf *c, cfg_arena *a)
{
    static const char *const skip[] = {"plugin", NULL};
    report_buf[0] = '\0';
    cJSON *o = cJSON_Parse(json);
    assert_non_null(o);
    memset(a, 0, sizeof *a);
    int n = cfgtable_fill(t, o, skip, c, a, rep, NULL);
    cfg_arena_free(a);
    cJSON_Delete(o);
    return n;
}

static void test_defaults_and_values(void **state)
{
    (void)state;
    tconf c;
    cfg_arena a = {0};
    report_buf[0] = '\0';
    cJSON *o = cJSON_Parse("{\"path\": \"/x\", \"plugin\": \"file\", \"map\": {\"k\": \"v\"}}");
    static const char *const skip[] = {"plugin", NULL};
    assert_int_equal(cfgtable_fill(&ttable, o, skip, &c, &a, rep, NULL), 0);
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
    assert_string_equal(c.mode, "fast");
    /* No default and absent: zero, and the given flag says so. */
    assert_int_equal(c.workers, 0);
    assert_int_equal(c.workers_given, 0);
    cfg_arena_free(&a);
    cJSON_Delete(o);
}

static void test_given_tells_zero_from_absent(void **state)
{
    (void)state;
    tconf c;
    cfg_arena a;
    assert_int_equal(fill(&ttable, "{\"path\": \"/x\", \"workers\": 0}", &c, &a), 0);
    assert_int_equal(c.workers, 0);
    assert_int_equal(c.workers_given, 1);
    assert_int_equal(fill(&ttable, "{\"path\": \"/x\", \"workers\": null}", &c, &a), 0);
    assert_int_equal(c.workers_given, 0);
}

static void test_errors(void **state)
{
    (void)state;
    tconf c;
    cfg_arena a;
    assert_int_equal(fill(&ttable,
                          "{\"n\": 1.5, \"flag\": \"yes\", \"timeout\": \"10 s\", \"size\": -1, "
                          "\"list\": [1], \"map\": {\"k\": 2}, \"typo\": 1}",
                          &c, &a),
                     8);
    assert_string_equal(report_buf,
                        "typo: unknown key\n"
                        "path: required key is missing\n"
                        "n: expected integer, got number\n"
                        "flag: expected boolean, got string\n"
                        "timeout: bad duration \"10 s\" (e.g. \"250ms\", \"10s\", \"5m\", \"2h\", \"3d\")\n"
                        "size: expected size, got number\n"
                        "list: element 0: expected a string, got number\n"
                        "map: k: expected a string, got number\n");
}

static void test_choices_and_ranges(void **state)
{
    (void)state;
    tconf c;
    cfg_arena a;
    assert_int_equal(fill(&ttable,
                          "{\"path\": \"/x\", \"mode\": \"quick\", \"workers\": 65, "
                          "\"ratio\": 1.5, \"timeout\": \"50ms\", \"size\": \"2MiB\"}",
                          &c, &a),
                     5);
    assert_string_equal(report_buf,
                        "ratio: must be between 0 and 1\n"
                        "timeout: must be between 100ms and 1m\n"
                        "size: must be between 1KiB and 1MiB\n"
                        "mode: \"quick\" is not one of \"fast\", \"safe\"\n"
                        "workers: must be between 0 and 64\n");
    /* The bounds themselves are inside. */
    assert_int_equal(fill(&ttable,
                          "{\"path\": \"/x\", \"mode\": \"safe\", \"workers\": 64, \"ratio\": 0, "
                          "\"timeout\": 100, \"size\": \"1MiB\"}",
                          &c, &a),
                     0);
    assert_string_equal(report_buf, "");
}

/* A table the loader must refuse, with the message it gives. */
static void expect_bad(const sy_config_table *t, const char *want)
{
    char err[256] = "";
    assert_int_equal(cfgtable_check(t, err, sizeof err), -1);
    assert_string_equal(err, want);
}

typedef struct {
    int narrow;
    int next;
    const char *s;
    double d;
} bconf;

static void test_check_refuses(void **state)
{
    (void)state;
    char err[256];
    assert_int_equal(cfgtable_check(&ttable, err, sizeof err), 0);
    assert_int_equal(cfgtable_check(NULL, err, sizeof err), 0);

    static const sy_config_key narrow[] = {{SY_KEY("n", SY_CFG_INT, NULL, 0, bconf, narrow, "")}};
    static const sy_config_table t1 = SY_CONFIG_TABLE(narrow, bconf);
    expect_bad(&t1, "config key n: type integer needs a 8-byte field, the struct member is 4 bytes");

    static const sy_config_key outside[] = {{SY_KEY("s", SY_CFG_STRING, NULL, 0, bconf, s, "")}};
    sy_config_table t2 = SY_CONFIG_TABLE(outside, bconf);
    t2.conf_size = offsetof(bconf, s);
    expect_bad(&t2, "config key s lies outside the 8-byte config struct");

    static const sy_config_key twice[] = {
        {SY_KEY("s", SY_CFG_STRING, NULL, 0, bconf, s, "")},
        {SY_KEY("s", SY_CFG_STRING, NULL, 0, bconf, s, "")},
    };
    static const sy_config_table t3 = SY_CONFIG_TABLE(twice, bconf);
    expect_bad(&t3, "config key s is declared twice");

    static const char *const ch[] = {"a", NULL};
    static const sy_config_key choice_num[] = {
        {SY_KEY("d", SY_CFG_DOUBLE, NULL, 0, bconf, d, ""), .choices = ch}};
    static const sy_config_table t4 = SY_CONFIG_TABLE(choice_num, bconf);
    expect_bad(&t4, "config key d: choices apply to strings only");

    static const sy_config_key range_str[] = {
        {SY_KEY("s", SY_CFG_STRING, NULL, SY_CFG_RANGE, bconf, s, ""), .max = 1}};
    static const sy_config_table t5 = SY_CONFIG_TABLE(range_str, bconf);
    expect_bad(&t5, "config key s: a range applies to numbers, durations and sizes only");

    static const sy_config_key upside[] = {
        {SY_KEY("d", SY_CFG_DOUBLE, NULL, SY_CFG_RANGE, bconf, d, ""), .min = 2, .max = 1}};
    static const sy_config_table t6 = SY_CONFIG_TABLE(upside, bconf);
    expect_bad(&t6, "config key d: range minimum above its maximum");

    sy_config_table t7 = SY_CONFIG_TABLE(upside, bconf);
    t7.key_size = 16;
    snprintf(err, sizeof err, "config key entries are 16 bytes, at least %zu expected",
             offsetof(sy_config_key, given_offset) + sizeof(size_t));
    char copy[256];
    snprintf(copy, sizeof copy, "%s", err);
    expect_bad(&t7, copy);

    static const sy_config_key given_out[] = {
        {SY_KEY("d", SY_CFG_DOUBLE, NULL, SY_CFG_GIVEN, bconf, d, ""), .given_offset = 1000}};
    static const sy_config_table t8 = SY_CONFIG_TABLE(given_out, bconf);
    expect_bad(&t8, "config key d: its given flag lies outside the config struct");
}

/*
 * Entries built by a newer plugin carry fields this host does not know:
 * the host steps by key_size and reads only what it knows.
 */
typedef struct {
    sy_config_key k;
    int64_t future_field;
} newer_key;

static void test_larger_entries(void **state)
{
    (void)state;
    static const newer_key keys[] = {
        {{SY_KEY("path", SY_CFG_STRING, NULL, SY_CFG_REQUIRED, tconf, path, "p")}, 42},
        {{SY_KEY("n", SY_CFG_INT, "7", 0, tconf, n, "n")}, 43},
    };
    sy_config_table t = {sizeof t, sizeof keys[0], &keys[0].k, 2, sizeof(tconf)};
    char err[128];
    assert_int_equal(cfgtable_check(&t, err, sizeof err), 0);
    tconf c;
    cfg_arena a;
    assert_int_equal(fill(&t, "{\"path\": \"/y\"}", &c, &a), 0);
    assert_int_equal(c.n, 7);
}

static void test_describe(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    cfgtable_describe(m, &ttable, "  ");
    fclose(m);
    assert_non_null(strstr(buf, "  path               string, required\n      p\n"));
    assert_non_null(strstr(buf, "  timeout            duration, default 10s, 100ms to 1m\n"));
    assert_non_null(strstr(buf, "  mode               string, default \"fast\", one of \"fast\", \"safe\"\n"));
    assert_non_null(strstr(buf, "  size               size, default 64KiB, 1KiB to 1MiB\n"));
    /* A secret's default never appears in the docs. */
    assert_null(strstr(buf, "hunter2"));
    assert_non_null(strstr(buf, "  secret             string, default \"(hidden)\", secret; or "
                                "secret_file: a file holding it\n"));
    free(buf);
    assert_int_equal(cfgtable_has_key(&ttable, "mode"), 1);
    assert_int_equal(cfgtable_has_key(&ttable, "nope"), 0);
}

/* ---- what the core's own tables may use (cfgtable.h) ------------------- */

typedef struct {
    const char *path;
    int path_given;
    const char *name;
    const char *const *list;
    const cJSON *obj;
    const cJSON *arr;
    const cJSON *policy;
    int policy_given;
    int64_t after;
    int64_t size;
    const char *token;
} hconf;

static const sy_config_key hkeys[] = {
    {SY_KEY("path", SY_CFG_STRING, "default.jsonl", SY_CFG_GIVEN | CFG_NULL_OFF | CFG_NONEMPTY,
            hconf, path, "p"),
     .given_offset = offsetof(hconf, path_given)},
    {SY_KEY("name", SY_CFG_STRING, NULL, CFG_NONEMPTY | CFG_RESTART, hconf, name, "n")},
    {SY_KEY("list", SY_CFG_STRINGS, "[\"*\"]", CFG_NONEMPTY | CFG_RESTART, hconf, list, "l")},
    {SY_KEY("obj", CFG_OBJECT, NULL, CFG_FALSE_OFF, hconf, obj, "o")},
    {SY_KEY("arr", CFG_ARRAY, NULL, CFG_NONEMPTY | CFG_RESTART, hconf, arr, "a")},
    {SY_KEY("policy", CFG_NAME_OR_OBJECT, NULL, SY_CFG_GIVEN, hconf, policy, "po"),
     .given_offset = offsetof(hconf, policy_given)},
    {SY_KEY("after", SY_CFG_DURATION, "5d", CFG_NULL_OFF | CFG_FALSE_OFF | CFG_RESTART, hconf,
            after, "af")},
    {SY_KEY("size", SY_CFG_SIZE, "64MiB", SY_CFG_RANGE, hconf, size, "s"),
     .min = 65536, .max = INT64_MAX},
    {SY_KEY("token", SY_CFG_STRING, NULL, SY_CFG_SECRET | CFG_CREATED, hconf, token, "t")},
};
static const sy_config_table htable = SY_CONFIG_TABLE(hkeys, hconf);

static int hfill(const char *json, unsigned flags, hconf *c, cfg_arena *a, cJSON **keep)
{
    report_buf[0] = '\0';
    cJSON *o = json ? cJSON_Parse(json) : NULL;
    if (json)
        assert_non_null(o);
    cfg_fill how = {.flags = flags};
    int n = cfgtable_fill_with(&htable, o, &how, c, a, rep, NULL);
    *keep = o;
    return n;
}

/* null and false mean "off" where the key says so; elsewhere null is absent. */
static void test_host_off_values(void **state)
{
    (void)state;
    hconf c;
    cfg_arena a = {0};
    cJSON *o;
    assert_int_equal(hfill("{}", 0, &c, &a, &o), 0);
    assert_string_equal(c.path, "default.jsonl");
    assert_int_equal(c.path_given, 0);
    assert_int_equal(c.after, 5LL * 86400 * 1000);
    assert_int_equal(c.size, 64 << 20);
    assert_string_equal(c.list[0], "*");
    cJSON_Delete(o);
    assert_int_equal(hfill("{\"path\": null, \"after\": false, \"obj\": false}", 0, &c, &a, &o),
                     0);
    assert_null(c.path);
    assert_int_equal(c.path_given, 1);
    assert_int_equal(c.after, 0);
    assert_null(c.obj);
    cJSON_Delete(o);
    assert_int_equal(hfill("{\"after\": null, \"policy\": null}", 0, &c, &a, &o), 0);
    assert_int_equal(c.after, 0);
    assert_int_equal(c.policy_given, 0); /* no CFG_NULL_OFF: null is absent */
    cJSON_Delete(o);
    /* The JSON values are the caller's to read further. */
    assert_int_equal(hfill("{\"obj\": {\"k\": 1}, \"arr\": [1], \"policy\": \"legacy\"}", 0, &c,
                           &a, &o),
                     0);
    assert_int_equal(cJSON_GetObjectItem(c.obj, "k")->valueint, 1);
    assert_int_equal(cJSON_GetArraySize(c.arr), 1);
    assert_string_equal(c.policy->valuestring, "legacy");
    assert_int_equal(c.policy_given, 1);
    cJSON_Delete(o);
    cfg_arena_free(&a);
}

static void test_host_errors(void **state)
{
    (void)state;
    hconf c;
    cfg_arena a = {0};
    cJSON *o;
    assert_int_equal(hfill("{\"path\": \"\", \"name\": \"\", \"list\": [], \"obj\": 5, "
                           "\"arr\": [], \"policy\": 5, \"after\": true, \"size\": \"1KiB\", "
                           "\"typo\": 1}",
                           CFG_FILL_LIST, &c, &a, &o),
                     9);
    assert_string_equal(report_buf,
                        "typo: unknown key (expected path, name, list, obj, arr, policy, after, "
                        "size, token, token_file)\n"
                        "path: must not be empty\n"
                        "name: must not be empty\n"
                        "list: must not be empty\n"
                        "obj: expected object or false, got number\n"
                        "arr: must not be empty\n"
                        "policy: expected name or object, got number\n"
                        "after: expected duration, null or false, got boolean\n"
                        "size: must be at least 64KiB\n");
    cJSON_Delete(o);
    /* OPEN: keys of another table are not this one's business. */
    assert_int_equal(hfill("{\"typo\": 1}", CFG_FILL_OPEN, &c, &a, &o), 0);
    cJSON_Delete(o);
    cfg_arena_free(&a);
}

/* OVER: settings merged from several files; absent keys keep what an earlier file said. */
static void test_host_over(void **state)
{
    (void)state;
    hconf c;
    cfg_arena a = {0};
    cJSON *o1, *o2;
    memset(&c, 0, sizeof c);
    assert_int_equal(cfgtable_defaults(&htable, &c, &a, rep, NULL), 0);
    assert_string_equal(c.path, "default.jsonl");
    assert_int_equal(c.after, 5LL * 86400 * 1000);
    assert_int_equal(hfill("{\"name\": \"one\", \"size\": \"1MiB\"}", CFG_FILL_OVER, &c, &a,
                           &o1),
                     0);
    assert_int_equal(hfill("{\"path\": null, \"size\": \"2MiB\"}", CFG_FILL_OVER, &c, &a, &o2),
                     0);
    assert_null(c.path);
    assert_string_equal(c.name, "one");
    assert_int_equal(c.size, 2 << 20);
    assert_int_equal(c.after, 5LL * 86400 * 1000);
    cJSON_Delete(o1);
    cJSON_Delete(o2);
    cfg_arena_free(&a);
}

/* CFG_CREATED: a token file that does not exist yet leaves the key unset, no error. */
static void test_host_created_later(void **state)
{
    (void)state;
    hconf c;
    cfg_arena a = {0};
    cJSON *o;
    assert_int_equal(hfill("{\"token_file\": \"/nonexistent/sy-token\"}", 0, &c, &a, &o), 0);
    assert_null(c.token);
    cJSON_Delete(o);
    /* Other failures to read it stay errors. */
    assert_int_equal(hfill("{\"token_file\": \"/\"}", 0, &c, &a, &o), 1);
    assert_string_equal(report_buf, "token_file: / is not a regular file\n");
    cJSON_Delete(o);
    cfg_arena_free(&a);
}

static void changed_cb(void *ctx, const char *name)
{
    (void)ctx;
    rep(NULL, name, "changed");
}

static void test_host_changed(void **state)
{
    (void)state;
    hconf x, y;
    cfg_arena a = {0};
    cJSON *o1, *o2;
    hfill("{\"name\": \"n\", \"list\": [\"a\"], \"arr\": [{\"t\": 1}], \"after\": \"1d\"}", 0, &x, &a,
          &o1);
    hfill("{\"name\": \"n\", \"list\": [\"a\"], \"arr\": [{\"t\": 1}], \"after\": \"24h\", "
          "\"size\": \"1MiB\"}",
          0, &y, &a, &o2);
    report_buf[0] = '\0';
    cfgtable_changed(&htable, CFG_RESTART, &x, &y, changed_cb, NULL);
    assert_string_equal(report_buf, ""); /* size changed, but it is not restart-only */
    cJSON_Delete(o2);
    hfill("{\"name\": \"m\", \"list\": [\"a\", \"b\"], \"arr\": [{\"t\": 2}], \"after\": null}", 0,
          &y, &a, &o2);
    report_buf[0] = '\0';
    cfgtable_changed(&htable, CFG_RESTART, &x, &y, changed_cb, NULL);
    assert_string_equal(report_buf, "name: changed\nlist: changed\narr: changed\nafter: changed\n");
    cJSON_Delete(o1);
    cJSON_Delete(o2);
    cfg_arena_free(&a);
}

/* The host's flags and types: checked for sense, and refused in a plugin's table. */
static void test_host_parts_refused_to_plugins(void **state)
{
    (void)state;
    char err[256];
    assert_int_equal(cfgtable_check(&htable, err, sizeof err), 0);
    assert_int_equal(cfgtable_check_plugin(&ttable, err, sizeof err), 0);
    assert_int_equal(cfgtable_check_plugin(&htable, err, sizeof err), -1);
    assert_string_equal(err, "config key path sets flags 0x50000, reserved for the host");

    static const sy_config_key obj[] = {{SY_KEY("o", CFG_OBJECT, NULL, 0, hconf, obj, "")}};
    static const sy_config_table t1 = SY_CONFIG_TABLE(obj, hconf);
    assert_int_equal(cfgtable_check(&t1, err, sizeof err), 0);
    assert_int_equal(cfgtable_check_plugin(&t1, err, sizeof err), -1);
    assert_string_equal(err, "config key o has type 256, reserved for the host");

    static const sy_config_key ne[] = {
        {SY_KEY("s", SY_CFG_SIZE, NULL, CFG_NONEMPTY, hconf, size, "")}};
    static const sy_config_table t2 = SY_CONFIG_TABLE(ne, hconf);
    expect_bad(&t2, "config key s: non-empty applies to strings and arrays only");
    static const sy_config_key cr[] = {
        {SY_KEY("t", SY_CFG_STRING, NULL, CFG_CREATED, hconf, token, "")}};
    static const sy_config_table t3 = SY_CONFIG_TABLE(cr, hconf);
    expect_bad(&t3, "config key t: a file created later applies to secrets only");
}

static void test_host_docs(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    cfgtable_describe(m, &htable, "");
    fclose(m);
    assert_non_null(strstr(buf, "path               string or null, default \"default.jsonl\"\n"));
    assert_non_null(strstr(buf, "after              duration, null or false, default 5d, restart "
                                "to change\n"));
    assert_non_null(strstr(buf, "size               size, default 64MiB, at least 64KiB\n"));
    free(buf);

    static const char *const mmodes[] = {"fast", "safe|sound", NULL};
    static const sy_config_key mkeys[] = {
        {SY_KEY("mode", SY_CFG_STRING, "fast", CFG_RESTART, tconf, mode, "how | why"),
         .choices = mmodes},
        {SY_KEY("n", SY_CFG_INT, "5", SY_CFG_RANGE, tconf, n, "count"), .min = 1, .max = 9},
        {SY_KEY("path", SY_CFG_STRING, NULL, SY_CFG_REQUIRED, tconf, path, "where")},
        {SY_KEY("timeout", SY_CFG_DURATION, "10s", 0, tconf, timeout, "t")},
        {SY_KEY("secret", SY_CFG_STRING, "hunter2", SY_CFG_SECRET, tconf, secret, "s")},
        {SY_KEY("list", SY_CFG_STRINGS, NULL, CFG_NULL_OFF, tconf, list, "l")},
    };
    static const sy_config_table mt = SY_CONFIG_TABLE(mkeys, tconf);
    buf = NULL;
    m = open_memstream(&buf, &len);
    cfgtable_markdown(m, &mt);
    fclose(m);
    assert_string_equal(buf,
                        "| key | type | default | meaning |\n"
                        "|---|---|---|---|\n"
                        "| `mode` | `\"fast\"` or `\"safe\\|sound\"` | `\"fast\"` | how \\| why "
                        "(restart to change it) |\n"
                        "| `n` | integer | `5` | count (1 to 9) |\n"
                        "| `path` | string | (required) | where |\n"
                        "| `timeout` | duration | `\"10s\"` | t |\n"
                        "| `secret` | string | (hidden) | s (never shown; or `secret_file`: a file "
                        "holding it) |\n"
                        "| `list` | array of strings or null | `null` | l |\n");
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_values), cmocka_unit_test(test_given_tells_zero_from_absent),
        cmocka_unit_test(test_errors),              cmocka_unit_test(test_choices_and_ranges),
        cmocka_unit_test(test_check_refuses),       cmocka_unit_test(test_larger_entries),
        cmocka_unit_test(test_describe),
        cmocka_unit_test(test_host_off_values),     cmocka_unit_test(test_host_errors),
        cmocka_unit_test(test_host_over),           cmocka_unit_test(test_host_created_later),
        cmocka_unit_test(test_host_changed),        cmocka_unit_test(test_host_parts_refused_to_plugins),
        cmocka_unit_test(test_host_docs),
    };
    return cmocka_run_group_tests_name("cfgtable", tests, NULL, NULL);
}
