/*
 * spool.c - SQLite spool: schema and migrations, the writer thread with
 * group commit, the pager, retention, and the offline replay/count tools.
 */
#include "spool.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sqlite3.h>

#include "clock.h"
#include "fsmode.h"
#include "log.h"
#include "stats.h"

typedef enum {
    OP_EVENT,    /* one event and its deliveries (spool_put_event) */
    OP_BATCH,    /* many (spool_put_batch) */
    OP_RECORDS,  /* outcomes */
    OP_RELEASE,  /* give an endpoint's leased pending rows back to the pager */
    OP_KNOWN,    /* the endpoints the pager may load */
    OP_DISABLE,  /* an endpoint's disabled state */
    OP_ENABLE,
    OP_KILL,     /* an endpoint's pending deliveries become dead letters */
    OP_CATCHUP   /* lease and load every pending row of an ordered endpoint */
} op_kind;

typedef struct spool_op {
    op_kind kind;
    struct spool_op *next;
    /* OP_EVENT */
    sy_event *ev;
    const char *const *endpoint_ids;
    size_t n;
    spool_event_cb cb;
    void *arg;
    /* OP_BATCH */
    spool_put *puts;
    spool_batch_cb bcb;
    /* OP_RECORDS: n records; OP_KNOWN: n ids; OP_RELEASE, OP_DISABLE, OP_ENABLE, OP_KILL: id */
    spool_record *recs;
    char **ids;
    char *id;
    int64_t at_ms;
    /* OP_KILL: told the count after COMMIT */
    spool_kill_cb kcb;
    long killed;
    /* OP_CATCHUP: the rows leased in the transaction, loaded after COMMIT */
    spool_row *rows;
    size_t nrows;
    spool_caught_up_fn done;
    uint32_t gen;
} spool_op;

struct sy_spool {
    sqlite3 *db;
    char *path;
    spool_opts o;
    int64_t boot_id;
    sqlite3_stmt *st_ins_event, *st_ins_dlv, *st_update, *st_attempt, *st_due,
        *st_lease, *st_release, *st_known, *st_disable, *st_enable, *st_kill, *st_catchup;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_cond_t idle_cv;   /* signalled when a batch leaves nothing queued */
    spool_op *head, *tail;
    size_t queued;
    int busy;                 /* the writer holds a batch */
    int stop, started;
    int failures;             /* transactions failed in a row */
    pthread_t thread;
    spool_want_fn want;
    spool_load_fn load;
    void *pager_arg;
    int64_t page_ms, ahead_ms;
    int64_t last_prune;
};

/* ---- schema ----------------------------------------------------------- */

/*
 * Version 1 had no lease column and no attempt latency; version 2 adds
 * both. Each step runs in its own transaction and bumps user_version.
 */
static const char *const schema_v1 =
    "CREATE TABLE IF NOT EXISTS events ("
    "  id INTEGER PRIMARY KEY,"
    "  event_id TEXT NOT NULL UNIQUE,"
    "  received_ms INTEGER NOT NULL,"
    "  body BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS deliveries ("
    "  id INTEGER PRIMARY KEY,"
    "  event_rowid INTEGER NOT NULL REFERENCES events(id),"
    "  endpoint TEXT NOT NULL,"
    "  state INTEGER NOT NULL,"
    "  attempt INTEGER NOT NULL DEFAULT 0,"
    "  first_ms INTEGER NOT NULL DEFAULT 0,"
    "  next_ms INTEGER NOT NULL,"
    "  last_status INTEGER NOT NULL DEFAULT 0,"
    "  last_detail TEXT NOT NULL DEFAULT '',"
    "  updated_ms INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries(state, next_ms);"
    "CREATE INDEX IF NOT EXISTS deliveries_event ON deliveries(event_rowid);"
    "CREATE TABLE IF NOT EXISTS attempts ("
    "  id INTEGER PRIMARY KEY,"
    "  delivery_id INTEGER NOT NULL,"
    "  attempt INTEGER NOT NULL,"
    "  at_ms INTEGER NOT NULL,"
    "  result INTEGER NOT NULL,"
    "  status INTEGER NOT NULL,"
    "  detail TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS attempts_delivery ON attempts(delivery_id);";

static const char *const migrate_v2 =
    "ALTER TABLE deliveries ADD COLUMN lease INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE attempts ADD COLUMN latency_ms INTEGER NOT NULL DEFAULT 0;"
    "DROP INDEX IF EXISTS deliveries_due;"
    "CREATE INDEX deliveries_due ON deliveries(state, lease, next_ms);";

/* Version 3: endpoints the disable clock stopped stay stopped across restarts. */
static const char *const migrate_v3 =
    "CREATE TABLE IF NOT EXISTS endpoint_state ("
    "  endpoint TEXT PRIMARY KEY,"
    "  disabled_ms INTEGER NOT NULL,"
    "  reason TEXT NOT NULL);";

