/*
 * test_webhook_form.c - the legacy form sink's pure parts: form encoding,
 * the body built from an event through the field and value maps, the
 * outcome table, and endpoint settings (token in the URL, map checks).
 * The plugin's sources are compiled in; event fields come from a fake
 * sy_host.field over a small table.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../../plugins/_http/http_opts.c"
#include "../../plugins/_http/http_util.c"
#include "../../plugins/form/form_body.c"
#include "../../plugins/form/form_conf.c"
#include "../../plugins/form/form_outcome.c"

/* ------------------------------------------------------------------ */
/* A fake event                                                        */
/* ------------------------------------------------------------------ */

static const char *const *g_fields; /* path, value, path, value, ..., NULL */
static int g_calls;

/*
 * As sy_host.field: value truncated to buflen, full length in *len. The
 * value NULL stands for JSON null; every other value is a string.
 */
static int fake_field(const sy_delivery *d, const char *path, char *buf, size_t buflen,
                      sy_field_kind *kind, size_t *len)
{
    (void)d;
    g_calls++;
    for (size_t i = 0; g_fields[2 * i]; i++)
        if (!strcmp(g_fields[2 * i], path)) {
            const char *v = g_fields[2 * i + 1];
            int n = snprintf(buf, buflen, "%s", v ? v : "null");
            if (kind)
                *kind = v ? SY_FIELD_STRING : SY_FIELD_NULL;
            if (len)
                *len = (size_t)n;
            return 0;
        }
    return -1;
}

static form_settings settings(const char *const *fields, const char *const *values,
                              const char *missing)
{
    form_ep_conf c;
    memset(&c, 0, sizeof c);
    c.url = "https://example.com/notify";
    c.token_param = "token";
    c.fields = fields;
    c.value_map = values;
    c.missing = missing;
    form_settings s;
    char err[200];
    assert_int_equal(form_settings_parse(&c, NULL, 0, 1, &s, err, sizeof err), 0);
    return s;
}

static char *body_of(const form_settings *s, size_t *len)
{
    sy_delivery d;
    memset(&d, 0, sizeof d);
    char *b = form_body_build(s, &d, fake_field, len);
    assert_non_null(b);
    assert_int_equal(strlen(b), *len);
    return b;
}

/* ------------------------------------------------------------------ */
/* Tests                                                               */
/* ------------------------------------------------------------------ */

static void encoding(void **state)
{
    (void)state;
    char out[128];
    const char in[] = "a b&c=d/\xc3\xa9*-._~+%\n";
    size_t n = form_encode(out, in, strlen(in));
    assert_string_equal(out, "a+b%26c%3Dd%2F%C3%A9*-._%7E%2B%25%0A");
    assert_int_equal(n, strlen(out));
    assert_int_equal(form_encode(out, "", 0), 0);
    assert_string_equal(out, "");
    /* NUL bytes inside a value are encoded, not a terminator. */
    assert_int_equal(form_encode(out, "a\0b", 3), 5);
    assert_string_equal(out, "a%00b");
}

static void web_scraper_cloud_shape(void **state)
{
    (void)state;
    const char *fields[] = {"scrapingjob_id", "data.job_id", "status", "data.status",
                            "sitemap_id", "data.sitemap_id", "sitemap_name",
                            "data.sitemap_name", "custom_id", "data.custom_id", NULL};
    const char *values[] = {"status:succeeded", "finished", NULL};
    const char *event[] = {"data.job_id", "j 1&x", "data.status", "succeeded",
                           "data.sitemap_id", "7", "data.sitemap_name", "shop/\xc3\xbc",
                           "data.custom_id", NULL, NULL};
    g_fields = event;
    form_settings s = settings(fields, values, "empty");
    size_t len;
    char *b = body_of(&s, &len);
    assert_string_equal(b, "scrapingjob_id=j+1%26x&status=finished&sitemap_id=7"
                           "&sitemap_name=shop%2F%C3%BC&custom_id=");
    free(b);
    /* Value maps match whole values only, and only their own field. */
    const char *event2[] = {"data.job_id", "succeeded", "data.status", "succeeded!", NULL};
    g_fields = event2;
    b = body_of(&s, &len);
    assert_string_equal(b, "scrapingjob_id=succeeded&status=succeeded%21&sitemap_id="
                           "&sitemap_name=&custom_id=");
    free(b);
    /* The string "null" is a value like any other; only JSON null is missing. */
    const char *event3[] = {"data.job_id", "null", "data.custom_id", NULL, NULL};
    g_fields = event3;
    b = body_of(&s, &len);
    assert_string_equal(b, "scrapingjob_id=null&status=&sitemap_id=&sitemap_name=&custom_id=");
    free(b);
    form_settings_clear(&s);
}

