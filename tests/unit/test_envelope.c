/*
 * test_envelope.c - envelope validation, event lifetime, JSON paths.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"

#define MIB (1024u * 1024u)
#define OK_TAIL ",\"event_type\":\"job.completed\"}"

static char why[256];

/* Parses s with the daemon's defaults (1 MiB, depth 64) and drops the event. */
static env_reason parse_n(const char *s, size_t len)
{
    sy_event *ev = (sy_event *)0x1;
    env_reason r;
    memset(why, 'x', sizeof(why));
    r = envelope_parse(s, len, MIB, 64, &ev, why, sizeof(why));
    if (r == ENV_OK) {
        assert_non_null(ev);
        event_unref(ev);
    } else {
        assert_null(ev);
    }
    return r;
}

static env_reason parse(const char *s)
{
    return parse_n(s, strlen(s));
}

#define REJECTS(json, reason, text)                                                                \
    do {                                                                                           \
        assert_int_equal(parse(json), reason);                                                     \
        assert_string_equal(why, text);                                                            \
    } while (0)

static void test_reason_names(void **state)
{
    (void)state;
    assert_string_equal(envelope_reason_name(ENV_OK), "ok");
    assert_string_equal(envelope_reason_name(ENV_TOO_BIG), "too_big");
    assert_string_equal(envelope_reason_name(ENV_EMPTY), "empty");
    assert_string_equal(envelope_reason_name(ENV_BAD_UTF8), "invalid_utf8");
    assert_string_equal(envelope_reason_name(ENV_TOO_DEEP), "too_deep");
    assert_string_equal(envelope_reason_name(ENV_NOT_JSON), "not_json");
    assert_string_equal(envelope_reason_name(ENV_NOT_OBJECT), "not_object");
    assert_string_equal(envelope_reason_name(ENV_MISSING_FIELD), "missing_field");
    assert_string_equal(envelope_reason_name(ENV_WRONG_TYPE), "wrong_type");
    assert_string_equal(envelope_reason_name(ENV_BAD_VALUE), "bad_value");
    assert_string_equal(envelope_reason_name(ENV_BAD_FRAMES), "bad_frames");
    assert_string_equal(envelope_reason_name(ENV_REASON_COUNT), "unknown");
}

static void test_accept_minimal(void **state)
{
    const char *s = "{\"event_id\":\"e1\",\"event_type\":\"job\"}";
    sy_event *ev = NULL;
    (void)state;
    assert_int_equal(envelope_parse(s, strlen(s), MIB, 64, &ev, why, sizeof(why)), ENV_OK);
    assert_non_null(ev);
    assert_string_equal(ev->event_id, "e1");
    assert_string_equal(ev->event_type, "job");
    assert_null(ev->org_id);
    assert_null(ev->org_slug);
    assert_int_equal(ev->body_len, strlen(s));
    assert_string_equal(ev->body, s);
    assert_int_equal(ev->received_ms, 0);
    assert_int_equal(ev->refs, 1);
    assert_true(cJSON_IsObject(event_json(ev)));
    event_unref(ev);
}

static void test_accept_full(void **state)
{
    const char *s = "{\"event_id\":\"01J9\",\"event_type\":\"billing.invoice.paid\","
                    "\"occurred_at\":\"2026-11-25T19:09:02.123+01:00\",\"version\":2,"
                    "\"schema_ref\":\"https://x/y.json\",\"org_id\":\"acme\","
                    "\"org_slug\":\"acme-inc\",\"data\":{\"n\":1},\"extra\":[1]}";
    sy_event *ev = NULL;
    (void)state;
    assert_int_equal(envelope_parse(s, strlen(s), MIB, 64, &ev, why, sizeof(why)), ENV_OK);
    assert_string_equal(ev->event_id, "01J9");
    assert_string_equal(ev->event_type, "billing.invoice.paid");
    assert_string_equal(ev->org_id, "acme");
    assert_string_equal(ev->org_slug, "acme-inc");
    event_unref(ev);

    /* version as a string, org fields null mean absent */
    s = "{\"event_id\":\"a\",\"event_type\":\"a\",\"version\":\"1.0\",\"org_id\":null,"
        "\"org_slug\":null,\"occurred_at\":\"2026-01-01t00:00:00z\",\"data\":{}}";
    assert_int_equal(envelope_parse(s, strlen(s), MIB, 64, &ev, why, sizeof(why)), ENV_OK);
    assert_null(ev->org_id);
    assert_null(ev->org_slug);
    event_unref(ev);
}