static int exec(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "%s", msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static int user_version(sqlite3 *db)
{
    sqlite3_stmt *st;
    int v = -1;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    return v;
}

static int migrate(sqlite3 *db, const char *path, char *err, size_t errlen)
{
    char e[512];
    int v = user_version(db);
    if (v > SPOOL_SCHEMA_VERSION) {
        snprintf(err, errlen, "spool %s has schema version %d, newer than this switchyard (%d)",
                 path, v, SPOOL_SCHEMA_VERSION);
        return -1;
    }
    static const char *const steps[] = {NULL, schema_v1, migrate_v2, migrate_v3};
    for (int to = v + 1; to <= SPOOL_SCHEMA_VERSION; to++) {
        if (to == 0)
            continue;
        char bump[64];
        snprintf(bump, sizeof bump, "PRAGMA user_version = %d;", to);
        if (exec(db, "BEGIN IMMEDIATE", e, sizeof e) || exec(db, steps[to], e, sizeof e) ||
            exec(db, bump, e, sizeof e) || exec(db, "COMMIT", e, sizeof e)) {
            exec(db, "ROLLBACK", e + 256, 256);
            snprintf(err, errlen, "spool %s: migration to schema version %d failed: %s", path, to,
                     e);
            return -1;
        }
        if (v > 0)
            log_info("spool %s migrated from schema version %d to %d", path, to - 1, to);
    }
    return 0;
}

static int prepare(sy_spool *s, char *err, size_t errlen)
{
    char e[256];
    if (exec(s->db, "CREATE TEMP TABLE IF NOT EXISTS known(endpoint TEXT PRIMARY KEY)", e,
             sizeof e)) {
        snprintf(err, errlen, "spool %s: %s", s->path, e);
        return -1;
    }
    struct {
        sqlite3_stmt **st;
        const char *sql;
    } all[] = {
        {&s->st_ins_event, "INSERT OR IGNORE INTO events(event_id, received_ms, body) VALUES (?, ?, ?)"},
        {&s->st_ins_dlv, "INSERT INTO deliveries(event_rowid, endpoint, state, next_ms, "
                         "updated_ms, lease) VALUES (?, ?, 0, ?, ?, ?)"},
        /* Only a pending row: an outcome never brings back a delivery that died meanwhile
         * (its endpoint deleted while an attempt was inside the plugin). */
        {&s->st_update, "UPDATE deliveries SET state = ?, attempt = ?, first_ms = ?, next_ms = ?,"
                        " last_status = ?, last_detail = ?, updated_ms = ?, lease = ? WHERE id = ?"
                        " AND state = 0"},
        {&s->st_attempt, "INSERT INTO attempts(delivery_id, attempt, at_ms, result, status, "
                         "detail, latency_ms) VALUES (?, ?, ?, ?, ?, ?, ?)"},
        /* Only endpoints the running configuration has: the others stay on disk. */
        {&s->st_due, "SELECT d.id, d.endpoint, e.body, d.attempt, d.first_ms, d.next_ms, "
                     "e.received_ms FROM deliveries d JOIN events e ON e.id = d.event_rowid "
                     "WHERE d.state = 0 AND d.lease != ? AND d.next_ms <= ? "
                     "AND d.endpoint IN (SELECT endpoint FROM temp.known) "
                     "ORDER BY d.next_ms, d.id LIMIT ?"},
        {&s->st_lease, "UPDATE deliveries SET lease = ? WHERE id = ?"},
        /* An ordered endpoint's rows in acceptance order, due or not. */
        {&s->st_catchup, "SELECT d.id, d.endpoint, e.body, d.attempt, d.first_ms, d.next_ms, "
                         "e.received_ms FROM deliveries d JOIN events e ON e.id = d.event_rowid "
                         "WHERE d.state = 0 AND d.lease != ? AND d.endpoint = ? ORDER BY d.id"},
        {&s->st_release, "UPDATE deliveries SET lease = 0 WHERE endpoint = ? AND state = 0 "
                         "AND lease = ?"},
        {&s->st_known, "INSERT OR IGNORE INTO temp.known(endpoint) VALUES (?)"},
        {&s->st_disable, "INSERT INTO endpoint_state(endpoint, disabled_ms, reason) "
                         "VALUES (?, ?, ?) ON CONFLICT(endpoint) DO UPDATE SET "
                         "disabled_ms = excluded.disabled_ms, reason = excluded.reason"},
        {&s->st_enable, "DELETE FROM endpoint_state WHERE endpoint = ?"},
        {&s->st_kill, "UPDATE deliveries SET state = 2, last_detail = ?2, updated_ms = ?3, "
                      "next_ms = 0, lease = 0 WHERE endpoint = ?1 AND state = 0"},
    };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (sqlite3_prepare_v3(s->db, all[i].sql, -1, SQLITE_PREPARE_PERSISTENT, all[i].st,
                               NULL) != SQLITE_OK) {
            snprintf(err, errlen, "spool %s: %s", s->path, sqlite3_errmsg(s->db));
            return -1;
        }
    return 0;
}

static sqlite3 *open_db(const char *path, const char *sync, char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    /* SQLite would create it 0644 under umask 022; its -wal and -shm take this mode. */
    fs_precreate(path, FS_MODE_PRIVATE);
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot open spool %s: %s", path,
                 db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, 5000);
    char pragmas[512], e[512];
    snprintf(pragmas, sizeof pragmas,
             "PRAGMA journal_mode = WAL; PRAGMA synchronous = %s; PRAGMA foreign_keys = OFF;"
             /* Bigger cache and rarer checkpoints: the writer batches anyway. */
             " PRAGMA cache_size = -32768; PRAGMA wal_autocheckpoint = 4000;",
             sync && !strcmp(sync, "normal") ? "NORMAL" : "FULL");
    if (exec(db, pragmas, e, sizeof e)) {
        snprintf(err, errlen, "spool %s: %s", path, e);
        sqlite3_close(db);
        return NULL;
    }
    return db;
}

