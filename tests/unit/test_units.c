/* test_units.c - durations and sizes: every unit, every rejection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "units.h"

static int64_t dur_ok(const char *s)
{
    int64_t v = -12345;
    assert_int_equal(units_parse_duration(s, &v), 0);
    return v;
}

static int64_t size_ok(const char *s)
{
    int64_t v = -12345;
    assert_int_equal(units_parse_size(s, &v), 0);
    return v;
}

static void test_duration_units(void **state)
{
    (void)state;
    assert_int_equal(dur_ok("250ms"), 250);
    assert_int_equal(dur_ok("10s"), 10000);
    assert_int_equal(dur_ok("5m"), 300000);
    assert_int_equal(dur_ok("2h"), 7200000);
    assert_int_equal(dur_ok("3d"), 259200000);
    assert_int_equal(dur_ok("1500"), 1500);
    assert_int_equal(dur_ok("0"), 0);
    assert_int_equal(dur_ok("0s"), 0);
    assert_int_equal(dur_ok("007s"), 7000);
    assert_int_equal(dur_ok("9223372036854775807"), INT64_MAX);
    assert_int_equal(dur_ok("9223372036854775ms"), 9223372036854775LL);
}

/* Fractions are exact or refused: a value never gets rounded. */
static void test_duration_fractions(void **state)
{
    (void)state;
    assert_int_equal(dur_ok("1.5s"), 1500);
    assert_int_equal(dur_ok("1.50s"), 1500);
    assert_int_equal(dur_ok("0.25s"), 250);
    assert_int_equal(dur_ok("1.5h"), 5400000);
    assert_int_equal(dur_ok("0.5m"), 30000);
    assert_int_equal(dur_ok("0.001s"), 1);
    assert_int_equal(dur_ok("1.5d"), 129600000);
}

static void test_duration_errors(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", " ", "\t", "  \n", " 5s", "5s ", "5 s", "-5s", "-1", "+5s", "5x", "s", "ms",
        "5S", "5sec", "5ss", "5mss", "1.5", "0.5ms", "0.0015s", "1.", ".5s", "1..5s", "1.5.s",
        "1e3", "0x10", "9223372036854775808", "9223372036854775807s", "106751991167301d",
        "99999999999999999999999ms", "1.0000000001s", "5m5s",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t v = 42;
        if (units_parse_duration(bad[i], &v) != -1)
            fail_msg("accepted \"%s\"", bad[i]);
        assert_int_equal(v, 42); /* untouched on error */
    }
    int64_t v;
    assert_int_equal(units_parse_duration(NULL, &v), -1);
    assert_int_equal(units_parse_duration("5s", NULL), -1);
}

static void test_size_units(void **state)
{
    (void)state;
    assert_int_equal(size_ok("512"), 512);
    assert_int_equal(size_ok("512B"), 512);
    assert_int_equal(size_ok("64KiB"), 65536);
    assert_int_equal(size_ok("10MiB"), 10485760);
    assert_int_equal(size_ok("1GiB"), 1073741824);
    assert_int_equal(size_ok("2KB"), 2000);
    assert_int_equal(size_ok("3MB"), 3000000);
    assert_int_equal(size_ok("4GB"), 4000000000LL);
    assert_int_equal(size_ok("2K"), 2048);
    assert_int_equal(size_ok("3M"), 3145728);
    assert_int_equal(size_ok("4G"), 4294967296LL);
    assert_int_equal(size_ok("1.5KiB"), 1536);
    assert_int_equal(size_ok("0.5MB"), 500000);
    assert_int_equal(size_ok("8589934591G"), 8589934591LL * 1073741824LL);
}

static void test_size_errors(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", " ", "-1", "-1KiB", "1 KiB", "1kib", "1KIB", "1k", "1TB", "1TiB", "1b", "KiB",
        "1.5", "1.5B", "1.1KiB", "9223372036854775808", "8589934592G", "1MiBB",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t v = 42;
        if (units_parse_size(bad[i], &v) != -1)
            fail_msg("accepted \"%s\"", bad[i]);
        assert_int_equal(v, 42);
    }
}

static void check_format(int64_t ms, const char *want)
{
    char buf[32];
    units_format_duration(ms, buf, sizeof buf);
    assert_string_equal(buf, want);
}

static void test_format(void **state)
{
    (void)state;
    check_format(5000, "5s");
    check_format(1800000, "30m");
    check_format(36000000, "10h");
    check_format(259200000, "3d");
    check_format(1500, "1500ms");
    check_format(0, "0ms");
    check_format(1, "1ms");
    check_format(86400000, "1d");
    check_format(90000000, "25h");
    check_format(90000, "90s");
    check_format(60000, "1m");
    check_format(3600000, "1h");

    /* Truncates, never overflows, and leaves a terminator. */
    char small[4] = "xyz";
    units_format_duration(1500, small, sizeof small);
    assert_string_equal(small, "150");
    units_format_duration(1500, small, 0);
    assert_string_equal(small, "150");
}

/* Every formatted value parses back to itself. */
static void test_format_roundtrip(void **state)
{
    (void)state;
    static const int64_t vals[] = { 0, 1, 999, 1000, 1001, 59000, 60000, 61000, 3600000,
                                    86400000, 172800000, 123456789, INT64_MAX };
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        char buf[32];
        units_format_duration(vals[i], buf, sizeof buf);
        assert_int_equal(dur_ok(buf), vals[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duration_units),   cmocka_unit_test(test_duration_fractions),
        cmocka_unit_test(test_duration_errors),  cmocka_unit_test(test_size_units),
        cmocka_unit_test(test_size_errors),      cmocka_unit_test(test_format),
        cmocka_unit_test(test_format_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