static void test_body_preserved(void **state)
{
    /* Whitespace, escapes, key order and non-ASCII must survive byte for byte. */
    const char s[] = " {\n\t\"event_type\" : \"x\",\"z\":\"\\u00e9 \xC3\xA9 \xF0\x9D\x84\x9E\","
                     "\"event_id\":\"\\\"q\\\"\" , \"n\": 1.50e0 }\r\n"
                     "GARBAGE-AFTER-LEN";
    size_t len = sizeof(s) - 1 - strlen("GARBAGE-AFTER-LEN");
    sy_event *ev = NULL;
    (void)state;
    assert_int_equal(envelope_parse(s, len, MIB, 64, &ev, why, sizeof(why)), ENV_OK);
    assert_int_equal(ev->body_len, len);
    assert_memory_equal(ev->body, s, len);
    assert_int_equal(ev->body[len], '\0');
    assert_ptr_not_equal(ev->body, s);
    assert_string_equal(ev->event_id, "\"q\"");
    event_unref(ev);
}

static void test_empty(void **state)
{
    sy_event *ev = (sy_event *)0x1;
    (void)state;
    assert_int_equal(envelope_parse("", 0, MIB, 64, &ev, why, sizeof(why)), ENV_EMPTY);
    assert_null(ev);
    assert_string_equal(why, "empty event");
    /* why is optional */
    assert_int_equal(envelope_parse("", 0, MIB, 64, &ev, NULL, 0), ENV_EMPTY);
}

static void test_too_big(void **state)
{
    size_t len = 2 * MIB;
    char *big = malloc(len);
    (void)state;
    assert_non_null(big);
    memset(big, ' ', len); /* would be valid JSON whitespace apart from size */
    assert_int_equal(parse_n(big, len), ENV_TOO_BIG);
    assert_string_equal(why, "event larger than 1048576 bytes (2097152)");
    free(big);

    /* exactly max_bytes is allowed, one more is not; size is checked before UTF-8 */
    {
        const char *s = "{\"event_id\":\"a\",\"event_type\":\"a\"}";
        sy_event *ev = NULL;
        size_t n = strlen(s);
        assert_int_equal(envelope_parse(s, n, n, 64, &ev, why, sizeof(why)), ENV_OK);
        event_unref(ev);
        assert_int_equal(envelope_parse(s, n, n - 1, 64, &ev, why, sizeof(why)), ENV_TOO_BIG);
        assert_string_equal(why, "event larger than 32 bytes (33)");
        assert_int_equal(envelope_parse("\xFF\xFF", 2, 1, 64, &ev, why, sizeof(why)), ENV_TOO_BIG);
    }
}

static void test_bad_utf8(void **state)
{
    (void)state;
    /* offsets count from the start of the body; the prefix {"a":" is 6 bytes */
    /* overlong encodings of 2, 3 and 4 bytes */
    REJECTS("{\"a\":\"\xC0\xAF\"}", ENV_BAD_UTF8, "invalid UTF-8 at offset 6");
    REJECTS("{\"a\":\"\xC1\xBF\"}", ENV_BAD_UTF8, "invalid UTF-8 at offset 6");
    REJECTS("{\"a\":\"\xE0\x80\xAF\"}", ENV_BAD_UTF8, "invalid UTF-8 at offset 6");
    REJECTS("{\"a\":\"\xF0\x80\x80\xAF\"}", ENV_BAD_UTF8, "invalid UTF-8 at offset 6");
    /* surrogates U+D800 and U+DFFF */
    REJECTS("{\"a\":\"\xED\xA0\x80\"}", ENV_BAD_UTF8, "invalid UTF-8 at offset 6");
    REJECTS("{\"a\":\"\xED\xBF\xBF\"}", ENV_BAD_UTF8, "invalid UTF-8 at offset 6");
    /* above U+10FFFF */
    REJECTS("{\"a\":\"\xF4\x90\x80\x80\"}", ENV_BAD_UTF8, "invalid UTF-8 at offset 6");
    REJECTS("{\"a\":\"\xF5\x80\x80\x80\"}", ENV_BAD_UTF8, "invalid UTF-8 at offset 6");
    /* bytes that never occur, and a lone continuation byte */
    REJECTS("{\"a\":\"\xFF\"}", ENV_BAD_UTF8, "invalid UTF-8 at offset 6");
    REJECTS("{\"a\":\"\xFE\"}", ENV_BAD_UTF8, "invalid UTF-8 at offset 6");
    REJECTS("{\"a\":\"\x80\"}", ENV_BAD_UTF8, "invalid UTF-8 at offset 6");
    /* truncated: followed by a quote, and cut off at the end of the buffer */
    REJECTS("{\"a\":\"x\xE2\x82\"}", ENV_BAD_UTF8, "invalid UTF-8 at offset 7");
    REJECTS("{\"a\":\"\xC3", ENV_BAD_UTF8, "invalid UTF-8 at offset 6");
    REJECTS("{\"a\":\"\xF0\x9D\x84", ENV_BAD_UTF8, "invalid UTF-8 at offset 6");
    /* valid neighbours of those edges are accepted */
    assert_int_equal(parse("{\"event_id\":\"a\",\"x\":\"\xC2\x80\xDF\xBF\xE0\xA0\x80\xED\x9F\xBF\xEE\x80\x80"
                           "\xEF\xBF\xBF\xF0\x90\x80\x80\xF4\x8F\xBF\xBF\"" OK_TAIL),
                     ENV_OK);
}