sy_spool *spool_open(const spool_opts *o, char *err, size_t errlen)
{
    sqlite3 *db = open_db(o->path, o->sync, err, errlen);
    if (!db)
        return NULL;
    sy_spool *s = calloc(1, sizeof *s);
    s->db = db;
    s->path = strdup(o->path);
    s->o = *o;
    s->o.path = s->path;
    if (s->o.batch_max <= 0)
        s->o.batch_max = 2000;
    /* Unique per process: rows leased by an earlier (crashed) run are free again. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    s->boot_id = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    pthread_cond_init(&s->idle_cv, NULL);
    if (migrate(db, o->path, err, errlen) || prepare(s, err, errlen)) {
        spool_close(s);
        return NULL;
    }
    return s;
}

static void free_op(spool_op *op);

/* ---- queueing ---------------------------------------------------------- */

/* Events an operation stores: what ingress back-pressure counts. */
static size_t op_events(const spool_op *op)
{
    return op->kind == OP_EVENT ? 1 : op->kind == OP_BATCH ? op->n : 0;
}

static void enqueue(sy_spool *s, spool_op *op)
{
    pthread_mutex_lock(&s->mu);
    if (s->tail)
        s->tail->next = op;
    else
        s->head = op;
    s->tail = op;
    s->queued += op_events(op);
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

void spool_put_event(sy_spool *s, sy_event *ev, const char *const *endpoint_ids, size_t n,
                     spool_event_cb cb, void *arg)
{
    spool_op *op = calloc(1, sizeof *op);
    event_ref(ev);
    op->kind = OP_EVENT;
    op->ev = ev;
    op->endpoint_ids = endpoint_ids;
    op->n = n;
    op->cb = cb;
    op->arg = arg;
    enqueue(s, op);
}

void spool_put_batch(sy_spool *s, spool_put *puts, size_t n, spool_batch_cb cb, void *arg)
{
    spool_op *op = calloc(1, sizeof *op);
    if (!op) {
        for (size_t i = 0; i < n; i++)
            puts[i].status = SPOOL_ERR;
        cb(arg);
        return;
    }
    op->kind = OP_BATCH;
    op->puts = puts;
    op->n = n;
    op->bcb = cb;
    op->arg = arg;
    enqueue(s, op);
}

void spool_record_batch(sy_spool *s, const spool_record *recs, size_t n)
{
    spool_op *op = calloc(1, sizeof *op);
    spool_record *copy = op ? malloc(n * sizeof *copy) : NULL;
    if (!copy) {
        /* The rows stay as they were: pending, picked up again after a restart. */
        log_error("spool %s: out of memory recording %zu outcomes", s->path, n);
        free(op);
        return;
    }
    memcpy(copy, recs, n * sizeof *copy);
    op->kind = OP_RECORDS;
    op->recs = copy;
    op->n = n;
    enqueue(s, op);
}

void spool_record_outcome(sy_spool *s, const spool_record *r)
{
    spool_record_batch(s, r, 1);
}

/* An operation about one endpoint id (release, disable, enable). */
static void enqueue_id(sy_spool *s, op_kind kind, const char *id, int64_t at_ms,
                       const char *reason)
{
    spool_op *op = calloc(1, sizeof *op);
    if (!op || !(op->id = strdup(id)) || (reason && !(op->ids = calloc(2, sizeof *op->ids))) ||
        (reason && !(op->ids[0] = strdup(reason)))) {
        log_error("spool %s: out of memory queueing an update of endpoint %s", s->path, id);
        if (op) {
            if (op->ids)
                free(op->ids[0]);
            free(op->ids);
            free(op->id);
        }
        free(op);
        return;
    }
    op->kind = kind;
    op->at_ms = at_ms;
    enqueue(s, op);
}

void spool_release_endpoint(sy_spool *s, const char *endpoint_id)
{
    enqueue_id(s, OP_RELEASE, endpoint_id, 0, NULL);
}

void spool_catch_up(sy_spool *s, const char *endpoint_id, spool_caught_up_fn done, void *arg,
                    uint32_t gen)
{
    spool_op *op = calloc(1, sizeof *op);
    if (!op || !(op->id = strdup(endpoint_id))) {
        log_error("spool %s: out of memory loading the pending deliveries of endpoint %s",
                  s->path, endpoint_id);
        free(op);
        return;
    }
    op->kind = OP_CATCHUP;
    op->done = done;
    op->arg = arg;
    op->gen = gen;
    enqueue(s, op);
}

void spool_set_disabled(sy_spool *s, const char *endpoint_id, int64_t at_ms, const char *reason)
{
    enqueue_id(s, OP_DISABLE, endpoint_id, at_ms, reason);
}

void spool_clear_disabled(sy_spool *s, const char *endpoint_id)
{
    enqueue_id(s, OP_ENABLE, endpoint_id, 0, NULL);
}

int spool_kill_endpoint(sy_spool *s, const char *endpoint_id, const char *detail,
                        spool_kill_cb cb, void *arg)
{
    spool_op *op = calloc(1, sizeof *op);
    if (!op || !(op->id = strdup(endpoint_id)) || !(op->ids = calloc(2, sizeof *op->ids)) ||
        !(op->ids[0] = strdup(detail))) {
        log_error("spool %s: out of memory queueing the dead letters of endpoint %s", s->path,
                  endpoint_id);
        if (op)
            free_op(op);
        return -1;
    }
    op->kind = OP_KILL;
    op->at_ms = wall_ms();
    op->kcb = cb;
    op->arg = arg;
    enqueue(s, op);
    return 0;
}

void spool_set_known(sy_spool *s, const char *const *ids, size_t n)
{
    spool_op *op = calloc(1, sizeof *op);
    char **copy = op ? calloc(n + 1, sizeof *copy) : NULL;
    for (size_t i = 0; copy && i < n; i++)
        if (!(copy[i] = strdup(ids[i]))) {
            for (size_t j = 0; j < i; j++)
                free(copy[j]);
            free(copy);
            copy = NULL;
        }
    if (!copy) {
        log_error("spool %s: out of memory updating the endpoints the pager loads", s->path);
        free(op);
        return;
    }
    op->kind = OP_KNOWN;
    op->ids = copy;
    op->n = n;
    enqueue(s, op);
}

int spool_load_disabled(sy_spool *s, char ***ids, size_t *n)
{
    sqlite3_stmt *st;
    *ids = NULL;
    *n = 0;
    if (sqlite3_prepare_v2(s->db, "SELECT endpoint FROM endpoint_state ORDER BY endpoint", -1,
                           &st, NULL) != SQLITE_OK)
        return -1;
    size_t cap = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            char **nn = realloc(*ids, cap * sizeof *nn);
            if (!nn)
                break;
            *ids = nn;
        }
        char *id = strdup((const char *)sqlite3_column_text(st, 0));
        if (!id)
            break;
        (*ids)[(*n)++] = id;
    }
    sqlite3_finalize(st);
    return 0;
}

