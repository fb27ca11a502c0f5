/*
 * test_shard.c - one shard driven by hand: runtimes built in the test (no
 * config, no dlopen), a fake asynchronous plugin whose attempts the test
 * completes itself, and, where leases matter, a real spool in a temporary
 * file. Each test waits on the shard's own counters (shard_foreach) or on
 * the plugin's calls, against a deadline; nothing depends on a sleep.
 *
 * What the tests pin down is the reload lifecycle: runtimes freed in
 * whatever order their last reference drops, removed endpoints whose
 * attempts are still inside a plugin (their deadline, their breaker's
 * wake-up, shutdown), and the order of spool writes around a removal.
 * Several of these faults only show as use-after-free: make check runs this
 * file under ASan and valgrind.
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
#include <time.h>
#include <unistd.h>
#include <sqlite3.h>
#include <sys/eventfd.h>

#include "attempt.h"
#include "host.h"
#include "runtime.h"
#include "shard.h"
#include "spool.h"
#include "stats.h"
#include "workers.h"

/* ---- the fake plugin ------------------------------------------------------------ */

typedef struct fake {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    const sy_delivery *got[64];   /* every submitted attempt, in order */
    int n;
    const char *block;            /* submit of this endpoint waits for `release` */
    int blocked, release;
} fake;

static fake F = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, {0}, 0, NULL, 0, 0};

/*
 * The plugin's poller (sink ABI 2.4), in the tests that turn it on: submit
 * attaches it on its first call and leaves the attempt to run, which
 * completes what is pending, counts its calls and notes its thread.
 */
typedef struct fake_poll {
    int on;                       /* submit attaches, run completes */
    int efd;                      /* an eventfd: the test makes it readable */
    sy_poller *poller;
    const sy_delivery *pending[8];
    int npending;
    int runs;
    int64_t due;                  /* what run returns */
    pthread_t submit_thread, run_thread;
    int other_thread_runs;        /* runs on a thread that is not the submitter's */
} fake_poll;

static fake_poll P;

static int64_t poll_run(void *arg)
{
    assert_ptr_equal(arg, &P);
    uint64_t v;
    ssize_t r = read(P.efd, &v, sizeof v); /* non-blocking: EAGAIN when quiet */
    (void)r;
    pthread_mutex_lock(&F.mu);
    P.runs++;
    if (!pthread_equal(pthread_self(), P.submit_thread))
        P.other_thread_runs++;
    const sy_delivery *d[8];
    int n = P.npending;
    memcpy(d, P.pending, sizeof d);
    P.npending = 0;
    int64_t due = P.due;
    pthread_mutex_unlock(&F.mu);
    for (int i = 0; i < n; i++) {
        sy_outcome o = SY_OUTCOME_INIT;
        sy_outcome_set(&o, SY_OK, 200, NULL);
        g_host.complete(d[i], &o);
    }
    return due;
}

static int fake_submit(void *state, void *ep_state, const sy_delivery *d)
{
    (void)state;
    (void)ep_state;
    if (P.on) {
        if (!P.poller) {
            P.submit_thread = pthread_self();
            P.poller = g_host.poller_attach(P.efd, poll_run, &P);
            assert_non_null(P.poller);
        }
        pthread_mutex_lock(&F.mu);
        F.got[F.n++] = d;
        P.pending[P.npending++] = d;
        pthread_cond_broadcast(&F.cv);
        pthread_mutex_unlock(&F.mu);
        return 0;
    }
    pthread_mutex_lock(&F.mu);
    F.got[F.n++] = d;
    if (F.block && !strcmp(d->endpoint_id, F.block)) {
        F.blocked = 1;
        pthread_cond_broadcast(&F.cv);
        while (!F.release)
            pthread_cond_wait(&F.cv, &F.mu);
    }
    pthread_cond_broadcast(&F.cv);
    pthread_mutex_unlock(&F.mu);
    return 0;
}

static const sy_sink fake_sink = {
    .abi_version = SY_ABI_VERSION,
    .struct_size = sizeof(sy_sink),
    .name = "fake",
    .submit = fake_submit,
};

