/*
 * test_spool_query.c - what the admin API reads of the store (deliveries
 * within an org's scope, one delivery's owner, the attempts log, an
 * endpoint's health; the portal's pages newest first, by event type and
 * time, the event types seen, replays of one endpoint) and the dead
 * letters of a deleted endpoint (spool_kill_endpoint), which an attempt
 * finishing late never revives; on the SQLite store (test_store_pg's e2e
 * tests read the PostgreSQL one).
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
#include <unistd.h>
#include <cjson/cJSON.h>

#include "spool.h"
#include "store.h"

static char path[128];
static sy_store *reader;

/* A reader of the spool's file, as the admin API opens it (after the writer made the schema). */
static sy_store *rd(void)
{
    if (!reader) {
        char err[512];
        store_conf c = {.kind = STORE_SQLITE, .path = path};
        reader = store_open(&c, STORE_READER, err, sizeof err);
        assert_non_null(reader);
    }
    return reader;
}

/* The admin API's plain listing: oldest first, from the start. */
static char *listing(const char *state, const char *endpoint, long limit, const store_scope *scope)
{
    store_dlv_filter f = {.state = state, .endpoint = endpoint, .limit = limit};
    return store_deliveries_json(rd(), &f, scope);
}

static int setup(void **state)
{
    (void)state;
    strcpy(path, "/tmp/sy_spoolq_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    unlink(path);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char p[160];
    store_close(reader);
    reader = NULL;
    unlink(path);
    snprintf(p, sizeof p, "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", path);
    unlink(p);
    return 0;
}

static sy_spool *open_spool(void)
{
    char err[512];
    spool_opts o = {.path = path, .sync = "normal", .retention_ms = 3600000,
                    .dedup_window_ms = 3600000};
    sy_spool *s = spool_open(&o, err, sizeof err);
    assert_non_null(s);
    assert_int_equal(spool_start(s), 0);
    return s;
}

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int batches;

static void on_batch(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    batches++;
    pthread_mutex_unlock(&mu);
}

/*
 * Stores event id of type (of org, NULL for none), received at received_ms
 * (0: as parsed), with one delivery per endpoint; row ids into rows.
 */
static void put_typed(sy_spool *s, const char *id, const char *type, const char *org,
                      int64_t received_ms, const char *const *eps, size_t n, int64_t *rows)
{
    char body[256], why[128];
    if (org)
        snprintf(body, sizeof body, "{\"event_id\":\"%s\",\"event_type\":\"%s\","
                 "\"org_id\":\"%s\",\"data\":{}}", id, type, org);
    else
        snprintf(body, sizeof body, "{\"event_id\":\"%s\",\"event_type\":\"%s\","
                 "\"data\":{}}", id, type);
    sy_event *ev = NULL;
    assert_int_equal(envelope_parse(body, strlen(body), 4096, 16, &ev, why, sizeof why), ENV_OK);
    if (received_ms)
        ev->received_ms = received_ms;
    spool_put p = {.ev = ev, .endpoint_ids = eps, .n = n, .ids = rows};
    int before = batches;
    spool_put_batch(s, &p, 1, on_batch, NULL);
    assert_int_equal(spool_flush(s, 5000), 0);
    assert_int_equal(batches, before + 1);
    assert_int_equal(p.status, SPOOL_OK);
    event_unref(ev);
}

static void put(sy_spool *s, const char *id, const char *org, const char *const *eps, size_t n,
                int64_t *rows)
{
    put_typed(s, id, "job.done", org, 0, eps, n, rows);
}

static void record(sy_spool *s, int64_t id, dlv_state st, uint32_t attempt, int result,
                   int status, int64_t at_ms, int64_t latency, const char *detail)
{
    spool_record r = {.delivery_id = id, .state = st, .attempt = attempt, .first_ms = at_ms,
                      .next_ms = at_ms + 1000, .status = status, .attempt_result = result,
                      .at_ms = at_ms, .latency_ms = latency, .leased = 0};
    snprintf(r.detail, sizeof r.detail, "%s", detail);
    spool_record_outcome(s, &r);
    assert_int_equal(spool_flush(s, 5000), 0);
}

static long killed = -2;

static void on_killed(void *arg, long n)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    killed = n;
    pthread_mutex_unlock(&mu);
}