int spool_flush(sy_spool *s, int64_t timeout_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(timeout_ms / 1000);
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    ts.tv_sec += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    int rc = 0;
    pthread_mutex_lock(&s->mu);
    while ((s->head || s->busy) && rc == 0)
        if (pthread_cond_timedwait(&s->idle_cv, &s->mu, &ts) == ETIMEDOUT)
            rc = -1;
    pthread_mutex_unlock(&s->mu);
    return rc;
}

size_t spool_queued(sy_spool *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->queued;
    pthread_mutex_unlock(&s->mu);
    return n;
}

void spool_set_pager(sy_spool *s, spool_want_fn want, spool_load_fn load, void *arg,
                     int64_t page_ms, int64_t ahead_ms)
{
    s->want = want;
    s->load = load;
    s->pager_arg = arg;
    s->page_ms = page_ms > 0 ? page_ms : 200;
    s->ahead_ms = ahead_ms;
}

/* ---- the writer ---------------------------------------------------------- */

static int step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* Stores one event and its deliveries inside the open transaction; fills ids. */
static spool_status apply_event(sy_spool *s, const sy_event *ev, const char *const *endpoint_ids,
                                size_t n, int64_t *ids)
{
    int64_t now = wall_ms();
    /* The UNIQUE event_id does the dedup: an ignored insert is a duplicate. */
    sqlite3_bind_text(s->st_ins_event, 1, ev->event_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s->st_ins_event, 2, ev->received_ms);
    sqlite3_bind_blob(s->st_ins_event, 3, ev->body, (int)ev->body_len, SQLITE_STATIC);
    if (step_done(s->st_ins_event))
        return SPOOL_ERR;
    if (sqlite3_changes(s->db) == 0)
        return SPOOL_DUP;
    int64_t erow = sqlite3_last_insert_rowid(s->db);
    for (size_t i = 0; i < n; i++) {
        sqlite3_bind_int64(s->st_ins_dlv, 1, erow);
        sqlite3_bind_text(s->st_ins_dlv, 2, endpoint_ids[i], -1, SQLITE_STATIC);
        sqlite3_bind_int64(s->st_ins_dlv, 3, now);
        sqlite3_bind_int64(s->st_ins_dlv, 4, now);
        sqlite3_bind_int64(s->st_ins_dlv, 5, s->boot_id);
        if (step_done(s->st_ins_dlv))
            return SPOOL_ERR;
        ids[i] = sqlite3_last_insert_rowid(s->db);
    }
    return SPOOL_OK;
}