static void test_nul_byte(void **state)
{
    const char s[] = "{\"event_id\":\"a\0b\"" OK_TAIL;
    (void)state;
    assert_int_equal(parse_n(s, sizeof(s) - 1), ENV_BAD_UTF8);
    assert_string_equal(why, "NUL byte at offset 14");
    assert_int_equal(parse_n("\0", 1), ENV_BAD_UTF8);
    assert_string_equal(why, "NUL byte at offset 0");
}

static void test_too_deep(void **state)
{
    size_t depth = 10000, i;
    char *s = malloc(2 * depth + 1);
    (void)state;
    assert_non_null(s);
    for (i = 0; i < depth; i++) {
        s[i] = '[';
        s[depth + i] = ']';
    }
    s[2 * depth] = '\0';
    REJECTS(s, ENV_TOO_DEEP, "nesting deeper than 64");
    /* unbalanced, never closed: still rejected by the scan, not by cJSON */
    s[depth] = '\0';
    REJECTS(s, ENV_TOO_DEEP, "nesting deeper than 64");
    free(s);
}

static void test_depth_limit_edges(void **state)
{
    char buf[512];
    sy_event *ev = NULL;
    (void)state;
    /* the envelope itself is depth 1, data depth 2, data.a depth 3 */
    strcpy(buf, "{\"event_id\":\"a\",\"event_type\":\"a\",\"data\":{\"a\":[]}}");
    assert_int_equal(envelope_parse(buf, strlen(buf), MIB, 3, &ev, why, sizeof(why)), ENV_OK);
    event_unref(ev);
    assert_int_equal(envelope_parse(buf, strlen(buf), MIB, 2, &ev, why, sizeof(why)), ENV_TOO_DEEP);
    assert_string_equal(why, "nesting deeper than 2");
    /* brackets in strings, also after escaped quotes and backslashes, do not count */
    strcpy(buf,
           "{\"event_id\":\"[[{\\\"[{\\\\\",\"event_type\":\"a\",\"x\":\"\\\\\",\"y\":\"{[\"}");
    assert_int_equal(envelope_parse(buf, strlen(buf), MIB, 1, &ev, why, sizeof(why)), ENV_OK);
    assert_string_equal(ev->event_id, "[[{\"[{\\");
    event_unref(ev);
}

static void test_not_json(void **state)
{
    (void)state;
    REJECTS("{\"event_id\":}", ENV_NOT_JSON, "not JSON: parse error near offset 12");
    REJECTS("{\"event_id\":\"a\",\"event_type\":\"a\"} x", ENV_NOT_JSON,
            "not JSON: parse error near offset 34");
    REJECTS("{\"event_id\":\"a\",\"event_type\":\"a\"}{}", ENV_NOT_JSON,
            "not JSON: parse error near offset 33");
    REJECTS("   ", ENV_NOT_JSON, "not JSON: parse error near offset 3");
    REJECTS("{'a':1}", ENV_NOT_JSON, "not JSON: parse error near offset 1");
    /* RFC 8259 strictly: no leading zeros, trailing commas or raw control characters */
    REJECTS("{\"event_id\":\"a\",\"n\":01" OK_TAIL, ENV_NOT_JSON,
            "not JSON: parse error near offset 21");
    REJECTS("{\"event_id\":\"a\",\"l\":[1,]" OK_TAIL, ENV_NOT_JSON,
            "not JSON: parse error near offset 23");
    REJECTS("{\"event_id\":\"a\tb\"" OK_TAIL, ENV_NOT_JSON,
            "not JSON: parse error near offset 14");
    REJECTS("{\"event_id\":\"a\",\"s\":\"\\udc00\"" OK_TAIL, ENV_NOT_JSON,
            "not JSON: parse error near offset 21");
    /* broken and too deep at once: the depth is reported */
    char deep[200];
    memset(deep, '{', 100);
    deep[100] = '\0';
    REJECTS(deep, ENV_TOO_DEEP, "nesting deeper than 64");
    /* a UTF-8 byte order mark may open the text; the body keeps it */
    assert_int_equal(parse("\xEF\xBB\xBF{\"event_id\":\"a\",\"event_type\":\"a\"}"), ENV_OK);
    REJECTS("\xEF\xBB{}", ENV_BAD_UTF8, "invalid UTF-8 at offset 0");
    /* trailing whitespace is fine */
    assert_int_equal(parse("{\"event_id\":\"a\",\"event_type\":\"a\"} \n\t\r "), ENV_OK);
}

