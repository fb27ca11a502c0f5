/*
 * test_filter.c - type patterns, filter compilation errors and matching.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "filter.h"

static const char *EVENT =
    "{\"event_id\":\"e1\",\"event_type\":\"job.completed\","
    "\"data\":{\"status\":\"succeeded\",\"pages\":42,\"ratio\":0.5,\"flag\":true,\"off\":false,"
    "\"nothing\":null,\"name\":\"report-2026.pdf\",\"tags\":[\"a\",\"b\"],"
    "\"owner\":{\"id\":7,\"kind\":\"user\"},\"items\":[{\"sku\":\"x1\"},{\"sku\":\"y2\"}],"
    "\"word\":\"\xC3\xA9t\xC3\xA9\"}}";

static cJSON *event;

static int setup(void **state)
{
    (void)state;
    event = cJSON_Parse(EVENT);
    return event ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    cJSON_Delete(event);
    return 0;
}

/* Compiles spec (must succeed), matches it against EVENT, frees everything. */
static int m(const char *spec)
{
    char err[256] = "";
    cJSON *j = cJSON_Parse(spec);
    sy_filter *f;
    int r;
    if (!j)
        fail_msg("test spec is not JSON: %s", spec);
    f = filter_compile(j, err, sizeof(err));
    cJSON_Delete(j); /* the filter must not keep pointers into the spec */
    if (!f)
        fail_msg("compile failed for %s: %s", spec, err);
    r = filter_match(f, event);
    filter_free(f);
    return r;
}

/* Compiles spec (must fail) and returns the error text. */
static const char *compile_err(const char *spec)
{
    static char err[256];
    cJSON *j = cJSON_Parse(spec);
    sy_filter *f;
    if (!j)
        fail_msg("test spec is not JSON: %s", spec);
    memset(err, 'x', sizeof(err));
    err[sizeof(err) - 1] = '\0';
    f = filter_compile(j, err, sizeof(err));
    cJSON_Delete(j);
    if (f) {
        filter_free(f);
        fail_msg("compile unexpectedly succeeded for %s", spec);
    }
    return err;
}

static void test_pattern_valid(void **state)
{
    static const char *const good[] = {"*", "job", "job.completed", "job.*", "a.b-c_d.*", "0.*"};
    static const char *const bad[] = {"",     "Job",   "job.",    ".job",  "job..x", "job.*.x",
                                      "*.job", "job*", "**",     ".*",    "job.**", "j ob",
                                      "job.x*", "*x"};
    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (!type_pattern_valid(good[i]))
            fail_msg("rejected good pattern %s", good[i]);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (type_pattern_valid(bad[i]))
            fail_msg("accepted bad pattern \"%s\"", bad[i]);
    assert_false(type_pattern_valid(NULL));
}

static void test_pattern_match(void **state)
{
    (void)state;
    assert_true(type_pattern_match("job.*", "job.completed"));
    assert_true(type_pattern_match("job.*", "job.a.b"));
    assert_false(type_pattern_match("job.*", "job"));
    assert_false(type_pattern_match("job.*", "jobs.x"));
    assert_false(type_pattern_match("job.*", "job."));
    assert_false(type_pattern_match("job.*", "xjob.a"));
    assert_true(type_pattern_match("job.a.*", "job.a.b"));
    assert_false(type_pattern_match("job.a.*", "job.ab.c"));
    assert_true(type_pattern_match("*", "anything.at.all"));
    assert_true(type_pattern_match("*", "x"));
    assert_true(type_pattern_match("job.completed", "job.completed"));
    assert_false(type_pattern_match("job.completed", "job.completed.x"));
    assert_false(type_pattern_match("job.completed", "job"));
    assert_false(type_pattern_match(NULL, "job"));
}