static int apply_record(sy_spool *s, const spool_record *r)
{
    int64_t now = wall_ms();
    sqlite3_stmt *u = s->st_update;
    sqlite3_bind_int(u, 1, (int)r->state);
    sqlite3_bind_int64(u, 2, r->attempt);
    sqlite3_bind_int64(u, 3, r->first_ms);
    sqlite3_bind_int64(u, 4, r->next_ms);
    sqlite3_bind_int(u, 5, r->status);
    sqlite3_bind_text(u, 6, r->detail, -1, SQLITE_STATIC);
    sqlite3_bind_int64(u, 7, now);
    sqlite3_bind_int64(u, 8, r->leased ? s->boot_id : 0);
    sqlite3_bind_int64(u, 9, r->delivery_id);
    if (step_done(u))
        return -1;
    if (r->attempt_result < 0)
        return 0;
    sqlite3_stmt *a = s->st_attempt;
    sqlite3_bind_int64(a, 1, r->delivery_id);
    sqlite3_bind_int64(a, 2, r->attempt);
    sqlite3_bind_int64(a, 3, r->at_ms);
    sqlite3_bind_int(a, 4, r->attempt_result);
    sqlite3_bind_int(a, 5, r->status);
    sqlite3_bind_text(a, 6, r->detail, -1, SQLITE_STATIC);
    sqlite3_bind_int64(a, 7, r->latency_ms);
    return step_done(a);
}

/* One row of st_due or st_catchup. */
static void read_row(sqlite3_stmt *q, spool_row *r)
{
    r->id = sqlite3_column_int64(q, 0);
    r->endpoint_id = strdup((const char *)sqlite3_column_text(q, 1));
    r->body_len = (size_t)sqlite3_column_bytes(q, 2);
    char *b = malloc(r->body_len + 1);
    memcpy(b, sqlite3_column_blob(q, 2), r->body_len);
    b[r->body_len] = '\0';
    r->body = b;
    r->attempt = (uint32_t)sqlite3_column_int64(q, 3);
    r->first_ms = sqlite3_column_int64(q, 4);
    r->next_ms = sqlite3_column_int64(q, 5);
    r->received_ms = sqlite3_column_int64(q, 6);
}

static void free_rows(spool_row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free((char *)rows[i].endpoint_id);
        free((char *)rows[i].body);
    }
    free(rows);
}

/* OP_CATCHUP inside the transaction: every pending row not held, leased, kept for after COMMIT. */
static int catch_up_rows(sy_spool *s, spool_op *op)
{
    sqlite3_stmt *q = s->st_catchup;
    sqlite3_bind_int64(q, 1, s->boot_id);
    sqlite3_bind_text(q, 2, op->id, -1, SQLITE_STATIC);
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (op->nrows == cap) {
            size_t ncap = cap ? cap * 2 : 256;
            spool_row *nr = realloc(op->rows, ncap * sizeof *nr);
            if (!nr)
                break;
            op->rows = nr;
            cap = ncap;
        }
        read_row(q, &op->rows[op->nrows++]);
    }
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    if (rc != SQLITE_DONE)
        return -1;
    for (size_t i = 0; i < op->nrows; i++) {
        sqlite3_bind_int64(s->st_lease, 1, s->boot_id);
        sqlite3_bind_int64(s->st_lease, 2, op->rows[i].id);
        if (step_done(s->st_lease))
            return -1;
    }
    return 0;
}

/* After COMMIT: the rows go the pager's way (in pages), then the endpoint hears it is complete. */
static void catch_up_done(sy_spool *s, spool_op *op)
{
    for (size_t off = 0; off < op->nrows && s->load; off += 1000)
        s->load(s->pager_arg, op->rows + off, op->nrows - off < 1000 ? op->nrows - off : 1000);
    log_fields(SY_LOG_INFO, "ordered endpoint: pending deliveries loaded",
               LOG_S("endpoint", op->id), LOG_I("deliveries", op->nrows));
    free_rows(op->rows, op->nrows);
    op->rows = NULL;
    op->nrows = 0;
    op->done(op->arg, op->id, op->gen);
}

