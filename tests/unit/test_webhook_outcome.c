/*
 * test_webhook_outcome.c - the webhook sink's outcome table, row by row,
 * and the parsing it relies on: permanent status sets, Retry-After (seconds
 * and the three HTTP-date forms), response header lines, endpoint settings
 * (secrets, URLs, header names, outbound options), the shared custom-header
 * check.
 *
 * The plugin's sources are compiled in: these are its internal functions,
 * which the .so does not export.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../../plugins/_http/http_opts.c"
#include "../../plugins/_http/http_redact.c"
#include "../../plugins/_http/http_util.c"
#include "../../plugins/webhook/wh_conf.c"
#include "../../plugins/webhook/wh_outcome.c"

#define S1 "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define S2 "whsec_c2Vjb25kLXNlY3JldC1mb3Itcm90YXRpb24="

/* ------------------------------------------------------------------ */
/* The outcome table                                                   */
/* ------------------------------------------------------------------ */

static http_result response(int status)
{
    http_result r;
    memset(&r, 0, sizeof r);
    r.kind = HTTP_RESPONSE;
    r.status = status;
    r.retry_after_ms = -1;
    return r;
}

static sy_outcome classify(const http_result *r, const char *permanent, int *gone)
{
    wh_status_set set;
    char err[200];
    assert_int_equal(wh_status_set_parse(permanent, &set, err, sizeof err), 0);
    sy_outcome o = SY_OUTCOME_INIT;
    memset(&o, 0x55, sizeof o);
    wh_outcome(r, &set, &o, gone);
    return o;
}

static void two_hundreds_are_ok(void **state)
{
    (void)state;
    int codes[] = {200, 201, 202, 204, 299};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        http_result r = response(codes[i]);
        int gone = -1;
        sy_outcome o = classify(&r, "410", &gone);
        assert_int_equal(o.result, SY_OK);
        assert_int_equal(o.status, codes[i]);
        assert_int_equal(o.retry_after_ms, 0);
        assert_int_equal(gone, 0);
    }
    /* Delivered is delivered: an abort request on a 2xx changes nothing. */
    http_result r = response(200);
    strcpy(r.captured[WH_CAP_DELIVERY], "abort-message");
    assert_int_equal(classify(&r, "410", NULL).result, SY_OK);
    sy_outcome o = classify(&r, "410", NULL);
    assert_string_equal(o.detail, "HTTP 200");
}

static void gone_is_permanent_and_reported(void **state)
{
    (void)state;
    http_result r = response(410);
    r.retry_after_ms = 5000;
    int gone = 0;
    sy_outcome o = classify(&r, "410", &gone);
    assert_int_equal(o.result, SY_FAIL);
    assert_int_equal(o.status, 410);
    assert_int_equal(gone, 1);
    assert_int_equal(o.retry_after_ms, 0);
    assert_string_equal(o.detail, "HTTP 410 Gone: the endpoint is gone");
}

static void other_statuses_retry_with_retry_after(void **state)
{
    (void)state;
    int codes[] = {100, 400, 401, 403, 404, 405, 408, 409, 413, 415, 422, 429, 451,
                   499, 500, 501, 502, 503, 504, 599};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        http_result r = response(codes[i]);
        int gone = -1;
        sy_outcome o = classify(&r, "410", &gone);
        char want[32];
        snprintf(want, sizeof want, "HTTP %d", codes[i]);
        assert_int_equal(o.result, SY_RETRY);
        assert_int_equal(o.status, codes[i]);
        assert_int_equal(o.retry_after_ms, 0);
        assert_string_equal(o.detail, want);
        assert_int_equal(gone, 0);
        r.retry_after_ms = 2000;
        assert_int_equal(classify(&r, "410", NULL).retry_after_ms, 2000);
        r.retry_after_ms = 0; /* "Retry-After: 0" leaves it to the policy */
        assert_int_equal(classify(&r, "410", NULL).retry_after_ms, 0);
    }
}