static void test_eq(void **state)
{
    (void)state;
    assert_true(m("{\"data.status\":\"succeeded\"}"));
    assert_false(m("{\"data.status\":\"failed\"}"));
    assert_true(m("{\"data.status\":{\"$eq\":\"succeeded\"}}"));
    assert_false(m("{\"data.status\":{\"$eq\":\"Succeeded\"}}"));
    assert_true(m("{\"data.pages\":42}"));
    assert_true(m("{\"data.pages\":42.0}")); /* numbers compare as doubles */
    assert_false(m("{\"data.pages\":41}"));
    assert_false(m("{\"data.pages\":42.000001}"));
    assert_true(m("{\"data.ratio\":5e-1}"));
    assert_false(m("{\"data.pages\":\"42\"}")); /* type matters */
    assert_true(m("{\"data.flag\":true}"));
    assert_false(m("{\"data.flag\":1}"));
    assert_false(m("{\"data.off\":true}"));
    assert_true(m("{\"data.nothing\":null}"));
    assert_false(m("{\"data.off\":null}"));
    /* deep equality; object key order does not matter, array order does */
    assert_true(m("{\"data.owner\":{\"kind\":\"user\",\"id\":7}}"));
    assert_false(m("{\"data.owner\":{\"id\":7}}"));
    assert_false(m("{\"data.owner\":{\"id\":7,\"kind\":\"user\",\"x\":1}}"));
    assert_true(m("{\"data.tags\":[\"a\",\"b\"]}"));
    assert_false(m("{\"data.tags\":[\"b\",\"a\"]}"));
    assert_false(m("{\"data.tags\":[\"a\"]}"));
    assert_true(m("{\"data.owner\":{\"$eq\":{\"id\":7,\"kind\":\"user\"}}}"));
    /* array indices in paths */
    assert_true(m("{\"data.items.1.sku\":\"y2\"}"));
    assert_false(m("{\"data.items.2.sku\":\"y2\"}"));
    /* absent */
    assert_false(m("{\"data.missing\":null}"));
}

static void test_ne(void **state)
{
    (void)state;
    assert_true(m("{\"data.status\":{\"$ne\":\"failed\"}}"));
    assert_false(m("{\"data.status\":{\"$ne\":\"succeeded\"}}"));
    assert_true(m("{\"data.pages\":{\"$ne\":\"42\"}}"));
    assert_true(m("{\"data.missing\":{\"$ne\":\"x\"}}")); /* holds on absent fields */
    assert_false(m("{\"data.tags\":{\"$ne\":[\"a\",\"b\"]}}"));
}

static void test_in_nin(void **state)
{
    (void)state;
    assert_true(m("{\"data.status\":{\"$in\":[\"succeeded\",\"failed\"]}}"));
    assert_false(m("{\"data.status\":{\"$in\":[\"failed\",\"cancelled\"]}}"));
    assert_false(m("{\"data.status\":{\"$in\":[]}}"));
    assert_true(m("{\"data.pages\":{\"$in\":[1,42.0]}}"));
    assert_false(m("{\"data.pages\":{\"$in\":[\"42\"]}}"));
    assert_true(m("{\"data.owner\":{\"$in\":[1,{\"id\":7,\"kind\":\"user\"}]}}"));
    assert_false(m("{\"data.missing\":{\"$in\":[null]}}")); /* absent is not null */
    assert_true(m("{\"data.status\":{\"$nin\":[\"failed\",\"cancelled\"]}}"));
    assert_false(m("{\"data.status\":{\"$nin\":[\"failed\",\"succeeded\"]}}"));
    assert_true(m("{\"data.status\":{\"$nin\":[]}}"));
    assert_true(m("{\"data.missing\":{\"$nin\":[\"x\"]}}")); /* holds on absent fields */
}