static void test_not_object(void **state)
{
    (void)state;
    REJECTS("[1,2]", ENV_NOT_OBJECT, "expected a JSON object, got array");
    REJECTS("\"job\"", ENV_NOT_OBJECT, "expected a JSON object, got string");
    REJECTS("42", ENV_NOT_OBJECT, "expected a JSON object, got number");
    REJECTS("null", ENV_NOT_OBJECT, "expected a JSON object, got null");
}

static void test_missing_field(void **state)
{
    (void)state;
    REJECTS("{\"event_type\":\"a\"}", ENV_MISSING_FIELD, "event_id: missing");
    REJECTS("{\"event_id\":\"a\"}", ENV_MISSING_FIELD, "event_type: missing");
    REJECTS("{}", ENV_MISSING_FIELD, "event_id: missing");
    /* keys are case-sensitive */
    REJECTS("{\"Event_ID\":\"a\",\"event_type\":\"a\"}", ENV_MISSING_FIELD, "event_id: missing");
    /* null is not a value for a required field */
    REJECTS("{\"event_id\":null,\"event_type\":\"a\"}", ENV_WRONG_TYPE,
            "event_id: expected a string, got null");
}

static void test_wrong_type(void **state)
{
    (void)state;
    REJECTS("{\"event_id\":7" OK_TAIL, ENV_WRONG_TYPE, "event_id: expected a string, got number");
    REJECTS("{\"event_id\":\"a\",\"event_type\":[\"a\"]}", ENV_WRONG_TYPE,
            "event_type: expected a string, got array");
    REJECTS("{\"event_id\":\"a\",\"occurred_at\":1700000000" OK_TAIL, ENV_WRONG_TYPE,
            "occurred_at: expected a string, got number");
    REJECTS("{\"event_id\":\"a\",\"version\":true" OK_TAIL, ENV_WRONG_TYPE,
            "version: expected a string or a number, got boolean");
    REJECTS("{\"event_id\":\"a\",\"schema_ref\":{}" OK_TAIL, ENV_WRONG_TYPE,
            "schema_ref: expected a string, got object");
    REJECTS("{\"event_id\":\"a\",\"org_id\":5" OK_TAIL, ENV_WRONG_TYPE,
            "org_id: expected a string, got number");
    REJECTS("{\"event_id\":\"a\",\"org_slug\":false" OK_TAIL, ENV_WRONG_TYPE,
            "org_slug: expected a string, got boolean");
    REJECTS("{\"event_id\":\"a\",\"data\":[1]" OK_TAIL, ENV_WRONG_TYPE,
            "data: expected an object, got array");
    REJECTS("{\"event_id\":\"a\",\"data\":null" OK_TAIL, ENV_WRONG_TYPE,
            "data: expected an object, got null");
}