/* The endpoint-level operations, inside the open transaction. */
static int apply_endpoint_op(sy_spool *s, spool_op *op)
{
    sqlite3_stmt *st;
    switch (op->kind) {
    case OP_RELEASE:
        st = s->st_release;
        sqlite3_bind_text(st, 1, op->id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, s->boot_id);
        return step_done(st);
    case OP_DISABLE:
        st = s->st_disable;
        sqlite3_bind_text(st, 1, op->id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, op->at_ms);
        sqlite3_bind_text(st, 3, op->ids ? op->ids[0] : "", -1, SQLITE_STATIC);
        return step_done(st);
    case OP_ENABLE:
        st = s->st_enable;
        sqlite3_bind_text(st, 1, op->id, -1, SQLITE_STATIC);
        return step_done(st);
    case OP_KILL:
        st = s->st_kill;
        sqlite3_bind_text(st, 1, op->id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, op->ids[0], -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, op->at_ms);
        if (step_done(st))
            return -1;
        op->killed = sqlite3_changes(s->db);
        return 0;
    case OP_CATCHUP:
        return catch_up_rows(s, op);
    case OP_KNOWN: {
        char e[256];
        if (exec(s->db, "DELETE FROM temp.known", e, sizeof e))
            return -1;
        for (size_t i = 0; i < op->n; i++) {
            sqlite3_bind_text(s->st_known, 1, op->ids[i], -1, SQLITE_STATIC);
            if (step_done(s->st_known))
                return -1;
        }
        return 0;
    }
    default:
        return -1;
    }
}

static int apply_op(sy_spool *s, spool_op *op, spool_status *st, int64_t *ids)
{
    switch (op->kind) {
    case OP_EVENT:
        *st = apply_event(s, op->ev, op->endpoint_ids, op->n, ids);
        return *st == SPOOL_ERR ? -1 : 0;
    case OP_BATCH:
        for (size_t i = 0; i < op->n; i++) {
            spool_put *p = &op->puts[i];
            p->status = apply_event(s, p->ev, p->endpoint_ids, p->n, p->ids);
            if (p->status == SPOOL_ERR)
                return -1;
        }
        return 0;
    case OP_RECORDS:
        for (size_t i = 0; i < op->n; i++)
            if (apply_record(s, &op->recs[i]) != 0)
                return -1;
        return 0;
    default:
        return apply_endpoint_op(s, op);
    }
}

static void free_op(spool_op *op)
{
    if (op->ids)
        for (size_t i = 0; op->ids[i]; i++)
            free(op->ids[i]);
    free(op->ids);
    free(op->recs);
    free_rows(op->rows, op->nrows);
    free(op->id);
    free(op);
}

/*
 * Commits a batch. When the transaction fails as a whole (disk full, I/O
 * error), event ops report SPOOL_ERR so publishers get an error instead of
 * a false ok; every other operation is retried with the next batch.
 */
static void commit_batch(sy_spool *s, spool_op *batch)
{
    char e[512];
    size_t nev = 0;
    for (spool_op *op = batch; op; op = op->next)
        if (op->kind == OP_EVENT)
            nev += op->n;
    int64_t *ids = calloc(nev ? nev : 1, sizeof *ids);
    size_t nops = 0;
    for (spool_op *op = batch; op; op = op->next)
        nops++;
    spool_status *sts = calloc(nops, sizeof *sts);
    int ok = ids && sts && exec(s->db, "BEGIN IMMEDIATE", e, sizeof e) == 0;
    size_t k = 0, off = 0;
    for (spool_op *op = batch; op && ok; op = op->next, k++) {
        ok = apply_op(s, op, &sts[k], ids + off) == 0;
        if (op->kind == OP_EVENT)
            off += op->n;
    }
    if (ok)
        ok = exec(s->db, "COMMIT", e, sizeof e) == 0;
    if (!ok) {
        log_fields_limited(SY_LOG_ERROR, "spool transaction failed", LOG_S("spool", s->path),
                           LOG_S("error", sqlite3_errmsg(s->db)));
        exec(s->db, "ROLLBACK", e, sizeof e);
    }
    s->failures = ok ? 0 : s->failures + 1;
    /* Stopping on a disk that stays full: after about 2 s of failures, let go of
     * the outcomes (their rows stay pending, so a restart retries those deliveries). */
    int give_up = !ok && __atomic_load_n(&s->stop, __ATOMIC_ACQUIRE) && s->failures >= 20;
    size_t dropped = 0;
    off = k = 0;
    for (spool_op *op = batch, *next; op; op = next, k++) {
        next = op->next;
        if (op->kind == OP_EVENT) {
            spool_status st = ok ? sts[k] : SPOOL_ERR;
            op->cb(op->arg, st, op->ev, st == SPOOL_OK ? ids + off : NULL);
            off += op->n;
            event_unref(op->ev);
            free(op);
        } else if (op->kind == OP_BATCH) {
            if (!ok)
                for (size_t i = 0; i < op->n; i++)
                    op->puts[i].status = SPOOL_ERR;
            op->bcb(op->arg);
            free(op);
        } else if (ok && op->kind == OP_CATCHUP) {
            catch_up_done(s, op);
            free_op(op);
        } else if (!ok && !give_up) {
            /* Keep it: requeue it for the next transaction (rows leased in it are not). */
            free_rows(op->rows, op->nrows);
            op->rows = NULL;
            op->nrows = 0;
            op->next = NULL;
            enqueue(s, op);
        } else {
            if (!ok)
                dropped += op->kind == OP_RECORDS ? op->n : 1;
            if (op->kcb)
                op->kcb(op->arg, ok ? op->killed : -1);
            free_op(op);
        }
    }
    free(ids);
    free(sts);
    if (dropped)
        log_error("spool %s: %zu updates could not be written before exit; the deliveries "
                  "concerned stay pending and are tried again after a restart",
                  s->path, dropped);
    if (!ok) {
        struct timespec ts = {0, 100 * 1000000L}; /* don't spin on a full disk */
        nanosleep(&ts, NULL);
    }
}