/* The ids of a deliveries listing, in order, as "1,2,3". */
static char *ids_of(char *json)
{
    static char out[256];
    out[0] = '\0';
    cJSON *a = cJSON_Parse(json);
    assert_non_null(a);
    const cJSON *o;
    cJSON_ArrayForEach(o, a)
    {
        size_t l = strlen(out);
        snprintf(out + l, sizeof out - l, "%s%d", l ? "," : "",
                 cJSON_GetObjectItem(o, "id")->valueint);
    }
    cJSON_Delete(a);
    free(json);
    return out;
}

static void test_kill_endpoint(void **state)
{
    (void)state;
    sy_spool *s = open_spool();
    static const char *const ab[] = {"a", "b"};
    int64_t r1[2], r2[2], r3[2];
    put(s, "e1", "acme", ab, 2, r1);
    put(s, "e2", "acme", ab, 2, r2);
    put(s, "e3", "acme", ab, 2, r3);
    record(s, r3[0], DLV_DONE, 1, 0, 200, 1000, 5, "");  /* delivered before the delete */
    assert_int_equal(spool_kill_endpoint(s, "a", "endpoint deleted", on_killed, NULL), 0);
    assert_int_equal(spool_flush(s, 5000), 0);
    assert_int_equal(killed, 2);
    assert_string_equal(ids_of(listing("dead", "a", 100, NULL)), "1,3");
    assert_string_equal(ids_of(listing("pending", "b", 100, NULL)), "2,4,6");
    assert_string_equal(ids_of(listing("done", NULL, 100, NULL)), "5");
    char *t = listing("dead", "a", 1, NULL);
    cJSON *a = cJSON_Parse(t);
    free(t);
    assert_string_equal(cJSON_GetObjectItem(a->child, "last_detail")->valuestring,
                        "endpoint deleted");
    cJSON_Delete(a);
    /* An attempt that was inside the plugin ends after the delete: the row stays dead. */
    record(s, r1[0], DLV_DONE, 1, 0, 200, 2000, 7, "");
    record(s, r2[0], DLV_PENDING, 1, 1, 503, 2000, 7, "HTTP 503");
    assert_string_equal(ids_of(listing("dead", "a", 100, NULL)), "1,3");
    /* Its attempt is still in the log. */
    t = store_attempts_json(rd(), r2[0], 0, 10);
    assert_non_null(strstr(t, "\"outcome\":\"retry\""));
    free(t);
    /* Nothing left to kill. */
    assert_int_equal(spool_kill_endpoint(s, "a", "endpoint deleted", on_killed, NULL), 0);
    assert_int_equal(spool_flush(s, 5000), 0);
    assert_int_equal(killed, 0);
    spool_close(s);
}

static void test_scope_and_owner(void **state)
{
    (void)state;
    sy_spool *s = open_spool();
    static const char *const three[] = {"acme-hook", "platform", "beta-hook"};
    int64_t r[3];
    put(s, "a1", "acme", three, 2, r);        /* rows 1, 2 */
    put(s, "b1", "beta", three + 1, 2, r);    /* rows 3, 4 */
    put(s, "n1", NULL, three + 1, 1, r);      /* row 5 */
    store_scope acme = {"acme", "[\"acme-hook\"]"}, beta = {"beta", "[\"beta-hook\",\"gone\"]"};
    assert_string_equal(ids_of(listing(NULL, NULL, 100, &acme)), "1");
    assert_string_equal(ids_of(listing(NULL, NULL, 100, &beta)), "4");
    /* Another org's endpoint named in the list still shows only the org's own events. */
    store_scope wide = {"acme", "[\"acme-hook\",\"platform\",\"beta-hook\"]"};
    assert_string_equal(ids_of(listing(NULL, NULL, 100, &wide)), "1,2");
    assert_string_equal(ids_of(listing(NULL, NULL, 100, NULL)), "1,2,3,4,5");
    char ep[160], org[160];
    assert_int_equal(store_delivery_owner(rd(), 4, ep, sizeof ep, org, sizeof org), 1);
    assert_string_equal(ep, "beta-hook");
    assert_string_equal(org, "beta");
    assert_int_equal(store_delivery_owner(rd(), 5, ep, sizeof ep, org, sizeof org), 1);
    assert_string_equal(org, "");
    assert_int_equal(store_delivery_owner(rd(), 99, ep, sizeof ep, org, sizeof org), 0);
    spool_close(s);
}