static void test_bad_value(void **state)
{
    char buf[700];
    (void)state;
    REJECTS("{\"event_id\":\"\"" OK_TAIL, ENV_BAD_VALUE, "event_id: empty");
    snprintf(buf, sizeof(buf), "{\"event_id\":\"%0256d\"" OK_TAIL, 0);
    REJECTS(buf, ENV_BAD_VALUE, "event_id: longer than 255 bytes");
    snprintf(buf, sizeof(buf), "{\"event_id\":\"%0255d\"" OK_TAIL, 0);
    assert_int_equal(parse(buf), ENV_OK);

    REJECTS("{\"event_id\":\"a\",\"event_type\":\"Job Completed\"}", ENV_BAD_VALUE,
            "event_type: \"Job Completed\" does not match [a-z0-9_-]+(.[a-z0-9_-]+)*");
    REJECTS("{\"event_id\":\"a\",\"event_type\":\"\"}", ENV_BAD_VALUE,
            "event_type: \"\" does not match [a-z0-9_-]+(.[a-z0-9_-]+)*");
    REJECTS("{\"event_id\":\"a\",\"event_type\":\"job.\"}", ENV_BAD_VALUE,
            "event_type: \"job.\" does not match [a-z0-9_-]+(.[a-z0-9_-]+)*");
    snprintf(buf, sizeof(buf), "{\"event_id\":\"a\",\"event_type\":\"%0256d\"}", 0);
    REJECTS(buf, ENV_BAD_VALUE, "event_type: longer than 255 bytes");

    REJECTS("{\"event_id\":\"a\",\"occurred_at\":\"2026-02-30T00:00:00Z\"" OK_TAIL, ENV_BAD_VALUE,
            "occurred_at: not an RFC 3339 date-time");
    REJECTS("{\"event_id\":\"a\",\"org_id\":\"\"" OK_TAIL, ENV_BAD_VALUE, "org_id: empty");
    snprintf(buf, sizeof(buf), "{\"event_id\":\"a\",\"org_slug\":\"%0256d\"" OK_TAIL, 0);
    REJECTS(buf, ENV_BAD_VALUE, "org_slug: longer than 255 bytes");
}

static void test_event_id_alphabet(void **state)
{
    char buf[400];
    (void)state;
    /* Every printable ASCII byte but the space, at the longest length. */
    char id[256];
    size_t n = 0;
    for (int c = 0x21; c <= 0x7E && n < 255; c++)
        if (c != '"' && c != '\\')
            id[n++] = (char)c;
    while (n < 255)
        id[n++] = '~';
    id[n] = '\0';
    snprintf(buf, sizeof(buf), "{\"event_id\":\"%s\\\"\\\\\"" OK_TAIL, id + 2);
    assert_int_equal(parse(buf), ENV_OK);
    REJECTS("{\"event_id\":\"caf\xC3\xA9\"" OK_TAIL, ENV_BAD_VALUE,
            "event_id: byte 3 is 0xC3; only printable ASCII without spaces (0x21-0x7E) is "
            "allowed");
    REJECTS("{\"event_id\":\"caf\\u00e9\"" OK_TAIL, ENV_BAD_VALUE,
            "event_id: byte 3 is 0xC3; only printable ASCII without spaces (0x21-0x7E) is "
            "allowed");
    REJECTS("{\"event_id\":\"a b\"" OK_TAIL, ENV_BAD_VALUE,
            "event_id: byte 1 is 0x20; only printable ASCII without spaces (0x21-0x7E) is "
            "allowed");
    REJECTS("{\"event_id\":\"ab\\t\"" OK_TAIL, ENV_BAD_VALUE,
            "event_id: byte 2 is 0x09; only printable ASCII without spaces (0x21-0x7E) is "
            "allowed");
    REJECTS("{\"event_id\":\"\\u007f\"" OK_TAIL, ENV_BAD_VALUE,
            "event_id: byte 0 is 0x7F; only printable ASCII without spaces (0x21-0x7E) is "
            "allowed");
    REJECTS("{\"event_id\":\"id\\r\\nX-Evil: 1\"" OK_TAIL, ENV_BAD_VALUE,
            "event_id: byte 2 is 0x0D; only printable ASCII without spaces (0x21-0x7E) is "
            "allowed");
    /* Escapes that decode into the alphabet are fine: the decoded id is what travels. */
    assert_int_equal(parse("{\"event_id\":\"\\u0041\\/b\"" OK_TAIL), ENV_OK);
    /* Other identifiers keep UTF-8: only the id goes into headers. */
    assert_int_equal(parse("{\"event_id\":\"a\",\"org_id\":\"caf\xC3\xA9 x\"" OK_TAIL),
                     ENV_OK);
}

