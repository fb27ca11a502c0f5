/*
 * test_log.c - records in logfmt and JSON (typed fields, escaping, long
 * values), plugin lines through the host table, and the limiter of
 * repeated lines on an injected clock. Records go to a pipe.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cjson/cJSON.h>

#include "host.h"
#include "log.h"
#include "runtime.h"

static int g_pipe[2];
static int64_t g_clock;
static char g_out[1 << 17];

static int64_t fake_now(void)
{
    return g_clock;
}

/* Everything written since the last call, with each record's ts value replaced by T. */
static const char *drain(void)
{
    size_t n = 0;
    ssize_t r;
    while ((r = read(g_pipe[0], g_out + n, sizeof g_out - 1 - n)) > 0)
        n += (size_t)r;
    assert_true(r < 0 && errno == EAGAIN);
    g_out[n] = '\0';
    /* ts=2026-01-02T03:04:05.678Z / "ts":"2026-01-02T03:04:05.678Z": 24 characters. */
    char *w = g_out;
    for (char *p = g_out; *p;) {
        const char *tag = strncmp(p, "ts=", 3) == 0 ? "ts=" : strncmp(p, "{\"ts\":\"", 7) == 0 ? "{\"ts\":\"" : NULL;
        assert_non_null(tag);
        size_t tl = strlen(tag);
        memmove(w, p, tl);
        w += tl;
        *w++ = 'T';
        p += tl + 24;
        char *nl = strchr(p, '\n');
        assert_non_null(nl);
        size_t rest = (size_t)(nl - p) + 1;
        memmove(w, p, rest);
        w += rest;
        p = nl + 1;
    }
    *w = '\0';
    return g_out;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

static int setup(void **state)
{
    (void)state;
    log_setup(SY_LOG_INFO, LOG_FMT_LOGFMT);
    log_set_clock(fake_now);
    g_clock = 1000000;
    log_flush_repeats(1);
    drain();
    return 0;
}

static void test_logfmt_fields(void **state)
{
    (void)state;
    log_fields(SY_LOG_WARN, "delivery dead", LOG_S("endpoint", "bad"), LOG_I("attempts", 3),
               LOG_I("neg", INT64_MIN), LOG_D("ratio", 0.25), LOG_B("final", 1),
               LOG_B("ok", 0), LOG_S("detail", "flaky: attempt 1 of 1 fails"), LOG_S("empty", ""),
               LOG_S("null", NULL));
    assert_string_equal(drain(), "ts=T level=warn msg=\"delivery dead\" endpoint=bad attempts=3 "
                                 "neg=-9223372036854775808 ratio=0.25 final=true ok=false "
                                 "detail=\"flaky: attempt 1 of 1 fails\" empty=\"\" null=\"\"\n");
    log_msg(SY_LOG_INFO, "stopped");
    log_msg(SY_LOG_DEBUG, "hidden at info");
    assert_string_equal(drain(), "ts=T level=info msg=stopped\n");
}

static void test_json_numbers_are_numbers(void **state)
{
    (void)state;
    log_setup(SY_LOG_INFO, LOG_FMT_JSON);
    log_fields(SY_LOG_INFO, "switchyard ready", LOG_S("version", "0.1.0"), LOG_I("endpoints", 2),
               LOG_D("ratio", 1.5), LOG_B("spool", 1), LOG_D("nan", NAN), LOG_D("inf", -INFINITY));
    const char *out = drain();
    assert_string_equal(out, "{\"ts\":\"T\",\"level\":\"info\",\"msg\":\"switchyard ready\","
                             "\"version\":\"0.1.0\",\"endpoints\":2,\"ratio\":1.5,\"spool\":true,"
                             "\"nan\":\"NaN\",\"inf\":\"-Inf\"}\n");
    cJSON *j = cJSON_Parse(out);
    assert_non_null(j);
    assert_true(cJSON_IsNumber(cJSON_GetObjectItem(j, "endpoints")));
    assert_int_equal(cJSON_GetObjectItem(j, "endpoints")->valueint, 2);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "spool")));
    cJSON_Delete(j);
    log_setup(SY_LOG_INFO, LOG_FMT_LOGFMT);
}

/* Quotes, backslashes, newlines, other control bytes, DEL, '=', UTF-8 and bytes that are not. */
static const char nasty[] = "say \"hi\"\\ a=b\n\r\t\x01\x7f caf\xc3\xa9 \xff\xc0\xaf end";

static void test_escaping_logfmt(void **state)
{
    (void)state;
    log_fields(SY_LOG_ERROR, nasty, LOG_S("v", nasty), LOG_S("plain", "caf\xc3\xa9"),
               LOG_S("eq", "a=b"), LOG_S("bad", "\xff"));
    const char *q = "\"say \\\"hi\\\"\\\\ a=b\\n\\r\\t\\u0001\\u007f caf\xc3\xa9 \\ufffd\\ufffd\\ufffd end\"";
    char want[512];
    snprintf(want, sizeof want, "ts=T level=error msg=%s v=%s plain=caf\xc3\xa9 eq=\"a=b\" "
                                "bad=\"\\ufffd\"\n", q, q);
    assert_string_equal(drain(), want);
}