static int64_t mono_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits (10 s at most) until the plugin got n attempts; returns the nth. */
static const sy_delivery *wait_got(int n)
{
    int64_t end = mono_now_ms() + 10000;
    pthread_mutex_lock(&F.mu);
    while (F.n < n && mono_now_ms() < end) {
        pthread_mutex_unlock(&F.mu);
        usleep(1000);
        pthread_mutex_lock(&F.mu);
    }
    const sy_delivery *d = F.n >= n ? F.got[n - 1] : NULL;
    pthread_mutex_unlock(&F.mu);
    assert_non_null(d);
    return d;
}

static void complete(const sy_delivery *d, sy_result r)
{
    sy_outcome o = SY_OUTCOME_INIT;
    sy_outcome_set(&o, r, r == SY_OK ? 200 : 503, r == SY_OK ? NULL : "test: retry");
    attempt_complete(d, &o);
}

/* ---- runtimes built by hand ------------------------------------------------------ */

#define MAX_EPS 4

typedef struct fake_rt {
    sy_runtime rt;       /* first: the release hook gets this pointer back */
    sy_instance inst;
    sy_endpoint eps[MAX_EPS];
    sy_endpoint_conf confs[MAX_EPS];
} fake_rt;

/* Runtimes whose last reference dropped, in that order. */
static pthread_mutex_t rel_mu = PTHREAD_MUTEX_INITIALIZER;
static sy_runtime *released[16];
static int nreleased;

static void on_release(void *arg, sy_runtime *rt)
{
    (void)arg;
    pthread_mutex_lock(&rel_mu);
    released[nreleased++] = rt;
    pthread_mutex_unlock(&rel_mu);
}

static int was_released(const fake_rt *f)
{
    pthread_mutex_lock(&rel_mu);
    int found = 0;
    for (int i = 0; i < nreleased; i++)
        found |= released[i] == &f->rt;
    pthread_mutex_unlock(&rel_mu);
    return found;
}

/*
 * A runtime with endpoints ids[0..n) on the fake plugin, holding one
 * reference (the test's). g: the endpoints' gate (ms), or NULL for none;
 * timeout_ms: the attempt timeout each endpoint states; retry_ms: the one
 * delay of the retry schedule.
 */
static fake_rt *rt_make(const char *const *ids, size_t n, const gate_conf *g, int64_t timeout_ms,
                        int64_t retry_ms)
{
    fake_rt *f = calloc(1, sizeof *f);
    assert_non_null(f);
    assert_true(n <= MAX_EPS);
    f->inst.name = "fake";
    f->inst.sink = &fake_sink;
    f->inst.batch_max = 1;
    pthread_mutex_init(&f->inst.counters_mu, NULL);
    pthread_mutex_init(&f->inst.expired_mu, NULL);
    f->rt.insts = &f->inst;
    f->rt.ninsts = 1;
    f->rt.eps = f->eps;
    f->rt.neps = n;
    f->rt.refs = 1;
    for (size_t i = 0; i < n; i++) {
        sy_endpoint_conf *c = &f->confs[i];
        c->id = (char *)ids[i];
        c->enabled = 1;
        if (g)
            c->gate = *g;
        sy_endpoint *ep = &f->eps[i];
        ep->conf = c;
        ep->rt = &f->rt;
        ep->index = (uint32_t)i;
        ep->id_hash = runtime_id_hash(ids[i]);
        ep->inst = &f->inst;
        ep->attempt_timeout_ms = timeout_ms;
        ep->concurrency = 4;
        ep->batch_max = 1;
        ep->retry = (sy_retry_policy){.name = "custom", .schedule = {retry_ms}, .nschedule = 1,
                                      .tail_ms = retry_ms, .max_age_ms = 3600000};
    }
    return f;
}

/* Frees a runtime the shard is done with (attempts parked on it included). */
static void rt_free(fake_rt *f)
{
    attempt_free_expired(&f->inst);
    pthread_mutex_destroy(&f->inst.counters_mu);
    pthread_mutex_destroy(&f->inst.expired_mu);
    free(f);
}

/* ---- the shard --------------------------------------------------------------------- */