static void test_duplicate_keys(void **state)
{
    (void)state;
    REJECTS("{\"event_id\":\"a\",\"event_id\":\"b\"" OK_TAIL, ENV_BAD_VALUE,
            "event_id: duplicate key");
    REJECTS("{\"event_id\":\"a\",\"event_type\":\"a\",\"event_type\":\"b\"}", ENV_BAD_VALUE,
            "event_type: duplicate key");
    REJECTS("{\"event_id\":\"a\",\"org_id\":\"x\",\"org_id\":null" OK_TAIL, ENV_BAD_VALUE,
            "org_id: duplicate key");
    REJECTS("{\"event_id\":\"a\",\"data\":{},\"data\":{}" OK_TAIL, ENV_BAD_VALUE,
            "data: duplicate key");
    /* an escaped key spelling is the same key once decoded */
    REJECTS("{\"event_id\":\"a\",\"event\\u005fid\":\"b\"" OK_TAIL, ENV_BAD_VALUE,
            "event_id: duplicate key");
    /* duplicates of fields we do not own are the publisher's business */
    assert_int_equal(parse("{\"event_id\":\"a\",\"x\":1,\"x\":2" OK_TAIL), ENV_OK);
}

static void test_escaped_nul(void **state)
{
    (void)state;
    /* cJSON would cut "a\u0000b" to "a": we must not route on a different id than receivers see */
    REJECTS("{\"event_id\":\"a\\u0000b\"" OK_TAIL, ENV_BAD_VALUE,
            "top-level string has an escaped NUL (\\u0000) at offset 14");
    REJECTS("{\"event_id\\u0000x\":\"a\"" OK_TAIL, ENV_BAD_VALUE,
            "top-level string has an escaped NUL (\\u0000) at offset 10");
    /* inside data it is just data; an escaped backslash before u0000 is no escape */
    assert_int_equal(parse("{\"event_id\":\"a\",\"data\":{\"s\":\"\\u0000\"}" OK_TAIL), ENV_OK);
    assert_int_equal(parse("{\"event_id\":\"a\\\\u0000\"" OK_TAIL), ENV_OK);
}

/* Escaped envelope strings are decoded; the tree is built on first use and shared. */
static void test_decoded_fields_and_lazy_tree(void **state)
{
    (void)state;
    static const char ev1[] = "{\"event_id\":\"ev\\u002d1\",\"event_type\":\"job\\u002ecompleted\","
                              "\"org_id\":\"\\u00e9quipe\",\"org_slug\":null,\"data\":{\"n\":[1,{\"k\":\"v\"}]}}";
    sy_event *ev = NULL;
    assert_int_equal(envelope_parse(ev1, strlen(ev1), MIB, 64, &ev, why, sizeof why), ENV_OK);
    assert_string_equal(ev->event_id, "ev-1");
    assert_string_equal(ev->event_type, "job.completed");
    assert_string_equal(ev->org_id, "\xC3\xA9quipe");
    assert_null(ev->org_slug);
    assert_string_equal(ev->body, ev1);
    const cJSON *t = event_json(ev);
    assert_non_null(t);
    assert_ptr_equal(event_json(ev), t); /* built once */
    char buf[32];
    assert_int_equal(json_path_text(t, "data.n.1.k", buf, sizeof buf), 1);
    assert_string_equal(buf, "v");
    event_unref(ev);

    /* an id longer than 255 bytes once decoded, however it is spelled */
    char big[2048];
    size_t n = (size_t)snprintf(big, sizeof big, "{\"event_id\":\"");
    for (int i = 0; i < 256; i++)
        n += (size_t)snprintf(big + n, sizeof big - n, "\\u0041");
    snprintf(big + n, sizeof big - n, "\"" OK_TAIL);
    REJECTS(big, ENV_BAD_VALUE, "event_id: longer than 255 bytes");

    /* After a byte order mark the lazy tree still builds (cJSON skips the mark too). */
    static const char ev2[] = "\xEF\xBB\xBF{\"event_id\":\"b\",\"event_type\":\"a\",\"data\":{}}";
    assert_int_equal(envelope_parse(ev2, strlen(ev2), MIB, 64, &ev, why, sizeof why), ENV_OK);
    t = event_json(ev);
    assert_non_null(t);
    assert_int_equal(json_path_text(t, "event_id", buf, sizeof buf), 1);
    assert_string_equal(buf, "b");
    event_unref(ev);
}

