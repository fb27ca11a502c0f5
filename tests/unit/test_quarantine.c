/*
 * test_quarantine.c - what a record keeps (prefix, size, SHA-256), rotation
 * by size with one old file, and the byte rate limit on explicit times.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cjson/cJSON.h>

#include "log.h"
#include "quarantine.h"

typedef struct {
    char dir[64];
    char path[96];
    char old[100];
} tmp;

static int setup(void **state)
{
    tmp *t = calloc(1, sizeof *t);
    snprintf(t->dir, sizeof t->dir, "/tmp/sy-quarantine-XXXXXX");
    if (!mkdtemp(t->dir))
        return -1;
    snprintf(t->path, sizeof t->path, "%s/q/quarantine.jsonl", t->dir);
    snprintf(t->old, sizeof t->old, "%s.1", t->path);
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    tmp *t = *state;
    char q[80];
    snprintf(q, sizeof q, "%s/q", t->dir);
    unlink(t->path);
    unlink(t->old);
    rmdir(q);
    rmdir(t->dir);
    free(t);
    return 0;
}

static unsigned char *pattern(size_t n)
{
    unsigned char *b = malloc(n);
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)((i * 7 + 3) % 256);
    return b;
}

static char *slurp(const char *path, long *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        *size = -1;
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    *size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)*size + 1);
    size_t n = fread(s, 1, (size_t)*size, f);
    s[n] = '\0';
    fclose(f);
    return s;
}

static int lines(const char *path)
{
    long size;
    char *s = slurp(path, &size);
    int n = 0;
    for (char *p = s; p && *p; p++)
        n += *p == '\n';
    free(s);
    return n;
}

/* The only record of path, parsed. */
static cJSON *only_record(const char *path)
{
    long size;
    char *s = slurp(path, &size);
    assert_non_null(s);
    assert_true(size > 0 && s[size - 1] == '\n');
    assert_ptr_equal(strchr(s, '\n'), s + size - 1);
    cJSON *j = cJSON_Parse(s);
    free(s);
    assert_non_null(j);
    return j;
}

static void check_record(cJSON *j, const char *reason, double size, const char *sha, int truncated,
                         const unsigned char *kept, size_t kept_len)
{
    assert_string_equal(cJSON_GetObjectItem(j, "reason")->valuestring, reason);
    assert_true(cJSON_GetObjectItem(j, "size")->valuedouble == size);
    assert_string_equal(cJSON_GetObjectItem(j, "sha256")->valuestring, sha);
    assert_int_equal(cJSON_IsTrue(cJSON_GetObjectItem(j, "truncated")), truncated);
    char *b64 = malloc(4 * ((kept_len + 2) / 3) + 1);
    base64_encode(kept, kept_len, b64);
    assert_string_equal(cJSON_GetObjectItem(j, "body_base64")->valuestring, b64);
    free(b64);
}

/* Over max_event: a 4 KiB prefix, the whole size and the hash of all of it. */
static void test_oversized_keeps_prefix_size_hash(void **state)
{
    tmp *t = *state;
    quarantine_conf c = {.max_event = 1000, .max_file = 1 << 20, .rate = 0};
    sy_quarantine *q = quarantine_open(t->path, &c);
    assert_non_null(q);
    unsigned char *body = pattern(10000);
    assert_int_equal(quarantine_write(q, 0, "too_big", "10000 bytes, over 1000", body, 10000),
                     QUARANTINE_KEPT);
    quarantine_close(q);
    cJSON *j = only_record(t->path);
    check_record(j, "too_big", 10000,
                 "6e97d8601cb17906a4819e0fcc8d03150d3e4331353ecaa516c0084cadad54dd", 1, body,
                 QUARANTINE_PREFIX);
    assert_string_equal(cJSON_GetObjectItem(j, "detail")->valuestring, "10000 bytes, over 1000");
    cJSON_Delete(j);
    free(body);
}

/* Within max_event: kept whole, with its hash. */
static void test_small_kept_whole(void **state)
{
    tmp *t = *state;
    quarantine_conf c = {.max_event = 1000, .max_file = 1 << 20, .rate = 0};
    sy_quarantine *q = quarantine_open(t->path, &c);
    assert_int_equal(quarantine_write(q, 0, "not_json", "expected a JSON object", "not json", 8),
                     QUARANTINE_KEPT);
    quarantine_close(q);
    cJSON *j = only_record(t->path);
    check_record(j, "not_json", 8, "7ccfa1fbf3940e6f0c0375d87c0f9235a50514e14cb427bdfaf5077987b26ccf",
                 0, (const unsigned char *)"not json", 8);
    cJSON_Delete(j);
}