static worker_pool *pool;

static int setup(void **state)
{
    (void)state;
    pthread_mutex_lock(&F.mu);
    F.n = 0;
    F.block = NULL;
    F.blocked = F.release = 0;
    pthread_mutex_unlock(&F.mu);
    memset(&P, 0, sizeof P);
    P.efd = -1;
    P.due = -1;
    nreleased = 0;
    runtime_on_release(on_release, NULL);
    pool = workers_new(1);
    assert_non_null(pool);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    workers_free(pool);
    runtime_on_release(NULL, NULL);
    stats_reset();
    return 0;
}

static shard *shard_up(sy_spool *spool, fake_rt *first)
{
    shard_opts o = {.index = 0,
                    .nshards = 1,
                    .pipeline = NULL, /* system events go nowhere */
                    .workers = pool,
                    .spool = spool,
                    .spill_after_ms = 3600000,
                    .mem_max = 100000,
                    .complete_grace_ms = 0};
    shard *sh = shard_new(&o);
    assert_non_null(sh);
    shard_adopt(sh, &first->rt);
    assert_int_equal(shard_start(sh), 0);
    return sh;
}

static void shard_down(shard *sh)
{
    shard_quiesce(sh);
    shard_stop(sh);
    shard_free(sh);
}

/* Hands the shard one delivery of a new event to endpoint i of f. */
static void post(shard *sh, fake_rt *f, size_t i, const char *event_id, int64_t spool_id)
{
    char body[160], why[128];
    snprintf(body, sizeof body, "{\"event_id\":\"%s\",\"event_type\":\"job.done\",\"data\":{}}",
             event_id);
    sy_event *ev = NULL;
    assert_int_equal(envelope_parse(body, strlen(body), 4096, 16, &ev, why, sizeof why), ENV_OK);
    route_batch *b = route_batch_new(&f->rt, 1);
    assert_non_null(b);
    route_item it = {.ev = ev, .ep = &f->eps[i], .spool_id = spool_id, .fresh = 1};
    assert_int_equal(route_batch_add(&b, &it), 0);
    event_unref(ev);
    shard_post(sh, &b->m);
}

/* What the shard shows of one endpoint id. */
typedef struct seen {
    const char *id;
    int present, removed;
    uint64_t delivered, attempts, retries;
    size_t inflight;
} seen;

static void look(void *arg, const shard_ep_view *v)
{
    seen *s = arg;
    if (strcmp(v->id, s->id))
        return;
    s->present = 1;
    s->removed = v->ep == NULL;
    s->delivered = __atomic_load_n(&v->st->delivered, __ATOMIC_RELAXED);
    s->attempts = __atomic_load_n(&v->st->attempts, __ATOMIC_RELAXED);
    s->retries = __atomic_load_n(&v->st->retries, __ATOMIC_RELAXED);
    s->inflight = v->inflight;
}

static seen see(shard *sh, const char *id)
{
    seen s = {.id = id};
    shard_foreach(sh, look, &s);
    return s;
}

/* Polls cond against a 10 s deadline. */
#define WAIT_FOR(cond)                                                                     \
    do {                                                                                   \
        int64_t end_ = mono_now_ms() + 10000;                                              \
        while (!(cond) && mono_now_ms() < end_)                                            \
            usleep(1000);                                                                  \
        assert_true(cond);                                                                 \
    } while (0)

/* ---- tests ----------------------------------------------------------------------------- */

static void test_attempt_settles_on_its_endpoint(void **state)
{
    (void)state;
    fake_rt *r1 = rt_make((const char *[]){"a"}, 1, NULL, 60000, 1000);
    shard *sh = shard_up(NULL, r1);
    post(sh, r1, 0, "e1", 0);
    const sy_delivery *d = wait_got(1);
    assert_string_equal(d->endpoint_id, "a");
    assert_string_equal(d->event_id, "e1");
    assert_int_equal(d->attempt, 1);
    complete(d, SY_OK);
    WAIT_FOR(see(sh, "a").delivered == 1);
    seen s = see(sh, "a");
    assert_int_equal(s.attempts, 1);
    assert_int_equal(s.inflight, 0);
    runtime_unref(&r1->rt);
    shard_down(sh);
    assert_true(was_released(r1));
    rt_free(r1);
}