static void test_escaping_json(void **state)
{
    (void)state;
    log_setup(SY_LOG_INFO, LOG_FMT_JSON);
    log_fields(SY_LOG_ERROR, nasty, LOG_S("v", nasty));
    const char *out = drain();
    const char *q = "\"say \\\"hi\\\"\\\\ a=b\\n\\r\\t\\u0001\\u007f caf\xc3\xa9 \\ufffd\\ufffd\\ufffd end\"";
    char want[512];
    snprintf(want, sizeof want, "{\"ts\":\"T\",\"level\":\"error\",\"msg\":%s,\"v\":%s}\n", q, q);
    assert_string_equal(out, want);
    cJSON *j = cJSON_Parse(out);
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItem(j, "v")->valuestring,
                        "say \"hi\"\\ a=b\n\r\t\x01\x7f caf\xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd end");
    cJSON_Delete(j);
    log_setup(SY_LOG_INFO, LOG_FMT_LOGFMT);
}

/* A value too long for one record is cut with "..." and the record stays parseable. */
static void test_long_values_are_cut(void **state)
{
    (void)state;
    char *big = malloc(20001);
    memset(big, 'x', 20000);
    big[20000] = '\0';
    log_setup(SY_LOG_INFO, LOG_FMT_JSON);
    log_fields(SY_LOG_INFO, "big", LOG_S("first", "kept"), LOG_S("v", big), LOG_I("after", 1));
    const char *out = drain();
    assert_true(strlen(out) <= 8192);
    cJSON *j = cJSON_Parse(out);
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItem(j, "first")->valuestring, "kept");
    const char *v = cJSON_GetObjectItem(j, "v")->valuestring;
    assert_true(strlen(v) > 8000);
    assert_string_equal(v + strlen(v) - 4, "x...");
    assert_null(cJSON_GetObjectItem(j, "after"));
    cJSON_Delete(j);
    log_setup(SY_LOG_INFO, LOG_FMT_LOGFMT);
    log_fields(SY_LOG_INFO, "big", LOG_S("v", big));
    out = drain();
    assert_true(strlen(out) <= 8192);
    assert_string_equal(out + strlen(out) - 5, "x...\n");
    /* An escape is never cut in half. */
    memset(big, '\n', 20000);
    log_fields(SY_LOG_INFO, "big", LOG_S("v", big));
    out = drain();
    assert_string_equal(out + strlen(out) - 7, "\\n...\"\n");
    free(big);
}

static const sy_sink g_file_sink = {.name = "file"};

static void test_plugin_lines_carry_plugin_and_instance(void **state)
{
    (void)state;
    sy_instance inst = {.name = "archive", .sink = &g_file_sink};
    g_host.log(&inst, SY_LOG_INFO, "opened %s (%d bytes)", "/tmp/a b.jsonl", 12);
    assert_string_equal(drain(), "ts=T level=info msg=\"opened /tmp/a b.jsonl (12 bytes)\" "
                                 "plugin=file instance=archive\n");
    log_setup(SY_LOG_INFO, LOG_FMT_JSON);
    g_host.log(&inst, SY_LOG_WARN, "x");
    assert_string_equal(drain(), "{\"ts\":\"T\",\"level\":\"warn\",\"msg\":\"x\",\"plugin\":\"file\","
                                 "\"instance\":\"archive\"}\n");
    log_setup(SY_LOG_INFO, LOG_FMT_LOGFMT);
}

/* 25 lines at once: 10 written, 15 counted; the next line after the window brings the summary. */
static void test_limiter_window(void **state)
{
    (void)state;
    char want[4096];
    size_t off = 0;
    for (int i = 1; i <= 25; i++)
        log_limited(SY_LOG_ERROR, "event e%d not stored", i);
    for (int i = 1; i <= 10; i++)
        off += (size_t)snprintf(want + off, sizeof want - off,
                                "ts=T level=error msg=\"event e%d not stored\"\n", i);
    assert_string_equal(drain(), want);
    g_clock += LOG_LIMIT_WINDOW_MS - 1;
    log_limited(SY_LOG_ERROR, "event e%d not stored", 26);
    log_flush_repeats(0); /* the window has not ended: nothing yet */
    assert_string_equal(drain(), "");
    g_clock += 1;
    log_limited(SY_LOG_ERROR, "event e%d not stored", 27);
    /* The summary names the first line not written and how many were not. */
    assert_string_equal(drain(), "ts=T level=error msg=\"event e11 not stored (repeated 16 times)\" "
                                 "repeated=16\n"
                                 "ts=T level=error msg=\"event e27 not stored\"\n");
    /* A window without lines left out ends quietly. */
    g_clock += LOG_LIMIT_WINDOW_MS;
    log_flush_repeats(0);
    log_limited(SY_LOG_ERROR, "event e%d not stored", 28);
    assert_string_equal(drain(), "ts=T level=error msg=\"event e28 not stored\"\n");
}

