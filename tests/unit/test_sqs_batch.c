/*
 * test_sqs_batch.c - the sqs sink's pure parts, compiled in from their
 * sources: JSON escaping, the SendMessageBatch request, per-entry results
 * and the outcomes they map back to (a partly failed batch, entry by
 * entry), splitting a batch by bytes, FIFO group and deduplication ids,
 * SHA-256, credentials files and their precedence, settings checks. HTTP and SigV4 are covered end to end by
 * tests/e2e/test_sqs.py against an emulator and the official AWS signer.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../plugins/_http/http_redact.c"
#include "../../plugins/_queue/keytmpl.c"
#include "../../plugins/sqs/sqs_batch.c"
#include "../../plugins/sqs/sqs_conf.c"
#include "../../plugins/sqs/sqs_creds.c"
#include "../../plugins/sqs/sqs_json.c"
#include "../../plugins/sqs/sqs_sha256.c"

static const sy_host host = {.struct_size = sizeof(sy_host)};

/* A sqs_conf with the table's defaults, as the core would fill it. */
static sqs_conf defaults(const char *queue_url)
{
    sqs_conf c = {0};
    c.queue_url = queue_url;
    c.message_group_id = "{event_type}";
    c.max_batch_bytes = 256 * 1024;
    c.max_requests = 8;
    c.request_timeout_ms = 10000;
    c.connect_timeout_ms = 5000;
    return c;
}

static void test_json_string_round_trip(void **st)
{
    (void)st;
    const char in[] = "{\"a\":\"caf\xc3\xa9 \\\" \\\\ \xf0\x9f\x9a\x80\"}\t\r\n\x01 \x7f";
    sqs_buf b = {0};
    assert_int_equal(sqs_json_string(&b, in, sizeof in - 1), 0);
    cJSON *v = cJSON_Parse(b.data);
    assert_true(cJSON_IsString(v));
    assert_memory_equal(v->valuestring, in, sizeof in - 1);
    assert_int_equal(strlen(v->valuestring), sizeof in - 1);
    cJSON_Delete(v);
    assert_non_null(strstr(b.data, "\\u0001"));
    assert_non_null(strstr(b.data, "\xf0\x9f\x9a\x80")); /* UTF-8 stays as it is */
    sqs_buf_free(&b);
}

