/*
 * test_store_rows.c - the SQLite store reading rows it did not write the
 * way it writes them: a spool edited by hand with the sqlite3 shell, left
 * damaged, or holding what a plugin reported (details need not be UTF-8).
 * Every read still answers for every row, counts agree with listings, and
 * what goes out as JSON or to a terminal is clean. Found by
 * tests/fuzz/fuzz_store.c (docs/HARDENING.md); the fuzz target's corpus
 * has the same inputs as regress_* seeds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "envelope.h"
#include "store.h"
#include "store_int.h"

static char path[64];
static sy_store *wr;
static sqlite3 *raw;

static int setup(void **state)
{
    (void)state;
    snprintf(path, sizeof path, "/tmp/sy_storerows_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    unlink(path);
    char err[512];
    store_conf c = {.kind = STORE_SQLITE, .path = path, .sync = "normal",
                    .retention_ms = 3600000, .dedup_window_ms = 3600000};
    wr = store_open(&c, STORE_WRITER, err, sizeof err);
    assert_non_null(wr);
    assert_int_equal(sqlite3_open(path, &raw), SQLITE_OK);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char p[80];
    sqlite3_close(raw);
    store_close(wr);
    static const char *const sfx[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", path, sfx[i]);
        unlink(p);
    }
    return 0;
}

/* What the operator types into the sqlite3 shell. */
static void shell(const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(raw, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fail_msg("%s: %s", sql, msg);
}

/* One event of body (TEXT), and a pending delivery of it to endpoint due at T0. */
static void event_row(int id, const char *endpoint, const char *body)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "INSERT INTO events(id, event_id, received_ms, body) VALUES (%d, 'ev-%d', 1000, '%s');"
             "INSERT INTO deliveries(id, event_rowid, endpoint, state, next_ms, updated_ms)"
             " VALUES (%d, %d, '%s', 0, 1000, 1000)",
             id, id, body, id, id, endpoint);
    shell(sql);
}

static char *listing(const char *state)
{
    store_dlv_filter f = {.state = state, .limit = 100};
    return store_deliveries_json(wr, &f, NULL);
}

#define ENV(id, org) "{\"event_id\":\"ev-" #id "\",\"event_type\":\"order.created\"," \
                     "\"org_id\":\"" org "\",\"data\":{}}"

/* A body that is not JSON stopped json_extract, and with it the whole listing, at its row. */
static void test_body_not_json_ends_no_read(void **state)
{
    (void)state;
    event_row(1, "a", "not json");
    event_row(2, "a", ENV(2, "acme"));
    char *t = listing(NULL);
    assert_non_null(t);
    cJSON *j = cJSON_Parse(t);
    assert_int_equal(cJSON_GetArraySize(j), 2);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(j, 0), "event_type")->valuestring,
                        "");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(j, 1), "event_type")->valuestring,
                        "order.created");
    cJSON_Delete(j);
    free(t);

    store_scope acme = {"acme", "[\"a\"]"};
    store_dlv_filter f = {.limit = 100};
    t = store_deliveries_json(wr, &f, &acme);
    assert_non_null(t);
    j = cJSON_Parse(t);
    assert_int_equal(cJSON_GetArraySize(j), 1);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(j, 0), "id")->valueint, 2);
    cJSON_Delete(j);
    free(t);

    t = store_event_types_json(wr, NULL, 10);
    assert_string_equal(t, "[\"order.created\"]");
    free(t);
    t = store_events_json(wr, 0, 0, 10, "acme");
    assert_non_null(t);
    j = cJSON_Parse(t);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "events")), 1);
    cJSON_Delete(j);
    free(t);

    char ep[64], org[64];
    assert_int_equal(store_delivery_owner(wr, 1, ep, sizeof ep, org, sizeof org), 1);
    assert_string_equal(org, "");
    assert_int_equal(store_delivery_owner(wr, 2, ep, sizeof ep, org, sizeof org), 1);
    assert_string_equal(org, "acme");
}

/* A read that stops on an error fails the call: it used to pass for a short (here empty) page. */
static void test_read_error_is_an_error(void **state)
{
    (void)state;
    event_row(1, "a", ENV(1, "acme"));
    store_scope broken = {"acme", "[\"a\""};
    store_dlv_filter f = {.limit = 100};
    assert_null(store_deliveries_json(wr, &f, &broken));
    assert_non_null(strstr(store_error(wr), "malformed JSON"));
}

