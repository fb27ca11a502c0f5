/* test_units.c - durations and sizes: every unit, every rejection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
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
    assert_int_equal(size_ok("2TiB"), 2199023255552LL);
    assert_int_equal(size_ok("2KB"), 2000);
    assert_int_equal(size_ok("3MB"), 3000000);
    assert_int_equal(size_ok("4GB"), 4000000000LL);
    assert_int_equal(size_ok("5TB"), 5000000000000LL);
    assert_int_equal(size_ok("1.5KiB"), 1536);
    assert_int_equal(size_ok("0.5MB"), 500000);
    assert_int_equal(size_ok("0.25TiB"), 274877906944LL);
    assert_int_equal(size_ok("0.000000001TB"), 1000);
    assert_int_equal(size_ok("8388607TiB"), 8388607LL * 1099511627776LL);
    assert_int_equal(size_ok("9223372036854775807"), INT64_MAX);
    assert_int_equal(size_ok("9223372036854775807B"), INT64_MAX);
}

/* Size units ignore case: "1mb" is what "1MB" is, "1mib" what "1MiB" is. */
static void test_size_units_any_case(void **state)
{
    (void)state;
    assert_int_equal(size_ok("1mb"), 1000000);
    assert_int_equal(size_ok("1Mb"), 1000000);
    assert_int_equal(size_ok("1mB"), 1000000);
    assert_int_equal(size_ok("1mib"), 1048576);
    assert_int_equal(size_ok("1MIB"), 1048576);
    assert_int_equal(size_ok("1kib"), 1024);
    assert_int_equal(size_ok("1kb"), 1000);
    assert_int_equal(size_ok("1gib"), 1073741824);
    assert_int_equal(size_ok("1tb"), 1000000000000LL);
    assert_int_equal(size_ok("7b"), 7);
}

/* "1M" is read as 10^6 by some and 2^20 by others: refused, not guessed. */
static void test_size_bare_prefix_refused(void **state)
{
    (void)state;
    static const char *const bad[] = { "1K", "1M", "1G", "1T", "1k", "1m", "1g", "1t",
                                       "1.5M", "2Ki", "2Mi", "1KI" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t v = 42;
        if (units_parse_size(bad[i], &v) != -1)
            fail_msg("accepted \"%s\"", bad[i]);
        assert_int_equal(v, 42);
    }
}

/* Every unit the error message names is accepted, with the value it says. */
static void test_size_help_names_every_unit(void **state)
{
    (void)state;
    static const struct { const char *unit; int64_t bytes; } units[] = {
        { "B", 1 },
        { "KB", 1000 },          { "MB", 1000000 },        { "GB", 1000000000 },
        { "TB", 1000000000000LL },
        { "KiB", 1024 },         { "MiB", 1048576 },       { "GiB", 1073741824 },
        { "TiB", 1099511627776LL },
    };
    assert_string_equal(UNITS_SIZE_HELP,
                        "a number of bytes, or a number with B, KB, MB, GB, TB (powers of "
                        "1000) or KiB, MiB, GiB, TiB (powers of 1024), in any case");
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        char text[16], word[8];
        snprintf(text, sizeof text, "3%s", units[i].unit);
        snprintf(word, sizeof word, " %s", units[i].unit);
        if (!strstr(UNITS_SIZE_HELP, word))
            fail_msg("UNITS_SIZE_HELP does not name %s", units[i].unit);
        assert_int_equal(size_ok(text), 3 * units[i].bytes);
    }
}

static void test_size_errors(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", " ", "-1", "-1KiB", "1 KiB", "1PB", "1PiB", "1EiB", "KiB", "B", "1.5", "1.5B",
        "1.1KiB", "0.0001KB", "9223372036854775808", "9223372036854775808B", "8388608TiB",
        "9223373TB", "1MiBB", "1KBB", "1iB", "1bytes", "1 B", "1B ", "+1B", "0x10", "1e3",
        "1.0000000001KiB", "1.123456789TiB",
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

static void test_format_time(void **state)
{
    (void)state;
    char b[40];
    units_format_time(0, b, sizeof b);
    assert_string_equal(b, "1970-01-01T00:00:00.000Z");
    units_format_time(1795633742125LL, b, sizeof b);
    assert_string_equal(b, "2026-11-25T19:09:02.125Z");
    units_format_time(951782400007LL, b, sizeof b); /* a leap day */
    assert_string_equal(b, "2000-02-29T00:00:00.007Z");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duration_units),   cmocka_unit_test(test_duration_fractions),
        cmocka_unit_test(test_duration_errors),  cmocka_unit_test(test_size_units),
        cmocka_unit_test(test_size_units_any_case), cmocka_unit_test(test_size_bare_prefix_refused),
        cmocka_unit_test(test_size_help_names_every_unit),
        cmocka_unit_test(test_size_errors),      cmocka_unit_test(test_format),
        cmocka_unit_test(test_format_roundtrip), cmocka_unit_test(test_format_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