static void test_request_standard_and_fifo(void **st)
{
    (void)st;
    char err[256];
    sqs_conf c = defaults("https://sqs.eu-west-1.amazonaws.com/123/q.fifo");
    c.message_group_id = "{org_id}";
    sqs_settings s;
    assert_int_equal(sqs_settings_parse(&c, &s, err, sizeof err), 0);
    assert_string_equal(s.region, "eu-west-1");
    assert_string_equal(s.sigv4, "aws:amz:eu-west-1:sqs");
    assert_string_equal(s.endpoint_url, "https://sqs.eu-west-1.amazonaws.com");
    assert_true(s.defaults.target->fifo);

    sy_delivery d1 = {.body = "{\"x\":\"\\n\"}", .body_len = 10, .event_id = "evt-1",
                      .event_type = "job.done", .org_id = "acme"};
    sy_delivery d2 = {.body = "{}", .body_len = 2, .event_id = "id with spaces",
                      .event_type = "job.done", .org_id = NULL};
    sqs_entry e1 = {.d = &d1, .ep = &s.defaults}, e2 = {.d = &d2, .ep = &s.defaults};
    sqs_entry_prepare(&e1, &host);
    sqs_entry_prepare(&e2, &host);
    assert_int_equal(e1.size, 10 + strlen("event_typeStringjob.done") + strlen("org_idStringacme"));
    assert_int_equal(e2.size, 2 + strlen("event_typeStringjob.done"));
    assert_string_equal(e1.group, "acme");
    assert_string_equal(e2.group, "none");
    assert_string_equal(e1.dedup, "evt-1");
    char hex[65];
    sqs_sha256_hex("id with spaces", 14, hex);
    assert_string_equal(e2.dedup, hex);

    sqs_entry *entries[2] = {&e1, &e2};
    sqs_buf b = {0};
    assert_int_equal(sqs_batch_request(&b, s.defaults.target, entries, 2), 0);
    cJSON *r = cJSON_Parse(b.data);
    assert_non_null(r);
    assert_string_equal(cJSON_GetObjectItem(r, "QueueUrl")->valuestring, c.queue_url);
    cJSON *es = cJSON_GetObjectItem(r, "Entries");
    assert_int_equal(cJSON_GetArraySize(es), 2);
    cJSON *a = cJSON_GetArrayItem(es, 0), *z = cJSON_GetArrayItem(es, 1);
    assert_string_equal(cJSON_GetObjectItem(a, "Id")->valuestring, "0");
    assert_string_equal(cJSON_GetObjectItem(z, "Id")->valuestring, "1");
    assert_string_equal(cJSON_GetObjectItem(a, "MessageBody")->valuestring, d1.body);
    assert_string_equal(cJSON_GetObjectItem(a, "MessageGroupId")->valuestring, "acme");
    assert_string_equal(cJSON_GetObjectItem(z, "MessageDeduplicationId")->valuestring, hex);
    cJSON *attrs = cJSON_GetObjectItem(a, "MessageAttributes");
    cJSON *org = cJSON_GetObjectItem(attrs, "org_id");
    assert_string_equal(cJSON_GetObjectItem(org, "DataType")->valuestring, "String");
    assert_string_equal(cJSON_GetObjectItem(org, "StringValue")->valuestring, "acme");
    assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(z, "MessageAttributes"), "org_id"));
    cJSON_Delete(r);
    sqs_buf_free(&b);

    /* A standard queue gets neither group nor deduplication id. */
    sqs_target std = {.queue_url_json = "\"u\"", .fifo = 0};
    sqs_ep ep = {.target = &std, .group = s.group};
    sqs_entry e3 = {.d = &d1, .ep = &ep};
    sqs_entry_prepare(&e3, &host);
    sqs_entry *one[1] = {&e3};
    assert_int_equal(sqs_batch_request(&b, &std, one, 1), 0);
    assert_null(strstr(b.data, "MessageGroupId"));
    assert_null(strstr(b.data, "MessageDeduplicationId"));
    sqs_buf_free(&b);
    sqs_settings_free(&s);
}