/*
 * complete_batch (ABI 2.3): each outcome settles its own attempt, on the
 * endpoint of that attempt, as complete() would; a second outcome for the
 * same attempt in the batch, and a NULL delivery, are ignored.
 */
static void test_complete_batch_settles_each(void **state)
{
    (void)state;
    assert_true(SY_HOST_HAS(&g_host, complete_batch));
    fake_rt *r1 = rt_make((const char *[]){"a", "b"}, 2, NULL, 60000, 1000);
    shard *sh = shard_up(NULL, r1);
    post(sh, r1, 0, "e1", 0);
    post(sh, r1, 0, "e2", 0);
    post(sh, r1, 1, "e3", 0);
    const sy_delivery *d[5] = {wait_got(1), wait_got(2), wait_got(3), NULL, NULL};
    d[3] = d[0];
    sy_outcome ok = SY_OUTCOME_INIT, retry = SY_OUTCOME_INIT;
    sy_outcome_set(&ok, SY_OK, 200, NULL);
    sy_outcome_set(&retry, SY_RETRY, 503, "test: retry");
    /* e2 is the retry, whatever order the plugin got them in */
    const sy_outcome *out[5];
    for (int i = 0; i < 3; i++)
        out[i] = strcmp(d[i]->event_id, "e2") ? &ok : &retry;
    out[3] = &retry; /* d[0] again: ignored, so it stays as the first outcome said */
    out[4] = &ok;
    g_host.complete_batch(d, out, 5);
    WAIT_FOR(see(sh, "a").delivered == 1 && see(sh, "a").retries == 1 &&
             see(sh, "b").delivered == 1);
    sy_stats tot;
    stats_total(&tot);
    assert_int_equal(tot.completions_ignored, 1);
    assert_int_equal(see(sh, "a").attempts, 2);
    assert_int_equal(see(sh, "b").attempts, 1);
    runtime_unref(&r1->rt);
    shard_down(sh);
    rt_free(r1);
}

/*
 * Two adoptions while an attempt of the first runtime is inside the
 * plugin: the runtime in between goes first, the attempt still settles
 * once on the endpoint of its id, and its own runtime goes after it.
 */
static void test_runtimes_go_in_any_order(void **state)
{
    (void)state;
    const char *ids[] = {"a"};
    fake_rt *r1 = rt_make(ids, 1, NULL, 60000, 1000), *r2 = rt_make(ids, 1, NULL, 60000, 1000),
            *r3 = rt_make(ids, 1, NULL, 60000, 1000);
    shard *sh = shard_up(NULL, r1);
    post(sh, r1, 0, "e1", 0);
    const sy_delivery *d = wait_got(1);
    runtime_unref(&r1->rt); /* the attempt and the shard hold it now */
    shard_adopt(sh, &r2->rt);
    runtime_unref(&r2->rt);
    shard_adopt(sh, &r3->rt);
    WAIT_FOR(was_released(r2));
    assert_false(was_released(r1));
    assert_int_equal(see(sh, "a").inflight, 1);
    complete(d, SY_OK);
    WAIT_FOR(was_released(r1));
    WAIT_FOR(see(sh, "a").delivered == 1);
    seen s = see(sh, "a");
    assert_int_equal(s.attempts, 1);
    assert_false(s.removed);
    /* The endpoint carries on with the newest runtime. */
    post(sh, r3, 0, "e2", 0);
    d = wait_got(2);
    complete(d, SY_OK);
    WAIT_FOR(see(sh, "a").delivered == 2);
    runtime_unref(&r3->rt);
    shard_down(sh);
    rt_free(r1);
    rt_free(r2);
    rt_free(r3);
}

/*
 * The attempt of a removed endpoint fails and opens its breaker, which
 * arms the probe's wake-up; the endpoint's record goes with that attempt,
 * its wake-up too (ASan and valgrind see a read of the freed record
 * otherwise, once the wake-up is due).
 */