static void redirects_are_retried_not_followed(void **state)
{
    (void)state;
    http_result r = response(301);
    strcpy(r.captured[WH_CAP_LOCATION], "https://new.example.com/hook");
    sy_outcome o = classify(&r, "410", NULL);
    assert_int_equal(o.result, SY_RETRY);
    assert_int_equal(o.status, 301);
    assert_string_equal(o.detail, "HTTP 301 redirect to https://new.example.com/hook not followed");
    r = response(308);
    r.retry_after_ms = 1000;
    o = classify(&r, "410", NULL);
    assert_int_equal(o.result, SY_RETRY);
    assert_int_equal(o.retry_after_ms, 1000);
    assert_string_equal(o.detail, "HTTP 308 redirect to (no Location) not followed");
}

/* A receiver echoing our URL back in Location must not put the token into the detail. */
static void redirect_details_drop_query_and_user_info(void **state)
{
    (void)state;
    static const struct {
        const char *location, *shown;
    } cases[] = {
        {"https://hooks.example.com/in?token=Sekrit1&x=1", "https://hooks.example.com/in"},
        {"http://u:Sekrit2@10.0.0.1:8080/p/q#Sekrit3", "http://10.0.0.1:8080/p/q"},
        {"HTTPS://[::1]:8443/a%20b?Sekrit4", "https://[::1]:8443/a%20b"},
        {"http://example.com?Sekrit5", "http://example.com/"},
        {"/login?next=%2Fhook%3Ftoken%3DSekrit6", "/login"},
        {"/caf\xc3\xa9#Sekrit7", "/caf%C3%A9"},
        {"//u:Sekrit8@evil.example/x", "(unparsable URL)"},
        {"login.html?Sekrit9", "(unparsable URL)"},
        {"http://u:Sek rit10@h/", "(unparsable URL)"},
        {"ftp://Sekrit11:pw@files.example/f?Sekrit12", "ftp://files.example/f"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        http_result r = response(302);
        snprintf(r.captured[WH_CAP_LOCATION], HTTP_CAPTURE_LEN, "%s", cases[i].location);
        sy_outcome o = classify(&r, "410", NULL);
        char want[256];
        snprintf(want, sizeof want, "HTTP 302 redirect to %s not followed", cases[i].shown);
        assert_string_equal(o.detail, want);
        assert_null(strstr(o.detail, "Sekrit"));
    }
    char buf[16];
    http_url_redact("https://example.com/a/long/path", buf, sizeof buf);
    assert_string_equal(buf, "https://example");
    http_url_redact("/\x01\x7f", buf, 4);
    assert_string_equal(buf, "/");
    http_url_redact(NULL, buf, sizeof buf);
    assert_string_equal(buf, "(unparsable URL");
}

/* Library messages that quote a URL: every URL in the text is cut down. */
static void urls_inside_messages_are_redacted(void **state)
{
    (void)state;
    char t[HTTP_ERROR_LEN];
    snprintf(t, sizeof t, "other: Failed for 'https://u:Sekrit1@h.example/p?token=Sekrit2' "
             "and http://h2/q?Sekrit3 then done");
    http_redact_urls(t, sizeof t);
    assert_string_equal(t, "other: Failed for 'https://h.example/p' and http://h2/q then done");
    snprintf(t, sizeof t, "no URL here: ://x and a:// b");
    http_redact_urls(t, sizeof t);
    assert_string_equal(t, "no URL here: ://x and (unparsable URL) b");
    /* A text cut off inside the URL is still redacted, never shown. */
    char small[40];
    snprintf(small, sizeof small, "connect: http://h.example/p?Sekrit4Sekr");
    http_redact_urls(small, sizeof small);
    assert_string_equal(small, "connect: http://h.example/p");
    /* Redacted text may be longer than the URL was: what follows is cut, not overrun. */
    char tiny[24];
    snprintf(tiny, sizeof tiny, "a:// tail-of-text");
    http_redact_urls(tiny, sizeof tiny);
    assert_string_equal(tiny, "(unparsable URL) tail-o");
}

static void abort_message_stops_retries(void **state)
{
    (void)state;
    int codes[] = {302, 400, 429, 500, 503};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        http_result r = response(codes[i]);
        strcpy(r.captured[WH_CAP_DELIVERY], i % 2 ? "Abort-Message" : "abort-message");
        r.retry_after_ms = 3000;
        sy_outcome o = classify(&r, "410", NULL);
        assert_int_equal(o.result, SY_FAIL);
        assert_int_equal(o.status, codes[i]);
        assert_int_equal(o.retry_after_ms, 0);
        assert_non_null(strstr(o.detail, "webhook-delivery: abort-message"));
    }
    http_result r = response(500);
    strcpy(r.captured[WH_CAP_DELIVERY], "retry");
    assert_int_equal(classify(&r, "410", NULL).result, SY_RETRY);
}