static void test_group_sanitised_and_cut(void **st)
{
    (void)st;
    char err[256];
    sqs_conf c = defaults("https://sqs.us-east-1.amazonaws.com/1/q.fifo");
    c.message_group_id = "{org_slug} {event_type}\xc3\xa9";
    sqs_settings s;
    assert_int_equal(sqs_settings_parse(&c, &s, err, sizeof err), 0);
    char slug[300];
    memset(slug, 'a', sizeof slug - 1);
    slug[sizeof slug - 1] = '\0';
    sy_delivery d = {.body = "{}", .body_len = 2, .event_id = "e", .event_type = "t",
                     .org_slug = "x"};
    sqs_entry e = {.d = &d, .ep = &s.defaults};
    sqs_entry_prepare(&e, &host);
    assert_string_equal(e.group, "x_t__"); /* space and both bytes of the é */
    d.org_slug = slug;
    sqs_entry_prepare(&e, &host);
    assert_int_equal(strlen(e.group), SQS_ID_MAX);
    /* An event id over 128 bytes is hashed too. */
    char longid[200];
    memset(longid, 'i', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    d.event_id = longid;
    sqs_entry_prepare(&e, &host);
    assert_int_equal(strlen(e.dedup), 64);
    sqs_settings_free(&s);
}

static void test_parse_results(void **st)
{
    (void)st;
    sqs_result res[4];
    const char *ok = "{\"Successful\":[{\"Id\":\"0\",\"MessageId\":\"m\"},{\"Id\":\"3\"}],"
                     "\"Failed\":[{\"Id\":\"1\",\"SenderFault\":true,\"Code\":"
                     "\"InvalidMessageContents\",\"Message\":\"bad chars\"},"
                     "{\"Id\":\"9\",\"Code\":\"X\"},{\"Id\":\"x\"}]}";
    assert_int_equal(sqs_parse_batch_response(ok, strlen(ok), 4, res), 0);
    assert_true(res[0].ok);
    assert_false(res[1].ok);
    assert_true(res[1].sender_fault);
    assert_string_equal(res[1].code, "InvalidMessageContents");
    assert_string_equal(res[1].message, "bad chars");
    assert_int_equal(sqs_entry_failure_result(&res[1]), SY_FAIL);
    assert_false(res[2].ok);
    assert_string_equal(res[2].code, "NoResult"); /* not mentioned: retried */
    assert_int_equal(sqs_entry_failure_result(&res[2]), SY_RETRY);
    assert_true(res[3].ok);

    assert_int_equal(sqs_parse_batch_response("<html>", 6, 2, res), -1);
    assert_false(res[0].ok || res[1].ok);
    assert_string_equal(res[1].code, "BadResponse");

    char code[64], msg[160];
    const char *e = "{\"__type\":\"com.amazonaws.sqs#QueueDoesNotExist\",\"message\":\"gone\"}";
    sqs_parse_error(e, strlen(e), code, sizeof code, msg, sizeof msg);
    assert_string_equal(code, "QueueDoesNotExist");
    assert_string_equal(msg, "gone");
    sqs_parse_error("oops", 4, code, sizeof code, msg, sizeof msg);
    assert_string_equal(code, "");
    assert_string_equal(msg, "");
}

/*
 * A SendMessageBatch answered with one entry failed by the sender's fault
 * (permanent: SY_FAIL, 400), one failed on SQS's side (SY_RETRY, 500) and
 * one the answer forgets (SY_RETRY): each delivery gets its own outcome,
 * the other seven are OK. A whole request refused maps to SY_RETRY for
 * every entry, with the HTTP status and SQS's error.
 */
static void test_response_outcomes_per_entry(void **st)
{
    (void)st;
    const char *body =
        "{\"Successful\":[{\"Id\":\"0\",\"MessageId\":\"a\"},{\"Id\":\"1\"},{\"Id\":\"2\"},"
        "{\"Id\":\"4\"},{\"Id\":\"5\"},{\"Id\":\"6\"},{\"Id\":\"7\"}],"
        "\"Failed\":[{\"Id\":\"3\",\"SenderFault\":true,\"Code\":\"InvalidMessageContents\","
        "\"Message\":\"bad chars\"},{\"Id\":\"8\",\"SenderFault\":false,\"Code\":"
        "\"InternalError\",\"Message\":\"try again\"}]}";
    sy_outcome out[10];
    for (int i = 0; i < 10; i++) {
        sy_outcome_init(&out[i]);
        sy_outcome_retry_after(&out[i], 7); /* left alone */
    }
    assert_int_equal(sqs_response_outcomes(200, body, strlen(body), 10, out), 7);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(out[i].retry_after_ms, 7);
        if (i == 3 || i == 8 || i == 9)
            continue;
        assert_int_equal(out[i].result, SY_OK);
        assert_int_equal(out[i].status, 200);
        assert_string_equal(out[i].detail, "");
    }
    assert_int_equal(out[3].result, SY_FAIL);
    assert_int_equal(out[3].status, 400);
    assert_string_equal(out[3].detail, "SQS refused the entry: InvalidMessageContents: bad chars");
    assert_int_equal(out[8].result, SY_RETRY);
    assert_int_equal(out[8].status, 500);
    assert_string_equal(out[8].detail, "SQS refused the entry: InternalError: try again");
    assert_int_equal(out[9].result, SY_RETRY);
    assert_string_equal(out[9].detail,
                        "SQS refused the entry: NoResult: SQS's answer did not mention this entry");

    const char *err = "{\"__type\":\"com.amazonaws.sqs#QueueDoesNotExist\",\"message\":\"gone\"}";
    for (int i = 0; i < 3; i++)
        sy_outcome_init(&out[i]);
    assert_int_equal(sqs_response_outcomes(400, err, strlen(err), 3, out), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(out[i].result, SY_RETRY);
        assert_int_equal(out[i].status, 400);
        assert_string_equal(out[i].detail, "SendMessageBatch: HTTP 400 QueueDoesNotExist: gone");
    }
    sy_outcome_init(&out[0]);
    assert_int_equal(sqs_response_outcomes(503, "", 0, 1, out), 0);
    assert_string_equal(out[0].detail, "SendMessageBatch: HTTP 503 (no error type)");
}

/*
 * The core's batch is one request unless its entries pass max_batch_bytes:
 * then it is cut where the next entry would pass it, and an entry over the
 * limit on its own goes alone. Batches hold 1-10 entries.
 */