static void test_removed_endpoint_takes_its_wakeup_along(void **state)
{
    (void)state;
    gate_conf g = {.failures = 1, .probe = 5, .probe_max = 5};
    fake_rt *r1 = rt_make((const char *[]){"a"}, 1, &g, 60000, 1),
            *r2 = rt_make((const char *[]){"b"}, 1, NULL, 60000, 1000);
    shard *sh = shard_up(NULL, r1);
    post(sh, r1, 0, "e1", 0);
    const sy_delivery *d = wait_got(1);
    runtime_unref(&r1->rt);
    shard_adopt(sh, &r2->rt);
    WAIT_FOR(see(sh, "a").removed);
    complete(d, SY_RETRY);
    WAIT_FOR(!see(sh, "a").present);
    /* Past the probe time, the shard runs its timers again: another endpoint's delivery. */
    int64_t due = mono_now_ms() + 10;
    while (mono_now_ms() < due)
        usleep(1000);
    post(sh, r2, 0, "e2", 0);
    d = wait_got(2);
    assert_string_equal(d->endpoint_id, "b");
    complete(d, SY_OK);
    WAIT_FOR(see(sh, "b").delivered == 1);
    runtime_unref(&r2->rt);
    shard_down(sh);
    rt_free(r1);
    rt_free(r2);
}

/* A removed endpoint's attempt still has its deadline: the shard expires it there. */
static void test_removed_endpoint_keeps_its_deadline(void **state)
{
    (void)state;
    fake_rt *r1 = rt_make((const char *[]){"a"}, 1, NULL, 50, 1000),
            *r2 = rt_make((const char *[]){"b"}, 1, NULL, 60000, 1000);
    shard *sh = shard_up(NULL, r1);
    post(sh, r1, 0, "e1", 0);
    wait_got(1);
    runtime_unref(&r1->rt);
    shard_adopt(sh, &r2->rt);
    shard_counts c;
    WAIT_FOR((shard_get_counts(sh, &c), c.expired == 1 && c.inflight == 0));
    WAIT_FOR(!see(sh, "a").present);
    WAIT_FOR(was_released(r1)); /* the expired attempt is parked on its instance, not counted */
    runtime_unref(&r2->rt);
    shard_down(sh);
    rt_free(r1); /* frees the parked attempt, as the plugin's destroy would let go of it */
    rt_free(r2);
}

/* Shutdown expires what is still inside a plugin, a removed endpoint's attempt included. */
static void test_shutdown_with_a_removed_endpoints_attempt_inside(void **state)
{
    (void)state;
    fake_rt *r1 = rt_make((const char *[]){"a"}, 1, NULL, 3600000, 1000),
            *r2 = rt_make((const char *[]){"b"}, 1, NULL, 60000, 1000);
    shard *sh = shard_up(NULL, r1);
    post(sh, r1, 0, "e1", 0);
    wait_got(1);
    runtime_unref(&r1->rt);
    shard_adopt(sh, &r2->rt);
    WAIT_FOR(see(sh, "a").removed);
    runtime_unref(&r2->rt);
    shard_down(sh);
    assert_true(was_released(r1));
    rt_free(r1);
    rt_free(r2);
}

/* ---- with a spool ------------------------------------------------------------------ */

static char path[64];