/* More top-level members than the scanner lists: the same checks, through the tree. */
static void test_many_members(void **state)
{
    (void)state;
    char buf[4096];
    size_t n = (size_t)snprintf(buf, sizeof buf, "{");
    for (int i = 0; i < 70; i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "\"k%d\":%d,", i, i);
    snprintf(buf + n, sizeof buf - n, "\"event_id\":\"late\"" OK_TAIL);
    sy_event *ev = NULL;
    assert_int_equal(envelope_parse(buf, strlen(buf), MIB, 64, &ev, why, sizeof why), ENV_OK);
    assert_string_equal(ev->event_id, "late");
    assert_string_equal(ev->event_type, "job.completed");
    event_unref(ev);
    snprintf(buf + n, sizeof buf - n, "\"event_id\":\"a\",\"event_id\":\"b\"" OK_TAIL);
    REJECTS(buf, ENV_BAD_VALUE, "event_id: duplicate key");
    /* n = 611: the escape is at 611 + strlen("\"event_id\":\"a\",\"s\":\"x") */
    snprintf(buf + n, sizeof buf - n, "\"event_id\":\"a\",\"s\":\"x\\u0000\"" OK_TAIL);
    REJECTS(buf, ENV_BAD_VALUE, "top-level string has an escaped NUL (\\u0000) at offset 632");
    snprintf(buf + n, sizeof buf - n, "\"event_id\":\"a\",\"d\":{\"s\":\"x\\u0000\"}" OK_TAIL);
    assert_int_equal(parse(buf), ENV_OK);
}

static void *ref_worker(void *arg)
{
    sy_event *ev = arg;
    for (int i = 0; i < 10000; i++) {
        event_ref(ev);
        event_unref(ev);
    }
    return NULL;
}

static void test_refcount(void **state)
{
    const char *s = "{\"event_id\":\"a\",\"event_type\":\"a\"}";
    sy_event *ev = NULL;
    pthread_t t[4];
    (void)state;
    assert_int_equal(envelope_parse(s, strlen(s), MIB, 64, &ev, NULL, 0), ENV_OK);
    event_ref(ev);
    event_ref(ev);
    assert_int_equal(ev->refs, 3);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, ref_worker, ev), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(ev->refs, 3);
    event_unref(ev);
    event_unref(ev);
    assert_int_equal(ev->refs, 1);
    event_unref(ev); /* frees; ASan / valgrind report any leak or double free */
    event_unref(NULL);
}

static void test_type_valid(void **state)
{
    (void)state;
    assert_true(envelope_type_valid("job"));
    assert_true(envelope_type_valid("job.completed"));
    assert_true(envelope_type_valid("a-b_c.0.x9"));
    assert_false(envelope_type_valid(""));
    assert_false(envelope_type_valid(NULL));
    assert_false(envelope_type_valid("Job"));
    assert_false(envelope_type_valid(".job"));
    assert_false(envelope_type_valid("job."));
    assert_false(envelope_type_valid("job..x"));
    assert_false(envelope_type_valid("job.*"));
    assert_false(envelope_type_valid("job x"));
}

