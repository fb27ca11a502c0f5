/* test_mergepatch.c - RFC 7396: every example of its Appendix A, and the copy guarantee. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "mergepatch.h"

/* target (NULL text: absent) patched with patch must print exactly as want (NULL: absent). */
static void check(const char *target, const char *patch, const char *want)
{
    cJSON *t = target ? cJSON_Parse(target) : NULL;
    cJSON *p = cJSON_Parse(patch);
    assert_non_null(p);
    char *before = t ? cJSON_PrintUnformatted(t) : NULL;
    int oom = -1;
    cJSON *r = mergepatch_apply(t, p, &oom);
    assert_int_equal(oom, 0);
    if (!want) {
        assert_null(r);
    } else {
        assert_non_null(r);
        char *got = cJSON_PrintUnformatted(r);
        assert_string_equal(got, want);
        free(got);
    }
    if (t) { /* the target is never touched */
        char *after = cJSON_PrintUnformatted(t);
        assert_string_equal(after, before);
        free(after);
    }
    free(before);
    cJSON_Delete(r);
    cJSON_Delete(t);
    cJSON_Delete(p);
}

/* RFC 7396 Appendix A, in its order. */
static void test_rfc_examples(void **state)
{
    (void)state;
    check("{\"a\":\"b\"}", "{\"a\":\"c\"}", "{\"a\":\"c\"}");
    check("{\"a\":\"b\"}", "{\"b\":\"c\"}", "{\"a\":\"b\",\"b\":\"c\"}");
    check("{\"a\":\"b\"}", "{\"a\":null}", "{}");
    check("{\"a\":\"b\",\"b\":\"c\"}", "{\"a\":null}", "{\"b\":\"c\"}");
    check("{\"a\":[\"b\"]}", "{\"a\":\"c\"}", "{\"a\":\"c\"}");
    check("{\"a\":\"c\"}", "{\"a\":[\"b\"]}", "{\"a\":[\"b\"]}");
    check("{\"a\":{\"b\":\"c\"}}", "{\"a\":{\"b\":\"d\",\"c\":null}}", "{\"a\":{\"b\":\"d\"}}");
    check("{\"a\":[{\"b\":\"c\"}]}", "{\"a\":[1]}", "{\"a\":[1]}");
    check("[\"a\",\"b\"]", "[\"c\",\"d\"]", "[\"c\",\"d\"]");
    check("{\"a\":\"b\"}", "[\"c\"]", "[\"c\"]");
    check("{\"a\":\"foo\"}", "null", NULL);
    check("{\"a\":\"foo\"}", "\"bar\"", "\"bar\"");
    check("{\"e\":null}", "{\"a\":1}", "{\"e\":null,\"a\":1}");
    check("[1,2]", "{\"a\":\"b\",\"c\":null}", "{\"a\":\"b\"}");
    check("{}", "{\"a\":{\"bb\":{\"ccc\":null}}}", "{\"a\":{\"bb\":{}}}");
}

/* The RFC's larger example (section 3): an e-mail document. */
static void test_rfc_section3(void **state)
{
    (void)state;
    check("{\"title\":\"Goodbye!\",\"author\":{\"givenName\":\"John\",\"familyName\":\"Doe\"},"
          "\"tags\":[\"example\",\"sample\"],\"content\":\"This will be unchanged\"}",
          "{\"title\":\"Hello!\",\"phoneNumber\":\"+01-123-456-7890\","
          "\"author\":{\"familyName\":null},\"tags\":[\"example\"]}",
          "{\"title\":\"Hello!\",\"author\":{\"givenName\":\"John\"},\"tags\":[\"example\"],"
          "\"content\":\"This will be unchanged\",\"phoneNumber\":\"+01-123-456-7890\"}");
}

/* An absent target is patched like an empty one; null members of a new object vanish. */
static void test_absent_target(void **state)
{
    (void)state;
    check(NULL, "{\"a\":{\"b\":null,\"c\":1}}", "{\"a\":{\"c\":1}}");
    check(NULL, "7", "7");
    check(NULL, "null", NULL);
}

/* Deep nesting is patched in place of the nested object, siblings kept. */
static void test_nested_keeps_siblings(void **state)
{
    (void)state;
    check("{\"breaker\":{\"failures\":3,\"probe\":\"5s\"},\"url\":\"u\"}",
          "{\"breaker\":{\"probe\":\"1s\"}}",
          "{\"breaker\":{\"failures\":3,\"probe\":\"1s\"},\"url\":\"u\"}");
    check("{\"breaker\":false}", "{\"breaker\":{\"failures\":2}}",
          "{\"breaker\":{\"failures\":2}}");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc_examples),
        cmocka_unit_test(test_rfc_section3),
        cmocka_unit_test(test_absent_target),
        cmocka_unit_test(test_nested_keeps_siblings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