static sy_spool *spool_up(void)
{
    strcpy(path, "/tmp/sy_shard_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    unlink(path);
    spool_opts o = {.path = path, .sync = "normal", .retention_ms = 3600000,
                    .dedup_window_ms = 3600000};
    char err[256];
    sy_spool *s = spool_open(&o, err, sizeof err);
    assert_non_null(s);
    assert_int_equal(spool_start(s), 0);
    return s;
}

static void spool_down(sy_spool *s)
{
    spool_close(s);
    char p[80];
    unlink(path);
    snprintf(p, sizeof p, "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", path);
    unlink(p);
}

static int64_t stored_id;

static void on_put(void *arg, spool_status st, sy_event *ev, const int64_t *ids)
{
    (void)arg;
    (void)ev;
    assert_int_equal(st, SPOOL_OK);
    stored_id = ids[0];
}

/* Stores an event with one delivery to endpoint; the delivery's row id. */
static int64_t store(sy_spool *s, const char *event_id, const char *endpoint)
{
    char body[160], why[128];
    snprintf(body, sizeof body, "{\"event_id\":\"%s\",\"event_type\":\"job.done\",\"data\":{}}",
             event_id);
    sy_event *ev = NULL;
    assert_int_equal(envelope_parse(body, strlen(body), 4096, 16, &ev, why, sizeof why), ENV_OK);
    spool_put_event(s, ev, (const char *const[]){endpoint}, 1, on_put, NULL);
    assert_int_equal(spool_flush(s, 5000), 0);
    event_unref(ev);
    return stored_id;
}

/* The row's (state, attempt, lease != 0). */
static void row(int64_t id, int *state, int *attempts, int *leased)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT state, attempt, lease != 0 FROM deliveries "
                                            "WHERE id = ?", -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_int64(st, 1, id);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    *state = sqlite3_column_int(st, 0);
    *attempts = sqlite3_column_int(st, 1);
    *leased = sqlite3_column_int(st, 2);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/*
 * A retry settled in the same loop turn as the reload that removes its
 * endpoint: the retry is recorded as held in memory, the removal releases
 * the endpoint's rows. The release must come last, or the row stays
 * leased to a process that no longer holds it (stuck until a restart).
 * The shard is held inside another endpoint's submit meanwhile, so the
 * outcome and the reload wait in its inbox together.
 */
static void test_release_follows_the_turns_records(void **state)
{
    (void)state;
    sy_spool *sp = spool_up();
    int64_t ra = store(sp, "e1", "a");
    fake_rt *r1 = rt_make((const char *[]){"a", "b"}, 2, NULL, 60000, 600000),
            *r2 = rt_make((const char *[]){"b"}, 1, NULL, 60000, 1000);
    shard *sh = shard_up(sp, r1);
    post(sh, r1, 0, "e1", ra);
    const sy_delivery *da = wait_got(1);
    pthread_mutex_lock(&F.mu);
    F.block = "b";
    pthread_mutex_unlock(&F.mu);
    post(sh, r1, 1, "e2", 0);
    pthread_mutex_lock(&F.mu);
    while (!F.blocked)
        pthread_cond_wait(&F.cv, &F.mu);
    pthread_mutex_unlock(&F.mu);
    /* The shard's thread is inside b's submit: both messages queue. */
    complete(da, SY_RETRY);
    runtime_unref(&r1->rt);
    shard_adopt(sh, &r2->rt);
    pthread_mutex_lock(&F.mu);
    F.release = 1;
    pthread_cond_broadcast(&F.cv);
    pthread_mutex_unlock(&F.mu);
    const sy_delivery *db = wait_got(2);
    WAIT_FOR(!see(sh, "a").present);
    complete(db, SY_OK);
    /* b's outcome is settled in a later turn than a's: a's turn was written by then. */
    WAIT_FOR(see(sh, "b").delivered == 1);
    assert_int_equal(spool_flush(sp, 5000), 0);
    int st, attempts, leased;
    row(ra, &st, &attempts, &leased);
    assert_int_equal(st, DLV_PENDING);
    assert_int_equal(attempts, 1);
    assert_int_equal(leased, 0);
    runtime_unref(&r2->rt);
    shard_down(sh);
    spool_down(sp);
    rt_free(r1);
    rt_free(r2);
}

/* The row's state and detail, after what is queued reached the spool. */
static int row_state(sy_spool *sp, int64_t id, char *detail, size_t len)
{
    assert_int_equal(spool_flush(sp, 5000), 0);
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT state, last_detail, lease FROM deliveries "
                                            "WHERE id = ?", -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_int64(st, 1, id);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int state = sqlite3_column_int(st, 0);
    snprintf(detail, len, "%s|lease=%d", (const char *)sqlite3_column_text(st, 1),
             sqlite3_column_int64(st, 2) != 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return state;
}

/*
 * A delivery routed with the old runtime just before the admin API deleted
 * its endpoint reaches the shard after the new runtime: it becomes a dead
 * letter like the endpoint's other pending ones, not a row pending for no
 * endpoint. One removed by a reload (not deleted) stays pending, released.
 */
static void test_delivery_to_a_deleted_endpoint_dies(void **state)
{
    (void)state;
    sy_spool *sp = spool_up();
    int64_t ra = store(sp, "e1", "a"), rc = store(sp, "e2", "c");
    fake_rt *r1 = rt_make((const char *[]){"a", "b", "c"}, 3, NULL, 60000, 1000),
            *r2 = rt_make((const char *[]){"b"}, 1, NULL, 60000, 1000);
    assert_int_equal(runtime_set_deleted(&r2->rt, (const char *const[]){"z", "a"}, 2), 0);
    assert_int_equal(runtime_was_deleted(&r2->rt, "a"), 1);
    assert_int_equal(runtime_was_deleted(&r2->rt, "c"), 0);
    shard *sh = shard_up(sp, r1);
    shard_adopt(sh, &r2->rt);
    WAIT_FOR(!see(sh, "a").present && !see(sh, "c").present);
    post(sh, r1, 0, "e1", ra);
    post(sh, r1, 2, "e2", rc);
    char detail[300];
    WAIT_FOR(row_state(sp, ra, detail, sizeof detail) == DLV_DEAD);
    assert_string_equal(detail, "endpoint deleted|lease=0");
    WAIT_FOR(row_state(sp, rc, detail, sizeof detail) == DLV_PENDING &&
             !strcmp(detail, "|lease=0"));
    assert_int_equal(F.n, 0); /* neither reached the plugin */
    runtime_unref(&r1->rt);
    runtime_unref(&r2->rt);
    shard_down(sh);
    spool_down(sp);
    for (size_t i = 0; i < r2->rt.ndeleted; i++)
        free(r2->rt.deleted[i]);
    free(r2->rt.deleted);
    rt_free(r1);
    rt_free(r2);
}

static int64_t row_next_ms(sy_spool *sp, int64_t id)
{
    assert_int_equal(spool_flush(sp, 5000), 0);
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT next_ms FROM deliveries WHERE id = ?", -1,
                                        &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_int64(st, 1, id);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t next = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return next;
}

/*
 * A retry's due time on disk never comes before its delay has passed. The
 * pager (and the next start) takes a row once the wall clock in whole ms
 * reaches next_ms, so next_ms must lie past the failure + the delay; the
 * failure's truncated ms + the delay let a spilled retry start up to 1 ms
 * early (caught by test_durability_retry.py now and then).
 */
static void test_retry_due_on_disk_is_never_early(void **state)
{
    (void)state;
    enum { N = 20, DELAY_MS = 5000 };
    sy_spool *sp = spool_up();
    int64_t ids[N], failed_us[N];
    char eid[N][16];
    for (int i = 0; i < N; i++) {
        snprintf(eid[i], sizeof eid[i], "r%d", i);
        ids[i] = store(sp, eid[i], "a");
    }
    fake_rt *r1 = rt_make((const char *[]){"a"}, 1, NULL, 60000, DELAY_MS);
    shard *sh = shard_up(sp, r1);
    for (int i = 0; i < N; i++) {
        post(sh, r1, 0, eid[i], ids[i]);
        const sy_delivery *d = wait_got(i + 1);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        failed_us[i] = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
        complete(d, SY_RETRY);
        WAIT_FOR(see(sh, "a").retries == (uint64_t)i + 1);
    }
    for (int i = 0; i < N; i++) {
        int64_t next = row_next_ms(sp, ids[i]);
        assert_true(next * 1000 >= failed_us[i] + DELAY_MS * 1000);
        assert_true(next * 1000 < failed_us[i] + (DELAY_MS + 1000) * 1000);
    }
    runtime_unref(&r1->rt);
    shard_down(sh);
    spool_down(sp);
    rt_free(r1);
}

static int runs(void)
{
    pthread_mutex_lock(&F.mu);
    int n = P.runs;
    pthread_mutex_unlock(&F.mu);
    return n;
}

/* 1 when run was not called for ms in a row. */
static int runs_rest(int ms)
{
    int n = runs();
    usleep((useconds_t)ms * 1000);
    return runs() == n;
}

/* Turns the fake plugin's poller on, with a fresh eventfd. */
static void poll_on(void)
{
    P.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    assert_true(P.efd >= 0);
    P.on = 1;
}

static void poke(void)
{
    uint64_t one = 1;
    assert_int_equal(write(P.efd, &one, sizeof one), (ssize_t)sizeof one);
}

/*
 * A poller (ABI 2.4) runs on the shard's thread only: right after the
 * submit that attached it (its outcome settles with no other thread in
 * between), whenever its fd is readable, and by the time it asked for;
 * attaching from any other thread is refused. Once poller_detach returned
 * on another thread, run is never called again.
 */
static void test_poller_runs_on_the_shard(void **state)
{
    (void)state;
    assert_true(SY_HOST_HAS(&g_host, poller_attach) && SY_HOST_HAS(&g_host, poller_detach));
    poll_on();
    assert_null(g_host.poller_attach(P.efd, poll_run, &P)); /* not a shard's thread */
    fake_rt *r1 = rt_make((const char *[]){"a"}, 1, NULL, 60000, 1000);
    shard *sh = shard_up(NULL, r1);
    post(sh, r1, 0, "e1", 0);
    WAIT_FOR(see(sh, "a").delivered == 1);
    assert_non_null(P.poller);
    assert_true(runs() >= 1);

    /* Quiet fd, no deadline: the shard's turns end and it sleeps (a spinning
     * shard would never let runs() rest for 50 ms). Readable fd: run again. */
    WAIT_FOR(runs_rest(50));
    int before = runs();
    poke();
    WAIT_FOR(runs() > before);

    /* A deadline without the fd: run again by then. */
    pthread_mutex_lock(&F.mu);
    P.due = mono_now_ms() + 30;
    pthread_mutex_unlock(&F.mu);
    poke(); /* so the new due is returned once */
    before = runs() + 1;
    WAIT_FOR(runs() > before + 2);
    pthread_mutex_lock(&F.mu);
    P.due = -1;
    pthread_mutex_unlock(&F.mu);

    /* More work through the same poller: attached once, runs on one thread. */
    post(sh, r1, 0, "e2", 0);
    WAIT_FOR(see(sh, "a").delivered == 2);
    assert_int_equal(P.other_thread_runs, 0);

    g_host.poller_detach(P.poller);
    before = runs();
    poke();
    usleep(50000);
    assert_int_equal(runs(), before);
    runtime_unref(&r1->rt);
    shard_down(sh);
    close(P.efd);
    rt_free(r1);
}

/*
 * Detaching after the shard's thread ended (a daemon's shutdown frees the
 * instances after the shards) returns at once and touches nothing of the
 * shard; a stopped shard refuses new pollers.
 */
static void test_poller_detached_after_the_shard_ended(void **state)
{
    (void)state;
    poll_on();
    fake_rt *r1 = rt_make((const char *[]){"a"}, 1, NULL, 60000, 1000);
    shard *sh = shard_up(NULL, r1);
    post(sh, r1, 0, "e1", 0);
    WAIT_FOR(see(sh, "a").delivered == 1);
    assert_non_null(P.poller);
    runtime_unref(&r1->rt);
    shard_down(sh);
    int before = runs();
    g_host.poller_detach(P.poller); /* would wait forever for a shard that is gone */
    assert_int_equal(runs(), before);
    close(P.efd);
    rt_free(r1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_attempt_settles_on_its_endpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_complete_batch_settles_each, setup, teardown),
        cmocka_unit_test_setup_teardown(test_runtimes_go_in_any_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_removed_endpoint_takes_its_wakeup_along, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_removed_endpoint_keeps_its_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_with_a_removed_endpoints_attempt_inside,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_release_follows_the_turns_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delivery_to_a_deleted_endpoint_dies, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_retry_due_on_disk_is_never_early, setup, teardown),
        cmocka_unit_test_setup_teardown(test_poller_runs_on_the_shard, setup, teardown),
        cmocka_unit_test_setup_teardown(test_poller_detached_after_the_shard_ended, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