static void test_attempts_and_stats(void **state)
{
    (void)state;
    sy_spool *s = open_spool();
    static const char *const one[] = {"h"};
    int64_t r1, r2;
    put(s, "s1", "acme", one, 1, &r1);
    put(s, "s2", "acme", one, 1, &r2);
    int64_t now = 100000000;
    record(s, r1, DLV_PENDING, 1, 1, 503, now - 90000000, 20, "HTTP 503"); /* > 24h ago */
    record(s, r1, DLV_PENDING, 2, 1, 500, now - 7200000, 30, "HTTP 500");  /* 2h ago */
    record(s, r1, DLV_DONE, 3, 0, 200, now - 1000, 40, "");
    record(s, r2, DLV_PENDING, 1, 0, 200, now - 500, 1, "");               /* counts; row stays */
    record(s, r2, DLV_DEAD, 2, 2, 410, now - 400, 2, "HTTP 410 Gone");
    char *t = store_attempts_json(rd(), r1, 0, 2);
    cJSON *a = cJSON_Parse(t);
    free(t);
    assert_int_equal(cJSON_GetArraySize(a), 2);
    cJSON *first = cJSON_GetArrayItem(a, 0), *second = cJSON_GetArrayItem(a, 1);
    assert_int_equal(cJSON_GetObjectItem(first, "attempt")->valueint, 1);
    assert_true(cJSON_GetObjectItem(first, "started_ms")->valuedouble == now - 90000000 - 20);
    assert_int_equal(cJSON_GetObjectItem(first, "duration_ms")->valueint, 20);
    assert_int_equal(cJSON_GetObjectItem(first, "status")->valueint, 503);
    assert_string_equal(cJSON_GetObjectItem(first, "outcome")->valuestring, "retry");
    assert_string_equal(cJSON_GetObjectItem(first, "detail")->valuestring, "HTTP 503");
    int after = cJSON_GetObjectItem(second, "id")->valueint;
    cJSON_Delete(a);
    /* The next page starts after the last id seen. */
    t = store_attempts_json(rd(), r1, after, 10);
    a = cJSON_Parse(t);
    free(t);
    assert_int_equal(cJSON_GetArraySize(a), 1);
    assert_string_equal(cJSON_GetObjectItem(a->child, "outcome")->valuestring, "ok");
    cJSON_Delete(a);
    t = store_attempts_json(rd(), 999, 0, 10);
    assert_string_equal(t, "[]");
    free(t);

    store_ep_stats st;
    assert_int_equal(store_endpoint_stats(rd(), "h", now, &st), 0);
    assert_int_equal(st.attempts_24h, 4);
    assert_int_equal(st.ok_24h, 2);
    assert_int_equal(st.attempts_1h, 3);
    assert_int_equal(st.ok_1h, 2);
    assert_int_equal(st.has_error, 1);
    assert_int_equal(st.error_status, 410);
    assert_int_equal(st.error_result, 2);
    assert_true(st.error_ms == now - 400);
    assert_string_equal(st.error_detail, "HTTP 410 Gone");
    assert_int_equal(st.pending, 0);
    assert_int_equal(st.dead, 1);
    assert_int_equal(store_endpoint_stats(rd(), "nobody", now, &st), 0);
    assert_int_equal(st.attempts_24h, 0);
    assert_int_equal(st.has_error, 0);
    spool_close(s);
}

