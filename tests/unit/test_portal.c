/*
 * test_portal.c - which names the portal serves (core/portal.c): one path
 * segment of a small alphabet with a known extension, so no traversal,
 * hidden file or sub-folder ever reaches open(); and the CSP it sends.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "portal.h"

static void test_served_names_and_types(void **state)
{
    (void)state;
    const char *type = NULL;
    assert_string_equal(portal_file_name("", &type), "index.html");
    assert_string_equal(type, "text/html; charset=utf-8");
    assert_string_equal(portal_file_name("portal.js", &type), "portal.js");
    assert_string_equal(type, "text/javascript; charset=utf-8");
    assert_string_equal(portal_file_name("portal.css", &type), "portal.css");
    assert_string_equal(type, "text/css; charset=utf-8");
    assert_string_equal(portal_file_name("logo-2_x.svg", &type), "logo-2_x.svg");
    assert_string_equal(type, "image/svg+xml");
}

static void test_refused_names(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "..", "../index.html", "..%2findex.html", "a/../index.html", "sub/index.html",
        ".hidden.js", ".js", "index.html/", "index.htm", "index", "a b.js", "a\\b.js",
        "index.html%00.js", "/etc/passwd", "x.json", "x.JS", "x.js.map",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *type = "unchanged";
        if (portal_file_name(bad[i], &type))
            fail_msg("\"%s\" was accepted", bad[i]);
        assert_string_equal(type, "unchanged");
    }
    char longname[200];
    memset(longname, 'a', sizeof longname);
    strcpy(longname + 150, ".js");
    const char *type;
    assert_null(portal_file_name(longname, &type));
}

static void test_csp(void **state)
{
    (void)state;
    char csp[512];
    portal_csp("https://app.example.com 'self'", csp, sizeof csp);
    assert_string_equal(csp, "default-src 'self'; script-src 'self'; style-src 'self'; "
                             "img-src 'self' data:; connect-src 'self'; font-src 'self'; "
                             "object-src 'none'; base-uri 'none'; form-action 'self'; "
                             "frame-ancestors https://app.example.com 'self'");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_served_names_and_types),
        cmocka_unit_test(test_refused_names),
        cmocka_unit_test(test_csp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