static void test_ordering(void **state)
{
    (void)state;
    assert_true(m("{\"data.pages\":{\"$gt\":41}}"));
    assert_false(m("{\"data.pages\":{\"$gt\":42}}"));
    assert_true(m("{\"data.pages\":{\"$gte\":42}}"));
    assert_false(m("{\"data.pages\":{\"$gte\":42.5}}"));
    assert_true(m("{\"data.pages\":{\"$lt\":42.5}}"));
    assert_false(m("{\"data.pages\":{\"$lt\":42}}"));
    assert_true(m("{\"data.pages\":{\"$lte\":42}}"));
    assert_false(m("{\"data.pages\":{\"$lte\":41}}"));
    assert_true(m("{\"data.ratio\":{\"$gt\":-1,\"$lt\":1}}"));
    /* all operators on a field must hold */
    assert_true(m("{\"data.pages\":{\"$gte\":10,\"$lt\":100}}"));
    assert_false(m("{\"data.pages\":{\"$gte\":10,\"$lt\":42}}"));
    /* strings, bytewise */
    assert_true(m("{\"data.status\":{\"$gt\":\"a\"}}"));
    assert_true(m("{\"data.status\":{\"$lt\":\"t\"}}"));
    assert_false(m("{\"data.status\":{\"$lt\":\"S\"}}")); /* 'S' (0x53) < 's' (0x73) */
    assert_true(m("{\"data.status\":{\"$gte\":\"succeeded\",\"$lte\":\"succeeded\"}}"));
    assert_true(m("{\"data.word\":{\"$gt\":\"z\"}}")); /* UTF-8 lead byte 0xC3 > 'z' */
    /* mixed types and absent fields never match */
    assert_false(m("{\"data.pages\":{\"$gt\":\"1\"}}"));
    assert_false(m("{\"data.pages\":{\"$lt\":\"zzz\"}}"));
    assert_false(m("{\"data.status\":{\"$gt\":0}}"));
    assert_false(m("{\"data.flag\":{\"$gte\":0}}"));
    assert_false(m("{\"data.missing\":{\"$lt\":100}}"));
    assert_false(m("{\"data.missing\":{\"$gte\":\"\"}}"));
}

static void test_exists(void **state)
{
    (void)state;
    assert_true(m("{\"data.status\":{\"$exists\":true}}"));
    assert_false(m("{\"data.status\":{\"$exists\":false}}"));
    assert_true(m("{\"data.missing\":{\"$exists\":false}}"));
    assert_false(m("{\"data.missing\":{\"$exists\":true}}"));
    assert_true(m("{\"data.nothing\":{\"$exists\":true}}")); /* null counts as present */
    assert_false(m("{\"data.nothing\":{\"$exists\":false}}"));
}

static void test_prefix(void **state)
{
    (void)state;
    assert_true(m("{\"data.name\":{\"$prefix\":\"report-\"}}"));
    assert_true(m("{\"data.name\":{\"$prefix\":\"\"}}"));
    assert_true(m("{\"data.name\":{\"$prefix\":\"report-2026.pdf\"}}"));
    assert_false(m("{\"data.name\":{\"$prefix\":\"report-2026.pdfx\"}}"));
    assert_false(m("{\"data.name\":{\"$prefix\":\"Report\"}}"));
    assert_false(m("{\"data.pages\":{\"$prefix\":\"4\"}}")); /* strings only */
    assert_false(m("{\"data.missing\":{\"$prefix\":\"\"}}"));
}

static void test_and_or(void **state)
{
    (void)state;
    /* several keys in one object must all hold */
    assert_true(m("{\"data.status\":\"succeeded\",\"data.pages\":42}"));
    assert_false(m("{\"data.status\":\"succeeded\",\"data.pages\":41}"));
    assert_true(m("{\"$or\":[{\"data.status\":\"failed\"},{\"data.pages\":42}]}"));
    assert_false(m("{\"$or\":[{\"data.status\":\"failed\"},{\"data.pages\":41}]}"));
    assert_true(m("{\"$and\":[{\"data.status\":\"succeeded\"},{\"data.pages\":{\"$gt\":1}}]}"));
    assert_false(m("{\"$and\":[{\"data.status\":\"succeeded\"},{\"data.pages\":{\"$gt\":99}}]}"));
    /* nesting, plus a sibling key next to $or */
    assert_true(
        m("{\"event_type\":\"job.completed\",\"$or\":[{\"data.flag\":false},"
          "{\"$and\":[{\"data.owner.kind\":\"user\"},{\"data.owner.id\":{\"$in\":[7,8]}}]}]}"));
    assert_false(m("{\"event_type\":\"job.failed\",\"$or\":[{\"data.flag\":true}]}"));
    assert_false(m("{\"$or\":[{\"data.flag\":false},"
                   "{\"$and\":[{\"data.owner.kind\":\"user\"},{\"data.owner.id\":9}]}]}"));
    assert_true(m("{\"$or\":[{\"$or\":[{\"$or\":[{\"data.pages\":42}]}]}]}"));
    /* an empty filter matches everything, a NULL filter too */
    assert_true(m("{}"));
    assert_true(filter_match(NULL, event));
}