static void transport_failures(void **state)
{
    (void)state;
    struct {
        http_kind kind;
        sy_result want;
    } rows[] = {
        {HTTP_TIMEOUT, SY_RETRY}, {HTTP_DNS, SY_RETRY},  {HTTP_CONNECT, SY_RETRY},
        {HTTP_TLS, SY_RETRY},     {HTTP_OTHER, SY_RETRY}, {HTTP_SHUTDOWN, SY_RETRY},
        {HTTP_REFUSED, SY_FAIL},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        http_result r = response(0);
        r.kind = rows[i].kind;
        snprintf(r.error, sizeof r.error, "what happened #%zu", i);
        int gone = -1;
        sy_outcome o = classify(&r, "410", &gone);
        assert_int_equal(o.result, rows[i].want);
        assert_int_equal(o.status, 0);
        assert_int_equal(o.retry_after_ms, 0);
        assert_string_equal(o.detail, r.error);
        assert_int_equal(gone, 0);
    }
}

static void permanent_statuses_override(void **state)
{
    (void)state;
    const char *set = "404,500-599";
    struct {
        int status;
        sy_result want;
    } rows[] = {{404, SY_FAIL}, {410, SY_RETRY}, {500, SY_FAIL}, {503, SY_FAIL},
                {599, SY_FAIL}, {499, SY_RETRY}, {429, SY_RETRY}, {200, SY_OK}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        http_result r = response(rows[i].status);
        int gone = -1;
        sy_outcome o = classify(&r, set, &gone);
        assert_int_equal(o.result, rows[i].want);
        assert_int_equal(gone, 0); /* 410 is gone only when it is permanent */
        if (rows[i].want == SY_FAIL)
            assert_string_equal(strstr(o.detail, ": ") + 2, "permanent by permanent_statuses");
    }
    /* The empty set retries every non-2xx, 410 included. */
    http_result r = response(410);
    assert_int_equal(classify(&r, "", NULL).result, SY_RETRY);
}

static void status_sets(void **state)
{
    (void)state;
    wh_status_set s;
    char err[200];
    assert_int_equal(wh_status_set_parse(" 404 , 410,500-502 ", &s, err, sizeof err), 0);
    for (int c = 100; c < 600; c++)
        assert_int_equal(wh_status_in(&s, c), c == 404 || c == 410 || (c >= 500 && c <= 502));
    assert_int_equal(wh_status_in(&s, 99), 0);
    assert_int_equal(wh_status_in(&s, 600), 0);
    assert_int_equal(wh_status_set_parse("300-599", &s, err, sizeof err), 0);
    assert_int_equal(wh_status_in(&s, 300) && wh_status_in(&s, 599) && !wh_status_in(&s, 299), 1);
    const char *bad[] = {"200", "299", "600", "4xx", "410,", ",410", "41", "4100", "499-400",
                         "400-", "410;404", "410 404"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_int_equal(wh_status_set_parse(bad[i], &s, err, sizeof err), -1);
        assert_non_null(strstr(err, "permanent_statuses: "));
    }
}

/* ------------------------------------------------------------------ */
/* HTTP text helpers                                                   */
/* ------------------------------------------------------------------ */

