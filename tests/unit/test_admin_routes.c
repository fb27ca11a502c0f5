/*
 * test_admin_routes.c - the admin API's route table (core/admin.c) and its
 * OpenAPI document (docs/openapi.json, built into the binary) describe the
 * same API, both ways: every route the server dispatches is documented with
 * its method, and every documented operation is a route. The e2e test
 * test_epapi_openapi.py then asks the running server for every documented
 * route and validates the document with a real OpenAPI validator.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_routes.h"

static const char *const methods[] = {"get", "put", "post", "patch", "delete", "head",
                                      "options", "trace", NULL};

static cJSON *doc(void)
{
    size_t len;
    const char *text = api_openapi_text(&len);
    cJSON *d = cJSON_ParseWithLength(text, len);
    assert_non_null(d);
    return d;
}

static void lower(const char *in, char *out, size_t n)
{
    size_t i = 0;
    for (; in[i] && i + 1 < n; i++)
        out[i] = (char)tolower((unsigned char)in[i]);
    out[i] = '\0';
}

static void test_every_route_is_documented(void **state)
{
    (void)state;
    cJSON *d = doc();
    const cJSON *paths = cJSON_GetObjectItemCaseSensitive(d, "paths");
    assert_non_null(paths);
    for (size_t i = 0; i < admin_nroutes; i++) {
        const api_route *r = &admin_routes[i];
        char m[16];
        lower(r->method, m, sizeof m);
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(paths, r->pattern);
        if (!p)
            fail_msg("%s %s is not in docs/openapi.json", r->method, r->pattern);
        const cJSON *op = cJSON_GetObjectItemCaseSensitive(p, m);
        if (!op)
            fail_msg("%s %s is not in docs/openapi.json", r->method, r->pattern);
        /* A route without a token says so; every other one needs the bearer token. */
        const cJSON *sec = cJSON_GetObjectItemCaseSensitive(op, "security");
        assert_int_equal((r->flags & ROUTE_PUBLIC) != 0, cJSON_IsArray(sec) && !sec->child);
        /* A route that takes a body documents one, required when the route requires it. */
        const cJSON *rb = cJSON_GetObjectItemCaseSensitive(op, "requestBody");
        assert_int_equal((r->flags & (ROUTE_BODY | ROUTE_OPT_BODY)) != 0, rb != NULL);
        if (rb)
            assert_int_equal(cJSON_IsTrue(cJSON_GetObjectItem(rb, "required")),
                             (r->flags & ROUTE_BODY) != 0);
    }
    cJSON_Delete(d);
}

static void test_every_documented_operation_is_a_route(void **state)
{
    (void)state;
    cJSON *d = doc();
    const cJSON *p;
    size_t ops = 0;
    cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(d, "paths"))
    {
        for (const cJSON *m = p->child; m; m = m->next) {
            int is_method = 0;
            for (const char *const *x = methods; *x; x++)
                is_method |= !strcmp(m->string, *x);
            if (!is_method)
                continue; /* "parameters", "summary" */
            ops++;
            int found = 0;
            for (size_t i = 0; i < admin_nroutes && !found; i++) {
                char lm[16];
                lower(admin_routes[i].method, lm, sizeof lm);
                found = !strcmp(admin_routes[i].pattern, p->string) && !strcmp(lm, m->string);
            }
            if (!found)
                fail_msg("docs/openapi.json documents %s %s, which the server does not route",
                         m->string, p->string);
        }
    }
    assert_int_equal(ops, admin_nroutes);
    cJSON_Delete(d);
}

/* What the binary serves is the document in the repository, byte for byte. */
static void test_embedded_text_is_the_file(void **state)
{
    (void)state;
    FILE *f = fopen("docs/openapi.json", "rb");
    assert_non_null(f);
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    size_t len;
    const char *text = api_openapi_text(&len);
    assert_int_equal(len, n);
    assert_memory_equal(text, buf, n);
    assert_int_equal(text[len], '\0');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_route_is_documented),
        cmocka_unit_test(test_every_documented_operation_is_a_route),
        cmocka_unit_test(test_embedded_text_is_the_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