/* Without another line of the key, log_flush_repeats() sums the window up once it ended. */
static void test_limiter_flush(void **state)
{
    (void)state;
    for (int i = 0; i < 12; i++)
        log_fields_limited(SY_LOG_WARN, "event rejected", LOG_S("reason", "not_json"), LOG_I("size", i));
    assert_int_equal(count(drain(), "msg=\"event rejected\" reason=not_json size="), 10);
    log_flush_repeats(0);
    assert_string_equal(drain(), "");
    g_clock += LOG_LIMIT_WINDOW_MS;
    log_flush_repeats(0);
    assert_string_equal(drain(), "ts=T level=warn msg=\"event rejected (repeated 2 times)\" "
                                 "repeated=2\n");
    log_flush_repeats(0);
    assert_string_equal(drain(), "");
    /* At exit every pending count is written, ended window or not. */
    for (int i = 0; i < 11; i++)
        log_fields_limited(SY_LOG_WARN, "event rejected", LOG_I("size", i));
    drain();
    log_flush_repeats(1);
    assert_string_equal(drain(), "ts=T level=warn msg=\"event rejected (repeated 1 times)\" "
                                 "repeated=1\n");
}

/* Keys: each format and each plugin instance has its own budget; debug lines and disabled levels are not limited. */
static void test_limiter_keys(void **state)
{
    (void)state;
    sy_instance a = {.name = "a", .sink = &g_file_sink}, b = {.name = "b", .sink = &g_file_sink};
    for (int i = 0; i < 15; i++) {
        g_host.log(&a, SY_LOG_WARN, "endpoint %s: event %d: refused", "ep", i);
        g_host.log(&b, SY_LOG_WARN, "endpoint %s: event %d: refused", "ep", i);
        log_limited(SY_LOG_WARN, "other %d", i);
    }
    const char *out = drain();
    assert_int_equal(count(out, "instance=a\n"), 10);
    assert_int_equal(count(out, "instance=b\n"), 10);
    assert_int_equal(count(out, "msg=\"other "), 10);
    g_clock += LOG_LIMIT_WINDOW_MS;
    log_flush_repeats(0);
    out = drain();
    assert_int_equal(count(out, "\n"), 3);
    assert_non_null(strstr(out, "ts=T level=warn msg=\"endpoint ep: event 10: refused (repeated 5 times)\" "
                                "plugin=file instance=a repeated=5\n"));
    assert_non_null(strstr(out, "ts=T level=warn msg=\"endpoint ep: event 10: refused (repeated 5 times)\" "
                                "plugin=file instance=b repeated=5\n"));
    assert_non_null(strstr(out, "ts=T level=warn msg=\"other 10 (repeated 5 times)\" repeated=5\n"));

    log_setup(SY_LOG_DEBUG, LOG_FMT_LOGFMT);
    for (int i = 0; i < 30; i++)
        g_host.log(&a, SY_LOG_DEBUG, "retry %d", i);
    assert_int_equal(count(drain(), "level=debug"), 30);
    log_setup(SY_LOG_WARN, LOG_FMT_LOGFMT);
    for (int i = 0; i < 30; i++)
        log_limited(SY_LOG_INFO, "hidden %d", i);
    log_flush_repeats(1);
    assert_string_equal(drain(), "");
    log_setup(SY_LOG_INFO, LOG_FMT_LOGFMT);
}

/* More keys than slots: the oldest key is summed up before its slot is reused. */
static void test_limiter_many_keys(void **state)
{
    (void)state;
    char msg[32];
    for (int k = 0; k < 70; k++) {
        snprintf(msg, sizeof msg, "key %d", k);
        for (int i = 0; i < LOG_LIMIT_BURST + 1; i++)
            log_fieldv_limited(SY_LOG_WARN, msg, (const log_field[]){LOG_END});
        g_clock++;
    }
    const char *out = drain();
    assert_int_equal(count(out, "repeated=1\n"), 6);
    assert_non_null(strstr(out, "msg=\"key 0 (repeated 1 times)\" repeated=1\n"));
    assert_non_null(strstr(out, "msg=\"key 5 (repeated 1 times)\" repeated=1\n"));
    assert_null(strstr(out, "msg=\"key 6 (repeated"));
    log_flush_repeats(1);
    assert_int_equal(count(drain(), "repeated=1\n"), 64);
}

int main(void)
{
    if (pipe(g_pipe) != 0 || fcntl(g_pipe[0], F_SETFL, O_NONBLOCK) != 0)
        return 1;
    fcntl(g_pipe[1], F_SETPIPE_SZ, 1 << 20);
    log_set_output(g_pipe[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_logfmt_fields, setup),
        cmocka_unit_test_setup(test_json_numbers_are_numbers, setup),
        cmocka_unit_test_setup(test_escaping_logfmt, setup),
        cmocka_unit_test_setup(test_escaping_json, setup),
        cmocka_unit_test_setup(test_long_values_are_cut, setup),
        cmocka_unit_test_setup(test_plugin_lines_carry_plugin_and_instance, setup),
        cmocka_unit_test_setup(test_limiter_window, setup),
        cmocka_unit_test_setup(test_limiter_flush, setup),
        cmocka_unit_test_setup(test_limiter_keys, setup),
        cmocka_unit_test_setup(test_limiter_many_keys, setup),
    };
    return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