static void retry_after(void **state)
{
    (void)state;
    /* 1994-11-06 08:49:37 UTC, the RFC's example date. */
    const int64_t date_ms = 784111777LL * 1000;
    const int64_t now = date_ms - 5000;
    assert_int_equal(http_retry_after_ms("0", now), 0);
    assert_int_equal(http_retry_after_ms("2", now), 2000);
    assert_int_equal(http_retry_after_ms("  120 ", now), 120000);
    assert_int_equal(http_retry_after_ms("99999999999999999999999", now), 7LL * 24 * 3600 * 1000);
    assert_int_equal(http_retry_after_ms("Sun, 06 Nov 1994 08:49:37 GMT", now), 5000);
    assert_int_equal(http_retry_after_ms("Sunday, 06-Nov-94 08:49:37 GMT", now), 5000);
    assert_int_equal(http_retry_after_ms("Sun Nov  6 08:49:37 1994", now), 5000);
    assert_int_equal(http_retry_after_ms("Sun, 06 Nov 1994 08:49:37 GMT", date_ms + 60000), 0);
    const char *bad[] = {"", " ", "-1", "1.5", "1e3", "2 s", "soon",
                         "Sun, 06 Nov 1994 08:49:37 CET", "Sun, 06 Nov 1994", NULL};
    for (size_t i = 0; bad[i]; i++)
        assert_int_equal(http_retry_after_ms(bad[i], now), -1);
    assert_int_equal(http_retry_after_ms(NULL, now), -1);
}

static void header_lines_match(void **state)
{
    (void)state;
    char v[8];
    const char *l1 = "Retry-After:   120 \r\n";
    assert_int_equal(http_header_match(l1, strlen(l1), "retry-after", v, sizeof v), 1);
    assert_string_equal(v, "120");
    const char *l2 = "retry-after:5\r\n";
    assert_int_equal(http_header_match(l2, strlen(l2), "Retry-After", v, sizeof v), 1);
    assert_string_equal(v, "5");
    const char *l3 = "Retry-Afterx: 5\r\n";
    assert_int_equal(http_header_match(l3, strlen(l3), "retry-after", v, sizeof v), 0);
    const char *l4 = "X-Long: abcdefghijkl\r\n";
    assert_int_equal(http_header_match(l4, strlen(l4), "x-long", v, sizeof v), 1);
    assert_string_equal(v, "abcdefg"); /* truncated to the buffer */
    const char *l5 = "Webhook-Delivery: \r\n";
    assert_int_equal(http_header_match(l5, strlen(l5), "webhook-delivery", v, sizeof v), 1);
    assert_string_equal(v, "");
    /* Not NUL-terminated at the line's end, as libcurl passes it. */
    const char l6[] = "Location: /a\r\nGARBAGE";
    assert_int_equal(http_header_match(l6, 14, "location", v, sizeof v), 1);
    assert_string_equal(v, "/a");
}