/* Within max_event but a record of it would take over a quarter of the file: the prefix too. */
static void test_whole_only_within_a_quarter_of_the_file(void **state)
{
    tmp *t = *state;
    quarantine_conf c = {.max_event = 1 << 20, .max_file = 64 * 1024, .rate = 0};
    sy_quarantine *q = quarantine_open(t->path, &c);
    unsigned char *body = pattern(20000);
    assert_int_equal(quarantine_write(q, 0, "bad_value", "x", body, 20000), QUARANTINE_KEPT);
    assert_int_equal(quarantine_write(q, 0, "bad_value", "x", body, 12288), QUARANTINE_KEPT);
    quarantine_close(q);
    long size;
    char *s = slurp(t->path, &size);
    char *nl = strchr(s, '\n');
    *nl = '\0';
    cJSON *a = cJSON_Parse(s), *b = cJSON_Parse(nl + 1);
    check_record(a, "bad_value", 20000,
                 "576358d0914fe2133920b1c1f46867d49959124d425af9434f431548791cca79", 1, body,
                 QUARANTINE_PREFIX);
    /* 12288 bytes are 16384 in base64: exactly a quarter, still whole. */
    assert_int_equal(cJSON_IsTrue(cJSON_GetObjectItem(b, "truncated")), 0);
    assert_int_equal(strlen(cJSON_GetObjectItem(b, "body_base64")->valuestring), 16384);
    cJSON_Delete(a);
    cJSON_Delete(b);
    free(s);
    free(body);
}

/* The size of one record of the test's kind, measured. */
static long record_len(const tmp *t)
{
    quarantine_conf c = {.max_event = 1 << 20, .max_file = 1 << 20, .rate = 0};
    sy_quarantine *q = quarantine_open(t->path, &c);
    unsigned char *body = pattern(1000);
    quarantine_write(q, 0, "not_json", "d", body, 1000);
    quarantine_close(q);
    free(body);
    long size;
    free(slurp(t->path, &size));
    unlink(t->path);
    return size;
}

/* PATH goes to PATH.1 when the next record would pass max_file; one old file only. */
static void test_rotation(void **state)
{
    tmp *t = *state;
    long len = record_len(t);
    const int64_t max = 64 * 1024;
    long per_file = max / len;
    assert_true(per_file >= 10);
    quarantine_conf c = {.max_event = 1 << 20, .max_file = max, .rate = 0};
    sy_quarantine *q = quarantine_open(t->path, &c);
    unsigned char *body = pattern(1000);
    for (long i = 0; i < per_file; i++)
        assert_int_equal(quarantine_write(q, 0, "not_json", "d", body, 1000), QUARANTINE_KEPT);
    struct stat st;
    assert_int_equal(stat(t->old, &st), -1);
    assert_int_equal(lines(t->path), per_file);
    /* The next one starts a new file. */
    assert_int_equal(quarantine_write(q, 0, "not_json", "d", body, 1000), QUARANTINE_KEPT);
    assert_int_equal(lines(t->old), per_file);
    assert_int_equal(lines(t->path), 1);
    /* Two files' worth more: PATH.1 is replaced, never a PATH.2. */
    for (long i = 0; i < 2 * per_file; i++)
        assert_int_equal(quarantine_write(q, 0, "not_json", "d", body, 1000), QUARANTINE_KEPT);
    quarantine_close(q);
    assert_int_equal(lines(t->old), per_file);
    assert_int_equal(lines(t->path), 1);
    char two[110];
    snprintf(two, sizeof two, "%s.2", t->path);
    assert_int_equal(stat(two, &st), -1);
    assert_int_equal(stat(t->path, &st), 0);
    assert_true(st.st_size <= max);
    assert_int_equal(stat(t->old, &st), 0);
    assert_true(st.st_size <= max);
    /* Reopened, the file's size is known: the bound holds across restarts. */
    q = quarantine_open(t->path, &c);
    for (long i = 0; i < per_file - 1; i++)
        assert_int_equal(quarantine_write(q, 0, "not_json", "d", body, 1000), QUARANTINE_KEPT);
    assert_int_equal(lines(t->path), per_file);
    assert_int_equal(quarantine_write(q, 0, "not_json", "d", body, 1000), QUARANTINE_KEPT);
    assert_int_equal(lines(t->path), 1);
    quarantine_close(q);
    free(body);
}