static void test_batch_split_by_bytes(void **st)
{
    (void)st;
    assert_null(sqs_batch_new(0));
    assert_null(sqs_batch_new(SQS_MAX_BATCH + 1));
    sqs_batch *b = sqs_batch_new(SQS_MAX_BATCH);
    assert_non_null(b);
    assert_int_equal(b->live, SQS_MAX_BATCH);
    size_t sizes[SQS_MAX_BATCH] = {300, 300, 300, 300, 1500, 100, 100, 1000, 1, 1};
    for (size_t i = 0; i < SQS_MAX_BATCH; i++) {
        assert_ptr_equal(b->entries[i].batch, b);
        b->entries[i].size = sizes[i];
    }
    size_t want[] = {3, 1, 1, 2, 1, 2}; /* 900 | 300 | 1500 alone | 200 | 1000 | 2 */
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
        size_t n = sqs_batch_take(b, 1000);
        assert_int_equal(n, want[k]);
        b->next += n;
    }
    assert_int_equal(b->next, SQS_MAX_BATCH);
    assert_int_equal(sqs_batch_take(b, 1000), 0);
    b->next = 0;
    assert_int_equal(sqs_batch_take(b, 256 * 1024), SQS_MAX_BATCH); /* the usual case */
    for (size_t i = 0; i < SQS_MAX_BATCH; i++) {
        assert_int_equal(b->live, SQS_MAX_BATCH - i);
        sqs_batch_release(&b->entries[SQS_MAX_BATCH - 1 - i]); /* the last frees it */
    }
}

static void test_sha256_vectors(void **st)
{
    (void)st;
    char hex[65];
    sqs_sha256_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    sqs_sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"; /* 56 bytes */
    sqs_sha256_hex(two, strlen(two), hex);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    char million[1000];
    memset(million, 'a', sizeof million);
    sqs_sha256_hex(million, sizeof million, hex);
    assert_string_equal(hex, "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3");
}

