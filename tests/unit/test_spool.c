/*
 * test_spool.c - the SQLite spool: group commit and callbacks after
 * COMMIT, dedup, outcome records and the attempts log, the pager and
 * leases, replay of dead deliveries, and migration from schema version 1;
 * the store's indexes: a version-3 file is migrated to the partial indexes
 * of version 4 with its rows intact, and every statement the store
 * prepares (the writer's and the reads') finds pending and dead rows
 * through an index, never by reading the whole deliveries table, but for
 * the few that read every row by design; checkpoints run on a thread of
 * their own (sy-ckpt) and the WAL stays bounded; with the hot log, an
 * event whose sync failed is never answered "dup" before it is folded,
 * and a frame written behind a failing sync is not acknowledged by the
 * next sync.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <sqlite3.h>

#include "spool.h"
#include "spool_log.h"
#include "store_sqlite_int.h"

static char path[128];
/* The spool runs with its hot log (core.spool_log) in the tests set up with setup_hot. */
static int hot;

static int setup(void **state)
{
    (void)state;
    hot = 0;
    strcpy(path, "/tmp/sy_spool_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    unlink(path);
    return 0;
}

static int setup_hot(void **state)
{
    setup(state);
    hot = 1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char p[160];
    spool_log_drop_below(path, INT64_MAX);
    unlink(path);
    snprintf(p, sizeof p, "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", path);
    unlink(p);
    return 0;
}

static sy_event *ev_make(const char *id)
{
    char body[256], why[128];
    snprintf(body, sizeof body, "{\"event_id\":\"%s\",\"event_type\":\"job.done\",\"data\":{}}", id);
    sy_event *ev = NULL;
    assert_int_equal(envelope_parse(body, strlen(body), 4096, 16, &ev, why, sizeof why), ENV_OK);
    ev->received_ms = 1000;
    return ev;
}

/* Results reported by spool callbacks. */
typedef struct got {
    pthread_mutex_t mu;
    int two;
    int calls;
    spool_status st[64];
    int64_t ids[64][2];
} got;

static void on_put(void *arg, spool_status st, sy_event *ev, const int64_t *ids)
{
    got *g = arg;
    (void)ev;
    pthread_mutex_lock(&g->mu);
    g->st[g->calls] = st;
    /* Every put in these tests names at least one endpoint; two only where g->two is set. */
    if (ids) {
        g->ids[g->calls][0] = ids[0];
        if (g->two)
            g->ids[g->calls][1] = ids[1];
    }
    g->calls++;
    pthread_mutex_unlock(&g->mu);
}

static sy_spool *open_spool(void)
{
    char err[512];
    /* With the hot log, "full": its frames are then synced by a thread of their own. */
    spool_opts o = {.path = path, .sync = hot ? "full" : "normal", .retention_ms = 3600000,
                    .dedup_window_ms = 3600000, .hot_log = hot};
    sy_spool *s = spool_open(&o, err, sizeof err);
    if (!s)
        fail_msg("spool_open: %s", err);
    return s;
}

static int64_t q1(const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    int64_t v = -1;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static const char *const two_eps[] = {"a", "b"};

static void test_put_dedup_and_commit(void **state)
{
    (void)state;
    sy_spool *s = open_spool();
    assert_int_equal(spool_start(s), 0);
    got g = {.mu = PTHREAD_MUTEX_INITIALIZER, .two = 1};
    sy_event *e1 = ev_make("e1"), *e1b = ev_make("e1"), *e2 = ev_make("e2");
    spool_put_event(s, e1, two_eps, 2, on_put, &g);
    spool_put_event(s, e1b, two_eps, 2, on_put, &g); /* same id in the same batch */
    spool_put_event(s, e2, two_eps, 2, on_put, &g);
    assert_int_equal(spool_flush(s, 5000), 0);
    assert_int_equal(g.calls, 3);
    assert_int_equal(g.st[0], SPOOL_OK);
    assert_int_equal(g.st[1], SPOOL_DUP);
    assert_int_equal(g.st[2], SPOOL_OK);
    assert_true(g.ids[0][0] > 0 && g.ids[0][1] == g.ids[0][0] + 1);
    /* After the flush the rows are committed and visible to another connection. */
    assert_int_equal(q1("SELECT count(*) FROM events"), 2);
    assert_int_equal(q1("SELECT count(*) FROM deliveries WHERE state = 0 AND lease != 0"), 4);
    assert_int_equal(q1("SELECT length(body) FROM events WHERE event_id = 'e1'"),
                     (int64_t)e1->body_len);
    event_unref(e1);
    event_unref(e1b);
    event_unref(e2);
    spool_close(s);
    /* A new process sees the event ids too. */
    s = open_spool();
    assert_int_equal(spool_start(s), 0);
    sy_event *again = ev_make("e2");
    got g2 = {.mu = PTHREAD_MUTEX_INITIALIZER};
    spool_put_event(s, again, two_eps, 1, on_put, &g2);
    assert_int_equal(spool_flush(s, 5000), 0);
    assert_int_equal(g2.st[0], SPOOL_DUP);
    event_unref(again);
    spool_close(s);
}

static void test_records_and_attempts(void **state)
{
    (void)state;
    sy_spool *s = open_spool();
    assert_int_equal(spool_start(s), 0);
    got g = {.mu = PTHREAD_MUTEX_INITIALIZER};
    sy_event *e = ev_make("r1");
    spool_put_event(s, e, two_eps, 1, on_put, &g);
    assert_int_equal(spool_flush(s, 5000), 0);
    spool_record r = {.delivery_id = g.ids[0][0], .state = DLV_PENDING, .attempt = 1,
                      .first_ms = 5000, .next_ms = 10000, .status = 503, .attempt_result = 1,
                      .at_ms = 5000, .latency_ms = 42, .leased = 0};
    strcpy(r.detail, "HTTP 503");
    spool_record_outcome(s, &r);
    r.state = DLV_DEAD;
    r.attempt = 2;
    r.status = 410;
    r.at_ms = 10000;
    strcpy(r.detail, "gone");
    spool_record_outcome(s, &r);
    assert_int_equal(spool_flush(s, 5000), 0);
    assert_int_equal(q1("SELECT state FROM deliveries"), DLV_DEAD);
    assert_int_equal(q1("SELECT attempt FROM deliveries"), 2);
    assert_int_equal(q1("SELECT last_status FROM deliveries"), 410);
    assert_int_equal(q1("SELECT count(*) FROM attempts"), 2);
    assert_int_equal(q1("SELECT latency_ms FROM attempts WHERE attempt = 1"), 42);
    assert_int_equal(q1("SELECT status FROM attempts WHERE attempt = 1"), 503);
    spool_close(s);
    event_unref(e);

    /* Replay by endpoint puts it back, fresh and unleased. */
    char err[256];
    store_conf sc = {.kind = STORE_SQLITE, .path = path};
    sy_store *rd = store_open(&sc, STORE_READER, err, sizeof err);
    assert_non_null(rd);
    assert_int_equal(store_replay(rd, &(dead_filter){.endpoint = "nope"}), 0);
    assert_int_equal(store_replay(rd, &(dead_filter){.event_id = "r1"}), 1);
    assert_int_equal(q1("SELECT state FROM deliveries"), DLV_PENDING);
    assert_int_equal(q1("SELECT attempt FROM deliveries"), 0);
    assert_int_equal(q1("SELECT lease FROM deliveries"), 0);
    assert_int_equal(store_replay(rd, &(dead_filter){0}), 0);
    spool_counts c;
    assert_int_equal(store_count(rd, &c), 0);
    assert_int_equal(c.pending, 1);
    assert_int_equal(c.dead, 0);
    assert_int_equal(c.events, 1);
    store_close(rd);
}

/* Pager: unleased due rows are handed over once and leased. */
typedef struct pager {
    int want;
    int loaded;
    int64_t ids[16];
    uint32_t attempts[16];
} pager;

static size_t p_want(void *arg)
{
    pager *p = arg;
    return (size_t)p->want;
}

static void p_load(void *arg, const spool_row *rows, size_t n)
{
    pager *p = arg;
    for (size_t i = 0; i < n; i++) {
        const spool_row *row = &rows[i];
        assert_string_equal(row->endpoint_id, "a");
        assert_non_null(strstr(row->body, "\"event_type\":\"job.done\""));
        p->attempts[p->loaded] = row->attempt;
        p->ids[p->loaded++] = row->id;
    }
}

static const char *const only_a[] = {"a"};

static void test_pager_and_leases(void **state)
{
    (void)state;
    /* First run: three deliveries, two of them spilled (unleased), one far in the future. */
    sy_spool *s = open_spool();
    assert_int_equal(spool_start(s), 0);
    got g = {.mu = PTHREAD_MUTEX_INITIALIZER};
    sy_event *ev[3] = {ev_make("p1"), ev_make("p2"), ev_make("p3")};
    for (int i = 0; i < 3; i++)
        spool_put_event(s, ev[i], two_eps, 1, on_put, &g);
    assert_int_equal(spool_flush(s, 5000), 0);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    for (int i = 0; i < 3; i++) {
        spool_record r = {.delivery_id = g.ids[i][0], .state = DLV_PENDING, .attempt = 3,
                          .first_ms = now, .next_ms = i == 2 ? now + 3600000 : now - 1,
                          .attempt_result = -1, .leased = i == 0};
        spool_record_outcome(s, &r);
    }
    assert_int_equal(spool_flush(s, 5000), 0);
    spool_close(s);
    for (int i = 0; i < 3; i++)
        event_unref(ev[i]);

    /* A new process: leases of the old one are void, so p1 and p2 are due, p3 is not. */
    pager p = {.want = 10};
    s = open_spool();
    spool_set_pager(s, p_want, p_load, &p, 20, 0);
    spool_set_known(s, only_a, 1);
    assert_int_equal(spool_start(s), 0);
    for (int i = 0; i < 100 && p.loaded < 2; i++)
        usleep(10000);
    usleep(100000); /* several more pager passes: nothing is handed over twice */
    assert_int_equal(p.loaded, 2);
    assert_int_equal(p.ids[0], g.ids[0][0]);
    assert_int_equal(p.ids[1], g.ids[1][0]);
    assert_int_equal(p.attempts[0], 3);
    spool_close(s);
    assert_int_equal(q1("SELECT count(*) FROM deliveries WHERE lease != 0"), 2);
}

static void test_migration_from_v1(void **state)
{
    (void)state;
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    const char *v1 =
        "CREATE TABLE events (id INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE,"
        " received_ms INTEGER NOT NULL, body BLOB NOT NULL);"
        "CREATE TABLE deliveries (id INTEGER PRIMARY KEY, event_rowid INTEGER NOT NULL,"
        " endpoint TEXT NOT NULL, state INTEGER NOT NULL, attempt INTEGER NOT NULL DEFAULT 0,"
        " first_ms INTEGER NOT NULL DEFAULT 0, next_ms INTEGER NOT NULL,"
        " last_status INTEGER NOT NULL DEFAULT 0, last_detail TEXT NOT NULL DEFAULT '',"
        " updated_ms INTEGER NOT NULL);"
        "CREATE INDEX deliveries_due ON deliveries(state, next_ms);"
        "CREATE TABLE attempts (id INTEGER PRIMARY KEY, delivery_id INTEGER NOT NULL,"
        " attempt INTEGER NOT NULL, at_ms INTEGER NOT NULL, result INTEGER NOT NULL,"
        " status INTEGER NOT NULL, detail TEXT NOT NULL);"
        "INSERT INTO events VALUES (1, 'old1', 1, '{\"event_id\":\"old1\",\"event_type\":\"job.done\"}');"
        "INSERT INTO deliveries(event_rowid, endpoint, state, next_ms, updated_ms) VALUES (1, 'a', 0, 0, 0);"
        "PRAGMA user_version = 1;";
    assert_int_equal(sqlite3_exec(db, v1, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    pager p = {.want = 10};
    sy_spool *s = open_spool();
    assert_int_equal(q1("PRAGMA user_version"), STORE_SQLITE_SCHEMA);
    spool_set_pager(s, p_want, p_load, &p, 20, 0);
    spool_set_known(s, only_a, 1);
    p.loaded = 0;
    assert_int_equal(spool_start(s), 0);
    for (int i = 0; i < 100 && p.loaded < 1; i++)
        usleep(10000);
    spool_close(s);
    /* The pending delivery of the old file is delivered by the new version. */
    assert_int_equal(p.loaded, 1);
    assert_int_equal(q1("SELECT count(*) FROM deliveries WHERE lease != 0"), 1);
}

/* ---- batches, known endpoints, releases, disabled state ------------------------ */

static int batch_done;

static void on_batch(void *arg)
{
    (void)arg;
    __atomic_store_n(&batch_done, 1, __ATOMIC_RELEASE);
}

static void wait_batch(void)
{
    for (int i = 0; i < 500 && !__atomic_load_n(&batch_done, __ATOMIC_ACQUIRE); i++)
        usleep(10000);
    assert_int_equal(__atomic_load_n(&batch_done, __ATOMIC_ACQUIRE), 1);
    batch_done = 0;
}

static void test_batch_put(void **state)
{
    (void)state;
    sy_spool *s = open_spool();
    assert_int_equal(spool_start(s), 0);
    sy_event *e[3] = {ev_make("b1"), ev_make("b2"), ev_make("b1")};
    int64_t rows[5] = {0};
    spool_put puts[3] = {
        {.ev = e[0], .endpoint_ids = two_eps, .n = 2, .ids = rows},
        {.ev = e[1], .endpoint_ids = two_eps, .n = 1, .ids = rows + 2},
        {.ev = e[2], .endpoint_ids = two_eps, .n = 2, .ids = rows + 3}, /* a duplicate */
    };
    spool_put_batch(s, puts, 3, on_batch, NULL);
    wait_batch();
    assert_int_equal(puts[0].status, SPOOL_OK);
    assert_int_equal(puts[1].status, SPOOL_OK);
    assert_int_equal(puts[2].status, SPOOL_DUP);
    assert_true(rows[0] > 0 && rows[1] > rows[0] && rows[2] > rows[1]);
    assert_int_equal(spool_queued(s), 0);
    spool_close(s);
    assert_int_equal(q1("SELECT count(*) FROM events"), 2);
    assert_int_equal(q1("SELECT count(*) FROM deliveries"), 3);
    for (int i = 0; i < 3; i++)
        event_unref(e[i]);
}

/*
 * A hundred and one events (every second one to two endpoints) and an
 * outcome for each delivery: with the hot log they are folded with
 * multi-row inserts (32 rows each, the rest one by one). Every row holds
 * its own values, and the attempts' ids follow the outcomes' order.
 */
static void test_fold_rows_in_order(void **state)
{
    (void)state;
    enum { N = 101 };
    sy_spool *s = open_spool();
    assert_int_equal(spool_start(s), 0);
    sy_event *e[N];
    spool_put puts[N];
    int64_t ids[N][2];
    for (int i = 0; i < N; i++) {
        char id[16];
        snprintf(id, sizeof id, "m%03d", i);
        e[i] = ev_make(id);
        e[i]->received_ms = 1000 + i;
        puts[i] = (spool_put){.ev = e[i], .endpoint_ids = two_eps, .n = 1 + i % 2, .ids = ids[i]};
    }
    spool_put_batch(s, puts, N, on_batch, NULL);
    wait_batch();
    spool_record recs[N * 2];
    size_t nrec = 0;
    for (int i = 0; i < N; i++) {
        assert_int_equal(puts[i].status, SPOOL_OK);
        for (size_t k = 0; k < puts[i].n; k++) {
            spool_record *r = &recs[nrec++];
            *r = (spool_record){.delivery_id = ids[i][k], .state = DLV_DONE, .attempt = 1,
                                .first_ms = 3000, .status = 200 + (int)(nrec % 50),
                                .attempt_result = 0, .at_ms = 3000 + (int64_t)nrec,
                                .latency_ms = 2};
            snprintf(r->detail, sizeof r->detail, "HTTP %d #%zu", r->status, nrec);
        }
    }
    spool_record_batch(s, recs, nrec);
    assert_int_equal(spool_flush(s, 5000), 0);
    spool_close(s);
    assert_int_equal(nrec, N + N / 2);
    assert_int_equal(q1("SELECT count(*) FROM events"), N);
    assert_int_equal(q1("SELECT count(*) FROM events WHERE received_ms = 1000 + "
                        "CAST(substr(event_id, 2) AS INTEGER) AND length(body) > 40"), N);
    /* Each delivery under its own event, to its endpoints, done as its outcome says. */
    assert_int_equal(q1("SELECT count(*) FROM deliveries"), (int64_t)nrec);
    assert_int_equal(q1("SELECT count(*) FROM deliveries d JOIN events e ON e.id = "
                        "d.event_rowid WHERE (CAST(substr(e.event_id, 2) AS INTEGER) % 2 = 0 "
                        "AND d.endpoint = 'a') OR (CAST(substr(e.event_id, 2) AS INTEGER) % 2 = 1"
                        " AND d.endpoint IN ('a', 'b'))"), (int64_t)nrec);
    assert_int_equal(q1("SELECT count(DISTINCT endpoint) FROM deliveries d JOIN events e ON "
                        "e.id = d.event_rowid WHERE e.event_id = 'm037'"), 2);
    assert_int_equal(q1("SELECT count(*) FROM deliveries WHERE state = 1 AND attempt = 1"),
                     (int64_t)nrec);
    /* One attempt row per outcome, with that outcome's values, in the outcomes' order. */
    assert_int_equal(q1("SELECT count(*) FROM attempts a JOIN deliveries d ON d.id = "
                        "a.delivery_id WHERE a.status = d.last_status AND a.detail = "
                        "d.last_detail AND a.latency_ms = 2"), (int64_t)nrec);
    assert_int_equal(q1("SELECT count(*) FROM attempts a JOIN attempts b ON b.id = a.id + 1 "
                        "WHERE b.delivery_id <= a.delivery_id OR b.at_ms != a.at_ms + 1"), 0);
    assert_int_equal(q1("SELECT count(*) FROM attempts"), (int64_t)nrec);
    for (int i = 0; i < N; i++)
        event_unref(e[i]);
}

/* The pager loads rows of known endpoints only; a release hands leased rows back. */
static void test_known_and_release(void **state)
{
    (void)state;
    sy_spool *s = open_spool();
    assert_int_equal(spool_start(s), 0);
    sy_event *e = ev_make("k1");
    int64_t rows[2];
    spool_put put = {.ev = e, .endpoint_ids = two_eps, .n = 2, .ids = rows};
    spool_put_batch(s, &put, 1, on_batch, NULL);
    wait_batch();
    /* (With the hot log the rows reach the database when their chunk is folded.) */
    assert_int_equal(spool_flush(s, 5000), 0);
    /* Both rows leased by this process (as deliveries in memory are). */
    assert_int_equal(q1("SELECT count(*) FROM deliveries WHERE lease != 0"), 2);
    spool_release_endpoint(s, "a");
    spool_flush(s, 5000);
    assert_int_equal(q1("SELECT count(*) FROM deliveries WHERE lease != 0 AND endpoint = 'b'"), 1);
    assert_int_equal(q1("SELECT count(*) FROM deliveries WHERE lease = 0 AND endpoint = 'a'"), 1);
    spool_close(s);

    /* A pager that knows only "b" finds nothing to load: b's row is still leased... */
    pager p = {.want = 10};
    s = open_spool();
    spool_set_pager(s, p_want, p_load, &p, 20, 0);
    static const char *const only_c[] = {"c"};
    spool_set_known(s, only_c, 1);
    assert_int_equal(spool_start(s), 0);
    usleep(150000);
    assert_int_equal(p.loaded, 0);
    /* ...until "a" is known: then its released row comes back. */
    spool_set_known(s, only_a, 1);
    for (int i = 0; i < 100 && p.loaded < 1; i++)
        usleep(10000);
    assert_int_equal(p.loaded, 1);
    assert_int_equal(p.ids[0], rows[0]);
    spool_close(s);
    event_unref(e);
}

static void test_disabled_state_persists(void **state)
{
    (void)state;
    sy_spool *s = open_spool();
    assert_int_equal(spool_start(s), 0);
    spool_set_disabled(s, "hook-b", 1234, "failing continuously for disable_after");
    spool_set_disabled(s, "hook-a", 99, "failing continuously for disable_after");
    spool_set_disabled(s, "hook-c", 5, "x");
    spool_clear_disabled(s, "hook-c");
    spool_close(s);
    s = open_spool();
    char **ids;
    size_t n;
    assert_int_equal(spool_load_disabled(s, &ids, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(ids[0], "hook-a");
    assert_string_equal(ids[1], "hook-b");
    free(ids[0]);
    free(ids[1]);
    free(ids);
    spool_close(s);
    assert_int_equal(q1("SELECT disabled_ms FROM endpoint_state WHERE endpoint = 'hook-b'"), 1234);
}

static void test_newer_schema_refused(void **state)
{
    (void)state;
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99;", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    char err[512], want[512];
    spool_opts o = {.path = path};
    assert_null(spool_open(&o, err, sizeof err));
    snprintf(want, sizeof want, "spool %s has schema version 99, newer than this switchyard (5)",
             path);
    assert_string_equal(err, want);
}

/* ---- indexes -------------------------------------------------------------- */

static sy_store *open_store(store_role role)
{
    char err[512];
    store_conf c = {.kind = STORE_SQLITE, .path = path, .sync = "normal",
                    .retention_ms = 3600000, .dedup_window_ms = 3600000};
    sy_store *st = store_open(&c, role, err, sizeof err);
    if (!st)
        fail_msg("%s", err);
    return st;
}

/* The file as switchyard wrote it at schema version 3: one pending, one done, one dead row. */
static const char *const v3_file =
    "CREATE TABLE events (id INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE,"
    " received_ms INTEGER NOT NULL, body BLOB NOT NULL);"
    "CREATE TABLE deliveries (id INTEGER PRIMARY KEY,"
    " event_rowid INTEGER NOT NULL REFERENCES events(id), endpoint TEXT NOT NULL,"
    " state INTEGER NOT NULL, attempt INTEGER NOT NULL DEFAULT 0,"
    " first_ms INTEGER NOT NULL DEFAULT 0, next_ms INTEGER NOT NULL,"
    " last_status INTEGER NOT NULL DEFAULT 0, last_detail TEXT NOT NULL DEFAULT '',"
    " updated_ms INTEGER NOT NULL, lease INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX deliveries_due ON deliveries(state, lease, next_ms);"
    "CREATE INDEX deliveries_event ON deliveries(event_rowid);"
    "CREATE TABLE attempts (id INTEGER PRIMARY KEY, delivery_id INTEGER NOT NULL,"
    " attempt INTEGER NOT NULL, at_ms INTEGER NOT NULL, result INTEGER NOT NULL,"
    " status INTEGER NOT NULL, detail TEXT NOT NULL, latency_ms INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX attempts_delivery ON attempts(delivery_id);"
    "CREATE TABLE endpoint_state (endpoint TEXT PRIMARY KEY, disabled_ms INTEGER NOT NULL,"
    " reason TEXT NOT NULL);"
    "INSERT INTO events VALUES (1, 'e1', 1, '{\"event_id\":\"e1\"}'),"
    " (2, 'e2', 1, '{\"event_id\":\"e2\"}'), (3, 'e3', 1, '{\"event_id\":\"e3\"}');"
    "INSERT INTO deliveries(id, event_rowid, endpoint, state, attempt, next_ms, last_detail,"
    " updated_ms, lease) VALUES (1, 1, 'a', 0, 0, 5, '', 5, 77), (2, 2, 'a', 1, 1, 0, 'ok', 6, 0),"
    " (3, 3, 'a', 2, 3, 0, 'gone', 7, 0);"
    "PRAGMA user_version = 3;";

/* The SQL of an index of deliveries, "" when there is none. */
static void index_sql(const char *name, char *out, size_t outlen)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT sql FROM sqlite_master WHERE type = 'index'"
                                            " AND tbl_name = 'deliveries' AND name = ?",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    snprintf(out, outlen, "%s",
             sqlite3_step(st) == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : "");
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void test_v3_file_migrates_to_partial_indexes(void **state)
{
    (void)state;
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, v3_file, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    sy_store *wr = open_store(STORE_WRITER);
    assert_int_equal(q1("PRAGMA user_version"), STORE_SQLITE_SCHEMA);
    char sql[256];
    index_sql("deliveries_due", sql, sizeof sql);
    assert_string_equal(sql, "CREATE INDEX deliveries_due ON deliveries(state, lease, next_ms)"
                             " WHERE state = 0");
    index_sql("deliveries_dead", sql, sizeof sql);
    assert_string_equal(sql, "CREATE INDEX deliveries_dead ON deliveries(updated_ms)"
                             " WHERE state = 2");
    assert_int_equal(q1("SELECT count(*) FROM pragma_index_list('deliveries') WHERE partial"), 2);

    /* The rows read as before: the old lease (another boot id) is void, so the pager takes it. */
    spool_counts c = {0};
    assert_int_equal(store_count(wr, &c), 0);
    assert_int_equal(c.pending, 1);
    assert_int_equal(c.leased, 1);
    assert_int_equal(c.done, 1);
    assert_int_equal(c.dead, 1);
    const char *const known[] = {"a"};
    assert_int_equal(store_known(wr, known, 1), 0);
    spool_row rows[4];
    assert_int_equal(store_page(wr, 100, 4, rows), 1);
    assert_int_equal(rows[0].id, 1);
    free((char *)rows[0].endpoint_id);
    free((char *)rows[0].body);
    store_ep_count *ec = NULL;
    assert_int_equal(store_endpoint_counts(wr, &ec), 1);
    assert_string_equal(ec[0].endpoint, "a");
    assert_int_equal(ec[0].pending, 1);
    assert_int_equal(ec[0].dead, 1);
    free(ec);
    store_ep_stats es = {0};
    assert_int_equal(store_endpoint_stats(wr, "a", 10, &es), 0);
    assert_int_equal(es.pending, 1);
    assert_int_equal(es.dead, 1);
    dead_filter any = {0};
    assert_int_equal(store_replay(wr, &any), 1);
    store_close(wr);
    /* An existing file keeps its page size (the default, 4 KiB, here). */
    assert_int_equal(q1("PRAGMA page_size"), 4096);
    assert_int_equal(q1("SELECT count(*) FROM deliveries WHERE state = 0"), 2);
}

static off_t file_size(const char *suffix);

/* A new file has 16 KiB pages (an event's body is 1 KiB), in WAL mode. */
static void test_new_file_page_size(void **state)
{
    (void)state;
    sy_store *wr = open_store(STORE_WRITER);
    /* Each migration step is checkpointed: the WAL holds the largest step's pages (about
     * 150 kB), not the four steps' (about 400 kB; a file size limit of a few hundred kB,
     * as in test_log_repeats.py, failed the first start). */
    assert_true(file_size("-wal") < 200000);
    store_close(wr);
    assert_int_equal(q1("PRAGMA page_size"), 16384);
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* ---- checkpoints ------------------------------------------------------------- */

static off_t file_size(const char *suffix)
{
    char p[160];
    snprintf(p, sizeof p, "%s%s", path, suffix);
    struct stat sb;
    return stat(p, &sb) == 0 ? sb.st_size : -1;
}

/* Stores n events of 1 KiB (ids from first), 500 in each transaction. */
static void put_kib_events(sy_store *wr, int first, int n)
{
    static char body[1024];
    memset(body, 'x', sizeof body);
    const char *const eps[] = {"a"};
    sy_event evs[500];
    char ids[500][24];
    int64_t dids[500];
    spool_put puts[500], *pp[500];
    for (int done = 0; done < n; done += 500) {
        for (int i = 0; i < 500; i++) {
            snprintf(ids[i], sizeof ids[i], "kib-%d", first + done + i);
            evs[i] = (sy_event){.body = body, .body_len = sizeof body, .event_id = ids[i],
                                .received_ms = 1};
            puts[i] = (spool_put){.ev = &evs[i], .endpoint_ids = eps, .n = 1, .ids = &dids[i]};
            pp[i] = &puts[i];
        }
        assert_int_equal(store_begin(wr), 0);
        assert_int_equal(store_put(wr, pp, 500), 0);
        assert_int_equal(store_commit(wr), 0);
    }
}

static int has_thread(const char *name)
{
    DIR *d = opendir("/proc/self/task");
    assert_non_null(d);
    int found = 0;
    for (struct dirent *e; !found && (e = readdir(d));) {
        char p[300], comm[32];
        snprintf(p, sizeof p, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(p, "r");
        if (!f)
            continue;
        found = fgets(comm, sizeof comm, f) && !strncmp(comm, name, strlen(name));
        fclose(f);
    }
    closedir(d);
    return found;
}

/*
 * Past 8 MiB of WAL the sy-ckpt thread copies it into the database file,
 * which the writer alone did only past 16 MiB: with 12 MiB committed the
 * file grows while the writer does nothing more.
 */
static void test_checkpoint_thread(void **state)
{
    (void)state;
    sy_store *wr = open_store(STORE_WRITER);
    assert_true(has_thread("sy-ckpt"));
    off_t before = file_size("");
    put_kib_events(wr, 0, 12000);
    for (int i = 0; i < 1000 && file_size("") < (8 << 20); i++)
        usleep(10000);
    assert_true(file_size("") >= (8 << 20));
    assert_true(before < (1 << 20));
    store_close(wr);
    assert_false(has_thread("sy-ckpt"));
    /* The writer's close checkpointed the rest and removed the WAL. */
    assert_int_equal(file_size("-wal"), -1);
    assert_int_equal(q1("SELECT count(*) FROM events"), 12000);
}

/*
 * A writer that commits all the time seldom lets the WAL start over after
 * a checkpoint of another connection; past 64 MiB it checkpoints itself
 * and the WAL does: 96 MiB of events leave it under 64 MiB and one commit.
 */
static void test_wal_stays_bounded(void **state)
{
    (void)state;
    sy_store *wr = open_store(STORE_WRITER);
    for (int k = 0; k < 12; k++) {
        put_kib_events(wr, k * 8000, 8000);
        if (file_size("-wal") >= (64 << 20) + (2 << 20))
            fail_msg("WAL of %lld bytes", (long long)file_size("-wal"));
    }
    store_close(wr);
    assert_int_equal(q1("SELECT count(*) FROM events"), 96000);
}

/* Every plan line of one statement's SQL that reads the whole deliveries table. */
static int full_scans(sqlite3 *db, const char *sql, char *why, size_t whylen)
{
    char eqp[4096];
    snprintf(eqp, sizeof eqp, "EXPLAIN QUERY PLAN %s", sql);
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_prepare_v2(db, eqp, -1, &q, NULL), SQLITE_OK);
    int n = 0;
    while (sqlite3_step(q) == SQLITE_ROW) {
        const char *d = (const char *)sqlite3_column_text(q, 3);
        /* "SCAN d", "SCAN deliveries", not "SCAN d USING INDEX ..." */
        if (!strcmp(d, "SCAN d") || !strcmp(d, "SCAN deliveries")) {
            snprintf(why, whylen, "%s: %s", d, sql);
            n++;
        }
    }
    sqlite3_finalize(q);
    return n;
}

/*
 * The statements allowed to read every row: the counts and the prune of
 * done rows (which read every done row, most of the table, either way),
 * and an endpoint's attempt figures, which go by endpoint over rows in any
 * state (no index has the endpoint first; as at schema version 3).
 */
static int reads_every_row(const char *sql)
{
    return !strncmp(sql, "SELECT state, lease != 0, count(*) FROM deliveries", 50) ||
           !strncmp(sql, "DELETE FROM deliveries WHERE state = 1", 38) ||
           strstr(sql, "FROM attempts a JOIN deliveries d ON d.id = a.delivery_id WHERE"
                       " d.endpoint = ?1") != NULL;
}

static int checked;

static void check_statements(sy_store *st)
{
    sqlite3 *db = SQ(st)->db;
    for (sqlite3_stmt *s = sqlite3_next_stmt(db, NULL); s; s = sqlite3_next_stmt(db, s)) {
        const char *sql = sqlite3_sql(s);
        if (strncmp(sql, "EXPLAIN", 7) == 0 || reads_every_row(sql))
            continue;
        char why[4200] = "";
        if (full_scans(db, sql, why, sizeof why))
            fail_msg("%s", why);
        checked++;
    }
}

static void test_statements_find_rows_through_indexes(void **state)
{
    (void)state;
    sy_store *wr = open_store(STORE_WRITER);
    sy_store *rd = open_store(STORE_READER);
    const char *const known[] = {"a"};
    assert_int_equal(store_known(wr, known, 1), 0);
    spool_row rows[4];
    assert_int_equal(store_page(wr, 100, 4, rows), 0);
    spool_row *all = NULL;
    size_t n = 0;
    assert_int_equal(store_catchup(wr, "a", &all, &n), 0);
    free(all);
    assert_int_equal(store_release(wr, "a"), 0);
    long killed = -1;
    assert_int_equal(store_kill_endpoint(wr, "a", "gone", 1, &killed), 0);
    assert_int_equal(store_prune(wr, 1), 0);
    spool_record r = {.delivery_id = 1, .state = DLV_DONE, .attempt_result = -1};
    assert_int_equal(store_records(wr, &r, 1), 0);

    /* Every read, on a reader connection as the API and the CLI read. */
    spool_counts c;
    assert_int_equal(store_count(rd, &c), 0);
    dead_filter f = {.endpoint = "a", .event_id = "e1", .since_ms = 1, .until_ms = 2};
    FILE *out = fopen("/dev/null", "w");
    assert_non_null(out);
    assert_int_equal(store_list_dead(rd, &f, 10, out), 0);
    fclose(out);
    assert_int_equal(store_replay(rd, &f), 0);
    assert_int_equal(store_replay_delivery(rd, 1), 0);
    store_dlv_filter df = {.state = "dead", .endpoint = "a", .limit = 10};
    free(store_deliveries_json(rd, &df, NULL));
    df.desc = 1;
    free(store_deliveries_json(rd, &df, NULL));
    free(store_event_types_json(rd, NULL, 100));
    char ep[64], org[64];
    assert_int_equal(store_delivery_owner(rd, 1, ep, sizeof ep, org, sizeof org), 0);
    free(store_attempts_json(rd, 1, 0, 10));
    store_ep_stats es;
    assert_int_equal(store_endpoint_stats(rd, "a", 10, &es), 0);
    free(store_events_json(rd, 0, 0, 10, NULL));
    store_ep_count *ec = NULL;
    assert_int_equal(store_endpoint_counts(rd, &ec), 0);
    free(ec);
    char **ids = NULL;
    size_t nids = 0;
    assert_int_equal(store_load_disabled(rd, &ids, &nids), 0);
    free(ids);

    checked = 0;
    check_statements(wr);
    check_statements(rd);
    /* The writer's kept statements and the reads above (a guard against an empty walk). */
    assert_true(checked >= 30);
    store_close(rd);
    store_close(wr);
}

/* A segment file of the hot log beside the spool, or -1. */
static int seg_exists(int64_t seg)
{
    char f[200];
    snprintf(f, sizeof f, "%s-hot.%08lld", path, (long long)seg);
    return access(f, F_OK) == 0;
}

/*
 * A run that died with frames in its hot log: the next start folds them
 * (an outcome into its delivery's row, leases given up), ignores a frame
 * cut short, records how far it folded, deletes the segments, and goes on
 * with ids above the folded ones; a folded event's id is a duplicate.
 */
static void test_hot_log_folded_at_start(void **state)
{
    (void)state;
    spool_close(open_spool()); /* the schema */
    char err[256];
    spool_log *l = spool_log_open(path, 5, 0, err, sizeof err);
    assert_non_null(l);
    const char *eps[] = {"a", "b"};
    int64_t ids[] = {100, 101}, seg, off;
    const char *body = "{\"event_id\":\"h1\"}";
    slog_put p = {.row = 50, .event_id = "h1", .event_id_len = 2, .received_ms = 1000,
                  .at_ms = 2000, .body = body, .body_len = strlen(body), .n = 2, .ids = ids,
                  .endpoints = eps};
    assert_int_equal(spool_log_put(l, &p), 0);
    assert_int_equal(spool_log_commit(l, &seg, &off, err, sizeof err), 0);
    spool_record done = {.delivery_id = 100, .state = DLV_DONE, .attempt = 1, .first_ms = 2100,
                         .status = 200, .attempt_result = 0, .at_ms = 2100, .latency_ms = 3,
                         .leased = 1};
    strcpy(done.detail, "HTTP 200");
    spool_record retry = {.delivery_id = 101, .state = DLV_PENDING, .attempt = 1,
                          .first_ms = 2100, .next_ms = 9000, .status = 503, .attempt_result = 1,
                          .at_ms = 2100, .latency_ms = 4, .leased = 1};
    strcpy(retry.detail, "HTTP 503");
    assert_int_equal(spool_log_outcome(l, &done, 2200), 0);
    assert_int_equal(spool_log_outcome(l, &retry, 2300), 0);
    assert_int_equal(spool_log_commit(l, &seg, &off, err, sizeof err), 0);
    spool_log_close(l);
    /* Then a frame that was being written when the process died. */
    char f[200];
    snprintf(f, sizeof f, "%s-hot.%08lld", path, 5LL);
    FILE *fp = fopen(f, "ab");
    fwrite("SYH1\x40\0\0\0\1\2\3\4{\"event", 1, 20, fp);
    fclose(fp);

    sy_spool *s = open_spool();
    assert_false(seg_exists(5));
    assert_int_equal(q1("SELECT count(*) FROM events WHERE id = 50 AND event_id = 'h1' "
                        "AND received_ms = 1000"), 1);
    assert_int_equal(q1("SELECT count(*) FROM deliveries WHERE id = 100 AND event_rowid = 50 "
                        "AND endpoint = 'a' AND state = 1 AND attempt = 1 AND last_status = 200 "
                        "AND last_detail = 'HTTP 200' AND updated_ms = 2200 AND lease = 0"), 1);
    assert_int_equal(q1("SELECT count(*) FROM deliveries WHERE id = 101 AND endpoint = 'b' "
                        "AND state = 0 AND next_ms = 9000 AND last_status = 503 AND lease = 0"),
                     1);
    assert_int_equal(q1("SELECT count(*) FROM attempts"), 2);
    assert_int_equal(q1("SELECT latency_ms FROM attempts WHERE delivery_id = 101"), 4);
    assert_int_equal(q1("SELECT seg FROM hot_log"), 5);
    assert_int_equal(q1("SELECT off FROM hot_log"), off);
    assert_int_equal(spool_start(s), 0);
    got g = {.mu = PTHREAD_MUTEX_INITIALIZER};
    sy_event *h1 = ev_make("h1"), *h2 = ev_make("h2");
    spool_put_event(s, h1, two_eps, 1, on_put, &g);
    spool_put_event(s, h2, two_eps, 1, on_put, &g);
    assert_int_equal(spool_flush(s, 5000), 0);
    assert_int_equal(g.st[0], SPOOL_DUP);
    assert_int_equal(g.st[1], SPOOL_OK);
    assert_int_equal(g.ids[1][0], 102);
    assert_int_equal(q1("SELECT id FROM events WHERE event_id = 'h2'"), 51);
    /* The run's own log: segment 6, folded up to its end by the flush. */
    assert_true(seg_exists(6));
    assert_int_equal(q1("SELECT seg FROM hot_log"), 6);
    spool_close(s);
    event_unref(h1);
    event_unref(h2);
    /* Every segment gone (folded, then deleted by hand): the next run's log still starts
     * past the mark, or a crash would leave its frames taken for folded ones. */
    spool_log_drop_below(path, INT64_MAX);
    s = open_spool();
    assert_int_equal(spool_start(s), 0);
    sy_event *h3 = ev_make("h3");
    spool_put_event(s, h3, two_eps, 1, on_put, &g);
    assert_int_equal(spool_flush(s, 5000), 0);
    assert_int_equal(g.st[2], SPOOL_OK);
    assert_int_equal(q1("SELECT seg FROM hot_log"), 7);
    assert_true(seg_exists(7));
    spool_close(s);
    event_unref(h3);
}

/* An outcome recorded right after its event was stored ends in the one row, once. */
static void test_hot_outcome_lands_in_the_row(void **state)
{
    (void)state;
    sy_spool *s = open_spool();
    assert_int_equal(spool_start(s), 0);
    /* The front, the syncer (spool_sync full) and the writer, which folds (each names
     * itself once running). */
    for (int i = 0; i < 1000 && !(has_thread("sy-spool") && has_thread("sy-sync") &&
                                  has_thread("sy-fold")); i++)
        usleep(1000);
    assert_true(has_thread("sy-spool") && has_thread("sy-sync") && has_thread("sy-fold"));
    got g = {.mu = PTHREAD_MUTEX_INITIALIZER};
    sy_event *e = ev_make("o1");
    spool_put_event(s, e, two_eps, 1, on_put, &g);
    int calls = 0;
    for (int i = 0; i < 500 && !calls; i++) {
        usleep(1000);
        pthread_mutex_lock(&g.mu);
        calls = g.calls;
        pthread_mutex_unlock(&g.mu);
    }
    pthread_mutex_lock(&g.mu);
    spool_status st = g.st[0];
    int64_t id = g.ids[0][0];
    pthread_mutex_unlock(&g.mu);
    assert_int_equal(st, SPOOL_OK);
    spool_record r = {.delivery_id = id, .state = DLV_DONE, .attempt = 1,
                      .first_ms = 3000, .status = 204, .attempt_result = 0, .at_ms = 3000,
                      .latency_ms = 2, .leased = 0};
    strcpy(r.detail, "HTTP 204");
    spool_record_outcome(s, &r);
    assert_int_equal(spool_flush(s, 5000), 0);
    assert_int_equal(q1("SELECT count(*) FROM deliveries WHERE state = 1 AND attempt = 1 AND "
                        "last_status = 204 AND last_detail = 'HTTP 204' AND lease = 0"), 1);
    assert_int_equal(q1("SELECT count(*) FROM deliveries"), 1);
    assert_int_equal(q1("SELECT count(*) FROM attempts WHERE status = 204"), 1);
    spool_close(s);
    assert_false(has_thread("sy-spool") || has_thread("sy-sync") || has_thread("sy-fold"));
    event_unref(e);
}

/*
 * fdatasync as the core's objects call it (this test is linked with
 * -Wl,--wrap=fdatasync): failing with EIO while fail_syncs is set, as a
 * disk does that drops writes. SQLite's own syncs are not wrapped.
 */
static int fail_syncs;
/* slow_fail: the next sync fails too, but only once the test sets release (in_slow says it
 * began); it fails that one sync. */
static int slow_fail, in_slow, release;
int __real_fdatasync(int fd);
int __wrap_fdatasync(int fd);
int __wrap_fdatasync(int fd)
{
    if (__atomic_exchange_n(&slow_fail, 0, __ATOMIC_ACQ_REL)) {
        __atomic_store_n(&in_slow, 1, __ATOMIC_RELEASE);
        for (int i = 0; i < 10000 && !__atomic_load_n(&release, __ATOMIC_ACQUIRE); i++)
            usleep(1000);
        errno = EIO;
        return -1;
    }
    if (__atomic_load_n(&fail_syncs, __ATOMIC_RELAXED)) {
        errno = EIO;
        return -1;
    }
    return __real_fdatasync(fd);
}

/* Waits for g's n-th callback; returns its status. */
static spool_status nth_answer(got *g, int n)
{
    for (int i = 0; i < 5000; i++) {
        pthread_mutex_lock(&g->mu);
        int calls = g->calls;
        spool_status st = g->st[n - 1];
        pthread_mutex_unlock(&g->mu);
        if (calls >= n)
            return st;
        usleep(1000);
    }
    fail_msg("no answer to put %d", n);
    return SPOOL_ERR;
}

/*
 * A frame whose sync failed: its event is answered "send again" and stays
 * in its chunk, folded later. Until it is folded in the database, a copy
 * sent again is not answered "dup" (its first copy may be nowhere on disk)
 * but "send again"; once folded, "dup". A frame after the failure (on a
 * new segment) is acknowledged.
 */
static void test_hot_failed_sync_is_no_dup(void **state)
{
    (void)state;
    enum { TRIES = 50 };
    sy_spool *s = open_spool();
    assert_int_equal(spool_start(s), 0);
    got g = {.mu = PTHREAD_MUTEX_INITIALIZER};
    sy_event *e[TRIES + 2];
    for (int i = 0; i < TRIES + 2; i++)
        e[i] = ev_make(i <= TRIES ? "u1" : "u2");
    __atomic_store_n(&fail_syncs, 1, __ATOMIC_RELAXED);
    spool_put_event(s, e[0], two_eps, 1, on_put, &g);
    assert_int_equal(nth_answer(&g, 1), SPOOL_ERR);
    __atomic_store_n(&fail_syncs, 0, __ATOMIC_RELAXED);
    /* Sent again at once (the chunk is still gathering: it is folded a turn or two
     * later), then again until the answer is "dup". */
    int n = 1;
    spool_status st;
    do {
        spool_put_event(s, e[n], two_eps, 1, on_put, &g);
        st = nth_answer(&g, ++n);
        int64_t stored = q1("SELECT count(*) FROM events WHERE event_id = 'u1'");
        if (st == SPOOL_DUP)
            assert_int_equal(stored, 1); /* "dup" only once the first copy is stored */
        else
            assert_int_equal(st, SPOOL_ERR);
        if (st != SPOOL_DUP)
            usleep(50000);
    } while (st != SPOOL_DUP && n <= TRIES);
    assert_int_equal(st, SPOOL_DUP);
    /* The next frame goes to a new segment and is acknowledged. */
    spool_put_event(s, e[TRIES + 1], two_eps, 1, on_put, &g);
    assert_int_equal(nth_answer(&g, n + 1), SPOOL_OK);
    assert_int_equal(spool_flush(s, 5000), 0);
    assert_int_equal(q1("SELECT count(*) FROM events"), 2);
    assert_int_equal(q1("SELECT count(*) FROM deliveries"), 2);
    spool_close(s);
    for (int i = 0; i < TRIES + 2; i++)
        event_unref(e[i]);
}

/* The size of the hot log's one segment (the spool is new: one file). */
static off_t segment_size(void)
{
    char p[200];
    snprintf(p, sizeof p, "%s-hot.00000001", path);
    struct stat st;
    return stat(p, &st) == 0 ? st.st_size : -1;
}

/*
 * A frame written to the segment while a sync of it was failing: the next
 * sync (which succeeds) does not vouch for it, since Linux reports a
 * writeback error once and may have dropped its pages; its event is
 * answered "send again" too. The next frame goes to a new segment and is
 * acknowledged.
 */
static void test_hot_frame_behind_a_failed_sync(void **state)
{
    (void)state;
    sy_spool *s = open_spool();
    assert_int_equal(spool_start(s), 0);
    got g = {.mu = PTHREAD_MUTEX_INITIALIZER};
    sy_event *e1 = ev_make("f1"), *e2 = ev_make("f2"), *e3 = ev_make("f3");
    __atomic_store_n(&release, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&in_slow, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&slow_fail, 1, __ATOMIC_RELEASE);
    spool_put_event(s, e1, two_eps, 1, on_put, &g);
    for (int i = 0; i < 5000 && !__atomic_load_n(&in_slow, __ATOMIC_ACQUIRE); i++)
        usleep(1000);
    assert_int_equal(__atomic_load_n(&in_slow, __ATOMIC_ACQUIRE), 1);
    /* e1's sync is under way (and will fail): e2's frame goes to the same segment. */
    off_t before = segment_size();
    assert_true(before > 0);
    spool_put_event(s, e2, two_eps, 1, on_put, &g);
    for (int i = 0; i < 5000 && segment_size() == before; i++)
        usleep(1000);
    assert_true(segment_size() > before);
    __atomic_store_n(&release, 1, __ATOMIC_RELEASE);
    assert_int_equal(nth_answer(&g, 1), SPOOL_ERR);
    assert_int_equal(nth_answer(&g, 2), SPOOL_ERR);
    spool_put_event(s, e3, two_eps, 1, on_put, &g);
    assert_int_equal(nth_answer(&g, 3), SPOOL_OK);
    assert_int_equal(spool_flush(s, 5000), 0);
    /* All three are stored (the first two from memory, at the fold). */
    assert_int_equal(q1("SELECT count(*) FROM events"), 3);
    spool_close(s);
    event_unref(e1);
    event_unref(e2);
    event_unref(e3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_put_dedup_and_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_dedup_and_commit, setup_hot, teardown),
        cmocka_unit_test_setup_teardown(test_records_and_attempts, setup_hot, teardown),
        cmocka_unit_test_setup_teardown(test_pager_and_leases, setup_hot, teardown),
        cmocka_unit_test_setup_teardown(test_batch_put, setup_hot, teardown),
        cmocka_unit_test_setup_teardown(test_fold_rows_in_order, setup_hot, teardown),
        cmocka_unit_test_setup_teardown(test_fold_rows_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_known_and_release, setup_hot, teardown),
        cmocka_unit_test_setup_teardown(test_disabled_state_persists, setup_hot, teardown),
        cmocka_unit_test_setup_teardown(test_hot_log_folded_at_start, setup_hot, teardown),
        cmocka_unit_test_setup_teardown(test_hot_outcome_lands_in_the_row, setup_hot, teardown),
        cmocka_unit_test_setup_teardown(test_hot_failed_sync_is_no_dup, setup_hot, teardown),
        cmocka_unit_test_setup_teardown(test_hot_frame_behind_a_failed_sync, setup_hot, teardown),
        cmocka_unit_test_setup_teardown(test_records_and_attempts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pager_and_leases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migration_from_v1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_put, setup, teardown),
        cmocka_unit_test_setup_teardown(test_known_and_release, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disabled_state_persists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_v3_file_migrates_to_partial_indexes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_statements_find_rows_through_indexes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_new_file_page_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_thread, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wal_stays_bounded, setup, teardown),
    };
    return cmocka_run_group_tests_name("spool", tests, NULL, NULL);
}
