/*
 * test_store_pg.c - the parts of the PostgreSQL store that need no server:
 * binary array parameters byte for byte (PostgreSQL's array_recv format),
 * text made valid UTF-8, and the conninfo check that never quotes the
 * string. What the store does against a server is tested end to end
 * (tests/e2e/test_store_pg.py, and the spool tests on both stores).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "store_pg_int.h"

static void test_int8_array(void **state)
{
    (void)state;
    pg_arr a;
    pg_arr_init(&a, PG_INT8);
    pg_arr_i64(&a, 1);
    pg_arr_i64(&a, -2);
    int len;
    const unsigned char *p = (const unsigned char *)pg_arr_done(&a, &len);
    static const unsigned char want[] = {
        0, 0, 0, 1,  0, 0, 0, 0,  0, 0, 0, 20, /* ndim 1, no null, int8 */
        0, 0, 0, 2,  0, 0, 0, 1,               /* 2 elements from index 1 */
        0, 0, 0, 8,  0, 0, 0, 0, 0, 0, 0, 1,
        0, 0, 0, 8,  0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe};
    assert_int_equal(len, sizeof want);
    assert_memory_equal(p, want, sizeof want);
    pg_arr_free(&a);
}

static void test_empty_and_null(void **state)
{
    (void)state;
    pg_arr a;
    int len;
    pg_arr_init(&a, PG_TEXT);
    const unsigned char *p = (const unsigned char *)pg_arr_done(&a, &len);
    static const unsigned char empty[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 25};
    assert_int_equal(len, sizeof empty);
    assert_memory_equal(p, empty, sizeof empty);
    pg_arr_free(&a);

    pg_arr_init(&a, PG_TEXT);
    pg_arr_text(&a, "ab");
    pg_arr_null(&a);
    p = (const unsigned char *)pg_arr_done(&a, &len);
    static const unsigned char want[] = {0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 25, 0, 0, 0, 2,
                                         0, 0, 0, 1, 0, 0, 0, 2, 'a', 'b', 0xff, 0xff, 0xff, 0xff};
    assert_int_equal(len, sizeof want);
    assert_memory_equal(p, want, sizeof want);
    pg_arr_free(&a);
}

static void test_text_made_valid_utf8(void **state)
{
    (void)state;
    pg_arr a;
    int len;
    pg_arr_init(&a, PG_TEXT);
    /* é is kept; a lone continuation byte, an overlong '/' and a surrogate become '?'. */
    pg_arr_text(&a, "ok \xc3\xa9 \x80 \xc0\xaf \xed\xa0\x80!");
    const char *p = pg_arr_done(&a, &len);
    const char want[] = "ok \xc3\xa9 ? ?" "? ?" "?" "?!"; /* no trigraphs */
    assert_int_equal(len, 20 + 4 + (int)strlen(want));
    assert_memory_equal(p + 24, want, strlen(want));
    pg_arr_free(&a);
}

static void test_conninfo_check_never_quotes(void **state)
{
    (void)state;
    char msg[256];
    assert_int_equal(store_check_conninfo("host=db1 dbname=sy user=a password=x", msg, sizeof msg),
                     0);
    assert_int_equal(store_check_conninfo("postgresql://a:pw@db1:5433/sy", msg, sizeof msg), 0);
    assert_int_equal(store_check_conninfo("host=db1 password=hunter2 oops", msg, sizeof msg), -1);
    assert_null(strstr(msg, "hunter2"));
    assert_null(strstr(msg, "oops"));
    assert_string_equal(msg, "not a valid PostgreSQL connection string (key=value pairs, or a "
                             "postgresql:// URI); its text is not shown, it may hold a password");
    assert_int_equal(store_check_conninfo("postgresql://a:hunter2@db1/x?bogus=1", msg, sizeof msg),
                     -1);
    assert_null(strstr(msg, "hunter2"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_int8_array),
        cmocka_unit_test(test_empty_and_null),
        cmocka_unit_test(test_text_made_valid_utf8),
        cmocka_unit_test(test_conninfo_check_never_quotes),
    };
    return cmocka_run_group_tests_name("store_pg", tests, NULL, NULL);
}