/*
 * A bucket of `rate` bytes, refilled at rate per second and never above it:
 * records go while it is not empty, each taking its length.
 */
static void test_rate_limit(void **state)
{
    tmp *t = *state;
    long len = record_len(t);
    const int64_t rate = 10000;
    quarantine_conf c = {.max_event = 1 << 20, .max_file = 1 << 20, .rate = rate};
    sy_quarantine *q = quarantine_open(t->path, &c);
    unsigned char *body = pattern(1000);
    int64_t now = 5000;
    int kept = 0, dropped = 0;
    /* A full bucket: ceil(rate / len) records, then nothing at the same instant. */
    for (int i = 0; i < 100; i++) {
        int rc = quarantine_write(q, now, "not_json", "d", body, 1000);
        assert_true(rc == QUARANTINE_KEPT || rc == QUARANTINE_DROPPED);
        rc == QUARANTINE_KEPT ? kept++ : dropped++;
    }
    long burst = (rate + len - 1) / len;
    assert_int_equal(kept, burst);
    assert_int_equal(dropped, 100 - burst);
    /* The last record overdrew by debt; 10 bytes come back each ms. */
    int64_t debt = burst * len - rate;
    now += debt / 10;
    assert_int_equal(quarantine_write(q, now, "not_json", "d", body, 1000), QUARANTINE_DROPPED);
    now += 1;
    assert_int_equal(quarantine_write(q, now, "not_json", "d", body, 1000), QUARANTINE_KEPT);
    assert_int_equal(quarantine_write(q, now, "not_json", "d", body, 1000), QUARANTINE_DROPPED);
    /* After a long quiet time the bucket holds `rate`, not more. */
    now += 3600 * 1000;
    kept = 0;
    for (int i = 0; i < 100; i++)
        kept += quarantine_write(q, now, "not_json", "d", body, 1000) == QUARANTINE_KEPT;
    assert_int_equal(kept, burst);
    quarantine_close(q);
    assert_int_equal(lines(t->path), 2 * burst + 1);
    free(body);
}

/* A record larger than the whole bucket still goes when the bucket is full, then waits. */
static void test_rate_limit_large_record(void **state)
{
    tmp *t = *state;
    quarantine_conf c = {.max_event = 1 << 20, .max_file = 1 << 20, .rate = 1000};
    sy_quarantine *q = quarantine_open(t->path, &c);
    unsigned char *body = pattern(3000); /* about 4 KiB as a record: four seconds of budget */
    assert_int_equal(quarantine_write(q, 0, "not_json", "d", body, 3000), QUARANTINE_KEPT);
    assert_int_equal(quarantine_write(q, 1000, "not_json", "d", body, 3000), QUARANTINE_DROPPED);
    assert_int_equal(quarantine_write(q, 2000, "not_json", "d", body, 3000), QUARANTINE_DROPPED);
    assert_int_equal(quarantine_write(q, 6000, "not_json", "d", body, 3000), QUARANTINE_KEPT);
    quarantine_close(q);
    assert_int_equal(lines(t->path), 2);
    free(body);
}

/* At a low rate and frequent calls, fractions of a byte per ms still add up. */
static void test_rate_limit_low_rate(void **state)
{
    tmp *t = *state;
    long len = record_len(t);
    quarantine_conf c = {.max_event = 1 << 20, .max_file = 1 << 20, .rate = 250};
    sy_quarantine *q = quarantine_open(t->path, &c);
    unsigned char *body = pattern(1000);
    assert_int_equal(quarantine_write(q, 0, "not_json", "d", body, 1000), QUARANTINE_KEPT);
    /* 250 - len bytes left; a quarter of a byte comes back each ms. */
    int64_t open_at = (len - 250) * 4 + 1;
    for (int64_t ms = 1; ms < open_at; ms++)
        assert_int_equal(quarantine_write(q, ms, "not_json", "d", body, 1000), QUARANTINE_DROPPED);
    assert_int_equal(quarantine_write(q, open_at, "not_json", "d", body, 1000), QUARANTINE_KEPT);
    quarantine_close(q);
    assert_int_equal(lines(t->path), 2);
    free(body);
}

int main(void)
{
    log_setup(SY_LOG_ERROR, LOG_FMT_LOGFMT); /* the rate limit's warning is not under test here */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_oversized_keeps_prefix_size_hash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_small_kept_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(test_whole_only_within_a_quarter_of_the_file, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_limit_large_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_limit_low_rate, setup, teardown),
    };
    return cmocka_run_group_tests_name("quarantine", tests, NULL, NULL);
}