static void test_rfc3339(void **state)
{
    static const char *const good[] = {
        "2026-11-25T19:09:02Z",      "2026-11-25t19:09:02z",
        "2026-11-25T19:09:02+01:00", "2026-11-25T19:09:02-23:59",
        "2026-11-25T19:09:02.1Z",    "2026-11-25T19:09:02.123456789+05:30",
        "2024-02-29T00:00:00Z",      "2000-02-29T00:00:00Z",
        "2016-12-31T23:59:60Z",      "0000-01-01T00:00:00Z",
        "2026-01-31T00:00:00Z",      "2026-04-30T00:00:00Z",
    };
    static const char *const bad[] = {
        "", "2026-11-25", "2026-11-25T19:09:02", "2026-11-25 19:09:02Z", "2026-11-25T19:09Z",
        "2026-13-01T00:00:00Z", "2026-00-01T00:00:00Z", "2026-01-00T00:00:00Z",
        "2026-01-32T00:00:00Z", "2026-04-31T00:00:00Z", "2025-02-29T00:00:00Z",
        "1900-02-29T00:00:00Z", "2026-01-01T24:00:00Z", "2026-01-01T00:60:00Z",
        "2026-01-01T00:00:61Z", "2026-01-01T00:00:00.Z", "2026-01-01T00:00:00+24:00",
        "2026-01-01T00:00:00+01:60", "2026-01-01T00:00:00+0100", "2026-01-01T00:00:00Z ",
        "2026-01-01T00:00:00+01:00x", "26-01-01T00:00:00Z", "2026-1-01T00:00:00Z",
        "2026/01/01T00:00:00Z", "2026-01-01T00:00:00GMT", "+2026-01-01T00:00:00Z",
        "2026-01-01T0a:00:00Z",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (!envelope_rfc3339_valid(good[i]))
            fail_msg("rejected good date-time %s", good[i]);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (envelope_rfc3339_valid(bad[i]))
            fail_msg("accepted bad date-time \"%s\"", bad[i]);
    assert_false(envelope_rfc3339_valid(NULL));
}

static void test_json_path(void **state)
{
    cJSON *j = cJSON_Parse("{\"data\":{\"job_id\":\"j1\",\"items\":[{\"n\":1},{\"n\":2}],"
                           "\"0\":\"zero\",\"nul\":null},\"a.b\":1}");
    const cJSON *v;
    (void)state;
    assert_non_null(j);
    assert_ptr_equal(json_path(j, ""), j);
    assert_string_equal(json_path(j, "data.job_id")->valuestring, "j1");
    assert_true(cJSON_IsArray(json_path(j, "data.items")));
    v = json_path(j, "data.items.1.n");
    assert_non_null(v);
    assert_int_equal(v->valueint, 2);
    assert_int_equal(json_path(j, "data.items.0.n")->valueint, 1);
    assert_string_equal(json_path(j, "data.0")->valuestring, "zero"); /* numeric key on an object */
    assert_true(cJSON_IsNull(json_path(j, "data.nul")));
    assert_null(json_path(j, "data.items.2"));
    assert_null(json_path(j, "data.items.01"));
    assert_null(json_path(j, "data.items.-1"));
    assert_null(json_path(j, "data.items.x"));
    assert_null(json_path(j, "data.job_id.x"));
    assert_null(json_path(j, "data.missing"));
    assert_null(json_path(j, "data."));
    assert_null(json_path(j, "data..job_id"));
    assert_null(json_path(j, "dat"));
    assert_null(json_path(j, "a.b")); /* dots always split */
    assert_null(json_path(NULL, "data"));
    cJSON_Delete(j);
}

static void test_json_path_text(void **state)
{
    cJSON *j = cJSON_Parse("{\"s\":\"hello\",\"i\":42,\"neg\":-7,\"f\":1.5,\"t\":true,\"f0\":false,"
                           "\"z\":null,\"o\":{\"a\": [1, \"x\"] },\"big\":12345678901}");
    char buf[64];
    (void)state;
    assert_int_equal(json_path_text(j, "s", buf, sizeof(buf)), 5);
    assert_string_equal(buf, "hello");
    assert_int_equal(json_path_text(j, "i", buf, sizeof(buf)), 2);
    assert_string_equal(buf, "42");
    json_path_text(j, "neg", buf, sizeof(buf));
    assert_string_equal(buf, "-7");
    json_path_text(j, "f", buf, sizeof(buf));
    assert_string_equal(buf, "1.5");
    json_path_text(j, "big", buf, sizeof(buf));
    assert_string_equal(buf, "12345678901");
    json_path_text(j, "t", buf, sizeof(buf));
    assert_string_equal(buf, "true");
    json_path_text(j, "f0", buf, sizeof(buf));
    assert_string_equal(buf, "false");
    json_path_text(j, "z", buf, sizeof(buf));
    assert_string_equal(buf, "null");
    assert_int_equal(json_path_text(j, "o", buf, sizeof(buf)), 13);
    assert_string_equal(buf, "{\"a\":[1,\"x\"]}");
    /* truncation keeps the NUL and still reports the full length */
    assert_int_equal(json_path_text(j, "s", buf, 3), 5);
    assert_string_equal(buf, "he");
    assert_int_equal(json_path_text(j, "s", NULL, 0), 5);
    memset(buf, 'q', sizeof(buf));
    assert_int_equal(json_path_text(j, "missing", buf, sizeof(buf)), -1);
    cJSON_Delete(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reason_names),   cmocka_unit_test(test_accept_minimal),
        cmocka_unit_test(test_accept_full),    cmocka_unit_test(test_body_preserved),
        cmocka_unit_test(test_empty),          cmocka_unit_test(test_too_big),
        cmocka_unit_test(test_bad_utf8),       cmocka_unit_test(test_nul_byte),
        cmocka_unit_test(test_too_deep),       cmocka_unit_test(test_depth_limit_edges),
        cmocka_unit_test(test_not_json),       cmocka_unit_test(test_not_object),
        cmocka_unit_test(test_missing_field),  cmocka_unit_test(test_wrong_type),
        cmocka_unit_test(test_bad_value),
        cmocka_unit_test(test_event_id_alphabet),      cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_escaped_nul),    cmocka_unit_test(test_refcount),
        cmocka_unit_test(test_decoded_fields_and_lazy_tree),
        cmocka_unit_test(test_many_members),
        cmocka_unit_test(test_type_valid),     cmocka_unit_test(test_rfc3339),
        cmocka_unit_test(test_json_path),      cmocka_unit_test(test_json_path_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