static void page(sy_spool *s)
{
    if (!s->want || !s->load)
        return;
    size_t n = s->want(s->pager_arg);
    if (!n)
        return;
    char e[256];
    if (exec(s->db, "BEGIN IMMEDIATE", e, sizeof e))
        return;
    sqlite3_stmt *q = s->st_due;
    sqlite3_bind_int64(q, 1, s->boot_id);
    sqlite3_bind_int64(q, 2, wall_ms() + s->ahead_ms);
    sqlite3_bind_int64(q, 3, (int64_t)n);
    spool_row *rows = calloc(n, sizeof *rows);
    size_t got = 0;
    while (got < n && sqlite3_step(q) == SQLITE_ROW)
        read_row(q, &rows[got++]);
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    for (size_t i = 0; i < got; i++) {
        sqlite3_bind_int64(s->st_lease, 1, s->boot_id);
        sqlite3_bind_int64(s->st_lease, 2, rows[i].id);
        step_done(s->st_lease);
    }
    size_t fetched = got;
    if (exec(s->db, "COMMIT", e, sizeof e) != 0) {
        exec(s->db, "ROLLBACK", e, sizeof e);
        got = 0; /* not leased: leave them for the next pass */
    }
    if (got)
        s->load(s->pager_arg, rows, got);
    free_rows(rows, fetched);
}

static void prune(sy_spool *s)
{
    int64_t now = wall_ms();
    if (now - s->last_prune < 60000)
        return;
    s->last_prune = now;
    char sql[512], e[256];
    snprintf(sql, sizeof sql,
             "DELETE FROM attempts WHERE at_ms < %lld;"
             "DELETE FROM deliveries WHERE state = 1 AND updated_ms < %lld;"
             "DELETE FROM events WHERE received_ms < %lld AND NOT EXISTS "
             "(SELECT 1 FROM deliveries d WHERE d.event_rowid = events.id);",
             (long long)(now - s->o.retention_ms), (long long)(now - s->o.retention_ms),
             (long long)(now - s->o.dedup_window_ms));
    if (exec(s->db, sql, e, sizeof e))
        log_warn("spool %s: retention cleanup failed: %s", s->path, e);
    else if (sqlite3_changes(s->db))
        log_debug("spool retention removed old rows");
}

static void *writer_main(void *arg)
{
    sy_spool *s = arg;
    pthread_setname_np(pthread_self(), "sy-spool");
    stats_thread_block();
    s->last_prune = wall_ms();
    pthread_mutex_lock(&s->mu);
    for (;;) {
        if (!s->head && !s->stop) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += (long)(s->page_ms ? s->page_ms : 200) * 1000000L;
            ts.tv_sec += ts.tv_nsec / 1000000000L;
            ts.tv_nsec %= 1000000000L;
            pthread_cond_timedwait(&s->cv, &s->mu, &ts);
        }
        /* Take about batch_max rows of work: one transaction for all of it. */
        spool_op *batch = s->head, *last = NULL;
        size_t rows = 0, events = 0;
        for (spool_op *op = s->head; op && rows < (size_t)s->o.batch_max; op = op->next) {
            last = op;
            rows += op->kind == OP_RECORDS || op->kind == OP_BATCH ? op->n : 1;
            events += op_events(op);
        }
        if (last) {
            s->head = last->next;
            if (!s->head)
                s->tail = NULL;
            last->next = NULL;
            s->queued -= events;
        } else {
            batch = NULL;
        }
        int stopping = s->stop && !s->head;
        s->busy = batch != NULL;
        pthread_mutex_unlock(&s->mu);
        if (batch)
            commit_batch(s, batch);
        pthread_mutex_lock(&s->mu);
        s->busy = 0;
        if (!s->head)
            pthread_cond_broadcast(&s->idle_cv);
        pthread_mutex_unlock(&s->mu);
        if (stopping && !batch)
            break;
        if (!stopping) {
            page(s);
            prune(s);
        }
        pthread_mutex_lock(&s->mu);
    }
    return NULL;
}

int spool_start(sy_spool *s)
{
    if (pthread_create(&s->thread, NULL, writer_main, s) != 0)
        return -1;
    s->started = 1;
    return 0;
}