/* endpoint_state's TEXT PRIMARY KEY takes a NULL: store_load_disabled passed it to strdup. */
static void test_disabled_row_without_id(void **state)
{
    (void)state;
    shell("INSERT INTO endpoint_state VALUES (NULL, 1, 'x'), ('b', 2, ''), ('a', 3, '')");
    char **ids;
    size_t n;
    assert_int_equal(store_load_disabled(wr, &ids, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(ids[0], "a");
    assert_string_equal(ids[1], "b");
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
}

/* A state other than the three: counted as dead (or, as TEXT, as pending) yet in no dead list. */
static void test_unknown_state_counted_nowhere(void **state)
{
    (void)state;
    for (int i = 1; i <= 6; i++)
        event_row(i, "a", ENV(1, "acme"));
    shell("UPDATE deliveries SET state = 1 WHERE id = 2; UPDATE deliveries SET state = 2 WHERE id = 3;"
          "UPDATE deliveries SET state = 3 WHERE id = 4;"
          "UPDATE deliveries SET state = 'gone' WHERE id = 5;"
          /* -1 is what a listing of any state was asked with */
          "UPDATE deliveries SET state = -1 WHERE id = 6");
    spool_counts c;
    assert_int_equal(store_count(wr, &c), 0);
    assert_int_equal(c.pending, 1);
    assert_int_equal(c.done, 1);
    assert_int_equal(c.dead, 1);
    assert_int_equal(c.events, 6);
    char *t = listing(NULL);
    assert_non_null(t);
    cJSON *j = cJSON_Parse(t);
    assert_int_equal(cJSON_GetArraySize(j), 3);
    cJSON_Delete(j);
    free(t);
    dead_filter any = {0};
    FILE *out = fopen("/dev/null", "w");
    assert_int_equal(store_list_dead(wr, &any, 0, out), 1);
    fclose(out);
}

/* The arrival filter's open ends were real bounds: a time outside [0, INT64_MAX) hid the row. */
static void test_any_arrival_time_is_listed(void **state)
{
    (void)state;
    event_row(1, "a", ENV(1, "acme"));
    event_row(2, "a", ENV(2, "acme"));
    event_row(3, "a", ENV(3, "acme"));
    shell("UPDATE events SET received_ms = -5 WHERE id = 1;"
          "UPDATE events SET received_ms = 9223372036854775807 WHERE id = 2;"
          "UPDATE events SET received_ms = 'yesterday' WHERE id = 3");
    char *t = listing(NULL);
    cJSON *j = cJSON_Parse(t);
    assert_int_equal(cJSON_GetArraySize(j), 3);
    cJSON_Delete(j);
    free(t);
    store_dlv_filter f = {.since_ms = 1, .until_ms = 2000, .limit = 100};
    t = store_deliveries_json(wr, &f, NULL);
    assert_string_equal(t, "[]");
    free(t);
}

/*
 * An empty body: sqlite3_column_blob gives NULL, and read_row passed it to
 * memcpy with length 0 (undefined: `make check`'s UBSan stops there).
 */
static void test_empty_body_pages(void **state)
{
    (void)state;
    event_row(1, "a", "");
    const char *known[] = {"a"};
    assert_int_equal(store_begin(wr), 0);
    assert_int_equal(store_known(wr, known, 1), 0);
    assert_int_equal(store_commit(wr), 0);
    spool_row rows[2];
    assert_int_equal(store_page(wr, 2000, 2, rows), 1);
    assert_int_equal(rows[0].body_len, 0);
    assert_string_equal(rows[0].body, "");
    free((char *)rows[0].endpoint_id);
    free((char *)rows[0].body);
}

/* An event stored and a delivery of it to "a" that died with detail, the writer's way. */
static int64_t died_with(const char *detail, int64_t at_ms)
{
    const char *body = ENV(7, "acme");
    char why[128];
    sy_event *ev = NULL;
    assert_int_equal(envelope_parse(body, strlen(body), 4096, 16, &ev, why, sizeof why), ENV_OK);
    ev->received_ms = at_ms;
    const char *eps[] = {"a"};
    int64_t id = 0;
    spool_put p = {.ev = ev, .endpoint_ids = eps, .n = 1, .ids = &id}, *pp = &p;
    spool_record r = {.state = DLV_DEAD, .attempt = 1, .first_ms = at_ms, .next_ms = at_ms,
                      .status = 301, .attempt_result = 2, .at_ms = at_ms};
    snprintf(r.detail, sizeof r.detail, "%s", detail);
    assert_int_equal(store_begin(wr), 0);
    assert_int_equal(store_put(wr, &pp, 1), 0);
    r.delivery_id = id;
    assert_int_equal(store_records(wr, &r, 1), 0);
    assert_int_equal(store_commit(wr), 0);
    event_unref(ev);
    return id;
}

/* A plugin's detail is not always UTF-8 (here cut inside a character): the JSON must be. */
static void test_json_is_utf8(void **state)
{
    (void)state;
    int64_t id = died_with("HTTP 301 redirect to http://x/caf\xc3 \xff", 1700000000000);
    char *t = listing("dead");
    assert_non_null(t);
    assert_true(envelope_utf8_valid(t, strlen(t)));
    assert_non_null(strstr(t, "\"last_detail\":\"HTTP 301 redirect to http://x/caf? ?\""));
    free(t);
    t = store_attempts_json(wr, id, 0, 10);
    assert_non_null(t);
    assert_true(envelope_utf8_valid(t, strlen(t)));
    assert_non_null(strstr(t, "\"detail\":\"HTTP 301 redirect to http://x/caf? ?\""));
    free(t);
}

/* `switchyard dead list` prints one line per dead delivery, control bytes and all. */
static void test_dead_list_one_line_each(void **state)
{
    (void)state;
    died_with("line one\nline two \x1b[2J", 1700000000000);
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    dead_filter any = {0};
    assert_int_equal(store_list_dead(wr, &any, 0, out), 1);
    fclose(out);
    assert_non_null(strstr(buf, "  line one?line two ?[2J\n"));
    assert_ptr_equal(strchr(buf, '\n'), buf + len - 1);
    free(buf);
}

/* The feed's "event" is an object or null (docs/openapi.json): a body that is neither is null. */
static void test_feed_event_object_or_null(void **state)
{
    (void)state;
    event_row(1, "a", "5");
    event_row(2, "a", "[1]");
    shell("INSERT INTO events(id, event_id, received_ms, body)"
          " VALUES (3, 'ev-3', 1000, CAST(X'7B2261223A22FF227D' AS TEXT))");
    event_row(4, "a", "{\"a\":1}");
    char *t = store_events_json(wr, 0, 0, 10, NULL);
    assert_string_equal(t, "{\"events\":[{\"cursor\":1,\"event\":null},{\"cursor\":2,\"event\":null},"
                           "{\"cursor\":3,\"event\":null},{\"cursor\":4,\"event\":{\"a\":1}}],"
                           "\"next\":4}");
    free(t);
}

/* ---- the reads' statement cache (store_sqlite.c query/release) -------------------- */

/* Two dead deliveries, of events 1 and 2, to endpoints a and b. */
static void two_dead(void)
{
    event_row(1, "a", "{}");
    event_row(2, "b", "{}");
    shell("UPDATE deliveries SET state = 2");
}

static long list_dead(const dead_filter *f)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    long n = store_list_dead(wr, f, 0, out);
    fclose(out);
    free(buf);
    return n;
}

/* A kept statement starts with no bindings: a filter left out is not the last call's. */
static void test_kept_statement_forgets_bindings(void **state)
{
    (void)state;
    two_dead();
    dead_filter a = {.endpoint = "a"}, any = {0}, ev2 = {.event_id = "ev-2"};
    assert_int_equal(list_dead(&a), 1);
    assert_int_equal(list_dead(&any), 2);
    assert_int_equal(list_dead(&ev2), 1);
    assert_int_equal(list_dead(&any), 2);
    assert_int_equal(store_replay(wr, &a), 1);
    assert_int_equal(store_replay(wr, &any), 1); /* b's; a's is pending now */
    assert_int_equal(list_dead(&any), 0);
}

/* A read done holds no snapshot: the WAL can be checkpointed to nothing right after. */
static void test_reads_leave_no_snapshot(void **state)
{
    (void)state;
    two_dead();
    spool_counts c = {0};
    dead_filter any = {0};
    assert_int_equal(store_count(wr, &c), 0);
    assert_int_equal(list_dead(&any), 2);
    char *t = store_events_json(wr, 0, 0, 10, NULL);
    assert_non_null(t);
    free(t);
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_prepare_v2(raw, "PRAGMA wal_checkpoint(TRUNCATE)", -1, &q, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(q, 0), 0); /* not blocked by a reader */
    assert_int_equal(sqlite3_column_int(q, 1), 0); /* the log is empty */
    sqlite3_finalize(q);
}

/* A read whose row callback runs the same read again gets its own statement. */
typedef struct nest {
    sy_store *st;
    int depth, rows, inner_rows;
} nest;

static void count_inner(void *arg, const store_row *r)
{
    (void)r;
    ((nest *)arg)->inner_rows++;
}

static void reenter(void *arg, const store_row *r)
{
    (void)r;
    nest *n = arg;
    n->rows++;
    dead_filter any = {0};
    assert_int_equal(n->st->ops->dead(n->st, &any, count_inner, n), 2);
}

static void test_read_inside_the_same_read(void **state)
{
    (void)state;
    two_dead();
    nest n = {.st = wr};
    dead_filter any = {0};
    assert_int_equal(wr->ops->dead(wr, &any, reenter, &n), 2);
    assert_int_equal(n.rows, 2);
    assert_int_equal(n.inner_rows, 4);
    assert_int_equal(list_dead(&any), 2); /* and the kept one still works after */
}

/* SELECT count(*) of sql through the shell's connection. */
static long shell_count(const char *sql)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(raw, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    long n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

/*
 * Pruning past the retention (1 h here) drops finished deliveries and old
 * attempts, then events no delivery refers to past the dedup window; it
 * keeps what is pending or dead whatever its age. Pruned twice, at two
 * times: the kept statements take the new cut each time.
 */
static void test_prune_cuts_at_each_call(void **state)
{
    (void)state;
    const long long now = 100000000, hour = 3600000;
    char sql[1024];
    snprintf(sql, sizeof sql,
             "INSERT INTO events(id, event_id, received_ms, body) VALUES"
             " (1, 'old-done', 1000, '{}'), (2, 'old-pending', 1000, '{}'),"
             " (3, 'new-done', %lld, '{}'), (4, 'old-dead', 1000, '{}'),"
             " (5, 'orphan', 1000, '{}');"
             "INSERT INTO deliveries(id, event_rowid, endpoint, state, next_ms, updated_ms) VALUES"
             " (1, 1, 'a', 1, 0, 1000), (2, 2, 'a', 0, 0, 1000), (3, 3, 'a', 1, 0, %lld),"
             " (4, 4, 'a', 2, 0, 1000);"
             "INSERT INTO attempts(delivery_id, attempt, at_ms, result, status, detail, latency_ms)"
             " VALUES (1, 1, 1000, 0, 200, '', 1), (3, 1, %lld, 0, 200, '', 1)",
             now - 10, now - 10, now - 10);
    shell(sql);
    assert_int_equal(store_prune(wr, now), 0);
    assert_int_equal(shell_count("SELECT group_concat(id) = '2,3,4' FROM "
                                 "(SELECT id FROM deliveries ORDER BY id)"), 1);
    assert_int_equal(shell_count("SELECT group_concat(id) = '2,3,4' FROM "
                                 "(SELECT id FROM events ORDER BY id)"), 1);
    assert_int_equal(shell_count("SELECT count(*) FROM attempts WHERE delivery_id = 3"), 1);
    assert_int_equal(shell_count("SELECT count(*) FROM attempts"), 1);

    /* An hour on, the finished one and its attempt go too; its event with them. */
    assert_int_equal(store_prune(wr, now + hour), 0);
    assert_int_equal(shell_count("SELECT group_concat(id) = '2,4' FROM "
                                 "(SELECT id FROM deliveries ORDER BY id)"), 1);
    assert_int_equal(shell_count("SELECT group_concat(id) = '2,4' FROM "
                                 "(SELECT id FROM events ORDER BY id)"), 1);
    assert_int_equal(shell_count("SELECT count(*) FROM attempts"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_body_not_json_ends_no_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_error_is_an_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disabled_row_without_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_state_counted_nowhere, setup, teardown),
        cmocka_unit_test_setup_teardown(test_any_arrival_time_is_listed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_body_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_is_utf8, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dead_list_one_line_each, setup, teardown),
        cmocka_unit_test_setup_teardown(test_feed_event_object_or_null, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kept_statement_forgets_bindings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reads_leave_no_snapshot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_inside_the_same_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prune_cuts_at_each_call, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