static void omit_missing_and_long_values(void **state)
{
    (void)state;
    static char big[3000];
    memset(big, 'x', sizeof big - 1);
    big[100] = ' ';
    const char *fields[] = {"a", "data.a", "gone", "data.none", "nul", "data.nul",
                            "big", "data.big", NULL};
    const char *event[] = {"data.a", "1", "data.nul", NULL, "data.big", big, NULL};
    g_fields = event;
    form_settings s = settings(fields, NULL, "omit");
    size_t len;
    g_calls = 0;
    char *b = body_of(&s, &len);
    char want[4000];
    snprintf(want, sizeof want, "a=1&big=%.100s+%s", big, big + 101);
    assert_string_equal(b, want);
    assert_int_equal(g_calls, 5); /* the long value is read a second time, in full */
    free(b);
    form_settings_clear(&s);
    /* Nothing present: an empty body, not an error. */
    const char *none[] = {NULL};
    g_fields = none;
    s = settings(fields, NULL, "omit");
    b = body_of(&s, &len);
    assert_string_equal(b, "");
    free(b);
    form_settings_clear(&s);
}

static void outcomes(void **state)
{
    (void)state;
    struct {
        int status;
        sy_result want;
    } rows[] = {{200, SY_OK},    {201, SY_OK},    {204, SY_OK},    {100, SY_RETRY},
                {300, SY_RETRY}, {302, SY_RETRY}, {304, SY_RETRY}, {400, SY_RETRY},
                {404, SY_RETRY}, {410, SY_RETRY}, {429, SY_RETRY}, {500, SY_RETRY},
                {503, SY_RETRY}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        http_result r;
        memset(&r, 0, sizeof r);
        r.kind = HTTP_RESPONSE;
        r.status = rows[i].status;
        r.retry_after_ms = 9000; /* the legacy schedule rules: ignored */
        sy_outcome o = SY_OUTCOME_INIT;
        form_outcome(&r, &o);
        char want[32];
        snprintf(want, sizeof want, "HTTP %d", rows[i].status);
        assert_int_equal(o.result, rows[i].want);
        assert_int_equal(o.status, rows[i].status);
        assert_int_equal(o.retry_after_ms, 0);
        assert_string_equal(o.detail, want);
    }
    http_kind kinds[] = {HTTP_TIMEOUT, HTTP_DNS, HTTP_CONNECT, HTTP_TLS, HTTP_OTHER,
                         HTTP_SHUTDOWN, HTTP_REFUSED};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        http_result r;
        memset(&r, 0, sizeof r);
        r.kind = kinds[i];
        strcpy(r.error, "it went wrong");
        sy_outcome o = SY_OUTCOME_INIT;
        form_outcome(&r, &o);
        assert_int_equal(o.result, kinds[i] == HTTP_REFUSED ? SY_FAIL : SY_RETRY);
        assert_int_equal(o.status, 0);
        assert_string_equal(o.detail, "it went wrong");
    }
}