static void test_compile_errors(void **state)
{
    char err[64];
    cJSON *arr = cJSON_Parse("[1]");
    (void)state;
    assert_string_equal(compile_err("{\"data.status\":{\"$in\":\"succeeded\"}}"),
                        "data.status.$in: expected an array");
    assert_string_equal(compile_err("{\"data.status\":{\"$nin\":{}}}"),
                        "data.status.$nin: expected an array");
    assert_string_equal(compile_err("{\"$or\":[]}"), "$or: expected a non-empty array of objects");
    assert_string_equal(compile_err("{\"$or\":{\"a\":1}}"),
                        "$or: expected a non-empty array of objects");
    assert_string_equal(compile_err("{\"$and\":[{\"a\":1},2]}"),
                        "$and: expected a non-empty array of objects");
    assert_string_equal(compile_err("{\"data.x\":{\"$foo\":1}}"), "data.x.$foo: unknown operator");
    assert_string_equal(compile_err("{\"data.n\":{\"$gt\":true}}"),
                        "data.n.$gt: expected a number or a string");
    assert_string_equal(compile_err("{\"data.n\":{\"$lte\":[1]}}"),
                        "data.n.$lte: expected a number or a string");
    assert_string_equal(compile_err("{\"data.n\":{\"$gte\":1,\"$lt\":null}}"),
                        "data.n.$lt: expected a number or a string");
    assert_string_equal(compile_err("{\"data.x\":{\"$exists\":1}}"),
                        "data.x.$exists: expected true or false");
    assert_string_equal(compile_err("{\"data.x\":{\"$prefix\":1}}"),
                        "data.x.$prefix: expected a string");
    assert_string_equal(compile_err("{\"$foo\":1}"), "$foo: unknown operator");
    assert_string_equal(compile_err("{\"$or\":[{\"a\":1},{\"data.x\":{\"$foo\":1}}]}"),
                        "$or.1.data.x.$foo: unknown operator");
    assert_string_equal(compile_err("{\"$and\":[{\"$or\":[{\"x\":{\"$in\":1}}]}]}"),
                        "$and.0.$or.0.x.$in: expected an array");
    assert_string_equal(compile_err("{\"\":1}"), "filter: invalid field path");
    assert_string_equal(compile_err("{\"data..x\":1}"), "data..x: invalid field path");
    assert_string_equal(compile_err("{\"data.\":1}"), "data.: invalid field path");
    assert_string_equal(compile_err("{\"data.x\":{\"$eq\":1,\"y\":2}}"),
                        "data.x.y: operators and plain keys mixed");
    assert_string_equal(compile_err("[{\"a\":1}]"), "filter: expected an object");
    assert_string_equal(compile_err("\"a\""), "filter: expected an object");
    assert_null(filter_compile(NULL, err, sizeof(err)));
    assert_string_equal(err, "filter: expected an object");
    /* err is optional, and truncated to errlen */
    assert_null(filter_compile(arr, NULL, 0));
    assert_null(filter_compile(arr, err, 8));
    assert_string_equal(err, "filter:");
    cJSON_Delete(arr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pattern_valid), cmocka_unit_test(test_pattern_match),
        cmocka_unit_test(test_eq),            cmocka_unit_test(test_ne),
        cmocka_unit_test(test_in_nin),        cmocka_unit_test(test_ordering),
        cmocka_unit_test(test_exists),        cmocka_unit_test(test_prefix),
        cmocka_unit_test(test_and_or),        cmocka_unit_test(test_compile_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