static char *write_tmp(const char *text)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/sy-creds-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void test_credentials(void **st)
{
    (void)st;
    char err[512];
    sqs_creds c;
    const char *file = "# comment\n[default]\naws_access_key_id=DEF\naws_secret_access_key=ds\n"
                       "\n[ prod ]\n ; another\naws_access_key_id = PROD \n"
                       "aws_secret_access_key = ps=x\naws_session_token = tok\n";
    char *path = write_tmp(file);
    assert_int_equal(sqs_creds_from_file(path, "prod", &c, err, sizeof err), 0);
    assert_string_equal(c.key_id, "PROD");
    assert_string_equal(c.secret, "ps=x");
    assert_string_equal(c.token, "tok");
    assert_non_null(strstr(c.source, "[prod]"));
    sqs_creds_free(&c);
    assert_int_equal(sqs_creds_from_file(path, "nope", &c, err, sizeof err), -1);
    assert_non_null(strstr(err, "no [nope] profile"));

    /* Precedence: config, then credentials_file, then the environment. */
    setenv("AWS_ACCESS_KEY_ID", "ENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "es", 1);
    unsetenv("AWS_SESSION_TOKEN");
    unsetenv("AWS_PROFILE");
    sqs_creds_conf cc = {"CFG", "cs", NULL, path, NULL};
    assert_int_equal(sqs_creds_load(&cc, &c, err, sizeof err), 0);
    assert_string_equal(c.key_id, "CFG");
    assert_null(c.token);
    sqs_creds_free(&c);
    cc = (sqs_creds_conf){NULL, NULL, NULL, path, NULL};
    assert_int_equal(sqs_creds_load(&cc, &c, err, sizeof err), 0);
    assert_string_equal(c.key_id, "DEF");
    sqs_creds_free(&c);
    cc = (sqs_creds_conf){0};
    assert_int_equal(sqs_creds_load(&cc, &c, err, sizeof err), 0);
    assert_string_equal(c.key_id, "ENV");
    assert_string_equal(c.source, "environment");
    sqs_creds_free(&c);
    cc = (sqs_creds_conf){"CFG", NULL, NULL, NULL, NULL};
    assert_int_equal(sqs_creds_load(&cc, &c, err, sizeof err), -1);
    assert_non_null(strstr(err, "go together"));

    /* A changed file is read again; a broken one keeps the old keys. */
    cc = (sqs_creds_conf){NULL, NULL, NULL, path, "prod"};
    assert_int_equal(sqs_creds_load(&cc, &c, err, sizeof err), 0);
    assert_int_equal(sqs_creds_refresh(&c, err, sizeof err), 0);
    FILE *f = fopen(path, "w");
    fputs("[prod]\naws_access_key_id=NEW\naws_secret_access_key=ns\n", f);
    fclose(f);
    c.mtime.tv_nsec ^= 1; /* the rewrite may share the old timestamp */
    assert_int_equal(sqs_creds_refresh(&c, err, sizeof err), 1);
    assert_string_equal(c.key_id, "NEW");
    assert_null(c.token);
    f = fopen(path, "w");
    fputs("[prod]\n", f);
    fclose(f);
    c.mtime.tv_nsec ^= 1;
    assert_int_equal(sqs_creds_refresh(&c, err, sizeof err), -1);
    assert_string_equal(c.key_id, "NEW");
    assert_int_equal(sqs_creds_refresh(&c, err, sizeof err), 0); /* reported once */
    sqs_creds_free(&c);
    unlink(path);
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
}

static void test_settings_checks(void **st)
{
    (void)st;
    char err[256], region[64];
    sqs_settings s;
    assert_int_equal(sqs_region_from_url("https://sqs.ap-south-1.amazonaws.com/1/q", region,
                                         sizeof region), 0);
    assert_string_equal(region, "ap-south-1");
    assert_int_equal(sqs_region_from_url("http://127.0.0.1:4566/1/q", region, sizeof region), -1);

    unsetenv("AWS_REGION");
    unsetenv("AWS_DEFAULT_REGION");
    sqs_conf c = defaults("http://127.0.0.1:4566/000000000000/q");
    assert_int_equal(sqs_settings_parse(&c, &s, err, sizeof err), -1);
    assert_non_null(strstr(err, "region"));
    setenv("AWS_REGION", "eu-central-1", 1);
    assert_int_equal(sqs_settings_parse(&c, &s, err, sizeof err), 0);
    assert_string_equal(s.region, "eu-central-1");
    assert_false(s.defaults.target->fifo);
    /* Endpoints naming the same queue share its batches. */
    sqs_ep_conf ec = {"http://127.0.0.1:4566/000000000000/q", NULL};
    sqs_ep *ep = sqs_ep_new(&s, &ec, err, sizeof err);
    assert_ptr_equal(ep->target, s.defaults.target);
    sqs_ep_free(ep);
    ec = (sqs_ep_conf){"http://127.0.0.1:4566/000000000000/other.fifo", "{nope}"};
    assert_null(sqs_ep_new(&s, &ec, err, sizeof err));
    assert_non_null(strstr(err, "message_group_id"));
    sqs_settings_free(&s);
    unsetenv("AWS_REGION");

    const char *bad_urls[] = {"sqs://x/1/q", "https://host", "https://host/onlyone",
                              "https:///1/q"};
    for (size_t i = 0; i < sizeof bad_urls / sizeof bad_urls[0]; i++) {
        c = defaults(bad_urls[i]);
        c.region = "us-east-1";
        assert_int_equal(sqs_settings_parse(&c, &s, err, sizeof err), -1);
        assert_non_null(strstr(err, "queue_url"));
    }
    c = defaults("https://sqs.us-east-1.amazonaws.com/1/q");
    c.max_batch_bytes = 1023;
    assert_int_equal(sqs_settings_parse(&c, &s, err, sizeof err), -1);
    assert_string_equal(err, "max_batch_bytes: 1023 is outside 1024-1048576");
    c = defaults("https://sqs.us-east-1.amazonaws.com/1/q");
    c.endpoint_url = "localhost:4566";
    assert_int_equal(sqs_settings_parse(&c, &s, err, sizeof err), -1);
    assert_non_null(strstr(err, "endpoint_url"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_string_round_trip),
        cmocka_unit_test(test_request_standard_and_fifo),
        cmocka_unit_test(test_group_sanitised_and_cut),
        cmocka_unit_test(test_parse_results),
        cmocka_unit_test(test_response_outcomes_per_entry),
        cmocka_unit_test(test_batch_split_by_bytes),
        cmocka_unit_test(test_sha256_vectors),
        cmocka_unit_test(test_credentials),
        cmocka_unit_test(test_settings_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