static void token_goes_into_the_query(void **state)
{
    (void)state;
    const char *fields[] = {"a", "data.a", NULL};
    struct {
        const char *url, *param, *token, *want;
    } rows[] = {
        {"https://example.com/n", "token", "abc", "https://example.com/n?token=abc"},
        {"https://example.com/n?x=1", "token", "s3cr&t \xc3\xa9",
         "https://example.com/n?x=1&token=s3cr%26t+%C3%A9"},
        {"https://example.com/n?x=1#frag", "api_key", "k", "https://example.com/n?x=1&api_key=k#frag"},
        {"https://example.com/n?", "t", "1", "https://example.com/n?t=1"},
        {"https://example.com/n?a=1&", "t", "1", "https://example.com/n?a=1&t=1"},
        {"https://example.com/n#a?b", "t", "1", "https://example.com/n?t=1#a?b"},
        {"http://127.0.0.1:9/n", "t", NULL, "http://127.0.0.1:9/n"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        form_ep_conf c;
        memset(&c, 0, sizeof c);
        c.url = rows[i].url;
        c.token = rows[i].token;
        c.token_param = rows[i].param;
        c.fields = fields;
        c.missing = "empty";
        form_settings s;
        char err[200];
        assert_int_equal(form_settings_parse(&c, NULL, 0, 0, &s, err, sizeof err), 0);
        assert_string_equal(s.url, rows[i].want);
        form_settings_clear(&s);
    }
}

static void settings_errors(void **state)
{
    (void)state;
    const char *fields[] = {"status", "data.status", NULL};
    const char *wrong_field[] = {"state:failed", "error", NULL};
    const char *no_colon[] = {"failed", "error", NULL};
    const char *empty_name[] = {"", "data.x", NULL};
    const char *empty_map[] = {NULL};
    struct {
        const char *url, *token, *param, *missing;
        const char *const *fields, *const *values;
        int values_given;
        const char *says;
    } rows[] = {
        {"https://e.com/", "hunter2", "tok en", "empty", fields, NULL, 0,
         "token_param: use letters, digits, '-', '.', '_' or '~'"},
        {"https://e.com/", "hunter2", "token", "skip", fields, NULL, 0,
         "missing: \"skip\" is not \"empty\" or \"omit\""},
        {"https://e.com/", "hunter2", "token", "empty", empty_map, NULL, 0,
         "fields: the map is empty: nothing would be sent"},
        {"https://e.com/", "hunter2", "token", "empty", empty_name, NULL, 0,
         "fields: form field names and event paths must not be empty"},
        {"https://e.com/", "hunter2", "token", "empty", fields, wrong_field, 1,
         "value_map.state:failed: state is not a field of \"fields\""},
        {"https://e.com/", "hunter2", "token", "empty", fields, no_colon, 1,
         "value_map.failed: keys are \"<form field>:<event value>\""},
        {"e.com/x?token=hunter2", "hunter2", "token", "empty", fields, NULL, 0,
         "url: not an absolute http:// or https:// URL"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        form_ep_conf c;
        memset(&c, 0, sizeof c);
        c.url = rows[i].url;
        c.token = rows[i].token;
        c.token_param = rows[i].param;
        c.missing = rows[i].missing;
        c.fields = rows[i].fields;
        c.value_map = rows[i].values;
        form_settings s;
        char err[200] = "";
        assert_int_equal(form_settings_parse(&c, NULL, 0, rows[i].values_given, &s, err,
                                             sizeof err), -1);
        assert_string_equal(err, rows[i].says);
        assert_null(strstr(err, "hunter2"));
    }
    /* A value map entry for another field map is ignored when it is the default. */
    form_ep_conf c;
    memset(&c, 0, sizeof c);
    c.url = "https://e.com/";
    c.fields = fields;
    c.value_map = wrong_field;
    form_settings s;
    char err[200];
    assert_int_equal(form_settings_parse(&c, NULL, 0, 0, &s, err, sizeof err), 0);
    assert_int_equal(s.fields[0].nvalues, 0);
    form_settings_clear(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(encoding),
        cmocka_unit_test(web_scraper_cloud_shape),
        cmocka_unit_test(omit_missing_and_long_values),
        cmocka_unit_test(outcomes),
        cmocka_unit_test(token_goes_into_the_query),
        cmocka_unit_test(settings_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