static void urls(void **state)
{
    (void)state;
    char err[200], host[64];
    assert_int_equal(http_url_check("https://example.com/hook?x=1", err, sizeof err), 0);
    assert_int_equal(http_url_check("http://127.0.0.1:8080/", err, sizeof err), 0);
    assert_int_equal(http_url_check("http://[::1]:9/", err, sizeof err), 0);
    struct {
        const char *url, *says;
    } bad[] = {
        {"", "empty URL"},
        {"example.com/hook", "not an absolute http:// or https:// URL"},
        {"ftp://example.com/", "scheme must be http or https"},
        {"file:///etc/passwd", "scheme must be http or https"},
        {"https://user:secret@example.com/", "URL carries credentials"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(http_url_check(bad[i].url, err, sizeof err), -1);
        assert_non_null(strstr(err, bad[i].says));
        assert_null(strstr(err, "secret"));
    }
    http_url_host("http://127.0.0.1:8080/x?token=abc", host, sizeof host);
    assert_string_equal(host, "127.0.0.1:8080");
    http_url_host("https://example.com/x", host, sizeof host);
    assert_string_equal(host, "example.com");
    http_url_host("::", host, sizeof host);
    assert_string_equal(host, "?");
}

static void custom_headers(void **state)
{
    (void)state;
    char err[200], **lines;
    const char *ok[] = {"X-Tenant", "acme", "Authorization", "Bearer a b", NULL};
    assert_int_equal(http_header_lines(ok, NULL, &lines, err, sizeof err), 0);
    assert_string_equal(lines[0], "X-Tenant: acme");
    assert_string_equal(lines[1], "Authorization: Bearer a b");
    assert_null(lines[2]);
    http_header_lines_free(lines);
    assert_int_equal(http_header_lines(NULL, NULL, &lines, err, sizeof err), 0);
    assert_null(lines[0]);
    http_header_lines_free(lines);
    const char *also[] = {"svix-id", NULL};
    const char *bad[][2] = {{"Host", "x"},        {"content-type", "x"}, {"Content-Length", "1"},
                            {"USER-AGENT", "x"},  {"Expect", "x"},       {"Svix-Id", "x"},
                            {"Bad Name", "x"},    {"", "x"},             {"X-A", "a\r\nB: c"},
                            {"X-A", "a\nb"},      {"Transfer-Encoding", "chunked"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *map[] = {bad[i][0], bad[i][1], NULL};
        lines = (char **)1;
        assert_int_equal(http_header_lines(map, also, &lines, err, sizeof err), -1);
        assert_null(lines);
        assert_non_null(strstr(err, "headers."));
    }
}

/* ------------------------------------------------------------------ */
/* Endpoint settings                                                   */
/* ------------------------------------------------------------------ */

static wh_ep_conf base_conf(const char *const *secrets)
{
    wh_ep_conf c;
    memset(&c, 0, sizeof c);
    c.url = "https://example.com/hook";
    c.secrets = secrets;
    c.header_prefix = "svix";
    c.permanent_statuses = "410";
    c.fallback_after = 3;
    c.verify_retry_ms = 30000;
    return c;
}

static void settings_parse(void **state)
{
    (void)state;
    const char *secrets[] = {S1, S2, NULL};
    const char *fb[] = {"https://backup.example.com:8443/h", NULL};
    const char *hdrs[] = {"X-Tenant", "acme", NULL};
    wh_ep_conf c = base_conf(secrets);
    c.fallback_urls = fb;
    c.headers = hdrs;
    c.header_prefix = "webhook";
    c.http.timeout_ms = 2500;
    wh_conf inst;
    memset(&inst, 0, sizeof inst);
    inst.http.timeout_ms = 10000;
    inst.http.allow_private = 1;
    inst.http.ca_file = "/etc/ca.pem";
    wh_settings s;
    char err[300];
    assert_int_equal(wh_settings_parse("e1", &c, &inst, 0, &s, err, sizeof err), 0);
    assert_int_equal(s.nurls, 2);
    assert_string_equal(s.urls[1], "https://backup.example.com:8443/h");
    assert_string_equal(s.hosts[0], "example.com");
    assert_string_equal(s.hosts[1], "backup.example.com:8443");
    assert_int_equal(s.nkeys, 2);
    assert_string_equal(s.hdr_id, "webhook-id: ");
    assert_string_equal(s.hdr_ts, "webhook-timestamp: ");
    assert_string_equal(s.hdr_sig, "webhook-signature: ");
    assert_string_equal(s.custom[0], "X-Tenant: acme");
    assert_null(s.custom[1]);
    assert_int_equal(wh_status_in(&s.permanent, 410), 1);
    assert_int_equal(s.http.timeout_ms, 2500);    /* the endpoint's */
    assert_int_equal(s.http.allow_private, 1);    /* inherited */
    assert_string_equal(s.http.ca_file, "/etc/ca.pem");
    wh_settings_clear(&s);
    /* An endpoint that says allow_private_networks: false wins over the instance. */
    c.http.timeout_ms = 0;
    assert_int_equal(wh_settings_parse("e1", &c, &inst, 1, &s, err, sizeof err), 0);
    assert_int_equal(s.http.allow_private, 0);
    assert_int_equal(s.http.timeout_ms, 10000);
    wh_settings_clear(&s);
}

static void settings_errors_never_show_secrets(void **state)
{
    (void)state;
    struct {
        const char *secret, *says;
    } rows[] = {
        {"whsec_hunter2hunter2!!", "endpoint e9: secrets[1]: malformed secret"},
        {"whsec_aHVudGVyMg==", "endpoint e9: secrets[1]: malformed secret"},
        {"aHVudGVyMmh1bnRlcjJodW50ZXIyaHVudGVyMg==", "endpoint e9: secrets[1]: malformed"},
        {"whpk_ZlN4eg7dSSqi0moX9hQUk3orrOouK3QVQSlJa248c/g=",
         "endpoint e9: secrets[1] is a whpk_ public key, which cannot sign"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const char *secrets[] = {S1, rows[i].secret, NULL};
        wh_ep_conf c = base_conf(secrets);
        wh_settings s;
        char err[300] = "";
        assert_int_equal(wh_settings_parse("e9", &c, NULL, 0, &s, err, sizeof err), -1);
        assert_non_null(strstr(err, rows[i].says));
        assert_null(strstr(err, rows[i].secret + 5));
        assert_null(strstr(err, "MfKQ9r8"));
        assert_int_equal(s.nkeys, 0); /* cleared */
    }
    const char *none[] = {NULL};
    wh_ep_conf c = base_conf(none);
    wh_settings s;
    char err[300];
    assert_int_equal(wh_settings_parse("e9", &c, NULL, 0, &s, err, sizeof err), -1);
    assert_string_equal(err, "endpoint e9: secrets: at least one signing key is needed");
    const char *many[18];
    for (int i = 0; i < 17; i++)
        many[i] = S1;
    many[17] = NULL;
    c = base_conf(many);
    assert_int_equal(wh_settings_parse("e9", &c, NULL, 0, &s, err, sizeof err), -1);
    assert_string_equal(err, "endpoint e9: secrets: at most 16");
}

static void settings_other_errors(void **state)
{
    (void)state;
    const char *secrets[] = {S1, NULL};
    wh_settings s;
    char err[300];
    wh_ep_conf c = base_conf(secrets);
    c.http.client_cert = "/etc/cert.pem";
    assert_int_equal(wh_settings_parse("e1", &c, NULL, 0, &s, err, sizeof err), -1);
    assert_string_equal(err, "client_cert is set without client_key: mutual TLS needs both");
    c = base_conf(secrets);
    c.header_prefix = "x acme";
    assert_int_equal(wh_settings_parse("e1", &c, NULL, 0, &s, err, sizeof err), -1);
    assert_non_null(strstr(err, "header_prefix: "));
    c = base_conf(secrets);
    const char *fb[] = {"https://ok.example.com/", "gopher://x/", NULL};
    c.fallback_urls = fb;
    assert_int_equal(wh_settings_parse("e1", &c, NULL, 0, &s, err, sizeof err), -1);
    assert_string_equal(err, "fallback_urls[1]: scheme must be http or https");
    c = base_conf(secrets);
    c.fallback_after = 1001;
    assert_int_equal(wh_settings_parse("e1", &c, NULL, 0, &s, err, sizeof err), -1);
    assert_string_equal(err, "fallback_after: 1001 is outside 1-1000");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(two_hundreds_are_ok),
        cmocka_unit_test(gone_is_permanent_and_reported),
        cmocka_unit_test(other_statuses_retry_with_retry_after),
        cmocka_unit_test(redirects_are_retried_not_followed),
        cmocka_unit_test(redirect_details_drop_query_and_user_info),
        cmocka_unit_test(urls_inside_messages_are_redacted),
        cmocka_unit_test(abort_message_stops_retries),
        cmocka_unit_test(transport_failures),
        cmocka_unit_test(permanent_statuses_override),
        cmocka_unit_test(status_sets),
        cmocka_unit_test(retry_after),
        cmocka_unit_test(header_lines_match),
        cmocka_unit_test(urls),
        cmocka_unit_test(custom_headers),
        cmocka_unit_test(settings_parse),
        cmocka_unit_test(settings_errors_never_show_secrets),
        cmocka_unit_test(settings_other_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