/* The portal's reads: pages newest first by keyset, by type and time; types seen; replays. */
static void test_pages_types_and_replays(void **state)
{
    (void)state;
    sy_spool *s = open_spool();
    static const char *const a[] = {"a"}, *const b[] = {"b"};
    int64_t r[6];
    put_typed(s, "e1", "job.started", "acme", 1000, a, 1, &r[0]);
    put_typed(s, "e2", "job.done", "acme", 2000, a, 1, &r[1]);
    put_typed(s, "e3", "job.done", "acme", 3000, a, 1, &r[2]);
    put_typed(s, "e4", "job.done", "acme", 4000, a, 1, &r[3]);
    put_typed(s, "x1", "beta.only", "beta", 5000, b, 1, &r[4]);
    put_typed(s, "e5", "invoice.paid", "acme", 6000, a, 1, &r[5]);
    char want[64];
    store_dlv_filter f = {.desc = 1, .limit = 2};
    snprintf(want, sizeof want, "%lld,%lld", (long long)r[5], (long long)r[4]);
    assert_string_equal(ids_of(store_deliveries_json(rd(), &f, NULL)), want);
    f.before_id = r[4];
    snprintf(want, sizeof want, "%lld,%lld", (long long)r[3], (long long)r[2]);
    assert_string_equal(ids_of(store_deliveries_json(rd(), &f, NULL)), want);
    f.before_id = r[1];
    snprintf(want, sizeof want, "%lld", (long long)r[0]);
    assert_string_equal(ids_of(store_deliveries_json(rd(), &f, NULL)), want);
    store_dlv_filter typed = {.event_type = "job.done", .since_ms = 2000, .until_ms = 4000,
                           .limit = 10};
    snprintf(want, sizeof want, "%lld,%lld", (long long)r[1], (long long)r[2]);
    assert_string_equal(ids_of(store_deliveries_json(rd(), &typed, NULL)),
                        want);
    store_scope acme = {"acme", "[\"a\"]"};
    store_dlv_filter all_desc = {.desc = 1, .limit = 10, .event_type = "beta.only"};
    assert_string_equal(ids_of(store_deliveries_json(rd(), &all_desc, &acme)),
                        "");
    char *t = store_deliveries_json(rd(), &f, NULL);
    cJSON *page = cJSON_Parse(t);
    free(t);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(page, 0), "received_ms")->valueint,
                     1000);
    cJSON_Delete(page);
    store_dlv_filter bad = {.state = "lost", .limit = 1};
    assert_null(store_deliveries_json(rd(), &bad, NULL));
    assert_string_equal(store_error(rd()), "state must be pending, done or dead");

    t = store_event_types_json(rd(), "acme", 100);
    assert_string_equal(t, "[\"invoice.paid\",\"job.done\",\"job.started\"]");
    free(t);
    t = store_event_types_json(rd(), NULL, 2); /* the latest two events only */
    assert_string_equal(t, "[\"beta.only\",\"invoice.paid\"]");
    free(t);

    for (int i = 0; i < 3; i++)
        record(s, r[i], DLV_DEAD, 1, 2, 410, 7000, 1, "HTTP 410");
    record(s, r[4], DLV_DEAD, 1, 2, 410, 7000, 1, "HTTP 410");
    dead_filter of_a = {.endpoint = "a"};
    assert_int_equal(store_replay(rd(), &of_a), 3);
    assert_int_equal(store_replay(rd(), &of_a), 0);
    store_dlv_filter dead = {.state = "dead", .limit = 100};
    assert_string_equal(ids_of(store_deliveries_json(rd(), &dead, NULL)),
                        (snprintf(want, sizeof want, "%lld", (long long)r[4]), want));
    assert_int_equal(store_replay_delivery(rd(), r[4]), 1);
    assert_int_equal(store_replay_delivery(rd(), r[4]), 0);

    t = store_events_json(rd(), 0, 1, 2, "acme");
    cJSON *ev = cJSON_Parse(t);
    free(t);
    const cJSON *evs = cJSON_GetObjectItem(ev, "events");
    assert_int_equal(cJSON_GetArraySize(evs), 2);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetArrayItem(evs, 0),
                                                                "event"), "event_id")->valuestring,
                        "e5");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetArrayItem(evs, 1),
                                                                "event"), "event_id")->valuestring,
                        "e4");
    cJSON_Delete(ev);
    spool_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_kill_endpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scope_and_owner, setup, teardown),
        cmocka_unit_test_setup_teardown(test_attempts_and_stats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pages_types_and_replays, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