void spool_close(sy_spool *s)
{
    if (!s)
        return;
    if (s->started) {
        pthread_mutex_lock(&s->mu);
        s->stop = 1;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thread, NULL);
    }
    sqlite3_stmt *all[] = {s->st_ins_event, s->st_ins_dlv, s->st_update, s->st_attempt,
                           s->st_due,       s->st_lease,  s->st_release, s->st_known,
                           s->st_disable,   s->st_enable, s->st_kill,    s->st_catchup};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        sqlite3_finalize(all[i]);
    sqlite3_close(s->db);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    pthread_cond_destroy(&s->idle_cv);
    free(s->path);
    free(s);
}

/* ---- offline tools ------------------------------------------------------- */

int spool_count(const char *path, spool_counts *out, char *err, size_t errlen)
{
    sqlite3 *db = open_db(path, "normal", err, errlen);
    if (!db)
        return -1;
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st;
    const char *sql = "SELECT state, lease != 0, count(*) FROM deliveries GROUP BY 1, 2";
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "spool %s: %s", path, sqlite3_errmsg(db));
        sqlite3_close(db);
        return -1;
    }
    while (sqlite3_step(st) == SQLITE_ROW) {
        int state = sqlite3_column_int(st, 0), leased = sqlite3_column_int(st, 1);
        uint64_t n = (uint64_t)sqlite3_column_int64(st, 2);
        if (state == DLV_PENDING) {
            out->pending += n;
            if (leased)
                out->leased += n;
        } else if (state == DLV_DONE) {
            out->done += n;
        } else {
            out->dead += n;
        }
    }
    sqlite3_finalize(st);
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM events", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            out->events = (uint64_t)sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return 0;
}

/* The shared WHERE clause of replay and list: ?2 endpoint, ?3 event id, ?4/?5 time range. */
#define DEAD_FILTER                                                                             \
    " d.state = 2 AND (?2 IS NULL OR d.endpoint = ?2)"                                          \
    " AND (?3 IS NULL OR d.event_rowid = (SELECT id FROM events WHERE event_id = ?3))"          \
    " AND (?4 = 0 OR d.updated_ms >= ?4) AND (?5 = 0 OR d.updated_ms <= ?5)"

static void bind_filters(sqlite3_stmt *st, const char *endpoint, const char *event_id,
                         int64_t since_ms, int64_t until_ms)
{
    if (endpoint)
        sqlite3_bind_text(st, 2, endpoint, -1, SQLITE_STATIC);
    if (event_id)
        sqlite3_bind_text(st, 3, event_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, since_ms);
    sqlite3_bind_int64(st, 5, until_ms);
}

long spool_list_dead(const char *path, const char *endpoint, const char *event_id,
                     int64_t since_ms, int64_t until_ms, long limit, FILE *out, char *err,
                     size_t errlen)
{
    sqlite3 *db = open_db(path, "normal", err, errlen);
    if (!db)
        return -1;
    const char *sql = "SELECT d.endpoint, e.event_id, d.attempt, d.last_status, d.last_detail,"
                      " d.updated_ms, ?1 FROM deliveries d JOIN events e ON e.id = d.event_rowid"
                      " WHERE" DEAD_FILTER " ORDER BY d.updated_ms, d.id";
    sqlite3_stmt *st;
    long n = 0;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "spool %s: %s", path, sqlite3_errmsg(db));
        sqlite3_close(db);
        return -1;
    }
    sqlite3_bind_int64(st, 1, 0);
    bind_filters(st, endpoint, event_id, since_ms, until_ms);
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (limit <= 0 || n < limit) {
            time_t t = (time_t)(sqlite3_column_int64(st, 5) / 1000);
            struct tm tm;
            char when[32];
            gmtime_r(&t, &tm);
            strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
            fprintf(out, "%-24s %-32s attempts=%-3lld status=%-4d died=%s  %s\n",
                    (const char *)sqlite3_column_text(st, 0),
                    (const char *)sqlite3_column_text(st, 1),
                    (long long)sqlite3_column_int64(st, 2), sqlite3_column_int(st, 3), when,
                    (const char *)sqlite3_column_text(st, 4));
        }
        n++;
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

long spool_replay(const char *path, const char *endpoint, const char *event_id,
                  int64_t since_ms, int64_t until_ms, char *err, size_t errlen)
{
    sqlite3 *db = open_db(path, "full", err, errlen);
    if (!db)
        return -1;
    if (user_version(db) != SPOOL_SCHEMA_VERSION) {
        snprintf(err, errlen, "spool %s has schema version %d; start the daemon once to migrate it",
                 path, user_version(db));
        sqlite3_close(db);
        return -1;
    }
    const char *sql =
        "UPDATE deliveries AS d SET state = 0, attempt = 0, first_ms = 0, lease = 0, next_ms = ?1,"
        " updated_ms = ?1 WHERE" DEAD_FILTER;
    sqlite3_stmt *st;
    long n = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, wall_ms());
        bind_filters(st, endpoint, event_id, since_ms, until_ms);
        if (sqlite3_step(st) == SQLITE_DONE)
            n = sqlite3_changes(db);
        sqlite3_finalize(st);
    }
    if (n < 0)
        snprintf(err, errlen, "spool %s: %s", path, sqlite3_errmsg(db));
    sqlite3_close(db);
    return n;
}
